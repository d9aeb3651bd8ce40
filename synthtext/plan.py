"""The plan of a fit, computed once before any expensive work: which columns play which role, which rows
train and which are held out, what privacy each text model gets, the training settings, and the training
records. :meth:`synthtext.TextSynthesizer.fit` and the canary audit (:func:`synthtext.audit`, which must
train exactly as fit would) both call these functions, in this order.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import prompts as prompt_format
from .config import PrivacyConfig, TrainConfig
from .errors import ConfigError, DataError, option


def table_privacy(privacy: PrivacyConfig | None, epsilon: float | None, delta: float | None) -> PrivacyConfig:
    """The whole table's budget: ``privacy`` (or the defaults) with ``epsilon`` and ``delta`` set; checked by
    :class:`~synthtext.config.PrivacyConfig` (the one place epsilon and delta are validated)."""
    base = privacy or PrivacyConfig()
    return replace(base, epsilon=epsilon, delta=delta if delta is not None else base.delta)


def training_config(train: TrainConfig | None, seed: int, progress: bool) -> TrainConfig:
    """The training settings with the run's seed and progress switch (checked by TrainConfig)."""
    train = train or TrainConfig()
    return replace(train, seed=seed, progress=progress and train.progress)


def scan_columns(df: pd.DataFrame, *, text_columns: Sequence[str] | None, conditioning_columns: Sequence[str] | None,
                 redact_entities: Any, analyzer: Any = None, progress: bool = False) -> tuple[Any, dict[str, str], list]:
    """Scan ``df`` for PII; decide its text, PII and conditioning columns. Returns (scan, {PII column:
    entity type}, conditioning columns)."""
    from . import pii

    pii.check_redact_entities(redact_entities, analyzer=analyzer)  # before the scan's minutes
    scan = pii.scan_pii(df, columns=text_columns, analyzer=analyzer, progress=progress)
    if not scan.text_columns:
        raise DataError("no text column found (a text column holds strings of 3+ words on average, "
                        f"mostly distinct); name them with {option('text_columns=[...]', '--text-columns')}.")
    for column in scan.text_columns:
        if df[column].isna().all() or not df[column].map(lambda v: isinstance(v, str) and v.strip()).any():
            raise DataError(f"text column {column!r} is empty: every cell is missing or blank.")
        # the scan reads strings only: anything else would be trained on unredacted
        odd = [(i, v) for i, v in enumerate(df[column].tolist())
               if not isinstance(v, str) and not prompt_format.is_missing(v)]
        if odd:
            raise DataError(f"text column {column!r} holds {len(odd)} value(s) that are not text (first: "
                            f"{type(odd[0][1]).__name__} in row {odd[0][0]}); the PII scan reads text only. "
                            "Convert them to strings first, keeping missing cells missing.")
    pii_columns = {c: s.entity_type for c, s in scan.structured_columns.items()}
    conditioning = conditioning_columns
    if conditioning is None:
        conditioning = [c for c in df.columns if c not in scan.text_columns and c not in pii_columns]
    unknown = [c for c in conditioning if c not in df.columns]
    if unknown:
        raise DataError(f"conditioning_columns: unknown column(s) {unknown}; the table has {list(df.columns)}.")
    clash = [c for c in conditioning if c in scan.text_columns]
    if clash:
        raise ConfigError(f"conditioning_columns: {clash} are text columns; a text is not conditioned on itself.")
    return scan, pii_columns, list(conditioning)


def whole_row_conditioning(columns: Sequence, conditioning: Sequence, text_columns: Sequence,
                           pii_columns: Mapping, exclude: Sequence = ()) -> list:
    """``structured="dp"``: every column but the texts, the PII columns and ``exclude`` (the privacy unit's
    column) goes into the sequence, the ones the caller conditions on first (so that
    ``sample(conditions=...)`` can give them)."""
    return [*conditioning, *(c for c in columns if c not in conditioning and c not in text_columns
                             and c not in pii_columns and c not in exclude)]


def units_and_columns(df: pd.DataFrame, privacy_unit: Any, scan: Any, pii_columns: Mapping, conditioning: Sequence,
                      conditioning_columns: Sequence | None, structured: str) -> tuple[Any, list]:
    """The privacy units (:func:`synthtext.units.find_units`; None: per row, also when every unit value is
    distinct) and the columns each record is conditioned on or, with ``structured="dp"``, writes: never the
    unit column, which the output replaces by surrogates."""
    units = None
    if privacy_unit is not None:
        from .units import find_units

        units = find_units(df, privacy_unit, text_columns=scan.text_columns, conditioning_columns=conditioning_columns)
        conditioning = [c for c in conditioning if c != privacy_unit]
    if structured == "dp":  # one model writes every column but the PII ones
        conditioning = whole_row_conditioning(df.columns, conditioning, scan.text_columns, pii_columns,
                                              exclude=[privacy_unit] if privacy_unit is not None else ())
    return units, list(conditioning)


def split_holdout(n_rows: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (sorted) for training and for the holdout: a seeded random ``share`` of the rows,
    rounded, kept out of training so leakage can be measured against rows the model never saw."""
    n_holdout = int(round(n_rows * share))
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


def prompt_format_for(tokenizer: Any, conditioning: Sequence[str], text_columns: Sequence[str]) -> prompt_format.PromptFormat:
    """The prompt format for a model with ``tokenizer``: the row's values in words for an instruction-tuned
    model (chat template), the compact line for the others."""
    from .models import uses_chat_template

    style = "instruction" if uses_chat_template(tokenizer) else "plain"
    return prompt_format.PromptFormat(conditioning_columns=list(conditioning), text_columns=list(text_columns),
                                      style=style)


def encode_rows(fmt: prompt_format.PromptFormat, tokenizer: Any, max_length: int, records: Sequence[Mapping],
                column: str):
    """The (prompt, text) training records of one text column, tokenized."""
    from .models import encode_examples

    pairs = [fmt.example(row, column) for row in records]
    return encode_examples(tokenizer, [p for p, _ in pairs], [t for _, t in pairs], max_length=max_length)


__all__ = ["encode_rows", "prompt_format_for", "scan_columns", "split_holdout", "table_privacy", "training_config",
           "units_and_columns", "whole_row_conditioning"]

"""The structured (non-text) columns: SDMetrics' single-table QualityReport, and each column's real and
synthetic distribution for the report's pictures (:func:`column_distributions`)."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..jsonsafe import json_safe
from .common import class_label, require_columns

TOP_CATEGORIES = 10
"""Categories named in a column's distribution (the most frequent real ones); the rest are "other"."""
MIN_CATEGORY_ROWS = 5
"""A category is named only when at least this many real rows have it: a rarer value can single out a
row (the synthesizer withholds such values from SDV for the same reason)."""
HISTOGRAM_BINS = 20
NUMERIC_MIN_VALUES = 11  # a numeric column with fewer distinct real values is shown as categories


def _sdmetrics_columns(real: pd.DataFrame, columns: Sequence[str]) -> dict:
    metadata = {}
    for column in columns:
        series = real[column].dropna()
        if pd.api.types.is_bool_dtype(series):
            sdtype = "boolean"
        elif pd.api.types.is_datetime64_any_dtype(series):
            sdtype = "datetime"
        elif pd.api.types.is_numeric_dtype(series) and series.nunique() > 10:
            sdtype = "numerical"
        else:
            sdtype = "categorical"
        metadata[column] = {"sdtype": sdtype}
    return {"columns": metadata}


def structured_quality(real: pd.DataFrame, synthetic: pd.DataFrame, columns: Sequence[str] | None = None,
                       metadata=None) -> dict:
    """SDMetrics' single-table QualityReport on the non-text columns.

    ``columns`` default: the columns both tables share, minus free text and identifier-like string
    columns (almost every value distinct). ``metadata``: an SDV ``Metadata``, an SDMetrics dict
    ``{"columns": {name: {"sdtype": ...}}}``, or None (numeric columns with more than 10 values are
    numerical, the rest categorical). Returns ``{"score", "column_shapes", "column_pair_trends"}``.
    """
    for name, frame in (("real", real), ("synthetic", synthetic)):
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"structured_quality: {name} must be a pandas DataFrame.")
    if columns is None:
        from ..pii import detect_text_columns

        text = set(detect_text_columns(real))
        columns = []
        for column in real.columns:
            if column not in synthetic.columns or column in text:
                continue
            values = real[column].dropna()
            id_like = (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)) \
                and len(values) > 20 and values.nunique() > 0.9 * len(values)
            if not id_like:
                columns.append(column)
    columns = list(columns)
    require_columns(columns, real, synthetic, None, "column")
    out = {"score": None, "column_shapes": None, "column_pair_trends": None, "columns": columns}
    if not columns:
        out["note"] = "no structured columns to compare"
        return out
    if metadata is None:
        metadata = _sdmetrics_columns(real, columns)
    elif hasattr(metadata, "to_dict"):
        metadata = metadata.to_dict()
    if isinstance(metadata, Mapping) and "tables" in metadata:
        metadata = next(iter(metadata["tables"].values()))
    if not isinstance(metadata, Mapping) or "columns" not in metadata:
        raise ConfigError("structured_quality: metadata must be an SDV Metadata or {'columns': {name: "
                          "{'sdtype': ...}}}.")
    metadata = {"columns": {c: dict(metadata["columns"][c]) for c in columns if c in metadata["columns"]}}
    missing = [c for c in columns if c not in metadata["columns"]]
    if missing:
        raise ConfigError(f"structured_quality: metadata has no entry for {', '.join(map(str, missing))}.")

    synthetic_part = synthetic[columns].copy()
    for column in columns:  # a CSV round trip may have turned 5 into "5"; compare like with like
        if synthetic_part[column].dtype != real[column].dtype:
            try:
                synthetic_part[column] = synthetic_part[column].astype(real[column].dtype)
            except (TypeError, ValueError):
                pass
    from ..tabular import quiet_sdv

    with quiet_sdv(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        report.generate(real[columns].reset_index(drop=True), synthetic_part.reset_index(drop=True),
                        metadata, verbose=False)
        properties = report.get_properties().set_index("Property")["Score"]
        shapes = report.get_details("Column Shapes")
        pairs = report.get_details("Column Pair Trends")
    out["score"] = report.get_score()
    out["column_shapes"] = {
        "score": properties.get("Column Shapes"),
        "columns": {str(r["Column"]): {"metric": r["Metric"], "score": r["Score"]} for _, r in shapes.iterrows()}}
    out["column_pair_trends"] = {
        "score": properties.get("Column Pair Trends"),
        "pairs": [{"columns": [str(r["Column 1"]), str(r["Column 2"])], "metric": r["Metric"], "score": r["Score"]}
                  for _, r in pairs.iterrows()]}
    return json_safe(out)


def _is_id_like(values: pd.Series) -> bool:
    """A string column whose values are almost all distinct (an id, a free-text title)."""
    values = values.dropna()
    textual = pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
    return bool(textual and len(values) > 20 and values.nunique() > 0.9 * len(values))


def _categorical(real: pd.Series, synthetic: pd.Series) -> dict:
    real_labels = [class_label(v) for v in real.tolist()]
    synth_labels = [class_label(v) for v in synthetic.tolist()]
    counts = Counter(v for v in real_labels if v is not None)
    named = [v for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
             if n >= MIN_CATEGORY_ROWS][:TOP_CATEGORIES]
    out = {"kind": "categorical", "categories": named, "real": [], "synthetic": [], "other": {}, "missing": {},
           "n": {"real": len(real_labels), "synthetic": len(synth_labels)},
           "top": TOP_CATEGORIES, "min_real_rows": MIN_CATEGORY_ROWS}
    keep = set(named)
    for side, labels in (("real", real_labels), ("synthetic", synth_labels)):
        total = len(labels) or 1
        side_counts = Counter(labels)
        out[side] = [side_counts[v] / total for v in named]
        out["missing"][side] = side_counts[None] / total
        out["other"][side] = sum(n for v, n in side_counts.items() if v is not None and v not in keep) / total
    return out


def _numeric(real: pd.Series, synthetic: pd.Series) -> dict | None:
    real_values = pd.to_numeric(real, errors="coerce").to_numpy(dtype=float)
    synth_values = pd.to_numeric(synthetic, errors="coerce").to_numpy(dtype=float)
    real_ok, synth_ok = real_values[np.isfinite(real_values)], synth_values[np.isfinite(synth_values)]
    if real_ok.size == 0:
        return None
    both = np.r_[real_ok, synth_ok]
    # the range is the 1st to 99th percentile of both sides, values beyond it counted in the end bins:
    # the picture never draws a single row's extreme value
    low, high = (float(v) for v in np.percentile(both, [1, 99]))
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    out = {"kind": "numeric", "edges": edges.round(6).tolist(), "real": [], "synthetic": [], "missing": {},
           "n": {"real": len(real_values), "synthetic": len(synth_values)}, "clipped": {},
           "range": "1st to 99th percentile of both sides; values beyond it are counted in the end bins"}
    for side, values, ok in (("real", real_values, real_ok), ("synthetic", synth_values, synth_ok)):
        counts, _ = np.histogram(np.clip(ok, low, high), bins=edges)
        out[side] = counts.astype(int).tolist()
        out["missing"][side] = float(1 - ok.size / len(values)) if len(values) else 0.0
        out["clipped"][side] = int(np.sum((ok < low) | (ok > high)))
    return out


def column_distributions(real: pd.DataFrame, synthetic: pd.DataFrame, columns: Sequence[str]) -> dict:
    """Each structured column's real and synthetic distribution, the data of the report's pictures:
    ``{column: {"kind": "categorical", "categories", "real", "synthetic", "other", "missing", ...}}``
    (shares of rows: the ``TOP_CATEGORIES`` most frequent real categories that at least
    ``MIN_CATEGORY_ROWS`` real rows have, the rest "other") or ``{"kind": "numeric", "edges", "real",
    "synthetic", ...}`` (row counts on shared bins over the 1st-99th percentile). Numeric columns with
    fewer than ``NUMERIC_MIN_VALUES`` distinct real values, booleans and strings are categorical.
    Identifier-like string columns (almost every value distinct) and date columns are left out.

    Aggregates of the real rows, like every figure of the evaluation (not DP; the report says so); never a
    value fewer than ``MIN_CATEGORY_ROWS`` real rows share, nor a single row's extreme."""
    out = {}
    for column in columns:
        if column not in real.columns or column not in synthetic.columns:
            continue
        values = real[column]
        if pd.api.types.is_datetime64_any_dtype(values) or _is_id_like(values):
            continue
        numeric = (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
                   and values.nunique() >= NUMERIC_MIN_VALUES)
        data = _numeric(values, synthetic[column]) if numeric else _categorical(values, synthetic[column])
        if data is not None:
            out[str(column)] = data
    return json_safe(out)

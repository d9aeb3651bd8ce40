"""The structured (non-text) columns: SDMetrics' single-table QualityReport."""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import pandas as pd

from ..errors import ConfigError, DataError
from ..jsonsafe import json_safe
from .common import require_columns


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

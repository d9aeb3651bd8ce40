"""What several metric families share: a cell as text or as a class label, text normalisation, seeded
subsampling, the column check, and the sizes they share."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..errors import DataError

MIN_TEXTS = 10  # per side, below which a statistical comparison is reported as not available
PLOT_POINTS = 2000  # per series, in Evaluation.plots

SPACE = re.compile(r"\s+")


def require_columns(columns, real, synthetic, holdout, what) -> None:
    for column in columns:
        for name, frame in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
            if frame is not None and column not in frame.columns:
                raise DataError(f"evaluate: {what} {column!r} is not in the {name} table (its columns: "
                                f"{', '.join(map(str, frame.columns))}).")


def column_texts(series: pd.Series) -> list[str | None]:
    """Texts as str; None where missing (None, NaN, or only whitespace)."""
    out = []
    for value in series.tolist():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            out.append(None)
        else:
            text = str(value)
            out.append(text if text.strip() else None)
    return out


def class_label(value) -> str | None:
    """A conditioning value as a class label: 5, 5.0 and "5" are the same class."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    return str(value).strip()


def normalize_text(text: str) -> str:
    return SPACE.sub(" ", text.lower()).strip()


def subsample(n: int, cap: int, rng) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))

"""One JSON-safety rule for everything synthtext writes as JSON (the evaluation, the audit, the report)."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping


def json_safe(value: Any, where: str = "value") -> Any:
    """A copy holding plain JSON types only: numpy scalars and arrays become Python values, NaN and
    infinities become None, paths become strings, mapping keys strings. Anything else raises TypeError
    naming ``where`` (e.g. ``report.ledger.notes[2]``)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays, without importing numpy here
        return json_safe(value.tolist(), where)
    raise TypeError(f"{where} is a {type(value).__name__}, which JSON cannot hold")

"""CSV and text out: :func:`write_csv`, :func:`write_text` and :func:`neutralize_formula`.

:func:`write_csv` writes UTF-8 without BOM, ``,`` separated, ``\\n`` line ends, no index, missing
values as empty cells, every string as-is, through :func:`~synthtext.io.atomic.atomic_output`: the file
is replaced atomically, so a reader never sees a half written file, and if writing fails the previous file
(if any) is left untouched. A symlink's target is replaced (the link stays); ``-`` means standard output,
and a character device, FIFO or socket is written through directly (replacing ``/dev/null`` or a named
pipe by a regular file would break the machine or the reader); those two cannot be atomic.

What is written reads back unchanged with :func:`~synthtext.io.read.read_csv` (see its module for the
two exceptions). Strings may not contain NUL characters (CSV readers treat such a file as binary).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from synthtext.errors import DataError

from .atomic import atomic_output
from .read import check_unique_names

# OWASP "CSV injection": spreadsheet programs treat cells starting with these as formulas.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize_formula(value: Any) -> Any:
    """Prefix ``'`` to a string a spreadsheet would run as a formula; return others as-is.

    Follows the OWASP CSV-injection guidance: cells starting with ``=``, ``+``, ``-``,
    ``@``, tab or carriage return. Note that this also changes text such as ``"-5"``.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


def write_csv(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    neutralize_formulas: bool | Iterable[Any] = False,
) -> Path:
    """Write ``df`` to ``path`` atomically (see the module docstring) and return the path.

    With ``neutralize_formulas=True`` the string cells of every text column go through
    :func:`neutralize_formula`; with a list of column names, only those columns' (the CLI passes
    the generated text columns, so that values such as ``"-1.50"`` or ``"+1 555 0100"`` in the
    other columns are written as they were read). The frame passed in is not modified; the
    neutralised cells no longer round-trip exactly.

    Raises:
        DataError: the frame has no columns, duplicate column names or NUL characters,
            text that is not encodable as UTF-8, or the location cannot be written.
    """
    target = Path(path)
    if len(df.columns) == 0:
        raise DataError(f"nothing to write to {target}: the table has no columns.")
    check_unique_names(list(df.columns), "in the table to write")
    if isinstance(neutralize_formulas, bool):
        chosen = [name for name, dtype in df.dtypes.items()
                  if neutralize_formulas and not _is_non_text_dtype(dtype)]
    else:
        chosen = [neutralize_formulas] if isinstance(neutralize_formulas, str) else list(neutralize_formulas)
    if chosen:
        unknown = [name for name in chosen if name not in df.columns]
        if unknown:
            raise DataError(f"neutralize_formulas: unknown column(s) {unknown}.")
        df = df.copy()
        for name in chosen:
            if not _is_non_text_dtype(df[name].dtype):
                df[name] = df[name].map(neutralize_formula)
    quoting = csv.QUOTE_ALL if _needs_full_quoting(df) else csv.QUOTE_MINIMAL

    try:
        with atomic_output(target) as handle:
            df.to_csv(handle, index=False, lineterminator="\n", quoting=quoting)
    except UnicodeEncodeError as exc:
        raise DataError(
            f"cannot write to {target}: the table contains text that is not valid "
            f"Unicode ({exc.reason}: {exc.object[exc.start:exc.end]!r})."
        ) from exc
    return target


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, like :func:`write_csv`; return the path."""
    target = Path(path)
    with atomic_output(target) as handle:
        handle.write(text)
    return target

def _is_non_text_dtype(dtype: Any) -> bool:
    return (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
    )


def _needs_full_quoting(df: pd.DataFrame) -> bool:
    """Whether every field must be quoted for the file to read back unchanged.

    Python's csv writer quotes a field only if it contains the separator, the quote or a
    character of the line terminator ("\\n"). But pandas' reader also ends a row at a
    bare "\\r", and skips a line holding only spaces/tabs (a one-column row like " ").
    Quoting everything is rare, so the usual output stays minimally quoted.
    Also rejects NUL characters, which the reader would cut the text at.
    """
    one_column = len(df.columns) == 1
    texts = [[str(name) for name in df.columns]]
    texts += [
        [value for value in df[name] if isinstance(value, str)]
        for name, dtype in df.dtypes.items()
        if not _is_non_text_dtype(dtype)
    ]
    needs_quoting = False
    for values in texts:
        joined = "".join(values)
        if "\x00" in joined:
            raise DataError(
                "cannot write a NUL character (\\x00) to CSV: remove it from the text first."
            )
        needs_quoting = needs_quoting or "\r" in joined
        if one_column and not needs_quoting:
            needs_quoting = any(value and not value.strip(" \t") for value in values)
    return needs_quoting

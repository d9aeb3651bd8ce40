"""Parquet in and out with pyarrow: :func:`read_parquet` and :func:`write_parquet`.

A Parquet file carries its own column types, so nothing is inferred: what :func:`write_parquet` writes,
:func:`read_parquet` gives back with the same values and the same dtypes (``assert_frame_equal`` with
``check_dtype=True``; ``tests/test_parquet.py`` pins each of these): ``int64`` and the other numpy
integer and float widths, nullable ``Int64`` with missing values, ``float64``, ``bool``, nullable
``boolean``, ``object`` text with ``None``, pandas' ``string`` dtype (python or pyarrow storage, ``pd.NA``
or ``NaN`` as its missing value), categoricals (unused categories, ordered ones, and categories that are not
text), ``datetime64`` naive and with a time zone (``Europe/Berlin``), in ns or us, and ``timedelta64``.
Three things differ from the frame that was written, as with CSV: the row index is not written (the
table reads back with ``0..n-1``), nor is ``df.attrs``, and a missing value in an ``object`` column reads
back as ``None`` (a ``NaN`` there is written as a Parquet null).

The conversion is pandas' own (``pyarrow.Table.from_pandas``, which ``DataFrame.to_parquet`` calls, and
``pandas.read_parquet(engine="pyarrow")``), whose "pandas" metadata in the file restores most dtypes.
Two it does not restore are noted in the file's ``synthtext`` metadata key and put back on reading: a
categorical's categories (Parquet keeps only the values, except for text categories, whose dictionary
it keeps while the table has rows), and the storage and missing value of a ``string`` column. A file
written by another program reads with the dtypes its pandas metadata (or, without one, its Arrow types)
give. An index stored in such a file (as
``df.to_parquet`` stores one that is not ``0..n-1``) becomes ordinary columns when its levels have
names; unnamed levels are row labels and are dropped.

The file is written through :func:`~synthtext.io.atomic.atomic_output` (binary): a reader never sees a half
written file and a failed write leaves any previous file untouched. Parquet is binary, so it cannot go to
standard output: :func:`~synthtext.io.table.write_table` writes CSV for ``-``.

Every problem a user can cause raises :class:`~synthtext.errors.DataError` with one message saying what
went wrong and what to do, as :func:`~synthtext.io.read.read_csv` does.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from synthtext.errors import DataError

from .atomic import STDOUT, atomic_output
from .read import _BINARY_SIGNATURES, check_unique_names, opening_errors
from .write import _is_non_text_dtype, neutralize_formula

PARQUET_SUFFIXES = (".parquet", ".pq")
"""File name endings read and written as Parquet (any letter case); every other path is CSV."""

MAGIC = b"PAR1"  # a Parquet file starts and ends with these four bytes
_ENCRYPTED_MAGIC = b"PARE"
_METADATA_KEY = b"synthtext"
_METADATA_VERSION = 1
_INSTALL = "Install it with: pip install pyarrow (or use a CSV file instead)."


def is_parquet_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is read and written as Parquet: its name ends in ``.parquet`` or ``.pq``."""
    return str(path) != STDOUT and Path(path).suffix.lower() in PARQUET_SUFFIXES


def _pyarrow(action: str):
    """``(pyarrow, pyarrow.parquet)``, or DataError naming the install command."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise DataError(f"{action} needs pyarrow, which is not installed. {_INSTALL}") from exc
    return pyarrow, pyarrow.parquet


def read_parquet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a Parquet file with its dtypes; see the module docstring.

    Raises:
        DataError: pyarrow is missing; the file is missing, a directory, unreadable, empty, not Parquet
            (a CSV file named ``.parquet``, say), damaged or incomplete, or has duplicate column names
            or names that are not text.
    """
    path = Path(path)
    _check_looks_like_parquet(path)
    pa, pq = _pyarrow("reading a Parquet file")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(_damaged(path, exc)) from exc
    check_unique_names(list(schema.names), f"in {path}")
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
    except ImportError as exc:  # pandas refuses a pyarrow older than it supports
        raise DataError(f"reading a Parquet file needs a newer pyarrow ({exc}). "
                        "Upgrade it with: pip install --upgrade pyarrow.") from exc
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(_damaged(path, exc)) from exc
    frame.attrs = {}  # pandas restores df.attrs from the file; a table read from CSV has none either
    frame = _index_as_columns(frame, path)
    bad = [name for name in frame.columns if not isinstance(name, str)]
    if bad:
        raise DataError(f"{path} has column names that are not text: {', '.join(map(repr, bad[:5]))}. "
                        "Rename the columns to text and write the file again.")
    check_unique_names(list(frame.columns), f"in {path}")
    notes = (schema.metadata or {}).get(_METADATA_KEY)
    if notes is not None:
        try:
            frame = _restore_dtypes(frame, notes, pa)
        except (pa.ArrowException, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DataError(f"{path}: the column types noted in its synthtext metadata cannot be restored "
                            f"({type(exc).__name__}: {exc}). The file is damaged; write it again.") from exc
    return frame


def _check_looks_like_parquet(path: Path) -> None:
    """Turn every way opening ``path`` can fail, and a file that is not Parquet, into DataError."""
    not_a_file = (f"{path} is a directory, not a Parquet file. Pass the file's path (synthtext reads one "
                  "Parquet file; combine a partitioned dataset, a directory of files, into one first).")
    with opening_errors(path, not_a_file):
        with open(path, "rb") as handle:
            head = handle.read(4096)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    if not head:
        raise DataError(f"{path} is empty (0 bytes), not a Parquet file.")
    if not head.startswith(MAGIC):
        if head.startswith(_ENCRYPTED_MAGIC):
            raise DataError(f"{path} is an encrypted Parquet file; synthtext reads unencrypted Parquet only. "
                            "Decrypt it first.")
        raise DataError(f"{path} does not look like a Parquet file: {_what_it_is(head)}")
    if size < 12 or tail != MAGIC:
        raise DataError(f"{path} is damaged or incomplete: it starts like a Parquet file but does not end with "
                        "the Parquet footer (was it cut off while being written or copied?). Write it again.")


def _what_it_is(head: bytes) -> str:
    for signature, what in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            return f"it is {what}."
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else None
    if text is not None and "\x00" not in text:
        return ("it is text (a CSV file, perhaps), and Parquet files are binary. If it is CSV, name it "
                "with a .csv ending so synthtext reads it as CSV.")
    return "it does not start with the Parquet signature 'PAR1'. Pass a Parquet file, or a CSV file named .csv."


def _damaged(path: Path, exc: BaseException) -> str:
    detail = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__  # pyarrow's may span lines
    return (f"cannot read {path} as Parquet: {detail}. The file is damaged or was not written completely; "
            "write it again.")


def _index_as_columns(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Named index levels stored in the file become columns; unnamed ones (row labels) are dropped."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame
    named = [name for name in index.names if name is not None]
    if named:
        try:
            frame = frame.reset_index(level=named)
        except ValueError as exc:
            raise DataError(f"{path} stores an index named {named[0]!r} and also a column of that name: "
                            f"{exc}. Rename one of them and write the file again.") from exc
    return frame.reset_index(drop=True)


def write_parquet(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    neutralize_formulas: bool | Iterable[Any] = False,
) -> Path:
    """Write ``df`` to ``path`` as Parquet, atomically (see the module docstring), and return the path.

    ``neutralize_formulas`` is :func:`~synthtext.io.write.write_csv`'s: ``True`` for every text column,
    or the names of the columns whose text cells go through
    :func:`~synthtext.io.write.neutralize_formula`; the columns keep their dtypes. The frame passed in is
    not modified and its index is not written.

    Raises:
        DataError: pyarrow is missing; ``path`` is ``-`` (Parquet cannot go to standard output); the
            frame has no columns, duplicate column names or names that are not text, a column that mixes
            types pyarrow cannot hold in one column, text that is not valid Unicode; or the location
            cannot be written.
    """
    if str(path) == STDOUT:
        raise DataError("cannot write Parquet to stdout ('-'): Parquet is binary. Give a file path ending "
                        "in .parquet with -o, or write CSV to stdout.")
    target = Path(path)
    if len(df.columns) == 0:
        raise DataError(f"nothing to write to {target}: the table has no columns.")
    bad = [name for name in df.columns if not isinstance(name, str)]
    if bad:
        raise DataError(f"cannot write {target} as Parquet: column names must be text, and "
                        f"{', '.join(f'{name!r} ({type(name).__name__})' for name in bad[:5])} "
                        "are not. Rename them, e.g. df.columns = [str(c) for c in df.columns].")
    check_unique_names(list(df.columns), "in the table to write")
    pa, pq = _pyarrow("writing a Parquet file")
    df = _neutralized(df, neutralize_formulas)
    if df.attrs:  # pyarrow would store them in the file (a local report path, say); CSV has no place for them
        df = df.copy(deep=False)
        df.attrs = {}
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
        notes = _dtype_notes(df, pa)
    except UnicodeEncodeError as exc:
        raise DataError(
            f"cannot write to {target}: the table contains text that is not valid "
            f"Unicode ({exc.reason}: {exc.object[exc.start:exc.end]!r})."
        ) from exc
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise DataError(
            f"cannot write {target} as Parquet: {' '.join(str(exc).split()).rstrip('.')}. A Parquet column holds values "
            "of one type: convert a column that mixes types (text and numbers, say) to one, e.g. "
            "df[name] = df[name].astype(str)."
        ) from exc
    if notes:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _METADATA_KEY: notes})
    with atomic_output(target, binary=True) as handle:
        try:
            pq.write_table(table, handle)
        except (pa.ArrowException, ValueError) as exc:  # inside: the temporary file is removed
            raise DataError(f"cannot write {target} as Parquet: {exc}.") from exc
    return target


def _neutralized(df: pd.DataFrame, neutralize_formulas: bool | Iterable[Any]) -> pd.DataFrame:
    """``df`` with the chosen text columns' cells through :func:`neutralize_formula`, dtypes kept."""
    if isinstance(neutralize_formulas, bool):
        chosen = [name for name, dtype in df.dtypes.items() if neutralize_formulas and not _is_non_text_dtype(dtype)]
    else:
        chosen = [neutralize_formulas] if isinstance(neutralize_formulas, str) else list(neutralize_formulas)
    if not chosen:
        return df
    unknown = [name for name in chosen if name not in df.columns]
    if unknown:
        raise DataError(f"neutralize_formulas: unknown column(s) {unknown}.")
    df = df.copy()
    for name in chosen:
        column = df[name]
        if _is_non_text_dtype(column.dtype):
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = [neutralize_formula(value) for value in column.cat.categories]
            if len(set(categories)) < len(categories):
                raise DataError(f"cannot neutralize formulas in column {name!r}: a category and its "
                                "neutralized form (with a leading ') are both categories.")
            df[name] = column.cat.rename_categories(categories)
        else:
            df[name] = column.map(neutralize_formula, na_action="ignore").astype(column.dtype)
    return df


# --- dtypes that pandas' metadata does not bring back, noted in the file and restored on reading ---

def _dtype_notes(df: pd.DataFrame, pa) -> bytes | None:
    categories, strings = {}, {}
    for name in df.columns:
        dtype = df[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            # text categories are also in the Parquet dictionary, but not in a file without rows
            categories[name] = {"ordered": bool(dtype.ordered), "values": _index_to_text(dtype.categories, pa)}
        elif isinstance(dtype, pd.StringDtype):
            missing = getattr(dtype, "na_value", pd.NA)
            strings[name] = {"storage": dtype.storage,
                             "na_value": "nan" if isinstance(missing, float) and math.isnan(missing) else "NA"}
    if not categories and not strings:
        return None
    return json.dumps({"version": _METADATA_VERSION, "categories": categories, "strings": strings}).encode()


def _index_to_text(values: pd.Index, pa) -> str:
    """The categories as a one-column Arrow IPC stream (pandas metadata included), base64."""
    table = pa.Table.from_pandas(pd.DataFrame({"values": values}), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def _index_from_text(text: str, pa) -> pd.Index:
    table = pa.ipc.open_stream(pa.py_buffer(base64.b64decode(text, validate=True))).read_all()
    return pd.Index(table.to_pandas()["values"]).rename(None)


def _restore_dtypes(frame: pd.DataFrame, raw: bytes, pa) -> pd.DataFrame:
    notes = json.loads(raw)
    if not isinstance(notes, dict) or notes.get("version") != _METADATA_VERSION:
        raise ValueError(f"unknown version {notes.get('version') if isinstance(notes, dict) else notes!r}")
    for name, note in notes.get("categories", {}).items():
        dtype = pd.CategoricalDtype(_index_from_text(note["values"], pa), ordered=bool(note["ordered"]))
        current = frame[name].dtype
        if not (isinstance(current, pd.CategoricalDtype) and current.ordered == dtype.ordered
                and current.categories.dtype == dtype.categories.dtype
                and current.categories.equals(dtype.categories)):
            frame[name] = frame[name].astype(dtype)
    for name, note in notes.get("strings", {}).items():
        dtype = _string_dtype(note["storage"], note["na_value"] == "nan")
        if frame[name].dtype != dtype or repr(frame[name].dtype) != repr(dtype):
            frame[name] = frame[name].astype(dtype)
    return frame


def _string_dtype(storage: str, nan_missing: bool) -> pd.StringDtype:
    if nan_missing and storage in ("python", "pyarrow"):
        try:
            import numpy as np

            return pd.StringDtype(storage, na_value=np.nan)
        except TypeError:  # pandas before 2.3 has no na_value; "pyarrow_numpy" is its NaN variant
            pass
    return pd.StringDtype(storage)

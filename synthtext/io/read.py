"""Lossless CSV in: :func:`read_csv` and the checks that turn a bad file into one clear message.

Every cell is first read as text. Nothing is guessed away:

* Only an **empty cell** is missing (``NaN``). Text such as ``NA``, ``N/A``, ``None``,
  ``null``, ``nan``, ``NaN`` or ``#N/A`` stays a string, unlike pandas' default.
  A row with fewer fields than the header is padded with missing cells; a row with
  more fields is an error.
* A UTF-8 byte order mark is removed from the first column name.
* Duplicate column names are an error (pandas would silently rename them ``a.1``).
* Cells of any length are read (pandas' C parser; the Python ``csv`` module stops at
  131,072 characters). An empty header cell gives a column named ``""``.
* Blank lines (empty or only spaces/tabs) are skipped, as pandas does; :func:`write_csv`
  never writes one (it quotes a one-column row holding only spaces).

Then, with ``infer_types=True`` (the default), a column becomes numeric **only when the
conversion is lossless**, that is when writing the number back gives exactly the text
that was read. Columns whose cells are all missing stay text columns. For the
non-missing cells of a column:

* **Integers**: every cell is an integer literal ``0`` or ``-?[1-9][0-9]*`` (no leading
  zeros, no ``+``, no spaces, no ``-0``) that fits in 64 bits. The column becomes
  ``int64``, or pandas' nullable ``Int64`` when it has missing cells.
  So ids like ``007``, zip codes like ``02139`` and ``+1`` stay strings.
* **Floats**: otherwise, every cell parses as a finite float whose shortest
  representation (``repr``, which is also what :func:`write_csv` writes) is the same
  text: ``1.5``, ``-0.25``, ``1.0`` and ``1e-07`` qualify; ``1.50``, ``1e3``, ``1,5``,
  ``.5``, ``nan`` and ``inf`` do not. The column becomes ``float64`` (missing = ``NaN``).
  A column mixing ``1`` and ``1.5`` therefore stays text (``1`` would come back as ``1.0``).
* Everything else stays text (``object`` dtype). Booleans and dates are deliberately
  **not** converted: ``TRUE``/``True``/``yes`` or ``2024-01-02``/``02/01/2024`` have many
  spellings that a parsed value could not reproduce.

Round trip: ``read_csv(write_csv(df, p))`` equals ``df`` for frames of strings, ints and
floats, with two documented exceptions: an **empty string** is written as an empty cell
and so reads back as missing, and text that looks like a number (``"12"``) reads back as
a number (use ``infer_types=False`` to get text only). The text itself always survives:
writing a frame read by :func:`read_csv` reproduces the cell values exactly.

Every problem a user can cause raises :class:`~synthtext.errors.DataError` with one
message saying what went wrong and what to do.
"""

from __future__ import annotations

import codecs
import csv
import math
import os
import re
from collections import defaultdict
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import pandas as pd

from synthtext.errors import DataError, option

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Leading bytes of files people mistake for CSV, and what to tell them.
_BINARY_SIGNATURES = {
    b"\x1f\x8b": "a gzip-compressed file; decompress it first",
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx workbook is one); "
    "export the sheet as CSV first",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook; export the sheet as CSV first",
    b"\x89PNG": "a PNG image",
    b"%PDF-": "a PDF document",
}
_SNIFF_BYTES = 8192

_ENCODING_HINT = (
    "Pass the encoding the file was saved in, e.g. " + option('encoding="cp1252"', "--encoding cp1252") + " "
    "for files exported by Excel on Windows."
)



def read_csv(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", infer_types: bool = True,
    trust_quotes: bool = False,
) -> pd.DataFrame:
    """Read a CSV file without losing anything; see the module docstring for the rules.

    ``trust_quotes=True`` skips the stray-quote check (a quoted cell spanning lines that swallows what
    reads as a whole record is an error by default), for files whose multi-line cells look like records.

    Raises:
        DataError: the file is missing, unreadable, empty, binary, not valid text in
            ``encoding``, not valid CSV, or has duplicate column names.
    """
    path = Path(path)
    _check_encoding_name(encoding)
    _check_looks_like_text(path, _read_head(path), encoding)
    try:
        # header=None: we take the names from the first row ourselves, so that duplicate
        # names can be reported instead of being mangled to "a.1". engine="c" reads
        # cells of any length; dtype=str and na_values=[""] keep every cell as text.
        raw = pd.read_csv(
            path,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding=encoding,
            engine="c",
        )
    except UnicodeDecodeError as exc:
        raise DataError(_decode_error_message(path, encoding, exc)) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            f"{path} is empty: it has only blank lines and no header row. "
            "A CSV file needs a header row with the column names."
        ) from exc
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().removeprefix("Error tokenizing data. C error: ")
        raise DataError(
            f"{path} is not valid CSV: {detail}. Check for a quote that is never closed "
            "and for rows with more fields than the header (a field containing a comma "
            'must be quoted: "a, b").'
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}.") from exc

    names = ["" if pd.isna(name) else name for name in raw.iloc[0]]
    check_unique_names(names, f"in {path}")
    if not trust_quotes and len(names) > 1 and raw.apply(lambda column: column.str.contains("\n", regex=False).any()).any():
        _check_no_swallowed_records(path, encoding, raw)
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = names
    if infer_types:
        for name in names:
            frame[name] = _infer_column(frame[name])
    return frame


_NUMBER_CELL = re.compile(r"-?\d+(?:\.\d+)?")


def _check_no_swallowed_records(path: Path, encoding: str, raw: pd.DataFrame) -> None:
    """Refuse a record that spans lines when its lines read as whole records of their own.

    One stray quote (``"Great dress`` with no closing quote) opens a cell that runs on to the next
    quote, swallowing the records in between: the file still parses, with fewer rows and a cell
    holding a newline and a whole record. Cells with newlines are legal CSV, so only records that
    span lines are checked, each physical line on its own. A line "reads as a record" when it has as
    many fields as the header and a number wherever the file's numeric columns have one (text split
    at its commas rarely does). A swallowed record in the middle is such a line; one at the end is too,
    when the first line also holds a whole record once its opening quote is taken literally (a legal
    multi-line cell's first line ends inside the cell). Without numeric columns only that second,
    stricter pattern is flagged. The ``csv`` module counts physical lines for the message."""
    n_fields = raw.shape[1]
    data = raw.iloc[1:]
    numeric = [j for j in range(n_fields) if (cells := data.iloc[:, j].dropna()).size
               and cells.str.fullmatch(_NUMBER_CELL).all()]

    def fields(line: str, quoting: int = csv.QUOTE_MINIMAL) -> list[str]:
        return next(csv.reader([line], quoting=quoting), [])

    def reads_as_record(line: str) -> bool:
        cells = fields(line)
        return len(cells) == n_fields and all(_NUMBER_CELL.fullmatch(cells[j].strip()) for j in numeric)

    previous_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # cells of any length, as pandas reads them
    try:
        with open(path, encoding=encoding, newline="") as handle:
            lines = handle.read().split("\n")
        reader, start = csv.reader(lines), 1
        for _ in reader:
            end = reader.line_num
            if end > start:
                physical = [line.rstrip("\r") for line in lines[start - 1 : end]]
                middle = [i for i, line in enumerate(physical[1:-1], start=1) if numeric and reads_as_record(line)]
                whole = len(fields(physical[0], csv.QUOTE_NONE)) >= n_fields and reads_as_record(physical[-1])
                if middle or whole:
                    where = start + (middle[0] if middle else len(physical) - 1)
                    raise DataError(
                        f"{path} line {start}: a quote opens a cell that runs on to line {end} and swallows what "
                        f"reads as a whole record (line {where}: {physical[where - start][:60]!r}). Probably a stray "
                        f"\" on line {start}: double a quote inside a cell (\"\") or quote the whole cell, then try "
                        "again. If that cell is meant to span those lines, pass "
                        + option("trust_quotes=True", "--trust-quotes") + ".")
            start = end + 1
    except csv.Error:
        return  # pandas read the file; the csv module's stricter view is not a reason to refuse it
    finally:
        csv.field_size_limit(previous_limit)


def _infer_column(column: pd.Series) -> pd.Series:
    """Return ``column`` (all text) as numbers when that loses nothing, else unchanged."""
    present = column.dropna().tolist()
    if not present:
        return column
    numbers = _parse_exactly(present, int)
    if numbers is not None:
        if not _INT64_MIN <= min(numbers) <= max(numbers) <= _INT64_MAX:
            return column
        if len(numbers) == len(column):
            return pd.Series(numbers, index=column.index, name=column.name, dtype="int64")
        # Built from Python ints, never via float64, which would round ids above 2**53.
        values = [pd.NA if pd.isna(text) else int(text) for text in column]
        return pd.Series(values, index=column.index, name=column.name, dtype="Int64")
    if _parse_exactly(present, _finite_float) is not None:
        return column.astype("float64")
    return column


def _parse_exactly(texts: list[str], parse: Callable[[str], Any]) -> list[Any] | None:
    """``parse`` every text, or None if one fails or does not print back as the same text.

    ``repr`` is how ``to_csv`` writes ints and floats, so "007", "+1", "1.50" or "1e3"
    fail here and stay text. The first failure stops the scan: text columns cost little.
    """
    values = []
    for text in texts:
        try:
            value = parse(text)
        except ValueError:
            return None
        if repr(value) != text:
            return None
        values.append(value)
    return values


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "nan" would become missing; keep "nan"/"inf" as text
        raise ValueError(text)
    return value


def _check_encoding_name(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise DataError(
            f"unknown encoding {encoding!r}. Use a Python codec name such as "
            '"utf-8", "cp1252" or "latin-1".'
        ) from exc


@contextmanager
def opening_errors(path: Path, not_a_file: str) -> Iterator[None]:
    """Every way opening ``path`` can fail, as one DataError (``not_a_file`` when it is a directory)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise DataError(f"file not found: {path}. Check the path and try again.") from exc
    except IsADirectoryError as exc:
        raise DataError(not_a_file) from exc
    except PermissionError as exc:
        if path.is_dir():  # Windows reports opening a directory as "permission denied"
            raise DataError(not_a_file) from exc
        raise DataError(f"cannot read {path}: permission denied. Check the file's permissions.") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}.") from exc


def _read_head(path: Path) -> bytes:
    """The first bytes of ``path``, turning every way opening it can fail into DataError."""
    with opening_errors(path, f"{path} is a directory, not a CSV file. Pass the file's path."):
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    if not head:
        raise DataError(
            f"{path} is empty (0 bytes). A CSV file needs a header row with the column names."
        )
    return head


def _check_looks_like_text(path: Path, head: bytes, encoding: str) -> None:
    for signature, what in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise DataError(f"{path} does not look like a CSV file: it is {what}.")
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if not wide and head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{path} looks like UTF-16 text (it starts with a UTF-16 byte order mark). "
            "Pass " + option('encoding="utf-16"', "--encoding utf-16") + "."
        )
    if not wide and b"\x00" in head:
        raise DataError(
            f"{path} does not look like a CSV file: it contains NUL bytes, so it is "
            "probably binary. Export the data as CSV text first."
        )


def _decode_error_message(path: Path, encoding: str, exc: UnicodeDecodeError) -> str:
    # pandas decodes in chunks, so exc.start is not a file offset: find the bad byte.
    data = path.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as whole:
        offset = whole.start
        line = data.count(b"\n", 0, offset) + 1
        return (
            f"{path} is not valid {encoding} text: byte 0x{data[offset]:02x} at offset "
            f"{offset} (line {line}) cannot be decoded. {_ENCODING_HINT}"
        )
    return f"{path} is not valid {encoding} text ({exc.reason}). {_ENCODING_HINT}"


def check_unique_names(names: list[Any], where: str) -> None:
    positions: dict[Any, list[int]] = defaultdict(list)
    for position, name in enumerate(names, start=1):
        positions[name].append(position)
    duplicates = [
        f"{name!r} (columns {', '.join(map(str, cols[:-1]))} and {cols[-1]})"
        for name, cols in positions.items()
        if len(cols) > 1
    ]
    if duplicates:
        raise DataError(
            f"duplicate column names {where}: {', '.join(duplicates)}. "
            "Rename them so every column has a unique name."
        )


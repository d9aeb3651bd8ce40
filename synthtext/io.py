"""Lossless CSV in, CSV out.

Reading (:func:`read_csv`)
--------------------------
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

Writing (:func:`write_csv`)
---------------------------
UTF-8 without BOM, ``,`` separated, ``\\n`` line ends, no index, missing values as empty
cells, every string as-is. The file is replaced atomically: a reader never sees a half
written file, and if writing fails the previous file (if any) is left untouched. A symlink's
target is replaced (the link stays); ``-`` means standard output, and a character device, FIFO or
socket is written through directly (replacing ``/dev/null`` or a named pipe by a regular file would
break the machine or the reader); those two cannot be atomic.

Round trip: ``read_csv(write_csv(df, p))`` equals ``df`` for frames of strings, ints and
floats, with two documented exceptions: an **empty string** is written as an empty cell
and so reads back as missing, and text that looks like a number (``"12"``) reads back as
a number (use ``infer_types=False`` to get text only). The text itself always survives:
writing a frame read by :func:`read_csv` reproduces the cell values exactly. Strings may
not contain NUL characters (CSV readers treat such a file as binary).

Every problem a user can cause raises :class:`~synthtext.errors.DataError` with one
message saying what went wrong and what to do.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import io
import math
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

import pandas as pd

from synthtext.errors import DataError, option

__all__ = ["read_csv", "write_csv", "write_text", "neutralize_formula", "check_writable", "output_kind", "STDOUT"]

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

# OWASP "CSV injection": spreadsheet programs treat cells starting with these as formulas.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

_ENCODING_HINT = (
    "Pass the encoding the file was saved in, e.g. " + option('encoding="cp1252"', "--encoding cp1252") + " "
    "for files exported by Excel on Windows."
)


# --------------------------------------------------------------------------- reading


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
    _check_unique_names(names, f"in {path}")
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


def _read_head(path: Path) -> bytes:
    """The first bytes of ``path``, turning every way opening it can fail into DataError."""
    not_a_file = f"{path} is a directory, not a CSV file. Pass the file's path."
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except FileNotFoundError as exc:
        raise DataError(f"file not found: {path}. Check the path and try again.") from exc
    except IsADirectoryError as exc:
        raise DataError(not_a_file) from exc
    except PermissionError as exc:
        if path.is_dir():  # Windows reports opening a directory as "permission denied"
            raise DataError(not_a_file) from exc
        raise DataError(
            f"cannot read {path}: permission denied. Check the file's permissions."
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}.") from exc
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


def _check_unique_names(names: list[Any], where: str) -> None:
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


# --------------------------------------------------------------------------- writing


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
    _check_unique_names(list(df.columns), "in the table to write")
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


STDOUT = "-"
"""The output path that means standard output (``-o -``)."""


def output_kind(path: str | os.PathLike[str]) -> str:
    """How :func:`atomic_output` writes ``path``: ``"stdout"`` for ``-``; ``"stream"`` for a character
    device, FIFO or socket (``/dev/null``, a named pipe), written through directly since replacing it
    by a regular file would break whoever reads it; else ``"file"``, replaced atomically (through a
    symlink: the link stays and its target is replaced)."""
    if str(path) == STDOUT:
        return "stdout"
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except OSError:
        return "file"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "stream"
    return "file"


def _resolved(path: str | os.PathLike[str]) -> Path:
    """``path`` with symlinks resolved, so a rename replaces the link's target, not the link."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # realpath would hand back a point in the loop, to be replaced
            raise DataError(f"cannot write to {path}: its symbolic links form a loop. Fix the links or choose "
                            "another output path.") from exc
    return Path(os.path.realpath(path))


def _stdout_fd() -> int:
    """Standard output's file descriptor, or DataError when there is none (closed: ``>&-``)."""
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError) as exc:
        if sys.stdout is not None and hasattr(sys.stdout, "write") and not hasattr(sys.stdout, "buffer"):
            return -1  # a text-only stand-in (io.StringIO in tests): writable all the same
        raise DataError("cannot write to stdout ('-'): standard output is closed. Give a file path with -o.") from exc


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A UTF-8 text handle whose content replaces ``path`` only if the block succeeds.

    The handle writes to a temporary file in the target's directory, which is flushed, fsynced and
    renamed over the target at the end; on any error it is removed and the target is untouched.
    A symlink is followed (its target is replaced). ``-`` writes to standard output and a character
    device, FIFO or socket is written directly (see :func:`output_kind`): those cannot be atomic.
    An unwritable location raises :class:`DataError` before anything is written.
    """
    kind = output_kind(path)
    if kind == "stdout":
        with _stdout_handle() as handle:
            yield handle
        return
    target = _resolved(path)
    if kind == "stream":
        with _stream_handle(target) as handle:
            yield handle
        return
    directory = _check_target(target)
    try:
        mode = _new_file_mode(target)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".synthtext-", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write to {path}: {exc.strerror or exc}.") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise DataError(f"cannot write to {path}: {exc.strerror or exc}.") from exc
        raise
    fsync_directory(directory)


@contextlib.contextmanager
def _stdout_handle() -> Iterator[TextIO]:
    """UTF-8, untranslated line ends, on standard output (left open)."""
    _stdout_fd()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stand-in (e.g. io.StringIO): write to it as it is
        yield sys.stdout
        sys.stdout.flush()
        return
    sys.stdout.flush()
    handle = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    try:
        yield handle
        handle.flush()
    except BrokenPipeError:
        raise  # the reader left (`| head`): the CLI exits as for SIGPIPE
    except OSError as exc:
        raise DataError(f"cannot write to stdout: {exc.strerror or exc}.") from exc
    finally:
        with contextlib.suppress(ValueError, OSError):
            handle.detach()  # leaves sys.stdout's buffer open


@contextlib.contextmanager
def _stream_handle(target: Path) -> Iterator[TextIO]:
    """Write straight into a device, FIFO (blocks until a reader opens it) or listening socket."""
    try:
        if stat.S_ISSOCK(os.stat(target).st_mode):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(str(target))
            handle = connection.makefile("w", encoding="utf-8", newline="")
            connection.close()  # the file object keeps the connection open until it is closed
        else:
            handle = open(target, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise DataError(f"cannot write to {target}: {exc.strerror or exc}.") from exc
    try:
        with handle:
            yield handle
    except OSError as exc:
        raise DataError(f"cannot write to {target}: {exc.strerror or exc}.") from exc


def _check_target(target: Path) -> Path:
    """The directory ``target`` will be written in, or DataError when it cannot be a file there."""
    directory = target.parent
    if not directory.is_dir():
        raise DataError(
            f"cannot write to {target}: directory {directory} does not exist. "
            "Create it first or choose another output path."
        )
    if target.is_dir():
        raise DataError(f"cannot write to {target}: it is a directory. Give a file name.")
    return directory


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`DataError` now if :func:`write_csv` / :func:`write_text` could not write
    ``path``: call it before hours of work, not after. Creates and removes a temporary file next
    to ``path`` (the only portable test: mode bits say nothing to root or about read-only mounts);
    ``path`` itself is not touched, nor opened when it is a device, FIFO or socket (opening a FIFO
    would wait for, or take, its reader). Returns ``path`` as a Path.
    """
    kind = output_kind(path)
    if kind == "stdout":
        _stdout_fd()
        return Path(path)
    target = _resolved(path)
    if kind == "stream":
        if not os.access(target, os.W_OK):
            raise DataError(f"cannot write to {path}: permission denied.")
        return Path(path)
    directory = _check_target(target)
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".synthtext-", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write to {path}: {exc.strerror or exc}.") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(temp)
    return Path(path)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, replace: bool = False,
                     prefix: str | None = None) -> Iterator[Path]:
    """A staging directory next to ``target`` that becomes ``target`` with one rename if the block succeeds.

    At the end every file in it is fsynced and the directory gets the mode of any new directory (mkdtemp
    makes it 0700); on any error (Ctrl-C and SIGTERM included) it is removed and ``target`` is untouched.
    ``replace=True`` removes an existing ``target`` just before the rename. Used by the saved synthesizer
    and the report, so both leave all of a directory or none of it.
    """
    target = Path(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=prefix or f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror or exc} in {target.parent}.") from exc
    try:
        yield staging
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        os.chmod(staging, 0o777 & ~current_umask())
        if replace and target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise DataError(f"cannot write {target}: {exc.strerror or exc}.") from exc
        raise
    fsync_directory(target.parent)


def _new_file_mode(target: Path) -> int:
    """Permissions for the new file: the old file's, else what open() would give.

    mkstemp creates files readable by their owner only (0600).
    """
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(target).st_mode)
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask (also used by the report writer for its directories)."""
    mask = os.umask(0o022)  # the only portable way to read the umask is to set it
    os.umask(mask)
    return mask


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable; not possible on every platform (e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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

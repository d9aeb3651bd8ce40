"""Row <-> prompt encoding: pure functions, no torch, no tokenizer.

The language model learns ``P(text | row)``. Each training example is a *prompt* built from the row's
conditioning columns and the name of the text column to write, followed by a *target*: the text.
The training stage appends the tokenizer's end-of-sequence token to the target and computes the loss
on the target only; at generation time the model continues the prompt until it emits that token.

Format (version 1)
------------------
::

    Rating: 5 | Department Name: Dresses | Age: 34 | Recommended IND: 1
    Review Text:
    Love this dress! It fits perfectly.

* **Line 1, the conditions**: ``name: value`` pairs in the order of the conditioning columns, joined
  by ``" | "``. Column names are written as ``str(column)`` so the model knows what each value is. A row
  with no conditioning columns has an empty first line.
* **Line 2, the text column**: its name followed by ``":"``. With several text columns one model serves
  them all: it writes one text column at a time and the name on this line says which (``Title:`` or
  ``Review Text:``). Other text columns are *not* part of the conditions unless the caller lists them
  among the conditioning columns.
* **Then the target**: the text itself, raw (newlines and all), never escaped. The prompt ends with
  ``"\\n"``, which every tokenizer treats as a boundary, so tokenizing prompt and target separately or
  together gives the same split.

Values (:func:`format_value`), stable across runs and platforms:

* **missing** (``None``, ``NaN``, ``pd.NA``, ``NaT``): the token :data:`MISSING` (``<missing>``); the
  string ``"NA"`` is a legitimate value and stays ``NA``.
* **booleans**: ``true`` / ``false``. **Integers**: decimal digits (``-12``).
* **floats**: whole numbers below 1e16 are written as integers (``34.0`` -> ``34``); others keep
  ``float_digits`` (default 4) significant digits, never dropping integer digits and without trailing
  zeros (``19.99``, ``0.3333``, ``12345.6`` -> ``12346``); magnitudes below 1e-4 or from 1e16 use
  scientific notation (``2.5e-07``); ``inf`` / ``-inf``. Floats are the one lossy case: decoding gives
  back the text that was encoded, not the float.
* **dates and times**: ISO 8601; a timestamp at midnight without a time zone is written as its date
  (``2024-01-02``), others as ``2024-01-02 13:45:00``.
* **strings** as they are; anything else as ``str(value)``.

Escaping keeps decoding exact (:func:`decode_conditions` inverts :func:`encode_conditions`): in names
and values a backslash becomes ``\\\\``, ``|`` becomes ``\\|``, a newline ``\\n`` and a carriage return
``\\r``; in names ``:`` becomes ``\\:``; a value that *is* the string ``<missing>`` is written
``\\<missing>``. Decoding reads ``\\n`` and ``\\r`` as newline and carriage return and ``\\`` followed by
any other character as that character.

Missing text
------------
A row whose text is missing is trained on the target :data:`MISSING`, so the model learns how likely a
missing text is *given the row*, under the same DP guarantee as the text (no separate statistic is taken
from the data). :func:`encode_text` / :func:`decode_text` map a missing text to and from the marker; a
real text that looks like the marker gets a leading backslash. The check ignores case and white space,
so a marker mangled by a tokenizer's decoding (``< missing >`` from an uncased WordPiece vocabulary)
still reads as missing.

Privacy note: with several text columns one row yields one example per text column. The privacy unit is
the row, so the training stage must treat a row's examples as one unit (:meth:`PromptFormat.examples`
groups them by row).
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError

FORMAT_VERSION = 1
MISSING = "<missing>"
FIELD_SEPARATOR = " | "
KEY_SEPARATOR = ": "
DEFAULT_FLOAT_DIGITS = 4
PROMPT_STYLES = ("plain", "instruction")

_ESCAPES = {"\\": "\\\\", "|": "\\|", "\n": "\\n", "\r": "\\r"}
_KEY_ESCAPES = {**_ESCAPES, ":": "\\:"}
_UNESCAPES = {"n": "\n", "r": "\r"}
_WHITESPACE = re.compile(r"\s+")


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------


def is_missing(value: Any) -> bool:
    """True for ``None``, ``NaN``, ``pd.NA`` and ``NaT`` (not for the string ``"NA"``)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(pd.api.types.is_scalar(value) and pd.isna(value))
    except (TypeError, ValueError):
        return False


def _format_float(x: float, digits: int) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"  # also -0.0
    magnitude = abs(x)
    if magnitude >= 1e16 or magnitude < 1e-4:
        return format(x, f".{digits}g")
    if x.is_integer():
        return str(int(x))
    if magnitude >= 10 ** (digits - 1):  # keep every integer digit: 12345.6 -> 12346
        return str(int(round(x)))
    return np.format_float_positional(x, precision=digits, unique=False, fractional=False, trim="-")


def _format_timestamp(ts: pd.Timestamp) -> str:
    if ts.tz is None and ts == ts.normalize():
        return ts.date().isoformat()
    return ts.isoformat(sep=" ")


def format_value(value: Any, float_digits: int = DEFAULT_FLOAT_DIGITS) -> str | None:
    """The text a value is written as in a prompt (unescaped), or ``None`` when it is missing."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return _format_float(float(value), float_digits)
    if isinstance(value, (pd.Timestamp, _dt.datetime, np.datetime64)):
        return _format_timestamp(pd.Timestamp(value))
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def _escape(text: str, table: Mapping[str, str]) -> str:
    return "".join(table.get(ch, ch) for ch in text)


def escape_value(text: str | None) -> str:
    """A formatted value as written in the conditions line (``None`` -> :data:`MISSING`)."""
    if text is None:
        return MISSING
    escaped = _escape(text, _ESCAPES)
    return "\\" + escaped if escaped == MISSING else escaped


def escape_key(column: Any) -> str:
    """A column name as written in a prompt."""
    return _escape(str(column), _KEY_ESCAPES)


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 == len(text):
                raise DataError(f"malformed prompt: dangling backslash at the end of {text!r}.")
            out.append(_UNESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _split_unescaped(text: str, delimiter: str, maxsplit: int = -1) -> list[str]:
    """Split ``text`` (still escaped) at the single-character ``delimiter`` where it is not escaped."""
    pieces, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == delimiter and maxsplit != 0:
            pieces.append(text[start:i])
            start = i + 1
            maxsplit -= 1
        i += 1
    pieces.append(text[start:])
    return pieces


# --------------------------------------------------------------------------------------------------
# Conditions and prompts
# --------------------------------------------------------------------------------------------------


def _cell(row: Mapping, column: Any) -> Any:
    try:
        return row[column]
    except (KeyError, IndexError) as exc:
        raise DataError(f"the row has no column {column!r}.") from exc


def encode_conditions(row: Mapping, columns: Sequence, *,
                      float_digits: int = DEFAULT_FLOAT_DIGITS) -> str:
    """The conditions line for ``row`` (a dict or a ``pd.Series``): ``name: value | name: value``."""
    return FIELD_SEPARATOR.join(
        escape_key(column) + KEY_SEPARATOR + escape_value(format_value(_cell(row, column), float_digits))
        for column in columns)


def decode_conditions(line: str) -> dict[str, str | None]:
    """Invert :func:`encode_conditions`: ``{name: formatted value}``, ``None`` for a missing value.

    Names come back as strings (``str(column)``) and values as the text :func:`format_value` wrote.
    """
    if line == "":
        return {}
    segments = _split_unescaped(line, "|")
    out: dict[str, str | None] = {}
    for i, segment in enumerate(segments):
        # the separator " | " owns one space on each side of the bar
        if i > 0:
            if not segment.startswith(" "):
                raise DataError(f"malformed conditions line: expected ' | ' before field {i + 1}.")
            segment = segment[1:]
        if i < len(segments) - 1:
            if not segment.endswith(" "):
                raise DataError(f"malformed conditions line: expected ' | ' after field {i + 1}.")
            segment = segment[:-1]
        parts = _split_unescaped(segment, ":", maxsplit=1)
        if len(parts) != 2 or not parts[1].startswith(" "):
            raise DataError(f"malformed conditions line: field {i + 1} has no 'name: value'.")
        out[_unescape(parts[0])] = decode_value(parts[1][1:])
    return out


def decode_value(written: str) -> str | None:
    """Invert :func:`escape_value`: the formatted value, ``None`` for :data:`MISSING`.

    Raises DataError on a dangling backslash."""
    return None if written == MISSING else _unescape(written)


def split_field(written: str) -> tuple[str, bool]:
    """What a model wrote after ``name:`` up to where the field ends: the escaped value (without the
    space after the colon or the separator's own space) and whether the separator ``|`` ended it (a
    raw newline also ends it, without a separator)."""
    line = written.split("\n", 1)[0].split("\r", 1)[0]
    pieces = _split_unescaped(line, "|", maxsplit=1)
    value = pieces[0][1:] if pieces[0].startswith(" ") else pieces[0]
    ended = len(pieces) == 2
    if ended and value.endswith(" "):
        value = value[:-1]
    return value, ended


def _ends_escaped(text: str) -> bool:
    """True when the last character of ``text`` is an escaping backslash."""
    run = len(text) - len(text.rstrip("\\"))
    return run % 2 == 1


def build_prompt(row: Mapping, conditioning_columns: Sequence, text_column: Any, *,
                 float_digits: int = DEFAULT_FLOAT_DIGITS) -> str:
    """The prompt that asks for ``text_column`` of ``row``: conditions line, text column line."""
    conditions = encode_conditions(row, conditioning_columns, float_digits=float_digits)
    return f"{conditions}\n{escape_key(text_column)}:\n"


def instruction_prompt(row: Mapping, conditioning_columns: Sequence, text_column: Any, *,
                       float_digits: int = DEFAULT_FLOAT_DIGITS) -> str:
    """The prompt in words, for an instruction-tuned model (wrapped in its chat template when encoded)::

        Write a review text.
        Rating: 5
        Department Name: Dresses

    The column names and the row's values, one per line (escaped as on the conditions line): measured
    on SmolLM2-135M-Instruct, this is the wording that made it write a review at all (docs/training.md)."""
    name = " ".join(str(text_column).replace("_", " ").split()).lower() or "text"
    article = "an" if name[0] in "aeiou" else "a"
    lines = [f"Write {article} {name}."]
    for column in conditioning_columns:
        value = escape_value(format_value(_cell(row, column), float_digits))
        lines.append(f"{escape_key(column)}{KEY_SEPARATOR}{value}")
    return "\n".join(lines)


def parse_prompt(prompt: str) -> tuple[dict[str, str | None], str]:
    """Invert :func:`build_prompt`: ``(conditions, text column name)``."""
    if not prompt.endswith(":\n") or prompt.count("\n") < 2:
        raise DataError("malformed prompt: expected a conditions line, then 'text column:' and a newline.")
    conditions, header = prompt[:-2].split("\n", 1)
    if "\n" in header or _ends_escaped(header):
        raise DataError("malformed prompt: the text column line is not a column name.")
    return decode_conditions(conditions), _unescape(header)


# --------------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------------


def _squash(text: str) -> str:
    return _WHITESPACE.sub("", text).casefold()


def encode_text(value: Any) -> str:
    """The training target for a text cell: the text, or :data:`MISSING` when the cell is missing.

    A real text that reads like the marker (ignoring case, white space and leading backslashes) gets
    one more leading backslash, so :func:`decode_text` can tell the two apart.
    """
    if is_missing(value):
        return MISSING
    text = str(value)
    return "\\" + text if _squash(text).lstrip("\\") == MISSING else text


def decode_text(text: str) -> str | None:
    """Invert :func:`encode_text`: ``None`` for the missing marker (any case or spacing)."""
    squashed = _squash(text)
    if squashed == MISSING:
        return None
    if text.startswith("\\") and squashed.lstrip("\\") == MISSING:
        return text[1:]
    return text


def build_example(row: Mapping, conditioning_columns: Sequence, text_column: Any, *,
                  float_digits: int = DEFAULT_FLOAT_DIGITS) -> tuple[str, str]:
    """``(prompt, target)`` for one text cell. The target carries no end marker: the training
    stage appends the tokenizer's end-of-sequence token."""
    prompt = build_prompt(row, conditioning_columns, text_column, float_digits=float_digits)
    return prompt, encode_text(_cell(row, text_column))


def split_generated(generated: str, end_markers: Iterable[str] = ()) -> str | None:
    """The cell value for what the model wrote after a prompt.

    Cuts at the first of ``end_markers`` (e.g. the tokenizer's EOS text, in case decoding kept it)
    and maps the missing marker back to ``None``.
    """
    cut = len(generated)
    for marker in end_markers:
        if marker:
            index = generated.find(marker)
            if index != -1:
                cut = min(cut, index)
    return decode_text(generated[:cut])


# --------------------------------------------------------------------------------------------------
# The format as one object
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptFormat:
    """Which columns condition the text and which are generated, and how values are written.

    ``conditioning_columns``: the columns on the conditions line, in this order (the pipeline's default
    is every column that is neither text nor PII). ``text_columns``: the columns the model writes, one
    per example. ``float_digits``: significant digits kept for floats.
    """

    conditioning_columns: tuple = ()
    text_columns: tuple = ()
    float_digits: int = DEFAULT_FLOAT_DIGITS
    style: str = "plain"
    """"plain": the conditions line and the text column line (:func:`build_prompt`; the built-in model
    and models without a chat template); "instruction": the request in words (:func:`instruction_prompt`),
    for instruction-tuned models, whose chat template then wraps it."""

    def __post_init__(self):
        if self.style not in PROMPT_STYLES:
            raise ConfigError(f"style: must be one of {PROMPT_STYLES}, got {self.style!r}.")
        object.__setattr__(self, "conditioning_columns", tuple(self.conditioning_columns))
        object.__setattr__(self, "text_columns", tuple(self.text_columns))
        if not self.text_columns:
            raise ConfigError("text_columns: give at least one text column to generate.")
        for name in ("conditioning_columns", "text_columns"):
            columns = getattr(self, name)
            keys = [str(c) for c in columns]
            duplicates = sorted({k for k in keys if keys.count(k) > 1})
            if duplicates:
                raise ConfigError(f"{name}: column names must be distinct, got {duplicates} twice.")
        both = set(map(str, self.conditioning_columns)) & set(map(str, self.text_columns))
        if both:
            raise ConfigError(f"conditioning_columns: {sorted(both)} are also text columns; a column "
                              "cannot condition its own text.")
        if (isinstance(self.float_digits, bool) or not isinstance(self.float_digits, int)
                or not 1 <= self.float_digits <= 17):
            raise ConfigError(f"float_digits: must be an integer from 1 to 17, got {self.float_digits!r}.")

    def _check_text_column(self, text_column):
        if text_column not in self.text_columns:
            raise ConfigError(f"text_column: {text_column!r} is not one of the text columns "
                              f"{list(self.text_columns)}.")

    def prompt(self, row: Mapping, text_column: Any) -> str:
        self._check_text_column(text_column)
        build = instruction_prompt if self.style == "instruction" else build_prompt
        return build(row, self.conditioning_columns, text_column, float_digits=self.float_digits)

    def example(self, row: Mapping, text_column: Any) -> tuple[str, str]:
        self._check_text_column(text_column)
        return self.prompt(row, text_column), encode_text(_cell(row, text_column))

    def row_examples(self, row: Mapping) -> list[tuple[str, str]]:
        """One ``(prompt, target)`` per text column, in the order of ``text_columns``."""
        return [self.example(row, column) for column in self.text_columns]

    def examples(self, df: pd.DataFrame) -> list[list[tuple[str, str]]]:
        """The examples of every row of ``df``, grouped by row (the privacy unit)."""
        missing = [c for c in (*self.conditioning_columns, *self.text_columns) if c not in df.columns]
        if missing:
            raise DataError(f"the table has no column(s) {missing}; it has {list(df.columns)}.")
        return [self.row_examples(row) for _, row in df.iterrows()]

    def to_dict(self) -> dict:
        """JSON-ready description, saved next to a model."""
        return {"format_version": FORMAT_VERSION,
                "conditioning_columns": [str(c) for c in self.conditioning_columns],
                "text_columns": [str(c) for c in self.text_columns],
                "float_digits": self.float_digits, "missing": MISSING,
                "field_separator": FIELD_SEPARATOR, "style": self.style}

    @classmethod
    def from_dict(cls, data: Mapping) -> "PromptFormat":
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ConfigError(f"format_version: this synthtext reads prompt format {FORMAT_VERSION}, "
                              f"got {version!r}; use the synthtext version that saved the model.")
        return cls(conditioning_columns=tuple(data["conditioning_columns"]),
                   text_columns=tuple(data["text_columns"]),
                   float_digits=int(data.get("float_digits", DEFAULT_FLOAT_DIGITS)),
                   style=str(data.get("style", "plain")))


__all__ = [
    "FORMAT_VERSION", "MISSING", "PromptFormat", "build_example", "build_prompt", "decode_conditions",
    "decode_text", "decode_value", "encode_conditions", "encode_text", "escape_key", "escape_value", "format_value",
    "instruction_prompt", "is_missing", "parse_prompt", "split_field", "split_generated",
]

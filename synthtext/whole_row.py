"""The whole row under one DP guarantee (``structured="dp"``): one language model learns every column but
the PII columns, as one sequence per row, and writes whole rows.

The training record is a fixed request naming the columns (public: the schema) followed by the row on one
line in the conditions format of :mod:`synthtext.prompts`, the text columns last::

    Write one row of a table with the columns Rating, Department Name, Age, Review Text.
    -> Rating: 5 | Department Name: Dresses | Age: 34 | Review Text: Love this dress!\\nIt fits.

with the loss on the whole line (the request is the same for every row and carries no loss), so sampling
after the request yields a whole row, and :func:`synthtext.prompts.decode_conditions` reads it back.
Generated values are parsed by the column's dtype (:func:`parse_value`); a row that does not parse is
drawn again, at most ``max_tries`` times in all, and what still fails is left missing and counted.
Nothing about a column's domain is read from the real data: the categories are whatever the DP model
writes, and numbers are not clipped to a real minimum or maximum.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Mapping, Sequence

import pandas as pd

from . import prompts as prompt_format
from .errors import DataError, ModelError

MAX_TRIES = 3
"""Draws per row before a row that does not parse is given up (its unreadable cells stay missing)."""

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE, _FALSE = "true", "false"


def row_columns(conditioning: Sequence, text_columns: Sequence) -> list:
    """The sequence's column order: the structured columns (those the caller conditions on first), then the
    texts, so that a text follows every value it may depend on."""
    return [*conditioning, *text_columns]


def row_request(columns: Sequence, style: str) -> str:
    """The fixed request before every row: the column names only (the schema is public). An instruction
    model gets it as the user's turn; the others on a line of its own."""
    names = ", ".join(" ".join(str(c).replace("_", " ").split()) for c in columns)
    request = f"Write one row of a table with the columns {names}."
    return request if style == "instruction" else request + "\n"


def encode_rows(tokenizer: Any, max_length: int, records: Sequence[Mapping], columns: Sequence, style: str,
                float_digits: int = prompt_format.DEFAULT_FLOAT_DIGITS):
    """The training records: the request, then the row's line (the loss on all of the line)."""
    from .models import encode_examples

    request = row_request(columns, style)
    lines = [row_line(row, columns, float_digits) for row in records]
    return encode_examples(tokenizer, [request] * len(lines), lines, max_length=max_length)


def row_line(row: Mapping, columns: Sequence, float_digits: int = prompt_format.DEFAULT_FLOAT_DIGITS) -> str:
    """The training target: the row's values on one line (texts as :func:`prompt_format.encode_text` writes
    them, so a missing text is the missing marker and a text reading like it is escaped)."""
    cells = {c: (prompt_format.encode_text(row[c]) if isinstance(row[c], str) else row[c]) for c in columns}
    return prompt_format.encode_conditions(cells, columns, float_digits=float_digits)


def parse_value(text: str | None, dtype: Any) -> Any:
    """One generated cell as a value of ``dtype``; ``None`` for the missing marker.

    Raises ValueError when the text is not a value of that dtype (the row is then drawn again)."""
    if text is None:
        return None
    if pd.api.types.is_bool_dtype(dtype):
        if text not in (_TRUE, _FALSE):
            raise ValueError(f"not a boolean: {text!r}")
        return text == _TRUE
    if pd.api.types.is_integer_dtype(dtype):
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"not an integer: {text!r}")
        return int(text)
    if pd.api.types.is_float_dtype(dtype):
        return float(text)  # ValueError when it is not a number
    if pd.api.types.is_datetime64_any_dtype(dtype):
        value = pd.Timestamp(text)  # ValueError when it is not a date
        if pd.isna(value):
            raise ValueError(f"not a date: {text!r}")
        tz = getattr(dtype, "tz", None)
        if tz is not None:
            value = value.tz_localize(tz) if value.tz is None else value.tz_convert(tz)
        elif value.tz is not None:
            raise ValueError(f"a time zone where the column has none: {text!r}")
        return value
    if isinstance(dtype, pd.CategoricalDtype):
        return prompt_format.decode_text(text)
    return text


def parse_row(generated: str, columns: Sequence, dtypes: Mapping, text_columns: Sequence) -> dict | None:
    """The row a model wrote after :func:`row_request`, or None when it does not read as one row of these
    columns in this order with a value of each column's dtype."""
    line = generated.strip("\n")
    try:
        cells = prompt_format.decode_conditions(line)
    except DataError:
        return None
    if list(cells) != [str(c) for c in columns]:
        return None
    out = {}
    for column in columns:
        text = cells[str(column)]
        try:
            if column in text_columns:
                out[column] = None if text is None else prompt_format.decode_text(text)
            else:
                out[column] = parse_value(text, dtypes[column])
        except (ValueError, TypeError, OverflowError):
            return None
    return out


def sample_rows(trained: Any, columns: Sequence, text_columns: Sequence, dtypes: Mapping, n: int, sampling: Any,
                style: str, float_digits: int = prompt_format.DEFAULT_FLOAT_DIGITS,
                max_tries: int = MAX_TRIES, given: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """``n`` whole rows from the model (``given``: rows of the leading columns to continue instead, one
    synthetic row per given row). Returns the rows (columns in ``columns`` order) and the counts behind the
    report's rejection rate: ``{"rows", "draws", "rejected", "unparsed"}``."""
    from .generate import generate_texts

    request = row_request(columns, style)
    prefixes = [""] * n
    if given is not None:
        lead = [str(c) for c in given.columns]
        if lead != [str(c) for c in columns[: len(lead)]]:
            raise DataError(f"with structured='dp' the model writes the columns in the order {list(columns)}; "
                            f"conditions can give the first of them, in that order, not {lead}.")
        prefixes = [row_line(row, list(given.columns), float_digits) + prompt_format.FIELD_SEPARATOR
                    for row in given.to_dict("records")]
    rows: list[dict | None] = [None] * n
    todo = list(range(n))
    draws = rejected = 0
    for attempt in range(max_tries):
        if not todo:
            break
        seed = None if sampling.seed is None else sampling.seed + attempt
        texts = generate_texts(trained, [request] * len(todo), replace(sampling, seed=seed),
                               starts=[prefixes[i] for i in todo])
        draws += len(todo)
        left = []
        for i, text in zip(todo, texts):
            row = parse_row(prefixes[i] + text, columns, dtypes, text_columns)
            if row is None:
                left.append(i)
            else:
                rows[i] = row
        rejected += len(left)
        todo = left
    if todo and len(todo) == n:
        raise ModelError(f"the model wrote no readable row of this table: none of {n} rows parsed in {max_tries} "
                         "draws each (a row is the columns in order, 'name: value | ...', each value of its "
                         "column's type). Train on more rows or for more epochs, or use structured='sdv'.")
    out = pd.DataFrame([r if r is not None else {} for r in rows], columns=list(columns))
    if given is not None:  # the given values as given, not as re-read from the line
        for column in given.columns:
            out[column] = given[column].to_numpy()
    return out, {"rows": n, "draws": draws, "rejected": rejected, "unparsed": len(todo), "max_tries": max_tries}


def restore_dtypes(frame: pd.DataFrame, dtypes: Mapping) -> pd.DataFrame:
    """The parsed rows in the input's dtypes where values allow; categoricals take the categories the model
    wrote (never the real data's list)."""
    out = frame.copy()
    for column in frame.columns:
        dtype = dtypes[column]
        if out[column].dtype == dtype:
            continue
        if isinstance(dtype, pd.CategoricalDtype):
            out[column] = out[column].astype("category")
            continue
        try:
            out[column] = out[column].astype(dtype)
        except (TypeError, ValueError):
            if pd.api.types.is_integer_dtype(dtype):  # missing values in an int64 column: nullable Int64
                out[column] = out[column].astype("Int64")
    return out


__all__ = ["MAX_TRIES", "encode_rows", "parse_row", "parse_value", "restore_dtypes", "row_columns", "row_line", "row_request",
           "sample_rows"]

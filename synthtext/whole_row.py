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
writes, and numbers are not clipped to a real minimum or maximum. The user may declare a column's
domain public (``public_domains={"Age": (18, 99), "Department Name": ["Dresses", "Tops"]}``): a row whose
value falls outside it is drawn again, and the report names the declared columns.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import prompts as prompt_format
from .errors import DataError, ModelError

MAX_TRIES = 3
"""Draws per value before it is given up (the cell stays missing)."""

VALUE_TOKENS = 32
"""New tokens for one structured value (a setting, not read from the data): a value the model has not
ended with the field separator by then is drawn again."""

UNIT_ROW_SEPARATOR = "\n"
"""Between the rows of one unit's sequence."""

VALUE_STOP = prompt_format.FIELD_SEPARATOR.strip() + "\n"
"""Where decoding a value may stop: at the token holding the separator's bar, or a newline (EOS always
ends it). A value holding an escaped bar stops there too and decoding goes on from it
(:data:`ESCAPED_BAR_CONTINUATIONS`). The row's last column stops there as well: a value is cut at its
first unescaped bar or raw newline in any case, and a DP model that has not learnt where a row ends went
on writing invented fields after the text until its token budget (on the 161-unit model of
docs/privacy_unit.md 11 of the first 20 texts did, and the text calls took 71% of the sampling time)."""

UNIT_FIRST_ROUND = 64
"""Units drawn in the first round of :func:`sample_units`, before the model's rows per unit are known."""

UNIT_MARGIN = 1.25
"""Later rounds draw this many times the units the rows still needed take at the rows per unit so far (and
one more): a short round costs as many decoding calls as a long one."""

ESCAPED_BAR_CONTINUATIONS = 4
"""How many escaped bars one structured value may hold: decoding stops at each, then goes on."""

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE, _FALSE = "true", "false"


def row_columns(conditioning: Sequence, text_columns: Sequence) -> list:
    """The sequence's column order: the structured columns (those the caller conditions on first), then the
    texts, so that a text follows every value it may depend on."""
    return [*conditioning, *text_columns]


def row_request(columns: Sequence, style: str) -> str:
    """The fixed request before every row: the column names only (the schema is public). An instruction
    model gets it as the user's turn; the others on a line of its own."""
    names = ", ".join(_words(c) for c in columns)
    request = f"Write one row of a table with the columns {names}."
    return request if style == "instruction" else request + "\n"


def unit_request(columns: Sequence, style: str, unit: str, max_rows: int) -> str:
    """The fixed request before every unit (``privacy_unit``): the column names, the unit column's name and
    the row cap (all public settings)."""
    names = ", ".join(_words(c) for c in columns)
    request = f"Write up to {max_rows} rows of one {_words(unit)}, one per line, with the columns {names}."
    return request if style == "instruction" else request + "\n"


def _words(name: Any) -> str:
    return " ".join(str(name).replace("_", " ").split())


def encode_units(tokenizer: Any, max_length: int, units: Sequence[Sequence[Mapping]], columns: Sequence, style: str,
                 unit: str, max_rows: int, float_digits: int = prompt_format.DEFAULT_FLOAT_DIGITS):
    """One training record per unit: the request, then the unit's rows, one line each (a line never holds a
    newline: texts are escaped), the loss on all of them."""
    from .models import encode_examples

    request = unit_request(columns, style, unit, max_rows)
    bodies = [UNIT_ROW_SEPARATOR.join(row_line(row, columns, float_digits) for row in rows) for rows in units]
    return encode_examples(tokenizer, [request] * len(bodies), bodies, max_length=max_length)


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


def check_public_domains(domains: Any, structured: str, columns: Sequence, dtypes: Mapping) -> dict:
    """``public_domains`` checked and normalised: {column: (low, high)} for a numeric column, {column:
    [category, ...]} otherwise. Only the whole-row model (``structured="dp"``) writes these columns."""
    from .errors import ConfigError, option

    if not domains:
        return {}
    name = option("public_domains", "--public-domain")
    if structured != "dp":
        raise ConfigError(f"{name} holds the values the DP model writes to a range or a list you declare public; it "
                          "needs " + option("structured='dp'", "--structured dp") + " (SDV keeps its columns within "
                          "the real values on its own).")
    if not isinstance(domains, Mapping):
        raise ConfigError(f"{name}: must map column names to (low, high) or a list of categories, got "
                          f"{type(domains).__name__}.")
    out = {}
    for column, domain in domains.items():
        if column not in columns:
            raise ConfigError(f"{name}: {column!r} is not a column the DP model writes; it writes "
                              f"{[str(c) for c in columns]} (texts and PII columns have no domain).")
        numeric = pd.api.types.is_numeric_dtype(dtypes[column]) and not pd.api.types.is_bool_dtype(dtypes[column])
        if numeric:
            if (not isinstance(domain, (list, tuple)) or len(domain) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in domain)
                    or not domain[0] <= domain[1]):
                raise ConfigError(f"{name}: {column!r} is numeric: give (low, high) with low <= high, got {domain!r}.")
            out[column] = (domain[0], domain[1])
        else:
            if (not isinstance(domain, (list, tuple)) or not domain
                    or not all(isinstance(v, str) and v for v in domain)):
                raise ConfigError(f"{name}: {column!r} is not numeric: give its categories as a non-empty list of "
                                  f"strings, got {domain!r}.")
            out[column] = list(dict.fromkeys(domain))
    return out


def in_domain(value: Any, domain: Any) -> bool:
    """Whether a parsed value lies in its column's declared domain (a missing value always does)."""
    if value is None or domain is None:
        return True
    if isinstance(domain, tuple):
        return domain[0] <= value <= domain[1]
    return value in domain


def parse_row(generated: str, columns: Sequence, dtypes: Mapping, text_columns: Sequence,
              domains: Mapping | None = None) -> dict | None:
    """The row a model wrote after :func:`row_request`, or None when it does not read as one row of these
    columns in this order with a value of each column's dtype (and, for the columns of ``domains``, within
    the declared domain)."""
    line = generated.strip("\n")
    try:
        cells = prompt_format.decode_conditions(line)
    except DataError:
        return None
    if list(cells) != [str(c) for c in columns]:
        return None
    out = {}
    for column in columns:
        out[column] = _parse_cell(cells[str(column)], column, dtypes, text_columns, domains)
        if out[column] is _INVALID:
            return None
    return out


_INVALID = object()


def _parse_cell(text: str | None, column: Any, dtypes: Mapping, text_columns: Sequence,
                domains: Mapping | None) -> Any:
    """One cell's formatted value (unescaped; None: missing) as a value of its column, or ``_INVALID``."""
    try:
        value = (None if text is None else prompt_format.decode_text(text)) if column in text_columns \
            else parse_value(text, dtypes[column])
    except (ValueError, TypeError, OverflowError):
        return _INVALID
    if domains and not in_domain(value, domains.get(column)):
        return _INVALID
    return value


def sample_rows(trained: Any, columns: Sequence, text_columns: Sequence, dtypes: Mapping, n: int, sampling: Any,
                style: str, float_digits: int = prompt_format.DEFAULT_FLOAT_DIGITS,
                max_tries: int = MAX_TRIES, given: pd.DataFrame | None = None,
                domains: Mapping | None = None, refuse_unreadable: bool = True) -> tuple[pd.DataFrame, dict]:
    """``n`` whole rows from the model, written column by column (``given``: rows of the leading columns to
    continue instead, one synthetic row per given row).

    The column names and separators are the schema (public), so the decoder writes them itself and the
    model writes only the values: after ``Rating:`` it writes up to the separator, the decoder appends
    `` | Recommended IND:``, and so on, the texts last. A value that is not one of its column's dtype (or
    outside a declared domain) is drawn again in the same place, at most ``max_tries`` draws in all; what
    still fails is left missing (the line then holds the missing marker, so later columns see it).
    Returns the rows (columns in ``columns`` order) and the counts behind the report's figures:
    ``{"rows", "draws", "rejected", "unparsed", "rows_incomplete", "max_tries"}`` (draws and rejections
    of single values; cells left missing, and the rows that hold them). Raises ModelError when not one
    value read (``refuse_unreadable=False``: the caller checks the counts, :func:`sample_rows_by_chunks`)."""
    lines, first = [""] * n, 0
    if given is not None:
        lead = [str(c) for c in given.columns]
        if lead != [str(c) for c in columns[: len(lead)]]:
            raise DataError(f"with structured='dp' the model writes the columns in the order {list(columns)}; "
                            f"conditions can give the first of them, in that order, not {lead}.")
        lines = [row_line(row, list(given.columns), float_digits) for row in given.to_dict("records")]
        first = len(lead)
    from .generate import one_decoding_copy

    writer = _ValueWriter(trained, row_request(columns, style), sampling, dtypes, text_columns, domains, max_tries)
    rows: list[dict] = [{} for _ in range(n)]
    with one_decoding_copy(trained):
        for position in range(first, len(columns)):
            column = columns[position]
            last = position == len(columns) - 1
            values, lines, _ = writer.column(lines, column, last)
            for row, value in zip(rows, values):
                row[column] = value
    counts = {"rows": n, **writer.counts(), "rows_incomplete": len(writer.incomplete)}
    if refuse_unreadable:
        _refuse_unreadable(counts)
    out = pd.DataFrame(rows, columns=list(columns))
    if given is not None:  # the given values as given, not as re-read from the line
        for column in given.columns:
            out[column] = given[column].to_numpy()
    return out, counts


def sample_rows_by_chunks(trained: Any, columns: Sequence, text_columns: Sequence, dtypes: Mapping, n: int,
                          sampling: Any, style: str, float_digits: int = prompt_format.DEFAULT_FLOAT_DIGITS,
                          given: pd.DataFrame | None = None, domains: Mapping | None = None) -> tuple[pd.DataFrame, dict]:
    """:func:`sample_rows` over fixed chunks of ``generate.CHUNK_ROWS`` rows, chunk ``i`` seeded with
    ``generate.chunk_seed(sampling.seed, i)``, as the texts of the other modes are: under a process group
    (``torchrun``) the ranks share the chunks out and every rank gets every row back, so the rows for a
    seed are the same for any number of processes. The counts are summed over the chunks, and the
    "no readable value" refusal judges them all together (every rank alike)."""
    from . import generate
    from .distributed import gather_chunks, shard_chunks

    def work(i: int, chunk: range) -> list:
        part = None if given is None else given.iloc[chunk.start:chunk.stop].reset_index(drop=True)
        return [sample_rows(trained, columns, text_columns, dtypes, len(chunk),
                            replace(sampling, seed=generate.chunk_seed(sampling.seed, i)), style, float_digits,
                            given=part, domains=domains, refuse_unreadable=False)]

    if n == 0:
        return sample_rows(trained, columns, text_columns, dtypes, 0, sampling, style, float_digits, given=given,
                           domains=domains)
    parts = gather_chunks(shard_chunks(n, generate.CHUNK_ROWS), work)
    counts = {key: sum(c[key] for _, c in parts) for key in ("rows", "draws", "rejected", "unparsed",
                                                             "rows_incomplete")}
    counts["max_tries"] = parts[0][1]["max_tries"]
    _refuse_unreadable(counts)
    return pd.concat([rows for rows, _ in parts], ignore_index=True), counts


def _refuse_unreadable(counts: Mapping) -> None:
    if counts["draws"] and counts["draws"] == counts["rejected"]:
        raise ModelError(f"the model wrote no readable value of this table: none of {counts['rows']} rows had a "
                         f"value of any column's type in {counts['max_tries']} draws each. Train on more rows or "
                         "for more epochs, or use structured='sdv'.")


class _ValueWriter:
    """Writes one column's values for many sequences at once: the decoder appends ``name:`` to each line,
    the model writes the value; a value that does not read is drawn again in place (at most ``max_tries``
    draws), then left missing. Keeps the counts; every call draws with the next seed."""

    def __init__(self, trained, request, sampling, dtypes, text_columns, domains, max_tries):
        self.trained, self.request, self.sampling, self.max_tries = trained, request, sampling, max_tries
        self.dtypes, self.text_columns, self.domains = dtypes, text_columns, domains
        self.calls = self.draws = self.rejected = self.unparsed = 0
        self.incomplete: set = set()  # positions (in the lines of a call) with a value given up: sample_rows'
        # calls all cover the same n rows, so there it is the rows with a missing cell

    def column(self, lines: Sequence[str], column: Any, last: bool,
               first_of_row: Sequence[bool] | None = None, ends_at_model_rate: str = "",
               ) -> tuple[list, list[str], list[str]]:
        """Each line continued by ``column``'s value: returns the values, the lines with them, and the
        model's draws as written (the caller reads how a row ended from them). ``first_of_row``: lines that
        start a new row here (after the unit's row separator) instead of continuing one with a field;
        ``ends_at_model_rate``: the value ends with EOS or a token holding one of these characters as the
        model weighs them (a unit's last column: EOS, its end, or a newline, its next row), and one that goes
        on with another field instead is drawn again; when every draw does, the last is kept (read up to the
        bar; the caller ends the unit there)."""
        from .generate import generate_texts

        key = prompt_format.escape_key(column) + ":"
        starts = [line + ("" if not line or (first_of_row and first_of_row[i]) else prompt_format.FIELD_SEPARATOR)
                  + key for i, line in enumerate(lines)]
        values: list = [None] * len(lines)
        written = [prompt_format.MISSING] * len(lines)
        drafts = [""] * len(lines)
        run_on: dict[int, tuple] = {}  # line -> its last draw that read but went on with another field
        todo = list(range(len(lines)))
        budget = self.sampling.max_new_tokens if last else VALUE_TOKENS
        for _ in range(self.max_tries):
            if not todo:
                break
            texts = generate_texts(self.trained, [self.request] * len(todo),
                                   replace(self.sampling, seed=self._next_seed(), max_new_tokens=budget),
                                   starts=[starts[i] for i in todo], stop_at=VALUE_STOP, starts_open_values=True,
                                   ends_at_model_rate=ends_at_model_rate)
            texts = self._past_escaped_bars([starts[i] for i in todo], texts, budget, ends_at_model_rate)
            self.draws += len(todo)
            left = []
            for i, text in zip(todo, texts):
                value = _read_value(text, column, last, self.dtypes, self.text_columns, self.domains)
                if value is not _INVALID and ends_at_model_rate and prompt_format.split_field(text)[1]:
                    run_on[i] = (value, text)  # a unit's row must end (EOS or newline) as trained: drawn again
                    value = _INVALID
                if value is _INVALID:
                    left.append(i)
                else:
                    values[i], written[i], drafts[i] = value, prompt_format.split_field(text)[0], text
            self.rejected += len(left)
            todo = left
        for i in [i for i in todo if i in run_on]:  # every draw ran on: the last one kept, read up to the bar
            values[i], drafts[i] = run_on[i]
            written[i] = prompt_format.split_field(drafts[i])[0]
            self.rejected -= 1
        todo = [i for i in todo if i not in run_on]
        self.unparsed += len(todo)  # given up: missing, and the line says so to the columns after it
        self.incomplete.update(todo)
        return values, [start + " " + w for start, w in zip(starts, written)], drafts

    def _next_seed(self) -> int | None:
        """Every call draws with the next seed (none when the sampling has none)."""
        self.calls += 1
        return None if self.sampling.seed is None else self.sampling.seed + self.calls - 1

    def _past_escaped_bars(self, starts: Sequence[str], texts: list[str], budget: int | None,
                           ends_at_model_rate: str) -> list[str]:
        """Draws that stopped at an escaped bar (``\\|``, part of the value) continued in place, at most
        :data:`ESCAPED_BAR_CONTINUATIONS` times each: decoding stops at any token holding a bar, and only
        the text so far tells an escaped one from the separator."""
        from .generate import generate_texts

        texts = list(texts)
        for _ in range(ESCAPED_BAR_CONTINUATIONS):
            cut = [i for i, text in enumerate(texts) if _stopped_inside_value(text)]
            if not cut:
                break
            more = generate_texts(self.trained, [self.request] * len(cut),
                                  replace(self.sampling, seed=self._next_seed(), max_new_tokens=budget),
                                  starts=[starts[i] + texts[i] for i in cut], stop_at=VALUE_STOP,
                                  ends_at_model_rate=ends_at_model_rate)
            for i, extra in zip(cut, more):
                texts[i] += extra
        return texts

    def wrote_nothing(self) -> bool:
        """Values were drawn and not one of them read as a value of its column."""
        return bool(self.draws) and self.draws == self.rejected

    def counts(self) -> dict:
        return {"draws": self.draws, "rejected": self.rejected, "unparsed": self.unparsed,
                "max_tries": self.max_tries}


def _stopped_inside_value(written: str) -> bool:
    """True when decoding stopped at a bar that the value escaped: the draw holds a bar (its last token
    does), no newline and no unescaped bar, so the separator has not come yet."""
    if "|" not in written or "\n" in written or "\r" in written:
        return False
    return not prompt_format.split_field(written)[1]


def _read_value(written: str, column: Any, last: bool, dtypes: Mapping, text_columns: Sequence,
                domains: Mapping | None) -> Any:
    """The value the model wrote for ``column`` (after ``name:``), or ``_INVALID``: a structured value must
    end with the field separator (the model continuing the row as trained), parse as its dtype and lie in
    its declared domain; the row's last column ends at EOS, a newline or a separator."""
    value, ended = prompt_format.split_field(written)
    if not (ended or last):
        return _INVALID
    try:
        text = prompt_format.decode_value(value)
    except DataError:  # a dangling backslash
        return _INVALID
    return _parse_cell(text, column, dtypes, text_columns, domains)


def sample_units(trained: Any, columns: Sequence, text_columns: Sequence, dtypes: Mapping, n: int, sampling: Any,
                 style: str, unit: str, max_rows: int, float_digits: int = prompt_format.DEFAULT_FLOAT_DIGITS,
                 max_tries: int = MAX_TRIES, domains: Mapping | None = None) -> tuple[pd.DataFrame, list[int], dict]:
    """``n`` rows written unit by unit (``privacy_unit``), column by column as :func:`sample_rows` writes
    them: a unit's row ends with its last column; a newline after it starts the unit's next row (at most
    ``max_rows``), EOS ends the unit. A last value that goes on with another field instead is drawn again
    like any value that does not end as trained; when every draw does, its text is kept (read up to the bar)
    and the unit ends there (counted as ``rows_run_on``). How many rows a unit has is the model's; the last
    unit is cut to reach ``n``. Returns the rows, the synthetic unit of each row (0, 1, ...), and the counts
    for the report."""
    from .generate import one_decoding_copy

    writer = _ValueWriter(trained, unit_request(columns, style, unit, max_rows), sampling, dtypes, text_columns,
                          domains, max_tries)
    rows: list[dict] = []
    unit_of: list[int] = []
    unit_draws = cut = run_on = 0
    per_unit = 1.0  # rows per unit so far: nothing about it is read from the real data
    with one_decoding_copy(trained):
        while len(rows) < n:
            need = n - len(rows)
            # a round costs a decoding call per column and row whatever its size: the rows still needed are drawn
            # in one round with a margin, not in ever smaller rounds (units beyond n are dropped whole, in draw order)
            batch = (min(need, UNIT_FIRST_ROUND) if not unit_draws
                     else min(need, int(np.ceil(UNIT_MARGIN * need / per_unit)) + 1))
            unit_draws += batch
            written, cut_here, run_on_here = _draw_units(writer, batch, columns, max_rows)
            cut, run_on = cut + cut_here, run_on + run_on_here
            for unit_rows in written:
                take = unit_rows[: n - len(rows)]
                unit_index = (unit_of[-1] + 1) if unit_of else 0
                rows.extend(take)
                unit_of.extend([unit_index] * len(take))
                if len(rows) >= n:
                    break
            per_unit = max(1.0, len(rows) / (unit_of[-1] + 1))
    if writer.wrote_nothing():
        raise ModelError(f"the model wrote no readable value of this table in {unit_draws} unit draws (each value "
                         f"of its column's type, {max_tries} draws each). Train on more units or for more epochs.")
    out = pd.DataFrame(rows, columns=list(columns))
    counts = {"rows": n, "units": unit_of[-1] + 1 if unit_of else 0, "unit_draws": unit_draws, **writer.counts(),
              "units_cut_at_max_rows": cut, "rows_run_on": run_on, "max_rows_per_unit": max_rows}
    return out, unit_of, counts


def _draw_units(writer: _ValueWriter, batch: int, columns: Sequence, max_rows: int) -> tuple[list[list[dict]], int, int]:
    """``batch`` units written row by row, each row column by column: a newline after a row's last value
    starts the unit's next row, EOS ends the unit, and so does another field after it in every draw
    (:meth:`_ValueWriter.column`). Returns each unit's rows, how many were cut at ``max_rows`` (the model
    would have gone on) and how many rows ran on into another field."""
    lines, open_units = [""] * batch, list(range(batch))
    written: list[list[dict]] = [[] for _ in range(batch)]
    cut = run_on = 0
    for row_number in range(max_rows):
        cells: list[dict] = [{} for _ in open_units]
        for position, column in enumerate(columns):
            last = position == len(columns) - 1
            values, new_lines, drafts = writer.column(
                [lines[u] for u in open_units], column, last,
                first_of_row=[row_number > 0 and position == 0] * len(open_units),
                ends_at_model_rate=UNIT_ROW_SEPARATOR if last else "")
            for k, u in enumerate(open_units):
                cells[k][column] = values[k]
                lines[u] = new_lines[k]
        for k, u in enumerate(open_units):
            written[u].append(cells[k])
        ran_on = [prompt_format.split_field(draft)[1] for draft in drafts]
        run_on += sum(ran_on)
        going_on = [u for u, draft, bar in zip(open_units, drafts, ran_on) if not bar and UNIT_ROW_SEPARATOR in draft]
        if row_number == max_rows - 1:
            cut += len(going_on)
        open_units = going_on
        for u in open_units:
            lines[u] += UNIT_ROW_SEPARATOR
        if not open_units:
            break
    return written, cut, run_on


def restore_dtypes(frame: pd.DataFrame, dtypes: Mapping, domains: Mapping | None = None) -> pd.DataFrame:
    """The parsed rows in the input's dtypes where values allow; categoricals take the categories the model
    wrote (never the real data's list), or those declared public in ``domains``."""
    out = frame.copy()
    for column in frame.columns:
        dtype = dtypes[column]
        if isinstance(dtype, pd.CategoricalDtype):
            declared = (domains or {}).get(column)
            out[column] = out[column].astype(pd.CategoricalDtype(declared, ordered=dtype.ordered) if declared
                                             else "category")
            continue
        if out[column].dtype == dtype:
            continue
        try:
            out[column] = out[column].astype(dtype)
        except (TypeError, ValueError):
            if pd.api.types.is_integer_dtype(dtype):  # missing values in an int64 column: nullable Int64
                out[column] = out[column].astype("Int64")
    return out


__all__ = ["MAX_TRIES", "UNIT_ROW_SEPARATOR", "check_public_domains", "encode_rows", "in_domain", "encode_units", "parse_row", "parse_value",
           "restore_dtypes", "row_columns", "row_line", "row_request", "sample_rows", "sample_rows_by_chunks",
           "sample_units", "unit_request"]

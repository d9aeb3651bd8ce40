"""Tests for synthtext.prompts: the row <-> prompt encoding."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthtext.errors import ConfigError, DataError
from synthtext.prompts import (MISSING, PromptFormat, build_example, build_prompt, decode_conditions,
                               decode_text, encode_conditions, encode_text, format_value, is_missing,
                               parse_prompt, split_generated)

REVIEW = {"Rating": 5, "Department Name": "Dresses", "Age": 34, "Recommended IND": 1,
          "Review Text": "Love this dress!\nFits well."}
CONDITIONS = ["Rating", "Department Name", "Age", "Recommended IND"]


# --- golden strings: the format is part of saved models and must not drift -------------------------

def test_golden_prompt_and_target():
    prompt, target = build_example(REVIEW, CONDITIONS, "Review Text")
    assert prompt == ("Rating: 5 | Department Name: Dresses | Age: 34 | Recommended IND: 1\n"
                      "Review Text:\n")
    assert target == "Love this dress!\nFits well."  # raw, no end marker


def test_golden_escaping_and_missing():
    row = {"a|b": "x | y", "c:d": "line1\nline2\r", "back\\slash": "C:\\dir\\", "nan": float("nan"),
           "na": "NA", "marker": MISSING, "none": None, "pdna": pd.NA, "empty": ""}
    line = encode_conditions(row, list(row))
    assert line == ("a\\|b: x \\| y | c\\:d: line1\\nline2\\r | back\\\\slash: C:\\\\dir\\\\ | "
                    "nan: <missing> | na: NA | marker: \\<missing> | none: <missing> | "
                    "pdna: <missing> | empty: ")


@pytest.mark.parametrize("value, expected", [
    (5, "5"), (np.int64(-12), "-12"), (True, "true"), (np.bool_(False), "false"),
    (34.0, "34"), (-0.0, "0"), (19.99, "19.99"), (1 / 3, "0.3333"), (2 / 3, "0.6667"),
    (12345.678, "12346"), (1234.56, "1235"), (0.1 + 0.2, "0.3"), (0.000123456, "0.0001235"),
    (2.5e-7, "2.5e-07"), (1e20, "1e+20"), (123456789.0, "123456789"), (float("inf"), "inf"),
    (float("-inf"), "-inf"), (np.float32(0.1), "0.1"),
    (pd.Timestamp("2024-01-02"), "2024-01-02"), (pd.Timestamp("2024-01-02 13:45"), "2024-01-02 13:45:00"),
    (dt.date(2024, 1, 2), "2024-01-02"), (np.datetime64("2024-01-02T00:00"), "2024-01-02"),
    ("NA", "NA"), ("", ""), (" padded ", " padded "),
])
def test_format_value_is_stable(value, expected):
    assert format_value(value) == expected


@pytest.mark.parametrize("value", [None, float("nan"), np.nan, pd.NA, pd.NaT, np.datetime64("NaT")])
def test_missing_values(value):
    assert is_missing(value)
    assert format_value(value) is None
    assert encode_conditions({"c": value}, ["c"]) == "c: <missing>"


def test_float_digits_is_configurable():
    assert format_value(1 / 3, float_digits=2) == "0.33"
    fmt = PromptFormat(["x"], ["t"], float_digits=6)
    assert fmt.prompt({"x": 1 / 3, "t": "a"}, "t") == "x: 0.333333\nt:\n"


# --- round trips --------------------------------------------------------------------------------

tricky_text = st.text(alphabet=st.sampled_from(list("ab :|\\\n\r\t<>-é漢😀")) | st.characters(),
                      max_size=20)
cell = st.one_of(
    st.none(), st.just(float("nan")), st.just(MISSING), st.just("\\" + MISSING), tricky_text,
    st.integers(min_value=-2**63, max_value=2**63 - 1), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(tricky_text, cell, max_size=6))
def test_conditions_round_trip(row):
    columns = list(row)
    decoded = decode_conditions(encode_conditions(row, columns))
    assert list(decoded) == columns
    assert decoded == {c: format_value(row[c]) for c in columns}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(tricky_text, cell, max_size=4), tricky_text)
def test_prompt_round_trip(row, text_column):
    columns = [c for c in row if c != text_column]
    prompt = build_prompt(row, columns, text_column)
    assert prompt.endswith(":\n")
    conditions, column = parse_prompt(prompt)
    assert column == text_column
    assert conditions == {c: format_value(row[c]) for c in columns}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.just(float("nan")), tricky_text,
                 st.sampled_from([MISSING, " <MISSING> ", "\\<missing>", "\\\\<missing>", "< missing >",
                                  "<missing> and more", "\\x"])))
def test_text_round_trip(value):
    expected = None if is_missing(value) else value
    target = encode_text(value)
    assert decode_text(target) == expected
    assert split_generated(target) == expected


def test_missing_text_marker():
    assert encode_text(None) == MISSING
    assert encode_text(float("nan")) == MISSING
    assert encode_text("") == ""  # empty text is a text, not a missing one
    assert encode_text(MISSING) == "\\" + MISSING
    assert decode_text("\\" + MISSING) == MISSING
    # a marker mangled by an uncased WordPiece decode still reads as missing
    assert decode_text("< missing >") is None
    assert decode_text("<MISSING>\n") is None
    _, target = build_example({"t": None, "x": 1}, ["x"], "t")
    assert target == MISSING


def test_split_generated_cuts_at_end_marker():
    assert split_generated("Nice dress.<|endoftext|>Rating: 5", ["<|endoftext|>"]) == "Nice dress."
    assert split_generated("a</s>b<|endoftext|>", ["<|endoftext|>", "</s>"]) == "a"
    assert split_generated("<missing><|endoftext|>", ["<|endoftext|>"]) is None
    assert split_generated("no marker", ["</s>", ""]) == "no marker"


def test_row_with_no_conditions():
    prompt = build_prompt({"t": "x"}, [], "t")
    assert prompt == "\nt:\n"
    assert parse_prompt(prompt) == ({}, "t")
    assert decode_conditions("") == {}


def test_pandas_row_and_non_string_column_names():
    df = pd.DataFrame({0: [1.5], "when": [pd.Timestamp("2024-03-01 08:00")], "t": ["hi"]})
    row = df.iloc[0]
    prompt, target = build_example(row, [0, "when"], "t")
    assert prompt == "0: 1.5 | when: 2024-03-01 08:00:00\nt:\n"
    assert target == "hi"


# --- several text columns -------------------------------------------------------------------------

def test_multiple_text_columns_one_example_each_grouped_by_row():
    df = pd.DataFrame({"Rating": [5, 2], "Title": ["Great", None],
                       "Review Text": ["Love it", "Too small"]})
    fmt = PromptFormat(conditioning_columns=["Rating"], text_columns=["Title", "Review Text"])
    examples = fmt.examples(df)
    assert examples == [
        [("Rating: 5\nTitle:\n", "Great"), ("Rating: 5\nReview Text:\n", "Love it")],
        [("Rating: 2\nTitle:\n", MISSING), ("Rating: 2\nReview Text:\n", "Too small")],
    ]
    # the text column's name is what tells the model which text to write
    assert parse_prompt(examples[1][0][0]) == ({"Rating": "2"}, "Title")


def test_prompt_format_validation_names_the_field():
    with pytest.raises(ConfigError, match="text_columns"):
        PromptFormat(["a"], [])
    with pytest.raises(ConfigError, match="conditioning_columns"):
        PromptFormat(["a", "t"], ["t"])
    with pytest.raises(ConfigError, match="conditioning_columns"):
        PromptFormat(["a", "a"], ["t"])
    with pytest.raises(ConfigError, match="float_digits"):
        PromptFormat(["a"], ["t"], float_digits=0)
    fmt = PromptFormat(["a"], ["t"])
    with pytest.raises(ConfigError, match="text_column"):
        fmt.prompt({"a": 1, "u": "x"}, "u")
    with pytest.raises(DataError, match="no column"):
        fmt.examples(pd.DataFrame({"a": [1]}))


def test_prompt_format_dict_round_trip():
    fmt = PromptFormat(["Rating", "Age"], ["Review Text"], float_digits=5)
    data = fmt.to_dict()
    assert data["format_version"] == 1 and data["missing"] == MISSING
    assert PromptFormat.from_dict(data) == fmt
    with pytest.raises(ConfigError, match="format_version"):
        PromptFormat.from_dict({**data, "format_version": 99})


@pytest.mark.parametrize("bad", ["a: 1 |b: 2", "a: 1| b: 2", "no separator", "a:1", "k: v\\"])
def test_malformed_conditions_raise_data_error(bad):
    with pytest.raises(DataError):
        decode_conditions(bad)


@pytest.mark.parametrize("bad", ["a: 1\nt:", "t:\n", "a: 1\nt\\:\n", "a\nb\nt:\n"])
def test_malformed_prompt_raises_data_error(bad):
    with pytest.raises(DataError):
        parse_prompt(bad)


def test_missing_row_column_raises_data_error():
    with pytest.raises(DataError, match="'b'"):
        encode_conditions({"a": 1}, ["a", "b"])


def test_format_value_never_returns_float_noise():
    for x in np.random.default_rng(0).normal(0, 1000, 200):
        text = format_value(float(x))
        assert "e" not in text and len(text.replace("-", "").replace(".", "")) <= 6
        assert math.isclose(float(text), x, rel_tol=1e-3, abs_tol=1e-3)

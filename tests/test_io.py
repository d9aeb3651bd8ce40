"""Tests for synthtext.io: lossless CSV reading and atomic CSV writing."""

from __future__ import annotations

import gzip
import os
import stat
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import synthtext.io.atomic as atomic_io
import synthtext.io.read as read_io
from synthtext.errors import DataError
from synthtext.io import neutralize_formula, read_csv, write_csv


def write_bytes(tmp_path, data: bytes, name: str = "data.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def as_read(df):
    """``df`` with None in text columns replaced by NaN, as read_csv returns missing."""
    df = df.copy()
    for name in df.columns[df.dtypes == object]:
        df[name] = df[name].astype(object).where(df[name].notna(), np.nan)
    return df


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".synthtext-"))


# ------------------------------------------------------------------- reading: values


NA_LIKE = ["NA", "None", "null", "N/A", "nan", "NaN", "#N/A", "NULL", "n/a", "-nan", "<NA>"]


def test_na_like_strings_stay_strings(tmp_path):
    path = write_bytes(tmp_path, ("value\n" + "\n".join(NA_LIKE) + "\n").encode())
    df = read_csv(path)
    assert df["value"].tolist() == NA_LIKE
    assert not df["value"].isna().any()


def test_na_like_header_names_stay_strings(tmp_path):
    df = read_csv(write_bytes(tmp_path, b"NA,null,nan\n1,2,3\n"))
    assert list(df.columns) == ["NA", "null", "nan"]


def test_only_an_empty_cell_is_missing(tmp_path):
    df = read_csv(write_bytes(tmp_path, b'a,b,c\nx,,NA\n,"",y\n'))
    assert df["a"].isna().tolist() == [False, True]
    assert df["b"].isna().tolist() == [True, True]  # quoted "" is empty too
    assert df["c"].tolist() == ["NA", "y"]


def test_short_rows_are_padded_with_missing(tmp_path):
    df = read_csv(write_bytes(tmp_path, b"a,b,c\nx,y\n"))
    assert df["a"].tolist() == ["x"] and df["c"].isna().all()


def test_utf8_bom_is_stripped(tmp_path):
    df = read_csv(write_bytes(tmp_path, "\ufeffname,city\nZoë,Köln\n".encode()))
    assert list(df.columns) == ["name", "city"]
    assert df.iloc[0].tolist() == ["Zoë", "Köln"]


def test_plain_utf8_and_whitespace_are_kept(tmp_path):
    df = read_csv(write_bytes(tmp_path, "name,note\nJosé , 日本 \n".encode()))
    assert df.iloc[0].tolist() == ["José ", " 日本 "]


def test_crlf_line_endings(tmp_path):
    df = read_csv(write_bytes(tmp_path, b'a,b\r\nx,"p\r\nq"\r\ny,z\r\n'))
    assert df.to_dict("list") == {"a": ["x", "y"], "b": ["p\r\nq", "z"]}


def test_cell_longer_than_python_csv_field_limit(tmp_path):
    big = "x" * 200_000
    df = read_csv(write_bytes(tmp_path, f"id,text\n1,{big}\n".encode()))
    assert df["text"][0] == big


def test_big_cell_with_newlines_quotes_and_commas(tmp_path):
    big = ('line, with "quotes"\n' * 12_000)[:200_000]
    df = pd.DataFrame({"id": [1, 2], "text": [big, "a,b"]})
    back = read_csv(write_csv(df, tmp_path / "out.csv"))
    assert back["text"][0] == big
    pd.testing.assert_frame_equal(back, df)


def test_embedded_newline_quote_comma(tmp_path):
    data = b'text,n\n"a\nb",1\n"say ""hi""",2\n"x,y",3\n'
    df = read_csv(write_bytes(tmp_path, data))
    assert df["text"].tolist() == ["a\nb", 'say "hi"', "x,y"]
    assert df["n"].tolist() == [1, 2, 3]


def test_header_only_gives_empty_frame_with_columns(tmp_path):
    df = read_csv(write_bytes(tmp_path, b"a,b,c\n"))
    assert list(df.columns) == ["a", "b", "c"]
    assert len(df) == 0


# ------------------------------------------------------------------- reading: types


def test_integers_become_int64(tmp_path):
    df = read_csv(write_bytes(tmp_path, b"n\n1\n-20\n0\n9223372036854775807\n"))
    assert df["n"].dtype == "int64"
    assert df["n"].tolist() == [1, -20, 0, 2**63 - 1]


def test_integers_with_missing_become_nullable_int64(tmp_path):
    df = read_csv(write_bytes(tmp_path, b"n,s\n9007199254740993,x\n,y\n"))
    assert df["n"].dtype == "Int64"
    assert df["n"][0] == 9007199254740993  # not rounded through float64
    assert df["n"][1] is pd.NA


@pytest.mark.parametrize(
    "values",
    [
        ["007", "12"],  # leading zeros: ids
        ["02139", "10001"],  # zip codes
        ["+1", "2"],
        ["-0", "1"],
        [" 1", "2"],
        ["1_000", "2"],
        ["9223372036854775808"],  # beyond int64
        ["1.50", "2.5"],  # trailing zero
        ["1e3"],  # would come back as 1000.0
        ["1", "1.5"],  # 1 would come back as 1.0
        [".5"],
        ["nan", "1.5"],
        ["inf", "1.5"],
        ["true", "false"],
        ["2024-01-02"],
    ],
)
def test_lossy_conversions_stay_strings(tmp_path, values):
    df = read_csv(write_bytes(tmp_path, ("v\n" + "\n".join(values) + "\n").encode()))
    assert df["v"].dtype == object
    assert df["v"].tolist() == values


def test_floats_become_float64(tmp_path):
    df = read_csv(write_bytes(tmp_path, b"f,s\n1.5,a\n-0.25,b\n1.0,c\n,d\n1e-07,e\n"))
    assert df["f"].dtype == "float64"
    assert df["f"].tolist()[:3] == [1.5, -0.25, 1.0]
    assert pd.isna(df["f"][3]) and df["f"][4] == 1e-07


def test_blank_lines_are_skipped(tmp_path):
    # pandas skips empty and spaces-only lines; write_csv never writes one
    df = read_csv(write_bytes(tmp_path, b"a\n1\n\n  \n2\n\n"))
    assert df["a"].tolist() == [1, 2]


def test_all_missing_column_stays_text(tmp_path):
    df = read_csv(write_bytes(tmp_path, b"a,b\n1,\n2,\n"))
    assert df["b"].dtype == object and df["b"].isna().all()


def test_infer_types_false_keeps_text(tmp_path):
    df = read_csv(write_bytes(tmp_path, b"n,f\n1,1.5\n"), infer_types=False)
    assert df.iloc[0].tolist() == ["1", "1.5"]


# ------------------------------------------------------------------- reading: errors


def test_duplicate_headers_are_named(tmp_path):
    path = write_bytes(tmp_path, b"a,b,a,c,b,b\n1,2,3,4,5,6\n")
    with pytest.raises(DataError) as info:
        read_csv(path)
    message = str(info.value)
    assert "'a' (columns 1 and 3)" in message
    assert "'b' (columns 2, 5 and 6)" in message
    assert "unique name" in message


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        read_csv(write_bytes(tmp_path, b""))


def test_blank_lines_only(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        read_csv(write_bytes(tmp_path, b"\n\n\n"))


@pytest.mark.parametrize(
    "data",
    [
        b"a,b\n1,\x002\n",
        gzip.compress(b"a,b\n1,2\n"),
        b"PK\x03\x04" + b"rest of an xlsx",
        b"\x89PNG\r\n\x1a\n" + b"image",
    ],
    ids=["nul", "gzip", "xlsx", "png"],
)
def test_binary_file(tmp_path, data):
    with pytest.raises(DataError, match="does not look like a CSV file"):
        read_csv(write_bytes(tmp_path, data))


def test_utf16_file_gets_encoding_hint_and_reads_with_it(tmp_path):
    path = write_bytes(tmp_path, "a,b\nx,é\n".encode("utf-16"))
    with pytest.raises(DataError, match='encoding="utf-16"'):
        read_csv(path)
    assert read_csv(path, encoding="utf-16").to_dict("list") == {"a": ["x"], "b": ["é"]}


def test_non_utf8_bytes(tmp_path):
    path = write_bytes(tmp_path, b"name,city\nx,y\ncaf\xe9,Paris\n")
    with pytest.raises(DataError) as info:
        read_csv(path)
    message = str(info.value)
    assert "not valid utf-8" in message
    assert "offset 17 (line 3)" in message and "0xe9" in message
    assert 'encoding="cp1252"' in message and "--encoding" not in message  # from Python: the Python argument
    assert "--encoding cp1252" in info.value.render(frozenset({"--encoding"}))  # from a command: its flag
    assert read_csv(path, encoding="cp1252")["name"].tolist() == ["x", "café"]


def test_unknown_encoding(tmp_path):
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_csv(write_bytes(tmp_path, b"a\n1\n"), encoding="klingon")


def test_unclosed_quote(tmp_path):
    with pytest.raises(DataError, match="not valid CSV: EOF inside string") as info:
        read_csv(write_bytes(tmp_path, b'a,b\n"x,1\ny,2\n'))
    assert "Error tokenizing" not in str(info.value)


def test_row_with_too_many_fields(tmp_path):
    with pytest.raises(DataError, match="Expected 2 fields in line 3, saw 3"):
        read_csv(write_bytes(tmp_path, b"a,b\n1,2\n3,4,5\n"))


def test_every_row_too_long_is_not_silently_an_index(tmp_path):
    # pandas' default would quietly use the first column as the index here
    with pytest.raises(DataError, match="Expected 2 fields"):
        read_csv(write_bytes(tmp_path, b"a,b\n1,2,3\n4,5,6\n"))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_csv(tmp_path / "nope.csv")


def test_directory_path(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_csv(tmp_path)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root and Windows ignore mode bits"
)
def test_unreadable_file(tmp_path):
    path = write_bytes(tmp_path, b"a\n1\n")
    path.chmod(0)
    with pytest.raises(DataError, match="permission denied"):
        read_csv(path)


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    # runs as root too, where chmod(0) does not stop reading
    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(read_io, "open", deny, raising=False)
    with pytest.raises(DataError, match="cannot read .*permission denied"):
        read_csv(write_bytes(tmp_path, b"a\n1\n"))


def test_errors_are_chained_not_leaked(tmp_path):
    with pytest.raises(DataError) as info:
        read_csv(write_bytes(tmp_path, b'a\n"x\n'))
    assert isinstance(info.value.__cause__, pd.errors.ParserError)
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------- writing


def test_write_format(tmp_path):
    df = pd.DataFrame(
        {
            "s": ["NA", None, "x,y"],
            "i": pd.array([1, None, 3], dtype="Int64"),
            "f": [1.5, float("nan"), 2.0],
        }
    )
    path = write_csv(df, tmp_path / "out.csv")
    assert path == tmp_path / "out.csv"
    assert path.read_bytes() == b's,i,f\nNA,1,1.5\n,,\n"x,y",3,2.0\n'


def test_write_is_utf8_without_bom(tmp_path):
    path = write_csv(pd.DataFrame({"name": ["Zoë"]}), tmp_path / "out.csv")
    assert path.read_bytes() == "name\nZoë\n".encode()


def test_write_accepts_str_path_and_replaces_existing(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    write_csv(pd.DataFrame({"a": [1]}), str(target))
    assert target.read_text() == "a\n1\n"
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_write_gives_normal_permissions_not_mkstemp_0600(tmp_path):
    target = write_csv(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    target.chmod(0o640)
    write_csv(pd.DataFrame({"a": [2]}), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_write_fsyncs_before_replacing(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic_io.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(
        atomic_io.os, "replace", lambda a, b: events.append("replace") or real_replace(a, b)
    )
    write_csv(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")
    assert events[:2] == ["fsync", "replace"]


def test_failed_replace_leaves_target_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("old content\n")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_io.os, "replace", fail)
    with pytest.raises(DataError, match="cannot write to .*No space left on device"):
        write_csv(pd.DataFrame({"a": [1]}), target)
    assert target.read_text() == "old content\n"
    assert leftovers(tmp_path) == []


def test_cell_that_cannot_be_formatted_leaves_target_and_no_temp_file(tmp_path):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("boom")

        __repr__ = __str__

    target = tmp_path / "out.csv"
    target.write_text("old content\n")
    df = pd.DataFrame({"a": ["fine", Unprintable()]})
    with pytest.raises(RuntimeError, match="boom"):
        write_csv(df, target)
    assert target.read_text() == "old content\n"
    assert leftovers(tmp_path) == []


def test_write_into_missing_directory(tmp_path):
    with pytest.raises(DataError, match="directory .* does not exist"):
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "missing" / "out.csv")


def test_write_onto_a_directory(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        write_csv(pd.DataFrame({"a": [1]}), tmp_path)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root and Windows ignore mode bits"
)
def test_write_into_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(DataError, match="cannot write to .*ermission denied"):
            write_csv(pd.DataFrame({"a": [1]}), locked / "out.csv")
    finally:
        locked.chmod(0o700)


def test_write_into_unwritable_directory_simulated(tmp_path, monkeypatch):
    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic_io.tempfile, "mkstemp", deny)
    with pytest.raises(DataError, match="cannot write to .*Permission denied"):
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")


def test_write_rejects_what_could_not_be_read_back(tmp_path):
    with pytest.raises(DataError, match="no columns"):
        write_csv(pd.DataFrame(), tmp_path / "a.csv")
    with pytest.raises(DataError, match=r"'x' \(columns 1 and 2\)"):
        write_csv(pd.DataFrame([[1, 2]], columns=["x", "x"]), tmp_path / "b.csv")
    with pytest.raises(DataError, match="NUL"):
        write_csv(pd.DataFrame({"a": ["x\x00y"]}), tmp_path / "c.csv")
    with pytest.raises(DataError, match="not valid Unicode"):
        write_csv(pd.DataFrame({"a": ["\ud800"]}), tmp_path / "d.csv")
    assert list(tmp_path.iterdir()) == []


def test_empty_string_reads_back_as_missing(tmp_path):
    back = read_csv(write_csv(pd.DataFrame({"a": ["", "x"]}), tmp_path / "out.csv"))
    assert back["a"].isna().tolist() == [True, False]


@pytest.mark.parametrize(
    "columns",
    [
        {"a": ["x\ry", "z"], "b": ["1", "2"]},  # bare \r: csv only quotes "\n"
        {"a": [" ", "\t", None, "x"]},  # whitespace-only line: pandas skips it
        {" ": ["x"]},
    ],
)
def test_text_the_reader_would_mangle_is_quoted(tmp_path, columns):
    df = pd.DataFrame(columns)
    back = read_csv(write_csv(df, tmp_path / "out.csv"), infer_types=False)
    pd.testing.assert_frame_equal(back, as_read(df))


def test_usual_output_is_minimally_quoted(tmp_path):
    path = write_csv(pd.DataFrame({"a": ["x y", "p\nq"], "b": [1, 2]}), tmp_path / "o.csv")
    assert path.read_text() == 'a,b\nx y,1\n"p\nq",2\n'


# ------------------------------------------------------------------- formulas


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_neutralize_formula_prefixes_triggers(value):
    assert neutralize_formula(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "", "1=1", " =x", 5, -3.5, None])
def test_neutralize_formula_leaves_others(value):
    assert neutralize_formula(value) == value


def test_write_neutralizes_only_when_asked(tmp_path):
    df = pd.DataFrame({"s": ["=HYPERLINK(\"x\")", "ok", None], "n": [-1, 2, 3]})
    write_csv(df, tmp_path / "raw.csv")
    assert read_csv(tmp_path / "raw.csv")["s"][0] == '=HYPERLINK("x")'
    write_csv(df, tmp_path / "safe.csv", neutralize_formulas=True)
    back = read_csv(tmp_path / "safe.csv")
    assert back["s"].tolist()[:2] == ["'=HYPERLINK(\"x\")", "ok"]
    assert back["n"].tolist() == [-1, 2, 3]  # numbers are not text: untouched
    assert df["s"][0] == '=HYPERLINK("x")'  # caller's frame not modified


# ------------------------------------------------------------------- round trip

# No surrogates (not encodable) and no NUL (rejected: readers treat it as binary).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
NAMES = st.lists(TEXT, min_size=1, max_size=4, unique=True)


@st.composite
def text_frames(draw):
    names = draw(NAMES)
    rows = draw(st.integers(0, 6))
    cell = st.one_of(st.none(), TEXT.filter(bool))  # "" would read back as missing
    return pd.DataFrame(
        {name: draw(st.lists(cell, min_size=rows, max_size=rows)) for name in names},
        dtype=object,
    )


@st.composite
def mixed_frames(draw):
    rows = draw(st.integers(1, 6))
    int64s = st.integers(-(2**63), 2**63 - 1)
    ints = draw(st.lists(int64s, min_size=rows, max_size=rows))
    nullable = draw(st.lists(st.none() | int64s, min_size=rows, max_size=rows))
    floats = st.floats(allow_nan=False, allow_infinity=False)
    reals = draw(st.lists(st.none() | floats, min_size=rows, max_size=rows))
    # a non-numeric first value keeps the column text whatever the rest looks like
    words = [draw(TEXT.map(lambda s: "w" + s))]
    words += draw(st.lists(st.none() | TEXT.filter(bool), min_size=rows - 1, max_size=rows - 1))
    df = pd.DataFrame({"word": pd.Series(words, dtype=object), "int": ints})
    if any(v is not None for v in nullable):
        df["nullable"] = pd.array(nullable, dtype="Int64")
        if df["nullable"].notna().all():
            df["nullable"] = df["nullable"].astype("int64")
    if any(v is not None for v in reals):
        df["real"] = pd.Series(reals, dtype="float64")
    return df


@settings(max_examples=50, deadline=None)
@given(df=text_frames())
def test_round_trip_text(tmp_path_factory, df):
    path = write_csv(df, tmp_path_factory.mktemp("rt") / "out.csv")
    back = read_csv(path, infer_types=False, trust_quotes=True)  # lossless; the stray-quote guess: below
    pd.testing.assert_frame_equal(back, as_read(df), check_index_type=False)


@settings(max_examples=50, deadline=None)
@given(df=text_frames())
def test_read_then_write_reproduces_the_file(tmp_path_factory, df):
    # the lossless contract with type inference on: whatever becomes a number
    # is written back as exactly the same text
    directory = tmp_path_factory.mktemp("rw")
    first = write_csv(df, directory / "first.csv")
    second = write_csv(read_csv(first, trust_quotes=True), directory / "second.csv")
    assert second.read_bytes() == first.read_bytes()


@settings(max_examples=50, deadline=None)
@given(df=mixed_frames())
def test_round_trip_mixed_types(tmp_path_factory, df):
    path = write_csv(df, tmp_path_factory.mktemp("mx") / "out.csv")
    pd.testing.assert_frame_equal(read_csv(path, trust_quotes=True), as_read(df))


@settings(max_examples=50, deadline=None)
@given(df=text_frames())
def test_stray_quote_check_refuses_or_reads_exactly(tmp_path_factory, df):
    # the stray-quote check is a guess: on a legal multi-line cell whose first and last lines each split
    # into a whole record (hypothesis finds ",\n0" in a 2-column table) it refuses. It must never change
    # what is read: either the exact frame, or one error that names the way out.
    path = write_csv(df, tmp_path_factory.mktemp("sq") / "out.csv")
    try:
        back = read_csv(path, infer_types=False)
    except DataError as exc:
        assert "trust_quotes=True" in str(exc) and any("\n" in v for v in df.stack().astype(str))
    else:
        pd.testing.assert_frame_equal(back, as_read(df), check_index_type=False)


def test_stray_quote_check_blind_spot_is_a_clear_refusal(tmp_path):
    df = pd.DataFrame({"0": [",\n0"], "1": [None]})
    path = write_csv(df, tmp_path / "out.csv")
    with pytest.raises(DataError, match="trust_quotes=True"):
        read_csv(path)
    pd.testing.assert_frame_equal(read_csv(path, trust_quotes=True, infer_types=False), as_read(df),
                                  check_index_type=False)

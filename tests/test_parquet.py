"""Parquet in and out (synthtext.io.parquet, read_table/write_table): dtypes kept exactly, atomic writes,
one clear DataError for every way a file can be wrong, and the CLI reading and writing Parquet."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from synthtext import cli
from synthtext.errors import DataError
from synthtext.io import (is_parquet_path, read_csv, read_parquet, read_table, write_csv, write_parquet,
                          write_table)

NAT = [pd.Timestamp("2024-01-01 00:00"), pd.Timestamp("2024-06-30 12:34:56.789"), None]

# One column per dtype that must survive read_parquet(write_parquet(df)) exactly (check_dtype=True).
DTYPES = {
    "int64": pd.Series([1, -2, 2**62], dtype="int64"),
    "int8": pd.Series([1, -2, 3], dtype="int8"),
    "uint64": pd.Series([0, 1, 2**64 - 1], dtype="uint64"),
    "Int64 with missing": pd.Series([1, None, 2**62], dtype="Int64"),
    "float64": pd.Series([1.5, np.nan, -0.0]),
    "float32": pd.Series([1.5, np.nan, 3.0], dtype="float32"),
    "bool": pd.Series([True, False, True]),
    "boolean with missing": pd.Series([True, None, False], dtype="boolean"),
    "object text with None": pd.Series(["a", None, "NA"], dtype=object),
    "object all None": pd.Series([None, None, None], dtype=object),
    "string": pd.Series(["a", None, "long text, with a comma"], dtype="string"),
    "string[pyarrow]": pd.Series(["a", None, "c"], dtype="string[pyarrow]"),
    "category with unused": pd.Categorical(["x", "y", None], categories=["x", "y", "z"]),
    "category ordered": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "mid", "hi"], ordered=True),
    "category of ints": pd.Categorical([1, 2, None], categories=[3, 1, 2]),
    "category of ints ordered": pd.Categorical([1, 2, 1], categories=[3, 1, 2], ordered=True),
    "category of floats": pd.Categorical([1.5, None, 1.5], categories=[1.5, 2.5]),
    "category of bools": pd.Categorical([True, False, None]),
    "category of string dtype": pd.Categorical(["a", "b", None], categories=pd.Index(["a", "b", "c"], dtype="string")),
    "category of dates": pd.Categorical(pd.to_datetime(["2024-01-01", "2024-01-02", None]),
                                        categories=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])),
    "datetime64[ns]": pd.Series(pd.to_datetime(NAT)),
    "datetime64[us]": pd.Series(pd.to_datetime(NAT)).astype("datetime64[us]"),
    "datetime Europe/Berlin": pd.Series(pd.to_datetime(NAT)).dt.tz_localize("Europe/Berlin"),
    "datetime UTC": pd.Series(pd.to_datetime(NAT)).dt.tz_localize("UTC"),
    "timedelta64": pd.Series(pd.to_timedelta(["1 day", "2 hours 3 us", None])),
}
if hasattr(pd.StringDtype(), "na_value"):  # pandas 2.3+: the "str" variant, NaN as its missing value
    DTYPES["string with NaN missing"] = pd.Series(["a", None, "c"], dtype=pd.StringDtype("python", na_value=np.nan))


def all_dtypes() -> pd.DataFrame:
    return pd.DataFrame(DTYPES)


def round_trip(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    assert write_parquet(df, path) == path
    return read_parquet(path)


@pytest.mark.parametrize("name", list(DTYPES))
def test_each_dtype_survives_a_round_trip_exactly(name, tmp_path):
    df = pd.DataFrame({name: DTYPES[name]})
    back = round_trip(df, tmp_path / "t.parquet")
    assert_frame_equal(back, df, check_dtype=True, check_categorical=True, check_exact=True)
    assert repr(back[name].dtype) == repr(df[name].dtype)  # e.g. string storage, categories' own dtype


def test_a_table_of_every_dtype_and_its_empty_slice_survive(tmp_path):
    df = all_dtypes()
    assert_frame_equal(round_trip(df, tmp_path / "all.parquet"), df, check_dtype=True, check_exact=True)
    empty = df.iloc[:0].reset_index(drop=True)
    assert_frame_equal(round_trip(empty, tmp_path / "empty.parquet"), empty, check_dtype=True)


def test_text_survives_byte_for_byte(tmp_path):
    texts = ["=1+1", "", " ", "a\r\nb", "tab\there", "quote \" and , comma", "\x00nul", "emoji \U0001f600",
             "x" * 200_000, "NA", "None", "nan", None]
    df = pd.DataFrame({"text": pd.Series(texts, dtype=object)})
    back = round_trip(df, tmp_path / "t.pq")
    assert back["text"].tolist() == texts  # unlike CSV, "" stays "" and NUL is kept


def test_index_is_not_written_and_attrs_stay_out_of_the_file(tmp_path):
    df = pd.DataFrame({"a": [1, 2, 3]}, index=[7, 8, 9])
    df.attrs["synthtext_report"] = Path("/somewhere")  # not JSON: pandas' to_parquet would fail on it
    back = round_trip(df, tmp_path / "t.parquet")
    assert_frame_equal(back, df.reset_index(drop=True))
    metadata = pq.read_schema(tmp_path / "t.parquet").metadata
    assert back.attrs == {} and b"PANDAS_ATTRS" not in metadata
    assert not json.loads(metadata[b"pandas"]).get("attributes")
    df.attrs["synthtext_report"] = "/home/me/privacy_reports/run-1"  # JSON: pyarrow would store it
    round_trip(df, tmp_path / "t.parquet")
    assert b"privacy_reports" not in (tmp_path / "t.parquet").read_bytes()
    assert df.attrs  # the frame passed in keeps its attrs


def test_an_index_stored_by_another_writer_named_becomes_a_column_unnamed_is_dropped(tmp_path):
    named = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="id"))
    named.to_parquet(tmp_path / "named.parquet")  # pandas' own writer stores the index
    assert_frame_equal(read_parquet(tmp_path / "named.parquet"), pd.DataFrame({"id": ["x", "y"], "a": [1, 2]}))
    pd.DataFrame({"a": [1, 2, 3]}).iloc[[2, 0]].to_parquet(tmp_path / "filtered.parquet")
    assert_frame_equal(read_parquet(tmp_path / "filtered.parquet"), pd.DataFrame({"a": [3, 1]}))
    pd.DataFrame({"a": [1, 2, 3]}).iloc[1:].to_parquet(tmp_path / "range.parquet")  # a RangeIndex from 1
    assert_frame_equal(read_parquet(tmp_path / "range.parquet"), pd.DataFrame({"a": [2, 3]}))
    clash = pd.DataFrame({"id": [1, 2]}, index=pd.Index(["x", "y"], name="id"))
    clash.to_parquet(tmp_path / "clash.parquet")
    with pytest.raises(DataError, match="index named 'id' and also a column"):
        read_parquet(tmp_path / "clash.parquet")


def test_a_file_from_pandas_own_writer_reads_with_its_dtypes(tmp_path):
    df = all_dtypes()[["Int64 with missing", "string", "category with unused", "datetime Europe/Berlin"]]
    df.to_parquet(tmp_path / "pandas.parquet", index=False)
    assert_frame_equal(read_table(tmp_path / "pandas.parquet"), df, check_dtype=True)


# --- the format follows the path's name -------------------------------------------------------------

@pytest.mark.parametrize("path, parquet", [
    ("t.parquet", True), ("t.pq", True), ("T.PARQUET", True), ("dir.csv/t.Pq", True), ("t.csv.parquet", True),
    ("t.csv", False), ("t.parquet.csv", False), ("t.txt", False), ("t", False), ("-", False),
    ("parquet", False), (".parquet", False),  # a dot file has no suffix
])
def test_parquet_only_for_parquet_names(path, parquet):
    assert is_parquet_path(path) is parquet
    assert is_parquet_path(Path(path)) is parquet


def test_every_other_name_is_still_csv(tmp_path):
    df = pd.DataFrame({"id": ["007", "008"], "n": [1, 2], "text": ["a, b", None]})
    write_table(df, tmp_path / "t.csv")
    write_csv(df, tmp_path / "reference.csv")
    assert (tmp_path / "t.csv").read_bytes() == (tmp_path / "reference.csv").read_bytes()
    write_table(df, tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_bytes() == (tmp_path / "reference.csv").read_bytes()
    assert_frame_equal(read_table(tmp_path / "t.csv"), read_csv(tmp_path / "reference.csv"))
    (tmp_path / "semi.csv").write_bytes("a\n\xe9\n".encode("cp1252"))  # read_csv's options pass through
    assert read_table(tmp_path / "semi.csv", encoding="cp1252")["a"].tolist() == ["\xe9"]


def test_stdout_is_csv_and_parquet_refuses_it(tmp_path, capfd):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    write_table(df, "-")
    assert capfd.readouterr().out == "a,b\n1,x\n2,y\n"
    with pytest.raises(DataError, match=r"cannot write Parquet to stdout \('-'\): Parquet is binary"):
        write_parquet(df, "-")


def test_a_parquet_file_named_csv_is_refused_with_the_fix(tmp_path):
    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")
    os.replace(tmp_path / "t.parquet", tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"t.csv is a Parquet file, but its name does not end in .parquet or .pq"):
        read_table(tmp_path / "t.csv")


def test_parquet_ignores_the_csv_options(tmp_path):
    df = pd.DataFrame({"a": ["\xe9"]})
    write_parquet(df, tmp_path / "t.parquet")
    assert_frame_equal(read_table(tmp_path / "t.parquet", encoding="cp1252", infer_types=False,
                                  trust_quotes=True), df)


def test_neutralize_formulas_keeps_dtypes(tmp_path):
    df = pd.DataFrame({"text": pd.Series(["=SUM(A1)", None, "fine"], dtype="string"),
                       "obj": ["-1", "+2", None],
                       "cat": pd.Categorical(["@x", "y", "@x"], categories=["@x", "y", "unused"]),
                       "n": [-1, 2, 3]})
    write_table(df, tmp_path / "t.parquet", neutralize_formulas=True)
    back = read_table(tmp_path / "t.parquet")
    assert back["text"].dtype == df["text"].dtype and back["text"].tolist()[::2] == ["'=SUM(A1)", "fine"]
    assert back["obj"].tolist() == ["'-1", "'+2", None]
    assert list(back["cat"].cat.categories) == ["'@x", "y", "unused"] and back["cat"].tolist()[0] == "'@x"
    assert back["n"].tolist() == [-1, 2, 3]
    write_table(df, tmp_path / "only.parquet", neutralize_formulas=["obj"])
    only = read_table(tmp_path / "only.parquet")
    assert only["obj"].tolist() == ["'-1", "'+2", None] and only["text"].tolist()[0] == "=SUM(A1)"
    assert df["obj"].tolist() == ["-1", "+2", None]  # the frame passed in is not modified


# --- atomic writes ------------------------------------------------------------------------------------

def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".synthtext-"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "out.parquet"
    old = pd.DataFrame({"a": [1, 2]})
    write_parquet(old, target)
    before = target.read_bytes()

    def half_then_fail(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with pytest.raises(DataError, match="cannot write to .*out.parquet: No space left on device"):
        write_parquet(pd.DataFrame({"a": [3]}), target)
    assert target.read_bytes() == before and leftovers(tmp_path) == []
    monkeypatch.undo()

    with pytest.raises(DataError):  # a conversion that fails writes nothing either
        write_parquet(pd.DataFrame({"mixed": ["a", 1]}), target)
    assert target.read_bytes() == before and leftovers(tmp_path) == []

    with pytest.raises(KeyboardInterrupt):  # nor does Ctrl-C in the middle
        monkeypatch.setattr(pq, "write_table", lambda table, where, **kw: (where.write(b"PAR1"), _interrupt()))
        write_parquet(pd.DataFrame({"a": [3]}), target)
    assert target.read_bytes() == before and leftovers(tmp_path) == []
    monkeypatch.undo()

    write_parquet(pd.DataFrame({"a": [3]}), target)  # success replaces it
    assert read_parquet(target)["a"].tolist() == [3] and leftovers(tmp_path) == []


def _interrupt():
    raise KeyboardInterrupt


def test_writes_through_a_symlink_replace_its_target_and_keep_the_mode(tmp_path):
    real = tmp_path / "real.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), real)
    os.chmod(real, 0o640)
    link = tmp_path / "link.parquet"
    link.symlink_to(real)
    write_parquet(pd.DataFrame({"a": [2]}), link)
    assert link.is_symlink() and read_parquet(real)["a"].tolist() == [2]
    assert (real.stat().st_mode & 0o777) == 0o640


def test_write_location_errors(tmp_path):
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(DataError, match="directory .* does not exist"):
        write_parquet(df, tmp_path / "missing" / "t.parquet")
    (tmp_path / "d.parquet").mkdir()
    with pytest.raises(DataError, match="it is a directory. Give a file name"):
        write_parquet(df, tmp_path / "d.parquet")


# --- one clear DataError for every bad input -------------------------------------------------------------

def bad_file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def valid_bytes(tmp_path: Path) -> bytes:
    write_parquet(pd.DataFrame({"a": np.arange(100), "t": [f"text {i}" for i in range(100)]}), tmp_path / "ok.parquet")
    return (tmp_path / "ok.parquet").read_bytes()


def test_a_csv_file_named_parquet_says_to_rename_it(tmp_path):
    path = bad_file(tmp_path, "renamed.parquet", b"a,b\n1,2\n")
    with pytest.raises(DataError, match=r"renamed.parquet does not look like a Parquet file: it is text \(a CSV "
                                        r"file, perhaps\).*name it with a .csv ending"):
        read_table(path)


@pytest.mark.parametrize("content, message", [
    (gzip.compress(b"a,b\n1,2\n"), "it is a gzip-compressed file"),
    (b"PK\x03\x04" + b"\x00" * 20, "it is a ZIP archive"),
    (b"\x00\x01\x02\xff\xfe\x00garbage", "it does not start with the Parquet signature 'PAR1'"),
    (b"PARE" + b"\x00" * 20 + b"PARE", "is an encrypted Parquet file"),
    (b"", r"is empty \(0 bytes\), not a Parquet file"),
])
def test_files_that_are_not_parquet(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        read_parquet(bad_file(tmp_path, "x.parquet", content))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*nope.parquet. Check the path"):
        read_table(tmp_path / "nope.parquet")
    (tmp_path / "dataset.parquet").mkdir()  # as Spark writes a partitioned dataset
    with pytest.raises(DataError, match=r"dataset.parquet is a directory, not a Parquet file.*combine"):
        read_table(tmp_path / "dataset.parquet")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = bad_file(tmp_path, "locked.parquet", valid_bytes(tmp_path))
    os.chmod(path, 0)
    with pytest.raises(DataError, match="permission denied"):
        read_table(path)


def test_a_file_cut_off_while_written(tmp_path):
    data = valid_bytes(tmp_path)
    with pytest.raises(DataError, match="damaged or incomplete: it starts like a Parquet file but does not end"):
        read_table(bad_file(tmp_path, "cut.parquet", data[: len(data) // 2]))


def test_a_damaged_footer_and_damaged_pages(tmp_path):
    data = valid_bytes(tmp_path)
    footer = struct.unpack("<i", data[-8:-4])[0]
    broken_footer = data[: -8 - footer] + b"\xff" * footer + data[-8:]
    with pytest.raises(DataError, match=r"cannot read .*footer.parquet as Parquet: .*The file is damaged or was "
                                        "not written completely; write it again."):
        read_table(bad_file(tmp_path, "footer.parquet", broken_footer))
    broken_pages = data[:4] + b"\x00" * (len(data) - 12 - footer) + data[-8 - footer:]
    with pytest.raises(DataError, match=r"cannot read .*pages.parquet as Parquet: .*damaged") as raised:
        read_table(bad_file(tmp_path, "pages.parquet", broken_pages))
    assert "\n" not in str(raised.value)  # pyarrow's two-line detail is one line in the message


def test_damaged_synthtext_metadata(tmp_path):
    table = pa.Table.from_pandas(pd.DataFrame({"c": [1, 2]}), preserve_index=False)
    notes = {"version": 1, "categories": {"c": {"ordered": False, "values": "not base64!"}}, "strings": {}}
    table = table.replace_schema_metadata({**table.schema.metadata, b"synthtext": json.dumps(notes).encode()})
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(DataError, match="types noted in its synthtext metadata cannot be restored"):
        read_table(tmp_path / "t.parquet")


def test_duplicate_column_names(tmp_path):
    pq.write_table(pa.table([pa.array([1]), pa.array([2])], names=["a", "a"]), tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"duplicate column names in .*dup.parquet: 'a' \(columns 1 and 2\)"):
        read_table(tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"duplicate column names in the table to write: 'a' \(columns 1 and 2\)"):
        write_table(pd.DataFrame([[1, 2]], columns=["a", "a"]), tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_column_names_that_are_not_text(tmp_path):
    with pytest.raises(DataError, match=r"column names must be text, and 0 \(int\), 1 \(int\) are not.*str\(c\)"):
        write_table(pd.DataFrame([[1, 2]]), tmp_path / "out.parquet")
    with pytest.raises(DataError, match=r"\('a', 'b'\) \(tuple\)"):
        write_table(pd.DataFrame([[1]], columns=pd.MultiIndex.from_tuples([("a", "b")])), tmp_path / "out.parquet")
    with pytest.raises(DataError, match="the table has no columns"):
        write_table(pd.DataFrame(), tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_a_column_pyarrow_cannot_hold(tmp_path):
    with pytest.raises(DataError, match=r"cannot write .*out.parquet as Parquet: .*mixed.*one type.*astype\(str\)"):
        write_table(pd.DataFrame({"mixed": ["a", 1, None]}), tmp_path / "out.parquet")
    with pytest.raises(DataError, match="not valid Unicode"):
        write_table(pd.DataFrame({"t": ["bad \ud800 surrogate"]}), tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_pyarrow_missing_names_the_install_command(tmp_path, monkeypatch):
    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"reading a Parquet file needs pyarrow, which is not installed. Install "
                                        r"it with: pip install pyarrow"):
        read_table(tmp_path / "t.parquet")
    with pytest.raises(DataError, match="writing a Parquet file needs pyarrow.*pip install pyarrow"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "new.parquet")
    assert not (tmp_path / "new.parquet").exists()
    write_table(pd.DataFrame({"a": [1]}), tmp_path / "still.csv")  # CSV needs no pyarrow
    assert read_table(tmp_path / "still.csv")["a"].tolist() == [1]


# --- the CLI -----------------------------------------------------------------------------------------------

def reviews(n: int = 120) -> pd.DataFrame:
    products = ["dress", "jacket", "jeans", "sweater"]
    texts = [f"the {products[i % 4]} was {'great' if i % 3 else 'too small'} and i would buy it again {i}"
             for i in range(n)]
    texts[0] = "My name is John Smith, please email me at john.smith@example.com about the torn dress."
    return pd.DataFrame({
        "product": pd.Categorical([products[i % 4] for i in range(n)], categories=[*products, "hat"]),
        "rating": pd.array([1 + i % 5 if i % 11 else None for i in range(n)], dtype="Int64"),
        "vip": pd.array([i % 3 == 0 if i % 7 else None for i in range(n)], dtype="boolean"),
        "when": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Berlin"),
        "comment": pd.Series(texts, dtype="string"),
    })


def test_cli_scan_reads_parquet(tmp_path, capsys):
    src = tmp_path / "complaints.parquet"
    write_table(reviews(3), src)
    code = cli.main(["scan", str(src), "--format", "json", "--columns", "comment", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["counts"]["comment"]["EMAIL_ADDRESS"] == 1 and result["counts"]["comment"]["PERSON"] == 1
    bad = bad_file(tmp_path, "renamed.parquet", b"a,b\n1,2\n")
    code = cli.main(["scan", str(bad), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "does not look like a Parquet file" in err and "Traceback" not in err


def test_cli_synthesize_and_sample_parquet_in_parquet_out_keep_dtypes(tmp_path, capfd):
    src, dst, model = tmp_path / "in.parquet", tmp_path / "out.parquet", tmp_path / "model"
    df = reviews(40)
    write_table(df, src)
    before = src.read_bytes()
    code = cli.main(["synthesize", str(src), "-o", str(dst), "--text-columns", "comment", "--conditioning-columns",
                     "product", "--structured", "keep", "--epochs", "1", "--seed", "1", "--model", "builtin",
                     "--model-size", "tiny", "--max-new-tokens", "8", "--min-records", "20", "--quiet",
                     "--save-model", str(model)])
    assert code == 0, capfd.readouterr().err
    assert src.read_bytes() == before
    out = read_table(dst)
    assert list(out.columns) == list(df.columns) and len(out) == len(df)
    assert out.dtypes.to_dict() == df.dtypes.to_dict()
    assert list(out["product"].cat.categories) == [*df["product"].cat.categories]  # "hat" unused, kept
    assert out["comment"].tolist() != df["comment"].tolist()  # the text is generated

    conditions = tmp_path / "conditions.pq"
    write_table(df[["product"]].iloc[:5].reset_index(drop=True), conditions)
    code = cli.main(["sample", str(model), "--rows", "5", "--conditions", str(conditions), "-o", "-", "--quiet"])
    stdout, err = capfd.readouterr()
    assert code == 0, err
    sampled = pd.read_csv(io.StringIO(stdout))  # '-' is CSV, whatever the input was
    assert sampled["product"].tolist() == df["product"].iloc[:5].tolist()

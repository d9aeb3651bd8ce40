"""Bad input, with nothing lost: every case gives one clear message and exit code 2, the input is never
modified, and no output (nor a temporary file) is left behind. Usage and data problems are found before
any expensive work: a guard makes the test fail if training or SDV starts.

Deliberate behaviours for inputs that are odd but usable (each tested below):
* a text column whose cells are all the same text: not detected as text (the rule wants mostly distinct
  values; the message says so and how to name it), but trained on when named with --text-columns;
* very long cells: read in full (the PII scan reads all of it), trained on their first max_length tokens;
* numbers inside a text column of a CSV file are text (everything in a CSV is); a column of numbers named
  as a text column is refused; in a DataFrame, non-string cells in a text column are refused (the PII scan
  reads strings only, so they would be trained on unredacted).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import synthtext.io as sio
import synthtext.io.atomic as atomic_io
from tiny_models import reseal
from synthtext import cli, pii
from synthtext.errors import DataError
from synthtext.io import read_csv
from synthtext.synthesizer import TextSynthesizer

FAST = ["--model", "builtin", "--model-size", "tiny", "--epochs", "1", "--max-new-tokens", "8", "--quiet"]
# Fast training runs: no DP (so a dozen rows are enough), structured columns kept, tiny model.
TRAIN_FAST = [*FAST, "--epsilon", "none", "--structured", "keep"]


class ExpensiveWorkStarted(BaseException):
    """Not an Exception: the CLI's last-resort handler must not turn it into exit code 1."""


@pytest.fixture(scope="module", autouse=True)
def shared_analyzer():
    pii.default_analyzer()


@pytest.fixture
def no_expensive_work(monkeypatch):
    """Refusals must come before training or SDV (or the scan, where the scan is the work)."""
    import synthtext.tabular
    import synthtext.train

    def stop(*args, **kwargs):
        raise ExpensiveWorkStarted

    monkeypatch.setattr(synthtext.train, "train_private", stop)
    monkeypatch.setattr(synthtext.tabular.StructuredSynthesizer, "fit", stop)


def run(argv) -> tuple[int, str, str]:
    """cli.main in-process; argparse usage errors (SystemExit) count as their exit code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory``: its bytes and modification time."""
    return {p.relative_to(directory).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


NO_DP_WARNING = "synthtext: warning: --epsilon none: training WITHOUT differential privacy"


def assert_refused(code: int, err: str, message: str) -> None:
    if err.startswith(NO_DP_WARNING):  # printed by every --epsilon none run (TRAIN_FAST), even under -q
        err = err.split("\n", 1)[1]
    assert code == 2, err
    assert err.startswith("synthtext: error: ") and err.count("\n") == 1, err  # exactly one message
    assert message in err, err
    assert "Traceback" not in err


def texts(n: int, start: int = 0) -> list[str]:
    return [f"the {['dress', 'coat', 'skirt'][i % 3]} number {i} was lovely and fits well, would buy again"
            for i in range(start, start + n)]


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


GOOD = pd.DataFrame({"product": ["a", "b", "c"] * 40, "rating": list(range(1, 6)) * 24, "review": texts(120)})

# UTF-8 up to line 3, then Latin-1 (a file appended to from two systems)
MIXED = ("product,review\na,caf\u00e9 au lait was lovely and fine\n".encode()
         + "b,caf\u00e9 cr\u00e8me was lovely and fine\n".encode("latin-1"))
MIXED_OFFSET = MIXED.index(b"b,caf") + len("b,caf")

# name -> (input bytes, extra arguments, the message)
CASES = {
    "empty file": (b"", [], "is empty (0 bytes)"),
    "blank lines only": (b"\n \n\t\n", [], "only blank lines and no header row"),
    "header only": (b"product,review\n", [], "no rows"),
    "one row": (b"product,review\na,the dress was lovely and fits well and i would buy it again\n", [],
                "1 rows is too few for differentially private training"),
    "all-missing text column, detected": (b"product,review\n" + b"a,\n" * 120, [], "no text column found"),
    "all-missing text column, named": (b"product,review\n" + b"a,\n" * 120, ["--text-columns", "review"],
                                       "text column 'review' is empty"),
    "blank text column, named": (b"product,review\n" + b'a," "\n' * 120, ["--text-columns", "review"],
                                 "text column 'review' is empty"),
    "numbers named as text": (csv_bytes(GOOD), ["--text-columns", "rating"], "'rating' hold no text"),
    "mixed encodings": (MIXED, [], f"is not valid utf-8 text: byte 0xe9 at offset {MIXED_OFFSET} (line 3)"),
    "latin-1 file read as utf-8": ("product,review\na,na\u00efve d\u00e9j\u00e0 vu\n".encode("latin-1"), [],
                                   "--encoding cp1252"),
    "unknown encoding": (csv_bytes(GOOD), ["--encoding", "klingon"], "unknown encoding 'klingon'"),
    "utf-16 file": ("product,review\na,b c d\n".encode("utf-16"), [], "--encoding utf-16"),
    "unclosed quote": (b'product,review\na,"the quote never ends\nb,more text here\n', [],
                       "not valid CSV: EOF inside string"),
    "row with too many fields": (b"product,review\na,one,two\n", [], "not valid CSV"),
    "duplicate headers": (b"review,review\nx y z,a b c\n", [], "duplicate column names"),
    "unknown text column": (csv_bytes(GOOD), ["--text-columns", "nope"], "unknown column(s) 'nope'"),
    "unknown conditioning column": (csv_bytes(GOOD), ["--conditioning-columns", "nope"], "unknown column(s)"),
    "identical text, detected": (csv_bytes(GOOD.assign(review="the same review for every row of it")), [],
                                 "mostly distinct"),
    "too small for epsilon": (csv_bytes(GOOD), ["--epsilon", "0.05"], "needs a noise multiplier above"),
    "too few rows for DP": (csv_bytes(GOOD.head(40)), [], "rows is too few for differentially private"),
    "gzip file": (b"\x1f\x8b\x08\x00rest", [], "gzip-compressed"),
    "xlsx workbook": (b"PK\x03\x04rest", [], "export the sheet as CSV"),
    "NUL bytes": (b"a,b\nx\x00y,z\n", [], "NUL bytes"),
    "negative epsilon": (csv_bytes(GOOD), ["--epsilon", "-1"], "epsilon"),
}


@pytest.mark.parametrize("name", CASES)
def test_synthesize_refuses_bad_input_before_any_work(name, tmp_path, no_expensive_work):
    data, extra, message = CASES[name]
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    before = snapshot(tmp_path)
    code, out, err = run(["synthesize", src, "-o", tmp_path / "out.csv", *FAST, *extra])
    assert_refused(code, err, message)
    assert out == ""
    assert snapshot(tmp_path) == before  # input untouched (bytes and mtime), no output, no temp file


@pytest.mark.parametrize("name", ["empty file", "unclosed quote", "mixed encodings", "duplicate headers",
                                  "gzip file", "utf-16 file"])
def test_scan_and_fit_refuse_unreadable_files_the_same_way(name, tmp_path, no_expensive_work):
    data, _, message = CASES[name]
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    before = snapshot(tmp_path)
    for argv in (["scan", src, "-o", tmp_path / "scan.json", "--format", "json"],
                 ["fit", src, "--save-model", tmp_path / "model", *FAST]):
        code, _, err = run(argv)
        assert_refused(code, err, message)
        assert snapshot(tmp_path) == before and not (tmp_path / "model").exists()


def test_missing_input_and_directory_input(tmp_path, no_expensive_work):
    code, _, err = run(["synthesize", tmp_path / "nope.csv", "-o", tmp_path / "out.csv", *FAST])
    assert_refused(code, err, "file not found")
    code, _, err = run(["synthesize", tmp_path, "-o", tmp_path / "out.csv", *FAST])
    assert_refused(code, err, "is a directory, not a CSV file")
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_usage_errors(tmp_path, no_expensive_work):
    src = tmp_path / "in.csv"
    src.write_bytes(csv_bytes(GOOD))
    code, _, err = run(["synthesize", src, "-o", tmp_path / "out.csv", "--epsilon", "lots"])
    assert code == 2 and "epsilon must be a number" in err and "Traceback" not in err
    code, _, err = run(["synthesize", src, "-o", tmp_path / "out.csv", "--text-columns", "a,,b"])
    assert code == 2 and "empty column name" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# ------------------------------------------------------------------------------- input = no crash, ever

CSV_ALPHABET = st.sampled_from(list('ab ,"\n\r\t;=-+@\\\'') + ["\u00e9", "\u4e2d", "\x00", "\ufeff", "NA"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=300),
                      st.lists(CSV_ALPHABET, max_size=150).map(lambda parts: "".join(parts).encode("utf-8"))))
def test_any_bytes_give_a_result_or_one_clear_message(data):
    """Random bytes and CSV-like junk: scan succeeds or refuses with one message; synthesize (300 bytes
    are too few rows for DP, so it never trains) refuses with one message; nothing else is written."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in.csv"
        src.write_bytes(data)
        before = snapshot(tmp)
        code, out, err = run(["scan", src, "--format", "json", "-q"])
        if code == 0:
            assert json.loads(out)["n_rows"] >= 0
        else:
            assert_refused(code, err, "")
        code, _, err = run(["synthesize", src, "-o", tmp / "out.csv", *FAST])
        assert_refused(code, err, "")
        assert snapshot(tmp) == before


# ------------------------------------------------------------------------------- odd but usable input


@pytest.fixture(scope="module")
def long_cells_run(tmp_path_factory):
    """`synthtext synthesize` on a table with 20,000-character cells, saving the model (used below)."""
    tmp = tmp_path_factory.mktemp("long")
    long_text = "a very long review " * 1_100  # 20,900 characters
    reviews = [long_text + str(i) if i < 3 else text for i, text in enumerate(texts(12))]
    reviews[5] = "size 8, 12 or 14? 3 stars"  # numbers inside a text cell are text
    src = tmp / "in.csv"
    src.write_bytes(csv_bytes(pd.DataFrame({"product": ["a", "b", "c"] * 4, "review": reviews})))
    before = src.read_bytes(), src.stat().st_mtime_ns
    code, _, err = run(["synthesize", src, "-o", tmp / "out.csv", "--save-model", tmp / "model", *TRAIN_FAST])
    return code, err, tmp, before


def test_long_cells_are_read_in_full_and_trained_on_their_first_max_length_bytes(long_cells_run):
    code, err, tmp, before = long_cells_run
    assert code == 0, err
    src = tmp / "in.csv"
    assert (src.read_bytes(), src.stat().st_mtime_ns) == before
    assert read_csv(src)["review"][0] == "a very long review " * 1_100 + "0"  # nothing cut on reading
    meta = json.loads((tmp / "model" / "text_model_0" / "synthtext_model.json").read_text())
    assert meta["train_config"]["max_length"] is None  # the model's default: 512 bytes for the built-in one
    out = read_csv(tmp / "out.csv")
    assert len(out) == 12 and list(out.columns) == ["product", "review"]
    assert all(len(t) <= 8 for t in out["review"].dropna())  # --max-new-tokens 8 bytes: at most 8 characters


def test_encode_examples_cuts_long_texts_to_max_length():
    from synthtext.models import ByteTokenizer, encode_examples

    ex = encode_examples(ByteTokenizer(), ["p:"], ["x" * 20_000], max_length=512)
    assert len(ex.input_ids[0]) == 512 and ex.n_truncated == 1


def test_text_column_of_identical_cells_trains_when_named(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(csv_bytes(pd.DataFrame({"product": ["a", "b"] * 6,
                                            "review": ["the same review text for every row"] * 12})))
    code, _, err = run(["synthesize", src, "-o", tmp_path / "out.csv", "--text-columns", "review", *TRAIN_FAST])
    assert code == 0, err
    out = read_csv(tmp_path / "out.csv", infer_types=False)
    assert len(out) == 12 and list(out.columns) == ["product", "review"]


def test_non_string_cells_in_a_dataframe_text_column_are_refused():
    df = pd.DataFrame({"product": ["a", "b"] * 6, "review": texts(12)})
    df.loc[4, "review"] = 4111111111111111  # a card number as an int: the scan would never see it
    with pytest.raises(DataError, match=r"text column 'review' holds 1 value\(s\) that are not text "
                                        r"\(first: int in row 4\)") as exc:
        TextSynthesizer(["review"], epsilon=None, model="builtin", model_size="tiny", structured="keep").fit(df)
    assert "4111" not in str(exc.value)


# ------------------------------------------------------------------------------- unwritable outputs


@pytest.fixture
def good_csv(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(csv_bytes(GOOD))
    return src


def _synthesize_refused(tmp_path, argv, message):
    before = snapshot(tmp_path)
    code, _, err = run(argv)
    assert_refused(code, err, message)
    assert snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".synthtext-*")]


def test_output_directory_missing(tmp_path, good_csv, no_expensive_work):
    _synthesize_refused(tmp_path, ["synthesize", good_csv, "-o", tmp_path / "no" / "out.csv", *FAST],
                        "directory " + str(tmp_path / "no") + " does not exist")


def test_output_is_a_directory(tmp_path, good_csv, no_expensive_work):
    (tmp_path / "d").mkdir()
    _synthesize_refused(tmp_path, ["synthesize", good_csv, "-o", tmp_path / "d", *FAST], "it is a directory")


def test_output_is_the_input(tmp_path, good_csv, no_expensive_work):
    _synthesize_refused(tmp_path, ["synthesize", good_csv, "-o", good_csv, *FAST], "is the input file")


def test_output_directory_not_writable_simulated(tmp_path, good_csv, no_expensive_work, monkeypatch):
    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic_io.tempfile, "mkstemp", deny)
    _synthesize_refused(tmp_path, ["synthesize", good_csv, "-o", tmp_path / "out.csv", *FAST],
                        "Permission denied")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root and Windows ignore mode bits")
def test_output_directory_read_only(tmp_path, good_csv, no_expensive_work):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _synthesize_refused(tmp_path, ["synthesize", good_csv, "-o", locked / "out.csv", *FAST],
                            "Permission denied")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("setup, argv, message", [
    ("non-empty dir", ["--save-model", "{d}"], "is not empty; pass --overwrite or"),
    ("unrelated dir", ["--save-model", "{d}", "--overwrite"], "refusing to replace"),
    ("file", ["--save-model", "{d}"], "it is a file, not a directory"),
    ("file", ["--save-model", "{d}", "--overwrite"], "it is a file, not a directory"),
    ("", ["--save-model", "{tmp}/no/model"], "does not exist"),
    ("", ["--save-model", "{tmp}/out.csv"], "is also the output file"),
    ("file", ["--report", "{d}"], "it is a file. Give a directory"),
])
def test_model_and_report_locations_are_checked_before_training(tmp_path, good_csv, no_expensive_work,
                                                                setup, argv, message):
    target = tmp_path / "target"
    if setup in ("non-empty dir", "unrelated dir"):
        target.mkdir()
        (target / "notes.txt").write_text("keep me\n")
    elif setup == "file":
        target.write_text("keep me\n")
    argv = [a.format(d=target, tmp=tmp_path) for a in argv]
    # the snapshot also shows that what was in the way (notes.txt, the file) is untouched
    _synthesize_refused(tmp_path, ["synthesize", good_csv, "-o", tmp_path / "out.csv", *FAST, *argv], message)
    if argv[0] == "--save-model" and not argv[1].endswith("out.csv"):
        _synthesize_refused(tmp_path, ["fit", good_csv, *FAST, *argv], message)


def test_scan_output_is_checked_before_scanning(tmp_path, good_csv, monkeypatch):
    def stop(*args, **kwargs):
        raise ExpensiveWorkStarted

    monkeypatch.setattr(pii, "scan_pii", stop)
    _synthesize_refused(tmp_path, ["scan", good_csv, "-o", tmp_path / "no" / "x.json"], "does not exist")
    _synthesize_refused(tmp_path, ["scan", good_csv, "-o", good_csv], "is the input file")


def test_audit_output_is_checked_before_training(tmp_path, good_csv, monkeypatch):
    import importlib

    def stop(*args, **kwargs):
        raise ExpensiveWorkStarted

    monkeypatch.setattr(importlib.import_module("synthtext.audit"), "audit", stop)  # the module, not the function
    _synthesize_refused(tmp_path, ["audit", good_csv, "-o", tmp_path / "no" / "audit.json", "--model", "builtin", "--model-size", "tiny"],
                        "does not exist")


def test_a_failed_model_save_leaves_no_csv_and_no_report(tmp_path, monkeypatch):
    src = tmp_path / "in.csv"
    src.write_bytes(csv_bytes(pd.DataFrame({"product": ["a", "b"] * 6, "review": texts(12)})))

    def disk_full(self, path, **kwargs):
        raise DataError(f"cannot save to {path}: No space left on device.")

    monkeypatch.setattr(TextSynthesizer, "save", disk_full)
    _synthesize_refused(tmp_path, ["synthesize", src, "-o", tmp_path / "out.csv", "--save-model",
                                   tmp_path / "model", "--report", tmp_path, *TRAIN_FAST], "No space left on device")


# ------------------------------------------------------------------------------- saved model directories


def _damage(model: Path, how: str) -> str:
    """Damage the saved synthesizer ``model`` in one way; return the message expected."""
    weights = model / "text_model_0" / "model.safetensors"
    state = model / "synthesizer.json"
    if how == "missing directory":
        shutil.rmtree(model)
        return "does not exist"
    if how == "a file, not a directory":
        shutil.rmtree(model)
        model.write_text("{}")
        return "is a file, not a directory"
    if how == "not a saved synthesizer":
        state.unlink()
        return "not a saved synthtext synthesizer (no synthesizer.json)"
    if how == "state is not JSON":
        state.write_text(state.read_text()[:40])
        return "synthesizer.json is corrupt"
    if how == "state from another version":
        state.write_text(json.dumps({**json.loads(state.read_text()), "version": 99}))
        return "written by another synthtext version (format 'synthtext-synthesizer' v99"
    if how == "state lacks a field":
        data = json.loads(state.read_text())
        del data["columns"]
        state.write_text(json.dumps(data))
        return "is damaged"
    if how == "state points outside":
        data = json.loads(state.read_text())
        data["text_models"] = {k: "../elsewhere" for k in data["text_models"]}
        state.write_text(json.dumps(data))
        return "is damaged"
    if how == "structured pool is not JSON":
        (model / "structured_pool.json").write_text("{not json")
        return "is damaged"
    if how == "weights truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
        return "cannot load the weights"
    if how == "weights are garbage":
        weights.write_bytes(b"\x00" * 64)
        return "cannot load the weights"
    if how == "weights missing":
        weights.unlink()
        return "cannot load the weights"
    if how == "model metadata from another version":
        meta = model / "text_model_0" / "synthtext_model.json"
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "format_version": 2}))
        return "unsupported format 'synthtext-model' v2"
    if how == "model metadata damaged":
        meta = model / "text_model_0" / "synthtext_model.json"
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "builtin_config": {"layers": "many"}}))
        return "is damaged"
    if how == "ledger missing":
        (model / "text_model_0" / "privacy_ledger.json").unlink()
        return "cannot read the metadata"
    for suffix in (".bin", ".pkl", ".pt", ".txt"):
        if how == f"a {suffix} file":
            (model / "text_model_0" / f"extra{suffix}").write_bytes(b"\x80\x04K\x01.")  # a pickle of 1
            return f"holds text_model_0/extra{suffix}, which is not a JSON or safetensors file"
    if how == "a symbolic link":
        (model / "link.json").symlink_to(state)
        return "holds link.json, which is a symbolic link"
    if how == "table epsilon forged":  # the case: 8 -> 0.1 in synthesizer.json, summary and all
        data = json.loads(state.read_text())
        data["privacy_ledger"]["epsilon"] = 0.1
        state.write_text(json.dumps(data))
        return "says the table's epsilon is 0.1, but its text models' ledgers give None"
    if how == "model ledger forged":
        ledger = model / "text_model_0" / "privacy_ledger.json"
        ledger.write_text(json.dumps({**json.loads(ledger.read_text()), "epsilon": 0.1}))
        return "the ledger says 'no DP' but carries epsilon=0.1"  # this run trains without DP
    if how == "a column removed":
        data = json.loads(state.read_text())
        at = data["columns"].index("product")
        del data["columns"][at], data["dtypes"][at]
        state.write_text(json.dumps(data))
        return "does not hold together"
    if how == "edited, manifest not updated":
        state.write_text(state.read_text().replace('"seed": 0', '"seed": 1'))
        return "does not match its manifest.json (changed since it was saved: synthesizer.json)"
    raise AssertionError(how)


DAMAGES = ["missing directory", "a file, not a directory", "not a saved synthesizer", "state is not JSON",
           "state from another version", "state lacks a field", "state points outside",
           "structured pool is not JSON", "weights truncated", "weights are garbage", "weights missing",
           "model metadata from another version", "model metadata damaged", "ledger missing",
           "a .bin file", "a .pkl file", "a .pt file", "a .txt file", "a symbolic link", "table epsilon forged",
           "model ledger forged", "a column removed", "edited, manifest not updated"]


@pytest.mark.parametrize("how", DAMAGES)
def test_sample_refuses_a_damaged_or_foreign_model_directory(how, long_cells_run, tmp_path):
    _, _, trained, _ = long_cells_run
    model = tmp_path / "model"
    shutil.copytree(trained / "model", model)
    conditions = tmp_path / "conditions.csv"
    conditions.write_text("product\na\nb\n")
    message = _damage(model, how)
    if how != "edited, manifest not updated":
        reseal(model)  # so each damage meets the check it is about, not the content hash in front of them all
    before = snapshot(tmp_path)
    code, _, err = run(["sample", model, "-o", tmp_path / "out.csv", "--conditions", conditions, "-q"])
    assert_refused(code, err, message)
    assert snapshot(tmp_path) == before  # nothing written, the model directory untouched


def test_sample_works_from_the_undamaged_copy(long_cells_run, tmp_path):
    """The control for the test above: the same copy, not damaged, samples fine."""
    _, _, trained, _ = long_cells_run
    shutil.copytree(trained / "model", tmp_path / "model")
    (tmp_path / "conditions.csv").write_text("product\na\nb\n")
    code, _, err = run(["sample", tmp_path / "model", "-o", tmp_path / "out.csv", "--conditions",
                        tmp_path / "conditions.csv", "-q"])
    assert code == 0, err
    assert read_csv(tmp_path / "out.csv")["product"].tolist() == ["a", "b"]


def test_sample_output_is_checked_before_loading(long_cells_run, tmp_path, monkeypatch):
    _, _, trained, _ = long_cells_run

    def stop(*args, **kwargs):
        raise ExpensiveWorkStarted

    monkeypatch.setattr(TextSynthesizer, "load", stop)
    _synthesize_refused(tmp_path, ["sample", trained / "model", "-o", tmp_path / "no" / "out.csv"],
                        "does not exist")


# ------------------------------------------------------------------------------- formula injection

TRIGGERS = ["=HYPERLINK(\"http://x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tleading tab",
            "\rleading CR", "plain text", " =space first"]


@pytest.fixture
def formula_sample(long_cells_run, tmp_path, monkeypatch):
    """`synthtext sample` whose model writes formula-like texts, with conditions that look like them too."""
    import synthtext.generate as generate

    _, _, trained, _ = long_cells_run

    def fake_generate(trained_model, prompts, **kwargs):
        return [TRIGGERS[i % len(TRIGGERS)] for i in range(len(prompts))]

    monkeypatch.setattr(generate, "generate_texts", fake_generate)
    conditions = tmp_path / "conditions.csv"
    conditions.write_bytes(csv_bytes(pd.DataFrame({"product": ["-1.50", "+1 555 0100", "=A1", "@x",
                                                               "a", "b", "c", "d"]})))

    def sample(*flags):
        out = tmp_path / "out.csv"
        code, _, err = run(["sample", trained / "model", "-o", out, "--conditions", conditions, "-q", *flags])
        assert code == 0, err
        return read_csv(out, infer_types=False)

    return sample


def test_generated_text_is_neutralized_by_default(formula_sample):
    out = formula_sample()
    expected = ["'" + t if t[0] in "=+-@\t\r" else t for t in TRIGGERS]
    assert out["review"].tolist() == expected
    # the other columns hold values from the user's own rows: written as given
    assert out["product"].tolist() == ["-1.50", "+1 555 0100", "=A1", "@x", "a", "b", "c", "d"]


def test_no_neutralize_formulas_writes_the_text_as_generated(formula_sample):
    assert formula_sample("--no-neutralize-formulas")["review"].tolist() == TRIGGERS


def test_neutralize_option_is_documented_in_help():
    for command in ("synthesize", "sample"):
        code, out, _ = run([command, "--help"])
        assert code == 0 and "--no-neutralize-formulas" in out and "formulas" in out


def test_write_csv_neutralizes_only_the_named_columns(tmp_path):
    from synthtext.io import write_csv

    df = pd.DataFrame({"text": ["=1+1", "-x", "ok"], "amount": ["-1.50", "+2", "3"], "n": [-3, 4, 5]})
    write_csv(df, tmp_path / "o.csv", neutralize_formulas=["text"])
    back = read_csv(tmp_path / "o.csv", infer_types=False)
    assert back["text"].tolist() == ["'=1+1", "'-x", "ok"]
    assert back["amount"].tolist() == ["-1.50", "+2", "3"]
    assert back["n"].tolist() == ["-3", "4", "5"]  # numbers are never touched
    with pytest.raises(DataError, match="unknown column"):
        write_csv(df, tmp_path / "p.csv", neutralize_formulas=["nope"])
    assert not (tmp_path / "p.csv").exists()


# ------------------------------------------------------------------------------- hardening round 2 (issue 12)


@pytest.mark.parametrize("argv, message", [
    (["--rows", "0"], "argument --rows: must be 1 to 10,000,000, got 0"),
    (["--rows", "-1"], "argument --rows: must be 1 to 10,000,000, got -1"),
    (["--rows", "1000000000"], "got 1,000,000,000 (at most 10,000,000 per run"),
    (["--max-new-tokens", "0"], "argument --max-new-tokens: must be at least 1"),
    (["--max-length", "1"], "argument --max-length: must be at least 2"),
    (["--seed", "-1"], "argument --seed: must be 0 to 4,294,967,295, got -1"),
    (["--holdout", "1.0"], "argument --holdout: must be between 0 and 0.5"),
    (["--epochs", "0"], "argument --epochs: must be at least 1"),
    (["--epsilon", "inf"], "to train without differential privacy say so: --epsilon none"),
    (["--epsilon", "nan"], "to train without differential privacy say so: --epsilon none"),
    (["--epsilon", "-1"], "epsilon must be > 0"),
    (["--delta", "1"], "delta must be in (0, 1)"),
    (["--structured", "keep", "--rows", "7"], "--rows 7 with --structured keep: keep writes one synthetic row per"),
    (["--conditioning-columns", "product", "--no-conditioning"], "not allowed with argument"),
])
def test_every_argument_is_checked_before_any_work(argv, message, tmp_path, no_expensive_work):
    src = tmp_path / "in.csv"
    src.write_bytes(csv_bytes(GOOD))
    before = snapshot(tmp_path)
    code, out, err = run(["synthesize", src, "-o", tmp_path / "out.csv", *FAST, *argv])
    assert_refused(code, err, message)
    assert out == "" and snapshot(tmp_path) == before


def test_epsilon_none_warns_even_when_quiet(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(csv_bytes(GOOD.head(12)))
    code, out, err = run(["synthesize", src, "-o", tmp_path / "out.csv", *TRAIN_FAST])  # TRAIN_FAST has --quiet
    assert code == 0, err
    assert err.startswith(NO_DP_WARNING) and "no privacy guarantee" in err


def test_advice_names_the_flags_of_the_command(tmp_path, no_expensive_work):
    src = tmp_path / "in.csv"
    src.write_bytes(csv_bytes(GOOD.head(40)))
    code, _, err = run(["synthesize", src, "-o", tmp_path / "out.csv", *FAST])
    assert_refused(code, err, "rows is too few for differentially private training")
    assert "--epsilon none" in err and "--min-records" in err and "--holdout 0" in err
    assert "epsilon=None" not in err and "min_records" not in err and "holdout=0" not in err
    with pytest.raises(ExpensiveWorkStarted):  # the advice can be followed: --min-records is this command's
        run(["synthesize", src, "-o", tmp_path / "out.csv", *FAST, "--min-records", "10"])


def test_no_conditioning_trains_on_no_column(tmp_path):
    src, model = tmp_path / "in.csv", tmp_path / "model"
    src.write_bytes(csv_bytes(GOOD.head(12)))
    code, _, err = run(["fit", src, "--save-model", model, *TRAIN_FAST, "--no-conditioning"])
    assert code == 0, err
    assert TextSynthesizer.load(model).conditioning_columns_ == []


def test_sample_conditions_fill_the_other_columns(tmp_path):
    """`sample --conditions` with only the conditioning column: the PII column gets surrogates and the
    non-conditioning column values, not empty cells."""
    from faker import Faker

    fake = Faker()
    fake.seed_instance(7)
    df = GOOD.head(120).assign(customer=[fake.name() for _ in range(120)])
    src, model, conditions = tmp_path / "in.csv", tmp_path / "model", tmp_path / "conditions.csv"
    src.write_bytes(csv_bytes(df))
    code, _, err = run(["fit", src, "--save-model", model, *FAST, "--epsilon", "none", "--conditioning-columns",
                        "product"])
    assert code == 0, err
    conditions.write_text("product\na\nb\nc\n")
    out_path = tmp_path / "out.csv"
    code, _, err = run(["sample", model, "-o", out_path, "--conditions", conditions, "-q", "--encoding", "utf-8"])
    assert code == 0, err
    out = read_csv(out_path)
    assert out["product"].tolist() == ["a", "b", "c"]
    assert out["rating"].notna().all() and set(out["rating"]) <= set(range(1, 6))
    assert out["customer"].notna().all() and not set(out["customer"]) & set(df["customer"])


def test_a_stray_quote_is_an_error_not_a_silent_merge(tmp_path, no_expensive_work):
    """One unbalanced quote swallowed the next record (151 data lines -> 150 rows, exit 0)."""
    lines = ["Title,Review Text,Rating"] + [f"title {i},the dress number {i} fits well,{1 + i % 5}" for i in range(151)]
    lines[41] = '"Love it,the dress number 40 fits well,4'  # the quote is never closed on its line
    lines[42] = 'title 41,the "dress" number 41 fits well,5'  # ...and closes in the next record
    src = tmp_path / "in.csv"
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 42: a quote opens a cell that runs on to line 43 and swallows"):
        read_csv(src)
    code, _, err = run(["synthesize", src, "-o", tmp_path / "out.csv", *FAST])
    assert_refused(code, err, "Probably a stray \" on line 42")


@pytest.mark.parametrize("text", [
    'Title,Review Text,Rating\na,"line one\nline two",4\nb,ok,5\n',
    'Title,Review Text,Rating\na,"line one, with a comma\nline two",4\nb,ok,5\n',
    'Title,Review Text,Rating\na,"line one\nline two, with a comma",4\nb,ok,5\n',
    'Title,Review Text,Rating\r\na,"one\r\n\r\nthree",4\r\nb,ok,5\r\n',
])
def test_legal_multi_line_cells_still_read(text, tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(text.encode())
    df = read_csv(src)
    assert len(df) == 2 and "\n" in df["Review Text"][0]


# --- outputs that are not regular files


@pytest.fixture
def small_run(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(csv_bytes(GOOD.head(12)))
    return src


def test_dash_writes_the_csv_to_stdout_and_the_summary_to_stderr(small_run, tmp_path, capfd):
    code = cli.main([str(a) for a in ["synthesize", small_run, "-o", "-", *TRAIN_FAST]])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert out.startswith("product,rating,review\n") and len(pd.read_csv(io.StringIO(out))) == 12
    assert not (tmp_path / "-").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_symlink_output_is_written_through_and_stays_a_link(small_run, tmp_path):
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target)
    code, _, err = run(["synthesize", small_run, "-o", link, *TRAIN_FAST])
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert len(read_csv(target)) == 12


def test_a_fifo_output_is_written_into_not_replaced(small_run, tmp_path):
    import threading

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    code, _, err = run(["synthesize", small_run, "-o", fifo, *TRAIN_FAST])
    reader.join(timeout=60)
    assert code == 0, err
    assert stat_is_fifo(fifo)
    assert received and received[0].startswith(b"product,rating,review\n")


def test_checking_a_fifo_output_neither_blocks_nor_opens_it(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert sio.check_writable(fifo) == fifo  # no reader: opening it would block; the check must not
    assert sio.output_kind(fifo) == "stream" and sio.output_kind("-") == "stdout"
    assert sio.output_kind(tmp_path / "new.csv") == "file"


def test_a_character_device_output_is_written_into_not_replaced(small_run, tmp_path):
    import stat

    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own, in tmp
        open(device, "w").close()
    except OSError as exc:  # not root, or tmp mounted nodev
        pytest.skip(f"cannot make or open a device node here: {exc}")
    code, _, err = run(["synthesize", small_run, "-o", device, *TRAIN_FAST])
    assert code == 0, err
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "null"]


def stat_is_fifo(path) -> bool:
    import stat

    return stat.S_ISFIFO(os.lstat(path).st_mode)


@pytest.mark.parametrize("argv, message", [
    (["synthesize", "{src}", "-o", "{tmp}/out.csv", "--report", "-"], "cannot go to stdout"),
    (["synthesize", "{src}", "-o", "{tmp}/out.csv", "--save-model", "-"], "cannot go to stdout"),
    (["report", "{src}", "{src}", "-o", "-"], "cannot go to stdout"),
])
def test_directories_cannot_be_stdout(argv, message, small_run, tmp_path, no_expensive_work):
    argv = [a.format(src=small_run, tmp=tmp_path) for a in argv]
    code, _, err = run([*argv, *(FAST if argv[0] == "synthesize" else [])])
    assert_refused(code, err, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# --- SIGTERM


def test_sigterm_while_saving_leaves_no_output_at_all(small_run, tmp_path, monkeypatch):
    """kill / docker stop / SLURM during the model save: exit 143; no CSV, no report, no model, no staging."""
    import signal

    from synthtext.models import TrainedModel

    real_save = TrainedModel.save

    def save_then_killed(self, path, **kwargs):
        real_save(self, path, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(TrainedModel, "save", save_then_killed)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = run(["synthesize", small_run, "-o", tmp_path / "out.csv", "--save-model", tmp_path / "model",
                        "--report", tmp_path / "reports", *TRAIN_FAST])
    assert code == 143, err
    assert "terminated (SIGTERM)" in err
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left in (["in.csv"], ["in.csv", "reports"]), left  # at most the (empty) report root
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the CLI's only while it runs


def test_sigterm_keeps_an_existing_output_as_it_was(small_run, tmp_path, monkeypatch):
    import signal

    out = tmp_path / "out.csv"
    out.write_text("the previous run's file\n")

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)  # while the CSV is being written
    code, _, err = run(["synthesize", small_run, "-o", out, *TRAIN_FAST])
    assert code == 143, err
    assert out.read_text() == "the previous run's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]  # no .synthtext-*.tmp left


# --- found in review


def test_overwrite_keeps_the_old_model_when_the_csv_cannot_be_written(small_run, tmp_path, monkeypatch):
    model = tmp_path / "model"
    code, _, err = run(["fit", small_run, "--save-model", model, *TRAIN_FAST])
    assert code == 0, err
    before = snapshot(model)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    code, _, err = run(["synthesize", small_run, "-o", tmp_path / "out.csv", "--save-model", model, "--overwrite",
                        "--seed", "5", *TRAIN_FAST])
    assert_refused(code, err, "No space left on device")
    assert snapshot(model) == before  # the old model is back, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "model"]  # no staging or moved-aside copy


def test_broken_pipe_on_stdout_exits_as_sigpipe(small_run, monkeypatch):
    def reader_left(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(pd.DataFrame, "to_csv", reader_left)
    code, _, err = run(["synthesize", small_run, "-o", "-", *TRAIN_FAST])
    assert code == 141 and "unexpected" not in err


def test_closed_stdout_and_link_loops_are_refused_before_any_work(tmp_path, monkeypatch):
    loop_a, loop_b = tmp_path / "a.csv", tmp_path / "b.csv"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    with pytest.raises(DataError, match="symbolic links form a loop"):
        sio.check_writable(loop_a)
    assert loop_a.is_symlink() and loop_b.is_symlink()
    monkeypatch.setattr(sys, "stdout", None)  # `synthtext ... -o - >&-`
    with pytest.raises(DataError, match="standard output is closed"):
        sio.check_writable("-")


def test_a_record_like_multi_line_cell_can_be_read_with_trust_quotes(tmp_path, no_expensive_work):
    """The stray-quote check cannot tell this legal cell from a swallowed record; the message says how to
    read it anyway, and the flag does."""
    src = tmp_path / "in.csv"
    src.write_text('id,review,stars\n1,"Overall, great.\n10, would buy again",5\n2,fine,4\n')
    with pytest.raises(DataError, match="pass trust_quotes=True"):
        read_csv(src)
    assert read_csv(src, trust_quotes=True)["review"][0] == "Overall, great.\n10, would buy again"
    code, _, err = run(["scan", src, "-q"])
    assert_refused(code, err, "pass --trust-quotes")
    code, _, err = run(["scan", src, "-q", "--trust-quotes"])
    assert code == 0, err


def test_sample_seed_draws_other_structured_rows(tmp_path):
    src, model = tmp_path / "in.csv", tmp_path / "model"
    src.write_bytes(csv_bytes(GOOD))
    code, _, err = run(["fit", src, "--save-model", model, *FAST, "--epsilon", "none"])
    assert code == 0, err
    frames = []
    for seed in ("1", "2", "1"):
        out = tmp_path / f"out{seed}.csv"
        code, _, err = run(["sample", model, "-o", out, "--rows", "30", "--seed", seed, "-q"])
        assert code == 0, err
        frames.append(read_csv(out)[["product", "rating"]])
    assert not frames[0].equals(frames[1])  # another seed, other rows
    pd.testing.assert_frame_equal(frames[0], frames[2])  # the same seed, the same rows


def test_sampling_options_reach_the_synthesizer_and_sample_overrides_them_for_one_run(tmp_path, monkeypatch):
    from synthtext.synthesizer import TextSynthesizer

    src, model = tmp_path / "in.csv", tmp_path / "model"
    src.write_bytes(csv_bytes(GOOD))
    code, _, err = run(["fit", src, "--save-model", model, *FAST, "--epsilon", "none", "--min-p", "0.2",
                        "--temperature", "0.7", "--no-repeat-ngram", "4"])
    assert code == 0, err
    saved = TextSynthesizer.load(model)
    assert (saved.min_p, saved.temperature, saved.no_repeat_ngram, saved.top_p) == (0.2, 0.7, 4, 1.0)
    used = []
    real = TextSynthesizer._sampling
    monkeypatch.setattr(TextSynthesizer, "_sampling", lambda self, seed: used.append(real(self, seed)) or used[-1])
    code, _, err = run(["sample", model, "-o", tmp_path / "out.csv", "--rows", "5", "--min-p", "0", "--top-p", "0.9"])
    assert code == 0, err
    assert (used[-1].min_p, used[-1].top_p, used[-1].temperature, used[-1].no_repeat_ngram) == (0.0, 0.9, 0.7, 4)
    assert TextSynthesizer.load(model).min_p == 0.2  # the saved synthesizer keeps its own
    for flag, value, message in [("--min-p", "1", "min_p must be in [0, 1)"), ("--top-p", "0", "top_p must be in"),
                                 ("--no-repeat-ngram", "1", "no_repeat_ngram must be 0"),
                                 ("--temperature", "hot", "expected a number")]:
        code, _, err = run(["sample", model, "-o", tmp_path / "bad.csv", flag, value])
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "bad.csv").exists()

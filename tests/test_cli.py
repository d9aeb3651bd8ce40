import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from synthtext import cli, pii


@pytest.fixture(scope="module", autouse=True)
def shared_analyzer():
    """Build the default analyzer once for the module (the CLI uses pii.default_analyzer)."""
    pii.default_analyzer()


@pytest.fixture
def complaints_csv(tmp_path):
    path = tmp_path / "complaints.csv"
    pd.DataFrame({
        "ticket": ["T1", "T2", "T3"],
        "product": ["Dresses", "Tops", "Dresses"],
        "complaint": [
            "My name is John Smith, please email me at john.smith@example.com about the torn dress.",
            "The top arrived late but it fits well and looks great on me.",
            "Refund card 4111 1111 1111 1111 today, the jeans were the wrong size again.",
        ],
    }).to_csv(path, index=False)
    return path


RAW_PII = ("John Smith", "john.smith@example.com", "4111 1111 1111 1111")


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_table_shows_counts_and_redacted_examples_only(complaints_csv, capsys):
    code, out, err = run(["scan", str(complaints_csv), "--quiet"], capsys)
    assert code == 0, err
    assert "Column 'complaint'" in out and "EMAIL_ADDRESS" in out and "CREDIT_CARD" in out
    assert "<EMAIL_ADDRESS>" in out  # a redacted example
    for secret in RAW_PII:
        assert secret not in out and secret not in err


def test_json_format(complaints_csv, capsys):
    code, out, _ = run(["scan", str(complaints_csv), "--format", "json", "--columns", "complaint"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["text_columns"] == ["complaint"]
    assert result["counts"]["complaint"]["CREDIT_CARD"] == 1
    assert len(result["spans"]["complaint"]) == 3


def test_jsonl_to_file_has_one_line_per_cell(complaints_csv, tmp_path, capsys):
    out_path = tmp_path / "spans.jsonl"
    code, out, err = run(["scan", str(complaints_csv), "--format", "jsonl", "-o", str(out_path)], capsys)
    assert code == 0 and out == ""
    lines = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [(line["row"], line["column"]) for line in lines] == [(0, "complaint"), (1, "complaint"),
                                                                 (2, "complaint")]
    text = pd.read_csv(complaints_csv)["complaint"][0]
    first = {(text[s["start"]:s["end"]], s["entity_type"]) for s in lines[0]["spans"]}
    assert ("john.smith@example.com", "EMAIL_ADDRESS") in first
    assert set(lines[0]["spans"][0]) == {"start", "end", "entity_type", "score"}
    assert lines[1]["spans"] == []


@pytest.mark.parametrize("argv, message", [
    (["scan", "missing.csv"], "not found"),
    (["scan", "{csv}", "--columns", "nope"], "unknown column(s) 'nope'"),
    (["scan", "{csv}", "--threshold", "2"], "score_threshold"),
    (["scan", "{csv}", "--jobs", "0"], "n_jobs"),
    (["scan", "{csv}", "-o", "/no/such/dir/out.json"], "does not exist"),
])
def test_data_errors_exit_2_with_one_message(argv, message, complaints_csv, capsys):
    argv = [a.format(csv=complaints_csv) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err and err.startswith("synthtext: error: ") and "Traceback" not in err
    assert err.count("\n") == 1


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["scan", "x.csv", "--format", "xml"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2


def test_unexpected_failure_exits_1_without_traceback(complaints_csv, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(pii, "scan_pii", boom)
    code, _, err = run(["scan", str(complaints_csv)], capsys)
    assert code == 1 and "kaboom" in err and "Traceback" not in err and "SYNTHTEXT_DEBUG" in err


def test_failed_run_leaves_no_output_file(complaints_csv, tmp_path, capsys, monkeypatch):
    out_path = tmp_path / "result.json"
    out_path.write_text("previous result\n")

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli.commands, "render_scan_table", boom)  # where run_scan looks it up
    code, _, _ = run(["scan", str(complaints_csv), "-o", str(out_path)], capsys)
    assert code == 1
    assert out_path.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["complaints.csv", "result.json"]


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["scan", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--columns", "--format", "--output", "--encoding", "--quiet", "jsonl"):
        assert option in out


@pytest.mark.skipif(shutil.which("synthtext") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "synthtext")), reason="console script not installed")
def test_console_script_runs_end_to_end(complaints_csv):
    script = shutil.which("synthtext") or os.path.join(os.path.dirname(sys.executable), "synthtext")
    done = subprocess.run([script, "scan", str(complaints_csv), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["complaint"]["EMAIL_ADDRESS"] == 1
    bad = subprocess.run([script, "scan", str(complaints_csv) + ".missing"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("module", ["synthtext", "synthtext.cli"])
def test_python_dash_m_runs_the_command(module):
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("synthtext ")
    bad = subprocess.run([sys.executable, "-m", module, "no-such-command"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("synthtext: error: ")

"""End to end: CSV in, CSV out, with the tiny built-in model (no downloads, a few seconds per fit)."""

import json
import re

import pandas as pd
import pytest

from synthtext import cli
from synthtext.config import TrainConfig
from synthtext.errors import ConfigError, DataError, ModelError, NotFittedError, PrivacyBudgetError
from synthtext.io import read_csv, write_csv
from synthtext.synthesizer import TextSynthesizer, synthesize
from tiny_models import reseal

PLANTED_NAME = "Zebulon Quartermaine"
PLANTED_EMAIL = "zebulon.q@secret-mail.example"
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")


def table(n=120) -> pd.DataFrame:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(424242)  # not the synthesizer's seed, whose surrogates would repeat these names
    products = ["dress", "jacket", "jeans", "sweater"]
    rows = []
    for i in range(n):
        product = products[i % 4]
        text = f"the {product} was {'great' if i % 3 else 'too small'} and i would buy it again {i}"
        if i % 10 == 0:
            text = f"My name is {PLANTED_NAME}, write to {PLANTED_EMAIL} about the {product}."
        rows.append({"customer_name": fake.name(), "product": product, "rating": 1 + i % 5,
                     "comment": text if i % 17 else None})
    return pd.DataFrame(rows)


def tiny(**options) -> TextSynthesizer:
    options.setdefault("train", TrainConfig(epochs=1, batch_size=32, progress=False))
    options.setdefault("max_new_tokens", 24)
    return TextSynthesizer(["comment"], model="builtin", model_size="tiny", **options)


@pytest.fixture(scope="module")
def fitted():
    return tiny(epsilon=8.0).fit(table())


def assert_clean(out: pd.DataFrame):
    for value in out["comment"].dropna():
        assert PLACEHOLDER.search(value) is None, value
    flat = out.astype(str).to_string()
    assert PLANTED_NAME not in flat and PLANTED_EMAIL not in flat
    assert "Zebulon" not in flat and "secret-mail" not in flat


def test_fit_sample_keeps_the_schema_and_leaks_no_planted_pii(fitted):
    df = table()
    out = fitted.sample()
    assert list(out.columns) == list(df.columns)
    assert list(out.dtypes) == list(df.dtypes)
    assert len(out) == len(df)
    assert_clean(out)
    assert set(out["product"].dropna()) <= set(df["product"])
    assert not set(out["customer_name"]) & set(df["customer_name"])  # PII column replaced
    ledger = fitted.privacy_ledger_
    assert ledger["dp"] and 0 < ledger["epsilon"] <= 8.0 + 1e-9
    assert fitted.pii_columns_ == {"customer_name": "PERSON"}
    assert fitted.conditioning_columns_ == ["product", "rating"]
    protection = {c["name"]: c["protected_by"] for c in fitted.report_inputs()["data_summary"]["columns"]}
    assert protection == {"customer_name": "Faker surrogate (not derived from data)", "product": "SDV (not DP)",
                          "rating": "SDV (not DP)",
                          "comment": f"DP (epsilon={ledger['epsilon']:.3g} for all text columns)"}


def test_save_load_sample_round_trip(fitted, tmp_path):
    saved = fitted.save(tmp_path / "model")
    assert sorted(p.suffix for p in saved.rglob("*") if p.is_file()) and all(
        p.suffix in (".json", ".safetensors") for p in saved.rglob("*") if p.is_file())
    for path in saved.rglob("*"):
        if path.is_file() and path.suffix == ".json":
            assert PLANTED_NAME not in path.read_text() and PLANTED_EMAIL not in path.read_text()
    loaded = TextSynthesizer.load(saved)
    conditions = table(8)[["product", "rating"]]
    a = fitted.sample(conditions=conditions, seed=3)
    b = loaded.sample(conditions=conditions, seed=3)
    assert a["comment"].tolist() == b["comment"].tolist()  # same model, same seed: same text
    again = loaded.sample(15)
    assert len(again) == 15 and list(again.columns) == list(table().columns)
    assert_clean(again)


def _forge(saved, file: str, change) -> None:
    path = saved / file
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    reseal(saved)  # a forger can rewrite the manifest too: the ledgers must be checked on their own


def test_a_forged_epsilon_is_refused_on_load(fitted, tmp_path):
    """The issue's case: epsilon 8 -> 0.1 in synthesizer.json (summary too), or in a model's ledger."""
    spent = fitted.privacy_ledger_["epsilon"]
    table = fitted.save(tmp_path / "table")
    _forge(table, "synthesizer.json", lambda s: {**s, "privacy_ledger": {
        **s["privacy_ledger"], "epsilon": 0.1,
        "summary": s["privacy_ledger"]["summary"].replace(f"epsilon={spent:.3g}", "epsilon=0.1")}})
    with pytest.raises(ModelError, match="says the table's epsilon is 0.1, but its text models' ledgers give"):
        TextSynthesizer.load(table)
    one = fitted.save(tmp_path / "model")
    _forge(one, "text_model_0/privacy_ledger.json", lambda ledger: {**ledger, "epsilon": 0.1})
    with pytest.raises(ModelError, match="claims epsilon=0.1, but the prv accountant gives"):
        TextSynthesizer.load(one)
    steps = fitted.save(tmp_path / "steps")  # fewer steps with the real epsilon: inputs and claim disagree
    _forge(steps, "text_model_0/privacy_ledger.json", lambda ledger: {**ledger, "steps": ledger["steps"] // 2})
    with pytest.raises(ModelError, match="accountant gives"):
        TextSynthesizer.load(steps)
    loaded = TextSynthesizer.load(fitted.save(tmp_path / "intact"))
    assert loaded.privacy_ledger_["epsilon"] == pytest.approx(spent, rel=1e-9)  # recomputed, and equal


def test_two_text_columns_share_one_table_delta(tmp_path):
    """The default delta (and an explicit one) is the table's, split over the text models."""
    df = table()
    df["note"] = [f"second text about the {p} and its size {i}" for i, p in enumerate(df["product"])]
    train = TrainConfig(epochs=1, batch_size=32, progress=False)
    synth = TextSynthesizer(["comment", "note"], model="builtin", model_size="tiny", max_new_tokens=8,
                            train=train, epsilon=8.0).fit(df)
    ledger = synth.privacy_ledger_
    assert ledger["delta"] == pytest.approx(min(1e-5, 1 / (10 * synth.n_train_)))
    assert [m["delta"] for m in ledger["models"]] == pytest.approx([ledger["delta"] / 2] * 2)
    assert ledger["epsilon"] <= 8.0 + 1e-9
    from synthtext.plan import table_privacy

    explicit = table_privacy(None, 8.0, 1e-6).per_model(2, synth.n_train_)  # what fit does with delta=1e-6
    assert explicit.delta == pytest.approx(5e-7) and explicit.epsilon == pytest.approx(4.0)


def test_keep_mode_keeps_structured_columns():
    df = table()
    synth = tiny(structured="keep", epsilon=None).fit(df)
    out = synth.sample()
    protection = {c["name"]: c["protected_by"] for c in synth.report_inputs()["data_summary"]["columns"]}
    assert protection["product"] == protection["rating"] == "kept as given (not protected)"
    assert protection["comment"] == "not DP (trained without differential privacy)"
    assert out["product"].tolist() == df["product"].tolist()
    assert out["rating"].tolist() == df["rating"].tolist()
    assert not set(out["customer_name"]) & set(df["customer_name"])
    assert_clean(out)


def test_cli_synthesize_csv_in_csv_out(tmp_path, capsys):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(table(), src)
    before = src.read_bytes()
    reports = tmp_path / "reports"
    code = cli.main(["synthesize", str(src), "-o", str(dst), "--text-columns", "comment", "--epochs", "1",
                     "--seed", "1", "--model", "builtin", "--model-size", "tiny", "--max-new-tokens", "24", "--quiet",
                     "--report", str(reports)])
    assert code == 0, capsys.readouterr().err
    assert src.read_bytes() == before  # the input is never modified
    out = read_csv(dst)
    assert list(out.columns) == list(table().columns) and len(out) == 120
    assert_clean(out)

    [run_dir] = list(reports.iterdir())
    assert sorted(p.name for p in run_dir.iterdir()) == ["report.html", "report.json"]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["privacy"]["dp"] is True and report["privacy"]["epsilon"] <= 8.0
    assert report["data"]["n_train"] == 108 and report["data"]["n_holdout"] == 12
    membership = report["evaluation"]["membership"]["comment"]
    assert membership["n_train"] > 0 and membership["claimed_epsilon"] == report["privacy"]["epsilon"]
    for name in ("report.json", "report.html"):  # the report never holds the PII planted in the training text
        text = (run_dir / name).read_text()
        assert PLANTED_NAME not in text and PLANTED_EMAIL not in text and "Zebulon" not in text

    # any real/synthetic pair: no model, so no ledger and no membership inference; an audit result joins in
    audit_json = tmp_path / "audit.json"
    audit_json.write_text(json.dumps({"method": "one-run canary audit", "claimed_epsilon": 8.0,
                                      "empirical_epsilon_lower_bound": 0.0, "n_canaries": 100}))
    code = cli.main(["report", str(src), str(dst), "--text-columns", "comment", "-o", str(reports),
                     "--embedding", "tfidf", "--quiet", "--audit-result", str(audit_json)])
    assert code == 0, capsys.readouterr().err
    [pair_dir] = [p for p in reports.iterdir() if p != run_dir]
    pair = json.loads((pair_dir / "report.json").read_text())
    assert pair["privacy"] is None and pair["evaluation"]["membership"] is None
    assert pair["audit"]["empirical_epsilon_lower_bound"] == 0.0
    assert "Canary audit" in (pair_dir / "report.html").read_text()
    code = cli.main(["report", str(src), str(dst), "-o", str(reports), "--audit-result", str(src)])
    assert code == 2 and "cannot read the audit result" in capsys.readouterr().err
    assert pair["evaluation"]["columns"]["comment"]["leakage"]["pii_replay"]["n_values_searched"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--text-columns", "nope"], "unknown column(s) 'nope'"),
    (["--text-columns", "empty"], "text column 'empty' is empty"),
])
def test_cli_bad_columns_exit_2_without_output(tmp_path, capsys, argv, message):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    df = table()
    df["empty"] = None
    write_csv(df, src)
    code = cli.main(["synthesize", str(src), "-o", str(dst), "--quiet", "--model", "builtin", "--model-size", "tiny", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not dst.exists()


def test_too_few_rows_for_dp_is_refused_before_training():
    with pytest.raises(PrivacyBudgetError, match="100") as refused:
        tiny(epsilon=1.0).fit(table(40))
    assert "the 40 rows minus a 4-row holdout" in str(refused.value)  # the count the user knows


def test_sample_before_fit_says_what_to_do():
    with pytest.raises(NotFittedError, match="fit"):
        tiny().sample(5)


def test_no_text_column_is_a_clear_error():
    df = pd.DataFrame({"a": range(150), "b": ["x", "y", "z"] * 50})
    with pytest.raises(DataError, match="no text column"):
        synthesize(df, model="builtin", model_size="tiny")


def test_ledger_is_json_serialisable(fitted):
    json.dumps(fitted.privacy_ledger_)


def test_generated_text_is_cleaned_and_placeholders_take_the_rows_values(fitted, monkeypatch):
    import synthtext.generate as generate

    def fake_generate(trained, prompts, **kwargs):
        return ["Dear <PERSON>,\x00 mail <EMAIL_ADDRESS>\x07 <B>now</B>" for _ in prompts]

    monkeypatch.setattr(generate, "generate_texts", fake_generate)
    out = fitted.sample(6)
    for name, text in zip(out["customer_name"], out["comment"]):
        assert text.startswith(f"Dear {name}, mail ") and text.endswith(" <B>now</B>")  # a tag is no placeholder
        assert "\x00" not in text and "\x07" not in text and "@" in text


def test_holdout_rows_are_kept_out_of_training(fitted):
    from synthtext.plan import split_holdout

    train, holdout = split_holdout(120, 0.1, seed=0)
    assert len(holdout) == 12 and len(train) == 108
    assert not set(train) & set(holdout) and set(train) | set(holdout) == set(range(120))
    assert (split_holdout(120, 0.1, seed=0)[1] == holdout).all()  # seeded: the same split again
    # the fixture fits table() (120 rows) with the default 10% holdout and seed 0
    assert (fitted.n_train_, fitted.n_holdout_) == (108, 12)
    assert fitted.models_["comment"].ledger.n_records == 108  # the accountant's n is the training rows
    held = table().iloc[holdout]
    assert fitted._fit_data.holdout["comment"].tolist() == held["comment"].tolist()


def test_holdout_zero_trains_on_every_row_and_bad_shares_are_refused():
    synth = tiny(epsilon=None, holdout=0).fit(table())
    assert (synth.n_train_, synth.n_holdout_) == (120, 0)
    assert synth.models_["comment"].ledger.n_records == 120
    assert synth._membership() is None  # no holdout: no membership-inference attack to run
    for bad in (-0.1, 0.6, "10%", True):
        with pytest.raises(ConfigError, match="holdout"):
            tiny(holdout=bad).fit(table())


def test_membership_losses_cover_train_and_holdout_rows(fitted):
    membership = fitted._membership()["comment"]
    n_holdout_text = fitted._fit_data.holdout["comment"].notna().sum()
    assert len(membership["holdout_losses"]) == n_holdout_text
    assert len(membership["train_losses"]) == fitted._fit_data.train["comment"].notna().sum()
    assert membership["claimed_epsilon"] == fitted.models_["comment"].ledger.epsilon
    assert all(loss > 0 for loss in membership["train_losses"])


@pytest.mark.parametrize("options, message", [
    ({"seed": -1}, "seed must be >= 0"),
    ({"seed": 2**32}, "below 2\\*\\*32"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
    ({"top_p": 0.0}, "top_p must be in"),
    ({"min_p": 1.0}, "min_p must be in"),
    ({"temperature": float("inf")}, "temperature must be a finite number"),
])
def test_python_settings_are_checked_before_the_scan(options, message, monkeypatch):
    import synthtext.pii

    def scan(*args, **kwargs):
        raise AssertionError("the scan started before the settings were checked")

    monkeypatch.setattr(synthtext.pii, "scan_pii", scan)
    with pytest.raises(ConfigError, match=message):
        tiny(**options).fit(table())


def test_row_counts_a_run_cannot_write_are_refused_up_front(fitted, monkeypatch):
    with pytest.raises(ConfigError, match="from 1 to 10,000,000"):
        fitted.sample(10**9)
    monkeypatch.setattr(TextSynthesizer, "fit", lambda *a, **k: pytest.fail("fit started"))
    with pytest.raises(ConfigError, match="num_rows=7 with structured='keep'"):
        synthesize(table(), ["comment"], structured="keep", num_rows=7)


def test_fit_hands_its_privacy_plan_to_training_once(monkeypatch):
    """plan.py: the plan fit checks before any work is the one training runs under (not computed again)."""
    import synthtext.train as T

    calls, real = [], T.plan_privacy
    monkeypatch.setattr(T, "plan_privacy", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    synth = tiny(epsilon=8.0).fit(table())
    assert calls == [synth.n_train_]  # once, for the training rows
    ledger = synth.models_["comment"].ledger
    planned = real(synth.n_train_, synth.models_["comment"].privacy_config, synth.models_["comment"].train_config)
    assert (ledger.noise_multiplier, ledger.sample_rate, ledger.steps) == (
        planned.noise_multiplier, planned.sample_rate, planned.steps)


def test_audit_imports_nothing_private_from_the_synthesizer():
    import ast
    import importlib
    from pathlib import Path

    module = importlib.import_module("synthtext.audit")  # the attribute synthtext.audit is the function
    tree = ast.parse(Path(module.__file__).read_text())
    imported = [(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names]
    assert not [m for m in imported if m[0] == "synthesizer"]
    assert not [m for m in imported if m[1].startswith("_")]

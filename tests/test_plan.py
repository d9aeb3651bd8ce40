"""`synthtext plan` / `synthesize --dry-run` / TextSynthesizer.plan: the plan shown is the plan run."""

import json
import math

import pytest

from synthtext import cli
from synthtext.config import TrainConfig
from synthtext.errors import NotFittedError, PrivacyBudgetError
from synthtext.estimate import TrainingProbe, decoding_work, generation_seconds, training_seconds
from synthtext.io import read_csv, write_csv
from synthtext.synthesizer import TextSynthesizer
from synthtext.train import PrivacyPlan
from test_synthesize import table, tiny
from tiny_models import save_tiny_model

LEDGER_FIELDS = ("epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "epochs", "accountant",
                 "max_grad_norm", "n_records", "expected_batch_size", "target_epsilon", "model")


def test_the_plan_is_the_plan_the_fit_trains_under():
    df = table()
    synth = tiny(epsilon=8.0)
    plan = synth.plan(df, probe=False)
    with pytest.raises(NotFittedError):  # planning fits nothing
        synth.sample(3)
    synth.fit(df)
    ledger = synth.models_["comment"].ledger.to_dict()
    [planned] = plan.privacy["models"]
    assert {k: planned[k] for k in LEDGER_FIELDS} == {k: ledger[k] for k in LEDGER_FIELDS}
    assert planned["stops_early"] == ledger["stopped_early"] and planned["sampling"] == ledger["sampling"] == "poisson"
    table_ledger = synth.privacy_ledger_
    assert (plan.privacy["epsilon"], plan.privacy["delta"]) == (table_ledger["epsilon"], table_ledger["delta"])
    assert plan.columns == synth.report_inputs()["data_summary"]["columns"]  # roles and protection, as reported
    assert (plan.n_train, plan.n_holdout, plan.num_rows) == (synth.n_train_, synth.n_holdout_, len(df))
    trained = synth.models_["comment"]
    assert plan.training["learning_rate"] == trained.train_config.learning_rate
    assert plan.training["precision"] == trained.train_log["precision"]
    redacted = synth.pii_redaction()["redacted_entities"]["comment"]
    assert plan.pii["redacted"] == redacted and plan.pii["redacted"]["PERSON"] > 0
    assert plan.pii["structured_columns"] == {"customer_name": "PERSON"}
    assert plan.estimate is None
    assert any("Only 108 rows train under DP" in w for w in plan.warnings)


def test_two_text_columns_plan_each_model_and_the_table_sum():
    df = table()
    df["title"] = [f"about the {p} number {i} of ours" for i, p in enumerate(df["product"])]
    synth = TextSynthesizer(["comment", "title"], model="builtin", model_size="tiny", epsilon=8.0,
                            train=TrainConfig(epochs=1, batch_size=32, progress=False), max_new_tokens=8)
    plan = synth.plan(df, probe=False)
    models = {m["column"]: m for m in plan.privacy["models"]}
    assert set(models) == {"comment", "title"}
    assert math.isclose(plan.privacy["epsilon"], models["comment"]["epsilon"] + models["title"]["epsilon"])
    assert models["comment"]["target_epsilon"] == 4.0 and plan.privacy["composition"].startswith("basic")
    assert plan.privacy["epsilon"] <= 8.0


def test_no_dp_and_keep_are_warned_and_refusals_are_the_fits(tmp_path):
    plan = tiny(epsilon=None, structured="keep").plan(table(), probe=False)
    assert plan.privacy["dp"] is False and plan.privacy["epsilon"] is None
    assert any("WITHOUT differential privacy" in w for w in plan.warnings)
    assert any("structured='keep'" in w for w in plan.warnings)
    assert "Privacy: NONE" in str(plan)
    with pytest.raises(PrivacyBudgetError) as planned:
        tiny(epsilon=8.0).plan(table(40), probe=False)
    with pytest.raises(PrivacyBudgetError) as fitted:
        tiny(epsilon=8.0).fit(table(40))
    assert str(planned.value) == str(fitted.value)


def test_the_probe_estimates_every_stage_on_a_pretrained_model(tmp_path):
    model = save_tiny_model("llama", tmp_path / "llama")
    synth = TextSynthesizer(["comment"], model=str(model), epsilon=8.0, max_new_tokens=12,
                            train=TrainConfig(epochs=1, batch_size=32, lora_layers=1, progress=False))
    plan = synth.plan(table(), report=True)
    stages = {s["stage"].split(",")[0]: s for s in plan.estimate["stages"]}
    assert {"PII scan", "structured columns (SDV)", "load the base model", "frozen layers", "DP training",
            "generation", "report: membership losses of 120 records"} <= set(stages)
    assert all(math.isfinite(s["seconds"]) and s["seconds"] >= 0 for s in stages.values())
    assert math.isclose(plan.estimate["total_seconds"], sum(s["seconds"] for s in plan.estimate["stages"]))
    assert plan.training["lora"] == {"r": 8, "layers": 1, "of_layers": 2}
    text = str(plan)
    assert "LoRA r=8 on the top 1 of 2 layers" in text and "Estimated wall time on this machine" in text
    json.loads(plan.to_json())  # plain JSON, no NaN
    with pytest.raises(NotFittedError):
        synth.sample(2)


def test_estimates_scale_the_probe_by_records_and_tokens():
    probe = TrainingProbe(setup_seconds=2.0, frozen_seconds_per_record=0.01, step_seconds_per_record=0.1,
                          tokens_per_record=50.0, trained=None)
    plan = PrivacyPlan(dp=True, n_records=450, steps=24, steps_per_epoch=8, expected_batch_size=56.25)
    got = training_seconds(probe, plan, 450, tokens_per_record=100.0)  # records twice as long as the probe's
    assert got == {"frozen_layers": pytest.approx(0.01 * 450 * 2), "training": pytest.approx(2 + 0.1 * 24 * 56.25 * 2)}


def test_the_training_probe_prices_steps_without_the_first_one_s_warm_up(monkeypatch):
    """The probe's first step carries the DP engine's setup and new kernels: the seconds per record come from
    the steps after it (the first is left in the probe's setup time, counted once per run)."""
    import types

    import synthtext.estimate as E
    import synthtext.train as T
    from synthtext.config import PrivacyConfig
    from synthtext.models import EncodedExamples

    log = {"seconds": 12.0, "frozen_layers_seconds": 0.5, "records_processed": 48, "step_seconds": [10.0, 1.0, 1.0]}
    monkeypatch.setattr(T, "train_private", lambda *a, **k: types.SimpleNamespace(train_log=log))
    examples = EncodedExamples(input_ids=[[1, 2, 3]] * 20, prompt_lengths=[1] * 20)
    plan = PrivacyPlan(dp=True, n_records=20, steps=24, steps_per_epoch=8, expected_batch_size=16.0, sample_rate=0.8,
                       delta=1e-5, noise_multiplier=1.0, accountant="prv")
    base = types.SimpleNamespace(kind="pretrained")
    probe = E.probe_training(base, examples, PrivacyConfig(), TrainConfig(), plan, seed=0)
    assert probe.step_seconds_per_record == pytest.approx(2.0 / 32)  # steps 2 and 3, 16 records each
    log.pop("step_seconds")  # an older log: every step priced alike, as before
    assert E.probe_training(base, examples, PrivacyConfig(), TrainConfig(), plan, seed=0).step_seconds_per_record \
        == pytest.approx(12.0 / 48)


def test_the_decoder_simulation_follows_the_stream_decoder_s_rules():
    # equal lengths: full batches to the end, every prompt encoded once, the last step needs no model call
    work = decoding_work([10] * 8, prompt_length=5, batch_size=4)
    assert work == {"prompt_tokens": 8 * 5, "steps": 2 * 9, "row_steps": 2 * 9 * 4}
    # one long text among short ones: the finished rows leave (compaction) and waiting prompts join the batch
    # beside the long one (continuous batching), so the whole run takes the long text's 49 steps
    lengths = [2, 2, 2, 50] + [2] * 12
    work = decoding_work(lengths, prompt_length=5, batch_size=8)
    assert work == {"prompt_tokens": 16 * 5, "steps": 49, "row_steps": 8 + 1 + 8 + 1 + 2 + 1 + 43}
    # batch by batch (the built-in model): the 8 short ones after the long one take a batch of their own
    batch_by_batch = decoding_work(lengths, prompt_length=5, batch_size=8, continuous=False)
    assert batch_by_batch == {"prompt_tokens": 16 * 5, "steps": 49 + 1, "row_steps": 8 + 48 + 8}
    costs = {"batch_size": 4, "prompt_token_seconds": 0.01, "step_fixed_seconds": 0.1, "step_per_row_seconds": 0.02}
    equal = decoding_work([10] * 8, 5, 4)
    assert generation_seconds(costs, [10] * 8, 5, 8) == pytest.approx(
        equal["prompt_tokens"] * 0.01 + equal["steps"] * 0.1 + equal["row_steps"] * 0.02)
    assert generation_seconds(costs, [10] * 8, 5, 80) == pytest.approx(10 * generation_seconds(costs, [10] * 8, 5, 8))


def test_cli_plan_and_dry_run_print_the_run_s_plan_and_write_nothing(tmp_path, capsys):
    src, out, reports = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "reports"
    write_csv(table(), src)
    common = [str(src), "--text-columns", "comment", "--epochs", "1", "--model", "builtin", "--model-size", "tiny",
              "--max-new-tokens", "24", "--quiet"]
    assert cli.main(["plan", *common, "--format", "json", "--no-probe"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["schema"] == "synthtext.plan/1" and planned["estimate"] is None
    assert cli.main(["plan", *common, "-o", str(out), "--report", str(reports), "--format", "json"]) == 0
    probed = json.loads(capsys.readouterr().out)
    assert probed["estimate"]["stages"] and probed["estimate"]["total_seconds"] > 0
    assert {k: v for k, v in probed.items() if k != "estimate"} == {k: v for k, v in planned.items() if k != "estimate"}
    assert cli.main(["synthesize", *common, "-o", str(out), "--report", str(reports), "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "Privacy: (epsilon=8, delta=1e-05)-DP per row" in dry and "Estimated wall time" in dry
    assert not out.exists() and not reports.exists()  # a plan and a dry run write nothing

    assert cli.main(["synthesize", *common, "-o", str(out), "--report", str(reports)]) == 0
    written = read_csv(out)
    [run] = reports.iterdir()
    report = json.loads((run / "report.json").read_text())
    [ledger] = report["privacy"]["models"]
    [model] = planned["privacy"]["models"]
    assert {k: model[k] for k in LEDGER_FIELDS} == {k: ledger[k] for k in LEDGER_FIELDS}
    assert planned["columns"] == [{k: c[k] for k in ("name", "dtype", "role", "protected_by")}
                                  for c in report["data"]["columns"]]

    assert cli.main(["synthesize", *common, "-o", str(out), "--dry-run"]) == 0  # outputs exist now: still untouched
    assert "noise multiplier" in capsys.readouterr().out and read_csv(out).equals(written)


def test_cli_plan_refuses_what_synthesize_refuses(tmp_path, capsys):
    src = tmp_path / "in.csv"
    write_csv(table(40), src)
    args = [str(src), "--text-columns", "comment", "--model", "builtin", "--model-size", "tiny", "--quiet"]
    assert cli.main(["plan", *args]) == 2
    planned = capsys.readouterr().err
    assert cli.main(["synthesize", *args, "-o", str(tmp_path / "out.csv")]) == 2
    assert planned == capsys.readouterr().err and "too few" in planned
    assert cli.main(["plan", *args[:-1], "--text-columns", "nope"]) == 2
    assert "unknown column(s) 'nope'" in capsys.readouterr().err


def test_the_plan_counts_the_membership_records_the_report_scores():
    """One rule for both: at most four times the holdout (at least 200) training records, 1,000 a side."""
    import pandas as pd

    from synthtext.synthesizer import _membership_rows, membership_cap

    assert [membership_cap("train", h) for h in (10, 100, 500)] == [200, 400, 1000]
    assert membership_cap("holdout", 1500) == 1000
    frame = pd.DataFrame({"t": [f"text {i}" for i in range(3000)]})
    sample = _membership_rows(frame.iloc[:1500], frame.iloc[1500:], ["t"], seed=0)["t"]
    assert (len(sample["train"]), len(sample["holdout"])) == (membership_cap("train", 1500), membership_cap("holdout", 1500))

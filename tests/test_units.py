"""privacy_unit: all rows sharing a value of a column are one unit, one DP record (synthtext.units)."""

import json
import re

import pandas as pd
import pytest
from opacus.accountants import create_accountant

import synthtext.generate as G
from synthtext import cli
from synthtext import units as U
from synthtext import whole_row as W
from synthtext.config import PrivacyConfig, TrainConfig
from synthtext.errors import ConfigError, DataError, ModelError, PrivacyBudgetError
from synthtext.io import write_csv
from synthtext.report import build_report, render_html
from synthtext.synthesizer import TextSynthesizer
from synthtext.train import plan_privacy
from test_synthesize import PLANTED_NAME

TRAIN = TrainConfig(epochs=1, batch_size=32, progress=False)
DEFAULT_LENGTH = 512  # the built-in model's default record length (synthtext.models.loading.default_max_length)


def customers(n_customers=120, rows_each=(1, 2, 3)) -> pd.DataFrame:
    """Customers with 1-3 comments each; a few rows without a customer id."""
    products = ["dress", "jacket", "jeans", "sweater"]
    rows = []
    for c in range(n_customers):
        for k in range(rows_each[c % len(rows_each)]):
            product = products[(c + k) % 4]
            rows.append({"customer": f"C{c:04d}", "product": product, "rating": 1 + (c + k) % 5,
                         "comment": f"the {product} was {'great' if c % 3 else 'too small'} and i would buy it {k}"})
    rows[5]["comment"] = f"My name is {PLANTED_NAME} and the jeans fit."
    df = pd.DataFrame(rows)
    df.loc[[3, 17], "customer"] = None
    return df


def unit_synth(**options) -> TextSynthesizer:
    options.setdefault("train", TRAIN)
    return TextSynthesizer(["comment"], model="builtin", model_size="tiny", epsilon=8.0, structured="dp",
                           privacy_unit="customer", max_new_tokens=48, **options)


def test_units_group_rows_and_rows_without_a_value_are_one_unit_each():
    df = pd.DataFrame({"who": ["a", "b", "a", None, "b", None, "c"], "x": range(7)})
    units = U.Units.of(df, "who")
    assert units.n_units == 5 and units.rows_without_value == 2
    assert [list(m) for m in units.members] == [[0, 2], [1, 4], [6], [3], [5]]
    assert list(units.rows_of([1, 3])) == [1, 3, 4]


@pytest.mark.parametrize("column, conditioning, error, match", [
    ("nobody", None, DataError, "no column 'nobody'"),
    ("comment", None, ConfigError, "is a text column"),
    ("customer", ["customer", "rating"], ConfigError, "also a conditioning column"),
    ("empty", None, DataError, "is empty"),
])
def test_a_column_that_cannot_be_a_unit_is_refused(column, conditioning, error, match):
    df = customers(10).assign(empty=None)
    with pytest.raises(error, match=match):
        U.find_units(df, column, text_columns=["comment"], conditioning_columns=conditioning)


def test_a_unit_column_unique_per_row_is_the_row():
    df = customers(10)
    df["row_id"] = range(len(df))
    assert U.find_units(df, "row_id", text_columns=["comment"], conditioning_columns=None) is None


@pytest.mark.parametrize("structured", ["sdv", "keep"])
def test_a_privacy_unit_needs_the_whole_row_model(structured):
    with pytest.raises(ConfigError, match="privacy_unit needs structured='dp'"):
        TextSynthesizer(["comment"], structured=structured, privacy_unit="customer").fit(customers())
    with pytest.raises(ConfigError, match="max_rows_per_unit"):
        unit_synth(max_rows_per_unit=0).fit(customers())


def test_a_unit_s_training_rows_are_drawn_by_seed_not_by_content():
    df = customers(30, rows_each=(5,))
    units = U.Units.of(df, "customer")
    picked, left_out = U.pick_rows(units, range(units.n_units), 2, seed=3)
    assert all(len(rows) <= 2 and set(rows) <= set(units.members[u]) for u, rows in enumerate(picked))
    assert left_out == len(df) - sum(len(r) for r in picked) > 0
    changed = df.assign(comment=df["comment"].str.upper())
    again, _ = U.pick_rows(U.Units.of(changed, "customer"), range(units.n_units), 2, seed=3)
    assert [list(r) for r in again] == [list(r) for r in picked]
    other, _ = U.pick_rows(units, range(units.n_units), 2, seed=4)
    assert [list(r) for r in other] != [list(r) for r in picked]


class FakeModel:
    def __init__(self, *calls):
        self.calls, self.prompts, self.starts, self.model_rate_ends, self.stops = list(calls), [], [], [], []

    def __call__(self, trained, prompts, sampling=None, *, starts=None, ends_at_model_rate=False, stop_at="", **_):
        self.stops.append(stop_at)
        self.prompts.append(list(prompts))
        self.starts.append(list(starts or []))
        self.model_rate_ends.append(ends_at_model_rate)
        return self.calls.pop(0)


def test_sampled_units_give_their_own_number_of_rows(monkeypatch):
    # column by column: a newline after a row's last value starts the unit's next row, EOS ends the unit; a last
    # value that goes on with another field is drawn again like any value that does not end as trained
    columns, dtypes = ["n", "price"], {"n": "int64", "price": "float64"}
    fake = FakeModel([" 1 |", " 4 |", " x |", " 7 |", " 8 |"], [" 5 |"], [" 2\n", " 5 | tax: 1\n", " 6", " 7", " 8"],
                     [" 5.5"], [" 2 |"], [" 3\n"], [" 3 |"], [" 4\n"])
    monkeypatch.setattr(G, "generate_texts", fake)
    rows, unit_of, counts = W.sample_units(None, columns, [], dtypes, 5, G.SamplingConfig(seed=1), "plain", "client", 3)
    assert rows["n"].tolist() == [1, 2, 3, 4, 5] and unit_of == [0, 0, 0, 1, 2]  # the last units cut to 5 rows
    assert rows["price"].tolist() == [2.0, 3.0, 4.0, 5.5, 6.0]
    assert counts == {"rows": 5, "units": 3, "unit_draws": 5, "draws": 16, "rejected": 2, "unparsed": 0,
                      "max_tries": W.MAX_TRIES, "units_cut_at_max_rows": 1, "rows_run_on": 0, "max_rows_per_unit": 3}
    assert fake.starts[3] == ["n: 4 | price:"]  # only the row that ran on is drawn again
    # every value, the last included, stops at a bar or a newline: nothing is decoded past the row's end
    assert set(fake.stops) == {W.VALUE_STOP}
    assert fake.prompts[0][0].startswith("Write up to 3 rows of one client, one per line, with the columns n, price.")
    assert fake.starts[4] == ["n: 1 | price: 2\nn:"] and fake.starts[7] == ["n: 1 | price: 2\nn: 2 | price: 3\nn: 3 | price:"]
    # the row's last value ends with its unit's next row or the unit's end at the model's odds (min-p cuts neither)
    assert fake.model_rate_ends == ["", "", "\n", "\n", "", "\n", "", "\n"]
    # a row that goes on with another field in every draw keeps its last draw, read up to the bar, and ends its unit
    stubborn = FakeModel([" 1 |", " 2 |"], *[[" 9 | tax: 1\n", " 8 | tax: 2\n"]] * W.MAX_TRIES)
    monkeypatch.setattr(G, "generate_texts", stubborn)
    rows, unit_of, counts = W.sample_units(None, columns, [], dtypes, 2, G.SamplingConfig(seed=1), "plain", "client", 3)
    assert rows["price"].tolist() == [9.0, 8.0] and unit_of == [0, 1] and not stubborn.calls
    assert counts["rows_run_on"] == 2 and counts["unparsed"] == 0 and counts["draws"] == 2 + 2 * W.MAX_TRIES
    assert counts["rejected"] == 2 * (W.MAX_TRIES - 1)
    never = FakeModel(*[["garbage"]] * 20)
    monkeypatch.setattr(G, "generate_texts", never)
    with pytest.raises(ModelError, match="no readable value"):
        W.sample_units(None, columns, [], dtypes, 1, G.SamplingConfig(), "plain", "client", 3)


@pytest.mark.parametrize("seed", range(8))
def test_units_are_drawn_in_few_rounds_in_one_decoding_copy(monkeypatch, seed):
    # a round costs a decoding call per column and row however few units it holds: the rows still needed come
    # in one more round drawn with a margin (not in ever smaller rounds), all calls in one decoding copy
    import random

    rng, rounds, inside = random.Random(seed), [], []

    def fake(trained, prompts, sampling=None, *, starts=None, ends_at_model_rate=False, **_):
        inside.append(id(trained) in G._SHARED_COPIES)
        if starts == ["n:"] * len(starts):  # a round's first column of its first row
            rounds.append(len(starts))
        if not ends_at_model_rate:
            return [" 1 |"] * len(starts)
        return [" 2\n" if rng.random() < 0.5 else " 2" for _ in starts]  # the unit goes on or ends

    monkeypatch.setattr(G, "generate_texts", fake)
    rows, unit_of, counts = W.sample_units(object(), ["n", "price"], [], {"n": "int64", "price": "float64"}, 200,
                                           G.SamplingConfig(seed=1), "plain", "client", 3)
    assert len(rows) == 200 and unit_of == sorted(unit_of) and set(unit_of) == set(range(counts["units"]))
    assert rounds[0] == W.UNIT_FIRST_ROUND and len(rounds) == 2 and counts["unit_draws"] == sum(rounds)
    assert all(inside) and not G._SHARED_COPIES


def test_the_small_data_refusal_counts_units_not_rows():
    df = customers(60)  # 120 rows, about 60 customers: under min_records=100 once the holdout is out
    n_units = U.Units.of(df, "customer").n_units
    n_train = n_units - round(0.1 * n_units)
    assert len(df) >= 100 > n_train
    with pytest.raises(PrivacyBudgetError, match=rf"^{n_train} units \(distinct 'customer' values\) is too few"):
        unit_synth().fit(df)


@pytest.fixture(scope="module")
def fitted():
    return unit_synth().fit(customers())


def test_one_record_per_unit_and_the_ledger_is_per_unit(fitted):
    synth, df = fitted, customers()
    [model] = synth.text_models()
    ledger = model.ledger
    n_units = U.Units.of(df, "customer").n_units
    assert synth.units_["n_units"] == n_units and synth.units_["rows_without_value"] == 2
    assert ledger.n_records == synth.units_["n_train_units"] == n_units - round(0.1 * n_units)
    assert ledger.privacy_unit == "customer" and synth.privacy_ledger_["privacy_unit"] == "customer"
    assert "per customer" in synth.privacy_ledger_["summary"] and "per row" not in synth.privacy_ledger_["summary"]
    # the ledger is the accountant's over the sampling used: one record per unit
    planned = plan_privacy(ledger.n_records, PrivacyConfig(epsilon=8.0), model.train_config)
    assert (ledger.noise_multiplier, ledger.sample_rate, ledger.steps) == (
        planned.noise_multiplier, planned.sample_rate, planned.steps)
    accountant = create_accountant(mechanism=ledger.accountant)
    accountant.history = [(ledger.noise_multiplier, ledger.sample_rate, ledger.steps)]
    assert accountant.get_epsilon(delta=ledger.delta) == pytest.approx(ledger.epsilon) and ledger.epsilon <= 8.0
    assert ledger.delta < 1 / ledger.n_records
    # the holdout splits by unit: no customer on both sides
    data = synth._fit_data
    assert not set(data.train["customer"].dropna()) & set(data.holdout["customer"].dropna())
    assert len(data.unit_rows["train"]) == ledger.n_records
    assert max(len(u) for u in data.unit_rows["train"]) <= synth.max_rows_per_unit
    assert "customer" not in synth.conditioning_columns_  # the unit column is never learned
    assert model.max_length == min(4 * DEFAULT_LENGTH, model.builtin_config.max_positions)  # room for 4 rows


def _units_written(prompts, starts):
    """A stand-in model writing units of the test table value by value: the i-th unit of a draw has rating
    1 + i % 5 and 1 + (rating - 1) % 3 rows (its size read back from its own first rating)."""
    out = []
    for i, start in enumerate(starts):
        first = re.search(r"rating: (\d)", start)
        rating = int(first.group(1)) if first else 1 + i % 5
        if start.endswith("product:"):
            out.append(" dress |")
        elif start.endswith("rating:"):
            out.append(f" {rating} |")
        else:
            more = start.count("\n") + 1 < 1 + (rating - 1) % 3
            out.append(" hi <PERSON>, it fits" + ("\n" if more else ""))
    return out


def test_sampled_rows_come_in_units_with_one_surrogate_each(fitted, monkeypatch, tmp_path):
    monkeypatch.setattr(G, "generate_texts", lambda trained, prompts, sampling=None, *, starts=None, **_:
                        _units_written(prompts, starts))
    out = fitted.sample(10)
    assert list(out.columns) == list(customers().columns) and len(out) == 10
    # units of 1, 2, 3, 1, 2, ... rows: the model's counts, not the real ones
    sizes = out.groupby("customer", sort=False).size().tolist()
    assert sizes == [1, 2, 3, 1, 2, 1]
    assert not set(out["customer"]) & set(customers()["customer"].dropna())  # surrogates, tied to nothing
    assert all("<PERSON>" not in t for t in out["comment"])
    with pytest.raises(ConfigError, match="whole units"):
        fitted.sample(conditions=pd.DataFrame({"product": ["dress"]}))

    inputs = fitted.report_inputs()
    protection = {c["name"]: c["protected_by"] for c in inputs["data_summary"]["columns"]}
    assert protection["customer"].startswith("surrogate, one per synthetic unit")
    assert protection["rating"].startswith("DP (")
    report = build_report(evaluation=None, **inputs)
    caveats = {c["id"]: c["text"] for c in report["caveats"]}
    assert "per 'customer'" in caveats["privacy_unit"] and "2 rows had no 'customer' value" in caveats["privacy_unit"]
    assert "come from 6 units the DP model wrote" in caveats["privacy_unit"]
    verdict = next(v for v in report["verdicts"] if v["metric"] == "epsilon")
    assert "per customer" in verdict["plain"]
    page = render_html(report)
    assert "per customer (every column but the PII columns)</p>" in page  # the headline
    assert "written by the DP model with the text" in page

    saved = fitted.save(tmp_path / "units")
    loaded = TextSynthesizer.load(saved)
    assert loaded.privacy_unit_ == "customer" and loaded.privacy_ledger_["privacy_unit"] == "customer"
    assert loaded.sample(4, seed=1).groupby("customer").size().sum() == 4
    assert json.loads((saved / "synthesizer.json").read_text())["units"]["n_units"] == fitted.units_["n_units"]


def test_membership_is_scored_per_unit(fitted):
    membership = fitted._membership()
    [entry] = membership.values()
    assert len(entry["holdout_losses"]) == fitted.units_["n_holdout_units"]
    assert len(entry["train_losses"]) == min(fitted.units_["n_train_units"], max(200, 4 * len(entry["holdout_losses"])))


def test_the_plan_is_per_unit_as_the_run():
    plan = unit_synth().plan(customers(), probe=False)
    assert plan.privacy["privacy_unit"] == "customer"
    assert plan.privacy["models"][0]["n_records"] == plan.privacy["units"]["n_train_units"]
    assert "Privacy unit: 'customer'" in str(plan) and "per customer" in str(plan)


def test_a_unique_unit_column_proceeds_per_row():
    df = customers()
    df["customer"] = [f"R{i}" for i in range(len(df))]
    synth = unit_synth().fit(df)
    assert synth.privacy_unit_ == "row" and synth.privacy_ledger_["privacy_unit"] == "row"
    assert synth.units_["note"].endswith("the run proceeds per row.")
    assert synth.models_["comment"].ledger.n_records == synth.n_train_


def test_the_canary_audit_runs_per_unit():
    from synthtext import audit

    df = customers().drop(columns="product")  # the tiny model's 128 bytes hold a canary unit of two columns
    result = audit(df, ["comment"], epsilon=8.0, canaries=40, model="builtin", model_size="tiny", train=TRAIN,
                   structured="dp", references=20, privacy_unit="customer")
    n_units = U.Units.of(df, "customer").n_units
    assert result.ledger["privacy_unit"] == "customer" and result.ledger["n_records"] == n_units + result.n_inserted
    assert result.canary["prompt"].startswith("a whole 'customer' unit")
    assert result.empirical_epsilon_lower_bound <= result.claimed_epsilon


def test_cli_refuses_a_bad_unit_before_training(tmp_path, capsys):
    src = tmp_path / "in.csv"
    write_csv(customers(), src)
    common = [str(src), "--text-columns", "comment", "--model", "builtin", "--model-size", "tiny", "--quiet",
              "-o", str(tmp_path / "out.csv")]
    assert cli.main(["synthesize", *common, "--privacy-unit", "customer"]) == 2
    assert "--privacy-unit needs --structured dp: one DP model" in capsys.readouterr().err
    assert cli.main(["synthesize", *common, "--structured", "dp", "--privacy-unit", "client"]) == 2
    assert "no column 'client'" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_the_report_says_how_many_rows_ran_on_past_their_last_column():
    from synthtext.metrics.verdicts.report import _unit_sentence

    units = {"column": "customer", "n_train_units": 90, "n_holdout_units": 10, "max_rows_per_unit": 4}
    drawn = {"rows": 200, "units": 120, "unit_draws": 130, "rejected": 7, "draws": 900, "unparsed": 2,
             "rows_run_on": 0}
    assert "went on with another field" not in _unit_sentence(units, drawn)
    said = _unit_sentence(units, {**drawn, "rows_run_on": 11})
    assert "11 rows went on with another field after their last column in every draw" in said
    assert "their units end there" in said

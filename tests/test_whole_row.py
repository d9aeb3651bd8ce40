"""structured="dp": one DP model writes whole rows; parsing, redraws, the ledger and the report."""

import json

import pandas as pd
import pytest

import synthtext.generate as G
from synthtext import whole_row as W
from synthtext.config import PrivacyConfig, TrainConfig
from synthtext.errors import DataError, ModelError
from synthtext.report import build_report
from synthtext.synthesizer import TextSynthesizer
from synthtext.train import plan_privacy
from test_synthesize import table

DTYPES = {"n": "int64", "maybe": "Int64", "price": "float64", "ok": "bool", "kind": "category",
          "when": "datetime64[ns, Europe/Paris]", "note": "object"}


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "n": [1, -20], "maybe": pd.array([3, None], dtype="Int64"), "price": [19.99, 0.5], "ok": [True, False],
        "kind": pd.Categorical(["a | b", "c"]), "when": pd.to_datetime(["2024-01-02 13:45", "2024-03-04 00:00"]).tz_localize(
            "Europe/Paris"), "note": ["two\nlines | and a bar", "<missing>"]})


def test_a_row_line_reads_back_as_the_row_in_every_dtype():
    df = frame()
    columns = list(df.columns)
    for row in df.to_dict("records"):
        parsed = W.parse_row(W.row_line(row, columns), columns, df.dtypes, text_columns=["note"])
        assert parsed is not None
        back = W.restore_dtypes(pd.DataFrame([parsed], columns=columns), df.dtypes)
        for column in columns:
            want = row[column]
            got = back[column].iloc[0]
            assert (pd.isna(want) and pd.isna(got)) or got == want, (column, want, got)
    missing_text = {**df.iloc[0].to_dict(), "note": None}
    assert W.parse_row(W.row_line(missing_text, columns), columns, df.dtypes, ["note"])["note"] is None


@pytest.mark.parametrize("line", [
    "n: 1 | price: 2",                                       # a column left out
    "price: 2 | n: 1 | maybe: 3",                           # out of order
    "n: one | maybe: 3 | price: 2",                          # not an integer
    "n: 1 | maybe: 3.5 | price: 2",                          # not an integer either
    "n: 1 | maybe: 3 | price: cheap",                        # not a number
    "n: 1 | maybe: 3 price: 2",                              # no separator
    "n: 1 | maybe: 3 | price: 2 | extra: 9",                 # a column the table does not have
])
def test_a_line_that_is_not_a_row_of_the_table_is_refused(line):
    assert W.parse_row(line, ["n", "maybe", "price"], {k: DTYPES[k] for k in ("n", "maybe", "price")}, []) is None


@pytest.mark.parametrize("text, dtype", [("yes", "bool"), ("2024-13-45", "datetime64[ns]"),
                                         ("2024-01-02 10:00+01:00", "datetime64[ns]")])
def test_values_of_the_wrong_type_are_refused(text, dtype):
    with pytest.raises(ValueError):
        W.parse_value(text, pd.api.types.pandas_dtype(dtype))


class FakeModel:
    """Stands in for generate_texts: answers from a script, one list per call."""

    def __init__(self, *calls):
        self.calls, self.seen, self.stops = list(calls), [], []

    def __call__(self, trained, prompts, sampling=None, *, starts=None, stop_at="", **_):
        self.seen.append((list(prompts), list(starts or [])))
        self.stops.append(stop_at)
        return self.calls.pop(0)


def test_rows_are_written_column_by_column_and_bad_values_drawn_again(monkeypatch):
    # the decoder writes 'name:' and the separators; the model only the values (" 1 |": value, separator)
    fake = FakeModel([" 1 |", " 2x |", " x |"], [" 2 |", " 3 | price"], [" 2", " 3", " 4 | extra: 1"])
    monkeypatch.setattr(G, "generate_texts", fake)
    sampling = G.SamplingConfig(seed=5)
    rows, counts = W.sample_rows(None, ["n", "price"], [], {"n": "int64", "price": "float64"}, 3, sampling, "plain")
    assert rows.to_dict("list") == {"n": [1, 2, 3], "price": [2.0, 3.0, 4.0]}
    assert counts == {"rows": 3, "draws": 8, "rejected": 2, "unparsed": 0, "rows_incomplete": 0,
                      "max_tries": W.MAX_TRIES}
    assert fake.seen[0][1] == ["n:"] * 3
    assert fake.seen[1][1] == ["n:", "n:"]  # only the two values that failed are drawn again
    assert fake.seen[2][1] == ["n: 1 | price:", "n: 2 | price:", "n: 3 | price:"]  # the model's values, in place


def test_a_value_never_readable_is_left_missing_and_counted(monkeypatch):
    # a structured value must end at the separator: " 5" (EOS, the row cut short) is drawn again
    fake = FakeModel([" 5", " 6 |"], [" 5"], [" 5"], [" 1.5", " 1.5"])
    monkeypatch.setattr(G, "generate_texts", fake)
    rows, counts = W.sample_rows(None, ["n", "price"], [], {"n": "int64", "price": "float64"}, 2,
                                 G.SamplingConfig(seed=0), "plain")
    assert rows["n"].isna().tolist() == [True, False] and rows["price"].tolist() == [1.5, 1.5]
    assert counts["unparsed"] == 1 and counts["rows_incomplete"] == 1 and counts["draws"] == 6
    assert fake.seen[3][1] == ["n: <missing> | price:", "n: 6 | price:"]  # the line says it is missing
    never = FakeModel(*[["garbage"] * 2] * (2 * W.MAX_TRIES))
    monkeypatch.setattr(G, "generate_texts", never)
    with pytest.raises(ModelError, match="no readable value"):
        W.sample_rows(None, ["n", "price"], [], {"n": "int64", "price": "float64"}, 2, G.SamplingConfig(), "plain")


def test_the_texts_are_read_back_unescaped_and_end_at_a_separator(monkeypatch):
    fake = FakeModel([" 1 |"], [" two\\nlines \\| and a bar | n: 3"])
    monkeypatch.setattr(G, "generate_texts", fake)
    rows, _ = W.sample_rows(None, ["n", "note"], ["note"], {"n": "int64", "note": "object"}, 1, G.SamplingConfig(),
                            "plain")
    assert rows["note"].tolist() == ["two\nlines | and a bar"]
    # the text, the row's last value, stops at a bar or a newline too: what comes after is cut anyway
    assert fake.stops == [W.VALUE_STOP] * 2


def test_given_leading_columns_start_the_line(monkeypatch):
    fake = FakeModel([" 7"])
    monkeypatch.setattr(G, "generate_texts", fake)
    given = pd.DataFrame({"n": [41]})
    rows, _ = W.sample_rows(None, ["n", "price"], [], {"n": "int64", "price": "float64"}, 1, G.SamplingConfig(),
                            "plain", given=given)
    assert fake.seen[0][1] == ["n: 41 | price:"] and rows.to_dict("list") == {"n": [41], "price": [7.0]}
    with pytest.raises(DataError, match="the first of them, in that order"):
        W.sample_rows(None, ["n", "price"], [], {"n": "int64", "price": "float64"}, 1, G.SamplingConfig(), "plain",
                      given=pd.DataFrame({"price": [1.0]}))


def _two_text_table() -> pd.DataFrame:
    df = table()
    df["title"] = [f"about the {p}" for p in df["product"]]
    return df


def _written_rows(prompts, starts):
    """Well-formed lines of the test table (with a placeholder, which the PII filling must take)."""
    out = []
    for i, start in enumerate(starts):
        line = f"product: dress | rating: {1 + i % 5} | comment: hi <PERSON>, the dress fits | title: nice"
        out.append(line[len(start):] if start else line)
    return out


def test_fit_dp_one_model_for_the_whole_row_and_its_ledger(monkeypatch, tmp_path):
    synth = TextSynthesizer(["comment", "title"], model="builtin", model_size="tiny", epsilon=8.0, structured="dp",
                            train=TrainConfig(epochs=1, batch_size=32, progress=False), max_new_tokens=16)
    synth.fit(_two_text_table())
    [model] = synth.text_models()
    assert synth.models_["comment"] is synth.models_["title"] is model  # one model, the budget not split
    planned = plan_privacy(synth.n_train_, PrivacyConfig(epsilon=8.0), model.train_config)
    assert (model.ledger.noise_multiplier, model.ledger.steps, model.ledger.target_epsilon) == (
        planned.noise_multiplier, planned.steps, 8.0)
    assert synth.privacy_ledger_["epsilon"] == model.ledger.epsilon <= 8.0
    assert synth.privacy_ledger_["covers"] == "every column but the PII columns"
    assert synth.conditioning_columns_ == ["product", "rating"]

    monkeypatch.setattr(G, "generate_texts", lambda trained, prompts, sampling=None, *, starts=None, **_:
                        _written_rows(prompts, starts))
    out = synth.sample(6)
    assert list(out.columns) == list(_two_text_table().columns) and len(out) == 6
    assert out["rating"].tolist() == [1, 2, 3, 4, 5, 1] and str(out["rating"].dtype) == "int64"
    assert all("<PERSON>" not in t for t in out["comment"]) and out["title"].eq("nice").all()
    assert out["customer_name"].map(lambda v: isinstance(v, str) and " " in v).all()  # surrogates
    given = synth.sample(conditions=pd.DataFrame({"rating": [5, 2], "product": ["jeans", "jeans"]}))
    assert given["rating"].tolist() == [5, 2] and given["product"].tolist() == ["jeans", "jeans"]

    inputs = synth.report_inputs()
    protection = {c["name"]: c["protected_by"] for c in inputs["data_summary"]["columns"]}
    assert protection["rating"].startswith("DP (") and protection["customer_name"].startswith("Faker")
    report = build_report(evaluation=None, **inputs)
    caveats = {c["id"]: c["text"] for c in report["caveats"]}
    assert "every column but the PII columns" in caveats["epsilon_scope"] and "sdv_not_dp" not in caveats
    assert "Of 4 values drawn, 0 were not a value of their column" in caveats["whole_rows"]  # 2 rows x 2 texts

    saved = synth.save(tmp_path / "dp")
    assert sorted(p.name for p in saved.iterdir() if p.name.startswith("text_model")) == ["text_model_0"]
    loaded = TextSynthesizer.load(saved)
    assert loaded.models_["comment"] is loaded.models_["title"]
    assert loaded.privacy_ledger_["epsilon"] == synth.privacy_ledger_["epsilon"]
    assert len(loaded.sample(3)) == 3
    state = json.loads((saved / "synthesizer.json").read_text())
    assert state["text_models"] == {"comment": "text_model_0", "title": "text_model_0"}


def test_the_plan_shows_one_model_covering_every_column():
    synth = TextSynthesizer(["comment"], model="builtin", model_size="tiny", epsilon=8.0, structured="dp",
                            train=TrainConfig(epochs=1, batch_size=32, progress=False), max_new_tokens=16)
    plan = synth.plan(_two_text_table().drop(columns="title"), probe=True)
    assert len(plan.privacy["models"]) == 1 and plan.privacy["models"][0]["target_epsilon"] == 8.0
    assert {c["name"]: c["protected_by"].split(" (")[0] for c in plan.columns} == {
        "customer_name": "Faker surrogate", "product": "DP", "rating": "DP", "comment": "DP"}
    generation = [s for s in plan.estimate["stages"] if s["stage"].startswith("generation")]
    assert [s["stage"] for s in generation] == ["generation, 120 rows, column by column"]
    assert generation[0]["seconds"] > 0


def test_the_estimate_decodes_each_column_after_the_line_so_far():
    from synthtext.estimate import column_by_column_seconds, generation_seconds
    from synthtext.models import ByteTokenizer

    costs = {"batch_size": 4, "prompt_token_seconds": 0.01, "step_fixed_seconds": 0.1, "step_per_row_seconds": 0.02}
    rows = [{"n": 7, "note": "abc"}] * 8
    first, whole = len("n: 7"), len("n: 7 | note: abc")  # the byte tokenizer: a token per byte
    got = column_by_column_seconds(costs, ByteTokenizer(), rows, ["n", "note"], 6, request_length=10, n_rows=80)
    assert got == pytest.approx(generation_seconds(costs, [first] * 8, 10, 80)
                                + generation_seconds(costs, [whole - first] * 8, 10 + first, 80))


def test_the_canary_audit_runs_on_the_whole_row_model():
    from synthtext import audit

    result = audit(table(), ["comment"], epsilon=8.0, canaries=50, model="builtin", model_size="tiny",
                   train=TrainConfig(epochs=1, batch_size=32, progress=False), structured="dp", references=20)
    assert result.dp and result.ledger["target_epsilon"] == 8.0  # the whole budget: one model
    assert result.canary["prompt"].startswith("a whole row")
    assert result.empirical_epsilon_lower_bound <= result.claimed_epsilon
    assert result.ledger["n_records"] == len(table()) + result.n_inserted


def test_declared_public_domains_hold_generated_rows(monkeypatch):
    columns, dtypes = ["n", "kind"], {"n": "int64", "kind": "object"}
    domains = W.check_public_domains({"n": [1, 5], "kind": ["a", "b"]}, "dp", columns, dtypes)
    assert domains == {"n": (1, 5), "kind": ["a", "b"]}
    assert W.parse_row("n: 3 | kind: a", columns, dtypes, [], domains) == {"n": 3, "kind": "a"}
    assert W.parse_row("n: 9 | kind: a", columns, dtypes, [], domains) is None      # out of the range
    assert W.parse_row("n: 3 | kind: zz", columns, dtypes, [], domains) is None     # not a declared category
    assert W.parse_row("n: 3 | kind: <missing>", columns, dtypes, [], domains) == {"n": 3, "kind": None}
    fake = FakeModel([" 9 |", " 2 |"], [" 4 |"], [" a", " zz"], [" b"])
    monkeypatch.setattr(G, "generate_texts", fake)
    rows, counts = W.sample_rows(None, columns, [], dtypes, 2, G.SamplingConfig(seed=1), "plain", domains=domains)
    assert rows.to_dict("list") == {"n": [4, 2], "kind": ["a", "b"]} and counts["rejected"] == 2
    restored = W.restore_dtypes(rows.assign(kind=pd.Series(["a", "a"], dtype=object)), {**dtypes, "kind": pd.CategoricalDtype()},
                                domains)
    assert list(restored["kind"].cat.categories) == ["a", "b"]  # the declared list, not the written one


@pytest.mark.parametrize("domains, structured, match", [
    ({"n": (1, 5)}, "sdv", "needs structured='dp'"),
    ({"nope": (1, 5)}, "dp", "not a column the DP model writes"),
    ({"n": (5, 1)}, "dp", "low <= high"),
    ({"n": ["a"]}, "dp", "is numeric"),
    ({"kind": (1, 2)}, "dp", "not numeric"),
    ({"kind": []}, "dp", "not numeric"),
])
def test_bad_public_domains_are_refused(domains, structured, match):
    from synthtext.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        W.check_public_domains(domains, structured, ["n", "kind"], {"n": "int64", "kind": "object"})


def test_fit_with_public_domains_says_so_and_keeps_them_after_saving(monkeypatch, tmp_path):
    synth = TextSynthesizer(["comment", "title"], model="builtin", model_size="tiny", epsilon=8.0, structured="dp",
                            train=TrainConfig(epochs=1, batch_size=32, progress=False), max_new_tokens=16,
                            public_domains={"rating": (1, 3)})
    synth.fit(_two_text_table())
    monkeypatch.setattr(G, "generate_texts", lambda trained, prompts, sampling=None, *, starts=None, **_:
                        _written_rows(prompts, starts))
    out = synth.sample(6)
    assert out["rating"].between(1, 3).all()  # the fake writes ratings 1-5: 4 and 5 were drawn again
    report = build_report(evaluation=None, **synth.report_inputs())
    caveats = {c["id"]: c["text"] for c in report["caveats"]}
    assert "'rating' were held to the ranges or categories the user declared public" in caveats["public_domains"]
    loaded = TextSynthesizer.load(synth.save(tmp_path / "dp"))
    assert loaded.public_domains_ == {"rating": (1, 3)}
    assert synth.plan(_two_text_table(), probe=False).privacy["public_domains"] == {"rating": [1, 3]}


def test_cli_reads_public_domains():
    from synthtext.cli.parser import build_parser

    args = build_parser().parse_args(["synthesize", "in.csv", "-o", "out.csv", "--structured", "dp",
                                      "--public-domain", "Age=18..99", "--public-domain", "Dept=Tops, Dresses"])
    assert dict(args.public_domain) == {"Age": (18, 99), "Dept": ["Tops", "Dresses"]}


def test_the_cli_summary_warns_of_cells_left_empty():
    import time
    from types import SimpleNamespace

    from synthtext.cli.commands import _summary

    synth = SimpleNamespace(privacy_ledger_={"summary": "(epsilon=8, delta=1e-05)-DP ..."},
                            whole_row_counts_={"rows": 500, "draws": 5100, "rejected": 140, "unparsed": 12,
                                               "rows_incomplete": 9, "max_tries": 3})
    text = _summary("wrote out.csv:", 500, synth, time.perf_counter())
    assert "warning: 12 cells in 9 of 500 rows were not values of their column after 3 draws each" in text
    synth.whole_row_counts_ = {**synth.whole_row_counts_, "unparsed": 0}
    assert "warning" not in _summary("wrote out.csv:", 500, synth, time.perf_counter())


def test_a_value_holding_an_escaped_bar_is_written_on_past_it(monkeypatch):
    # decoding stops at any token holding a bar; an escaped one is part of the value, so the draw goes on
    fake = FakeModel([" A\\|", " 5 |"], ["B\\|"], ["C |"], [" 1", " 2"])
    monkeypatch.setattr(G, "generate_texts", fake)
    rows, counts = W.sample_rows(None, ["kind", "n"], [], {"kind": "object", "n": "int64"}, 2,
                                 G.SamplingConfig(seed=0), "plain")
    assert rows.to_dict("list") == {"kind": ["A|B|C", "5"], "n": [1, 2]}
    assert fake.seen[1][1] == ["kind: A\\|"] and fake.seen[2][1] == ["kind: A\\|B\\|"]  # the same draw, continued
    assert counts["draws"] == 4 and counts["rejected"] == 0 and counts["unparsed"] == 0
    assert fake.seen[3][1] == ["kind: A\\|B\\|C | n:", "kind: 5 | n:"]


def test_escaped_bars_are_continued_a_bounded_number_of_times(monkeypatch):
    # a value that never reaches its separator: each draw is continued ESCAPED_BAR_CONTINUATIONS times,
    # then drawn again; after MAX_TRIES draws the cell is left missing
    endless = FakeModel(*([[" x\\|"]] * (1 + W.ESCAPED_BAR_CONTINUATIONS)) * W.MAX_TRIES, [" 1"])
    monkeypatch.setattr(G, "generate_texts", endless)
    rows, counts = W.sample_rows(None, ["kind", "n"], [], {"kind": "object", "n": "int64"}, 1,
                                 G.SamplingConfig(seed=0), "plain")
    assert rows["kind"].isna().all() and rows["n"].tolist() == [1]
    assert counts["unparsed"] == 1 and counts["draws"] == W.MAX_TRIES + 1
    assert not endless.calls  # every scripted call used, none more


def test_rows_are_written_in_chunks_with_their_own_seeds(monkeypatch):
    """Chunk 0 keeps the sampling seed (a table of one chunk samples as before), the others get seeds of their
    own; given rows are split with them, the counts summed, and the refusal judges all chunks together."""
    seeds = []

    def fake(trained, prompts, sampling=None, *, starts=None, **_):
        seeds.append(sampling.seed)
        return [f" {s.split(': ')[1].split(' |')[0]}0 |" if " | " in s else " 1 |" for s in starts]

    monkeypatch.setattr(G, "generate_texts", fake)
    monkeypatch.setattr(G, "CHUNK_ROWS", 2)
    given = pd.DataFrame({"n": [1, 2, 3, 4, 5]})
    rows, counts = W.sample_rows_by_chunks(None, ["n", "m"], [], {"n": "int64", "m": "int64"}, 5,
                                           G.SamplingConfig(seed=7), "plain", given=given)
    assert rows.to_dict("list") == {"n": [1, 2, 3, 4, 5], "m": [10, 20, 30, 40, 50]}  # in order, chunk by chunk
    assert seeds[0] == 7 and len(set(seeds)) == 3 and counts["rows"] == 5 and counts["draws"] == 5
    one_chunk, _ = W.sample_rows(None, ["n", "m"], [], {"n": "int64", "m": "int64"}, 2, G.SamplingConfig(seed=7),
                                 "plain", given=given[:2])
    assert one_chunk.equals(rows[:2])

    # one chunk that reads nothing is not a refusal; all of them are
    monkeypatch.setattr(G, "generate_texts", lambda trained, prompts, sampling=None, *, starts=None, **_:
                        ["?"] * len(prompts) if sampling.seed < 100 else [" 1 |"] * len(prompts))  # chunk 0: 7, 8, 9
    rows, counts = W.sample_rows_by_chunks(None, ["n"], [], {"n": "int64"}, 4, G.SamplingConfig(seed=7), "plain")
    assert rows["n"].isna().tolist() == [True, True, False, False] and counts["unparsed"] == 2
    monkeypatch.setattr(G, "generate_texts", lambda trained, prompts, sampling=None, **_: ["?"] * len(prompts))
    with pytest.raises(ModelError, match="none of 4 rows"):
        W.sample_rows_by_chunks(None, ["n"], [], {"n": "int64"}, 4, G.SamplingConfig(seed=7), "plain")

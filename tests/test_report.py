"""The privacy audit report: report.json schema, a self-contained and escaped report.html, atomic writing.

The inputs are hand-made in the layouts docs/report.md and docs/evaluation.md describe, so most tests do
not depend on synthtext.metrics; test_report_from_a_real_evaluation runs the real one. The headless-browser
tests run only where chromium is installed (apt-get install chromium); CI has none and skips them.
"""

import copy
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from synthtext.errors import ConfigError, DataError
from synthtext.report import write as report_module  # where write_report looks up render_html
from synthtext.report import REPORT_SCHEMA, build_report, render_html, sample_rows, write_report

ROOT = Path(__file__).resolve().parents[1]
TEXT = "Review Text"
PLANTED = "Zebediah Quillfeather"  # a "real name" that must never reach the report


def _ledger(dp=True, epsilon=8.0, delta=1e-5, n=450):
    model = {"dp": dp, "epsilon": epsilon if dp else None, "delta": delta if dp else None,
             "noise_multiplier": 0.9 if dp else None, "sample_rate": 0.1 if dp else None, "steps": 30,
             "epochs": 3.0, "accountant": "prv" if dp else None, "max_grad_norm": 1.0 if dp else None,
             "n_records": n, "model": "builtin-small", "privacy_unit": "row", "sampling": "poisson",
             "secure_rng": False, "notes": [], "summary": "..."}
    return {"dp": dp, "epsilon": epsilon if dp else None, "delta": delta if dp else None,
            "composition": "single model", "privacy_unit": "row", "models": [model],
            "summary": "(epsilon=8, delta=1e-05)-DP per row for the text (1 model(s))." if dp
            else "no differential privacy: the text models were trained without DP."}


def _data_summary(structured="sdv", columns=None):
    columns = columns or [
        {"name": TEXT, "dtype": "object", "role": "text", "protected_by": "DP (epsilon=8 for all text columns)"},
        {"name": "Rating", "dtype": "int64", "role": "conditioning", "protected_by": "SDV (not DP)"},
        {"name": "Customer", "dtype": "object", "role": "pii",
         "protected_by": "Faker surrogate (not derived from data)"},
    ]
    return {"n_rows": 500, "n_train": 450, "n_holdout": 50, "columns": columns, "text_columns": [TEXT],
            "conditioning_columns": ["Rating"], "structured": structured, "model": "builtin-small"}


def _pii_summary():
    return {"counts": {TEXT: {"PERSON": 12, "PHONE_NUMBER": 3}},
            "structured_columns": {"Customer": "PERSON"},
            "examples": {TEXT: ["Call <PERSON> at <PHONE_NUMBER> about the dress"]},
            # Not part of the summary layout: a careless caller passing raw values must not leak them.
            "values": {"PERSON": [PLANTED]}}


def _evaluation(plots=True):
    rng = np.random.default_rng(0)
    verdicts = [
        {"section": "fidelity", "column": TEXT, "metric": "discriminator_auc", "value": 0.71,
         "threshold": "good <= 0.6, fair <= 0.8", "verdict": "fair",
         "plain": "A classifier tells real from synthetic text fairly often."},
        {"section": "leakage", "column": TEXT, "metric": "pii_replay_share", "value": 0.0,
         "threshold": "good = 0", "verdict": "good", "plain": "No PII from training came back."},
        {"section": "membership", "column": TEXT, "metric": "mia_auc", "value": 0.52,
         "threshold": "good <= 0.55", "verdict": "good", "plain": "The attack does about as well as guessing."},
    ]
    fpr = np.linspace(0, 1, 50)
    evaluation = {
        "schema": "synthtext.evaluation/1", "embedding_method": "tfidf+svd (scikit-learn)",
        "n_rows": {"real": 450, "synthetic": 500, "holdout": 50},
        "text_columns": [TEXT], "conditioning_columns": ["Rating"],
        "columns": {TEXT: {
            "fidelity": {
                "length": {"unit": "words",
                           "real": {"mean": 60.1, "median": 55.0, "p10": 20.0, "p90": 100.0, "missing_share": 0.0},
                           "synthetic": {"mean": 50.2, "median": 48.0, "p10": 15.0, "p90": 90.0,
                                         "missing_share": 0.0},
                           "ks_statistic": 0.12, "ks_pvalue": 0.01},
                "ngrams": {"unigram_js_divergence": 0.2, "bigram_js_divergence": 0.4, "vocabulary_overlap": 0.6},
                "discriminator": {"auc": 0.71, "ci95": [0.66, 0.76], "method": "tfidf logistic regression"},
                "embedding": {"method": "tfidf+svd", "centroid_cosine": 0.9, "mmd": 0.05, "knn_precision": 0.7,
                              "knn_recall": 0.6},
                "conditional": {"Rating": {"real_holdout_accuracy": 0.6, "synthetic_accuracy": 0.5,
                                           "tstr_accuracy": 0.45, "trtr_accuracy": 0.58, "majority_baseline": 0.4,
                                           "n_classes": 5}}},
            "leakage": {
                "pii_replay": {"n_values_searched": 15, "rows_with_replay": 0, "share": 0.0,
                               "by_type": {"PERSON": {"exact": 0, "case_insensitive": 0}}},
                "verbatim": {"min_words": 8, "min_chars": 50, "share_vs_train": 0.0, "share_vs_holdout": 0.0},
                "dcr": {"share_closer_to_train": 0.51, "exact_match_train": 0.0, "exact_match_holdout": 0.0,
                        "n_train": 450, "n_holdout": 50}}}},
        "membership": {TEXT: {"auc": 0.52, "auc_ci95": [0.45, 0.59], "tpr_at_fpr": {"0.01": 0.02, "0.1": 0.11},
                              "empirical_epsilon_lower_bound": 0.0, "empirical_epsilon_ci95": [0.0, 0.4],
                              "claimed_epsilon": 8.0, "n_train": 450, "n_holdout": 50}},
        "structured": None,
        "verdicts": verdicts,
        "plots": {},
    }
    if plots:
        evaluation["plots"] = {
            "lengths": {TEXT: {"real": rng.poisson(60, 300).tolist(), "synthetic": rng.poisson(50, 300).tolist()}},
            "embedding_2d": {TEXT: {"real": rng.normal(size=(200, 2)).tolist(),
                                    "synthetic": (rng.normal(size=(200, 2)) + 0.3).tolist()}},
            "conditional": {TEXT: {"Rating": {"real_holdout": 0.6, "synthetic": 0.5, "tstr": 0.45}}},
            "dcr": {TEXT: {"synthetic_to_train": rng.random(300).tolist(),
                           "synthetic_to_holdout": (rng.random(300) + 0.05).tolist()}},
            "mia_roc": {TEXT: {"fpr": fpr.tolist(), "tpr": np.sqrt(fpr).tolist()}},
            "structured": {
                "Rating": {"kind": "categorical", "categories": ["5", "4", "3"], "real": [0.5, 0.3, 0.1],
                           "synthetic": [0.4, 0.3, 0.2], "other": {"real": 0.08, "synthetic": 0.1},
                           "missing": {"real": 0.02, "synthetic": 0.0}, "n": {"real": 450, "synthetic": 500},
                           "top": 10, "min_real_rows": 5},
                "Age": {"kind": "numeric", "edges": np.linspace(18, 80, 21).tolist(),
                        "real": rng.integers(0, 40, 20).tolist(), "synthetic": rng.integers(0, 40, 20).tolist(),
                        "missing": {"real": 0.0, "synthetic": 0.0}, "n": {"real": 450, "synthetic": 500}}},
        }
    return evaluation


def _training_log(steps=30, epsilon=8.0):
    """A text model's log as synthtext.report.training_logs makes it: epsilon at some steps, the last the ledger's."""
    marked = set(range(5, steps + 1, 5)) | {1, steps}
    log = [{"step": i, "loss": 3.0 - i / 20, "epsilon": epsilon * (i / steps) ** 0.5 if i in marked else None}
           for i in range(1, steps + 1)]
    return {TEXT: {"model": "builtin-small", "dp": True, "accountant": "prv", "delta": 1e-5, "epsilon": epsilon,
                   "target_epsilon": 8.0, "seconds": 12.5, "cpu_seconds": 20.0, "records_processed": 1350,
                   "precision": "fp32", "steps": log}}


def _synthetic(n=50):
    """A synthetic table (its texts unlike any real text here), with markup in a text and missing values."""
    import pandas as pd

    texts = [f"synthetic review number {i}: " + "the fabric is soft and it fits well " * (1 + i % 4) for i in range(n)]
    texts[7] = "<script>alert('sample')</script> & <b>bold</b>"
    texts[9] = None
    return pd.DataFrame({TEXT: texts, "Rating": [1 + i % 5 for i in range(n)],
                         "Customer": [f"Surrogate Name{i}" if i % 6 else None for i in range(n)]})


def _inputs(plots=False, **overrides):
    """Report inputs; plots=True adds plot data and a training log (rendering the plots costs ~1 s of CPU)."""
    inputs = {"evaluation": _evaluation(plots), "ledger": _ledger(), "data_summary": _data_summary(),
              "pii_summary": _pii_summary(), "audit": None, "model_info": {"models": {TEXT: "builtin-small"}},
              "samples": sample_rows(_synthetic(), seed=0), "training_log": _training_log() if plots else None}
    inputs.update(overrides)
    return inputs


class _Resources(HTMLParser):
    """Every resource reference in a page: tag, attribute and value."""

    def __init__(self):
        super().__init__()
        self.refs, self.scripts, self.images, self.ids = [], [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "script":
            self.scripts.append(attrs)
        if tag == "img":
            self.images.append(attrs)
        for name in ("src", "href", "srcset", "poster", "data", "action", "background"):
            if attrs.get(name) is not None:
                self.refs.append((tag, name, attrs[name]))


def _parse(page):
    parser = _Resources()
    parser.feed(page)
    return parser


# --------------------------------------------------------------------------------------------- JSON


def test_report_json_has_the_schema_keys_and_is_json_safe():
    inputs = _inputs()
    inputs["evaluation"]["columns"][TEXT]["fidelity"]["ngrams"]["unigram_js_divergence"] = np.float32(0.25)
    inputs["ledger"]["models"][0]["steps"] = np.int64(30)
    report = build_report(**inputs, run_id="run-1", title="Reviews")
    for key in ("schema", "synthtext_version", "created", "run_id", "data", "protection", "pii_scan",
                "privacy", "evaluation", "audit", "caveats", "verdicts"):
        assert key in report, key
    assert report["schema"] == REPORT_SCHEMA and report["run_id"] == "run-1"
    json.dumps(report, allow_nan=False)  # numpy values became plain numbers
    assert report["evaluation"]["columns"][TEXT]["fidelity"]["ngrams"]["unigram_js_divergence"] == 0.25
    assert report["protection"] == [
        {"column": TEXT, "role": "text", "protected_by": "DP (epsilon=8 for all text columns)"},
        {"column": "Rating", "role": "conditioning", "protected_by": "SDV (not DP)"},
        {"column": "Customer", "role": "pii", "protected_by": "Faker surrogate (not derived from data)"}]
    # the evaluation's verdicts are all there, next to the report's own privacy verdicts
    metrics = {(v["section"], v["metric"]) for v in report["verdicts"]}
    assert {("fidelity", "discriminator_auc"), ("leakage", "pii_replay_share"), ("membership", "mia_auc"),
            ("privacy", "epsilon"), ("privacy", "delta")} <= metrics
    assert report["overall"]["fidelity"]["verdict"] == "fair"
    assert report["overall"]["privacy"]["verdict"] == "fair"  # epsilon 8: between 1 and 10


def test_nan_becomes_null_and_unserialisable_values_are_refused():
    inputs = _inputs()
    inputs["evaluation"]["columns"][TEXT]["leakage"]["dcr"]["share_closer_to_train"] = float("nan")
    report = build_report(**inputs)
    assert report["evaluation"]["columns"][TEXT]["leakage"]["dcr"]["share_closer_to_train"] is None
    inputs["model_info"] = {"tokenizer": object()}
    with pytest.raises(ConfigError, match="model_info.tokenizer"):
        build_report(**inputs)


def test_protection_is_derived_when_not_given_and_false_dp_claims_are_refused():
    columns = [{"name": TEXT, "role": "text"}, {"name": "Rating", "role": "conditioning"},
               {"name": "Customer", "role": "pii"}]
    report = build_report(**_inputs(data_summary=_data_summary("keep", columns)))
    assert [p["protected_by"] for p in report["protection"]] == [
        "DP (epsilon=8 for all text columns)", "kept as given (not protected)", "Faker surrogate (not derived from data)"]
    report = build_report(**_inputs(data_summary=_data_summary("keep", copy.deepcopy(columns)),
                                    ledger=_ledger(dp=False)))
    assert report["protection"][0]["protected_by"].startswith("not DP")
    with pytest.raises(ConfigError, match="privacy ledger says no DP"):
        build_report(**_inputs(ledger=_ledger(dp=False)))  # the columns claim DP
    with pytest.raises(ConfigError, match="role"):
        build_report(**_inputs(data_summary=_data_summary(columns=[{"name": "x", "role": "secret"}])))


def test_the_sdv_caveat_says_how_rare_categories_were_replaced():
    """Issue 12.11: per column, the suppressed counts and what the synthetic cells got instead."""
    data = _data_summary()
    data["rare_categories_suppressed"] = {
        "Title": {"values": 420, "rows": 434, "min_count": 5, "replaced_with": "kept categories",
                  "kept_categories": 12, "cells_replaced": 431},
        "City": {"values": 80, "rows": 500, "min_count": 5, "replaced_with": "missing",
                 "kept_categories": 0, "cells_replaced": 500},
        "Old": {"values": 3, "rows": 4},  # a summary from before the replacement was recorded
    }
    caveat = {c["id"]: c["text"] for c in build_report(**_inputs(data_summary=data))["caveats"]}["sdv_not_dp"]
    assert "fewer than 5 real rows" in caveat and "_RARE_" not in caveat
    assert "'Title': 420 distinct values in 434 real rows; 431 synthetic cells given one of its 12 frequent" in caveat
    assert "'City': 80 distinct values in 500 real rows; 500 synthetic cells left missing" in caveat
    assert "'Old': 3 distinct values in 4 real rows; withheld" in caveat
    plain = {c["id"]: c["text"] for c in build_report(**_inputs())["caveats"]}["sdv_not_dp"]
    assert "withheld from SDV" not in plain and plain.endswith("conditioned on them.")


def test_caveats_are_present_and_follow_the_run():
    ids = {c["id"] for c in build_report(**_inputs())["caveats"]}
    assert {"pii_placeholders", "epsilon_scope", "sdv_not_dp", "pii_surrogates", "small_data",
            "report_is_sensitive", "empirical_checks"} <= ids
    assert "no_dp" not in ids and "kept_not_protected" not in ids
    columns = [{"name": TEXT, "role": "text"}, {"name": "Rating", "role": "conditioning"}]
    report = build_report(**_inputs(ledger=_ledger(dp=False, n=50_000), evaluation=None,
                                    data_summary=_data_summary("keep", columns)))
    ids = {c["id"] for c in report["caveats"]}
    assert {"pii_placeholders", "no_dp", "kept_not_protected", "report_is_sensitive"} <= ids
    assert not ids & {"epsilon_scope", "sdv_not_dp", "small_data", "pii_surrogates", "empirical_checks"}
    big = build_report(**_inputs(ledger=_ledger(n=50_000)))
    assert "small_data" not in {c["id"] for c in big["caveats"]}


def test_pseudo_random_noise_caveat_follows_the_ledger():
    """The noise comes from torch's PRNG (secure_rng false): the report must say so, and only then."""
    assert "pseudo_random_noise" in {c["id"] for c in build_report(**_inputs())["caveats"]}
    ledger = _ledger()
    ledger["models"][0]["secure_rng"] = True
    assert "pseudo_random_noise" not in {c["id"] for c in build_report(**_inputs(ledger=ledger))["caveats"]}
    del ledger["models"][0]["secure_rng"]  # unknown counts as not secure
    assert "pseudo_random_noise" in {c["id"] for c in build_report(**_inputs(ledger=ledger))["caveats"]}


def test_pii_summary_keeps_only_counts_types_and_redacted_examples():
    report = build_report(**_inputs())
    assert set(report["pii_scan"]) <= {"engine", "n_rows", "warnings", "counts", "rows_with_pii",
                                       "structured_columns", "examples"}
    text = json.dumps(report) + render_html(report)
    assert PLANTED not in text and "Zebediah" not in text
    assert "Call &lt;PERSON&gt; at &lt;PHONE_NUMBER&gt; about the dress" in render_html(report)
    # the scan can miss a lower-case email, which the PII module's masking lets through: masked here too
    leaky = _pii_summary()
    leaky["examples"] = {TEXT: ["I am <PERSON>, write to zebediah.q@quill-mail.example or see www.quill.test."]}
    report = build_report(**_inputs(pii_summary=leaky))
    text = json.dumps(report) + render_html(report)
    assert "zebediah" not in text and "quill" not in text
    assert "I am <PERSON>, write to \u2026@\u2026 or see \u2026." in report["pii_scan"]["examples"][TEXT]
    raw = _pii_summary()
    raw["examples"] = {TEXT: [f"Call {PLANTED} tomorrow"]}  # not redacted: refused, not rendered
    with pytest.raises(ConfigError, match="placeholder"):
        build_report(**_inputs(pii_summary=raw))
    raw = _pii_summary()
    raw["counts"] = {TEXT: {PLANTED: 1}}  # a value where an entity type belongs
    with pytest.raises(ConfigError, match="entity type"):
        build_report(**_inputs(pii_summary=raw))


def test_audit_is_kept_whole_and_judged_against_the_claim():
    audit = {"claimed_epsilon": 8.0, "empirical_epsilon_lower_bound": 0.3, "confidence": 0.95,
             "n_canaries": 64, "exposure": {"mean": 1.2}, "dp": True, "method": "canary exposure",
             "a_new_field": "shown as it is"}
    report = build_report(**_inputs(audit=audit))
    assert report["audit"] == audit
    assert report["overall"]["audit"]["verdict"] == "good"
    page = render_html(report)
    assert 'id="audit"' in page and "a_new_field" in page and "shown as it is" in page
    broken = build_report(**_inputs(audit={**audit, "empirical_epsilon_lower_bound": 9.5}))
    assert broken["overall"]["audit"]["verdict"] == "poor"
    assert 'id="audit"' not in render_html(build_report(**_inputs()))


# --------------------------------------------------------------------------------------------- HTML


def test_html_is_self_contained_with_inline_plots():
    page = render_html(build_report(**_inputs(plots=True)))
    parsed = _parse(page)
    assert not parsed.scripts and "<script" not in page.lower()
    for tag, name, value in parsed.refs:
        assert value.startswith(("data:", "#")), (tag, name, value[:60])
    assert not re.search(r"url\(|@import|<link\b", page, re.I)
    assert "Content-Security-Policy" in page
    # one plot of each kind, each an inline PNG that decodes
    kinds = re.findall(r'<figure data-plot="([a-z_0-9]+)"', page)
    assert sorted(kinds) == ["conditional", "dcr", "distribution", "distribution", "embedding_2d", "epsilon",
                             "lengths", "loss", "mia_roc"]
    assert len(parsed.images) == 9
    import base64
    for image in parsed.images:
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.get("alt")
    assert {"summary", "samples", "data", "pii", "privacy", "training", "fidelity", "leakage", "membership",
            "caveats", "method"} <= parsed.ids
    for figure in re.findall(r"<figure .*?</figure>", page, re.S):  # each with a one-line caption
        assert re.search(r"<figcaption>[^<\n]{40,}</figcaption>", figure), figure[-300:]


def test_pii_replay_section_says_what_the_share_leaves_out():
    evaluation = _evaluation(plots=False)
    evaluation["columns"][TEXT]["leakage"]["pii_replay"] = {
        "n_values_searched": 12, "rows_with_replay": 0, "share": 0.0, "not_counted_in_share": ["DATE_TIME"],
        "common_min_texts": 5, "by_type": {"PERSON": {"exact": 20, "case_insensitive": 23, "n_values_common": 2}}}
    page = render_html(build_report(**_inputs(evaluation=evaluation)))
    assert "Not counted in the share: the types DATE_TIME" in page
    assert "Nor values found in 5 or more training texts" in page
    assert "Values common in the training text" in page and "<td class=\"num\">2</td>" in page
    del evaluation["columns"][TEXT]["leakage"]["pii_replay"]["common_min_texts"]  # evaluated without them
    assert "Nor values found" not in render_html(build_report(**_inputs(evaluation=evaluation)))


def _pii_column_evaluation(copies: int):
    """_evaluation() with the structured PII check of 40 real customers, ``copies`` of them copied whole."""
    import pandas as pd

    from synthtext.metrics import pii_column_replay
    from synthtext.metrics.verdicts import pii_column_verdicts

    real = pd.DataFrame({"Customer": [f"Real Person{i}" for i in range(40)],
                         "Email": [f"real{i}@mailbox.test" for i in range(40)]})
    synthetic = pd.DataFrame({"Customer": [f"Fresh Person{i}" for i in range(40)],
                              "Email": [f"fresh{i}@example.org" for i in range(40)]})
    synthetic.iloc[:copies] = real.iloc[:copies].to_numpy()
    replay = pii_column_replay(real, synthetic, {"Customer": "PERSON", "Email": "EMAIL_ADDRESS"})
    evaluation = _evaluation(plots=False)
    evaluation["pii_column_replay"] = replay
    evaluation["verdicts"] = evaluation["verdicts"] + pii_column_verdicts(replay)
    return evaluation


def _pair_summaries():
    """Data and PII summaries as report_pair makes them: it did not make the synthetic table."""
    unknown = "unknown: this pair was not made by this run"
    columns = [{"name": TEXT, "role": "text", "protected_by": unknown},
               {"name": "Customer", "role": "pii", "protected_by": unknown},
               {"name": "Email", "role": "pii", "protected_by": unknown}]
    data = {"n_rows": 40, "n_train": 40, "n_holdout": 0, "columns": columns, "text_columns": [TEXT],
            "conditioning_columns": [], "structured": None, "model": None}
    pii = {"counts": {TEXT: {}}, "structured_columns": {"Customer": "PERSON", "Email": "EMAIL_ADDRESS"},
           "examples": {}}
    return data, pii


def test_pii_column_caveat_says_what_was_checked_for_a_pair_it_did_not_make():
    """Issue 12.10: for a given pair the report cannot know the PII columns were replaced by surrogates: it
    says what it checked and what it found. A run's own report keeps its claim and adds the finding."""
    data, pii = _pair_summaries()
    for copies, finding in ((0, "no real value came back"), (10, "10 real rows have two or more")):
        report = build_report(evaluation=_pii_column_evaluation(copies), ledger=None, data_summary=data,
                              pii_summary=pii)
        caveats = {c["id"]: c["text"] for c in report["caveats"]}
        assert "pii_surrogates" not in caveats
        text = caveats["pii_columns_checked"]
        assert "'Customer', 'Email'" in text and "did not make the synthetic table" in text and finding in text
        page = render_html(report)
        assert not any("replaced by faker surrogates" in c.casefold() for c in caveats.values())
        assert "Faker surrogate" not in page  # nor in the PII scan's table of PII columns
        assert "<h3>Columns that are PII themselves</h3>" in page.split('id="leakage"')[1]
    assert report["overall"]["leakage"]["verdict"] == "poor"
    assert report["overall"]["leakage"]["plain"].split("Worst: ")[1].startswith("10 real rows")
    assert "A leak" in text

    unchecked = build_report(evaluation=_evaluation(plots=False), ledger=None, data_summary=data, pii_summary=pii)
    text = {c["id"]: c["text"] for c in unchecked["caveats"]}["pii_columns_checked"]
    assert "were not checked for real ones" in text
    assert "Not checked for real values" in render_html(unchecked)

    own = build_report(**_inputs(evaluation=_pii_column_evaluation(0)))  # made by synthtext: Faker surrogates
    caveats = {c["id"]: c["text"] for c in own["caveats"]}
    assert "pii_columns_checked" not in caveats
    assert "replaced by Faker surrogates" in caveats["pii_surrogates"]
    assert "no real value came back" in caveats["pii_surrogates"]


def test_report_pair_flags_real_name_email_pairs_copied_into_the_synthetic_table(tmp_path):
    """Issue 12.10 end to end: `synthtext report` finds the PII columns in the real table, flags 10 copied
    (name, email) pairs, passes fresh surrogates, and never claims the columns were replaced."""
    import pandas as pd
    from faker import Faker

    from synthtext.io import read_csv
    from synthtext.pii import Surrogates
    from synthtext.pair import report_pair

    reviews = read_csv(ROOT / "examples" / "reviews_500.csv")
    fake, surrogates, n = Faker("en_US"), Surrogates(seed=1), 60
    fake.seed_instance(0)
    real = pd.DataFrame({"customer_name": [fake.name() for _ in range(n)],
                         "email": [fake.free_email() for _ in range(n)],
                         TEXT: reviews[TEXT].iloc[:n].tolist()})
    fresh = pd.DataFrame({"customer_name": [surrogates.new_value("PERSON") for _ in range(n)],
                          "email": [surrogates.new_value("EMAIL_ADDRESS") for _ in range(n)],
                          TEXT: reviews[TEXT].iloc[n:2 * n].tolist()})
    leaky = fresh.copy()
    leaky.loc[30:39, ["customer_name", "email"]] = real.loc[5:14, ["customer_name", "email"]].to_numpy()
    reports = {}
    for name, synthetic in (("fresh", fresh), ("leaky", leaky)):
        run = report_pair(real, synthetic, tmp_path, text_columns=[TEXT], embedding="tfidf", run_id=name)
        reports[name] = (json.loads((run / "report.json").read_text(encoding="utf-8")),
                         (run / "report.html").read_text(encoding="utf-8"))
    report, page = reports["leaky"]
    assert report["pii_scan"]["structured_columns"] == {"customer_name": "PERSON", "email": "EMAIL_ADDRESS"}
    replay = report["evaluation"]["pii_column_replay"]
    assert replay["leak"] is True and replay["rows"]["n_rows_replayed"] == 10
    verdicts = {(v["metric"], v["column"]): v for v in report["verdicts"]}
    assert verdicts[("pii_row_replay", None)]["verdict"] == "poor"
    assert verdicts[("pii_value_replay", "email")]["verdict"] == "poor"
    assert report["overall"]["leakage"]["verdict"] == "poor"
    caveats = {c["id"]: c["text"] for c in report["caveats"]}
    assert "pii_surrogates" not in caveats and "10 real rows" in caveats["pii_columns_checked"]
    assert "replaced by faker surrogates" not in json.dumps(report["caveats"]).casefold()
    assert "Faker surrogate" not in page and "10 real rows" in page
    for name, email in real[["customer_name", "email"]].itertuples(index=False):
        assert email not in page and email not in json.dumps(report)
    # the samples come from the synthetic table, and the real values it leaks are withheld there
    assert len(report["samples"]) == 20 and "[withheld: a real value]" in page
    assert {row["customer_name"] for row in report["samples"]} <= set(fresh["customer_name"]) | {
        "[withheld: a real value]"}

    report, page = reports["fresh"]
    replay = report["evaluation"]["pii_column_replay"]
    assert replay["leak"] is False and replay["rows"]["n_rows_replayed"] == 0
    assert {v["verdict"] for v in report["verdicts"] if v["metric"] in ("pii_value_replay", "pii_row_replay")} \
        == {"good"}
    assert "no real value came back" in {c["id"]: c["text"] for c in report["caveats"]}["pii_columns_checked"]


def _section(page, name):
    start = page.index(f'<section id="{name}"')
    return page[start:page.index("</section>", start)]


def test_samples_section_follows_the_summary_with_20_escaped_rows():
    synthetic = _synthetic()
    report = build_report(**_inputs(samples=sample_rows(synthetic, seed=3)))
    assert len(report["samples"]) == 20 and set(report["samples"][0]) == {TEXT, "Rating", "Customer"}
    page = render_html(report)
    order = [page.index(f'<section id="{name}"') for name in ("summary", "samples", "data")]
    assert order == sorted(order)  # right after the summary
    samples = _section(page, "samples")
    body = samples[samples.index("<tbody>"):]
    assert body.count("<tr>") == 20 and "<th>" + TEXT in samples
    assert "<script" not in page.lower() and "<b>bold</b>" not in page
    shown = [row[TEXT] for row in report["samples"]]
    if "<script>alert('sample')</script> & <b>bold</b>" in shown:
        assert "&lt;script&gt;alert(&#39;sample&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in samples
    for text in shown:  # in full: the long ones too, not cut
        if text and "<" not in text:
            assert text in samples
    assert "<td></td>" in body  # missing values are empty cells
    # a sample with markup is escaped wherever it is chosen
    markup = synthetic.assign(**{TEXT: ["<script>alert(9)</script> x"] * len(synthetic)})
    page = render_html(build_report(**_inputs(samples=sample_rows(markup))))
    assert "<script" not in page.lower() and _section(page, "samples").count("&lt;script&gt;alert(9)") == 20
    assert "No synthetic rows" in render_html(build_report(**_inputs(samples=None)))


def test_sample_rows_are_a_seeded_choice_in_table_order_with_plain_values():
    import pandas as pd

    synthetic = _synthetic(200)
    synthetic["When"] = pd.Timestamp("2026-01-02") + pd.to_timedelta(range(200), unit="D")
    first, again, other = sample_rows(synthetic, seed=7), sample_rows(synthetic, seed=7), sample_rows(synthetic, seed=8)
    assert first == again and first != other and len(first) == 20
    numbers = [int(row[TEXT].split()[3].rstrip(":")) for row in first if row[TEXT] and row[TEXT][0] == "s"]
    assert numbers == sorted(numbers)  # table order
    row = first[0]
    assert type(row["Rating"]) is int and row["When"].startswith("2026-")  # not 4.0, not a Timestamp
    json.dumps(first, allow_nan=False)
    assert len(sample_rows(synthetic.iloc[:5])) == 5 and sample_rows(synthetic.iloc[:0]) == []
    with pytest.raises(ConfigError, match="at most 100"):
        build_report(**_inputs(samples=[{"a": 1}] * 101))
    with pytest.raises(ConfigError, match="one value per column"):
        build_report(**_inputs(samples=[{"a": [1, 2]}]))
    with pytest.raises(ConfigError, match="DataFrame"):
        sample_rows([{"a": 1}])


def test_samples_withhold_real_pii_and_copies_of_real_texts():
    """A synthetic table that leaks must not carry the leak into the report."""
    import pandas as pd

    real = pd.DataFrame({TEXT: [f"real text {i}: {PLANTED if i < 2 else 'she'} bought the size {i} dress"
                                for i in range(30)]
                         + ["my friend size loved it"] * 6,
                         "Customer": [f"Real Person{i}" for i in range(30)] + ["Common Name"] * 6})
    synthetic = pd.DataFrame({TEXT: [real[TEXT][0], f"call {PLANTED.upper()} now, the size is right", "fine"],
                              "Customer": ["real person3", "Common Name", "Fresh Surrogate"]})
    rows = sample_rows(synthetic, real=real, text_columns=[TEXT], pii_columns={"Customer": "PERSON"},
                       pii_values={"PERSON": {PLANTED, "size", "Ed"}})
    assert rows[0] == {TEXT: "[withheld: a copy of a real text]", "Customer": "[withheld: a real value]"}
    # the planted name becomes its placeholder; "size" (in 36 real texts) and "Ed" (too short) stay
    assert rows[1] == {TEXT: "call <PERSON> now, the size is right", "Customer": "Common Name"}
    assert rows[2] == {TEXT: "fine", "Customer": "Fresh Surrogate"}
    page = render_html(build_report(**_inputs(samples=rows)))
    assert PLANTED.casefold() not in page.casefold() and "Real Person" not in page


def test_training_log_section_and_its_checks():
    report = build_report(**_inputs(training_log=_training_log()))
    log = report["training_log"][TEXT]
    assert set(log["steps"][0]) == {"step", "loss", "epsilon"} and len(log["steps"]) == 30
    assert log["steps"][-1]["epsilon"] == log["epsilon"] == 8.0
    page = render_html(report)
    training = _section(page, "training")
    assert 'data-plot="epsilon"' in training and 'data-plot="loss"' in training
    assert training.count("<tr>") == 31  # header + every one of the 30 steps
    long = _training_log(steps=1000)
    training = _section(render_html(build_report(**_inputs(training_log=long))), "training")
    assert "every 5th step" in training and training.count("<tr>") <= 1 + 200 + 201
    assert '<td class="num">1,000</td>' in training  # the last step is always listed
    bad = _training_log()
    bad[TEXT]["steps"][-1]["epsilon"] = 7.5  # not what the ledger says
    with pytest.raises(ConfigError, match="not the ledger's"):
        build_report(**_inputs(training_log=bad))
    assert "loaded from disk" in _section(render_html(build_report(**_inputs())), "training")


def test_plots_are_skipped_cleanly_without_their_data():
    evaluation = _evaluation(plots=False)
    evaluation["columns"][TEXT]["fidelity"]["conditional"] = {}
    page = render_html(build_report(**_inputs(evaluation=evaluation)))
    assert "<img" not in page and 'id="fidelity"' in page and "0.71" in page
    partial = _evaluation()
    partial["plots"]["lengths"][TEXT]["real"] = []
    partial["plots"]["lengths"][TEXT]["synthetic"] = [float("nan")]
    del partial["plots"]["mia_roc"]
    partial["plots"]["dcr"][TEXT] = {"synthetic_to_train": [0.1, 0.2], "synthetic_to_holdout": []}
    del partial["plots"]["structured"]["Age"]["edges"]
    kinds = re.findall(r'<figure data-plot="([a-z_0-9]+)"', render_html(build_report(**_inputs(evaluation=partial))))
    assert len(kinds) == 4
    assert sorted(kinds) == ["conditional", "dcr", "distribution", "embedding_2d"]
    page = render_html(build_report(**_inputs(evaluation=None)))
    assert "<img" not in page and "Not evaluated" in page


def test_no_dp_run_says_so_in_the_summary():
    columns = [{"name": TEXT, "role": "text"}]
    report = build_report(**_inputs(ledger=_ledger(dp=False), data_summary=_data_summary(columns=columns)))
    page = render_html(report)
    summary = page[page.index('id="summary"'):page.index('id="data"')]
    assert '<p class="headline nodp">No differential privacy</p>' in summary
    assert report["overall"]["privacy"]["verdict"] == "poor"
    dp_page = render_html(build_report(**_inputs()))
    assert "No differential privacy" not in dp_page and "\u03b5 = 8" in dp_page
    unknown = render_html(build_report(**_inputs(ledger=None, data_summary=_data_summary(columns=columns))))
    assert "differential privacy unknown" in unknown


def test_data_derived_strings_are_escaped():
    evil = "<script>alert(1)</script>"
    columns = [{"name": evil, "role": "text"}, {"name": 'Rating" onmouseover="x', "role": "conditioning"}]
    evaluation = _evaluation()
    evaluation = json.loads(json.dumps(evaluation).replace(json.dumps(TEXT), json.dumps(evil)))
    pii = {"counts": {evil: {"PERSON": 1}}, "structured_columns": {},
           "examples": {evil: ["<img src=x onerror=alert(2)> met <PERSON>"]}}
    report = build_report(**_inputs(data_summary=_data_summary(columns=columns), evaluation=evaluation,
                                    pii_summary=pii, title="<b>t</b>"))
    page = render_html(report)
    assert evil not in page and "<script" not in page.lower() and "<b>t</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt; met &lt;PERSON&gt;" in page
    assert 'onmouseover="x' not in page
    assert len(_parse(page).images) == 7  # a column named like markup still gets its plots


def test_matplotlib_mathtext_in_column_names_does_not_break_plots():
    evaluation = _evaluation(plots=False)
    evaluation["plots"]["conditional"] = {TEXT: {}}
    evaluation["plots"]["conditional"][TEXT] = {"price $x^": {"real_holdout": 0.5, "synthetic": 0.4, "tstr": 0.3}}
    page = render_html(build_report(**_inputs(evaluation=evaluation)))
    assert 'data-plot="conditional"' in page and page.count("<img") == 1


# --------------------------------------------------------------------------------------------- files


def test_write_report_writes_both_files_in_a_new_run_dir(tmp_path):
    run = write_report(tmp_path / "privacy_reports", **_inputs())
    assert run.parent == tmp_path / "privacy_reports"
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run.name)
    assert sorted(p.name for p in run.iterdir()) == ["report.html", "report.json"]
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert report["run_id"] == run.name and report["schema"] == REPORT_SCHEMA
    assert (run / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in run.parent.iterdir()] == [run.name]  # no temp dir left over


def test_existing_run_dir_is_never_overwritten(tmp_path):
    write_report(tmp_path, run_id="r1", **_inputs())
    before = (tmp_path / "r1" / "report.json").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        write_report(tmp_path, run_id="r1", **_inputs(evaluation=None))
    assert (tmp_path / "r1" / "report.json").read_bytes() == before
    with pytest.raises(ConfigError, match="run_id"):
        write_report(tmp_path, run_id="../escape", **_inputs())


def test_failed_rendering_leaves_nothing(tmp_path, monkeypatch):
    def broken(report):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(report_module, "render_html", broken)
    with pytest.raises(RuntimeError, match="rendering failed"):
        write_report(tmp_path / "reports", run_id="r1", **_inputs())
    assert not (tmp_path / "reports").exists()


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module.os, "rename", no_rename)
    with pytest.raises(DataError, match="No space left"):
        write_report(tmp_path, run_id="r1", **_inputs())
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- browser


def _checker():
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_report_html", ROOT / "scripts" / "check_report_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_browser_check_script_finds_outside_references_statically():
    checker = _checker()
    assert checker.static_problems(render_html(build_report(**_inputs(plots=True)))) == []
    for bad in ('<img src="https://x.test/a.png">', '<link rel="stylesheet" href="s.css">',
                '<script src="a.js"></script>', '<div style="background: url(http://x.test/b.png)">',
                "<style>@import 'x.css';</style>", '<a href="https://x.test/">x</a>'):
        assert checker.static_problems(f"<html><body>{bad}</body></html>"), bad


_NO_CHROMIUM = shutil.which("chromium") is None and shutil.which("chromium-browser") is None


@pytest.mark.skipif(_NO_CHROMIUM, reason="chromium is not installed (apt-get install chromium); CI has none")
def test_report_renders_in_headless_chromium(tmp_path):
    audit = {"claimed_epsilon": 8.0, "empirical_epsilon_lower_bound": 0.3, "confidence": 0.95,
             "n_canaries": 64, "dp": True, "method": "canary exposure"}
    run = write_report(tmp_path, run_id="browser", **_inputs(plots=True, audit=audit))
    shot = tmp_path / "shot.png"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_report_html.py"),
                           str(run / "report.html"), "--screenshot", str(shot), "--min-images", "9",
                           "--sections", "summary,samples,data,pii,privacy,training,fidelity,leakage,membership,"
                           "caveats,method", "--json"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["images_loaded"] == result["images"] == 9
    assert result["external_requests"] == [] and result["missing_sections"] == []
    assert shot.stat().st_size > 10_000


def test_report_from_a_real_evaluation(tmp_path):
    """The evaluation contract end to end: synthtext.evaluate's output renders with all its plots."""
    import pandas as pd

    from synthtext.metrics import evaluate

    rng = np.random.default_rng(1)
    words = "soft fabric runs small lovely colour fits true to size returned it wash well".split()

    def frame(n):
        return pd.DataFrame({TEXT: [" ".join(rng.choice(words, rng.integers(6, 20))) for _ in range(n)],
                             "Rating": rng.integers(1, 3, n)})

    membership = {"train_losses": rng.normal(2.0, 0.5, 40), "holdout_losses": rng.normal(2.1, 0.5, 40),
                  "claimed_epsilon": 8.0, "delta": 1e-5}
    evaluation = evaluate(frame(60), frame(60), [TEXT], ["Rating"], holdout=frame(40), embedding="tfidf",
                          membership=membership, max_rows=200)
    run = write_report(tmp_path, run_id="eval", **_inputs(evaluation=evaluation))  # the object, not the dict
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert report["evaluation"]["schema"] == "synthtext.evaluation/1"
    assert {v["section"] for v in report["verdicts"]} >= {"privacy", "fidelity", "leakage", "membership"}
    page = (run / "report.html").read_text(encoding="utf-8")
    kinds = re.findall(r'<figure data-plot="([a-z_0-9]+)"', page)
    assert {"lengths", "embedding_2d", "dcr", "mia_roc", "distribution"} <= set(kinds), kinds


@pytest.mark.skipif(_NO_CHROMIUM, reason="chromium is not installed (apt-get install chromium); CI has none")
def test_browser_check_fails_a_page_that_reaches_the_network(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body><section id="summary"></section>'
                    '<img src="https://example.test/pixel.png"></body></html>', encoding="utf-8")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_report_html.py"), str(page),
                           "--sections", "summary", "--json"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert "https://example.test/pixel.png" in result["external_requests"]  # seen by the browser itself
    assert result["images_loaded"] == 0 and result["static_problems"]


def test_report_of_a_tiny_fit_shows_synthetic_samples_the_training_log_and_its_pictures(tmp_path):
    """End to end with the tiny built-in model: 20 synthetic rows (seeded, escaped), no real text or name
    anywhere in the page, the epsilon curve rising to the ledger's epsilon, every picture decodable."""
    import base64

    import pandas as pd
    from faker import Faker

    from synthtext.config import PrivacyConfig, TrainConfig
    from synthtext.synthesizer import TextSynthesizer

    fake = Faker("en_US")
    fake.seed_instance(515151)
    products = ["dress", "jacket", "jeans", "sweater"]
    real = pd.DataFrame({
        "customer_name": [fake.name() for _ in range(120)],
        "product": [products[i % 4] for i in range(120)],
        "price": [19.5 + (i * 37) % 80 for i in range(120)],
        "comment": [f"real review {i}: the {products[i % 4]} was {'great' if i % 3 else 'too small'} for me"
                    if i % 17 else None for i in range(120)]})
    synth = TextSynthesizer(["comment"], model="builtin", model_size="tiny", epsilon=8.0, max_new_tokens=24,
                            privacy=PrivacyConfig(accountant="rdp"),  # quicker than prv (test_train pins prv)
                            train=TrainConfig(epochs=1, batch_size=32, progress=False)).fit(real)
    out = synth.sample()
    out["comment"] = ["<script>alert(1)</script> " + t if isinstance(t, str) else t for t in out["comment"]]
    run = synth.write_report(out, tmp_path, evaluation=synth.evaluate(out, embedding="tfidf"), run_id="tiny")
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    page = (run / "report.html").read_text(encoding="utf-8")

    assert report["schema"] == REPORT_SCHEMA and len(report["samples"]) == 20
    assert report["samples"] == sample_rows(out, seed=synth.seed, real=real, text_columns=["comment"],
                                            pii_columns=synth.pii_columns_)  # seeded: the same rows again
    assert list(report["samples"][0]) == list(real.columns)
    samples = _section(page, "samples")
    assert "<script" not in page.lower() and samples.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 15
    for text in real["comment"].dropna():
        assert text not in page, text  # real rows are never shown
    for name in real["customer_name"]:
        assert name not in page

    ledger = report["privacy"]["models"][0]
    log = report["training_log"]["comment"]
    curve = [s["epsilon"] for s in log["steps"] if s["epsilon"] is not None]
    assert len(log["steps"]) == ledger["steps"] and all(s["loss"] is not None for s in log["steps"])
    assert all(b >= a for a, b in zip(curve, curve[1:])) and curve[-1] == ledger["epsilon"] == log["epsilon"]

    kinds = re.findall(r'<figure data-plot="([a-z_0-9]+)" data-column="([^"]*)"', page)
    assert {("epsilon", "comment"), ("loss", "comment"), ("distribution", "product"),
            ("distribution", "price"), ("mia_roc", "comment")} <= set(kinds), kinds
    assert ("distribution", "customer_name") not in kinds  # a PII column is never drawn
    roc = report["evaluation"]["plots"]["mia_roc"]["comment"]
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    for image in _parse(page).images:
        assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert _checker().static_problems(page) == []

"""synthtext.metrics.verdicts: the one place the evaluation's and the report's verdicts and caveats are worded.

The report's own verdicts (privacy, audit), its summary per section and its caveats are tested through
build_report in test_report.py; these tests pin what the functions share: one verdict builder, one
layout of the verdict dict, the thresholds they are graded by.
"""

import pytest

from synthtext.errors import ConfigError
from synthtext.metrics import THRESHOLDS
from synthtext.metrics.verdicts import (
    EPSILON_FAIR,
    EPSILON_GOOD,
    SMALL_DATA_ROWS,
    audit_verdicts,
    caveats,
    overall_verdicts,
    privacy_verdicts,
    report_thresholds,
    verdict,
)

KEYS = ["section", "column", "metric", "value", "threshold", "verdict", "plain"]


def _ledger(epsilon, delta=1e-6, n=450):
    return {"dp": True, "epsilon": epsilon, "delta": delta, "models": [{"n_records": n, "secure_rng": True}]}


def test_one_builder_for_metric_and_report_verdicts():
    graded = verdict("length_ks", "text", 0.15, "plain words", extra_field=1)
    assert list(graded) == KEYS + ["extra_field"]
    assert graded["section"] == "fidelity" and graded["threshold"] == THRESHOLDS["length_ks"]["rule"]
    assert graded["verdict"] == "fair"
    assert verdict("length_ks", "text", 0.15, "p", grade="good")["verdict"] == "good"
    own = verdict("epsilon", None, 0.5, "p", "good", section="privacy", threshold="t")
    assert list(own) == KEYS and (own["section"], own["threshold"], own["verdict"]) == ("privacy", "t", "good")
    for v in privacy_verdicts(_ledger(0.5), {"n_rows": 500}) + audit_verdicts(
            {"dp": True, "claimed_epsilon": 8.0, "empirical_epsilon_lower_bound": 0.2}):
        assert list(v) == KEYS


@pytest.mark.parametrize("epsilon, grade", [(EPSILON_GOOD, "good"), (EPSILON_GOOD + 0.01, "fair"),
                                            (EPSILON_FAIR, "fair"), (EPSILON_FAIR + 0.01, "poor")])
def test_epsilon_is_graded_by_the_report_thresholds(epsilon, grade):
    eps, delta = privacy_verdicts(_ledger(epsilon), {"n_rows": 500})
    assert (eps["metric"], eps["verdict"]) == ("epsilon", grade)
    assert (delta["metric"], delta["verdict"]) == ("delta", "good")
    assert report_thresholds()["epsilon"]["good"] == f"<= {EPSILON_GOOD:g}"
    assert report_thresholds()["small_data_rows"] == SMALL_DATA_ROWS


def test_privacy_and_audit_verdicts_without_dp_or_a_claim():
    assert privacy_verdicts(None, {"n_rows": 5})[0]["verdict"] == "n/a"
    assert privacy_verdicts({"dp": False}, {"n_rows": 5})[0]["verdict"] == "poor"
    assert privacy_verdicts(_ledger(1.0, delta=0.05, n=50), {"n_rows": 50})[1]["verdict"] == "poor"
    with pytest.raises(ConfigError, match="no epsilon"):
        privacy_verdicts({"dp": True, "epsilon": None}, {"n_rows": 5})
    assert audit_verdicts(None) == [] and audit_verdicts({"empirical_epsilon_lower_bound": None}) == []
    (measured,) = audit_verdicts({"dp": False, "empirical_epsilon_lower_bound": 1.5, "confidence": 0.9})
    assert measured["verdict"] == "n/a" and "at 90% confidence" in measured["plain"]
    (broken,) = audit_verdicts({"dp": True, "claimed_epsilon": 1.0, "empirical_epsilon_lower_bound": 2.0})
    assert broken["verdict"] == "poor"


def test_overall_takes_the_worst_and_says_why_a_section_is_not_assessed():
    verdicts = [verdict("length_ks", "t", 0.05, "fine"), verdict("length_ks", "t", 0.5, "far off")]
    overall = overall_verdicts(verdicts, evaluation={}, audit=None)
    assert overall["fidelity"]["verdict"] == "poor" and overall["fidelity"]["plain"].endswith("Worst: far off")
    assert overall["privacy"]["plain"] == "Not assessed: no privacy ledger."
    assert overall["audit"]["plain"] == "Not assessed: no canary audit was run."
    assert overall["leakage"]["plain"] == "Not assessed: no leakage check could be computed."


def test_caveats_name_the_columns_and_always_warn_that_the_report_is_sensitive():
    data = {"n_rows": 100, "columns": [{"name": "City", "role": "conditioning", "protected_by": "SDV (not DP)"},
                                       {"name": "Id", "role": "structured", "protected_by": "kept as given"}]}
    found = {c["id"]: c["text"] for c in caveats(data, _ledger(8.0, n=100), None, None, None, None)}
    assert {"pii_placeholders", "epsilon_scope", "sdv_not_dp", "kept_not_protected", "small_data",
            "report_is_sensitive"} == set(found)
    assert "Columns 'City' were synthesized by SDV" in found["sdv_not_dp"]
    assert "Only 100 rows" in found["small_data"]

"""The rules every verdict is graded by, the one verdict builder, and how numbers are written in words.

:data:`THRESHOLDS` holds the evaluation's rules (:func:`grade_of` applies them); :data:`EPSILON_GOOD`,
:data:`EPSILON_FAIR` and :data:`SMALL_DATA_ROWS` the report's own (:func:`report_thresholds` states them).
"""

from __future__ import annotations

import math
from typing import Any

SMALL_DATA_ROWS = 10_000
"""Peers recommend at least this many records for DP fine-tuning; fewer gives a caveat."""
EPSILON_GOOD, EPSILON_FAIR = 1.0, 10.0
"""Verdict thresholds on the total epsilon: <= 1 good (strong), <= 10 fair (the range commonly used for
DP machine learning), above 10 poor (weak guarantee)."""

# Every verdict's rule. "value" names what is compared; lower is better unless better == "higher".
THRESHOLDS: dict[str, dict[str, Any]] = {
    "discriminator_auc": {
        "section": "fidelity", "good": 0.60, "fair": 0.75, "better": "lower",
        "value": "out-of-fold AUC of a real-vs-synthetic classifier, folded to max(AUC, 1 - AUC)",
        "rule": "AUC <= 0.60 good, <= 0.75 fair, else poor (0.5: the classifier cannot tell them apart)",
    },
    "length_ks": {
        "section": "fidelity", "good": 0.10, "fair": 0.20, "better": "lower",
        "value": "two-sample Kolmogorov-Smirnov statistic of the text lengths in words",
        "rule": "KS <= 0.10 good, <= 0.20 fair, else poor",
    },
    "unigram_js_ratio": {
        "section": "fidelity", "good": 1.5, "fair": 3.0, "better": "lower",
        "value": "word-frequency JS divergence of synthetic vs half the real text, divided by that of the "
                 "other real half (same sizes): 1 = as close as real text is to itself",
        "rule": "ratio <= 1.5 good, <= 3 fair, else poor",
    },
    "conditional_lift": {
        "section": "fidelity", "good": 0.8, "fair": 0.5, "better": "higher",
        "value": "(synthetic balanced accuracy - chance) / (real held-out balanced accuracy - chance) of a "
                 "classifier trained on real text to predict the conditioning column (chance = 1 / classes)",
        "rule": "lift >= 0.8 good, >= 0.5 fair, else poor; n/a when real text itself beats chance by less "
                "than 0.05",
    },
    "pii_replay_share": {
        "section": "leakage", "good": 0.0, "fair": 0.01, "better": "lower",
        "value": "share of synthetic texts that contain a PII value found in the training text",
        "rule": "share = 0 good, <= 0.01 fair, else poor",
    },
    "pii_value_replay": {
        "section": "leakage", "good": 0.0, "fair": 0.10, "better": "lower",
        "value": "share of a structured PII column's synthetic values (case and whitespace ignored) equal to a "
                 "real value of that column found in fewer than 5 real rows",
        "rule": "identifying types (emails, phone and card numbers, ...): share = 0 good, else poor (leak); "
                "chance-prone types (names, places, ids): share = 0 good, <= 0.10 fair, else poor (leak)",
    },
    "pii_row_replay": {
        "section": "leakage", "good": 0.0, "fair": None, "better": "lower",
        "value": "share of real rows with two or more of their structured PII values (a name and an email, ...) "
                 "together in one synthetic row, the combination found in fewer than 5 real rows",
        "rule": "share = 0 good, else poor (leak)",
    },
    "verbatim_excess": {
        "section": "leakage", "good": 0.01, "fair": 0.05, "better": "lower",
        "value": "share of synthetic texts sharing a long span with a training text, minus the same share "
                 "against the holdout scaled to the training set's size (without holdout: the share itself)",
        "rule": "excess <= 0.01 good, <= 0.05 fair, else poor",
    },
    "exact_match_excess": {
        "section": "leakage", "good": 0.01, "fair": 0.05, "better": "lower",
        "value": "share of synthetic texts equal to a training text, minus the same share against the "
                 "holdout scaled to the training set's size (without holdout: the share itself)",
        "rule": "excess <= 0.01 good, <= 0.05 fair, else poor",
    },
    "dcr_excess": {
        "section": "leakage", "good": 0.05, "fair": 0.15, "better": "lower",
        "value": "share of synthetic texts whose nearest real text is a training text rather than a holdout "
                 "text, above the share expected without memorisation (n_train / (n_train + n_holdout)), "
                 "scaled so that 0 = no closer to training data than to unseen data and 1 = every text "
                 "nearest to a training text",
        "rule": "excess <= 0.05 good, <= 0.15 fair, else poor; good when its 95% interval includes 0; "
                "n/a without holdout",
    },
    "mia_auc": {
        "section": "membership", "good": 0.55, "fair": 0.60, "better": "lower",
        "value": "AUC of a loss-threshold membership attack (training vs holdout records), folded to "
                 "max(AUC, 1 - AUC)",
        "rule": "AUC <= 0.55 good, <= 0.60 fair, else poor",
    },
    "mia_epsilon": {
        "section": "membership", "good": 0.0, "fair": None, "better": "lower",
        "value": "empirical epsilon lower bound minus the claimed epsilon",
        "rule": "lower bound <= claimed epsilon: consistent (good); above: the DP claim is contradicted "
                "(poor); n/a when no epsilon is claimed",
    },
}


def grade_of(metric: str, value: float | None) -> str:
    """good, fair or poor by the metric's rule in :data:`THRESHOLDS`; n/a without a finite value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    rule = THRESHOLDS[metric]
    if rule["better"] == "higher":
        return "good" if value >= rule["good"] else "fair" if value >= rule["fair"] else "poor"
    if value <= rule["good"]:
        return "good"
    return "fair" if rule["fair"] is not None and value <= rule["fair"] else "poor"


def report_thresholds() -> dict:
    """The report's own rules (epsilon, delta, small data), as report.json's ``thresholds`` states them."""
    return {"epsilon": {"good": f"<= {EPSILON_GOOD:g}", "fair": f"<= {EPSILON_FAIR:g}",
                        "poor": f"> {EPSILON_FAIR:g}, or no differential privacy"},
            "delta": "< 1 / number of training rows",
            "small_data_rows": SMALL_DATA_ROWS}


def verdict(metric: str, column: Any, value: Any, plain: str, grade: str | None = None, *,
            section: str | None = None, threshold: str | None = None, **extra) -> dict:
    """The one verdict dict. A metric of :data:`THRESHOLDS` takes its section and rule from there and,
    unless ``grade`` is given, its grade; the report's own verdicts (privacy, audit) name all three."""
    if section is None:
        rule = THRESHOLDS[metric]
        section, threshold, grade = rule["section"], rule["rule"], grade or grade_of(metric, value)
    return {"section": section, "column": column, "metric": metric, "value": value,
            "threshold": threshold, "verdict": grade, "plain": plain, **extra}


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal, e.g. 12.5%."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def num(value, digits: int = 0) -> str:
    """A number with ``digits`` decimals."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt(value: Any) -> str:
    """A value as the report writes it, in its sentences and its tables: n/a, yes/no, 1,234, 0.1235."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        if len(value) > 30:  # long series (histograms, losses) stay readable; report.json has them all
            return ", ".join(fmt(v) for v in value[:30]) + f", \u2026 ({len(value):,} values in report.json)"
        return ", ".join(fmt(v) for v in value) if value else "none"
    return str(value)

"""Every threshold and every sentence of a verdict or caveat, the evaluation's and the report's alike.

:func:`synthtext.evaluate` grades with :data:`THRESHOLDS` (:func:`evaluation_verdicts`,
:func:`pii_column_verdicts`); the report adds its own privacy and audit verdicts (:func:`privacy_verdicts`,
:func:`audit_verdicts`), one summary per section (:func:`overall_verdicts`) and the caveats that always
apply (:func:`caveats`). Every verdict is the same dict, made by one builder: section, column, metric,
value, threshold, verdict (good, fair, poor or n/a) and plain, the sentence a privacy officer reads.

One module per kind: ``rules`` (the thresholds, the verdict builder, numbers in words), ``evaluation``
(the evaluation's verdicts), ``report`` (the report's own verdicts, its summary per section, its caveats).
"""

from .evaluation import evaluation_verdicts, pii_column_verdicts
from .report import audit_verdicts, caveats, overall_verdicts, privacy_verdicts
from .rules import EPSILON_FAIR, EPSILON_GOOD, SMALL_DATA_ROWS, THRESHOLDS, fmt, report_thresholds, verdict

__all__ = [
    "EPSILON_FAIR",
    "EPSILON_GOOD",
    "SMALL_DATA_ROWS",
    "THRESHOLDS",
    "audit_verdicts",
    "caveats",
    "evaluation_verdicts",
    "fmt",
    "overall_verdicts",
    "pii_column_verdicts",
    "privacy_verdicts",
    "report_thresholds",
    "verdict",
]

"""Fidelity and leakage metrics: :func:`evaluate` and the metric families it is made of.

One family per module: ``fidelity`` (lengths, n-grams, discriminator, embeddings, conditional lift),
``leakage`` (PII replay, PII column replay, verbatim spans, distance to closest record), ``membership``
(membership inference from losses), ``structured`` (the SDMetrics quality report, each column's
distributions), ``stats`` (shared statistics), ``verdicts`` (thresholds and verdict sentences);
``evaluation`` runs them all.
"""

from .evaluation import SCHEMA, Evaluation, evaluate
from .fidelity import minilm_available
from .leakage import pii_column_replay, pii_replay, verbatim_copying
from .membership import membership_inference
from .stats import auc_delong, clopper_pearson
from .structured import column_distributions, structured_quality
from .verdicts import THRESHOLDS

__all__ = [
    "SCHEMA",
    "THRESHOLDS",
    "Evaluation",
    "auc_delong",
    "clopper_pearson",
    "column_distributions",
    "evaluate",
    "membership_inference",
    "minilm_available",
    "pii_column_replay",
    "pii_replay",
    "structured_quality",
    "verbatim_copying",
]

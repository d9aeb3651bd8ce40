"""Shared statistics: the DeLong interval of an AUC and the exact (Clopper-Pearson) interval of a proportion."""

from __future__ import annotations

import math

import numpy as np

from ..config import CONFIDENCE
from ..errors import DataError


def auc_delong(scores, labels) -> tuple[float, list[float]]:
    """ROC AUC of ``scores`` for ``labels`` (1 positive) and its 95% DeLong confidence interval.

    DeLong, DeLong & Clarke-Pearson (1988), via midranks (Sun & Xu 2014); ties count one half.
    """
    from scipy.stats import norm, rankdata

    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise DataError("auc_delong: need scores for both classes.")
    all_ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (all_ranks[:m] - rankdata(pos)) / n  # per positive: share of negatives below it
    v01 = 1.0 - (all_ranks[m:] - rankdata(neg)) / m  # per negative: share of positives above it
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    half = norm.ppf(0.5 + CONFIDENCE / 2) * math.sqrt(max(var, 0.0))
    return auc, [max(0.0, auc - half), min(1.0, auc + half)]


def clopper_pearson(successes, trials, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) two-sided confidence bounds of a binomial proportion; vectorised."""
    from scipy.stats import beta

    k, n = np.asarray(successes, float), np.asarray(trials, float)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return low, high

"""Membership inference from per-record losses: a loss-threshold attack and the empirical epsilon it implies."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, DataError
from .common import PLOT_POINTS
from .stats import auc_delong, clopper_pearson

MIA_MIN_PER_SIDE = 20  # per side, to split losses in halves for the epsilon lower bound


def _epsilon(tpr, fpr, delta: float) -> np.ndarray:
    """The DP epsilon that a test with these rates implies: for an (epsilon, delta)-DP mechanism
    TPR <= e^eps FPR + delta and 1 - FPR <= e^eps (1 - TPR) + delta (Kairouz et al. 2015)."""
    tpr, fpr = np.asarray(tpr, float), np.asarray(fpr, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.log(np.maximum(tpr - delta, 0.0) / fpr)
        second = np.log(np.maximum(1.0 - fpr - delta, 0.0) / (1.0 - tpr))
    return np.fmax(first, second)


def _threshold_counts(member_scores, nonmember_scores, thresholds):
    """True and false positives of "member if score >= threshold", for every threshold."""
    members, nonmembers = np.sort(member_scores), np.sort(nonmember_scores)
    tp = len(members) - np.searchsorted(members, thresholds, side="left")
    fp = len(nonmembers) - np.searchsorted(nonmembers, thresholds, side="left")
    return tp, fp


def _finite_losses(values, name) -> np.ndarray:
    if values is None:
        raise ConfigError(f"membership: {name} is missing; give the per-record losses of the trained model.")
    array = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(array)):
        raise DataError(f"membership: {name} holds NaN or infinite losses; drop those records first.")
    if array.size == 0:
        raise DataError(f"membership: {name} is empty.")
    return array


def _number(value, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not low <= number < high:
        raise ConfigError(f"membership: {name} must be a number in [{low:g}, {high:g}); got {value!r}.")
    return number


def membership_inference(train_losses, holdout_losses, *, claimed_epsilon: float | None = None,
                         delta: float | None = None, seed: int = 0) -> dict:
    """A loss-threshold membership attack: training records (members) should have lower loss.

    Returns AUC with a DeLong 95% CI, TPR at FPR 1% and 10%, the ROC curve (``roc``), and an empirical
    epsilon lower bound: for the threshold test "member if -loss >= t", epsilon >= max(log((TPR - delta) /
    FPR), log((1 - FPR - delta) / (1 - TPR))), with TPR at its Clopper-Pearson 95% lower bound and FPR at
    its upper bound, so the figure holds with 95% confidence. The threshold is chosen on one random half
    of the records and the bound computed on the other half (choosing it on the same data inflates it).
    """
    from sklearn.metrics import roc_curve

    members = -_finite_losses(train_losses, "train_losses")
    nonmembers = -_finite_losses(holdout_losses, "holdout_losses")
    delta_used = _number(delta, "delta", 0.0, 1.0) if delta is not None else 0.0
    if claimed_epsilon is not None:
        claimed_epsilon = _number(claimed_epsilon, "claimed_epsilon", 0.0, math.inf)
    scores = np.r_[members, nonmembers]
    labels = np.r_[np.ones(len(members), int), np.zeros(len(nonmembers), int)]
    out: dict = {"auc": None, "auc_ci95": None, "tpr_at_fpr": {"0.01": None, "0.1": None},
                 "empirical_epsilon_lower_bound": None, "empirical_epsilon_ci95": None,
                 "empirical_epsilon_point": None, "claimed_epsilon": claimed_epsilon, "delta": delta_used,
                 "n_train": len(members), "n_holdout": len(nonmembers), "attack": "loss threshold (score = -loss)"}
    out["auc"], out["auc_ci95"] = auc_delong(scores, labels)
    fpr, tpr, _ = roc_curve(labels, scores)
    for target in (0.01, 0.1):
        out["tpr_at_fpr"][str(target)] = float(tpr[fpr <= target + 1e-12].max())
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), PLOT_POINTS)).round().astype(int))
    out["roc"] = {"fpr": fpr[keep].round(6).tolist(), "tpr": tpr[keep].round(6).tolist()}

    if min(len(members), len(nonmembers)) < MIA_MIN_PER_SIDE:
        out["epsilon_note"] = f"not available: fewer than {MIA_MIN_PER_SIDE} records on a side"
        return out
    rng = np.random.default_rng([seed, 3])
    m_order, n_order = rng.permutation(len(members)), rng.permutation(len(nonmembers))
    m_pick, m_eval = members[m_order[:len(members) // 2]], members[m_order[len(members) // 2:]]
    n_pick, n_eval = nonmembers[n_order[:len(nonmembers) // 2]], nonmembers[n_order[len(nonmembers) // 2:]]

    # thresholds halfway between neighbouring scores: the cut generalises to the other half best
    scores_pick = np.unique(np.r_[m_pick, n_pick])
    thresholds = np.r_[-np.inf, (scores_pick[:-1] + scores_pick[1:]) / 2, np.inf]
    tp, fp = _threshold_counts(m_pick, n_pick, thresholds)
    tpr_low, _ = clopper_pearson(tp, len(m_pick))
    _, fpr_high = clopper_pearson(fp, len(n_pick))
    chosen = thresholds[int(np.argmax(_epsilon(tpr_low, fpr_high, delta_used)))]

    tp, fp = _threshold_counts(m_eval, n_eval, np.array([chosen]))
    tpr_low, tpr_high = clopper_pearson(tp, len(m_eval))
    fpr_low, fpr_high = clopper_pearson(fp, len(n_eval))
    lower = max(0.0, float(_epsilon(tpr_low, fpr_high, delta_used)[0]))
    upper = max(0.0, float(_epsilon(tpr_high, fpr_low, delta_used)[0]))
    point = max(0.0, float(_epsilon(tp / len(m_eval), fp / len(n_eval), delta_used)[0]))
    out.update(
        empirical_epsilon_lower_bound=lower,
        empirical_epsilon_ci95=[lower, upper if math.isfinite(upper) else None],
        empirical_epsilon_point=point if math.isfinite(point) else None,
        epsilon_counts={"true_positives": int(tp[0]), "members": len(m_eval),
                        "false_positives": int(fp[0]), "nonmembers": len(n_eval)},
        epsilon_method=("threshold chosen on a random half of each side, bound computed on the other half: "
                        "eps >= max(log((TPR_lo - delta) / FPR_hi), log((1 - FPR_hi - delta) / (1 - TPR_lo))) "
                        "with Clopper-Pearson 95% bounds; the interval's upper end uses TPR_hi and FPR_lo"))
    return out

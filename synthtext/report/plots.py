"""The report's plots, drawn from the evaluation's plot data and the training log: inline PNG data URIs
(matplotlib, Agg). They only draw what they are given; every figure is computed elsewhere (the metrics,
the accountant).

Each ``plot_*`` function returns ``data:image/png;base64,...`` or None when its data are missing.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from typing import Any

_COLOURS = {"real": "#0072B2", "synthetic": "#E69F00", "tstr": "#009E73", "bound": "#CC79A7"}


def _finite(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]


def _points(values: Any) -> list[tuple[float, float]]:
    if not isinstance(values, list):
        return []
    return [(float(p[0]), float(p[1])) for p in values if isinstance(p, (list, tuple)) and len(p) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)]


def _new_axes(width: float = 6.4, height: float = 3.4):
    from matplotlib.figure import Figure  # not pyplot: no global state, no GUI backend

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shared_bins(first: list[float], second: list[float]):
    """Histogram bin edges common to two series, numpy's "auto" rule capped at 40 bins."""
    import numpy as np

    edges = np.histogram_bin_edges(first + second, bins="auto")
    return np.linspace(edges[0], edges[-1], 41) if len(edges) > 41 else edges


def _two_histograms(series, xlabel: str, ylabel: str, density: bool = False) -> str | None:
    """Two series as overlaid histograms on shared bins, the second hatched; None when both are empty.
    ``series`` is two ``(values, label, colour)``: the legend says each label with its count."""
    (first, _, _), (second, _, _) = series
    if not first and not second:
        return None
    edges = _shared_bins(first, second)
    fig, ax = _new_axes()
    for (values, label, colour), hatch in zip(series, (None, "//")):
        if values:
            ax.hist(values, bins=edges, density=density, alpha=0.45, color=_COLOURS[colour], hatch=hatch,
                    edgecolor=_COLOURS[colour], label=f"{label} (n={len(values):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return _png(fig)


def plot_lengths(data: Mapping | None, unit: str) -> str | None:
    if not isinstance(data, Mapping):
        return None
    return _two_histograms(((_finite(data.get("real")), "real", "real"),
                            (_finite(data.get("synthetic")), "synthetic", "synthetic")),
                           f"length ({unit})", "share of rows (density)", density=True)


def plot_embedding(data: Mapping | None) -> str | None:
    if not isinstance(data, Mapping):
        return None
    real, synthetic = _points(data.get("real")), _points(data.get("synthetic"))
    if not real and not synthetic:
        return None
    fig, ax = _new_axes(6.4, 4.4)
    for points, name, marker in ((real, "real", "o"), (synthetic, "synthetic", "x")):
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=10, alpha=0.5, marker=marker, color=_COLOURS[name],
                       label=f"{name} (n={len(points):,})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("projection axis 1")
    ax.set_ylabel("projection axis 2")
    ax.legend()
    return _png(fig)


def plot_conditional(data: Mapping | None, table: Mapping | None) -> str | None:
    """Grouped bars per conditioning column: real holdout, synthetic and TSTR accuracy, with the
    majority-class baseline as a dashed line where the evaluation gives it."""
    series = (("real_holdout", "real holdout", "real", "real_holdout_accuracy", None),
              ("synthetic", "synthetic", "synthetic", "synthetic_accuracy", "//"),
              ("tstr", "TSTR", "tstr", "tstr_accuracy", ".."))
    groups = []
    for cond in (data or table or {}):
        row = (table or {}).get(cond) or {}
        heights = []
        for key, _, _, table_key, _ in series:
            value = (data[cond] or {}).get(key) if data else row.get(table_key)
            heights.append(float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None)
        if any(h is not None for h in heights):
            groups.append((str(cond), heights, row.get("majority_baseline")))
    if not groups:
        return None
    fig, ax = _new_axes(max(5.0, 1.6 * len(groups) + 2.0), 3.6)
    width = 0.26
    for i, (_, label, colour, _, hatch) in enumerate(series):
        xs = [g + (i - 1) * width for g in range(len(groups))]
        hs = [grp[1][i] for grp in groups]
        ax.bar([x for x, h in zip(xs, hs) if h is not None], [h for h in hs if h is not None], width,
               label=label, color=_COLOURS[colour], hatch=hatch, edgecolor="#333")
    for g, (_, _, baseline) in enumerate(groups):
        if isinstance(baseline, (int, float)) and math.isfinite(baseline):
            ax.plot([g - 1.5 * width, g + 1.5 * width], [baseline, baseline], "k--", linewidth=1.2,
                    label="majority baseline" if g == 0 else None)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([name for name, _, _ in groups], parse_math=False)  # column names may contain $
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    fig.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)  # never over the bars
    return _png(fig)


def plot_dcr(data: Mapping | None) -> str | None:
    if not isinstance(data, Mapping):
        return None
    return _two_histograms(((_finite(data.get("synthetic_to_train")), "to closest training row", "real"),
                            (_finite(data.get("synthetic_to_holdout")), "to closest holdout row", "synthetic")),
                           "distance of a synthetic text to its closest real text (0 = exact copy)", "synthetic rows")


def plot_roc(data: Mapping | None, epsilon: Any, delta: Any) -> str | None:
    import numpy as np

    if not isinstance(data, Mapping):
        return None
    fpr, tpr = _finite(data.get("fpr")), _finite(data.get("tpr"))
    if not fpr or len(fpr) != len(tpr):
        return None
    fig, ax = _new_axes(4.8, 4.4)
    ax.plot([0, 1], [0, 1], color="#777", linestyle="--", label="guessing (AUC 0.5)")
    if isinstance(epsilon, (int, float)) and math.isfinite(epsilon):
        # Hypothesis-testing view of (eps, delta)-DP (Kairouz et al. 2015): the best any attack can do.
        d = float(delta) if isinstance(delta, (int, float)) and math.isfinite(delta) else 0.0
        x = np.linspace(0, 1, 201)
        bound = np.minimum.reduce([np.ones_like(x), math.exp(epsilon) * x + d,
                                   1 - math.exp(-epsilon) * (1 - d - x)])
        ax.plot(x, np.clip(bound, 0, 1), color=_COLOURS["bound"], linestyle=":", linewidth=2,
                label=f"DP bound for \u03b5={epsilon:.3g}")
    ax.plot(fpr, tpr, color=_COLOURS["real"], linewidth=2, label="membership attack")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _log_points(log: Mapping | None, key: str) -> list[tuple[float, float]]:
    """(step, value) of a training log's steps that have a finite ``key``."""
    if not isinstance(log, Mapping) or not isinstance(log.get("steps"), list):
        return []
    points = []
    for entry in log["steps"]:
        if isinstance(entry, Mapping):
            step, value = _number(entry.get("step")), _number(entry.get(key))
            if step is not None and value is not None:
                points.append((step, value))
    return points


def _per_step(fig, ax, ylabel: str, legend: str) -> str:
    """A plot over training steps, finished: whole steps on the x axis, labels, legend; the PNG."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc=legend)
    return _png(fig)


def plot_epsilon(log: Mapping | None) -> str | None:
    """Epsilon spent after each step where the log has it (from the accountant), from (0, 0), with the
    target epsilon as a dashed line."""
    points = _log_points(log, "epsilon")
    if not points:
        return None
    xs, ys = zip(*([(0.0, 0.0)] + points))
    fig, ax = _new_axes(6.4, 3.2)
    ax.plot(xs, ys, color=_COLOURS["real"], marker="o", markersize=4, linewidth=2, label="epsilon spent")
    target = _number(log.get("target_epsilon"))
    if target is not None:
        ax.axhline(target, color=_COLOURS["bound"], linestyle="--", linewidth=1.2, label=f"target \u03b5={target:.3g}")
    ax.set_xlim(0, max(xs))
    ax.set_ylim(0, max(max(ys), target or 0.0) * 1.08 or 1.0)
    return _per_step(fig, ax, "epsilon spent (\u03b5)", "lower right")


def plot_loss(log: Mapping | None) -> str | None:
    """Training loss per step (thin) and its moving average over about a twentieth of the run (thick)."""
    import numpy as np

    points = _log_points(log, "loss")
    if not points:
        return None
    xs, ys = (np.array(v) for v in zip(*points))
    fig, ax = _new_axes(6.4, 3.2)
    ax.plot(xs, ys, color=_COLOURS["synthetic"], linewidth=0.8, alpha=0.6, marker="." if len(xs) < 40 else None,
            label="loss of the step's batch")
    window = max(1, len(ys) // 20)
    if window > 1:
        smooth = np.convolve(ys, np.ones(window) / window, mode="valid")
        ax.plot(xs[window - 1:], smooth, color=_COLOURS["real"], linewidth=2, label=f"moving average ({window} steps)")
    return _per_step(fig, ax, "training loss", "upper right")


def plot_distribution(data: Mapping | None) -> str | None:
    """One structured column, real vs synthetic: grouped bars of category shares (``kind`` categorical,
    the named categories then "other" and "missing" where either side has some) or histograms on shared
    bins (``kind`` numeric, as shares of each side's non-missing rows)."""
    if not isinstance(data, Mapping):
        return None
    if data.get("kind") == "categorical":
        return _category_bars(data)
    if data.get("kind") == "numeric":
        return _histogram_shares(data)
    return None


def _category_bars(data: Mapping) -> str | None:
    names = [str(c) for c in data.get("categories") or []]
    real, synthetic = _finite(data.get("real")), _finite(data.get("synthetic"))
    if len(real) != len(names) or len(synthetic) != len(names):
        return None
    for key, label in (("other", "(other)"), ("missing", "(missing)")):
        extra = data.get(key) if isinstance(data.get(key), Mapping) else {}
        r, s = _number(extra.get("real")) or 0.0, _number(extra.get("synthetic")) or 0.0
        if r > 0 or s > 0:
            names, real, synthetic = names + [label], real + [r], synthetic + [s]
    if not names:
        return None
    n = data.get("n") if isinstance(data.get("n"), Mapping) else {}
    fig, ax = _new_axes(max(5.0, 0.55 * len(names) + 2.5), 3.4)
    width = 0.4
    for i, (values, side, hatch) in enumerate(((real, "real", None), (synthetic, "synthetic", "//"))):
        count = n.get(side)
        label = f"{side} (n={count:,})" if isinstance(count, int) else side
        ax.bar([x + (i - 0.5) * width for x in range(len(names))], values, width, color=_COLOURS[side],
               hatch=hatch, edgecolor="#333", label=label)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([name if len(name) <= 18 else name[:17] + "\u2026" for name in names], parse_math=False,
                       rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set_ylabel("share of rows")
    ax.legend(fontsize=8)
    return _png(fig)


def _histogram_shares(data: Mapping) -> str | None:
    edges = _finite(data.get("edges"))
    real, synthetic = _finite(data.get("real")), _finite(data.get("synthetic"))
    if len(edges) < 2 or len(real) != len(edges) - 1 or len(synthetic) != len(edges) - 1:
        return None
    n = data.get("n") if isinstance(data.get("n"), Mapping) else {}
    fig, ax = _new_axes()
    drawn = False
    for values, side, hatch in ((real, "real", None), (synthetic, "synthetic", "//")):
        total = sum(values)
        if total <= 0:
            continue
        count = n.get(side)
        label = f"{side} (n={count:,})" if isinstance(count, int) else side
        ax.stairs([v / total for v in values], edges, fill=True, alpha=0.45, color=_COLOURS[side], hatch=hatch,
                  edgecolor=_COLOURS[side], label=label)
        drawn = True
    if not drawn:
        return None
    ax.set_xlabel("value (the outer bins also hold what lies beyond them)")
    ax.set_ylabel("share of rows")
    ax.legend(fontsize=8)
    return _png(fig)

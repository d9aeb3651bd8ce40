"""The report's plots, drawn from the evaluation's plot data: inline PNG data URIs (matplotlib, Agg).

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

"""The report as one self-contained HTML page: :func:`render_html`.

The page is the Jinja2 template ``templates/report.html.j2`` (autoescape on: every data-derived string
is HTML-escaped) with ``report.css`` inlined, plots as inline PNG data URIs (:mod:`.plots`), no scripts,
no external resources, and a Content-Security-Policy that forbids the browser from fetching anything.
This module only shapes the report's data for the template and draws the plots; the markup and its words
are the template's (the verdicts and caveats are report.json's, worded in
:mod:`synthtext.metrics.verdicts`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

import jinja2

from ..metrics.verdicts import fmt
from .plots import (
    plot_conditional,
    plot_dcr,
    plot_distribution,
    plot_embedding,
    plot_epsilon,
    plot_lengths,
    plot_loss,
    plot_roc,
)

TEMPLATE = "report.html.j2"
LOG_TABLE_ROWS = 200
"""Rows of a training log's table in the page, at most (every n-th step; report.json has them all)."""
_LEDGER_MODEL_FIELDS = ("model", "dp", "epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "epochs",
                        "expected_batch_size", "max_grad_norm", "accountant", "sampling", "n_records",
                        "privacy_unit", "target_epsilon", "stopped_early", "secure_rng")
_ANY = object()


def render_html(report: Mapping) -> str:
    """The report as one self-contained HTML page (inline CSS and images, no scripts, no network)."""
    evaluation = report.get("evaluation")
    ledger = report.get("privacy")
    data = report.get("data") or {}

    def verdicts(section: str, column: Any = _ANY, metrics: Any = None, but: Any = ()) -> list[dict]:
        """The report's verdicts of one section; of one column (None: of no column) if given."""
        return [v for v in report.get("verdicts") or [] if v.get("section") == section
                and (column is _ANY or v.get("column") == column)
                and (metrics is None or v.get("metric") in metrics) and v.get("metric") not in but]

    return _environment().get_template(TEMPLATE).render(
        report=report, css=_css(), figures=_figures(report), verdicts=verdicts,
        ledger_top={k: v for k, v in ledger.items() if k not in ("models", "summary")} if ledger else {},
        ledger_models=[_ledger_model(m) for m in (ledger or {}).get("models") or []],
        settings={k: evaluation[k] for k in ("embedding_method", "settings", "sampling", "n_rows")
                  if (evaluation or {}).get(k)},
        protected_by={c.get("name"): c.get("protected_by") for c in data.get("columns") or []})


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.globals.update(kv_kind=_kv_kind, redaction_totals=_redaction_totals, log_rows=_log_rows,
                       sample_columns=_sample_columns)
    return env


@functools.cache
def _css() -> str:
    """report.css: our own file, inlined as it is (``css|safe``; the CSP allows inline style and nothing else)."""
    return files(__package__).joinpath("report.css").read_text(encoding="utf-8")


def _kv_kind(value: Any, depth: int) -> str:
    """How the key-value table shows a value: a nested "table", several "tables", JSON "code" (too deep,
    or a list mixing dicts and values) or a formatted "value"."""
    nested = isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value)
    if isinstance(value, Mapping) and depth < 3:
        return "table"
    if nested and all(isinstance(v, Mapping) for v in value) and depth < 3:
        return "tables"
    if isinstance(value, Mapping) or nested:
        return "code"
    return "value"


def _ledger_model(model: Mapping) -> dict:
    """One text model's ledger entry, its main fields first, without its summary sentence."""
    ordered = {k: model[k] for k in _LEDGER_MODEL_FIELDS if k in model}
    ordered.update({k: v for k, v in model.items() if k not in ordered and k != "summary"})
    return ordered


def _figures(report: Mapping) -> dict[str, dict[str, str | None]]:
    """Every plot of the page as a data: URI (None where its data are missing), by kind and column (a
    text column; a structured one for "distribution")."""
    figures: dict[str, dict[str, str | None]] = {k: {} for k in ("lengths", "embedding_2d", "conditional",
                                                                  "dcr", "mia_roc", "epsilon", "loss",
                                                                  "distribution")}
    for column, log in (report.get("training_log") or {}).items():
        figures["epsilon"][column] = plot_epsilon(log)
        figures["loss"][column] = plot_loss(log)
    evaluation = report.get("evaluation")
    if evaluation is None:
        return figures
    plots = evaluation.get("plots") or {}
    for column, data in (plots.get("structured") or {}).items():
        figures["distribution"][column] = plot_distribution(data)
    for column, sections in (evaluation.get("columns") or {}).items():
        fidelity = (sections or {}).get("fidelity") or {}
        unit = (fidelity.get("length") or {}).get("unit", "words")
        figures["lengths"][column] = plot_lengths((plots.get("lengths") or {}).get(column), unit)
        figures["embedding_2d"][column] = plot_embedding((plots.get("embedding_2d") or {}).get(column))
        conditional = (plots.get("conditional") or {}).get(column)
        if conditional or fidelity.get("conditional"):
            figures["conditional"][column] = plot_conditional(conditional, fidelity.get("conditional"))
        figures["dcr"][column] = plot_dcr((plots.get("dcr") or {}).get(column))
    ledger = report.get("privacy") or {}
    for column, result in (evaluation.get("membership") or {}).items():
        result = result or {}
        delta = result.get("delta", ledger.get("delta") if ledger.get("dp") else None)
        figures["mia_roc"][column] = plot_roc((plots.get("mia_roc") or {}).get(column),
                                              result.get("claimed_epsilon"), delta)
    return figures


def _redaction_totals(pii: Mapping) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(entity type, spans) redacted before training, and only counted, over all text columns."""
    totals: dict[str, list[int]] = {}
    for key, i in (("redacted_entities", 0), ("counted_only", 1)):
        for by_entity in (pii.get(key) or {}).values():
            for e, n in by_entity.items():
                totals.setdefault(e, [0, 0])[i] += n
    return ([(e, t[0]) for e, t in totals.items() if t[0]], [(e, t[1]) for e, t in totals.items() if t[1]])


def _log_rows(log: Mapping) -> tuple[list[Mapping], int]:
    """The steps of a training log the page's table lists, and the stride: every step up to
    ``LOG_TABLE_ROWS``, else every n-th and each step with an epsilon (always the last)."""
    steps = [s for s in log.get("steps") or [] if isinstance(s, Mapping)]
    stride = max(1, -(-len(steps) // LOG_TABLE_ROWS))
    rows = [s for i, s in enumerate(steps) if i % stride == 0 or i == len(steps) - 1 or s.get("epsilon") is not None]
    return rows, stride


def _sample_columns(rows: list[Mapping]) -> list[str]:
    """The columns of the sample rows, in the order they first appear."""
    return list(dict.fromkeys(column for row in rows for column in row))

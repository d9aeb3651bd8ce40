"""The privacy audit report: ``<out_dir>/<run-id>/report.json`` and ``report.html``.

The report is what a privacy officer reads before synthetic data leave the organisation, so it must be
true, complete and readable:

* :func:`build_report` (build.py) turns what the pipeline knows (data summary, PII scan summary, privacy
  ledger, evaluation, canary audit, 20 synthetic rows chosen by :func:`sample_rows`, the training log of
  :func:`training_logs`) into one JSON-safe dict with a versioned schema
  (``synthtext.report/1``), adding per-column protection, plain-language verdicts and the caveats that
  always apply (worded in :mod:`synthtext.metrics.verdicts`).
* :func:`render_html` (render.py) renders that dict as one self-contained HTML page: inline CSS, plots
  as inline PNG data URIs (plots.py; matplotlib, Agg), no scripts, no external resources, and a
  Content-Security-Policy that forbids the browser from fetching anything. Every data-derived string is
  HTML-escaped.
* :func:`write_report` (write.py) writes both files into a fresh run directory, atomically: a failed run
  leaves nothing behind, and an existing run directory is never overwritten.

The report carries only what it is given, and of the PII scan only counts, entity types and redacted
examples (which must contain placeholders): never raw PII or training text. It is still computed from
the real data without DP (a caveat says so).
"""

from .build import REPORT_SCHEMA, build_report, column_protection, column_role, sample_rows, training_logs
from .render import render_html
from .write import write_report

__all__ = ["REPORT_SCHEMA", "build_report", "column_protection", "column_role", "render_html", "sample_rows",
           "training_logs", "write_report"]

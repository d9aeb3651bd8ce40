"""Comparing a given pair of tables: :func:`report_pair` (``synthtext report``).

A use case beside :func:`synthtext.synthesize`: it scans the real table for PII, evaluates the synthetic
table against it and writes the privacy audit report, for tables synthtext need not have made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import DataError
from .report import column_role, sample_rows, write_report


def report_pair(real, synthetic, out_dir: str | os.PathLike = "privacy_reports", *,
                text_columns: Sequence[str] | None = None, conditioning_columns: Sequence[str] | None = None,
                embedding: str = "auto", analyzer: Any = None, run_id: str | None = None,
                audit: Mapping | None = None) -> Path:
    """Evaluate any real/synthetic pair of tables and write the report (``synthtext report``).

    Without the model there is no ledger and no membership-inference attack, and without a holdout the
    leakage baselines are missing: the report says so. PII replay searches the synthetic text for the PII
    the scan finds in ``real``, and the columns the scan finds to be PII themselves (a name or email column)
    are checked for real values and real rows' combinations of them; the report claims nothing about how
    their synthetic values were made. It shows 20 rows of ``synthetic`` (seed 0), never a real row, and
    real PII in them withheld."""
    from . import pii
    from .metrics import evaluate

    if list(real.columns) != list(synthetic.columns):
        missing = [c for c in real.columns if c not in synthetic.columns]
        extra = [c for c in synthetic.columns if c not in real.columns]
        raise DataError(f"the synthetic table's columns differ from the real one's (missing: {missing}, "
                        f"extra: {extra}); compare tables with the same columns.")
    scan = pii.scan_pii(real, columns=text_columns, analyzer=analyzer)
    if not scan.text_columns:
        raise DataError("no text column found in the real table; name them with --text-columns.")
    pii_columns = {c: s.entity_type for c, s in scan.structured_columns.items()}
    conditioning = list(conditioning_columns) if conditioning_columns is not None else [
        c for c in real.columns if c not in scan.text_columns and c not in pii_columns]
    pii_values = pii.found_values(real, scan)
    evaluation = evaluate(real, synthetic, scan.text_columns, conditioning,
                          pii_values=pii_values, embedding=embedding, pii_columns=pii_columns)
    unknown = "unknown: this pair was not made by this run"
    columns = [{"name": str(c), "dtype": str(real[c].dtype),
                "role": column_role(c, scan.text_columns, pii_columns, conditioning),
                "protected_by": unknown} for c in real.columns]
    data_summary = {"n_rows": len(real), "n_train": len(real), "n_holdout": 0, "columns": columns,
                    "text_columns": list(scan.text_columns), "conditioning_columns": conditioning,
                    "structured": None, "model": None}
    pii_summary = {"counts": scan.counts(), "structured_columns": pii_columns,
                   "examples": {c: pii.redacted_examples(real, scan, c) for c in scan.text_columns}}
    return write_report(out_dir, evaluation=evaluation, ledger=None, data_summary=data_summary,
                        pii_summary=pii_summary, run_id=run_id, audit=audit,
                        # rows of the synthetic table, never of the real one; real PII in them withheld
                        samples=sample_rows(synthetic, real=real, text_columns=scan.text_columns,
                                            pii_columns=pii_columns, pii_values=pii_values),
                        title="synthtext report: a given real/synthetic pair")

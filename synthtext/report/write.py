"""Writing a report: ``<out_dir>/<run-id>/report.json`` and ``report.html``, atomically.

A failed run leaves nothing behind, and an existing run directory is never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..io import atomic_directory
from .build import build_report
from .render import render_html


def write_report(out_dir: str | os.PathLike, *, evaluation: Mapping | Any | None, ledger: Mapping | None,
                 data_summary: Mapping, pii_summary: Mapping | None = None, audit: Mapping | Any | None = None,
                 model_info: Mapping | None = None, run_id: str | None = None,
                 title: str | None = None, samples: Sequence[Mapping] | None = None,
                 training_log: Mapping | None = None) -> Path:
    """Write ``out_dir/<run_id>/report.json`` and ``report.html`` and return the run directory
    (the inputs as :func:`build_report` takes them).

    Both files are rendered first, written into a temporary directory inside ``out_dir`` and then moved
    into place with one rename: a failure leaves no run directory and no partial file.

    Raises:
        ConfigError: bad inputs (see :func:`build_report`) or the run directory already exists.
        DataError: ``out_dir`` cannot be created or written.
    """
    report = build_report(evaluation=evaluation, ledger=ledger, data_summary=data_summary,
                          pii_summary=pii_summary, audit=audit, model_info=model_info, run_id=run_id,
                          title=title, samples=samples, training_log=training_log)
    text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    page = render_html(report)  # before touching the disk: a rendering error leaves nothing behind
    root = Path(out_dir)
    final = root / report["run_id"]
    _refuse_existing(final)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot write the report to {root}: {exc.strerror or exc}. "
                        "Choose a writable directory.") from exc
    with atomic_directory(final) as staging:
        for name, content in (("report.json", text), ("report.html", page)):
            (staging / name).write_text(content, encoding="utf-8", newline="\n")
        _refuse_existing(final)  # another run may have taken the name meanwhile
    return final


def _refuse_existing(final: Path) -> None:
    if final.exists() or final.is_symlink():
        raise ConfigError(f"report directory {final} already exists; synthtext never overwrites a report. "
                          "Leave run_id out for a fresh timestamped one, choose another run_id, or move the "
                          "old report away.")

"""The PII scan: :func:`scan_pii`.

What it does, in the order a scan runs:

1. **Structured PII columns** (a column that *is* a name, email, phone, address or record id) are found by
   their values and their names: see :func:`detect_structured_pii`.
2. **Text columns** are found by a documented rule (:func:`detect_text_columns`) unless given.
3. Every distinct non-empty cell of the text columns is analysed once with presidio-analyzer: spaCy runs
   over batches (``nlp.pipe``) with only the components presidio needs, pattern recognizers that cannot
   fire on a cell (no digit, no ``@``) are skipped, long cells are cut into overlapping pieces, and the
   cells are split over worker processes.

Redaction (:mod:`synthtext.pii.redaction`) then takes only the spans that identify a person (names,
contact details, ID numbers, specific dates, URLs with a scheme or www.); the scan keeps every span, so
its counts stay complete.

Nothing here touches the network: the spaCy pipeline must be installed (we never download one) and
tldextract, which presidio's email recognizer calls, is pointed at its bundled suffix list.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from ..errors import ConfigError, DataError
from .analyzer import NO_SPACY_WARNING, default_analyzer, engine_name, is_regex_only
from .columns import detect_structured_pii, detect_text_columns, string_values
from .constants import DEFAULT_SCORE_THRESHOLD, LANGUAGE
from .results import PiiScanResult
from .texts import analyze_texts


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        available = ", ".join(repr(c) for c in df.columns)
        raise DataError(f"unknown column(s) {', '.join(repr(c) for c in missing)}; "
                        f"the table has: {available}.")
    not_text = [c for c in columns if string_values(df[c]).empty and df[c].notna().any()]
    if not_text:
        raise DataError(f"column(s) {', '.join(repr(c) for c in not_text)} hold no text "
                        f"(dtype {df[not_text[0]].dtype}); choose text columns.")


def scan_pii(df: pd.DataFrame, columns: Sequence[str] | None = None, *, analyzer=None,
             score_threshold: float = DEFAULT_SCORE_THRESHOLD, entities: Sequence[str] | None = None,
             detect_structured: bool = True, n_jobs: int | None = None,
             progress: bool = False) -> PiiScanResult:
    """Find PII in the text columns of ``df`` (and the columns that are PII themselves).

    ``columns`` are the text columns to scan (default: :func:`detect_text_columns`). ``analyzer`` is a
    presidio ``AnalyzerEngine`` (default: :func:`build_analyzer` with the best installed spaCy
    pipeline). Spans scoring below ``score_threshold`` are dropped. ``progress`` shows a progress bar on
    stderr.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"scan_pii expects a pandas DataFrame, got {type(df).__name__}.")
    if not 0.0 <= score_threshold <= 1.0:
        raise ConfigError(f"score_threshold: must be between 0 and 1, got {score_threshold}.")
    if columns is not None:
        columns = list(columns)
        _check_columns(df, columns)
    analyzer = analyzer if analyzer is not None else default_analyzer()

    structured = {}
    if detect_structured:
        candidates = [c for c in df.columns if columns is None or c not in columns]
        structured = detect_structured_pii(df, analyzer=analyzer, candidates=candidates,
                                           score_threshold=score_threshold, n_jobs=n_jobs)
    text_columns = columns if columns is not None else detect_text_columns(df, exclude=structured)

    cells = [(column, i, value) for column in text_columns
             for i, value in enumerate(df[column].tolist()) if isinstance(value, str) and value.strip()]
    distinct = len({value for _, _, value in cells})
    bar = _progress_bar(total=distinct, enabled=progress, desc="scanning for PII", unit="text")
    try:
        found = analyze_texts([value for _, _, value in cells], analyzer=analyzer,
                              score_threshold=score_threshold, entities=entities, n_jobs=n_jobs,
                              progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()

    spans = {column: [[] for _ in range(len(df))] for column in text_columns}
    for (column, i, _), cell_spans in zip(cells, found):
        spans[column][i] = cell_spans
    scan_warnings = [NO_SPACY_WARNING] if is_regex_only(analyzer) else []
    supported = tuple(entities) if entities else _supported_entities(analyzer)
    return PiiScanResult(text_columns=list(text_columns), spans=spans, structured_columns=structured,
                         n_rows=len(df), engine=engine_name(analyzer), warnings=scan_warnings,
                         supported_entities=supported)


def _supported_entities(analyzer) -> tuple[str, ...]:
    try:
        return tuple(analyzer.get_supported_entities(LANGUAGE))
    except Exception:  # a stand-in analyzer without the method: the known names only
        return ()


def _progress_bar(total: int, enabled: bool, desc: str, unit: str):
    """None when disabled; else a bar on a terminal (cleared when done), progress lines elsewhere."""
    if not enabled:
        return None
    from ..progress import Progress

    return Progress(total, desc, unit=unit, show_rate=True, leave=False)

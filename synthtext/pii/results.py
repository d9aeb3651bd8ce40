"""What a scan returns: spans, structured PII columns and the scan result. Holds no cell text."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator


@dataclass(frozen=True)
class PiiSpan:
    """One detected PII span: ``text[start:end]`` is of type ``entity_type``."""

    start: int
    end: int
    entity_type: str
    score: float

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type,
                "score": round(float(self.score), 4)}


@dataclass(frozen=True)
class StructuredPiiColumn:
    """A column whose values are themselves PII (names, emails, phone numbers, addresses, ids)."""

    column: str
    entity_type: str
    match_share: float  # share of the sampled values that matched entity_type (1.0 for ids)
    reason: str  # "values", "name and values" or "name and unique values"

    def to_dict(self) -> dict:
        return {"column": self.column, "entity_type": self.entity_type,
                "match_share": round(self.match_share, 4), "reason": self.reason}


@dataclass
class PiiScanResult:
    """What :func:`scan_pii` found.

    ``spans[column][i]`` lists the spans found in row ``i`` (by position, 0-based) of a text column;
    a missing cell has no spans. Holds no cell text, so it is safe to serialise as it is.
    """

    text_columns: list[str]
    spans: dict[str, list[list[PiiSpan]]]
    structured_columns: dict[str, StructuredPiiColumn]
    n_rows: int
    engine: str
    warnings: list[str] = field(default_factory=list)
    # Entity types the analyzer could find (not serialised): redact_frame accepts these names.
    supported_entities: tuple[str, ...] = ()

    def counts(self) -> dict[str, dict[str, int]]:
        """Per text column, the number of spans of each entity type, most frequent first."""
        out = {}
        for column, rows in self.spans.items():
            counter = Counter(span.entity_type for row in rows for span in row)
            out[column] = dict(counter.most_common())
        return out

    def rows_with_pii(self) -> dict[str, int]:
        """Per text column, the number of rows with at least one span."""
        return {column: sum(1 for row in rows if row) for column, rows in self.spans.items()}

    def cells(self) -> Iterator[tuple[int, str, list[PiiSpan]]]:
        """(row, column, spans) for every cell of every text column, row by row."""
        for i in range(self.n_rows):
            for column in self.text_columns:
                yield i, column, self.spans[column][i]

    def to_dict(self) -> dict:
        return {
            "n_rows": self.n_rows,
            "engine": self.engine,
            "warnings": list(self.warnings),
            "text_columns": list(self.text_columns),
            "structured_pii_columns": [c.to_dict() for c in self.structured_columns.values()],
            "counts": self.counts(),
            "rows_with_pii": self.rows_with_pii(),
            "spans": {column: [[s.to_dict() for s in row] for row in rows]
                      for column, rows in self.spans.items()},
        }

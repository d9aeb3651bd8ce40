"""PII detection, redaction and surrogates. The only package that imports presidio.

How a scan runs: :mod:`synthtext.pii.scan`. Importing this package stays light: presidio and spaCy load
only when an analyzer is built.
"""

from .analyzer import build_analyzer, default_analyzer, find_spacy_pipeline
from .columns import detect_structured_pii, detect_text_columns
from .constants import DEFAULT_SCORE_THRESHOLD
from .frames import found_values, mask_contacts, mask_undetected, redact_frame, redacted_examples
from .redaction import (COUNTED_ONLY_BY_DEFAULT, DEFAULT_REDACT_ENTITIES, KNOWN_ENTITY_TYPES, RedactionPolicy,
                        check_redact_entities, is_specific_date, linked_urls, placeholder_types, redaction_counts,
                        redaction_policy, redaction_spans, specific_dates)
from .results import PiiScanResult, PiiSpan, StructuredPiiColumn
from .scan import scan_pii
from .surrogates import PLACEHOLDER, Surrogates, redact, resolve_overlaps
from .texts import analyze_texts

__all__ = [
    "PiiSpan", "PiiScanResult", "StructuredPiiColumn", "Surrogates", "analyze_texts", "build_analyzer",
    "detect_structured_pii", "detect_text_columns", "found_values", "find_spacy_pipeline", "redact", "redact_frame",
    "mask_contacts", "mask_undetected", "redacted_examples", "resolve_overlaps", "scan_pii",
    "COUNTED_ONLY_BY_DEFAULT", "DEFAULT_REDACT_ENTITIES", "KNOWN_ENTITY_TYPES", "RedactionPolicy",
    "check_redact_entities", "is_specific_date", "linked_urls", "placeholder_types", "redaction_counts", "redaction_policy",
    "redaction_spans", "specific_dates",
    "DEFAULT_SCORE_THRESHOLD", "PLACEHOLDER", "default_analyzer",
]

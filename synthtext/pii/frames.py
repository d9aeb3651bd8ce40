"""A scan applied to its table: redaction of a frame, the values found, examples safe to show."""

from __future__ import annotations

import re
from typing import Iterable

import pandas as pd

from .constants import DIGIT
from .redaction import check_redact_entities, redaction_spans
from .results import PiiScanResult
from .surrogates import redact


def redact_frame(df: pd.DataFrame, scan: PiiScanResult, entities=None) -> pd.DataFrame:
    """A copy of ``df`` whose scanned text columns have their PII replaced by placeholders.

    ``entities`` says what is redacted (``redact_entities``): None, the default, takes what identifies a
    person (names, contact details, ID numbers, specific dates, URLs with a scheme or www.); "all" every
    span the scan found; or a list of entity types (see :mod:`synthtext.pii.redaction`). An unknown type
    raises ConfigError. The other spans stay in the text: the scan still counts them.
    """
    policy = check_redact_entities(entities, known=scan.supported_entities)
    out = df.copy()
    for column in scan.text_columns:
        values = out[column].tolist()
        out[column] = [redact(v, redaction_spans(v, s, policy)) if isinstance(v, str) else v
                       for v, s in zip(values, scan.spans[column])]
    return out


_CAPITALISED_WORD = re.compile(r"(?<![<\w])([A-Z\u00C0-\u00DE])[\w'\u00C0-\u024F-]*")


# A token (up to whitespace, a placeholder's brackets or closing punctuation) with an @, a scheme, www.,
# or a dot between letters (domain-like: "secret-mail.example").
_CONTACT_LIKE = re.compile(r"[^\s<>]*(?:@|://|www\.|[^\W\d_]\.[^\W\d_]{2})[^\s<>]*?(?=[.,;:!?)\]]*(?:\s|<|$))")


def mask_contacts(text: str) -> str:
    """Mask email-, URL- and domain-like tokens (``bo@x.org`` -> ``…@…``, ``www.x.org`` -> ``…``),
    lower-case ones included: presidio skips addresses on some domains (``.example``)."""
    return _CONTACT_LIKE.sub(lambda m: "\u2026@\u2026" if "@" in m.group(0) else "\u2026", text)


def mask_undetected(redacted_text: str) -> str:
    """Mask what could still be PII that the scan missed: digits become ``#``, capitalised words
    their initial (``Valbergsdóttir`` -> ``V…``) unless they are English stop words ("The").
    Placeholders stay readable."""
    pieces = re.split(r"(<[A-Z][A-Z0-9_]*>)", redacted_text)
    for i in range(0, len(pieces), 2):  # even pieces lie outside placeholders
        masked = DIGIT.sub("#", mask_contacts(pieces[i]))
        pieces[i] = _CAPITALISED_WORD.sub(_mask_word, masked)
    return "".join(pieces)


def _mask_word(match: re.Match) -> str:
    from spacy.lang.en.stop_words import STOP_WORDS  # "The", "I'm": common words are no PII

    word = match.group(0)
    return word if word.lower() in STOP_WORDS else match.group(1) + "\u2026"


def found_values(df: pd.DataFrame, scan: PiiScanResult, rows: Iterable[int] | None = None) -> dict[str, set[str]]:
    """The PII values the scan found (text spans and whole PII columns) in ``rows`` (positions; default
    all), by entity type: what a leakage check searches synthetic text for. Raw PII: keep it in memory."""
    positions = range(len(df)) if rows is None else list(rows)
    values: dict[str, set[str]] = {}
    for column in scan.text_columns:
        cells = df[column].tolist()
        for i in positions:
            text = cells[i]
            for span in scan.spans[column][i] if isinstance(text, str) else ():
                values.setdefault(span.entity_type, set()).add(text[span.start:span.end])
    for column, info in scan.structured_columns.items():
        for value in df[column].iloc[list(positions)].dropna():
            values.setdefault(info.entity_type, set()).add(str(value))
    return values


def redacted_examples(df: pd.DataFrame, scan: PiiScanResult, column: str, limit: int = 3,
                      width: int = 100) -> list[str]:
    """Up to ``limit`` redacted snippets of cells with PII, for people to look at.

    Never shows raw PII, detected or not: detected spans become placeholders and the rest goes
    through :func:`mask_undetected`.
    """
    examples = []
    for value, spans in zip(df[column].tolist(), scan.spans[column]):
        if not spans or not isinstance(value, str):
            continue
        redacted = mask_undetected(redact(value, spans))
        first = redacted.find("<")
        start = max(0, first - width // 3)
        snippet = redacted[start:start + width].replace("\n", " ")
        examples.append(("..." if start else "") + snippet + ("..." if start + width < len(redacted) else ""))
        if len(examples) == limit:
            break
    return examples

"""Which detected spans are redacted before training, and which are only counted.

The scan keeps every span it finds (its counts stay complete). Redaction takes only what identifies a
person: names, contact details (emails, phone numbers, street addresses), account, card and other ID
numbers, and

- ``DATE_TIME`` only for a **specific date**, one with a date element more specific than a year (as in
  HIPAA's Safe Harbor rule): "March 3, 2021", "3rd of March", "July 2nd", "Aug 2010", "03/04/2021",
  "2021-03-04", "04/2021". Not durations ("3 weeks", "a 2-week cycle"), not vague or relative times
  ("last week", "summer", "years"), not a bare year ("1977"), a weekday or a time of day; and not the
  heights, sizes and ages spaCy tags as dates ("5'4", "34 years old").
- ``URL`` only with a scheme (``http://``, ``https://``, ``ftp://``) or starting with ``www.``: a bare
  domain ("example.org") is counted, and presidio's hits on text such as "low..it's" go away.

Places (LOCATION), nationalities and religious or political groups (NRP) and organisations are counted,
not redacted: they are quasi-identifiers that the text model learns under DP, and in ordinary text most
of the scan's hits of these types are not PII at all (docs/benchmarks/redaction.md). A street address
(house number, street, optional city, state and zip: STREET_ADDRESS) is redacted whole, although spaCy
may also tag pieces of it as LOCATION.

Measured on 500 clothing reviews: 150 DATE_TIME and 29 URL spans flagged, 2 and 0 of them PII; this rule
redacts those 2 dates and no URL (docs/benchmarks/redaction.md).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import ConfigError
from .constants import LANGUAGE
from .results import PiiSpan

# Every entity type synthtext's analyzer (build_analyzer) can produce; tests check it stays so.
KNOWN_ENTITY_TYPES = frozenset({
    "CREDIT_CARD", "CRYPTO", "DATE_TIME", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS", "LOCATION",
    "MAC_ADDRESS", "MEDICAL_LICENSE", "NRP", "PERSON", "PHONE_NUMBER", "STREET_ADDRESS", "UK_NHS", "URL",
    "US_BANK_NUMBER", "US_DRIVER_LICENSE", "US_ITIN", "US_PASSPORT", "US_SSN", "UUID",
})
# Counted in the scan but not redacted by default: quasi-identifiers, not identifiers.
COUNTED_ONLY_BY_DEFAULT = frozenset({"LOCATION", "NRP", "ORGANIZATION"})
# What the default redacts: every known type but the counted-only ones. DATE_TIME and URL are redacted
# under the precise rules above. (Types a custom analyzer adds are redacted by default too.)
DEFAULT_REDACT_ENTITIES = frozenset(KNOWN_ENTITY_TYPES - COUNTED_ONLY_BY_DEFAULT)
# Types whose spans are checked by a precise rule unless redact_entities="all".
PRECISE_RULES = ("DATE_TIME", "URL")


def placeholder_types(found: Iterable[str] = ()) -> frozenset[str]:
    """The entity types a ``<TYPE>`` placeholder can name: the known ones and the types a scan ``found`` (a
    custom analyzer's). Anything else in angle brackets is not a placeholder (an HTML tag such as ``<B>``)."""
    return KNOWN_ENTITY_TYPES | COUNTED_ONLY_BY_DEFAULT | frozenset(found)


REDACT_ALL = "all"
REDACT_DEFAULT = "default"


@dataclass(frozen=True)
class RedactionPolicy:
    """What :func:`redaction_spans` keeps: a normalised ``redact_entities`` value."""

    entities: frozenset[str]  # the types named (or the default set)
    everything: bool = False  # "all": every span the scan found, no precise rules
    custom_types: bool = False  # the default: also types outside KNOWN_ENTITY_TYPES (a custom analyzer's)

    def redacts(self, entity_type: str) -> bool:
        return (self.everything or entity_type in self.entities
                or (self.custom_types and entity_type not in KNOWN_ENTITY_TYPES
                    and entity_type not in COUNTED_ONLY_BY_DEFAULT))

    def describe(self) -> str | list[str]:
        """``"all"``, ``"default"`` or the sorted list of types (JSON-safe, for reports and saved settings)."""
        if self.everything:
            return REDACT_ALL
        if self.custom_types and self.entities == DEFAULT_REDACT_ENTITIES:
            return REDACT_DEFAULT
        return sorted(self.entities)


def redaction_policy(entities=None) -> RedactionPolicy:
    """Normalise a ``redact_entities`` value without checking the names (see :func:`check_redact_entities`).

    ``None`` or ``"default"``: the default set. ``"all"``: every span the scan found, vague dates and bare
    domains included. A list (or a comma-separated string) of entity types: those, DATE_TIME and URL
    under their precise rules; ``"default"`` in the list stands for the default set ("default,LOCATION").
    Names are case-insensitive.
    """
    if isinstance(entities, RedactionPolicy):
        return entities
    if entities is None:
        names = [REDACT_DEFAULT]
    elif isinstance(entities, str):
        names = entities.split(",")
    elif isinstance(entities, Iterable):
        names = list(entities)
    else:
        raise ConfigError(f"redact_entities: expected None, 'all' or a list of entity types, got "
                          f"{type(entities).__name__}.")
    if not all(isinstance(name, str) for name in names):
        raise ConfigError(f"redact_entities: entity types are strings, got {names!r}.")
    names = [name.strip().upper() for name in names]
    if "" in names and len(names) > 1:
        raise ConfigError(f"redact_entities: empty entity type in {entities!r}; use e.g. 'PERSON,EMAIL_ADDRESS'.")
    names = [name for name in names if name]
    if REDACT_ALL.upper() in names:
        if len(names) > 1:
            raise ConfigError(f"redact_entities: 'all' stands alone (it redacts every type), got {entities!r}.")
        return RedactionPolicy(frozenset(), everything=True)
    default = REDACT_DEFAULT.upper() in names
    chosen = frozenset(n for n in names if n != REDACT_DEFAULT.upper())
    return RedactionPolicy(chosen | (DEFAULT_REDACT_ENTITIES if default else frozenset()), custom_types=default)


def check_redact_entities(entities=None, *, analyzer=None, known: Iterable[str] = ()) -> RedactionPolicy:
    """:func:`redaction_policy`, and a :class:`ConfigError` listing the valid names for an unknown type.

    Valid: :data:`KNOWN_ENTITY_TYPES`, ORGANIZATION, the types ``analyzer`` (a presidio AnalyzerEngine)
    supports and ``known``.
    """
    policy = redaction_policy(entities)
    valid = set(KNOWN_ENTITY_TYPES) | COUNTED_ONLY_BY_DEFAULT | set(known)
    if analyzer is not None and hasattr(analyzer, "get_supported_entities"):
        valid |= set(analyzer.get_supported_entities(LANGUAGE))
    unknown = sorted(policy.entities - valid)
    if unknown:
        raise ConfigError(
            f"redact_entities: unknown entity type(s) {', '.join(unknown)}. Valid: {', '.join(sorted(valid))}; "
            f"or 'all' (every type the scan finds), or 'default' (default: {', '.join(sorted(DEFAULT_REDACT_ENTITIES))}"
            f"; {', '.join(PRECISE_RULES)} by their precise rules).")
    return policy


# --------------------------------------------------------------------------------------------------
# Specific dates
# --------------------------------------------------------------------------------------------------

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_ORDINAL = r"(?:st|nd|rd|th)"
_YEAR = r"(?:1[6-9]\d\d|2[01]\d\d)"  # 1600-2199
_NUMERIC_MONTH = r"(?:0?[1-9]|1[0-2])"
_NOT_DIGIT_AFTER = r"(?![\d])"
_SPECIFIC_DATE = re.compile("|".join([
    # 2021-03-04, 2021/3/4, 2021.03.04
    rf"(?<!\d){_YEAR}([-/.]){_NUMERIC_MONTH}\1{_DAY}{_NOT_DIGIT_AFTER}",
    # 03/04/2021, 3-4-21, 4.3.2021 (day and month in either order; with dots only a 4-digit year, as
    # "1.2.10" is a version number)
    rf"(?<![\d.]){_DAY}([-/]){_DAY}\2(?:{_YEAR}|\d\d){_NOT_DIGIT_AFTER}(?![./]\d)",
    rf"(?<![\d.]){_DAY}\.{_DAY}\.{_YEAR}{_NOT_DIGIT_AFTER}(?!\.\d)",
    # 04/2021 (month and year)
    rf"(?<![\d/.]){_NUMERIC_MONTH}[/-]{_YEAR}{_NOT_DIGIT_AFTER}",
    # March 3, Mar. 3rd, July 2nd 2021 ("may" needs a capital or an ordinal: "you may 2x", "size 4 may")
    rf"\b(?i:{_MONTH})\s+{_DAY}(?i:{_ORDINAL})?\b",
    rf"\bMay\s+{_DAY}(?i:{_ORDINAL})?\b",
    rf"\b(?i:may)\s+{_DAY}(?i:{_ORDINAL})\b",
    # 3 March, 3rd of March, 2nd of may
    rf"\b{_DAY}(?i:{_ORDINAL})?\s+(?i:of\s+)?(?i:{_MONTH})(?![A-Za-z])",
    rf"\b{_DAY}(?i:{_ORDINAL})?\s+(?i:of\s+)May\b|\b{_DAY}(?i:{_ORDINAL})\s+(?i:of\s+)?(?i:may)\b",
    # March 2021, Aug 2010, May of 2019, march '21
    rf"\b(?i:{_MONTH}|may),?\s+(?i:of\s+)?(?:{_YEAR}|'\d\d){_NOT_DIGIT_AFTER}",
]))


def specific_dates(text: str) -> list[tuple[int, int]]:
    """(start, end) of the specific dates in ``text``: day and month, month and year, or a whole
    numeric date. A bare year, weekday, time, duration or relative time is not one."""
    return [m.span() for m in _SPECIFIC_DATE.finditer(text)]


def is_specific_date(text: str) -> bool:
    """Whether ``text`` holds a specific date ("March 3, 2021", "03/04/2021"; not "3 weeks", "summer")."""
    return _SPECIFIC_DATE.search(text) is not None


# --------------------------------------------------------------------------------------------------
# URLs with a scheme or www.
# --------------------------------------------------------------------------------------------------

_URL_END = r"[^\s<>\"'`.,;:!?)\]}]"
URL_WITH_SCHEME = re.compile(
    rf"(?i)(?<![\w+.-])(?:(?:https?|s?ftp)://|www\d{{0,3}}\.)[^\s<>\"'`]*{_URL_END}")


def linked_urls(text: str) -> list[tuple[int, int]]:
    """(start, end) of the URLs in ``text`` that have a scheme (http://, https://, ftp://) or start
    with www. (trailing punctuation left out)."""
    return [m.span() for m in URL_WITH_SCHEME.finditer(text)]


# --------------------------------------------------------------------------------------------------
# Applying the rules
# --------------------------------------------------------------------------------------------------


def _overlapping(span, extents: Sequence[tuple[int, int]]):
    return [(a, b) for a, b in extents if a < span.end and span.start < b]


def redaction_spans(text: str, spans: Iterable, entities=None) -> list:
    """The spans of ``text`` to redact under ``redact_entities=entities`` (see :func:`redaction_policy`).

    A DATE_TIME span is kept when it overlaps a specific date, a URL span when it overlaps a URL with a
    scheme or www.; either is widened to the whole date or URL ("2010" in "Aug 2010", presidio's
    "WWW.Sh" in "WWW.Shop.example"), so no fragment of it is left beside the placeholder.
    """
    policy = redaction_policy(entities)
    kept, dates, urls = [], None, None
    for span in spans:
        if not policy.redacts(span.entity_type):
            continue
        if policy.everything or span.entity_type not in PRECISE_RULES:
            kept.append(span)
            continue
        if span.entity_type == "DATE_TIME":
            dates = specific_dates(text) if dates is None else dates
            extents = _overlapping(span, dates)
        else:
            urls = linked_urls(text) if urls is None else urls
            extents = _overlapping(span, urls)
        if extents:
            start = min([span.start] + [a for a, _ in extents])
            end = max([span.end] + [b for _, b in extents])
            kept.append(PiiSpan(start, end, span.entity_type, span.score))
    return kept


def redaction_counts(df, scan, entities=None, *, enabled: bool = True) -> dict:
    """Per text column and entity type, how many spans of ``scan`` are redacted and how many only
    counted: ``{"redacted": {column: {type: n}}, "counted_only": {column: {type: n}}}``.
    ``enabled=False`` (``redact_pii=False``): nothing is redacted."""
    policy = redaction_policy(entities)
    redacted, counted = {}, {}
    for column in scan.text_columns:
        done, left = Counter(), Counter()
        for text, spans in zip(df[column].tolist(), scan.spans[column]):
            if not spans or not isinstance(text, str):
                continue
            kept = Counter(s.entity_type for s in redaction_spans(text, spans, policy)) if enabled else Counter()
            total = Counter(s.entity_type for s in spans)
            for entity, n in total.items():
                done[entity] += kept[entity]
                left[entity] += n - kept[entity]
        redacted[column] = {e: n for e, n in done.most_common() if n}
        counted[column] = {e: n for e, n in left.most_common() if n}
    return {"redacted": redacted, "counted_only": counted}


__all__ = ["COUNTED_ONLY_BY_DEFAULT", "DEFAULT_REDACT_ENTITIES", "KNOWN_ENTITY_TYPES", "RedactionPolicy",
           "check_redact_entities", "is_specific_date", "linked_urls", "redaction_counts", "redaction_policy",
           "redaction_spans", "specific_dates"]

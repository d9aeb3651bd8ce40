"""Which columns are text (:func:`detect_text_columns`), which are PII themselves
(:func:`detect_structured_pii`)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import pandas as pd

from .constants import DEFAULT_SCORE_THRESHOLD
from .results import PiiSpan, StructuredPiiColumn
from .texts import analyze_texts

TEXT_MIN_MEAN_WORDS = 3.0
TEXT_MIN_DISTINCT_SHARE = 0.5


def string_values(series: pd.Series) -> pd.Series:
    """Non-missing values of a column that holds strings (empty Series for any other column)."""
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return series.iloc[:0]
    values = series.dropna()
    return values[values.map(lambda v: isinstance(v, str))]


def detect_text_columns(df: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Columns holding free text, by this rule:

    a column of strings (object or string dtype) whose non-missing values average at least
    ``TEXT_MIN_MEAN_WORDS`` (3) whitespace-separated words, and of which at least
    ``TEXT_MIN_DISTINCT_SHARE`` (half) are distinct. Categories ("Dresses") are too short, repeated
    sentences ("n/a - see above") too uniform. Columns in ``exclude`` (e.g. structured PII) are skipped.
    Pass ``columns=`` to :func:`scan_pii` to choose yourself.
    """
    excluded = set(exclude)
    chosen = []
    for column in df.columns:
        if column in excluded:
            continue
        values = string_values(df[column])
        if values.empty:
            continue
        mean_words = values.map(lambda v: len(v.split())).mean()
        distinct_share = values.nunique() / len(values)
        if mean_words >= TEXT_MIN_MEAN_WORDS and distinct_share >= TEXT_MIN_DISTINCT_SHARE:
            chosen.append(column)
    return chosen


# Column-name words that suggest what a column holds. A name alone never decides: values must agree.
_NAME_HINTS = {
    "PERSON": {"name", "fullname", "firstname", "lastname", "surname", "forename", "givenname",
               "customer", "patient", "person", "contact", "owner", "employee", "author"},
    "EMAIL_ADDRESS": {"email", "mail", "emailaddress"},
    "PHONE_NUMBER": {"phone", "telephone", "tel", "mobile", "cell", "fax", "phonenumber"},
    "LOCATION": {"address", "street", "addr", "streetaddress", "homeaddress"},
    "ID": {"id", "uuid", "guid", "identifier", "ssn", "account", "accountnumber", "passport",
           "license", "licence", "iban", "mrn", "membership", "member"},
}
# What a structured PII column may hold. Dates, nationalities and places (a "city" column) are
# quasi-identifiers that the tabular stage models like other columns; a LOCATION column needs a name
# that says address.
STRUCTURED_ENTITY_TYPES = frozenset({
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "US_ITIN",
    "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE", "UK_NHS", "MEDICAL_LICENSE", "IP_ADDRESS",
    "MAC_ADDRESS", "CRYPTO", "UUID", "URL",
})
# Entity types a structured column is reported under another name: the type its column has always had.
_STRUCTURED_ALIASES = {"STREET_ADDRESS": "LOCATION"}
VALUE_MATCH_SHARE = 0.6  # share of sampled values that must be one entity, when the name says nothing
HINTED_VALUE_MATCH_SHARE = 0.3  # ... when the column name suggests that entity
CELL_COVERAGE = 0.7  # a value "is" an entity when one span covers this share of its characters
ID_DISTINCT_SHARE = 0.95
STRUCTURED_SAMPLE = 200


def _name_words(column: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(column))
    words = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]
    return set(words) | {"".join(words)}


def _hinted_entities(column: str) -> set[str]:
    words = _name_words(column)
    return {entity for entity, hints in _NAME_HINTS.items() if words & hints}


def _dominant_entity(values: Sequence[str], spans: Sequence[Sequence[PiiSpan]],
                     hinted: set[str]) -> tuple[str | None, float]:
    """The entity that most values are, and the share of values that are it.

    A value is an entity when one span of it covers most of the value; for an entity the column name
    hints at (an "address" column), any span of it in the value is enough. A street address counts as
    LOCATION here, so an address column is a LOCATION column whichever recognizer found its values.
    """
    votes: Counter = Counter()
    for value, value_spans in zip(values, spans):
        length = len(value.strip()) or 1
        matching = {_STRUCTURED_ALIASES.get(s.entity_type, s.entity_type) for s in value_spans
                    if _STRUCTURED_ALIASES.get(s.entity_type, s.entity_type) in hinted
                    or (s.end - s.start) / length >= CELL_COVERAGE}
        votes.update(matching)
    if not votes:
        return None, 0.0
    entity, count = votes.most_common(1)[0]
    return entity, count / len(values)


def detect_structured_pii(df: pd.DataFrame, *, analyzer=None, candidates: Iterable[str] | None = None,
                          score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                          n_jobs: int | None = None) -> dict[str, StructuredPiiColumn]:
    """Columns whose values are PII themselves, by values and column names.

    - By values: a sample of up to 200 distinct values is analysed; when one entity type covers at
      least 70% of the characters of at least 60% of them, the column holds that type. When the column
      name hints at a type ("email", "phone", "customer name", "address"), 30% of the values holding a
      span of that type is enough.
    - Only names, emails, phone numbers, account and card numbers and other identifiers count
      (:data:`STRUCTURED_ENTITY_TYPES`); a place counts only in a column named like an address. Dates
      and places are quasi-identifiers the tabular stage models instead.
    - Record ids: a column named like an id ("customer_id", "ssn", "account") whose non-missing values
      are at least 95% distinct is an ``ID`` column, whatever its dtype.
    """
    columns = list(df.columns) if candidates is None else list(candidates)
    sampled: dict[str, list[str]] = {}
    for column in columns:
        values = string_values(df[column]).drop_duplicates()
        if len(values) > STRUCTURED_SAMPLE:
            values = values.sample(STRUCTURED_SAMPLE, random_state=0)
        sampled[column] = list(values)
    all_values = [v for values in sampled.values() for v in values]
    all_spans = analyze_texts(all_values, analyzer=analyzer, score_threshold=score_threshold,
                              n_jobs=n_jobs) if all_values else []
    spans_of = dict(zip(all_values, all_spans))

    found: dict[str, StructuredPiiColumn] = {}
    for column in columns:
        hinted = _hinted_entities(column)
        values = sampled[column]
        if values:
            entity, share = _dominant_entity(values, [spans_of[v] for v in values], hinted)
            if entity not in STRUCTURED_ENTITY_TYPES and entity not in hinted:
                entity = None
            needed = HINTED_VALUE_MATCH_SHARE if entity in hinted else VALUE_MATCH_SHARE
            if entity is not None and share >= needed:
                reason = "name and values" if entity in hinted else "values"
                found[column] = StructuredPiiColumn(column, entity, share, reason)
                continue
        if "ID" in hinted:
            present = df[column].dropna()
            if len(present) and present.astype(str).nunique() / len(present) >= ID_DISTINCT_SHARE:
                found[column] = StructuredPiiColumn(column, "ID", 1.0, "name and unique values")
    return found

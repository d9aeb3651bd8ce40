"""Replacing PII spans: by typed placeholders (:func:`redact`) or by Faker surrogates (:class:`Surrogates`)."""

from __future__ import annotations

import re
from typing import Collection, Iterable

from ..errors import ConfigError
from .results import PiiSpan

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)>")


def placeholder(entity_type: str) -> str:
    return f"<{entity_type}>"


def resolve_overlaps(spans: Iterable[PiiSpan]) -> list[PiiSpan]:
    """Non-overlapping spans, sorted by start: higher score wins, then the longer span."""
    chosen: list[PiiSpan] = []
    for span in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if span.end > span.start and all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def redact(text: str, spans: Iterable[PiiSpan]) -> str:
    """``text`` with each PII span replaced by a typed placeholder such as ``<PERSON>``."""
    return _replace_spans(text, spans, lambda span, original: placeholder(span.entity_type))


def _replace_spans(text: str, spans: Iterable[PiiSpan], replacement) -> str:
    pieces, cursor = [], 0
    for span in resolve_overlaps(spans):
        pieces.append(text[cursor:span.start])
        pieces.append(replacement(span, text[span.start:span.end]))
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)


# Faker provider per entity type; anything else gets a random code of letters and digits.
_FAKER_PROVIDERS = {
    "PERSON": "name",
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone_number",
    "LOCATION": "city",
    "STREET_ADDRESS": "street_address",
    "ORGANIZATION": "company",
    "DATE_TIME": "date",
    "CREDIT_CARD": "credit_card_number",
    "IBAN_CODE": "iban",
    "IP_ADDRESS": "ipv4",
    "URL": "url",
    "US_SSN": "ssn",
    "NRP": "country",
    "US_BANK_NUMBER": "bban",
    "UUID": "uuid4",
    "MAC_ADDRESS": "mac_address",
}


class Surrogates:
    """Faker values that stand in for PII, consistent within one instance.

    The same original value (per entity type, compared case-insensitively) always gets the same
    surrogate, so a customer named in a name column and again inside the text stays one person. A
    surrogate is never equal to the value it replaces.
    """

    def __init__(self, locale: str = "en_US", seed: int | None = None):
        from faker import Faker

        try:
            self._faker = Faker(locale)
        except AttributeError as exc:  # Faker raises AttributeError for unknown locales
            raise ConfigError(f"locale: Faker has no locale {locale!r}; try 'en_US' or 'de_DE'.") from exc
        if seed is not None:
            self._faker.seed_instance(seed)
        self._by_original: dict[tuple[str, str], str] = {}

    def new_value(self, entity_type: str, avoid: str | None = None) -> str:
        provider = _FAKER_PROVIDERS.get(entity_type)
        for _ in range(20):
            value = str(getattr(self._faker, provider)()) if provider else self._faker.bothify("??-#######").upper()
            if avoid is None or value.casefold() != avoid.casefold():
                return value
        return value + "-" + self._faker.bothify("##")

    def for_original(self, entity_type: str, original: str) -> str:
        key = (entity_type, original.strip().casefold())
        if key not in self._by_original:
            self._by_original[key] = self.new_value(entity_type, avoid=original)
        return self._by_original[key]

    def replace_spans(self, text: str, spans: Iterable[PiiSpan]) -> str:
        """``text`` with each PII span replaced by the surrogate of its original value."""
        return _replace_spans(text, spans, lambda span, original: self.for_original(span.entity_type, original))

    def fill_placeholders(self, text: str, known: dict[str, str] | None = None,
                          types: Collection[str] | None = None) -> str:
        """Replace ``<TYPE>`` placeholders by surrogates.

        ``known`` maps an entity type to the value this row already has for it (e.g. the row's
        synthetic customer name), which every placeholder of that type takes; other placeholders get a
        fresh value each. ``types``: only these are placeholders (None: any ``<TYPE>``); the rest, such as
        an upper-case HTML tag ``<I>`` a model wrote, stay as written instead of becoming a random code.
        """
        known = known or {}

        def fill(m: re.Match) -> str:
            if types is not None and m.group(1) not in types:
                return m.group(0)
            return known.get(m.group(1)) or self.new_value(m.group(1))

        return PLACEHOLDER.sub(fill, text)

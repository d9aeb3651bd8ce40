"""Phone numbers: python-phonenumbers' matches that leave other entities alone (LibPhoneRecognizer) and
digit groups in the formats of many countries (PhoneShapeRecognizer)."""

from __future__ import annotations

import re
from typing import Optional

import phonenumbers
from presidio_analyzer import Pattern, PatternRecognizer
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

from ..constants import PHONE_MIN_DIGITS
from .context import boost_score, context_word, digits_of

# Digit entities that are not phone numbers: a phone match inside one of them (as another recognizer
# found it) is dropped.
_NOT_PHONE_ENTITIES = frozenset({"CREDIT_CARD", "IP_ADDRESS", "US_SSN", "IBAN_CODE"})
PHONE_CONTEXT = ("phone", "telephone", "mobile", "cell", "cellphone", "fax", "call", "contact", "reach",
                 "dial", "sms", "whatsapp", "landline", "hotline", "message", "text")
# Labels written after a number on the same line: "416 60 039 office", "555-1234 (fax)".
_PHONE_LABELS = ("phone", "tel", "mobile", "cell", "fax", "office", "home", "work", "desk")
# Phone words a few words after a number on the same line: "5586235703 is my cell".
_PHONE_WORDS_AFTER = ("phone", "telephone", "mobile", "cell", "cellphone", "fax", "landline", "whatsapp")
# An extension after a number: "x1234", " x 12", " ext. 12", ", extension 12" (patterns are matched
# case-insensitively).
_EXTENSION_PART = r"(?:,?[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?"
_EXTENSION = re.compile(r",?\s*(?:x|ext\.?|extension)\s*\d+$", re.IGNORECASE)
# "00" written for "+" before a country code ("001-555-...", "0044 20 ..."): the international call
# prefix of most of the world.
_DOUBLE_ZERO_PREFIX = re.compile(r"^00(?=[1-9])")
_DATE = re.compile(r"^(?:\d{4}([-./])\d{2}\1\d{2}|\d{2}([-./])\d{2}\2\d{4})(?!\d)")


def _other_number_shape(number: str) -> bool:
    """Whether digit groups read as a date (2012-10-01, 01.10.2012), a US SSN (078-05-1120) or an IPv4
    address (10.20.30.40) rather than a phone number."""
    groups = re.findall(r"\d+", number)
    if _DATE.match(number) or [len(g) for g in groups] == [3, 2, 4]:
        return True
    return "." in number and len(groups) == 4 and all(len(g) <= 3 and int(g) <= 255 for g in groups)


def _drop_other_entities(results: list, others: list) -> list:
    """Results that do not lie within a span another recognizer gave a non-phone digit entity."""
    blocking = [o for o in others if o.entity_type in _NOT_PHONE_ENTITIES and o.score >= 0.4]
    return [r for r in results if not any(o.start <= r.start and r.end <= o.end for o in blocking)]


def _phone_context(results: list, text: str) -> list:
    """Boost phone matches with a phone word before them or a label after them on the same line.

    presidio's context enhancer only looks before a match and ignores stop words such as "call";
    address blocks and signatures put the label after the number ("416 60 039 office").
    """
    for result in results:
        line_end = text.find("\n", result.end)
        line_end = len(text) if line_end < 0 else line_end
        word = (context_word(text, result.start, result.end, PHONE_CONTEXT)
                or context_word(text[:line_end], result.start, result.end, _PHONE_LABELS, before=0, after=1)
                or context_word(text[:line_end], result.start, result.end, _PHONE_WORDS_AFTER, before=0,
                                after=3))
        if word:
            boost_score(result, word)
    return results


class LibPhoneRecognizer(PhoneRecognizer):
    """presidio's PhoneRecognizer (python-phonenumbers) that leaves other entities' numbers alone.

    The stock recognizer also reports card numbers, IPv4 addresses, SSNs, dates and 5-6 digit zip or
    house numbers as phone numbers when some region's numbering plan accepts them. This one drops a
    match that another recognizer found as a card, IP address, SSN or IBAN, a match shaped like a date,
    SSN or IPv4 address, and matches of fewer than 7 digits.

    May over-detect: any other 7-15 digit number that happens to be valid in one of its regions.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "LibPhoneRecognizer")
        super().__init__(**kwargs)

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: D102
        results = super().analyze(text, entities, nlp_artifacts)
        return [r for r in results if len(digits_of(text[r.start:r.end])) >= PHONE_MIN_DIGITS
                and not _other_number_shape(text[r.start:r.end])]

    def enhance_using_context(self, text, raw_recognizer_results, other_raw_recognizer_results,
                              nlp_artifacts, context=None):  # noqa: D102
        results = _drop_other_entities(raw_recognizer_results, other_raw_recognizer_results)
        return _phone_context(results, text)


class PhoneShapeRecognizer(PatternRecognizer):
    """Phone numbers written as digit groups, in the formats of many countries.

    Faker's locales, and people, write phone numbers as "(37) 788-063", "699 956 915", "60-56-85-91",
    "+44 7700 921 916", "+1-903-140-4508x769" or "001-497-476-5823x6940". python-phonenumbers only
    finds the ones that are valid in the regions it is asked about (a North American number needs a
    real area code: Faker's "497" is not one), and trying all ~250 regions per text is slow. Patterns:

    - international, "+" or "00" and a country code ("00" needs a separator after the country code:
      "001-555-..."): kept when python-phonenumbers finds its length possible for that country (score
      0.5, no context needed);
    - North American, 3-3-4 digits with dashes or dots or the area code in parentheses ("497-476-5823",
      "497.476.5823", "(497)476-5823"), area code and exchange starting with 2-9, optionally after
      "1-", "+1-" or "001-": score 0.5, no context needed (this shape is a phone number in text);
    - national, 2-5 groups of 2-6 digits separated by a space, dash or dot, or with an area code in
      parentheses, 7-12 digits in all; and ten digits in a row shaped like a North American number
      ("5586235703"): score 0.3, so they need a context word before them ("phone", "call", "text",
      "mobile", ...), a label after them ("office", "fax") or a phone word within three words after
      them ("... is my cell") to pass the 0.4 threshold.

    Each takes an extension after the number: "x1234", " x 12", " ext. 12", ", extension 12".
    Dates (2012-10-01), SSN-shaped (123-45-6789) and IPv4-shaped (10.1.2.3) groups are rejected.

    May over-detect: other grouped numbers next to a phone word ("call 2020 12 345" in an order text,
    "called about order 5586235703"), and 3-3-4 dashed or dotted numbers that are not phone numbers.
    """

    PATTERNS = [
        Pattern(
            "International phone (+country code)",
            r"(?<![\w+])(?:\+|00(?=[1-9]\d{0,2}[ .-]))\d{1,3}(?:[ .-]?\(0\))?(?:[ .-]?\(?\d{1,5}\)?){1,6}"
            + _EXTENSION_PART + r"(?![ .-]?\d)",
            0.5,
        ),
        Pattern(
            "North American phone (3-3-4)",
            # (?=...): a cheap first-character test; without it this pattern took 6x the others' time.
            r"(?=[+(\d])(?<![\w+.-])(?:(?:\+|00)?1[ .-])?(?:\([2-9]\d{2}\)[ ]?|[2-9]\d{2}[.-])[2-9]\d{2}[.-]\d{4}"
            + _EXTENSION_PART + r"(?![ .-]?\d)",
            0.5,
        ),
        Pattern(
            "National phone (digit groups)",
            r"(?<![\w+.-]|\d[ .-])(?:\(\d{2,5}\)[ ]?|\d{2,6}[ .-])(?:\d{2,6}[ .-]){0,3}\d{2,6}"
            + _EXTENSION_PART + r"(?![ .-]?\d)",
            0.3,
        ),
        Pattern(
            "North American phone (10 digits in a row)",
            r"(?<![\w+.-])[2-9]\d{2}[2-9]\d{6}" + _EXTENSION_PART + r"(?![.,-]?\d)",
            0.3,
        ),
    ]

    def __init__(self, **kwargs):
        kwargs.setdefault("supported_entity", "PHONE_NUMBER")
        kwargs.setdefault("name", "PhoneShapeRecognizer")
        kwargs.setdefault("patterns", [Pattern(p.name, p.regex, p.score) for p in self.PATTERNS])
        # Context words are looked up by enhance_using_context (whole words, before and after); presidio's
        # enhancer would match substrings ("cell" in "excellent", "reach" in "breach") and skip "call".
        kwargs.setdefault("context", [])
        super().__init__(**kwargs)

    def invalidate_result(self, pattern_text: str) -> Optional[bool]:
        """True for numbers that are not phone numbers: impossible lengths, dates, SSNs, IPv4."""
        number = _DOUBLE_ZERO_PREFIX.sub("+", _EXTENSION.sub("", pattern_text))
        if number.startswith("+"):
            try:
                return not phonenumbers.is_possible_number(phonenumbers.parse(number, None))
            except phonenumbers.NumberParseException:
                return True
        return not PHONE_MIN_DIGITS <= len(digits_of(number)) <= 12 or _other_number_shape(number)

    def enhance_using_context(self, text, raw_recognizer_results, other_raw_recognizer_results,
                              nlp_artifacts, context=None):  # noqa: D102
        results = _drop_other_entities(raw_recognizer_results, other_raw_recognizer_results)
        return _phone_context(results, text)

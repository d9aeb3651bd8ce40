"""Recognizers and NER settings that synthtext adds to presidio's defaults (see build_analyzer).

presidio's stock recognizers miss much of what Faker-style test data (and real data) hold: card numbers
outside the few prefixes and lengths its regex knows, phone numbers written the way most of the world
writes them (and North American ones with made-up area codes, "001-" or extensions), street addresses
(presidio has no recognizer for them), and the many names spaCy's small English pipeline does not tag as
PERSON. Each class below fills one of these gaps through presidio's own extension points (Pattern,
validate_result, invalidate_result, context words, enhance_using_context) and says what it may
over-detect.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Iterable, List, Optional

import phonenumbers
from presidio_analyzer import (AnalysisExplanation, EntityRecognizer, Pattern, PatternRecognizer,
                               RecognizerResult)
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, NhsRecognizer, PhoneRecognizer

from .constants import PHONE_MIN_DIGITS, SPACY_PIPELINES
from .redaction import URL_WITH_SCHEME

# presidio's stock setting for spaCy entities (conf/default.yaml); NlpEngineProvider does not apply it
# when given a configuration dict, so we pass it ourselves.
NER_MODEL_CONFIGURATION = {
    "model_to_presidio_entity_mapping": {
        "PER": "PERSON", "PERSON": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
        "GPE": "LOCATION", "LOCATION": "LOCATION", "ORG": "ORGANIZATION", "ORGANIZATION": "ORGANIZATION",
        "DATE": "DATE_TIME", "TIME": "DATE_TIME",
    },
    "low_confidence_score_multiplier": 0.4,
    "low_score_entity_names": [],
    "labels_to_ignore": ["ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL",
                         "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART"],
}

# Names of presidio's predefined recognizers that an extra recognizer below replaces.
REPLACED_RECOGNIZERS: frozenset[str] = frozenset({"CreditCardRecognizer", "PhoneRecognizer", "NhsRecognizer"})


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _boost(result: RecognizerResult, word: str, factor: float = 0.35, floor: float = 0.4) -> None:
    """Raise a score for a context word the way presidio's LemmaContextAwareEnhancer does."""
    result.score = min(EntityRecognizer.MAX_SCORE, max(result.score + factor, floor))
    result.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
    if result.analysis_explanation is not None:
        result.analysis_explanation.set_supportive_context_word(word)
        result.analysis_explanation.set_improved_score(result.score)


_WORD = re.compile(r"[^\W\d_]+")


def _inflections(word: str) -> set[str]:
    return {word, word + "s", word + "es", word + "ed", word + "ing", word.rstrip("e") + "ing"}


def context_word(text: str, start: int, end: int, words: Iterable[str], before: int = 5,
                 after: int = 0) -> Optional[str]:
    """The first of ``words`` (or a plain inflection: calls, called, calling) among the ``before`` words
    preceding ``text[start:end]`` or the ``after`` words following it, compared whole-word and
    case-insensitively.

    presidio's context enhancer only looks before a match, skips spaCy stop words (so "call" never
    counts) and matches substrings (so "cell" is found in "excellent").
    """
    preceding = [w.lower() for w in _WORD.findall(text[max(0, start - 80):start])][-before:] if before else []
    following = [w.lower() for w in _WORD.findall(text[end:end + 80])][:after] if after else []
    nearby = set(preceding) | set(following)
    for word in words:
        if nearby & _inflections(word):
            return word
    return None


# --------------------------------------------------------------------------------------------------
# Payment cards
# --------------------------------------------------------------------------------------------------


class PaymentCardRecognizer(CreditCardRecognizer):
    """Card numbers of any ISO/IEC 7812 length (12-19 digits) from the major networks, Luhn-checked.

    presidio's CreditCardRecognizer only matches 13-17 digits starting with 1, 3, 4, 5[0-5] or 6, so it
    misses 19-digit Visa, 12-digit Maestro, 15-digit JCB (2131, 1800) and Mastercard's 2221-2720 range.
    This pattern takes those prefixes, written plain or grouped by spaces or dashes, and keeps presidio's
    Luhn validation. A 13-16 digit number that passes Luhn scores 1.0 as before; the rarer 12 and 17-19
    digit lengths keep the pattern score (0.3), so they need a context word ("card", "visa", ...) to pass
    the 0.4 threshold.

    May over-detect: one in ten 13-16 digit numbers with these prefixes passes Luhn by chance (order or
    tracking numbers written without context), exactly as the stock recognizer does.
    """

    PATTERNS = [
        Pattern(
            "Payment card, ISO/IEC 7812 (weak)",
            # Not a 13-digit number starting with 1 (a millisecond timestamp), as in presidio's pattern.
            r"\b(?!1\d{12}\b)(?:1800|2131|2[2-7]\d{2}|[13-6]\d{3})(?:[- ]?\d{2,6}){2,4}\b",
            0.3,
        ),
    ]
    COMMON_LENGTHS = range(13, 17)
    ALL_LENGTHS = range(12, 20)

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "PaymentCardRecognizer")
        super().__init__(**kwargs)

    def validate_result(self, pattern_text: str) -> Optional[bool]:
        """True (score 1.0) for a common length that passes Luhn; None (keep 0.3) for a rare length."""
        length = len(_digits(pattern_text))
        if length not in self.ALL_LENGTHS or not super().validate_result(pattern_text):
            return False
        return True if length in self.COMMON_LENGTHS else None


# --------------------------------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------------------------------

# Digit entities that are not phone numbers: a phone match inside one of them (as another recognizer
# found it) is dropped.
_NOT_PHONE_ENTITIES = frozenset({"CREDIT_CARD", "IP_ADDRESS", "US_SSN", "IBAN_CODE"})
_PHONE_CONTEXT = ("phone", "telephone", "mobile", "cell", "cellphone", "fax", "call", "contact", "reach",
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
        word = (context_word(text, result.start, result.end, _PHONE_CONTEXT)
                or context_word(text[:line_end], result.start, result.end, _PHONE_LABELS, before=0, after=1)
                or context_word(text[:line_end], result.start, result.end, _PHONE_WORDS_AFTER, before=0,
                                after=3))
        if word:
            _boost(result, word)
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
        return [r for r in results if len(_digits(text[r.start:r.end])) >= PHONE_MIN_DIGITS
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
        return not PHONE_MIN_DIGITS <= len(_digits(number)) <= 12 or _other_number_shape(number)

    def enhance_using_context(self, text, raw_recognizer_results, other_raw_recognizer_results,
                              nlp_artifacts, context=None):  # noqa: D102
        results = _drop_other_entities(raw_recognizer_results, other_raw_recognizer_results)
        return _phone_context(results, text)


class NhsNumberRecognizer(NhsRecognizer):
    """presidio's UK NHS number recognizer (10 digits, mod-11 checksum) that yields to phone numbers.

    One 10-digit number in eleven passes the NHS checksum, North American phone numbers included
    ("415-555-0199"), and a passing number scores 1.0, above any phone match, so redaction called it
    UK_NHS. The NHS writes its numbers 3-3-4 with spaces ("943 476 5919"). Without an NHS word before it,
    a match is dropped when a phone recognizer found it too (or a longer number around it: "+1 415 555
    0199") and it is written with dashes, follows a phone word ("call me at ...") or the phone match is
    longer. The phone match must pass the default threshold (0.4, or a phone word), so the number stays
    redacted.

    May under-detect: an NHS number written with dashes or after "phone", with no "NHS" nearby, is
    reported as PHONE_NUMBER when it is also a valid phone number.
    """

    NHS_WORDS = ("nhs", "health")

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "NhsNumberRecognizer")
        super().__init__(**kwargs)

    def enhance_using_context(self, text, raw_recognizer_results, other_raw_recognizer_results,
                              nlp_artifacts, context=None):  # noqa: D102
        return [r for r in raw_recognizer_results
                if context_word(text, r.start, r.end, self.NHS_WORDS)
                or not any(self._phone_instead(text, r, o) for o in other_raw_recognizer_results)]

    @staticmethod
    def _phone_instead(text: str, nhs, other) -> bool:
        if other.entity_type != "PHONE_NUMBER" or not (other.start <= nhs.start and nhs.end <= other.end):
            return False
        phone_word = context_word(text, other.start, other.end, _PHONE_CONTEXT) is not None
        longer = (other.start, other.end) != (nhs.start, nhs.end)
        return (other.score >= 0.4 or phone_word) and ("-" in text[nhs.start:nhs.end] or phone_word or longer)


# --------------------------------------------------------------------------------------------------
# Street addresses
# --------------------------------------------------------------------------------------------------

# Street types beyond Faker's en_US list (which en_GB and en_CA share), and the usual abbreviations.
_MORE_STREET_SUFFIXES = ("Boulevard", "Close", "Parade", "Centre", "Esplanade", "Quay", "Rise", "Gate")
_STREET_ABBREVIATIONS = ("St", "Ave", "Av", "Rd", "Blvd", "Dr", "Ln", "Ct", "Pl", "Pkwy", "Hwy", "Cir", "Ter",
                         "Trl", "Sq", "Expy", "Fwy")
# Capitalised words that end a street name's run rather than belong to it ("12 Cue The Lonely Island").
_NOT_STREET_NAME_WORDS = ("The", "A", "An", "And", "Or", "Of", "To", "In", "On", "At", "For", "With", "By", "My",
                          "Your", "His", "Her", "Our", "Their", "Is", "Are", "Was", "It", "This", "That", "I")
# A number right after these words is a size or a quantity, not a house number; a year-like one
# (1900-2099) after the time words is a year ("In 2019 Central Park ...").
_NOT_HOUSE_NUMBER_AFTER = ("size", "sizes", "sz", "us", "uk", "eu", "qty", "quantity", "x")
_YEAR_AFTER = ("in", "since", "from", "until", "till", "year", "by", "of", "before", "after")
_YEAR = re.compile(r"(?:19|20)\d\d(?!\d)")


@functools.lru_cache(maxsize=1)
def _street_address_patterns() -> list[Pattern]:
    from faker.providers.address.en_US import Provider as UsAddress

    suffixes = sorted(set(UsAddress.street_suffixes) | set(_MORE_STREET_SUFFIXES), key=len, reverse=True)
    suffix = rf"(?:{'|'.join(suffixes)}|(?:{'|'.join(_STREET_ABBREVIATIONS)})\.?)"
    states = sorted(set(UsAddress.states_abbr) | set(UsAddress.territories_abbr)
                    | set(UsAddress.freely_associated_states_abbr) | set(UsAddress.military_state_abbr)
                    | set(UsAddress.states), key=len, reverse=True)
    state = rf"(?:{'|'.join(states)})"
    stop = "|".join(_NOT_STREET_NAME_WORDS)
    word = rf"(?:(?!(?:{stop})\b)[A-Z][a-z]+(?:['’-][A-Za-z]+)*|\d{{1,3}}(?:st|nd|rd|th)|[NSEW]\.?|NE|NW|SE|SW)"
    secondary = r"(?:,?[ ](?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|Rm|Room)\.?[ ]?#?[A-Z]?\d{1,5}[A-Z]?|[ ]#\d{1,5})"
    city = r"(?:[A-Z][a-z]+(?:['’-][A-Za-z]+)*[ ]){0,2}[A-Z][a-z]+(?:['’-][A-Za-z]+)*"
    zip_code = r"\d{5}(?:-\d{4})?"
    # ", Josephshire, KS 58556", ", New Kevin, OK", ", Springfield, Illinois 62704"
    place = rf"(?:,?[ ]{city},?[ ]{state}\b(?:[ ]{zip_code})?(?!\d))"
    house = r"(?<![\w$€£#.,/:'\"+-])\d{1,6}"
    military = r"(?:\b(?:PSC|Unit|CMR)[ ]\d{3,5},?[ ]Box[ ]\d{3,5}|\b(?:USS|USNS|USNV|USCGC)[ ][A-Z][a-z]+)"
    return [
        Pattern("Street address (number, name, street type)",
                rf"{house}(?:[ ]{word}){{1,4}}[ ]{suffix}(?![\w-]){secondary}?{place}?", 0.85),
        Pattern("Military address (PSC/Unit ... Box, APO/FPO/DPO)",
                rf"{military},?[ ](?:APO|FPO|DPO)[ ]A[AEP][ ]{zip_code}(?!\d)", 0.85),
        Pattern("PO box", rf"\b(?:P\.?[ ]?O\.?|Post[ ]Office)[ ]Box[ ]\d{{1,6}}(?!\d){place}?", 0.6),
    ]


class StreetAddressRecognizer(PatternRecognizer):
    """Street addresses written the US, Canadian or British way, as ``STREET_ADDRESS``.

    presidio has no street-address recognizer, and spaCy tags addresses as LOCATION in pieces
    ("Trevino Valleys" in "4740 Trevino Valleys"), which the default redaction only counts. This one takes
    a house number, one to four capitalised words (or "5th", "N.") and a street type from Faker's list
    or its abbreviation ("Street", "Valleys", "Throughway", "St.", "Blvd"), then an optional "Apt. 954" /
    "Suite 826" / "#12" and an optional ", City, ST 12345" (state or territory abbreviation or name, zip
    optional); military addresses ("PSC 1245, Box 4927, APO AA 01407", "USNS Smith, FPO AE 12345") and
    PO boxes. Matching is case-sensitive. The score (0.85) is spaCy's, so that the whole address, not a
    PERSON piece of it, is redacted.

    Not found: lower-case addresses ("12 main st"), addresses without a house number, and the European
    order "Koskikatu 25" (a word then a number, as in "Level 99"). A number after "size", "qty", ... is
    not a house number, nor is a year after "in", "since", ... ("In 2019 Central Park").

    May over-detect: a number followed by capitalised words ending in a street type that is an ordinary
    word ("10 Mile Run", "3 Times Very Well"): none in the 23,486 clothing reviews and titles, one (a
    band's name, before the stop-word rule) in 5,690 tweets.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("supported_entity", "STREET_ADDRESS")
        kwargs.setdefault("name", "StreetAddressRecognizer")
        kwargs.setdefault("patterns", _street_address_patterns())
        kwargs.setdefault("context", [])
        kwargs.setdefault("global_regex_flags", re.DOTALL | re.MULTILINE)  # case matters: "Main Street"
        super().__init__(**kwargs)

    def enhance_using_context(self, text, raw_recognizer_results, other_raw_recognizer_results,
                              nlp_artifacts, context=None):  # noqa: D102
        return [r for r in raw_recognizer_results if not self._after_non_address_word(text, r.start)]

    @staticmethod
    def _after_non_address_word(text: str, start: int) -> bool:
        """Whether the number at ``start`` follows "size", "qty", ..., or is a year after "in", "since",
        ... (the word right before it)."""
        before = re.search(r"([^\W\d_]+)\W*$", text[max(0, start - 30):start])
        if not text[start].isdigit() or before is None:
            return False
        word = before.group(1).lower()
        return word in _NOT_HOUSE_NUMBER_AFTER or (word in _YEAR_AFTER and _YEAR.match(text, start) is not None)


# --------------------------------------------------------------------------------------------------
# Person names
# --------------------------------------------------------------------------------------------------


def _faker_locale_lists(provider: str, attributes: Iterable[str]) -> set[str]:
    """Case-folded union of the list attributes of Faker's ``provider`` over all its locales."""
    from faker.config import AVAILABLE_LOCALES

    out: set[str] = set()
    for locale in AVAILABLE_LOCALES:
        try:
            cls = importlib.import_module(f"faker.providers.{provider}.{locale}").Provider
        except ImportError:
            continue
        for attribute in attributes:
            values = getattr(cls, attribute, None)
            if isinstance(values, (list, tuple, set, frozenset, dict)):  # dicts are {value: weight}
                out.update(str(v).casefold().strip(". ") for v in values)
    out.discard("")
    return out


@functools.lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names), case-folded, from Faker's person providers over all its locales."""
    first = _faker_locale_lists("person", ("first_names", "first_names_male", "first_names_female",
                                           "first_names_nonbinary"))
    last = _faker_locale_lists("person", ("last_names", "last_names_male", "last_names_female",
                                          "last_names_nonbinary"))
    return frozenset(first), frozenset(last)


@functools.lru_cache(maxsize=1)
def street_words() -> tuple[frozenset[str], frozenset[str]]:
    """(street prefixes, street suffixes) from Faker's address providers over all its locales.

    "Rua", "Via", "Avenida"; "Street", "Terrace", "Gasse": they make "Via Roma" and "Gordon Terrace"
    addresses rather than people. One-letter words and English stop words are left out.
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    prefixes = _faker_locale_lists("address", ("street_prefixes", "street_prefixes_long",
                                               "street_prefixes_short"))
    suffixes = _faker_locale_lists("address", ("street_suffixes", "street_suffixes_long",
                                               "street_suffixes_short"))
    return (frozenset(w for w in prefixes if len(w) > 1 and w not in STOP_WORDS),
            frozenset(w for w in suffixes if len(w) > 1 and w not in STOP_WORDS))


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """English words, case-folded: spaCy's stop words, Faker's English lorem words and the WordNet word
    index that spaCy's English pipelines ship for their lemmatizer (nouns, verbs, adjectives, adverbs;
    ~78,000 words, among them famous names such as "scott" or "lincoln").

    A name that is also an English word ("Grant", "Love", "Scott") needs more evidence to be tagged.
    """
    from faker.providers.lorem.en_US import Provider as EnglishLorem
    from spacy.lang.en.stop_words import STOP_WORDS

    words = {w.casefold() for w in STOP_WORDS} | {w.casefold() for w in EnglishLorem.word_list}
    return frozenset(words | _wordnet_index())


def _wordnet_index() -> set[str]:
    """The lemmatizer's WordNet index from the first installed English pipeline of SPACY_PIPELINES.

    Read with spaCy's Lookups API from the pipeline package; an empty set when none has one (then
    "Love" or "Date" alone may be taken for names).
    """
    import spacy.util
    from spacy.lookups import Lookups

    for pipeline in SPACY_PIPELINES:
        if not spacy.util.is_package(pipeline):
            continue
        for path in spacy.util.get_package_path(pipeline).glob("*/lemmatizer/lookups/lookups.bin"):
            lookups = Lookups().from_disk(path.parent)
            if lookups.has_table("lemma_index"):
                table = lookups.get_table("lemma_index")
                return {w for pos in ("noun", "verb", "adj", "adv") for w in table.get(pos, ())
                        if w.isalpha()}
    return set()


class NameListRecognizer(EntityRecognizer):
    """Person names that spaCy missed or mislabelled, found by Faker's first- and last-name lists.

    spaCy's small English pipeline tags many names as ORG or LOCATION, or not at all ("Todd", "Siiri",
    "Becker", "Johannes Varvio"). This recognizer reads the spaCy tokens presidio already has and looks
    at runs of capitalised words (and middle initials) against the name lists of Faker's ~100 locales
    and an English vocabulary (:func:`english_words`):

    - 0.7, a full name: a first name ... a last name ("Sigrid Nyström"); a first name followed by words
      that are not English ("Steffen Mauer"); non-English words around a middle initial ("Faina D.
      Yefremova");
    - 0.5, a single name that is not an English word ("Derek", "Eklund");
    - 0.3, a single name that is also an English word ("Scott", "White", "Love"), a full name of
      English words only ("Mark Brown"), a lower-cased full name ("patricia desrosiers"): these pass
      the 0.4 threshold only with a context word before them ("name", "mr", "dear", "said", ...) or
      when listed with another name ("Eklund and White", "Mary, Isabel and Jodi").

    It leaves alone what spaCy tagged PERSON, names inside a larger spaCy entity (an organisation
    "Jones, Smith and Davis", a street "Gordon Terrace"), names next to a number or a street word
    ("Via Roma 131", "5638 Aasa 43"), hyphenated compounds ("Fritz-Armstrong"), all-caps words and
    stop words ("Will", "May"); lower-cased single words are never tagged ("I will grant you that").

    May over-detect: capitalised words that are names somewhere in the world (brands, titles, places
    that spaCy does not tag), since the lists hold ~60,000 names; and firm names made of surnames
    ("Owens, Duran and Oneal") when spaCy does not tag them. Faker-generated test data use these very
    lists, so benchmarks built with Faker flatter this recognizer.
    """

    ENTITIES = ["PERSON"]
    FULL_NAME_SCORE = 0.7
    SINGLE_NAME_SCORE = 0.5
    WEAK_SCORE = 0.3
    CONTEXT = ["name", "surname", "mr", "mrs", "ms", "miss", "mister", "dr", "dear", "hi", "hello", "hey",
               "thanks", "regards", "sincerely", "said", "told", "asked", "son", "daughter", "wife",
               "husband", "brother", "sister", "mother", "father", "friend", "kid", "colleague"]
    # spaCy labels under which a span of names may still be a person ("" = no entity).
    RELABEL = frozenset({"", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "WORK_OF_ART", "EVENT"})

    def __init__(self, supported_language: str = "en", context: Optional[List[str]] = None,
                 name: str = "NameListRecognizer"):
        # presidio's own context enhancer matches substrings ("hi" in "this", "dr" in "address") and
        # skips stop words ("name"), so this recognizer looks its context words up itself (see
        # enhance_using_context) and gives presidio's enhancer none.
        super().__init__(supported_entities=list(self.ENTITIES), supported_language=supported_language,
                         context=[], name=name)
        self.context_words = list(context) if context is not None else list(self.CONTEXT)

    def load(self) -> None:  # noqa: D102
        name_lists()
        street_words()
        english_words()

    def analyze(self, text: str, entities: List[str], nlp_artifacts=None) -> List[RecognizerResult]:
        """PERSON spans from the spaCy tokens in ``nlp_artifacts`` (none without a spaCy pipeline)."""
        doc = getattr(nlp_artifacts, "tokens", None) if nlp_artifacts is not None else None
        if not doc or "PERSON" not in entities:
            return []
        results = []
        ents = doc.ents  # built anew on each access: once per text, not once per run
        i = 0
        while i < len(doc):
            run = self._run_from(doc, i)
            if not run:
                i += 1
                continue
            i = run[-1].i + 1
            for span, score in self._names_in(doc, ents, run):
                results.append(self._result(span, score))
        return results

    def enhance_using_context(self, text, raw_recognizer_results, other_raw_recognizer_results,
                              nlp_artifacts, context=None):
        """Boost a name with a context word before it, or listed with another name ("Dale and White").

        Names inside a street address another recognizer found ("North Gina" in "15371 Nicole Mill, North
        Gina, CA 07050") are dropped: a boosted name would outrank the address, which is then redacted
        only in part."""
        addresses = [r for r in other_raw_recognizer_results
                     if r.entity_type == "STREET_ADDRESS" and r.score >= 0.4]
        raw_recognizer_results = [r for r in raw_recognizer_results
                                  if not any(a.start <= r.start and r.end <= a.end for a in addresses)]
        people = [r for r in list(raw_recognizer_results) + list(other_raw_recognizer_results)
                  if r.entity_type == "PERSON" and r.score >= self.SINGLE_NAME_SCORE]
        for result in raw_recognizer_results:
            word = context_word(text, result.start, result.end, self.context_words, before=3)
            if word is None and any(self._listed_with(text, result, other) for other in people):
                word = "(listed with a name)"
            if word:
                _boost(result, word)
        return raw_recognizer_results

    _LIST_SEPARATOR = re.compile(r"\s*(?:,|&|/|and|or|,\s*and|,\s*or)\s*", re.IGNORECASE)

    @classmethod
    def _listed_with(cls, text: str, result, other) -> bool:
        """Whether two spans are neighbours in a list of names: "A, B and C", "A & B"."""
        if other.start >= result.end:
            between = text[result.end:other.start]
        elif other.end <= result.start:
            between = text[other.end:result.start]
        else:
            return False
        return cls._LIST_SEPARATOR.fullmatch(between) is not None

    # Finding runs ------------------------------------------------------------------------------------

    @staticmethod
    def _in_lists(token) -> bool:
        first, last = name_lists()
        key = token.text.casefold()
        return key in first or key in last

    @staticmethod
    def _is_word(doc, i: int) -> bool:
        """A capitalised (or, for names in the lists, lower-case) word that may be part of a name."""
        token = doc[i]
        word = token.text
        if len(word) < 2 or not token.is_alpha or token.is_stop or word.isupper():
            return False
        if not (word.istitle() or word.islower()):
            return False
        # Part of a hyphenated compound ("Fritz-Armstrong", "Jean-Luc"): not a name on its own.
        if i > 0 and doc[i - 1].text == "-" and not doc[i - 1].whitespace_:
            return False
        if not token.whitespace_ and i + 1 < len(doc) and doc[i + 1].text == "-":
            return False
        return word.istitle() or NameListRecognizer._in_lists(token)

    @staticmethod
    def _is_initial(token) -> bool:
        word = token.text.rstrip(".")
        return len(word) == 1 and word.isalpha() and len(token.text) <= 2

    def _run_from(self, doc, i: int) -> list:
        """The longest run of words (and inner initials) from token i, all title- or all lower-case."""
        if not self._is_word(doc, i):
            return []
        lower = doc[i].text.islower()
        run, j = [doc[i]], i + 1
        while j < len(doc) and run[-1].whitespace_ == " " and doc[j].text.islower() == lower:
            if not (self._is_word(doc, j)
                    or (self._is_initial(doc[j]) and j + 1 < len(doc) and self._is_word(doc, j + 1))):
                break
            run.append(doc[j])
            j += 1
        return run

    # Scoring -----------------------------------------------------------------------------------------

    def _names_in(self, doc, ents, run: list) -> list:
        """(tokens, score) of the names in a run: the whole run if it reads as a name, else its sub-runs
        of listed names ("Meet Derek" -> "Derek")."""
        score = self._score(doc, ents, run)
        if score is not None:
            return [(run, score)]
        found, current = [], []
        for token in run + [None]:
            if token is not None and (self._in_lists(token) or (current and self._is_initial(token))):
                current.append(token)
                continue
            while current and self._is_initial(current[-1]):
                current.pop()
            if current and len(current) < len(run):
                score = self._score(doc, ents, current)
                if score is not None:
                    found.append((current, score))
            current = []
        return found

    def _score(self, doc, ents, run: list) -> Optional[float]:
        start, end = run[0].i, run[-1].i + 1
        labels = {token.ent_type_ for token in run}
        if "PERSON" in labels or not labels <= self.RELABEL:
            return None  # spaCy's own PERSON span, or a date, a number, a nationality
        if any(self._larger(e, start, end) for e in ents if e.start < end and start < e.end):
            return None  # part of a larger entity: "Jones, Smith and Davis", "Clarke Avenue"
        if self._near_address(doc, start, end):
            return None
        first, last = name_lists()
        common = english_words()
        words = [token.text.casefold() for token in run if not self._is_initial(token)]
        lower = run[0].text.islower()
        has_initial = len(words) < len(run)
        if len(words) == 1:
            if lower or len(words[0]) < 3 or words[0] not in first and words[0] not in last:
                return None  # lower-case words ("grant"), short ones ("Ah", "Li")
            score = self.WEAK_SCORE if words[0] in common else self.SINGLE_NAME_SCORE
        elif words[-1] in street_words()[1] and words[-1] in common:
            return None  # "Gianni Street", "Countess Close"
        elif words[0] in first and words[-1] in last:
            weak = lower or all(w in common for w in words)  # "Mark Brown", "Sofia Lima"
            score = self.WEAK_SCORE if weak else self.FULL_NAME_SCORE
        elif lower or any(w in common for w in words):
            return None
        elif words[0] in first or has_initial:  # "Steffen Mauer", "Faina D. Yefremova"
            score = self.FULL_NAME_SCORE
        else:
            return None
        return score

    @staticmethod
    def _larger(entity, start: int, end: int) -> bool:
        """Whether a spaCy entity reaches beyond token range [start, end), ignoring spaces and punctuation
        at its edges (spaCy's small model often takes in a line break)."""
        tokens = [t for t in entity if not (t.is_space or t.is_punct)]
        return bool(tokens) and (tokens[0].i < start or tokens[-1].i >= end)

    @staticmethod
    def _near_address(doc, start: int, end: int) -> bool:
        """A number or a street word right before or after the run, or a street prefix in it."""
        prefixes, suffixes = street_words()
        neighbours = [doc[k] for k in (start - 1, end) if 0 <= k < len(doc)]
        for token in neighbours:
            word = token.text.casefold().strip(".")
            if token.like_num or word in prefixes or word in suffixes:
                return True
        return any(doc[k].text.casefold() in prefixes for k in range(start, end))

    def _result(self, span: list, score: float) -> RecognizerResult:
        start, end = span[0].idx, span[-1].idx + len(span[-1].text)
        explanation = AnalysisExplanation(recognizer=self.name, original_score=score,
                                          textual_explanation="Identified as PERSON by Faker's name lists")
        return RecognizerResult("PERSON", start, end, score, analysis_explanation=explanation,
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})


# --------------------------------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------------------------------


class LinkRecognizer(PatternRecognizer):
    """URLs with a scheme (http://, https://, ftp://) or starting with www., whole and in any case.

    presidio's UrlRecognizer needs a top-level domain from its list, so it misses links to hosts such as
    ``https://intranet/x`` or ``https://a.b/c``, and cuts ``WWW.Shop.example`` to ``WWW.Sh``. This
    recognizer takes the whole token (trailing punctuation left out) at a score above presidio's, so
    presidio's fragment of the same link is dropped as a duplicate. Bare domains ("example.org") stay
    with presidio's recognizer. May over-detect: nothing that starts with a scheme or www. is not a link.
    """

    PATTERNS = [Pattern("URL with a scheme or www.", URL_WITH_SCHEME.pattern, 0.65)]

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "LinkRecognizer")
        kwargs.setdefault("supported_entity", "URL")
        kwargs.setdefault("patterns", self.PATTERNS)
        kwargs.setdefault("context", [])
        super().__init__(**kwargs)


def extra_recognizers() -> list:
    """Recognizers added to presidio's predefined ones."""
    return [PaymentCardRecognizer(), LibPhoneRecognizer(), PhoneShapeRecognizer(), NhsNumberRecognizer(),
            StreetAddressRecognizer(), NameListRecognizer(), LinkRecognizer()]

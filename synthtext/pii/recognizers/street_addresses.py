"""Street addresses written the US, Canadian or British way, military addresses and PO boxes
(StreetAddressRecognizer)."""

from __future__ import annotations

import functools
import re

from presidio_analyzer import Pattern, PatternRecognizer

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

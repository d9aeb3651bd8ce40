"""UK NHS numbers that yield to phone numbers (NhsNumberRecognizer)."""

from __future__ import annotations

from presidio_analyzer.predefined_recognizers import NhsRecognizer

from .context import context_word
from .phone_numbers import PHONE_CONTEXT


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
        phone_word = context_word(text, other.start, other.end, PHONE_CONTEXT) is not None
        longer = (other.start, other.end) != (nhs.start, nhs.end)
        return (other.score >= 0.4 or phone_word) and ("-" in text[nhs.start:nhs.end] or phone_word or longer)

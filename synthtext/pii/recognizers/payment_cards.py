"""Payment card numbers of every ISO/IEC 7812 length (PaymentCardRecognizer)."""

from __future__ import annotations

from typing import Optional

from presidio_analyzer import Pattern
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

from .context import digits_of


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
        length = len(digits_of(pattern_text))
        if length not in self.ALL_LENGTHS or not super().validate_result(pattern_text):
            return False
        return True if length in self.COMMON_LENGTHS else None

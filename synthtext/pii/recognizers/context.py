"""Helpers the recognizers share: digits of a match, context words near it, raising its score."""

from __future__ import annotations

import re
from typing import Iterable, Optional

from presidio_analyzer import EntityRecognizer, RecognizerResult


def digits_of(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def boost_score(result: RecognizerResult, word: str, factor: float = 0.35, floor: float = 0.4) -> None:
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

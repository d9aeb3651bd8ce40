"""Analysing many texts fast: :func:`analyze_texts`.

Identical texts are analysed once, spaCy runs over batches, pattern recognizers that cannot fire on a
text are skipped, long texts are cut into overlapping pieces, and the work is shared by forked worker
processes.
"""

from __future__ import annotations

import bisect
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from typing import Iterator, Sequence

from ..errors import ConfigError
from .analyzer import default_analyzer, spacy_on_cpu
from .constants import DEFAULT_SCORE_THRESHOLD, DIGIT, LANGUAGE, PHONE_MIN_DIGITS
from .results import PiiSpan

# Entities that only pattern recognizers produce, with a cheap test a cell must pass for that
# recognizer to possibly match. A cell that fails the test skips the recognizer (a pure speed-up:
# tests/test_pii.py checks the results are identical with and without it).
_ENTITY_PRECONDITIONS = {
    "EMAIL_ADDRESS": lambda text: "@" in text,
    # Every phone recognizer keeps only matches of 7+ digits, except "+country code" numbers.
    "PHONE_NUMBER": lambda text: "+" in text or len(DIGIT.findall(text)) >= PHONE_MIN_DIGITS,
    "CREDIT_CARD": lambda text: _has_digit(text),
    "STREET_ADDRESS": lambda text: _has_digit(text),  # a house number, box number or zip code
    "US_SSN": lambda text: _has_digit(text),
    "US_ITIN": lambda text: _has_digit(text),
    "US_BANK_NUMBER": lambda text: _has_digit(text),
    "US_PASSPORT": lambda text: _has_digit(text),
    "UK_NHS": lambda text: _has_digit(text),
    "IBAN_CODE": lambda text: _has_digit(text),
    "MEDICAL_LICENSE": lambda text: _has_digit(text),
}


def _has_digit(text: str) -> bool:
    return DIGIT.search(text) is not None


def _entities_for(text: str, all_entities: Sequence[str]) -> list[str]:
    return [e for e in all_entities
            if e not in _ENTITY_PRECONDITIONS or _ENTITY_PRECONDITIONS[e](text)]


def _keep_span(text: str, entity_type: str, start: int, end: int) -> bool:
    # spaCy's small pipelines tag numbers and codes as PERSON (presidio #786, #1173, #1352).
    if entity_type == "PERSON":
        return any(ch.isalpha() for ch in text[start:end])
    return True


def _analyze_chunk(analyzer, texts: Sequence[str], score_threshold: float,
                   entities: Sequence[str] | None, skip_impossible: bool) -> list[list[PiiSpan]]:
    all_entities = list(entities) if entities else analyzer.get_supported_entities(LANGUAGE)
    batch_size = 128
    artifacts = analyzer.nlp_engine.process_batch(texts, LANGUAGE, batch_size=batch_size)
    out = []
    for text, nlp_artifacts in artifacts:
        wanted = _entities_for(text, all_entities) if skip_impossible else all_entities
        results = analyzer.analyze(text, language=LANGUAGE, entities=wanted,
                                   nlp_artifacts=nlp_artifacts, score_threshold=score_threshold)
        spans = sorted(
            (PiiSpan(r.start, r.end, r.entity_type, float(r.score)) for r in results
             if _keep_span(text, r.entity_type, r.start, r.end)),
            key=lambda s: (s.start, s.end, s.entity_type))
        out.append(spans)
    return out


# Long texts are analysed in overlapping pieces, which bounds the memory and time one text takes:
# presidio's context enhancer walks all of a text's tokens for each result, and spaCy refuses texts over
# 1,000,000 characters. A text of at most PIECE_CHARS is analysed whole (None: every text, whatever its
# length). Neighbouring pieces overlap by PIECE_OVERLAP_CHARS (at most a quarter of a piece), so an
# entity that a cut splits lies whole in the next piece, with half an overlap of context on both sides.
PIECE_CHARS: int | None = 4000
PIECE_OVERLAP_CHARS = 400
_SENTENCE_BREAK = re.compile(r"(?<=[.!?\n])\s+")
_SPACE = re.compile(r"\s+")


def _cut(text: str, pos: int, lo: int) -> int:
    """Where to cut ``text`` in (lo, pos]: after the last sentence end there, else after the last
    whitespace (so no word is split), else at ``pos`` (a very long word)."""
    window = text[lo:pos]
    for boundary in (_SENTENCE_BREAK, _SPACE):
        ends = [m.end() for m in boundary.finditer(window)]
        if ends:
            return lo + ends[-1]
    return pos


def _piece_bounds(text: str) -> list[tuple[int, int]]:
    """(start, end) of the overlapping pieces a text is analysed in; one piece for a short text."""
    size = PIECE_CHARS
    if size is None or len(text) <= size:
        return [(0, len(text))]
    overlap = min(PIECE_OVERLAP_CHARS, size // 4)
    bounds, start = [], 0
    while start + size < len(text):
        end = _cut(text, start + size, lo=start + size // 2)
        bounds.append((start, end))
        start = _cut(text, end - overlap, lo=end - 2 * overlap)
    bounds.append((start, len(text)))
    return bounds


def _join_pieces(bounds: Sequence[tuple[int, int]], piece_spans: Sequence[list[PiiSpan]]) -> list[PiiSpan]:
    """The spans of a whole text from those of its pieces.

    Each piece keeps the spans that start in its own part of the text, which reaches to the middle of
    the overlap with each neighbour: there a span has half an overlap of text on both sides, so it is not
    a fragment of an entity that a cut split ("John" of "John Smith") and its context words are in the
    piece. What two pieces still both found is merged as presidio merges one text's results
    (``EntityRecognizer.remove_duplicates``: one span of a type inside another with at least its score
    goes).
    """
    if len(bounds) == 1:
        return piece_spans[0]
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    middles = [(next_start + end) // 2 for (_, end), (next_start, _) in zip(bounds, bounds[1:])]
    owned = zip([0] + middles, middles + [bounds[-1][1]])
    results = [RecognizerResult(s.entity_type, s.start + start, s.end + start, s.score)
               for (start, _), spans, (lo, hi) in zip(bounds, piece_spans, owned)
               for s in spans if lo <= s.start + start < hi]
    return sorted((PiiSpan(r.start, r.end, r.entity_type, r.score)
                   for r in EntityRecognizer.remove_duplicates(results)),
                  key=lambda s: (s.start, s.end, s.entity_type))


# Texts analysed together (one spaCy batch, one job for a worker): small enough to balance the workers
# and bound spaCy's memory, which grows with a batch's characters, large enough for spaCy's batching.
CHUNK_TEXTS = 128
CHUNK_CHARS = 100_000


def _chunks(texts: Sequence[str]) -> list[list[str]]:
    """``texts`` in order, in chunks of at most CHUNK_TEXTS texts and CHUNK_CHARS characters (or one
    longer text)."""
    chunks: list[list[str]] = []
    chars = 0
    for text in texts:
        if not chunks or len(chunks[-1]) == CHUNK_TEXTS or chars + len(text) > CHUNK_CHARS:
            chunks.append([])
            chars = 0
        chunks[-1].append(text)
        chars += len(text)
    return chunks


# Set in the parent just before forking workers; children read it instead of unpickling an engine.
_WORKER_ANALYZER = None


def _worker_analyze(args) -> list[list[PiiSpan]]:
    texts, score_threshold, entities, skip_impossible = args
    return _analyze_chunk(_WORKER_ANALYZER, texts, score_threshold, entities, skip_impossible)


def _default_jobs() -> int:
    from ..distributed import default_workers

    return min(default_workers(), 8)  # under torchrun: this process's share of the cores


def _analyze_chunks(analyzer, chunks: list[list[str]], n_jobs: int, *args) -> Iterator[list[list[PiiSpan]]]:
    """The spans of each chunk of texts, in order; forked workers share the chunks when n_jobs > 1."""
    global _WORKER_ANALYZER
    use_processes = (n_jobs > 1 and len(chunks) > 1
                     and "fork" in multiprocessing.get_all_start_methods()
                     and spacy_on_cpu())  # forked children cannot use the parent's CUDA context
    if not use_processes:
        for chunk in chunks:
            yield _analyze_chunk(analyzer, chunk, *args)
        return
    _WORKER_ANALYZER = analyzer
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(n_jobs, len(chunks)), mp_context=context) as pool:
            yield from pool.map(_worker_analyze, [(chunk, *args) for chunk in chunks])
    finally:
        _WORKER_ANALYZER = None


def analyze_texts(texts: Sequence[str], *, analyzer=None, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                  entities: Sequence[str] | None = None, n_jobs: int | None = None,
                  skip_impossible: bool = True, progress=None) -> list[list[PiiSpan]]:
    """Spans for each text, in order. Identical texts are analysed once.

    ``n_jobs`` worker processes (default: the CPU count, at most 8) share the work when there is
    enough of it; workers are forked so they reuse the loaded spaCy pipeline. Texts longer than
    :data:`PIECE_CHARS` are analysed in overlapping pieces. ``progress`` is an optional callable taking
    the number of distinct texts just finished.
    """
    analyzer = analyzer if analyzer is not None else default_analyzer()
    n_jobs = _default_jobs() if n_jobs is None else n_jobs
    if n_jobs < 1:
        raise ConfigError(f"n_jobs: must be at least 1, got {n_jobs}.")
    unique = list(dict.fromkeys(texts))
    bounds = [_piece_bounds(text) for text in unique]
    pieces_of = [[text[start:end] for start, end in b] for text, b in zip(unique, bounds)]
    index = {piece: i for i, piece in enumerate(dict.fromkeys(p for pieces in pieces_of for p in pieces))}
    pieces = list(index)
    # A text is finished when its last piece is: progress counts texts, not pieces.
    finished_at = sorted(max(index[p] for p in text_pieces) for text_pieces in pieces_of)
    chunks = _chunks(pieces)
    found: list[list[PiiSpan]] = []
    for result in _analyze_chunks(analyzer, chunks, n_jobs, score_threshold, entities, skip_impossible):
        before = bisect.bisect_left(finished_at, len(found))
        found.extend(result)
        if progress:
            progress(bisect.bisect_left(finished_at, len(found)) - before)
    by_text = {text: _join_pieces(b, [found[index[p]] for p in text_pieces])
               for text, b, text_pieces in zip(unique, bounds, pieces_of)}
    return [by_text[text] for text in texts]

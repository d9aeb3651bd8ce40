"""Differentially private fine-tuning: THE DP BOUNDARY (the only module that imports opacus).

``train_private(base, examples, privacy, train)`` trains the built-in model (all weights) or
LoRA adapters on a pretrained model with DP-SGD (Opacus) and returns a
:class:`~synthtext.models.TrainedModel` holding the weights and a
:class:`~synthtext.config.PrivacyLedger`.

What the guarantee rests on (and what voids it):

* Privacy unit: one record (one row). Each record is one sequence; never split a row across
  sequences or pack several rows into one.
* Poisson sampling (each record joins each step independently with probability q), as the
  accountant assumes. ``sample_rate``, ``steps`` and ``noise_multiplier`` in the ledger are the
  ones used. Physical batches (memory) only split a logical batch; they do not change q.
* Each record's loss is the mean token loss over *its own* text tokens (prompt and padding
  masked), so a record's gradient never depends on the other records in its batch. Opacus
  (``loss_reduction="mean"``) recovers per-record gradients from the batch-mean loss, clips
  each to ``max_grad_norm``, sums, adds N(0, sigma^2 C^2) noise and divides by the *expected*
  batch size (int(q*n)), never by the random actual one.
* Everything the model saw from the data went through this loop. Token vocabulary, max
  length and model size are fixed settings, not statistics of the data.
* Noise comes from torch's pseudo-random generator (Opacus ``secure_mode`` off): fine against
  everything but floating-point attacks on the sampler/noise; the ledger says ``secure_rng: false``.
* Training with ``PrivacyConfig(epsilon=None)`` is not private; the ledger says so.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import time
import warnings
from typing import Iterator

import torch
from opacus import PrivacyEngine
from opacus.accountants import create_accountant
from opacus.accountants.analysis import gdp
from opacus.utils.batch_memory_manager import BatchMemoryManager
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from . import distributed
from .config import PrivacyConfig, PrivacyLedger, TrainConfig
from .errors import ConfigError, DataError, ModelError, PrivacyBudgetError, option
from .llm import decoder_stack, padded_states, shared_prefix_length
from .models import (BaseModel, ByteTransformerLM, EncodedExamples, FrozenStates, TrainedModel, add_lora,
                     base_fingerprint, cpu_has_native_bf16, layer_index, length_order, sequence_losses)
from .progress import Progress

GRAD_SAMPLE_MODE = "hooks"  # measured faster than ghost clipping for LoRA on an H100 (DESIGN.md)

# ----------------------------------------------------------------------------------------------
# Planning: sample rate, steps, noise multiplier (before touching the model)
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PrivacyPlan:
    """What a run will do, computed from the record count and the configs alone."""

    dp: bool
    n_records: int
    steps: int
    steps_per_epoch: int
    expected_batch_size: float
    sample_rate: float | None = None
    delta: float | None = None
    noise_multiplier: float | None = None
    epsilon: float | None = None
    """Epsilon after ``steps`` steps (accountant's upper bound)."""
    accountant: str | None = None
    stops_early: bool = False
    """Fixed noise multiplier: the budget ends before the configured epochs do."""


@functools.lru_cache(maxsize=256)
def _epsilon(accountant: str, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon of `steps` Poisson-subsampled Gaussian steps (accountant's upper bound); cached."""
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gdp "experimental", rdp "largest alpha" notices
        acc = create_accountant(mechanism=accountant)
        acc.history = [(noise_multiplier, sample_rate, steps)]
        try:
            return float(acc.get_epsilon(delta=delta))
        except ValueError:
            if accountant != "gdp":
                raise
            # opacus' gdp root search is bracketed to [0, 500]: outside it, say which side we are on
            mu = gdp.compute_mu_poisson(steps=steps, noise_multiplier=noise_multiplier, sample_rate=sample_rate)
            return 0.0 if gdp.delta_eps_mu(eps=0.0, mu=mu) <= delta else math.inf


@functools.lru_cache(maxsize=64)
def _calibrate(accountant: str, target_epsilon: float, delta: float, sample_rate: float, steps: int,
               ceiling: float) -> float:
    """Smallest sigma in (0, ceiling] with epsilon <= target, to 0.01 in epsilon; cached.

    The search of opacus' get_noise_multiplier (bisection until the epsilon is within 0.01
    of the target), over our _epsilon, which also copes with gdp's bracketed root search.
    The caller has checked epsilon(ceiling) <= target, so ``hi`` is always within budget.
    """
    lo, hi = 0.0, ceiling
    eps_hi = _epsilon(accountant, hi, sample_rate, steps, delta)
    while target_epsilon - eps_hi > 0.01 and hi - lo > 1e-6:
        mid = (lo + hi) / 2
        eps_mid = _epsilon(accountant, mid, sample_rate, steps, delta)
        if eps_mid <= target_epsilon:
            hi, eps_hi = mid, eps_mid
        else:
            lo = mid
    return hi


def plan_privacy(n_records: int, privacy: PrivacyConfig, train: TrainConfig, *,
                 privacy_unit: str = "row") -> PrivacyPlan:
    """Sample rate, steps and noise multiplier for ``n_records`` records, or a clear refusal.

    The sample rate is q = 1/ceil(n / batch_size) (Opacus: one over the number of batches of
    the plain loader), steps per epoch int(1/q), and sigma the smallest the accountant allows
    for the target epsilon after all steps (so the spent epsilon never exceeds the target).

    ``privacy_unit``: what one record is ("row", or the unit column's name): for the messages only.

    Raises:
        PrivacyBudgetError: too few records, or the noise needed is absurd.
        ConfigError: delta not below 1/n.
    """
    records = "rows" if privacy_unit == "row" else f"units (distinct {privacy_unit!r} values)"
    if n_records < 1:
        raise DataError("no records to train on.")
    batches = math.ceil(n_records / train.batch_size)
    if not privacy.dp:
        # shuffled full batches; the remainder is dropped: a last step on a handful of rows moves the
        # model as far as a full one (Adam) towards those few rows (measured: a 2-row last batch made
        # 73% of the texts "<missing>")
        batches = max(1, n_records // train.batch_size)
        return PrivacyPlan(
            dp=False, n_records=n_records, steps=train.epochs * batches, steps_per_epoch=batches,
            expected_batch_size=float(min(train.batch_size, n_records)),
        )
    if n_records < privacy.min_records:
        raise PrivacyBudgetError(
            f"{n_records} {records} is too few for differentially private training (at least {privacy.min_records}); "
            f"at epsilon={privacy.epsilon:g} the noise would drown what the model learns. Use more {records} "
            f"(DP text models typically need 10,000+ for useful text), set {option('epsilon=None', '--epsilon none')}"
            " to train without DP (no privacy guarantee), or lower "
            f"{option('PrivacyConfig.min_records', '--min-records')} if you accept a noisy model."
        )
    delta = privacy.resolve_delta(n_records)
    q = 1.0 / batches
    steps_per_epoch = int(1 / q)  # exactly what opacus' UniformWithReplacementSampler yields
    expected = q * n_records
    if expected < 1 - 1e-9:
        raise PrivacyBudgetError(f"expected batch of {expected:.3g} records (< 1): raise batch_size.")
    steps = train.epochs * steps_per_epoch
    acc, target = privacy.accountant, float(privacy.epsilon)
    stops_early = False
    if privacy.noise_multiplier is None:
        ceiling = privacy.max_noise_multiplier
        if _epsilon(acc, ceiling, q, steps, delta) > target:
            raise PrivacyBudgetError(
                f"epsilon={target:g} (delta={delta:.2g}) over {n_records} {records} needs a noise multiplier above "
                f"{ceiling:g} (batch_size={train.batch_size}, sample rate {q:.4g}, {train.epochs} epochs = {steps} "
                f"steps): the model would learn only noise. Use more {records}, a larger epsilon, a larger batch_size or "
                "fewer epochs."
            )
        sigma = _calibrate(acc, target, delta, q, steps, ceiling)
    else:
        sigma = float(privacy.noise_multiplier)
        if train.stop_at_budget and _epsilon(acc, sigma, q, steps, delta) > target:
            lo, hi = 0, steps  # largest step count within budget (epsilon grows with steps)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if _epsilon(acc, sigma, q, mid, delta) <= target else (lo, mid - 1)
            if lo == 0:
                raise PrivacyBudgetError(
                    f"noise_multiplier={sigma:g} spends more than epsilon={target:g} (delta={delta:.2g}) in a "
                    f"single step at sample rate {q:.4g}: raise noise_multiplier or leave it None to calibrate it."
                )
            steps, stops_early = lo, True
    eps = _epsilon(acc, sigma, q, steps, delta)
    return PrivacyPlan(
        dp=True, n_records=n_records, steps=steps, steps_per_epoch=steps_per_epoch, expected_batch_size=expected,
        sample_rate=q, delta=delta, noise_multiplier=sigma, epsilon=eps, accountant=acc, stops_early=stops_early,
    )


# ----------------------------------------------------------------------------------------------
# Data and loss
# ----------------------------------------------------------------------------------------------


class _Records(Dataset):
    """One item per record: (token ids, prompt length, record index), all tensors (opacus needs shapes).

    ``order`` lays the records out in another order (item i is record ``order[i]``).
    """

    def __init__(self, examples: EncodedExamples, order: list[int] | None = None):
        self.examples = examples
        self.order = list(range(len(examples))) if order is None else list(order)
        if sorted(self.order) != list(range(len(examples))):
            raise ValueError("order must be a permutation of the records")

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int):
        j = self.order[i]
        return torch.tensor(self.examples.input_ids[j]), torch.tensor(self.examples.prompt_lengths[j]), torch.tensor(j)


PAD_MULTIPLE = 32
"""Training batches are padded to a multiple of this many tokens (up to max_length). With
length-sorted physical batches nearly every batch would otherwise have its own width, and the CPU
kernels (oneDNN) cache per shape: peak memory grew from 1.2 to 2.1 GiB over two epochs of the
500-review example in bf16. Multiples of 32 keep ~30 distinct shapes for ~1% more tokens."""


class _PadCollate:
    """Right-pads a batch: (input_ids, attention_mask, target_mask), each (B, L), and the (B,) record
    indices when the items carry them.

    L is the longest record, rounded up to a multiple of ``multiple`` but never past ``limit``.
    """

    def __init__(self, pad_id: int, multiple: int = 1, limit: int | None = None):
        self.pad_id, self.multiple, self.limit = pad_id, multiple, limit

    def __call__(self, items):
        if not items:  # this rank's share of a Poisson batch was empty (several processes)
            empty = torch.zeros((0, 0), dtype=torch.long)
            return empty, empty.clone(), empty.clone(), torch.zeros((0,), dtype=torch.long)
        width = max(len(item[0]) for item in items)
        rounded = -(-width // self.multiple) * self.multiple
        width = max(width, min(rounded, self.limit)) if self.limit is not None else rounded
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        attn = torch.zeros((len(items), width), dtype=torch.long)
        target = torch.zeros((len(items), width), dtype=torch.long)
        for row, (x, plen, *_) in enumerate(items):
            ids[row, : len(x)] = x
            attn[row, : len(x)] = 1
            target[row, int(plen) : len(x)] = 1  # text tokens + EOS; not BOS/prompt, not padding
        if len(items[0]) > 2:  # record indices: where the cached frozen-layer states of each row are
            return ids, attn, target, torch.stack([item[2] for item in items])
        return ids, attn, target


def model_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Forward with explicit (B, L) position ids (right padding); returns logits."""
    b, t = input_ids.shape
    position_ids = torch.arange(t, device=input_ids.device).expand(b, t)
    kwargs = {} if isinstance(model, ByteTransformerLM) else {"use_cache": False}
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
    return out if isinstance(out, torch.Tensor) else out.logits


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but no CUDA GPU is available; use device='auto' or 'cpu'.")
    return dev


def _use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def training_settings(base: BaseModel, train: TrainConfig, plan: PrivacyPlan) -> dict:
    """What :func:`train_private` will use for ``base`` under ``plan``, decided from the configs alone:
    the device, the precision, the step size, and the layers that get LoRA (the plan shows these)."""
    device = _device(train.device)
    config = getattr(base.model, "config", None)
    n_layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    lora = None
    if base.kind == "pretrained":
        count = (train.lora_layer_count(int(n_layers), on_gpu=device.type == "cuda")
                 if n_layers and train.lora_layers != "all" else n_layers)
        lora = {"r": train.lora_r, "layers": count, "of_layers": n_layers}
    return {"device": str(device), "precision": "bf16" if _use_bf16(train.precision, device) else "fp32",
            "learning_rate": train.learning_rate_for(base.kind, plan.steps, plan.dp), "lora": lora}


def make_private_objects(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, plan: PrivacyPlan,
                         max_grad_norm: float, seed: int, device: torch.device):
    """Wrap model/optimizer/loader with Opacus (Poisson sampling, per-sample clipping, noise).

    Returns (engine, hooks, dp_optimizer, dp_loader). The model is not wrapped (hooks are
    attached to it); call ``hooks.cleanup()`` when done.

    Under a process group of several processes (:mod:`synthtext.distributed`) the model goes into
    Opacus' DPDDP, which makes Opacus use its distributed optimizer (rank 0 alone adds the noise, the
    clipped sums are added up across ranks), and the loader samples with :class:`SharedPoissonSampler`
    (one Poisson sample of all records per step, the same on every rank, shared out).
    """
    rank, size = distributed.world()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant=plan.accountant)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    module, poisson = model, True
    if size > 1:
        from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP

        # DPDDP: rank 0's weights on every rank, and opacus then takes its distributed optimizer
        module, poisson = DPDDP(model), False
        loader = DataLoader(loader.dataset, collate_fn=loader.collate_fn, batch_sampler=SharedPoissonSampler(
            len(loader.dataset), plan.sample_rate, plan.steps_per_epoch, seed + 3, rank, size))
    hooks, dp_opt, dp_loader = engine.make_private(
        module=module, optimizer=optimizer, data_loader=loader,
        noise_multiplier=plan.noise_multiplier, max_grad_norm=max_grad_norm,
        poisson_sampling=poisson, loss_reduction="mean", grad_sample_mode=GRAD_SAMPLE_MODE,
        wrap_model=False, noise_generator=noise_gen,
    )
    used = dp_loader.sample_rate if poisson else 1 / len(dp_loader)  # what opacus hands the accountant
    if abs(used - plan.sample_rate) > 1e-12:  # the accountant must describe what runs
        raise RuntimeError(f"opacus sample rate {used} != planned {plan.sample_rate}")
    return engine, hooks, dp_opt, dp_loader


class SharedPoissonSampler(Sampler):
    """Poisson sampling over several processes: at each step every record joins independently with
    probability ``sample_rate`` (as Opacus' single-process sampler draws it), from a generator seeded
    alike on every rank, so every rank draws the same sample; rank r takes every ``size``-th chosen
    record from the r-th. The ranks' shares make up exactly the sample the accountant assumes.

    Opacus' own DistributedUniformWithReplacementSampler is not used: it skips a step whose local
    share is empty (the ranks then fall out of step at the next all-reduce), and it draws from each
    process's global generator."""

    def __init__(self, n_records: int, sample_rate: float, steps_per_epoch: int, seed: int, rank: int = 0,
                 size: int = 1):
        self.n_records, self.sample_rate, self.steps_per_epoch = n_records, sample_rate, steps_per_epoch
        self.rank, self.size = rank, size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:  # opacus reads the sample rate as 1 / len(loader)
        return round(1 / self.sample_rate)

    def __iter__(self):
        for _ in range(self.steps_per_epoch):
            chosen = (torch.rand(self.n_records, generator=self.generator) < self.sample_rate).nonzero().flatten()
            yield chosen[self.rank::self.size].tolist()


def _grad_samples_in_param_dtype(dp_opt) -> None:
    """Cast per-sample gradients to their parameter's dtype (fp32) before Opacus clips them.

    Under bf16 autocast some per-sample gradients come out in bf16, and Opacus takes each one's
    norm in that dtype: the norm is rounded to 8 significant bits, so a "clipped" gradient could
    exceed max_grad_norm by up to ~0.4% (the sensitivity the accountant assumes). In fp32 the
    clipping is exact to fp32 rounding, as without autocast. The gradients themselves stay what
    bf16 computed: any per-record function is fine as long as it is clipped."""
    for p in dp_opt.params:
        gs = getattr(p, "grad_sample", None)
        if isinstance(gs, torch.Tensor) and gs.dtype != p.dtype:
            p.grad_sample = gs.to(p.dtype)
        elif isinstance(gs, list) and any(g.dtype != p.dtype for g in gs):
            p.grad_sample = [g.to(p.dtype) for g in gs]


def _empty_logical_batch(dp_opt) -> None:
    """Poisson sampling drew no record: the step still happens (noise only) and is accounted."""
    for p in dp_opt.params:
        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)


def _batches(loader: DataLoader, epochs: int) -> Iterator:
    for _ in range(epochs):
        yield from loader


def _make_optimizer(params: list[nn.Parameter], train: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=train.learning_rate, weight_decay=train.weight_decay)


class _Objective:
    """Per-record losses of a batch: the whole model, or, for a Llama-shaped pretrained model, the
    adapted top layers from the frozen lower layers' states (cached once per record, or recomputed
    without gradients when the cache would be too large) with the LM head at text positions only
    (:mod:`synthtext.llm`)."""

    def __init__(self, model: nn.Module, split: int = 0, cached: list | None = None):
        self.model, self.split, self.cached = model, split, cached
        self.stack = None if isinstance(model, ByteTransformerLM) else decoder_stack(model)

    def __call__(self, ids, attn, target, index=None) -> torch.Tensor:
        if self.stack is None:
            return sequence_losses(model_logits(self.model, ids, attn), ids, target)
        hidden = None  # recomputed from the tokens (without gradients below the split)
        if self.cached is not None and index is not None and self.split > 0:
            hidden = padded_states([self.cached[j] for j in index.tolist()], ids.shape[1], ids.device)
        return self.stack.record_losses(ids, attn, target, self.split, hidden)


def backward_batch(model: nn.Module, batch, scale: float, device: torch.device, bf16: bool = False,
                   objective: _Objective | None = None, weigh_tokens: bool = False) -> float:
    """Forward + backward of ``sum(per-record losses) * scale``; returns the summed loss.

    Under DP, ``scale = 1 / physical batch size``: the batch-mean loss Opacus expects with
    ``loss_reduction="mean"`` (it multiplies back by the batch size to get each record's own
    gradient, then divides the clipped, noised sum by the expected batch size int(q*n)).
    ``weigh_tokens`` (non-DP only) weights each record's mean loss by its number of target tokens, so
    the sum is over tokens (``scale = 1 / tokens in the batch``) and the return value is a token sum.
    """
    objective = objective or _Objective(model)
    ids, attn, target, *index = (t.to(device) for t in batch)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        per_record = objective(ids, attn, target, index[0] if index else None).float()
    if weigh_tokens:
        per_record = per_record * target_tokens(target).to(per_record.dtype)
    with warnings.catch_warnings():
        # LoRA A's input (frozen embeddings) needs no grad: torch notes its hook sees outputs only.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        (per_record.sum() * scale).backward()
    return per_record.detach().sum().item()


def target_tokens(target_mask: torch.Tensor) -> torch.Tensor:
    """Per record, the number of target tokens its loss averages over (as the loss functions count them)."""
    return target_mask[:, 1:].sum(1).clamp(min=1)


class _Progress(Progress):
    """Training progress (:class:`synthtext.progress.Progress`: a bar on a terminal, lines in a log)
    with the loss (moving average) and epsilon spent; ``log`` keeps every step's loss and, under DP,
    the accountant's epsilon at up to ``EPS_LOG_POINTS`` steps (:meth:`add_epsilon`).

    Epsilon is refreshed at most every ``EPS_REFRESH_FACTOR`` times what the last refresh took
    (at least every 5 s), and always on the last step, so the last line shows the final epsilon:
    one PRV evaluation costs ~0.2 CPU-s here, as much as a few records of training, so refreshing
    at every step would cost ~5% of the training time.
    """

    EPS_REFRESH_FACTOR = 50.0

    def __init__(self, total: int, enabled: bool, dp: bool, **options):
        super().__init__(total, "DP training" if dp else "training (no DP)", unit="step", counter="step {n}/{total}",
                         enabled=enabled, bar_names={"epsilon spent": "eps"}, **options)
        self.log, self.loss, self.eps, self.last_eps_time = [], None, None, -math.inf
        self.eps_interval = 5.0
        self.step_ends: list[float] = []  # the clock at each step's end: the plan's probe prices steps from them

    def step(self, step: int, loss: float | None, epsilon_fn=None, last: bool = False) -> None:
        if loss is not None:
            self.loss = loss if self.loss is None else 0.9 * self.loss + 0.1 * loss
        now = self.clock()
        if epsilon_fn is not None and self.enabled and (last or now - self.last_eps_time > self.eps_interval):
            self.eps, self.last_eps_time = epsilon_fn(), self.clock()
            self.eps_interval = max(5.0, self.EPS_REFRESH_FACTOR * (self.last_eps_time - now))
        fields = {"loss": f"{self.loss:.3f}" if self.loss is not None else "-"}
        if self.eps is not None:
            fields["epsilon spent"] = f"{self.eps:.2f}"
        self.update(1, fields)
        self.log.append({"step": step, "loss": loss})
        self.step_ends.append(time.perf_counter())

    EPS_LOG_POINTS = 16
    """Steps of the log at which epsilon is recorded (evenly spread, always the last): one PRV evaluation
    costs ~0.2 CPU-s, and the curve is smooth."""

    def add_epsilon(self, epsilon_at) -> None:
        """Give every log entry its ``epsilon``: ``epsilon_at(step)``, the accountant's epsilon after that
        many steps, at up to ``EPS_LOG_POINTS`` steps (always the last, whose value is the ledger's);
        None at the others."""
        steps = [entry["step"] for entry in self.log]
        if not steps:
            return
        points = min(len(steps), self.EPS_LOG_POINTS)
        chosen = {steps[round(i * (len(steps) - 1) / max(points - 1, 1))] for i in range(points)}
        for entry in self.log:
            entry["epsilon"] = float(epsilon_at(entry["step"])) if entry["step"] in chosen else None


def dp_loop(model, optimizer, loader, engine, plan: PrivacyPlan, train: TrainConfig, device, bf16=False,
            progress: _Progress | None = None, objective: _Objective | None = None) -> tuple[int, int]:
    """Run ``plan.steps`` DP-SGD steps (Poisson batches split into physical batches).

    Returns (steps, records processed)."""
    steps, records, loss_sum, count = 0, 0, 0.0, 0
    processes = distributed.world()[1]
    epochs = math.ceil(plan.steps / plan.steps_per_epoch)
    with BatchMemoryManager(data_loader=loader, max_physical_batch_size=train.max_physical_batch_size,
                            optimizer=optimizer) as physical:
        for batch in _batches(physical, epochs):
            if len(batch) == 0 or batch[0].shape[0] == 0:
                _empty_logical_batch(optimizer)
            else:
                loss_sum += backward_batch(model, batch, 1.0 / batch[0].shape[0], device, bf16, objective)
                if bf16:
                    _grad_samples_in_param_dtype(optimizer)
                count += batch[0].shape[0]
            optimizer.step()  # clips + accumulates; adds noise and steps only at the end of a logical batch
            optimizer.zero_grad(set_to_none=True)
            if optimizer._is_last_step_skipped:  # more physical batches of this logical batch to come
                continue
            if processes > 1:  # the step's loss and size over all ranks' shares, for the log
                loss_sum, count = _sum_over_ranks([loss_sum, count], device)
            steps, records = steps + 1, records + count
            if progress is not None:
                progress.step(steps, loss_sum / count if count else None,
                              lambda: engine.accountant.get_epsilon(delta=plan.delta), last=steps == plan.steps)
            loss_sum, count = 0.0, 0
            if steps >= plan.steps:
                break
    return steps, records


def _sum_over_ranks(values: list[float], device) -> list[float]:
    """Each value summed over all processes (a loss sum, a record count: exact in float64)."""
    total = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return [type(v)(t) for v, t in zip(values, total.tolist())]


def plain_loop(model, optimizer, loader, plan: PrivacyPlan, train: TrainConfig, device, bf16=False,
               progress: _Progress | None = None, objective: _Objective | None = None,
               weigh_tokens: bool = True) -> tuple[int, int]:
    """Ordinary training (no DP), for comparison. Returns (steps, records).

    The loss is the mean over the batch's target *tokens* (``weigh_tokens``), not over records as
    under DP: with a per-record mean and no clipping, the 3-4 tokens of a short target such as the
    missing-text marker weighed ~20x a review's tokens each, and the model started 63% of its texts
    with the marker (3% of the training texts are missing). DP clips every record to the same norm,
    so there the per-record mean stays (it is what keeps a record's gradient its own).
    ``weigh_tokens=False`` gives the DP loss without noise and clipping (the equivalence test)."""
    steps, records = 0, 0
    rank, processes = distributed.world()
    params = [p for p in model.parameters() if p.requires_grad]
    for batch in _batches(loader, train.epochs):
        loss_sum = 0.0
        denominator = float(target_tokens(batch[2]).sum()) if weigh_tokens else float(batch[0].shape[0])
        # several processes: every rank loads the same shuffled batch and does its share of it
        share = tuple(t[rank::processes] for t in batch) if processes > 1 else batch
        for i in range(0, share[0].shape[0], train.max_physical_batch_size):  # gradient accumulation
            chunk = tuple(t[i : i + train.max_physical_batch_size] for t in share)
            loss_sum += backward_batch(model, chunk, 1.0 / denominator, device, bf16, objective, weigh_tokens)
        if processes > 1:
            _sum_gradients_over_ranks(params)
            loss_sum, = _sum_over_ranks([loss_sum], device)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps, records = steps + 1, records + batch[0].shape[0]
        if progress is not None:
            progress.step(steps, loss_sum / denominator)
    return steps, records


def _sum_gradients_over_ranks(params: list[nn.Parameter]) -> None:
    """Training without DP over several processes: add up the ranks' gradients (each already divided by
    the whole batch's denominator)."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.SUM)


def train_private(
    base: BaseModel,
    examples: EncodedExamples,
    privacy: PrivacyConfig | None = None,
    train: TrainConfig | None = None,
    *,
    plan: PrivacyPlan | None = None,
    privacy_unit: str = "row",
    keep_states_for: EncodedExamples | None = None,
) -> TrainedModel:
    """Fine-tune ``base`` on ``examples`` under DP (or without, if ``privacy.epsilon is None``).

    Pretrained models get LoRA adapters (the base stays frozen); the built-in model trains all
    its weights from its random initialisation. ``base.model`` is modified in place.

    Raises:
        PrivacyBudgetError: too few records for the requested epsilon (before any training).
        ConfigError: invalid settings (delta >= 1/n, records longer than the model, no GPU, ...).
        ModelError: training ran but the trainable weights did not change (opacus #820 guard).

    ``plan``: the :class:`PrivacyPlan` the caller already computed with :func:`plan_privacy` for these
    records and settings (fit does, to refuse before any work), used as it is after a check that it is for
    as many records, the same DP switch and accountant.

    ``privacy_unit``: what one record is, for the ledger: "row", or the name of the column whose rows the
    caller packed into one record per value (:mod:`synthtext.units`). The caller is responsible for it.

    ``keep_states_for``: records (of ``examples``) whose frozen-layer states, computed once for training, the
    returned model keeps (``TrainedModel.frozen_states``) so that their losses later (the membership attack)
    skip the frozen layers; only when those states were cached for training.
    """
    privacy = privacy or PrivacyConfig()
    train = train or TrainConfig()
    device = _device(train.device)
    limit = base.max_length(train)
    longest = max((len(ids) for ids in examples.input_ids), default=0)
    if longest > limit:
        raise ConfigError(
            f"records are encoded up to {longest} tokens but max_length is {limit} for {base.name}: "
            f"encode with encode_examples(..., max_length={limit})."
        )
    if plan is None:
        plan = plan_privacy(len(examples), privacy, train, privacy_unit=privacy_unit)  # refuses before any work
    elif (plan.n_records, plan.dp) != (len(examples), privacy.dp) or (plan.dp and plan.accountant != privacy.accountant):
        raise ConfigError(f"the privacy plan handed in ({plan.n_records} records, dp={plan.dp}) is not for these "
                          f"{len(examples)} records and settings; plan_privacy(...) them again.")
    settings = training_settings(base, train, plan)
    train = dataclasses.replace(train, learning_rate=settings["learning_rate"])  # as used
    processes = distributed.world()[1]
    if processes > 1:  # one run over several processes: each must hold the same records and plan
        distributed.all_agree((_records_digest(examples), dataclasses.astuple(plan)), "the training records and plan")
        train = dataclasses.replace(train, progress=train.progress and distributed.is_main())
    fingerprint = base_fingerprint(base.model) if base.kind == "pretrained" else None

    torch.manual_seed(train.seed)  # LoRA init and dropout
    base.model.to(device)  # BEFORE get_peft_model (opacus #820)
    model = add_lora(base, train) if base.kind == "pretrained" else base.model.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    initial = [p.detach().clone() for p in params]
    optimizer = _make_optimizer(params, train)
    if processes > 1 and not plan.dp:  # (under DP, DPDDP does the same)
        with torch.no_grad():
            for p in params:
                torch.distributed.broadcast(p.data, 0)
    loader = DataLoader(
        _Records(examples, length_order(examples) if plan.dp else None), batch_size=train.batch_size,
        shuffle=not plan.dp, drop_last=not plan.dp and len(examples) >= train.batch_size,
        collate_fn=_PadCollate(base.tokenizer.pad_token_id, PAD_MULTIPLE, limit),
        generator=torch.Generator().manual_seed(train.seed + 2),
    )
    bf16 = settings["precision"] == "bf16"
    model.train()
    frozen_started = time.perf_counter()
    objective = _frozen_prefix_objective(model, examples, base, train, device, bf16)
    frozen_seconds = time.perf_counter() - frozen_started
    progress = _Progress(plan.steps, train.progress, plan.dp)
    hooks = engine = None
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        if plan.dp:
            engine, hooks, optimizer, loader = make_private_objects(
                model, optimizer, loader, plan, privacy.clipping_norm_for(base.kind), train.seed, device
            )
            steps, records = dp_loop(model, optimizer, loader, engine, plan, train, device, bf16, progress, objective)
        else:
            steps, records = plain_loop(model, optimizer, loader, plan, train, device, bf16, progress, objective)
    finally:
        progress.close()
        if hooks is not None:
            hooks.cleanup()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    model.eval()

    _check_learned(model, params, initial, steps, train, plan)
    if plan.dp:  # the epsilon curve, from the accountant the ledger asks (its last point is the ledger's)
        progress.add_epsilon(lambda k: _epsilon(plan.accountant, plan.noise_multiplier, plan.sample_rate, k,
                                                plan.delta))
    ledger = _ledger(plan, privacy, base, steps, engine, privacy_unit)
    return TrainedModel(
        model=model, tokenizer=base.tokenizer, base_name=base.name, kind=base.kind, family=base.family,
        ledger=ledger, train_config=train, privacy_config=privacy, builtin_config=base.builtin_config,
        base_fingerprint=fingerprint, frozen_states=_states_to_keep(objective, examples, keep_states_for),
        train_log={"steps": progress.log, "seconds": seconds, "cpu_seconds": cpu_seconds,
                   "frozen_layers_seconds": frozen_seconds,
                   "step_seconds": [b - a for a, b in zip([t0, *progress.step_ends], progress.step_ends)],  # 1st: with setup
                   "records_processed": records, "precision": "bf16" if bf16 else "fp32", "processes": processes},
    )


def _records_digest(examples: EncodedExamples) -> str:
    """A hash of the encoded records (token ids and prompt lengths), to compare across processes."""
    digest = hashlib.sha256()
    for ids, plen in zip(examples.input_ids, examples.prompt_lengths):
        digest.update(repr((list(ids), int(plen))).encode())
    return digest.hexdigest()


PREFIX_CACHE_BYTES = 3 * 2**30
"""Most memory for the frozen lower layers' cached states (bf16); above it they are recomputed
(without gradients) for every batch instead."""


def _frozen_prefix_objective(model, examples: EncodedExamples, base: BaseModel, train: TrainConfig, device,
                             bf16: bool) -> _Objective:
    """The training objective; with LoRA only on the top layers of a Llama-shaped model, the states
    entering the first adapted layer are computed once per record here and reused every epoch.

    Each record's states are a fixed function of that record's tokens and the public frozen weights,
    so reusing them changes nothing about the DP guarantee (the record's gradient is still its own,
    clipped and noised); it only skips recomputing the same numbers."""
    if base.kind != "pretrained":
        return _Objective(model)
    stack = decoder_stack(model)
    layers = adapted_layers(model)
    if stack is None or not layers or min(layers) == 0:
        return _Objective(model)
    split = min(layers)
    hidden = stack.inner.config.hidden_size
    dtype = torch.bfloat16 if bf16 else torch.float32
    size = sum(len(ids) for ids in examples.input_ids) * hidden * dtype.itemsize
    if not train.cache_frozen_layers or size > PREFIX_CACHE_BYTES:
        return _Objective(model, split)
    cached: list = [None] * len(examples)
    shared = shared_prefix_length(examples.input_ids)  # the chat template and the request: computed once
    order = length_order(examples)
    collate = _PadCollate(base.tokenizer.pad_token_id)
    was_training = model.training
    model.eval()
    bar = Progress(len(order), f"frozen layers 1-{split} (once per record)", unit="record",
                   enabled=train.progress)
    with bar, torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(order), train.max_physical_batch_size):
            chunk = order[start:start + train.max_physical_batch_size]
            ids, attn, _ = collate([(torch.tensor(examples.input_ids[j]), 0) for j in chunk])
            states = stack.lower_after_prefix(ids.to(device), attn.to(device), split, shared).to(dtype)
            for row, j in enumerate(chunk):
                cached[j] = states[row, : len(examples.input_ids[j])].cpu().clone()
            bar.update(len(chunk))
    model.train(was_training)
    return _Objective(model, split, cached)


def _states_to_keep(objective: _Objective, examples: EncodedExamples,
                    keep: EncodedExamples | None) -> FrozenStates | None:
    """The cached frozen-layer states of the records in ``keep`` (matched by their tokens)."""
    if keep is None or objective.cached is None:
        return None
    wanted = {tuple(ids) for ids in keep.input_ids}
    return FrozenStates(split=objective.split, by_tokens={
        tuple(ids): states for ids, states in zip(examples.input_ids, objective.cached) if tuple(ids) in wanted})


def adapted_layers(model: nn.Module) -> list[int]:
    """Indices of the decoder layers that hold trainable (LoRA) weights."""
    found = set()
    for name, p in model.named_parameters():
        layer = layer_index(name)
        if p.requires_grad and layer is not None:
            found.add(layer)
        elif p.requires_grad:
            return []  # something outside the decoder layers trains: run the whole model
    return sorted(found)


def _check_learned(model, params, initial, steps, train: TrainConfig, plan: PrivacyPlan) -> None:
    """Opacus #820: LoRA under Opacus can 'train' while its weights never move. Refuse that."""
    if steps == 0 or not train.check_weights_changed:
        return
    names = {id(p): n for n, p in model.named_parameters()}
    unchanged = [names.get(id(p), "?") for p, p0 in zip(params, initial) if torch.equal(p.detach(), p0)]
    if len(unchanged) == len(params):
        raise ModelError(
            f"training ran {steps} steps but none of the {len(params)} trainable weight tensors changed "
            "(known Opacus + PEFT failure, opacus #820). The model was not saved; please report this."
        )
    if plan.dp and plan.noise_multiplier and unchanged:
        warnings.warn(f"{len(unchanged)} trainable tensors did not change despite DP noise, e.g. {unchanged[:3]}",
                      stacklevel=3)


def check_ledger(ledger: PrivacyLedger, where: str) -> None:
    """Refuse a loaded ledger whose epsilon is not what the accountant gives for its own inputs (noise
    multiplier, sample rate, steps, delta): a saved ledger is checked, not trusted."""
    if not ledger.dp:
        if ledger.epsilon is not None or ledger.delta is not None:
            raise ModelError(f"{where}: the ledger says 'no DP' but carries epsilon={ledger.epsilon}, "
                             f"delta={ledger.delta}; it was edited. Fit the synthesizer again.")
        return
    inputs = (ledger.accountant, ledger.noise_multiplier, ledger.sample_rate, ledger.steps, ledger.delta)
    if ledger.accountant not in ("prv", "rdp", "gdp") or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in inputs[1:]) \
            or not (0 < ledger.sample_rate <= 1 and 0 < ledger.delta < 1 and ledger.steps >= 0):
        raise ModelError(f"{where}: the ledger's accountant inputs {inputs} are not valid; it was edited or "
                         "damaged. Fit the synthesizer again.")
    spent = _epsilon(*inputs)
    if ledger.epsilon is None or not math.isclose(ledger.epsilon, spent, rel_tol=1e-6, abs_tol=1e-9):
        raise ModelError(f"{where}: the ledger claims epsilon={ledger.epsilon}, but the {ledger.accountant} "
                         f"accountant gives {spent:.6g} for its noise multiplier {ledger.noise_multiplier}, sample "
                         f"rate {ledger.sample_rate}, {ledger.steps} steps and delta {ledger.delta}: it was edited. "
                         "Fit the synthesizer again.")


def _ledger(plan: PrivacyPlan, privacy: PrivacyConfig, base: BaseModel, steps: int, engine,
            privacy_unit: str = "row") -> PrivacyLedger:
    records = "rows" if privacy_unit == "row" else f"{privacy_unit!r} units"
    if not plan.dp:
        return PrivacyLedger(
            dp=False, epsilon=None, delta=None, noise_multiplier=None, sample_rate=None, steps=steps,
            epochs=steps / plan.steps_per_epoch, accountant=None, max_grad_norm=None, n_records=plan.n_records,
            model=base.name, expected_batch_size=plan.expected_batch_size, sampling="shuffled batches",
            privacy_unit=privacy_unit, notes=["no differential privacy: the model may memorise and reveal training records."],
        )
    # The ledger describes the mechanism that ran: the accountant's own history of steps.
    history = list(engine.accountant.history) if engine is not None else []
    if any(h[0] != plan.noise_multiplier or h[1] != plan.sample_rate for h in history) or \
            sum(h[2] for h in history) != steps:
        raise RuntimeError(f"accountant history {history} does not match the plan / {steps} steps")
    eps = _epsilon(plan.accountant, plan.noise_multiplier, plan.sample_rate, steps, plan.delta)
    notes = [("privacy unit: one row" if privacy_unit == "row" else
              f"privacy unit: all rows sharing a value of {privacy_unit!r} (one record per value)")
             + "; the epsilon covers what this model writes only.",
             "noise and sampling use torch's pseudo-random generator (opacus secure_mode off)."]
    if plan.n_records < 10_000:
        notes.append(f"only {plan.n_records} {records}: DP text models usually need 10,000+ records; expect noisy "
                     "text.")
    if privacy.accountant == "gdp":
        notes.append("gdp accounting is experimental in Opacus and can underestimate epsilon.")
    if plan.stops_early:
        notes.append(f"stopped after {steps} steps, before the configured epochs, to stay within epsilon.")
    if eps > privacy.epsilon * (1 + 1e-9) and (privacy.noise_multiplier is None or plan.stops_early):
        raise PrivacyBudgetError(f"internal error: spent epsilon {eps} exceeds the target {privacy.epsilon}.")
    return PrivacyLedger(
        dp=True, epsilon=eps, delta=plan.delta, noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate, steps=steps, epochs=steps * plan.sample_rate, accountant=plan.accountant,
        max_grad_norm=privacy.clipping_norm_for(base.kind), n_records=plan.n_records, model=base.name,
        target_epsilon=privacy.epsilon, expected_batch_size=plan.expected_batch_size,
        sampling="poisson", stopped_early=plan.stops_early, secure_rng=False, notes=notes, privacy_unit=privacy_unit,
    )

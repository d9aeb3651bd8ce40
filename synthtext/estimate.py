"""How long a run will take on this machine: short timed probes of its expensive stages, for
:meth:`synthtext.TextSynthesizer.plan`.

Each probe runs the real code on a little of the real work and scales it up:

* training: :data:`PROBE_STEPS` steps of :func:`synthtext.train.train_private` on :data:`PROBE_RECORDS`
  seeded training records (one physical batch, every record in every step), under the run's noise
  multiplier and clipping, so the per-sample gradients, clipping and noise all cost what they will; the
  frozen lower layers are timed on the same records;
* generation: a full and a quarter batch of the run's batch size, each decoded for 1 and for
  1 + :data:`PROBE_NEW_TOKENS` new tokens, which prices a prompt token and a decoding step (a fixed part
  and a part per row); then the decoder's schedule is simulated for texts as long as the training texts
  (:func:`decoding_work`: batches narrow as texts end, and refill);
* the structured columns: SDV fitted on up to :data:`PROBE_STRUCTURED_ROWS` training rows.

The probe's model is thrown away: nothing it learned reaches any output, and the plan's privacy figures
come from the accountant, not from the probe. Its timings depend on the real records' lengths, which the
plan shows only to whoever runs it (like the PII scan). The estimates assume the synthetic texts are as
long as the training texts on average, scale linearly in records and tokens, and include the first
step's warm-up, so they are rough (docs/plan.md has a probe beside a real run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from .config import PrivacyConfig, SamplingConfig, TrainConfig

PROBE_RECORDS = 16
PROBE_STEPS = 3
PROBE_NEW_TOKENS = 16
PROBE_STRUCTURED_ROWS = 1000
PROBE_SIMULATED_ROWS = 4096
"""Most rows whose decoding is simulated for the generation estimate (more are scaled linearly)."""
PROBE_PROMPTS = 1024
"""Most prompts the generation probe is given (it decodes one batch of them)."""


@dataclass
class TrainingProbe:
    """Seconds per record of the probe's training, the model it trained (for the generation probe) and the
    records it trained on (their frozen-layer states kept: for the membership estimate)."""

    setup_seconds: float
    frozen_seconds_per_record: float
    step_seconds_per_record: float
    tokens_per_record: float
    trained: Any
    records: Any = None


def probe_training(base: Any, examples: Any, privacy: PrivacyConfig, train: TrainConfig, plan: Any,
                   seed: int) -> TrainingProbe:
    """Train ``base`` (modified in place: load a fresh one for the run) for a few steps on a seeded handful of
    ``examples`` under ``plan``'s noise multiplier, timing each part."""
    from .models import EncodedExamples
    from .train import PrivacyPlan, plan_privacy, train_private

    k = min(PROBE_RECORDS, len(examples), train.max_physical_batch_size)
    pick = np.sort(np.random.default_rng(seed).choice(len(examples), size=k, replace=False))
    subset = EncodedExamples(input_ids=[examples.input_ids[i] for i in pick],
                             prompt_lengths=[examples.prompt_lengths[i] for i in pick])
    settings = replace(train, batch_size=k, epochs=PROBE_STEPS, progress=False, check_weights_changed=False,
                       learning_rate=train.learning_rate_for(base.kind, plan.steps, plan.dp))
    if plan.dp:  # sample rate 1: every probe record in each of its steps, at the run's noise
        probe_plan = PrivacyPlan(dp=True, n_records=k, steps=PROBE_STEPS, steps_per_epoch=1, expected_batch_size=k,
                                 sample_rate=1.0, delta=plan.delta, noise_multiplier=plan.noise_multiplier,
                                 accountant=plan.accountant)
        privacy = replace(privacy, noise_multiplier=plan.noise_multiplier)
    else:
        probe_plan = plan_privacy(k, privacy, settings)
    started = time.perf_counter()
    # keeps the probe records' frozen-layer states, as fit keeps the membership sample's
    trained = train_private(base, subset, privacy, settings, plan=probe_plan, keep_states_for=subset)
    total = time.perf_counter() - started
    log = trained.train_log
    frozen, loop = log.get("frozen_layers_seconds", 0.0), log["seconds"]
    records = max(log.get("records_processed") or k * PROBE_STEPS, 1)
    steps = log.get("step_seconds") or []
    if len(steps) > 1:  # the first step carries the warm-up (the DP engine, kernels for new shapes): once per run
        loop, records = float(sum(steps[1:])), max(records * (len(steps) - 1) // len(steps), 1)
    return TrainingProbe(setup_seconds=max(total - frozen - loop, 0.0), frozen_seconds_per_record=frozen / k,
                         step_seconds_per_record=loop / records,
                         tokens_per_record=float(np.mean([len(ids) for ids in subset.input_ids])), trained=trained,
                         records=subset)


def training_seconds(probe: TrainingProbe, plan: Any, n_records: int, tokens_per_record: float) -> dict:
    """The estimated seconds of one text model's training: its frozen layers once per record, then the DP steps
    over ``steps x expected batch`` records, scaled by the records' length against the probe's."""
    scale = tokens_per_record / probe.tokens_per_record if probe.tokens_per_record else 1.0
    processed = plan.steps * plan.expected_batch_size
    return {"frozen_layers": probe.frozen_seconds_per_record * n_records * scale,
            "training": probe.setup_seconds + probe.step_seconds_per_record * processed * scale}


def probe_generation(trained: Any, prompts: Sequence[str], sampling: SamplingConfig, prompt_length: float) -> dict:
    """The decoder's costs at the run's batch size: prompts decoded for 1 and 1 + PROBE_NEW_TOKENS new tokens,
    in a full batch and in a quarter batch. Returns seconds per prompt token and, per decoding step, the fixed
    part and the part per row (a step costs ``step_fixed + step_per_row x width``; batches narrow as texts
    end, see :func:`decoding_work`). ``prompt_length``: the prompts' mean length in tokens."""
    from .generate import batch_size_for, generate_token_ids

    batch = min(batch_size_for(trained, sampling), len(prompts))
    probe = replace(sampling, progress=False)
    step = {}
    prompt_seconds = 0.0
    for width in sorted({batch, max(1, batch // 4)}, reverse=True):
        timings = []
        for new_tokens in (1, 1 + PROBE_NEW_TOKENS):
            started = time.perf_counter()
            generate_token_ids(trained, list(prompts[:width]), replace(probe, max_new_tokens=new_tokens))
            timings.append(time.perf_counter() - started)
        step[width] = max(timings[1] - timings[0], 0.0) / PROBE_NEW_TOKENS
        if width == batch:  # ``prompt_length``: the prompts' mean token length
            prompt_seconds = timings[0] / max(width * prompt_length, 1.0)
    narrow = min(step)
    per_row = (step[batch] - step[narrow]) / (batch - narrow) if batch > narrow else step[batch] / batch
    per_row = max(per_row, 0.0)
    return {"batch_size": batch, "prompt_token_seconds": prompt_seconds, "step_per_row_seconds": per_row,
            "step_fixed_seconds": max(step[batch] - per_row * batch, 0.0)}


def decoding_work(text_lengths: Sequence[int], prompt_length: float, batch_size: int, *,
                  continuous: bool = True) -> dict:
    """What the decoder (:func:`synthtext.generate._stream_decoder`) runs for texts of ``text_lengths`` tokens:
    prompt tokens encoded, decoding steps, and row-steps (the sum of the batch widths). Mirrors its rules: every
    prompt is encoded once; a finished row stays in the batch until COMPACT_FRACTION of its rows have finished;
    (``continuous``) waiting prompts join once REFILL_FRACTION of its places are open, else (the built-in model)
    a batch runs to its end before the next starts."""
    from collections import deque

    from .generate import COMPACT_FRACTION, REFILL_FRACTION

    waiting = deque(int(n) for n in text_lengths)
    rows: list[list[int]] = []  # [tokens still to write] per row in the batch; 0: finished, not yet dropped
    prompt_tokens = steps = row_steps = 0.0
    while waiting or rows:
        open_places = batch_size - sum(1 for r in rows if r[0] > 0)
        if not rows or (continuous and waiting and open_places >= max(1, REFILL_FRACTION * batch_size)):
            rows = [r for r in rows if r[0] > 0]
            while len(rows) < batch_size and waiting:
                rows.append([max(waiting.popleft(), 1)])
                prompt_tokens += prompt_length
        for r in rows:
            r[0] = max(r[0] - 1, 0)
        done = sum(1 for r in rows if r[0] == 0)
        if done == len(rows):
            rows = []  # the last token of every row: no model call
            continue
        if done >= COMPACT_FRACTION * len(rows):
            rows = [r for r in rows if r[0] > 0]
        steps += 1
        row_steps += len(rows)
    return {"prompt_tokens": prompt_tokens, "steps": steps, "row_steps": row_steps}


def generation_seconds(probe: dict, text_lengths: Sequence[int], prompt_length: float, n_rows: int,
                       continuous: bool = True) -> float:
    """The estimated seconds to write ``n_rows`` texts whose lengths are drawn like ``text_lengths`` (simulated on
    at most PROBE_SIMULATED_ROWS of them, scaled linearly)."""
    simulated = list(text_lengths)[:PROBE_SIMULATED_ROWS]
    work = decoding_work(simulated, prompt_length, probe["batch_size"], continuous=continuous)
    seconds = (work["prompt_tokens"] * probe["prompt_token_seconds"] + work["steps"] * probe["step_fixed_seconds"]
               + work["row_steps"] * probe["step_per_row_seconds"])
    return seconds * n_rows / max(len(simulated), 1)


def column_by_column_seconds(probe: dict, tokenizer: Any, records: Sequence[dict], columns: Sequence,
                             float_digits: int, request_length: float, n_rows: int, continuous: bool = True) -> float:
    """The estimated seconds to write ``n_rows`` whole rows as ``structured="dp"`` does
    (:func:`synthtext.whole_row.sample_rows`): one decoding pass per column, each prompted with the request
    and the line so far. Simulated on lines as long as those of ``records`` (the training rows): column k's
    prompt is the line's first k columns, its decoding the tokens column k adds; redraws are not counted."""
    from .models import encode_texts
    from .whole_row import row_line

    rows = list(records)[:PROBE_SIMULATED_ROWS]
    if not rows:
        return 0.0
    before = np.zeros(len(rows))
    seconds = 0.0
    for k in range(1, len(columns) + 1):
        upto = np.array([len(ids) for ids in encode_texts(tokenizer, [row_line(r, columns[:k], float_digits)
                                                                       for r in rows])], dtype=float)
        added = np.maximum(upto - before, 1).astype(int)
        seconds += generation_seconds(probe, added, request_length + float(before.mean()), n_rows,
                                      continuous=continuous)
        before = upto
    return seconds


def structured_seconds(structured: Any, rows: Any, n_rows: int, num_rows: int) -> float:
    """SDV fitted on up to PROBE_STRUCTURED_ROWS of ``rows`` (the training rows), and sampled as many rows, scaled
    linearly to the ``n_rows`` it will fit and the ``num_rows`` it will write."""
    part = rows.iloc[:PROBE_STRUCTURED_ROWS]
    started = time.perf_counter()
    structured.fit(part)
    fitted = time.perf_counter() - started
    started = time.perf_counter()
    structured.sample(min(num_rows, PROBE_STRUCTURED_ROWS))
    sampled = time.perf_counter() - started
    return fitted * max(1.0, n_rows / len(part)) + sampled * max(1.0, num_rows / PROBE_STRUCTURED_ROWS)


def membership_seconds(trained: Any, probe_records: Any, n_members: int, n_outsiders: int, scale: float) -> float:
    """The report's membership losses: ``n_members`` training records whose frozen-layer states training kept
    (only the adapted layers and the head run) and ``n_outsiders`` holdout records (every layer), from the
    probe model's losses of its own records timed both ways; ``scale``: the records' length against the probe's."""
    with_states = timed(trained.record_losses, probe_records)[1]
    kept, trained.frozen_states = trained.frozen_states, None
    try:
        without = timed(trained.record_losses, probe_records)[1]
    finally:
        trained.frozen_states = kept
    member_cost = with_states if kept is not None else without
    return (member_cost * n_members + without * n_outsiders) / max(len(probe_records), 1) * scale


def timed(function, *args, **kwargs) -> tuple[Any, float]:
    """``function(*args, **kwargs)`` and the seconds it took."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


__all__ = ["PROBE_NEW_TOKENS", "PROBE_RECORDS", "PROBE_STEPS", "TrainingProbe", "column_by_column_seconds",
           "decoding_work", "generation_seconds", "membership_seconds", "probe_generation", "probe_training",
           "structured_seconds", "timed", "training_seconds"]

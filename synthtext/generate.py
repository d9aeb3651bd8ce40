"""Batched conditional sampling from a trained model.

Privacy: generation reads only the trained weights and the prompts it is given. It is
*post-processing* of the DP-trained model, so it keeps the model's (epsilon, delta) guarantee
however many texts are sampled, as long as the prompts themselves do not come from the private
data (conditioning values that come from the user, from a DP estimate or from the structured
synthesizer are fine; the report says which). Nothing here touches the private records.

``generate_texts(trained, prompts)`` samples one text per prompt and returns the decoded texts
in input order. Each prompt is encoded exactly as training encoded it (``[BOS] prompt``, no EOS,
see :func:`synthtext.models.encode_examples`) and the model continues it until it emits EOS or
reaches its token budget. The caller turns a text into a cell value with
:func:`synthtext.prompts.split_generated` (which also maps the missing marker back to ``None``).

What makes it fast:

* prompts are sorted by token length and batched, so a batch holds similar lengths (little
  padding); results are put back in input order;
* every model decodes with a KV cache: the built-in :class:`~synthtext.models.ByteTransformerLM`
  with its own preallocated :class:`~synthtext.models.KVCache`, rows that finish (EOS or budget)
  dropped from the batch as they finish; Hugging Face models with continuous batching
  (:func:`_stream_decoder`): waiting prompts join the batch as its rows finish, the rows still writing
  keep their cache, and the prompts' shared first tokens (the chat template, the request) are encoded once;
* LoRA is merged into a copy of the base weights for inference (``merge_lora``): an unmerged LoRA
  layer costs two extra matrix products per linear layer per token. The trained model itself is
  left untouched;
* on a CUDA GPU the inference copy is cast to bfloat16 (``dtype="auto"``) and, with
  ``static_cache=True``, Hugging Face models decode with a static cache (which ``transformers``
  compiles with CUDA graphs). The GPU-only lines are small and **untested on a GPU** so far.

Reproducibility: with ``seed`` set, the same prompts, model, batch size and device give the same
texts. Every model samples with our own :func:`sample_next` and a private ``torch.Generator``
(for Hugging Face models through a logits processor inside ``generate``), so torch's global RNG
is neither used nor changed.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import functools
import math
import re
from dataclasses import replace
from typing import Any, Sequence

import torch

from .config import DECODING_DTYPES, SamplingConfig, default_no_repeat_ngram
from .errors import DataError
from .llm import shared_prefix_length, use_grouped_attention
from .models import ByteTransformerLM, TrainedModel, cpu_has_native_bf16, encode_texts, prompt_prefixes
from .memory import release_freed_memory
from .progress import Progress

__all__ = ["chunk_seed", "generate_texts", "generate_texts_by_chunks", "generate_token_ids", "one_decoding_copy",
           "sample_next", "token_budgets"]

COMPACT_FRACTION = 0.125
"""Built-in model: finished rows leave the batch once they are this fraction of it (dropping them
copies the KV cache, so it is not done for every single row; measured on CPU: 1/8 to 1/4 were
10-20% faster than dropping each row at once, and faster than never dropping)."""

DEFAULT_BATCH_SIZE = {"cpu": 64, "cuda": 256}
"""Prompts per batch when ``batch_size=None``, by device type; pretrained models decoded in bf16 on a CPU
take :data:`PRETRAINED_CPU_BATCH_SIZE` (SmolLM2-135M in bf16: 377 tokens/s at 128 rows, 354 at 64). In
float32 (a CPU without native bf16) 64 rows wrote as many characters per second as 128 (253 each, README
job's DP model, 250 texts) with a peak of 2.80 GiB instead of 3.22: the float32 KV cache is twice the size."""
PRETRAINED_CPU_BATCH_SIZE = 128


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate_texts(trained: TrainedModel, prompts: Sequence[str], sampling: SamplingConfig | None = None,
                   *, starts: Sequence[str] | None = None, stop_at: str = "", starts_open_values: bool = False,
                   ends_at_model_rate: str = "", **settings: Any) -> list[str]:
    """Sample one text per prompt; returns the decoded texts in the order of ``prompts``.

    Args:
        trained: what :func:`synthtext.train.train_private` (or ``TrainedModel.load``) returned.
            Generation runs on the device its weights are on.
        prompts: prompts as built by :func:`synthtext.prompts.build_prompt`, without BOS (it is
            added here, as in training).
        sampling: how to sample (:class:`~synthtext.config.SamplingConfig`: temperature, top_p,
            max_new_tokens, batch_size, seed, progress, merge_lora, dtype, static_cache); default
            ``SamplingConfig()``.
        starts: the start of each text, given: the model continues it (returned without it).
        stop_at: characters that may end a text early: a text stops after the first token whose
            characters include one of them (that token is kept; the caller cuts the string). Only
            a saving of decoding time: the static-cache path (``static_cache`` on a GPU) writes on
            to EOS or the budget, so callers must cut the text anyway.
        starts_open_values: each start ends with a field's ``name:`` (whole rows,
            :mod:`synthtext.whole_row`): the missing marker's first token there is drawn with the model's
            own probability, as a text's missing-text openings are when no starts are given.
        ends_at_model_rate: characters (a subset of ``stop_at``'s): whether a text ends with EOS or with a
            token holding one of them is drawn with the model's own probabilities (:func:`sample_next`'s
            ``end_ids``). In a unit's sequence (``privacy_unit``) a newline after a row's last value starts the
            unit's next row and EOS ends the unit, so that choice is how many rows a unit has
            (``ends_at_model_rate="\n"``); min-p would cut the rarer of the two.
        **settings: any of those settings as keywords, taking precedence over ``sampling``'s:
            ``generate_texts(trained, prompts, temperature=0, max_new_tokens=60)``.

    Raises:
        DataError: a prompt is not a string, or leaves no room in the model's context.
        ConfigError: an invalid sampling setting.
    """
    return _decode(trained.tokenizer, generate_token_ids(trained, prompts, sampling, starts=starts, stop_at=stop_at,
                                                         starts_open_values=starts_open_values,
                                                         ends_at_model_rate=ends_at_model_rate, **settings))


CHUNK_ROWS = 2048
"""Prompts per chunk of :func:`generate_texts_by_chunks`: each chunk has its own seed, and under several
processes the ranks share the chunks out. A fixed number, so the texts for a seed do not depend on how
many processes write them."""


def chunk_seed(seed: int | None, i: int) -> int | None:
    """The seed of chunk ``i`` of a run seeded with ``seed``: chunk 0 keeps ``seed`` (a table of one chunk
    samples as it would unchunked), the others get seeds drawn from (``seed``, i), not ``seed + i``."""
    if seed is None or i == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence((seed, i)).generate_state(1)[0])


def generate_texts_by_chunks(trained: TrainedModel, prompts: Sequence[str], sampling: SamplingConfig,
                             **options: Any) -> list[str]:
    """:func:`generate_texts` over fixed chunks of :data:`CHUNK_ROWS` prompts, chunk ``i`` sampled with a
    seed drawn from (``sampling.seed``, i) (the first chunk with ``sampling.seed`` itself), in order. Under
    a process group (``torchrun``) each rank writes every N-th chunk and all ranks get every text back, so
    the result for a seed is the same for any number of processes (:mod:`synthtext.distributed`)."""
    import hashlib

    from .distributed import all_agree, gather_chunks, shard_chunks, world

    if world()[1] > 1:  # rank r's texts go beside rank 0's rows: the rows' prompts must be the same everywhere
        all_agree(hashlib.sha256("\x00".join(prompts).encode()).hexdigest(), "the prompts of the synthetic rows")

    def work(i: int, chunk: range) -> list[str]:
        return generate_texts(trained, [prompts[j] for j in chunk],
                              sampling=replace(sampling, seed=chunk_seed(sampling.seed, i)), **options)

    return gather_chunks(shard_chunks(len(prompts), CHUNK_ROWS), work)


def generate_token_ids(trained: TrainedModel, prompts: Sequence[str], sampling: SamplingConfig | None = None,
                       *, starts: Sequence[str] | None = None, stop_at: str = "", starts_open_values: bool = False,
                       ends_at_model_rate: str = "", **settings: Any) -> list[list[int]]:
    """Like :func:`generate_texts`, but returns the new token ids per prompt (EOS and padding
    removed), in input order. Same arguments."""
    sampling = replace(sampling or SamplingConfig(), **settings)  # SamplingConfig checks every setting
    if sampling.no_repeat_ngram is None:
        sampling = replace(sampling, no_repeat_ngram=default_no_repeat_ngram(trained.builtin_config is not None))
    if not set(ends_at_model_rate) <= set(stop_at):
        raise ValueError(f"ends_at_model_rate={ends_at_model_rate!r}: the ends drawn at the model's odds must be among "
                         f"the stop characters {stop_at!r}, or they would not end the text.")
    tok = trained.tokenizer
    prompt_ids = _encode_prompts(tok, prompts, starts)
    budgets = token_budgets(trained, [len(p) for p in prompt_ids], sampling.max_new_tokens)
    if not prompt_ids:
        return []
    device = next(trained.model.parameters()).device
    batch_size = batch_size_for(trained, sampling)
    # Longest first (a batch that does not fit in memory fails at once), stable for determinism.
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    results: list[list[int] | None] = [None] * len(prompt_ids)
    model = _inference_model(trained, sampling)
    bar = _progress_bar(len(prompt_ids), sampling.progress)
    try:
        gen = torch.Generator(device=device)
        if sampling.seed is None:
            gen.seed()
        else:
            gen.manual_seed(sampling.seed)
        stop_ids = _stop_token_ids(tok, stop_at, device) if stop_at else None
        decoding = dict(pad_id=tok.pad_token_id, eos_id=tok.eos_token_id, sampling=sampling, generator=gen,
                        stop_ids=stop_ids,
                        end_ids=_end_choice_ids(tok, ends_at_model_rate, device) if ends_at_model_rate else None,
                        # a text continued from a given start is not at its start; a value after its name is
                        openings=(_missing_text_openings(tok, device) if starts is None
                                  else _missing_value_openings(tok, device) if starts_open_values else None))
        builtin = isinstance(model, ByteTransformerLM)
        batch_by_batch = builtin or (sampling.static_cache and device.type == "cuda")  # else continuous batching

        def decode(order: list[int], bar) -> None:
            if batch_by_batch:  # a batch at a time, to its end
                sample_batch = _sample_builtin if builtin else _sample_hf
                with contextlib.nullcontext() if builtin else _clean_generation_config(model, tok):
                    for batch in (order[i : i + batch_size] for i in range(0, len(order), batch_size)):
                        out = sample_batch(model, [prompt_ids[i] for i in batch], [budgets[i] for i in batch],
                                           **decoding)
                        for i, ids in zip(batch, out):
                            results[i] = ids
                        bar.update(len(batch))
            else:  # decides on markup at a text's first tokens and draws it again at once
                redraws = _MarkupRedraws(tok, MARKUP_REDRAWS) if decoding["openings"] is not None else None
                _stream_decoder(model, prompt_ids, budgets, order, batch_size, results, bar, markup=redraws,
                                **decoding)

        decode(order, bar)
        if decoding["openings"] is not None and batch_by_batch:  # whole texts judged: markup drawn again
            again = order
            for _ in range(MARKUP_REDRAWS):
                again = [i for i in again if _opens_with_markup(tok.decode(results[i], skip_special_tokens=True))]
                if not again:
                    break
                decode(again, _progress_bar(len(again), False))
    finally:
        bar.close()
    return [r if r is not None else [] for r in results]


MARKUP_REDRAWS = 4
"""A text (or whole-row value) that opens with ``<`` but not with the missing marker or a ``<TYPE>`` placeholder
is drawn again, at most this many times: the marker shares its first token with markup, which the pretrained
model favours (on the README job's DP model 14% of the texts began with ``<``, under 2% went on to the marker;
8% of the texts were then tags and symbols such as ``<head>``, ``<@!@[``). Drawing again is rejection sampling:
the texts follow the model's distribution given that they do not open with markup. The continuous-batching
decoder judges a text at its first tokens (:class:`_MarkupRedraws`), the batch decoders whole texts."""


def _opens_with_markup(text: str) -> bool:
    """True for a text that begins (after spaces) with ``<`` but not with the missing marker or a placeholder
    of an entity type (``<PERSON>``; ``<I>`` is a tag), and for the marker with more text after it
    (``<missing>(20230701)``: the output would hold the marker; a whole-row value's field separator may follow)."""
    from .pii import PLACEHOLDER
    from .prompts import MISSING

    start = text.lstrip()
    if not start.startswith("<"):
        return False
    if start.lower().startswith(MISSING):
        rest = start[len(MISSING):].strip()
        return bool(rest) and not rest.startswith("|")
    tag = PLACEHOLDER.match(start)
    return tag is None or tag.group(1) not in _placeholder_types()


@functools.lru_cache(maxsize=1)
def _placeholder_types() -> frozenset[str]:
    from .pii import placeholder_types

    return placeholder_types()


_PLACEHOLDER_SO_FAR = re.compile(r"<[A-Z][A-Z0-9_]*")  # the start of a ``<TYPE>`` placeholder, before its ``>``


def _markup_verdict(text: str, final: bool) -> bool | None:
    """:func:`_opens_with_markup` of a text still being written: None while its first characters could still go
    on to the missing marker or a placeholder (``""``, ``"<"``, ``"<mis"``, ``"<PERS"``) or are the marker so far
    (``"<missing> "``), else the answer every text that goes on from it gets; ``final``: the text has ended,
    answer now."""
    from .prompts import MISSING

    start = text.lstrip()
    low = start.lower()
    if not final and (MISSING.startswith(low) or _PLACEHOLDER_SO_FAR.fullmatch(start)
                      or (low.startswith(MISSING) and not start[len(MISSING):].strip())):
        return None
    return _opens_with_markup(text)


class _MarkupRedraws:
    """The streaming decoder's markup check: a row is judged (:func:`_markup_verdict`) after each token until
    the verdict is known, usually at its first or second token, and a row that opens with markup leaves the
    batch then and is drawn again from its prompt, at most ``limit`` times per prompt; a text's first
    tokens decide, so stopping there draws the same texts as judging whole texts would, without writing
    out the texts that are thrown away."""

    def __init__(self, tok: Any, limit: int):
        self.tok, self.limit = tok, limit
        self.tries: collections.Counter = collections.Counter()

    def rejected(self, tokens: torch.Tensor, rows: "_Rows", wrote: torch.Tensor, ended: torch.Tensor) -> list[int]:
        """The batch positions of the rows to draw again (``wrote``: rows that wrote a token this step; ``ended``:
        rows whose text ended with it). Rows judged leave ``rows.undecided``."""
        again = []
        for j in (rows.undecided & wrote).nonzero().squeeze(-1).tolist():
            i, n = int(rows.index[j]), int(rows.written[j])
            verdict = _markup_verdict(self.tok.decode(tokens[i, :n].tolist(), skip_special_tokens=True),
                                      final=bool(ended[j]))
            if verdict is None:
                continue
            rows.undecided[j] = False
            if verdict and self.tries[i] < self.limit:
                self.tries[i] += 1
                again.append(j)
        return again


def batch_size_for(trained: TrainedModel, sampling: SamplingConfig) -> int:
    """Prompts decoded together: ``sampling.batch_size``, or the default for the model and its device."""
    if sampling.batch_size is not None:
        return sampling.batch_size
    device = next(trained.model.parameters()).device
    pretrained = not isinstance(trained.model, ByteTransformerLM)
    if pretrained and device.type == "cpu":
        half = _resolve_dtype(sampling.dtype, device) in (torch.bfloat16, torch.float16)
        return PRETRAINED_CPU_BATCH_SIZE if half else DEFAULT_BATCH_SIZE["cpu"]
    return DEFAULT_BATCH_SIZE.get(device.type, 64)


def token_budgets(trained: TrainedModel, prompt_lengths: Sequence[int], max_new_tokens: int | None) -> list[int]:
    """New tokens allowed per prompt, given its token length including BOS.

    ``max_new_tokens=None`` allows up to the training ``max_length`` in total (at least one
    token); an explicit value is used as given. Either way the total stays within the model's
    positions; a prompt that fills them raises :class:`DataError`.
    """
    context = _context_length(trained)
    train_limit = trained.max_length
    if context is not None:
        train_limit = min(train_limit, context)
    too_long = [i for i, n in enumerate(prompt_lengths) if context is not None and n >= context]
    if too_long:
        raise DataError(
            f"{len(too_long)} prompt(s) (first: prompt {too_long[0]}, {prompt_lengths[too_long[0]]} tokens with BOS) "
            f"leave no room to generate: the model has {context} positions. Use fewer or shorter "
            "conditioning columns."
        )
    out = []
    for n in prompt_lengths:
        budget = max(train_limit - n, 1) if max_new_tokens is None else max_new_tokens
        if context is not None:
            budget = min(budget, context - n)
        out.append(budget)
    return out


def ban_repeated_ngrams(logits: torch.Tensor, written: torch.Tensor, counts: torch.Tensor, n: int) -> torch.Tensor:
    """``logits`` (B, vocab) with -inf for every token that would complete a token ``n``-gram the row's text
    already holds (``transformers``' ``no_repeat_ngram_size``, over the text written so far, not the prompt):
    a sampler caught in a loop ("a great. a great. a great.") must leave it. ``written`` (B, L): each row's
    tokens so far, the first ``counts`` (B,) of them valid."""
    length = written.shape[1]
    if n < 2 or length < n:
        return logits
    starts = torch.arange(length - n + 1, device=written.device)
    last = written.gather(1, (counts[:, None] - (n - 1) + torch.arange(n - 1, device=written.device)).clamp(min=0))
    windows = written.unfold(1, n - 1, 1)[:, : length - n + 1]  # (B, starts, n-1): the n-1 tokens at each start
    hit = (windows == last[:, None]).all(-1) & (starts[None] + n - 1 < counts[:, None])
    rows, at = hit.nonzero(as_tuple=True)
    if rows.numel():
        logits = logits.index_put((rows, written[rows, at + n - 1]), torch.tensor(-math.inf, dtype=logits.dtype,
                                                                                  device=logits.device))
    return logits


def sample_next(
    logits: torch.Tensor, *, temperature: float, top_p: float, min_p: float = 0.0,
    generator: torch.Generator | None = None, at_start: torch.Tensor | None = None,
    untruncated_ids: torch.Tensor | None = None, end_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw one token per row from (B, vocab) logits with temperature, min-p and nucleus (top-p) sampling.

    ``temperature == 0`` is greedy. Min-p (Nguyen et al. 2024, ``transformers``' ``MinPLogitsWarper``)
    drops the tokens less likely than ``min_p`` times the row's most likely one: the cut follows the
    model's confidence, so a confident step keeps few tokens and an open one many. Top-p then samples
    from the most likely remaining tokens kept until their (renormalised) probability reaches ``top_p``
    (the token that crosses it included; always at least one), as in Holtzman et al. 2020 and
    ``transformers``' ``TopPLogitsWarper``.

    No sort: a token is drawn from the whole (tempered) distribution and kept if it is in the
    nucleus, i.e. if the tokens *more* likely than it hold less than ``top_p`` of the mass;
    otherwise that row draws again. The kept draws follow exactly the renormalised nucleus
    distribution, and each draw is kept with probability >= ``top_p`` (the nucleus mass), so
    about one round suffices. Each round is a few O(vocab) passes, where sort + ``multinomial``
    over a 50k-token vocabulary took ~75% of CPU decoding time. Rows still drawing after
    :data:`_MAX_REJECTION_ROUNDS` rounds (only with a tiny ``top_p``) are sampled via a sort.

    ``at_start`` (B,) marks the rows at their text's first token and ``untruncated_ids`` the tokens that
    open a missing text there (:func:`_missing_text_openings`: EOS and the first token of the missing
    marker): on those rows each of them is drawn with the model's own (tempered) probability, and the
    truncation only shares out the rest. Whether a text is missing is the row's value, learned under DP
    like the others: min-p, which cuts the long tail of ways to begin a review, otherwise raised it from
    the model's ~3% to ~6% (docs/benchmarks/quality.md).

    ``end_ids``: the tokens that end a text (EOS and the stop tokens): on a row whose draw is one of them,
    which one is drawn again with the model's own (tempered) probabilities among them. Whether the text ends
    here stays the sampler's; how it ends (in a unit's sequence: the unit's next row or the unit's end)
    is the model's, where min-p would cut the rarer of the two whenever it is below ``min_p`` of the likeliest
    token.
    """
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float()
    if temperature != 1:
        logits = logits / temperature
    model_probs = probs = torch.softmax(logits, dim=-1)
    if min_p > 0:
        probs = probs.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), 0.0)
        probs = probs / probs.sum(-1, keepdim=True)  # the nucleus below is a share of what is left
    if at_start is None:
        tokens = _draw_truncated(probs, top_p, generator)
    else:
        set_aside = model_probs[:, untruncated_ids] * at_start[:, None]  # (B, k); 0 on the rows not at a start
        probs = _without_tokens(probs, model_probs, at_start, untruncated_ids)
        tokens = _draw_truncated(probs, top_p, generator)
        u = torch.rand((len(tokens), 1), generator=generator, device=tokens.device)
        pick = (u >= set_aside.cumsum(-1)).sum(-1)  # which set-aside token u falls on; k: none of them
        k = len(untruncated_ids)
        tokens = torch.where(pick < k, untruncated_ids[pick.clamp(max=k - 1)], tokens)
    if end_ids is None:
        return tokens
    ending = _draw(model_probs[:, end_ids], generator)  # drawn on every row, so the stream does not depend on which end
    return torch.where(torch.isin(tokens, end_ids), end_ids[ending], tokens)


def _draw_truncated(probs: torch.Tensor, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from ``probs`` (rows summing to 1) within the top-p nucleus, by rejection."""
    tokens = _draw(probs, generator)
    if top_p >= 1.0:
        return tokens
    rows = _outside_nucleus(probs, tokens, top_p).nonzero().squeeze(-1)
    for _ in range(_MAX_REJECTION_ROUNDS):
        if rows.numel() == 0:  # the one host sync per round
            return tokens
        sub = probs[rows]
        redrawn = _draw(sub, generator)
        tokens[rows] = redrawn
        rows = rows[_outside_nucleus(sub, redrawn, top_p)]
    if rows.numel():
        tokens[rows] = _sample_sorted(probs[rows], top_p, generator)
    return tokens


def _without_tokens(probs: torch.Tensor, model_probs: torch.Tensor, rows: torch.Tensor,
                    ids: torch.Tensor) -> torch.Tensor:
    """``probs`` with the tokens ``ids`` taken out on the marked ``rows`` and renormalised; a marked row whose
    truncation kept nothing else falls back to the model's own distribution over the other tokens."""
    probs = probs.clone()
    probs[:, ids] = torch.where(rows[:, None], 0.0, probs[:, ids])
    fallback = model_probs.clone()
    fallback[:, ids] = 0.0
    probs = torch.where(probs.sum(-1, keepdim=True) > 0, probs, fallback)
    return probs / probs.sum(-1, keepdim=True).clamp_min(1e-30)


def _outside_nucleus(probs: torch.Tensor, tokens: torch.Tensor, top_p: float) -> torch.Tensor:
    """True where the tokens more likely than the drawn one already hold ``top_p`` of the mass."""
    p_tok = probs.gather(-1, tokens[:, None])
    return torch.where(probs > p_tok, probs, 0.0).sum(-1) >= top_p


_MAX_REJECTION_ROUNDS = 8


def _sample_sorted(probs: torch.Tensor, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Top-p by sorting (the textbook method; the fallback of :func:`sample_next`)."""
    sorted_p, index = probs.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p  # probability mass of the more likely tokens
    sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)
    return index.gather(-1, _draw(sorted_p, generator)[:, None]).squeeze(-1)


def _draw(weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row with probability proportional to ``weights`` (>= 0; a zero weight is
    never drawn): inverse CDF with u in (0, total]."""
    cdf = weights.cumsum(-1)
    u = (1.0 - torch.rand((weights.shape[0], 1), generator=generator, device=weights.device)) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).squeeze(-1).clamp_(max=weights.shape[-1] - 1)


# --------------------------------------------------------------------------------------------
# Encoding, decoding
# --------------------------------------------------------------------------------------------


def _bos_id(tok: Any) -> int:
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def _encode_prompts(tok: Any, prompts: Sequence[str], starts: Sequence[str] | None = None) -> list[list[int]]:
    """The prefix token ids of each prompt, exactly as :func:`~synthtext.models.encode_examples` builds them."""
    for name, strings in (("prompts", prompts), ("starts", starts)):
        if isinstance(strings, str):
            raise DataError(f"{name} must be a list of strings, got one string.")
        for i, p in enumerate(strings or []):
            if not isinstance(p, str):
                raise DataError(f"{name[:-1]} {i} is {type(p).__name__}, expected str.")
    prompts = list(prompts)
    if starts is not None and len(starts) != len(prompts):
        raise DataError(f"got {len(prompts)} prompts but {len(starts)} starts.")
    return prompt_prefixes(tok, prompts, None if starts is None else list(starts))


_STOP_TOKENS: dict = {}


def _missing_text_openings(tok: Any, device) -> torch.Tensor:
    """The tokens that begin a missing text: EOS (an empty text) and the first token of the missing marker
    (:data:`synthtext.prompts.MISSING`, encoded as training encodes a text). :func:`sample_next` draws them
    at a text's first token with the model's own probability."""
    from .prompts import MISSING

    ids = {tok.eos_token_id, encode_texts(tok, [MISSING])[0][0]}
    return torch.tensor(sorted(ids), dtype=torch.long, device=device)


def _missing_value_openings(tok: Any, device) -> torch.Tensor:
    """The first token of the missing marker as it follows a field's ``name:`` in a whole row (`` <`` for
    SmolLM2's tokenizer), encoded as starts are: a missing value is drawn at the model's rate, as a
    missing text is."""
    from .prompts import KEY_SEPARATOR, MISSING

    key = "Name" + KEY_SEPARATOR.rstrip()
    before, after = prompt_prefixes(tok, ["", ""], [key, key + KEY_SEPARATOR[len(KEY_SEPARATOR.rstrip()):] + MISSING])
    return torch.tensor([after[len(before)]], dtype=torch.long, device=device)


def _stop_token_ids(tok: Any, characters: str, device) -> torch.Tensor:
    """The ids of every token whose text holds one of ``characters`` (computed once per tokenizer)."""
    key = (id(tok), characters)
    if key not in _STOP_TOKENS:
        size = len(tok) if hasattr(tok, "__len__") else tok.vocab_size  # the byte tokenizer has no len()
        texts = tok.batch_decode([[i] for i in range(size)], skip_special_tokens=False)
        ids = [i for i, text in enumerate(texts) if any(ch in text for ch in characters)]
        _STOP_TOKENS[key] = (tok, torch.tensor(ids, dtype=torch.long))  # tok kept so its id is not reused
    return _STOP_TOKENS[key][1].to(device)


def _end_choice_ids(tok: Any, characters: str, device) -> torch.Tensor:
    """EOS first, then every other token holding one of ``characters``: the ends drawn at the model's odds."""
    ids = _stop_token_ids(tok, characters, device)
    return torch.cat([ids.new_tensor([tok.eos_token_id]), ids[ids != tok.eos_token_id]])


def _cut_all(rows: list[list[int]], eos_id: int, budgets: Sequence[int], stop_ids: torch.Tensor | None) -> list[list[int]]:
    """:func:`_cut` for every finished row of a batch (the stop ids turned into a set once)."""
    stops = frozenset() if stop_ids is None else frozenset(stop_ids.tolist())
    return [_cut(r, eos_id, b, stops) for r, b in zip(rows, budgets)]


def _decode(tok: Any, ids: list[list[int]]) -> list[str]:
    if not ids:
        return []
    return list(tok.batch_decode(ids, skip_special_tokens=True))


def _context_length(trained: TrainedModel) -> int | None:
    if trained.builtin_config is not None:
        return trained.builtin_config.max_positions
    config = getattr(trained.model, "config", None)
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def _left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[r, width - len(s) :] = 1
    return ids.to(device), mask.to(device)


def _cut(row: list[int], eos_id: int, budget: int, stops: frozenset = frozenset()) -> list[int]:
    """A finished row's tokens: up to its budget, without EOS and what follows; through the first stop
    token (kept) when one of ``stops`` ended it (the positions after a finished row hold padding)."""
    row = row[:budget]
    for k, token in enumerate(row):
        if token == eos_id:
            return row[:k]
        if token in stops:
            return row[: k + 1]
    return row


def _progress_bar(total: int, enabled: bool) -> Progress:
    """A bar on a terminal, ``generating: 256/500 texts (51%) 3.1 texts/s ...`` lines elsewhere, or nothing."""
    return Progress(total, "generating", unit="text", show_rate=True, enabled=enabled)


# --------------------------------------------------------------------------------------------
# The model used for decoding
# --------------------------------------------------------------------------------------------


_DTYPES = {name: getattr(torch, name) for name in DECODING_DTYPES if name != "auto"}


def _resolve_dtype(dtype: str | torch.dtype, device: torch.device, pretrained: bool = True) -> torch.dtype | None:
    """The decoding dtype, or None to keep the model's."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():  # GPU only: untested here
            return torch.bfloat16
        if device.type == "cpu" and pretrained and cpu_has_native_bf16():
            return torch.bfloat16  # the byte model stays fp32 on a CPU: it is small, and was measured so
        return None
    return _DTYPES[dtype]  # a name SamplingConfig accepted


_SHARED_COPIES: dict[int, dict] = {}
"""id(trained) -> {(dtype, merge_lora): decoding copy}, while :func:`one_decoding_copy` holds it."""


@contextlib.contextmanager
def one_decoding_copy(trained: TrainedModel):
    """The :func:`generate_texts` calls inside share one decoding copy of ``trained``'s model per sampling
    dtype and LoRA merge, made at the first call and freed on exit. Whole rows (:mod:`synthtext.whole_row`)
    decode one column at a time, and every call made its own copy (all weights copied, cast, LoRA merged)."""
    key = id(trained)
    if key in _SHARED_COPIES:  # nested: the outer holder frees it
        yield
        return
    _SHARED_COPIES[key] = {}
    try:
        yield
    finally:
        del _SHARED_COPIES[key]
        release_freed_memory()


def _inference_model(trained: TrainedModel, sampling: SamplingConfig) -> torch.nn.Module:
    """The network to decode with: ``trained.model`` itself, or a copy with LoRA merged and/or
    another dtype (``sampling.merge_lora``, ``sampling.dtype``), reused inside :func:`one_decoding_copy`.
    The trained model is never modified."""
    shared = _SHARED_COPIES.get(id(trained))
    if shared is None:
        return _decoding_copy(trained, sampling)
    key = (sampling.dtype, sampling.merge_lora)
    if key not in shared:
        shared[key] = _decoding_copy(trained, sampling)
    return shared[key]


def _decoding_copy(trained: TrainedModel, sampling: SamplingConfig) -> torch.nn.Module:
    model = trained.model
    merge_lora = sampling.merge_lora
    p = next(model.parameters())
    want = _resolve_dtype(sampling.dtype, p.device, pretrained=not isinstance(model, ByteTransformerLM))
    is_peft = hasattr(model, "merge_and_unload") and hasattr(model, "peft_config")
    hf = not isinstance(model, ByteTransformerLM)
    cpu_attention = p.device.type == "cpu" and hasattr(model, "set_attn_implementation")
    if (merge_lora and is_peft) or (want is not None and want != p.dtype) or hf:
        model = copy.deepcopy(model, _frozen_weights_as(model, want))
        if merge_lora and is_peft:
            model = model.merge_and_unload()
        if want is not None and want != p.dtype:
            model = model.to(want)
        if hf:
            inner = model.get_base_model() if hasattr(model, "get_base_model") else model
            if cpu_attention:
                # one query against the cache: torch's CPU flash-attention kernel took ~half of each decoding
                # step of SmolLM2-135M; plain matmul attention made a step 1.7x faster, and reading the
                # grouped key/value heads in place (no repeat_kv copy of the cache) faster again
                use_grouped_attention(inner)
            inner.set_output_embeddings(_ContiguousHead(inner.get_output_embeddings()))
    return model.eval()


def _frozen_weights_as(model: torch.nn.Module, dtype: torch.dtype | None) -> dict:
    """A ``copy.deepcopy`` memo that copies the frozen weights straight into the decoding dtype. Without it
    the whole model was first copied in full precision (0.5 GB for SmolLM2-135M) and then cast: the copy
    step peaked 0.31 GiB higher and the process kept part of the freed pages. Trained (LoRA) weights are
    copied as they are and merged after, as before."""
    if dtype is None:
        return {}
    return {id(t): torch.nn.Parameter(t.detach().to(dtype), requires_grad=False) for t in model.parameters()
            if not t.requires_grad and t.is_floating_point() and t.dtype != dtype}


class _ContiguousHead(torch.nn.Module):
    """The output layer, fed a contiguous input. ``logits_to_keep`` hands it a strided slice (B, 1, H) of
    the last hidden states, and torch then multiplies it by a copy of the weight per row (a (B, H, vocab)
    tensor: 4.5 s for 32 rows of SmolLM2, per prefill); contiguous, it is one matrix product."""

    def __init__(self, head: torch.nn.Module):
        super().__init__()
        self.head = head

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head(hidden.contiguous())


@contextlib.contextmanager
def _clean_generation_config(model: torch.nn.Module, tok: Any):
    """Decode with a neutral generation config (no repetition penalty, top-k, min length... from a
    hub ``generation_config.json``): only what we pass applies. Restored afterwards."""
    from transformers import GenerationConfig

    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = hf.generation_config
    hf.generation_config = GenerationConfig(
        bos_token_id=_bos_id(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    try:
        yield
    finally:
        hf.generation_config = saved


# --------------------------------------------------------------------------------------------
# Decoding loops
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def _sample_builtin(
    model: ByteTransformerLM,
    seqs: list[list[int]],
    budgets: list[int],
    *,
    pad_id: int,
    eos_id: int,
    sampling: SamplingConfig,
    generator: torch.Generator,
    stop_ids: torch.Tensor | None = None,
    openings: torch.Tensor | None = None,
    end_ids: torch.Tensor | None = None,
) -> list[list[int]]:
    """One batch through the built-in model with a KV cache; finished rows leave the batch
    (``stop_ids``: tokens that finish a row as EOS does, but are kept; ``openings``: see :func:`sample_next`)."""
    device = model.tok_emb.weight.device
    ids, mask = _left_pad(seqs, pad_id, device)
    n, width = ids.shape
    steps = max(budgets)
    limit = torch.tensor(budgets, device=device)
    cache = model.new_cache(n, width + steps - 1)  # the last sampled token is never fed back
    logits = model(ids, mask, cache=cache, logits_to_keep=1)[:, -1]
    out = torch.full((n, steps), pad_id, dtype=torch.long, device=device)
    rows = torch.arange(n, device=device)  # batch row of each sequence still in the batch
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    for step in range(steps):
        if sampling.no_repeat_ngram:
            logits = ban_repeated_ngrams(logits, out[rows, :step], torch.full_like(rows, step),
                                         sampling.no_repeat_ngram)
        first = step == 0 and openings is not None
        nxt = sample_next(logits, temperature=sampling.temperature, top_p=sampling.top_p, min_p=sampling.min_p,
                          generator=generator, at_start=torch.ones_like(finished) if first else None,
                          untruncated_ids=openings, end_ids=end_ids)
        out[rows, step] = nxt.masked_fill(finished, pad_id)
        finished |= (nxt == eos_id) | (limit[rows] <= step + 1)
        if stop_ids is not None:
            finished |= torch.isin(nxt, stop_ids)
        n_done = int(finished.sum())  # the one host sync per step
        if n_done == len(rows):
            break
        if n_done >= COMPACT_FRACTION * len(rows):  # drop finished rows (copies the cache: not every step)
            live = ~finished
            rows, nxt, finished = rows[live], nxt[live], finished[live]
            cache.select(live)
        # rows that finished but are still in the batch are fed as padding: their positions stop
        logits = model(nxt[:, None], (~finished)[:, None].long(), cache=cache, logits_to_keep=1)[:, -1]
    return _cut_all(out.tolist(), eos_id, budgets, stop_ids)


@torch.no_grad()
def _sample_hf(
    model: torch.nn.Module,
    seqs: list[list[int]],
    budgets: list[int],
    *,
    pad_id: int,
    eos_id: int,
    sampling: SamplingConfig,
    generator: torch.Generator | None = None,
    stop_ids: torch.Tensor | None = None,
    openings: torch.Tensor | None = None,
    end_ids: torch.Tensor | None = None,
) -> list[list[int]]:
    """One batch through ``transformers``' ``generate`` (left padding, KV cache; a static one with
    ``sampling.static_cache``). ``stop_ids`` is not used here: rows write on to EOS or their budget.

    Sampling is ours (:func:`sample_next`, with ``generator``), run as a logits processor that
    leaves only the drawn token; ``generate`` then decodes greedily. Same distribution as
    ``do_sample=True`` with ``temperature``/``top_p``, but reproducible without touching torch's
    global RNG, and cheaper over a large vocabulary.
    """
    device = next(model.parameters()).device
    ids, mask = _left_pad(seqs, pad_id, device)
    width = ids.shape[1]
    # Run to the largest budget; every row's total must still fit the positions it uses.
    steps = max(budgets)
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None) or getattr(
        getattr(model, "config", None), "n_positions", None
    )
    if context is not None:
        steps = min(steps, context - max(len(s) for s in seqs))
    options: dict[str, Any] = {"do_sample": False}
    if sampling.temperature > 0 or sampling.no_repeat_ngram:  # (greedy with the guard: the processor's argmax)
        options["logits_processor"] = _sampling_processor(sampling, generator, openings, end_ids)
    if sampling.static_cache:  # GPU only (untested here): transformers compiles the decoding step
        options["cache_implementation"] = "static"
    out = model.generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=steps, min_new_tokens=0, num_beams=1,
        eos_token_id=eos_id, pad_token_id=pad_id, use_cache=True, **options,
    )
    new = out[:, width:].tolist()
    return [_cut(r, eos_id, b) for r, b in zip(new, budgets)]



def _preallocated_cache(model: torch.nn.Module):
    """An empty ``DynamicCache`` whose layers write into buffers allocated ahead (:class:`_RowBuffers`
    layers), instead of concatenating the whole cache at every step (at 128 rows x 200 tokens that copy took
    ~40% of a CPU decoding step); their rows can be dropped, joined and trimmed, which continuous batching
    needs. Models with other layer kinds (sliding windows) keep the plain cache: their batches then run to
    their end without refills (``_joinable``)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    if all(type(layer) is DynamicLayer for layer in cache.layers):
        cache.layers = [_row_buffers_layer() for _ in cache.layers]
    return cache


@functools.lru_cache(maxsize=1)
def _row_buffers_class():
    from transformers.cache_utils import DynamicLayer

    class _RowBuffers(DynamicLayer):
        """One layer's keys and values in buffers (rows, heads, slots, dim) of which the first ``_n`` slots are in
        use, every row right-aligned to slot ``_n``; when full they grow by :data:`CACHE_GROW_TOKENS` slots
        (not doubled: at a doubling the old and the new buffers were held together, the peak of a run)."""

        def lazy_initialization(self, key_states, value_states):
            super().lazy_initialization(key_states, value_states)
            b, h, t, d = key_states.shape
            self._k = key_states.new_empty((b, h, t + CACHE_GROW_TOKENS, d))
            self._v = value_states.new_empty((b, h, t + CACHE_GROW_TOKENS, value_states.shape[-1]))
            self._n = 0

        def _set(self, k: torch.Tensor, v: torch.Tensor, n: int) -> None:
            if not self.is_initialized:
                super().lazy_initialization(k, v)
            self._k, self._v, self._n = k, v, n
            self.keys, self.values = k[:, :, :n], v[:, :, :n]

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            t = key_states.shape[-2]
            if self._n + t > self._k.shape[2]:
                k, v = self._k, self._v
                size = self._n + t + CACHE_GROW_TOKENS
                self._k = k.new_empty((*k.shape[:2], size, k.shape[3]))
                self._v = v.new_empty((*v.shape[:2], size, v.shape[3]))
                self._k[:, :, :self._n], self._v[:, :, :self._n] = k[:, :, :self._n], v[:, :, :self._n]
            self._k[:, :, self._n:self._n + t] = key_states
            self._v[:, :, self._n:self._n + t] = value_states
            self._set(self._k, self._v, self._n + t)
            return self.keys, self.values

        def batch_select_indices(self, indices):
            self.keep(indices, 0)

        def keep(self, rows: torch.Tensor, lead: int) -> None:
            """Only ``rows``, without the first ``lead`` slots (padding for every row kept)."""
            if self.is_initialized:
                n = self._n - lead
                self._set(*(_with_slack(b[rows, :, lead:self._n], n) for b in (self._k, self._v)), n)

        def seed(self, keys: torch.Tensor, values: torch.Tensor, rows: int, slots: int) -> None:
            """Start as ``rows`` copies of a one-row cache (``keys``, ``values``: (1, heads, n, dim)), room for
            ``slots`` more tokens."""
            n = keys.shape[2]
            self._set(*(_with_slack(b.expand(rows, -1, -1, -1), n, slots) for b in (keys, values)), n)

        def join(self, other: "_RowBuffers") -> None:
            """``other``'s rows after these, both right-aligned to the wider of the two."""
            n = max(self._n, other._n)
            parts = []
            for mine, theirs in ((self._k, other._k), (self._v, other._v)):
                # zeros, not empty: the mask hides the padding slots, but garbage there can be NaN, and a NaN
                # key or value poisons the attention output even at weight 0
                b = mine.new_zeros((mine.shape[0] + theirs.shape[0], mine.shape[1], n + CACHE_GROW_TOKENS,
                                    mine.shape[3]))
                b[: mine.shape[0], :, n - self._n:n] = mine[:, :, :self._n]
                b[mine.shape[0]:, :, n - other._n:n] = theirs[:, :, :other._n]
                parts.append(b)
            self._set(*parts, n)

    return _RowBuffers


def _row_buffers_layer():
    return _row_buffers_class()()


def _with_slack(values: torch.Tensor, n: int, slack: int | None = None) -> torch.Tensor:
    """A fresh buffer holding ``values`` (rows, heads, n, dim) in its first ``n`` slots, with room for more."""
    out = values.new_empty((*values.shape[:2], n + (CACHE_GROW_TOKENS if slack is None else slack), values.shape[3]))
    out[:, :, :n] = values
    return out


def _joinable(cache) -> bool:
    return all(isinstance(layer, _row_buffers_class()) for layer in cache.layers)


CACHE_GROW_TOKENS = 64
"""Slots a decoding KV cache holds beyond what it uses, and adds when full."""


REFILL_FRACTION = 0.25
"""Hugging Face models: once this fraction of a batch's rows have finished, waiting prompts take their places
(continuous batching: the rows still writing keep their KV cache and go on)."""


class _Rows:
    """The rows a decoding batch is writing: their prompt index, attention mask (one column per cache slot),
    next position, tokens written and budget, and whether they have finished (they stay, masked, until dropped)."""

    def __init__(self, index, mask, next_pos, budget, device, judged: bool = False):
        self.index, self.mask, self.next_pos, self.budget = index, mask, next_pos, budget
        self.written = torch.zeros_like(index)
        self.finished = torch.zeros(len(index), dtype=torch.bool, device=device)
        self.undecided = torch.full((len(index),), judged, dtype=torch.bool, device=device)  # markup: not yet judged

    def __len__(self) -> int:
        return len(self.index)

    def keep(self, rows: torch.Tensor, lead: int) -> None:
        self.index, self.next_pos, self.budget = self.index[rows], self.next_pos[rows], self.budget[rows]
        self.written, self.finished, self.undecided = self.written[rows], self.finished[rows], self.undecided[rows]
        self.mask = self.mask[rows, lead:]

    def join(self, other: "_Rows") -> None:
        width = max(self.mask.shape[1], other.mask.shape[1])
        pad = lambda m: torch.nn.functional.pad(m, (width - m.shape[1], 0))  # noqa: E731  (padding on the left)
        self.mask = torch.cat([pad(self.mask), pad(other.mask)])
        for name in ("index", "next_pos", "budget", "written", "finished", "undecided"):
            setattr(self, name, torch.cat([getattr(self, name), getattr(other, name)]))


@torch.no_grad()
def _stream_decoder(model, prompt_ids, budgets, order, batch_size, results, bar, *, pad_id, eos_id,
                    sampling, generator, stop_ids=None, openings=None, end_ids=None,
                    markup: _MarkupRedraws | None = None) -> None:
    """Decode every prompt with continuous batching: one batch of at most ``batch_size`` rows, each row leaving
    it when it finishes (EOS, a stop token or its budget) and, once :data:`REFILL_FRACTION` of the places are
    free, waiting prompts (in ``order``) encoded and joined to it; the rows still writing keep their KV cache.
    The prompts' shared first tokens (the chat template's system turn and the request's first words: 34 of 59
    tokens in the README job) are encoded once (:func:`~synthtext.llm.shared_prefix_length`). Greedy decoding
    gives what decoding each prompt alone gives (tested). ``markup``: rows that open with markup are drawn again
    (:class:`_MarkupRedraws`)."""
    device = next(model.parameters()).device
    waiting = collections.deque(order)
    tokens = torch.full((len(prompt_ids), max(budgets)), pad_id, dtype=torch.long, device=device)
    budget_of = torch.tensor(budgets, dtype=torch.long, device=device)
    shared = shared_prefix_length(prompt_ids)
    prefix = _prefix_states(model, prompt_ids[order[0]][:shared]) if shared else None
    if prefix is None:  # nothing shared, or a cache that cannot be seeded (sliding windows)
        shared = 0
    cache = rows = logits = None
    done = 0  # rows of the batch that have finished and are still in it
    while waiting or rows is not None:
        open_places = batch_size - (0 if rows is None else len(rows) - done)
        refill = (rows is not None and waiting and _joinable(cache)
                  and open_places >= max(1, REFILL_FRACTION * batch_size))
        joined = rows is None or refill  # new rows, at their text's first token
        if joined:
            if rows is not None:
                cache, rows, logits = _drop_finished(cache, rows, logits)
                done = 0
            group = [waiting.popleft() for _ in range(min(batch_size - (0 if rows is None else len(rows)),
                                                          len(waiting)))]
            new_cache, new_rows, new_logits = _prefill(model, [prompt_ids[i] for i in group], group, budget_of,
                                                       shared, prefix, pad_id, device, judged=markup is not None)
            if rows is None or not len(rows):
                cache, rows, logits = new_cache, new_rows, new_logits
            else:
                for layer, other in zip(cache.layers, new_cache.layers):
                    layer.join(other)
                rows.join(new_rows)
                logits = torch.cat([logits, new_logits])
                release_freed_memory(collect=False)  # the two caches joined: the old buffers, before they pile up
        if sampling.no_repeat_ngram:
            logits = ban_repeated_ngrams(logits, tokens[rows.index], rows.written, sampling.no_repeat_ngram)
        at_start = rows.written == 0 if joined and openings is not None else None
        nxt = sample_next(logits, temperature=sampling.temperature, top_p=sampling.top_p, min_p=sampling.min_p,
                          generator=generator, at_start=at_start, untruncated_ids=openings, end_ids=end_ids)
        writing = ~rows.finished
        tokens[rows.index[writing], rows.written[writing]] = nxt[writing]
        rows.written += writing.long()
        ended = (nxt == eos_id) | (rows.written >= rows.budget)
        if stop_ids is not None:
            ended |= torch.isin(nxt, stop_ids)
        again = markup.rejected(tokens, rows, writing, ended) if markup is not None and rows.undecided.any() else []
        if again:  # these rows leave now; their prompts wait for a fresh start
            positions = torch.tensor(again, dtype=torch.long, device=device)
            ended[positions] = True
            tokens[rows.index[positions]] = pad_id
            waiting.extend(rows.index[positions].tolist())
        rows.finished |= ended
        n_done = int(rows.finished.sum())  # the one host sync per step
        bar.update(n_done - done - len(again))
        done = n_done
        if n_done == len(rows):
            cache = rows = logits = None  # every row has finished: the next prompts start a fresh cache
            done = 0
            release_freed_memory(collect=False)
            continue
        if n_done >= COMPACT_FRACTION * len(rows):
            cache, rows, nxt = _drop_finished(cache, rows, nxt)
            done = 0
            # the larger buffers just copied from (~5 ms): without it the heap kept them, fragmented, and the
            # last ~20 s of the README job's decoding climbed from 3.3 to 4.2 GiB (500 texts alone: 3.76 -> 3.14)
            release_freed_memory(collect=False)
        rows.mask = torch.cat([rows.mask, (~rows.finished)[:, None].long()], dim=1)
        logits = model(input_ids=nxt[:, None], attention_mask=rows.mask, position_ids=rows.next_pos[:, None],
                       past_key_values=cache, use_cache=True).logits[:, -1]
        rows.next_pos = rows.next_pos + 1
    stops = frozenset() if stop_ids is None else frozenset(stop_ids.tolist())
    written = tokens[torch.tensor(order, dtype=torch.long, device=device)].tolist()
    for i, row in zip(order, written):  # the prompts decoded here (``order`` may be some of them)
        results[i] = _cut(row, eos_id, budgets[i], stops)


def _prefix_states(model, prefix: list[int]):
    """The KV cache of the shared prefix (one row), or None where the cache cannot be seeded (sliding windows)."""
    device = next(model.parameters()).device
    cache = _preallocated_cache(model)
    if not _joinable(cache):
        return None
    ids = torch.tensor([prefix], dtype=torch.long, device=device)
    model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=torch.arange(len(prefix), device=device)[None],
          past_key_values=cache, use_cache=True, logits_to_keep=1)
    return [(layer.keys, layer.values) for layer in cache.layers]


def _prefill(model, seqs, index, budget_of, shared, prefix, pad_id, device, judged=False):
    """Encode new prompts (their tokens after the shared prefix, left-padded among themselves, the prefix's
    cached states copied in front): their cache, their :class:`_Rows` and the logits of their next token."""
    cache = _preallocated_cache(model)
    if shared:
        seqs = [s[shared:] for s in seqs]
    ids, mask = _left_pad(seqs, pad_id, device)
    if shared:
        for layer, (keys, values) in zip(cache.layers, prefix):
            layer.seed(keys, values, len(seqs), ids.shape[1] + CACHE_GROW_TOKENS)
        mask = torch.cat([mask.new_ones((len(seqs), shared)), mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, mask.shape[1] - ids.shape[1]:]
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                   use_cache=True, logits_to_keep=1).logits[:, -1]
    index = torch.tensor(index, dtype=torch.long, device=device)
    return cache, _Rows(index, mask, mask.sum(-1), budget_of[index], device, judged), logits


def _drop_finished(cache, rows: _Rows, per_row: torch.Tensor):
    """The batch without its finished rows, and without the leading cache slots that were padding for every
    row left (the slots of rows that finished long ago)."""
    live = (~rows.finished).nonzero().squeeze(-1)
    lead = int(rows.mask[live].any(0).long().argmax()) if len(live) else 0
    if _joinable(cache):
        for layer in cache.layers:
            layer.keep(live, lead)
    else:
        cache.batch_select_indices(live)
        lead = 0
    rows.keep(live, lead)
    return cache, rows, per_row[live]


def _sampling_processor(sampling: SamplingConfig, generator: torch.Generator | None,
                        openings: torch.Tensor | None = None, end_ids: torch.Tensor | None = None):
    from transformers import LogitsProcessor, LogitsProcessorList

    class _Sample(LogitsProcessor):
        prompt_width = None  # generate's first call sees the (left-padded) prompts only

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            first = self.prompt_width is None and openings is not None
            if self.prompt_width is None:
                self.prompt_width = input_ids.shape[1]
            if sampling.no_repeat_ngram:
                text = input_ids[:, self.prompt_width:]
                written = torch.full((len(text),), text.shape[1], device=text.device)
                scores = ban_repeated_ngrams(scores, text, written, sampling.no_repeat_ngram)
            at_start = torch.ones(len(scores), dtype=torch.bool, device=scores.device) if first else None
            nxt = sample_next(scores, temperature=sampling.temperature, top_p=sampling.top_p,
                              min_p=sampling.min_p, generator=generator, at_start=at_start, untruncated_ids=openings,
                              end_ids=end_ids)
            return torch.full_like(scores, -math.inf).scatter_(1, nxt[:, None], 0.0)

    return LogitsProcessorList([_Sample()])

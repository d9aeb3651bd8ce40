"""Generation throughput: synthtext's ``generate_token_ids`` vs a plain loop, same model, prompts,
batch size and machine, in one run.

Reports generated tokens/s of each side and their ratio (ours / plain). The two sides alternate
``--repeats`` times and the median of the per-pair ratios is reported, so a busy spell on a shared
machine hits both. Weights are random (throughput does not depend on them; nothing is
downloaded); prompts are real: ``examples/reviews_500.csv`` rows through ``prompts.build_prompt``
(conditions Rating, Recommended IND, Department Name, Age; text column Review Text), encoded as
UTF-8 bytes (the built-in model's tokenizer, used for the GPT-2-shaped models too: ~90 tokens a
prompt, about 3-4x what GPT-2's own BPE would give).

The plain side:
* built-in model: a loop without KV cache (a full forward over the whole sequence per new
  token), prompts in input order, left-padded batches, stopping when every row has finished;
* Hugging Face models: ``model.generate`` on the trained (unmerged LoRA) model, prompts in input
  order, left padding, ``do_sample=True``, same temperature/top-p, ``use_cache=True``.
Both sides sample with temperature 1.0 and top-p 0.95 and count new tokens up to (not
including) EOS.

CPU (built-in ``small`` model and a small random GPT-2-shaped model + LoRA; 200 prompts, 128 new
tokens, batch 64):
    .venv/bin/python bench/bench_generate.py cpu
The default model (SmolLM2-135M-Instruct, real weights, random LoRA on the top 2 layers; prompts in words
through its chat template; batch 128): variants ours, ours with transformers' eager attention, ours at
batch 64 (docs/benchmarks/generate_cpu_smollm2.json):
    .venv/bin/python bench/bench_generate.py cpu --models smollm2 --prompts 128 --max-new-tokens 160 --repeats 2
GPU (random GPT-2 124M + LoRA r=8 on all linear layers at batch 64 and 512, 64 new tokens; the
built-in ``base`` model at batch 256):
    .venv/bin/python bench/bench_generate.py gpu
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from _results import finish  # bench/ is on sys.path when run as a script

from synthtext.config import PrivacyConfig, PrivacyLedger, TrainConfig
from synthtext.generate import _encode_prompts, _left_pad, generate_token_ids, sample_next
from synthtext.models import BaseModel, ByteTokenizer, TrainedModel, add_lora, load_base_model
from synthtext.prompts import build_prompt, instruction_prompt

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ROOT / "examples" / "reviews_500.csv"
CONDITIONS = ["Rating", "Recommended IND", "Department Name", "Age"]
TEXT = "Review Text"
TEMPERATURE, TOP_P = 1.0, 0.95


def review_prompts(n: int, style: str = "plain") -> list[str]:
    """``n`` prompts built from examples/reviews_500.csv (cycled if n > 500); ``style="instruction"``: the
    prompt in words that the default (instruction-tuned) model gets."""
    with open(REVIEWS, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    build = instruction_prompt if style == "instruction" else build_prompt
    return [build(rows[i % len(rows)], CONDITIONS, TEXT) for i in range(n)]


def wrap(base: BaseModel, model: torch.nn.Module) -> TrainedModel:
    ledger = PrivacyLedger(dp=False, epsilon=None, delta=None, noise_multiplier=None, sample_rate=None, steps=0,
                           epochs=0.0, accountant=None, max_grad_norm=None, n_records=0, model=base.name)
    return TrainedModel(model=model.eval(), tokenizer=base.tokenizer, base_name=base.name, kind=base.kind,
                        family=base.family, ledger=ledger, train_config=TrainConfig(),
                        privacy_config=PrivacyConfig(epsilon=None), builtin_config=base.builtin_config)


def builtin_model(size: str, device: str) -> TrainedModel:
    base = load_base_model(None, size=size)
    base.model.to(device)
    return wrap(base, base.model)


def gpt2_lora(device: str, **shape) -> TrainedModel:
    """A random GPT-2-shaped model with a random (non-zero) LoRA r=8 on all linear layers."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = ByteTokenizer()
    torch.manual_seed(0)
    cfg = GPT2Config(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                     **shape)
    net = GPT2LMHeadModel(cfg).to(device)
    base = BaseModel(net, tok, f"random-gpt2-{cfg.n_layer}x{cfg.n_embd}", "pretrained", "gpt2",
                     max_positions=cfg.n_positions)
    model = add_lora(base, TrainConfig(lora_r=8, target_modules="all-linear"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02)
    return wrap(base, model)


def smollm2_lora(device: str) -> TrainedModel:
    """The default model (SmolLM2-135M-Instruct, real weights, so texts end where the model ends them) with a
    small random LoRA on the top 2 layers, as the CPU default trains."""
    base = load_base_model(None)
    base.model.to(device)
    torch.manual_seed(0)
    model = add_lora(base, TrainConfig(lora_r=8, lora_layers=2))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 1e-3)
    return wrap(base, model)


@contextlib.contextmanager
def eager_attention():
    """Decode with transformers' eager attention (repeat_kv copies) instead of synthtext's grouped one."""
    import synthtext.generate as G

    saved = G.use_grouped_attention
    G.use_grouped_attention = lambda model: model.set_attn_implementation("eager")
    try:
        yield
    finally:
        G.use_grouped_attention = saved


# --------------------------------------------------------------------------------------------
# The plain side
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def plain_builtin(trained: TrainedModel, prompts, batch_size: int, max_new: int, seed: int) -> list[list[int]]:
    """No KV cache: one full forward over the whole (left-padded) batch per new token."""
    model, tok = trained.model, trained.tokenizer
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    enc = _encode_prompts(tok, prompts)
    out = []
    for i in range(0, len(enc), batch_size):
        ids, mask = _left_pad(enc[i : i + batch_size], tok.pad_token_id, dev)
        width = ids.shape[1]
        finished = torch.zeros(len(ids), dtype=torch.bool, device=dev)
        for _ in range(max_new):
            logits = model(ids, mask)[:, -1]
            nxt = sample_next(logits, temperature=TEMPERATURE, top_p=TOP_P, generator=gen)
            nxt = torch.where(finished, torch.full_like(nxt, tok.pad_token_id), nxt)
            finished |= nxt == tok.eos_token_id
            ids = torch.cat([ids, nxt[:, None]], 1)
            mask = torch.cat([mask, (~finished | (nxt == tok.eos_token_id)).long()[:, None]], 1)
            if bool(finished.all()):
                break
        out += [_until_eos(r, tok.eos_token_id) for r in ids[:, width:].tolist()]
    return out


@torch.no_grad()
def plain_hf(trained: TrainedModel, prompts, batch_size: int, max_new: int, seed: int) -> list[list[int]]:
    """``model.generate`` on the model as trained (LoRA unmerged), prompts in input order."""
    model, tok = trained.model, trained.tokenizer
    dev = next(model.parameters()).device
    torch.manual_seed(seed)
    enc = _encode_prompts(tok, prompts)
    out = []
    for i in range(0, len(enc), batch_size):
        ids, mask = _left_pad(enc[i : i + batch_size], tok.pad_token_id, dev)
        gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=TEMPERATURE,
                             top_p=TOP_P, top_k=0, max_new_tokens=max_new, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id, use_cache=True)
        out += [_until_eos(r, tok.eos_token_id) for r in gen[:, ids.shape[1] :].tolist()]
    return out


def _until_eos(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def _timed(fn, device: str) -> tuple[float, int, float]:
    """(seconds, new tokens, CPU seconds of this process)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, sum(len(o) for o in out), time.process_time() - c0


def compare(name: str, trained: TrainedModel, prompts, *, batch_size: int, max_new: int, repeats: int,
            device: str, variants: dict[str, dict], full_warmup: bool) -> dict:
    """Alternate plain / ours (each variant) ``repeats`` times; medians and median per-pair ratios."""
    plain = plain_builtin if trained.kind == "builtin" else plain_hf

    def ours(kw, seed, ps=prompts, n=max_new):
        kw = dict(kw)
        context = kw.pop("context", contextlib.nullcontext)
        size = kw.pop("batch_size", batch_size)

        def run():
            with context():
                return generate_token_ids(trained, ps, temperature=TEMPERATURE, top_p=TOP_P, max_new_tokens=n,
                                          batch_size=size, seed=seed, **kw)
        return run

    # warm-up (kernels, allocator, compilation for static caches): not reported
    warm_ps, warm_n = (prompts, max_new) if full_warmup else (prompts[:batch_size], 8)
    _timed(lambda: plain(trained, warm_ps, batch_size, warm_n, 0), device)
    for kw in variants.values():
        _timed(ours(kw, 0, warm_ps, warm_n), device)
    runs: dict[str, list] = {"plain": [], **{v: [] for v in variants}}
    for r in range(repeats):
        runs["plain"].append(_timed(lambda: plain(trained, prompts, batch_size, max_new, 1 + r), device))
        for v, kw in variants.items():
            runs[v].append(_timed(ours(kw, 1 + r), device))
    tps = {k: [tok / s for s, tok, _ in v] for k, v in runs.items()}
    row = {
        "model": name, "device": device, "prompts": len(prompts), "batch_size": batch_size,
        "max_new_tokens": max_new, "repeats": repeats,
        "plain_tokens_per_s": round(statistics.median(tps["plain"]), 1),
        "plain_tokens": [t for _, t, _ in runs["plain"]],
    }
    for v in variants:
        ratios = [o / p for o, p in zip(tps[v], tps["plain"])]
        cpu_ratios = [(to / co) / (tp / cp) for (_, to, co), (_, tp, cp) in zip(runs[v], runs["plain"])]
        row[v] = {
            "settings": {k: getattr(x, "__name__", str(x)) for k, x in variants[v].items()},
            "tokens_per_s": round(statistics.median(tps[v]), 1),
            "tokens": [t for _, t, _ in runs[v]],
            "ratio_median": round(statistics.median(ratios), 3),
            "pair_ratios": [round(x, 3) for x in ratios],
            "ratio_cpu_time_median": round(statistics.median(cpu_ratios), 3),
        }
    print(json.dumps(row), flush=True)
    return row


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


def bench_cpu(args) -> list[dict]:
    torch.set_num_threads(args.threads or os.cpu_count())
    prompts = review_prompts(args.prompts or 200)
    max_new, bs = args.max_new_tokens or 128, args.batch_size or 64
    rows = []
    if "builtin" in args.models:
        rows.append(compare("builtin-small", builtin_model("small", "cpu"), prompts, batch_size=bs,
                            max_new=max_new, repeats=args.repeats, device="cpu", variants={"ours": {}},
                            full_warmup=False))
    if "gpt2" in args.models:
        # small GPT-2 shape (4 layers, 256 wide, GPT-2's 50,257-token output layer)
        trained = gpt2_lora("cpu", n_layer=4, n_head=4, n_embd=256, n_positions=1024)
        rows.append(compare("gpt2-4x256-lora", trained, prompts, batch_size=bs, max_new=max_new,
                            repeats=args.repeats, device="cpu",
                            variants={"ours": {}, "ours_unmerged": {"merge_lora": False}}, full_warmup=False))
    if "smollm2" in args.models:
        # the default model on the README job's prompts; texts end at the model's own end token
        rows.append(compare("smollm2-135m-lora2", smollm2_lora("cpu"), review_prompts(args.prompts or 256,
                                                                                     "instruction"),
                            batch_size=args.batch_size or 128, max_new=max_new, repeats=args.repeats,
                            device="cpu", full_warmup=False,
                            variants={"ours": {}, "ours_eager_attention": {"context": eager_attention},
                                      "ours_batch_64": {"batch_size": 64}}))
    return rows


def bench_gpu(args) -> list[dict]:
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU: run `bench_generate.py cpu` instead")
    torch.backends.cuda.matmul.allow_tf32 = True
    max_new = args.max_new_tokens or 64
    rows = []
    if "gpt2" in args.models:
        trained = gpt2_lora("cuda")  # GPT2Config(): 124M, 12 layers, 768 wide, 1024 positions
        variants = {
            "ours": {},  # merged LoRA, bf16 ("auto"), dynamic cache, sorted prompts
            "ours_fp32": {"dtype": "float32"},
            "ours_static": {"static_cache": True},
        }
        for bs in args.batch_sizes or [64, 512]:
            prompts = review_prompts(args.prompts or max(2 * bs, 512))
            rows.append(compare("gpt2-124m-lora", trained, prompts, batch_size=bs, max_new=max_new,
                                repeats=args.repeats, device="cuda", variants=variants, full_warmup=True))
    if "builtin" in args.models:
        trained = builtin_model("base", "cuda")
        prompts = review_prompts(args.prompts or 512)
        rows.append(compare("builtin-base", trained, prompts, batch_size=256, max_new=max_new,
                            repeats=args.repeats, device="cuda",
                            variants={"ours": {}, "ours_fp32": {"dtype": "float32"}}, full_warmup=True))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", choices=["cpu", "gpu"])
    p.add_argument("--models", nargs="+", default=["builtin", "gpt2"], choices=["builtin", "gpt2", "smollm2"],
                   help="smollm2: the default model (CPU only; 256 prompts in words, batch 128)")
    p.add_argument("--prompts", type=int, default=None, help="prompts per run (default cpu 200, gpu 2x batch)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default cpu 128, gpu 64")
    p.add_argument("--batch-size", type=int, default=None, help="cpu batch size (default 64)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="gpu GPT-2 batch sizes (64 512)")
    p.add_argument("--repeats", type=int, default=3, help="alternating plain/ours rounds (medians reported)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    t0 = time.time()
    rows = bench_cpu(args) if args.target == "cpu" else bench_gpu(args)
    print("\n| model | batch | plain tok/s | variant | ours tok/s | ours / plain (median of pairs) | pairs |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        for v, d in r.items():
            if isinstance(d, dict) and "ratio_median" in d:
                print(f"| {r['model']} | {r['batch_size']} | {r['plain_tokens_per_s']} | {v} | {d['tokens_per_s']} "
                      f"| **{d['ratio_median']}** | {d['pair_ratios']} |")
    finish(rows, t0, args.out)


if __name__ == "__main__":
    main()

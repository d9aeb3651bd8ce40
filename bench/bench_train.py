"""Training throughput: DP-SGD vs plain training, same model, batch, data and machine.

Reports samples/s with DP divided by samples/s without DP, measured in the same run
(and, on a GPU, the ratio of peak GPU memory). Weights are random: throughput does not
depend on them, and nothing is downloaded.

CPU (the built-in byte model, the offline default):
    .venv/bin/python bench/bench_train.py cpu
GPU (random GPT-2-124M- and SmolLM-135M-shaped models, LoRA on all linear layers,
batch 32, 128 tokens):
    .venv/bin/python bench/bench_train.py gpu

Timing covers the training loop only (not privacy planning); the first run of each
model warms up kernels and is not reported. Non-DP and DP runs alternate (--repeats pairs)
and the medians are compared, so a busy spell on a shared machine hits both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass

import torch
from _results import finish  # bench/ is on sys.path when run as a script

from synthtext.config import PrivacyConfig, TrainConfig
from synthtext.models import BaseModel, EncodedExamples, encode_examples, load_base_model
from synthtext.train import train_private

WORDS = ("the dress fits well and the fabric is soft but runs small so order a size up lovely color "
         "great for summer wash cold returned it because seams were loose comfortable flattering").split()


def synthetic_reviews(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Prompt/text pairs shaped like the clothing-review set (~60 words of text)."""
    rng = random.Random(seed)
    prompts = [f"rating {rng.randint(1, 5)} department {rng.choice(['Tops', 'Dresses', 'Bottoms'])} :"
               for _ in range(n)]
    texts = [" " + " ".join(rng.choice(WORDS) for _ in range(60)) for _ in range(n)]
    return prompts, texts


def random_token_examples(n: int, length: int, vocab: int, prompt_len: int = 16, seed: int = 0) -> EncodedExamples:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, length), generator=g).tolist()
    return EncodedExamples(input_ids=ids, prompt_lengths=[prompt_len] * n)


@dataclass
class Result:
    model: str
    mode: str
    samples_per_s: float
    samples_per_cpu_s: float
    seconds: float
    cpu_seconds: float
    steps: int
    records: int
    peak_mem_gb: float | None


def run(make_base, examples, train: TrainConfig, dp: bool, device: str) -> Result:
    base = make_base()
    privacy = PrivacyConfig(epsilon=8.0) if dp else PrivacyConfig(epsilon=None)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trained = train_private(base, examples, privacy, train)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    log = trained.train_log
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    res = Result(base.name, "DP" if dp else "non-DP", log["records_processed"] / log["seconds"],
                 log["records_processed"] / log["cpu_seconds"], log["seconds"], log["cpu_seconds"],
                 trained.ledger.steps, log["records_processed"], peak)
    del trained, base
    return res


def compare(name: str, make_base, examples, train: TrainConfig, device: str, warmup: EncodedExamples,
            repeats: int = 1) -> dict:
    """Alternate non-DP and DP runs ``repeats`` times; report medians and the ratio of medians.

    Alternating (rather than all non-DP runs, then all DP runs) keeps a slow period of a shared
    machine from landing on one side only.
    """
    warm_cfg = TrainConfig(**{**train.to_dict(), "epochs": 1})
    run(make_base, warmup, warm_cfg, dp=True, device=device)  # warm up kernels / allocator, not reported
    plain, private = [], []
    for _ in range(repeats):
        plain.append(run(make_base, examples, train, dp=False, device=device))
        private.append(run(make_base, examples, train, dp=True, device=device))
    med = lambda rs, key: statistics.median(getattr(r, key) for r in rs)  # noqa: E731
    row = {
        "model": name,
        "device": device,
        "batch_size": train.batch_size,
        "max_physical_batch_size": train.max_physical_batch_size,
        "max_length": train.max_length,
        "repeats": repeats,
        "non_dp_samples_per_s": round(med(plain, "samples_per_s"), 2),
        "dp_samples_per_s": round(med(private, "samples_per_s"), 2),
        "dp_over_non_dp": round(med(private, "samples_per_s") / med(plain, "samples_per_s"), 3),
        "pair_ratios": [round(d.samples_per_s / p.samples_per_s, 3) for p, d in zip(plain, private)],
        # samples per CPU-second of this process: steadier than wall time on a shared machine
        "non_dp_samples_per_cpu_s": round(med(plain, "samples_per_cpu_s"), 2),
        "dp_samples_per_cpu_s": round(med(private, "samples_per_cpu_s"), 2),
        "dp_over_non_dp_cpu_time": round(med(private, "samples_per_cpu_s") / med(plain, "samples_per_cpu_s"), 3),
        "non_dp": [r.__dict__ for r in plain],
        "dp": [r.__dict__ for r in private],
    }
    if plain[0].peak_mem_gb:
        row["peak_mem_dp_over_non_dp"] = round(med(private, "peak_mem_gb") / med(plain, "peak_mem_gb"), 3)
    print(json.dumps(row), flush=True)
    return row


def bench_cpu(args) -> list[dict]:
    torch.set_num_threads(args.threads or os.cpu_count())
    train = TrainConfig(epochs=1, batch_size=args.batch_size, max_physical_batch_size=args.physical,
                        max_length=args.max_length, device="cpu", progress=False, seed=0)
    tok = load_base_model(None, size="tiny").tokenizer
    prompts, texts = synthetic_reviews(args.records)
    examples = encode_examples(tok, prompts, texts, args.max_length)
    warm_p, warm_t = synthetic_reviews(max(100, 2 * args.batch_size), seed=1)
    warmup = encode_examples(tok, warm_p, warm_t, args.max_length)
    rows = []
    for size in args.sizes:
        rows.append(compare(f"builtin-{size}", lambda s=size: load_base_model(None, size=s, device="cpu"),
                            examples, train, "cpu", warmup, args.repeats))
    return rows


class _IdTokenizer:
    """Stand-in tokenizer for random-token benchmarks (only the special ids are used)."""

    def __init__(self, vocab: int):
        self.pad_token_id = self.eos_token_id = vocab - 1
        self.bos_token_id = vocab - 2


def _gpu_models():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    def gpt2():
        cfg = GPT2Config()  # 124M: 12 layers, 768 wide, 50257 tokens
        return BaseModel(GPT2LMHeadModel(cfg), _IdTokenizer(cfg.vocab_size), "random-gpt2-124m", "pretrained",
                         "gpt2", max_positions=cfg.n_positions)

    def smollm():
        cfg = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                          num_key_value_heads=3, vocab_size=49152, max_position_embeddings=2048,
                          tie_word_embeddings=True)  # SmolLM2-135M's shape
        return BaseModel(LlamaForCausalLM(cfg), _IdTokenizer(cfg.vocab_size), "random-llama-135m", "pretrained",
                         "llama", max_positions=2048)

    return {"gpt2-124m": (gpt2, 50257), "llama-135m": (smollm, 49152)}


def bench_gpu(args) -> list[dict]:
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU: run `bench_train.py cpu` instead")
    torch.backends.cuda.matmul.allow_tf32 = True
    train = TrainConfig(epochs=1, batch_size=args.batch_size, max_physical_batch_size=args.physical,
                        max_length=args.max_length, target_modules="all-linear", device="cuda",
                        precision=args.precision, progress=False, seed=0)
    rows = []
    for name, (make, vocab) in _gpu_models().items():
        examples = random_token_examples(args.records, args.max_length, vocab - 2)
        warmup = random_token_examples(max(100, 4 * args.batch_size), args.max_length, vocab - 2, seed=1)
        rows.append(compare(name, make, examples, train, "cuda", warmup, args.repeats))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", choices=["cpu", "gpu"])
    p.add_argument("--records", type=int, default=None, help="records per run (default cpu 320, gpu 3200)")
    p.add_argument("--repeats", type=int, default=3, help="alternating non-DP/DP pairs (median reported)")
    p.add_argument("--batch-size", type=int, default=None, help="logical batch (default cpu 64, gpu 32)")
    p.add_argument("--physical", type=int, default=None, help="max physical batch (default cpu 16, gpu 32)")
    p.add_argument("--max-length", type=int, default=None, help="tokens per record (default cpu 256, gpu 128)")
    p.add_argument("--sizes", nargs="+", default=["small"], help="cpu: built-in model sizes")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="gpu: fp32 (+tf32) or bf16")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    cpu = args.target == "cpu"
    args.records = args.records or (320 if cpu else 3200)
    args.batch_size = args.batch_size or (64 if cpu else 32)
    args.physical = args.physical or (16 if cpu else 32)
    args.max_length = args.max_length or (256 if cpu else 128)
    t0 = time.time()
    rows = bench_cpu(args) if cpu else bench_gpu(args)
    print("\n| model | non-DP samples/s | DP samples/s | DP / non-DP (wall) | pairs | DP / non-DP (CPU time) "
          "| peak mem DP / non-DP |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['non_dp_samples_per_s']} | {r['dp_samples_per_s']} | {r['dp_over_non_dp']} "
              f"| {r['pair_ratios']} | {r['dp_over_non_dp_cpu_time']} | {r.get('peak_mem_dp_over_non_dp', 'n/a')} |")
    finish(rows, t0, args.out)


if __name__ == "__main__":
    main()

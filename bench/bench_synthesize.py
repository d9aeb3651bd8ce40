"""The main job end to end: time per stage and peak memory.

Default: the README's main job (examples/reviews_500.csv, built-in model, epsilon 8, text column
"Review Text", conditioned on the other non-PII columns). On a GPU machine, pass the full reviews file:

    python bench/bench_synthesize.py                                   # CPU, the README job
    python bench/bench_synthesize.py --csv ../shared/data/womens_clothing_reviews.csv   # GPU, 23k rows

Peak memory is the largest resident set of this process or of any of its children (the PII scan's
workers), from getrusage; on a GPU also torch's peak allocated memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthtext.io import read_csv, write_csv  # noqa: E402
from synthtext.synthesizer import TextSynthesizer  # noqa: E402


def peak_rss_gib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024 ** 2  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default=str(ROOT / "examples" / "reviews_500.csv"))
    parser.add_argument("--text-column", default="Review Text")
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "synthesize.json"))
    args = parser.parse_args()

    started = time.perf_counter()
    df = read_csv(args.csv)
    read_s = time.perf_counter() - started
    synth = TextSynthesizer([args.text_column], epsilon=args.epsilon).fit(df)
    t0 = time.perf_counter()
    out = synth.sample()
    generate_s = time.perf_counter() - t0
    write_csv(out, Path(args.out).with_suffix(".sample.csv"), neutralize_formulas=True)
    total_s = time.perf_counter() - started

    import torch

    gpu = torch.cuda.is_available()
    result = {
        "machine": (torch.cuda.get_device_name(0) if gpu else
                    f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU"),
        "csv": os.path.relpath(args.csv, ROOT), "rows": len(df), "epsilon": args.epsilon,
        "model": synth.models_[args.text_column].base_name,
        "seconds": {"read": read_s, **synth.timings_, "generate": generate_s, "total": total_s},
        "peak_rss_gib": peak_rss_gib(),
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 1024 ** 3 if gpu else None,
        "ledger": synth.privacy_ledger_["summary"],
        "examples": out[args.text_column].dropna().head(3).tolist(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

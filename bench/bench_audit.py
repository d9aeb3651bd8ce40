"""Canary audit: power without DP, consistency with DP, on examples/reviews_500.csv (built-in model, CPU).

    .venv/bin/python bench/bench_audit.py                      # writes docs/benchmarks/audit.json

Two audits (synthtext.audit) of the same rows with the same canaries (same seed) and the same training
settings; the only difference is DP:

* ``nodp`` (``epsilon=None``): the audit must find a clearly positive lower bound, or it has no power;
* ``dp`` at epsilon 8: the lower bound must be at or below the claimed epsilon.

The settings memorise (small batches, several epochs). A third run, ``nodp_fit_defaults``, audits
training without DP at fit's default TrainConfig (3 epochs, batch 64): how much power the audit has there.

Times are CPU seconds of this process (``time.process_time``) and wall seconds; on a shared machine the
wall time says little (see the note in the output). torch runs on ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "examples" / "reviews_500.csv"))
    parser.add_argument("--rows", type=int, default=200, help="first N rows of the data (default 200)")
    parser.add_argument("--canaries", type=int, default=200)
    parser.add_argument("--digits", type=int, default=10, help="random digits per canary secret")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--model-size", default="small")
    parser.add_argument("--references", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=("nodp", "dp", "nodp_fit_defaults"), default=None,
                        help="run one of the audits")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "audit.json"))
    args = parser.parse_args(argv)

    import torch

    import synthtext
    from synthtext.audit import audit
    from synthtext.config import TrainConfig
    from synthtext.io import write_text

    torch.set_num_threads(args.threads)
    df = synthtext.read_csv(args.data).iloc[: args.rows].reset_index(drop=True)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                        progress=False)
    runs = {}
    plans = (("nodp", None, train), ("dp", args.epsilon, train),
             ("nodp_fit_defaults", None, TrainConfig(progress=False)))
    for name, epsilon, train_cfg in plans:
        if args.only and name != args.only:
            continue
        cpu, wall = time.process_time(), time.perf_counter()
        result = audit(df, ["Review Text"], epsilon=epsilon, canaries=args.canaries, canary_digits=args.digits,
                       references=args.references, model_size=args.model_size, train=train_cfg, seed=args.seed)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        runs[name] = {"cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1),
                      "train": {k: train_cfg.to_dict()[k] for k in ("epochs", "batch_size", "learning_rate")},
                      "audit": result.to_dict()}
        print(f"[{name}] {cpu:.0f} CPU s, {wall:.0f} s wall\n{result.summary()}\n", file=sys.stderr, flush=True)

    out = {
        "benchmark": "canary audit (one-run, Steinke et al. 2023): no DP vs DP",
        "command": " ".join(["python bench/bench_audit.py", *(sys.argv[1:] if argv is None else argv)]),
        "data": {"file": os.path.relpath(args.data, ROOT), "rows": len(df), "text_column": "Review Text"},
        "settings": {"canaries": args.canaries, "canary_digits": args.digits, "references": args.references,
                     "model_size": args.model_size, "epochs": args.epochs, "batch_size": args.batch_size,
                     "learning_rate": args.learning_rate, "claimed_epsilon": args.epsilon, "seed": args.seed},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": args.threads,
                    "python": platform.python_version(), "synthtext": synthtext.__version__},
        "note": ("CPU seconds are this process's own; the machine was shared with other jobs, so wall "
                 "seconds are inflated and not comparable across runs."),
        "runs": runs,
        "summary": {name: {"train": run["train"], "precision": run["audit"]["training"]["precision"],
                           "cpu_seconds": run["cpu_seconds"], "dp": run["audit"]["dp"],
                           "claimed_epsilon": run["audit"]["claimed_epsilon"],
                           "empirical_epsilon_lower_bound": run["audit"]["empirical_epsilon_lower_bound"],
                           "guesses": run["audit"]["guesses"], "exposure": run["audit"]["exposure"],
                           "verdict": run["audit"]["verdict"]} for name, run in runs.items()},
    }
    write_text(json.dumps(out, indent=2, allow_nan=False) + "\n", args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Held-out loss of the built-in model after DP training at one learning rate (one sweep point).

Trains on a CSV at epsilon 8 (``structured="keep"``, the README job's conditioning columns, 1 torch
thread) and prints one JSON line: the learning rate, epochs, batch size, DP steps, noise multiplier,
CPU seconds and the mean held-out loss (nats per byte) on 200 reviews of the held-out file that are
not in the training file. docs/training.md ("Learning rate of the built-in model") has the sweep:

    python bench/bench_learning_rate.py --lr 5e-3 --epochs 3                      # README example
    python bench/bench_learning_rate.py --csv reviews_2000.csv --lr 1e-3 --epochs 4 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from bench_synthesize import heldout_loss  # bench/ is on sys.path when run as a script

from synthtext import TextSynthesizer
from synthtext.config import TrainConfig
from synthtext.io import read_csv

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ["Rating", "Recommended IND", "Department Name", "Age"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", default=str(ROOT / "examples" / "reviews_500.csv"))
    p.add_argument("--heldout", default=str(ROOT.parent / "shared" / "data" / "womens_clothing_reviews.csv"))
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the library's rule)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    df = read_csv(args.csv)
    started = time.process_time()
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                        progress=False)
    synth = TextSynthesizer(["Review Text"], conditioning_columns=CONDITIONS, structured="keep", epsilon=8.0,
                            seed=args.seed, train=train).fit(df)
    cpu = time.process_time() - started
    trained = synth.models_["Review Text"]
    loss = heldout_loss(trained, synth.prompt_format_, "Review Text", args.csv, args.heldout, 200, seed=0)
    print(json.dumps({"csv": args.csv, "learning_rate": trained.train_config.learning_rate, "epochs": args.epochs,
                      "batch_size": args.batch_size, "seed": args.seed, "steps": trained.ledger.steps,
                      "noise_multiplier": trained.ledger.noise_multiplier, "cpu_seconds": round(cpu, 1),
                      "heldout_loss": loss["mean_loss"]}))


if __name__ == "__main__":
    main()

"""The main job end to end: time per stage (wall and CPU) and peak memory.

Default: the README's main job (examples/reviews_500.csv, built-in model, epsilon 8, text column
"Review Text", conditioned on the other non-PII columns). On a GPU machine, pass the full reviews file:

    python bench/bench_synthesize.py                                   # CPU, the README job
    python bench/bench_synthesize.py --csv ../shared/data/womens_clothing_reviews.csv   # GPU, 23k rows

On the GPU machine, bench/run_gpu.sh runs it (docs/benchmarks/gpu_runbook.md). ``--rows`` (first N rows),
``--sample-rows``, ``--epochs``, ``--model-size`` and ``--device`` shrink or steer the job (smoke tests;
the defaults are the library's: 3 epochs, built-in model "auto" = "base" on a GPU, "small" on CPU).
With ``--out``, the stages finished so far are also written there right after ``fit`` (``"partial"``),
so a run stopped during sampling still leaves its scan/train figures.

Stages: import (synthtext + torch + presidio/spaCy/SDV imports, timed separately), scan (PII scan of the
text and columns), structured (SDV fit), train (DP training, incl. model build and encoding), generate
(text sampling) and post (the rest of ``sample``: SDV sampling, surrogates, schema). Each stage gets wall
seconds and CPU seconds (user+sys of this process, all threads, plus its finished child processes: the
scan's workers). On a machine shared with other jobs, wall time is inflated but CPU time is not; on
the 2-core CPU, quiet wall time is about CPU / 2 for the multi-threaded torch stages.

Peak memory is the largest resident set of this process or of any of its children (the PII scan's
workers), from getrusage; on a GPU also torch's peak allocated memory.

``--heldout CSV`` also scores the trained text model on rows of CSV that are not in the training
file (mean per-byte loss of the text, as in training): a quality check for speed changes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_T0_WALL, _T0_CPU = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
_T0_CPU = _T0_CPU.ru_utime + _T0_CPU.ru_stime  # the interpreter's own start-up is not counted

from synthtext.io import read_csv, write_csv  # noqa: E402


def peak_rss_gib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024 ** 2  # ru_maxrss is in KiB on Linux


def cpu_seconds() -> float:
    """User+sys of this process (all threads) and of its waited-for children (scan workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class StageClock:
    """Wall and CPU seconds per named stage; stages may be entered through wrapped functions."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak_rss: dict[str, float] = {}
        """Peak RSS of the process so far when the stage ended (where the peak was reached)."""

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu
        self.peak_rss[name] = round(peak_rss_gib(), 3)

    def wrap(self, owner, attr: str, name: str) -> None:
        inner = getattr(owner, attr)

        @functools.wraps(inner)
        def timed(*args, **kwargs):
            w, c = time.perf_counter(), cpu_seconds()
            try:
                return inner(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - w, cpu_seconds() - c)

        setattr(owner, attr, timed)


def _train_length(trained) -> int:
    """Tokens per record the model was trained with (its TrainConfig's, or the model's default)."""
    from synthtext.models import BaseModel

    base = BaseModel(model=trained.model, tokenizer=trained.tokenizer, name=trained.base_name, kind=trained.kind,
                     builtin_config=trained.builtin_config,
                     max_positions=trained.builtin_config.max_positions if trained.builtin_config else None)
    return base.max_length(trained.train_config)


def heldout_loss(trained, fmt, column: str, train_csv: str, heldout_csv: str, rows: int, seed: int = 0) -> dict:
    """Mean per-record text loss (nats per token) on ``rows`` rows of ``heldout_csv`` absent from the
    training file, encoded exactly as training encodes them."""
    import numpy as np

    from synthtext.models import encode_examples

    train_texts = set(read_csv(train_csv)[column].dropna())
    pool = read_csv(heldout_csv)
    pool = pool[pool[column].notna() & ~pool[column].isin(train_texts)]
    pool = pool.sample(n=min(rows, len(pool)), random_state=seed)
    pairs = [fmt.example(r, column) for r in pool.to_dict("records")]
    limit = _train_length(trained)
    examples = encode_examples(trained.tokenizer, [p for p, _ in pairs], [t for _, t in pairs], max_length=limit)
    losses = trained.record_losses(examples)
    return {"rows": len(losses), "max_length": limit, "mean_loss": float(np.mean(losses))}


def _command() -> str:
    return "python bench/bench_synthesize.py" + "".join(f" {a}" for a in sys.argv[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default=str(ROOT / "examples" / "reviews_500.csv"))
    parser.add_argument("--text-column", default="Review Text")
    parser.add_argument("--conditioning-columns", default=None, metavar="A,B",
                        help="columns the text is conditioned on (default: the library's, every other "
                             "non-PII column); the README job uses 'Rating,Recommended IND,Department Name,Age'")
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--heldout", default=None, help="CSV with more rows of the same table (quality check)")
    parser.add_argument("--heldout-rows", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's, one per core); 1 gives CPU times that other "
                             "jobs on a shared machine do not inflate")
    parser.add_argument("--out", default=None, help="result JSON (default docs/benchmarks/synthesize.json); "
                                                    "given explicitly, also written (partial) right after fit")
    parser.add_argument("--rows", type=int, default=None, help="use only the first N rows of --csv")
    parser.add_argument("--sample-rows", type=int, default=None,
                        help="synthetic rows to generate (default: as many as the input has)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: TrainConfig's, 3)")
    parser.add_argument("--model-size", default="auto", choices=["auto", "tiny", "small", "base"],
                        help="built-in model size (auto: base on a GPU, small on CPU)")
    parser.add_argument("--device", default="auto",
                        help="training device, TrainConfig.device: auto, cpu, cuda (generation runs where the model is)")
    parser.add_argument("--progress", action="store_true", help="progress bars on stderr (scan, training, sampling)")
    args = parser.parse_args()

    clock = StageClock()
    import torch  # (what the job imports anyway, timed as "import")

    if args.threads:
        torch.set_num_threads(args.threads)

    import synthtext.generate as generate
    import synthtext.pii as pii
    import synthtext.tabular as tabular
    import synthtext.train as train
    from synthtext.config import TrainConfig
    from synthtext.synthesizer import TextSynthesizer

    clock.add("import", time.perf_counter() - _T0_WALL, cpu_seconds() - _T0_CPU)
    clock.wrap(pii, "scan_pii", "scan")
    clock.wrap(tabular.StructuredSynthesizer, "fit", "structured")
    clock.wrap(train, "train_private", "train")
    clock.wrap(generate, "generate_texts", "generate")

    started_wall, started_cpu = time.perf_counter(), cpu_seconds()
    df = read_csv(args.csv)
    if args.rows:
        df = df.head(args.rows)
    train_cfg = TrainConfig(**({"epochs": args.epochs} if args.epochs else {}), device=args.device)
    conditioning = args.conditioning_columns.split(",") if args.conditioning_columns else None
    synth = TextSynthesizer([args.text_column], epsilon=args.epsilon, model_size=args.model_size, train=train_cfg,
                            conditioning_columns=conditioning, progress=args.progress).fit(df)
    fit_wall, fit_cpu = time.perf_counter() - started_wall, cpu_seconds() - started_cpu
    gpu = torch.cuda.is_available()
    partial = {  # what is known so far, in case sampling does not finish
        "partial": "fit finished, sampling not", "command": _command(), "rows": len(df),
        "seconds": {**{k: round(v, 2) for k, v in clock.wall.items()}, "fit": round(fit_wall, 2)},
        "cpu_seconds": {**{k: round(v, 2) for k, v in clock.cpu.items()}, "fit": round(fit_cpu, 2)},
        "synthesizer_timings": {k: round(v, 2) for k, v in synth.timings_.items()},
        "train_loop_seconds": round(synth.models_[args.text_column].train_log["seconds"], 2),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 1024 ** 3 if gpu else None}
    print(json.dumps(partial), flush=True)
    if args.out:  # given explicitly: overwritten below when the run finishes
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(partial, indent=2) + "\n")
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = synth.sample(args.sample_rows)
    sample_wall, sample_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    with tempfile.TemporaryDirectory() as tmp:  # written as the CLI writes it; not kept
        write_csv(out, Path(tmp) / "out.csv", neutralize_formulas=synth.text_columns_)
    total_wall, total_cpu = time.perf_counter() - _T0_WALL, cpu_seconds() - _T0_CPU

    # fit/sample time outside the wrapped stages (reading, redaction, prompts, SDV sampling, surrogates)
    inside_fit = sum(clock.wall.get(s, 0.0) for s in ("scan", "structured", "train"))
    inside_fit_cpu = sum(clock.cpu.get(s, 0.0) for s in ("scan", "structured", "train"))
    clock.add("fit_other", fit_wall - inside_fit, fit_cpu - inside_fit_cpu)
    clock.add("sample_other", sample_wall - clock.wall.get("generate", 0.0),
              sample_cpu - clock.cpu.get("generate", 0.0))

    trained = synth.models_[args.text_column]
    log = trained.train_log
    losses = [s["loss"] for s in log["steps"] if s["loss"] is not None]
    result = {
        "command": _command(),
        "machine": (f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores" if gpu else
                    f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU"),
        "torch_threads": torch.get_num_threads(),
        "csv": os.path.relpath(args.csv, ROOT), "rows": len(df), "sample_rows": len(out), "epsilon": args.epsilon,
        "model": trained.base_name,
        "device": str(next(trained.model.parameters()).device),
        "max_length": _train_length(trained),
        "seconds": {**{k: round(v, 2) for k, v in clock.wall.items()}, "total": round(total_wall, 2)},
        "cpu_seconds": {**{k: round(v, 2) for k, v in clock.cpu.items()}, "total": round(total_cpu, 2)},
        "synthesizer_timings": {k: round(v, 2) for k, v in synth.timings_.items()},
        "train": {"steps": len(log["steps"]), "records_processed": log["records_processed"],
                  "precision": log.get("precision"),
                  "loop_seconds": round(log["seconds"], 2), "loop_cpu_seconds": round(log["cpu_seconds"], 2),
                  "first_loss": losses[0] if losses else None,
                  "last5_mean_loss": sum(losses[-5:]) / len(losses[-5:]) if losses else None},
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "peak_rss_gib_after_stage": {k: v for k, v in clock.peak_rss.items() if k not in ("fit_other", "sample_other")},
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 1024 ** 3 if gpu else None,
        "load_average_1min_at_end": os.getloadavg()[0],
        "ledger": synth.privacy_ledger_["summary"],
        "examples": out[args.text_column].dropna().head(3).tolist(),
    }
    if args.heldout:
        result["heldout"] = heldout_loss(trained, synth.prompt_format_, args.text_column, args.csv, args.heldout,
                                         args.heldout_rows, seed=0)
    out_path = Path(args.out or ROOT / "docs" / "benchmarks" / "synthesize.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

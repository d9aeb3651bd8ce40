"""DP training over N processes vs one: records/s of the DP-SGD loop, same job, same machine, one run.

    python bench/bench_distributed.py [--processes 2] [--out FILE]

Fits the README job's text model (examples/reviews_500.csv, "Review Text" conditioned on Rating,
Recommended IND, Department Name, Age; epsilon 8; the default model; structured columns kept, since SDV
is not what is measured) three times, one after the other, each in its own process group:

* N=1 with all the machine's threads (what ``synthtext synthesize`` does today),
* N=1 with the threads one of the N processes gets,
* N processes under ``torchrun`` (``python -m torch.distributed.run --standalone``), cores shared out.

and reports, from each run's training log, the DP loop's records/s (frozen-layer caching, scan and
loading excluded), the ledger (which must be the same in all three), and the ratios. On a GPU machine
pass ``--processes`` = the number of GPUs (one GPU per process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "examples" / "reviews_500.csv"
CONDITIONS = ["Rating", "Recommended IND", "Department Name", "Age"]


def worker(out: str) -> None:
    """One fit (one process of several under torchrun); rank 0 writes what its training log says."""
    import pandas as pd
    import torch

    from synthtext import TextSynthesizer
    from synthtext.distributed import is_main, process_group_from_env

    with process_group_from_env():
        synth = TextSynthesizer(["Review Text"], CONDITIONS, epsilon=8.0, structured="keep", progress=False)
        synth.fit(pd.read_csv(CSV))
        trained = synth.models_["Review Text"]
        if is_main():
            log = trained.train_log
            Path(out).write_text(json.dumps({
                "processes": log["processes"], "threads_per_process": torch.get_num_threads(),
                "dp_loop_seconds": log["seconds"], "records_processed": log["records_processed"],
                "records_per_s": log["records_processed"] / log["seconds"],
                "frozen_layers_seconds": log["frozen_layers_seconds"], "fit_seconds": synth.timings_,
                "ledger": trained.ledger.to_dict()}))


def run(processes: int, threads: int) -> dict:
    out = tempfile.mktemp(suffix=".json")
    launch = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run([*launch, __file__, "--worker", out], check=True, env=env)
    result = json.loads(Path(out).read_text())
    result["wall_seconds"] = time.perf_counter() - started
    os.unlink(out)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker)
    cores = os.cpu_count() or 1
    share = max(1, cores // args.processes)
    runs = {"one process, all threads": run(1, cores), "one process, one share of the threads": run(1, share),
            f"{args.processes} processes": run(args.processes, share)}
    ledgers = {json.dumps(r["ledger"], sort_keys=True) for r in runs.values()}
    base = runs["one process, all threads"]["records_per_s"]
    for name, r in runs.items():
        print(f"{name:40s} {r['records_per_s']:7.2f} records/s  ({r['records_per_s'] / base:.2f}x)  "
              f"{r['threads_per_process']} thread(s) per process, DP loop {r['dp_loop_seconds']:.0f} s, "
              f"{r['records_processed']} records")
    print(f"ledgers identical: {len(ledgers) == 1}")
    if args.out:
        Path(args.out).write_text(json.dumps({"cores": cores, "runs": runs, "ledgers_identical": len(ledgers) == 1},
                                             indent=2) + "\n")


if __name__ == "__main__":
    main()

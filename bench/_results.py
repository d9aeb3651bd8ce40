"""What bench_train.py and bench_generate.py print and save beside their results: the machine."""

from __future__ import annotations

import json
import os
import platform
import time

import torch


def finish(rows: list[dict], started: float, out: str | None) -> None:
    """Print the machine as JSON after the table, and write ``{"meta", "results"}`` to ``out``."""
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "wall_s": round(time.time() - started, 1)}
    print(json.dumps(meta))
    if out:
        with open(out, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=2)

"""Wall time and memory over time of one CLI run: the CLI in a child process, its RSS read every 0.5 s from
/proc, each log line time-stamped. Prints the wall time, the peak and the first line of each stage.

    python bench/bench_rss_timeline.py OUT_DIR            # the README's main job
    python bench/bench_rss_timeline.py OUT_DIR -- synthesize in.csv -o out.csv ...   # any command
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_JOB = ["synthesize", "examples/reviews_500.csv", "-o", "{out}/out.csv", "--text-columns", "Review Text",
              "--conditioning-columns", "Rating,Recommended IND,Department Name,Age", "--epsilon", "8",
              "--report", "{out}/report"]


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    args = sys.argv[3:] if len(sys.argv) > 2 and sys.argv[2] == "--" else [a.format(out=out) for a in README_JOB]
    code = "import sys; from synthtext.cli import main; sys.exit(main(sys.argv[1:]))"
    t0 = time.time()
    child = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    samples, lines = [], []

    def sample() -> None:
        while child.poll() is None:
            try:
                with open(f"/proc/{child.pid}/status") as f:
                    kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
                samples.append((round(time.time() - t0, 1), kb / 2**20))
            except (OSError, StopIteration):
                pass
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    for line in child.stdout:
        lines.append((round(time.time() - t0, 1), line.rstrip()))
    child.wait()
    wall = time.time() - t0
    (out / "rss_timeline.json").write_text(json.dumps({"wall_s": wall, "rss_gib": samples, "lines": lines}))
    peak = max(samples, key=lambda s: s[1]) if samples else (None, float("nan"))
    print(f"exit {child.returncode}, wall {wall:.1f} s, peak RSS {peak[1]:.2f} GiB at {peak[0]} s")
    last = None
    for t, text in lines:
        stage = text.split(":")[0]
        if stage != last:
            high = max((r for s, r in samples if s <= t), default=0.0)
            print(f"{t:7.1f} s  (RSS so far {high:.2f} GiB)  {text[:100]}")
            last = stage


if __name__ == "__main__":
    main()

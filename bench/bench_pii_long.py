"""PII scan of very long cells: overlapping pieces against whole cells.

Builds ``--cells`` cells of about ``--chars`` characters each, one text a line: real reviews from
examples/reviews_500.csv (few names or numbers) or, with ``--source pii-sentences``, the PII-dense
sentences of bench/data/presidio_synth_pii.csv, a different shuffle per cell, with four PII values
planted at random places (a phone number, an email address, a card number, a person's name). Three
variants scan them with ``scan_pii(n_jobs=1)``:

- ``pieces``: the default, cells longer than ``pii.texts.PIECE_CHARS`` are analysed in overlapping pieces;
- ``whole``: ``PIECE_CHARS = None``, each cell analysed whole;
- ``whole-1-batch``: whole cells and no ``pii.texts.CHUNK_CHARS`` limit, so up to 128 cells share one spaCy
  batch (the scan before pieces and the character limit were added).

Each run is a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own; the variants
take turns ``--repeats`` times. Checks that all variants find the same spans and that a span covers
every planted value.

Run:  python bench/bench_pii_long.py [--cells 20] [--chars 20000] [--repeats 2] [--source reviews]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ("pieces", "whole", "whole-1-batch")
PLANTED = [("Call me at 415-555-0199 about it.", "415-555-0199"),
           ("My email is ann.lee@example.com if you have questions.", "ann.lee@example.com"),
           ("I paid with card 4111 1111 1111 1111 and got no refund.", "4111 1111 1111 1111"),
           ("Sigrid Nyström in the Boston store was very helpful.", "Sigrid Nyström")]


SOURCES = {"reviews": (ROOT / "examples" / "reviews_500.csv", "Review Text"),
           "pii-sentences": (ROOT / "bench" / "data" / "presidio_synth_pii.csv", "full_text")}


def build_cells(n_cells: int, n_chars: int, source: str = "reviews") -> list[str]:
    import pandas as pd

    path, column = SOURCES[source]
    texts = pd.read_csv(path)[column].dropna().tolist()
    rng = random.Random(0)
    cells = []
    for _ in range(n_cells):
        parts, length = [], 0
        while length < n_chars:
            for text in rng.sample(texts, len(texts)):
                parts.append(text)
                length += len(text) + 1
                if length >= n_chars:
                    break
        for sentence, _ in PLANTED:
            parts.insert(rng.randrange(len(parts) + 1), sentence)
        cells.append("\n".join(parts))
    return cells


def run_variant(variant: str, n_cells: int, n_chars: int, source: str, spans_out: str) -> dict:
    """In this process: scan the cells with one variant; the spans go to ``spans_out``."""
    import pandas as pd

    from synthtext import pii
    from synthtext.pii import texts as pii_texts

    if variant != "pieces":
        pii_texts.PIECE_CHARS = None
    if variant == "whole-1-batch":
        pii_texts.CHUNK_CHARS = sys.maxsize
    df = pd.DataFrame({"text": build_cells(n_cells, n_chars, source)})
    analyzer = pii.build_analyzer()
    pii.analyze_texts(["Warm up: call Ann at 415-555-0199."], analyzer=analyzer, n_jobs=1)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu_started = time.perf_counter(), time.process_time()
    result = pii.scan_pii(df, columns=["text"], analyzer=analyzer, detect_structured=False, n_jobs=1)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    spans = [[[s.start, s.end, s.entity_type, round(s.score, 4)] for s in row] for row in result.spans["text"]]
    missed = sum(1 for text, row in zip(df["text"], result.spans["text"]) for _, value in PLANTED
                 if not any(s.start <= text.find(value) and text.find(value) + len(value) <= s.end for s in row))
    with open(spans_out, "w") as f:
        json.dump(spans, f)
    return {"variant": variant, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
            "baseline_mb": round(baseline_mb),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "planted_missed": missed, "engine": result.engine, "piece_chars": pii_texts.PIECE_CHARS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--chars", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--source", choices=sorted(SOURCES), default="reviews")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--spans-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.cells, args.chars, args.source, args.spans_out)))
        return

    runs, spans = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for variant in VARIANTS[repeat % 3:] + VARIANTS[:repeat % 3]:  # each goes first in turn
                out = os.path.join(tmp, f"{variant}.json")
                child = subprocess.run([sys.executable, __file__, "--variant", variant, "--spans-out", out,
                                        "--cells", str(args.cells), "--chars", str(args.chars),
                                        "--source", args.source],
                                       capture_output=True, text=True, check=True)
                runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
                print(json.dumps(runs[-1]), flush=True)
                with open(out) as f:
                    spans[variant] = json.load(f)

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["variant"] == variant)

    same = all(spans[v] == spans["pieces"] for v in VARIANTS)
    n_spans = sum(len(row) for row in spans["whole"])
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
          f"{runs[0]['engine']}")
    print(f"{args.cells} cells of ~{args.chars} characters of {args.source}, n_jobs=1, {args.repeats} runs each (medians); "
          f"pieces of {runs[0]['piece_chars']} characters")
    for variant in VARIANTS:
        print(f"  {variant:13s}: {median(variant, 'seconds'):6.1f} s (CPU {median(variant, 'cpu_seconds'):6.1f} s), "
              f"peak RSS {median(variant, 'peak_mb'):5.0f} MB ({median(variant, 'baseline_mb'):.0f} MB after "
              f"loading the analyzer), planted values missed: "
              f"{max(r['planted_missed'] for r in runs if r['variant'] == variant)}")
    for variant in VARIANTS[1:]:
        print(f"  {variant} / pieces: time {median(variant, 'seconds') / median('pieces', 'seconds'):.2f}x, "
              f"peak RSS {median(variant, 'peak_mb') / median('pieces', 'peak_mb'):.2f}x")
    print(f"  same spans in all variants: {same} ({n_spans} spans)")
    if not same:
        sys.exit("the variants found different spans")


if __name__ == "__main__":
    main()

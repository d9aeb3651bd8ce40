"""Sampling speed and shape of the whole-row model (``structured="dp"``, with or without ``privacy_unit``) from
a saved synthesizer: wall time, the sampler's counts, rows per synthetic unit, texts written.

    python bench/bench_whole_row_sampling.py MODEL_DIR [--rows N] [--seed S] [--out F.json] [--csv F.csv]

MODEL_DIR is what ``synthtext fit ... --structured dp [--privacy-unit COLUMN] --save-model DIR`` wrote. Only the
public API is used, so the same script times an older tree (``PYTHONPATH=OLD_TREE python bench/...``) against
this one on the same saved model: compare the two in one session, one run after the other, nothing else
running (figures: docs/privacy_unit.md, docs/whole_row.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from synthtext import TextSynthesizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the figures here as JSON")
    ap.add_argument("--csv", default=None, help="write the synthetic rows here")
    args = ap.parse_args()
    synth = TextSynthesizer.load(args.model_dir)
    start = time.perf_counter()
    rows = synth.sample(args.rows, seed=args.seed)
    wall = time.perf_counter() - start
    unit = None if getattr(synth, "privacy_unit_", "row") == "row" else synth.privacy_unit_
    counts = getattr(synth, "whole_unit_counts_", None) or getattr(synth, "whole_row_counts_", None)
    out = {"model_dir": args.model_dir, "rows": args.rows, "seed": args.seed, "sample_wall_s": round(wall, 1),
           "rows_per_s": round(args.rows / wall, 3), "counts": counts, "cells_missing": int(rows.isna().sum().sum())}
    for column in synth.text_columns_:
        texts = rows[column].dropna().astype(str)
        out[f"text {column}"] = {"written": int(len(texts)), "missing": int(rows[column].isna().sum()),
                                 "median_words": float(texts.str.split().str.len().median()) if len(texts) else 0.0}
    if unit is not None:
        sizes = rows[unit].value_counts()
        out["units"] = int(len(sizes))
        out["rows_per_unit"] = round(float(sizes.mean()), 3)
        out["units_by_rows"] = {int(k): int(v) for k, v in sizes.value_counts().sort_index().items()}
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.csv:
        rows.to_csv(args.csv, index=False)


if __name__ == "__main__":
    sys.exit(main())

"""The README job in one structured mode, with its plan: per-stage estimate against the run, the text
figures of bench_quality and the structured columns' SDMetrics quality (from the report).

    python bench/bench_modes.py sdv|dp|keep [--max-length N] [--out DIR]

Runs, in one process: ``TextSynthesizer.plan(df, report=True)`` (the probed estimate), then ``fit``,
``sample`` and ``write_report``, timing each; writes ``DIR/<mode>.json`` (default /tmp/synthtext_modes),
the synthetic CSV and the report beside it. Run one mode at a time on a quiet machine: other jobs slow
every stage. Figures: docs/plan.md (estimate vs run) and docs/whole_row.md (the three modes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality as bq  # noqa: E402

from synthtext import TextSynthesizer  # noqa: E402
from synthtext.config import TrainConfig  # noqa: E402
from synthtext.io import write_csv  # noqa: E402

CONDITIONS = ["Rating", "Recommended IND", "Department Name", "Age"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("sdv", "dp", "keep"))
    ap.add_argument("--max-length", type=int, default=None)
    ap.add_argument("--out", default="/tmp/synthtext_modes")
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, heldout = bq.load_data(None, None, 1000, 0)
    options = dict(text_columns=["Review Text"], conditioning_columns=CONDITIONS, epsilon=8.0, structured=args.mode,
                   train=TrainConfig(max_length=args.max_length))
    result = {"mode": args.mode, "max_length": args.max_length}
    started = time.perf_counter()
    plan = TextSynthesizer(**options).plan(train, report=True)
    result["plan_seconds"], result["estimate"] = time.perf_counter() - started, plan.to_dict()["estimate"]
    synth = TextSynthesizer(**options)
    started = time.perf_counter()
    synth.fit(train)
    result["fit_seconds"], result["fit_timings"] = time.perf_counter() - started, synth.timings_
    started = time.perf_counter()
    synthetic = synth.sample()
    result["sample_seconds"] = time.perf_counter() - started
    write_csv(synthetic, out_dir / f"synthetic_{args.mode}.csv")
    started = time.perf_counter()
    report = synth.write_report(synthetic, out_dir / f"report_{args.mode}")
    result["report_seconds"], result["report"] = time.perf_counter() - started, str(report)
    evaluation = json.loads((report / "report.json").read_text())["evaluation"]
    quality = evaluation.get("structured")
    result["structured_quality"] = quality and {
        "score": quality["score"], "column_shapes": {c: v["score"] for c, v in quality["column_shapes"]["columns"].items()}}
    texts = [t for t in synthetic["Review Text"] if isinstance(t, str) and t.strip()]
    vocabulary = {w for t in train["Review Text"].dropna() for w in bq.words(t)}
    result.update(oov=bq.oov_rate(texts, vocabulary), heldout_oov=bq.oov_rate(list(heldout["Review Text"]), vocabulary),
                  auc=bq.discriminator_auc(list(heldout["Review Text"]), texts), n_texts=len(texts),
                  words=sum(len(bq.words(t)) for t in texts) / max(len(texts), 1),
                  lift={v["condition"]: v["value"] for v in evaluation["verdicts"] if v.get("metric") == "conditional_lift"},
                  whole_rows=getattr(synth, "whole_row_counts_", None), three=texts[:3])
    (out_dir / f"{args.mode}.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({k: result[k] for k in ("mode", "fit_seconds", "sample_seconds", "oov", "auc", "whole_rows")},
                     default=str))


if __name__ == "__main__":
    main()

"""PII scan benchmark: speed and accuracy of ``synthtext.scan_pii`` against a plain presidio loop.

Both sides use presidio-analyzer with the same spaCy pipeline and score threshold on the same machine;
the plain side is what a user would write first, presidio's stock engine in a loop::

    analyzer = AnalyzerEngine(nlp_engine=<stock spaCy engine, presidio's default NER settings>)
    [analyzer.analyze(text, language="en", score_threshold=t) for text in cells]

scan_pii adds synthtext's recognizers (synthtext/pii/recognizers/) on top, so its recall may be
higher; the speed ratio includes their cost.

Accuracy is measured against the gold spans of bench/data/presidio_synth_pii.csv (see
bench/data/README.md). A gold span counts as found when a predicted span of the matching type overlaps
it; a predicted span is correct when it overlaps a gold span of the matching type.

Run:  python bench/bench_pii.py [--repeats 5] [--out docs/benchmarks/pii.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthtext import pii  # noqa: E402
from synthtext.io import read_csv  # noqa: E402
from synthtext.pii.analyzer import silence_tldextract_downloads  # noqa: E402

DATA = ROOT / "bench" / "data" / "presidio_synth_pii.csv"

# Gold label -> the presidio entity type that stands for it. Gold types presidio has no recognizer
# for (TITLE) or ignores by default (ORGANIZATION: too many false positives) are reported as such.
GOLD_TO_PRESIDIO = {
    "PERSON": "PERSON",
    "STREET_ADDRESS": "LOCATION",
    "GPE": "LOCATION",
    "ZIP_CODE": "LOCATION",
    "CREDIT_CARD": "CREDIT_CARD",
    "DATE_TIME": "DATE_TIME",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "AGE": "AGE",
    "NRP": "NRP",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "DOMAIN_NAME": "URL",
    "IBAN_CODE": "IBAN_CODE",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
}


def overlaps(a_start, a_end, b_start, b_end) -> bool:
    return a_start < b_end and b_start < a_end


def score(gold: list[list[dict]], predicted: list[list[pii.PiiSpan]]) -> dict:
    """Per gold type: recall; per predicted type: precision (overlap matching, see module doc)."""
    found, total = defaultdict(int), defaultdict(int)
    correct, predicted_n = defaultdict(int), defaultdict(int)
    for gold_spans, spans in zip(gold, predicted):
        for g in gold_spans:
            total[g["entity_type"]] += 1
            want = GOLD_TO_PRESIDIO.get(g["entity_type"])
            if any(s.entity_type == want and overlaps(s.start, s.end, g["start"], g["end"]) for s in spans):
                found[g["entity_type"]] += 1
        for s in spans:
            predicted_n[s.entity_type] += 1
            if any(GOLD_TO_PRESIDIO.get(g["entity_type"]) == s.entity_type
                   and overlaps(s.start, s.end, g["start"], g["end"]) for g in gold_spans):
                correct[s.entity_type] += 1
    recall = {t: {"recall": found[t] / total[t], "gold": total[t], "found": found[t],
                  "as": GOLD_TO_PRESIDIO.get(t, "(not detected by presidio)")} for t in sorted(total)}
    precision = {t: {"precision": correct[t] / predicted_n[t], "predicted": predicted_n[t]}
                 for t in sorted(predicted_n)}
    return {"recall": recall, "precision": precision}


def plain_loop(analyzer, texts, threshold):
    out = []
    for text in texts:
        results = analyzer.analyze(text, language="en", score_threshold=threshold)
        out.append([pii.PiiSpan(r.start, r.end, r.entity_type, r.score) for r in results])
    return out


def stock_analyzer(pipeline: str):
    """presidio's AnalyzerEngine as shipped, on the given spaCy pipeline (no synthtext changes)."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    import presidio_analyzer
    import yaml

    silence_tldextract_downloads()  # else it tries the network (and waits) on first use
    stock_conf = Path(presidio_analyzer.__file__).parent / "conf" / "default.yaml"
    nlp_engine = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": pipeline}],
        "ner_model_configuration": yaml.safe_load(stock_conf.read_text())["ner_model_configuration"],
    }).create_engine()
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=pii.DEFAULT_SCORE_THRESHOLD)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "pii.json"))
    args = parser.parse_args()

    df = read_csv(DATA)
    texts = df["full_text"].tolist()
    gold = [json.loads(s) for s in df["spans_json"]]
    pipeline = pii.find_spacy_pipeline()

    plain = stock_analyzer(pipeline)
    ours = pii.build_analyzer(pipeline)
    frame = df[["full_text"]]
    # Warm both (first calls compile regexes and allocate spaCy buffers).
    plain_loop(plain, texts[:20], args.threshold)
    pii.scan_pii(frame.head(20), columns=["full_text"], analyzer=ours, detect_structured=False)

    # Alternate the two sides so that both see the same machine load; report the median of the ratios.
    plain_times, ours_times = [], []
    for _ in range(args.repeats):
        plain_s, plain_spans = timed(lambda: plain_loop(plain, texts, args.threshold))
        ours_s, scan = timed(lambda: pii.scan_pii(frame, columns=["full_text"], analyzer=ours,
                                                   score_threshold=args.threshold, detect_structured=False))
        plain_times.append(plain_s)
        ours_times.append(ours_s)
    ratios = [p / o for p, o in zip(plain_times, ours_times)]
    plain_s, ours_s = statistics.median(plain_times), statistics.median(ours_times)
    ours_spans = scan.spans["full_text"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "engine": scan.engine,
        "cells": len(texts),
        "distinct_cells": len(set(texts)),
        "score_threshold": args.threshold,
        "repeats": args.repeats,
        "plain_loop": {"seconds": plain_s, "rows_per_s": len(texts) / plain_s, **score(gold, plain_spans)},
        "scan_pii": {"seconds": ours_s, "rows_per_s": len(texts) / ours_s, **score(gold, ours_spans)},
    }
    result["speedup"] = statistics.median(ratios)
    result["speedups_per_repeat"] = [round(r, 2) for r in ratios]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))


def render(result: dict) -> str:
    lines = [
        f"machine: {result['machine']}; engine: {result['engine']}; threshold {result['score_threshold']}",
        f"plain loop: {result['plain_loop']['rows_per_s']:.0f} rows/s; scan_pii: "
        f"{result['scan_pii']['rows_per_s']:.0f} rows/s (medians); speed-up {result['speedup']:.2f}x "
        f"(median of {result['repeats']} alternating pairs: {result['speedups_per_repeat']}; "
        f"{result['cells']} cells, {result['distinct_cells']} distinct)",
        "",
        "| gold type | gold spans | recall (plain loop) | recall (scan_pii) |",
        "|---|---|---|---|",
    ]
    for t, r in result["scan_pii"]["recall"].items():
        lines.append(f"| {t} (as {r['as']}) | {r['gold']} | "
                     f"{result['plain_loop']['recall'][t]['recall']:.3f} | {r['recall']:.3f} |")
    lines += ["", "| predicted type | predicted (scan_pii) | precision (plain loop) | precision (scan_pii) |",
              "|---|---|---|---|"]
    for t, p in result["scan_pii"]["precision"].items():
        plain_p = result["plain_loop"]["precision"].get(t, {}).get("precision", float("nan"))
        lines.append(f"| {t} | {p['predicted']} | {plain_p:.3f} | {p['precision']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

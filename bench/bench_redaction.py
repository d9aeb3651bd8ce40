"""Redaction benchmark: precision and recall per entity type of the scan, and of what is redacted by default.

Three measurements, written to docs/benchmarks/redaction.md (and .json):

1. **Gold sets.** ``bench/data/presidio_synth_pii.csv`` (1,500 synthetic sentences with gold PII spans)
   and the WNUT-17 emerging-entities tweets (``--wnut``, default ``/work/shared/data/wnut17_ner.csv``;
   gold person, location, group, corporation, product and creative-work spans; skipped when absent).
   Every text is scanned as ``scan_pii`` does; a predicted span is correct when it overlaps a gold span
   of the matching type, a gold span is found when a predicted span of its type overlaps it (as in
   bench/bench_pii.py). Both for every span the scan found ("scan") and for the spans the default
   redaction takes (``pii.redaction_spans``, "redacted").
2. **Hand check.** 100 spans that the scan flags in the 500 example reviews, read by a person and
   labelled in ``bench/data/redaction_handcheck.csv`` (right_type: the span is of its entity type at
   all; pii: it identifies a person or is a specific date or contact). All spans of LOCATION, PERSON, NRP
   and URL, and 48 of the 150 DATE_TIME spans (random.Random(0).shuffle of the scan's order). The script
   rescans the reviews, says which labelled spans the scan no longer finds, and which the default
   redaction takes.
3. **The 500 reviews.** Spans flagged and redacted by default per type, no labels needed.
4. **Planted PII.** Faker en_US phone numbers (all of Faker's formats: ``001-...``, ``x...`` extensions),
   street addresses (``street_address()``, ``address()``), emails and names planted in review-like
   sentences (``PLANTED_TEMPLATES``): the share of planted values whose every letter and digit the default
   redaction removes, per type and per form; and 20 sentences of ordinary numbers (sizes, prices, years,
   ratings, quantities) whose digits must all stay.

Run:  python bench/bench_redaction.py [--jobs 2] [--wnut PATH] [--planted-only]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from synthtext import pii  # noqa: E402
from synthtext.io import read_csv  # noqa: E402

PRESIDIO_DATA = ROOT / "bench" / "data" / "presidio_synth_pii.csv"
WNUT_DATA = Path("/work/shared/data/wnut17_ner.csv")
REVIEWS = ROOT / "examples" / "reviews_500.csv"
REVIEW_COLUMN = "Review Text"
HANDCHECK = ROOT / "bench" / "data" / "redaction_handcheck.csv"
OUT_MD = ROOT / "docs" / "benchmarks" / "redaction.md"

# Gold label -> the presidio entity type that stands for it (as in bench/bench_pii.py), or a tuple of
# types any of which stands for it: a street address is found as synthtext's STREET_ADDRESS or, in pieces,
# as spaCy's LOCATION.
PRESIDIO_GOLD = {
    "PERSON": "PERSON", "STREET_ADDRESS": ("STREET_ADDRESS", "LOCATION"), "GPE": "LOCATION", "ZIP_CODE": "LOCATION",
    "CREDIT_CARD": "CREDIT_CARD", "DATE_TIME": "DATE_TIME", "PHONE_NUMBER": "PHONE_NUMBER", "AGE": "AGE",
    "NRP": "NRP", "EMAIL_ADDRESS": "EMAIL_ADDRESS", "DOMAIN_NAME": "URL", "IBAN_CODE": "IBAN_CODE",
    "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS", "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
}
WNUT_GOLD = {"person": "PERSON", "location": "LOCATION"}  # group, corporation, product, creative-work: none


def overlaps(span, gold: dict) -> bool:
    return span.start < gold["end"] and gold["start"] < span.end


def _types(mapped) -> tuple:
    return () if mapped is None else (mapped,) if isinstance(mapped, str) else tuple(mapped)


def score(gold: list[list[dict]], predicted: list[list], mapping: dict) -> dict:
    """Per predicted type: spans and precision; per gold type: spans and recall."""
    correct, n_pred, found, n_gold = Counter(), Counter(), Counter(), Counter()
    for gold_spans, spans in zip(gold, predicted):
        for s in spans:
            n_pred[s.entity_type] += 1
            if any(s.entity_type in _types(mapping.get(g["entity_type"])) and overlaps(s, g) for g in gold_spans):
                correct[s.entity_type] += 1
        for g in gold_spans:
            n_gold[g["entity_type"]] += 1
            want = _types(mapping.get(g["entity_type"]))
            if any(s.entity_type in want and overlaps(s, g) for s in spans):
                found[g["entity_type"]] += 1
    gold_types = {t for mapped in mapping.values() for t in _types(mapped)}
    return {
        "precision": {t: {"spans": n_pred[t], "correct": correct[t],
                          "precision": correct[t] / n_pred[t] if t in gold_types and n_pred[t] else None}
                      for t in sorted(n_pred)},
        "recall": {t: {"gold": n_gold[t], "found": found[t], "as": "/".join(_types(mapping.get(t))) or None,
                       "recall": found[t] / n_gold[t] if mapping.get(t) else None} for t in sorted(n_gold)},
    }


def date_shape(value: str) -> str:
    if value.strip().isdigit() and len(value.strip()) == 4:
        return "year only"
    if value.strip().lower() in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
        return "weekday only"
    return "date or date and time"


def gold_set(name: str, texts: list[str], gold: list[list[dict]], mapping: dict, jobs: int, analyzer) -> dict:
    t0 = time.perf_counter()
    scanned = pii.analyze_texts(texts, analyzer=analyzer, n_jobs=jobs)
    seconds = time.perf_counter() - t0
    redacted = [pii.redaction_spans(text, spans) for text, spans in zip(texts, scanned)]
    out = {"name": name, "texts": len(texts), "scan_seconds": round(seconds, 1),
           "scan": score(gold, scanned, mapping), "redacted": score(gold, redacted, mapping)}
    if "DATE_TIME" in mapping:  # recall of the default redaction per shape of the gold date
        shapes: dict[str, Counter] = defaultdict(Counter)
        for gold_spans, spans in zip(gold, redacted):
            for g in gold_spans:
                if g["entity_type"] == "DATE_TIME":
                    shape = shapes[date_shape(g["value"])]
                    shape["gold"] += 1
                    shape["found"] += any(s.entity_type == "DATE_TIME" and overlaps(s, g) for s in spans)
        out["date_recall_by_shape"] = {k: dict(v) for k, v in sorted(shapes.items())}
    return out


def reviews(jobs: int, analyzer) -> dict:
    df = read_csv(REVIEWS)
    scan = pii.scan_pii(df, columns=[REVIEW_COLUMN], analyzer=analyzer, n_jobs=jobs, detect_structured=False)
    counts = pii.redaction_counts(df, scan)
    texts = df[REVIEW_COLUMN].tolist()
    labels = pd.read_csv(HANDCHECK, keep_default_na=False)
    found = {(i, s.start, s.end, s.entity_type): s for i, spans in enumerate(scan.spans[REVIEW_COLUMN]) for s in spans}
    rows, missing = [], []
    for label in labels.itertuples():
        key = (label.row, label.start, label.end, label.entity_type)
        span = found.get(key)
        if span is None:
            missing.append(key)
            continue
        text = texts[label.row]
        kept = pii.redaction_spans(text, [span])
        rows.append({"entity_type": label.entity_type, "right_type": bool(label.right_type), "pii": bool(label.pii),
                     "redacted": bool(kept), "value": text[label.start:label.end], "note": label.note,
                     "context": text[max(0, label.start - 30):label.end + 30].replace("\n", " ")})
    return {"rows": len(df), "counts": scan.counts()[REVIEW_COLUMN],
            "redacted": counts["redacted"][REVIEW_COLUMN], "counted_only": counts["counted_only"][REVIEW_COLUMN],
            "handcheck": rows, "handcheck_missing": missing}


# Planted PII -----------------------------------------------------------------------------------------
# Review-like sentences, each with one Faker en_US value planted in it. Some templates have a context
# word ("call", "phone"), some do not, as reviews do. A planted value counts as redacted when every letter
# and digit of it lies inside a span that the default redaction replaces (pii.redaction_spans, then the
# overlap resolution redact() applies): what was removed from the training text, whatever its label.
PLANTED_TEMPLATES = {
    "PHONE_NUMBER": [
        "Love this top but the zipper broke. Please call me at {} about a replacement.",
        "The store said to text {} for a return label, nobody answered.",
        "Runs small, size up. My number is {} if the seller wants feedback.",
        "Ordered twice, both arrived late. Reach me on {}.",
        "Great fabric. {} is my cell, the courier can ring me there.",
        "Returned it; questions to {} please.",
    ],
    "STREET_ADDRESS": [  # fake.street_address() and fake.address() (newline -> ", ")
        "Shipped to {} in two days, very happy with the dress.",
        "Please send the replacement to {} as soon as possible.",
        "I live at {} and the package was left at the wrong door.",
        "Delivery to {} took three weeks, the sweater was worth it.",
    ],
    "EMAIL_ADDRESS": [
        "Email me at {} when the blue one is back in stock.",
        "The seller ({}) never answered my question about sizing.",
        "Sent photos to {}, still waiting for the refund.",
    ],
    "PERSON": [
        "My sister {} bought the same dress in red.",
        "{} at the counter was so helpful with the exchange.",
        "Thanks to {} for the quick alterations, fits perfectly now.",
        "Bought it for my mom, {}, and she wears it every week.",
    ],
}
# Numbers that are not PII, in review sentences: none of their digits may be redacted by default.
PLANTED_NEGATIVES = [
    "I ordered size 12 and it fits perfectly.", "I'm usually a size 4 but the 6 fit better.",
    "Paid $45.99 on sale, regular price $128.00.", "Bought 3 of them in 2019 and 2 more in 2021.",
    "5 out of 5 stars, would buy again.", "Rated it 4/5 because the hem frayed after 10 washes.",
    "I'm 5'4\" and 130 lbs, 34B, and the XS fit.", "We ordered 250 units for the team, 12 arrived torn.",
    "Order quantity 1200 pieces, delivered in 14 days.", "It's 100% cotton, shrank about 2 inches.",
    "The 24 x 36 inch poster came with a 4x6 print.", "Size 10x12 rug, 2x the thickness I expected.",
    "Arrived at 10:30 on the 3rd try, box 2 of 3.", "Model 2020 runs 1-2 sizes small, I'm 38-30-40.",
    "Washed it at 30 degrees, 40 times by now.", "I wear a 32x34 in jeans and a 7.5 in shoes.",
    "Item 4 of 12 in the set, about 1.5 lbs each.", "Length is 38.5 in, waist 29 in, hips 40 in.",
    "Got 3 for $20, a 40% discount over 2 weekends.", "Extension cord was 6 ft, ext. 2 meters would help.",
]


def _planted_values(fake, entity: str, i: int) -> tuple[str, str]:
    """(value, form) of the i-th planted value of ``entity``; form is what the value's shape is reported by."""
    if entity == "PHONE_NUMBER":
        value = fake.phone_number()
        return value, re.sub(r"\d", "#", value)
    if entity == "STREET_ADDRESS":
        if i % 2:
            value = fake.address().replace("\n", ", ")
            military = re.search(r"\b[FAD]PO\b", value)
            return value, "military address" if military else "address (street, city, ST zip)"
        value = fake.street_address()
        return value, "street address with Apt./Suite" if re.search(r"\b(?:Apt|Suite)\.? ", value) else "street address"
    if entity == "EMAIL_ADDRESS":
        return fake.email(), "email"
    return fake.name(), "name"


def _covered(text: str, start: int, end: int, spans) -> bool:
    """Whether every letter and digit of text[start:end] lies inside one of ``spans``."""
    return all(not text[k].isalnum() or any(s.start <= k < s.end for s in spans) for k in range(start, end))


def planted(jobs: int, analyzer, n: dict | None = None, seed: int = 0) -> dict:
    """Recall of the default redaction on planted Faker en_US values, per type and per form; and how many
    of :data:`PLANTED_NEGATIVES` keep all their digits."""
    from faker import Faker

    n = n or {"PHONE_NUMBER": 300, "STREET_ADDRESS": 200, "EMAIL_ADDRESS": 100, "PERSON": 200}
    fake = Faker("en_US")
    fake.seed_instance(seed)
    cases = []  # (entity, form, value, text, start)
    for entity, count in n.items():
        templates = PLANTED_TEMPLATES[entity]
        for i in range(count):
            value, form = _planted_values(fake, entity, i)
            template = templates[i % len(templates)]
            text = template.format(value)
            cases.append((entity, form, value, text, template.index("{}")))
    texts = [c[3] for c in cases] + PLANTED_NEGATIVES
    scanned = pii.analyze_texts(texts, analyzer=analyzer, n_jobs=jobs)
    redacted = [pii.resolve_overlaps(pii.redaction_spans(t, s)) for t, s in zip(texts, scanned)]
    by_type: dict[str, Counter] = defaultdict(Counter)
    by_form: dict[tuple[str, str], Counter] = defaultdict(Counter)
    slipped: dict[str, list] = defaultdict(list)
    for (entity, form, value, text, start), spans in zip(cases, redacted):
        ok = _covered(text, start, start + len(value), spans)
        for counter in (by_type[entity], by_form[(entity, form)]):
            counter["planted"] += 1
            counter["redacted"] += ok
        if not ok:
            left = "".join("_" if any(s.start <= start + k < s.end for s in spans) else ch
                           for k, ch in enumerate(value))
            slipped[entity].append({"value": value, "left_in_text": left, "form": form})
    negatives = []
    for text, spans in zip(PLANTED_NEGATIVES, redacted[len(cases):]):
        hit = [text[s.start:s.end] for s in spans if any(ch.isdigit() for ch in text[s.start:s.end])]
        negatives.append({"text": text, "redacted": hit})
    return {
        "seed": seed, "faker": importlib.metadata.version("faker"), "locale": "en_US",
        "by_type": {e: {**c, "recall": c["redacted"] / c["planted"]} for e, c in by_type.items()},
        "by_form": [{"entity_type": e, "form": f, **c, "recall": c["redacted"] / c["planted"]}
                    for (e, f), c in sorted(by_form.items())],
        "slipped": dict(slipped),
        "negatives": {"texts": len(negatives), "with_digits_redacted": sum(bool(x["redacted"]) for x in negatives),
                      "redacted": [x for x in negatives if x["redacted"]]},
    }


def render_planted(p: dict) -> list[str]:
    lines = [f"## 4. Planted PII: Faker {p['locale']} values in review sentences", "",
             f"Faker {p['faker']}, seed {p['seed']}; templates and non-PII sentences in `bench/bench_redaction.py` "
             "(`PLANTED_TEMPLATES`, `PLANTED_NEGATIVES`). A value is *redacted* when every letter and digit of it "
             "lies inside a span the default redaction replaces. `python bench/bench_redaction.py --planted-only` "
             "prints this section alone (about 30 s; `--planted-seed N` for other values).", "",
             "| type | planted | redacted | recall |", "|---|---|---|---|"]
    for entity, c in p["by_type"].items():
        lines.append(f"| {entity} | {c['planted']} | {c['redacted']} | {c['recall']:.3f} |")
    lines += ["", "By form (phone numbers by digit pattern, # = a digit):", "",
              "| type | form | planted | redacted | recall |", "|---|---|---|---|---|"]
    for row in p["by_form"]:
        lines.append(f"| {row['entity_type']} | `{row['form']}` | {row['planted']} | {row['redacted']} | "
                     f"{row['recall']:.3f} |")
    neg = p["negatives"]
    lines += ["", f"Non-PII numbers (sizes, prices, years, ratings, quantities, measurements): "
                  f"{neg['with_digits_redacted']} of {neg['texts']} sentences had digits redacted"
                  + (": " + "; ".join(f"\"{x['text']}\" ({', '.join(x['redacted'])})" for x in neg["redacted"])
                     if neg["redacted"] else ".")]
    for entity, rows in p["slipped"].items():
        lines += ["", f"{entity} not fully redacted ({len(rows)}; `_` = what the redaction took), first 10:", ""]
        lines += [f"- `{r['value']}` -> `{r['left_in_text']}`" for r in rows[:10]]
    return lines


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def render(result: dict) -> str:
    lines = ["# Redaction benchmark: what is PII, what is only counted", "",
             "Command: `python bench/bench_redaction.py` (writes this file and `redaction.json`; about "
             "50 s on 2 cores).",
             f"Engine: {result['engine']}; {result['machine']}; {result['date']}.", "",
             "The scan keeps every span it finds. Before training, synthtext redacts by default only what "
             "identifies a person: names, emails, phones, street addresses, card/account/ID numbers (credit card, "
             "IBAN, SSN, "
             "ITIN, passport, driver licence, bank numbers, UK NHS, medical licence, crypto wallets, UUIDs, MAC "
             "addresses), IP addresses, URLs with a scheme (`http://`, `https://`, `ftp://`) or starting with "
             "`www.`, and DATE_TIME only for specific dates (a date element more specific than a year: "
             "\"March 3, 2021\", \"3rd of March\", \"03/04/2021\", \"Aug 2010\"). LOCATION, NRP, durations and "
             "vague dates (\"a 2-week cycle\", \"last week\", \"summer\"), bare years, weekdays and bare domains are "
             "counted, not redacted. `redact_entities=\"all\"` (`--redact-entities all`) redacts every span "
             "again; a list (`PERSON,EMAIL_ADDRESS`, or `default,LOCATION`) chooses the types.", ""]
    rv = result["reviews"]
    lines += ["## 1. Hand check: 100 flagged spans in the 500 example reviews", "",
              "Labelled by reading each span in its review (`bench/data/redaction_handcheck.csv`): *right type* = "
              "the span is of its entity type at all (a date or time expression, a place, a name...); *PII* = it "
              "identifies a person or is a specific date or contact. All LOCATION, PERSON, NRP and URL spans, "
              "48 of the 150 DATE_TIME spans (seeded random sample). *Redacted now* = what the default "
              "redaction takes of the checked spans.", "",
              "| type | flagged in 500 | checked | right type | PII | precision as PII | redacted now | of them PII |",
              "|---|---|---|---|---|---|---|---|"]
    by_type: dict[str, list] = defaultdict(list)
    for row in rv["handcheck"]:
        by_type[row["entity_type"]].append(row)
    for entity, rows in sorted(by_type.items(), key=lambda kv: -rv["counts"].get(kv[0], 0)):
        n, right, real = len(rows), sum(r["right_type"] for r in rows), sum(r["pii"] for r in rows)
        now = [r for r in rows if r["redacted"]]
        lines.append(f"| {entity} | {rv['counts'].get(entity, 0)} | {n} | {right} | {real} | {real / n:.2f} | "
                     f"{len(now)} | {sum(r['pii'] for r in now)} |")
    total = rv["handcheck"]
    lines.append(f"| all | {sum(rv['counts'].values())} | {len(total)} | {sum(r['right_type'] for r in total)} | "
                 f"{sum(r['pii'] for r in total)} | {sum(r['pii'] for r in total) / max(1, len(total)):.2f} | "
                 f"{sum(r['redacted'] for r in total)} | {sum(r['pii'] and r['redacted'] for r in total)} |")
    if rv["handcheck_missing"]:
        lines += ["", f"{len(rv['handcheck_missing'])} labelled span(s) are no longer flagged by the scan: "
                      f"{rv['handcheck_missing'][:5]}"]
    lines += ["", "Examples (spans that are PII are masked):", ""]
    for entity, rows in sorted(by_type.items()):
        shown = [r for r in rows if r["pii"]][:2] + [r for r in rows if not r["pii"]][:3]
        for r in shown:
            value = f"[{r['note']}, masked]" if r["pii"] else r["value"]
            context = r["context"].replace(r["value"], "\u2026") if r["pii"] else r["context"]
            lines.append(f"- {entity} `{value}`: {r['note']}; {'redacted' if r['redacted'] else 'counted only'} "
                         f"now (\"{context}\")" if not r["pii"] else
                         f"- {entity} `{value}`: {'redacted' if r['redacted'] else 'counted only'} now")
    lines += ["", "All 500 reviews, per type (no labels needed):", "",
              "| type | flagged | redacted by default | counted only |", "|---|---|---|---|"]
    for entity, n in rv["counts"].items():
        lines.append(f"| {entity} | {n} | {rv['redacted'].get(entity, 0)} | {rv['counted_only'].get(entity, 0)} |")
    for gold in result["gold"]:
        lines += ["", f"## {'2' if gold is result['gold'][0] else '3'}. Gold set: {gold['name']} "
                      f"({gold['texts']:,} texts)", "",
                  "Precision per predicted type (a span is correct when it overlaps a gold span of its type; "
                  "n/a: the set has no gold spans of that type):", "",
                  "| predicted type | scan: spans | scan: precision | redacted: spans | redacted: precision |",
                  "|---|---|---|---|---|"]
        scan_p, red_p = gold["scan"]["precision"], gold["redacted"]["precision"]
        for entity in sorted(scan_p, key=lambda e: -scan_p[e]["spans"]):
            r = red_p.get(entity, {"spans": 0, "precision": None})
            lines.append(f"| {entity} | {scan_p[entity]['spans']} | {_pct(scan_p[entity]['precision'])} | "
                         f"{r['spans']} | {_pct(r['precision']) if r['spans'] else '-'} |")
        lines += ["", "Recall per gold type:", "",
                  "| gold type (as) | gold spans | scan: recall | redacted: recall |", "|---|---|---|---|"]
        scan_r, red_r = gold["scan"]["recall"], gold["redacted"]["recall"]
        for entity in sorted(scan_r, key=lambda e: -scan_r[e]["gold"]):
            s, r = scan_r[entity], red_r[entity]
            lines.append(f"| {entity} ({s['as'] or 'no presidio type'}) | {s['gold']} | {_pct(s['recall'])} | "
                         f"{_pct(r['recall'])} |")
        if "date_recall_by_shape" in gold:
            lines += ["", "Gold DATE_TIME spans the default redaction takes, by shape: " + "; ".join(
                f"{shape}: {v.get('found', 0)} of {v['gold']}" for shape, v in gold["date_recall_by_shape"].items())
                + " (a bare year or weekday is by design not a specific date)."]
    if "planted" in result:
        lines += ["", *render_planted(result["planted"])]
    lines += ["", "## Reading it", "", *result["notes"], ""]
    return "\n".join(lines)


NOTES = [
    "- **Reviews:** the scan flags 202 spans in 500 reviews, and only 2 of the 100 checked are PII (two "
    "specific dates, day and month). URL (29 of 29: words joined by dots, \"low..it\") and most DATE_TIME "
    "spans (durations, seasons, heights, bra sizes) are not PII, and each placeholder damaged the training "
    "text; Faker later filled it with a random date or URL. The default redaction now takes the 2 dates and "
    "the 9 PERSON spans, leaves the rest in the text and still counts it.",
    "- **PERSON stays redacted although its precision on the reviews is low** (1 of 9 is a name at all): a "
    "missed name is a leak, a wrongly redacted word costs one word. spaCy's small pipeline tags capitalised "
    "or odd words (\"Beautifully\", \"bummer\", \"jns\") as names in lower-case informal text.",
    "- **Gold sets:** on the presidio set, DATE_TIME precision rises from 0.16 (scan) to 1.0 for what is "
    "redacted, and URL from 0.43 to 1.0 (presidio's URL spans inside every email address are gone; the "
    "email itself is redacted as EMAIL_ADDRESS). The price is recall of bare years and weekdays, which the "
    "default does not take on purpose (HIPAA's Safe Harbor rule also keeps years). LOCATION and NRP are "
    "counted only, so their redacted recall is 0. Street addresses are redacted as STREET_ADDRESS when "
    "written the US or UK way (house number, name, street type: synthtext's StreetAddressRecognizer, 78 "
    "spans here, precision 1.000); this set's gold addresses are mostly European (\"Koskikatu 25\", the "
    "number after the name) or cut into pieces (a zip code or \"Apt. 595\" alone is a gold span), so the "
    "redacted recall is 0.129 and the scan's, with spaCy's LOCATION pieces, 0.221. For addresses in other "
    "formats use `--redact-entities default,LOCATION`.",
    "- **WNUT-17 tweets** have no gold dates or URLs; they show PERSON and LOCATION precision/recall on noisy "
    "text, and how many DATE_TIME and URL spans the default leaves as counted only. The tweets' links "
    "(http://t.co/...) stay redacted; of their 2,839 DATE_TIME spans the default takes 269: reading 40 of "
    "those at random (2026-12-01, not part of the script), all 40 were specific dates (\"Jan 31st\", "
    "\"1/31/15\", \"December 15 , 2014\", \"the 30 th of December 2016\"); the 2,570 left are \"today\", "
    "\"tonight\", \"tomorrow\", weekdays, bare months and years and the like.",
    "- **Planted PII (section 4), before and after the phone and street-address recognizers of "
    "2026-12-02** (same seed, templates and machine): phone numbers 260 -> 298 of 300 (0.867 -> 0.993), "
    "street addresses 1 -> 200 of 200 (0.005 -> 1.000), emails 100 and names 195 of 200 both times, ordinary "
    "numbers 0 of 20 sentences touched both times. The 40 phone numbers missed before: 26 of the 50 "
    "`001-...` numbers (the \"00\" prefix took them over the national pattern's 12 digits, and "
    "python-phonenumbers does not read \"00\" as \"+\" for the US); 10 3-3-4 numbers with dashes, dots or "
    "parentheses, half of them with an `x` extension, whose made-up area code python-phonenumbers rejects, "
    "in sentences without a phone word before them; 4 ten-digit runs. The 2 left are ten digits in a row "
    "with no phone word (\"questions to 3008250402 please\"): they read as order numbers and stay. Street "
    "addresses were found by spaCy at most in pieces, as LOCATION (counted only) or PERSON. The 5 names "
    "are a title left beside the placeholder (\"Dr.\", \"DVM\") or names that are also English words "
    "(\"Tiffany Hughes\") with no context word before them; not changed here. The fix was made looking "
    "at seed 0; other seeds (`--planted-seed`), before -> after: seed 1 phones 275 -> 300, street addresses "
    "1 -> 200 (seed 1 showed one address cut by a name inside it, \"North Gina\", now fixed), names 197 "
    "both times; seed 2, not looked at before the fix: phones 270 -> 299, street addresses 0 -> 200, names "
    "193 both times; emails 100 of 100 and ordinary numbers 0 of 20 touched in all runs.",
    "- **Not measured here:** whether the damage avoided improves the synthetic text (fewer placeholders "
    "in training, none filled with a random Faker date or URL) — that needs a training run.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--wnut", default=str(WNUT_DATA), help="WNUT-17 CSV (text, spans_json); skipped if absent")
    parser.add_argument("--out", default=str(OUT_MD))
    parser.add_argument("--planted-only", action="store_true",
                        help="only the planted-PII check (section 4): print it, write nothing")
    parser.add_argument("--planted-seed", type=int, default=0, help="Faker seed of the planted values (default 0)")
    args = parser.parse_args()

    analyzer = pii.build_analyzer()
    if args.planted_only:
        print("\n".join(render_planted(planted(args.jobs, analyzer, seed=args.planted_seed))))
        return
    result = {"engine": analyzer.synthtext_engine_name,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d", time.gmtime()), "notes": NOTES}
    result["reviews"] = reviews(args.jobs, analyzer)
    presidio = read_csv(PRESIDIO_DATA)
    result["gold"] = [gold_set("presidio synthetic PII sentences (bench/data/presidio_synth_pii.csv)",
                               presidio["full_text"].tolist(), [json.loads(s) for s in presidio["spans_json"]],
                               PRESIDIO_GOLD, args.jobs, analyzer)]
    if Path(args.wnut).is_file():
        wnut = pd.read_csv(args.wnut, keep_default_na=False)
        result["gold"].append(gold_set(f"WNUT-17 emerging entities, tweets ({Path(args.wnut).name})",
                                       wnut["text"].tolist(), [json.loads(s) for s in wnut["spans_json"]],
                                       WNUT_GOLD, args.jobs, analyzer))
    else:
        print(f"WNUT-17 data not found at {args.wnut}: skipped", file=sys.stderr)
    result["planted"] = planted(args.jobs, analyzer, seed=args.planted_seed)
    out = Path(args.out)
    out.write_text(render(result) + "\n", encoding="utf-8")
    for row in result["reviews"]["handcheck"]:  # the JSON holds no review text of PII spans
        if row["pii"]:
            row["value"] = row["context"] = "[masked]"
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()

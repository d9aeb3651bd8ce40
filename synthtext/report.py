"""The privacy audit report: ``<out_dir>/<run-id>/report.json`` and ``report.html``.

The report is what a privacy officer reads before synthetic data leave the organisation, so it must be
true, complete and readable:

* :func:`build_report` turns what the pipeline knows (data summary, PII scan summary, privacy ledger,
  evaluation, canary audit) into one JSON-safe dict with a versioned schema (``synthtext.report/1``),
  adding per-column protection, plain-language verdicts and the caveats that always apply.
* :func:`render_html` renders that dict as one self-contained HTML page: inline CSS, plots as inline PNG
  data URIs (matplotlib, Agg), no scripts, no external resources, and a Content-Security-Policy that
  forbids the browser from fetching anything. Every data-derived string is HTML-escaped.
* :func:`write_report` writes both files into a fresh run directory, atomically: a failed run leaves
  nothing behind, and an existing run directory is never overwritten.

The report carries only what it is given, and of the PII scan only counts, entity types and redacted
examples (which must contain placeholders): never raw PII or training text. It is still computed from
the real data without DP (a caveat says so).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError
from .io import atomic_directory
from .jsonsafe import json_safe
from .pii import mask_contacts

__all__ = ["REPORT_SCHEMA", "build_report", "render_html", "report_pair", "write_report"]

REPORT_SCHEMA = "synthtext.report/1"
SMALL_DATA_ROWS = 10_000
"""Peers recommend at least this many records for DP fine-tuning; fewer gives a caveat."""
EPSILON_GOOD, EPSILON_FAIR = 1.0, 10.0
"""Verdict thresholds on the total epsilon: <= 1 good (strong), <= 10 fair (the range commonly used for
DP machine learning), above 10 poor (weak guarantee)."""

ROLES = ("text", "structured", "pii", "conditioning")
SECTIONS = ("privacy", "fidelity", "leakage", "membership", "audit")
_SECTION_TITLES = {"privacy": "Privacy guarantee", "fidelity": "Fidelity", "leakage": "Leakage",
                   "membership": "Membership inference", "audit": "Canary audit"}
_VERDICT_ORDER = {"poor": 3, "fair": 2, "good": 1}
_VERDICT_LABELS = {"good": "\u2713 good", "fair": "! fair", "poor": "\u2717 poor", "n/a": "\u2013 n/a"}
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ENTITY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
# Keys of the PII summary that are carried into the report; anything else (raw spans, values) is dropped.
_PII_KEYS = ("engine", "n_rows", "warnings", "counts", "rows_with_pii", "redact_entities", "redacted_entities",
             "counted_only", "structured_columns", "examples")
_COLOURS = {"real": "#0072B2", "synthetic": "#E69F00", "tstr": "#009E73", "bound": "#CC79A7"}


# --------------------------------------------------------------------------------------------------
# Building the report dict
# --------------------------------------------------------------------------------------------------


def build_report(*, evaluation: Mapping | Any | None, ledger: Mapping | None, data_summary: Mapping,
                 pii_summary: Mapping | None = None, audit: Mapping | Any | None = None,
                 model_info: Mapping | None = None, run_id: str | None = None,
                 title: str | None = None) -> dict:
    """The content of ``report.json`` (see docs/report.md for the schema); writes no files.

    ``evaluation`` and ``audit`` may be dicts or objects with ``to_dict()``. ``ledger`` is
    :func:`synthtext.synthesizer.compose_ledgers` output (None: unknown, e.g. when comparing two files).

    Raises:
        ConfigError: an input lacks a required key, a column role is unknown, a column claims DP that
            the ledger does not support, a PII example is not redacted, or a value is not JSON-safe.
    """
    from ._version import __version__

    now = datetime.now(timezone.utc)
    run_id = _check_run_id(run_id) if run_id is not None else new_run_id(now)
    evaluation = _as_dict(evaluation, "evaluation")
    audit = _as_dict(audit, "audit")
    ledger = _json_safe(dict(ledger), "ledger") if ledger is not None else None
    data = _check_data_summary(data_summary, ledger)
    pii = _clean_pii_summary(pii_summary) if pii_summary is not None else None
    redact_pii = data.get("redact_pii", (model_info or {}).get("redact_pii"))
    verdicts = _privacy_verdicts(ledger, data) + list((evaluation or {}).get("verdicts") or [])
    verdicts += _audit_verdicts(audit)
    report = {
        "schema": REPORT_SCHEMA,
        "synthtext_version": __version__,
        "created": now.isoformat(timespec="seconds"),
        "run_id": run_id,
        "title": title or "Privacy audit report",
        "data": data,
        "protection": [{"column": c["name"], "role": c["role"], "protected_by": c["protected_by"]}
                       for c in data["columns"]],
        "pii_scan": pii,
        "privacy": ledger,
        "evaluation": evaluation,
        "audit": audit,
        "model_info": _json_safe(dict(model_info), "model_info") if model_info is not None else None,
        "caveats": _caveats(data, ledger, pii, evaluation, audit, redact_pii),
        "verdicts": verdicts,
        "overall": _overall(verdicts, evaluation, audit),
        "thresholds": {
            "epsilon": {"good": f"<= {EPSILON_GOOD:g}", "fair": f"<= {EPSILON_FAIR:g}",
                        "poor": f"> {EPSILON_FAIR:g}, or no differential privacy"},
            "delta": "< 1 / number of training rows",
            "small_data_rows": SMALL_DATA_ROWS,
        },
    }
    report = _json_safe(report, "report")
    json.dumps(report, allow_nan=False)  # the contract: fails loudly here rather than in a reader
    return report


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id: UTC timestamp plus a short random suffix, e.g. ``20261123-142501-a3f9``."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or run_id in (".", ".."):
        raise ConfigError(f"run_id={run_id!r} is not a usable directory name: use letters, digits, '.', "
                          "'_' and '-' only (at most 100 characters, not starting with '.' or '-'), or "
                          "leave it out for a timestamped one.")
    return run_id


def _as_dict(value: Any, name: str) -> dict | None:
    if value is None:
        return None
    if hasattr(value, "to_dict") and not isinstance(value, Mapping):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a dict (or have .to_dict()), not {type(value).__name__}.")
    return _json_safe(dict(value), name)


def _json_safe(value: Any, where: str) -> Any:
    """:func:`synthtext.jsonsafe.json_safe`, with what cannot be written said as the caller's error."""
    try:
        return json_safe(value, where)
    except TypeError as exc:
        raise ConfigError(f"{exc}, so it cannot be written to report.json; pass numbers, strings, lists and "
                          "dicts only.") from None


def _check_data_summary(data_summary: Mapping, ledger: dict | None) -> dict:
    if not isinstance(data_summary, Mapping):
        raise ConfigError("data_summary must be a dict with n_rows and columns.")
    for key in ("n_rows", "columns"):
        if key not in data_summary:
            raise ConfigError(f"data_summary lacks {key!r}; it needs at least n_rows and columns "
                              "(a list of {name, dtype, role, protected_by}).")
    data = _json_safe(dict(data_summary), "data_summary")
    structured = data.get("structured")
    columns = []
    for i, column in enumerate(data["columns"]):
        if not isinstance(column, Mapping) or "name" not in column:
            raise ConfigError(f"data_summary.columns[{i}] must be a dict with at least a 'name'.")
        role = column.get("role", "structured")
        if role not in ROLES:
            raise ConfigError(f"data_summary.columns[{i}] ({column['name']!r}) has role {role!r}; "
                              f"use one of {', '.join(ROLES)}.")
        protected = column.get("protected_by") or column_protection(role, structured, ledger)
        if protected.startswith("DP") and not (ledger and ledger.get("dp")):
            # A report that claims DP the ledger does not back would be false: refuse it.
            raise ConfigError(f"column {column['name']!r} is marked {protected!r} but the privacy ledger "
                              f"{'is missing' if ledger is None else 'says no DP'}; pass the ledger of the "
                              "run or fix the column's protected_by.")
        columns.append({**column, "name": str(column["name"]), "role": role, "protected_by": protected})
    data["columns"] = columns
    return data


def column_role(column: Any, text_columns, pii_columns, conditioning_columns) -> str:
    """A column's role in the report: "text", "pii", "conditioning" or "structured"."""
    if column in text_columns:
        return "text"
    if column in pii_columns:
        return "pii"
    return "conditioning" if column in conditioning_columns else "structured"


def column_protection(role: str, structured: str | None, ledger: Mapping | None) -> str:
    """What protects a column of this role, in the words the report uses (the one place they are made)."""
    if role == "text":
        if ledger is None:
            return "unknown (no privacy ledger)"
        if ledger.get("dp"):
            return f"DP (epsilon={ledger['epsilon']:.3g} for all text columns)"
        return "not DP (trained without differential privacy)"
    if role == "pii":
        return "Faker surrogate (not derived from data)"
    if structured == "sdv":
        return "SDV (not DP)"
    if structured == "keep":
        return "kept as given (not protected)"
    return "unknown"


def _clean_pii_summary(pii_summary: Mapping) -> dict:
    """Counts, entity types and redacted examples only; anything else is dropped, not rendered."""
    if not isinstance(pii_summary, Mapping):
        raise ConfigError("pii_summary must be a dict with counts, structured_columns and examples.")
    out: dict[str, Any] = {}
    if "engine" in pii_summary:
        out["engine"] = str(pii_summary["engine"])
    if "n_rows" in pii_summary:
        out["n_rows"] = int(pii_summary["n_rows"])
    out["warnings"] = [str(w) for w in pii_summary.get("warnings") or []]
    counts = {}
    for column, by_entity in (pii_summary.get("counts") or {}).items():
        counts[str(column)] = {_entity(e, f"pii_summary.counts[{column!r}]"): int(n)
                               for e, n in by_entity.items()}
    out["counts"] = counts
    if "rows_with_pii" in pii_summary:
        out["rows_with_pii"] = {str(c): int(n) for c, n in pii_summary["rows_with_pii"].items()}
    if "redact_entities" in pii_summary:
        chosen = pii_summary["redact_entities"]
        out["redact_entities"] = (chosen if chosen in ("default", "all") else
                                  [_entity(e, "pii_summary.redact_entities") for e in chosen or []])
    for key in ("redacted_entities", "counted_only"):
        if key in pii_summary:
            out[key] = {str(column): {_entity(e, f"pii_summary.{key}[{column!r}]"): int(n)
                                      for e, n in by_entity.items()}
                        for column, by_entity in (pii_summary[key] or {}).items()}
    structured = {}
    raw = pii_summary.get("structured_columns") or {}
    items = raw.items() if isinstance(raw, Mapping) else ((c.get("column"), c) for c in raw)
    for column, entry in items:
        entity = entry.get("entity_type") if isinstance(entry, Mapping) else entry
        structured[str(column)] = _entity(entity, f"pii_summary.structured_columns[{column!r}]")
    out["structured_columns"] = structured
    examples = {}
    for column, texts in (pii_summary.get("examples") or {}).items():
        for text in texts:
            if not isinstance(text, str) or not _PLACEHOLDER.search(text):
                raise ConfigError(f"pii_summary.examples[{column!r}] holds an example without a PII "
                                  "placeholder such as <PERSON>: only redacted examples "
                                  "(synthtext.pii.redacted_examples) may go into a report.")
        examples[str(column)] = [mask_contacts(text) for text in texts]  # again: defence in depth
    out["examples"] = examples
    return out


def _entity(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _ENTITY.match(name):
        raise ConfigError(f"{where}: {name!r} is not an entity type (such as PERSON or EMAIL_ADDRESS).")
    return name


# -- verdicts ---------------------------------------------------------------------------------------


def _verdict(section: str, metric: str, value: Any, threshold: str, verdict: str, plain: str,
             column: str | None = None) -> dict:
    return {"section": section, "column": column, "metric": metric, "value": value,
            "threshold": threshold, "verdict": verdict, "plain": plain}


def _privacy_verdicts(ledger: dict | None, data: dict) -> list[dict]:
    eps_threshold = (f"good <= {EPSILON_GOOD:g}, fair <= {EPSILON_FAIR:g}, poor above or without DP")
    if ledger is None:
        return [_verdict("privacy", "epsilon", None, eps_threshold, "n/a",
                         "No privacy ledger was given, so this report cannot say whether the synthetic "
                         "text has any differential-privacy guarantee.")]
    if not ledger.get("dp"):
        return [_verdict("privacy", "epsilon", None, eps_threshold, "poor",
                         "No differential privacy: nothing formally limits what the synthetic text can "
                         "reveal about any one real row.")]
    eps, delta = ledger.get("epsilon"), ledger.get("delta")
    if not isinstance(eps, (int, float)):
        raise ConfigError("the privacy ledger says dp=True but gives no epsilon; pass the ledger of the run "
                          "(synthtext.synthesizer.compose_ledgers output).")
    if eps <= EPSILON_GOOD:
        verdict, words = "good", "a strong guarantee"
    elif eps <= EPSILON_FAIR:
        verdict, words = "fair", "a moderate guarantee, in the range commonly used for DP machine learning"
    else:
        verdict, words = "poor", "a weak guarantee: the bound on what one row can change is loose"
    out = [_verdict("privacy", "epsilon", eps, eps_threshold, verdict,
                    f"Epsilon {eps:.3g} per row is {words}; a lower epsilon is a stronger guarantee.")]
    n_train = _n_train(ledger, data)
    if delta is not None and n_train:
        ok = delta < 1 / n_train
        out.append(_verdict(
            "privacy", "delta", delta, f"< 1/{n_train} = {1 / n_train:.2g}", "good" if ok else "poor",
            f"Delta {delta:.2g} is {'well below' if delta < 0.1 / n_train else 'below'} one in the number of "
            "training rows, as it should be." if ok else
            f"Delta {delta:.2g} is not small compared with 1/{n_train}: the guarantee allows about one "
            "row's data to escape the epsilon bound entirely."))
    return out


def _n_train(ledger: dict, data: dict) -> int | None:
    counts = [m.get("n_records") for m in ledger.get("models") or [] if m.get("n_records")]
    return min(counts) if counts else data.get("n_train") or data.get("n_rows")


def _audit_verdicts(audit: dict | None) -> list[dict]:
    if not audit:
        return []
    claimed, lower = audit.get("claimed_epsilon"), audit.get("empirical_epsilon_lower_bound")
    if lower is None:
        return []
    confidence = audit.get("confidence")
    conf = f" at {confidence:.0%} confidence" if isinstance(confidence, (int, float)) else ""
    if audit.get("dp") and claimed is not None:
        if lower > claimed:
            return [_verdict("audit", "empirical_epsilon_lower_bound", lower, f"<= claimed epsilon {claimed:.3g}",
                             "poor", f"The canary audit measured more leakage (epsilon >= {lower:.3g}{conf}) "
                             f"than the claimed epsilon {claimed:.3g} allows: the DP guarantee may not hold. "
                             "Do not release before this is explained.")]
        return [_verdict("audit", "empirical_epsilon_lower_bound", lower, f"<= claimed epsilon {claimed:.3g}",
                         "good", f"The canary audit is consistent with the claim: it shows epsilon >= {lower:.3g}"
                         f"{conf}, not more than the claimed {claimed:.3g}. Audits of this size can only "
                         "catch gross violations.")]
    return [_verdict("audit", "empirical_epsilon_lower_bound", lower, "no DP claim to check", "n/a",
                     f"Without differential privacy the audit only measures: epsilon >= {lower:.3g}{conf}; "
                     "higher means more measurable leakage.")]


def _overall(verdicts: list[dict], evaluation: dict | None, audit: dict | None) -> dict:
    sections = list(SECTIONS) + sorted({v.get("section") for v in verdicts} - set(SECTIONS) - {None})
    out = {}
    for section in sections:
        rated = [v for v in verdicts if v.get("section") == section]
        scored = [v for v in rated if v.get("verdict") in _VERDICT_ORDER]
        if not scored:
            why = {"audit": "no canary audit was run" if not audit else "the audit gives no bound",
                   "privacy": "no privacy ledger"}.get(section)
            if why is None:
                why = ("no evaluation was run" if evaluation is None else
                       f"no {section} check could be computed")
            out[section] = {"verdict": "n/a", "n_checks": len(rated), "plain": f"Not assessed: {why}."}
            continue
        worst = max(scored, key=lambda v: _VERDICT_ORDER[v["verdict"]])
        tally = {k: sum(v["verdict"] == k for v in scored) for k in ("good", "fair", "poor")}
        plain = worst.get("plain") or ""
        if len(scored) > 1:
            plain = (f"{tally['good']} good, {tally['fair']} fair, {tally['poor']} poor of {len(scored)} "
                     f"checks. Worst: {plain}")
        out[section] = {"verdict": worst["verdict"], "n_checks": len(rated), "counts": tally, "plain": plain}
    return out


# -- caveats ----------------------------------------------------------------------------------------


def _names(columns: Sequence[dict]) -> str:
    return ", ".join(repr(c["name"]) for c in columns)


def _rare_sentence(rare: Mapping | None) -> str:
    """What rare-category suppression (synthtext.tabular) did, per column: rows withheld from SDV, and
    how many synthetic cells got what instead of the stand-in."""
    parts = []
    for column, info in (rare or {}).items():
        if not isinstance(info, Mapping):
            continue
        values, rows = info.get("values"), info.get("rows")
        withheld = (f"{_fmt(values)} distinct value{'' if values == 1 else 's'} in {_fmt(rows)} real "
                    f"row{'' if rows == 1 else 's'}")
        cells = info.get("cells_replaced")
        if info.get("replaced_with") == "missing":
            what = (f"{_fmt(cells)} synthetic cells left missing" if cells is not None else "left missing")
            what += ", as no category was frequent enough"
        elif info.get("replaced_with"):
            what = (f"{_fmt(cells)} synthetic cells" if cells is not None else "the cells") + (
                f" given one of its {_fmt(info.get('kept_categories'))} frequent categories, by frequency")
        else:
            what = "withheld"
        parts.append(f"{column!r}: {withheld}; {what}")
    if not parts:
        return ""
    k = next((i.get("min_count") for i in rare.values() if isinstance(i, Mapping) and i.get("min_count")), None)
    seen = f"in fewer than {_fmt(k)} real rows" if k else "too rarely"
    return (f" Categories seen {seen} were withheld from SDV, so they cannot be copied, and no placeholder "
            "was written in their place (" + "; ".join(parts) + ").")


def _pii_column_finding(replay: Mapping | None) -> str:
    """What the evaluation's check of the PII columns for real values found, in one or two sentences."""
    if not replay or not isinstance(replay.get("columns"), Mapping):
        return ""
    k = replay.get("common_min_rows")
    found = []
    for column, c in replay["columns"].items():
        if c.get("n_equal_rare"):
            found.append(f"{_fmt(c['n_equal_rare'])} synthetic {column!r} values equal a real one "
                         f"({c.get('verdict')})")
    rows = replay.get("rows") or {}
    if rows.get("n_rows_replayed"):
        found.append(f"{_fmt(rows['n_rows_replayed'])} real rows have two or more of their PII values together "
                     "in one synthetic row")
    what = ("each synthetic value against the real values of its column"
            + (", and each real row's combination of them" if replay.get("rows") else "")
            + (f", case and whitespace ignored, values found in {_fmt(k)} or more real rows aside" if k else ""))
    if not found:
        return f"The evaluation checked {what}: no real value came back."
    verdict = ("A leak: see the leakage section." if replay.get("leak") else
               "A single name, place or id can coincide by chance; see the leakage section.")
    return f"The evaluation checked {what}: " + "; ".join(found) + f". {verdict}"


def _caveats(data: dict, ledger: dict | None, pii: dict | None, evaluation: dict | None,
             audit: dict | None, redact_pii: bool | None) -> list[dict]:
    dp = bool(ledger and ledger.get("dp"))
    out = []

    def add(key: str, text: str) -> None:
        out.append({"id": key, "text": text})

    if redact_pii is False:
        add("pii_placeholders", "PII redaction was turned off for this run: the training text kept its "
            "detected PII. Only the text model's differential privacy, if any, protects it.")
    elif ledger is not None:  # a pair synthtext did not make: nothing is known about redaction (no_ledger says so)
        counted = sorted({e for by_entity in ((pii or {}).get("counted_only") or {}).values() for e in by_entity})
        kept = (f" Spans of {', '.join(counted)} that the redaction rule does not take (places, nationalities, "
                "durations and vague dates such as 'last week', bare domains: not identifying, and mostly not "
                "PII at all in ordinary text) were counted but stayed in the training text; the PII scan "
                "section lists them." if counted else "")
        add("pii_placeholders", "PII placeholders are defence in depth, not part of epsilon. Detected PII "
            "spans in the training text were replaced by typed placeholders (<PERSON>, ...) before "
            "training and filled with made-up values afterwards." + kept + " No detector finds all PII: what "
            "the scan missed is protected only by the text model's differential privacy"
            + ("." if dp else ", and this run has none."))
    if ledger is None:
        add("no_ledger", "No privacy ledger was given: this report cannot say how the synthetic data were "
            "made or whether differential privacy applies. Treat it as not protected.")
    elif not dp:
        add("no_dp", "No differential privacy: the text models were trained without DP, so nothing formally "
            "limits what the synthetic text reveals about a training row. The leakage checks below can "
            "find problems but cannot prove their absence.")
    else:
        add("epsilon_scope", "Epsilon covers the text models only. The PII scan, the structured columns and "
            "this evaluation read the real data outside the privacy budget.")
        if any(not m.get("secure_rng", False) for m in ledger.get("models") or []):
            add("pseudo_random_noise", "The DP noise and the Poisson sampling were drawn from PyTorch's "
                "ordinary pseudo-random generator, not a cryptographically secure one (Opacus secure_mode "
                "off; the ledger says secure_rng: false). The epsilon holds against an attacker who cannot "
                "predict or reconstruct that generator's state. An audit may ask for a cryptographically "
                "secure generator (Opacus' secure_mode, which needs the torchcsprng package); synthtext "
                "does not offer it yet.")
        if len(ledger.get("models") or []) > 1:
            add("composition", f"{len(ledger['models'])} text models were trained on the same rows; their "
                "epsilons and deltas are added (basic composition), which is what the total shows.")
    sdv = [c for c in data["columns"] if c["protected_by"].startswith("SDV")]
    if sdv:
        add("sdv_not_dp", f"Columns {_names(sdv)} were synthesized by SDV, fitted on the real rows without "
            "differential privacy: their distributions and correlations come from the real data and rare "
            "values or combinations can reappear. Numbers stay within each real column's minimum and "
            "maximum (SDV's default), so the extremes, often one person's values, can show through. "
            "The generated text is conditioned on them." + _rare_sentence(data.get("rare_categories_suppressed")))
    kept = [c for c in data["columns"] if c["protected_by"].startswith("kept")]
    if kept:
        add("kept_not_protected", f"Columns {_names(kept)} were kept as given: the synthetic table reuses "
            "their real values, which are not protected at all.")
    pii_columns = [c for c in data["columns"] if c["role"] == "pii"]
    # Only a run that made the synthetic table knows its PII columns are surrogates (protected_by says so);
    # for any other pair (synthtext report) the report says what it checked and found, and claims nothing.
    surrogate = [c for c in pii_columns if c["protected_by"].startswith("Faker")]
    unmade = [c for c in pii_columns if not c["protected_by"].startswith("Faker")]
    checked = _pii_column_finding((evaluation or {}).get("pii_column_replay"))
    if surrogate:
        add("pii_surrogates", f"Columns {_names(surrogate)} were detected as PII columns and replaced by "
            "Faker surrogates that are not derived from the data. A PII column the scan did not detect is "
            "treated like any other column (see its row in the protection table)."
            + (f" {checked}" if checked else ""))
    if unmade:
        add("pii_columns_checked", f"Columns {_names(unmade)} were detected as PII columns in the real "
            "table. This report did not make the synthetic table, so it cannot tell how their synthetic "
            "values were made. " + (checked or "Their synthetic values were not checked for real ones.")
            + " A PII column the scan did not detect is not checked.")
    n_train = (_n_train(ledger, data) if ledger else None) or data.get("n_rows")
    if dp and n_train and n_train < SMALL_DATA_ROWS:
        add("small_data", f"Only {n_train:,} rows were used for training under DP; peers recommend "
            f"{SMALL_DATA_ROWS:,} or more. With so few rows the DP noise dominates and the synthetic text is "
            "usually of low quality. The guarantee still holds.")
    add("report_is_sensitive", "This report was computed from the real data without differential privacy: "
        "PII counts, length statistics, metrics and plot data (such as 2-D embedding positions and "
        "distances to real rows). Treat it as being as sensitive as aggregate statistics of the real data "
        "and review it before sharing it with the synthetic data.")
    if evaluation is not None or audit is not None:
        add("empirical_checks", "Leakage, membership-inference and canary results are empirical tests: they "
            "can show that something leaks, never prove that nothing does. A good verdict there is not a "
            "privacy guarantee; only the epsilon above is.")
    return out


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def write_report(out_dir: str | os.PathLike, *, evaluation: Mapping | Any | None, ledger: Mapping | None,
                 data_summary: Mapping, pii_summary: Mapping | None = None, audit: Mapping | Any | None = None,
                 model_info: Mapping | None = None, run_id: str | None = None,
                 title: str | None = None) -> Path:
    """Write ``out_dir/<run_id>/report.json`` and ``report.html`` and return the run directory.

    Both files are rendered first, written into a temporary directory inside ``out_dir`` and then moved
    into place with one rename: a failure leaves no run directory and no partial file.

    Raises:
        ConfigError: bad inputs (see :func:`build_report`) or the run directory already exists.
        DataError: ``out_dir`` cannot be created or written.
    """
    report = build_report(evaluation=evaluation, ledger=ledger, data_summary=data_summary,
                          pii_summary=pii_summary, audit=audit, model_info=model_info, run_id=run_id,
                          title=title)
    text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    page = render_html(report)  # before touching the disk: a rendering error leaves nothing behind
    root = Path(out_dir)
    final = root / report["run_id"]
    _refuse_existing(final)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot write the report to {root}: {exc.strerror or exc}. "
                        "Choose a writable directory.") from exc
    with atomic_directory(final) as staging:
        for name, content in (("report.json", text), ("report.html", page)):
            (staging / name).write_text(content, encoding="utf-8", newline="\n")
        _refuse_existing(final)  # another run may have taken the name meanwhile
    return final


def report_pair(real, synthetic, out_dir: str | os.PathLike = "privacy_reports", *,
                text_columns: Sequence[str] | None = None, conditioning_columns: Sequence[str] | None = None,
                embedding: str = "auto", analyzer: Any = None, run_id: str | None = None,
                audit: Mapping | None = None) -> Path:
    """Evaluate any real/synthetic pair of tables and write the report (``synthtext report``).

    Without the model there is no ledger and no membership-inference attack, and without a holdout the
    leakage baselines are missing: the report says so. PII replay searches the synthetic text for the PII
    the scan finds in ``real``, and the columns the scan finds to be PII themselves (a name or email column)
    are checked for real values and real rows' combinations of them; the report claims nothing about how
    their synthetic values were made."""
    from . import pii
    from .evaluate import evaluate

    if list(real.columns) != list(synthetic.columns):
        missing = [c for c in real.columns if c not in synthetic.columns]
        extra = [c for c in synthetic.columns if c not in real.columns]
        raise DataError(f"the synthetic table's columns differ from the real one's (missing: {missing}, "
                        f"extra: {extra}); compare tables with the same columns.")
    scan = pii.scan_pii(real, columns=text_columns, analyzer=analyzer)
    if not scan.text_columns:
        raise DataError("no text column found in the real table; name them with --text-columns.")
    pii_columns = {c: s.entity_type for c, s in scan.structured_columns.items()}
    conditioning = list(conditioning_columns) if conditioning_columns is not None else [
        c for c in real.columns if c not in scan.text_columns and c not in pii_columns]
    evaluation = evaluate(real, synthetic, scan.text_columns, conditioning,
                          pii_values=pii.found_values(real, scan), embedding=embedding, pii_columns=pii_columns)
    unknown = "unknown: this pair was not made by this run"
    columns = [{"name": str(c), "dtype": str(real[c].dtype),
                "role": column_role(c, scan.text_columns, pii_columns, conditioning),
                "protected_by": unknown} for c in real.columns]
    data_summary = {"n_rows": len(real), "n_train": len(real), "n_holdout": 0, "columns": columns,
                    "text_columns": list(scan.text_columns), "conditioning_columns": conditioning,
                    "structured": None, "model": None}
    pii_summary = {"counts": scan.counts(), "structured_columns": pii_columns,
                   "examples": {c: pii.redacted_examples(real, scan, c) for c in scan.text_columns}}
    return write_report(out_dir, evaluation=evaluation, ledger=None, data_summary=data_summary,
                        pii_summary=pii_summary, run_id=run_id, audit=audit,
                        title="synthtext report: a given real/synthetic pair")


def _refuse_existing(final: Path) -> None:
    if final.exists() or final.is_symlink():
        raise ConfigError(f"report directory {final} already exists; synthtext never overwrites a report. "
                          "Leave run_id out for a fresh timestamped one, choose another run_id, or move the "
                          "old report away.")


# --------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
  color: #1a1a1a; background: #fff; margin: 0 auto; max-width: 1100px; padding: 1.5rem; line-height: 1.45; }
h1 { margin: 0 0 .2rem; font-size: 1.8rem; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.4rem; }
.meta { color: #555; font-size: .9rem; margin: 0 0 1rem; }
nav { font-size: .9rem; margin: .5rem 0 1rem; }
nav a { margin-right: .8rem; }
.summary { border: 2px solid #333; border-radius: 8px; padding: 1rem 1.2rem; background: #fafafa; }
.headline { font-size: 1.9rem; font-weight: 700; margin: 0 0 .6rem; }
.headline.nodp { color: #a50f15; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: .4rem 1rem;
  margin: .6rem 0 1rem; }
.facts div { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .4rem .6rem; }
.facts b { display: block; font-size: 1.2rem; }
.facts span { color: #555; font-size: .85rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: .05rem .5rem; border-radius: 4px; font-weight: 700;
  white-space: nowrap; border: 1px solid; }
.v-good { background: #e5f5e0; color: #1b5e20; border-color: #1b5e20; }
.v-fair { background: #fff4d6; color: #7a4f00; border-color: #7a4f00; }
.v-poor { background: #fde0dd; color: #a50f15; border-color: #a50f15; }
.v-na { background: #eee; color: #444; border-color: #888; }
.example { font-family: ui-monospace, "DejaVu Sans Mono", monospace; background: #f6f6f6;
  padding: .3rem .5rem; margin: .25rem 0; border-left: 3px solid #999; white-space: pre-wrap;
  word-break: break-word; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #444; font-size: .9rem; }
.na { color: #666; font-style: italic; }
.caveats li { margin-bottom: .5rem; }
details { margin: .5rem 0 1rem; }
summary { cursor: pointer; color: #333; }
@media print { nav { display: none; } h2 { page-break-before: auto; } }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        if len(value) > 30:  # long series (histograms, losses) stay readable; report.json has them all
            return ", ".join(_fmt(v) for v in value[:30]) + f", \u2026 ({len(value):,} values in report.json)"
        return ", ".join(_fmt(v) for v in value) if value else "none"
    return str(value)


def _badge(verdict: str | None) -> str:
    verdict = verdict if verdict in _VERDICT_LABELS else "n/a"
    css = "na" if verdict == "n/a" else verdict
    return f'<span class="verdict v-{css}">{_e(_VERDICT_LABELS[verdict])}</span>'


def _kv_table(mapping: Mapping, depth: int = 0) -> str:
    """Every key and value, nested dicts as nested tables: additions to an input show up as they are."""
    if not mapping:
        return '<p class="na">(empty)</p>'
    rows = []
    for key, value in mapping.items():
        nested = isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value)
        if isinstance(value, Mapping) and depth < 3:
            cell = _kv_table(value, depth + 1)
        elif nested and all(isinstance(v, Mapping) for v in value) and depth < 3:
            cell = "".join(_kv_table(v, depth + 1) for v in value)
        elif isinstance(value, Mapping) or nested:
            cell = f"<code>{_e(json.dumps(value, ensure_ascii=False))}</code>"
        else:
            cell = _e(_fmt(value))
        rows.append(f"<tr><th>{_e(key)}</th><td>{cell}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """``rows`` hold already-escaped HTML cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_table(verdicts: Sequence[dict], with_column: bool = False) -> str:
    if not verdicts:
        return ""
    header = (["Column"] if with_column else []) + ["Check", "Value", "Verdict", "What it means", "Threshold"]
    rows = []
    for v in verdicts:
        row = [_e(v.get("column") or "\u2013")] if with_column else []
        row += [_e(v.get("metric", "")), _e(_fmt(v.get("value"))), _badge(v.get("verdict")),
                _e(v.get("plain", "")), _e(v.get("threshold", ""))]
        rows.append(row)
    return _table(header, rows, numeric=[2 if with_column else 1])


def render_html(report: Mapping) -> str:
    """The report as one self-contained HTML page (inline CSS and images, no scripts, no network)."""
    evaluation = report.get("evaluation")
    plots = (evaluation or {}).get("plots") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.get('title', 'Privacy audit report'))} \u2013 {_e(report.get('run_id', ''))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(report.get('title', 'Privacy audit report'))}</h1>",
        f'<p class="meta">Run {_e(report.get("run_id"))} \u00b7 created {_e(report.get("created"))} (UTC) '
        f'\u00b7 synthtext {_e(report.get("synthtext_version"))} \u00b7 schema {_e(report.get("schema"))}</p>',
        _nav(report),
        _summary_section(report),
        _data_section(report),
        _pii_section(report.get("pii_scan"), report.get("data")),
        _privacy_section(report),
        _fidelity_section(report, plots),
        _leakage_section(report, plots),
        _membership_section(report, plots),
        _audit_section(report) if report.get("audit") else "",
        _caveats_section(report),
        _method_section(report),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _nav(report: Mapping) -> str:
    items = [("summary", "Summary"), ("data", "Data & protection"), ("pii", "PII scan"),
             ("privacy", "Privacy ledger"), ("fidelity", "Fidelity"), ("leakage", "Leakage"),
             ("membership", "Membership inference")]
    if report.get("audit"):
        items.append(("audit", "Canary audit"))
    items += [("caveats", "Caveats"), ("method", "Method & thresholds")]
    return "<nav>" + "".join(f'<a href="#{key}">{_e(label)}</a>' for key, label in items) + "</nav>"


def _summary_section(report: Mapping) -> str:
    ledger, data = report.get("privacy"), report.get("data") or {}
    evaluation = report.get("evaluation") or {}
    if ledger is None:
        headline = '<p class="headline nodp">No privacy ledger: differential privacy unknown</p>'
    elif not ledger.get("dp"):
        headline = '<p class="headline nodp">No differential privacy</p>'
    else:
        headline = (f'<p class="headline">Differential privacy: \u03b5 = {_e(_fmt(ledger.get("epsilon")))}, '
                    f'\u03b4 = {_e(_fmt(ledger.get("delta")))} per row (text columns)</p>')
    synthetic_rows = (evaluation.get("n_rows") or {}).get("synthetic")
    facts = [
        ("Epsilon (\u03b5)", _fmt(ledger.get("epsilon")) if ledger and ledger.get("dp") else "none"),
        ("Delta (\u03b4)", _fmt(ledger.get("delta")) if ledger and ledger.get("dp") else "none"),
        ("Differential privacy", "unknown" if ledger is None else "yes" if ledger.get("dp") else "NO"),
        ("Real rows", _fmt(data.get("n_rows"))),
        ("Training / holdout rows", f"{_fmt(data.get('n_train'))} / {_fmt(data.get('n_holdout'))}"),
        ("Synthetic rows evaluated", _fmt(synthetic_rows)),
        ("Text columns", _fmt(data.get("text_columns") or [])),
        ("Model", _fmt(data.get("model"))),
    ]
    grid = "".join(f"<div><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in facts)
    rows = [[_e(_SECTION_TITLES.get(s, s.title())), _badge(o.get("verdict")), _e(o.get("plain", ""))]
            for s, o in (report.get("overall") or {}).items()]
    return ('<section id="summary" class="summary"><h2 style="margin-top:0">Summary</h2>' + headline
            + f'<div class="facts">{grid}</div>'
            + _table(["Area", "Overall verdict", "Why"], rows)
            + '<p class="meta">Verdicts: \u2713 good, ! fair, \u2717 poor, \u2013 not assessed. The overall '
              "verdict of an area is its worst check; every check is listed in its section.</p></section>")


def _data_section(report: Mapping) -> str:
    data = report.get("data") or {}
    structured = data.get("structured")
    source = {"sdv": "The structured columns were synthesized by SDV (not DP), and each synthetic row's text "
                     "was generated conditioned on those synthetic values.",
              "keep": "The structured columns were kept as given, and each row's text was generated "
                      "conditioned on those real values."}.get(structured, "")
    rows = [[_e(c["name"]), _e(c.get("dtype", "")), _e(c["role"]), _e(c["protected_by"])]
            for c in data.get("columns") or []]
    return ('<section id="data"><h2>Data &amp; protection per column</h2>'
            f"<p>{_e(_fmt(data.get('n_rows')))} real rows, {len(rows)} columns. {_e(source)}</p>"
            + _table(["Column", "Type", "Role", "Protected by"], rows) + "</section>")


def _pii_section(pii: Mapping | None, data: Mapping | None = None) -> str:
    out = ['<section id="pii"><h2>PII scan</h2>']
    if pii is None:
        out.append('<p class="na">No PII scan summary was given.</p></section>')
        return "".join(out)
    if pii.get("engine"):
        out.append(f"<p>Scanned with {_e(pii['engine'])}"
                   + (f" over {_e(_fmt(pii['n_rows']))} rows" if "n_rows" in pii else "") + ".</p>")
    for warning in pii.get("warnings") or []:
        out.append(f'<p><strong>Warning:</strong> {_e(warning)}</p>')
    counts, rows_with = pii.get("counts") or {}, pii.get("rows_with_pii") or {}
    redacted, counted = pii.get("redacted_entities"), pii.get("counted_only")
    if "redact_entities" in pii:
        out.append(f"<p>{_e(_redaction_sentence(pii))}</p>")
    for column, by_entity in counts.items():
        total = sum(by_entity.values())
        extra = f" in {_fmt(rows_with[column])} rows" if column in rows_with else ""
        out.append(f"<h3>Text column {_e(column)}: {_e(_fmt(total))} PII span(s){_e(extra)}</h3>")
        if by_entity and redacted is not None and counted is not None:
            done, left = redacted.get(column) or {}, counted.get(column) or {}
            out.append(_table(["Entity type", "Spans found", "Redacted", "Counted, not redacted"],
                              [[_e(e), _e(_fmt(n)), _e(_fmt(done.get(e, 0))), _e(_fmt(left.get(e, 0)))]
                               for e, n in by_entity.items()], numeric=[1, 2, 3]))
        elif by_entity:
            out.append(_table(["Entity type", "Spans found"],
                              [[_e(e), _e(_fmt(n))] for e, n in by_entity.items()], numeric=[1]))
        examples = (pii.get("examples") or {}).get(column) or []
        if examples:
            out.append("<p>Redacted examples (detected PII shown as placeholders; digits and capitalised "
                       "words the scan did not flag are masked too):</p>")
            out += [f'<div class="example">{_e(x)}</div>' for x in examples]
    if not counts:
        out.append('<p class="na">No text column was scanned.</p>')
    structured = pii.get("structured_columns") or {}
    if structured:
        # what protects them is the data summary's word: only a run that made the table knows it
        protected = {c.get("name"): c.get("protected_by") for c in (data or {}).get("columns") or []}
        out.append("<h3>Columns that are PII themselves</h3>"
                   + _table(["Column", "Entity type", "Protected by"],
                            [[_e(c), _e(e), _e(protected.get(c) or "unknown")] for c, e in structured.items()]))
    else:
        out.append("<p>No column was detected as PII by itself.</p>")
    out.append("</section>")
    return "".join(out)


def _redaction_sentence(pii: Mapping) -> str:
    """What was redacted before training, in words."""
    chosen = pii.get("redact_entities")
    totals: dict[str, list[int]] = {}
    for key, i in (("redacted_entities", 0), ("counted_only", 1)):
        for by_entity in (pii.get(key) or {}).values():
            for e, n in by_entity.items():
                totals.setdefault(e, [0, 0])[i] += n
    done = ", ".join(f"{e} ({_fmt(t[0])})" for e, t in totals.items() if t[0])
    left = ", ".join(f"{e} ({_fmt(t[1])})" for e, t in totals.items() if t[1])
    rule = {"default": "default rule: names, contact details, ID numbers, specific dates, URLs with a scheme "
                       "or www.",
            "all": "all: every span the scan found"}.get(chosen) if isinstance(chosen, str) else (
        "chosen: " + ", ".join(chosen) if chosen else "none: redaction was off")
    return (f"Redacted before training ({rule}): {done or 'nothing'}. "
            f"Counted, not redacted: {left or 'nothing'}.")


def _privacy_section(report: Mapping) -> str:
    ledger = report.get("privacy")
    out = ['<section id="privacy"><h2>Privacy ledger</h2>']
    out.append(_verdict_table([v for v in report.get("verdicts") or [] if v.get("section") == "privacy"]))
    if ledger is None:
        out.append('<p class="na">No privacy ledger was given: how the synthetic data were made is not known '
                   "to this report.</p></section>")
        return "".join(out)
    if ledger.get("summary"):
        out.append(f"<p><strong>{_e(ledger['summary'])}</strong></p>")
    top = {k: v for k, v in ledger.items() if k not in ("models", "summary")}
    out.append(_kv_table(top))
    fields = ("model", "dp", "epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "epochs",
              "expected_batch_size", "max_grad_norm", "accountant", "sampling", "n_records", "privacy_unit",
              "target_epsilon", "stopped_early", "secure_rng")
    for i, model in enumerate(ledger.get("models") or []):
        out.append(f"<h3>Text model {i + 1}</h3>")
        ordered = {k: model[k] for k in fields if k in model}
        ordered.update({k: v for k, v in model.items() if k not in ordered and k != "summary"})
        out.append(_kv_table(ordered))
    out.append("</section>")
    return "".join(out)


def _section_verdicts(report: Mapping, section: str, column: str | None) -> list[dict]:
    return [v for v in report.get("verdicts") or [] if v.get("section") == section and v.get("column") == column]


def _details(title: str, mapping: Mapping | None) -> str:
    if not mapping:
        return ""
    return f"<details><summary>{_e(title)}</summary>{_kv_table(mapping)}</details>"


def _not_evaluated(section_id: str, title: str) -> str:
    return (f'<section id="{section_id}"><h2>{_e(title)}</h2>'
            '<p class="na">Not evaluated: no evaluation was run for this report.</p></section>')


def _fidelity_section(report: Mapping, plots: Mapping) -> str:
    evaluation = report.get("evaluation")
    if evaluation is None:
        return _not_evaluated("fidelity", "Fidelity")
    out = ['<section id="fidelity"><h2>Fidelity</h2><p>Is the synthetic text like the real text, and does '
           "it agree with its own row? (Fidelity is about usefulness, not privacy.)</p>"]
    if evaluation.get("embedding_method"):
        out.append(f"<p>Text embeddings: {_e(evaluation['embedding_method'])}.</p>")
    out.append(_verdict_table(_section_verdicts(report, "fidelity", None), with_column=True))
    for column, sections in (evaluation.get("columns") or {}).items():
        fidelity = (sections or {}).get("fidelity") or {}
        out.append(f"<h3>Text column {_e(column)}</h3>")
        out.append(_verdict_table(_section_verdicts(report, "fidelity", column)))
        out.append(_length_table(fidelity.get("length")))
        out.append(_conditional_table(fidelity.get("conditional")))
        unit = (fidelity.get("length") or {}).get("unit", "words")
        out.append(_figure(_plot_lengths, ((plots.get("lengths") or {}).get(column), unit), "lengths", column,
                           f"Text length ({unit}) of real and synthetic rows, column {column}: the closer the "
                           "two histograms, the better."))
        out.append(_figure(_plot_embedding, ((plots.get("embedding_2d") or {}).get(column),), "embedding_2d",
                           column, f"Real and synthetic texts of column {column} in a 2-D projection of their "
                           "embeddings: overlapping clouds mean similar content."))
        conditional = (plots.get("conditional") or {}).get(column)
        if conditional or fidelity.get("conditional"):
            out.append(_figure(_plot_conditional, (conditional, fidelity.get("conditional")), "conditional",
                               column, f"Per-condition accuracy, column {column}: how well a classifier "
                               "recovers each conditioning value from the text."))
        out.append(_details("All fidelity figures for this column", fidelity))
    if evaluation.get("structured"):
        out.append("<h3>Structured columns (SDV quality)</h3>" + _kv_table(evaluation["structured"]))
    out.append("</section>")
    return "".join(out)


def _length_table(length: Mapping | None) -> str:
    if not length or not isinstance(length.get("real"), Mapping):
        return ""
    stats = ("mean", "median", "p10", "p90", "missing_share")
    synthetic = length.get("synthetic") or {}
    rows = [[_e(s), _e(_fmt(length["real"].get(s))), _e(_fmt(synthetic.get(s)))] for s in stats]
    caption = (f"<p>Length in {_e(length.get('unit', 'words'))}; Kolmogorov\u2013Smirnov statistic "
               f"{_e(_fmt(length.get('ks_statistic')))} (0 = same distribution, 1 = disjoint).</p>")
    return caption + _table(["Length statistic", "Real", "Synthetic"], rows, numeric=[1, 2])


def _conditional_table(conditional: Mapping | None) -> str:
    if not conditional:
        return ""
    keys = ("real_holdout_accuracy", "synthetic_accuracy", "tstr_accuracy", "trtr_accuracy",
            "majority_baseline", "n_classes")
    rows = [[_e(cond)] + [_e(_fmt((v or {}).get(k))) for k in keys] for cond, v in conditional.items()]
    return ("<p>Does the text follow its row? Accuracy of a classifier that predicts each conditioning value "
            "from the text (TSTR: trained on synthetic, tested on real; TRTR: trained and tested on real).</p>"
            + _table(["Condition", "Real holdout", "Synthetic", "TSTR", "TRTR", "Majority baseline", "Classes"],
                     rows, numeric=[1, 2, 3, 4, 5, 6]))


def _leakage_section(report: Mapping, plots: Mapping) -> str:
    evaluation = report.get("evaluation")
    if evaluation is None:
        return _not_evaluated("leakage", "Leakage")
    out = ['<section id="leakage"><h2>Leakage</h2><p>Does the synthetic text copy training rows or bring back '
           "PII found in them?</p>"]
    out.append(_verdict_table([v for v in _section_verdicts(report, "leakage", None)
                               if v.get("metric") != "pii_row_replay"], with_column=True))  # shown below
    for column, sections in (evaluation.get("columns") or {}).items():
        leakage = (sections or {}).get("leakage") or {}
        out.append(f"<h3>Text column {_e(column)}</h3>")
        out.append(_verdict_table(_section_verdicts(report, "leakage", column)))
        replay = leakage.get("pii_replay")
        if replay is None:
            out.append('<p class="na">PII replay: not checked (no PII values from the scan were given).</p>')
        else:
            out.append(f"<p>PII replay: {_e(_fmt(replay.get('rows_with_replay')))} synthetic rows contain one "
                       f"of the {_e(_fmt(replay.get('n_values_searched')))} PII values found in the training "
                       f"text (share {_e(_fmt(replay.get('share')))}).")
            left_out = replay.get("not_counted_in_share") or []
            if left_out:
                out.append(f" Not counted in the share: the types {_e(', '.join(left_out))} (everyday words).")
            if replay.get("common_min_texts"):
                out.append(f" Nor values found in {_e(_fmt(replay['common_min_texts']))} or more training texts: "
                           "a string many records share identifies none of them (the scan's false hits, such "
                           "as ordinary words tagged as names, are of this kind).")
            out.append("</p>")
            by_type = replay.get("by_type") or {}
            if by_type:
                out.append(_table(["Entity type", "Exact matches", "Case-insensitive matches",
                                   "Values common in the training text"],
                                  [[_e(t), _e(_fmt(v.get("exact"))), _e(_fmt(v.get("case_insensitive"))),
                                    _e(_fmt(v.get("n_values_common")))] for t, v in by_type.items()],
                                  numeric=[1, 2, 3]))
        out.append(_figure(_plot_dcr, ((plots.get("dcr") or {}).get(column),), "dcr", column,
                           f"Distance from each synthetic text of column {column} to its closest training "
                           "text and to its closest holdout text: if the synthetic texts sit clearly closer "
                           "to training rows than to unseen rows, they are copying."))
        out.append(_details("All leakage figures for this column", leakage))
    out.append(_pii_columns_leakage(report, evaluation.get("pii_column_replay")))
    out.append("</section>")
    return "".join(out)


def _pii_columns_leakage(report: Mapping, replay: Mapping | None) -> str:
    """The structured PII columns' check for real values (evaluate's pii_column_replay)."""
    out = ["<h3>Columns that are PII themselves</h3>"]
    if not replay:
        if (report.get("pii_scan") or {}).get("structured_columns"):
            out.append('<p class="na">Not checked for real values: the evaluation was given no PII columns.</p>')
            return "".join(out)
        return ""
    k = _fmt(replay.get("common_min_rows"))
    out.append("<p>Does a real value of a PII column, or a real row's combination of them, come back in the "
               f"synthetic table? Compared case-insensitively, whitespace collapsed; values found in {_e(k)} or "
               "more real rows identify no one and are listed, not counted. A real row's combination (a name "
               "with its email) and an email or phone number do not come back by chance; a single name, place "
               "or id can, so up to "
               f"{_e(_fmt(100 * (replay.get('chance_value_share') or 0)))}% of such a column is graded fair.</p>")
    out.append(_verdict_table([v for v in report.get("verdicts") or [] if v.get("section") == "leakage"
                               and v.get("metric") in ("pii_value_replay", "pii_row_replay")], with_column=True))
    columns = replay.get("columns") or {}
    if columns:
        out.append(_table(["Column", "Entity type", "Kind", "Real values (distinct)", "Synthetic values",
                           "Equal to a real value", f"... found in fewer than {k} real rows",
                           "Distinct rare values replayed", "Common values replayed"],
                          [[_e(c), _e(v.get("entity_type")), _e(v.get("kind")),
                            _e(f"{_fmt(v.get('n_real_values'))} ({_fmt(v.get('n_real_distinct'))})"),
                            _e(_fmt(v.get("n_synthetic_values"))), _e(_fmt(v.get("n_equal_real"))),
                            _e(_fmt(v.get("n_equal_rare"))), _e(_fmt(v.get("n_rare_values_replayed"))),
                            _e(_fmt(v.get("n_common_values_replayed")))] for c, v in columns.items()],
                          numeric=[3, 4, 5, 6, 7, 8]))
    rows = replay.get("rows")
    if rows:
        out.append(f"<p>Rows: {_e(_fmt(rows.get('n_rows_replayed')))} of {_e(_fmt(rows.get('n_real_rows_checked')))} "
                   f"real rows with two or more PII values ({_e(', '.join(rows.get('columns') or []))}) have two or "
                   f"more of them together in one synthetic row ({_e(_fmt(rows.get('n_synthetic_rows_with_real_combination')))} "
                   f"synthetic rows); {_e(_fmt(rows.get('n_rows_common_combination')))} more share only a combination "
                   f"found in {_e(k)} or more real rows.</p>")
    return "".join(out)


def _membership_section(report: Mapping, plots: Mapping) -> str:
    evaluation = report.get("evaluation")
    if evaluation is None:
        return _not_evaluated("membership", "Membership inference")
    out = ['<section id="membership"><h2>Membership inference</h2><p>Can an attacker holding the trained '
           "model tell whether a given real row was used in training? The attack compares the model's loss "
           "on training rows and on holdout rows. AUC 0.5 means it cannot.</p>"]
    out.append(_verdict_table(_section_verdicts(report, "membership", None), with_column=True))
    membership = evaluation.get("membership")
    if not membership:
        out.append('<p class="na">Not run: no model losses on training and holdout rows were given (for '
                   "example when comparing two files).</p></section>")
        return "".join(out)
    ledger = report.get("privacy") or {}
    for column, result in membership.items():
        result = result or {}
        out.append(f"<h3>Text column {_e(column)}</h3>")
        out.append(_verdict_table(_section_verdicts(report, "membership", column)))
        tpr = result.get("tpr_at_fpr") or {}
        rows = [["Attack AUC (0.5 = guessing)", _e(_fmt(result.get("auc"))), _e(_fmt(result.get("auc_ci95")))],
                *[[f"True-positive rate at {_e(k)} false positives", _e(_fmt(v)), ""] for k, v in tpr.items()],
                ["Empirical epsilon (lower bound)", _e(_fmt(result.get("empirical_epsilon_lower_bound"))),
                 _e(_fmt(result.get("empirical_epsilon_ci95")))],
                ["Claimed epsilon", _e(_fmt(result.get("claimed_epsilon"))), ""]]
        out.append(_table(["Figure", "Value", "95% interval"], rows, numeric=[1]))
        curve = (plots.get("mia_roc") or {}).get(column)
        delta = result.get("delta", ledger.get("delta") if ledger.get("dp") else None)
        out.append(_figure(_plot_roc, (curve, result.get("claimed_epsilon"), delta), "mia_roc", column,
                           f"ROC curve of the membership attack on column {column}: the diagonal is guessing; "
                           "under the claimed (\u03b5, \u03b4) no attack can rise above the dotted bound."))
        out.append(_details("All membership figures for this column", result))
    out.append("</section>")
    return "".join(out)


def _audit_section(report: Mapping) -> str:
    audit = report["audit"]
    return ('<section id="audit"><h2>Canary audit</h2><p>A separate audit model was trained like the real '
            'one, with random secret "canary" rows each added with probability 1/2; how well its losses reveal '
            "which canaries were added gives an empirical lower bound on epsilon. The audit model is never used "
            "for synthesis.</p>"
            + _verdict_table([v for v in report.get("verdicts") or [] if v.get("section") == "audit"])
            + _kv_table(audit) + "</section>")


def _caveats_section(report: Mapping) -> str:
    items = "".join(f'<li data-caveat="{_e(c["id"])}">{_e(c["text"])}</li>' for c in report.get("caveats") or [])
    return f'<section id="caveats"><h2>Caveats</h2><ul class="caveats">{items}</ul></section>'


def _method_section(report: Mapping) -> str:
    out = ['<section id="method"><h2>Method &amp; thresholds</h2>']
    out.append("<p>Every check with the threshold it was judged by. Verdicts are rules of thumb for a first "
               "reading; the figures behind them are in each section and in report.json.</p>")
    out.append(_verdict_table(report.get("verdicts") or [], with_column=True) or
               '<p class="na">No checks were computed.</p>')
    thresholds = report.get("thresholds")
    if thresholds:
        out.append("<h3>Thresholds of this report's own verdicts</h3>" + _kv_table(thresholds))
    evaluation = report.get("evaluation") or {}
    if evaluation.get("thresholds"):
        out.append("<h3>Rules of the evaluation's verdicts</h3>" + _kv_table(evaluation["thresholds"]))
    settings = {k: evaluation[k] for k in ("embedding_method", "settings", "sampling", "n_rows") if evaluation.get(k)}
    if settings:
        out.append("<h3>Evaluation settings and subsampling</h3>" + _kv_table(settings))
    if report.get("model_info"):
        out.append("<h3>Model and sampling</h3>" + _kv_table(report["model_info"]))
    out.append(f"<p>Report schema {_e(report.get('schema'))}; the same content is in report.json next to "
               "this file.</p></section>")
    return "".join(out)


# -- plots ------------------------------------------------------------------------------------------


def _figure(plot, args: tuple, kind: str, column: str, caption: str) -> str:
    uri = plot(*args)
    if uri is None:
        return ""
    return (f'<figure data-plot="{_e(kind)}" data-column="{_e(column)}"><img src="{uri}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _finite(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]


def _points(values: Any) -> list[tuple[float, float]]:
    if not isinstance(values, list):
        return []
    return [(float(p[0]), float(p[1])) for p in values if isinstance(p, (list, tuple)) and len(p) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)]


def _new_axes(width: float = 6.4, height: float = 3.4):
    from matplotlib.figure import Figure  # not pyplot: no global state, no GUI backend

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shared_bins(first: list[float], second: list[float]):
    """Histogram bin edges common to two series, numpy's "auto" rule capped at 40 bins."""
    import numpy as np

    edges = np.histogram_bin_edges(first + second, bins="auto")
    return np.linspace(edges[0], edges[-1], 41) if len(edges) > 41 else edges


def _plot_lengths(data: Mapping | None, unit: str) -> str | None:
    if not isinstance(data, Mapping):
        return None
    real, synthetic = _finite(data.get("real")), _finite(data.get("synthetic"))
    if not real and not synthetic:
        return None
    edges = _shared_bins(real, synthetic)
    fig, ax = _new_axes()
    for values, name, hatch in ((real, "real", None), (synthetic, "synthetic", "//")):
        if values:
            ax.hist(values, bins=edges, density=True, alpha=0.45, color=_COLOURS[name], hatch=hatch,
                    edgecolor=_COLOURS[name], label=f"{name} (n={len(values):,})")
    ax.set_xlabel(f"length ({unit})")
    ax.set_ylabel("share of rows (density)")
    ax.legend()
    return _png(fig)


def _plot_embedding(data: Mapping | None) -> str | None:
    if not isinstance(data, Mapping):
        return None
    real, synthetic = _points(data.get("real")), _points(data.get("synthetic"))
    if not real and not synthetic:
        return None
    fig, ax = _new_axes(6.4, 4.4)
    for points, name, marker in ((real, "real", "o"), (synthetic, "synthetic", "x")):
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=10, alpha=0.5, marker=marker, color=_COLOURS[name],
                       label=f"{name} (n={len(points):,})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("projection axis 1")
    ax.set_ylabel("projection axis 2")
    ax.legend()
    return _png(fig)


def _plot_conditional(data: Mapping | None, table: Mapping | None) -> str | None:
    """Grouped bars per conditioning column: real holdout, synthetic and TSTR accuracy, with the
    majority-class baseline as a dashed line where the evaluation gives it."""
    series = (("real_holdout", "real holdout", "real", "real_holdout_accuracy", None),
              ("synthetic", "synthetic", "synthetic", "synthetic_accuracy", "//"),
              ("tstr", "TSTR", "tstr", "tstr_accuracy", ".."))
    groups = []
    for cond in (data or table or {}):
        row = (table or {}).get(cond) or {}
        heights = []
        for key, _, _, table_key, _ in series:
            value = (data[cond] or {}).get(key) if data else row.get(table_key)
            heights.append(float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None)
        if any(h is not None for h in heights):
            groups.append((str(cond), heights, row.get("majority_baseline")))
    if not groups:
        return None
    fig, ax = _new_axes(max(5.0, 1.6 * len(groups) + 2.0), 3.6)
    width = 0.26
    for i, (_, label, colour, _, hatch) in enumerate(series):
        xs = [g + (i - 1) * width for g in range(len(groups))]
        hs = [grp[1][i] for grp in groups]
        ax.bar([x for x, h in zip(xs, hs) if h is not None], [h for h in hs if h is not None], width,
               label=label, color=_COLOURS[colour], hatch=hatch, edgecolor="#333")
    for g, (_, _, baseline) in enumerate(groups):
        if isinstance(baseline, (int, float)) and math.isfinite(baseline):
            ax.plot([g - 1.5 * width, g + 1.5 * width], [baseline, baseline], "k--", linewidth=1.2,
                    label="majority baseline" if g == 0 else None)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([name for name, _, _ in groups], parse_math=False)  # column names may contain $
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    fig.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)  # never over the bars
    return _png(fig)


def _plot_dcr(data: Mapping | None) -> str | None:
    if not isinstance(data, Mapping):
        return None
    train, holdout = _finite(data.get("synthetic_to_train")), _finite(data.get("synthetic_to_holdout"))
    if not train and not holdout:
        return None
    edges = _shared_bins(train, holdout)
    fig, ax = _new_axes()
    for values, label, colour, hatch in ((train, "to closest training row", "real", None),
                                         (holdout, "to closest holdout row", "synthetic", "//")):
        if values:
            ax.hist(values, bins=edges, alpha=0.45, color=_COLOURS[colour], edgecolor=_COLOURS[colour],
                    hatch=hatch, label=f"{label} (n={len(values):,})")
    ax.set_xlabel("distance of a synthetic text to its closest real text (0 = exact copy)")
    ax.set_ylabel("synthetic rows")
    ax.legend()
    return _png(fig)


def _plot_roc(data: Mapping | None, epsilon: Any, delta: Any) -> str | None:
    import numpy as np

    if not isinstance(data, Mapping):
        return None
    fpr, tpr = _finite(data.get("fpr")), _finite(data.get("tpr"))
    if not fpr or len(fpr) != len(tpr):
        return None
    fig, ax = _new_axes(4.8, 4.4)
    ax.plot([0, 1], [0, 1], color="#777", linestyle="--", label="guessing (AUC 0.5)")
    if isinstance(epsilon, (int, float)) and math.isfinite(epsilon):
        # Hypothesis-testing view of (eps, delta)-DP (Kairouz et al. 2015): the best any attack can do.
        d = float(delta) if isinstance(delta, (int, float)) and math.isfinite(delta) else 0.0
        x = np.linspace(0, 1, 201)
        bound = np.minimum.reduce([np.ones_like(x), math.exp(epsilon) * x + d,
                                   1 - math.exp(-epsilon) * (1 - d - x)])
        ax.plot(x, np.clip(bound, 0, 1), color=_COLOURS["bound"], linestyle=":", linewidth=2,
                label=f"DP bound for \u03b5={epsilon:.3g}")
    ax.plot(fpr, tpr, color=_COLOURS["real"], linewidth=2, label="membership attack")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)

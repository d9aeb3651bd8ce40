"""The content of ``report.json``: :func:`build_report` and what it checks and adds.

It turns what the pipeline knows (data summary, PII scan summary, privacy ledger, evaluation, canary
audit) into one JSON-safe dict with a versioned schema (``synthtext.report/1``), adding per-column
protection, plain-language verdicts and the caveats that always apply. Of the PII scan it keeps only
counts, entity types and redacted examples (which must contain placeholders): never raw PII or
training text.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigError
from ..jsonsafe import json_safe
from ..pii import mask_contacts

REPORT_SCHEMA = "synthtext.report/1"
SMALL_DATA_ROWS = 10_000
"""Peers recommend at least this many records for DP fine-tuning; fewer gives a caveat."""
EPSILON_GOOD, EPSILON_FAIR = 1.0, 10.0
"""Verdict thresholds on the total epsilon: <= 1 good (strong), <= 10 fair (the range commonly used for
DP machine learning), above 10 poor (weak guarantee)."""

ROLES = ("text", "structured", "pii", "conditioning")
SECTIONS = ("privacy", "fidelity", "leakage", "membership", "audit")
_VERDICT_ORDER = {"poor": 3, "fair": 2, "good": 1}
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ENTITY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
# Keys of the PII summary that are carried into the report; anything else (raw spans, values) is dropped.
_PII_KEYS = ("engine", "n_rows", "warnings", "counts", "rows_with_pii", "redact_entities", "redacted_entities",
             "counted_only", "structured_columns", "examples")


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
    from .._version import __version__

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
        withheld = (f"{fmt(values)} distinct value{'' if values == 1 else 's'} in {fmt(rows)} real "
                    f"row{'' if rows == 1 else 's'}")
        cells = info.get("cells_replaced")
        if info.get("replaced_with") == "missing":
            what = (f"{fmt(cells)} synthetic cells left missing" if cells is not None else "left missing")
            what += ", as no category was frequent enough"
        elif info.get("replaced_with"):
            what = (f"{fmt(cells)} synthetic cells" if cells is not None else "the cells") + (
                f" given one of its {fmt(info.get('kept_categories'))} frequent categories, by frequency")
        else:
            what = "withheld"
        parts.append(f"{column!r}: {withheld}; {what}")
    if not parts:
        return ""
    k = next((i.get("min_count") for i in rare.values() if isinstance(i, Mapping) and i.get("min_count")), None)
    seen = f"in fewer than {fmt(k)} real rows" if k else "too rarely"
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
            found.append(f"{fmt(c['n_equal_rare'])} synthetic {column!r} values equal a real one "
                         f"({c.get('verdict')})")
    rows = replay.get("rows") or {}
    if rows.get("n_rows_replayed"):
        found.append(f"{fmt(rows['n_rows_replayed'])} real rows have two or more of their PII values together "
                     "in one synthetic row")
    what = ("each synthetic value against the real values of its column"
            + (", and each real row's combination of them" if replay.get("rows") else "")
            + (f", case and whitespace ignored, values found in {fmt(k)} or more real rows aside" if k else ""))
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


def fmt(value: Any) -> str:
    """A value as the report writes it, in its sentences and its tables: n/a, yes/no, 1,234, 0.1235."""
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
            return ", ".join(fmt(v) for v in value[:30]) + f", \u2026 ({len(value):,} values in report.json)"
        return ", ".join(fmt(v) for v in value) if value else "none"
    return str(value)

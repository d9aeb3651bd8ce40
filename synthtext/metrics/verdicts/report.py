"""The report's own verdicts (privacy, canary audit), its summary per section and its caveats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...config import per_unit
from ...errors import ConfigError
from .rules import EPSILON_FAIR, EPSILON_GOOD, SMALL_DATA_ROWS, fmt, verdict

SECTIONS = ("privacy", "fidelity", "leakage", "membership", "audit")
_VERDICT_ORDER = {"poor": 3, "fair": 2, "good": 1}


def privacy_verdicts(ledger: Mapping | None, data: Mapping) -> list[dict]:
    """The privacy section: epsilon against :data:`EPSILON_GOOD` and :data:`EPSILON_FAIR` (poor without DP or
    n/a without a ledger) and, under DP, delta against one in the number of training rows.

    Raises:
        ConfigError: the ledger says dp=True but gives no epsilon.
    """
    eps_threshold = (f"good <= {EPSILON_GOOD:g}, fair <= {EPSILON_FAIR:g}, poor above or without DP")
    if ledger is None:
        return [verdict("epsilon", None, None, "No privacy ledger was given, so this report cannot say whether "
                        "the synthetic text has any differential-privacy guarantee.", "n/a",
                        section="privacy", threshold=eps_threshold)]
    if not ledger.get("dp"):
        return [verdict("epsilon", None, None, "No differential privacy: nothing formally limits what the "
                        "synthetic text can reveal about any one real row.", "poor",
                        section="privacy", threshold=eps_threshold)]
    eps, delta = ledger.get("epsilon"), ledger.get("delta")
    if not isinstance(eps, (int, float)):
        raise ConfigError("the privacy ledger says dp=True but gives no epsilon; pass the ledger of the run "
                          "(synthtext.synthesizer.compose_ledgers output).")
    if eps <= EPSILON_GOOD:
        grade, words = "good", "a strong guarantee"
    elif eps <= EPSILON_FAIR:
        grade, words = "fair", "a moderate guarantee, in the range commonly used for DP machine learning"
    else:
        grade, words = "poor", "a weak guarantee: the bound on what one row can change is loose"
    per = per_unit(ledger.get("privacy_unit") or "row")
    out = [verdict("epsilon", None, eps, f"Epsilon {eps:.3g} {per} is {words}; a lower epsilon is a stronger "
                   "guarantee.", grade, section="privacy", threshold=eps_threshold)]
    n_train = _n_train(ledger, data)
    if delta is not None and n_train:
        ok = delta < 1 / n_train
        out.append(verdict(
            "delta", None, delta,
            f"Delta {delta:.2g} is {'well below' if delta < 0.1 / n_train else 'below'} one in the number of "
            "training rows, as it should be." if ok else
            f"Delta {delta:.2g} is not small compared with 1/{n_train}: the guarantee allows about one "
            "row's data to escape the epsilon bound entirely.",
            "good" if ok else "poor", section="privacy", threshold=f"< 1/{n_train} = {1 / n_train:.2g}"))
    return out


def _n_train(ledger: Mapping, data: Mapping) -> int | None:
    counts = [m.get("n_records") for m in ledger.get("models") or [] if m.get("n_records")]
    return min(counts) if counts else data.get("n_train") or data.get("n_rows")


def audit_verdicts(audit: Mapping | None) -> list[dict]:
    """The audit section: the canary audit's empirical epsilon lower bound against the claimed epsilon (none
    without an audit or a bound)."""
    if not audit:
        return []
    claimed, lower = audit.get("claimed_epsilon"), audit.get("empirical_epsilon_lower_bound")
    if lower is None:
        return []
    confidence = audit.get("confidence")
    conf = f" at {confidence:.0%} confidence" if isinstance(confidence, (int, float)) else ""
    if not (audit.get("dp") and claimed is not None):
        threshold, grade = "no DP claim to check", "n/a"
        plain = (f"Without differential privacy the audit only measures: epsilon >= {lower:.3g}{conf}; "
                 "higher means more measurable leakage.")
    elif lower > claimed:
        threshold, grade = f"<= claimed epsilon {claimed:.3g}", "poor"
        plain = (f"The canary audit measured more leakage (epsilon >= {lower:.3g}{conf}) than the claimed epsilon "
                 f"{claimed:.3g} allows: the DP guarantee may not hold. Do not release before this is explained.")
    else:
        threshold, grade = f"<= claimed epsilon {claimed:.3g}", "good"
        plain = (f"The canary audit is consistent with the claim: it shows epsilon >= {lower:.3g}{conf}, not more "
                 f"than the claimed {claimed:.3g}. Audits of this size can only catch gross violations.")
    return [verdict("empirical_epsilon_lower_bound", None, lower, plain, grade, section="audit",
                    threshold=threshold)]


def overall_verdicts(verdicts: Sequence[Mapping], evaluation: Mapping | None, audit: Mapping | None) -> dict:
    """One summary per section (those of :data:`SECTIONS`, then any other the verdicts name): the worst
    verdict, the tally and its sentence, or n/a with the reason nothing was assessed."""
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


def _domain_sentence(domains: Mapping | None) -> str:
    if not domains:
        return ""
    return (f"Columns {', '.join(repr(c) for c in domains)} were held to the ranges or categories the user "
            "declared public (public_domains); rows outside them were drawn again. Those domains are the "
            "user's declaration, not read from the data.")


def _unit_sentence(units: Mapping, drawn: Mapping | None) -> str:
    """The privacy unit caveat: what one unit is, what was left out, where the rows per unit come from."""
    column = units["column"]
    if units.get("privacy_unit") == "row":
        return (f"Privacy unit {column!r} was asked for, but every row has its own value: each unit is one row, "
                "and the guarantee is per row.")
    text = (f"The guarantee is per {column!r}: all rows sharing a value are one unit, one training record "
            f"({fmt(units['n_train_units'])} units trained, {fmt(units['n_holdout_units'])} held out), so a "
            "person with many rows is protected as one with a single row. ")
    if units.get("rows_without_value"):
        text += (f"{fmt(units['rows_without_value'])} rows had no {column!r} value and were one unit each: if they "
                 "belong to people who also have other rows, those people are protected more weakly. ")
    if units.get("rows_not_trained"):
        text += (f"At most {fmt(units['max_rows_per_unit'])} rows of a unit were trained on (drawn at random); "
                 f"{fmt(units['rows_not_trained'])} rows beyond that were not. ")
    if drawn:
        text += (f"The synthetic table's {fmt(drawn['rows'])} rows come from {fmt(drawn['units'])} units the DP "
                 f"model wrote, its own number of rows each ({fmt(drawn['unit_draws'])} units drawn, written one "
                 f"column at a time: {fmt(drawn['rejected'])} of {fmt(drawn['draws'])} values drawn again, "
                 f"{fmt(drawn['unparsed'])} cells left missing); the unit column holds one surrogate per synthetic "
                 "unit.")
        if drawn.get("rows_run_on"):
            text += (f" {fmt(drawn['rows_run_on'])} rows went on with another field after their last column in every "
                     "draw instead of ending or starting the unit's next row: their texts are read up to the field "
                     "separator and their units end there (the model has not learnt the units' format well; train "
                     "on more units).")
    return text


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


def caveats(data: Mapping, ledger: Mapping | None, pii: Mapping | None, evaluation: Mapping | None,
            audit: Mapping | None, redact_pii: bool | None) -> list[dict]:
    """The caveats that apply to this run, each ``{"id", "text"}``: redaction, DP or its absence, its scope
    and noise, composition, the structured and PII columns, small data, and the report's own sensitivity."""
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
        if data.get("structured") == "dp":
            add("epsilon_scope", "Epsilon covers every column but the PII columns: one DP model wrote each "
                "whole row. The PII scan and this evaluation read the real data outside the privacy budget.")
        else:
            add("epsilon_scope", "Epsilon covers the text models only. The PII scan, the structured columns "
                "and this evaluation read the real data outside the privacy budget.")
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
    drawn = data.get("whole_rows")
    if data.get("structured") == "dp" and drawn:
        add("whole_rows", f"The structured columns were written by the DP model with the text: their categories "
            "and ranges are whatever it wrote (nothing about them was read from the real data outside the "
            "budget). It wrote the values one column at a time (the decoder writes the column names and "
            f"separators, which are the public schema). Of {fmt(drawn['draws'])} values drawn, "
            f"{fmt(drawn['rejected'])} were not a value of their column (type, or declared domain) and were drawn "
            f"again in place (at most {fmt(drawn['max_tries'])} draws per value); {fmt(drawn['unparsed'])} "
            f"cells in {fmt(drawn['rows_incomplete'])} of the {fmt(drawn['rows'])} rows still were not, "
            "and are missing in the synthetic table.")
    if data.get("public_domains"):
        add("public_domains", _domain_sentence(data["public_domains"]))
    units = data.get("privacy_unit")
    if units:
        add("privacy_unit", _unit_sentence(units, data.get("whole_units")))
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

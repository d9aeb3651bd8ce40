"""Every threshold a verdict of :func:`synthtext.evaluate` uses (:data:`THRESHOLDS`) and every sentence it writes."""

from __future__ import annotations

import math
from typing import Any

from .leakage import VERBATIM_MIN_CHARS, VERBATIM_MIN_WORDS

# Every verdict's rule. "value" names what is compared; lower is better unless better == "higher".
THRESHOLDS: dict[str, dict[str, Any]] = {
    "discriminator_auc": {
        "section": "fidelity", "good": 0.60, "fair": 0.75, "better": "lower",
        "value": "out-of-fold AUC of a real-vs-synthetic classifier, folded to max(AUC, 1 - AUC)",
        "rule": "AUC <= 0.60 good, <= 0.75 fair, else poor (0.5: the classifier cannot tell them apart)",
    },
    "length_ks": {
        "section": "fidelity", "good": 0.10, "fair": 0.20, "better": "lower",
        "value": "two-sample Kolmogorov-Smirnov statistic of the text lengths in words",
        "rule": "KS <= 0.10 good, <= 0.20 fair, else poor",
    },
    "unigram_js_ratio": {
        "section": "fidelity", "good": 1.5, "fair": 3.0, "better": "lower",
        "value": "word-frequency JS divergence of synthetic vs half the real text, divided by that of the "
                 "other real half (same sizes): 1 = as close as real text is to itself",
        "rule": "ratio <= 1.5 good, <= 3 fair, else poor",
    },
    "conditional_lift": {
        "section": "fidelity", "good": 0.8, "fair": 0.5, "better": "higher",
        "value": "(synthetic balanced accuracy - chance) / (real held-out balanced accuracy - chance) of a "
                 "classifier trained on real text to predict the conditioning column (chance = 1 / classes)",
        "rule": "lift >= 0.8 good, >= 0.5 fair, else poor; n/a when real text itself beats chance by less "
                "than 0.05",
    },
    "pii_replay_share": {
        "section": "leakage", "good": 0.0, "fair": 0.01, "better": "lower",
        "value": "share of synthetic texts that contain a PII value found in the training text",
        "rule": "share = 0 good, <= 0.01 fair, else poor",
    },
    "pii_value_replay": {
        "section": "leakage", "good": 0.0, "fair": 0.10, "better": "lower",
        "value": "share of a structured PII column's synthetic values (case and whitespace ignored) equal to a "
                 "real value of that column found in fewer than 5 real rows",
        "rule": "identifying types (emails, phone and card numbers, ...): share = 0 good, else poor (leak); "
                "chance-prone types (names, places, ids): share = 0 good, <= 0.10 fair, else poor (leak)",
    },
    "pii_row_replay": {
        "section": "leakage", "good": 0.0, "fair": None, "better": "lower",
        "value": "share of real rows with two or more of their structured PII values (a name and an email, ...) "
                 "together in one synthetic row, the combination found in fewer than 5 real rows",
        "rule": "share = 0 good, else poor (leak)",
    },
    "verbatim_excess": {
        "section": "leakage", "good": 0.01, "fair": 0.05, "better": "lower",
        "value": "share of synthetic texts sharing a long span with a training text, minus the same share "
                 "against the holdout scaled to the training set's size (without holdout: the share itself)",
        "rule": "excess <= 0.01 good, <= 0.05 fair, else poor",
    },
    "exact_match_excess": {
        "section": "leakage", "good": 0.01, "fair": 0.05, "better": "lower",
        "value": "share of synthetic texts equal to a training text, minus the same share against the "
                 "holdout scaled to the training set's size (without holdout: the share itself)",
        "rule": "excess <= 0.01 good, <= 0.05 fair, else poor",
    },
    "dcr_excess": {
        "section": "leakage", "good": 0.05, "fair": 0.15, "better": "lower",
        "value": "share of synthetic texts whose nearest real text is a training text rather than a holdout "
                 "text, above the share expected without memorisation (n_train / (n_train + n_holdout)), "
                 "scaled so that 0 = no closer to training data than to unseen data and 1 = every text "
                 "nearest to a training text",
        "rule": "excess <= 0.05 good, <= 0.15 fair, else poor; good when its 95% interval includes 0; "
                "n/a without holdout",
    },
    "mia_auc": {
        "section": "membership", "good": 0.55, "fair": 0.60, "better": "lower",
        "value": "AUC of a loss-threshold membership attack (training vs holdout records), folded to "
                 "max(AUC, 1 - AUC)",
        "rule": "AUC <= 0.55 good, <= 0.60 fair, else poor",
    },
    "mia_epsilon": {
        "section": "membership", "good": 0.0, "fair": None, "better": "lower",
        "value": "empirical epsilon lower bound minus the claimed epsilon",
        "rule": "lower bound <= claimed epsilon: consistent (good); above: the DP claim is contradicted "
                "(poor); n/a when no epsilon is claimed",
    },
}


def _grade(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    rule = THRESHOLDS[metric]
    if rule["better"] == "higher":
        return "good" if value >= rule["good"] else "fair" if value >= rule["fair"] else "poor"
    if value <= rule["good"]:
        return "good"
    return "fair" if rule["fair"] is not None and value <= rule["fair"] else "poor"


def _verdict(metric, column, value, plain, grade=None, **extra) -> dict:
    rule = THRESHOLDS[metric]
    return {"section": rule["section"], "column": column, "metric": metric, "value": value,
            "threshold": rule["rule"], "verdict": grade or _grade(metric, value), "plain": plain, **extra}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def evaluation_verdicts(columns: dict, membership: dict | None) -> list[dict]:
    out = []
    for column, section in columns.items():
        fidelity, leakage = section["fidelity"], section["leakage"]
        auc = fidelity["discriminator"]["auc"]
        folded = None if auc is None else max(auc, 1 - auc)
        text = {"good": "the synthetic text is hard to tell from the real text",
                "fair": "the synthetic text is somewhat distinguishable from the real text",
                "poor": "the synthetic text is easy to tell from the real text",
                "n/a": "too few texts to test this"}[_grade("discriminator_auc", folded)]
        out.append(_verdict("discriminator_auc", column, folded,
                            f"A classifier told synthetic from real '{column}' texts with AUC "
                            f"{'n/a' if auc is None else f'{auc:.2f}'} (0.5 means it cannot): {text}."))

        ks = fidelity["length"]["ks_statistic"]
        real_len, synth_len = fidelity["length"]["real"]["mean"], fidelity["length"]["synthetic"]["mean"]
        out.append(_verdict("length_ks", column, ks,
                            f"Text lengths: real texts average {_num(real_len)} words, synthetic ones "
                            f"{_num(synth_len)} (distribution difference KS {_num(ks, 2)})."))

        baseline = fidelity["ngrams"]["real_split_baseline"]
        ratio = None if baseline is None else baseline["ratio"]
        out.append(_verdict("unigram_js_ratio", column, ratio,
                            f"Word use: the synthetic text's word frequencies differ from the real text "
                            f"{_num(ratio, 1)} times as much as one half of the real text differs from the other."))

        for cond, result in fidelity["conditional"].items():
            chance = result["chance_balanced_accuracy"]
            gap = result["real_holdout_balanced_accuracy"] - chance["real_holdout"]
            lift = (None if gap < 0.05 else
                    (result["synthetic_balanced_accuracy"] - chance["synthetic"]) / gap)
            detail = ("the real text itself barely predicts it, so there is nothing to check" if lift is None else
                      f"{_pct(result['synthetic_accuracy'])} of synthetic texts match their row, against "
                      f"{_pct(result['real_holdout_accuracy'])} of unseen real texts (always guessing the most "
                      f"common value: {_pct(result['majority_baseline'])}; balanced accuracy "
                      f"{_pct(result['synthetic_balanced_accuracy'])} vs "
                      f"{_pct(result['real_holdout_balanced_accuracy'])}, chance {_pct(chance['real_holdout'])})")
            out.append(_verdict("conditional_lift", column, lift,
                                f"Does '{column}' agree with '{cond}' in its row? A model trained on real text "
                                f"reads '{cond}' from the text: {detail}.", condition=cond))

        replay = leakage["pii_replay"]
        if replay is not None:
            share = replay["share"]
            out.append(_verdict("pii_replay_share", column, share,
                                f"{replay['rows_with_replay']} synthetic '{column}' texts ({_pct(share)}) contain "
                                f"a PII value found in the training text ({replay['n_values_searched']} values "
                                "searched; chance matches of common names count too)."))

        verbatim = leakage["verbatim"]
        excess, how = _excess(verbatim["share_vs_train"], verbatim["holdout_baseline_at_train_size"],
                              verbatim["share_vs_holdout"])
        out.append(_verdict("verbatim_excess", column, excess,
                            f"{_pct(verbatim['share_vs_train'])} of synthetic '{column}' texts repeat a passage of "
                            f"{VERBATIM_MIN_WORDS}+ words or {VERBATIM_MIN_CHARS}+ characters from a training text{how}."))

        dcr = leakage["dcr"]
        excess, how = _excess(dcr["exact_match_train"], dcr["exact_match_holdout_at_train_size"],
                              dcr["exact_match_holdout"])
        out.append(_verdict("exact_match_excess", column, excess,
                            f"{_pct(dcr['exact_match_train'])} of synthetic '{column}' texts are exact copies of a "
                            f"training text{how}."))
        pooled = dcr.get("pooled")
        if pooled is None:
            out.append(_verdict("dcr_excess", column, None,
                                "No holdout was given, so closeness to training records cannot be judged."))
        else:
            low, high = pooled["excess_ci95"]
            chance_in_ci = low <= 0 <= high
            plain = (f"{_pct(pooled['share_nearest_is_train'])} of synthetic '{column}' texts have a training text "
                     f"as their nearest real text; {_pct(pooled['expected_without_memorization'])} is expected "
                     f"without memorisation (the training share of the real texts), so the excess is "
                     f"{_num(pooled['excess'], 2)} (0 = chance, 1 = all nearest to training), 95% interval "
                     f"[{low:.2f}, {high:.2f}]")
            plain += ", which includes 0: no evidence of copying." if chance_in_ci else "."
            out.append(_verdict("dcr_excess", column, pooled["excess"], plain,
                                grade="good" if chance_in_ci else None, ci95=[low, high]))

    for column, result in (membership or {}).items():
        auc = result["auc"]
        folded = None if auc is None else max(auc, 1 - auc)
        ci = result.get("auc_ci95") or [None, None]
        chance_in_ci = None not in ci and ci[0] <= 0.5 <= ci[1]
        plain = (f"An attacker comparing the model's loss on a record tells training records from unseen ones "
                 f"with AUC {_num(folded, 2)} (0.5 means no better than a coin toss; an AUC below 0.5 counts as "
                 f"its mirror image, since the attacker can flip the guess)")
        if chance_in_ci:  # too few records to tell the attack from guessing: no evidence of leakage
            plain += f"; its 95% interval [{ci[0]:.2f}, {ci[1]:.2f}] includes 0.5, so it is no better than guessing"
        out.append(_verdict("mia_auc", column, folded, plain + ".", grade="good" if chance_in_ci else None))
        bound, claimed = result["empirical_epsilon_lower_bound"], result["claimed_epsilon"]
        if claimed is None or bound is None:
            plain = ("No privacy budget (epsilon) was claimed, so there is nothing to check the attack against."
                     if claimed is None else "Too few records to bound epsilon from the attack.")
            out.append(_verdict("mia_epsilon", column, None, plain, grade="n/a"))
        else:
            consistent = bound <= float(claimed)
            plain = (f"The attack proves privacy loss of at least epsilon {bound:.2f} (95% confidence); the claimed "
                     f"epsilon is {float(claimed):.2f}: "
                     + ("consistent with the claim." if consistent else
                        "this contradicts the claim: the training or its accounting is wrong."))
            out.append(_verdict("mia_epsilon", column, bound - float(claimed), plain,
                                grade="good" if consistent else "poor"))
    return out


def pii_column_verdicts(replay: dict | None) -> list[dict]:
    """One verdict for the rows of the structured PII columns (pii_row_replay: first, the strongest evidence,
    so a report headlines it), one per column (pii_value_replay)."""
    if replay is None:
        return []
    out, k = [], replay["common_min_rows"]
    rows = replay["rows"]
    if rows is not None:
        names = ", ".join(f"'{c}'" for c in rows["columns"])
        if rows["verdict"] == "n/a":
            plain = f"No real row has two or more PII values ({names}) to check."
        elif rows["n_rows_replayed"]:
            plain = (f"{rows['n_rows_replayed']} real rows ({_pct(rows['share'])}) have two or more of their PII "
                     f"values ({names}) together in one synthetic row ({rows['n_synthetic_rows_with_real_combination']} "
                     "synthetic rows): such combinations do not coincide by chance, so the synthetic table leaks "
                     "real people.")
        else:
            plain = (f"No real row has two or more of its PII values ({names}) together in one synthetic row "
                     f"(combinations found in {k} or more real rows aside).")
        out.append(_verdict("pii_row_replay", None, rows["share"], plain, grade=rows["verdict"],
                            columns=rows["columns"]))
    for column, c in replay["columns"].items():
        found, share = c["n_equal_rare"], c["share_rare"]
        if c["verdict"] == "n/a":
            plain = f"The synthetic '{column}' column has no values to check."
        elif not found:
            plain = (f"No synthetic '{column}' value equals a real {c['entity_type']} value of that column "
                     f"found in fewer than {k} real rows")
            plain += (f" ({c['n_common_values_replayed']} values found in {k} or more real rows came back: they "
                      "identify no one)." if c["n_common_values_replayed"] else ".")
        else:
            plain = (f"{found} synthetic '{column}' values ({_pct(share)}) equal a real {c['entity_type']} value "
                     f"found in fewer than {k} real rows ({c['n_rare_values_replayed']} distinct)")
            if c["kind"] == "identifying":
                plain += (f": {c['entity_type']} values belong to one person, so the synthetic table leaks "
                          "real values.")
            elif c["verdict"] == "fair":
                plain += (f": unrelated people share such values and generators draw them from lists of common "
                          f"ones, so up to {_pct(replay['chance_value_share'])} can be chance"
                          + ("; the row check tells whether they came back with their row's other PII values."
                             if replay["rows"] is not None else "; check them."))
            else:
                plain += (f": more than chance explains (up to {_pct(replay['chance_value_share'])}), so the "
                          "synthetic table leaks real values.")
        out.append(_verdict("pii_value_replay", column, share, plain, grade=c["verdict"],
                            entity_type=c["entity_type"], kind=c["kind"]))
    return out


def _excess(share, scaled_baseline, raw_baseline):
    if share is None:
        return None, ""
    if scaled_baseline is None:
        return share, " (no holdout to compare with)"
    return share - scaled_baseline, (f"; unseen real texts repeat from them {_pct(raw_baseline)}, "
                                     f"{_pct(scaled_baseline)} at the training set's size")


def _num(value, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"

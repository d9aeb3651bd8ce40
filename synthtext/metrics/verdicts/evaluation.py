"""The evaluation's verdicts (:func:`synthtext.evaluate`): one per metric and text column, graded by
:data:`~.rules.THRESHOLDS`, and those of the structured PII columns."""

from __future__ import annotations

from ..leakage import VERBATIM_MIN_CHARS, VERBATIM_MIN_WORDS
from .rules import grade_of, num, pct, verdict


def evaluation_verdicts(columns: dict, membership: dict | None) -> list[dict]:
    out = []
    for column, section in columns.items():
        fidelity, leakage = section["fidelity"], section["leakage"]
        auc = fidelity["discriminator"]["auc"]
        folded = None if auc is None else max(auc, 1 - auc)
        text = {"good": "the synthetic text is hard to tell from the real text",
                "fair": "the synthetic text is somewhat distinguishable from the real text",
                "poor": "the synthetic text is easy to tell from the real text",
                "n/a": "too few texts to test this"}[grade_of("discriminator_auc", folded)]
        out.append(verdict("discriminator_auc", column, folded,
                           f"A classifier told synthetic from real '{column}' texts with AUC "
                           f"{'n/a' if auc is None else f'{auc:.2f}'} (0.5 means it cannot): {text}."))

        ks = fidelity["length"]["ks_statistic"]
        real_len, synth_len = fidelity["length"]["real"]["mean"], fidelity["length"]["synthetic"]["mean"]
        out.append(verdict("length_ks", column, ks,
                           f"Text lengths: real texts average {num(real_len)} words, synthetic ones "
                           f"{num(synth_len)} (distribution difference KS {num(ks, 2)})."))

        baseline = fidelity["ngrams"]["real_split_baseline"]
        ratio = None if baseline is None else baseline["ratio"]
        out.append(verdict("unigram_js_ratio", column, ratio,
                           f"Word use: the synthetic text's word frequencies differ from the real text "
                           f"{num(ratio, 1)} times as much as one half of the real text differs from the other."))

        for cond, result in fidelity["conditional"].items():
            chance = result["chance_balanced_accuracy"]
            gap = result["real_holdout_balanced_accuracy"] - chance["real_holdout"]
            lift = (None if gap < 0.05 else
                    (result["synthetic_balanced_accuracy"] - chance["synthetic"]) / gap)
            detail = ("the real text itself barely predicts it, so there is nothing to check" if lift is None else
                      f"{pct(result['synthetic_accuracy'])} of synthetic texts match their row, against "
                      f"{pct(result['real_holdout_accuracy'])} of unseen real texts (always guessing the most "
                      f"common value: {pct(result['majority_baseline'])}; balanced accuracy "
                      f"{pct(result['synthetic_balanced_accuracy'])} vs "
                      f"{pct(result['real_holdout_balanced_accuracy'])}, chance {pct(chance['real_holdout'])})")
            out.append(verdict("conditional_lift", column, lift,
                               f"Does '{column}' agree with '{cond}' in its row? A model trained on real text "
                               f"reads '{cond}' from the text: {detail}.", condition=cond))

        replay = leakage["pii_replay"]
        if replay is not None:
            share = replay["share"]
            out.append(verdict("pii_replay_share", column, share,
                               f"{replay['rows_with_replay']} synthetic '{column}' texts ({pct(share)}) contain "
                               f"a PII value found in the training text ({replay['n_values_searched']} values "
                               "searched; chance matches of common names count too)."))

        verbatim, dcr = leakage["verbatim"], leakage["dcr"]
        copies = (("verbatim_excess", verbatim["share_vs_train"], verbatim["holdout_baseline_at_train_size"],
                   verbatim["share_vs_holdout"], f"repeat a passage of {VERBATIM_MIN_WORDS}+ words or "
                   f"{VERBATIM_MIN_CHARS}+ characters from a training text"),
                  ("exact_match_excess", dcr["exact_match_train"], dcr["exact_match_holdout_at_train_size"],
                   dcr["exact_match_holdout"], "are exact copies of a training text"))
        for metric, share, scaled_baseline, raw_baseline, what in copies:
            excess, how = _excess(share, scaled_baseline, raw_baseline)
            out.append(verdict(metric, column, excess, f"{pct(share)} of synthetic '{column}' texts {what}{how}."))
        pooled = dcr.get("pooled")
        if pooled is None:
            out.append(verdict("dcr_excess", column, None,
                               "No holdout was given, so closeness to training records cannot be judged."))
        else:
            low, high = pooled["excess_ci95"]
            chance_in_ci = low <= 0 <= high
            plain = (f"{pct(pooled['share_nearest_is_train'])} of synthetic '{column}' texts have a training text "
                     f"as their nearest real text; {pct(pooled['expected_without_memorization'])} is expected "
                     f"without memorisation (the training share of the real texts), so the excess is "
                     f"{num(pooled['excess'], 2)} (0 = chance, 1 = all nearest to training), 95% interval "
                     f"[{low:.2f}, {high:.2f}]")
            plain += ", which includes 0: no evidence of copying." if chance_in_ci else "."
            out.append(verdict("dcr_excess", column, pooled["excess"], plain,
                               grade="good" if chance_in_ci else None, ci95=[low, high]))

    for column, result in (membership or {}).items():
        auc = result["auc"]
        folded = None if auc is None else max(auc, 1 - auc)
        ci = result.get("auc_ci95") or [None, None]
        chance_in_ci = None not in ci and ci[0] <= 0.5 <= ci[1]
        plain = (f"An attacker comparing the model's loss on a record tells training records from unseen ones "
                 f"with AUC {num(folded, 2)} (0.5 means no better than a coin toss; an AUC below 0.5 counts as "
                 f"its mirror image, since the attacker can flip the guess)")
        if chance_in_ci:  # too few records to tell the attack from guessing: no evidence of leakage
            plain += f"; its 95% interval [{ci[0]:.2f}, {ci[1]:.2f}] includes 0.5, so it is no better than guessing"
        out.append(verdict("mia_auc", column, folded, plain + ".", grade="good" if chance_in_ci else None))
        bound, claimed = result["empirical_epsilon_lower_bound"], result["claimed_epsilon"]
        if claimed is None or bound is None:
            plain = ("No privacy budget (epsilon) was claimed, so there is nothing to check the attack against."
                     if claimed is None else "Too few records to bound epsilon from the attack.")
            out.append(verdict("mia_epsilon", column, None, plain, grade="n/a"))
        else:
            consistent = bound <= float(claimed)
            plain = (f"The attack proves privacy loss of at least epsilon {bound:.2f} (95% confidence); the claimed "
                     f"epsilon is {float(claimed):.2f}: "
                     + ("consistent with the claim." if consistent else
                        "this contradicts the claim: the training or its accounting is wrong."))
            out.append(verdict("mia_epsilon", column, bound - float(claimed), plain,
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
            plain = (f"{rows['n_rows_replayed']} real rows ({pct(rows['share'])}) have two or more of their PII "
                     f"values ({names}) together in one synthetic row ({rows['n_synthetic_rows_with_real_combination']} "
                     "synthetic rows): such combinations do not coincide by chance, so the synthetic table leaks "
                     "real people.")
        else:
            plain = (f"No real row has two or more of its PII values ({names}) together in one synthetic row "
                     f"(combinations found in {k} or more real rows aside).")
        out.append(verdict("pii_row_replay", None, rows["share"], plain, grade=rows["verdict"],
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
            plain = (f"{found} synthetic '{column}' values ({pct(share)}) equal a real {c['entity_type']} value "
                     f"found in fewer than {k} real rows ({c['n_rare_values_replayed']} distinct)")
            if c["kind"] == "identifying":
                plain += (f": {c['entity_type']} values belong to one person, so the synthetic table leaks "
                          "real values.")
            elif c["verdict"] == "fair":
                plain += (f": unrelated people share such values and generators draw them from lists of common "
                          f"ones, so up to {pct(replay['chance_value_share'])} can be chance"
                          + ("; the row check tells whether they came back with their row's other PII values."
                             if replay["rows"] is not None else "; check them."))
            else:
                plain += (f": more than chance explains (up to {pct(replay['chance_value_share'])}), so the "
                          "synthetic table leaks real values.")
        out.append(verdict("pii_value_replay", column, share, plain, grade=c["verdict"],
                           entity_type=c["entity_type"], kind=c["kind"]))
    return out


def _excess(share, scaled_baseline, raw_baseline):
    if share is None:
        return None, ""
    if scaled_baseline is None:
        return share, " (no holdout to compare with)"
    return share - scaled_baseline, (f"; unseen real texts repeat from them {pct(raw_baseline)}, "
                                     f"{pct(scaled_baseline)} at the training set's size")

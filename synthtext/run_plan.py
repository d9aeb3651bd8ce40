"""What a run will do, shown before it runs: ``synthtext plan`` / ``synthesize --dry-run`` /
:meth:`synthtext.TextSynthesizer.plan`.

The plan is made by the same code as the fit (:meth:`TextSynthesizer._prepare`: the checks, the PII scan,
the column roles, the holdout split and the accountant's privacy plan), then the base model is loaded and
the training records encoded as fit encodes them. Nothing is trained but the optional timed probe
(:mod:`synthtext.estimate`), whose model is thrown away.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config import SamplingConfig, per_unit
from .metrics.verdicts.rules import SMALL_DATA_ROWS


@dataclass
class RunPlan:
    """A run's plan. Every figure is what the run will use; ``estimate`` holds the only guesses."""

    n_rows: int
    n_train: int
    n_holdout: int
    num_rows: int
    """Synthetic rows the run will write."""
    columns: list[dict]
    """``{name, dtype, role, protected_by}`` per column, in the report's words."""
    pii: dict
    """``redact_entities``, ``redacted`` and ``counted_only`` (spans per entity type, all text columns), and
    the structured PII columns ``{column: entity type}``."""
    privacy: dict
    """The table's guarantee and one entry per text model (noise multiplier, sample rate, steps, ...)."""
    training: dict
    """Base model, LoRA, step size, precision, batch, records cut per text column."""
    sampling: dict
    warnings: list[str] = field(default_factory=list)
    estimate: dict | None = None
    """``{"stages": [{stage, seconds, how}], "total_seconds", "note"}``, or None without the probe."""

    def to_dict(self) -> dict:
        return {"schema": "synthtext.plan/1", **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def __str__(self) -> str:
        return render_plan(self)


def make_run_plan(synth: Any, df: pd.DataFrame, prepared: Any, num_rows: int, *, sampling: SamplingConfig,
                  report: bool, probe: bool) -> RunPlan:
    """The plan of ``synth.fit(df).sample(num_rows)`` from what ``synth._prepare(df)`` decided (``prepared``)."""
    from . import estimate, pii
    from .models import load_base_model
    from .plan import prompt_format_for
    from .report import column_protection, column_role
    from .train import training_settings

    scan, plan, train = prepared.scan, prepared.plan, prepared.train
    text_columns = list(scan.text_columns)
    redacted = pii.redact_frame(df, scan, synth.redact_entities) if synth.redact_pii else df
    records = redacted.iloc[prepared.train_pos].to_dict("records")
    unit_rows, rows_not_trained = synth._unit_rows(prepared, redacted)
    base, load_seconds = estimate.timed(load_base_model, synth.model, size=synth.model_size, seed=synth.seed)
    fmt = prompt_format_for(base.tokenizer, prepared.conditioning, text_columns)
    train = synth.record_config(base, train, prepared)
    limit = base.max_length(train)
    trained_for = text_columns[:synth.n_models(len(text_columns))]  # structured="dp": one model, whole rows
    examples = {c: synth.training_records(fmt, base.tokenizer, limit, unit_rows["train"] if unit_rows else records,
                                          c, units=unit_rows is not None) for c in trained_for}
    settings = training_settings(base, train, plan)

    models = [_planned_model(column, plan, prepared.privacy, base) for column in trained_for]
    epsilon = sum(m["epsilon"] for m in models) if plan.dp else None
    delta = sum(m["delta"] for m in models) if plan.dp else None
    planned_ledger = {"dp": plan.dp, "epsilon": epsilon}
    columns = []
    for column in df.columns:
        role = column_role(column, text_columns, prepared.pii_columns, prepared.conditioning,
                           unit_column=synth.privacy_unit)
        columns.append({"name": str(column), "dtype": str(df[column].dtype), "role": role,
                        "protected_by": column_protection(role, synth.structured, planned_ledger)})
    counts = pii.redaction_counts(df, scan, synth.redact_entities, enabled=synth.redact_pii)
    privacy = {"dp": plan.dp, "epsilon": epsilon, "delta": delta, "privacy_unit": prepared.privacy_unit,
               "composition": "basic (sum over text models)" if len(models) > 1 else "single model",
               "covers": ("every column but the PII columns (one model for the whole row); the PII scan reads the "
                          "real data outside it" if synth.structured == "dp" else
                          "the text models only: the PII scan and the structured columns read the real data outside it"),
               "models": models, "units": synth._units_summary(prepared, rows_not_trained),
               "public_domains": {str(c): list(d) for c, d in (prepared.domains or {}).items()}}
    cut = {c: e.n_truncated for c, e in examples.items()}
    training = {"model": base.name, "kind": base.kind, **settings, "batch_size": train.batch_size,
                "max_physical_batch_size": train.max_physical_batch_size, "epochs": train.epochs,
                "max_length": limit, "records_cut": cut}
    run_plan = RunPlan(
        n_rows=len(df), n_train=len(prepared.train_pos), n_holdout=len(prepared.holdout_pos), num_rows=num_rows,
        columns=columns,
        pii={"redact_entities": (pii.redaction_policy(synth.redact_entities).describe() if synth.redact_pii
                                 else []),
             "redacted": _by_type(counts["redacted"]), "counted_only": _by_type(counts["counted_only"]),
             "structured_columns": {str(c): e for c, e in prepared.pii_columns.items()}},
        privacy=privacy, training=training,
        sampling={"temperature": sampling.temperature, "top_p": sampling.top_p, "min_p": sampling.min_p,
                  "no_repeat_ngram": sampling.no_repeat_ngram, "max_new_tokens": sampling.max_new_tokens,
                  "seed": sampling.seed},
        warnings=_warnings(synth, prepared, plan, cut, limit))
    if probe:
        run_plan.estimate = _estimate(synth, df, prepared, base, settings, examples, records, fmt, sampling,
                                      num_rows, load_seconds, report)
    return run_plan


def _planned_model(column: str, plan: Any, privacy: Any, base: Any) -> dict:
    """One text model's entry, in the ledger's names (:class:`~synthtext.config.PrivacyLedger`)."""
    entry = {"column": str(column), "model": base.name, "dp": plan.dp, "n_records": plan.n_records,
             "steps": plan.steps, "expected_batch_size": plan.expected_batch_size}
    if not plan.dp:
        return {**entry, "epochs": plan.steps / plan.steps_per_epoch, "sampling": "shuffled batches"}
    return {**entry, "epsilon": plan.epsilon, "delta": plan.delta, "target_epsilon": privacy.epsilon,
            "noise_multiplier": plan.noise_multiplier, "sample_rate": plan.sample_rate,
            "epochs": plan.steps * plan.sample_rate, "accountant": plan.accountant,
            "max_grad_norm": privacy.clipping_norm_for(base.kind), "sampling": "poisson",
            "stops_early": plan.stops_early}


def _by_type(per_column: dict) -> dict:
    """``{column: {type: n}}`` summed over the columns, most frequent first."""
    total: dict[str, int] = {}
    for by_type in per_column.values():
        for entity, n in by_type.items():
            total[entity] = total.get(entity, 0) + int(n)
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def _warnings(synth: Any, prepared: Any, plan: Any, cut: dict, limit: int) -> list[str]:
    out = []
    n_train = plan.n_records
    records = "rows" if prepared.units is None else f"{prepared.units.column!r} units"
    if not plan.dp:
        out.append("epsilon=None: the text models train WITHOUT differential privacy; the output carries no "
                   "privacy guarantee (for comparison only).")
    elif n_train < SMALL_DATA_ROWS:
        out.append(f"Only {n_train:,} {records} train under DP; peers recommend {SMALL_DATA_ROWS:,} or more. "
                   "With so few records the DP noise dominates and the synthetic text is usually of low quality (the "
                   "guarantee still holds).")
    if prepared.unit_note:
        out.append(prepared.unit_note)
    if plan.dp and plan.stops_early:
        out.append(f"The fixed noise multiplier spends the budget after {plan.steps} steps, before the configured "
                   "epochs end: training stops there.")
    if not synth.redact_pii:
        out.append("PII redaction is off: the training text keeps its detected PII.")
    if synth.structured == "keep":
        out.append("structured='keep': the other columns keep their real values, which are not protected.")
    if len(prepared.holdout_pos) == 0:
        out.append("holdout=0: no rows are kept out of training, so the report cannot measure leakage against "
                   "rows the model never saw (membership inference, distance to holdout).")
    for column, n in cut.items():
        if n:
            out.append(f"{n:,} of {n_train:,} training texts of {column!r} are longer than {limit} tokens with their "
                       "prompt and will be cut (raise max_length to keep them whole).")
    return out


def _estimate(synth, df, prepared, base, settings, examples, records, fmt, sampling, num_rows, load_seconds,
              report) -> dict:
    """Seconds per stage: the scan as it ran, the rest from the probes of :mod:`synthtext.estimate`."""
    from . import estimate
    from .tabular import StructuredSynthesizer

    scan, plan = prepared.scan, prepared.plan
    stages = [{"stage": "PII scan", "seconds": prepared.scan_seconds, "how": "measured: it ran for this plan"}]
    if synth.structured == "sdv":
        structured = StructuredSynthesizer(method="sdv", sdv_model=synth.sdv_model, pii_columns=prepared.pii_columns,
                                           text_columns=scan.text_columns, seed=synth.seed, locale=synth.locale)
        rows = df.iloc[prepared.train_pos].reset_index(drop=True)
        stages.append({"stage": "structured columns (SDV)", "how": f"SDV timed on up to "
                       f"{estimate.PROBE_STRUCTURED_ROWS:,} rows, scaled",
                       "seconds": estimate.structured_seconds(structured, rows, len(rows), num_rows)})
    first = next(iter(examples))
    train = synth.record_config(base, prepared.train, prepared)
    probe = estimate.probe_training(base, examples[first], prepared.privacy, train, plan, synth.seed)
    prompts = [fmt.prompt(row, first) for row in records[: min(num_rows, estimate.PROBE_PROMPTS)]]
    prompt_length = sum(examples[first].prompt_lengths) / max(len(examples[first]), 1)
    generation = estimate.probe_generation(probe.trained, prompts, sampling, prompt_length)
    rng = np.random.default_rng(synth.seed)
    lora = settings["lora"]  # frozen lower layers are computed once per record, before the steps
    frozen_layers = bool(lora and lora["layers"] < lora["of_layers"] and prepared.train.cache_frozen_layers)
    how_train = (f"{estimate.PROBE_STEPS} {'DP ' if plan.dp else ''}steps on {estimate.PROBE_RECORDS} records, "
                 "timed and scaled")
    several = len(examples) > 1
    for column in examples:
        of = f" ({column})" if several else ""
        ex = examples[column]
        tokens = sum(len(ids) for ids in ex.input_ids) / max(len(ex), 1)
        lengths = [len(ids) - p for ids, p in zip(ex.input_ids, ex.prompt_lengths)]
        if sampling.max_new_tokens is not None:
            lengths = [min(n, sampling.max_new_tokens) for n in lengths]
        drawn = rng.choice(lengths, size=min(num_rows, estimate.PROBE_SIMULATED_ROWS))
        mean_prompt = sum(ex.prompt_lengths) / max(len(ex), 1)
        train = estimate.training_seconds(probe, plan, len(ex), tokens)
        stages.append({"stage": f"load the base model{of}", "seconds": load_seconds,
                       "how": "measured: loaded for this plan"})
        if frozen_layers:
            stages.append({"stage": f"frozen layers, once per record{of}", "seconds": train["frozen_layers"],
                           "how": how_train})
        stages.append({"stage": f"{'DP ' if plan.dp else ''}training, {plan.steps} steps{of}",
                       "seconds": train["training"], "how": how_train})
        continuous = base.kind == "pretrained"  # the built-in model decodes batch by batch
        if synth.structured == "dp" and prepared.units is None:  # one decoding pass per column (whole_row.sample_rows)
            from .whole_row import row_columns

            seconds = estimate.column_by_column_seconds(
                generation, base.tokenizer, records,
                row_columns(fmt.conditioning_columns, fmt.text_columns), fmt.float_digits, mean_prompt, num_rows,
                continuous=continuous)
            stages.append({"stage": f"generation, {num_rows:,} rows, column by column", "seconds": seconds,
                           "how": f"batches of {generation['batch_size']} timed, the decoder simulated for each "
                                  "column after the line so far, lines as long as the training rows' (redraws "
                                  "not counted)"})
        else:
            seconds = estimate.generation_seconds(generation, drawn, mean_prompt, num_rows, continuous=continuous)
            stages.append({"stage": f"generation, {num_rows:,} texts{of}", "seconds": seconds,
                           "how": f"batches of {generation['batch_size']} timed, the decoder simulated for texts "
                                  f"as long as the training texts ({float(np.mean(lengths)):.0f} tokens on average)"})
        if report and len(prepared.holdout_pos):
            from .synthesizer import membership_cap

            held = len(prepared.holdout_pos)  # the report's own caps (1,000 a side at most)
            members, outsiders = min(len(ex), membership_cap("train", held)), min(held, membership_cap("holdout", held))
            seconds = estimate.membership_seconds(probe.trained, probe.records, members,
                                                  outsiders, tokens / probe.tokens_per_record)
            stages.append({"stage": f"report: membership losses of {members + outsiders:,} records{of}",
                           "seconds": seconds, "how": "timed on the probe's records (the training records' with "
                                                      "their frozen-layer states kept), scaled"})
    return {"stages": stages, "total_seconds": sum(s["seconds"] for s in stages),
            "note": "an estimate from short timed probes on this machine (the probe's model was thrown away); "
                    "it assumes texts as long as the training texts; other jobs on the machine slow the run"
                    + ("; the report's other metrics are not included." if report else "; no report asked.")}


def _seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render_plan(plan: RunPlan) -> str:
    """The plan for people: one screen, the same figures as :meth:`RunPlan.to_dict`."""
    lines = [f"Plan: {plan.n_rows:,} rows ({plan.n_train:,} train, {plan.n_holdout:,} held out to measure leakage); "
             f"{plan.num_rows:,} synthetic rows to write.", "", "Columns (role, protection):"]
    width = max(len(c["name"]) for c in plan.columns)
    for c in plan.columns:
        lines.append(f"  {c['name']:<{width}}  {c['role']:<12}  {c['protected_by']}")
    pii = plan.pii
    lines += ["", "PII in the text (placeholders before training: defence in depth, not part of epsilon):"]
    if pii["redact_entities"] == []:
        lines.append("  redaction is off")
    else:
        lines.append("  redacted:     " + (", ".join(f"{e} {n:,}" for e, n in pii["redacted"].items()) or "none found"))
    if pii["counted_only"]:
        lines.append("  counted only: " + ", ".join(f"{e} {n:,}" for e, n in pii["counted_only"].items()))
    if pii["structured_columns"]:
        lines.append("  PII columns (Faker surrogates): "
                     + ", ".join(f"{c} ({e})" for c, e in pii["structured_columns"].items()))
    p = plan.privacy
    units = p.get("units")
    if units:
        lines += ["", f"Privacy unit: {units['column']!r}: " + (units["note"] or (
            f"{units['n_units']:,} units ({units['n_train_units']:,} train, {units['n_holdout_units']:,} held out), "
            f"at most {units['max_rows_per_unit']} rows each in its training record"
            + (f" ({units['rows_not_trained']:,} rows beyond that not trained on)" if units["rows_not_trained"] else "")
            + (f"; {units['rows_without_value']:,} rows without a value are one unit each"
               if units["rows_without_value"] else "") + "."))]
    lines.append("")
    if p["dp"]:
        lines.append(f"Privacy: (epsilon={p['epsilon']:.3g}, delta={p['delta']:.2g})-DP {per_unit(p['privacy_unit'])}, "
                     f"{p['composition']}; covers {p['covers']}.")
        for m in p["models"]:
            lines.append(f"  {m['column']}: noise multiplier {m['noise_multiplier']:.4g}, sample rate "
                         f"{m['sample_rate']:.4g} (expected batch {m['expected_batch_size']:.1f}), {m['steps']} steps "
                         f"= {m['epochs']:.3g} epoch(s), clipping {m['max_grad_norm']:g}, {m['accountant']} "
                         f"accountant: epsilon {m['epsilon']:.4g}, delta {m['delta']:.2g}")
    else:
        lines.append("Privacy: NONE (epsilon=None): the text models train without differential privacy.")
        for m in p["models"]:
            lines.append(f"  {m['column']}: {m['steps']} steps of {m['expected_batch_size']:.0f} records")
    t = plan.training
    lora = (f"LoRA r={t['lora']['r']} on the top {t['lora']['layers']} of {t['lora']['of_layers']} layers"
            if t["lora"] else "all weights")
    lines.append(f"Training: {t['model']}, {lora}, lr {t['learning_rate']:.3g}, {t['precision']} on {t['device']}, "
                 f"records up to {t['max_length']} tokens.")
    s = plan.sampling
    lines.append(f"Sampling: temperature {s['temperature']:g}, top-p {s['top_p']:g}, "
                 + (f"min-p {s['min_p']:g}, " if s.get("min_p") else "")
                 + (f"no repeated {s['no_repeat_ngram']}-grams, " if s.get("no_repeat_ngram") else "")
                 + ("up to the model's budget" if s["max_new_tokens"] is None else f"up to {s['max_new_tokens']} new tokens")
                 + f", seed {s['seed']}.")
    if plan.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in plan.warnings]
    if plan.estimate is not None:
        e = plan.estimate
        lines += ["", f"Estimated wall time on this machine: about {_seconds(e['total_seconds'])}", f"  ({e['note']})"]
        width = max(len(st["stage"]) for st in e["stages"])
        for st in e["stages"]:
            lines.append(f"  {st['stage']:<{width}}  {_seconds(st['seconds']):>8}  ({st['how']})")
    return "\n".join(lines)


__all__ = ["RunPlan", "make_run_plan", "render_plan"]

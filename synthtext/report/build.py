"""The content of ``report.json``: :func:`build_report` and what it checks and adds.

It turns what the pipeline knows (data summary, PII scan summary, privacy ledger, evaluation, canary
audit, a sample of synthetic rows, the training log) into one JSON-safe dict with a versioned schema
(``synthtext.report/1``), adding per-column protection, plain-language verdicts and the caveats that
always apply (all worded in :mod:`synthtext.metrics.verdicts`). Of the PII scan it keeps only counts,
entity types and redacted examples (which must contain placeholders): never raw PII or training text.
The rows it shows are synthetic ones (:func:`sample_rows`), never real ones.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigError
from ..jsonsafe import json_safe
from ..metrics.verdicts import audit_verdicts, caveats, overall_verdicts, privacy_verdicts, report_thresholds
from ..pii import mask_contacts

REPORT_SCHEMA = "synthtext.report/1"
ROLES = ("text", "structured", "pii", "conditioning", "unit")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ENTITY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
# Keys of the PII summary that are carried into the report; anything else (raw spans, values) is dropped.
_PII_KEYS = ("engine", "n_rows", "warnings", "counts", "rows_with_pii", "redact_entities", "redacted_entities",
             "counted_only", "structured_columns", "examples")
SAMPLE_ROWS = 20
"""Synthetic rows the report shows (:func:`sample_rows`)."""
MAX_SAMPLE_ROWS = 100
"""More rows than this are refused: the report shows a sample, the table is the CSV."""
# Keys of a text model's training log that are carried into the report; anything else is dropped.
_TRAINING_LOG_KEYS = ("model", "dp", "accountant", "delta", "epsilon", "target_epsilon", "seconds", "cpu_seconds",
                      "records_processed", "precision", "frozen_layers_seconds")


# --------------------------------------------------------------------------------------------------
# Building the report dict
# --------------------------------------------------------------------------------------------------


def build_report(*, evaluation: Mapping | Any | None, ledger: Mapping | None, data_summary: Mapping,
                 pii_summary: Mapping | None = None, audit: Mapping | Any | None = None,
                 model_info: Mapping | None = None, run_id: str | None = None,
                 title: str | None = None, samples: Sequence[Mapping] | None = None,
                 training_log: Mapping | None = None) -> dict:
    """The content of ``report.json`` (see docs/report.md for the schema); writes no files.

    ``evaluation`` and ``audit`` may be dicts or objects with ``to_dict()``. ``ledger`` is
    :func:`synthtext.synthesizer.compose_ledgers` output (None: unknown, e.g. when comparing two files).
    ``samples``: synthetic rows to show, as :func:`sample_rows` chooses them (``[{column: value}]``; never
    real rows). ``training_log``: ``{text column: log}`` as :func:`training_logs` makes it (loss and
    epsilon per step), or None.

    Raises:
        ConfigError: an input lacks a required key, a column role is unknown, a column claims DP that
            the ledger does not support, a PII example is not redacted, a sample row is not flat, a
            training log's last epsilon is not its ledger's, or a value is not JSON-safe.
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
    verdicts = privacy_verdicts(ledger, data) + list((evaluation or {}).get("verdicts") or [])
    verdicts += audit_verdicts(audit)
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
        "caveats": caveats(data, ledger, pii, evaluation, audit, redact_pii),
        "verdicts": verdicts,
        "overall": overall_verdicts(verdicts, evaluation, audit),
        "thresholds": report_thresholds(),
        "samples": _check_samples(samples) if samples is not None else None,
        "training_log": _clean_training_log(training_log) if training_log else None,
    }
    report = _json_safe(report, "report")
    json.dumps(report, allow_nan=False)  # the contract: fails loudly here rather than in a reader
    return report


def sample_rows(synthetic, n: int = SAMPLE_ROWS, seed: int = 0, *, real=None, text_columns: Sequence = (),
                pii_columns: Mapping | None = None, pii_values: Mapping | None = None) -> list[dict]:
    """``n`` rows of the synthetic table (all of them when it has fewer), chosen at random with ``seed``
    (the same seed, the same rows) and kept in table order: ``[{column: value}]``, JSON-safe, a missing
    value None, a date as ISO text. Only ever pass it the synthetic table: the report shows these rows.

    With ``real`` (the real table), what would show real PII is withheld
    (:func:`synthtext.metrics.leakage.withhold_real_values`): a PII column's cell equal to a rare real
    value, a text that copies a real one of its ``text_columns``, and in the text the PII values of
    ``pii_values`` (``{entity type: values}`` found in the training text) as placeholders."""
    import numpy as np
    import pandas as pd

    if not isinstance(synthetic, pd.DataFrame):
        raise ConfigError(f"sample_rows: the synthetic table must be a pandas DataFrame, not {type(synthetic).__name__}.")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_SAMPLE_ROWS:
        raise ConfigError(f"sample_rows: n must be an integer from 0 to {MAX_SAMPLE_ROWS}, got {n!r}.")
    count = min(n, len(synthetic))
    picks = np.sort(np.random.default_rng([int(seed), 20]).choice(len(synthetic), size=count, replace=False))
    # to_dict("records"), not iloc[i]: a row as one Series would turn an int column's 4 into 4.0
    rows = synthetic.iloc[picks].to_dict("records")
    if real is not None:
        from ..metrics.leakage import withhold_real_values

        rows = withhold_real_values(rows, real, text_columns=text_columns, pii_columns=pii_columns,
                                    pii_values=pii_values)
    return [{str(column): _cell(value) for column, value in row.items()} for row in rows]


def _cell(value: Any) -> Any:
    """One cell as JSON: missing values None, numpy scalars plain, dates ISO text, anything else text."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if hasattr(value, "item") and pd.api.types.is_scalar(value):  # numpy scalars
        return _cell(value.item())
    return str(value)


def _check_samples(samples: Sequence[Mapping]) -> list[dict]:
    if isinstance(samples, (str, Mapping)) or not isinstance(samples, Sequence):
        raise ConfigError("samples must be a list of row dicts {column: value} (synthtext.report.sample_rows).")
    if len(samples) > MAX_SAMPLE_ROWS:
        raise ConfigError(f"samples holds {len(samples)} rows; the report shows at most {MAX_SAMPLE_ROWS} "
                          "(choose them with synthtext.report.sample_rows).")
    rows = []
    for i, row in enumerate(samples):
        if not isinstance(row, Mapping):
            raise ConfigError(f"samples[{i}] must be a dict {{column: value}}, not {type(row).__name__}.")
        row = _json_safe(dict(row), f"samples[{i}]")
        for column, value in row.items():
            if isinstance(value, (dict, list)):
                raise ConfigError(f"samples[{i}][{column!r}] is a {type(value).__name__}; a sample row holds one "
                                  "value per column.")
        rows.append(row)
    return rows


def training_logs(models: Mapping, text_columns: Sequence) -> dict | None:
    """``{text column: log}`` of a fit's trained models (``TrainedModel.train_log`` with its ledger's
    epsilon, delta, target and accountant), the ``training_log`` input of :func:`build_report`; None when
    no model has a log (a loaded synthesizer: logs are never saved)."""
    out = {}
    for column in text_columns:
        model = models[column]
        log = dict(getattr(model, "train_log", None) or {})
        if not log.get("steps"):
            continue
        ledger = model.ledger
        out[str(column)] = {**log, "model": model.base_name, "dp": ledger.dp, "accountant": ledger.accountant,
                            "delta": ledger.delta, "epsilon": ledger.epsilon, "target_epsilon": ledger.target_epsilon}
    return out or None


def _clean_training_log(training_log: Mapping) -> dict:
    """Per text column: the ledger's figures, the run's time and ``steps`` ({step, loss, epsilon});
    anything else is dropped. A DP log's last epsilon must be its ledger's (it comes from the same
    accountant): a log that disagrees is refused."""
    if not isinstance(training_log, Mapping):
        raise ConfigError("training_log must be a dict {text column: log} (synthtext.report.training_logs).")
    out = {}
    for column, log in training_log.items():
        where = f"training_log[{column!r}]"
        if not isinstance(log, Mapping) or not isinstance(log.get("steps"), Sequence):
            raise ConfigError(f"{where} must be a dict with 'steps': [{{step, loss, epsilon}}].")
        entry = {k: log[k] for k in _TRAINING_LOG_KEYS if k in log}
        steps = []
        for i, step in enumerate(log["steps"]):
            if not isinstance(step, Mapping) or "step" not in step:
                raise ConfigError(f"{where}.steps[{i}] must be a dict with at least 'step'.")
            steps.append({"step": step["step"], "loss": step.get("loss"), "epsilon": step.get("epsilon")})
        entry["steps"] = steps
        entry = _json_safe(entry, where)
        spent = [s["epsilon"] for s in entry["steps"] if isinstance(s["epsilon"], (int, float))]
        if entry.get("dp") and spent and isinstance(entry.get("epsilon"), (int, float)) and \
                not math.isclose(spent[-1], entry["epsilon"], rel_tol=1e-9, abs_tol=1e-12):
            raise ConfigError(f"{where}: its last epsilon {spent[-1]:.6g} is not the ledger's {entry['epsilon']:.6g}; "
                              "pass the log of the model the ledger describes.")
        out[str(column)] = entry
    return out


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


def column_role(column: Any, text_columns, pii_columns, conditioning_columns, unit_column: Any = None) -> str:
    """A column's role in the report: "text", "unit" (the privacy unit's column), "pii", "conditioning" or
    "structured"."""
    if unit_column is not None and column == unit_column:
        return "unit"
    if column in text_columns:
        return "text"
    if column in pii_columns:
        return "pii"
    return "conditioning" if column in conditioning_columns else "structured"


def column_protection(role: str, structured: str | None, ledger: Mapping | None) -> str:
    """What protects a column of this role, in the words the report uses (the one place they are made)."""
    if role == "pii":
        return "Faker surrogate (not derived from data)"
    if role == "unit":
        return "surrogate, one per synthetic unit (not derived from data)"
    if role == "text" or structured == "dp":
        if ledger is None:
            return "unknown (no privacy ledger)"
        if not ledger.get("dp"):
            return "not DP (trained without differential privacy)"
        if structured == "dp":
            return f"DP (epsilon={ledger['epsilon']:.3g}, one model for every non-PII column)"
        return f"DP (epsilon={ledger['epsilon']:.3g} for all text columns)"
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

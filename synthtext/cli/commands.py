"""What each ``synthtext`` subcommand does once its arguments are parsed: ``run_<command>(args)`` returns
the exit code; errors are raised and turned into messages by :func:`synthtext.cli.main`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from .exits import EXIT_OK


def _check_outputs(inputs: Sequence[str | None], output: str | None = None, *, save_model: str | None = None,
                   overwrite: bool = False, report: str | None = None) -> None:
    """Fail before any work (training takes hours) when an output cannot be written or would replace
    an input: one clear message, nothing written."""
    from ..errors import DataError
    from ..io import STDOUT, check_writable

    if output is not None:
        check_writable(output)
        for source in inputs:
            if (source and output != STDOUT and Path(source).exists() and Path(output).exists()
                    and os.path.samefile(source, output)):
                raise DataError(f"the output {output} is the input file {source}; synthtext never modifies its "
                                "input. Choose another output path.")
    for name, directory in (("--save-model", save_model), ("the report directory (-o)", report)):
        if directory == STDOUT:
            raise DataError(f"{name} is a directory of several files and cannot go to stdout ('-'); give a "
                            "directory path.")
    if save_model is not None:
        from ..saved import check_save_target

        if output is not None and Path(save_model).resolve() == Path(output).resolve():
            raise DataError(f"--save-model {save_model} is also the output file; give the model its own directory.")
        check_save_target(save_model, overwrite=overwrite)
    if report is not None:
        import tempfile

        target = Path(report)
        if target.exists() and not target.is_dir():
            raise DataError(f"cannot write the report to {target}: it is a file. Give a directory.")
        existing = target
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".synthtext-", dir=existing))
        except OSError as exc:
            raise DataError(f"cannot write the report to {target}: {exc.strerror or exc} in {existing}.") from exc


def _warn_if_not_private(epsilon: float | None) -> None:
    """Printed even under -q: a run without DP must never look like a private one."""
    if epsilon is None:
        print("synthtext: warning: --epsilon none: training WITHOUT differential privacy; the output carries no "
              "privacy guarantee (for comparison only).", file=sys.stderr)


def _train_config(args: argparse.Namespace, **options):
    from ..config import TrainConfig

    options.update({k: v for k, v in (("epochs", args.epochs), ("max_length", getattr(args, "max_length", None)))
                    if v is not None})
    return TrainConfig(progress=not args.quiet, **options)


def sampling_settings(args: argparse.Namespace) -> dict:
    """The sampling options given on the command line, as TextSynthesizer's keywords."""
    from .parser import SAMPLING_OPTIONS

    return {name: getattr(args, name) for name in SAMPLING_OPTIONS if getattr(args, name, None) is not None}


def _privacy_config(args: argparse.Namespace):
    from ..config import PrivacyConfig

    return PrivacyConfig() if args.min_records is None else PrivacyConfig(min_records=args.min_records)


def _synthesizer_from(args: argparse.Namespace):
    from ..distributed import is_main
    from ..synthesizer import TextSynthesizer

    _warn_if_not_private(args.epsilon)
    show = not args.quiet and is_main()  # under torchrun, rank 0 alone shows progress
    return TextSynthesizer(args.text_columns, args.conditioning_columns, epsilon=args.epsilon, delta=args.delta,
                           model=args.model, model_size=args.model_size, max_new_tokens=args.max_new_tokens,
                           structured=args.structured, seed=args.seed, train=_train_config(args),
                           privacy=_privacy_config(args), holdout=args.holdout, progress=show,
                           redact_entities=args.redact_entities, privacy_unit=args.privacy_unit,
                           max_rows_per_unit=args.max_rows_per_unit,
                           public_domains=dict(args.public_domain) if args.public_domain else None,
                           **sampling_settings(args))


def _summary(what: str, rows: int | None, synth, started: float, extra: str = "") -> str:
    import time

    ledger = synth.privacy_ledger_
    lines = [f"synthtext: {what}" + (f" {rows:,} rows" if rows is not None else "") +
             f" in {time.perf_counter() - started:.0f} s", f"  privacy: {ledger['summary']}"]
    drawn = getattr(synth, "whole_row_counts_", None)  # structured="dp": values the model never wrote readably
    if drawn and drawn.get("unparsed"):
        lines.append(f"  warning: {drawn['unparsed']:,} cells in {drawn['rows_incomplete']:,} of {drawn['rows']:,} rows "
                     f"were not values of their column after {drawn['max_tries']} draws each: they are empty (the "
                     "report's caveats count them).")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def run_plan(args: argparse.Namespace) -> int:
    """'synthtext plan' and 'synthesize --dry-run': the run's plan on stdout; nothing trained or written."""
    from ..distributed import is_main
    from ..io import read_table

    _check_outputs([args.csv, args.audit_result], args.output, save_model=args.save_model, overwrite=args.overwrite,
                   report=args.report)
    _read_audit_result(args.audit_result)
    df = read_table(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
    fmt = getattr(args, "format", "table")  # synthesize --dry-run prints the table
    plan = _synthesizer_from(args).plan(df, args.rows, report=args.report is not None,
                                        probe=not getattr(args, "no_probe", False))
    if not is_main():  # under torchrun, rank 0 prints the plan
        return EXIT_OK
    sys.stdout.write((plan.to_json() if fmt == "json" else str(plan)) + "\n")
    return EXIT_OK


def run_synthesize(args: argparse.Namespace) -> int:
    import time

    from ..distributed import is_main
    from ..io import read_table, write_table
    from ..synthesizer import check_keep_rows

    if args.dry_run:
        return run_plan(args)
    started = time.perf_counter()
    _check_outputs([args.csv, args.audit_result], args.output, save_model=args.save_model, overwrite=args.overwrite,
                   report=args.report)
    audit = _read_audit_result(args.audit_result)  # a bad file fails now, not after training
    df = read_table(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
    check_keep_rows(args.structured, args.rows, len(df))
    synth = _synthesizer_from(args).fit(df)
    out = synth.sample(args.rows)
    if not is_main():  # under torchrun every rank holds the same result; rank 0 writes it
        return EXIT_OK
    extra = []
    # the report first: evaluation is what may still fail, and then nothing at all is written; the CSV
    # last, so that a stop (error, Ctrl-C, SIGTERM) before its one rename leaves the old CSV as it was
    report_dir = synth.write_report(out, args.report, audit=audit) if args.report else None
    model, replaced, owned = (Path(args.save_model) if args.save_model else None), None, False
    try:
        if model is not None:
            if model.is_dir() and any(model.iterdir()):  # --overwrite (checked): keep the old one until the end
                replaced = model.parent / f".synthtext-replaced-{os.getpid()}-{model.name}"
                os.replace(model, replaced)
            owned = True  # from here on, whatever is at `model` is this run's
            synth.save(model)
            extra.append(f"  model saved to {args.save_model}")
        write_table(out, args.output, neutralize_formulas=synth.text_columns_ if args.neutralize_formulas else False)
    except BaseException:  # all outputs or none: this run's go, what they replaced comes back
        if owned:
            shutil.rmtree(model, ignore_errors=True)
        if replaced is not None and replaced.exists():
            os.replace(replaced, model)
        if report_dir is not None:
            shutil.rmtree(report_dir, ignore_errors=True)
        raise
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    if report_dir is not None:
        extra.append(f"  report: {report_dir / 'report.html'}")
    if not args.quiet:
        print(_summary(f"wrote {args.output}:", len(out), synth, started, "\n".join(extra)), file=sys.stderr)
    return EXIT_OK


def run_fit(args: argparse.Namespace) -> int:
    import time

    from ..distributed import is_main
    from ..io import read_table

    started = time.perf_counter()
    _check_outputs([args.csv], save_model=args.save_model, overwrite=args.overwrite)
    df = read_table(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
    synth = _synthesizer_from(args).fit(df)
    if not is_main():  # under torchrun, rank 0 saves the one model all ranks trained
        return EXIT_OK
    synth.save(args.save_model, overwrite=args.overwrite)
    if not args.quiet:
        print(_summary(f"saved the synthesizer to {args.save_model}", None, synth, started), file=sys.stderr)
    return EXIT_OK


def run_sample(args: argparse.Namespace) -> int:
    import time

    from ..distributed import is_main
    from ..io import read_table, write_table
    from ..synthesizer import TextSynthesizer

    started = time.perf_counter()
    _check_outputs([args.conditions], args.output)
    synth = TextSynthesizer.load(args.model_dir)
    synth.progress = not args.quiet and is_main()
    for name, value in sampling_settings(args).items():  # this run's sampling; the saved model is unchanged
        setattr(synth, name, value)
    conditions = read_table(args.conditions, encoding=args.encoding, trust_quotes=args.trust_quotes) if args.conditions else None
    out = synth.sample(args.rows, conditions=conditions, seed=args.seed)  # under torchrun, rows shared out
    if not is_main():
        return EXIT_OK
    write_table(out, args.output, neutralize_formulas=synth.text_columns_ if args.neutralize_formulas else False)
    if not args.quiet:
        print(_summary(f"wrote {args.output}:", len(out), synth, started), file=sys.stderr)
    return EXIT_OK


def _read_audit_result(path: str | None) -> dict | None:
    """A JSON file written by ``synthtext audit -o``, for the report's canary-audit section."""
    from ..errors import DataError

    if path is None:
        return None
    try:
        result = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the audit result {path}: {exc}. Pass a file written by "
                        "'synthtext audit -o AUDIT.json'.") from exc
    if not isinstance(result, dict) or "empirical_epsilon_lower_bound" not in result:
        raise DataError(f"{path} is not a 'synthtext audit' result (no empirical_epsilon_lower_bound).")
    return result


def run_report(args: argparse.Namespace) -> int:
    from ..distributed import is_main
    from ..io import read_table
    from ..pair import report_pair

    _check_outputs([args.real, args.synthetic], report=args.output)
    if not is_main():  # under torchrun nothing here is shared out: rank 0 alone writes the report
        return EXIT_OK
    real = read_table(args.real, encoding=args.encoding, trust_quotes=args.trust_quotes)
    synthetic = read_table(args.synthetic, encoding=args.encoding, trust_quotes=args.trust_quotes)
    run_dir = report_pair(real, synthetic, args.output, text_columns=args.text_columns,
                          conditioning_columns=args.conditioning_columns, embedding=args.embedding,
                          audit=_read_audit_result(args.audit_result))
    if not args.quiet:
        print(f"synthtext: wrote the report to {run_dir / 'report.html'}", file=sys.stderr)
    return EXIT_OK


def run_audit(args: argparse.Namespace) -> int:
    from ..audit import audit
    from ..distributed import is_main
    from ..io import STDOUT, read_table, write_text

    if args.output:
        _check_outputs([args.csv], args.output)
    df = read_table(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
    _warn_if_not_private(args.epsilon)
    show = not args.quiet and is_main()
    train = _train_config(args, **({"batch_size": args.batch_size} if args.batch_size is not None else {}))
    result = audit(df, args.text_columns, epsilon=args.epsilon, delta=args.delta, canaries=args.canaries,
                   column=args.column, conditioning_columns=args.conditioning_columns, model=args.model,
                   model_size=args.model_size, train=train, privacy=_privacy_config(args),
                   canary_digits=args.canary_digits, seed=args.seed, progress=show,
                   redact_entities=args.redact_entities, structured=args.structured,
                   privacy_unit=args.privacy_unit, max_rows_per_unit=args.max_rows_per_unit)
    if not is_main():  # under torchrun, rank 0 writes the result all ranks computed
        return EXIT_OK
    if args.output:
        write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n", args.output)
    if not args.quiet:  # the summary keeps out of the JSON when that goes to stdout
        print(result.summary(), file=sys.stderr if args.output == STDOUT else sys.stdout)
        if args.output and args.output != STDOUT:
            print(f"synthtext: wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def run_scan(args: argparse.Namespace) -> int:
    from .. import pii
    from ..distributed import is_main
    from ..io import STDOUT, read_table, write_text

    if args.output == STDOUT:
        args.output = None
    if args.output:
        _check_outputs([args.csv], args.output)
    df = read_table(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
    if not is_main():  # under torchrun nothing here is shared out: rank 0 alone scans and writes
        return EXIT_OK
    threshold = pii.DEFAULT_SCORE_THRESHOLD if args.threshold is None else args.threshold
    show_progress = not args.quiet
    result = pii.scan_pii(df, columns=args.columns, score_threshold=threshold, n_jobs=args.jobs,
                          progress=show_progress)
    for warning in result.warnings:
        print(f"synthtext: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
    elif args.format == "jsonl":
        text = "".join(
            json.dumps({"row": row, "column": column, "spans": [s.to_dict() for s in spans]},
                       ensure_ascii=False) + "\n"
            for row, column, spans in result.cells())
    else:
        text = render_scan_table(df, result)
    if args.output:
        write_text(text, args.output)
        if not args.quiet:
            print(f"synthtext: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def render_scan_table(df, result) -> str:
    """A short report for people: counts per column and type (and how many spans fit would redact by
    default), redacted examples, PII columns."""
    from ..pii import redacted_examples, redaction_counts

    lines = [f"Scanned {len(result.text_columns)} text column(s) in {result.n_rows:,} rows "
             f"with {result.engine}."]
    if not result.text_columns:
        lines.append("No text columns found (a text column holds strings of 3+ words on average, mostly "
                     "distinct); name them with --columns.")
    counts, rows_with = result.counts(), result.rows_with_pii()
    by_default = redaction_counts(df, result)
    for column in result.text_columns:
        total = sum(counts[column].values())
        lines += ["", f"Column {column!r}: {total:,} PII span(s) in {rows_with[column]:,} of "
                      f"{result.n_rows:,} rows"]
        width = max((len(t) for t in counts[column]), default=0)
        done = by_default["redacted"][column]
        lines += [f"  {entity:<{width}}  {n:>7,}  {_redaction_note(done.get(entity, 0), n)}"
                  for entity, n in counts[column].items()]
        examples = redacted_examples(df, result, column)
        if examples:
            lines.append("  examples (redacted):")
            lines += [f"    {example}" for example in examples]
    lines.append("")
    if result.structured_columns:
        lines.append("Columns that are PII themselves (values will be replaced by surrogates):")
        width = max(len(repr(c)) for c in result.structured_columns)
        for c in result.structured_columns.values():
            lines.append(f"  {c.column!r:<{width}}  {c.entity_type:<14} by {c.reason} "
                         f"({c.match_share:.0%} of sampled values)")
    else:
        lines.append("No column is PII by itself.")
    return "\n".join(lines) + "\n"


def _redaction_note(redacted: int, found: int) -> str:
    if redacted == found:
        return "redacted by default"
    if redacted == 0:
        return "counted, not redacted by default"
    return f"{redacted:,} redacted by default, {found - redacted:,} counted only"

"""The ``synthtext`` command.

Exit codes: 0 success; 2 usage or data errors (one message on stderr, no traceback); 1 unexpected
failure (message on stderr; ``SYNTHTEXT_DEBUG=1`` shows the traceback); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM: ``kill``, ``docker stop``, systemd, SLURM); 141 the reader of ``-o -`` left
(``| head``), as for a process killed by SIGPIPE. Interrupted or terminated, a run
leaves all of its outputs or none, and no staging directory.

``-o -`` writes the result to standard output; everything else (progress, summary) goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Sequence

from .config import MAX_ROWS
from .errors import SynthtextError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 143, 141



class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so the clean-up that Ctrl-C runs (staging directories,
    half-written outputs) runs for it too."""


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one clean-up, not one per repeated signal
    raise Terminated()


def _comma_list(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty column name in {value!r}; give names separated by commas: a,b")
    return names


def _count(minimum: int, maximum: int | None = None, why: str = ""):
    """An argparse type: an integer in [minimum, maximum], refused when parsing (before any work)."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum:,}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {number:,}{why}")
        return number
    return parse


def _float(value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}, got {value!r}") from None


def _share(value: str) -> float:
    share = _float(value, "expected a share such as 0.1")
    if not 0 <= share <= 0.5:
        raise argparse.ArgumentTypeError(f"must be between 0 and 0.5 (leakage is measured on these rows; the rest "
                                         f"train), got {value}")
    return share


_ROWS = _count(1, MAX_ROWS, f" (at most {MAX_ROWS:,} per run: for more, fit once with --save-model and run "
               "'synthtext sample' several times with different --seed; training again spends epsilon again)")
_SEED = _count(0, 2**32 - 1)


class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line, like every other error (argparse would print the whole usage first)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"synthtext: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synthtext",
        description="Privacy-safe synthetic copies of tables with free-text columns.",
        epilog="Exit codes: 0 ok, 2 usage or data error, 1 unexpected failure.",
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"synthtext {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    scan = commands.add_parser(
        "scan",
        help="find PII in the text columns of a CSV file",
        description=(
            "Find PII (names, emails, phone numbers, card numbers, ...) in the free-text columns of a CSV "
            "file with presidio-analyzer, and list the columns that are PII themselves (a name or email "
            "column). Text columns are detected unless --columns is given. The table format never prints "
            "raw PII, only redacted examples."),
        epilog=("Examples:\n  synthtext scan reviews.csv\n"
                "  synthtext scan reviews.csv --columns 'Review Text,Title' --format jsonl -o spans.jsonl"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument("csv", metavar="FILE.csv", help="the CSV file to scan (UTF-8; see --encoding)")
    scan.add_argument("--columns", type=_comma_list, metavar="A,B",
                      help="text columns to scan, comma separated (default: detected)")
    scan.add_argument("--format", choices=("table", "json", "jsonl"), default="table",
                      help="table for people (default), json for machines, jsonl: one line per cell "
                           '{"row", "column", "spans"}')
    scan.add_argument("-o", "--output", metavar="OUT", help="write the result here instead of stdout ('-': stdout)")
    scan.add_argument("--encoding", default="utf-8", help="text encoding of FILE.csv (default: utf-8)")
    _add_trust_quotes(scan)
    scan.add_argument("--threshold", type=float, default=None, metavar="SCORE",
                      help="drop spans scoring below this (0-1, default 0.4)")
    scan.add_argument("--jobs", type=int, default=None, metavar="N",
                      help="worker processes (default: the number of CPU cores, at most 8)")
    scan.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    scan.set_defaults(handler=_run_scan)

    synth = commands.add_parser(
        "synthesize", help="make a synthetic copy of a CSV file (fit and sample in one go)",
        description=("Learn IN.csv and write a synthetic copy with the same columns to OUT.csv: PII in the "
                     "text is replaced by placeholders, a language model is fine-tuned under differential "
                     "privacy on each text column, the other columns are synthesized with SDV (or kept), "
                     "and each row's text is generated conditioned on the row."),
        epilog="Example:\n  synthtext synthesize examples/reviews_500.csv -o synthetic.csv --epsilon 8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    synth.add_argument("csv", metavar="IN.csv", help="the table to learn")
    synth.add_argument("-o", "--output", required=True, metavar="OUT.csv",
                       help="where to write the synthetic table ('-': stdout, the summary goes to stderr)")
    synth.add_argument("--rows", type=_ROWS, default=None, metavar="N", help="rows to write (default: as many as IN.csv)")
    synth.add_argument("--save-model", metavar="DIR", help="also save the fitted synthesizer here")
    _add_formula_option(synth)
    synth.add_argument("--report", metavar="DIR", default=None,
                       help="evaluate the result and write the privacy audit report to DIR/<run-id>/ "
                            "(report.html + report.json), e.g. --report privacy_reports")
    synth.add_argument("--audit-result", metavar="AUDIT.json", default=None,
                       help="a 'synthtext audit -o AUDIT.json' result to include in the report")
    _add_fit_options(synth)
    synth.set_defaults(handler=_run_synthesize)

    fit = commands.add_parser("fit", help="learn a CSV file and save the synthesizer",
                              description="Learn IN.csv and save the fitted synthesizer to DIR (JSON and "
                                          "safetensors only; no training text).")
    fit.add_argument("csv", metavar="IN.csv", help="the table to learn")
    fit.add_argument("--save-model", required=True, metavar="DIR", help="where to save the synthesizer")
    _add_fit_options(fit)
    fit.set_defaults(handler=_run_fit)

    sample = commands.add_parser("sample", help="write synthetic rows from a saved synthesizer",
                                 description="Write N synthetic rows from a synthesizer saved by fit.")
    sample.add_argument("model_dir", metavar="DIR", help="a directory written by 'synthtext fit'")
    sample.add_argument("--rows", type=_ROWS, default=None, metavar="N", help="rows to write (default: as many as fitted)")
    sample.add_argument("-o", "--output", required=True, metavar="OUT.csv", help="where to write them ('-': stdout)")
    sample.add_argument("--conditions", metavar="ROWS.csv",
                        help="your own rows for the conditioning columns: one synthetic row per row (the other "
                             "structured columns are drawn as without --conditions)")
    sample.add_argument("--encoding", default="utf-8", help="text encoding of ROWS.csv (default: utf-8)")
    _add_trust_quotes(sample)
    sample.add_argument("--seed", type=_SEED, default=None, help="sampling seed (default: the fitted one)")
    _add_formula_option(sample)
    sample.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    sample.set_defaults(handler=_run_sample)

    report = commands.add_parser(
        "report", help="score a synthetic CSV against the real one and write the audit report",
        description=("Evaluate any real/synthetic pair: fidelity (lengths, n-grams, a real-vs-synthetic "
                     "discriminator, embeddings, does the text follow its row) and leakage (PII replay, "
                     "verbatim copying, distance to closest record). Model-based metrics (membership "
                     "inference) need the model: use 'synthtext synthesize --report DIR' for those."),
        epilog="Example:\n  synthtext report examples/reviews_500.csv synthetic.csv -o privacy_reports",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("real", metavar="REAL.csv", help="the real table")
    report.add_argument("synthetic", metavar="SYNTH.csv", help="the synthetic table (same columns)")
    report.add_argument("--text-columns", type=_comma_list, metavar="A,B",
                        help="free-text columns to score (default: detected in REAL.csv)")
    report.add_argument("--conditioning-columns", type=_comma_list, metavar="A,B",
                        help="columns the text should follow (default: the other non-PII columns)")
    report.add_argument("-o", "--output", default="privacy_reports", metavar="DIR",
                        help="the report goes to DIR/<run-id>/ (default: privacy_reports)")
    report.add_argument("--embedding", choices=("auto", "minilm", "tfidf"), default="auto",
                        help="text embedding for distances: MiniLM when installed (auto), or TF-IDF + SVD")
    report.add_argument("--encoding", default="utf-8", help="text encoding of both files (default: utf-8)")
    _add_trust_quotes(report)
    report.add_argument("--audit-result", metavar="AUDIT.json", default=None,
                        help="a 'synthtext audit -o AUDIT.json' result to include in the report")
    report.add_argument("-q", "--quiet", action="store_true", help="no summary")
    report.set_defaults(handler=_run_report)

    audit = commands.add_parser(
        "audit", help="check the DP claim empirically with random canaries (one-run audit)",
        description=("Train the text model as 'synthesize' would, with random canary records each inserted "
                     "with probability 1/2, score every canary by the model's loss, and report the empirical "
                     "epsilon lower bound at 95% confidence (Steinke, Nasr & Jagielski 2023) beside the "
                     "claimed epsilon, plus canary exposure (Carlini et al. 2019). The audit model is thrown "
                     "away: canaries never reach synthetic output. A lower bound at or below the claim is "
                     "consistent with it, not a proof."),
        epilog=("Examples:\n  synthtext audit examples/reviews_500.csv --epsilon 8 -o audit.json\n"
                "  synthtext audit examples/reviews_500.csv --epsilon none --epochs 20   # the audit's power"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    audit.add_argument("csv", metavar="IN.csv", help="the table to audit training on")
    audit.add_argument("--text-columns", type=_comma_list, metavar="A,B",
                       help="free-text columns (default: detected); the budget is split over them as in fit")
    audit.add_argument("--column", default=None, help="the text column whose model is audited (default: the first)")
    audit.add_argument("--conditioning-columns", type=_comma_list, metavar="A,B",
                       help="columns each text is conditioned on (default: every non-text, non-PII column)")
    audit.add_argument("--epsilon", type=_epsilon, default=8.0,
                       help="DP budget for the whole table (default 8); 'none' audits training without DP")
    audit.add_argument("--delta", type=_delta, default=None, help="DP delta (default: min(1e-5, 1/(10 n)))")
    audit.add_argument("--canaries", type=int, default=1000, metavar="M",
                       help="random canaries, each inserted with probability 1/2 (default 1000)")
    audit.add_argument("--canary-digits", type=int, default=10, metavar="D",
                       help="length of each canary's random digit secret (default 10)")
    audit.add_argument("--model", default=None,
                       help="base model: unset = SmolLM2-135M-Instruct (installed by scripts/setup.sh); 'builtin' = "
                       "the byte-level model trained from scratch; or a hub id / local directory of a causal LM")
    audit.add_argument("--model-size", choices=("auto", "tiny", "small", "base"), default="auto",
                       help="--model builtin only: small on CPU, base on a GPU (auto); tiny for smoke tests")
    audit.add_argument("--epochs", type=_count(1), default=None, help="training epochs (default 3)")
    audit.add_argument("--batch-size", type=_count(1), default=None, help="training batch size (default 64)")
    audit.add_argument("--seed", type=_SEED, default=0, help="seed for canaries and training (default 0)")
    _add_max_length(audit)
    _add_privacy_options(audit)
    _add_redact_option(audit)
    audit.add_argument("-o", "--output", metavar="audit.json", help="write the full result as JSON here ('-': stdout)")
    audit.add_argument("--encoding", default="utf-8", help="text encoding of IN.csv (default: utf-8)")
    _add_trust_quotes(audit)
    audit.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    audit.set_defaults(handler=_run_audit)
    for command in commands.choices.values():  # so error advice names only flags this command has
        command.set_defaults(flags=frozenset(o for action in command._actions for o in action.option_strings))
    return parser


def cli_message(exc: SynthtextError, args: argparse.Namespace) -> str:
    """The error's advice with the flags of the command that raised it (see :func:`synthtext.errors.option`)."""
    return exc.render(getattr(args, "flags", frozenset()))


def _add_formula_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--neutralize-formulas", action=argparse.BooleanOptionalAction, default=True,
        help="prefix ' to generated text cells that start with = + - @ tab or CR, so spreadsheet programs "
             "show them instead of running them as formulas (OWASP 'CSV injection'; default: on). Only the "
             "generated text columns: the other columns keep their values (-3, +1 555 0100). "
             "--no-neutralize-formulas writes the text exactly as generated")


def _check_outputs(inputs: Sequence[str | None], output: str | None = None, *, save_model: str | None = None,
                   overwrite: bool = False, report: str | None = None) -> None:
    """Fail before any work (training takes hours) when an output cannot be written or would replace
    an input: one clear message, nothing written."""
    from .errors import DataError
    from .io import STDOUT, check_writable

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
        from .synthesizer import check_save_target

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


def _add_trust_quotes(command: argparse.ArgumentParser) -> None:
    command.add_argument("--trust-quotes", action="store_true",
                         help="read quoted cells that span lines as they are, without the check for a stray quote "
                              "that swallows the next record (for a file whose multi-line cells look like records)")


def _add_redact_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--redact-entities", default=None, metavar="TYPE,TYPE",
        help="PII types replaced by placeholders before training (default: what identifies a person: names, "
             "emails, phones, street addresses, card/account/ID numbers, IP addresses, URLs with http(s):// or www., specific "
             "dates; not places, nationalities, durations or 'last week'). 'all': every type the scan finds; "
             "'default,LOCATION': the default plus places. Other types are only counted")


def _add_fit_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--text-columns", type=_comma_list, metavar="A,B",
                         help="free-text columns to regenerate (default: detected)")
    conditioning = command.add_mutually_exclusive_group()
    conditioning.add_argument("--conditioning-columns", type=_comma_list, metavar="A,B",
                              help="columns each text is conditioned on (default: every non-text, non-PII column)")
    conditioning.add_argument("--no-conditioning", dest="conditioning_columns", action="store_const", const=[],
                              help="condition the text on no column (texts then follow nothing of their row)")
    command.add_argument("--epsilon", type=_epsilon, default=8.0,
                         help="DP budget for the whole table (default 8); 'none' trains without DP")
    command.add_argument("--delta", type=_delta, default=None, help="DP delta for the whole table (default: "
                         "min(1e-5, 1/(10 n)) for n training rows), split over the text columns like epsilon")
    command.add_argument("--model", default=None,
                         help="base model: unset = SmolLM2-135M-Instruct (installed by scripts/setup.sh); "
                         "'builtin' = the byte-level model trained from scratch; or a hub id / local directory of a causal LM")
    command.add_argument("--model-size", choices=("auto", "tiny", "small", "base"), default="auto",
                         help="--model builtin only: small on CPU, base on a GPU (auto); tiny for smoke tests")
    command.add_argument("--max-new-tokens", type=_count(1), default=None, metavar="N",
                         help="longest generated text, in tokens (bytes for the built-in model)")
    _add_max_length(command)
    command.add_argument("--structured", choices=("sdv", "keep"), default="sdv",
                         help="sdv: synthesize the other columns (not DP); keep: keep them as given")
    command.add_argument("--epochs", type=_count(1), default=None, help="training epochs (default 3)")
    command.add_argument("--holdout", type=_share, default=0.1, metavar="SHARE",
                         help="share of rows kept out of training to measure leakage against (0 to 0.5, default 0.1)")
    command.add_argument("--seed", type=_SEED, default=0, help="seed for training and sampling (default 0)")
    _add_privacy_options(command)
    _add_redact_option(command)
    command.add_argument("--encoding", default="utf-8", help="text encoding of IN.csv (default: utf-8)")
    _add_trust_quotes(command)
    command.add_argument("--overwrite", action="store_true", help="replace an existing --save-model directory")
    command.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")


def _add_max_length(command: argparse.ArgumentParser) -> None:
    command.add_argument("--max-length", type=_count(2), default=None, metavar="N",
                         help="longest training record (prompt + text), in tokens or bytes (default: the model's; "
                              "longer texts are cut)")


def _add_privacy_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--min-records", type=_count(1), default=None, metavar="N",
                         help="refuse DP training on fewer rows than this (default 100: fewer give noise, not text)")


def _epsilon(value: str) -> float | None:
    """'none' (or 'off') is the one way to train without DP; inf and nan are refused, not read as 'none'."""
    if value.strip().lower() in ("none", "off"):
        return None
    epsilon = _float(value, "epsilon must be a number or 'none'")
    if math.isinf(epsilon) or math.isnan(epsilon):
        raise argparse.ArgumentTypeError(f"epsilon {value!r} is not a privacy budget; to train without differential "
                                         "privacy say so: --epsilon none")
    return _checked_by_privacy_config("epsilon", epsilon)


def _delta(value: str) -> float:
    return _checked_by_privacy_config("delta", _float(value, "delta must be a number such as 1e-5"))


def _checked_by_privacy_config(name: str, value: float) -> float:
    """``value`` if PrivacyConfig accepts it: its rule is the one rule for epsilon and delta."""
    from .config import PrivacyConfig
    from .errors import ConfigError

    try:
        PrivacyConfig(**{name: value})
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.render(frozenset({"--epsilon", "--delta"}))) from None
    return value


def _warn_if_not_private(epsilon: float | None) -> None:
    """Printed even under -q: a run without DP must never look like a private one."""
    if epsilon is None:
        print("synthtext: warning: --epsilon none: training WITHOUT differential privacy; the output carries no "
              "privacy guarantee (for comparison only).", file=sys.stderr)


def _train_config(args: argparse.Namespace, **options):
    from .config import TrainConfig

    options.update({k: v for k, v in (("epochs", args.epochs), ("max_length", getattr(args, "max_length", None)))
                    if v is not None})
    return TrainConfig(progress=not args.quiet, **options)


def _privacy_config(args: argparse.Namespace):
    from .config import PrivacyConfig

    return PrivacyConfig() if args.min_records is None else PrivacyConfig(min_records=args.min_records)


def _synthesizer_from(args: argparse.Namespace):
    from .synthesizer import TextSynthesizer

    _warn_if_not_private(args.epsilon)
    show = not args.quiet
    return TextSynthesizer(args.text_columns, args.conditioning_columns, epsilon=args.epsilon, delta=args.delta,
                           model=args.model, model_size=args.model_size, max_new_tokens=args.max_new_tokens,
                           structured=args.structured, seed=args.seed, train=_train_config(args),
                           privacy=_privacy_config(args), holdout=args.holdout, progress=show,
                           redact_entities=args.redact_entities)


def _summary(what: str, rows: int | None, synth, started: float, extra: str = "") -> str:
    import time

    ledger = synth.privacy_ledger_
    lines = [f"synthtext: {what}" + (f" {rows:,} rows" if rows is not None else "") +
             f" in {time.perf_counter() - started:.0f} s", f"  privacy: {ledger['summary']}"]
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def _run_synthesize(args: argparse.Namespace) -> int:
    import time

    from .io import read_csv, write_csv
    from .synthesizer import check_keep_rows

    started = time.perf_counter()
    _check_outputs([args.csv, args.audit_result], args.output, save_model=args.save_model, overwrite=args.overwrite,
                   report=args.report)
    audit = _read_audit_result(args.audit_result)  # a bad file fails now, not after training
    df = read_csv(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
    check_keep_rows(args.structured, args.rows, len(df))
    synth = _synthesizer_from(args).fit(df)
    out = synth.sample(args.rows)
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
        write_csv(out, args.output, neutralize_formulas=synth.text_columns_ if args.neutralize_formulas else False)
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


def _run_fit(args: argparse.Namespace) -> int:
    import time

    from .io import read_csv

    started = time.perf_counter()
    _check_outputs([args.csv], save_model=args.save_model, overwrite=args.overwrite)
    df = read_csv(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
    synth = _synthesizer_from(args).fit(df)
    synth.save(args.save_model, overwrite=args.overwrite)
    if not args.quiet:
        print(_summary(f"saved the synthesizer to {args.save_model}", None, synth, started), file=sys.stderr)
    return EXIT_OK


def _run_sample(args: argparse.Namespace) -> int:
    import time

    from .io import read_csv, write_csv
    from .synthesizer import TextSynthesizer

    started = time.perf_counter()
    _check_outputs([args.conditions], args.output)
    synth = TextSynthesizer.load(args.model_dir)
    synth.progress = not args.quiet
    conditions = read_csv(args.conditions, encoding=args.encoding, trust_quotes=args.trust_quotes) if args.conditions else None
    out = synth.sample(args.rows, conditions=conditions, seed=args.seed)
    write_csv(out, args.output, neutralize_formulas=synth.text_columns_ if args.neutralize_formulas else False)
    if not args.quiet:
        print(_summary(f"wrote {args.output}:", len(out), synth, started), file=sys.stderr)
    return EXIT_OK


def _read_audit_result(path: str | None) -> dict | None:
    """A JSON file written by ``synthtext audit -o``, for the report's canary-audit section."""
    from .errors import DataError

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


def _run_report(args: argparse.Namespace) -> int:
    from .io import read_csv
    from .pair import report_pair

    _check_outputs([args.real, args.synthetic], report=args.output)
    real = read_csv(args.real, encoding=args.encoding, trust_quotes=args.trust_quotes)
    synthetic = read_csv(args.synthetic, encoding=args.encoding, trust_quotes=args.trust_quotes)
    run_dir = report_pair(real, synthetic, args.output, text_columns=args.text_columns,
                          conditioning_columns=args.conditioning_columns, embedding=args.embedding,
                          audit=_read_audit_result(args.audit_result))
    if not args.quiet:
        print(f"synthtext: wrote the report to {run_dir / 'report.html'}", file=sys.stderr)
    return EXIT_OK


def _run_audit(args: argparse.Namespace) -> int:
    from .audit import audit
    from .io import STDOUT, read_csv, write_text

    if args.output:
        _check_outputs([args.csv], args.output)
    df = read_csv(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
    _warn_if_not_private(args.epsilon)
    show = not args.quiet
    train = _train_config(args, **({"batch_size": args.batch_size} if args.batch_size is not None else {}))
    result = audit(df, args.text_columns, epsilon=args.epsilon, delta=args.delta, canaries=args.canaries,
                   column=args.column, conditioning_columns=args.conditioning_columns, model=args.model,
                   model_size=args.model_size, train=train, privacy=_privacy_config(args),
                   canary_digits=args.canary_digits, seed=args.seed, progress=show,
                   redact_entities=args.redact_entities)
    if args.output:
        write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n", args.output)
    if not args.quiet:  # the summary keeps out of the JSON when that goes to stdout
        print(result.summary(), file=sys.stderr if args.output == STDOUT else sys.stdout)
        if args.output and args.output != STDOUT:
            print(f"synthtext: wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def _run_scan(args: argparse.Namespace) -> int:
    from . import pii
    from .io import STDOUT, read_csv, write_text

    if args.output == STDOUT:
        args.output = None
    if args.output:
        _check_outputs([args.csv], args.output)
    df = read_csv(args.csv, encoding=args.encoding, trust_quotes=args.trust_quotes)
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
    from .pii import redacted_examples, redaction_counts

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad arguments
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals: main thread only
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    if previous is None:  # a handler not installed from Python: restore the default
        previous = signal.SIG_DFL
    try:
        return args.handler(args)
    except SynthtextError as exc:
        print(f"synthtext: error: {cli_message(exc, args)}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        print("synthtext: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("synthtext: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `synthtext ... -o - | head`: the reader left; exit as a process killed by SIGPIPE
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one message, exit 1
        if os.environ.get("SYNTHTEXT_DEBUG"):
            traceback.print_exc()
        print(f"synthtext: unexpected error: {type(exc).__name__}: {exc}\n"
              "This is a bug in synthtext or its dependencies; run again with SYNTHTEXT_DEBUG=1 for the "
              "traceback and report it.", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())

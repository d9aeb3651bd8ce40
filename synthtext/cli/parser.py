"""The ``synthtext`` command line: subcommands, their options, and the argument types that refuse a bad
value while parsing (before any work: training takes hours)."""

from __future__ import annotations

import argparse
import math

from ..config import MAX_ROWS
from .commands import run_audit, run_fit, run_plan, run_report, run_sample, run_scan, run_synthesize
from .exits import EXIT_USAGE


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
    from .._version import __version__

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
    scan.set_defaults(handler=run_scan)

    synth = commands.add_parser(
        "synthesize", help="make a synthetic copy of a CSV or Parquet file (fit and sample in one go)",
        description=("Learn IN and write a synthetic copy with the same columns to OUT (CSV, or Parquet when "
                     "its name ends in .parquet or .pq): PII in the text is replaced by placeholders, a "
                     "language model is fine-tuned under differential privacy on each text column, the other "
                     "columns are synthesized with SDV (or kept), and each row's text is generated conditioned on "
                     "the row."),
        epilog="Example:\n  synthtext synthesize examples/reviews_500.csv -o synthetic.csv --epsilon 8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_synthesize_options(synth, output_required=True)
    synth.add_argument("--dry-run", action="store_true",
                       help="print the plan, as 'synthtext plan' does, and stop: nothing is trained or written "
                            "(for JSON: synthtext plan --format json)")
    synth.set_defaults(handler=run_synthesize)

    plan = commands.add_parser(
        "plan", help="say what 'synthesize' would do and roughly how long it takes, without training",
        description=("Print what 'synthtext synthesize' with the same options would do: the columns, their roles "
                     "and protection, the PII types redacted, the privacy plan (noise multiplier, sample rate, "
                     "steps, epsilon and delta per model and for the table), the warnings, and an estimate of "
                     "each stage's wall time on this machine from short timed probes (a few training steps on a "
                     "handful of rows and one short generation batch; the probe's model is thrown away). The "
                     "plan is computed by the same code as the run, which then uses exactly this plan. "
                     "Same options as synthesize; -o is optional (checked, not written)."),
        epilog=("Examples:\n  synthtext plan examples/reviews_500.csv --text-columns 'Review Text'\n"
                "  synthtext plan examples/reviews_500.csv --format json --no-probe"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_synthesize_options(plan, output_required=False)
    plan.add_argument("--format", choices=("table", "json"), default="table",
                      help="table for people (default), json for machines")
    plan.add_argument("--no-probe", action="store_true",
                      help="skip the timed probes: the plan without the time estimate (seconds instead of a minute)")
    plan.set_defaults(handler=run_plan)

    fit = commands.add_parser("fit", help="learn a CSV or Parquet file and save the synthesizer",
                              description="Learn IN and save the fitted synthesizer to DIR (JSON and "
                                          "safetensors only; no training text).")
    fit.add_argument("csv", metavar="IN", help="the table to learn (.csv, or .parquet/.pq)")
    fit.add_argument("--save-model", required=True, metavar="DIR", help="where to save the synthesizer")
    _add_fit_options(fit)
    fit.set_defaults(handler=run_fit)

    sample = commands.add_parser("sample", help="write synthetic rows from a saved synthesizer",
                                 description="Write N synthetic rows from a synthesizer saved by fit.")
    sample.add_argument("model_dir", metavar="DIR", help="a directory written by 'synthtext fit'")
    sample.add_argument("--rows", type=_ROWS, default=None, metavar="N", help="rows to write (default: as many as fitted)")
    sample.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write them ('-': stdout)")
    sample.add_argument("--conditions", metavar="ROWS.csv",
                        help="your own rows for the conditioning columns: one synthetic row per row (the other "
                             "structured columns are drawn as without --conditions)")
    sample.add_argument("--encoding", default="utf-8", help="text encoding of ROWS.csv (default: utf-8)")
    _add_trust_quotes(sample)
    sample.add_argument("--seed", type=_SEED, default=None, help="sampling seed (default: the fitted one)")
    _add_sampling_options(sample, "the fitted synthesizer's")
    _add_formula_option(sample)
    sample.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    sample.set_defaults(handler=run_sample)

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
    report.set_defaults(handler=run_report)

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
    audit.add_argument("csv", metavar="IN", help="the table to audit training on (.csv, or .parquet/.pq)")
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
    audit.add_argument("--structured", choices=("sdv", "keep", "dp"), default="sdv",
                       help="dp: audit the whole-row model of 'synthesize --structured dp' (canaries are whole "
                            "rows); sdv and keep train the same text model, which is audited")
    _add_unit_options(audit)
    audit.add_argument("--epochs", type=_count(1), default=None, help="training epochs (default 3)")
    audit.add_argument("--batch-size", type=_count(1), default=None, help="training batch size (default 64)")
    audit.add_argument("--seed", type=_SEED, default=0, help="seed for canaries and training (default 0)")
    _add_max_length(audit)
    _add_privacy_options(audit)
    _add_redact_option(audit)
    audit.add_argument("-o", "--output", metavar="audit.json", help="write the full result as JSON here ('-': stdout)")
    audit.add_argument("--encoding", default="utf-8", help="text encoding of a CSV input (default: utf-8)")
    _add_trust_quotes(audit)
    audit.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    audit.set_defaults(handler=run_audit)
    for command in commands.choices.values():  # so error advice names only flags this command has
        command.set_defaults(flags=frozenset(o for action in command._actions for o in action.option_strings))
    return parser


def _add_synthesize_options(command: argparse.ArgumentParser, *, output_required: bool) -> None:
    """What 'synthesize' takes, so that 'plan' takes the same command line."""
    command.add_argument("csv", metavar="IN", help="the table to learn (.csv, or .parquet/.pq)")
    command.add_argument("-o", "--output", required=output_required, metavar="OUT",
                         help="where to write the synthetic table ('-': stdout, the summary goes to stderr)")
    command.add_argument("--rows", type=_ROWS, default=None, metavar="N",
                         help="rows to write (default: as many as IN)")
    command.add_argument("--save-model", metavar="DIR", help="also save the fitted synthesizer here")
    _add_formula_option(command)
    command.add_argument("--report", metavar="DIR", default=None,
                         help="evaluate the result and write the privacy audit report to DIR/<run-id>/ "
                              "(report.html + report.json), e.g. --report privacy_reports")
    command.add_argument("--audit-result", metavar="AUDIT.json", default=None,
                         help="a 'synthtext audit -o AUDIT.json' result to include in the report")
    _add_fit_options(command)


def _add_formula_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--neutralize-formulas", action=argparse.BooleanOptionalAction, default=True,
        help="prefix ' to generated text cells that start with = + - @ tab or CR, so spreadsheet programs "
             "show them instead of running them as formulas (OWASP 'CSV injection'; default: on). Only the "
             "generated text columns: the other columns keep their values (-3, +1 555 0100). "
             "--no-neutralize-formulas writes the text exactly as generated")


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
    _add_sampling_options(command)
    _add_max_length(command)
    command.add_argument("--structured", choices=("sdv", "keep", "dp"), default="sdv",
                         help="sdv: synthesize the other columns with SDV (not DP); keep: keep them as given; dp: "
                              "one DP model writes whole rows, so the epsilon covers every column but the PII ones")
    _add_unit_options(command)
    command.add_argument("--public-domain", type=_public_domain, action="append", default=None,
                         metavar="COLUMN=LOW..HIGH|COLUMN=A,B,C",
                         help="--structured dp: a range or category list you declare public; generated rows outside "
                              "it are drawn again (repeat for several columns; never read from the data)")
    command.add_argument("--epochs", type=_count(1), default=None, help="training epochs (default 3)")
    command.add_argument("--holdout", type=_share, default=0.1, metavar="SHARE",
                         help="share of rows kept out of training to measure leakage against (0 to 0.5, default 0.1)")
    command.add_argument("--seed", type=_SEED, default=0, help="seed for training and sampling (default 0)")
    _add_privacy_options(command)
    _add_redact_option(command)
    command.add_argument("--encoding", default="utf-8", help="text encoding of a CSV input (default: utf-8)")
    _add_trust_quotes(command)
    command.add_argument("--overwrite", action="store_true", help="replace an existing --save-model directory")
    command.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")


SAMPLING_OPTIONS = ("temperature", "min_p", "top_p", "no_repeat_ngram")
"""The sampling settings the command line sets (``TextSynthesizer``'s keywords; added by :func:`_add_sampling_options`)."""


def _add_sampling_options(command: argparse.ArgumentParser, default: str | None = None) -> None:
    """How texts are sampled (post-processing of the trained model: no privacy cost); unset = ``default``'s
    setting, or the library's default."""
    from ..config import DEFAULT_MIN_P, DEFAULT_NO_REPEAT_NGRAM, DEFAULT_TOP_P

    def said(value) -> str:
        return f"default: {default}" if default else f"default {value}"

    command.add_argument("--temperature", type=_sampling("temperature", float), default=None, metavar="T",
                         help=f"softmax temperature, 0 = greedy ({said(1.0)})")
    command.add_argument("--min-p", type=_sampling("min_p", float), default=None, metavar="P",
                         help=f"drop tokens less likely than P times the most likely one, 0 = off "
                              f"({said(DEFAULT_MIN_P)})")
    command.add_argument("--top-p", type=_sampling("top_p", float), default=None, metavar="P",
                         help=f"nucleus sampling over what min-p left, 1 = off ({said(DEFAULT_TOP_P)})")
    command.add_argument("--no-repeat-ngram", type=_sampling("no_repeat_ngram", int), default=None, metavar="N",
                         help=f"never repeat a token N-gram within a text, 0 = off "
                              f"({said(f'{DEFAULT_NO_REPEAT_NGRAM}; off with --model builtin')})")


def _sampling(name: str, kind: type):
    """An argparse type for the sampling setting ``name``, checked by SamplingConfig (its rule is the one rule)."""
    from ..config import SamplingConfig
    from ..errors import ConfigError

    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {value!r}") from None
        try:
            SamplingConfig(**{name: number})
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return number
    return parse


def _public_domain(value: str) -> tuple:
    """COLUMN=LOW..HIGH (numbers) or COLUMN=A,B,C (categories)."""
    column, sep, domain = value.partition("=")
    if not sep or not column.strip() or not domain.strip():
        raise argparse.ArgumentTypeError(f"{value!r}: give COLUMN=LOW..HIGH or COLUMN=A,B,C")
    low, dots, high = domain.partition("..")
    if dots:
        try:
            bounds = tuple(int(v) if v.strip().lstrip("-").isdigit() else float(v) for v in (low, high))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r}: LOW..HIGH must be two numbers") from None
        return column.strip(), bounds
    categories = [c.strip() for c in domain.split(",") if c.strip()]
    return column.strip(), categories


def _add_unit_options(command: argparse.ArgumentParser) -> None:
    from ..units import DEFAULT_MAX_ROWS_PER_UNIT

    command.add_argument("--privacy-unit", metavar="COLUMN", default=None,
                         help="privacy per person: all rows sharing a value of COLUMN (a customer id, an e-mail) are "
                              "one unit, one DP record, and the epsilon holds per unit (needs --structured dp)")
    command.add_argument("--max-rows-per-unit", type=_count(1), default=DEFAULT_MAX_ROWS_PER_UNIT, metavar="N",
                         help=f"--privacy-unit: at most N rows of a unit, drawn at random, make its training record "
                              f"(default {DEFAULT_MAX_ROWS_PER_UNIT})")


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
    from ..config import PrivacyConfig
    from ..errors import ConfigError

    try:
        PrivacyConfig(**{name: value})
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.render(frozenset({"--epsilon", "--delta"}))) from None
    return value

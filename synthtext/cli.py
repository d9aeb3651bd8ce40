"""The ``synthtext`` command.

Exit codes: 0 success; 2 usage or data errors (one message on stderr, no traceback); 1 unexpected
failure (message on stderr; ``SYNTHTEXT_DEBUG=1`` shows the traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from typing import Sequence

from .errors import SynthtextError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _comma_list(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty column name in {value!r}; use --columns a,b")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthtext",
        description="Privacy-safe synthetic copies of tables with free-text columns.",
        epilog="Exit codes: 0 ok, 2 usage or data error, 1 unexpected failure.",
    )
    from . import __version__

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
    scan.add_argument("-o", "--output", metavar="OUT", help="write the result here instead of stdout")
    scan.add_argument("--encoding", default="utf-8", help="text encoding of FILE.csv (default: utf-8)")
    scan.add_argument("--threshold", type=float, default=None, metavar="SCORE",
                      help="drop spans scoring below this (0-1, default 0.4)")
    scan.add_argument("--jobs", type=int, default=None, metavar="N",
                      help="worker processes (default: the number of CPU cores, at most 8)")
    scan.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    scan.set_defaults(handler=_run_scan)
    return parser


def _run_scan(args: argparse.Namespace) -> int:
    from . import pii
    from .io import read_csv, write_text

    df = read_csv(args.csv, encoding=args.encoding)
    threshold = pii.DEFAULT_SCORE_THRESHOLD if args.threshold is None else args.threshold
    show_progress = not args.quiet and sys.stderr.isatty()
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
    """A short report for people: counts per column and type, redacted examples, PII columns."""
    from .pii import redacted_examples

    lines = [f"Scanned {len(result.text_columns)} text column(s) in {result.n_rows:,} rows "
             f"with {result.engine}."]
    if not result.text_columns:
        lines.append("No text columns found (a text column holds strings of 3+ words on average, mostly "
                     "distinct); name them with --columns.")
    counts, rows_with = result.counts(), result.rows_with_pii()
    for column in result.text_columns:
        total = sum(counts[column].values())
        lines += ["", f"Column {column!r}: {total:,} PII span(s) in {rows_with[column]:,} of "
                      f"{result.n_rows:,} rows"]
        width = max((len(t) for t in counts[column]), default=0)
        lines += [f"  {entity:<{width}}  {n:>7,}" for entity, n in counts[column].items()]
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad arguments
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    try:
        return args.handler(args)
    except SynthtextError as exc:
        print(f"synthtext: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("synthtext: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one message, exit 1
        if os.environ.get("SYNTHTEXT_DEBUG"):
            traceback.print_exc()
        print(f"synthtext: unexpected error: {type(exc).__name__}: {exc}\n"
              "This is a bug in synthtext or its dependencies; run again with SYNTHTEXT_DEBUG=1 for the "
              "traceback and report it.", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())

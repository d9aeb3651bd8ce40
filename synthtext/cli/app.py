"""``main``: parse, run the command, and turn what it raises into one message and an exit code
(:mod:`synthtext.cli` lists them); SIGTERM is handled as Ctrl-C is."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from typing import Sequence

from ..errors import SynthtextError
from .exits import EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE
from .parser import build_parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so the clean-up that Ctrl-C runs (staging directories,
    half-written outputs) runs for it too."""


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one clean-up, not one per repeated signal
    raise Terminated()


def cli_message(exc: SynthtextError, args: argparse.Namespace) -> str:
    """The error's advice with the flags of the command that raised it (see :func:`synthtext.errors.option`)."""
    return exc.render(getattr(args, "flags", frozenset()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad arguments
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals: main thread only
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    if previous is None:  # a handler not installed from Python: restore the default
        previous = signal.SIG_DFL
    from ..distributed import process_group_from_env, world

    group = contextlib.ExitStack()  # closed last, so the messages below still know the process's rank
    try:
        group.enter_context(process_group_from_env())  # under torchrun: one process of several
        return args.handler(args)
    except SynthtextError as exc:
        if world()[0] == 0:  # the same input fails alike on every rank: one message, from rank 0
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
        rank, size = world()
        where = f" (process {rank} of {size})" if size > 1 else ""
        print(f"synthtext: unexpected error{where}: {type(exc).__name__}: {exc}\n"
              "This is a bug in synthtext or its dependencies; run again with SYNTHTEXT_DEBUG=1 for the "
              "traceback and report it.", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        group.close()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)

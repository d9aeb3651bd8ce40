"""The ``synthtext`` command.

Exit codes: 0 success; 2 usage or data errors (one message on stderr, no traceback); 1 unexpected
failure (message on stderr; ``SYNTHTEXT_DEBUG=1`` shows the traceback); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM: ``kill``, ``docker stop``, systemd, SLURM); 141 the reader of ``-o -`` left
(``| head``), as for a process killed by SIGPIPE. Interrupted or terminated, a run
leaves all of its outputs or none, and no staging directory.

``-o -`` writes the result to standard output; everything else (progress, summary) goes to stderr.

Inside: ``parser`` (subcommands, options, argument types), ``commands`` (what each subcommand does),
``app`` (:func:`main`: errors, signals, exit codes), ``exits`` (the codes).
"""

from .app import main
from .exits import EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from .parser import build_parser

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TERMINATED", "EXIT_USAGE",
           "build_parser", "main"]

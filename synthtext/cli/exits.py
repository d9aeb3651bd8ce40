"""The ``synthtext`` command's exit codes (:mod:`synthtext.cli` says when each is used)."""

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 143, 141

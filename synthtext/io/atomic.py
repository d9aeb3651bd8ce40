"""Where an output goes and how it is replaced: atomically for files and directories.

:func:`output_kind` tells a file (replaced atomically, through a symlink: its target is replaced) from
standard output (``-``) and from a character device, FIFO or socket (written through directly: replacing
``/dev/null`` or a named pipe by a regular file would break the machine or the reader). :func:`atomic_output`
is the text handle :func:`~synthtext.io.write.write_csv` and :func:`~synthtext.io.write.write_text` write
through, :func:`check_writable` the check the CLI makes before hours of work, and :func:`atomic_directory`
the staging directory the saved synthesizer and the report are written in. A location that cannot be
written raises :class:`~synthtext.errors.DataError`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, TextIO

from synthtext.errors import DataError

STDOUT = "-"
"""The output path that means standard output (``-o -``)."""


def output_kind(path: str | os.PathLike[str]) -> str:
    """How :func:`atomic_output` writes ``path``: ``"stdout"`` for ``-``; ``"stream"`` for a character
    device, FIFO or socket (``/dev/null``, a named pipe), written through directly since replacing it
    by a regular file would break whoever reads it; else ``"file"``, replaced atomically (through a
    symlink: the link stays and its target is replaced)."""
    if str(path) == STDOUT:
        return "stdout"
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except OSError:
        return "file"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "stream"
    return "file"


def _resolved(path: str | os.PathLike[str]) -> Path:
    """``path`` with symlinks resolved, so a rename replaces the link's target, not the link."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # realpath would hand back a point in the loop, to be replaced
            raise DataError(f"cannot write to {path}: its symbolic links form a loop. Fix the links or choose "
                            "another output path.") from exc
    return Path(os.path.realpath(path))


def _stdout_fd() -> int:
    """Standard output's file descriptor, or DataError when there is none (closed: ``>&-``)."""
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError) as exc:
        if sys.stdout is not None and hasattr(sys.stdout, "write") and not hasattr(sys.stdout, "buffer"):
            return -1  # a text-only stand-in (io.StringIO in tests): writable all the same
        raise DataError("cannot write to stdout ('-'): standard output is closed. Give a file path with -o.") from exc


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[TextIO | BinaryIO]:
    """A UTF-8 text handle whose content replaces ``path`` only if the block succeeds.

    The handle writes to a temporary file in the target's directory, which is flushed, fsynced and
    renamed over the target at the end; on any error it is removed and the target is untouched.
    A symlink is followed (its target is replaced). ``-`` writes to standard output and a character
    device, FIFO or socket is written directly (see :func:`output_kind`): those cannot be atomic.
    An unwritable location raises :class:`DataError` before anything is written.

    ``binary=True`` gives a binary handle instead (for Parquet), with the same guarantees; standard
    output takes text only, so ``-`` is then a :class:`DataError`.
    """
    kind = output_kind(path)
    if kind == "stdout":
        if binary:
            raise DataError("cannot write a binary file (Parquet) to stdout ('-'): give a file path with -o, "
                            "or write CSV to stdout.")
        with _stdout_handle() as handle:
            yield handle
        return
    target = _resolved(path)
    if kind == "stream":
        with _stream_handle(target, binary=binary) as handle:
            yield handle
        return
    directory = _check_target(target)
    try:
        mode = _new_file_mode(target)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".synthtext-", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write to {path}: {exc.strerror or exc}.") from exc
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise DataError(f"cannot write to {path}: {exc.strerror or exc}.") from exc
        raise
    fsync_directory(directory)


@contextlib.contextmanager
def _stdout_handle() -> Iterator[TextIO]:
    """UTF-8, untranslated line ends, on standard output (left open)."""
    _stdout_fd()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stand-in (e.g. io.StringIO): write to it as it is
        yield sys.stdout
        sys.stdout.flush()
        return
    sys.stdout.flush()
    handle = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    try:
        yield handle
        handle.flush()
    except BrokenPipeError:
        raise  # the reader left (`| head`): the CLI exits as for SIGPIPE
    except OSError as exc:
        raise DataError(f"cannot write to stdout: {exc.strerror or exc}.") from exc
    finally:
        with contextlib.suppress(ValueError, OSError):
            handle.detach()  # leaves sys.stdout's buffer open


@contextlib.contextmanager
def _stream_handle(target: Path, *, binary: bool = False) -> Iterator[TextIO | BinaryIO]:
    """Write straight into a device, FIFO (blocks until a reader opens it) or listening socket."""
    text = {} if binary else {"encoding": "utf-8", "newline": ""}
    try:
        if stat.S_ISSOCK(os.stat(target).st_mode):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(str(target))
            handle = connection.makefile("wb" if binary else "w", **text)
            connection.close()  # the file object keeps the connection open until it is closed
        else:
            handle = open(target, "wb" if binary else "w", **text)
    except OSError as exc:
        raise DataError(f"cannot write to {target}: {exc.strerror or exc}.") from exc
    try:
        with handle:
            yield handle
    except OSError as exc:
        raise DataError(f"cannot write to {target}: {exc.strerror or exc}.") from exc


def _check_target(target: Path) -> Path:
    """The directory ``target`` will be written in, or DataError when it cannot be a file there."""
    directory = target.parent
    if not directory.is_dir():
        raise DataError(
            f"cannot write to {target}: directory {directory} does not exist. "
            "Create it first or choose another output path."
        )
    if target.is_dir():
        raise DataError(f"cannot write to {target}: it is a directory. Give a file name.")
    return directory


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`DataError` now if :func:`write_csv` / :func:`write_text` could not write
    ``path``: call it before hours of work, not after. Creates and removes a temporary file next
    to ``path`` (the only portable test: mode bits say nothing to root or about read-only mounts);
    ``path`` itself is not touched, nor opened when it is a device, FIFO or socket (opening a FIFO
    would wait for, or take, its reader). Returns ``path`` as a Path.
    """
    kind = output_kind(path)
    if kind == "stdout":
        _stdout_fd()
        return Path(path)
    target = _resolved(path)
    if kind == "stream":
        if not os.access(target, os.W_OK):
            raise DataError(f"cannot write to {path}: permission denied.")
        return Path(path)
    directory = _check_target(target)
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".synthtext-", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write to {path}: {exc.strerror or exc}.") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(temp)
    return Path(path)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, replace: bool = False,
                     prefix: str | None = None) -> Iterator[Path]:
    """A staging directory next to ``target`` that becomes ``target`` with one rename if the block succeeds.

    At the end every file in it is fsynced and the directory gets the mode of any new directory (mkdtemp
    makes it 0700); on any error (Ctrl-C and SIGTERM included) it is removed and ``target`` is untouched.
    ``replace=True`` removes an existing ``target`` just before the rename. Used by the saved synthesizer
    and the report, so both leave all of a directory or none of it.
    """
    target = Path(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=prefix or f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror or exc} in {target.parent}.") from exc
    try:
        yield staging
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        os.chmod(staging, 0o777 & ~current_umask())
        if replace and target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise DataError(f"cannot write {target}: {exc.strerror or exc}.") from exc
        raise
    fsync_directory(target.parent)


def _new_file_mode(target: Path) -> int:
    """Permissions for the new file: the old file's, else what open() would give.

    mkstemp creates files readable by their owner only (0600).
    """
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(target).st_mode)
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask (also used by the report writer for its directories)."""
    mask = os.umask(0o022)  # the only portable way to read the umask is to set it
    os.umask(mask)
    return mask


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable; not possible on every platform (e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


"""Exceptions raised by synthtext.

Every error a user can cause derives from :class:`SynthtextError`; its message says
what went wrong and what to do. The CLI prints the message (no traceback) and exits 2.

Advice names a setting the way the caller can set it: a message built with :func:`option` reads
``epsilon=None`` from Python and ``--epsilon none`` from the command that raised it
(:meth:`SynthtextError.render`); where that command has no such flag it names the Python argument
and says so.
"""

import re

_OPTION = re.compile("\x1e([^\x1e\x1f]*)\x1f([^\x1e\x1f]*)\x1e")


def option(python: str, flag: str | None = None) -> str:
    """A setting named in an error message: ``python`` (e.g. ``"epsilon=None"``) as Python code, ``flag``
    (e.g. ``"--epsilon none"``) on the command line; ``None`` when no command has a flag for it."""
    return f"\x1e{python}\x1f{flag or ''}\x1e"


class SynthtextError(Exception):
    """Base class for every error synthtext raises on purpose."""

    def __str__(self) -> str:
        return self.render()

    def render(self, flags: frozenset[str] | None = None) -> str:
        """The message for Python callers (``flags=None``) or for a command with these option strings."""
        text = super().__str__()

        def name(match: re.Match) -> str:
            python, flag = match.groups()
            if flags is None:
                return python
            if flag and flag.split()[0] in flags:
                return flag
            return f"{python} (from Python; this command has no option for it)"

        return _OPTION.sub(name, text)


class ConfigError(SynthtextError, ValueError):
    """A configuration value is invalid; the message names the field."""


class DataError(SynthtextError, ValueError):
    """The input data cannot be used as given (unreadable CSV, unknown column, ...)."""


class NotFittedError(SynthtextError, RuntimeError):
    """A method that needs a fitted synthesizer was called before ``fit``."""


class PrivacyBudgetError(SynthtextError, ValueError):
    """The requested privacy budget cannot be met with the data given."""


class ModelError(SynthtextError, RuntimeError):
    """A base model or saved synthesizer cannot be loaded."""

"""Exceptions raised by synthtext.

Every error a user can cause derives from :class:`SynthtextError`; its message says
what went wrong and what to do. The CLI prints the message (no traceback) and exits 2.
"""


class SynthtextError(Exception):
    """Base class for every error synthtext raises on purpose."""


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

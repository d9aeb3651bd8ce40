"""synthtext: privacy-safe synthetic copies of tables with free-text columns.

The public surface is what ``__all__`` lists (tests pin it); everything else may change.
"""

from .errors import (
    ConfigError,
    DataError,
    ModelError,
    NotFittedError,
    PrivacyBudgetError,
    SynthtextError,
)
from .config import PrivacyConfig, PrivacyLedger, TrainConfig
from .io import read_csv, read_table, write_csv, write_table
from .pii import PiiScanResult, PiiSpan, StructuredPiiColumn, Surrogates, redact, scan_pii
from .synthesizer import TextSynthesizer, synthesize
from .audit import AuditResult, audit  # light: torch/scipy load inside audit()
from .metrics import Evaluation, evaluate  # light: scikit-learn/scipy load inside evaluate()

from ._version import __version__

__all__ = [
    "AuditResult",
    "ConfigError",
    "DataError",
    "Evaluation",
    "ModelError",
    "NotFittedError",
    "PiiScanResult",
    "PiiSpan",
    "PrivacyBudgetError",
    "PrivacyConfig",
    "PrivacyLedger",
    "StructuredPiiColumn",
    "Surrogates",
    "SynthtextError",
    "TextSynthesizer",
    "TrainConfig",
    "__version__",
    "audit",
    "evaluate",
    "read_csv",
    "read_table",
    "redact",
    "scan_pii",
    "synthesize",
    "write_csv",
    "write_table",
]

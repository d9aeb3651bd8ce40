import subprocess
import sys

import synthtext


def test_public_surface_is_pinned():
    assert set(synthtext.__all__) == {
        "ConfigError", "DataError", "ModelError", "NotFittedError", "PiiScanResult", "PiiSpan",
        "PrivacyBudgetError", "PrivacyConfig", "PrivacyLedger", "StructuredPiiColumn", "Surrogates",
        "SynthtextError", "TextSynthesizer", "TrainConfig", "__version__", "read_csv", "redact",
        "scan_pii", "synthesize", "write_csv", "read_table", "write_table", "evaluate", "Evaluation", "audit", "AuditResult",
    }
    for name in synthtext.__all__:
        assert hasattr(synthtext, name), name


def test_import_is_light():
    """`import synthtext` (and so `synthtext --help`) must not load torch, presidio, SDV, spaCy or scikit-learn."""
    code = ("import sys, synthtext; heavy = [m for m in ('torch', 'presidio_analyzer', 'opacus', 'sdv', "
            "'spacy', 'transformers', 'sklearn') if m in sys.modules]; print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_audit_stays_the_function_after_its_module_is_imported():
    """synthtext.audit is the function, even once the synthtext.audit module has been imported."""
    code = ("import sys, synthtext, synthtext.audit, synthtext.cli; from synthtext.audit import AuditResult; "
            "print(callable(synthtext.audit), synthtext.audit is sys.modules['synthtext.audit'].audit)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


def test_the_version_is_the_one_pyproject_declares():
    import tomllib
    from pathlib import Path

    import synthtext

    declared = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["version"]
    assert synthtext.__version__ == declared

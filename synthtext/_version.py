"""The package version, in a module of its own so that modules can read it without importing the package face
(keep it equal to pyproject.toml's; tests/test_public_api.py checks)."""

__version__ = "0.1.0"

"""Lossless CSV in, CSV out; atomic writes.

:mod:`~synthtext.io.read` reads a CSV file without losing anything (every rule in its docstring) and
turns every way a file can be wrong into one :class:`~synthtext.errors.DataError`;
:mod:`~synthtext.io.write` writes a table back the same way (formula neutralisation on request);
:mod:`~synthtext.io.atomic` says where an output goes (file, standard output, device, FIFO, socket)
and replaces files and directories atomically.
"""

from .atomic import STDOUT, atomic_directory, atomic_output, check_writable, output_kind
from .read import read_csv
from .write import neutralize_formula, write_csv, write_text

__all__ = ["read_csv", "write_csv", "write_text", "neutralize_formula", "check_writable", "output_kind", "STDOUT",
           "atomic_output", "atomic_directory"]

"""Lossless CSV and Parquet in and out; atomic writes.

:mod:`~synthtext.io.read` reads a CSV file without losing anything (every rule in its docstring) and
turns every way a file can be wrong into one :class:`~synthtext.errors.DataError`;
:mod:`~synthtext.io.write` writes a table back the same way (formula neutralisation on request);
:mod:`~synthtext.io.parquet` reads and writes Parquet with its dtypes (pyarrow);
:func:`read_table` / :func:`write_table` (:mod:`~synthtext.io.table`) choose the format from the path's
name (``.parquet`` or ``.pq`` is Parquet, anything else and ``-`` is CSV);
:mod:`~synthtext.io.atomic` says where an output goes (file, standard output, device, FIFO, socket)
and replaces files and directories atomically.
"""

from .atomic import STDOUT, atomic_directory, atomic_output, check_writable, output_kind
from .parquet import PARQUET_SUFFIXES, is_parquet_path, read_parquet, write_parquet
from .read import read_csv
from .table import read_table, write_table
from .write import neutralize_formula, write_csv, write_text

__all__ = ["read_csv", "write_csv", "write_text", "neutralize_formula", "check_writable", "output_kind", "STDOUT",
           "atomic_output", "atomic_directory", "read_table", "write_table", "read_parquet", "write_parquet",
           "is_parquet_path", "PARQUET_SUFFIXES"]

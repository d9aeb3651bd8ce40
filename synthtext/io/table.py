"""One entry point for tables in either format: :func:`read_table` and :func:`write_table`.

The format follows the path's name: a name ending in ``.parquet`` or ``.pq`` (any letter case) is
Parquet (:mod:`~synthtext.io.parquet`); every other path is CSV (:mod:`~synthtext.io.read`,
:mod:`~synthtext.io.write`), including ``-``, standard output, which cannot take a binary format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from synthtext.errors import DataError

from .parquet import MAGIC, PARQUET_SUFFIXES, is_parquet_path, read_parquet, write_parquet
from .read import read_csv
from .write import write_csv


def read_table(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", infer_types: bool = True,
    trust_quotes: bool = False,
) -> pd.DataFrame:
    """Read ``path`` as Parquet when its name ends in ``.parquet`` or ``.pq``, else as CSV.

    ``encoding``, ``infer_types`` and ``trust_quotes`` are :func:`~synthtext.io.read.read_csv`'s; a
    Parquet file stores its own types and UTF-8 text, so they do not apply to it.

    Raises:
        DataError: as :func:`~synthtext.io.parquet.read_parquet` or :func:`~synthtext.io.read.read_csv`
            does; a Parquet file whose name does not say so is refused with a message naming the fix.
    """
    if is_parquet_path(path):
        return read_parquet(path)
    _refuse_unnamed_parquet(path)
    return read_csv(path, encoding=encoding, infer_types=infer_types, trust_quotes=trust_quotes)


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    neutralize_formulas: bool | Iterable[Any] = False,
) -> Path:
    """Write ``df`` to ``path`` atomically: Parquet when its name ends in ``.parquet`` or ``.pq``, else
    CSV (``-``, standard output, is always CSV). ``neutralize_formulas`` as in
    :func:`~synthtext.io.write.write_csv`, for both formats. Returns the path."""
    if is_parquet_path(path):
        return write_parquet(df, path, neutralize_formulas=neutralize_formulas)
    return write_csv(df, path, neutralize_formulas=neutralize_formulas)


def _refuse_unnamed_parquet(path: str | os.PathLike[str]) -> None:
    """A Parquet file named ``.csv`` (or anything else): say so, rather than the CSV reader's 'binary'."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC))
    except OSError:
        return  # read_csv words every way opening it can fail
    if head == MAGIC:
        raise DataError(f"{path} is a Parquet file, but its name does not end in {' or '.join(PARQUET_SUFFIXES)}, "
                        "so it would be read as CSV. Rename it (e.g. to data.parquet) to read it as Parquet.")

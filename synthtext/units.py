"""Privacy per person (``privacy_unit="customer_id"``): every row that shares a value of the unit column is
one unit, and one unit is one DP training record.

DP-SGD protects one training record. With one record per row, a customer with twenty complaints is
protected twenty times more weakly than one with a single complaint (group privacy). Here each unit
becomes one record: at most ``max_rows_per_unit`` of its rows, chosen at random with the seed (never by
content), written one per line in one sequence (:func:`synthtext.whole_row.encode_units`). Poisson
sampling, clipping and the accountant then all work per unit, and the ledger says "per <column>".

The holdout and the membership attack split by unit; the small-data refusal counts units. The unit
column itself is never learned: the output gets one surrogate per synthetic unit, and how many rows a
synthetic unit has is whatever the DP model writes.

Rows whose unit value is missing are one unit each (nothing says they belong together): if they belong to
people who also have other rows, those people are protected more weakly, and the report says how many
there are. A unit column whose every value is distinct is the row itself: the run proceeds per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, option

DEFAULT_MAX_ROWS_PER_UNIT = 4
"""Rows of a unit in its training record at most. The clipping bound limits what one unit moves the model
whatever its size, so more rows per unit mean longer records (training cost grows with them), not more
privacy loss; rows beyond the cap are not trained on (the report counts them)."""


@dataclass
class Units:
    """The units of a table: which unit each row belongs to."""

    column: str
    of_row: np.ndarray
    """Unit index of every row (0 .. n_units - 1), in the order units first appear."""
    n_units: int
    rows_without_value: int
    """Rows whose unit value was missing: one unit each."""
    members: list = field(default_factory=list)
    """Row positions of each unit, in table order."""

    @classmethod
    def of(cls, df: pd.DataFrame, column: Any) -> "Units":
        values = df[column]
        missing = values.isna().to_numpy()
        codes, _ = pd.factorize(values, sort=False)  # missing -> -1
        codes = codes.astype(np.int64)
        n_known = int(codes.max()) + 1 if (codes >= 0).any() else 0
        codes[missing] = n_known + np.arange(int(missing.sum()))  # each row without a value is its own unit
        n_units = n_known + int(missing.sum())
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(n_units + 1))
        members = [order[bounds[u]:bounds[u + 1]] for u in range(n_units)]
        return cls(column=str(column), of_row=codes, n_units=n_units, rows_without_value=int(missing.sum()),
                   members=members)

    def rows_of(self, units: Sequence[int]) -> np.ndarray:
        """Row positions (sorted) of these units."""
        if len(units) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([self.members[u] for u in units]))


def find_units(df: pd.DataFrame, column: Any, *, text_columns: Sequence, conditioning_columns: Sequence | None,
               ) -> Units | None:
    """The units of ``df`` by ``column``, or None when every row is its own unit (then the run is per row);
    a clear refusal for a column that cannot be a unit."""
    _check_column(df, column)
    if column in text_columns:
        raise ConfigError(f"{option('privacy_unit', '--privacy-unit')}: {column!r} is a text column; the unit is "
                          "the column that says whose row it is (a customer id, an e-mail, a patient number).")
    if conditioning_columns is not None and column in conditioning_columns:
        raise ConfigError(f"{option('privacy_unit', '--privacy-unit')}: {column!r} is also a conditioning column; "
                          "the unit column is never learned (it becomes surrogates), so leave it out of "
                          f"{option('conditioning_columns', '--conditioning-columns')}.")
    if df[column].isna().all():
        raise DataError(f"{option('privacy_unit', '--privacy-unit')}: column {column!r} is empty (every cell "
                        "missing), so it says nothing about whose rows belong together. Fill it or leave "
                        "the option out (privacy per row).")
    units = Units.of(df, column)
    if units.n_units == len(df):
        return None
    return units


def unique_unit_note(column: Any) -> str:
    return (f"privacy unit {column!r}: every row has its own value, so each unit is one row; the run proceeds "
            "per row.")


def check_unit_settings(df: pd.DataFrame, privacy_unit: Any, structured: str, max_rows_per_unit: Any) -> None:
    """``privacy_unit``'s settings, before the scan's minutes (nothing to check when it is None)."""
    if privacy_unit is None:
        return
    if isinstance(max_rows_per_unit, bool) or not isinstance(max_rows_per_unit, int) or max_rows_per_unit < 1:
        raise ConfigError(f"{option('max_rows_per_unit', '--max-rows-per-unit')}: must be a whole number >= 1 "
                          f"(default {DEFAULT_MAX_ROWS_PER_UNIT}), got {max_rows_per_unit!r}.")
    if structured != "dp":
        how = "fitted by SDV row by row without DP" if structured == "sdv" else "kept as given"
        whole_row = option("structured='dp'", "--structured dp")
        raise ConfigError(
            f"{option('privacy_unit', '--privacy-unit')} needs {whole_row}: one DP model then writes each unit's "
            f"rows, so the guarantee and the number of rows per unit both come from it. With {structured!r} the structured columns are "
            f"{how}, which would protect no one per person.")
    _check_column(df, privacy_unit)


def _check_column(df: pd.DataFrame, column: Any) -> None:
    if column not in df.columns:
        raise DataError(f"{option('privacy_unit', '--privacy-unit')}: no column {column!r}; the table has "
                        f"{[str(c) for c in df.columns]}.")


def train_config_for_units(train: Any, base: Any, max_rows_per_unit: int) -> Any:
    """Training settings with room for a unit's rows: with no ``max_length`` set, the model's default length
    per row times ``max_rows_per_unit``, within the model's positions."""
    if train.max_length is not None:
        return train
    from dataclasses import replace

    length = base.default_max_length * max_rows_per_unit
    return replace(train, max_length=min(length, base.max_positions) if base.max_positions else length)


def split_units(units: Units, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit indices (sorted) for training and for the holdout: a seeded random ``share`` of the units."""
    from .plan import split_holdout

    return split_holdout(units.n_units, share, seed)


def pick_rows(units: Units, chosen: Sequence[int], max_rows: int, seed: int) -> tuple[list[np.ndarray], int]:
    """Each chosen unit's training rows: at most ``max_rows``, drawn at random with ``seed`` (never by
    content), kept in table order. Returns the rows per unit and how many rows were left out."""
    rng = np.random.default_rng([seed, 7])  # its own stream: the holdout split uses the seed alone
    out, left_out = [], 0
    for u in chosen:
        rows = units.members[u]
        if len(rows) > max_rows:
            left_out += len(rows) - max_rows
            rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
        out.append(rows)
    return out, left_out


def unit_surrogates(dtype: Any, n_units: int, entity: str | None, surrogates: Any) -> list:
    """One value per synthetic unit for the unit column, tied to nothing in the data: a Faker surrogate when
    the column is PII (an e-mail, a name), 1..n for an integer column, ``U000001``... otherwise."""
    if entity is not None:
        out, seen = [], set()
        for i in range(n_units):
            value = surrogates.new_value(entity)
            for _ in range(20):  # two units must never share a value: they would read as one person
                if value not in seen:
                    break
                value = surrogates.new_value(entity)
            value = value if value not in seen else f"{value}-{i + 1}"
            seen.add(value)
            out.append(value)
        return out
    if pd.api.types.is_integer_dtype(dtype):
        return list(range(1, n_units + 1))
    return [f"U{i:06d}" for i in range(1, n_units + 1)]


__all__ = ["DEFAULT_MAX_ROWS_PER_UNIT", "Units", "check_unit_settings", "find_units", "pick_rows", "split_units",
           "train_config_for_units", "unique_unit_note", "unit_surrogates"]

"""Structured columns: synthesize them with SDV, or keep them as given.

A table has three kinds of columns, and this stage treats each differently:

* **text columns** are left missing (``None``) here; the language model writes them later.
* **PII columns** (``{column: entity_type}``, e.g. from :func:`synthtext.pii.scan_pii`'s
  ``structured_columns``) are never modelled: every value is a Faker surrogate from
  :class:`synthtext.pii.Surrogates`, the machinery that also fills PII placeholders in the text.
  ``ID`` columns get unique ids. A PII column with a numeric dtype gets numbers (the digits of the
  Faker value, e.g. a phone number, or a random 9-digit id) so its dtype survives.
* **every other column** depends on ``method``:

  - ``"sdv"`` (default): an SDV single-table synthesizer (``sdv_model``: ``"gaussian_copula"`` by
    default, ``"ctgan"``, ``"tvae"`` or ``"copulagan"``) learns them and samples new rows; any number of
    rows may be sampled. SDV detects from the values whether a column is numerical, categorical,
    ordinal or a date; it never sees the column names (its name rules would turn a column called
    "state" or "license" into fake values) and infers no primary key, so every column it gets is
    modelled. Which columns are PII is decided by the caller (:mod:`synthtext.pii`), not by SDV.
    PII columns get a fresh surrogate per row; where a PII column has missing values, SDV also models
    whether each row's value is missing.
    **Rare categories** (a string value seen in fewer than ``min_category_count`` real rows, 5 by
    default) are never shown to SDV, which samples categories from the real values it saw and would
    otherwise copy a near-unique string (a review title, a small town) into the output. SDV learns them
    as one stand-in category; each synthetic cell that draws it gets, instead:

    - a value drawn from the column's kept (frequent) categories, in proportion to their real
      frequencies, when the column has any; never a suppressed value;
    - a missing value when no category of the column is frequent enough (a free-form title, a city
      column where every city is rare). Not a Faker value: SDV never sees the column names, so the
      type would be a guess from the name (a "state" column may hold a status), and a made-up city
      would look like data that was modelled. Missing is honest and what the text model saw in rows
      without a value. To get Faker values, declare the column PII (``pii_columns={"City":
      "LOCATION"}``); to have it written by the language model, make it a text column.

    ``rare_suppressed_`` holds, per column, how many values and real rows were suppressed, what
    replaces them and how many cells the latest ``sample`` replaced; the privacy report repeats it.
    **SDV is not differentially private**: these columns are protected by being synthetic, not by a
    privacy guarantee, and the privacy report says so.
  - ``"keep"``: they are kept exactly as given (**not protected at all**; the report says so) and only
    the text is synthetic. PII columns are still replaced, consistently: the same original value gets the
    same surrogate everywhere in the table (and in the text, when the text stage shares the same
    ``Surrogates``); missing values stay missing. ``sample`` returns the fitted rows, so the number of
    rows is the input's; :meth:`StructuredSynthesizer.transform` does the same for any other rows.

The output always has the input's columns, in its order, with its dtypes (``int64`` stays ``int64``,
``Int64`` stays ``Int64``, ``float64``, ``object``, ``bool`` and datetimes likewise).

Reproducibility: with ``seed`` set, the same data and the same sequence of calls give the same rows
(SDV's training and sampling, the surrogates and the ids are all seeded). With ``seed=None`` a seed is
drawn at ``fit`` and kept in ``seed_``. Each ``sample`` call continues the random stream, so two calls
give different rows.

Nothing here touches the network. SDV is imported only when ``method="sdv"`` is fitted; on import it
writes a logging configuration file to the user's data directory (``platformdirs``; it logs nothing
unless a user turns that on) and otherwise stays local.

Saving: ``to_dict``/``from_dict`` (JSON) save the ``"keep"`` state, which is the schema and settings
only, never rows. A fitted SDV synthesizer can only be saved with pickle (``sdv``'s ``save`` uses
cloudpickle), which synthtext does not allow, so ``to_dict`` refuses ``method="sdv"``.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import secrets
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, ModelError, NotFittedError

METHODS = ("sdv", "keep")
SDV_MODELS = {
    "gaussian_copula": "GaussianCopulaSynthesizer",
    "ctgan": "CTGANSynthesizer",
    "tvae": "TVAESynthesizer",
    "copulagan": "CopulaGANSynthesizer",
}
STATE_FORMAT = "synthtext.structured"
STATE_VERSION = 1

_TABLE = "table"
_ID_LOW, _ID_HIGH = 100_000_000, 1_000_000_000  # numeric surrogate ids have 9 digits
_NON_DIGIT = re.compile(r"\D")


@contextlib.contextmanager
def quiet_sdv():
    """Silence SDV's advice and its dependencies' deprecation noise; real problems still surface."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*saving the metadata using 'save_to_json'")
        for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
            warnings.filterwarnings("ignore", category=category,
                                    module=r"(sdv|rdt|copulas|ctgan|sdmetrics|sklearn|scipy)(\.|$)")
        yield


@contextlib.contextmanager
def _seeded_global_rngs(seed: int, torch_too: bool):
    """SDV trains with NumPy's (and for the GAN/VAE models torch's) global generators: seed them for
    the fit and put them back afterwards, so fitting is reproducible and the caller's streams untouched."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        if torch_too:
            import torch

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield
        else:
            yield
    finally:
        np.random.set_state(state)


@dataclass(frozen=True)
class _MissingFlag:
    """Key of the column that models whether PII column ``column`` is missing (never a user's name)."""

    column: Any


def _entity_type(value: Any, column: Any) -> str:
    entity = getattr(value, "entity_type", value)  # a StructuredPiiColumn or a plain string
    if not isinstance(entity, str) or not entity:
        raise ConfigError(f"pii_columns: the entity type of column {column!r} must be a non-empty "
                          f"string such as 'PERSON' or 'ID', got {value!r}.")
    return entity


def _empty_like(dtype, n: int, index) -> pd.Series:
    """A column of ``n`` missing values with ``dtype`` where it can hold them (else object)."""
    series = pd.Series([None] * n, index=index, dtype=object)
    if dtype == object:
        return series
    try:
        return series.astype(dtype)
    except (TypeError, ValueError):
        return series


RARE_CATEGORY = "_RARE_"
"""The stand-in SDV learns for categorical values seen fewer than ``min_category_count`` times (with
digits added if a real value is spelled so). Internal: sampling replaces it, it never reaches the output."""
REPLACED_BY_KEPT = "kept categories"
REPLACED_BY_MISSING = "missing"


@dataclass(frozen=True)
class _RareFill:
    """How ``sample`` replaces a column's rare stand-in: ``token`` becomes one of ``values`` (drawn with
    probabilities ``weights``), or missing when there are none."""

    token: str
    values: tuple
    weights: tuple


def _rare_token(series: pd.Series) -> str:
    """``RARE_CATEGORY``, or a variant no real value of ``series`` is equal to."""
    present = set(series.dropna().astype(str))
    token, i = RARE_CATEGORY, 0
    while token in present:
        i += 1
        token = f"{RARE_CATEGORY}{i}"
    return token


class StructuredSynthesizer:
    """Makes the non-text columns of a synthetic table (see the module docstring for the contract).

    Parameters
    ----------
    method: ``"sdv"`` to synthesize the structured columns, ``"keep"`` to keep them as given.
    sdv_model: the SDV single-table synthesizer for ``method="sdv"``: ``"gaussian_copula"`` (fast,
        the default), ``"ctgan"``, ``"tvae"`` or ``"copulagan"``.
    pii_columns: ``{column: entity_type}`` of columns that are PII themselves (values may also be
        :class:`synthtext.pii.StructuredPiiColumn`). They get Faker surrogates.
    text_columns: columns the language model writes; left missing here.
    seed: makes fitting and sampling reproducible; ``None`` draws one (kept in ``seed_``).
    locale: Faker locale of the surrogates.
    sdv_params: extra keyword arguments for the SDV synthesizer (e.g. ``{"epochs": 100}`` for CTGAN).
    surrogates: a :class:`synthtext.pii.Surrogates` to share with the text stage, so a person named in a
        column and in the text gets one surrogate; by default one is made from ``locale`` and the seed.
    """

    def __init__(self, method: str = "sdv", sdv_model: str = "gaussian_copula",
                 pii_columns: Mapping[Any, Any] | None = None, text_columns: Iterable = (),
                 seed: int | None = None, locale: str = "en_US", sdv_params: Mapping | None = None,
                 surrogates: Any = None, min_category_count: int = 5):
        if method not in METHODS:
            raise ConfigError(f"method: must be one of {list(METHODS)}, got {method!r}.")
        if sdv_model not in SDV_MODELS:
            raise ConfigError(f"sdv_model: must be one of {list(SDV_MODELS)}, got {sdv_model!r}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or not 0 <= seed < 2**32):
            raise ConfigError(f"seed: must be None or an integer from 0 to 2**32 - 1, got {seed!r}.")
        if sdv_params is not None and not isinstance(sdv_params, Mapping):
            raise ConfigError(f"sdv_params: must be a dict of SDV synthesizer arguments, got {sdv_params!r}.")
        self.method = method
        self.sdv_model = sdv_model
        self.pii_columns = {c: _entity_type(v, c) for c, v in (pii_columns or {}).items()}
        self.text_columns = list(text_columns)
        overlap = [c for c in self.text_columns if c in self.pii_columns]
        if overlap:
            raise ConfigError(f"pii_columns: {overlap} are also text columns; a text column's PII is "
                              "redacted in the text, not replaced as a whole.")
        self.seed = None if seed is None else int(seed)
        self.locale = locale
        self.sdv_params = dict(sdv_params or {})
        self.surrogates = surrogates
        if isinstance(min_category_count, bool) or not isinstance(min_category_count, int) or min_category_count < 1:
            raise ConfigError(f"min_category_count: must be a positive integer, got {min_category_count!r}.")
        self.min_category_count = min_category_count

    # ----------------------------------------------------------------------------------------------
    # fit
    # ----------------------------------------------------------------------------------------------

    def fit(self, df: pd.DataFrame) -> "StructuredSynthesizer":
        """Learn the schema (and, for ``"sdv"``, the structured columns) of ``df``."""
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"fit expects a pandas DataFrame, got {type(df).__name__}.")
        if df.columns.duplicated().any():
            duplicated = list(df.columns[df.columns.duplicated()])
            raise DataError(f"the table has duplicate column names {duplicated}; rename them.")
        for name, columns in (("pii_columns", self.pii_columns), ("text_columns", self.text_columns)):
            unknown = [c for c in columns if c not in df.columns]
            if unknown:
                raise DataError(f"{name}: the table has no column(s) {unknown}; it has {list(df.columns)}.")
        booleans = [c for c in self.pii_columns if pd.api.types.is_bool_dtype(df[c])]
        if booleans:
            raise ConfigError(f"pii_columns: {booleans} hold booleans, which cannot be PII; remove them.")

        self.dtypes_ = df.dtypes.copy()
        self.seed_ = self.seed if self.seed is not None else secrets.randbelow(2**31)
        self.rng_ = np.random.default_rng(self.seed_)
        self.surrogates_ = self.surrogates if self.surrogates is not None else self._new_surrogates()
        self.id_maps_: dict[Any, dict] = {}  # keep mode: original id -> surrogate id, per column
        self.modelled_columns_ = [c for c in df.columns
                                  if c not in self.pii_columns and c not in self.text_columns]
        self.data_ = None
        self.sdv_ = None
        self.rare_suppressed_: dict[Any, dict] = {}
        self.rare_fill_: dict[Any, _RareFill] = {}
        self.missing_flags_: dict[Any, _MissingFlag] = {}
        self.sdv_names_: dict[Any, str] = {}
        if self.method == "keep":
            self.data_ = df.copy()
        else:
            self._fit_sdv(df)
        self.columns_ = list(df.columns)  # set last: its presence means "fitted"
        return self

    def _new_surrogates(self):
        from .pii import Surrogates  # imports presidio; only needed once fitting

        return Surrogates(self.locale, seed=self.seed_)

    def _fit_sdv(self, df: pd.DataFrame) -> None:
        if len(df) == 0:
            raise DataError("the table has no rows; SDV needs rows to learn from.")
        # SDV sees neutral column names: its metadata detection reads names before values and would
        # turn a column named like "state", "license" or "email" into fake values of that type. PII is
        # synthtext.pii's call (pii_columns); SDV models every column it gets by its values.
        columns = {column: df[column] for column in self.modelled_columns_}
        for column in self.pii_columns:
            if df[column].isna().any():  # SDV also models whether the PII value is missing
                self.missing_flags_[column] = _MissingFlag(column)
                columns[self.missing_flags_[column]] = df[column].isna()
        self.sdv_names_ = {column: f"c{i}" for i, column in enumerate(columns)}
        if not columns:
            return  # only PII and text columns: nothing for SDV to learn
        # categoricals as plain values: SDV fails on unused categories, and the rare-category
        # suppression below reads object columns only
        frame = pd.DataFrame({self.sdv_names_[c]: (s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s)
                              .reset_index(drop=True) for c, s in columns.items()})

        with quiet_sdv(), _seeded_global_rngs(self.seed_, torch_too=self.sdv_model != "gaussian_copula"):
            from sdv import single_table
            from sdv.metadata import Metadata

            # no primary-key inference: SDV would make the first unique column (say, an income
            # column in a small table) a generated key instead of modelling it
            metadata = Metadata.detect_from_dataframes({_TABLE: frame}, infer_keys=None)
            frame = self._suppress_rare_categories(frame, metadata)
            if self.rare_suppressed_:  # detect again: the old metadata lists the suppressed values
                metadata = Metadata.detect_from_dataframes({_TABLE: frame}, infer_keys=None)
            synthesizer_class = getattr(single_table, SDV_MODELS[self.sdv_model])
            params = dict(self.sdv_params)
            if "locales" in inspect.signature(synthesizer_class).parameters:
                params.setdefault("locales", [self.locale])
            try:
                synthesizer = synthesizer_class(metadata, **params)
            except TypeError as exc:
                raise ConfigError(f"sdv_params: {exc}") from exc
            synthesizer.fit({_TABLE: frame})
            # SDV samples from a fixed seed unless told otherwise; its only hook is this private method
            synthesizer._set_random_state(self.seed_)
        self.sdv_ = synthesizer

    def _suppress_rare_categories(self, frame: pd.DataFrame, metadata) -> pd.DataFrame:
        """Categories seen fewer than ``min_category_count`` times become ``RARE_CATEGORY``.

        SDV samples a categorical column from the real values it saw, so a near-unique string (a
        review title, a zip code, a free-text note too short to count as text) would come out
        verbatim. Rare-category protection, as in MOSTLY AI's engine, keeps such values out of the
        output; the counts are in ``rare_suppressed_`` (and the report). ``sample`` replaces the
        stand-in by a kept category or a missing value (module docstring); ``rare_fill_`` says how."""
        self.rare_suppressed_ = {}
        self.rare_fill_ = {}
        names = {sdv_name: column for column, sdv_name in self.sdv_names_.items()}
        columns = metadata.to_dict()["tables"][_TABLE]["columns"]
        frame = frame.copy()
        for sdv_name, info in columns.items():
            series = frame[sdv_name]
            if info.get("sdtype") != "categorical" or not (
                    pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
                continue
            counts = series.value_counts()
            rare = counts.index[counts < self.min_category_count]
            if len(rare):
                column = names[sdv_name]
                token = _rare_token(series)
                frame[sdv_name] = series.where(~series.isin(rare), token)
                # only categories with at least min_category_count rows, weighted by those counts:
                # the same frequencies SDV learns for them, so no rare value can be drawn
                kept = counts[counts >= self.min_category_count]
                self.rare_fill_[column] = _RareFill(token, tuple(kept.index.tolist()),
                                                    tuple((kept / kept.sum()).tolist()))
                self.rare_suppressed_[column] = {
                    "values": int(len(rare)), "rows": int(counts[rare].sum()),
                    "min_count": self.min_category_count,
                    "replaced_with": REPLACED_BY_KEPT if len(kept) else REPLACED_BY_MISSING,
                    "kept_categories": int(len(kept)),
                    "cells_replaced": 0,  # in the latest sample() call
                }
        return frame

    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise NotFittedError("This StructuredSynthesizer is not fitted yet: call fit(df) with the "
                                 "real table first, then sample(num_rows).")

    # ----------------------------------------------------------------------------------------------
    # sample / transform
    # ----------------------------------------------------------------------------------------------

    def sample(self, num_rows: int | None = None) -> pd.DataFrame:
        """Synthetic structured rows: text columns missing, PII columns surrogates.

        ``"sdv"``: ``num_rows`` new rows (required). ``"keep"``: the fitted rows; ``num_rows`` may be
        left out and, if given, must equal their number.
        """
        self._check_fitted()
        if self.method == "keep":
            if self.data_ is None:
                raise NotFittedError("This keep-mode synthesizer was loaded without rows (rows are "
                                     "never saved): call transform(df) with the rows to keep.")
            if num_rows is not None and num_rows != len(self.data_):
                raise ConfigError(f"num_rows: structured='keep' keeps the {len(self.data_)} given rows, "
                                  f"so num_rows must be {len(self.data_)} (or left out), got {num_rows!r}.")
            return self.transform(self.data_)
        if isinstance(num_rows, bool) or not isinstance(num_rows, (int, np.integer)) or num_rows < 0:
            raise ConfigError(f"num_rows: must be a non-negative integer, got {num_rows!r}.")
        return self._sample_sdv(int(num_rows))

    def _sample_sdv(self, n: int) -> pd.DataFrame:
        index = pd.RangeIndex(n)
        rows = pd.DataFrame(index=index)
        if self.sdv_ is not None and n > 0:
            with quiet_sdv():
                sampled = self.sdv_.sample(n)[_TABLE].reset_index(drop=True)
            rows = pd.DataFrame({c: sampled[name] for c, name in self.sdv_names_.items()}, index=index)
        self._replace_rare(rows)
        out = {}
        for column in self.columns_:
            dtype = self.dtypes_[column]
            if column in self.text_columns:
                out[column] = _empty_like(dtype, n, index)
            elif column in self.pii_columns:
                flag = self.missing_flags_.get(column)
                missing = (rows[flag].astype(bool).to_numpy() if flag in rows
                           else np.zeros(n, dtype=bool))
                out[column] = self._fresh_surrogates(column, dtype, missing)
            else:
                out[column] = rows[column] if column in rows else _empty_like(dtype, n, index)
        return self._restore_dtypes(pd.DataFrame(out, index=index))

    def _replace_rare(self, rows: pd.DataFrame) -> None:
        """Replace each column's rare stand-in in place (module docstring: a kept category drawn by its
        frequency, or missing) and count the cells in ``rare_suppressed_[column]["cells_replaced"]``."""
        for column, fill in self.rare_fill_.items():
            if column not in rows:
                continue
            values = rows[column].astype(object)
            hit = values.eq(fill.token).fillna(False).to_numpy(dtype=bool)
            n_hit = int(hit.sum())
            if n_hit:
                if fill.values:
                    choices = np.empty(len(fill.values), dtype=object)
                    choices[:] = list(fill.values)
                    draws = choices[self.rng_.choice(len(choices), size=n_hit, p=np.asarray(fill.weights))]
                else:
                    draws = np.full(n_hit, np.nan, dtype=object)  # as SDV writes a missing category
                values = values.copy()
                values[hit] = draws
                rows[column] = values
            self.rare_suppressed_[column]["cells_replaced"] = n_hit

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with the structured columns kept, PII columns replaced and text columns missing.

        ``df`` needs the fitted table's columns; text columns may be absent (they are added, missing).
        The same original value gets the same surrogate on every call of this synthesizer.
        """
        self._check_fitted()
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"transform expects a pandas DataFrame, got {type(df).__name__}.")
        absent = [c for c in self.columns_ if c not in df.columns and c not in self.text_columns]
        if absent:
            raise DataError(f"the rows lack column(s) {absent} that the synthesizer was fitted with.")
        out = {}
        for column in self.columns_:
            dtype = self.dtypes_[column]
            if column in self.text_columns:
                out[column] = _empty_like(dtype, len(df), df.index)
            elif column in self.pii_columns:
                out[column] = self._consistent_surrogates(column, dtype, df[column])
            else:
                out[column] = df[column]
        return self._restore_dtypes(pd.DataFrame(out, index=df.index))

    def _restore_dtypes(self, frame: pd.DataFrame) -> pd.DataFrame:
        for column in self.columns_:
            dtype = self.dtypes_[column]
            if frame[column].dtype != dtype:
                try:
                    frame[column] = frame[column].astype(dtype)
                except (TypeError, ValueError) as exc:
                    raise DataError(f"column {column!r}: the synthetic values do not fit its dtype "
                                    f"{dtype}: {exc}") from exc
        return frame

    # ----------------------------------------------------------------------------------------------
    # Surrogates
    # ----------------------------------------------------------------------------------------------

    def _fresh_surrogates(self, column, dtype, missing: np.ndarray) -> pd.Series:
        """One new surrogate per row (``"sdv"``); ids are unique within the call."""
        entity = self.pii_columns[column]
        n = len(missing)
        if pd.api.types.is_numeric_dtype(dtype):
            if entity == "ID":
                values = list(self._unique_ids(n, avoid=()))
            else:
                values = [self._numeric_value(entity) for _ in range(n)]
        elif entity == "ID":
            seen: set[str] = set()
            values = [self._unique_string_id(seen) for _ in range(n)]
        else:
            values = [self.surrogates_.new_value(entity) for _ in range(n)]
        return pd.Series([None if m else v for v, m in zip(values, missing)], dtype=object)

    def _consistent_surrogates(self, column, dtype, originals: pd.Series) -> pd.Series:
        """The same surrogate for the same original value (``"keep"`` and :meth:`transform`)."""
        entity = self.pii_columns[column]
        present = originals.dropna()
        if pd.api.types.is_numeric_dtype(dtype) or entity == "ID":
            mapping = self.id_maps_.setdefault(column, {})
            new = [v for v in pd.unique(present) if v not in mapping]
            if pd.api.types.is_numeric_dtype(dtype):
                if entity == "ID":
                    taken = set(mapping.values()) | set(present.tolist())
                    mapping.update(zip(new, self._unique_ids(len(new), avoid=taken)))
                else:
                    for v in new:
                        mapping[v] = self._numeric_value(entity, avoid=v)
            else:
                seen = set(mapping.values()) | set(present.astype(str))
                for v in new:
                    mapping[v] = self._unique_string_id(seen)
            replace = mapping.get
        else:
            def replace(v):
                return self.surrogates_.for_original(entity, str(v))
        values = [None if pd.isna(v) else replace(v) for v in originals.tolist()]
        return pd.Series(values, index=originals.index, dtype=object)

    def _unique_ids(self, n: int, avoid) -> np.ndarray:
        avoid = {int(v) for v in avoid if float(v).is_integer()}
        span = _ID_HIGH - _ID_LOW
        if n + len(avoid) > span // 2:
            raise DataError(f"too many ids ({n}) for 9-digit surrogate ids.")
        ids = np.empty(0, dtype=np.int64)
        while len(ids) < n:
            draw = self.rng_.choice(span, size=n - len(ids) + 16, replace=False) + _ID_LOW
            draw = draw[~np.isin(draw, list(avoid)) & ~np.isin(draw, ids)]
            ids = np.concatenate([ids, draw])[:n]
        return ids

    def _numeric_value(self, entity: str, avoid: Any = None) -> int:
        """The digits of a Faker value (a phone number becomes 2025550143), or a random 9-digit id."""
        for _ in range(20):
            digits = _NON_DIGIT.sub("", self.surrogates_.new_value(entity)).lstrip("0")
            value = int(digits) if 0 < len(digits) <= 18 else int(self.rng_.integers(_ID_LOW, _ID_HIGH))
            if avoid is None or value != avoid:
                return value
        return value + 1

    def _unique_string_id(self, seen: set) -> str:
        while True:
            value = self.surrogates_.new_value("ID")
            if value not in seen:
                seen.add(value)
                return value

    # ----------------------------------------------------------------------------------------------
    # Introspection and saving
    # ----------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-ready state of a fitted ``"keep"`` synthesizer: schema and settings, never rows."""
        self._check_fitted()
        if self.method != "keep":
            raise ModelError(
                "structured='sdv' cannot be saved: SDV saves its synthesizers only with pickle, which "
                "synthtext does not write. Use structured='keep', or refit the structured synthesizer.")
        if not all(isinstance(c, str) for c in self.columns_):
            raise ModelError("only tables with string column names can be saved.")
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "method": self.method,
                "pii_columns": dict(self.pii_columns), "text_columns": list(self.text_columns),
                "seed": self.seed_, "locale": self.locale,
                "columns": list(self.columns_), "dtypes": [str(self.dtypes_[c]) for c in self.columns_]}

    @classmethod
    def from_dict(cls, state: Mapping) -> "StructuredSynthesizer":
        """A fitted ``"keep"`` synthesizer from :meth:`to_dict`; it has no rows, so use
        :meth:`transform` with the rows to keep."""
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ModelError(f"not a saved structured synthesizer (format {STATE_FORMAT!r} version "
                             f"{STATE_VERSION}): got {state.get('format')!r} {state.get('version')!r}.")
        if state.get("method") != "keep":
            raise ModelError(f"only structured='keep' can be loaded, got {state.get('method')!r}.")
        synth = cls(method="keep", pii_columns=state["pii_columns"], text_columns=state["text_columns"],
                    seed=state["seed"], locale=state["locale"])
        synth.columns_ = list(state["columns"])
        synth.dtypes_ = pd.Series([pd.api.types.pandas_dtype(d) for d in state["dtypes"]],
                                  index=synth.columns_, dtype=object)
        synth.seed_ = synth.seed
        synth.rng_ = np.random.default_rng(synth.seed_)
        synth.surrogates_ = synth._new_surrogates()
        synth.id_maps_ = {}
        synth.modelled_columns_ = [c for c in synth.columns_
                                   if c not in synth.pii_columns and c not in synth.text_columns]
        synth.data_ = None
        synth.sdv_ = None
        synth.rare_suppressed_ = {}
        synth.rare_fill_ = {}
        synth.missing_flags_ = {}
        synth.sdv_names_ = {}
        return synth

    def __repr__(self) -> str:
        return (f"StructuredSynthesizer(method={self.method!r}, sdv_model={self.sdv_model!r}, "
                f"pii_columns={self.pii_columns!r}, text_columns={self.text_columns!r}, seed={self.seed!r})")


__all__ = ["METHODS", "SDV_MODELS", "StructuredSynthesizer"]

"""Leakage: does the synthetic data give the training data away?

PII values found in the training text coming back (:func:`pii_replay`), real values of the columns
that are PII themselves and real rows' combinations of them (:func:`pii_column_replay`), long verbatim
spans (:func:`verbatim_copying`), and synthetic texts closer to training records than to held-out ones
(:func:`dcr_section`). Only counts leave these functions, never a value. :func:`withhold_real_values`
takes such values out of the synthetic rows the report shows.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .common import PLOT_POINTS, SPACE, class_label, normalize_text, subsample
from .stats import clopper_pearson

VERBATIM_MIN_WORDS = 8
VERBATIM_MIN_CHARS = 50
PII_MIN_CHARS = 3

_TOKEN = re.compile(r"\w+")
_HASH_BASE = 1099511628211  # FNV-64 prime: any odd base works, every hit is verified anyway


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


REPLAY_NOT_IDENTIFYING = frozenset({"DATE_TIME", "NRP"})
"""Entity types listed by type in PII replay but left out of its share: presidio tags everyday words as
dates ("summer", "years") and groups ("American"), which recur in any text about the same topic."""

COMMON_VALUE_MIN_TEXTS = 5
"""PII replay leaves out of its share a value found in at least this many training texts (matched as in
the replay, whatever the scan said of each): a string that many records share identifies no one of them
(the k = 5 of k-anonymity), and it is what the scan's false hits are made of: presidio tagged "size",
"Beautifully" and "bummer" as names in clothing reviews, which then came back in every synthetic copy."""


class _Corpus:
    """Texts joined into one string, for whole-word, one-hit-per-text searches (exact or case-folded)."""

    SEPARATOR = "\n\x00\n"  # no word characters: a match can never run across two texts

    def __init__(self, texts: Sequence[str]):
        self.n = len(texts)
        self.exact, self.exact_starts = self._join(texts)
        self.folded, self.folded_starts = self._join([t.lower() for t in texts])
        self.tokens = set(_TOKEN.findall(self.folded))

    def _join(self, texts):
        starts, position = [], 0
        for text in texts:
            starts.append(position)
            position += len(text) + len(self.SEPARATOR)
        return self.SEPARATOR.join(texts), starts

    def rows_with(self, needle: str, folded: bool) -> set[int]:
        """The texts that hold ``needle`` on word boundaries (case-insensitively with ``folded``)."""
        if folded:
            haystack, offsets, needle = self.folded, self.folded_starts, needle.lower()
        else:
            haystack, offsets = self.exact, self.exact_starts
        if not set(_TOKEN.findall(needle.lower())) <= self.tokens:
            return set()  # a word of the value is not a word of any text
        rows, at = set(), haystack.find(needle)
        check_before, check_after = _is_word_char(needle[0]), _is_word_char(needle[-1])
        while at != -1:
            end = at + len(needle)
            if ((not check_before or at == 0 or not _is_word_char(haystack[at - 1]))
                    and (not check_after or end == len(haystack) or not _is_word_char(haystack[end]))):
                row = bisect.bisect_right(offsets, at) - 1
                rows.add(row)
                if row + 1 >= len(offsets):
                    break
                at = haystack.find(needle, offsets[row + 1])  # one hit per text is enough
            else:
                at = haystack.find(needle, at + 1)
        return rows


def pii_replay(texts: Sequence[str | None], pii_values: Mapping[str, Iterable[str]],
               training_texts: Sequence[str | None] | None = None) -> dict:
    """Which PII values found in the training text come back in ``texts``, counted by entity type.

    A value matches on word boundaries, exactly and case-insensitively; values shorter than 3 characters
    are ignored (too many chance hits). With ``training_texts``, a value that occurs in at least
    :data:`COMMON_VALUE_MIN_TEXTS` of them is listed (``n_values_common``) but left out of the share.
    Only counts leave this function, never a value.
    """
    corpus = _Corpus([t for t in texts if t is not None])
    training = None if training_texts is None else _Corpus([t for t in training_texts if t is not None])
    by_type, any_rows, searched, ignored = {}, set(), 0, 0
    for entity_type, values in pii_values.items():
        if isinstance(values, str):
            values = [values]
        unique = set()
        for value in values if values is not None else ():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            value = str(value).strip()
            if len(value) < PII_MIN_CHARS:
                ignored += 1
            else:
                unique.add(value)
        exact_rows, folded_rows, counted_rows, found, common = set(), set(), set(), 0, 0
        for value in unique:
            exact = corpus.rows_with(value, folded=False)
            folded = corpus.rows_with(value, folded=True) | exact
            exact_rows |= exact
            folded_rows |= folded
            found += bool(folded)
            if training is not None and len(training.rows_with(value, folded=True)) >= COMMON_VALUE_MIN_TEXTS:
                common += 1
            else:
                counted_rows |= folded
        searched += len(unique)
        if str(entity_type) not in REPLAY_NOT_IDENTIFYING:
            any_rows |= counted_rows
        by_type[str(entity_type)] = {"exact": len(exact_rows), "case_insensitive": len(folded_rows),
                                     "n_values_searched": len(unique), "n_values_found": found,
                                     "n_values_common": common}
    match = f"exact and case-insensitive, on word boundaries; values under {PII_MIN_CHARS} characters ignored"
    if training is not None:
        match += (f"; values found in {COMMON_VALUE_MIN_TEXTS} or more training texts listed, not counted in the "
                  "share")
    return {"n_values_searched": searched, "n_values_ignored_short": ignored,
            "rows_with_replay": len(any_rows), "n_texts": corpus.n,
            "share": len(any_rows) / corpus.n if corpus.n else None, "by_type": by_type,
            "not_counted_in_share": sorted(REPLAY_NOT_IDENTIFYING & set(map(str, by_type))),
            "common_min_texts": None if training is None else COMMON_VALUE_MIN_TEXTS, "match": match}


CHANCE_PRONE_TYPES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME", "ID"})
"""Structured PII types whose single values can equal a real one by chance: unrelated people share names
and places, generators draw them from short lists (measured: two independent Faker draws of 500 full names
share 7, of 5,000 share 346), and ids are often counters or short codes any other numbering reproduces.
Every other type (emails, phone and card numbers, ...) belongs to one person: a replayed rare value is a
leak. Either way a real row's combination of values (a name with its email) does not coincide by chance:
the same draws of 5,000 shared no (name, email) pair."""

CHANCE_VALUE_SHARE = 0.10
"""For a chance-prone column: up to this share of synthetic values equal to rare real ones is graded fair
(possibly chance), above it poor. Above the 7% of two independent Faker draws of 5,000 full names; a
copied column scores 1."""

_NUMBER_LIKE = re.compile(r"[\d\s().+/-]+")


def _pii_key(value) -> str | None:
    """A structured PII value as compared: case-folded, whitespace collapsed; a number written with
    separators ("(212) 555-0199", 7+ digits) by its digits; None when missing or blank."""
    label = class_label(value)
    if label is None:
        return None
    key = SPACE.sub(" ", label.casefold()).strip()
    if not key:
        return None
    if _NUMBER_LIKE.fullmatch(key):
        digits = re.sub(r"\D", "", key)
        if len(digits) >= 7:
            return digits
    return key


WITHHELD_VALUE = "[withheld: a real value]"
WITHHELD_TEXT = "[withheld: a copy of a real text]"


def withhold_real_values(rows: Sequence[Mapping], real: pd.DataFrame, *, text_columns: Sequence = (),
                         pii_columns: Mapping[Any, str] | None = None,
                         pii_values: Mapping | None = None) -> list[dict]:
    """Synthetic rows to be shown (the report's samples) with what would show real PII taken out, so that
    a synthetic table that leaks never carries the leak into the report:

    - a cell of a PII column equal to a real value of it found in fewer than :data:`COMMON_VALUE_MIN_TEXTS`
      real rows (compared as :func:`pii_column_replay` does) becomes :data:`WITHHELD_VALUE`;
    - a text equal to a real text of its column (case and spacing aside) becomes :data:`WITHHELD_TEXT`;
    - in a text, each PII value found in the training text (``pii_values``: ``{entity type: values}`` or
      ``{text column: {entity type: values}}``), matched as :func:`pii_replay` matches it, becomes its
      placeholder (``<PERSON>``); not the types of :data:`REPLAY_NOT_IDENTIFYING`, nor values found in
      :data:`COMMON_VALUE_MIN_TEXTS` or more real texts of the column (a string many records share
      identifies none of them, and such are the scan's false hits: "size" tagged as a name).
    """
    rows = [dict(row) for row in rows]
    for column in pii_columns or {}:
        if column not in real.columns:
            continue
        counts = Counter(k for k in map(_pii_key, real[column].tolist()) if k is not None)
        for row in rows:
            key = _pii_key(row.get(column))
            if key is not None and 0 < counts[key] < COMMON_VALUE_MIN_TEXTS:
                row[column] = WITHHELD_VALUE
    by_column = pii_values or {}
    per_column = bool(by_column) and all(isinstance(v, Mapping) for v in by_column.values())
    for column in text_columns:
        if column not in real.columns:
            continue
        real_texts = [t for t in real[column].tolist() if isinstance(t, str) and t.strip()]
        copies = {normalize_text(t) for t in real_texts}
        shown = [i for i, row in enumerate(rows) if isinstance(row.get(column), str)]
        for i in shown:
            if normalize_text(rows[i][column]) in copies:
                rows[i][column] = WITHHELD_TEXT
        shown = [i for i in shown if rows[i][column] != WITHHELD_TEXT]
        values = (by_column.get(column) or {}) if per_column else by_column
        corpus, training, hits = _Corpus([rows[i][column] for i in shown]), None, []
        for entity_type, found in values.items():
            if str(entity_type) in REPLAY_NOT_IDENTIFYING:
                continue
            for value in {str(v).strip() for v in ([found] if isinstance(found, str) else found or ())
                          if v is not None and not (isinstance(v, float) and math.isnan(v))}:
                if len(value) < PII_MIN_CHARS or not corpus.rows_with(value, folded=True):
                    continue
                training = training or _Corpus(real_texts)
                if len(training.rows_with(value, folded=True)) < COMMON_VALUE_MIN_TEXTS:
                    hits.append((value, str(entity_type)))
        for value, entity_type in sorted(hits, key=lambda hit: -len(hit[0])):  # the longest first
            before = r"(?<!\w)" if _is_word_char(value[0]) else ""
            after = r"(?!\w)" if _is_word_char(value[-1]) else ""
            pattern = re.compile(before + re.escape(value) + after, re.IGNORECASE)
            for i in shown:
                rows[i][column] = pattern.sub(f"<{entity_type}>", rows[i][column])
    return rows


def pii_column_replay(real: pd.DataFrame, synthetic: pd.DataFrame, pii_columns: Mapping[Any, str]) -> dict:
    """Which real values of the structured PII columns (a name or email column) come back in ``synthetic``.

    Values are compared case-insensitively with whitespace collapsed (numbers such as phone numbers by
    their digits). A real value (or combination) found in at least :data:`COMMON_VALUE_MIN_TEXTS` real
    rows is common: listed, never counted, since it identifies no one (k = 5, as in :func:`pii_replay`).

    - per column: the synthetic values equal to a rare real value; a leak in an identifying column
      (emails, phone numbers, ...) whenever there is one, in a chance-prone one (:data:`CHANCE_PRONE_TYPES`:
      names, places, ids) above :data:`CHANCE_VALUE_SHARE` of the synthetic values;
    - per row (two or more PII columns): real rows with two or more of their PII values together in one
      synthetic row (any pair of columns), the combination rare; always a leak.

    Only counts leave this function, never a value.
    """
    columns = list(pii_columns)
    keys_real = {c: [_pii_key(v) for v in real[c].tolist()] for c in columns}
    keys_synth = {c: [_pii_key(v) for v in synthetic[c].tolist()] for c in columns}
    per_column, leak = {}, False
    for column in columns:
        entity = str(pii_columns[column])
        counts = Counter(k for k in keys_real[column] if k is not None)
        present = [k for k in keys_synth[column] if k is not None]
        equal = [k for k in present if k in counts]
        rare = [k for k in equal if counts[k] < COMMON_VALUE_MIN_TEXTS]
        share = len(rare) / len(present) if present else None
        chance_prone = entity in CHANCE_PRONE_TYPES
        if share is None:
            verdict = "n/a"
        elif not rare:
            verdict = "good"
        elif chance_prone and share <= CHANCE_VALUE_SHARE:
            verdict = "fair"
        else:
            verdict = "poor"
        leak |= verdict == "poor"
        per_column[str(column)] = {
            "entity_type": entity, "kind": "chance-prone" if chance_prone else "identifying",
            "n_real_values": sum(counts.values()), "n_real_distinct": len(counts),
            "n_real_common": sum(n >= COMMON_VALUE_MIN_TEXTS for n in counts.values()),
            "n_synthetic_values": len(present), "n_equal_real": len(equal), "n_equal_rare": len(rare),
            "n_rare_values_replayed": len(set(rare)), "n_common_values_replayed": len(set(equal) - set(rare)),
            "share_rare": share, "verdict": verdict}
    rows = None
    if len(columns) >= 2:
        pairs = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1:]]
        real_counts = {p: Counter(zip(keys_real[p[0]], keys_real[p[1]])) for p in pairs}
        synth_rows: dict[tuple, dict] = {}
        for p in pairs:
            index = synth_rows[p] = {}
            for row, key in enumerate(zip(keys_synth[p[0]], keys_synth[p[1]])):
                if None not in key:
                    index.setdefault(key, []).append(row)
        checked, replayed, common, synth_hit = 0, 0, 0, set()
        for row in range(len(real)):
            hits, common_hit = [], False
            for p in pairs:
                key = (keys_real[p[0]][row], keys_real[p[1]][row])
                if None in key or key not in synth_rows[p]:
                    continue
                if real_counts[p][key] < COMMON_VALUE_MIN_TEXTS:
                    hits += synth_rows[p][key]
                else:
                    common_hit = True
            checked += sum(keys_real[c][row] is not None for c in columns) >= 2
            replayed += bool(hits)
            common += common_hit and not hits
            synth_hit.update(hits)
        rows = {"columns": [str(c) for c in columns], "n_real_rows_checked": checked, "n_rows_replayed": replayed,
                "n_synthetic_rows_with_real_combination": len(synth_hit), "n_rows_common_combination": common,
                "share": replayed / checked if checked else None,
                "verdict": "n/a" if not checked else "poor" if replayed else "good"}
        leak |= bool(replayed)
    return {"columns": per_column, "rows": rows, "leak": leak, "common_min_rows": COMMON_VALUE_MIN_TEXTS,
            "chance_value_share": CHANCE_VALUE_SHARE,
            "match": ("case-insensitive, whitespace collapsed, numbers with separators by their digits; values "
                      f"and combinations found in {COMMON_VALUE_MIN_TEXTS} or more real rows listed, not counted")}


def _powers(k: int) -> np.ndarray:
    mask, out, power = (1 << 64) - 1, [], 1
    for _ in range(k):
        out.append(power)
        power = (power * _HASH_BASE) & mask
    return np.array(out[::-1], dtype=np.uint64)


def _window_hashes(seq: np.ndarray, powers: np.ndarray) -> np.ndarray:
    if len(seq) < len(powers):
        return np.empty(0, np.uint64)
    # uint64 arithmetic wraps around: a polynomial rolling hash mod 2**64 of every window
    return np.lib.stride_tricks.sliding_window_view(seq, len(powers)) @ powers


class _SpanIndex:
    """Every length-k window of a set of reference sequences, hashed; lookups are verified exactly."""

    def __init__(self, sequences: Sequence[np.ndarray], k: int):
        self.k, self.powers, self.sequences = k, _powers(k), sequences
        hashes = [_window_hashes(s, self.powers) for s in sequences]
        lengths = np.array([len(h) for h in hashes], dtype=np.int64)
        flat = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        self.owner = np.repeat(np.arange(len(sequences)), lengths)
        self.start = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        order = np.argsort(flat, kind="stable")
        self.hashes, self.owner, self.start = flat[order], self.owner[order], self.start[order]

    def shares_span(self, seq: np.ndarray) -> bool:
        hashes = _window_hashes(seq, self.powers)
        if hashes.size == 0 or self.hashes.size == 0:
            return False
        left = np.searchsorted(self.hashes, hashes, side="left")
        right = np.searchsorted(self.hashes, hashes, side="right")
        for position in np.flatnonzero(right > left):
            window = seq[position:position + self.k]
            for j in range(left[position], right[position]):
                ref = self.sequences[self.owner[j]]
                if np.array_equal(ref[self.start[j]:self.start[j] + self.k], window):
                    return True
        return False


def _word_ids(texts: Sequence[str], vocabulary: dict) -> list[np.ndarray]:
    return [np.array([vocabulary.setdefault(w, len(vocabulary)) for w in _TOKEN.findall(t.lower())],
                     dtype=np.uint64) for t in texts]


def _char_codes(texts: Sequence[str]) -> list[np.ndarray]:
    return [np.frombuffer(normalize_text(t).encode("utf-32-le"), dtype="<u4").astype(np.uint64) for t in texts]


def _span_share(synth_words, synth_chars, eligible, ref_texts, vocabulary) -> tuple[float | None, dict]:
    words_index = _SpanIndex(_word_ids(ref_texts, vocabulary), VERBATIM_MIN_WORDS)
    chars_index = _SpanIndex(_char_codes(ref_texts), VERBATIM_MIN_CHARS)
    by_words = np.array([words_index.shares_span(s) for s in synth_words], dtype=bool)
    by_chars = np.array([chars_index.shares_span(s) for s in synth_chars], dtype=bool)
    n = int(eligible.sum())
    if n == 0:
        return None, {"words": None, "chars": None}
    either = (by_words | by_chars) & eligible
    return float(either.sum() / n), {"words": float(by_words[eligible].mean()), "chars": float(by_chars[eligible].mean())}


def _scaled_baseline(share: float | None, n_holdout: int, n_train: int) -> float | None:
    """The holdout share expected against a reference set of the training set's size, if each reference
    text independently matches with the same chance: 1 - (1 - share) ** (n_train / n_holdout)."""
    if share is None or n_holdout == 0:
        return None
    return 1.0 - (1.0 - share) ** (n_train / n_holdout)


def verbatim_copying(synth_t: Sequence[str], train_t: Sequence[str], hold_t: Sequence[str] | None) -> dict:
    """Share of synthetic texts that share a span of 8+ consecutive words or 50+ consecutive characters
    (lowercased, whitespace collapsed) with any training text; the same share against the holdout is
    the baseline (common phrases), scaled to the training set's size for the comparison.

    Only synthetic texts long enough to hold such a span (8 words or 50 characters) are counted.
    Windows are hashed and every hash hit verified, so this is exact and about linear in the text volume.
    """
    vocabulary: dict = {}
    synth_words = _word_ids(synth_t, vocabulary)
    synth_chars = _char_codes(synth_t)
    eligible = np.array([len(w) >= VERBATIM_MIN_WORDS or len(c) >= VERBATIM_MIN_CHARS
                         for w, c in zip(synth_words, synth_chars)], dtype=bool)
    share_train, by_rule_train = _span_share(synth_words, synth_chars, eligible, train_t, vocabulary)
    out = {"min_words": VERBATIM_MIN_WORDS, "min_chars": VERBATIM_MIN_CHARS, "share_vs_train": share_train,
           "share_vs_holdout": None, "holdout_baseline_at_train_size": None,
           "by_rule": {"vs_train": by_rule_train, "vs_holdout": None},
           "n_checked": int(eligible.sum()), "n_train": len(train_t), "n_holdout": None}
    if hold_t is not None:
        share_hold, by_rule_hold = _span_share(synth_words, synth_chars, eligible, hold_t, vocabulary)
        out.update(share_vs_holdout=share_hold, n_holdout=len(hold_t),
                   holdout_baseline_at_train_size=_scaled_baseline(share_hold, len(hold_t), len(train_t)))
        out["by_rule"]["vs_holdout"] = by_rule_hold
    else:
        out["note"] = "no holdout: no baseline for the share vs train"
    return out


def _nearest_distances(queries, refs) -> np.ndarray:
    from sklearn.metrics import pairwise_distances_argmin_min

    _, distances = pairwise_distances_argmin_min(queries, refs, metric="cosine")
    return np.clip(distances, 0.0, 2.0)


def dcr_section(vectors, real_t, synth_t, hold_t, rng) -> tuple[dict, dict | None]:
    """Distance to closest record and exact copies, and the distances for the plot (None when not computed)."""
    train_set = {normalize_text(t) for t in real_t}
    synth_norm = [normalize_text(t) for t in synth_t]
    out = {"share_closer_to_train": None, "exact_match_train": None, "exact_match_holdout": None,
           "exact_match_holdout_at_train_size": None, "n_train": None, "n_holdout": None,
           "n_train_total": len(real_t), "n_synthetic": len(synth_t), "distance": vectors["dcr_space"],
           "pooled": None}
    if synth_t:
        out["exact_match_train"] = float(np.mean([t in train_set for t in synth_norm]))
    if hold_t is not None and synth_t:
        hold_set = {normalize_text(t) for t in hold_t}
        out["exact_match_holdout"] = float(np.mean([t in hold_set for t in synth_norm]))
        out["exact_match_holdout_at_train_size"] = _scaled_baseline(
            out["exact_match_holdout"], len(hold_t), len(real_t))
    if vectors["dcr"] is None or not synth_t or not real_t:
        out["note"] = "not available: too few texts"
        return out, None
    train, synth, hold = vectors["dcr"]
    to_train = _nearest_distances(synth, train)
    series = {"synthetic_to_train": to_train}
    if hold_t:
        # equal sizes, so that 0.5 means "no closer to training records than to unseen ones"
        size = min(len(real_t), len(hold_t))
        subset, hold_subset = subsample(len(real_t), size, rng), subsample(len(hold_t), size, rng)
        to_train_matched = _nearest_distances(synth, train[subset]) if size < len(real_t) else to_train
        to_hold = _nearest_distances(synth, hold)
        to_hold_matched = _nearest_distances(synth, hold[hold_subset]) if size < len(hold_t) else to_hold
        tie = np.isclose(to_train_matched, to_hold_matched, rtol=0, atol=1e-9)
        out["share_closer_to_train"] = float(np.mean(np.where(tie, 0.5, to_train_matched < to_hold_matched)))
        out["n_train"], out["n_holdout"] = size, size
        out["train_subsampled_to_holdout_size"] = size < len(real_t)
        out["holdout_subsampled_to_train_size"] = size < len(hold_t)
        out["pooled"] = _dcr_pooled(to_train, to_hold, len(real_t), len(hold_t), rng)
        out["median_distance"] = {"train": float(np.median(to_train)), "holdout": float(np.median(to_hold))}
        series = {"synthetic_to_train": to_train_matched, "synthetic_to_holdout": to_hold_matched}
    else:
        out["n_train"] = len(real_t)
        out["median_distance"] = {"train": float(np.median(to_train)), "holdout": None}
        out["note"] = "no holdout: share_closer_to_train not available"
    keep = subsample(len(synth_t), PLOT_POINTS, rng)
    return out, {name: np.round(values[keep], 5).tolist() for name, values in series.items()}


def _dcr_pooled(to_train, to_hold, n_train: int, n_holdout: int, rng) -> dict:
    """Is each synthetic text's nearest real text a training one, more often than chance?

    Training and holdout texts are a random split of one table, so a generator that learned only
    the distribution finds its nearest real text in training with probability
    p0 = n_train / (n_train + n_holdout), whatever its quality. All training texts are used (a
    subsample to the holdout's size dilutes copies: 100% copies then score ~0.56 with a 90/10
    split). Ties are drawn at p0, neither for nor against. ``excess`` rescales the share so that
    0 is chance and 1 is every text nearest to a training text; its interval is the exact
    (Clopper-Pearson) one of the share, rescaled the same way.
    """
    expected = n_train / (n_train + n_holdout)
    tie = np.isclose(to_train, to_hold, rtol=0, atol=1e-9)
    nearest_train = np.where(tie, rng.random(len(to_train)) < expected, to_train < to_hold)
    hits, trials = int(nearest_train.sum()), len(nearest_train)
    low, high = clopper_pearson(hits, trials)

    def scale(share):
        return float((share - expected) / (1 - expected))

    return {"share_nearest_is_train": hits / trials, "expected_without_memorization": expected,
            "excess": scale(hits / trials), "excess_ci95": [scale(low), scale(high)],
            "n_ties": int(tie.sum()), "n_synthetic": trials}

"""The generalisation lattice: the recoding with least information loss that reaches k, keeping what matters.

``privacy.keep`` names the quasi-identifiers the researchers need most (e.g. the
municipality). Fixed global recoding followed by local suppression gives up whatever
the heuristic finds cheapest per record, and on linked waves that is often the
municipality. Here, as in ARX (Prasser & Kohlmayer 2015), each quasi-identifier has a
hierarchy of recodings, from the study's ``privacy.share_recoding`` (the least
generalisation the study allows) up to dropping the column:

* ``age_bands``: school-age bands -> wide bands (under 13, 13-18, 19+) -> dropped;
* ``grade_bands``: school stages -> wide stages (1-6, 7-9, 10-12) -> dropped;
* ``county_if_small``: municipality (small ones merged into their county) -> dropped
  (the ``county`` column still says where);
* ``keep`` (any other key): the value -> dropped.

A node of the lattice picks one level per quasi-identifier. Every node is evaluated (the
lattices here are small: a few hundred nodes), by the records whose pupil's linked key
history (the waves present and each wave's key, pipelines/privacy/shareable.py) has fewer
than k - 1 others. A node is **feasible** when at most ``privacy.max_suppressed_share``
of the records are below k (ARX's suppression limit): local suppression then takes care of
them, suppressing the kept variables last. The kept variables stay at their first level
whenever a feasible node allows it (else the search is repeated over the whole lattice and
the report says so). Among the feasible nodes the search takes the one with the least loss:

``loss(node) = mean over keys of (1 - H(level) / H(first level)) + share of records below k``

where H is the entropy of the key's released distribution (missing as a value): ARX's
non-uniform entropy, normalised per variable, plus the records left to suppression. Ties:
the node with the lower levels overall, then the first in lattice order (deterministic).

Only counts and entropies are computed here; no value leaves this module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.privacy import disclosure

#: Wide age bands: under 13, 13-18, 19 and over.
WIDE_AGE_EDGES = (0, 13, 19, 120)
#: Wide grade stages: the first two school stages together, basic school's last stage, upper secondary.
WIDE_STAGES: Mapping[str, tuple[int, int]] = {"1-6": (1, 6), "7-9": (7, 9), "10-12": (10, 12)}
DROPPED = "drop"

#: Levels per share_recoding method (from the study's least generalisation to dropped).
HIERARCHIES: Mapping[str, tuple[str, ...]] = {
    "age_bands": ("age_bands", "wide_age_bands", DROPPED),
    "grade_bands": ("grade_bands", "wide_grade_bands", DROPPED),
    "county_if_small": ("county_if_small", DROPPED),
    "keep": ("keep", DROPPED),
}


def _drop(values: pd.Series) -> pd.Series:
    return pd.Series(pd.NA, index=values.index, name=values.name, dtype="string")


def level_function(level: str, county_names: Mapping[str, str], small_municipality: int
                   ) -> Callable[[pd.Series], pd.Series]:
    """The recoding of one level, applied to the anon column (before any recoding)."""
    functions: dict[str, Callable[[pd.Series], pd.Series]] = {
        "keep": lambda s: s,
        "age_bands": disclosure.age_bands,
        "wide_age_bands": lambda s: disclosure.age_bands(s, WIDE_AGE_EDGES),
        "grade_bands": disclosure.grade_bands,
        "wide_grade_bands": lambda s: disclosure.grade_bands(s, WIDE_STAGES),
        "county_if_small": lambda s: disclosure.merge_small_municipalities(s, county_names, max(small_municipality, 1)),
        DROPPED: _drop,
    }
    return functions[level]


def _entropy(codes: np.ndarray) -> float:
    counts = np.unique(codes, return_counts=True)[1].astype(float)
    p = counts / counts.sum() if counts.sum() else counts
    return float(-(p * np.log2(p)).sum()) if len(p) else 0.0


@dataclass(frozen=True)
class SearchResult:
    """The chosen node: ``levels`` (key -> level name), the recoded keys (``frame``), what it cost.

    ``variable_loss``: key -> 1 - H(level)/H(first level); ``below_k``: records below k at
    the node (left to local suppression); ``nodes``: nodes evaluated; ``feasible``: how
    many met the suppression limit; ``kept_relaxed``: True when no feasible node kept the
    kept variables at their first level.
    """

    levels: dict[str, str]
    frame: pd.DataFrame
    variable_loss: dict[str, float]
    loss: float
    below_k: int
    nodes: int
    feasible: int
    kept_relaxed: bool


def _person_layout(persons: pd.Series, waves: pd.Series) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per record its person's row and its wave's slot (a record without a person is a person of its own)."""
    ids = persons.astype("string").to_numpy(dtype=object)
    ids = np.array([f"(record {i})" if v is pd.NA or v is None else str(v) for i, v in enumerate(ids)], dtype=object)
    person_idx, _ = pd.factorize(ids)
    wave_idx, wave_values = pd.factorize(waves.astype("string").fillna("(missing)"))
    return person_idx, wave_idx, int(person_idx.max()) + 1 if len(person_idx) else 0, len(wave_values)


def _fold(columns: Sequence[np.ndarray], widths: Sequence[int]) -> np.ndarray | None:
    """Non-negative code columns (column j below widths[j]) as one int64 per row, equal iff the rows are.

    None when the mixed-radix code would not fit in 62 bits (the caller then hashes).
    """
    span = 1
    for width in widths:
        span *= max(int(width), 1)
    if span >= 2**62:
        return None
    folded = np.zeros(len(columns[0]) if len(columns) else 0, dtype=np.int64)
    for column, width in zip(columns, widths):
        folded *= max(int(width), 1)
        folded += column
    return folded


def _record_codes(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """One code per record (0 .. distinct - 1) for its key, and how many there are."""
    ids = disclosure.row_classes(codes)
    return ids, int(ids.max()) + 1 if len(ids) else 0


def _linked_sizes(record: np.ndarray, distinct: int, person_idx: np.ndarray, wave_idx: np.ndarray, persons: int,
                  waves: int) -> np.ndarray:
    """Per record, the persons with its person's history of record codes (0 .. distinct - 1; absent as its own)."""
    history = np.zeros((persons, waves), dtype=np.int64)  # 0: the person is not in the wave
    history[person_idx, wave_idx] = record + 1
    folded = _fold([history[:, w] for w in range(waves)], [distinct + 1] * waves)
    sizes = disclosure.class_sizes(folded[:, None] if folded is not None else history)
    return sizes[person_idx].astype(float)


def linked_fk(codes: np.ndarray, person_idx: np.ndarray, wave_idx: np.ndarray, persons: int, waves: int) -> np.ndarray:
    """Per record: persons sharing its person's whole key history (absent waves are a value, so is missing).

    ``codes``: records x keys integer codes (missing as its own code). The same classes as
    shareable.person_keys / record_fk, computed on integer arrays: each record's key is
    numbered first, then each person's row of numbers over the waves is classed.
    """
    if len(codes) == 0:
        return np.zeros(0)
    record, distinct = _record_codes(codes)
    return _linked_sizes(record, distinct, person_idx, wave_idx, persons, waves)


def wave_fk(codes: np.ndarray, wave_idx: np.ndarray) -> np.ndarray:
    """Per record: records of its wave with the same key."""
    if len(codes) == 0:
        return np.zeros(0)
    return disclosure.class_sizes(np.column_stack([wave_idx, codes])).astype(float)


def search(base: pd.DataFrame, keys: Sequence[str], hierarchies: Mapping[str, Sequence[str]], keep: Sequence[str],
           k: int, max_share: float, *, person: str | None, stratum: str | None,
           county_names: Mapping[str, str], small_municipality: int) -> SearchResult:
    """Evaluate every node of the lattice over ``keys`` and return the one with least loss.

    ``base``: the anon records (keys at full detail); ``hierarchies``: key -> level names;
    ``keep``: keys to keep at their first level when a feasible node allows it; ``person``
    and ``stratum``: the pseudonym and wave columns when waves link (else classes within
    the stratum, or over the table).
    """
    keys = list(keys)
    n = len(base)
    recoded: dict[str, list[pd.Series]] = {}
    codes: dict[str, list[np.ndarray]] = {}
    entropies: dict[str, list[float]] = {}
    for key in keys:
        series = [level_function(level, county_names, small_municipality)(base[key]).rename(key)
                  for level in hierarchies[key]]
        recoded[key] = series
        codes[key] = [pd.factorize(s.astype("string"), use_na_sentinel=True)[0].astype(np.int64) for s in series]
        entropies[key] = [_entropy(c) for c in codes[key]]
    # Each node's key per record is folded from these (codes + 1 >= 0, below the width) without
    # hashing every column again: the lattice evaluates hundreds of nodes over the same records.
    shifted = {key: [c + 1 for c in codes[key]] for key in keys}
    widths = {key: [int(c.max()) + 1 if len(c) else 1 for c in shifted[key]] for key in keys}

    def record_codes(node: tuple) -> tuple[np.ndarray, int]:
        folded = _fold([shifted[key][level] for key, level in zip(keys, node)],
                       [widths[key][level] for key, level in zip(keys, node)])
        if folded is None or not keys:
            return _record_codes(np.column_stack([codes[key][level] for key, level in zip(keys, node)])
                                 if keys else np.zeros((n, 1), dtype=np.int64))
        record, uniques = pd.factorize(folded)
        return record.astype(np.int64, copy=False), len(uniques)

    if person is not None and stratum is not None:
        person_idx, wave_idx, n_persons, n_waves = _person_layout(base[person], base[stratum])

        def fk_of(node: tuple) -> np.ndarray:
            return _linked_sizes(*record_codes(node), person_idx, wave_idx, n_persons, n_waves)
    else:
        strata = (pd.factorize(base[stratum].astype("string").fillna("(missing)"))[0] if stratum is not None
                  else np.zeros(n, dtype=np.int64))

        def fk_of(node: tuple) -> np.ndarray:
            return disclosure.class_sizes(np.column_stack([strata, record_codes(node)[0]])).astype(float)

    def variable_loss(key: str, level: int) -> float:
        first = entropies[key][0]
        return 0.0 if first <= 0 else max(0.0, 1.0 - entropies[key][level] / first)

    def evaluate(fixed: set[str]) -> list[tuple]:
        ranges = [range(1) if key in fixed else range(len(hierarchies[key])) for key in keys]
        results = []
        for node in itertools.product(*ranges):
            below = int((fk_of(node) < k).sum()) if n else 0
            if n and below / n > max_share:
                continue
            loss = float(np.mean([variable_loss(key, level) for key, level in zip(keys, node)])) + (below / n if n else 0)
            results.append((round(loss, 12), sum(node), node, below))
        return results

    total = int(np.prod([len(hierarchies[key]) for key in keys])) if keys else 1
    feasible = evaluate(set(keep) & set(keys))
    relaxed = False
    if not feasible:
        feasible = evaluate(set())
        relaxed = True
    if not feasible:  # nothing meets the limit: the top of the lattice (every key dropped) is the answer
        top = tuple(len(hierarchies[key]) - 1 for key in keys)
        below = int((fk_of(top) < k).sum()) if n else 0
        feasible = [(float("inf"), sum(top), top, below)]
    loss, _, node, below = min(feasible, key=lambda r: (r[0], r[1], r[2]))
    frame = pd.DataFrame({key: recoded[key][level] for key, level in zip(keys, node)}, index=base.index)
    return SearchResult(levels={key: hierarchies[key][level] for key, level in zip(keys, node)}, frame=frame,
                        variable_loss={key: variable_loss(key, level) for key, level in zip(keys, node)},
                        loss=loss, below_k=below, nodes=total, feasible=len(feasible), kept_relaxed=relaxed)

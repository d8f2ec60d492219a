"""Disclosure risk of microdata, and the recoding and suppression that reduce it.

The measures are those of sdcMicro (Templ, Kowarik & Meindl 2015, JSS 67(4)) and ARX, so
that a number here means what it means there:

* ``fk``: sample frequency of a record's key (its equivalence class size over the
  quasi-identifiers); ``Fk``: the weighted population frequency, the sum of the sampling
  weights in the class (sdcMicro ``freqCalc``).
* individual risk ``rk``: sdcMicro's ``indivRisk(method = "approx")``, the approximation
  of Franconi & Polettini (2004) to the Benedetti-Franconi posterior risk, with
  ``pk = fk / Fk``; a class whose weights show it is the whole population (``fk == Fk``)
  gets ``1 / fk``, and without weights ``Fk = fk`` so ``rk = 1 / fk``.
* l-diversity: distinct l, the number of distinct non-missing values of a sensitive
  variable within the record's class (Machanavajjhala et al. 2007; sdcMicro
  ``ldiversity``'s ``Distinct_Ldiversity``). Missing sensitive values are not counted
  as a value, which can only lower l.
* expected re-identifications: the sum of individual risks (sdcMicro's ``risk_ER``);
  ARX's average prosecutor risk: equivalence classes / records (the mean of ``1 / fk``
  over records when classes partition the records).
* k-anonymity fails for a record with ``fk < k`` (not mu-ARGUS's ``fk <= k``).

Missing values in quasi-identifiers follow one of two declared rules:

* ``"own_category"`` (project default): missing is a value like any other, so a record
  with a missing key only shares a class with records missing the same keys. This never
  over-states safety (every class is a subset of the wildcard class below) and it is
  ARX's semantics for suppressed values (``*`` is a generalisation level): a released
  file shows the gap, so an attacker can use it.
* ``"matches_any"``: sdcMicro's default (``alpha = 1``), missing matches every value,
  so a record's class is every record compatible with it. Offered to compare with
  sdcMicro's published numbers; it over-counts safety (two records compatible with a
  third need not be compatible with each other).

Information loss of recoding and suppression is reported as suppressed values per
column, the share of records changed, and the discernibility metric (Bayardo & Agrawal
2005; ARX's "discernibility"): the sum over records of their class size, i.e. the sum of
squared class sizes, before and after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyses.tidy import tidy_frame

OWN_CATEGORY = "own_category"
MATCHES_ANY = "matches_any"
MISSING_RULES = (OWN_CATEGORY, MATCHES_ANY)
DEFAULT_MISSING_RULE = OWN_CATEGORY

_RULE_LABEL = {
    OWN_CATEGORY: "missing quasi-identifier is its own category",
    MATCHES_ANY: "missing quasi-identifier matches any value (sdcMicro alpha=1)",
}
RISK_METHOD = "sdcMicro indivRisk approx (Franconi & Polettini 2004)"

#: Estonian school stages (kooliastmed), the default grade bands.
SCHOOL_STAGES: Mapping[str, tuple[int, int]] = {
    "1-3": (1, 3),
    "4-6": (4, 6),
    "7-9": (7, 9),
    "10-12": (10, 12),
}


def _key_codes(frame: pd.DataFrame, quasi_identifiers: Sequence[str]) -> np.ndarray:
    """Integer codes per key column, -1 for missing (values never leave this function)."""
    if not quasi_identifiers:
        raise ValueError("at least one quasi-identifier is needed")
    missing = [column for column in quasi_identifiers if column not in frame.columns]
    if missing:
        raise KeyError(f"quasi-identifiers not in the table: {missing}")
    columns = [pd.factorize(frame[column], use_na_sentinel=True)[0] for column in quasi_identifiers]
    return np.column_stack(columns).astype(np.int64)


def _check_rule(missing: str) -> None:
    if missing not in MISSING_RULES:
        raise ValueError(f"missing must be one of {MISSING_RULES}, got {missing!r}")


def row_classes(codes: np.ndarray) -> np.ndarray:
    """Per row of an integer matrix, the id (0 .. classes - 1) of its distinct row.

    The same partition as ``np.unique(codes, axis=0, return_inverse=True)`` in linear
    time: the columns are folded into one int64 per row (mixed radix, the running code
    renumbered by hashing before it could overflow), then factorised. Ids are numbered in
    order of first appearance, not sorted; callers use the partition only.
    """
    codes = np.asarray(codes)
    n = codes.shape[0]
    if codes.ndim != 2:
        raise ValueError("codes must be a records x columns matrix")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    combined = np.zeros(n, dtype=np.int64)
    span = 1  # combined lies in [0, span)
    for j in range(codes.shape[1]):
        column = codes[:, j].astype(np.int64, copy=False)
        low = int(column.min())
        width = int(column.max()) - low + 1
        if span * width >= 2**62:
            combined, uniques = pd.factorize(combined)
            combined, span = combined.astype(np.int64, copy=False), max(len(uniques), 1)
        combined = combined * width + (column - low)
        span *= width
    return pd.factorize(combined)[0].astype(np.int64, copy=False)


def class_sizes(codes: np.ndarray) -> np.ndarray:
    """Per row: how many rows of ``codes`` are equal to it (the class size, as int64)."""
    ids = row_classes(codes)
    return np.bincount(ids)[ids] if len(ids) else np.zeros(0, dtype=np.int64)


def _class_ids(codes: np.ndarray) -> np.ndarray:
    """Equivalence class id per record, missing (-1) treated as its own category."""
    return row_classes(codes)


def _wildcard_frequencies(codes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fk and Fk when missing matches any value, exact and without an n x n comparison.

    Distinct keys are grouped by their pattern of present columns; two keys are
    compatible when they agree on the columns present in both, so for each pair of
    patterns the counts of one are summed by the shared columns and looked up by the
    other. Cost: patterns squared times distinct keys.
    """
    keys, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    key_count = np.bincount(inverse, minlength=len(keys)).astype(float)
    key_weight = np.bincount(inverse, weights=weights, minlength=len(keys))
    present = keys >= 0
    patterns, pattern_of_key = np.unique(present, axis=0, return_inverse=True)
    pattern_of_key = pattern_of_key.reshape(-1)
    fk_key = np.zeros(len(keys))
    Fk_key = np.zeros(len(keys))
    for p, pattern_p in enumerate(patterns):
        rows_p = np.flatnonzero(pattern_of_key == p)
        for q, pattern_q in enumerate(patterns):
            rows_q = np.flatnonzero(pattern_of_key == q)
            shared = np.flatnonzero(pattern_p & pattern_q)
            if shared.size == 0:
                fk_key[rows_p] += key_count[rows_q].sum()
                Fk_key[rows_p] += key_weight[rows_q].sum()
                continue
            sums = (
                pd.DataFrame(keys[np.ix_(rows_q, shared)])
                .assign(_n=key_count[rows_q], _w=key_weight[rows_q])
                .groupby(list(range(shared.size)), sort=False)[["_n", "_w"]]
                .sum()
            )
            lookup = pd.MultiIndex.from_arrays([keys[rows_p, s] for s in shared]) if shared.size > 1 else pd.Index(keys[rows_p, shared[0]])
            matched = sums.reindex(lookup).fillna(0.0).to_numpy()
            fk_key[rows_p] += matched[:, 0]
            Fk_key[rows_p] += matched[:, 1]
    return fk_key[inverse], Fk_key[inverse]


def key_frequencies(
    frame: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    *,
    weights: str | None = None,
    missing: str = DEFAULT_MISSING_RULE,
) -> pd.DataFrame:
    """Per record ``fk`` (class size) and ``Fk`` (sum of sampling weights in the class).

    Without ``weights`` every record weighs 1, so ``Fk == fk``. The result has the
    frame's index and columns ``fk`` (Int64) and ``Fk`` (float).
    """
    _check_rule(missing)
    codes = _key_codes(frame, quasi_identifiers)
    if weights is None:
        w = np.ones(len(frame))
    else:
        w = pd.to_numeric(frame[weights], errors="raise").to_numpy(dtype=float)
        if np.isnan(w).any() or (w <= 0).any():
            raise ValueError(f"sampling weights in {weights!r} must be positive and not missing")
    if missing == OWN_CATEGORY:
        ids = _class_ids(codes)
        fk = np.bincount(ids)[ids].astype(float)
        Fk = np.bincount(ids, weights=w)[ids]
    else:
        fk, Fk = _wildcard_frequencies(codes, w)
    return pd.DataFrame(
        {"fk": pd.array(np.rint(fk).astype(np.int64), dtype="Int64"), "Fk": Fk}, index=frame.index
    )


def individual_risk(fk: Sequence[float] | np.ndarray, Fk: Sequence[float] | np.ndarray) -> np.ndarray:
    """sdcMicro's individual risk, approximate method (``indivRisk(method="approx")``).

    With ``pk = fk / Fk``: ``fk == 1``: ``pk / (1 - pk) * log(1 / pk)``; ``fk == 2``:
    ``pk / (1 - pk) - (pk / (1 - pk))^2 * log(1 / pk)``; ``fk > 2``:
    ``pk / (fk - (1 - pk))``; and ``1 / fk`` where ``fk == Fk``.
    """
    fk = np.asarray(fk, dtype=float)
    Fk = np.asarray(Fk, dtype=float)
    if (Fk < fk - 1e-9).any():
        raise ValueError("Fk below fk: sampling weights must be at least 1")
    census = np.isclose(fk, Fk)
    pk = np.where(census, 0.5, fk / Fk)
    odds = pk / (1 - pk)
    risk = np.where(
        fk == 1,
        odds * np.log(1 / pk),
        np.where(fk == 2, odds - odds**2 * np.log(1 / pk), pk / (fk - (1 - pk))),
    )
    return np.where(census, 1 / fk, risk)


def l_diversity(
    frame: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: Iterable[str]
) -> pd.DataFrame:
    """Distinct l per record for each sensitive column (columns ``l_<name>``).

    Classes are always formed with missing keys as their own category: the conservative
    partition, whatever rule ``fk`` uses.
    """
    ids = pd.Series(_class_ids(_key_codes(frame, quasi_identifiers)), index=frame.index)
    result = {}
    for column in sensitive:
        distinct = frame[column].groupby(ids.to_numpy()).transform("nunique")
        result[f"l_{column}"] = pd.array(distinct.to_numpy(), dtype="Int64")
    return pd.DataFrame(result, index=frame.index)


def record_risk(
    frame: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    *,
    weights: str | None = None,
    sensitive: Iterable[str] = (),
    missing: str = DEFAULT_MISSING_RULE,
) -> pd.DataFrame:
    """Per record ``class_id``, ``fk``, ``Fk``, ``risk`` and ``l_<sensitive>``.

    ``class_id`` numbers the distinct keys (missing as its own category); the table is on
    the frame's index.

    A working table for the gate and for local suppression: it is about individual
    records and is never published; publish :func:`risk_summary` instead.
    """
    frequencies = key_frequencies(frame, quasi_identifiers, weights=weights, missing=missing)
    frequencies.insert(0, "class_id", _class_ids(_key_codes(frame, quasi_identifiers)))
    frequencies["risk"] = individual_risk(frequencies["fk"].to_numpy(float), frequencies["Fk"].to_numpy())
    return frequencies.join(l_diversity(frame, quasi_identifiers, sensitive))


def risk_summary(
    risks: pd.DataFrame, *, k: int = 5, l: int = 2, missing: str = DEFAULT_MISSING_RULE
) -> pd.DataFrame:
    """The disclosure summary for ``meta.disclosure`` as a tidy table.

    ``risks`` is :func:`record_risk`'s output. Rows (``measure``): records,
    equivalence_classes (distinct keys, missing as own category), records_below_k,
    share_below_k, expected_reidentifications (sum of risks), mean_individual_risk,
    max_individual_risk, arx_average_risk (classes / records), fk_min, fk_median,
    fk_distribution (one row per class-size band, ``variable`` = band, estimate = records)
    and, per sensitive column, l_min and records_below_l (``variable`` = column).
    """
    _check_rule(missing)
    fk = risks["fk"].to_numpy(dtype=float)
    n = len(risks)
    rule = _RULE_LABEL[missing]
    rows: list[dict] = []

    def add(measure: str, estimate: float, method: str, variable: str = "", threshold: float = np.nan) -> None:
        rows.append(
            {
                "analysis": "disclosure_risk",
                "measure": measure,
                "variable": variable,
                "estimate": estimate,
                "n": n,
                "threshold": threshold,
                "method": method,
                "correction": rule,
            }
        )

    below = float((fk < k).sum()) if n else 0.0
    add("records", n, "count")
    classes = float(risks["class_id"].nunique())
    add("equivalence_classes", classes, "count of distinct keys (missing as own category)")
    add("records_below_k", below, "k-anonymity: fk < k", threshold=k)
    add("share_below_k", below / n if n else np.nan, "k-anonymity: fk < k", threshold=k)
    add("expected_reidentifications", float(risks["risk"].sum()), f"sum of individual risk; {RISK_METHOD}")
    add("mean_individual_risk", float(risks["risk"].mean()) if n else np.nan, RISK_METHOD)
    add("max_individual_risk", float(risks["risk"].max()) if n else np.nan, RISK_METHOD)
    add("arx_average_risk", classes / n if n else np.nan, "ARX average prosecutor risk: classes / records")
    add("fk_min", float(fk.min()) if n else np.nan, "minimum class size")
    add("fk_median", float(np.median(fk)) if n else np.nan, "median class size over records")
    bands = [(1, 1, "1"), (2, 2, "2"), (3, 4, "3-4"), (5, 9, "5-9"), (10, 19, "10-19"), (20, np.inf, "20+")]
    for low, high, label in bands:
        add("fk_distribution", float(((fk >= low) & (fk <= high)).sum()), "records by class size", variable=label)
    for column in [c for c in risks.columns if c.startswith("l_")]:
        values = risks[column].to_numpy(dtype=float)
        name = column[2:]
        add("l_min", float(np.nanmin(values)) if n else np.nan, "distinct l-diversity", variable=name)
        add("records_below_l", float((values < l).sum()), "distinct l-diversity: l < threshold", variable=name, threshold=l)
    return tidy_frame(rows, id_columns=["analysis", "measure", "variable"], extra_columns=["threshold"])


def band(values: pd.Series, edges: Sequence[float]) -> pd.Series:
    """Global recoding of a number into closed integer bands ``"lo-hi"`` (missing stays).

    ``edges`` are the lower bounds of consecutive bands, the last one the exclusive upper
    end: ``(6, 10, 13, 16, 20)`` gives 6-9, 10-12, 13-15, 16-19. Values outside the
    edges become missing (they are out of range, not a new category).
    """
    edges = list(edges)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError("band edges must be at least two increasing numbers")
    labels = [f"{low:g}-{high - 1:g}" for low, high in zip(edges, edges[1:])]
    numbers = pd.to_numeric(values, errors="raise")
    banded = pd.cut(numbers, bins=edges, right=False, labels=labels)
    return pd.Series(banded.astype("string"), index=values.index, name=values.name)


def age_bands(ages: pd.Series, edges: Sequence[float] = (0, 7, 10, 13, 16, 19, 120)) -> pd.Series:
    """Ages in bands; the default follows school ages (under 7, 7-9, 10-12, 13-15, 16-18, 19+)."""
    return band(ages, edges)


def grade_bands(grades: pd.Series, stages: Mapping[str, tuple[int, int]] = SCHOOL_STAGES) -> pd.Series:
    """Grades 1-12 in school stages (default: the Estonian kooliastmed 1-3, 4-6, 7-9, 10-12)."""
    numbers = pd.to_numeric(grades, errors="raise")
    recoded = pd.Series(pd.NA, index=grades.index, name=grades.name, dtype="string")
    for label, (low, high) in stages.items():
        recoded[(numbers >= low) & (numbers <= high)] = label
    return recoded


def year_month(dates: pd.Series) -> pd.Series:
    """Dates as "YYYY-MM" text: the day of an event can single a pupil out, the month rarely."""
    parsed = pd.to_datetime(dates, errors="coerce")
    return parsed.dt.strftime("%Y-%m").astype("string").where(parsed.notna())


def merge_small_municipalities(
    municipalities: pd.Series, county_of: Mapping[str, str], min_records: int
) -> pd.Series:
    """Replace municipalities with fewer than ``min_records`` records by their county.

    ``county_of`` maps each municipality to its county label (the study configuration
    gives it). A small municipality without a county in the mapping is an error: the
    message counts them without naming them.
    """
    counts = municipalities.value_counts(dropna=True)
    small = [m for m, count in counts.items() if count < min_records]
    unmapped = [m for m in small if m not in county_of]
    if unmapped:
        raise ValueError(f"{len(unmapped)} small municipalities have no county in the mapping")
    replacement = {m: county_of[m] for m in small}
    merged = municipalities.astype("string").replace(replacement)
    return merged.rename(municipalities.name)


@dataclass(frozen=True)
class SuppressionResult:
    """Outcome of :func:`local_suppression`.

    ``frame``: the input with suppressed quasi-identifier values set to missing;
    ``suppressed``: boolean mask (records x quasi-identifiers) of the new suppressions;
    ``reached``: whether every record now has ``fk >= k`` under the chosen rule.
    """

    frame: pd.DataFrame
    suppressed: pd.DataFrame
    reached: bool


def _importance_order(frame: pd.DataFrame, quasi_identifiers: Sequence[str], importance: Sequence[str] | None) -> list[str]:
    """Quasi-identifiers in the order they are given up: least important first."""
    if importance is None:
        # sdcMicro's default: more categories means less important.
        cardinality = {c: frame[c].nunique(dropna=True) for c in quasi_identifiers}
        return sorted(quasi_identifiers, key=lambda c: (-cardinality[c], list(quasi_identifiers).index(c)))
    if sorted(importance) != sorted(quasi_identifiers):
        raise ValueError("importance must list every quasi-identifier exactly once")
    return list(reversed(list(importance)))


def local_suppression(
    frame: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    *,
    k: int = 5,
    importance: Sequence[str] | None = None,
    missing: str = DEFAULT_MISSING_RULE,
) -> SuppressionResult:
    """Set few quasi-identifier values to missing until every record has ``fk >= k``.

    The heuristic of sdcMicro's ``localSuppression``: records with ``fk < k`` lose one
    value per round, the least important variable that helps. ``importance`` lists the
    quasi-identifiers from most to least important (kept longest to given up first); by
    default, as in sdcMicro, variables with more categories are less important. In each
    round a problem record gives up the least important variable whose suppression
    lifts it to ``k``, or else the one that raises its ``fk`` most (ties: least
    important). Rounds repeat until k-anonymity holds or nothing is left to suppress
    (``reached`` is then False: with the own-category rule fewer than k fully suppressed
    records cannot blend in; the caller must drop or merge them).
    """
    _check_rule(missing)
    order = _importance_order(frame, quasi_identifiers, importance)
    columns = list(quasi_identifiers)
    position = [columns.index(c) for c in order]  # order -> column of ``codes``
    # Worked on integer codes (-1: missing), as key_frequencies forms classes: setting a
    # value to missing is setting its code to -1, the same partition as re-factorising.
    codes = _key_codes(frame, columns)
    done = np.zeros(codes.shape, dtype=bool)
    weights = np.ones(len(frame))

    def frequencies(matrix: np.ndarray) -> np.ndarray:
        if missing == OWN_CATEGORY:
            return class_sizes(matrix).astype(float)
        return np.rint(_wildcard_frequencies(matrix, weights)[0])

    reached = False
    while True:
        fk = frequencies(codes)
        problem = fk < k
        if not problem.any():
            reached = True
            break
        gains = np.full((len(frame), len(order)), -np.inf)
        for j, column in enumerate(position):
            candidates = problem & (codes[:, column] >= 0)
            if not candidates.any():
                continue
            trial = codes.copy()
            trial[candidates, column] = -1
            gains[candidates, j] = frequencies(trial)[candidates]
        # Each problem record's choice depends on this round's gains only, so all are made at once.
        rows = np.flatnonzero(problem)
        options = gains[rows]
        open_rows = ~np.isneginf(options).all(axis=1)
        if not open_rows.any():
            break
        rows, options = rows[open_rows], options[open_rows]
        reaching = options >= k
        choice = np.where(reaching.any(axis=1), reaching.argmax(axis=1), options.argmax(axis=1))
        chosen = np.asarray(position)[choice]
        codes[rows, chosen] = -1
        done[rows, chosen] = True
    result = frame.copy()
    for j, column in enumerate(columns):
        hit = np.flatnonzero(done[:, j])
        if hit.size:
            result.iloc[hit, result.columns.get_loc(column)] = pd.NA
    return SuppressionResult(result, pd.DataFrame(done, index=frame.index, columns=columns), reached)


def information_loss(
    original: pd.DataFrame,
    anonymised: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    *,
    missing: str = DEFAULT_MISSING_RULE,
) -> pd.DataFrame:
    """What recoding and suppression cost, as a tidy table.

    Rows (``measure``): suppressed_values per quasi-identifier (values present before and
    missing after; ``variable`` = column), suppressed_values_total, records_changed
    and share_records_changed (any quasi-identifier differs, missing compared as a
    value), discernibility_before / discernibility_after (sum over records of their
    class size) and average_class_size_before / _after (records / classes).
    """
    if not original.index.equals(anonymised.index):
        raise ValueError("original and anonymised tables must have the same records in the same order")
    n = len(original)
    rule = _RULE_LABEL[missing]
    rows: list[dict] = []

    def add(measure: str, estimate: float, method: str, variable: str = "") -> None:
        rows.append(
            {"analysis": "information_loss", "measure": measure, "variable": variable,
             "estimate": estimate, "n": n, "method": method, "correction": rule}
        )

    total = 0
    changed = np.zeros(n, dtype=bool)
    for column in quasi_identifiers:
        before = original[column]
        after = anonymised[column]
        lost = int((before.notna() & after.isna()).sum())
        total += lost
        add("suppressed_values", lost, "values present before and missing after", column)
        same = (before.astype("string") == after.astype("string")).fillna(False).to_numpy(dtype=bool)
        both_missing = (before.isna() & after.isna()).to_numpy()
        changed |= ~(same | both_missing)
    add("suppressed_values_total", total, "values present before and missing after")
    add("records_changed", float(changed.sum()), "records with any quasi-identifier changed")
    add("share_records_changed", float(changed.mean()) if n else np.nan, "records with any quasi-identifier changed")
    for label, table in (("before", original), ("after", anonymised)):
        fk = key_frequencies(table, quasi_identifiers, missing=missing)["fk"].to_numpy(dtype=float)
        add(f"discernibility_{label}", float(fk.sum()), "discernibility metric: sum of class size over records")
        ids = row_classes(_key_codes(table, quasi_identifiers))
        classes = int(ids.max()) + 1 if len(ids) else 0
        add(f"average_class_size_{label}", n / classes if n else np.nan, "records / equivalence classes")
    return tidy_frame(rows, id_columns=["analysis", "measure", "variable"])

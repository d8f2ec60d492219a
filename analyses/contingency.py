"""Fisher's exact test (2 x 2 and r x c) and Cramér's V with its confidence interval.

* :func:`fisher_test` is R's ``fisher.test``. A 2 x 2 table gives the two-sided p-value
  (tables no more probable than the observed, R's relative tolerance 1e-7), the
  conditional maximum-likelihood odds ratio and its exact conditional interval
  (scipy's ``contingency.odds_ratio(kind = "conditional")``: R's definitions, solved
  to full precision where R's ``uniroot`` stops at its default tolerance, ~1e-5). An
  r x c table gives the exact p-value by a network algorithm (Mehta & Patel 1983):
  tables are built column by column, and partial tables whose completions are settled
  (all, or none, at most as probable as the observed table) are summed in closed form
  without enumeration, so a table of a few hundred pupils over three categories is
  exact in under a second (3 x 3, n = 248: 0.5 s). Where the work would exceed
  ``max_work`` (larger tables) the p-value is Monte Carlo (``simulate.p.value = TRUE``,
  B draws with the given seed) and the row says so in ``method`` and ``warning``.
* :func:`cramers_v` is effectsize's ``cramers_v`` (0.8.3): V from Pearson's X^2, by
  default bias-adjusted (Bergsma 2013: phi^2 - df / (n - 1), and the adjusted
  numbers of rows and columns), with the CI from inverting the noncentral chi-square
  of X^2 (Steiger 2004): one-sided ("greater", upper limit 1, effectsize's default) or
  two-sided. effectsize finds the noncentrality limits by ``optim`` (~1e-5); ours are
  exact roots.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from analyses.tidy import tidy_frame

FISHER_EXACT = "fisher_exact"
FISHER_MONTE_CARLO = "fisher_monte_carlo"
CONDITIONAL_MLE = "conditional_mle_exact_ci"
CRAMERS_V = "cramers_v"
NCP_ONE_SIDED = "noncentral_chisq_inversion_one_sided"
NCP_TWO_SIDED = "noncentral_chisq_inversion_two_sided"
ADJUSTED = "bias_adjusted_bergsma"
NOT_ENUMERABLE = "exact_enumeration_infeasible_monte_carlo"
#: R's fisher.test: tables with probability <= (1 + 1e-7) * P(observed) count as extreme.
RELATIVE_ERROR = 1 + 1e-7
DEFAULT_MAX_WORK = 5_000_000
DEFAULT_REPLICATES = 20_000
DEFAULT_SEED = 20240515

TABLE_ID_COLUMNS = ("row_variable", "column_variable", "quantity")
TABLE_EXTRA_COLUMNS = ("odds_ratio", "df", "warning")


class EnumerationTooLarge(RuntimeError):
    """The exact enumeration would exceed its work budget."""


def _compositions(total: int, caps: tuple[int, ...]) -> np.ndarray:
    """Every vector of non-negative ints with the given sum, entry i at most caps[i] (one per row)."""
    out: list[list[int]] = []

    def extend(left: int, i: int, current: list[int]) -> None:
        if i == len(caps) - 1:
            if left <= caps[i]:
                out.append([*current, left])
            return
        rest = sum(caps[i + 1:])
        for value in range(max(0, left - rest), min(left, caps[i]) + 1):
            extend(left - value, i + 1, [*current, value])

    extend(total, 0, [])
    return np.array(out, dtype=np.int64).reshape(-1, len(caps))


def _exact_rxc_p(table: np.ndarray, max_work: int, max_grid: int = 2_000_000) -> float:
    """Exact p-value of Fisher's r x c test: a network algorithm with exact path bounds.

    Tables are built column by column (over the smaller dimension, largest columns first);
    a node is the vector of remaining row sums. Backwards over the columns, every node
    gets the smallest and largest sum of log x! over its completions (``low``, ``high``);
    forwards, each partial table (its past sum P, merged to 1e-9 with others of the same
    node) is settled without expanding where P + low already makes every completion at
    most as probable as the observed table (their whole probability, n'! / (prod R! prod
    C!) in closed form, is added) or P + high makes none so. The rest are expanded.
    """
    table = np.asarray(table, dtype=np.int64)
    if table.shape[0] > table.shape[1]:
        table = table.T
    rows = table.sum(axis=1)
    cols = np.sort(table.sum(axis=0))[::-1]
    r, k = len(rows), len(cols)
    n = int(table.sum())
    log_fact = special.gammaln(np.arange(n + 2) + 1.0)
    threshold = float(log_fact[table].sum()) - math.log(RELATIVE_ERROR) - 1e-9
    constant = float(log_fact[rows].sum() + log_fact[cols].sum() - log_fact[n])
    shape = tuple(int(v) + 1 for v in rows)
    if np.prod(shape, dtype=float) > max_grid:
        raise EnumerationTooLarge
    grid = np.indices(shape).reshape(r, -1).T
    remaining_total = [int(cols[j:].sum()) for j in range(k)]
    caps = tuple(int(v) for v in rows)
    columns = [_compositions(int(cols[j]), caps) for j in range(k)]
    costs = [log_fact[c].sum(axis=1) for c in columns]
    low = [np.full(shape, np.inf) for _ in range(k)]
    high = [np.full(shape, -np.inf) for _ in range(k)]
    nodes = grid[grid.sum(axis=1) == remaining_total[k - 1]]
    low[k - 1][tuple(nodes.T)] = high[k - 1][tuple(nodes.T)] = log_fact[nodes].sum(axis=1)
    work = 0
    for j in range(k - 2, -1, -1):
        for node in grid[grid.sum(axis=1) == remaining_total[j]]:
            fits = (columns[j] <= node).all(axis=1)
            children = tuple((node - columns[j][fits]).T)
            low[j][tuple(node)] = np.min(costs[j][fits] + low[j + 1][children])
            high[j][tuple(node)] = np.max(costs[j][fits] + high[j + 1][children])
            work += int(fits.sum())
            if work > max_work:
                raise EnumerationTooLarge
    p = 0.0
    level = {tuple(int(v) for v in rows): (np.zeros(1), np.ones(1))}
    for j in range(k):
        following: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
        for node, (past, multiplicity) in level.items():
            every = past + low[j][node] >= threshold
            if every.any():
                log_mass = log_fact[sum(node)] - log_fact[list(node)].sum() - log_fact[cols[j:]].sum()
                p += float(np.sum(multiplicity[every] * np.exp(constant - past[every] + log_mass)))
            open_ = ~every & (past + high[j][node] >= threshold)
            if not open_.any():
                continue
            fits = (columns[j] <= np.array(node)).all(axis=1)
            for column, cost in zip(columns[j][fits], costs[j][fits]):
                child = tuple(int(a - b) for a, b in zip(node, column))
                following.setdefault(child, []).append((past[open_] + cost, multiplicity[open_]))
            work += int(open_.sum()) * int(fits.sum())
            if work > max_work:
                raise EnumerationTooLarge
        level = {}
        for node, parts in following.items():
            merged = np.round(np.concatenate([a for a, _ in parts]), 9)
            unique, inverse = np.unique(merged, return_inverse=True)
            level[node] = (unique, np.bincount(inverse, weights=np.concatenate([b for _, b in parts])))
    return float(min(1.0, p))


def fisher_test(
    table: np.ndarray | pd.DataFrame, conf_level: float = 0.95, max_work: int = DEFAULT_MAX_WORK,
    replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
) -> dict:
    """Fisher's exact test of a contingency table of counts, as a dict of tidy fields.

    Rows or columns that are all zero are dropped first (R does the same). 2 x 2: the
    conditional MLE odds ratio in ``estimate`` and ``odds_ratio`` with its exact CI.
    """
    counts = np.asarray(table, dtype=float)
    if (counts < 0).any() or not np.allclose(counts, np.round(counts)):
        raise ValueError("a contingency table holds non-negative whole counts")
    counts = counts.astype(np.int64)
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    n = int(counts.sum())
    if counts.ndim != 2 or min(counts.shape) < 2:
        return {"n": n, "method": FISHER_EXACT, "warning": "fewer_than_two_levels"}
    if counts.shape == (2, 2):
        p = float(stats.fisher_exact(counts).pvalue)
        result = stats.contingency.odds_ratio(counts, kind="conditional")
        ci = result.confidence_interval(confidence_level=conf_level)
        return {"estimate": float(result.statistic), "odds_ratio": float(result.statistic), "p_value": p,
                "conf_low": float(ci.low), "conf_high": float(ci.high), "n": n, "df": np.nan,
                "method": FISHER_EXACT, "ci_method": CONDITIONAL_MLE}
    try:
        return {"p_value": _exact_rxc_p(counts, max_work), "n": n, "method": FISHER_EXACT}
    except EnumerationTooLarge:
        from analyses.associations import fisher_monte_carlo_p  # R's simulate.p.value (imported late: no cycle)

        return {"p_value": fisher_monte_carlo_p(counts, replicates, seed), "n": n, "method": FISHER_MONTE_CARLO,
                "correction": f"B={replicates}", "warning": NOT_ENUMERABLE}


def _ncp_limits(chisq: float, df: int, conf_level: float) -> tuple[float, float]:
    """Noncentrality parameters putting ``chisq`` at the upper / lower alpha/2 tail (0 when none)."""
    alpha = 1.0 - conf_level

    def root(target: float) -> float:
        if stats.chi2.cdf(chisq, df) <= target:
            return 0.0
        high = max(1.0, chisq)
        while stats.ncx2.cdf(chisq, df, high) > target:
            high *= 2.0
        return optimize.brentq(lambda ncp: stats.ncx2.cdf(chisq, df, ncp) - target, 0.0, high,
                               xtol=1e-12, rtol=1e-14)

    return root(1.0 - alpha / 2.0), root(alpha / 2.0)


def cramers_v(
    table: np.ndarray | pd.DataFrame, conf_level: float = 0.95, adjust: bool = True,
    alternative: str = "greater",
) -> dict:
    """Cramér's V of an r x c table with its noncentral chi-square CI (effectsize ``cramers_v``).

    ``alternative`` "greater" gives the one-sided interval [low, 1] at ``conf_level``
    (effectsize's default), "two.sided" the two-sided one. X^2 is Pearson's without a
    continuity correction, also for a 2 x 2 table (as effectsize computes it).
    """
    counts = np.asarray(table, dtype=float)
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    nrow, ncol = counts.shape
    n = counts.sum()
    if nrow < 2 or ncol < 2:
        return {"n": int(n), "method": CRAMERS_V, "warning": "fewer_than_two_levels"}
    chisq = float(stats.chi2_contingency(counts, correction=False)[0])
    df = (nrow - 1) * (ncol - 1)
    if alternative == "greater":
        low_ncp, high_ncp = _ncp_limits(chisq, df, 1.0 - 2.0 * (1.0 - conf_level))
        ci_method = NCP_ONE_SIDED
    elif alternative == "two.sided":
        low_ncp, high_ncp = _ncp_limits(chisq, df, conf_level)
        ci_method = NCP_TWO_SIDED
    else:
        raise ValueError("alternative is 'greater' or 'two.sided'")

    def to_v(value: float) -> float:
        phi2 = value / n
        if adjust:
            phi2 = max(0.0, phi2 - df / (n - 1))
            k = nrow - (nrow - 1) ** 2 / (n - 1)
            l_ = ncol - (ncol - 1) ** 2 / (n - 1)
        else:
            k, l_ = nrow, ncol
        return math.sqrt(phi2) / math.sqrt(min(k, l_) - 1)

    low, high = min(1.0, to_v(low_ncp)), min(1.0, to_v(high_ncp))
    if alternative == "greater":
        high = 1.0
    return {"estimate": to_v(chisq), "statistic": chisq, "conf_low": low, "conf_high": high, "n": int(n),
            "df": float(df), "method": CRAMERS_V, "ci_method": ci_method,
            "correction": ADJUSTED if adjust else "none"}


def table_tests(
    frame: pd.DataFrame, row: str, column: str, conf_level: float = 0.95, fisher: bool = True,
    cramers_alternative: str = "greater", seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Tidy rows for the table of two columns: Fisher's exact test (on request) and Cramér's V."""
    table = pd.crosstab(frame[row], frame[column])
    base = {"row_variable": row, "column_variable": column}
    rows = []
    if fisher:
        rows.append({**base, "quantity": "fisher", **fisher_test(table, conf_level, seed=seed)})
    rows.append({**base, "quantity": "cramers_v", **cramers_v(table, conf_level, alternative=cramers_alternative)})
    out = tidy_frame(rows, TABLE_ID_COLUMNS, TABLE_EXTRA_COLUMNS)
    for name in ("odds_ratio", "df"):
        out[name] = out[name].astype("float64")
    return out

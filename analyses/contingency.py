"""Fisher's exact test (2 x 2 and r x c) and Cramér's V with its confidence interval.

* :func:`fisher_test` is R's ``fisher.test``. A 2 x 2 table gives the two-sided p-value
  (tables no more probable than the observed, R's relative tolerance 1e-7), the
  conditional maximum-likelihood odds ratio and its exact conditional interval
  (scipy's ``contingency.odds_ratio(kind = "conditional")``: R's definitions, solved
  to full precision where R's ``uniroot`` stops at its default tolerance, ~1e-5). An r x c
  table gives the exact p-value by enumerating every table with the observed margins:
  tables are built column by column over the smaller dimension, and the tables that
  share the remaining row sums share their completions (the network idea of Mehta &
  Patel, with completions merged by their probability, to 1e-9 on the log scale), so a
  table of a few hundred pupils over three categories is
  exact in a few seconds (3 x 3, n = 248: 2 s). Where the enumeration would exceed ``max_work`` (large
  tables) the p-value is Monte Carlo (``simulate.p.value = TRUE``, B draws with the
  given seed) and the row says so in ``method`` and ``warning``.
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


def _compositions(total: int, caps: tuple[int, ...]):
    """Every vector of non-negative ints with the given sum, each entry at most its cap."""
    if len(caps) == 1:
        if total <= caps[0]:
            yield (total,)
        return
    rest = sum(caps[1:])
    for first in range(max(0, total - rest), min(total, caps[0]) + 1):
        for tail in _compositions(total - first, caps[1:]):
            yield (first, *tail)


def _exact_rxc_p(table: np.ndarray, max_work: int) -> float:
    """Exact p-value of Fisher's r x c test by enumeration with shared completions."""
    table = np.asarray(table, dtype=np.int64)
    if table.shape[0] > table.shape[1]:
        table = table.T  # fewer rows: each column splits over few rows, few distinct row-sum states
    rows = tuple(int(v) for v in table.sum(axis=1))
    cols = [int(v) for v in table.sum(axis=0)]
    n = int(table.sum())
    log_fact = special.gammaln(np.arange(n + 2) + 1.0)
    observed = float(log_fact[table].sum())  # sum of log x_ij!: larger = less probable
    constant = float(log_fact[list(rows)].sum() + log_fact[cols].sum() - log_fact[n])
    memo: dict[tuple[int, tuple[int, ...]], tuple[np.ndarray, np.ndarray]] = {}
    work = [0]

    def completions(j: int, remaining: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(distinct sums of log x! over columns j.., number of completions with each)."""
        key = (j, remaining)
        if key in memo:
            return memo[key]
        if j == len(cols) - 1:
            result = (np.array([float(log_fact[list(remaining)].sum())]), np.array([1.0]))
        else:
            values, counts = [], []
            for column in _compositions(cols[j], remaining):
                cost = float(log_fact[list(column)].sum())
                after = tuple(r - c for r, c in zip(remaining, column))
                sub_values, sub_counts = completions(j + 1, after)
                values.append(sub_values + cost)
                counts.append(sub_counts)
                work[0] += sub_values.size
                if work[0] > max_work:
                    raise EnumerationTooLarge
            merged = np.round(np.concatenate(values), 9)
            unique, inverse = np.unique(merged, return_inverse=True)
            result = (unique, np.bincount(inverse, weights=np.concatenate(counts)))
        memo[key] = result
        return result

    values, counts = completions(0, rows)
    extreme = values >= observed - math.log(RELATIVE_ERROR) - 1e-9
    probabilities = counts * np.exp(constant - values)
    return float(min(1.0, probabilities[extreme].sum() / probabilities.sum()))


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

"""The two-wave hypothesis tests, each reproducing R's default behaviour.

Every function returns a plain dict (estimate, std_error, statistic, df, p_value,
conf_low, conf_high, n and a ``method`` string that names the variant used), so the row
builders can add effect sizes and small-number warnings. The references are R 4.2's
``t.test``, ``wilcox.test`` and ``mcnemar.test`` and ``binom.test`` (what
exact2x2::mcnemar.exact computes), checked in ``tests/test_evaluation_tests.py``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from analyses.rank_tests import EXACT_RANK_LIMIT, mann_whitney, wilcoxon_signed_rank  # noqa: F401  (re-exported)

#: McNemar: exact binomial test below this many discordant pairs, chi-square above.
MCNEMAR_EXACT_BELOW = 25
#: R's t.test: stop("data are essentially constant") when SE < 10 * .Machine$double.eps * |mean|.
ESSENTIALLY_CONSTANT = 10 * np.finfo(float).eps
CONSTANT_VALUES = "constant_values"


def _t_interval(estimate: float, se: float, df: float, conf_level: float) -> tuple[float, float]:
    q = stats.t.ppf(1.0 - (1.0 - conf_level) / 2.0, df)
    return estimate - q * se, estimate + q * se


def one_sample_t(values: np.ndarray, conf_level: float = 0.95) -> dict:
    """Mean with Student t CI and the test of mean 0 (R ``t.test(x)``); paired t on differences.

    Where R stops with "data are essentially constant" (SE below 10 machine epsilons
    times |mean|, e.g. every pupil changed by exactly 1) the mean comes back without SE,
    test or interval and with ``warning`` ``constant_values``: a zero-width interval
    would claim a certainty no sample gives.
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    estimate = x.mean() if n else math.nan
    if n < 2:
        return {"estimate": estimate, "n": n, "df": math.nan}
    se = x.std(ddof=1) / math.sqrt(n)
    if se < ESSENTIALLY_CONSTANT * abs(estimate) or (se == 0 and estimate != 0):
        return {"estimate": estimate, "n": n, "df": math.nan, "warning": CONSTANT_VALUES}
    df = n - 1
    statistic = estimate / se if se > 0 else math.nan
    p_value = 2.0 * stats.t.sf(abs(statistic), df) if se > 0 else math.nan
    low, high = _t_interval(estimate, se, df, conf_level)
    return {"estimate": estimate, "std_error": se, "statistic": statistic, "df": df,
            "p_value": p_value, "conf_low": low, "conf_high": high, "n": n}


def welch_t(x: np.ndarray, y: np.ndarray, conf_level: float = 0.95) -> dict:
    """Difference in means x - y with Welch's t test and Welch-Satterthwaite CI (R ``t.test``)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    nx, ny = x.size, y.size
    estimate = x.mean() - y.mean() if nx and ny else math.nan
    if nx < 2 or ny < 2:
        return {"estimate": estimate, "n": nx + ny, "df": math.nan}
    vx, vy = x.var(ddof=1) / nx, y.var(ddof=1) / ny
    se = math.sqrt(vx + vy)
    if se == 0 or se < ESSENTIALLY_CONSTANT * max(abs(x.mean()), abs(y.mean())):
        return {"estimate": estimate, "n": nx + ny, "df": math.nan, "warning": CONSTANT_VALUES}
    df = (vx + vy) ** 2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1))
    statistic = estimate / se
    low, high = _t_interval(estimate, se, df, conf_level)
    return {"estimate": estimate, "std_error": se, "statistic": statistic, "df": df,
            "p_value": 2.0 * stats.t.sf(abs(statistic), df), "conf_low": low, "conf_high": high,
            "n": nx + ny}


def mcnemar(pre: np.ndarray, post: np.ndarray, conf_level: float = 0.95) -> dict:
    """McNemar's test of a binary outcome measured twice on the same pupils.

    b = pupils 1 before and 0 after, c = 0 before and 1 after. With fewer than 25
    discordant pairs the p-value is the exact two-sided binomial test of c out of b + c
    at 1/2 (exact2x2::mcnemar.exact, i.e. R ``binom.test``); otherwise R's
    ``mcnemar.test`` chi-square (|b - c| - 1)^2 / (b + c) on 1 df. ``estimate`` is the
    change in the proportion (c - b) / n (no CI: see the odds ratio); ``odds_ratio`` is
    the conditional odds ratio c / b with the exact Clopper-Pearson interval for
    c / (b + c) mapped to the odds scale, as mcnemar.exact reports it.
    """
    pre = np.asarray(pre, dtype=int)
    post = np.asarray(post, dtype=int)
    n = pre.size
    b = int(np.sum((pre == 1) & (post == 0)))
    c = int(np.sum((pre == 0) & (post == 1)))
    discordant = b + c
    result = {"estimate": (c - b) / n if n else math.nan, "n": n, "discordant": discordant,
              "exact": discordant < MCNEMAR_EXACT_BELOW}
    if discordant == 0:
        return {**result, "p_value": 1.0, "method": "McNemar test (no discordant pairs)"}
    if result["exact"]:
        test = stats.binomtest(c, discordant, 0.5)
        result |= {"statistic": float(c), "p_value": float(test.pvalue),
                   "method": "McNemar exact binomial test"}
    else:
        statistic = (abs(b - c) - 1.0) ** 2 / discordant
        result |= {"statistic": statistic, "p_value": float(stats.chi2.sf(statistic, 1)),
                   "method": "McNemar chi-square test with continuity correction"}
    interval = stats.binomtest(c, discordant, 0.5).proportion_ci(conf_level, method="exact")
    odds = (lambda p: p / (1.0 - p) if p < 1 else math.inf)
    result |= {"odds_ratio": c / b if b else math.inf, "or_conf_low": odds(interval.low),
               "or_conf_high": odds(interval.high)}
    return result

"""Rank tests, the one implementation every module uses (R's ``wilcox.test``).

- ``wilcoxon_signed_rank``: one sample / paired differences, zeros dropped, exact below
  50 non-zero differences without ties or zeros, else normal with continuity and tie
  corrections.
- ``mann_whitney``: two independent samples, exact or normal as R chooses by default,
  or always normal with ``exact=False`` (``wilcox.test(exact = FALSE, correct = TRUE)``,
  what the association screen reports), with the rank-biserial correlation.

References: tests/test_evaluation_paired.py and tests/test_associations.py against R.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: R's wilcox.test computes exact p-values below this many (non-zero) observations.
EXACT_RANK_LIMIT = 50


def _signed_rank_null_cdf(n: int) -> np.ndarray:
    """P(V <= v) for v = 0..n(n+1)/2 under H0, by counting subsets (R's ``psignrank``)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    return np.cumsum(counts) / 2.0**n


def wilcoxon_signed_rank(differences: np.ndarray) -> dict:
    """Wilcoxon signed-rank test of the differences against 0, as R's ``wilcox.test``.

    Zeros are dropped (Wilcoxon's method, R's only one); the statistic V is the sum of
    the ranks of |d| (average ranks for ties) over positive d. With fewer than 50
    non-zero differences and neither ties nor zeros the p-value is exact; otherwise it
    is the normal approximation with continuity correction and the tie-corrected
    variance n(n+1)(2n+1)/24 - sum(t^3 - t)/48. ``estimate`` is the median difference.
    """
    d = np.asarray(differences, dtype=float)
    had_zeros = bool(np.any(d == 0))
    median = float(np.median(d)) if d.size else math.nan
    d = d[d != 0]
    n = d.size
    if n == 0:
        return {"estimate": median, "n": 0, "exact": False, "method": "Wilcoxon signed-rank test"}
    ranks = stats.rankdata(np.abs(d), method="average")
    v = float(ranks[d > 0].sum())
    _, tie_sizes = np.unique(np.abs(d), return_counts=True)
    has_ties = bool(np.any(tie_sizes > 1))
    exact = n < EXACT_RANK_LIMIT and not has_ties and not had_zeros
    if exact:
        cdf = _signed_rank_null_cdf(n)
        if v > n * (n + 1) / 4.0:
            one_sided = 1.0 - cdf[int(v) - 1]
        else:
            one_sided = cdf[int(v)]
        p_value = min(1.0, 2.0 * one_sided)
        method = "Wilcoxon signed-rank test, exact"
    else:
        centred = v - n * (n + 1) / 4.0
        sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0 - np.sum(tie_sizes**3 - tie_sizes) / 48.0)
        z = (centred - math.copysign(0.5, centred) * (centred != 0)) / sigma if sigma > 0 else math.nan
        p_value = 2.0 * min(stats.norm.cdf(z), stats.norm.sf(z))
        method = "Wilcoxon signed-rank test, normal approximation with continuity correction"
    return {"estimate": median, "statistic": v, "p_value": p_value, "n": n, "exact": exact,
            "method": method}


def mann_whitney(x: np.ndarray, y: np.ndarray, exact: bool | None = None) -> dict:
    """Wilcoxon rank-sum (Mann-Whitney) test of x versus y, as R's ``wilcox.test(x, y)``.

    W = sum of x's ranks - n_x(n_x+1)/2 (average ranks). With ``exact`` None (R's
    default) exact when both samples have fewer than 50 values and there are no ties;
    ``exact=False`` always (``wilcox.test(exact = FALSE)``): normal with continuity
    correction and tie-corrected variance. ``estimate`` is median(x) - median(y);
    ``rank_biserial`` = 2 W / (n_x n_y) - 1 (Glass 1965).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    nx, ny = x.size, y.size
    if nx == 0 or ny == 0:
        return {"estimate": math.nan, "n": nx + ny, "exact": False, "method": "Wilcoxon rank-sum test"}
    pooled = np.concatenate([x, y])
    ranks = stats.rankdata(pooled, method="average")
    w = float(ranks[:nx].sum() - nx * (nx + 1) / 2.0)
    _, tie_sizes = np.unique(pooled, return_counts=True)
    exact = (nx < EXACT_RANK_LIMIT and ny < EXACT_RANK_LIMIT and not np.any(tie_sizes > 1)) if exact is None else exact
    if exact:
        p_value = float(stats.mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue)
        method = "Wilcoxon rank-sum (Mann-Whitney) test, exact"
    else:
        centred = w - nx * ny / 2.0
        n = nx + ny
        sigma = math.sqrt(nx * ny / 12.0 * ((n + 1) - np.sum(tie_sizes**3 - tie_sizes) / (n * (n - 1))))
        # every value tied: R's 0 / 0 gives z and the p-value NaN (NA), not an error
        z = (centred - math.copysign(0.5, centred) * (centred != 0)) / sigma if sigma > 0 else math.nan
        p_value = 2.0 * min(stats.norm.cdf(z), stats.norm.sf(z))
        method = "Wilcoxon rank-sum (Mann-Whitney) test, normal approximation with continuity correction"
    return {"estimate": float(np.median(x) - np.median(y)), "statistic": w, "p_value": float(p_value),
            "n": nx + ny, "exact": bool(exact), "method": method, "rank_biserial": 2 * w / (nx * ny) - 1}

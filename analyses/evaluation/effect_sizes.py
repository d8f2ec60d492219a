"""Effect sizes with their confidence intervals, each matching a named reference.

* Cohen's d_z (paired): mean of the differences over their SD; its CI inverts the
  noncentral t distribution (Steiger & Fouladi 1997; the method of R effectsize 0.8.3
  ``cohens_d(paired = TRUE)``, which finds the same roots by ``optim``, so agrees to
  about 1e-5; we solve them exactly with a bracketing root finder).
* Hedges' g_av (Lakens 2013, eq. 10): mean difference over the average of the two wave
  SDs, times the exact small-sample correction J(df) = Gamma(df/2) / (sqrt(df/2)
  Gamma((df-1)/2)) with df = n - 1 (the J of effectsize's ``hedges_g``). There is no
  exact CI for d_av; ours rescales the d_z interval by s_diff / s_av, treating that
  ratio as fixed (approximate; named so in the rows).
* Rank-biserial correlation, matched pairs (Kerby 2014; effectsize ``rank_biserial
  (paired = TRUE)``): (sum of positive ranks - sum of negative ranks) / (n(n+1)/2) over
  the non-zero differences ranked by absolute value (average ranks for ties); CI on
  Fisher's z with SE sqrt((2n^3 + 3n^2 + n)/6) / ((n^2 + n)/2).
* Rank-biserial correlation, independent samples (Glass 1965; effectsize
  ``rank_biserial``): 2 U_x / (n_x n_y) - 1 with average ranks; Fisher-z CI with
  SE sqrt((n_x + n_y + 1) / (3 n_x n_y)).
* Standardised mean difference for balance: (m1 - m2) / sqrt((s1^2 + s2^2) / 2), the
  unweighted pooled SD of Austin (2009) and cobalt, so unequal group sizes do not let
  the larger group set the scale.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats


def noncentral_t_interval(t: float, df: float, conf_level: float = 0.95) -> tuple[float, float]:
    """Noncentrality parameters whose t distributions put ``t`` at the upper/lower tail.

    The lower limit is the ncp with P(T <= t) = 1 - alpha/2, the upper the ncp with
    P(T <= t) = alpha/2; both found with Brent's method on a widening bracket. Where the
    noncentral t cannot be evaluated reliably (a huge t on very few degrees of freedom,
    e.g. near-identical changes in a tiny group) the limit is NaN rather than a guess.
    """
    alpha = 1.0 - conf_level

    def root(target: float) -> float:
        def gap(ncp: float) -> float:
            return stats.nct.cdf(t, df, ncp) - target

        width = 2.0 + abs(t)
        low, high = t - width, t + width
        for _ in range(60):
            if not gap(low) < 0:
                break
            low -= width
        for _ in range(60):
            if not gap(high) > 0:
                break
            high += width
        g_low, g_high = gap(low), gap(high)
        if not (np.isfinite(g_low) and np.isfinite(g_high)) or g_low * g_high > 0:
            return math.nan
        return optimize.brentq(gap, low, high, xtol=1e-12, rtol=1e-12)

    return root(1.0 - alpha / 2.0), root(alpha / 2.0)


def hedges_correction(df: float) -> float:
    """Exact small-sample bias correction J(df) of Hedges (1981)."""
    return math.exp(special.gammaln(df / 2.0) - math.log(math.sqrt(df / 2.0)) - special.gammaln((df - 1.0) / 2.0))


def cohens_dz(differences: np.ndarray, conf_level: float = 0.95) -> tuple[float, float, float]:
    """Cohen's d_z of paired differences and its noncentral-t CI: (d, low, high)."""
    d = np.asarray(differences, dtype=float)
    n = d.size
    if n < 2 or d.std(ddof=1) == 0:
        return math.nan, math.nan, math.nan
    sd = d.std(ddof=1)
    t = d.mean() / (sd / math.sqrt(n))
    low, high = noncentral_t_interval(t, n - 1, conf_level)
    return d.mean() / sd, low / math.sqrt(n), high / math.sqrt(n)


def hedges_g_av(pre: np.ndarray, post: np.ndarray, conf_level: float = 0.95) -> tuple[float, float, float]:
    """Hedges' g_av of the change post - pre and its approximate CI: (g, low, high)."""
    pre = np.asarray(pre, dtype=float)
    post = np.asarray(post, dtype=float)
    n = pre.size
    if n < 3:
        return math.nan, math.nan, math.nan
    sd_av = (pre.std(ddof=1) + post.std(ddof=1)) / 2.0
    differences = post - pre
    sd_diff = differences.std(ddof=1)
    if sd_av == 0 or sd_diff == 0:
        return math.nan, math.nan, math.nan
    j = hedges_correction(n - 1)
    _, dz_low, dz_high = cohens_dz(differences, conf_level)
    scale = sd_diff / sd_av * j
    return differences.mean() / sd_av * j, dz_low * scale, dz_high * scale


def _fisher_interval(r: float, se: float, conf_level: float) -> tuple[float, float]:
    z = stats.norm.ppf(1.0 - (1.0 - conf_level) / 2.0)
    with np.errstate(divide="ignore"):
        centre = np.arctanh(r)
    return float(np.tanh(centre - z * se)), float(np.tanh(centre + z * se))


def rank_biserial_paired(differences: np.ndarray, conf_level: float = 0.95) -> tuple[float, float, float]:
    """Matched-pairs rank-biserial correlation of the differences and its CI: (r, low, high).

    Zero differences are dropped, as in the signed-rank test.
    """
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    n = d.size
    if n == 0:
        return math.nan, math.nan, math.nan
    ranks = stats.rankdata(np.abs(d), method="average")
    total = n * (n + 1) / 2.0
    r = (ranks[d > 0].sum() - ranks[d < 0].sum()) / total
    se = math.sqrt((2 * n**3 + 3 * n**2 + n) / 6.0) / total
    return (r, *_fisher_interval(r, se, conf_level))


def rank_biserial_independent(x: np.ndarray, y: np.ndarray, conf_level: float = 0.95) -> tuple[float, float, float]:
    """Rank-biserial correlation of x versus y (positive when x tends to be larger)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    nx, ny = x.size, y.size
    if nx == 0 or ny == 0:
        return math.nan, math.nan, math.nan
    ranks = stats.rankdata(np.concatenate([x, y]), method="average")
    u_x = ranks[:nx].sum() - nx * (nx + 1) / 2.0
    r = 2.0 * u_x / (nx * ny) - 1.0
    se = math.sqrt((nx + ny + 1) / (3.0 * nx * ny))
    return (r, *_fisher_interval(r, se, conf_level))


def standardised_mean_difference(x: np.ndarray, y: np.ndarray) -> float:
    """(mean x - mean y) / sqrt((var x + var y) / 2); NaN when both variances are 0."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size < 2 or y.size < 2:
        return math.nan
    scale = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2.0)
    return (x.mean() - y.mean()) / scale if scale > 0 else math.nan


def cohens_d_independent(x: np.ndarray, y: np.ndarray, conf_level: float = 0.95) -> tuple[float, float, float]:
    """Cohen's d of x versus y with the pooled SD, and its noncentral-t CI: (d, low, high).

    d = (mean x - mean y) / s_pooled, s_pooled^2 = ((n_x - 1) s_x^2 + (n_y - 1) s_y^2) /
    (n_x + n_y - 2). The CI inverts the noncentral t of Student's t = d / sqrt(1/n_x +
    1/n_y) on n_x + n_y - 2 df (effectsize ``cohens_d(x, y)``, whose optim-found roots
    agree to ~1e-5; ours are exact). NaN where a group has < 2 values or both are constant.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    nx, ny = x.size, y.size
    if nx < 2 or ny < 2:
        return math.nan, math.nan, math.nan
    df = nx + ny - 2
    pooled = math.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / df)
    if pooled == 0:
        return math.nan, math.nan, math.nan
    d = (x.mean() - y.mean()) / pooled
    scale = math.sqrt(1.0 / nx + 1.0 / ny)
    low, high = noncentral_t_interval(d / scale, df, conf_level)
    return d, low * scale, high * scale


def hedges_g_independent(x: np.ndarray, y: np.ndarray, conf_level: float = 0.95) -> tuple[float, float, float]:
    """Hedges' g: Cohen's d (pooled SD) times J(n_x + n_y - 2), CI limits likewise (effectsize ``hedges_g``)."""
    d, low, high = cohens_d_independent(x, y, conf_level)
    if math.isnan(d):
        return d, low, high
    j = hedges_correction(np.asarray(x).size + np.asarray(y).size - 2)
    return d * j, low * j, high * j

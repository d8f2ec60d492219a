"""Binomial intervals, the one place every module takes them from.

- ``wilson_interval``: Wilson score interval without continuity correction, R's
  ``prop.test(x, n, correct = FALSE)$conf.int`` (Wilson 1927); it keeps its nominal
  coverage for the small counts of small municipalities, where the Wald interval fails.
- ``clopper_pearson_interval``: the exact interval, R's ``binom.test(x, n)$conf.int``.

``WILSON`` and ``CLOPPER_PEARSON`` are the ``ci_method`` codes the rows carry.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

WILSON = "wilson_score_no_continuity_correction"
CLOPPER_PEARSON = "clopper_pearson_exact"


def wilson_interval(count: int, total: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``count`` successes in ``total`` trials.

    Identical to R's ``prop.test(count, total, correct = FALSE)$conf.int``, including
    its exact 0 and 1 bounds at count 0 and count = total. Returns NaNs when ``total``
    is 0.
    """
    if total <= 0:
        return (np.nan, np.nan)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    p = count / total
    denominator = 1 + z**2 / total
    centre = (p + z**2 / (2 * total)) / denominator
    half_width = z * np.sqrt(p * (1 - p) / total + z**2 / (4 * total**2)) / denominator
    low = 0.0 if count <= 0 else max(0.0, centre - half_width)
    high = 1.0 if count >= total else min(1.0, centre + half_width)
    return (float(low), float(high))


def clopper_pearson_interval(count: int, total: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson exact interval, as R's ``binom.test(count, total)$conf.int``."""
    if total <= 0:
        return (np.nan, np.nan)
    alpha = 1 - conf_level
    low = 0.0 if count == 0 else stats.beta.ppf(alpha / 2, count, total - count + 1)
    high = 1.0 if count == total else stats.beta.ppf(1 - alpha / 2, count + 1, total - count)
    return (float(low), float(high))


def proportion_interval(
    count: int, total: int, ci_method: str = WILSON, conf_level: float = 0.95
) -> tuple[float, float]:
    """Dispatch to the named binomial interval (``WILSON`` or ``CLOPPER_PEARSON``)."""
    if ci_method == WILSON:
        return wilson_interval(count, total, conf_level)
    if ci_method == CLOPPER_PEARSON:
        return clopper_pearson_interval(count, total, conf_level)
    raise ValueError(f"unknown proportion interval {ci_method!r}; use {WILSON!r} or {CLOPPER_PEARSON!r}")

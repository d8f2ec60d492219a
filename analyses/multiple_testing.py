"""Adjustment of p-values across a family of tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BENJAMINI_HOCHBERG = "benjamini_hochberg"
HOLM = "holm"
BONFERRONI = "bonferroni"


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg (1995) false-discovery-rate adjusted p-values.

    Same numbers as R's ``p.adjust(p, method = "BH")``: p_(i) * m / i made monotone from
    the largest p downwards and capped at 1. Missing p-values stay missing and do not
    count in the family size m, as in ``p.adjust`` (its ``n = length(p[!is.na(p)])``).
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    m = int(present.sum())
    if m == 0:
        return adjusted
    order = np.argsort(p[present])[::-1]
    ranked = p[present][order] * m / np.arange(m, 0, -1)
    monotone = np.minimum(1.0, np.minimum.accumulate(ranked))
    values = np.empty(m)
    values[order] = monotone
    adjusted[present] = values
    return adjusted


def _present(p_values: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    p = np.asarray(p_values, dtype=float)
    present = ~np.isnan(p)
    return p, np.full(p.shape, np.nan), present, int(present.sum())


def bonferroni(p_values: Sequence[float]) -> np.ndarray:
    """Bonferroni family-wise adjusted p-values: min(1, m p), R's ``p.adjust(p, "bonferroni")``.

    Missing p-values stay missing and do not count in m.
    """
    p, adjusted, present, m = _present(p_values)
    adjusted[present] = np.minimum(1.0, p[present] * m)
    return adjusted


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, R's ``p.adjust(p, "holm")``.

    p_(i) * (m - i + 1) in increasing order of p, made monotone upwards (cumulative
    maximum) and capped at 1; uniformly more powerful than Bonferroni with the same
    family-wise error control. Missing p-values stay missing and do not count in m.
    """
    p, adjusted, present, m = _present(p_values)
    if m == 0:
        return adjusted
    order = np.argsort(p[present], kind="stable")
    ranked = p[present][order] * (m - np.arange(m))
    values = np.empty(m)
    values[order] = np.minimum(1.0, np.maximum.accumulate(ranked))
    adjusted[present] = values
    return adjusted


ADJUSTMENTS = {BENJAMINI_HOCHBERG: benjamini_hochberg, HOLM: holm, BONFERRONI: bonferroni}


def adjust_p(p_values: Sequence[float], method: str = BENJAMINI_HOCHBERG) -> np.ndarray:
    """Adjusted p-values by ``method`` (one of :data:`ADJUSTMENTS`' keys), for the ``correction`` column."""
    if method not in ADJUSTMENTS:
        raise ValueError(f"unknown p-value adjustment {method!r}: use one of {sorted(ADJUSTMENTS)}")
    return ADJUSTMENTS[method](p_values)

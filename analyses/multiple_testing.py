"""Adjustment of p-values across a family of tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BENJAMINI_HOCHBERG = "benjamini_hochberg"


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

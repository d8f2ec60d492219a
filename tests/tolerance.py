"""How tests compare p-values with R: relatively, never with an absolute tolerance alone.

``atol=1e-6, rtol=0`` passes vacuously for any reference below 1e-6 (a p of 1e-9 and
one of 1e-7 would both "agree"), so p-values are compared on the log scale:
|log p - log p_ref| <= rtol, which for small differences is the relative error. A p of
reference of exactly 0 is R computing 1 - F(statistic) (geepack's Wald p-values), which
cancels to 0 below machine epsilon: ours must then be below 2.2e-16 (it is the exact tail,
e.g. 3e-61). Near 1 the relative and absolute errors coincide.
"""

from __future__ import annotations

import numpy as np

#: Default relative tolerance of a p-value against R.
P_RTOL = 1e-6


def assert_p_close(actual, expected, rtol: float = P_RTOL, err_msg: str = "p_value") -> None:
    """Assert p-values agree relatively (log scale) to ``rtol``; NaN must match NaN."""
    actual = np.atleast_1d(np.asarray(actual, dtype=float))
    expected = np.atleast_1d(np.asarray(expected, dtype=float))
    assert actual.shape == expected.shape, f"{err_msg}: shapes {actual.shape} != {expected.shape}"
    assert (np.isnan(actual) == np.isnan(expected)).all(), f"{err_msg}: NaN where the reference has none"
    both = ~np.isnan(expected)
    a, e = actual[both], expected[both]
    zero = e == 0
    assert (a[zero] < np.finfo(float).eps).all(), f"{err_msg}: reference p is 0 (1 - F in R), ours is not below eps"
    with np.errstate(divide="ignore"):
        gap = np.abs(np.log(a[~zero]) - np.log(e[~zero]))
    assert (gap <= rtol).all(), f"{err_msg}: relative difference {gap.max():.3g} above {rtol:g} (p {a[~zero]} vs {e[~zero]})"

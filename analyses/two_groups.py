"""Two independent groups on a continuous outcome: Student's t test with d and g.

:func:`student_t` is R's ``t.test(x, y, var.equal = TRUE)`` (pooled variance, n - 2 df);
:func:`two_group_comparison` gives the tidy rows a report needs: the difference in means
with Student's t test and interval, Cohen's d and Hedges' g with noncentral-t intervals
(:mod:`analyses.evaluation.effect_sizes`). Welch's t, the default of ``t.test``, is in
:mod:`analyses.evaluation.hypothesis_tests`. Checked against R (stats, effectsize) in
tests/test_two_groups.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from analyses.evaluation.effect_sizes import cohens_d_independent, hedges_g_independent
from analyses.tidy import tidy_frame

STUDENT_T = "student_t_pooled_variance"
COHENS_D = "cohens_d_pooled_sd"
HEDGES_G = "hedges_g_pooled_sd"
CI_T = "t_pooled_df"
CI_NCP = "noncentral_t_inversion"
J_EXACT = "hedges_j_exact_gamma"

TWO_GROUP_ID_COLUMNS = ("outcome", "contrast", "quantity")
TWO_GROUP_EXTRA_COLUMNS = ("df", "warning")


def student_t(x: np.ndarray, y: np.ndarray, conf_level: float = 0.95) -> dict:
    """Difference in means x - y with Student's pooled-variance t test and CI (R ``t.test(var.equal = TRUE)``)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    nx, ny = x.size, y.size
    estimate = x.mean() - y.mean() if nx and ny else math.nan
    df = nx + ny - 2
    if nx < 1 or ny < 1 or df < 1:
        return {"estimate": estimate, "n": nx + ny, "df": math.nan}
    pooled = ((nx - 1) * (x.var(ddof=1) if nx > 1 else 0.0) + (ny - 1) * (y.var(ddof=1) if ny > 1 else 0.0)) / df
    se = math.sqrt(pooled * (1.0 / nx + 1.0 / ny))
    if se == 0:
        return {"estimate": estimate, "n": nx + ny, "df": df, "warning": "constant_values"}
    statistic = estimate / se
    q = stats.t.ppf(0.5 + conf_level / 2.0, df)
    return {"estimate": estimate, "std_error": se, "statistic": statistic, "df": float(df),
            "p_value": 2.0 * stats.t.sf(abs(statistic), df), "conf_low": estimate - q * se,
            "conf_high": estimate + q * se, "n": nx + ny}


def two_group_comparison(
    frame: pd.DataFrame, outcome: str, group: str, first, second, conf_level: float = 0.95,
) -> pd.DataFrame:
    """Rows ``difference`` (Student's t), ``cohens_d`` and ``hedges_g`` for group ``first`` minus ``second``."""
    x = frame.loc[frame[group] == first, outcome].dropna().to_numpy(dtype=float)
    y = frame.loc[frame[group] == second, outcome].dropna().to_numpy(dtype=float)
    contrast = f"{first} - {second}"
    base = {"outcome": outcome, "contrast": contrast}
    test = student_t(x, y, conf_level)
    warning = test.pop("warning", None)
    rows = [{**base, "quantity": "difference", **test, "method": STUDENT_T, "ci_method": CI_T,
             "correction": "none", "warning": warning}]
    for quantity, function, method in (("cohens_d", cohens_d_independent, COHENS_D),
                                       ("hedges_g", hedges_g_independent, HEDGES_G)):
        value, low, high = function(x, y, conf_level)
        rows.append({**base, "quantity": quantity, "estimate": value, "conf_low": low, "conf_high": high,
                     "n": x.size + y.size, "df": float(x.size + y.size - 2), "method": method,
                     "ci_method": CI_NCP, "correction": J_EXACT if quantity == "hedges_g" else "none",
                     "warning": warning})
    frame = tidy_frame(rows, TWO_GROUP_ID_COLUMNS, TWO_GROUP_EXTRA_COLUMNS)
    frame["df"] = frame["df"].astype("float64")
    return frame

"""Profile-likelihood confidence intervals for logistic regression coefficients (odds ratios).

The interval of coefficient j holds the values b whose profile deviance, the deviance of
the model refitted with b_j fixed at b (an offset), exceeds the minimum by at most the
chi-square(1) quantile: {b : D_j(b) - D_min <= qchisq(conf_level, 1)}. This is the
interval of R's ``confint`` for a ``glm`` (MASS's ``profile``), and is preferred to the
Wald interval when the likelihood is skewed (small samples, rare outcomes, large odds
ratios). R finds the limits by spline interpolation over a grid of profile points, so
its limits are within ~1e-4 of the exact crossings; here each limit is the exact root
(Brent's method on refits converged to 1e-12). tests/test_profile_likelihood.py compares
to 1e-6 with the exact crossings computed in R by ``uniroot`` on ``glm`` refits with an
offset, and to confint's interpolated limits at the tolerance its spline allows.

A limit the profile never reaches (separation or quasi-separation: the deviance levels
off below the quantile) is infinite, as the likelihood-ratio set is unbounded that way,
and the row says so in ``warning``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats

from analyses.models_design import ModelData, model_data
from analyses.models_logistic import CORRECTION, METHOD_GLM, fit_logistic
from analyses.models_tidy import MODEL_EXTRA_COLUMNS, MODEL_ID_COLUMNS
from analyses.tidy import tidy_frame

PROFILE_CI = "profile_likelihood"
METHOD = METHOD_GLM
UNBOUNDED = "profile_unbounded"


def _deviance(y: np.ndarray, X: np.ndarray, offset: np.ndarray, start: np.ndarray | None) -> tuple[float, np.ndarray]:
    if X.shape[1] == 0:
        p = 1.0 / (1.0 + np.exp(-offset))
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = np.where(y == 1, np.log(p), np.log1p(-p)).sum()
        return -2.0 * float(ll), start if start is not None else np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # IRLS from statsmodels' own start (the MLE as start can diverge far out on the profile)
        result = sm.GLM(y, X, family=sm.families.Binomial(), offset=offset).fit(tol=1e-13, maxiter=200)
        deviance = float(result.deviance) if result.converged else math.nan
    return deviance, np.asarray(result.params)


def profile_interval(data: ModelData, index: int, conf_level: float = 0.95) -> tuple[float, float]:
    """(low, high) profile-likelihood limits of coefficient ``index`` (log-odds scale)."""
    fit = fit_logistic(data)
    beta = fit.params
    se = math.sqrt(fit.inverse_information[index, index])
    y, X = data.y, data.X
    others = np.delete(X, index, axis=1)
    start_others = np.delete(beta, index)
    minimum, _ = _deviance(y, others, X[:, index] * beta[index], start_others)
    cutoff = stats.chi2.ppf(conf_level, 1)

    def excess(b: float) -> float:
        deviance, _ = _deviance(y, others, X[:, index] * b, start_others)
        return deviance - minimum - cutoff

    limits = []
    for direction in (-1.0, 1.0):
        step = 2.0 * se
        outer = beta[index] + direction * step
        found = False
        for _ in range(30):
            value = excess(outer)
            if not np.isfinite(value):
                break
            if value > 0:
                found = True
                break
            step *= 2.0
            outer = beta[index] + direction * step
        if not found:
            limits.append(direction * math.inf)
            continue
        a, b = sorted((beta[index], outer))
        limits.append(optimize.brentq(excess, a, b, xtol=1e-12, rtol=1e-14))
    return limits[0], limits[1]


def logistic_profile_ci(
    df: pd.DataFrame, outcome: str, terms: Sequence[str], model: str = "model", conf_level: float = 0.95,
) -> pd.DataFrame:
    """ML logistic regression ``outcome ~ terms`` with profile-likelihood intervals, as tidy model rows.

    ``estimate``, ``std_error``, ``statistic`` and ``p_value`` are the usual Wald z
    (``glm``'s summary); ``conf_low``/``conf_high`` and the odds-ratio limits are the
    profile-likelihood interval (``ci_method`` ``profile_likelihood``).
    """
    data = model_data(df, outcome, list(terms))
    fit = fit_logistic(data)
    se = np.sqrt(np.diag(fit.inverse_information))
    rows = []
    for i, term in enumerate(data.columns):
        low, high = profile_interval(data, i, conf_level)
        z = fit.params[i] / se[i]
        unbounded = not (np.isfinite(low) and np.isfinite(high))
        rows.append({
            "model": model, "term": term, "estimate": fit.params[i], "std_error": se[i], "statistic": z,
            "p_value": 2 * stats.norm.sf(abs(z)), "conf_low": low, "conf_high": high, "n": data.n,
            "odds_ratio": math.exp(fit.params[i]), "or_conf_low": math.exp(low) if low > -math.inf else 0.0,
            "or_conf_high": math.exp(high) if high < math.inf else math.inf, "effect": "fixed",
            "warning": UNBOUNDED if unbounded else None,
            "method": METHOD, "ci_method": PROFILE_CI, "correction": CORRECTION["model"],
        })
    frame = tidy_frame(rows, MODEL_ID_COLUMNS, MODEL_EXTRA_COLUMNS)
    for column in ("odds_ratio", "or_conf_low", "or_conf_high", "df"):
        frame[column] = frame[column].astype("float64")
    frame["headline"] = frame["headline"].eq(True)
    return frame

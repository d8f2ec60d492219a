"""Diagnostics for the dropout models: data support, separation, collinearity, fit.

Each function returns plain numbers; ``analyses.models`` turns them into ``model_fit``
rows. The choices, with the R function each reproduces:

- events per variable: the smaller outcome class divided by the number of non-intercept
  coefficients (Peduzzi et al. 1996 ask for about 10 or more).
- separation: the linear program of Konis (2007), as in R's ``detectseparation``: a
  direction d != 0 with (2y - 1) x_i'd >= 0 for every pupil exists exactly when some ML
  estimate is infinite (complete or quasi-complete separation); the terms with a non-zero
  component of d are the ones running off. Columns are scaled to unit maximum first so
  the box constraint |d| <= 1 treats them alike.
- VIF: generalised VIF of Fox and Monette (1992) per term from the correlation form of
  the coefficient covariance without the intercept, exactly ``car::vif`` on a glm
  (GVIF, its df, and GVIF^(1/(2 df)); for a one-column term GVIF is the ordinary VIF).
- Hosmer-Lemeshow: deciles of risk as in ``ResourceSelection::hoslem.test`` (quantile
  type 7 breaks, duplicates dropped, right-closed bins, both outcome columns). One
  deliberate difference: the df are the number of non-empty groups minus 2, where
  hoslem.test keeps g - 2 even when tied risks merge groups.
- calibration: slope of y on the logit of the prediction, and calibration-in-the-large
  (intercept with the logit as an offset), each a logistic ML fit as ``glm`` does it.
- AUC: Mann-Whitney with DeLong's interval, ``pROC::ci.auc(method = "delong")``, from
  ``analyses.screening.auc_delong``.
"""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm
from scipy import optimize, special, stats

from analyses.models_design import INTERCEPT, ModelData


def events_per_variable(y: np.ndarray, n_coefficients: int) -> dict:
    """Events, non-events and EPV = min(events, non-events) / (coefficients - intercept)."""
    events = int(np.sum(y == 1))
    non_events = int(np.sum(y == 0))
    parameters = max(n_coefficients - 1, 1)
    return {"events": events, "non_events": non_events, "epv": min(events, non_events) / parameters}


def separation_check(data: ModelData) -> dict:
    """Konis's LP test; returns ``separated`` and the ``terms`` whose estimates run off."""
    X = data.X / np.maximum(np.abs(data.X).max(axis=0), 1e-300)
    signed = X * (2 * data.y - 1)[:, None]
    result = optimize.linprog(
        c=-signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(len(data.y)),
        bounds=[(-1, 1)] * X.shape[1],
        method="highs",
    )
    direction = result.x if result.status == 0 else np.zeros(X.shape[1])
    separated = bool(result.status == 0 and -result.fun > 1e-7)
    terms = [c for c, d in zip(data.columns, direction) if separated and abs(d) > 1e-7]
    return {"separated": separated, "terms": terms}


def generalised_vif(vcov: np.ndarray, data: ModelData) -> list[dict]:
    """GVIF per term from a coefficient covariance (intercept first), as ``car::vif``."""
    keep = [i for i, c in enumerate(data.columns) if c != INTERCEPT]
    names = [data.columns[i] for i in keep]
    sub = vcov[np.ix_(keep, keep)]
    scale = np.sqrt(np.diag(sub))
    R = sub / np.outer(scale, scale)
    det_all = np.linalg.det(R)
    rows = []
    for term, columns in data.term_columns.items():
        inside = [names.index(c) for c in columns]
        outside = [i for i in range(len(names)) if i not in inside]
        det_out = np.linalg.det(R[np.ix_(outside, outside)]) if outside else 1.0
        gvif = np.linalg.det(R[np.ix_(inside, inside)]) * det_out / det_all
        rows.append({"term": term, "gvif": gvif, "df": len(columns), "gvif_adj": gvif ** (1 / (2 * len(columns)))})
    return rows


def hosmer_lemeshow(y: np.ndarray, prob: np.ndarray, groups: int = 10) -> dict:
    """Hosmer-Lemeshow chi-square over deciles of risk (see the module notes on df)."""
    breaks = np.unique(np.quantile(prob, np.linspace(0, 1, groups + 1)))
    bins = np.clip(np.searchsorted(breaks, prob, side="left") - 1, 0, len(breaks) - 2)
    observed = np.bincount(bins, weights=y, minlength=len(breaks) - 1)
    expected = np.bincount(bins, weights=prob, minlength=len(breaks) - 1)
    size = np.bincount(bins, minlength=len(breaks) - 1).astype(float)
    used = size > 0
    o1, e1, o0, e0 = observed[used], expected[used], (size - observed)[used], (size - expected)[used]
    statistic = float(np.sum((o1 - e1) ** 2 / e1) + np.sum((o0 - e0) ** 2 / e0))
    df = int(used.sum()) - 2
    p_value = float(stats.chi2.sf(statistic, df)) if df > 0 else np.nan
    return {"statistic": statistic, "df": df, "p_value": p_value, "groups_requested": groups, "groups_used": int(used.sum())}


def calibration(y: np.ndarray, prob: np.ndarray) -> dict:
    """Calibration slope and calibration-in-the-large with their model-based SEs."""
    logit = special.logit(np.clip(prob, 1e-12, 1 - 1e-12))
    binomial = sm.families.Binomial()
    slope_fit = sm.GLM(y, np.column_stack([np.ones_like(logit), logit]), family=binomial).fit(tol=1e-12)
    large_fit = sm.GLM(y, np.ones((len(y), 1)), family=binomial, offset=logit).fit(tol=1e-12)
    return {
        "slope": float(slope_fit.params[1]),
        "slope_se": float(slope_fit.bse[1]),
        "intercept": float(large_fit.params[0]),
        "intercept_se": float(large_fit.bse[0]),
    }

"""GEE logistic regression with an exchangeable working correlation within schools.

A population-averaged model: the odds ratios compare pupils across schools, unlike the
conditional odds ratios of the random-intercept model. Fitted with statsmodels' GEE and
made to coincide with R's ``geepack::geeglm(..., family = binomial, corstr =
"exchangeable")``:

- geepack estimates the scale as sum(r^2) / N and the exchangeable correlation as
  sum over within-cluster pairs of r_ij r_ik / (scale * number of pairs), both without
  subtracting the number of coefficients (r = Pearson residuals). statsmodels subtracts
  it by default, so the fit sets ``ddof_scale = 0``; the two then agree to 1e-10.
- the standard errors are the robust sandwich ("san.se", geepack's default) with no
  small-sample correction, and inference uses z (geepack's Wald chi-square on 1 df).
- the iterations run to 1e-12; geepack's own default (epsilon 1e-4) stops earlier, so the
  R reference tightens it to compare converged solutions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analyses.methods import FEW_CLUSTERS_BELOW
from analyses.models_design import ModelData, model_data
from analyses.models_tidy import add_model_warning, coefficient_rows, models_frame

METHOD_GEE = "gee_logit_exchangeable"
CORRECTION_GEE = "none: robust sandwich (geepack san.se), moment estimators without df (geepack)"


def fit_gee_exchangeable(data: ModelData) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients, robust covariance and the working correlation (alpha)."""
    model = sm.GEE(
        data.y,
        data.X,
        groups=data.groups,
        family=sm.families.Binomial(),
        cov_struct=sm.cov_struct.Exchangeable(),
    )
    result = model.fit(maxiter=200, ctol=1e-12, ddof_scale=0)
    alpha = float(np.atleast_1d(model.cov_struct.dep_params)[0])
    return np.asarray(result.params), np.asarray(result.cov_robust), alpha


def gee_rows(model: str, data: ModelData, params: np.ndarray, vcov: np.ndarray) -> list[dict]:
    """Tidy coefficient rows of a GEE fit (``few_clusters`` below FEW_CLUSTERS_BELOW: z with a sandwich)."""
    rows = coefficient_rows(model, data.columns, params, np.sqrt(np.diag(vcov)), data.n, METHOD_GEE, CORRECTION_GEE)
    return add_model_warning(rows, "few_clusters" if data.n_clusters < FEW_CLUSTERS_BELOW else None)


def gee_exchangeable(
    df: pd.DataFrame, outcome: str, terms: list[str], cluster: str, model: str = "model"
) -> pd.DataFrame:
    """Fit the exchangeable GEE logit of ``outcome ~ terms`` clustered by ``cluster``."""
    data = model_data(df, outcome, terms, cluster)
    params, vcov, _ = fit_gee_exchangeable(data)
    return models_frame(gee_rows(model, data, params, vcov))

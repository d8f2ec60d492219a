"""The multivariable dropout models of a study: every estimator of one specification.

``fit_dropout_models`` fits ``outcome ~ terms`` with pupils clustered in schools by

1. ML logistic regression with cluster-robust CR1 errors (``sandwich::vcovCL`` HC1),
2. the same fit with CR2 errors and Satterthwaite df (``clubSandwich``),
3. GEE with an exchangeable working correlation (``geepack::geeglm``),
4. the ML random-intercept logistic model by adaptive Gauss-Hermite quadrature
   (``lme4::glmer``),

and returns the coefficient table (``results.models``) and the diagnostics table
(``results.model_fit``).

The headline is the random-intercept model: its odds ratios are conditional on the
school, which is the question "for two pupils of the same school, how do the odds
differ", and it is the model the demo study plants its effects in. Logistic regression
with cluster-robust errors and GEE estimate population-averaged odds ratios, which are
attenuated towards 1 by about 1 / sqrt(1 + 0.346 sigma^2) (Zeger et al. 1988); they are
reported as the check that does not lean on the normal random-effect assumption.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from analyses.models_design import ModelData, model_data
from analyses.models_diagnostics import (
    calibration,
    events_per_variable,
    generalised_vif,
    hosmer_lemeshow,
    separation_check,
)
from analyses.models_gee import METHOD_GEE, fit_gee_exchangeable, gee_rows
from analyses.models_logistic import METHOD_GLM, fit_logistic, logistic_rows
from analyses.models_random_intercept import RandomInterceptFit, fit_random_intercept, method_name, random_intercept_rows
from analyses.models_tidy import add_model_warning, fit_frame, models_frame
from analyses.screening import auc_delong

SPECIFICATION = "specification"
HEADLINE_REASON = (
    "ML random-intercept logit: conditional (within-school) odds ratios, the data-generating "
    "model of the demo study; cluster-robust GLM and GEE give the population-averaged check"
)


def marginal_probability(data: ModelData, fit: RandomInterceptFit, nodes: int = 40) -> np.ndarray:
    """Population-averaged risk: the random-intercept model integrated over the school effect."""
    z, w = np.polynomial.hermite.hermgauss(nodes)
    eta = data.X @ fit.params
    return special.expit(eta[:, None] + np.sqrt(2) * fit.sd * z[None, :]) @ (w / np.sqrt(np.pi))


def _row(model: str, estimator: str, measure: str, method: str, **values) -> dict:
    return {"model": model, "estimator": estimator, "measure": measure, "method": method, **values}


def _prediction_rows(model: str, estimator: str, data: ModelData, prob: np.ndarray, source: str) -> list[dict]:
    auc = auc_delong(data.y, prob)
    hl = hosmer_lemeshow(data.y, prob)
    cal = calibration(data.y, prob)
    return [
        _row(model, estimator, "auc", "mann_whitney_auc", estimate=auc["auc"], std_error=auc["std_error"],
             conf_low=auc["conf_low"], conf_high=auc["conf_high"], n=data.n,
             ci_method="delong_normal_truncated_0_1", note=source),
        _row(model, estimator, "hosmer_lemeshow", "hosmer_lemeshow_deciles_of_risk", statistic=hl["statistic"],
             p_value=hl["p_value"], df=hl["df"], n=data.n,
             correction=f"groups requested {hl['groups_requested']}, used {hl['groups_used']}; df = used - 2",
             note=source),
        _row(model, estimator, "calibration_slope", "logistic_recalibration", estimate=cal["slope"],
             std_error=cal["slope_se"], n=data.n, note=source),
        _row(model, estimator, "calibration_intercept", "logistic_recalibration_logit_offset",
             estimate=cal["intercept"], std_error=cal["intercept_se"], n=data.n, note=source),
    ]


def _likelihood_rows(model: str, estimator: str, loglik: float, k: int, n: int) -> list[dict]:
    return [
        _row(model, estimator, "loglik", "maximum_likelihood", estimate=loglik, n=n, df=k),
        _row(model, estimator, "aic", "minus_2_loglik_plus_2k", estimate=-2 * loglik + 2 * k, n=n, df=k),
        _row(model, estimator, "bic", "minus_2_loglik_plus_k_log_n", estimate=-2 * loglik + k * np.log(n), n=n, df=k),
    ]


def _specification_rows(model: str, data: ModelData, vcov: np.ndarray, separation: dict | None = None) -> list[dict]:
    epv = events_per_variable(data.y, data.X.shape[1])
    separation = separation if separation is not None else separation_check(data)
    rows = [
        _row(model, SPECIFICATION, "n", "complete_cases", estimate=data.n, n=data.n),
        _row(model, SPECIFICATION, "n_clusters", "distinct_clusters", estimate=data.n_clusters, n=data.n),
        _row(model, SPECIFICATION, "events", "count_outcome_1", estimate=epv["events"], n=data.n),
        _row(model, SPECIFICATION, "events_per_variable", "min_class_per_non_intercept_coefficient",
             estimate=epv["epv"], n=data.n),
        _row(model, SPECIFICATION, "separation", "konis_linear_program", estimate=float(separation["separated"]),
             n=data.n, note="estimates running off: " + ", ".join(separation["terms"]) if separation["separated"] else ""),
    ]
    for vif in generalised_vif(vcov, data):
        rows.append(_row(model, SPECIFICATION, "gvif", "generalised_vif_fox_monette", term=vif["term"],
                         estimate=vif["gvif"], df=vif["df"], n=data.n,
                         note=f"GVIF^(1/(2df)) = {vif['gvif_adj']:.4f}"))
    return rows


def fit_dropout_models(
    df: pd.DataFrame,
    outcome: str,
    terms: Sequence[str],
    cluster: str,
    model: str = "dropout_main",
    n_agq: int = 15,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit every estimator of ``outcome ~ terms`` clustered by ``cluster``.

    Returns ``(models, fit)``: the coefficient rows of all estimators (``headline`` True on
    the random-intercept rows) and the diagnostics rows, both tidy.
    """
    data = model_data(df, outcome, list(terms), cluster)
    glm = fit_logistic(data)
    glmm = fit_random_intercept(data, n_agq, start=np.r_[glm.params, 1.0])
    glmm_method = method_name(n_agq)
    gee_params, gee_vcov, alpha = fit_gee_exchangeable(data)
    glmm_rows = [{**row, "headline": True} for row in random_intercept_rows(model, data, glmm)]
    separation = separation_check(data)
    models = models_frame(add_model_warning(
        logistic_rows(model, data, glm, "CR1", separation) + logistic_rows(model, data, glm, "CR2", separation)
        + gee_rows(model, data, gee_params, gee_vcov)
        + glmm_rows, "separation" if separation["separated"] else None, separation["terms"]))
    k = data.X.shape[1]
    fit_rows = (
        _specification_rows(model, data, glm.inverse_information, separation)
        + _likelihood_rows(model, METHOD_GLM, glm.loglik, k, data.n)
        + _prediction_rows(model, METHOD_GLM, data, glm.fitted, "fitted risk of the ML logistic fit")
        + [_row(model, METHOD_GEE, "working_correlation", "moment_estimator_geepack", estimate=alpha, n=data.n)]
        + _prediction_rows(model, METHOD_GEE, data, special.expit(data.X @ gee_params), "population-averaged fitted risk")
        + _likelihood_rows(model, glmm_method, glmm.loglik, k + 1, data.n)
        + _prediction_rows(model, glmm_method, data, marginal_probability(data, glmm),
                           "marginal risk: random intercept integrated out")
        + [
            _row(model, glmm_method, "max_abs_gradient", "analytic_gradient_at_optimum", estimate=glmm.gradient_norm,
                 n=data.n, note="converged" if glmm.converged else "NOT converged: gradient above 1e-6"),
            _row(model, glmm_method, "headline", "estimator_choice", estimate=1.0, n=data.n, note=HEADLINE_REASON),
        ]
    )
    return models, fit_frame(fit_rows)

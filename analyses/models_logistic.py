"""Logistic regression by maximum likelihood with model-based or cluster-robust errors.

The point estimates are the ordinary ML logistic fit (R's ``glm(family = binomial)``,
statsmodels' GLM by IRLS). What changes between the variants is the covariance:

- ``model``: the inverse Fisher information, R's ``vcov(glm)``; right only when pupils
  are independent, which pupils of one school are not.
- ``CR1``: the cluster sandwich with the Stata-like small-sample factor
  G/(G-1) * (n-1)/(n-k) (G clusters, k coefficients), exactly
  ``sandwich::vcovCL(fit, cluster = ~school, type = "HC1")``; inference with z as
  ``lmtest::coeftest`` does for a glm.
- ``CR2``: the bias-reduced linearisation of Bell and McCaffrey (2002) in the form of
  Pustejovsky and Tipton (2018), exactly ``clubSandwich::vcovCR(fit, type = "CR2")``
  (working-variance target), with the per-coefficient Satterthwaite degrees of freedom of
  ``clubSandwich::coef_test`` / ``conf_int``. It keeps its nominal coverage with few
  schools, where CR1 is too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analyses.models_design import ModelData, model_data
from analyses.methods import FEW_CLUSTERS_BELOW
from analyses.models_diagnostics import separation_check
from analyses.models_tidy import add_model_warning, coefficient_rows, models_frame
from analyses.sandwich import symmetric_inverse_root
from analyses.threads import one_blas_thread

METHOD_GLM = "logistic_glm_ml"
METHOD_CR1 = "logistic_glm_ml_cr1"
METHOD_CR2 = "logistic_glm_ml_cr2"
CORRECTION = {
    "model": "none: model-based inverse information, pupils treated as independent",
    "CR1": "CR1: cluster sandwich x G/(G-1) x (n-1)/(n-k) (sandwich::vcovCL type HC1)",
    "CR2": "CR2: Bell-McCaffrey bias-reduced sandwich, Satterthwaite df (clubSandwich)",
}
METHOD = {"model": METHOD_GLM, "CR1": METHOD_CR1, "CR2": METHOD_CR2}
#: Warning codes (analyses.methods) of coefficient rows: CR1 with z and fewer than
#: FEW_CLUSTERS_BELOW clusters over-rejects (two schools give p ~ 0); separated terms'
#: estimates run off to infinity (the fit table's ``separation`` row names the same terms).
FEW_CLUSTERS = "few_clusters"
SEPARATION = "separation"


@dataclass(frozen=True)
class LogisticFit:
    """The ML fit: coefficients, fitted probabilities, inverse information, log-likelihood."""

    params: np.ndarray
    fitted: np.ndarray
    inverse_information: np.ndarray
    loglik: float
    converged: bool


def fit_logistic(data: ModelData) -> LogisticFit:
    """ML logistic regression by IRLS, converged well past R's ``glm`` tolerance."""
    result = sm.GLM(data.y, data.X, family=sm.families.Binomial()).fit(tol=1e-12, maxiter=200)
    return LogisticFit(
        params=np.asarray(result.params),
        fitted=np.asarray(result.fittedvalues),
        inverse_information=np.asarray(result.cov_params()),
        loglik=float(result.llf),
        converged=bool(result.converged),
    )


def _cluster_blocks(groups: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    return np.split(order, bounds)


def vcov_cr1(data: ModelData, fit: LogisticFit) -> np.ndarray:
    """Cluster-robust covariance, CR1 (``sandwich::vcovCL(type = "HC1")``)."""
    n, k = data.X.shape
    clusters = data.n_clusters
    scores = data.X * (data.y - fit.fitted)[:, None]
    summed = np.zeros((clusters, k))
    np.add.at(summed, data.groups, scores)
    meat = summed.T @ summed
    factor = clusters / (clusters - 1) * (n - 1) / (n - k)
    bread = fit.inverse_information
    return factor * bread @ meat @ bread


@one_blas_thread  # a small eigendecomposition per school: BLAS threads cost ~50x the CPU (analyses/threads.py)
def vcov_cr2(data: ModelData, fit: LogisticFit) -> tuple[np.ndarray, np.ndarray]:
    """CR2 covariance and Satterthwaite df per coefficient, as clubSandwich computes them.

    For a logit GLM clubSandwich works with the working variance v = mu(1 - mu): the
    adjustment for cluster j is A_j = C (C (V - V X M X' V) C)^(-1/2) C with C = V^(1/2),
    M the inverse information, and the covariance is M [sum_j X_j' A_j e_j e_j' A_j X_j] M
    with response residuals e. The df for coefficient i is 2 tr(P)^2 / (2 sum P^2) with
    P = diag_j(|g_ij|^2) - H_i' H_i, g_ij the i-th row of M X_j' A_j C and H_i collecting
    the i-th rows of M X_j' A_j V X_j L (L the Cholesky factor of M).
    """
    M = fit.inverse_information
    chol = np.linalg.cholesky(M)
    k = M.shape[0]
    variance = fit.fitted * (1 - fit.fitted)
    residual = data.y - fit.fitted
    meat = np.zeros((k, k))
    g_norms, h_rows = [], []
    for rows in _cluster_blocks(data.groups):
        X, v = data.X[rows], variance[rows]
        scaled = X * (v**1.5)[:, None]
        target = np.diag(v**2) - scaled @ M @ scaled.T
        root_v = np.sqrt(v)
        adjustment = root_v[:, None] * symmetric_inverse_root(target) * root_v[None, :]
        estimating = X.T @ adjustment
        component = estimating @ residual[rows]
        meat += np.outer(component, component)
        projected = M @ estimating
        g_norms.append(((projected * root_v[None, :]) ** 2).sum(axis=1))
        h_rows.append(projected @ (X * v[:, None]) @ chol)
    vcov = M @ meat @ M
    g_norm = np.column_stack(g_norms)
    h = np.stack(h_rows)  # clusters x k x k
    df = np.empty(k)
    for i in range(k):
        hi = h[:, i, :]
        P = -hi @ hi.T
        P[np.diag_indices_from(P)] += g_norm[i]
        df[i] = 2 * np.trace(P) ** 2 / (2 * (P**2).sum())
    return vcov, df


def logistic_rows(model: str, data: ModelData, fit: LogisticFit, vcov_type: str,
                  separation: dict | None = None) -> list[dict]:
    """Tidy coefficient rows for one covariance choice: ``model``, ``CR1`` or ``CR2``.

    ``separation``: :func:`separation_check` of ``data`` when the caller has it already
    (a linear program over every row: at national scale it is worth solving once).
    """
    df = None
    if vcov_type == "model":
        vcov = fit.inverse_information
    elif vcov_type == "CR1":
        vcov = vcov_cr1(data, fit)
    elif vcov_type == "CR2":
        vcov, df = vcov_cr2(data, fit)
    else:
        raise ValueError(f"unknown vcov_type {vcov_type!r}: use 'model', 'CR1' or 'CR2'")
    rows = coefficient_rows(
        model,
        data.columns,
        fit.params,
        np.sqrt(np.diag(vcov)),
        data.n,
        METHOD[vcov_type],
        CORRECTION[vcov_type],
        df=df,
    )
    few = vcov_type == "CR1" and data.n_clusters < FEW_CLUSTERS_BELOW
    rows = add_model_warning(rows, FEW_CLUSTERS if few else None)
    separation = separation if separation is not None else separation_check(data)
    return add_model_warning(rows, SEPARATION if separation["separated"] else None, separation["terms"])


def logistic_model(
    df: pd.DataFrame,
    outcome: str,
    terms: list[str],
    cluster: str | None = None,
    model: str = "model",
    vcov_type: str = "CR1",
    ci: str = "wald",
) -> pd.DataFrame:
    """Fit ``outcome ~ terms`` by ML logistic regression and return tidy coefficient rows.

    ``vcov_type`` is ``model`` (no clustering), ``CR1`` or ``CR2`` (both need ``cluster``).
    ``ci="profile"`` (with ``vcov_type="model"``) gives profile-likelihood intervals,
    R's ``confint`` of a glm (:mod:`analyses.profile_likelihood`), instead of Wald ones.
    """
    if ci not in ("wald", "profile"):
        raise ValueError("ci is 'wald' or 'profile'")
    if ci == "profile":
        if vcov_type != "model":
            raise ValueError("profile-likelihood intervals are likelihood-based: use vcov_type='model'")
        from analyses.profile_likelihood import logistic_profile_ci  # it imports this module

        return logistic_profile_ci(df, outcome, terms, model=model)
    if vcov_type != "model" and cluster is None:
        raise ValueError("cluster-robust errors need a cluster column")
    data = model_data(df, outcome, terms, cluster if vcov_type != "model" else None)
    return models_frame(logistic_rows(model, data, fit_logistic(data), vcov_type))

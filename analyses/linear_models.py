"""Linear models for a continuous outcome: OLS / ANCOVA and the linear mixed model.

* :func:`ols` is R's ``lm``: least squares with model-based (homoscedastic) standard
  errors, t tests and t intervals on n - p degrees of freedom. :func:`ancova` is the
  ANCOVA of a post score on its pre score and a group (``lm(post ~ pre + group)``), the
  standard alternative to change scores: the group row is the adjusted difference.
* :func:`linear_mixed_model` is lme4's ``lmer`` for one grouping factor with a random
  intercept and optional random slopes (correlated, ``(1 + x | g)``), fitted by ML or
  REML. It minimises lme4's profiled deviance (Bates, Maechler, Bolker & Walker 2015,
  eqs. 34 and 41) over the relative covariance factor theta, the same criterion as
  ``lmer``, with a derivative-free search (Nelder-Mead) polished by bounded quasi-Newton
  to a gradient of ~1e-9, so the optimum is lmer's to ~1e-8 rather than the ~1e-5 of an
  optimiser stopped at its default tolerance. Fixed-effect standard errors are lmer's
  ``vcov``: sigma^2 (X' V^-1 X)^-1 at the estimates. lme4 gives no p-values; the rows
  carry lmerTest's Satterthwaite df with t tests and t intervals (a Wald z test and
  interval, named so, when a variance sits on its boundary).

Checked to 1e-6 against tests/reference/linear_models.R (lme4::sleepstudy with lmer and
lmerTest, MASS::anorexia with lm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analyses.models_design import INTERCEPT, design_columns
from analyses.tidy import tidy_frame

LINEAR_ID_COLUMNS = ("model", "term")
LINEAR_EXTRA_COLUMNS = ("df", "effect", "group")

METHOD_OLS = "ols"
METHOD_ANCOVA = "ancova_ols"
METHOD_LMM = {True: "lmm_reml", False: "lmm_ml"}
SE_MODEL = "model_based"
CI_T = "wald_t_residual_df"
CI_Z = "wald_z"
CI_SATTERTHWAITE = "wald_t_satterthwaite"


def linear_frame(rows) -> pd.DataFrame:
    frame = tidy_frame(rows, LINEAR_ID_COLUMNS, LINEAR_EXTRA_COLUMNS)
    frame["df"] = frame["df"].astype("float64")
    return frame


def _design(frame: pd.DataFrame, outcome: str, terms: Sequence[str], extra: Sequence[str] = ()):
    """Complete cases of outcome ~ terms (R's treatment coding), plus the extra columns."""
    wanted = [outcome, *terms, *extra]
    absent = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if absent:
        raise KeyError(f"columns not in the data: {absent}")
    complete = frame.loc[frame[list(dict.fromkeys(wanted))].notna().all(axis=1)]
    if complete.empty:
        raise ValueError("no complete cases for the model specification")
    if not pd.api.types.is_numeric_dtype(complete[outcome]):
        raise ValueError(f"outcome {outcome!r} must be numeric")
    X, names, _ = design_columns(complete, terms)
    return complete, complete[outcome].to_numpy(dtype=float), X, names


def _coefficient_rows(model, names, beta, se, n, df, method, ci_method, correction, conf_level):
    statistic = beta / se
    if df is None:
        dfs = np.full(beta.shape, np.nan)
        q = np.full(beta.shape, stats.norm.ppf(0.5 + conf_level / 2))
        p = 2 * stats.norm.sf(np.abs(statistic))
    else:
        dfs = np.broadcast_to(np.asarray(df, dtype=float), beta.shape)
        q = stats.t.ppf(0.5 + conf_level / 2, dfs)
        p = 2 * stats.t.sf(np.abs(statistic), dfs)
    return [
        {"model": model, "term": term, "estimate": beta[i], "std_error": se[i], "statistic": statistic[i],
         "p_value": p[i], "conf_low": beta[i] - q[i] * se[i], "conf_high": beta[i] + q[i] * se[i], "n": n,
         "df": float(dfs[i]), "effect": "fixed", "method": method, "ci_method": ci_method, "correction": correction}
        for i, term in enumerate(names)
    ]


def ols(
    frame: pd.DataFrame, outcome: str, terms: Sequence[str], model: str = "model",
    conf_level: float = 0.95, method: str = METHOD_OLS,
) -> pd.DataFrame:
    """``lm(outcome ~ terms)``: coefficients, model-based SEs, t tests and t intervals (n - p df)."""
    _, y, X, names = _design(frame, outcome, terms)
    n, p = X.shape
    if n <= p:
        raise ValueError(f"{n} complete cases for {p} coefficients: no residual degrees of freedom")
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    if rank < p:
        raise ValueError("the terms are collinear (the design matrix is not of full rank)")
    residual = y - X @ beta
    df = n - p
    sigma2 = residual @ residual / df
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
    return linear_frame(_coefficient_rows(model, names, beta, se, n, df, method, CI_T, SE_MODEL, conf_level))


def ancova(
    frame: pd.DataFrame, post: str, pre: str, group: str, covariates: Sequence[str] = (),
    model: str = "ancova", conf_level: float = 0.95,
) -> pd.DataFrame:
    """ANCOVA of ``post`` on ``pre`` and ``group`` (+ covariates): ``lm(post ~ pre + group + ...)``.

    Make ``group`` a pandas Categorical to choose the reference level (its first category).
    """
    return ols(frame, post, [pre, group, *covariates], model=model, conf_level=conf_level, method=METHOD_ANCOVA)


@dataclass(frozen=True)
class LinearMixedFit:
    """A fitted linear mixed model (one grouping factor), in lmer's terms."""

    columns: tuple[str, ...]
    random_columns: tuple[str, ...]
    coefficients: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    sigma: float
    random_covariance: np.ndarray  # covariance matrix of the random effects (sigma^2 Lambda Lambda')
    deviance: float  # -2 log-likelihood (ML) or the REML criterion (REML)
    reml: bool
    n: int
    n_groups: int
    converged: bool
    df: np.ndarray | None = None  # Satterthwaite df of the fixed effects (lmerTest)

    @property
    def loglik(self) -> float:
        """``logLik(fit)``: the log-likelihood (ML) or the REML log-likelihood."""
        return -self.deviance / 2


class _Profiled:
    """lme4's profiled deviance of y = X b + Z u + e for one grouping factor."""

    def __init__(self, y, X, Z, groups, reml):
        self.reml = reml
        self.n, self.p = X.shape
        self.k = Z.shape[1]
        self.blocks = []
        for g in np.unique(groups):
            rows = groups == g
            Zg = Z[rows]
            self.blocks.append((y[rows], X[rows], Zg, Zg.T @ Zg, Zg.T @ X[rows], Zg.T @ y[rows]))
        self.tril = np.tril_indices(self.k)

    def lam(self, theta):
        L = np.zeros((self.k, self.k))
        L[self.tril] = theta
        return L

    def solve(self, theta):
        """(deviance, beta, r^2, X'V^-1X) at theta, V = I + Z Lambda Lambda' Z' per group."""
        L = self.lam(theta)
        XtVX = np.zeros((self.p, self.p))
        XtVy = np.zeros(self.p)
        yVy = 0.0
        logdet = 0.0
        eye = np.eye(self.k)
        for y, X, Z, ZtZ, ZtX, Zty in self.blocks:
            M = L.T @ ZtZ @ L + eye
            chol = np.linalg.cholesky(M)
            logdet += 2 * np.log(np.diag(chol)).sum()
            A = np.linalg.solve(chol, L.T @ ZtX)  # chol^-1 Lambda' Z'X
            b = np.linalg.solve(chol, L.T @ Zty)
            XtVX += X.T @ X - A.T @ A
            XtVy += X.T @ y - A.T @ b
            yVy += y @ y - b @ b
        beta = np.linalg.solve(XtVX, XtVy)
        r2 = yVy - XtVy @ beta
        if self.reml:
            dof = self.n - self.p
            deviance = logdet + np.linalg.slogdet(XtVX)[1] + dof * (1 + np.log(2 * np.pi * r2 / dof))
        else:
            deviance = logdet + self.n * (1 + np.log(2 * np.pi * r2 / self.n))
        return deviance, beta, r2, XtVX

    def __call__(self, theta):
        return self.solve(theta)[0]

    def deviance_at(self, varpar):
        """lmerTest's deviance of (theta, sigma), sigma not profiled out (``devfun_vp``)."""
        theta, sigma2 = varpar[:-1], varpar[-1] ** 2
        L = self.lam(theta)
        logdet = 0.0
        XtVX = np.zeros((self.p, self.p))
        XtVy = np.zeros(self.p)
        yVy = 0.0
        eye = np.eye(self.k)
        for y, X, Z, ZtZ, ZtX, Zty in self.blocks:
            chol = np.linalg.cholesky(L.T @ ZtZ @ L + eye)
            logdet += 2 * np.log(np.diag(chol)).sum()
            A = np.linalg.solve(chol, L.T @ ZtX)
            b = np.linalg.solve(chol, L.T @ Zty)
            XtVX += X.T @ X - A.T @ A
            XtVy += X.T @ y - A.T @ b
            yVy += y @ y - b @ b
        r2 = yVy - XtVy @ np.linalg.solve(XtVX, XtVy)
        deviance = logdet + r2 / sigma2 + self.n * np.log(2 * np.pi * sigma2)
        if self.reml:
            deviance += np.linalg.slogdet(XtVX)[1] - self.p * np.log(2 * np.pi * sigma2)
        return deviance

    def covariance_at(self, varpar):
        """vcov of the fixed effects at (theta, sigma): sigma^2 (X' V^-1 X)^-1."""
        return varpar[-1] ** 2 * np.linalg.inv(self.solve(varpar[:-1])[3])


def _steps(x: np.ndarray, relative: float) -> np.ndarray:
    return relative * np.maximum(np.abs(x), 0.05)


def _richardson_gradient(function, x: np.ndarray, relative: float = 1e-3) -> np.ndarray:
    """Central differences with one Richardson step (error O(h^4)); ``function`` may return arrays."""
    steps = _steps(x, relative)
    columns = []
    for i, h in enumerate(steps):
        e = np.zeros_like(x)
        e[i] = 1.0

        def central(step):
            return (np.asarray(function(x + step * e)) - np.asarray(function(x - step * e))) / (2 * step)

        columns.append((4 * central(h / 2) - central(h)) / 3)
    return np.stack(columns, axis=-1)


def _richardson_hessian(function, x: np.ndarray, relative: float = 1e-2) -> np.ndarray:
    """Second differences with one Richardson step."""
    steps = _steps(x, relative)
    m = len(x)

    def second(scale):
        H = np.zeros((m, m))
        f0 = function(x)
        for i in range(m):
            ei = np.zeros(m)
            ei[i] = steps[i] * scale
            H[i, i] = (function(x + ei) - 2 * f0 + function(x - ei)) / ei[i] ** 2
            for j in range(i):
                ej = np.zeros(m)
                ej[j] = steps[j] * scale
                H[i, j] = H[j, i] = (function(x + ei + ej) - function(x + ei - ej) - function(x - ei + ej)
                                     + function(x - ei - ej)) / (4 * ei[i] * ej[j])
        return H

    return (4 * second(0.5) - second(1.0)) / 3


def satterthwaite_df(profiled: _Profiled, theta: np.ndarray, sigma: float) -> np.ndarray:
    """lmerTest's Satterthwaite df of each fixed effect: 2 C_ii^2 / (g_i' A g_i).

    A = 2 H^-1, H the Hessian of the (theta, sigma) deviance at the optimum, g_i the
    gradient of C_ii = vcov(beta)_ii in (theta, sigma); both by central differences with
    a Richardson step (lmerTest uses numDeriv's Richardson extrapolation). NaN when a
    variance parameter is on its boundary (a singular fit: the Hessian is not defined).
    """
    varpar = np.r_[theta, sigma]
    rows, cols = profiled.tril
    if np.any(theta[rows == cols] <= 1e-6):
        return np.full(profiled.p, np.nan)
    A = 2 * np.linalg.inv(_richardson_hessian(profiled.deviance_at, varpar))
    C = profiled.covariance_at(varpar)
    jacobian = _richardson_gradient(lambda v: np.diag(profiled.covariance_at(v)), varpar)
    return np.array([2 * C[i, i] ** 2 / (jacobian[i] @ A @ jacobian[i]) for i in range(profiled.p)])


def _stationary(function, theta: np.ndarray, diagonal: np.ndarray, tolerance: float = 1e-3) -> bool:
    """Central-difference gradient ~0 at theta, except along a diagonal element held at its bound 0."""
    step = 1e-4
    for i, value in enumerate(theta):
        up, down = theta.copy(), theta.copy()
        up[i] += step
        down[i] -= step
        if diagonal[i] and value <= step:
            if function(up) < function(theta) - tolerance * step:
                return False
            continue
        if abs(function(up) - function(down)) / (2 * step) > tolerance:
            return False
    return True


def fit_mixed_arrays(
    y: np.ndarray, X: np.ndarray, Z: np.ndarray, groups: np.ndarray, reml: bool = True,
    columns: Sequence[str] | None = None, random_columns: Sequence[str] | None = None,
) -> LinearMixedFit:
    """lmer's fit of y = X b + Z u + e, u ~ N(0, sigma^2 Lambda Lambda') per group, on arrays.

    ``Z`` holds the random-effect columns (a column of ones for a random intercept);
    ``groups`` any labels. Used by :func:`linear_mixed_fit` and by the DiD random-intercept
    model (analyses/evaluation/did.py).
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    Z = np.asarray(Z, dtype=float).reshape(len(y), -1)
    groups = pd.factorize(np.asarray(groups), sort=True)[0]
    n_groups = int(groups.max()) + 1
    if n_groups < 2:
        raise ValueError("a mixed model needs two groups at least")
    profiled = _Profiled(y, X, Z, groups, reml)
    rows, cols = profiled.tril
    diagonal = rows == cols
    bounds = [(0.0, None) if d else (None, None) for d in diagonal]
    start = np.where(diagonal, 1.0, 0.0)
    first = optimize.minimize(profiled, start, method="Nelder-Mead",
                              options={"xatol": 1e-7, "fatol": 1e-10, "maxfev": 4000 * len(start)})
    theta = np.where(diagonal, np.maximum(first.x, 0.0), first.x)
    polish = optimize.minimize(profiled, theta, method="L-BFGS-B", bounds=bounds,
                               options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
    if polish.fun <= profiled(theta):
        theta = polish.x
    converged = _stationary(profiled, theta, diagonal)
    deviance, beta, r2, XtVX = profiled.solve(theta)
    n = len(y)
    sigma2 = r2 / (n - X.shape[1] if reml else n)
    L = profiled.lam(theta)
    k = Z.shape[1]
    return LinearMixedFit(
        columns=tuple(columns) if columns else tuple(f"x{i}" for i in range(X.shape[1])),
        random_columns=tuple(random_columns) if random_columns else tuple(f"z{i}" for i in range(k)),
        coefficients=beta, vcov=sigma2 * np.linalg.inv(XtVX), theta=theta, sigma=float(np.sqrt(sigma2)),
        random_covariance=sigma2 * L @ L.T, deviance=float(deviance), reml=reml, n=n,
        n_groups=n_groups, converged=converged, df=satterthwaite_df(profiled, theta, float(np.sqrt(sigma2))),
    )


def linear_mixed_fit(
    frame: pd.DataFrame, outcome: str, terms: Sequence[str], group: str,
    random_slopes: Sequence[str] = (), reml: bool = True,
) -> LinearMixedFit:
    """Fit ``lmer(outcome ~ terms + (1 + random_slopes | group), REML = reml)``."""
    complete, y, X, names = _design(frame, outcome, terms, [group, *random_slopes])
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError("the terms are collinear (the design matrix is not of full rank)")
    Z = np.column_stack([np.ones(len(complete))] + [complete[s].to_numpy(dtype=float) for s in random_slopes])
    if complete[group].nunique() < 2:
        raise ValueError(f"a mixed model needs two groups of {group!r} at least")
    return fit_mixed_arrays(y, X, Z, complete[group].to_numpy(), reml, names, (INTERCEPT, *random_slopes))


def linear_mixed_model(
    frame: pd.DataFrame, outcome: str, terms: Sequence[str], group: str,
    random_slopes: Sequence[str] = (), reml: bool = True, model: str = "model", conf_level: float = 0.95,
) -> pd.DataFrame:
    """Tidy rows of :func:`linear_mixed_fit`: fixed effects, then the variance parameters.

    Fixed rows: estimate, lmer's SE, the t value in ``statistic`` with lmerTest's
    Satterthwaite df (``df``), t p-value and t interval (``ci_method``
    ``wald_t_satterthwaite``); where the df are undefined (a variance on its boundary)
    the Wald z test and interval, named so. ``ran_pars`` rows (``group`` =
    the grouping column): ``sd__<term>`` per random effect, ``cor__<a>.<b>`` for their
    correlations, ``sd__Observation`` the residual SD, as broom.mixed names them; no SEs.
    """
    fit = linear_mixed_fit(frame, outcome, terms, group, random_slopes, reml)
    method = METHOD_LMM[reml]
    se = np.sqrt(np.diag(fit.vcov))
    if fit.df is not None and np.isfinite(fit.df).all():
        rows = _coefficient_rows(model, fit.columns, fit.coefficients, se, fit.n, fit.df, method, CI_SATTERTHWAITE,
                                 "satterthwaite_df_lmertest", conf_level)
    else:
        rows = _coefficient_rows(model, fit.columns, fit.coefficients, se, fit.n, None, method, CI_Z,
                                 "none: no denominator df (singular fit)", conf_level)
    sd = np.sqrt(np.diag(fit.random_covariance))
    pars = [(f"sd__{name}", value) for name, value in zip(fit.random_columns, sd)]
    for i in range(len(sd)):
        for j in range(i + 1, len(sd)):
            value = fit.random_covariance[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
            pars.append((f"cor__{fit.random_columns[i]}.{fit.random_columns[j]}", value))
    pars.append(("sd__Observation", fit.sigma))
    for term, value in pars:
        rows.append({"model": model, "term": term, "estimate": value, "n": fit.n, "effect": "ran_pars",
                     "group": "Residual" if term == "sd__Observation" else group, "method": method,
                     "correction": None, "ci_method": None})
    return linear_frame(rows)

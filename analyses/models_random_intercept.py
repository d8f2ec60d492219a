"""Maximum-likelihood random-intercept logistic regression (a GLMM), written out.

Model: logit P(y_ij = 1 | b_i) = x_ij' beta + b_i with b_i ~ N(0, sigma^2) per school i.
statsmodels offers only Bayesian approximations for this model, so the marginal
likelihood is computed here as lme4's ``glmer(y ~ x + (1 | school), family = binomial,
nAGQ = K)`` computes it:

- per school, the conditional mode of the standardised effect u = b / sigma is found by
  safeguarded Newton steps, and the integral over u is taken by adaptive Gauss-Hermite
  quadrature with K nodes centred on the mode and scaled by the curvature there
  (Liu and Pierce 1994). K = 1 is the Laplace approximation (lme4's default nAGQ = 1);
  the default here is K = 15, where the approximation error is far below the sampling
  error.
- the log-likelihood is maximised over (beta, sigma) by BFGS with the analytic gradient
  of the quadrature formula (the modes and curvatures are differentiated implicitly), then
  polished by Newton steps. The likelihood is even in sigma, so sigma is optimised
  unconstrained and reported as |sigma|.
- fixed-effect standard errors are Wald, from the observed information: the Hessian of the
  log-likelihood in (beta, sigma), by central differences of the analytic gradient. lme4
  does the same in (theta, beta) with theta = sigma, so the fixed-effect block agrees.
- the school SD gets a Wald interval on the log scale (exp(log sigma +- z se(sigma) /
  sigma)), which stays positive; it is undefined when sigma is at the boundary 0. The ICC
  on the latent scale is sigma^2 / (sigma^2 + pi^2 / 3) (the logistic residual variance),
  its interval the transformed ends of the SD interval.

Agreement with lme4 is limited by lme4's optimiser tolerance and its finite-difference
Hessian, not by the likelihood: the test compares with a glmer fit tightened to
bobyqa rhoend = 1e-10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from analyses.models_design import ModelData, model_data
from analyses.models_logistic import fit_logistic
from analyses.models_tidy import coefficient_rows, models_frame

LATENT_RESIDUAL_VARIANCE = np.pi**2 / 3


def method_name(n_agq: int) -> str:
    """The method key for an nAGQ choice: Laplace for one node."""
    return "glmm_logit_random_intercept_ml_laplace" if n_agq == 1 else f"glmm_logit_random_intercept_ml_agq{n_agq}"


@dataclass(frozen=True)
class RandomInterceptFit:
    """The ML estimates and what inference needs.

    ``vcov`` is the inverse observed information in (beta..., sigma). ``modes`` are the
    conditional modes of b_i = sigma * u_i per cluster code (lme4's ``ranef``).
    """

    params: np.ndarray
    sd: float
    vcov: np.ndarray
    loglik: float
    modes: np.ndarray
    n_agq: int
    converged: bool
    gradient_norm: float


class _Likelihood:
    """Log-likelihood and gradient for data sorted by cluster; keeps modes as warm starts."""

    def __init__(self, data: ModelData, n_agq: int):
        order = np.argsort(data.groups, kind="stable")
        self.y = data.y[order]
        self.X = data.X[order]
        self.g = data.groups[order]
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.g) != 0])
        self.clusters = len(self.starts)
        nodes, weights = np.polynomial.hermite.hermgauss(n_agq)
        self.z = nodes
        self.log_w = np.log(weights) + nodes**2
        self.u = np.zeros(self.clusters)

    def _sum(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.starts, axis=0)

    def _conditional_log(self, eta0: np.ndarray, sigma: float, u: np.ndarray) -> np.ndarray:
        eta = eta0 + sigma * u[self.g]
        return self._sum(self.y * eta - np.logaddexp(0.0, eta)) - 0.5 * u**2

    def _modes(self, eta0: np.ndarray, sigma: float) -> np.ndarray:
        u = self.u.copy()
        current = self._conditional_log(eta0, sigma, u)
        for _ in range(100):
            mu = special.expit(eta0 + sigma * u[self.g])
            slope = sigma * self._sum(self.y - mu) - u
            curvature = sigma**2 * self._sum(mu * (1 - mu)) + 1.0
            step = slope / curvature
            for _ in range(30):
                trial = self._conditional_log(eta0, sigma, u + step)
                worse = trial < current - 1e-12
                if not worse.any():
                    break
                step = np.where(worse, step / 2, step)
            u, current = u + step, trial
            if np.max(np.abs(step)) < 1e-11:
                break
        self.u = u
        return u

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, sigma = theta[:-1], float(theta[-1])
        X, y, g = self.X, self.y, self.g
        eta0 = X @ beta
        u_hat = self._modes(eta0, sigma)
        mu_hat = special.expit(eta0 + sigma * u_hat[g])
        w = mu_hat * (1 - mu_hat)
        w_prime = w * (1 - 2 * mu_hat)
        sum_w = self._sum(w)
        curvature = 1.0 + sigma**2 * sum_w
        scale = np.sqrt(2.0 / curvature)
        # quadrature nodes per cluster and the integrand's log at each
        u_nodes = u_hat[:, None] + scale[:, None] * self.z[None, :]
        eta = eta0[:, None] + sigma * u_nodes[g]
        log_f = self._sum(y[:, None] * eta - np.logaddexp(0.0, eta)) - 0.5 * u_nodes**2
        log_terms = self.log_w[None, :] + log_f
        log_cluster = special.logsumexp(log_terms, axis=1)
        loglik = float(np.sum(log_cluster + np.log(scale)) - 0.5 * self.clusters * np.log(2 * np.pi))
        # gradient: posterior-weighted scores plus the implicit movement of the nodes
        post = np.exp(log_terms - log_cluster[:, None])
        resid = y[:, None] - special.expit(eta)
        resid_sum = self._sum(resid)
        d_f_du = sigma * resid_sum - u_nodes
        a = np.sum(post * d_f_du, axis=1)
        b = np.sum(post * d_f_du * self.z[None, :], axis=1)
        du_dbeta = -sigma * self._sum(w[:, None] * X) / curvature[:, None]
        du_dsigma = (self._sum(y - mu_hat) - sigma * u_hat * sum_w) / curvature
        sum_wp = self._sum(w_prime)
        dH_dbeta = sigma**2 * (self._sum(w_prime[:, None] * X) + sigma * sum_wp[:, None] * du_dbeta)
        dH_dsigma = 2 * sigma * sum_w + sigma**2 * sum_wp * (u_hat + sigma * du_dsigma)
        dlogs_dbeta = -0.5 * dH_dbeta / curvature[:, None]
        dlogs_dsigma = -0.5 * dH_dsigma / curvature
        direct_beta = X.T @ np.sum(post[g] * resid, axis=1)
        direct_sigma = np.sum(post * u_nodes * resid_sum)
        grad_beta = direct_beta + np.sum(
            dlogs_dbeta + a[:, None] * du_dbeta + (b * scale)[:, None] * dlogs_dbeta, axis=0
        )
        grad_sigma = direct_sigma + np.sum(dlogs_dsigma + a * du_dsigma + b * scale * dlogs_dsigma)
        return loglik, np.r_[grad_beta, grad_sigma]


def _hessian(likelihood: _Likelihood, theta: np.ndarray) -> np.ndarray:
    """Central differences of the analytic gradient, symmetrised."""
    k = len(theta)
    hessian = np.empty((k, k))
    for j in range(k):
        step = 1e-5 * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        hessian[:, j] = (likelihood.value_and_gradient(up)[1] - likelihood.value_and_gradient(down)[1]) / (2 * step)
    return (hessian + hessian.T) / 2


def fit_random_intercept(
    data: ModelData, n_agq: int = 15, start: np.ndarray | None = None
) -> RandomInterceptFit:
    """Maximise the adaptive Gauss-Hermite likelihood; ``start`` is (beta..., sigma)."""
    if data.groups is None:
        raise ValueError("the random-intercept model needs a cluster column")
    if n_agq < 1:
        raise ValueError("n_agq must be at least 1")
    likelihood = _Likelihood(data, n_agq)
    if start is None:
        start = np.r_[fit_logistic(data).params, 1.0]

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = likelihood.value_and_gradient(theta)
        return -value, -gradient

    result = optimize.minimize(negative, start, jac=True, method="BFGS", options={"gtol": 1e-8, "maxiter": 500})
    theta = result.x
    for _ in range(5):
        value, gradient = likelihood.value_and_gradient(theta)
        if np.max(np.abs(gradient)) < 1e-9:
            break
        theta = theta + np.linalg.solve(-_hessian(likelihood, theta), gradient)
    hessian = _hessian(likelihood, theta)
    value, gradient = likelihood.value_and_gradient(theta)
    sign = 1.0 if theta[-1] >= 0 else -1.0
    theta[-1] = abs(theta[-1])
    vcov = np.linalg.inv(-hessian)
    vcov[-1, :-1] *= sign
    vcov[:-1, -1] *= sign
    modes = np.empty(likelihood.clusters)
    modes[likelihood.g[likelihood.starts]] = theta[-1] * sign * likelihood.u
    gradient_norm = float(np.max(np.abs(gradient)))
    return RandomInterceptFit(
        params=theta[:-1],
        sd=float(theta[-1]),
        vcov=vcov,
        loglik=value,
        modes=modes,
        n_agq=n_agq,
        converged=gradient_norm < 1e-6,
        gradient_norm=gradient_norm,
    )


def icc_latent(sd: float) -> float:
    """Intraclass correlation on the latent logistic scale."""
    return sd**2 / (sd**2 + LATENT_RESIDUAL_VARIANCE)


def random_intercept_rows(model: str, data: ModelData, fit: RandomInterceptFit, conf_level: float = 0.95) -> list[dict]:
    """Fixed-effect rows, then the school SD and the latent ICC."""
    method = method_name(fit.n_agq)
    rows = coefficient_rows(
        model, data.columns, fit.params, np.sqrt(np.diag(fit.vcov)[:-1]), data.n, method, "none"
    )
    sd_se = float(np.sqrt(fit.vcov[-1, -1]))
    z = stats.norm.ppf(0.5 + conf_level / 2)
    if fit.sd > 0:
        log_se = sd_se / fit.sd
        sd_low, sd_high = fit.sd * np.exp(-z * log_se), fit.sd * np.exp(z * log_se)
    else:
        sd_low = sd_high = np.nan
    common = {"model": model, "n": data.n, "effect": "ran_pars", "group": data.cluster, "method": method}
    rows.append(
        {
            **common,
            "term": "sd__(Intercept)",
            "estimate": fit.sd,
            "std_error": sd_se,
            "conf_low": sd_low,
            "conf_high": sd_high,
            "ci_method": "wald_log_scale",
            "correction": "none",
        }
    )
    rows.append(
        {
            **common,
            "term": "icc_latent",
            "estimate": icc_latent(fit.sd),
            "conf_low": icc_latent(sd_low),
            "conf_high": icc_latent(sd_high),
            "ci_method": "transformed_sd_wald_log_scale",
            "correction": "latent logistic residual variance pi^2/3",
        }
    )
    return rows


def random_intercept_logistic(
    df: pd.DataFrame,
    outcome: str,
    terms: list[str],
    cluster: str,
    model: str = "model",
    n_agq: int = 15,
) -> pd.DataFrame:
    """Fit the random-intercept logit of ``outcome ~ terms + (1 | cluster)`` by ML."""
    data = model_data(df, outcome, terms, cluster)
    return models_frame(random_intercept_rows(model, data, fit_random_intercept(data, n_agq)))

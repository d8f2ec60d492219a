"""The hand-written ML random-intercept logit (analyses/models_random_intercept.py).

Reference: lme4::glmer(y ~ x + (1 | cluster), family = binomial, nAGQ = 1, 15, 25) in
tests/reference/models.R on MASS::bacteria, geepack::ohio and lme4::cbpp (binary rows),
with glmer tightened (bobyqa rhoend 1e-10, tolPwrss 1e-13). Tolerances: log-likelihood
1e-6, estimates and the school SD 1e-5, standard errors 2e-5 (lme4 takes them from a
finite-difference Hessian). One documented exception: on ohio with nAGQ = 1 lme4's
Laplace value sits 3.4e-5 below the textbook Laplace approximation even at lme4's own
estimates (checked here against a per-cluster brute-force Laplace), so that case is
compared at 1e-4.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special

from analyses.models_design import model_data
from analyses.models_random_intercept import (
    _Likelihood,
    fit_random_intercept,
    icc_latent,
    random_intercept_logistic,
)
from tests.model_datasets import REFERENCE, load, r_terms


def _data(name):
    df, outcome, terms, cluster = load(name)
    return model_data(df, outcome, terms, cluster)


def _cluster_integrals(data, theta, laplace: bool) -> float:
    """Sum over clusters of the log marginal likelihood by brute force (Brent mode: ~1e-8 accurate)."""
    beta, sigma = theta[:-1], theta[-1]
    total = 0.0
    for cluster in range(data.n_clusters):
        rows = data.groups == cluster
        eta, y = data.X[rows] @ beta, data.y[rows]

        def log_f(u):
            linear = eta + sigma * u
            return np.sum(y * linear - np.logaddexp(0, linear)) - u * u / 2

        mode = optimize.minimize_scalar(lambda u: -log_f(u), bracket=(-5, 5), tol=1e-12).x
        if laplace:
            mu = special.expit(eta + sigma * mode)
            total += log_f(mode) - 0.5 * np.log(1 + sigma**2 * np.sum(mu * (1 - mu)))
        else:
            peak = log_f(mode)
            value, _ = integrate.quad(lambda u: np.exp(log_f(u) - peak), mode - 12, mode + 12, epsabs=1e-13)
            total += peak + np.log(value) - 0.5 * np.log(2 * np.pi)
    return total


@pytest.mark.parametrize("n_agq", [1, 15])
def test_analytic_gradient_matches_finite_differences(n_agq):
    likelihood = _Likelihood(_data("bacteria"), n_agq)
    theta = np.array([2.5, -1.2, -0.7, -0.12, 1.3])
    _, gradient = likelihood.value_and_gradient(theta)
    numeric = []
    for j in range(len(theta)):
        step = np.zeros_like(theta)
        step[j] = 1e-6
        numeric.append((likelihood.value_and_gradient(theta + step)[0] - likelihood.value_and_gradient(theta - step)[0]) / 2e-6)
    np.testing.assert_allclose(gradient, numeric, atol=1e-6)


def test_likelihood_equals_brute_force_laplace_and_integral():
    data = _data("bacteria")
    theta = np.array([2.5, -1.2, -0.7, -0.12, 1.3])
    assert _Likelihood(data, 1).value_and_gradient(theta)[0] == pytest.approx(
        _cluster_integrals(data, theta, laplace=True), abs=1e-6)
    assert _Likelihood(data, 25).value_and_gradient(theta)[0] == pytest.approx(
        _cluster_integrals(data, theta, laplace=False), abs=1e-7)


CASES = [("bacteria", 1), ("bacteria", 15), ("cbpp", 1), ("cbpp", 15), ("cbpp", 25), ("ohio", 15)]


@pytest.mark.parametrize(("name", "n_agq"), CASES)
def test_matches_glmer(name, n_agq):
    ref = REFERENCE[name][f"glmer_agq{n_agq}"]
    fit = fit_random_intercept(_data(name), n_agq)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-6)
    np.testing.assert_allclose(fit.params, ref["estimate"], atol=1e-5, rtol=0)
    assert fit.sd == pytest.approx(ref["sd"], abs=1e-5)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov))[:-1], ref["std_error"], atol=2e-5, rtol=0)


def test_ohio_laplace_within_lme4_pirls_tolerance():
    data = _data("ohio")
    ref = REFERENCE["ohio"]["glmer_agq1"]
    fit = fit_random_intercept(data, 1)
    np.testing.assert_allclose(fit.params, ref["estimate"], atol=1e-4, rtol=0)
    assert fit.sd == pytest.approx(ref["sd"], abs=1e-4)
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-4)
    at_lme4 = np.r_[ref["estimate"], ref["sd"]]
    ours = _Likelihood(data, 1).value_and_gradient(at_lme4)[0]
    assert ours == pytest.approx(_cluster_integrals(data, at_lme4, laplace=True), abs=1e-6)
    assert ours - ref["loglik"] == pytest.approx(3.4e-5, abs=1e-5)


def test_tidy_rows_sd_interval_and_icc():
    df, outcome, terms, cluster = load("bacteria")
    table = random_intercept_logistic(df, outcome, terms, cluster, model="m", n_agq=15)
    assert list(table["term"]) == r_terms("bacteria") + ["sd__(Intercept)", "icc_latent"]
    sd = table.set_index("term").loc["sd__(Intercept)"]
    assert sd["estimate"] == pytest.approx(REFERENCE["bacteria"]["glmer_agq15"]["sd"], abs=1e-5)
    log_se = sd["std_error"] / sd["estimate"]
    assert sd["conf_low"] == pytest.approx(sd["estimate"] * np.exp(-1.959963984540054 * log_se))
    assert sd["conf_high"] == pytest.approx(sd["estimate"] * np.exp(1.959963984540054 * log_se))
    icc = table.set_index("term").loc["icc_latent"]
    assert icc["estimate"] == pytest.approx(sd["estimate"] ** 2 / (sd["estimate"] ** 2 + np.pi**2 / 3))
    assert icc["conf_low"] == pytest.approx(icc_latent(sd["conf_low"]))
    assert (table["effect"] == ["fixed"] * 4 + ["ran_pars"] * 2).all()
    assert table["method"].eq("glmm_logit_random_intercept_ml_agq15").all()


def test_recovers_planted_model_at_study_size_in_seconds():
    rng = np.random.default_rng(7)
    schools, pupils = 150, 5000
    school = rng.integers(0, schools, pupils)
    X = rng.normal(size=(pupils, 6))
    X[:, 3:] = X[:, 3:] > 0.5
    beta = np.array([-2.0, 0.5, -0.3, 0.2, 0.8, 0.4, -0.6])
    eta = beta[0] + X @ beta[1:] + rng.normal(0, 0.7, schools)[school]
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    df["y"] = (rng.uniform(size=pupils) < special.expit(eta)).astype(int)
    df["school"] = school
    start = time.perf_counter()
    table = random_intercept_logistic(df, "y", [f"x{i}" for i in range(6)], "school", n_agq=15)
    assert time.perf_counter() - start < 30
    fixed = table[table["effect"] == "fixed"]
    assert ((fixed["conf_low"] < beta) & (beta < fixed["conf_high"])).all()
    sd = table.set_index("term").loc["sd__(Intercept)"]
    assert sd["conf_low"] < 0.7 < sd["conf_high"]

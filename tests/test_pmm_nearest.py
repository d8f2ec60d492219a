"""Predictive mean matching by sorting (analyses/imputation.py, issue 16 item 6).

The dense version computed a missing x observed distance matrix (plus as much
tie-breaking noise); the sorted search must pick the same donors from the same stream on
continuous predictors, leave the generator where the dense version left it, and break
exact ties at random.
"""

from __future__ import annotations

import numpy as np

from analyses import imputation
from analyses.imputation import PMM_DONORS, _draw_pmm


def _dense_pmm(X, y, missing, rng):
    Xo, yo = X[~missing], y[~missing]
    xtx = Xo.T @ Xo
    xtx += np.diag(np.maximum(np.diag(xtx), 1e-12) * 1e-5)
    inverse = np.linalg.inv(xtx)
    beta = inverse @ Xo.T @ yo
    residual = yo - Xo @ beta
    sigma = np.sqrt(residual @ residual / rng.chisquare(max(len(yo) - X.shape[1], 1)))
    beta_star = beta + sigma * np.linalg.cholesky(inverse) @ rng.standard_normal(len(beta))
    fitted_obs, fitted_mis = Xo @ beta, X[missing] @ beta_star
    distance = np.abs(fitted_mis[:, None] - fitted_obs[None, :]) + rng.uniform(0, 1e-9, (missing.sum(), len(yo)))
    donors = np.argpartition(distance, min(PMM_DONORS, len(yo)) - 1, axis=1)[:, :PMM_DONORS]
    chosen = donors[np.arange(len(donors)), rng.integers(0, donors.shape[1], len(donors))]
    return yo[chosen]


def _data(seed, n=500):
    g = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), g.normal(size=(n, 3))])
    y = X @ g.normal(size=4) + g.normal(size=n)
    return X, y, g.uniform(size=n) < 0.3


def test_sorted_search_draws_what_the_dense_matrix_drew():
    for seed in range(10):
        X, y, missing = _data(seed)
        dense_rng, sorted_rng = np.random.default_rng(seed + 50), np.random.default_rng(seed + 50)
        dense_rng.integers(0, 5, 3)  # leaves a buffered 32-bit half in both generators
        sorted_rng.integers(0, 5, 3)
        np.testing.assert_array_equal(_dense_pmm(X, y, missing, dense_rng), _draw_pmm(X, y, missing, sorted_rng))
        assert dense_rng.bit_generator.state == sorted_rng.bit_generator.state
        assert dense_rng.integers(0, 10**9, 4).tolist() == sorted_rng.integers(0, 10**9, 4).tolist()


def test_nearest_donors_with_few_observed_and_ties():
    ties = np.random.default_rng(0)
    fitted = np.array([0.0, 1.0, 1.0, 1.0, 2.0])
    donors = imputation._nearest_donors(fitted, np.array([1.0, 5.0, -3.0]), 3, ties)
    assert sorted(donors[0]) == [1, 2, 3]
    assert sorted(donors[1]) == [2, 3, 4] or sorted(donors[1]) == [1, 3, 4] or sorted(donors[1]) == [1, 2, 4]
    assert donors[1][0] == 4 and donors[2][0] == 0
    few = imputation._nearest_donors(np.array([3.0, 1.0]), np.array([0.0, 2.9]), 2, ties)
    assert few.tolist() == [[1, 0], [0, 1]]
    # exact ties are broken at random: a block of equal fitted values gives varied donors
    block = np.zeros(50)
    picked = {tuple(sorted(imputation._nearest_donors(block, np.zeros(1), 5, np.random.default_rng(s))[0]))
              for s in range(20)}
    assert len(picked) > 10

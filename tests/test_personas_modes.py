"""personas/modes.py gives the kmodes package's k-modes labels, from the same seeds."""

from __future__ import annotations

import numpy as np
import pytest

from personas.modes import kmodes_fit

kmodes = pytest.importorskip("kmodes.kmodes")


def _data(seed: int, n: int, p: int, levels: int, classes: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    profiles = rng.dirichlet(np.ones(levels), size=(classes, p))
    member = rng.integers(0, classes, n)
    u = rng.uniform(size=(n, p, 1))
    return (u > profiles[member].cumsum(axis=2)).sum(axis=2) - (rng.uniform(size=(n, p)) < 0.05)  # -1 = missing


@pytest.mark.parametrize("seed,n,p,levels,k,n_init", [
    (1, 300, 8, 2, 3, 3), (2, 500, 14, 2, 5, 4), (3, 400, 6, 3, 4, 2), (4, 60, 5, 2, 6, 3), (5, 1000, 10, 2, 2, 2),
])
def test_same_labels_as_the_package(seed, n, p, levels, k, n_init):
    X = _data(seed, n, p, levels)
    ours = kmodes_fit(X, k, n_init=n_init, seed=seed).labels
    theirs = kmodes.KModes(n_clusters=k, init="Huang", n_init=n_init, random_state=seed).fit_predict(X)
    np.testing.assert_array_equal(ours, theirs)


def test_fewer_distinct_rows_than_clusters():
    X = np.array([[0, 1], [0, 1], [1, 0], [1, 0], [1, 1]])
    labels = kmodes_fit(X, 4, n_init=2, seed=1).labels
    assert len(set(labels.tolist())) == 3
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[4] not in (labels[0], labels[2])

"""k-modes (Huang 1998) as the ``kmodes`` package runs it, with array work instead of
Python loops over points.

The package's algorithm is Huang's online k-modes: points are visited in order and a point
that is nearer another centroid moves at once, updating both clusters' modes before the
next point is looked at; an emptied cluster takes a random point of the largest cluster.
Its cost is a Python step per point and iteration. Here the same visit order is kept but
found in blocks: the dissimilarities of the next block of points to the current centroids
are one array operation, and only the first point in it that moves is handled one by one
(the centroids cannot change before it). Every random draw is the package's, from the same
``RandomState`` streams, and ties are broken as it breaks them, so ``kmodes_fit(X, k,
n_init, seed)`` gives the package's ``KModes(n_clusters=k, init="Huang", n_init=n_init,
random_state=seed).fit_predict(X)`` labels (tests/test_personas_modes.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Points examined per array step while looking for the next point that moves.
BLOCK = 256
#: The package's default iteration cap.
MAX_ITER = 100


@dataclass
class ModesRun:
    centroids: np.ndarray  # k x p encoded modes
    labels: np.ndarray  # n, cluster of each point (its final assignment by the nearest mode)
    cost: float
    iterations: int


def _encode(X: np.ndarray) -> np.ndarray:
    """Each column's values as 0..L-1 in sorted order (the package's ``encode_features``)."""
    out = np.empty(X.shape, dtype=np.int64)
    for j in range(X.shape[1]):
        out[:, j] = np.unique(X[:, j], return_inverse=True)[1].ravel()
    return out


def _dissim(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Simple matching dissimilarity of every row of X to every centroid (n x k)."""
    return (X[:, None, :] != centroids[None, :, :]).sum(axis=2)


def _labels_cost(X: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, float]:
    distance = _dissim(X, centroids)
    labels = distance.argmin(axis=1)
    return labels, float(distance[np.arange(len(X)), labels].sum())


def _init_huang(X: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    n, p = X.shape
    centroids = np.empty((k, p), dtype=np.int64)
    for j in range(p):
        centroids[:, j] = rng.choice(np.sort(X[:, j]), k)
    for c in range(k):
        order = np.argsort((X != centroids[c]).sum(axis=1))  # the package's (unstable) sort, same ties
        taken = (X[order][:, None, :] == centroids[None, :, :]).all(axis=2).any(axis=1)
        free = np.flatnonzero(~taken)
        centroids[c] = X[order[free[0]] if free.size else order[-1]]
    return centroids


def _mode(counts: np.ndarray) -> int:
    """The most frequent value, the smallest of tied ones (``get_max_value_key``)."""
    return int(np.argmax(counts))


def _move(X, i, to, source, counts, labels, centroids, sizes) -> bool:
    """``_move_point_cat``: point i from cluster ``source`` to ``to``, modes updated (the
    attributes are independent, so all at once). True when a mode changed."""
    labels[i] = to
    sizes[to] += 1
    sizes[source] -= 1
    point = X[i]
    attrs = np.arange(len(point))
    counts[to, attrs, point] += 1
    gained = counts[to, attrs, centroids[to]] < counts[to, attrs, point]
    centroids[to, gained] = point[gained]
    counts[source, attrs, point] -= 1
    lost = np.flatnonzero(centroids[source] == point)
    before = centroids[source, lost].copy()
    centroids[source, lost] = counts[source, lost].argmax(axis=1)  # smallest of tied values
    return bool(gained.any()) or bool((centroids[source, lost] != before).any())


def _iterate(X, centroids, counts, labels, sizes, rng) -> int:
    """One pass over the points in order (``_k_modes_iter``); returns the number of moves.

    The nearest centroids of a block of points stay valid until a mode changes: the movers
    of a block are handled in order until one changes a mode, then the rest of the pass
    is looked at again from the next point.
    """
    n = len(X)
    moves = 0
    start = 0
    while start < n:
        stop = min(start + BLOCK, n)
        nearest = _dissim(X[start:stop], centroids).argmin(axis=1)
        movers = np.flatnonzero(nearest != labels[start:stop])
        next_start = stop
        for offset in movers.tolist():
            i = start + offset
            to = int(nearest[offset])
            if labels[i] == to:  # moved here already as an emptied cluster's refill
                continue
            source = int(labels[i])
            moves += 1
            changed = _move(X, i, to, source, counts, labels, centroids, sizes)
            if sizes[source] == 0:
                largest = int(np.argmax(sizes))
                donor = int(rng.choice(np.flatnonzero(labels == largest)))
                _move(X, donor, source, largest, counts, labels, centroids, sizes)
                changed = True
            if changed:
                next_start = i + 1
                break
        start = next_start
    return moves


def _single(X: np.ndarray, k: int, max_iter: int, seed: int, levels: int) -> ModesRun:
    rng = np.random.RandomState(seed)
    centroids = _init_huang(X, k, rng)
    n, p = X.shape
    labels = _dissim(X, centroids).argmin(axis=1)
    counts = np.zeros((k, p, levels), dtype=np.int64)
    for j in range(p):
        np.add.at(counts[:, j, :], (labels, X[:, j]), 1)
    sizes = np.bincount(labels, minlength=k)
    for c in range(k):
        for j in range(p):
            if sizes[c] == 0:
                centroids[c, j] = rng.choice(X[:, j])
            else:
                centroids[c, j] = _mode(counts[c, j])
    _, cost = _labels_cost(X, centroids)
    iterations = 0
    converged = False
    while iterations < max_iter and not converged:
        iterations += 1
        moves = _iterate(X, centroids, counts, labels, sizes, rng)
        _, new_cost = _labels_cost(X, centroids)
        converged = moves == 0 or new_cost >= cost
        cost = new_cost
    return ModesRun(centroids, _labels_cost(X, centroids)[0], cost, iterations)


def kmodes_fit(X: np.ndarray, k: int, n_init: int = 10, seed: int | None = None, max_iter: int = MAX_ITER) -> ModesRun:
    """Huang-initialised k-modes, best of ``n_init`` starts by cost; labels as ``fit_predict``."""
    X = _encode(np.asarray(X))
    if k > len(X):
        raise ValueError(f"cannot have more clusters ({k}) than rows ({len(X)})")
    unique = np.unique(X, axis=0)
    if len(unique) <= k:  # every distinct row its own cluster (the package's shortcut, any order)
        return ModesRun(unique, _labels_cost(X, unique)[0], 0.0, 0)
    seeds = np.random.RandomState(seed).randint(np.iinfo(np.int32).max, size=n_init)
    levels = int(X.max()) + 1
    runs = [_single(X, k, max_iter, int(s), levels) for s in seeds]
    return runs[int(np.argmin([r.cost for r in runs]))]

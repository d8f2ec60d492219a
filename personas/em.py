"""Batched EM for latent class models, step for step the EM of StepMix.

Why not call ``StepMix.fit`` for every start: StepMix re-encodes the indicators and
loops over features in Python on every iteration, about 35 ms per iteration for 20,000
pupils, too slow for 8 x 20 starts on two cores. This module runs the same algorithm
(StepMix 3.0's ``categorical_nan`` and ``continuous_nan`` models: random
responsibilities, uniform class weights, E-step, M-step, stop when the change of the
average log-likelihood is below ``abs_tol``) with the indicators encoded once and many
starts of one k stacked into single matrix products. From the same seed it follows
StepMix's trajectory to rounding (tests/test_personas_fitting.py checks this), so any
solution found here is reproduced by ``StepMix(random_state=seed, max_iter=iterations)``.
The one addition: a class-specific variance never falls below ``VARIANCE_FLOOR`` (StepMix
would return a degenerate infinite likelihood there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personas.encoding import IndicatorMatrix

#: Probabilities are clipped as StepMix does before taking logs.
PROBABILITY_CLIP = 1e-15
#: Smallest class-specific variance of a continuous indicator.
VARIANCE_FLOOR = 1e-10


@dataclass(frozen=True)
class EngineData:
    """Indicators pre-encoded for matrix EM: one-hot answers and observation masks."""

    one_hot: np.ndarray  # n x (p * L), 0 where missing, StepMix's column layout
    observed_items: np.ndarray  # n x p, 1 where the categorical answer is observed
    max_levels: int
    scores: np.ndarray  # n x q, 0 where missing
    scores_squared: np.ndarray
    observed_scores: np.ndarray  # n x q

    @property
    def n_rows(self) -> int:
        return self.one_hot.shape[0]


@dataclass
class Parameters:
    """Parameters of S stacked solutions with k classes each."""

    weights: np.ndarray  # S x k
    item_probabilities: np.ndarray  # S x k x (p * L)
    means: np.ndarray  # S x k x q
    variances: np.ndarray  # S x k x q

    def select(self, index: np.ndarray) -> Parameters:
        return Parameters(self.weights[index], self.item_probabilities[index], self.means[index], self.variances[index])

    def assign(self, index: np.ndarray, other: Parameters) -> None:
        self.weights[index] = other.weights
        self.item_probabilities[index] = other.item_probabilities
        self.means[index] = other.means
        self.variances[index] = other.variances


@dataclass
class EmState:
    """Where each of S starts stands: parameters, last log-likelihood, iterations done."""

    parameters: Parameters
    seeds: np.ndarray
    previous_average_ll: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray


def prepare(indicators: IndicatorMatrix) -> EngineData:
    """Encode once what every EM iteration reads."""
    codes = indicators.categorical
    n, p = codes.shape
    levels = max(indicators.max_levels, 1)
    one_hot = np.zeros((n, p * levels))
    observed = ~np.isnan(codes)
    rows = np.arange(n)
    for j in range(p):
        present = observed[:, j]
        one_hot[rows[present], j * levels + codes[present, j].astype(int)] = 1.0
    scores = indicators.continuous
    observed_scores = ~np.isnan(scores)
    filled = np.where(observed_scores, scores, 0.0)
    return EngineData(one_hot, observed.astype(float), levels, filled, filled**2, observed_scores.astype(float))


def _stack(matrix: np.ndarray) -> np.ndarray:
    """S x k x D parameters as a D x (k * S) matrix for one product with the data.

    Classes outside starts, so that sums over classes run over contiguous blocks of S
    (numpy reduces a short last axis slowly).
    """
    s, k, d = matrix.shape
    return matrix.transpose(2, 1, 0).reshape(d, k * s)


def log_joint(data: EngineData, parameters: Parameters) -> np.ndarray:
    """log P(x_i, class c) for each start: n x k x S."""
    s, k = parameters.weights.shape
    log_probabilities = np.log(np.clip(parameters.item_probabilities, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP))
    joint = data.one_hot @ _stack(log_probabilities)
    if data.scores.shape[1]:
        precision = 1.0 / parameters.variances
        quadratic = (
            data.scores_squared @ _stack(precision)
            - 2.0 * data.scores @ _stack(parameters.means * precision)
            + data.observed_scores @ _stack(parameters.means**2 * precision + np.log(2 * np.pi * parameters.variances))
        )
        joint -= 0.5 * quadratic
    joint = joint.reshape(data.n_rows, k, s)
    joint += np.log(parameters.weights).T[np.newaxis]
    return joint


def e_step(data: EngineData, parameters: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihoods (n x S) and posterior class probabilities (n x k x S)."""
    joint = log_joint(data, parameters)
    peak = joint.max(axis=1, keepdims=True)
    np.subtract(joint, peak, out=joint)
    np.exp(joint, out=joint)
    total = joint.sum(axis=1, keepdims=True)
    joint /= total
    row_ll = np.log(total[:, 0]) + peak[:, 0]
    return row_ll, joint


def m_step(data: EngineData, posterior: np.ndarray, weights: np.ndarray | None = None) -> Parameters:
    """Maximum-likelihood parameters given posteriors; ``weights`` overrides the class shares.

    Item probabilities divide by the posterior mass of the pupils who answered the
    item, which is what makes missing answers full-information rather than dropped.
    """
    n, k, s = posterior.shape
    flat = posterior.reshape(n, k * s)
    if weights is None:
        weights = np.clip(posterior.mean(axis=0).T, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    counts = data.one_hot.T @ flat
    answered = np.repeat(data.observed_items.T @ flat, data.max_levels, axis=0)
    probabilities = counts / np.maximum(answered, np.finfo(float).tiny)
    probabilities = probabilities.reshape(-1, k, s).transpose(2, 1, 0)
    q = data.scores.shape[1]
    if q:
        mass = np.maximum(data.observed_scores.T @ flat, np.finfo(float).tiny)
        means = (data.scores.T @ flat) / mass
        variances = np.maximum((data.scores_squared.T @ flat) / mass - means**2, VARIANCE_FLOOR)
        means = means.reshape(q, k, s).transpose(2, 1, 0)
        variances = variances.reshape(q, k, s).transpose(2, 1, 0)
    else:
        means = variances = np.zeros((s, k, 0))
    return Parameters(weights, probabilities, means, variances)


def initialise(data: EngineData, n_classes: int, seeds: np.ndarray) -> EmState:
    """StepMix's ``init_params='random'``: uniform random responsibilities, equal weights."""
    n = data.n_rows
    posterior = np.empty((n, n_classes, len(seeds)))
    for i, seed in enumerate(seeds):
        draw = np.random.RandomState(int(seed)).uniform(size=(n, n_classes))
        draw /= draw.sum(axis=1, keepdims=True)
        posterior[:, :, i] = np.exp(np.log(np.clip(draw, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)))
    equal = np.full((len(seeds), n_classes), 1.0 / n_classes)
    parameters = m_step(data, posterior, weights=equal)
    s = len(seeds)
    return EmState(parameters, np.asarray(seeds), np.full(s, -np.inf), np.zeros(s, int), np.zeros(s, bool))


def run(data: EngineData, state: EmState, max_iter: int, abs_tol: float) -> EmState:
    """Up to ``max_iter`` more EM iterations for every start not yet converged.

    A start stops, as in StepMix, when its average log-likelihood changed by less than
    ``abs_tol``; the parameters of that last M-step are kept. Calling ``run`` twice
    continues exactly where the first call stopped.
    """
    for _ in range(max_iter):
        active = np.flatnonzero(~state.converged)
        if active.size == 0:
            break
        row_ll, posterior = e_step(data, state.parameters.select(active))
        state.parameters.assign(active, m_step(data, posterior))
        average_ll = row_ll.mean(axis=0)
        state.iterations[active] += 1
        state.converged[active] = np.abs(average_ll - state.previous_average_ll[active]) < abs_tol
        state.previous_average_ll[active] = average_ll
    return state


def log_likelihood(data: EngineData, parameters: Parameters) -> np.ndarray:
    """Total log-likelihood of each stacked solution (S,)."""
    row_ll, _ = e_step(data, parameters)
    return row_ll.sum(axis=0)

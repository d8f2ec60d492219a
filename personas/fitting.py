"""Fit latent class models for k = 1..K with many random starts, as mature LCA tools do.

Multiple starts guard against local maxima of the likelihood, which are common in
latent class models (poLCA's gss82 example has four). The strategy is Mplus's
``STARTS = n_init n_final`` and Latent GOLD's: every start runs a short EM
(``short_iter`` iterations), the ``n_final`` best continue to convergence, and a
solution counts as found only if its best log-likelihood was reached (to 0.01) by at
least two of those final runs. Starts are spread over processes with joblib. Seeds come
from one ``seed``, so a rerun gives the same numbers bit for bit, and every start's
log-likelihood is kept for the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from analyses.threads import one_blas_thread
from analyses.tidy import tidy_frame
from personas import em
from personas.encoding import IndicatorMatrix
from personas.progress import report

#: Two final runs whose log-likelihoods differ by less than this reached the same maximum.
REPLICATION_TOLERANCE = 0.01
#: Upper bound on n x k x starts held in one batch (memory, cache).
BATCH_CELLS = 4_000_000
#: Final EM runs report how they go every this many iterations (personas/progress.py).
PROGRESS_EVERY = 100
#: Early stop of a final run (``_final_runs``): its block gains must shrink by ratios this
#: close (relative) over three blocks, and the extrapolation must pass HOPELESS x max_iter.
STEADY = 0.05
HOPELESS = 3
FIT_METHOD = "latent class EM (StepMix categorical_nan/continuous_nan, full-information ML)"


@dataclass(frozen=True)
class LcaSolution:
    """The best solution found for one k, classes ordered from largest to smallest."""

    n_classes: int
    weights: np.ndarray  # k
    item_probabilities: np.ndarray  # k x (p * L), StepMix's layout
    means: np.ndarray  # k x q
    variances: np.ndarray  # k x q
    loglik: float
    n_parameters: int
    seed: int
    iterations: int
    converged: bool
    n_at_best: int
    n_final: int

    @property
    def replicated(self) -> bool:
        return self.n_at_best >= 2 or self.n_classes == 1

    def parameters(self) -> em.Parameters:
        """As a stack of one, for the EM engine."""
        return em.Parameters(
            self.weights[np.newaxis], self.item_probabilities[np.newaxis], self.means[np.newaxis], self.variances[np.newaxis]
        )


@dataclass(frozen=True)
class LcaFit:
    """All k fitted to one set of indicators, with the log of every start."""

    indicators: IndicatorMatrix
    solutions: dict[int, LcaSolution]
    starts: pd.DataFrame
    settings: dict = field(default_factory=dict)


def count_parameters(indicators: IndicatorMatrix, n_classes: int) -> int:
    """Free parameters: k - 1 class shares, k * sum(levels - 1) item probabilities, 2kq for scales."""
    per_class = sum(n - 1 for n in indicators.n_levels) + 2 * indicators.continuous.shape[1]
    return n_classes - 1 + n_classes * per_class


def start_seeds(seed: int, k_max: int, n_init: int) -> np.ndarray:
    """One integer seed per (k, start); row k - 1 does not depend on which k are fitted."""
    return np.random.default_rng(seed).integers(0, 2**31 - 1, size=(k_max, n_init))


@one_blas_thread
def _short_runs(data: em.EngineData, n_classes: int, seeds: np.ndarray, short_iter: int, abs_tol: float) -> em.EmState:
    state = em.initialise(data, n_classes, seeds)
    return em.run(data, state, short_iter, abs_tol)


@one_blas_thread
def _final_runs(data: em.EngineData, state: em.EmState, max_iter: int, abs_tol: float,
                early_stop: bool = True) -> tuple[em.EmState, np.ndarray]:
    """Final EM runs to convergence or ``max_iter``, in steps of ``PROGRESS_EVERY`` iterations.

    ``early_stop``: a run whose gains shrink geometrically so slowly that, extrapolated, its
    per-iteration change would still exceed the tolerance at twice the iteration cap is
    stopped (it stays not converged, as it would have at the cap; its log-likelihood
    falls short of the cap's by at most the extrapolated remaining gain). A run whose
    gains grow (leaving a plateau) is never stopped.
    """
    k = state.parameters.weights.shape[1]
    left = max_iter - int(state.iterations.min())
    stopped = np.zeros(len(state.converged), dtype=bool)
    gains_before = np.full(len(state.converged), np.nan)
    gains_earlier = np.full(len(state.converged), np.nan)
    while left > 0:
        active = np.flatnonzero(~state.converged & ~stopped)
        if active.size == 0:
            break
        step = min(PROGRESS_EVERY, left)
        before = state.previous_average_ll[active].copy()
        part = em.run(data, _subset(state, active), step, abs_tol)
        state.parameters.assign(active, part.parameters)
        state.previous_average_ll[active] = part.previous_average_ll
        state.iterations[active] = part.iterations
        state.converged[active] = part.converged
        left -= step
        gains = part.previous_average_ll - before
        if early_stop and left > 0:
            hopeless = _cannot_converge(gains, gains_before[active], gains_earlier[active], step, abs_tol,
                                        part.iterations, max_iter)
            hopeless &= ~part.converged
            stopped[active[hopeless]] = True
            if hopeless.any():
                report(f"latent classes k={k}: {int(hopeless.sum())} final run(s) stopped at "
                       f"{int(part.iterations.max())} iterations: too slow to converge within {max_iter}")
        gains_earlier[active] = gains_before[active]
        gains_before[active] = gains
        if left > 0 and (~state.converged & ~stopped).any():
            report(f"latent classes k={k}: {int(state.iterations.max())} EM iterations, "
                   f"{int((~state.converged & ~stopped).sum())} of {len(state.converged)} final runs still improving")
    return state, em.log_likelihood(data, state.parameters)


def _cannot_converge(gains: np.ndarray, gains_before: np.ndarray, gains_earlier: np.ndarray, step: int,
                     abs_tol: float, iterations: np.ndarray, max_iter: int) -> np.ndarray:
    """Runs whose last three blocks of ``step`` iterations gained ``gains_earlier``,
    ``gains_before``, ``gains`` (average log-likelihood), shrinking steadily (the two block
    ratios within ``STEADY`` of each other: a geometric creep, not a plateau being left),
    and which, extrapolated, would still change by more than ``abs_tol`` per iteration at
    ``HOPELESS`` x ``max_iter`` iterations."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = gains / gains_before  # r ** step for a per-iteration ratio r
        earlier = gains_before / gains_earlier
        steady = np.isfinite(ratio) & np.isfinite(earlier) & (np.abs(ratio - earlier) <= STEADY * earlier)
        shrinking = steady & (ratio > 0) & (ratio < 1) & (gains > 0)
        r = np.where(shrinking, ratio, 0.5) ** (1.0 / step)
        last = gains * (1 - r) / (1 - r**step) * r ** (step - 1)  # the block's last per-iteration gain
        needed = np.log(abs_tol / np.maximum(last, 1e-300)) / np.log(r)
    return shrinking & (last > abs_tol) & (iterations + needed > HOPELESS * max_iter)


def _merge(states: list[em.EmState]) -> em.EmState:
    return em.EmState(
        em.Parameters(
            np.concatenate([s.parameters.weights for s in states]),
            np.concatenate([s.parameters.item_probabilities for s in states]),
            np.concatenate([s.parameters.means for s in states]),
            np.concatenate([s.parameters.variances for s in states]),
        ),
        np.concatenate([s.seeds for s in states]),
        np.concatenate([s.previous_average_ll for s in states]),
        np.concatenate([s.iterations for s in states]),
        np.concatenate([s.converged for s in states]),
    )


def _subset(state: em.EmState, index: np.ndarray) -> em.EmState:
    return em.EmState(
        state.parameters.select(index),
        state.seeds[index],
        state.previous_average_ll[index].copy(),
        state.iterations[index].copy(),
        state.converged[index].copy(),
    )


def _solution(indicators: IndicatorMatrix, n_classes: int, state: em.EmState, logliks: np.ndarray) -> LcaSolution:
    best = int(np.argmax(logliks))
    order = np.argsort(-state.parameters.weights[best], kind="stable")
    p = state.parameters
    return LcaSolution(
        n_classes=n_classes,
        weights=p.weights[best][order],
        item_probabilities=p.item_probabilities[best][order],
        means=p.means[best][order],
        variances=p.variances[best][order],
        loglik=float(logliks[best]),
        n_parameters=count_parameters(indicators, n_classes),
        seed=int(state.seeds[best]),
        iterations=int(state.iterations[best]),
        converged=bool(state.converged[best]),
        n_at_best=int(np.sum(logliks >= logliks[best] - REPLICATION_TOLERANCE)),
        n_final=len(logliks),
    )


@one_blas_thread
def fit_latent_classes(
    indicators: IndicatorMatrix,
    k_max: int = 8,
    k_min: int = 1,
    n_init: int = 20,
    seed: int = 20240501,
    short_iter: int = 50,
    n_final: int = 4,
    tolerance: float = 1e-6,
    max_iter: int = 1000,
    n_jobs: int = -1,
    early_stop: bool = True,
) -> LcaFit:
    """Fit k = k_min..k_max latent classes; return the best solution per k and a start log.

    ``tolerance`` is the change of the total log-likelihood between EM iterations below
    which a run has converged (StepMix's ``abs_tol`` is this divided by n). ``max_iter``
    caps the iterations of a run (Mplus caps EM at 500): a k beyond the data's structure
    can creep for thousands of iterations on a flat likelihood, and is then reported as
    not converged, which the selection rule excludes; ``early_stop`` ends such runs once
    their shrinking gains say they cannot converge within the cap (``_final_runs``). The start log
    (``LcaFit.starts``) is tidy: one row per start and stage (``short``: the
    log-likelihood after ``short_iter`` iterations; ``final``: at convergence), with
    ``reached_best`` marking the final runs that replicate the best log-likelihood.
    """
    if not 1 <= k_min <= k_max:
        raise ValueError("need 1 <= k_min <= k_max")
    if n_final > n_init:
        raise ValueError("n_final cannot exceed n_init")
    data = em.prepare(indicators)
    n = data.n_rows
    abs_tol = tolerance / n
    seeds = start_seeds(seed, k_max, n_init)
    ks = list(range(k_max, k_min - 1, -1))  # largest first: the slowest tasks start first
    tasks = []
    for k in ks:
        batch = max(1, min(n_init, BATCH_CELLS // (n * k)))
        tasks += [(k, seeds[k - 1, i : i + batch]) for i in range(0, n_init, batch)]
    parallel = Parallel(n_jobs=n_jobs)
    short_states = parallel(delayed(_short_runs)(data, k, s, short_iter, abs_tol) for k, s in tasks)
    by_k = {k: _merge([st for (kk, _), st in zip(tasks, short_states) if kk == k]) for k in ks}
    chosen = {k: np.argsort(-by_k[k].previous_average_ll, kind="stable")[:n_final] for k in ks}
    report(f"latent classes: {n_init} short runs of {short_iter} iterations done for k = {k_min}..{k_max}")
    finals = []
    for k, final in zip(ks, Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_final_runs)(data, _subset(by_k[k], chosen[k]), max_iter, abs_tol, early_stop) for k in ks)):
        finals.append(final)
        state = final[0]
        report(f"latent classes k={k}: {len(state.converged)} final runs, {int(state.converged.sum())} converged, "
               f"at most {int(state.iterations.max())} iterations")

    solutions: dict[int, LcaSolution] = {}
    rows = []
    for k, (state, logliks) in zip(ks, finals):
        solution = _solution(indicators, k, state, logliks)
        solutions[k] = solution
        short = by_k[k]
        for i in range(n_init):
            rows.append(_start_row(k, i, short.seeds[i], "short", short.previous_average_ll[i] * n,
                                   short.iterations[i], short.converged[i], None, n))
        for j, i in enumerate(chosen[k]):
            reached = bool(logliks[j] >= solution.loglik - REPLICATION_TOLERANCE)
            rows.append(_start_row(k, int(i), state.seeds[j], "final", logliks[j],
                                   state.iterations[j], state.converged[j], reached, n))
    starts = tidy_frame(rows, ["analysis", "n_classes", "start", "stage"], ["seed", "iterations", "converged", "reached_best"])
    starts = starts.sort_values(["n_classes", "stage", "start"], ignore_index=True)
    settings = dict(k_min=k_min, k_max=k_max, n_init=n_init, seed=seed, short_iter=short_iter,
                    n_final=n_final, tolerance=tolerance, max_iter=max_iter, early_stop=early_stop)
    return LcaFit(indicators, dict(sorted(solutions.items())), starts, settings)


def _start_row(k, start, seed, stage, loglik, iterations, converged, reached, n) -> dict:
    return {
        "analysis": "lca_starts",
        "n_classes": k,
        "start": start + 1,
        "stage": stage,
        "estimate": float(loglik),
        "n": n,
        "seed": int(seed),
        "iterations": int(iterations),
        "converged": bool(converged),
        "reached_best": reached,
        "method": FIT_METHOD + ", random starts (StepMix init_params='random')",
        "ci_method": pd.NA,
        "correction": pd.NA,
    }


@one_blas_thread
def posterior(solution: LcaSolution, indicators: IndicatorMatrix) -> np.ndarray:
    """P(class | answers) for every row of ``indicators`` (n x k), by the fitted parameters."""
    _, probabilities = em.e_step(em.prepare(indicators), solution.parameters())
    return probabilities[:, :, 0]

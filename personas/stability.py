"""Are the classes real? Bootstrap stability and agreement with a second method.

Stability follows Hennig (2007, Computational Statistics & Data Analysis 52; R's
``fpc::clusterboot``): refit the model on bootstrap resamples and compare, on the pupils
drawn, the original classes with the refitted model's classes by the Jaccard
coefficient; a class whose mean Jaccard is at least 0.75 is called stable. Classes are
matched one to one by the Hungarian algorithm on the Jaccard matrix (the label of a
latent class is arbitrary between fits). Agreement with k-modes (Huang 1998, the
``kmodes`` package), a method with different assumptions, is the adjusted Rand index
(Hubert & Arabie 1985).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from kmodes.kprototypes import KPrototypes
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from analyses.threads import one_blas_thread
from personas import em
from personas.encoding import IndicatorMatrix
from personas.fitting import LcaSolution, fit_latent_classes, posterior
from personas.modes import kmodes_fit
from personas.progress import report
from personas.quality import quality_frame

STABLE_JACCARD = 0.75
#: Warm-started bootstrap refits: convergence tolerance (change of the total log-likelihood)
#: and iteration cap, as fit_latent_classes' defaults.
WARM_TOLERANCE = 1e-6
WARM_MAX_ITER = 1000
#: A progress line every this many bootstrap replicates.
PROGRESS_EVERY = 5


def jaccard_matrix(labels_a: np.ndarray, labels_b: np.ndarray, k: int) -> np.ndarray:
    """J[c, d] = |A_c & B_d| / |A_c | B_d| for labels 0..k-1 of the same units."""
    a = np.eye(k, dtype=bool)[labels_a]
    b = np.eye(k, dtype=bool)[labels_b]
    both = a.T.astype(float) @ b
    union = a.sum(axis=0)[:, None] + b.sum(axis=0)[None, :] - both
    with np.errstate(invalid="ignore"):
        return np.where(union > 0, both / np.where(union > 0, union, 1), 0.0)


def matched_jaccard(labels_a: np.ndarray, labels_b: np.ndarray, k: int) -> np.ndarray:
    """Jaccard of each class of ``labels_a`` with its Hungarian-matched class of ``labels_b``."""
    jaccard = jaccard_matrix(labels_a, labels_b, k)
    rows, cols = linear_sum_assignment(jaccard, maximize=True)
    matched = np.empty(k)
    matched[rows] = jaccard[rows, cols]
    return matched


@one_blas_thread
def _one_bootstrap(indicators: IndicatorMatrix, modal: np.ndarray, k: int, seed: int, n_init: int,
                   n_final: int, warm: LcaSolution | None = None, tolerance: float = WARM_TOLERANCE,
                   max_iter: int = WARM_MAX_ITER) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, indicators.n_rows, indicators.n_rows)
    drawn = np.unique(rows)
    if warm is not None:
        data = em.prepare(indicators.take(rows))
        parameters = warm.parameters()
        start = em.EmState(em.Parameters(*(a.copy() for a in (parameters.weights, parameters.item_probabilities,
                                                              parameters.means, parameters.variances))),
                           np.array([warm.seed]), np.full(1, -np.inf), np.zeros(1, int), np.zeros(1, bool))
        refit = em.run(data, start, max_iter, tolerance / indicators.n_rows).parameters
        _, probabilities = em.e_step(em.prepare(indicators.take(drawn)), refit)
        refitted = probabilities[:, :, 0].argmax(axis=1)
        return matched_jaccard(modal[drawn], refitted, k)
    refit = fit_latent_classes(indicators.take(rows), k_min=k, k_max=k, n_init=n_init, n_final=n_final,
                               seed=int(rng.integers(2**31 - 1)), n_jobs=1)
    refitted = posterior(refit.solutions[k], indicators.take(drawn)).argmax(axis=1)
    return matched_jaccard(modal[drawn], refitted, k)


@one_blas_thread
def bootstrap_stability(
    solution: LcaSolution,
    indicators: IndicatorMatrix,
    n_boot: int = 50,
    seed: int = 1,
    n_init: int = 10,
    n_final: int = 2,
    n_jobs: int = -1,
    warm_start: bool = True,
) -> pd.DataFrame:
    """Per-class bootstrap Jaccard (mean, 2.5 and 97.5 percentiles) as tidy quality rows.

    ``warm_start`` (default): each resample's EM starts from the full-data solution and
    runs to convergence, one run instead of ``n_init`` random starts; the resamples are
    the same either way (the same seeds). ``warm_start=False`` refits from random starts.
    """
    k = solution.n_classes
    modal = posterior(solution, indicators).argmax(axis=1)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, n_boot)
    warm = solution if warm_start else None
    draws = []
    for b, draw in enumerate(Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_one_bootstrap)(indicators, modal, k, int(s), n_init, n_final, warm) for s in seeds), start=1):
        draws.append(draw)
        if b % PROGRESS_EVERY == 0 or b == n_boot:
            report(f"bootstrap stability k={k}: {b} of {n_boot} resamples refitted")
    draws = np.array(draws)
    refit = ("EM from the full-data solution (warm start)" if warm_start
             else f"{n_init} random starts, {n_final} final")
    rows = []
    for c in range(k):
        mean = float(draws[:, c].mean())
        rows.append({
            "analysis": "lca_stability", "n_classes": k, "class": c + 1, "term": "bootstrap_jaccard",
            "estimate": mean, "conf_low": float(np.percentile(draws[:, c], 2.5)),
            "conf_high": float(np.percentile(draws[:, c], 97.5)), "n": n_boot,
            "threshold": STABLE_JACCARD, "meets_threshold": mean >= STABLE_JACCARD,
            "method": f"nonparametric bootstrap refit ({refit}), Jaccard on the pupils "
                      "drawn, classes matched by the Hungarian algorithm (Hennig 2007)",
            "ci_method": "percentile interval over bootstrap replicates", "correction": pd.NA,
        })
    return quality_frame(rows)


def kmodes_labels(indicators: IndicatorMatrix, k: int, seed: int = 1, n_init: int = 10) -> np.ndarray:
    """k-modes (Huang init) on the categorical indicators, a missing answer as its own category;
    k-prototypes when scale scores are present (missing scores set to the column mean)."""
    codes = np.where(np.isnan(indicators.categorical), -1, indicators.categorical).astype(int)
    if indicators.continuous.shape[1] == 0:
        # personas/modes.py: the kmodes package's KModes(init="Huang").fit_predict, same labels, array steps
        return kmodes_fit(codes, k, n_init=n_init, seed=seed).labels
    scores = indicators.continuous
    scores = np.where(np.isnan(scores), np.nanmean(scores, axis=0), scores)
    mixed = np.hstack([scores, codes]).astype(object)
    categorical = list(range(scores.shape[1], mixed.shape[1]))
    model = KPrototypes(n_clusters=k, init="Huang", n_init=n_init, random_state=seed)
    return model.fit_predict(mixed, categorical=categorical)


@one_blas_thread
def kmodes_agreement(solution: LcaSolution, indicators: IndicatorMatrix, seed: int = 1, n_init: int = 10) -> pd.DataFrame:
    """Adjusted Rand index between the modal latent classes and k-modes with the same k."""
    k = solution.n_classes
    modal = posterior(solution, indicators).argmax(axis=1)
    second = kmodes_labels(indicators, k, seed=seed, n_init=n_init)
    method = "k-prototypes" if indicators.continuous.shape[1] else "k-modes"
    row = {"analysis": "lca_agreement", "n_classes": k, "class": pd.NA, "term": "adjusted_rand_index",
           "estimate": adjusted_rand_score(modal, second), "n": indicators.n_rows,
           "method": f"adjusted Rand index (Hubert & Arabie 1985), modal latent classes vs {method} "
                     f"(Huang init, {n_init} starts, seed {seed})",
           "ci_method": pd.NA, "correction": pd.NA}
    return quality_frame([row])

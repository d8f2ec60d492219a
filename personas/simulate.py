"""Draw indicator data from a fitted latent class solution (parametric bootstrap).

Used by the bootstrap likelihood-ratio test: data generated under the k - 1 class model
show how large the k vs k - 1 likelihood ratio gets by chance. The missing-answer pattern
of the observed pupils is kept, row by row, so the bootstrap samples carry the same
amount of information as the data.
"""

from __future__ import annotations

import numpy as np

from personas.encoding import IndicatorMatrix
from personas.fitting import LcaSolution


def draw_indicators(solution: LcaSolution, template: IndicatorMatrix, rng: np.random.Generator) -> IndicatorMatrix:
    """A sample of ``template``'s size and missingness from ``solution``."""
    n = template.n_rows
    classes = rng.choice(solution.n_classes, size=n, p=solution.weights / solution.weights.sum())
    levels = max(template.max_levels, 1)
    p = template.categorical.shape[1]
    codes = np.empty((n, p))
    for j in range(p):
        block = solution.item_probabilities[:, j * levels : (j + 1) * levels][:, : template.n_levels[j]]
        cumulative = np.cumsum(block / block.sum(axis=1, keepdims=True), axis=1)[classes]
        codes[:, j] = (rng.uniform(size=(n, 1)) > cumulative).sum(axis=1)
        codes[:, j] = np.minimum(codes[:, j], template.n_levels[j] - 1)
    codes[np.isnan(template.categorical)] = np.nan
    scores = rng.normal(solution.means[classes], np.sqrt(solution.variances[classes]))
    scores[np.isnan(template.continuous)] = np.nan
    return IndicatorMatrix(codes, scores, template.categorical_names, template.continuous_names, template.levels)

"""A fitted solution as a StepMix estimator, and assignment of new pupils without refitting.

The estimator is made through StepMix's public API only: ``fit`` with one iteration
(which sets up StepMix's input checks and emission models), then ``set_parameters``
with the solution's parameters, so ``predict_proba`` and the three-step corrections are
StepMix's own code. New pupils (a pilot cohort, a new wave) get the posterior class
probabilities of the fitted model; the model is never re-estimated on them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from stepmix.stepmix import StepMix

from analyses.tidy import tidy_frame
from personas.encoding import IndicatorMatrix
from personas.fitting import LcaSolution


def stepmix_parameters(solution: LcaSolution, indicators: IndicatorMatrix) -> dict:
    """The solution in the dict format of ``StepMix.get_parameters``."""
    p, q = indicators.categorical.shape[1], indicators.continuous.shape[1]
    categorical = {
        "pis": solution.item_probabilities.copy(),
        "max_n_outcomes": indicators.max_levels,
        "total_outcomes": int(sum(indicators.n_levels)),
    }
    continuous = {"means": solution.means.copy(), "covariances": solution.variances.copy()}
    if q == 0:
        measurement = categorical
    elif p == 0:
        measurement = continuous
    else:
        measurement = {"categorical": categorical, "continuous": continuous}
    return {"weights": solution.weights.copy(), "measurement": measurement, "measurement_in": p + q}


def _template(indicators: IndicatorMatrix, n_classes: int) -> np.ndarray:
    """A small data-free matrix that shows StepMix every level (codes cycle, scores count up)."""
    rows = 2 * max(n_classes, indicators.max_levels, 2)
    codes = np.array([[r % n for n in indicators.n_levels] for r in range(rows)], dtype=float)
    scores = np.tile(np.arange(rows, dtype=float)[:, None], (1, indicators.continuous.shape[1]))
    return np.hstack([codes.reshape(rows, -1), scores])


def stepmix_model(
    solution: LcaSolution,
    indicators: IndicatorMatrix,
    structural: str | None = None,
    fit_rows: bool = False,
) -> StepMix:
    """A StepMix estimator holding ``solution``.

    With ``fit_rows`` the one set-up iteration runs on ``indicators`` themselves, which
    StepMix's three-step structural step needs (it initialises from per-row
    responsibilities);
    otherwise on a data-free template, so that assigning even one pupil works.
    """
    model = StepMix(
        n_components=solution.n_classes,
        measurement=indicators.stepmix_descriptor(),
        structural=structural or "categorical_nan",
        n_steps=3,
        max_iter=1,
        n_init=1,
        progress_bar=0,
        random_state=solution.seed,
    )
    data = indicators.stepmix_input() if fit_rows else _template(indicators, solution.n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(data)
    model.set_parameters(stepmix_parameters(solution, indicators))
    return model


def assign_classes(solution: LcaSolution, indicators: IndicatorMatrix, pupil_ids: pd.Series | np.ndarray) -> pd.DataFrame:
    """Tidy ``results.persona_assignments``: one row per pupil and class.

    ``estimate`` is the posterior probability of the class (StepMix ``predict_proba``);
    ``assigned`` marks each pupil's most probable (modal) class. Classes are numbered 1..k
    from the largest estimated class.
    """
    ids = np.asarray(pupil_ids)
    if len(ids) != indicators.n_rows:
        raise ValueError("pupil_ids and indicators differ in length")
    probabilities = stepmix_model(solution, indicators).predict_proba(indicators.stepmix_input())
    modal = probabilities.argmax(axis=1)
    k = solution.n_classes
    rows = [
        {
            "analysis": "lca_assignment",
            "pupil_id": ids[i],
            "class": c + 1,
            "estimate": float(probabilities[i, c]),
            "n": 1,
            "assigned": bool(modal[i] == c),
            "method": "posterior class probability under the fitted latent class model (StepMix predict_proba)",
            "ci_method": pd.NA,
            "correction": pd.NA,
        }
        for i in range(len(ids))
        for c in range(k)
    ]
    return tidy_frame(rows, ["analysis", "pupil_id", "class"], ["assigned"])

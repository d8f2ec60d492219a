"""The batched EM follows StepMix; fits are reproducible; the start log is complete."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from stepmix.stepmix import StepMix

from personas import em
from personas.assignment import stepmix_model
from personas.encoding import encode_indicators
from personas.fitting import count_parameters, fit_latent_classes, posterior


def mixed_pupils(n: int = 400, seed: int = 3) -> pd.DataFrame:
    """Two planted classes: three answers coded 1..3, two yes/no, one scale score; 8 % missing."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "absences": np.where(classes == 1, rng.choice([1, 2, 3], n, p=[0.2, 0.3, 0.5]), rng.choice([1, 2, 3], n, p=[0.7, 0.2, 0.1])),
        "grades": np.where(classes == 1, rng.choice([1, 2, 3], n, p=[0.3, 0.3, 0.4]), rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1])),
        "motivation": np.where(classes == 1, rng.choice([1, 2, 3], n, p=[0.5, 0.3, 0.2]), rng.choice([1, 2, 3], n, p=[0.1, 0.3, 0.6])),
        "bullied": (rng.uniform(size=n) < np.where(classes == 1, 0.4, 0.1)).astype(int),
        "hobby": (rng.uniform(size=n) < np.where(classes == 1, 0.3, 0.7)).astype(int),
        "sdl_score": rng.normal(np.where(classes == 1, 2.5, 3.5), 0.6),
    }).astype(float)
    frame = frame.mask(rng.uniform(size=frame.shape) < 0.08)
    return frame


CATEGORICAL = ["absences", "grades", "motivation", "bullied", "hobby"]


@pytest.fixture(scope="module")
def mixed():
    return encode_indicators(mixed_pupils(), categorical=CATEGORICAL, continuous=["sdl_score"])


@pytest.mark.parametrize("with_scale", [False, True])
def test_engine_follows_stepmix_from_the_same_seed(mixed, with_scale):
    data = mixed if with_scale else encode_indicators(mixed_pupils(), categorical=CATEGORICAL)
    state = em.run(em.prepare(data), em.initialise(em.prepare(data), 3, np.array([42])), 40, 0.0)
    ours = em.log_likelihood(em.prepare(data), state.parameters)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = StepMix(n_components=3, measurement=data.stepmix_descriptor(), max_iter=40, abs_tol=0.0,
                        progress_bar=0, random_state=42).fit(data.stepmix_input())
    assert ours == pytest.approx(model.score(data.stepmix_input()) * data.n_rows, abs=1e-8)


def test_stepmix_model_holds_the_solution(mixed):
    fit = fit_latent_classes(mixed, k_min=2, k_max=2, n_init=6, n_final=3, n_jobs=1)
    solution = fit.solutions[2]
    model = stepmix_model(solution, mixed)
    x = mixed.stepmix_input()
    assert model.score(x) * mixed.n_rows == pytest.approx(solution.loglik, abs=1e-8)
    assert model.n_parameters == solution.n_parameters == count_parameters(mixed, 2)
    np.testing.assert_allclose(model.predict_proba(x), posterior(solution, mixed), atol=1e-12)


def test_full_information_uses_incomplete_pupils(mixed):
    """Nobody is dropped: every pupil, complete or not, has a posterior and counts in n."""
    fit = fit_latent_classes(mixed, k_min=2, k_max=2, n_init=6, n_final=3, n_jobs=1)
    assert np.isnan(mixed.categorical).any(axis=1).sum() > 100
    probabilities = posterior(fit.solutions[2], mixed)
    assert probabilities.shape == (400, 2) and np.isfinite(probabilities).all()
    # the planted classes are about equal and the scale separates them by 1.67 SD
    assert sorted(np.round(fit.solutions[2].means[:, 0], 1)) == pytest.approx([2.5, 3.5], abs=0.15)


def test_same_seed_same_numbers_and_parallel_equals_serial(mixed):
    serial = fit_latent_classes(mixed, k_max=3, n_init=6, n_final=3, n_jobs=1, seed=5, max_iter=200)
    parallel = fit_latent_classes(mixed, k_max=3, n_init=6, n_final=3, n_jobs=2, seed=5, max_iter=200)
    pd.testing.assert_frame_equal(serial.starts, parallel.starts)
    for k in (1, 2, 3):
        np.testing.assert_array_equal(serial.solutions[k].item_probabilities, parallel.solutions[k].item_probabilities)
    other = fit_latent_classes(mixed, k_max=3, n_init=6, n_final=3, n_jobs=1, seed=6, max_iter=200)
    assert not serial.starts["estimate"].equals(other.starts["estimate"])


def test_start_log_records_every_start(mixed):
    fit = fit_latent_classes(mixed, k_min=1, k_max=3, n_init=7, n_final=3, n_jobs=1, max_iter=200)
    starts = fit.starts
    assert (starts.groupby(["n_classes", "stage"]).size().unstack()[["short", "final"]].to_numpy() == [7, 3]).all()
    for k, solution in fit.solutions.items():
        final = starts.query("n_classes == @k and stage == 'final'")
        assert final["estimate"].max() == pytest.approx(solution.loglik)
        assert final["reached_best"].sum() == solution.n_at_best
    assert starts["method"].str.len().gt(0).all()
    # classes come ordered from the largest
    assert all(np.all(np.diff(s.weights) <= 0) for s in fit.solutions.values())


def test_encoding_rejects_undeclared_levels_without_showing_values():
    frame = pd.DataFrame({"item": ["jah", "ei", "secret-value"]})
    with pytest.raises(ValueError) as error:
        encode_indicators(frame, categorical=["item"], levels={"item": ["ei", "jah"]})
    assert "secret-value" not in str(error.value) and "item" in str(error.value)

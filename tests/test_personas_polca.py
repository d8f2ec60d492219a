"""poLCA reproduction: the maximised log-likelihoods published with poLCA, to 0.01.

The reference data live in shared/reference/polca/ beside the repository (README there
lists the published values). The R reference (tests/reference/personas_lca.R, an
independent EM since poLCA itself cannot be installed here) supplies the derived
statistics of the carcinoma 3-class solution.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personas.encoding import encode_indicators
from personas.fitting import fit_latent_classes, posterior
from personas.quality import average_posterior, odds_correct_classification
from personas.selection import summarise

POLCA = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "polca"
R_REFERENCE = json.loads((Path(__file__).parent / "reference" / "personas_lca.json").read_text())
pytestmark = pytest.mark.skipif(not POLCA.is_dir(), reason=f"poLCA reference data not found at {POLCA}")

ELECTION_ITEMS = ["MORALG", "CARESG", "KNOWG", "LEADG", "DISHONG", "INTELG",
                  "MORALB", "CARESB", "KNOWB", "LEADB", "DISHONB", "INTELB"]
PUBLISHED = {
    "carcinoma": (list("ABCDEFG"), {2: -317.2568, 3: -293.705, 4: -289.2858}),
    "values": (list("ABCD"), {1: -543.6498, 2: -504.4677, 3: -503.3011}),
    "cheating": (["LIEEXAM", "LIEPAPER", "FRAUD", "COPYEXAM"], {2: -440.0271}),
    "gss82": (["PURPOSE", "ACCURACY", "UNDERSTA", "COOPERAT"], {2: -2783.268, 3: -2754.545, 4: -2746.621}),
    "election": (ELECTION_ITEMS, {1: -18647.31, 2: -17344.92, 3: -16714.66}),
}


def indicators(name: str):
    items, _ = PUBLISHED[name]
    frame = pd.read_csv(POLCA / f"{name}.csv")
    if name == "election":
        frame = frame.dropna(subset=items)  # poLCA's listwise deletion: 1311 complete rows
    return encode_indicators(frame, categorical=items)


@pytest.fixture(scope="module")
def carcinoma_fit():
    # poLCA's own stopping rule (total log-likelihood change < 1e-10), as the R reference uses
    return fit_latent_classes(indicators("carcinoma"), k_min=2, k_max=4, n_init=20, n_final=6, n_jobs=1,
                              tolerance=1e-10, max_iter=50000)


def test_carcinoma_loglik(carcinoma_fit):
    for k, published in PUBLISHED["carcinoma"][1].items():
        assert carcinoma_fit.solutions[k].loglik == pytest.approx(published, abs=0.01)
        assert carcinoma_fit.solutions[k].replicated


def test_carcinoma_three_classes_published_details(carcinoma_fit):
    solution = carcinoma_fit.solutions[3]
    row = summarise(carcinoma_fit).set_index("n_classes").loc[3]
    assert solution.n_parameters == 23
    assert row["AIC"] == pytest.approx(633.41, abs=0.01)
    assert row["BIC"] == pytest.approx(697.1357, abs=0.01)
    # poLCA's shares 0.3736 / 0.1817 / 0.4447, here ordered from the largest class
    np.testing.assert_allclose(solution.weights, [0.4447, 0.3736, 0.1817], atol=1e-4)


def test_carcinoma_three_classes_matches_r_reference(carcinoma_fit):
    reference = R_REFERENCE["carcinoma_3"]
    solution = carcinoma_fit.solutions[3]
    probabilities = posterior(solution, carcinoma_fit.indicators)
    row = summarise(carcinoma_fit).set_index("n_classes").loc[3]
    assert solution.loglik == pytest.approx(reference["loglik"], abs=1e-6)
    for term in ("AIC", "BIC", "aBIC", "CAIC", "ICL"):
        assert row[term] == pytest.approx(reference[term], abs=1e-6)
    assert row["entropy_r2"] == pytest.approx(reference["entropy_r2"], abs=1e-6)
    avepp = average_posterior(probabilities)
    np.testing.assert_allclose(solution.weights, reference["class_shares"], atol=1e-6)
    np.testing.assert_allclose(avepp, reference["average_posterior"], atol=1e-6)
    np.testing.assert_allclose(odds_correct_classification(avepp, solution.weights),
                               reference["odds_correct_classification"], rtol=1e-6)
    np.testing.assert_array_equal(np.bincount(probabilities.argmax(axis=1), minlength=3), reference["modal_counts"])


@pytest.mark.parametrize("name", ["values", "cheating"])
def test_small_datasets_loglik(name):
    published = PUBLISHED[name][1]
    fit = fit_latent_classes(indicators(name), k_min=min(published), k_max=max(published), n_init=20, n_final=6, n_jobs=1)
    for k, value in published.items():
        assert fit.solutions[k].loglik == pytest.approx(value, abs=0.01)


def test_gss82_global_maximum_among_local_maxima():
    """gss82 with 3 classes has local maxima at -2755.617, -2755.739, -2762.005, -2762.231;
    the global -2754.545 is reached by about half of random starts. All 20 starts run to
    convergence here: some must end at a local maximum (so one start would not do), and
    the global one must still be found and replicated."""
    fit = fit_latent_classes(indicators("gss82"), k_min=2, k_max=3, n_init=20, n_final=20, n_jobs=1, seed=7)
    for k in (2, 3):
        assert fit.solutions[k].loglik == pytest.approx(PUBLISHED["gss82"][1][k], abs=0.01)
    assert fit.solutions[3].replicated
    assert fit.solutions[3].loglik == pytest.approx(R_REFERENCE["gss82_3"]["loglik"], abs=1e-4)
    final = fit.starts.query("n_classes == 3 and stage == 'final'")
    assert final["estimate"].min() < -2755.5  # the local maxima exist and are recorded


@pytest.mark.slow
def test_gss82_four_classes():
    fit = fit_latent_classes(indicators("gss82"), k_min=4, k_max=4, n_init=20, n_final=6, n_jobs=1, max_iter=20000)
    assert fit.solutions[4].loglik == pytest.approx(PUBLISHED["gss82"][1][4], abs=0.01)


@pytest.mark.slow
def test_election_listwise():
    data = indicators("election")
    assert data.n_rows == 1311
    fit = fit_latent_classes(data, k_min=1, k_max=3, n_init=20, n_final=4, n_jobs=1)
    for k, value in PUBLISHED["election"][1].items():
        assert fit.solutions[k].loglik == pytest.approx(value, abs=0.01)

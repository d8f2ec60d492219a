"""Persona-card data: sizes, characteristics, three-step outcomes, places, support, texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analyses.intervals import WILSON
from personas.cards import persona_profiles
from personas.encoding import encode_indicators
from personas.fitting import fit_latent_classes, posterior
from tests.test_personas_planted import planted

LABELS = {f"item_{j}": {"et": f"tunnus {j}", "en": f"trait {j}"} for j in range(10)}


@pytest.fixture(scope="module")
def setting():
    frame, truth, _ = planted(n=1200, seed=9)
    indicators = encode_indicators(frame, categorical=list(frame.columns))
    fit = fit_latent_classes(indicators, k_min=3, k_max=3, n_init=8, n_final=3, n_jobs=1)
    rng = np.random.default_rng(1)
    dropout_rate = np.array([0.05, 0.3, 0.6])[truth]
    outcomes = pd.DataFrame({"dropout": (rng.uniform(size=len(truth)) < dropout_rate).astype(float)})
    groups = pd.Series(rng.choice(["Antsla vald", "Võru linn", "Setomaa vald"], len(truth), p=[0.6, 0.39, 0.01]))
    supports = pd.DataFrame({"counselling": (rng.uniform(size=len(truth)) < 0.3).astype(float)})
    return fit, indicators, outcomes, groups, supports, truth


def test_profile_sections_and_sizes(setting):
    fit, indicators, outcomes, groups, supports, _ = setting
    solution = fit.solutions[3]
    table = persona_profiles(solution, indicators, LABELS, outcomes=outcomes, groups=groups, supports=supports)
    assert set(table["section"]) == {"size", "characteristic", "outcome", "municipality", "support", "name", "description"}
    sizes = table.query("section == 'size' and variable == 'modal_share'")
    assert sizes["n"].sum() == indicators.n_rows
    assert sizes["estimate"].sum() == pytest.approx(1.0)
    assert (sizes["ci_method"] == WILSON).all()
    # Wilson bounds from an independent implementation (statsmodels; R prop.test(correct = FALSE))
    for _, row in sizes.iterrows():
        low, high = proportion_confint(int(row["n"]), indicators.n_rows, alpha=0.05, method="wilson")
        assert (row["conf_low"], row["conf_high"]) == pytest.approx((low, high), abs=1e-12)
    # modal counts by hand from the posterior
    modal = posterior(solution, indicators).argmax(axis=1)
    assert sizes.sort_values("class")["n"].tolist() == np.bincount(modal, minlength=3).tolist()
    # characteristics: one row per binary item and class, ranked by |difference|, lift = share / overall
    chars = table.query("section == 'characteristic'")
    assert len(chars) == 10 * 3
    np.testing.assert_allclose(chars["lift"], chars["estimate"] / chars["reference"])
    first = chars[chars["class"] == 1].sort_values("rank")
    assert first["difference"].abs().is_monotonic_decreasing
    # municipality counts add up and small cells are flagged for the privacy layer
    places = table.query("section == 'municipality'")
    assert places["estimate"].sum() == indicators.n_rows
    assert (places["small_cell"] == places["n"].between(1, 4)).all()
    assert places.query("group == 'Setomaa vald'")["small_cell"].any()


def test_bch_outcomes_follow_the_formula_and_do_not_shift_classes(setting):
    fit, indicators, outcomes, _, _, truth = setting
    solution = fit.solutions[3]
    before = posterior(solution, indicators)
    table = persona_profiles(solution, indicators, LABELS, outcomes=outcomes)
    np.testing.assert_array_equal(posterior(solution, indicators), before)
    rates = table.query("section == 'outcome' and level == '1'").sort_values("class")["estimate"].to_numpy()
    # BCH by hand (Vermunt 2010, not StepMix's helper that the cards call): D[c, s] =
    # P(assigned s | class c) = sum_i p_ic [modal_i = s] / sum_i p_ic; weights = one-hot @ D^-1
    one_hot = np.eye(3)[before.argmax(axis=1)]
    d = (before.T @ one_hot) / before.sum(axis=0)[:, None]
    weights = one_hot @ np.linalg.inv(d)
    y = outcomes["dropout"].to_numpy()
    np.testing.assert_allclose(rates, (weights * y[:, None]).sum(0) / weights.sum(0), atol=1e-9)
    # planted dropout rates by true class, with class 1 the largest planted class
    np.testing.assert_allclose(rates, [0.05, 0.3, 0.6], atol=0.08)
    ml = persona_profiles(solution, indicators, LABELS, outcomes=outcomes, correction="ML")
    ml_rates = ml.query("section == 'outcome' and level == '1'").sort_values("class")["estimate"].to_numpy()
    np.testing.assert_allclose(ml_rates, rates, atol=0.03)
    assert ml.query("section == 'outcome'")["correction"].str.startswith("ML").all()


def test_texts_in_both_languages_and_overrides(setting):
    fit, indicators, *_ = setting
    override = {2: {"name_et": "Vaikne õppija", "name_en": "Quiet learner"}}
    table = persona_profiles(fit.solutions[3], indicators, LABELS, overrides=override)
    names = table.query("section == 'name'").set_index("class")
    assert names.loc[2, "text_et"] == "Vaikne õppija" and names.loc[2, "text_en"] == "Quiet learner"
    assert names.loc[1, "text_en"].startswith("Often: trait") and names.loc[1, "text_et"].startswith("Sageli: tunnus")
    descriptions = table.query("section == 'description'").set_index("class")
    assert "õpilastest" in descriptions.loc[2, "text_et"] and "of pupils" in descriptions.loc[2, "text_en"]
    assert names.loc[2, "method"].endswith("researcher override")
    assert descriptions.loc[2, "method"].endswith("top characteristics")
    with pytest.raises(ValueError):
        persona_profiles(fit.solutions[3], indicators, LABELS, overrides={1: {"nickname": "x"}})


def test_small_cell_flags_follow_the_study_threshold(setting):
    fit, indicators, outcomes, groups, supports, _ = setting
    table = persona_profiles(fit.solutions[3], indicators, LABELS, groups=groups, supports=supports, min_cell=10)
    places = table.query("section == 'municipality'")
    assert (places["small_cell"] == places["n"].between(1, 9)).all()
    chars = table.query("section == 'characteristic'")
    implied = (chars["estimate"] * chars["n"]).round()
    expected = implied.between(1, 9) | (chars["n"] - implied).between(1, 9)
    assert (chars["small_cell"].astype(bool) == expected).all()

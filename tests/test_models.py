"""R parity and behaviour of the dropout models (analyses/models*.py).

Reference: tests/reference/models.R -> models.json, on MASS::bacteria (trt + week, 50
children), geepack::ohio (age + smoke, 537 children) and lme4::cbpp as binary rows
(period, 15 herds). Covered, to 1e-6 unless stated:
  glm (estimates, SE, z, p, Wald CI, logLik, AIC, BIC)         stats::glm
  CR1 cluster-robust SE and z tests                             sandwich::vcovCL(type = "HC1"), lmtest::coeftest
  CR2 SE, Satterthwaite df, p, CI                               clubSandwich::vcovCR / coef_test / conf_int
  GEE exchangeable (estimates, robust SE, alpha, scale)         geepack::geeglm (epsilon tightened to 1e-12)
  generalised VIF                                               car::vif
  AUC with DeLong CI                                            pROC::ci.auc(method = "delong")
  Hosmer-Lemeshow deciles                                       ResourceSelection::hoslem.test's code
  calibration slope / calibration-in-the-large                  stats::glm
The random-intercept model is in tests/test_random_intercept.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.model_datasets import REFERENCE, load, r_terms

from analyses.models import fit_dropout_models
from analyses.models_design import model_data
from analyses.models_diagnostics import calibration, generalised_vif, hosmer_lemeshow, separation_check
from analyses.models_gee import fit_gee_exchangeable, gee_exchangeable
from analyses.models_logistic import fit_logistic, logistic_model, vcov_cr1, vcov_cr2
from analyses.screening import auc_delong
from tests.tolerance import assert_p_close

DATASETS = ["bacteria", "ohio", "cbpp"]
TOL = 1e-6


def _data(name):
    df, outcome, terms, cluster = load(name)
    return model_data(df, outcome, terms, cluster)


@pytest.mark.parametrize("name", DATASETS)
def test_logistic_model_based_matches_glm(name):
    df, outcome, terms, cluster = load(name)
    ref = REFERENCE[name]["glm"]
    table = logistic_model(df, outcome, terms, model=name, vcov_type="model")
    assert list(table["term"]) == r_terms(name)
    for column in ("estimate", "std_error", "statistic", "conf_low", "conf_high"):
        np.testing.assert_allclose(table[column], ref[column], atol=TOL, rtol=0, err_msg=column)
    assert_p_close(table["p_value"], ref["p_value"])
    np.testing.assert_allclose(table["odds_ratio"], np.exp(ref["estimate"]), rtol=TOL)
    np.testing.assert_allclose(table["or_conf_low"], np.exp(ref["conf_low"]), rtol=TOL)
    assert (table["n"] == ref["n"]).all()
    fit = fit_logistic(_data(name))
    k = len(ref["estimate"])
    assert fit.loglik == pytest.approx(ref["loglik"], abs=TOL)
    assert -2 * fit.loglik + 2 * k == pytest.approx(ref["aic"], abs=TOL)


@pytest.mark.parametrize("name", DATASETS)
def test_cr1_matches_sandwich_vcovcl_hc1(name):
    data = _data(name)
    ref = REFERENCE[name]["cr1"]
    np.testing.assert_allclose(vcov_cr1(data, fit_logistic(data)), ref["vcov"], atol=1e-9, rtol=TOL)
    df, outcome, terms, cluster = load(name)
    table = logistic_model(df, outcome, terms, cluster, model=name, vcov_type="CR1")
    for column in ("std_error", "statistic", "conf_low", "conf_high"):
        np.testing.assert_allclose(table[column], ref[column], atol=TOL, rtol=0, err_msg=column)
    assert_p_close(table["p_value"], ref["p_value"])
    assert table["correction"].str.startswith("CR1").all()


@pytest.mark.parametrize("name", DATASETS)
def test_cr2_matches_clubsandwich_satterthwaite(name):
    data = _data(name)
    ref = REFERENCE[name]["cr2"]
    vcov, dfs = vcov_cr2(data, fit_logistic(data))
    np.testing.assert_allclose(vcov, ref["vcov"], atol=1e-9, rtol=TOL)
    np.testing.assert_allclose(dfs, ref["df"], rtol=TOL)
    df, outcome, terms, cluster = load(name)
    table = logistic_model(df, outcome, terms, cluster, model=name, vcov_type="CR2")
    for column in ("std_error", "conf_low", "conf_high", "df"):
        np.testing.assert_allclose(table[column], ref[column], atol=TOL, rtol=0, err_msg=column)
    assert_p_close(table["p_value"], ref["p_value"])
    assert (table["ci_method"] == "wald_t_satterthwaite").all()


@pytest.mark.parametrize("name", DATASETS)
def test_gee_exchangeable_matches_geepack(name):
    ref = REFERENCE[name]["gee"]
    params, vcov, alpha = fit_gee_exchangeable(_data(name))
    np.testing.assert_allclose(params, ref["estimate"], atol=TOL, rtol=0)
    np.testing.assert_allclose(np.sqrt(np.diag(vcov)), ref["std_error"], atol=TOL, rtol=0)
    assert alpha == pytest.approx(ref["alpha"], abs=TOL)
    df, outcome, terms, cluster = load(name)
    table = gee_exchangeable(df, outcome, terms, cluster, model=name)
    assert_p_close(table["p_value"], ref["p_value"])
    np.testing.assert_allclose(table["conf_high"], ref["conf_high"], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", ["bacteria", "ohio"])
def test_generalised_vif_matches_car(name):
    data = _data(name)
    ref = REFERENCE[name]["vif"]
    rows = generalised_vif(fit_logistic(data).inverse_information, data)
    assert [r["term"] for r in rows] == ref["variable"]
    np.testing.assert_allclose([r["gvif"] for r in rows], ref["gvif"], rtol=TOL)
    np.testing.assert_allclose([r["gvif_adj"] for r in rows], ref["gvif_adj"], rtol=TOL)
    assert [r["df"] for r in rows] == ref["df"]


@pytest.mark.parametrize("name", DATASETS)
def test_auc_delong_matches_proc(name):
    data = _data(name)
    ref = REFERENCE[name]["auc"]
    result = auc_delong(data.y, fit_logistic(data).fitted)
    assert result["auc"] == pytest.approx(ref["auc"], abs=TOL)
    assert result["std_error"] ** 2 == pytest.approx(ref["var"], abs=1e-9)
    assert (result["conf_low"], result["conf_high"]) == pytest.approx((ref["conf_low"], ref["conf_high"]), abs=TOL)


def test_hosmer_lemeshow_matches_hoslem_test():
    data = _data("bacteria")
    ref = REFERENCE["bacteria"]["hoslem"]
    result = hosmer_lemeshow(data.y, fit_logistic(data).fitted, groups=10)
    assert result["groups_used"] == 10
    assert result["statistic"] == pytest.approx(ref["statistic"], abs=TOL)
    assert result["df"] == ref["df"]
    assert_p_close(result["p_value"], ref["p_value"])


def test_hosmer_lemeshow_df_counts_groups_left_after_ties():
    # Deliberate difference: ohio's fitted risks take 8 values, so deciles merge; the
    # statistic is hoslem.test's, but df = groups used - 2 rather than its fixed g - 2.
    data = _data("ohio")
    ref = REFERENCE["ohio"]["hoslem"]
    result = hosmer_lemeshow(data.y, fit_logistic(data).fitted, groups=10)
    assert result["statistic"] == pytest.approx(ref["statistic"], abs=TOL)
    assert result["groups_used"] < 10
    assert result["df"] == result["groups_used"] - 2 != ref["df"]


def test_calibration_matches_glm_on_random_intercept_fixed_part():
    data = _data("bacteria")
    ref = REFERENCE["bacteria"]
    prob = np.asarray(ref["glmer_agq15"]["fixed_prob"])
    result = calibration(data.y, prob)
    cal = ref["calibration_fixed_part"]
    for key in ("slope", "slope_se", "intercept", "intercept_se"):
        assert result[key] == pytest.approx(cal[key], abs=TOL), key
    assert auc_delong(data.y, prob)["auc"] == pytest.approx(ref["auc_fixed_part"]["auc"], abs=TOL)


def test_separation_detected_and_named():
    rng = np.random.default_rng(3)
    n = 200
    df = pd.DataFrame({"x": rng.normal(size=n), "flag": (rng.uniform(size=n) < 0.2).astype(int)})
    df["y"] = (rng.uniform(size=n) < 0.4).astype(int)
    df.loc[df["flag"] == 1, "y"] = 1  # quasi-complete: every flagged pupil drops out
    result = separation_check(model_data(df, "y", ["x", "flag"]))
    assert result["separated"]
    assert "flag" in result["terms"] and "x" not in result["terms"]
    assert not separation_check(_data("bacteria"))["separated"]


def test_design_codes_factors_like_r_and_keeps_values_out_of_errors():
    df = pd.DataFrame({"y": [0, 1, 1, 0, 1, 0], "lang": ["vene", "eesti", "eesti", "muu", "vene", "eesti"],
                       "age": [12.0, 13.0, np.nan, 15.0, 14.0, 13.0]})
    data = model_data(df, "y", ["lang", "age"])
    assert data.columns == ("(Intercept)", "lang:muu", "lang:vene", "age")
    assert data.n == 5
    assert data.term_columns["lang"] == ("lang:muu", "lang:vene")
    bad = df.assign(y=["Mari Tamm", "x", "x", "x", "x", "x"])
    with pytest.raises(ValueError) as error:
        model_data(bad, "y", ["age"])
    assert "Mari" not in str(error.value)


def test_fit_dropout_models_tables():
    df, outcome, terms, cluster = load("bacteria")
    models, fit = fit_dropout_models(df, outcome, terms, cluster)
    assert set(models["model"]) == {"dropout_main"}
    methods = list(dict.fromkeys(models["method"]))
    assert methods == ["logistic_glm_ml_cr1", "logistic_glm_ml_cr2", "gee_logit_exchangeable",
                       "glmm_logit_random_intercept_ml_agq15"]
    headline = models[models["headline"]]
    assert set(headline["method"]) == {"glmm_logit_random_intercept_ml_agq15"}
    assert list(headline["term"]) == r_terms("bacteria") + ["sd__(Intercept)", "icc_latent"]
    fixed = models[models["effect"] == "fixed"]
    np.testing.assert_allclose(fixed["odds_ratio"], np.exp(fixed["estimate"]))
    np.testing.assert_allclose(fixed["or_conf_high"], np.exp(fixed["conf_high"]))
    assert models["method"].notna().all() and models["ci_method"].notna().all()
    measures = fit.set_index(["estimator", "measure", fit["term"].fillna("")])["estimate"]
    assert measures[("specification", "n_clusters", "")] == 50
    assert measures[("specification", "events_per_variable", "")] == pytest.approx(43 / 3)
    assert measures[("specification", "gvif", "trt")] == pytest.approx(REFERENCE["bacteria"]["vif"]["gvif"][0], rel=TOL)
    assert measures[("logistic_glm_ml", "aic", "")] == pytest.approx(REFERENCE["bacteria"]["glm"]["aic"], abs=TOL)
    assert measures[("glmm_logit_random_intercept_ml_agq15", "loglik", "")] == pytest.approx(
        REFERENCE["bacteria"]["glmer_agq15"]["loglik"], abs=1e-6)
    assert measures[("glmm_logit_random_intercept_ml_agq15", "headline", "")] == 1

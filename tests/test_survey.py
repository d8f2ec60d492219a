"""R parity of analyses/survey.py against the survey package, and the plan's survey part.

Reference: tests/reference/survey.R -> survey.json, on survey's api samples (exported by
the script to tests/reference/survey_api*.csv): a stratified sample with and without
fpc, a one-stage cluster sample with fpc, and a stratified cluster design. Covered to
1e-6 (relative; p-values relative): svymean (numeric, with na.rm, and factor
proportions), svyciprop's logit interval (overall and per domain), svytotal, svyby
domains, svyglm quasibinomial (coefficients, SE, t, p, df, confint), svychisq Rao-Scott
F (statistic, ndf, ddf, p).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyses.survey import rao_scott, survey_design, survey_logistic, survey_means, survey_totals

HERE = Path(__file__).parent / "reference"
REFERENCE = json.loads((HERE / "survey.json").read_text())
TOL = 1e-6
DESIGNS = {
    "strat": ("apistrat", {"weights": "pw", "strata": "stype", "fpc": "fpc"}),
    "strat_nofpc": ("apistrat", {"weights": "pw", "strata": "stype"}),
    "clus1": ("apiclus1", {"weights": "pw", "cluster": "dnum", "fpc": "fpc"}),
    "stratclus": ("apistrat", {"weights": "pw", "strata": "stype", "cluster": "dnum"}),
}


def _data(name: str) -> pd.DataFrame:
    df = pd.read_csv(HERE / f"survey_{name}.csv")
    df["stype"] = pd.Categorical(df["stype"], categories=["E", "H", "M"])
    df["sch_wide_yes"] = (df["sch.wide"] == "Yes").astype(int)
    return df


def _close(actual, expected, err_msg=""):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.ravel(expected), rtol=TOL, err_msg=err_msg)


@pytest.mark.parametrize("key", list(DESIGNS))
def test_means_totals_and_domains_match_survey(key):
    data, design = DESIGNS[key]
    df, ref = _data(data), REFERENCE[key]
    means = survey_means(df, ["api00", "acs.k3", "sch.wide"], **design)
    for variable, block in (("api00", "mean_api00"), ("acs.k3", "mean_acs_k3"), ("sch.wide", "mean_sch_wide")):
        rows = means[means["variable"] == variable]
        for column in ("estimate", "std_error", "conf_low", "conf_high"):
            _close(rows[column], ref[block][column], f"{block} {column}")
    assert set(means.loc[means["variable"] == "sch.wide", "method"]) == {"survey_weighted_proportion"}
    assert means.loc[means["variable"] == "acs.k3", "n"].iloc[0] == df["acs.k3"].notna().sum()
    totals = survey_totals(df, ["enroll", "sch.wide"], **design)
    for variable, block in (("enroll", "total_enroll"), ("sch.wide", "total_sch_wide")):
        rows = totals[totals["variable"] == variable]
        for column in ("estimate", "std_error", "conf_low", "conf_high"):
            _close(rows[column], ref[block][column], f"{block} {column}")
    domains = survey_means(df, ["api00"], by="stype", **design)
    assert list(domains["group"]) == ref["by_stype"]["group"]
    _close(domains["estimate"], ref["by_stype"]["estimate"])
    _close(domains["std_error"], ref["by_stype"]["std_error"])
    expected = "taylor_linearisation_fpc" if "fpc" in design else "taylor_linearisation_with_replacement"
    assert set(means["correction"]) == {expected} and set(means["ci_method"]) == {"wald_z"}
    assert survey_design(df, **design).degrees_of_freedom == ref["degf"]


@pytest.mark.parametrize("key", list(DESIGNS))
def test_logistic_matches_svyglm(key):
    data, design = DESIGNS[key]
    ref = REFERENCE[key]["glm"]
    table = survey_logistic(_data(data), "sch_wide_yes", ["ell", "meals", "stype"], **design)
    assert list(table["term"]) == ["(Intercept)", "ell", "meals", "stype:H", "stype:M"]
    for column in ("estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"):
        _close(table[column], ref[column], column)
    assert (table["df"] == ref["df"]).all()
    _close(table["odds_ratio"], np.exp(ref["estimate"]))
    assert (table["ci_method"] == "wald_t_design_df").all()


@pytest.mark.parametrize("key", list(DESIGNS))
@pytest.mark.parametrize("pair", [("sch.wide", "stype"), ("awards", "stype")])
def test_rao_scott_matches_svychisq(key, pair):
    data, design = DESIGNS[key]
    ref = REFERENCE[key][f"chisq_{pair[0].replace('.', '_')}_{pair[1]}"]
    row = rao_scott(_data(data), pair[0], pair[1], **design).iloc[0]
    assert row["statistic"] == pytest.approx(ref["statistic"], rel=TOL)
    assert row["df"] == pytest.approx(ref["ndf"], rel=TOL)
    assert row["ddf"] == pytest.approx(ref["ddf"], rel=TOL)
    assert row["correction"] == "rao_scott_second_order"
    assert row["p_value"] == pytest.approx(ref["p_value"], rel=TOL)


def test_a_lonely_psu_is_refused_with_its_column_named():
    df = _data("apistrat")
    df.loc[df["stype"] == "H", "dnum"] = 1
    with pytest.raises(ValueError, match="single PSU"):
        survey_means(df, ["api00"], weights="pw", strata="stype", cluster="dnum")


def test_plan_names_the_design_and_is_checked():
    from pydantic import ValidationError

    from pipelines.config import PROJECT_ROOT, load_codebooks, load_study
    from pipelines.plan import SurveyPlan
    from pipelines.study_plan import analysis_plan_table, plan_problems

    with pytest.raises(ValidationError, match="at least one"):
        SurveyPlan()
    study = load_study(PROJECT_ROOT / "studies" / "demo.yaml")
    books = load_codebooks(study)
    good = study.model_copy(update={"plan": study.plan.model_copy(update={"survey": SurveyPlan(cluster="school_id")})})
    assert plan_problems(good, books) == []
    assert (analysis_plan_table(good, books)["part"] == "survey").sum() == 1
    bad = study.model_copy(update={"plan": study.plan.model_copy(update={"survey": SurveyPlan(weights="no_such")})})
    assert any(p.startswith("plan.survey.weights: 'no_such'") for p in plan_problems(bad, books))


@pytest.mark.parametrize("key", list(DESIGNS))
def test_logit_proportion_interval_matches_svyciprop(key):
    data, design = DESIGNS[key]
    df, ref = _data(data), REFERENCE[key]
    overall = survey_means(df, ["sch.wide"], proportion_ci="logit", **design).set_index("level")
    _close(overall.loc["Yes", ["conf_low", "conf_high"]], ref["ciprop_sch_wide"])
    assert overall.loc["Yes", "ci_method"] == "logit_t_design_df"
    assert overall.loc["Yes", "df"] == ref["degf"]
    by = survey_means(df, ["awards"], by="stype", proportion_ci="logit", **design)
    yes = by[by["level"] == "Yes"].set_index("group")
    for i, group in enumerate(["E", "H", "M"]):
        _close(yes.loc[group, ["conf_low", "conf_high"]], ref["ciprop_awards_by_stype"][i], f"{group}")


def test_simple_random_sample_gives_the_textbook_mean_and_se():
    df = _data("apistrat")
    row = survey_means(df, ["api00"]).iloc[0]
    assert row["estimate"] == pytest.approx(df["api00"].mean(), rel=1e-12)
    assert row["std_error"] == pytest.approx(df["api00"].std(ddof=1) / np.sqrt(len(df)), rel=1e-12)
    assert row["correction"] == "taylor_linearisation_with_replacement"


def test_design_columns_are_checked_by_name():
    df = _data("apistrat")
    with pytest.raises(KeyError, match="weights column 'no_such'"):
        survey_means(df, ["api00"], weights="no_such")
    df.loc[0, "pw"] = np.nan
    with pytest.raises(ValueError, match="'pw' has missing values"):
        survey_means(df, ["api00"], weights="pw")

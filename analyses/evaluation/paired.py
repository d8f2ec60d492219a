"""Within-group change from pre to post on linked pupils, per municipality and pooled.

For each outcome and each group, in each municipality and over all ('all'), the rows are:

* continuous, count and ordinal outcomes: the 'pre' and 'post' means (Student t CI) of
  the linked pupils; 'change' (post - pre) by the paired t test with Cohen's d_z and its
  noncentral-t CI; a second 'change' row with the same mean change and Hedges' g_av; a
  'change' row by the Wilcoxon signed-rank test (R's zero and tie handling) with the
  matched-pairs rank-biserial correlation.
* binary outcomes (0/1 or booleans): 'pre' and 'post' proportions with the exact
  Clopper-Pearson CI; 'change' by McNemar's test (exact below 25 discordant pairs) with
  the conditional odds ratio.

Only pupils with both waves observed for the outcome enter, so 'pre', 'post' and
'change' describe the same children; attrition is reported by ``linking``. Pooled rows
ignore clustering by municipality (the DiD rows account for it). The small-numbers rule
of ``results`` applies to every row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analyses.evaluation import effect_sizes, hypothesis_tests
from analyses.evaluation.linking import ALL, DEFAULT_WAVES, link_waves
from analyses.evaluation.results import (
    CANNOT_REACH_SIGNIFICANCE,
    add_warning,
    evaluation_frame,
    small_numbers_warning,
)

#: Below this many non-zero differences / discordant pairs no exact two-sided p < 0.05 exists.
MIN_INFORMATIVE_PAIRS = 6

_TEST_KEYS = ("estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high", "n")


def is_binary(values: pd.Series) -> bool:
    """True for booleans and for numbers that only take the values 0 and 1."""
    observed = values.dropna()
    if observed.empty:
        return False
    if pd.api.types.is_bool_dtype(observed):
        return True
    numeric = pd.to_numeric(observed, errors="coerce")
    return bool(numeric.notna().all() and numeric.isin([0, 1]).all())


def cells(linked: pd.DataFrame, by_municipality: bool) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(group, municipality, pupils) for each group per municipality and pooled ('all')."""
    for group, part in linked.groupby("group", sort=True):
        if by_municipality:
            for municipality, local in part.groupby("municipality", sort=True):
                yield group, municipality, local
        yield group, ALL, part


def _pairs(cell: pd.DataFrame, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    pre = pd.to_numeric(cell[f"{outcome}_pre"], errors="coerce").astype("float64")
    post = pd.to_numeric(cell[f"{outcome}_post"], errors="coerce").astype("float64")
    both = pre.notna() & post.notna()
    return pre[both].to_numpy(), post[both].to_numpy()


def _test_row(result: dict) -> dict:
    row = {key: result.get(key) for key in _TEST_KEYS}
    return {**row, "warning": result["warning"]} if result.get("warning") else row


def continuous_change_rows(pre: np.ndarray, post: np.ndarray, conf_level: float = 0.95) -> list[dict]:
    """'pre', 'post' and three 'change' rows (t with d_z, t with g_av, Wilcoxon) of paired values."""
    rows = []
    for contrast, values in (("pre", pre), ("post", post)):
        rows.append({"contrast": contrast, **_test_row(hypothesis_tests.one_sample_t(values, conf_level)),
                     "statistic": None, "p_value": None, "method_code": "mean",
                     "method": "mean of linked pupils", "ci_method": "Student t"})
    change = post - pre
    paired = hypothesis_tests.one_sample_t(change, conf_level)
    d, d_low, d_high = effect_sizes.cohens_dz(change, conf_level)
    if paired.get("warning"):  # constant differences: d_z is infinite, its interval undefined
        d = d_low = d_high = None
    rows.append({"contrast": "change", **_test_row(paired), "effect_size": d,
                 "effect_size_name": "cohens_dz", "es_conf_low": d_low, "es_conf_high": d_high,
                 "method": "paired t-test (post - pre)", "method_code": "paired_t",
                 "ci_method": "Student t; effect size: noncentral t (exact)"})
    g, g_low, g_high = effect_sizes.hedges_g_av(pre, post, conf_level)
    if paired.get("warning"):
        g_low = g_high = None
    rows.append({"contrast": "change", **_test_row(paired), "effect_size": g,
                 "effect_size_name": "hedges_g_av", "es_conf_low": g_low, "es_conf_high": g_high,
                 "method": "paired t-test (post - pre)", "method_code": "paired_t",
                 "ci_method": "Student t; effect size: noncentral t for d_z rescaled by s_diff/s_av (approximate)",
                 "correction": "Hedges J(n-1) exact gamma small-sample correction"})
    wilcoxon = hypothesis_tests.wilcoxon_signed_rank(change)
    r, r_low, r_high = effect_sizes.rank_biserial_paired(change, conf_level)
    row = {"contrast": "change", **_test_row(wilcoxon), "n": len(change), "effect_size": r,
           "effect_size_name": "rank_biserial_paired", "es_conf_low": r_low, "es_conf_high": r_high,
           "method": wilcoxon["method"] + " (estimate: median difference)", "method_code": "signed_rank",
           "ci_method": "effect size: Fisher z normal approximation",
           "correction": "zero differences dropped (Wilcoxon); average ranks for ties"
                         + ("" if wilcoxon["exact"] else "; tie-corrected variance; continuity correction")}
    if wilcoxon["exact"] and wilcoxon["n"] < MIN_INFORMATIVE_PAIRS:
        row = add_warning(row, CANNOT_REACH_SIGNIFICANCE)
    rows.append(row)
    return rows


def binary_change_rows(pre: np.ndarray, post: np.ndarray, conf_level: float = 0.95) -> list[dict]:
    """'pre' and 'post' proportions and the McNemar 'change' row of paired 0/1 values."""
    rows = []
    for contrast, values in (("pre", pre), ("post", post)):
        n, k = values.size, int(values.sum())
        interval = stats.binomtest(k, n).proportion_ci(conf_level, method="exact") if n else None
        rows.append({"contrast": contrast, "estimate": k / n if n else None, "n": n,
                     "conf_low": interval.low if n else None, "conf_high": interval.high if n else None,
                     "method": "proportion of linked pupils", "ci_method": "Clopper-Pearson exact",
                     "method_code": "proportion"})
    result = hypothesis_tests.mcnemar(pre.astype(int), post.astype(int), conf_level)
    row = {"contrast": "change", **_test_row(result), "effect_size": result.get("odds_ratio"),
           "effect_size_name": "conditional_odds_ratio (0->1 over 1->0)",
           "es_conf_low": result.get("or_conf_low"), "es_conf_high": result.get("or_conf_high"),
           "method": result["method"] + " (estimate: change in proportion)", "method_code": "mcnemar",
           "ci_method": "effect size: Clopper-Pearson exact, as exact2x2::mcnemar.exact",
           "correction": "exact binomial below 25 discordant pairs, else continuity-corrected chi-square"}
    if result["discordant"] < MIN_INFORMATIVE_PAIRS:
        row = add_warning(row, CANNOT_REACH_SIGNIFICANCE)
    rows.append(row)
    return rows


def within_group_change(
    assessments: pd.DataFrame,
    outcomes: Sequence[str],
    binary: Sequence[str] | None = None,
    by_municipality: bool = True,
    conf_level: float = 0.95,
    small_n: int = 10,
    waves: Sequence[str] = DEFAULT_WAVES,
    group: str = "group",
) -> pd.DataFrame:
    """Pre, post and change rows per outcome, group and municipality (and 'all').

    ``binary`` lists the outcomes to treat as binary; by default an outcome is binary
    when its values are booleans or only 0 and 1. 'pre' is the first of ``waves``,
    'post' the last; ``group`` names the group column. Returns the ``results.evaluation``
    columns (see ``results``); ``n`` is the number of linked pupils with both waves.
    Every cell gets its true numbers (rows below ``small_n`` pupils the warning
    ``small_n``); the small-cell rule is the publishing layer's (``publish_evaluation``).
    """
    linked = link_waves(assessments, outcomes, waves, group)  # cells with nobody linked still get rows
    rows = []
    for outcome in outcomes:
        treat_binary = (outcome in binary) if binary is not None else is_binary(assessments[outcome])
        for group, municipality, cell in cells(linked, by_municipality):
            pre, post = _pairs(cell, outcome)
            build = binary_change_rows if treat_binary else continuous_change_rows
            for row in build(pre, post, conf_level):
                rows.append(add_warning({"outcome": outcome, "group": group, "municipality": municipality, **row},
                                        small_numbers_warning(pre.size, 0, small_n)))
    return evaluation_frame(rows)

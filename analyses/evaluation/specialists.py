"""Specialists before and after: how often each sector cooperates with each other sector.

Each specialist rates, per partner sector, how often they cooperate with it (ordinal
1-5). For each (respondent's sector, partner sector) pair the change from 'pre' to
'post' is estimated

* with the paired machinery of ``paired`` (paired t with d_z and g_av, Wilcoxon
  signed-rank with the matched-pairs rank-biserial) on the respondents whose staff
  pseudonym links both waves, when at least ``min_n`` of them do (``design='auto'``);
* otherwise as independent samples of all 'pre' and all 'post' answers: the Wilcoxon
  rank-sum (Mann-Whitney) test with the rank-biserial correlation, and the difference in
  means with Welch's CI. Ordinal answers have many ties, so the rank-sum p-value is the
  tie-corrected normal approximation, as R's ``wilcox.test``.

Rows: ``outcome`` 'cooperation_with:<partner>', ``group`` the respondent's sector,
``municipality`` 'all', contrasts 'pre', 'post', 'change'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analyses.evaluation import effect_sizes, hypothesis_tests
from analyses.evaluation.linking import ALL, DEFAULT_WAVES, check_waves
from analyses.evaluation.paired import continuous_change_rows
from analyses.evaluation.results import apply_small_numbers, evaluation_frame

_TEST_KEYS = ("estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high", "n")


def independent_change_rows(pre: np.ndarray, post: np.ndarray, conf_level: float = 0.95) -> list[dict]:
    """'pre', 'post' means and two independent-samples 'change' rows (post versus pre)."""
    rows = [{"contrast": contrast,
             **{k: v for k, v in hypothesis_tests.one_sample_t(values, conf_level).items() if k in _TEST_KEYS},
             "statistic": None, "p_value": None, "method": "mean of answers", "ci_method": "Student t",
             "method_code": "mean"}
            for contrast, values in (("pre", pre), ("post", post))]
    welch = hypothesis_tests.welch_t(post, pre, conf_level)
    rows.append({"contrast": "change", **{k: v for k, v in welch.items() if k in _TEST_KEYS},
                 "warning": welch.get("warning"), "method_code": "welch_t",
                 "method": "Welch t-test, independent samples (post - pre)",
                 "ci_method": "Welch-Satterthwaite t"})
    rank_sum = hypothesis_tests.mann_whitney(post, pre)
    r, low, high = effect_sizes.rank_biserial_independent(post, pre, conf_level)
    rows.append({"contrast": "change", **{k: v for k, v in rank_sum.items() if k in _TEST_KEYS},
                 "effect_size": r, "effect_size_name": "rank_biserial",
                 "es_conf_low": low, "es_conf_high": high,
                 "method": rank_sum["method"] + " (estimate: difference in medians)", "method_code": "rank_sum",
                 "ci_method": "effect size: Fisher z normal approximation",
                 "correction": "average ranks for ties"
                               + ("" if rank_sum["exact"] else "; tie-corrected variance; continuity correction")})
    return rows


def _linked_pairs(answers: pd.DataFrame, column: str, respondent: str, before: str,
                  after: str) -> tuple[np.ndarray, np.ndarray]:
    known = answers.dropna(subset=[respondent, column])
    known = known.loc[known["wave"].isin([before, after])]
    wide = known.pivot(index=respondent, columns="wave", values=column)
    if not {before, after} <= set(wide.columns):
        return np.array([]), np.array([])
    wide = wide[[before, after]].dropna()
    return wide[before].to_numpy(float), wide[after].to_numpy(float)


def sector_cooperation_change(
    responses: pd.DataFrame,
    cooperation: Mapping[str, str],
    respondent: str = "staff_id",
    sector: str = "sector",
    design: str = "auto",
    conf_level: float = 0.95,
    min_n: int = 5,
    small_n: int = 10,
    waves: Sequence[str] = DEFAULT_WAVES,
) -> pd.DataFrame:
    """Change in cooperation frequency per (respondent sector, partner sector) pair.

    ``responses`` is long: ``wave`` (the first of ``waves`` is before, the last after;
    answers of other waves are not used), ``sector``, the staff pseudonym
    ``respondent`` (NA where an answer cannot be linked) and one column per partner
    sector; ``cooperation`` maps partner sector -> column. ``design`` 'auto' (see the
    module docstring), 'paired' or 'independent'. A respondent answering twice in one
    wave raises (count only in the message).
    """
    if design not in ("auto", "paired", "independent"):
        raise ValueError("design must be 'auto', 'paired' or 'independent'")
    before, after = check_waves(waves)
    identified = responses.dropna(subset=[respondent])
    duplicated = int(identified.duplicated([respondent, "wave"]).sum())
    if duplicated:
        raise ValueError(f"{duplicated} respondent(s) answer more than once in a wave")
    rows = []
    for own_sector, answers in responses.groupby(sector, sort=True):
        for partner, column in cooperation.items():
            pre, post = _linked_pairs(answers, column, respondent, before, after)
            paired = design == "paired" or (design == "auto" and pre.size >= min_n)
            if paired:
                built, n = continuous_change_rows(pre, post, conf_level), pre.size
            else:
                values = {w: pd.to_numeric(answers.loc[answers["wave"] == w, column], errors="coerce")
                          .dropna().to_numpy(float) for w in (before, after)}
                built = independent_change_rows(values[before], values[after], conf_level)
                n = min(values[before].size, values[after].size)
            for row in built:
                row = {"outcome": f"cooperation_with:{partner}", "group": own_sector,
                       "municipality": ALL, **row}
                rows.append(apply_small_numbers(row, n, min_n, small_n))
    return evaluation_frame(rows)

"""Accuracy of early-warning indicators against an observed outcome.

The pilot's assessment criteria (attendance, behaviour, course-performance flags and
the combined "any flag") are judged by how well they pick out the pupils who later
drop out: prevalence of the outcome, share flagged, sensitivity, specificity, PPV,
NPV, each with a binomial interval, and the area under the ROC curve with DeLong's
interval, also for a continuous risk score.

Method choices, named in the rows:

- binomial intervals: Wilson score (default; ``prop.test(correct = FALSE)``) or
  Clopper-Pearson exact (``binom.test``), chosen by ``ci_method``. PPV and NPV are
  treated as simple proportions of the flagged / unflagged pupils, which is right for
  a cohort sample where prevalence is estimated from the same data.
- AUC: the Mann-Whitney estimate (ties count one half) with DeLong's (1988) variance
  from the structural components and a normal interval truncated to [0, 1], exactly
  pROC's ``ci.auc(roc(outcome, score, direction = "<"), method = "delong")``. Higher
  score or a raised flag is taken to mean higher risk; the direction is never
  chosen from the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analyses.descriptives import as_numeric
from analyses.intervals import WILSON, proportion_interval
from analyses.tidy import tidy_frame

DELONG = "delong_normal_truncated_0_1"


def auc_delong(outcome: np.ndarray, score: np.ndarray, conf_level: float = 0.95) -> dict:
    """AUC of ``score`` for a 0/1 ``outcome`` with DeLong's standard error and interval.

    The structural components come from mid-ranks: a case's component is the share of
    controls it outranks (ties one half), a control's the share of cases that outrank
    it. Returns ``auc``, ``std_error``, ``conf_low``, ``conf_high``, ``n_cases``,
    ``n_controls``.
    """
    outcome = np.asarray(outcome, dtype=int)
    score = np.asarray(score, dtype=float)
    cases, controls = score[outcome == 1], score[outcome == 0]
    m, n = len(cases), len(controls)
    if m < 2 or n < 2:
        missing = dict.fromkeys(("auc", "std_error", "conf_low", "conf_high"), np.nan)
        return {**missing, "n_cases": m, "n_controls": n}
    combined_ranks = stats.rankdata(np.concatenate([cases, controls]))
    case_components = (combined_ranks[:m] - stats.rankdata(cases)) / n
    control_components = 1 - (combined_ranks[m:] - stats.rankdata(controls)) / m
    auc = float(case_components.mean())
    variance = np.var(case_components, ddof=1) / m + np.var(control_components, ddof=1) / n
    std_error = float(np.sqrt(variance))
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    return {
        "auc": auc,
        "std_error": std_error,
        "conf_low": max(0.0, auc - z * std_error),
        "conf_high": min(1.0, auc + z * std_error),
        "n_cases": m,
        "n_controls": n,
    }


def _binary_01(values: pd.Series, column: str) -> np.ndarray:
    """A 0/1 column as an int array; anything else is an error (values are not echoed)."""
    array = as_numeric(values, column).to_numpy()
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"column {column!r} must be coded 0/1")
    return array.astype(int)


def _proportion_row(measure: str, count: int, total: int, ci_method: str, conf_level: float) -> dict:
    low, high = proportion_interval(count, total, ci_method, conf_level)
    return {
        "measure": measure,
        "estimate": count / total if total else np.nan,
        "conf_low": low,
        "conf_high": high,
        "n": total,
        "count": count,
        "method": "proportion",
        "ci_method": ci_method,
    }


def _auc_row(outcome: np.ndarray, score: np.ndarray, conf_level: float) -> dict:
    result = auc_delong(outcome, score, conf_level)
    return {
        "measure": "auc",
        "estimate": result["auc"],
        "std_error": result["std_error"],
        "conf_low": result["conf_low"],
        "conf_high": result["conf_high"],
        "n": len(outcome),
        "method": "auc_mann_whitney_higher_is_risk",
        "ci_method": DELONG,
    }


def screening_accuracy(
    frame: pd.DataFrame,
    outcome: str,
    flags: Sequence[str] = (),
    scores: Sequence[str] = (),
    ci_method: str = WILSON,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Accuracy of 0/1 flags and continuous scores against a 0/1 outcome.

    Rows per indicator, told apart by ``measure``: for flags ``prevalence`` (of the
    outcome), ``flag_rate``, ``sensitivity``, ``specificity``, ``ppv``, ``npv`` (count
    over ``n``, with the chosen binomial interval) and ``auc``; for scores ``auc``
    only. Each indicator uses the pupils with both it and the outcome present.
    ``indicator_type`` is ``flag`` or ``score``.
    """
    rows = []
    for indicator, indicator_type in [*((f, "flag") for f in flags), *((s, "score") for s in scores)]:
        pair = frame[[outcome, indicator]].dropna()
        y = _binary_01(pair[outcome], outcome)
        common = {"outcome": outcome, "indicator": indicator, "indicator_type": indicator_type, "correction": "none"}
        if indicator_type == "score":
            x = as_numeric(pair[indicator], indicator).to_numpy()
            rows.append({**common, **_auc_row(y, x, conf_level)})
            continue
        x = _binary_01(pair[indicator], indicator)
        true_pos = int(np.sum((x == 1) & (y == 1)))
        false_pos = int(np.sum((x == 1) & (y == 0)))
        false_neg = int(np.sum((x == 0) & (y == 1)))
        true_neg = int(np.sum((x == 0) & (y == 0)))
        proportions = [
            ("prevalence", true_pos + false_neg, len(y)),
            ("flag_rate", true_pos + false_pos, len(y)),
            ("sensitivity", true_pos, true_pos + false_neg),
            ("specificity", true_neg, true_neg + false_pos),
            ("ppv", true_pos, true_pos + false_pos),
            ("npv", true_neg, true_neg + false_neg),
        ]
        for measure, count, total in proportions:
            rows.append({**common, **_proportion_row(measure, count, total, ci_method, conf_level)})
        rows.append({**common, **_auc_row(y, x.astype(float), conf_level)})
    return tidy_frame(rows, ["outcome", "indicator", "indicator_type", "measure"], ["count"])

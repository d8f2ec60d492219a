"""Descriptive tables: counts and proportions, means and medians, multi-select answers.

Every function groups by the caller's columns (county, municipality, wave, persona ...)
and returns raw counts with the denominator ``n`` on each row, so the privacy stage's
small-cell suppression can be applied afterwards; nothing is suppressed here.

Method choices, each named in the output rows:

- proportions: Wilson score interval without continuity correction, the interval of
  R's ``prop.test(x, n, correct = FALSE)$conf.int`` (Wilson 1927). It keeps its nominal
  coverage for the small counts of small municipalities, where the Wald interval fails.
- means: Student t interval, as ``t.test(x)$conf.int``.
- medians: sample quartiles of type 7 (R's ``quantile`` default, numpy's ``linear``),
  reported with the interquartile range; no interval is given for the median.

Missing answers are left out of each variable's denominator and counted in
``n_missing``. Rows whose grouping value is missing form their own group (NA label),
so no pupil silently disappears from a table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analyses.intervals import (  # noqa: F401  (re-exported: the intervals' old home)
    CLOPPER_PEARSON,
    WILSON,
    clopper_pearson_interval,
    proportion_interval,
    wilson_interval,
)
from analyses.tidy import tidy_frame

def as_numeric(values: pd.Series, column: str) -> pd.Series:
    """A column as float64; a non-numeric answer raises without echoing it.

    pandas' own message quotes the offending value, which could identify a pupil.
    """
    try:
        return pd.to_numeric(values, errors="raise").astype(float)
    except (ValueError, TypeError):
        raise ValueError(f"column {column!r} must be numeric") from None


def _level_label(value) -> str:
    """A level as text; whole-number floats (codes read as floats) print without '.0'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _groups(frame: pd.DataFrame, by: Sequence[str]):
    """Yield (group key dict, sub-frame); one group for the whole frame when ``by`` is empty."""
    by = list(by)
    if not by:
        yield {}, frame
        return
    for key, sub in frame.groupby(by, dropna=False, sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(by, key, strict=True)), sub


def _narrow(frame: pd.DataFrame, by: Sequence[str], variable: str) -> pd.DataFrame:
    """The grouping columns and one variable: each group's rows are copied for that column
    only (grouping the whole frame once per variable copied every column: variables^2 x rows)."""
    return frame[list(dict.fromkeys([*by, variable]))]


def describe_categorical(
    frame: pd.DataFrame,
    variables: Sequence[str],
    by: Sequence[str] = (),
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Count and share of every observed level of each variable, per group.

    One row per group, variable and level: ``estimate`` is the share of the group's
    non-missing answers, with a Wilson interval; ``count`` the number of pupils with
    that level; ``n`` the non-missing denominator; ``n_missing`` the missing answers.
    Levels are those observed in the whole frame, so a level absent from a group shows
    as a zero count rather than vanishing.
    """
    rows = []
    for variable in variables:
        levels = sorted(frame[variable].dropna().unique().tolist())
        for key, sub in _groups(_narrow(frame, by, variable), by):
            answered = sub[variable].dropna()
            total = len(answered)
            counts = answered.value_counts()
            for level in levels:
                count = int(counts.get(level, 0))
                low, high = wilson_interval(count, total, conf_level)
                rows.append(
                    {
                        **key,
                        "variable": variable,
                        "level": _level_label(level),
                        "estimate": count / total if total else np.nan,
                        "conf_low": low,
                        "conf_high": high,
                        "n": total,
                        "count": count,
                        "n_missing": int(sub[variable].isna().sum()),
                        "method": "proportion",
                        "ci_method": WILSON,
                        "correction": "none",
                    }
                )
    return tidy_frame(rows, [*by, "variable", "level"], ["count", "n_missing"])


def describe_numeric(
    frame: pd.DataFrame,
    variables: Sequence[str],
    by: Sequence[str] = (),
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Mean (t interval) and median (type-7 quartiles, IQR) of numeric variables, per group.

    Two rows per group and variable, told apart by ``measure``: ``mean`` carries the
    standard error and the t interval of ``t.test``; ``median`` carries ``q1``, ``q3``
    and ``iqr`` (quantile type 7) and no interval. ``sd`` is the sample SD (n - 1).
    """
    rows = []
    for variable in variables:
        for key, sub in _groups(_narrow(frame, by, variable), by):
            values = as_numeric(sub[variable], variable).dropna().to_numpy(dtype=float)
            total = len(values)
            n_missing = int(sub[variable].isna().sum())
            sd = float(np.std(values, ddof=1)) if total > 1 else np.nan
            mean = float(np.mean(values)) if total else np.nan
            std_error = sd / np.sqrt(total) if total > 1 else np.nan
            t_quantile = stats.t.ppf(1 - (1 - conf_level) / 2, total - 1) if total > 1 else np.nan
            rows.append(
                {
                    **key,
                    "variable": variable,
                    "measure": "mean",
                    "estimate": mean,
                    "std_error": std_error,
                    "conf_low": mean - t_quantile * std_error,
                    "conf_high": mean + t_quantile * std_error,
                    "n": total,
                    "sd": sd,
                    "n_missing": n_missing,
                    "method": "mean",
                    "ci_method": "student_t",
                    "correction": "none",
                }
            )
            q1, median, q3 = (
                np.quantile(values, [0.25, 0.5, 0.75], method="linear") if total else (np.nan,) * 3
            )
            rows.append(
                {
                    **key,
                    "variable": variable,
                    "measure": "median",
                    "estimate": median,
                    "n": total,
                    "q1": q1,
                    "q3": q3,
                    "iqr": q3 - q1,
                    "n_missing": n_missing,
                    "method": "median_quantile_type7",
                    "ci_method": "none",
                    "correction": "none",
                }
            )
    return tidy_frame(rows, [*by, "variable", "measure"], ["sd", "q1", "q3", "iqr", "n_missing"])


def describe_multiselect(
    frame: pd.DataFrame,
    options: Sequence[str],
    by: Sequence[str] = (),
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Frequency and share of each option of a multi-select question (one 0/1 column each).

    Used for dropout reasons. The denominator of a group is the pupils who answered the
    question, i.e. whose option columns are not all missing; an unticked or missing
    option among those counts as not chosen, as survey tools export unticked boxes
    either way. Shares therefore need not sum to one. Wilson intervals per option.
    """
    rows = []
    for key, sub in _groups(frame, by):
        options_frame = pd.DataFrame({option: as_numeric(sub[option], option) for option in options})
        answered = options_frame.notna().any(axis=1)
        total = int(answered.sum())
        chosen = options_frame[answered].fillna(0)
        invalid = ~chosen.isin([0, 1]).all(axis=None)
        if invalid:
            raise ValueError("multi-select option columns must hold only 0, 1 or missing")
        for option in options:
            count = int(chosen[option].sum())
            low, high = wilson_interval(count, total, conf_level)
            rows.append(
                {
                    **key,
                    "option": option,
                    "estimate": count / total if total else np.nan,
                    "conf_low": low,
                    "conf_high": high,
                    "n": total,
                    "count": count,
                    "method": "multiselect_share_of_respondents",
                    "ci_method": WILSON,
                    "correction": "none",
                }
            )
    return tidy_frame(rows, [*by, "option"], ["count"])

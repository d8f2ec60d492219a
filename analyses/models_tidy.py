"""Tidy rows for model coefficients (``results.models``) and fit measures (``results.model_fit``).

Coefficients are kept on the log-odds scale in ``estimate`` / ``conf_low`` / ``conf_high``
and repeated on the odds-ratio scale (``odds_ratio``, ``or_conf_low``, ``or_conf_high``:
the exponentiated estimate and interval ends, so the OR interval is the exponentiated
log-odds interval). Variance parameters (the school SD, the ICC) are rows too, marked
``effect = "ran_pars"`` with their cluster column in ``group``, and have no odds ratio.

Several estimators of one model share the model name; ``method`` names the estimator,
``headline`` marks the one a report should lead with. ``df`` holds the reference
distribution's degrees of freedom where a t distribution is used (NA for z).

Fit measures use ``measure`` for the name of the quantity (``auc``, ``vif`` ...) because
the tidy contract's ``statistic`` column is the test statistic; ``estimator`` links the
row to the ``method`` of the coefficient rows it describes, ``note`` carries a sentence
where a number needs one (the headline choice, a separation warning). Coefficient rows
carry a ``warning`` too (codes of ``analyses.methods``: separation, few clusters), so a
reader of the coefficients alone sees what the fit table says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analyses.methods import join_warnings
from analyses.tidy import tidy_frame

MODEL_ID_COLUMNS = ("model", "term")
MODEL_EXTRA_COLUMNS = ("odds_ratio", "or_conf_low", "or_conf_high", "df", "effect", "group", "headline", "warning")
FIT_ID_COLUMNS = ("model", "estimator", "measure", "term")
FIT_EXTRA_COLUMNS = ("df", "note")

WALD_Z = "wald_z"


def models_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The coefficient table in the tidy contract, with its extra columns."""
    frame = tidy_frame(rows, MODEL_ID_COLUMNS, MODEL_EXTRA_COLUMNS)
    for column in ("odds_ratio", "or_conf_low", "or_conf_high", "df"):
        frame[column] = frame[column].astype("float64")
    frame["headline"] = frame["headline"].eq(True)
    return frame


def add_model_warning(rows: list[dict[str, Any]], warning: str | None, terms: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Append ``warning`` ('; '-separated) to the rows (only those of ``terms`` if given)."""
    if not warning:
        return rows
    out = []
    for row in rows:
        if terms is None or row.get("term") in terms:
            row = {**row, "warning": join_warnings(row.get("warning"), warning)}
        out.append(row)
    return out


def fit_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The fit-measure table in the tidy contract, with its extra columns."""
    frame = tidy_frame(rows, FIT_ID_COLUMNS, FIT_EXTRA_COLUMNS)
    frame["df"] = frame["df"].astype("float64")
    return frame


def coefficient_rows(
    model: str,
    columns: Sequence[str],
    estimate: np.ndarray,
    std_error: np.ndarray,
    n: int,
    method: str,
    correction: str,
    df: np.ndarray | None = None,
    conf_level: float = 0.95,
    t_method: str = "wald_t_satterthwaite",
) -> list[dict[str, Any]]:
    """One row per coefficient: Wald statistic, two-sided p and interval.

    With ``df`` None the reference distribution is the standard normal (``ci_method``
    ``wald_z``), otherwise Student t with the given per-coefficient degrees of freedom
    (``ci_method`` ``t_method``, which names where the df come from).
    """
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    statistic = estimate / std_error
    if df is None:
        quantile = stats.norm.ppf(0.5 + conf_level / 2)
        p_value = 2 * stats.norm.sf(np.abs(statistic))
        ci_method, dfs = WALD_Z, np.full(len(estimate), np.nan)
    else:
        dfs = np.asarray(df, dtype=float)
        quantile = stats.t.ppf(0.5 + conf_level / 2, dfs)
        p_value = 2 * stats.t.sf(np.abs(statistic), dfs)
        ci_method = t_method
    conf_low, conf_high = estimate - quantile * std_error, estimate + quantile * std_error
    return [
        {
            "model": model,
            "term": term,
            "estimate": estimate[i],
            "std_error": std_error[i],
            "statistic": statistic[i],
            "p_value": p_value[i],
            "conf_low": conf_low[i],
            "conf_high": conf_high[i],
            "n": n,
            "odds_ratio": np.exp(estimate[i]),
            "or_conf_low": np.exp(conf_low[i]),
            "or_conf_high": np.exp(conf_high[i]),
            "df": dfs[i],
            "effect": "fixed",
            "method": method,
            "ci_method": ci_method,
            "correction": correction,
        }
        for i, term in enumerate(columns)
    ]

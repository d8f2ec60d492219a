"""Scoring of Likert scales and their reliability.

A scale is defined by its items, the reverse-keyed items among them, the response
range and the share of items a respondent must answer to get a score (the codebooks'
``scales`` and items' ``scale`` / ``reverse`` keys).

Method choices, named in the rows:

- scoring: reverse-keyed items become min + max - x; the score is the mean of the
  answered items when at least ``min_answered`` of the items are answered, otherwise
  missing (:func:`scoring_rule` says it in words). With no missing items this is
  psych's ``scoreItems(keys, totals = FALSE, impute = "none")`` score.
- reliability is computed on respondents who answered every item (listwise deletion,
  as SPSS RELIABILITY does); psych's default pairwise covariances would use more
  data but give matrices that need not be consistent.
- Cronbach's alpha raw from the item covariance matrix and standardised from the
  correlation matrix, as ``psych::alpha``; interval by Feldt's F distribution
  (Feldt, Woodruff & Salih 1987; ``psych::alpha.ci``, reported by ``psych::alpha`` as
  "Feldt"), applied to both; ``std_error`` of the raw alpha is Duhachek & Iacobucci's
  (2004) asymptotic SE (``psych::alpha``'s ``ase``).
- McDonald's omega total from a one-factor maximum-likelihood factor analysis of the
  correlation matrix (R's ``factanal`` / ``psych::fa(nfactors = 1, fm = "ml")``):
  omega = (sum l)^2 / ((sum l)^2 + sum(1 - l^2)), the model-implied total variance in
  the denominator. It is omega total of standardised items; for one factor omega
  hierarchical is not defined (``psych::omega`` needs at least 2 group factors).
- item-total correlation corrected for overlap (the item against the sum of the other
  items, psych's ``r.drop``) and raw alpha if the item is deleted.
- edge cases carry a ``warning`` code: an item constant among the complete respondents
  is left out of every reliability figure (``constant_item``, as psych drops it); an
  item with a negative corrected item-total correlation that is not declared reverse-
  keyed is flagged ``negative_item_total`` (and so are the scale rows); with two items
  alpha-if-deleted is NaN with ``two_items``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analyses.descriptives import as_numeric
from analyses.methods import join_warnings
from analyses.tidy import tidy_frame

#: Lower bound of a uniqueness in the ML factor analysis, factanal's default.
UNIQUENESS_LOWER = 0.005
#: Warning codes (analyses.methods): psych::alpha drops a constant item with a warning and
#: warns of items "negatively correlated with the total scale"; alpha without an item is
#: undefined for two items.
CONSTANT_ITEM = "constant_item"
NEGATIVE_ITEM_TOTAL = "negative_item_total"
TWO_ITEMS = "two_items"
NOT_ESTIMABLE = "not_estimable"


@dataclass(frozen=True)
class ScaleDefinition:
    """A Likert scale: its items, reverse-keyed items, response range and scoring rule."""

    name: str
    items: tuple[str, ...]
    min_value: float
    max_value: float
    reverse_keyed: tuple[str, ...] = field(default=())
    min_answered: float = 0.5

    def __post_init__(self) -> None:
        if len(self.items) < 2:
            raise ValueError(f"scale {self.name!r} needs at least 2 items")
        if not set(self.reverse_keyed) <= set(self.items):
            raise ValueError(f"scale {self.name!r}: reverse-keyed items must be among its items")
        if not 0 < self.min_answered <= 1:
            raise ValueError(f"scale {self.name!r}: min_answered is a share in (0, 1]")
        if self.min_value >= self.max_value:
            raise ValueError(f"scale {self.name!r}: min_value must be below max_value")

    @property
    def min_items(self) -> int:
        """Smallest number of answered items that still gives a score."""
        return math.ceil(self.min_answered * len(self.items) - 1e-9)


def scoring_rule(scale: ScaleDefinition) -> str:
    """The scoring rule in words, for the output's method column and the reports."""
    return (
        f"mean of answered items, reverse-keyed as {scale.min_value:g}+{scale.max_value:g}-x; "
        f"missing unless at least {scale.min_answered:.0%} of {len(scale.items)} items "
        f"({scale.min_items}) answered"
    )


def keyed_items(frame: pd.DataFrame, scale: ScaleDefinition) -> pd.DataFrame:
    """The scale's items as floats with reverse-keyed items reversed; range-checked."""
    items = pd.DataFrame({item: as_numeric(frame[item], item) for item in scale.items}, index=frame.index)
    for item in scale.items:
        values = items[item].dropna()
        if ((values < scale.min_value) | (values > scale.max_value)).any():
            raise ValueError(f"scale {scale.name!r}: item {item!r} has answers outside its response range")
    for item in scale.reverse_keyed:
        items[item] = scale.min_value + scale.max_value - items[item]
    return items


def score_scale(frame: pd.DataFrame, scale: ScaleDefinition) -> pd.DataFrame:
    """Per-respondent scores: column ``<name>`` (the score) and ``<name>_answered``.

    The rule is :func:`scoring_rule`; the index is the frame's, so scores join back.
    """
    items = keyed_items(frame, scale)
    answered = items.notna().sum(axis=1)
    score = items.mean(axis=1, skipna=True).where(answered >= scale.min_items)
    return pd.DataFrame({scale.name: score, f"{scale.name}_answered": answered.astype("Int64")}, index=frame.index)


def cronbach_alpha(covariance: np.ndarray) -> float:
    """Cronbach's alpha of a covariance (raw) or correlation (standardised) matrix."""
    k = covariance.shape[0]
    return float(k / (k - 1) * (1 - np.trace(covariance) / covariance.sum()))


def feldt_interval(alpha: float, n: int, k: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Feldt's interval for alpha from n respondents and k items, as ``psych::alpha.ci``."""
    tail = (1 - conf_level) / 2
    df1, df2 = n - 1, (n - 1) * (k - 1)
    return (
        float(1 - (1 - alpha) * stats.f.ppf(1 - tail, df1, df2)),
        float(1 - (1 - alpha) * stats.f.ppf(tail, df1, df2)),
    )


def duhachek_standard_error(covariance: np.ndarray, n: int) -> float:
    """Asymptotic SE of raw alpha (Duhachek & Iacobucci 2004), psych::alpha's ``ase``."""
    k = covariance.shape[0]
    total = covariance.sum()
    trace = np.trace(covariance)
    squared = covariance @ covariance
    q = (2 * k**2 / ((k - 1) ** 2 * total**3)) * (
        total * (np.trace(squared) + trace**2) - 2 * trace * squared.sum()
    )
    return float(np.sqrt(q / n))


def one_factor_ml_loadings(correlation: np.ndarray) -> np.ndarray:
    """Loadings of a one-factor maximum-likelihood factor analysis of a correlation matrix.

    The algorithm of R's ``factanal``: the discrepancy is minimised over the
    uniquenesses (bounded below by 0.005) by L-BFGS-B with factanal's analytic
    gradient, the loadings following from the leading eigenvector of
    Psi^-1/2 R Psi^-1/2. Tolerances are tight so the result is the optimum itself,
    not an optimiser's stopping point; the sign makes the loadings sum positive.
    """
    p = correlation.shape[0]

    def loadings_for(psi: np.ndarray) -> np.ndarray:
        scale = 1 / np.sqrt(psi)
        values, vectors = np.linalg.eigh(correlation * np.outer(scale, scale))
        return np.sqrt(psi) * vectors[:, -1] * np.sqrt(max(values[-1] - 1, 0.0))

    def discrepancy(psi: np.ndarray) -> float:
        scale = 1 / np.sqrt(psi)
        values = np.linalg.eigvalsh(correlation * np.outer(scale, scale))[:-1]
        return -(np.sum(np.log(values) - values) - 1 + p)

    def gradient(psi: np.ndarray) -> np.ndarray:
        load = loadings_for(psi)
        return (load**2 + psi - np.diag(correlation)) / psi**2

    start = (1 - 0.5 / p) / np.diag(np.linalg.inv(correlation))
    result = optimize.minimize(
        discrepancy,
        start,
        jac=gradient,
        method="L-BFGS-B",
        bounds=[(UNIQUENESS_LOWER, 1.0)] * p,
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000},
    )
    loadings = loadings_for(result.x)
    return loadings if loadings.sum() >= 0 else -loadings


def omega_total(loadings: np.ndarray) -> float:
    """McDonald's omega total of standardised items from one-factor loadings."""
    common = loadings.sum() ** 2
    return float(common / (common + np.sum(1 - loadings**2)))


def scale_reliability(frame: pd.DataFrame, scale: ScaleDefinition, conf_level: float = 0.95) -> pd.DataFrame:
    """Reliability of one scale as tidy rows (``scale``, ``statistic``, ``item``, estimates).

    Scale-level rows (``item`` empty): ``alpha_raw``, ``alpha_standardised``,
    ``omega_total``, ``score_mean`` (mean of the scores under the scoring rule, ``sd``
    beside it). Item rows: ``item_total_corrected`` and ``alpha_if_deleted``. ``n`` is
    the listwise-complete count for the reliability rows and the scored count for
    ``score_mean``.
    """
    keyed = keyed_items(frame, scale)
    complete = keyed.dropna()
    n = len(complete)
    variances = complete.var(ddof=1).to_numpy() if n > 1 else np.zeros(len(scale.items))
    constant = [item for item, v in zip(scale.items, variances) if not v > 0]
    used = [item for item in scale.items if item not in constant]
    k = len(used)
    values = complete[used].to_numpy()
    scale_warning = CONSTANT_ITEM if constant and n > 1 else None
    listwise = "listwise_complete_items"
    common = {"scale": scale.name, "n": n, "correction": "none"}
    if k < 2 or n < 2:
        reason = "fewer than 2 items that vary" if k < 2 else "fewer than 2 complete respondents"
        rows = [{**common, "statistic_name": name, "estimate": np.nan, "method": f"not_estimable: {reason}",
                 "ci_method": "none", "warning": join_warnings(scale_warning, NOT_ESTIMABLE)}
                for name in ("alpha_raw", "alpha_standardised", "omega_total")]
    else:
        rows, item_rows = _reliability_rows(values, used, scale, n, conf_level, common, listwise)
        negative = [r["item"] for r in item_rows
                    if r["statistic_name"] == "item_total_corrected" and r["estimate"] < 0
                    and r["item"] not in scale.reverse_keyed]
        if negative:
            scale_warning = join_warnings(scale_warning, NEGATIVE_ITEM_TOTAL)
            item_rows = [add_row_warning(r, NEGATIVE_ITEM_TOTAL) if r["item"] in negative else r for r in item_rows]
        rows = [add_row_warning(r, scale_warning) for r in rows] + item_rows
    for item in constant:
        for name in ("item_total_corrected", "alpha_if_deleted"):
            rows.append({**common, "statistic_name": name, "item": item, "estimate": np.nan,
                         "method": f"not_estimable: item constant among complete respondents ({listwise})",
                         "ci_method": "none", "warning": CONSTANT_ITEM})
    scores = score_scale(frame, scale)[scale.name].dropna()
    rows.append(
        {
            **common,
            "statistic_name": "score_mean",
            "estimate": float(scores.mean()) if len(scores) else np.nan,
            "n": len(scores),
            "sd": float(scores.std(ddof=1)) if len(scores) > 1 else np.nan,
            "method": scoring_rule(scale),
            "ci_method": "none",
        }
    )
    return tidy_frame(rows, ["scale", "statistic_name", "item"], ["sd", "warning"])


def add_row_warning(row: dict, warning: str | None) -> dict:
    """The row with ``warning`` appended to its warnings."""
    return {**row, "warning": join_warnings(row.get("warning"), warning)} if warning else row


def _reliability_rows(values, used, scale, n, conf_level, common, listwise) -> tuple[list[dict], list[dict]]:
    """Scale-level rows (alphas, omega) and item rows of the items that vary."""
    k = len(used)
    covariance = np.cov(values, rowvar=False, ddof=1)
    correlation = np.corrcoef(values, rowvar=False)
    estimable = n > k and bool(np.isfinite(correlation).all()) and bool(np.linalg.eigvalsh(correlation).min() > 1e-10)
    alpha_raw = cronbach_alpha(covariance)
    alpha_std = cronbach_alpha(correlation)
    raw_low, raw_high = feldt_interval(alpha_raw, n, k, conf_level)
    std_low, std_high = feldt_interval(alpha_std, n, k, conf_level)
    rows = [
        {
            **common,
            "statistic_name": "alpha_raw",
            "estimate": alpha_raw,
            "std_error": duhachek_standard_error(covariance, n),
            "conf_low": raw_low,
            "conf_high": raw_high,
            "method": f"cronbach_alpha_covariance_{listwise}",
            "ci_method": "feldt_f; std_error duhachek_asymptotic",
        },
        {
            **common,
            "statistic_name": "alpha_standardised",
            "estimate": alpha_std,
            "conf_low": std_low,
            "conf_high": std_high,
            "method": f"cronbach_alpha_correlation_{listwise}",
            "ci_method": "feldt_f",
        },
        {
            **common,
            "statistic_name": "omega_total",
            "estimate": omega_total(one_factor_ml_loadings(correlation)) if estimable else np.nan,
            "method": f"mcdonald_omega_total_one_factor_ml_standardised_model_implied_{listwise}"
            + ("" if estimable else ": not estimable, item correlation matrix not positive definite"),
            "ci_method": "none",
        },
    ]
    item_rows = []
    total = values.sum(axis=1)
    for index, item in enumerate(used):
        rest = np.delete(np.arange(k), index)
        item_rows.append(
            {
                **common,
                "statistic_name": "item_total_corrected",
                "item": item,
                "estimate": float(np.corrcoef(values[:, index], total - values[:, index])[0, 1]),
                "method": f"pearson_item_vs_sum_of_other_items_{listwise}",
                "ci_method": "none",
            }
        )
        # alpha of one remaining item is undefined (k / (k - 1) with k = 1): psych gives none either
        item_rows.append(
            {
                **common,
                "statistic_name": "alpha_if_deleted",
                "item": item,
                "estimate": cronbach_alpha(covariance[np.ix_(rest, rest)]) if k > 2 else np.nan,
                "method": f"cronbach_alpha_covariance_{listwise}",
                "ci_method": "none",
                "warning": None if k > 2 else TWO_ITEMS,
            }
        )
    return rows, item_rows

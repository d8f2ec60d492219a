"""Propensity-score matching of comparison pupils to pilot pupils, and balance diagnostics.

The matching reproduces MatchIt 4.5's default ``matchit(method = "nearest")``: a
logistic-regression propensity score; treated units taken in decreasing order of the
distance (``m.order = "largest"``); each gets the nearest still-unused control (1:1,
without replacement; the first in data order on a tie); with a caliper, a treated unit
whose nearest available control is farther than caliper x SD(distance of all units) stays
unmatched (``std.caliper = TRUE``). The distance is the propensity score itself, as
MatchIt's default, or its logit (``link = "linear.logit"``), Austin's (2011) recommended
scale for a 0.2-SD caliper.

Balance is the ATT convention of MatchIt's ``summary``: standardised mean difference
(mean treated - mean control) / SD of the treated in the full sample (for a binary
covariate sqrt(p(1 - p)) of the treated), the same denominator before and after matching
so that only the means move; and the variance ratio var(treated) / var(control) for
non-binary covariates. Categorical covariates enter with one dummy per level, as there.

Tested against MatchIt 4.5.1 on ``lalonde`` (tests/reference/evaluation.R): the same
scores and balance table, and the same matched pairs as MatchIt's distance-matrix
matcher. MatchIt's default vector matcher (nn_matchC_vec) differs on purpose: it compares
the two neighbours' gaps with C's integer ``abs``, so for gaps below 1 it takes the
lower-score neighbour even when the higher one is nearer, and its caliper check
truncates the gap; we take the truly nearest control and apply the caliper exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analyses.tidy import tidy_frame


def covariate_matrix(frame: pd.DataFrame, covariates: Sequence[str], drop_first: bool) -> pd.DataFrame:
    """Numeric covariates as they are, text/categorical ones as 0/1 dummies per level."""
    columns = frame[list(covariates)]
    categorical = [c for c in covariates if not pd.api.types.is_numeric_dtype(columns[c])]
    encoded = pd.get_dummies(columns, columns=categorical, drop_first=drop_first, dtype=float)
    return encoded.astype(float)


def design_matrix(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Covariates with an intercept, categorical ones treatment-coded (R's model.matrix)."""
    return sm.add_constant(covariate_matrix(frame, covariates, drop_first=True), has_constant="add")


def propensity_scores(frame: pd.DataFrame, treatment: str, covariates: Sequence[str]) -> np.ndarray:
    """Fitted P(treated | covariates) from a logistic regression (R ``glm(binomial)``)."""
    model = sm.GLM(frame[treatment].astype(float).to_numpy(), design_matrix(frame, covariates),
                   family=sm.families.Binomial())
    return np.asarray(model.fit(tol=1e-12).fittedvalues)


def propensity_match(
    frame: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    caliper: float | None = None,
    link: str = "logit",
) -> pd.DataFrame:
    """Match each treated row to one control; return the frame with matching columns.

    ``treatment`` is a 0/1 (or boolean) column. ``link`` 'logit' matches on the
    propensity score (MatchIt's default ``distance = "glm"``), 'linear.logit' on its
    logit. Adds ``propensity_score``, ``distance``, ``subclass`` (the pair number, NA for
    unmatched rows; numbered in matching order) and ``matched`` (bool). Rows keep their
    index and order.
    """
    if link not in ("logit", "linear.logit"):
        raise ValueError("link must be 'logit' or 'linear.logit'")
    scores = propensity_scores(frame, treatment, covariates)
    distance = np.log(scores / (1.0 - scores)) if link == "linear.logit" else scores
    treated = frame[treatment].astype(float).to_numpy() == 1
    limit = caliper * distance.std(ddof=1) if caliper is not None else np.inf
    treated_positions = np.flatnonzero(treated)
    order = treated_positions[np.argsort(-distance[treated_positions], kind="stable")]
    available = ~treated
    subclass = np.full(len(frame), np.nan)
    pair = 0
    for position in order:
        candidates = np.flatnonzero(available)
        if candidates.size == 0:
            break
        gaps = np.abs(distance[candidates] - distance[position])
        best = int(np.argmin(gaps))
        if gaps[best] > limit:
            continue
        pair += 1
        subclass[[position, candidates[best]]] = pair
        available[candidates[best]] = False
    result = frame.copy()
    result["propensity_score"] = scores
    result["distance"] = distance
    result["subclass"] = pd.array(np.where(np.isnan(subclass), None, subclass), dtype="Int64")
    result["matched"] = ~np.isnan(subclass)
    return result


def balance_table(matched: pd.DataFrame, treatment: str, covariates: Sequence[str]) -> pd.DataFrame:
    """SMD and variance ratio of each covariate before ('all') and after ('matched') matching.

    ``matched`` is the output of ``propensity_match``. Tidy rows: ``covariate`` (the
    ``distance`` first, then each covariate; categorical ones as ``covariate_level``),
    ``sample``; ``estimate`` = SMD over the treated SD of the full sample; ``n`` the units
    in that sample; extra ``mean_treated``, ``mean_control``, ``variance_ratio``
    (NA for binary covariates, as MatchIt shows none).
    """
    columns = covariate_matrix(matched, covariates, drop_first=False)
    columns.insert(0, "distance", matched["distance"].to_numpy(float))
    treated = matched[treatment].astype(float).to_numpy() == 1
    rows = []
    for column in columns.columns:
        values = columns[column].to_numpy()
        binary = bool(np.isin(values, (0.0, 1.0)).all())
        share = values[treated].mean()
        scale = np.sqrt(share * (1.0 - share)) if binary else values[treated].std(ddof=1)
        for sample, keep in (("all", np.ones(len(values), bool)), ("matched", matched["matched"].to_numpy())):
            t, c = values[treated & keep], values[~treated & keep]
            rows.append({"covariate": column, "sample": sample,
                         "estimate": (t.mean() - c.mean()) / scale if scale > 0 else np.nan,
                         "n": int(keep.sum()), "mean_treated": t.mean(), "mean_control": c.mean(),
                         "variance_ratio": np.nan if binary else t.var(ddof=1) / c.var(ddof=1),
                         "method": "standardised mean difference, treated - control",
                         "ci_method": "",
                         "correction": "denominator: SD of treated in the full sample (ATT)"})
    return tidy_frame(rows, ["covariate", "sample"], ["mean_treated", "mean_control", "variance_ratio"])

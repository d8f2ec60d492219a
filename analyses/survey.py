"""Design-based estimation for a study drawn with weights, strata or clusters.

The numbers are those of R's ``survey`` package (Lumley) for a ``svydesign(ids = ~cluster,
strata = ~strata, weights = ~weights, fpc = ~fpc)`` design, checked to 1e-6 in
tests/test_survey.py against tests/reference/survey.R:

* :func:`survey_means` (``svymean``): weighted means of numeric columns and weighted
  proportions of each level of a categorical column; :func:`survey_totals`
  (``svytotal``) the weighted totals. Standard errors by Taylor linearisation: the
  influence values of the estimator are summed per primary sampling unit (PSU), centred
  within each stratum and their between-PSU variance taken "with replacement"
  (n_h / (n_h - 1), times 1 - n_h / N_h when a finite population correction is given).
  Intervals are Wald intervals with the normal quantile (``confint`` of a ``svystat``);
  for proportions ``proportion_ci="logit"`` gives ``svyciprop``'s default (logit) interval.
  Missing values are handled as ``na.rm = TRUE`` does: the row stays in the design with
  no weight in the estimate (a domain), so the PSU and stratum structure is kept.
  With ``by`` each group is a domain of the whole design (``svyby``).
* :func:`survey_logistic` (``svyglm(family = quasibinomial)``): pseudo-maximum-likelihood
  coefficients with the linearisation (sandwich) covariance; t tests and t intervals on
  the design's residual degrees of freedom, (PSUs - strata) + 1 - coefficients, the df
  of ``summary.svyglm``.
* :func:`rao_scott` (``svychisq``, ``statistic = "F"``): Pearson's X^2 of the weighted
  table rescaled to the sample size, divided by the mean generalised design effect, on an
  F distribution with d and d * (PSUs - strata) degrees of freedom, d the Satterthwaite
  df of Rao & Scott's (1984) second-order correction.

A stratum with a single PSU has no variance estimate: the functions refuse it with a
message naming the stratum column (R's default ``survey.lonely.psu = "fail"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analyses.models_design import model_data
from analyses.models_tidy import coefficient_rows, models_frame
from analyses.tidy import tidy_frame

METHOD_MEAN = "survey_weighted_mean"
METHOD_PROPORTION = "survey_weighted_proportion"
METHOD_TOTAL = "survey_weighted_total"
METHOD_LOGISTIC = "survey_logistic_pseudo_ml"
METHOD_RAO_SCOTT = "rao_scott_chisq_F"
SE_LINEARISATION = "taylor_linearisation_with_replacement"
SE_LINEARISATION_FPC = "taylor_linearisation_fpc"
CI_WALD_Z = "wald_z"
CI_WALD_T = "wald_t_design_df"
CI_LOGIT_T = "logit_t_design_df"

SURVEY_ID_COLUMNS = ("variable", "level", "by", "group")
SURVEY_EXTRA_COLUMNS = ("sum_weights", "df", "ddf")


@dataclass(frozen=True)
class SurveyDesign:
    """One row per unit: its weight, stratum code, PSU code and sampling fraction of its stratum."""

    weights: np.ndarray
    strata: np.ndarray
    psu: np.ndarray
    fraction: np.ndarray | None
    has_clusters: bool

    @property
    def n_psu(self) -> int:
        return len(np.unique(self.psu))

    @property
    def n_strata(self) -> int:
        return len(np.unique(self.strata))

    @property
    def degrees_of_freedom(self) -> int:
        """R's ``degf``: PSUs minus strata."""
        return self.n_psu - self.n_strata

    @property
    def se_method(self) -> str:
        return SE_LINEARISATION_FPC if self.fraction is not None else SE_LINEARISATION


def survey_design(
    frame: pd.DataFrame,
    weights: str | None = None,
    strata: str | None = None,
    cluster: str | None = None,
    fpc: str | None = None,
) -> SurveyDesign:
    """The design of ``frame`` from its column names (each optional, as in ``svydesign``).

    Without ``weights`` every unit weighs 1; without ``cluster`` each unit is its own PSU;
    ``fpc`` holds the stratum's population count of PSUs (> 1) or the sampling fraction
    (<= 1), constant within a stratum. Clusters are nested in strata (PSU codes are made
    unique within each stratum, R's ``nest = TRUE``). Weights, strata, clusters and fpc
    must not be missing.
    """
    n = len(frame)
    for role, column in (("weights", weights), ("strata", strata), ("cluster", cluster), ("fpc", fpc)):
        if column is None:
            continue
        if column not in frame.columns:
            raise KeyError(f"survey {role} column {column!r} is not in the data")
        if frame[column].isna().any():
            raise ValueError(f"survey {role} column {column!r} has missing values")
    w = np.ones(n) if weights is None else frame[weights].to_numpy(dtype=float)
    if (w < 0).any():
        raise ValueError(f"survey weights column {weights!r} has negative weights")
    stratum = np.zeros(n, dtype=np.intp) if strata is None else pd.factorize(frame[strata], sort=True)[0]
    if cluster is None:
        psu = np.arange(n, dtype=np.intp)
    else:
        keys = pd.MultiIndex.from_arrays([stratum, frame[cluster].to_numpy()])
        psu = pd.factorize(keys, sort=True)[0]
    fraction = None
    if fpc is not None:
        values = frame[fpc].to_numpy(dtype=float)
        psus_in_stratum = pd.Series(psu).groupby(stratum).transform("nunique").to_numpy(dtype=float)
        fraction = np.where(values > 1, psus_in_stratum / values, values)
        if pd.Series(fraction).groupby(stratum).nunique().max() > 1:
            raise ValueError(f"survey fpc column {fpc!r} varies within a stratum")
        if ((fraction < 0) | (fraction > 1)).any():
            raise ValueError(f"survey fpc column {fpc!r} gives a sampling fraction outside 0..1")
    design = SurveyDesign(w, stratum, psu, fraction, cluster is not None)
    lonely = pd.Series(psu).groupby(stratum).nunique()
    if (lonely < 2).any():
        raise ValueError(
            f"a stratum of {strata!r} has a single PSU: no design-based variance (as R's survey.lonely.psu = 'fail')"
        )
    return design


def design_covariance(design: SurveyDesign, scores: np.ndarray) -> np.ndarray:
    """Linearisation covariance of estimators whose weighted influence values are ``scores``.

    ``scores`` is n x k (already multiplied by the weights); R's ``svyrecvar`` for one stage.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        scores = scores[:, None]
    k = scores.shape[1]
    totals = pd.DataFrame(scores).groupby(design.psu).sum()
    psu_stratum = pd.Series(design.strata).groupby(design.psu).first().loc[totals.index].to_numpy()
    covariance = np.zeros((k, k))
    for h in np.unique(psu_stratum):
        block = totals.to_numpy()[psu_stratum == h]
        n_h = block.shape[0]
        centred = block - block.mean(axis=0)
        factor = n_h / (n_h - 1)
        if design.fraction is not None:
            factor *= 1.0 - design.fraction[design.strata == h][0]
        covariance += factor * centred.T @ centred
    return covariance


def _is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    )


def _levels(series: pd.Series) -> list:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    return sorted(series.dropna().unique())


def _columns(series: pd.Series, name: str) -> tuple[list, np.ndarray, np.ndarray]:
    """(level labels, n x k values with 0 where missing, n-vector of 'present')."""
    present = series.notna().to_numpy()
    if _is_categorical(series):
        levels = _levels(series)
        values = np.column_stack([(series == level).to_numpy(dtype=float) for level in levels])
        return [str(level) for level in levels], values, present
    values = series.to_numpy(dtype=float, na_value=np.nan)
    return [None], np.where(present, values, 0.0)[:, None], present


def _domains(frame: pd.DataFrame, by: str | None):
    if by is None:
        yield None, np.ones(len(frame), dtype=bool)
        return
    for level in _levels(frame[by]):
        yield str(level), (frame[by] == level).to_numpy()


def _domain_df(design: SurveyDesign, inside: np.ndarray) -> int:
    """``degf`` of the design restricted to ``inside`` (R's subset): its PSUs minus its strata."""
    used = inside & (design.weights > 0)
    return len(np.unique(design.psu[used])) - len(np.unique(design.strata[used]))


def _logit_interval(p: float, se: float, df: int, conf_level: float) -> tuple[float, float]:
    """``svyciprop(method = "logit")``: expit(logit p -/+ t_df SE(p) / (p (1 - p)))."""
    if not 0 < p < 1 or df < 1:
        return np.nan, np.nan
    half = stats.t.ppf(0.5 + conf_level / 2, df) * se / (p * (1 - p))
    centre = np.log(p / (1 - p))
    return float(1 / (1 + np.exp(-(centre - half)))), float(1 / (1 + np.exp(-(centre + half))))


def _estimate_rows(
    frame: pd.DataFrame, variables: Sequence[str], design: SurveyDesign, by: str | None,
    kind: str, conf_level: float, proportion_ci: str = "wald",
) -> list[dict]:
    if proportion_ci not in ("wald", "logit"):
        raise ValueError("proportion_ci is 'wald' or 'logit'")
    quantile = stats.norm.ppf(0.5 + conf_level / 2)
    rows = []
    for variable in variables:
        if variable not in frame.columns:
            raise KeyError(f"column {variable!r} is not in the data")
        levels, values, present = _columns(frame[variable], variable)
        categorical = levels != [None]
        for group, domain in _domains(frame, by):
            inside = present & domain
            w = np.where(inside, design.weights, 0.0)
            sum_w = w.sum()
            if sum_w <= 0:
                continue
            if kind == "mean":
                estimate = (w[:, None] * values).sum(axis=0) / sum_w
                scores = w[:, None] * (values - estimate) / sum_w
                method = METHOD_PROPORTION if categorical else METHOD_MEAN
            else:
                estimate = (w[:, None] * values).sum(axis=0)
                scores = w[:, None] * values
                method = METHOD_TOTAL
            se = np.sqrt(np.diag(design_covariance(design, scores)))
            logit = kind == "mean" and categorical and proportion_ci == "logit"
            df = _domain_df(design, inside) if logit else np.nan
            for j, level in enumerate(levels):
                if logit:
                    low, high = _logit_interval(estimate[j], se[j], df, conf_level)
                else:
                    low, high = estimate[j] - quantile * se[j], estimate[j] + quantile * se[j]
                rows.append({
                    "variable": variable, "level": level, "by": by, "group": group,
                    "estimate": estimate[j], "std_error": se[j], "conf_low": low, "conf_high": high,
                    "n": int(inside.sum()), "sum_weights": sum_w, "df": df,
                    "method": method, "ci_method": CI_LOGIT_T if logit else CI_WALD_Z,
                    "correction": design.se_method,
                })
    return rows


def _design_for(frame, weights, strata, cluster, fpc) -> SurveyDesign:
    return survey_design(frame, weights=weights, strata=strata, cluster=cluster, fpc=fpc)


def survey_frame(rows) -> pd.DataFrame:
    frame = tidy_frame(rows, SURVEY_ID_COLUMNS, SURVEY_EXTRA_COLUMNS)
    for column in SURVEY_EXTRA_COLUMNS:
        frame[column] = frame[column].astype("float64")
    return frame


def survey_means(
    frame: pd.DataFrame, variables: Sequence[str], *, weights: str | None = None, strata: str | None = None,
    cluster: str | None = None, fpc: str | None = None, by: str | None = None, conf_level: float = 0.95,
    proportion_ci: str = "wald",
) -> pd.DataFrame:
    """Design-based means (numeric columns) and proportions (each level of a categorical column).

    ``n`` is the number of sampled units in the estimate (not missing, in the group).
    ``proportion_ci="logit"`` gives proportions ``svyciprop``'s default interval instead of
    the Wald one: symmetric on the logit scale with a t quantile on the design df of the
    domain (``df``), so it stays inside 0..1 (NaN limits for a proportion of 0 or 1).
    """
    design = _design_for(frame, weights, strata, cluster, fpc)
    return survey_frame(_estimate_rows(frame, variables, design, by, "mean", conf_level, proportion_ci))


def survey_totals(
    frame: pd.DataFrame, variables: Sequence[str], *, weights: str | None = None, strata: str | None = None,
    cluster: str | None = None, fpc: str | None = None, by: str | None = None, conf_level: float = 0.95,
) -> pd.DataFrame:
    """Design-based population totals (numeric columns; counts of each level of a categorical one)."""
    design = _design_for(frame, weights, strata, cluster, fpc)
    return survey_frame(_estimate_rows(frame, variables, design, by, "total", conf_level))


def _weighted_logistic(y: np.ndarray, X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted logistic score equations by Newton-Raphson: (beta, fitted, inverse of X'WVX)."""
    beta = np.zeros(X.shape[1])
    for _ in range(100):
        mu = 1.0 / (1.0 + np.exp(-(X @ beta)))
        information = X.T @ (X * (w * mu * (1 - mu))[:, None])
        step = np.linalg.solve(information, X.T @ (w * (y - mu)))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    mu = 1.0 / (1.0 + np.exp(-(X @ beta)))
    information = X.T @ (X * (w * mu * (1 - mu))[:, None])
    return beta, mu, np.linalg.inv(information)


def survey_logistic(
    frame: pd.DataFrame, outcome: str, terms: Sequence[str], *, weights: str | None = None,
    strata: str | None = None, cluster: str | None = None, fpc: str | None = None,
    model: str = "model", conf_level: float = 0.95,
) -> pd.DataFrame:
    """Design-based logistic regression (``svyglm(family = quasibinomial)``) as tidy model rows.

    Terms are coded as in :mod:`analyses.models_design` (``variable:level`` dummies). Rows
    with a missing outcome or term stay in the design with zero weight (R subsets the
    design the same way), so the design's df counts every PSU. Odds ratios and their
    intervals are the exponentiated log-odds rows.
    """
    design = _design_for(frame, weights, strata, cluster, fpc)
    wanted = [outcome, *terms]
    complete = frame[wanted].notna().all(axis=1).to_numpy()
    data = model_data(frame.loc[complete], outcome, list(terms))
    w = design.weights[complete]
    beta, mu, bread = _weighted_logistic(data.y, data.X, w)
    scores = np.zeros((len(frame), len(beta)))
    scores[complete] = (data.X * (w * (data.y - mu))[:, None]) @ bread
    vcov = design_covariance(design, scores)
    used = complete & (design.weights > 0)
    design_df = len(np.unique(design.psu[used])) - len(np.unique(design.strata[used]))
    df = design_df + 1 - len(beta)
    rows = coefficient_rows(
        model, data.columns, beta, np.sqrt(np.diag(vcov)), data.n, METHOD_LOGISTIC, design.se_method,
        df=np.full(len(beta), float(df)), conf_level=conf_level, t_method=CI_WALD_T,
    )
    return models_frame(rows)


def rao_scott(
    frame: pd.DataFrame, row: str, column: str, *, weights: str | None = None, strata: str | None = None,
    cluster: str | None = None, fpc: str | None = None,
) -> pd.DataFrame:
    """Rao-Scott second-order corrected Pearson test of independence (``svychisq``, F).

    One tidy row: ``statistic`` is F, ``df`` the numerator df, ``ddf`` the denominator df
    (``df`` times the design df, PSUs - strata), ``estimate`` Pearson's
    X^2 of the weighted table scaled to the sample size. Rows missing either answer stay
    in the design without weight.
    """
    design = _design_for(frame, weights, strata, cluster, fpc)
    r_levels, c_levels = _levels(frame[row]), _levels(frame[column])
    nr, nc = len(r_levels), len(c_levels)
    if nr < 2 or nc < 2:
        raise ValueError(f"{row!r} and {column!r} need two levels each for a test of independence")
    present = frame[[row, column]].notna().all(axis=1).to_numpy()
    # cells in R's interaction(row, column) order: the row factor varies fastest
    cells = np.column_stack([
        ((frame[row] == r) & (frame[column] == c)).to_numpy(dtype=float) for c in c_levels for r in r_levels
    ])
    n_total = len(frame)
    w = np.where(present, design.weights, 0.0)
    mean = (w[:, None] * cells).sum(axis=0) / w.sum()
    V = design_covariance(design, w[:, None] * (cells - mean) / w.sum())
    grid_r = np.tile(np.arange(nr), nc)
    grid_c = np.repeat(np.arange(nc), nr)
    X1 = np.column_stack([np.ones(nr * nc)] + [(grid_r == i).astype(float) for i in range(1, nr)]
                         + [(grid_c == j).astype(float) for j in range(1, nc)])
    interactions = np.column_stack([((grid_r == i) & (grid_c == j)).astype(float)
                                    for j in range(1, nc) for i in range(1, nr)])
    C = interactions - X1 @ np.linalg.lstsq(X1, interactions, rcond=None)[0]
    inverse_d = np.diag(np.where(mean == 0, 0.0, 1.0 / np.where(mean == 0, 1.0, mean)))
    denominator = C.T @ (inverse_d / n_total) @ C
    numerator = C.T @ inverse_d @ V @ inverse_d @ C
    delta = np.linalg.solve(denominator, numerator)
    trace = np.trace(delta)
    d0 = trace**2 / np.trace(delta @ delta)
    table = (mean * n_total).reshape(nc, nr).T
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    pearson = float(((table - expected) ** 2 / expected).sum())
    f_statistic = pearson / trace
    ddf = d0 * design.degrees_of_freedom
    p = float(stats.f.sf(f_statistic, d0, ddf))
    out = {
        "variable": row, "level": None, "by": column, "group": None,
        "estimate": pearson, "statistic": f_statistic, "p_value": p, "n": int(present.sum()),
        "sum_weights": float(w.sum()), "df": d0, "ddf": ddf,
        "method": METHOD_RAO_SCOTT, "ci_method": None, "correction": "rao_scott_second_order",
    }
    return survey_frame([out])

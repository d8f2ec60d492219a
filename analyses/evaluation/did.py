"""Pilot versus comparison: difference in differences on linked pupils.

The DiD of an outcome is the coefficient of the pilot indicator in the change-score
regression (post - pre) ~ 1 + pilot, which equals the group x wave interaction of the
long model with pupil fixed effects when every pupil has both waves. Pupils in the same
municipality share schools and case managers, so errors are clustered by municipality:

* pooled ('all') rows: cluster-robust CR2 with Satterthwaite df (primary; clubSandwich)
  and CR1/HC1 with G - 1 df (sandwich::vcovCL), see ``cluster_robust``;
* per-municipality rows: one cluster, so Welch's t test of the change scores, the
  small-sample method for two independent groups;
* ``random_intercept_did``: a random-intercept model change ~ pilot + (1 | municipality)
  fitted by REML (statsmodels MixedLM; lme4::lmer is the reference) as a check.

The effect size is the DiD over the pooled pre-test SD of the two groups (Morris 2008,
d_ppc2 without its bias correction); its interval is the DiD interval over that SD,
treating the SD as fixed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analyses.evaluation import hypothesis_tests
from analyses.evaluation.cluster_robust import cluster_robust_ols
from analyses.evaluation.linking import ALL, DEFAULT_WAVES, link_waves
from analyses.evaluation.results import add_warning, evaluation_frame, small_numbers_warning
from analyses.linear_models import fit_mixed_arrays
from analyses.methods import FEW_CLUSTERS_BELOW

EFFECT_SIZE_NAME = "did / pooled pre-test SD (Morris d_ppc2, uncorrected)"
TOO_FEW_CLUSTERS = "too_few_clusters"
#: Treatment constant within clusters and one group in a single cluster: the DiD is that
#: cluster's mean change against the others, confounded with anything the cluster shares.
ONE_CLUSTER_PER_GROUP = "one_cluster_per_group"
FEW_CLUSTERS = "few_clusters"
#: A DiD needs pupils of both groups: with one group alone there is nothing to compare.
ONE_GROUP_ONLY = "one_group_only"
DEFAULT_COMPARISON = "comparison"


def change_scores(
    assessments: pd.DataFrame,
    outcome: str,
    treated: str = "pilot",
    comparison: str | None = None,
    waves: Sequence[str] = DEFAULT_WAVES,
    group: str = "group",
) -> pd.DataFrame:
    """Linked pupils with both waves of ``outcome``: municipality, pilot (0/1), pre, change.

    ``pilot`` is 1 for the ``treated`` group; with ``comparison`` given only the two
    groups enter (other values of the group column are left out), else every other pupil
    is a comparison pupil. 'pre' is the first of ``waves``, the change runs to the last.
    """
    linked = link_waves(assessments, [outcome], waves, group)
    if comparison is not None:
        linked = linked.loc[linked["group"].isin([treated, comparison])]
    pre = pd.to_numeric(linked[f"{outcome}_pre"], errors="coerce").astype("float64")
    post = pd.to_numeric(linked[f"{outcome}_post"], errors="coerce").astype("float64")
    keep = pre.notna() & post.notna()
    return pd.DataFrame({
        "municipality": linked.loc[keep, "municipality"].to_numpy(),
        "pilot": (linked.loc[keep, "group"] == treated).astype(float).to_numpy(),
        "pre": pre[keep].to_numpy(),
        "change": (post - pre)[keep].to_numpy(),
    })


def pooled_pre_sd(scores: pd.DataFrame) -> float:
    """Pooled within-group SD of the pre-test scores (df-weighted, as in Morris 2008)."""
    parts = [g["pre"].to_numpy() for _, g in scores.groupby("pilot")]
    dfs = [p.size - 1 for p in parts]
    if len(parts) < 2 or min(dfs) < 1:
        return math.nan
    return math.sqrt(sum(p.var(ddof=1) * df for p, df in zip(parts, dfs)) / sum(dfs))


def _standardise(row: dict, sd: float) -> dict:
    if not sd or math.isnan(sd) or row.get("estimate") is None:
        return row
    scale = {"effect_size": row["estimate"] / sd, "effect_size_name": EFFECT_SIZE_NAME}
    if row.get("conf_low") is not None:
        scale |= {"es_conf_low": row["conf_low"] / sd, "es_conf_high": row["conf_high"] / sd}
    return {**row, **scale}


def _one_cluster_per_group(scores: pd.DataFrame) -> str | None:
    """``one_cluster_per_group`` when no municipality has both groups and one group has one municipality."""
    per_group = scores.groupby("pilot")["municipality"].nunique()
    shared = scores.groupby("municipality")["pilot"].nunique().max() > 1
    return ONE_CLUSTER_PER_GROUP if (not shared and per_group.min() < 2) else None


def _pooled_rows(scores: pd.DataFrame, conf_level: float) -> list[dict]:
    n_clusters = scores["municipality"].nunique()
    if n_clusters < 2:
        return [{"n": len(scores), "method": "difference in differences: change-score OLS",
                 "warning": TOO_FEW_CLUSTERS}]
    design = np.column_stack([np.ones(len(scores)), scores["pilot"].to_numpy()])
    fit = cluster_robust_ols(scores["change"].to_numpy(), design, scores["municipality"].to_numpy())
    method = "difference in differences: OLS of change score on group"
    single = _one_cluster_per_group(scores)
    rows = []
    for correction, ci_method in (("CR2", "t with Satterthwaite df (Bell-McCaffrey / Pustejovsky-Tipton)"),
                                  ("CR1", "t with G - 1 df")):
        result = fit.test(1, correction, conf_level)
        few = FEW_CLUSTERS if correction == "CR1" and n_clusters < FEW_CLUSTERS_BELOW else None
        row = {**{k: v for k, v in result.items() if k not in ("df", "warning")}, "n": len(scores),
               "method": method, "ci_method": ci_method, "method_code": f"did_ols_{correction.lower()}",
               "correction": f"cluster-robust {correction}{' (HC1)' if correction == 'CR1' else ''}"
                             f" by municipality, {n_clusters} clusters"}
        for warning in (single, result.get("warning"), few):
            row = add_warning(row, warning)
        rows.append(row)
    return rows


def _local_row(scores: pd.DataFrame, conf_level: float) -> dict:
    pilot = scores.loc[scores["pilot"] == 1, "change"].to_numpy()
    comparison = scores.loc[scores["pilot"] == 0, "change"].to_numpy()
    result = hypothesis_tests.welch_t(pilot, comparison, conf_level)
    return {**{k: v for k, v in result.items() if k != "df"},
            "method": "difference in differences: Welch t-test of change scores, pilot - comparison",
            "ci_method": "Welch-Satterthwaite t", "method_code": "did_welch"}


def contrast_label(treated: str, comparison: str | None) -> str:
    """The ``group`` of a 'did' row: 'treated - comparison'."""
    return f"{treated} - {comparison if comparison is not None else DEFAULT_COMPARISON}"


def _one_group_row(outcome: str, label: str, municipality: str, method: str) -> dict:
    """A 'did' row without numbers: the cell has pupils of one group only."""
    return {"outcome": outcome, "group": label, "municipality": municipality, "contrast": "did",
            "method": method, "warning": ONE_GROUP_ONLY}


def difference_in_differences(
    assessments: pd.DataFrame,
    outcomes: Sequence[str],
    treated: str = "pilot",
    by_municipality: bool = True,
    conf_level: float = 0.95,
    small_n: int = 10,
    comparison: str | None = None,
    waves: Sequence[str] = DEFAULT_WAVES,
    group: str = "group",
) -> pd.DataFrame:
    """'did' rows (treated - comparison change) per outcome, pooled and per municipality.

    ``group`` of the rows is 'treated - comparison' (``contrast_label``); ``n`` the
    linked pupils of both groups; the ``small_n`` warning goes by the smaller group (its
    true numbers are returned; the small-cell rule is ``publish_evaluation``'s). A
    cell without pupils of one of the groups gets a row without numbers and the warning
    ``one_group_only``. Pooled rows come twice, once per cluster-robust correction (CR2
    first, the primary). Binary outcomes give the DiD of proportions (linear probability
    change score). The change runs from the first of ``waves`` to the last.
    """
    label = contrast_label(treated, comparison)
    rows = []
    for outcome in outcomes:
        scores = change_scores(assessments, outcome, treated, comparison, waves, group)
        places = [(ALL, scores)]
        if by_municipality:
            places += list(scores.groupby("municipality", sort=True))
        for municipality, part in places:
            smaller = int(min((part["pilot"] == 1).sum(), (part["pilot"] == 0).sum()))
            if smaller == 0:
                rows.append(_one_group_row(outcome, label, municipality, "difference in differences: not estimable"))
                continue
            built = _pooled_rows(part, conf_level) if municipality == ALL else [_local_row(part, conf_level)]
            sd = pooled_pre_sd(part)
            for row in built:
                row = _standardise({"outcome": outcome, "group": label,
                                    "municipality": municipality, "contrast": "did", **row}, sd)
                rows.append(add_warning(row, small_numbers_warning(smaller, 0, small_n)))
    return evaluation_frame(rows)


@dataclass(frozen=True)
class RandomInterceptFit:
    """Fixed effects with model-based SEs and the two REML variance components."""

    coefficients: np.ndarray
    std_errors: np.ndarray
    intercept_variance: float
    residual_variance: float


def fit_random_intercept(y: np.ndarray, design: np.ndarray, groups: np.ndarray) -> RandomInterceptFit:
    """REML fit of y = X b + u_group + e: lme4::lmer's model and criterion.

    :func:`analyses.linear_models.fit_mixed_arrays` minimises lmer's profiled REML
    deviance over theta = tau / sigma >= 0 (Nelder-Mead, then bounded quasi-Newton), so a
    group variance at its boundary 0 (few municipalities) is reached exactly, and the
    optimum is lmer's to ~1e-8 (statsmodels MixedLM stopped ~5e-9 short in the REML
    likelihood, 2e-5 off in the variance). Standard errors are lmer's: sigma^2 (X' V^-1 X)^-1.
    """
    x = np.asarray(design, dtype=float)
    fit = fit_mixed_arrays(np.asarray(y, dtype=float), x, np.ones((x.shape[0], 1)), np.asarray(groups), reml=True)
    return RandomInterceptFit(fit.coefficients, np.sqrt(np.diag(fit.vcov)),
                              float(fit.random_covariance[0, 0]), fit.sigma**2)


def random_intercept_did(
    assessments: pd.DataFrame,
    outcomes: Sequence[str],
    treated: str = "pilot",
    conf_level: float = 0.95,
    small_n: int = 10,
    comparison: str | None = None,
    waves: Sequence[str] = DEFAULT_WAVES,
    group: str = "group",
) -> pd.DataFrame:
    """Pooled 'did' rows from change ~ pilot + (1 | municipality), REML, Wald z interval.

    A check on the OLS rows: it borrows strength across municipalities instead of
    correcting the SE afterwards. lmer gives no p-value; ours is the Wald z, which is
    anti-conservative with few municipalities (hence a check, not the primary result).
    """
    z = stats.norm.ppf(1.0 - (1.0 - conf_level) / 2.0)
    label = contrast_label(treated, comparison)
    method = "difference in differences: linear mixed model change ~ group + (1 | municipality)"
    rows = []
    for outcome in outcomes:
        scores = change_scores(assessments, outcome, treated, comparison, waves, group)
        if min((scores["pilot"] == 1).sum(), (scores["pilot"] == 0).sum()) == 0:
            rows.append(_one_group_row(outcome, label, ALL, method))
            continue
        row = {"outcome": outcome, "group": label, "municipality": ALL,
               "contrast": "did", "n": len(scores), "method": method,
               "ci_method": "Wald z", "correction": "REML variance components", "method_code": "did_lmm"}
        if scores["municipality"].nunique() < 2:
            rows.append(add_warning(row, TOO_FEW_CLUSTERS))
            continue
        design = np.column_stack([np.ones(len(scores)), scores["pilot"].to_numpy()])
        fit = fit_random_intercept(scores["change"].to_numpy(), design, scores["municipality"].to_numpy())
        estimate, se = float(fit.coefficients[1]), float(fit.std_errors[1])
        row |= {"estimate": estimate, "std_error": se, "statistic": estimate / se,
                "p_value": float(2.0 * stats.norm.sf(abs(estimate / se))),
                "conf_low": estimate - z * se, "conf_high": estimate + z * se}
        smaller = int(min((scores["pilot"] == 1).sum(), (scores["pilot"] == 0).sum()))
        row = add_warning(row, _one_cluster_per_group(scores))
        rows.append(add_warning(_standardise(row, pooled_pre_sd(scores)), small_numbers_warning(smaller, 0, small_n)))
    return evaluation_frame(rows)

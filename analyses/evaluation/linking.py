"""Linking pre and post assessments by pseudonym: the flow table and attrition.

A naive before/after comparison on whoever answered twice hides who dropped out, so the
evaluation first says how many pupils were assessed at each wave, how many link, and
whether those lost differed at baseline from those kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analyses.evaluation.effect_sizes import standardised_mean_difference
from analyses.evaluation.results import apply_small_numbers, evaluation_frame
from analyses.tidy import tidy_frame

WAVES = ("pre", "post")
ALL = "all"
_PLACE = ("group", "municipality", "county")


def link_waves(assessments: pd.DataFrame, outcomes: Sequence[str]) -> pd.DataFrame:
    """One row per pupil: group, municipality (county if present), ``<outcome>_pre`` and
    ``<outcome>_post`` and the flags ``in_pre``/``in_post``.

    Group and place come from the pre record where there is one. Duplicate assessments of
    a pupil within a wave, or a pupil whose group changes between waves, raise (the
    message gives counts only, never a pseudonym).
    """
    unknown_waves = set(assessments["wave"].dropna().unique()) - set(WAVES)
    if unknown_waves:
        raise ValueError(f"wave must be 'pre' or 'post'; found {len(unknown_waves)} other value(s)")
    duplicated = assessments.duplicated(["pupil_id", "wave"]).sum()
    if duplicated:
        raise ValueError(f"{duplicated} pupil(s) are assessed more than once in a wave")
    place = [c for c in _PLACE if c in assessments.columns]
    waves = {w: assessments.loc[assessments["wave"] == w].set_index("pupil_id") for w in WAVES}
    shared = waves["pre"].index.intersection(waves["post"].index)
    switched = (waves["pre"].loc[shared, "group"] != waves["post"].loc[shared, "group"]).sum()
    if switched:
        raise ValueError(f"{switched} linked pupil(s) change group between waves")
    ids = waves["pre"].index.union(waves["post"].index, sort=False)
    linked = pd.DataFrame(index=ids)
    linked.index.name = "pupil_id"
    for column in place:
        linked[column] = waves["pre"][column].reindex(ids).fillna(waves["post"][column].reindex(ids))
    for wave in WAVES:
        linked[f"in_{wave}"] = ids.isin(waves[wave].index)
        for outcome in outcomes:
            linked[f"{outcome}_{wave}"] = waves[wave][outcome].reindex(ids)
    return linked.reset_index()


def _flow_counts(linked: pd.DataFrame) -> dict[str, int]:
    pre, post = linked["in_pre"], linked["in_post"]
    return {"assessed_pre": int(pre.sum()), "assessed_post": int(post.sum()),
            "linked": int((pre & post).sum()), "lost": int((pre & ~post).sum()),
            "new": int((~pre & post).sum())}


def flow_table(assessments: pd.DataFrame, min_cell: int = 5) -> pd.DataFrame:
    """The flow of pupils through the evaluation per municipality and group, with totals.

    Rows (tidy): ``municipality`` (or 'all'), ``group`` (or 'all'), ``stage`` one of
    assessed_pre, assessed_post, linked (both waves), lost (pre only), new (post only);
    ``estimate`` is the count of pupils and ``n`` the pupils assessed at either wave in
    that cell, ``share_of_pre`` the count over assessed_pre. Counts 1..min_cell-1 are
    published as NA with ``suppressed`` true (the small-cell rule); zeros are shown.
    """
    linked = link_waves(assessments, [])
    cells = [(m, g, part) for (m, g), part in linked.groupby(["municipality", "group"], sort=True)]
    cells += [(ALL, g, part) for g, part in linked.groupby("group", sort=True)]
    cells.append((ALL, ALL, linked))
    rows = []
    for municipality, group, part in cells:
        counts = _flow_counts(part)
        for stage, count in counts.items():
            hidden = 0 < count < min_cell
            share = count / counts["assessed_pre"] if counts["assessed_pre"] and not hidden else None
            rows.append({"municipality": municipality, "group": group, "stage": stage,
                         "estimate": None if hidden else count,
                         "n": None if 0 < len(part) < min_cell else len(part),
                         "share_of_pre": share, "suppressed": hidden,
                         "method": "count of linked pseudonyms",
                         "correction": f"small-cell suppression of counts 1-{min_cell - 1}"})
    return tidy_frame(rows, ["municipality", "group", "stage"], ["share_of_pre", "suppressed"])


def attrition_balance(
    assessments: pd.DataFrame,
    covariates: Sequence[str],
    min_n: int = 5,
    small_n: int = 10,
) -> pd.DataFrame:
    """Baseline comparison of pupils lost to follow-up with those kept, per group and overall.

    Among pupils assessed at 'pre', ``estimate`` is mean(lost) - mean(kept) of each
    baseline covariate and ``effect_size`` the standardised mean difference over the
    unweighted pooled SD sqrt((s_lost^2 + s_kept^2)/2) (Austin 2009); |SMD| > 0.1 is the
    usual flag for imbalance. ``n`` counts the pupils compared; either side below
    ``min_n`` suppresses the row (the results.py rule). Contrast is 'lost_vs_kept'.
    """
    linked = link_waves(assessments, covariates)
    baseline = linked.loc[linked["in_pre"]]
    rows = []
    groups = [(g, part) for g, part in baseline.groupby("group", sort=True)] + [(ALL, baseline)]
    for group, part in groups:
        lost = part.loc[~part["in_post"]]
        kept = part.loc[part["in_post"]]
        for covariate in covariates:
            x = pd.to_numeric(lost[f"{covariate}_pre"], errors="coerce").dropna().to_numpy(float)
            y = pd.to_numeric(kept[f"{covariate}_pre"], errors="coerce").dropna().to_numpy(float)
            row = {"outcome": covariate, "group": group, "municipality": ALL,
                   "contrast": "lost_vs_kept",
                   "estimate": x.mean() - y.mean() if x.size and y.size else np.nan,
                   "n": x.size + y.size, "effect_size": standardised_mean_difference(x, y),
                   "effect_size_name": "standardised mean difference (unweighted pooled SD)",
                   "method": "difference in baseline means, lost minus kept"}
            rows.append(apply_small_numbers(row, min(x.size, y.size), min_n, small_n))
    return evaluation_frame(rows)

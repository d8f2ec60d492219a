"""Linking the before and after assessments by pseudonym: the flow table and attrition.

A naive before/after comparison on whoever answered twice hides who dropped out, so the
evaluation first says how many pupils were assessed at each wave, how many link, and
whether those lost differed at baseline from those kept.

Waves and groups are parameters: ``waves`` lists the study's waves in order (the first is
*before*, the last *after*; waves between them are counted in the flow table but not
linked), ``group`` names the column of the evaluation group. Whatever the waves are
called, the linked frame names its columns by role: ``<outcome>_pre`` (the first wave),
``<outcome>_post`` (the last), ``in_pre``/``in_post``, and the flow stages
``assessed_pre``/``assessed_post``. The default ``("pre", "post")`` is only the
convention of hand-made frames; the pipeline passes the study's waves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analyses.evaluation.effect_sizes import standardised_mean_difference
from analyses.evaluation.results import add_warning, evaluation_frame, small_numbers_warning
from analyses.small_cells import is_small
from analyses.tidy import tidy_frame

#: The default waves (before, after) of hand-made frames; the pipeline passes the study's.
DEFAULT_WAVES = ("pre", "post")
#: The role names of the first and the last wave in column and stage names.
ROLES = ("pre", "post")
ALL = "all"
_PLACE = ("municipality", "county")


def check_waves(waves: Sequence[str]) -> tuple[str, str]:
    """(before, after): the first and last of at least two distinct waves."""
    waves = list(waves)
    if len(waves) < 2 or len(set(waves)) != len(waves):
        raise ValueError("an evaluation needs at least two distinct waves")
    return waves[0], waves[-1]


def link_waves(
    assessments: pd.DataFrame,
    outcomes: Sequence[str],
    waves: Sequence[str] = DEFAULT_WAVES,
    group: str = "group",
) -> pd.DataFrame:
    """One row per pupil assessed at the first or the last wave: ``group`` (from the column
    named by ``group``), municipality (county if present), ``<outcome>_pre`` (first wave)
    and ``<outcome>_post`` (last wave) and the flags ``in_pre``/``in_post``.

    Group and place come from the first-wave record where there is one. Records of waves
    between the first and the last are not linked. A wave outside ``waves``, duplicate
    assessments of a pupil within a wave, or a linked pupil whose group changes raise
    (the message gives counts only, never a pseudonym).
    """
    before, after = check_waves(waves)
    unknown_waves = set(assessments["wave"].dropna().unique()) - set(waves)
    if unknown_waves:
        raise ValueError(f"wave must be one of the evaluation's {len(waves)} waves; "
                         f"found {len(unknown_waves)} other value(s)")
    duplicated = assessments.duplicated(["pupil_id", "wave"]).sum()
    if duplicated:
        raise ValueError(f"{duplicated} pupil(s) are assessed more than once in a wave")
    place = ["group"] + [c for c in _PLACE if c in assessments.columns and c != group]
    frame = assessments.rename(columns={group: "group"}) if group != "group" else assessments
    by_role = {role: frame.loc[frame["wave"] == wave].set_index("pupil_id")
               for role, wave in zip(ROLES, (before, after))}
    shared = by_role["pre"].index.intersection(by_role["post"].index)
    switched = (by_role["pre"].loc[shared, "group"] != by_role["post"].loc[shared, "group"]).sum()
    if switched:
        raise ValueError(f"{switched} linked pupil(s) change group between waves")
    ids = by_role["pre"].index.union(by_role["post"].index, sort=False)
    linked = pd.DataFrame(index=ids)
    linked.index.name = "pupil_id"
    for column in place:
        linked[column] = by_role["pre"][column].reindex(ids).fillna(by_role["post"][column].reindex(ids))
    for role in ROLES:
        linked[f"in_{role}"] = ids.isin(by_role[role].index)
        for outcome in outcomes:
            linked[f"{outcome}_{role}"] = by_role[role][outcome].reindex(ids)
    return linked.reset_index()


def _flow_counts(linked: pd.DataFrame) -> dict[str, int]:
    pre, post = linked["in_pre"], linked["in_post"]
    return {"assessed_pre": int(pre.sum()), "assessed_post": int(post.sum()),
            "linked": int((pre & post).sum()), "lost": int((pre & ~post).sum()),
            "new": int((~pre & post).sum())}


def _between_counts(assessments: pd.DataFrame, waves: Sequence[str], group: str) -> dict[tuple, dict[str, int]]:
    """{(municipality, group): {wave: pupils assessed}} for the waves between the first and the last."""
    counts: dict[tuple, dict[str, int]] = {}
    for wave in list(waves)[1:-1]:
        part = assessments.loc[assessments["wave"] == wave]
        keys = [(m, g, p) for (m, g), p in part.groupby(["municipality", group], sort=True)]
        keys += [(ALL, g, p) for g, p in part.groupby(group, sort=True)] + [(ALL, ALL, part)]
        for municipality, group_value, cell in keys:
            counts.setdefault((municipality, group_value), {})[wave] = int(cell["pupil_id"].nunique())
    return counts


FLOW_STAGES = ("assessed_pre", "assessed_post", "linked", "lost", "new")
#: The stage of a count of pupils assessed at a wave between the first and the last (``wave`` says which).
BETWEEN = "assessed_between"


def flow_table(
    assessments: pd.DataFrame,
    min_cell: int = 5,
    waves: Sequence[str] = DEFAULT_WAVES,
    group: str = "group",
) -> pd.DataFrame:
    """The flow of pupils through the evaluation per municipality and group, with totals.

    Rows (tidy): ``municipality`` (or 'all'), ``group`` (or 'all'), ``stage`` one of
    assessed_pre (first wave), assessed_post (last wave), linked (both), lost (first
    only), new (last only), and ``assessed_between`` for each wave between them;
    ``wave`` names the wave of an assessed_* row. ``estimate`` is the count of pupils and
    ``n`` the pupils assessed at the first or the last wave in that cell,
    ``share_of_pre`` the count over assessed_pre. Counts 1..min_cell-1 are published as
    NA with ``suppressed`` true (the small-cell rule); zeros are shown.
    """
    before, after = check_waves(waves)
    linked = link_waves(assessments, [], waves, group)
    between = _between_counts(assessments, waves, group)
    cells = {(m, g): part for (m, g), part in linked.groupby(["municipality", "group"], sort=True)}
    cells |= {(ALL, g): part for g, part in linked.groupby("group", sort=True)}
    for key in sorted(set(between) - set(cells) - {(ALL, ALL)}):  # assessed only between the first and last
        cells[key] = linked.iloc[0:0]
    ordered = sorted((k for k in cells if k[0] != ALL), key=str) + sorted((k for k in cells if k[0] == ALL), key=str)
    rows = []
    for municipality, group_value, part in [(*key, cells[key]) for key in ordered] + [(ALL, ALL, linked)]:
        counts = _flow_counts(part)
        stages = [(stage, count, {"assessed_pre": before, "assessed_post": after}.get(stage))
                  for stage, count in counts.items()]
        stages += [(BETWEEN, between.get((municipality, group_value), {}).get(w, 0), w) for w in list(waves)[1:-1]]
        for stage, count, wave in stages:
            hidden = is_small(count, min_cell)
            share = count / counts["assessed_pre"] if counts["assessed_pre"] and not hidden else None
            rows.append({"municipality": municipality, "group": group_value, "stage": stage, "wave": wave,
                         "estimate": None if hidden else count,
                         "n": None if is_small(len(part), min_cell) else len(part),
                         "share_of_pre": share, "suppressed": hidden,
                         "method": "count of linked pseudonyms",
                         "correction": f"small-cell suppression of counts 1-{min_cell - 1}"})
    return tidy_frame(rows, ["municipality", "group", "stage", "wave"], ["share_of_pre", "suppressed"])


def attrition_balance(
    assessments: pd.DataFrame,
    covariates: Sequence[str],
    small_n: int = 10,
    waves: Sequence[str] = DEFAULT_WAVES,
    group: str = "group",
) -> pd.DataFrame:
    """Baseline comparison of pupils lost to follow-up with those kept, per group and overall.

    Among pupils assessed at the first wave (kept: assessed at the last), ``estimate`` is mean(lost) - mean(kept) of each
    baseline covariate and ``effect_size`` the standardised mean difference over the
    unweighted pooled SD sqrt((s_lost^2 + s_kept^2)/2) (Austin 2009); |SMD| > 0.1 is the
    usual flag for imbalance. ``n`` counts the pupils compared; either side below
    ``small_n`` gives the warning ``small_n``. True numbers for every row: the small-cell
    rule (either side below min_cell) is the asset's ``publish_attrition``. Contrast is
    'lost_vs_kept'.
    """
    linked = link_waves(assessments, covariates, waves, group)
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
            rows.append(add_warning(row, small_numbers_warning(min(x.size, y.size), 0, small_n)))
    return evaluation_frame(rows)

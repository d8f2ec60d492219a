"""Pilot-evaluation assets: anon.pilot and anon.specialists -> results.evaluation and friends.

Thin wiring around ``analyses.evaluation`` (the methods and their R validation live
there): scale scores from the codebook, then linking and flow, attrition, within-group
change, difference in differences (pooled: cluster-robust CR2, the primary; CR1 and a
random-intercept model as checks; per municipality: Welch with small-n warnings) and the
specialists' cooperation change, written to schema ``results`` in one transaction.

Small counts. The analysis functions blank every row built from fewer than ``min_cell``
pupils. Two more ways a table could give away a count of 1..min_cell-1 are closed here:

* the flow table's counts add up (assessed before = linked + lost, municipalities add up
  to the total), so a hidden count could be subtracted back: the atomic counts (linked,
  lost, new) get secondary suppression per group with
  ``pipelines.privacy.cells.protect_table`` (municipalities as rows, the 'all' row as the
  known total), and a sum (before, after, either wave) is shown only where all its
  terms are;
* for a binary outcome a proportion times ``n`` is a count of children (with a flag, or
  changing it), so every row of a cell where any such count (flagged or not before,
  after, 0->1, 1->0) is small is blanked with the warning ``suppressed_small_count``.
"""


import warnings
from collections.abc import Mapping, Sequence

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from analyses.evaluation import (
    attrition_balance,
    difference_in_differences,
    flow_table,
    link_waves,
    random_intercept_did,
    sector_cooperation_change,
    within_group_change,
)
from analyses.evaluation.linking import ALL
from analyses.tidy import tidy_frame
from pipelines.assets.common import meta_key
from pipelines.assets.reports import report_asset
from pipelines.config import Codebook
from pipelines.privacy.cells import protect_table
from pipelines.resources import StudyResource
from pipelines.scales import with_scale_scores
from pipelines.warehouse import connect, write_tables

#: Outcomes analysed as numbers (scale scores, counts, the ordinal risk level 1-3).
CONTINUOUS_OUTCOMES: tuple[str, ...] = (
    "sdl", "sdl_planning", "sdl_motivation", "unexcused_absences", "failing_grades", "risk_level",
)
#: Outcomes analysed as 0/1 (McNemar within groups, linear-probability DiD).
BINARY_OUTCOMES: tuple[str, ...] = ("attendance_flag", "behaviour_flag", "performance_flag", "any_criterion")
#: Baseline covariates compared between pupils lost to follow-up and pupils kept.
ATTRITION_COVARIATES: tuple[str, ...] = ("age", *CONTINUOUS_OUTCOMES)
#: Below this many pupils an estimate is kept but flagged ``small_n`` (analyses.evaluation.results).
SMALL_N = 10

SMALL_COUNT = "suppressed_small_count"
_BLANKED = ("estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high",
            "effect_size", "es_conf_low", "es_conf_high")
_FLOW_ATOMS = ("linked", "lost", "new")
_FLOW_SUMS = {"assessed_pre": ("linked", "lost"), "assessed_post": ("linked", "new"),
              "either": ("linked", "lost", "new")}
_FLOW_CORRECTION = ("small-cell suppression of counts 1-{max_small}; secondary suppression along the "
                    "municipality totals (protect_table); a sum shown only when all its terms are")

RESULT_TABLES = ("evaluation", "attrition", "evaluation_flow", "cooperation_change")


def pilot_assessments(pilot: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """anon.pilot rows with the codebook's scale scores (sdl, sdl_planning, sdl_motivation)."""
    return with_scale_scores(pilot, codebook)


def cooperation_columns(codebook: Codebook) -> dict[str, str]:
    """Partner sector -> column of the specialists' cooperation items (group 'cooperation')."""
    return {name.removeprefix("coop_"): name for name, var in codebook.variables.items()
            if var.group == "cooperation"}


def _binary_cell_counts(pre: np.ndarray, post: np.ndarray) -> list[int]:
    """The counts of children a binary cell's rows reveal: with/without the flag, and changers."""
    both = ~(np.isnan(pre) | np.isnan(post))
    pre, post = pre[both], post[both]
    return [int((pre == 1).sum()), int((pre == 0).sum()), int((post == 1).sum()), int((post == 0).sum()),
            int(((pre == 0) & (post == 1)).sum()), int(((pre == 1) & (post == 0)).sum())]


def small_binary_cells(assessments: pd.DataFrame, outcomes: Sequence[str], min_cell: int) -> set[tuple]:
    """(outcome, group, municipality) cells of binary outcomes revealing a count 1..min_cell-1."""
    linked = link_waves(assessments, outcomes)
    small = set()
    for outcome in outcomes:
        pre = pd.to_numeric(linked[f"{outcome}_pre"], errors="coerce").astype("float64")
        post = pd.to_numeric(linked[f"{outcome}_post"], errors="coerce").astype("float64")
        places = [(g, m, idx) for (g, m), idx in linked.groupby(["group", "municipality"]).groups.items()]
        places += [(g, ALL, idx) for g, idx in linked.groupby("group").groups.items()]
        for group, municipality, index in places:
            counts = _binary_cell_counts(pre[index].to_numpy(), post[index].to_numpy())
            if any(0 < c < min_cell for c in counts):
                small.add((outcome, group, municipality))
    return small


def suppress_small_binary_counts(results: pd.DataFrame, small: set[tuple], treated: str = "pilot") -> pd.DataFrame:
    """Blank the numbers of rows whose cell (or, for a DiD row, either group's cell) is in ``small``."""
    out = results.copy()
    hidden = []
    for row in out.itertuples(index=False):
        cell_groups = (treated, "comparison") if row.contrast == "did" else (row.group,)
        hidden.append(any((row.outcome, g, row.municipality) in small for g in cell_groups))
    hidden = np.array(hidden, dtype=bool)
    for column in _BLANKED:
        out.loc[hidden, column] = np.nan
    out.loc[hidden, "warning"] = [f"{w}; {SMALL_COUNT}" if isinstance(w, str) and w else SMALL_COUNT
                                  for w in out.loc[hidden, "warning"]]
    return out


def evaluation_results(assessments: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """results.evaluation: pre/post/change per group and 'did' rows, per municipality and 'all'.

    The pooled DiD rows come as CR2 (primary), CR1 and the random-intercept check; the
    random-intercept model is fitted for the continuous outcomes only (for 0/1 outcomes a
    linear mixed model is no better check than the CR1 row).
    """
    outcomes = [*CONTINUOUS_OUTCOMES, *BINARY_OUTCOMES]
    with warnings.catch_warnings():
        # a municipality variance at its boundary 0 is expected with few municipalities (did.py)
        warnings.simplefilter("ignore", SingularMatrixWarning)
        parts = [
            within_group_change(assessments, outcomes, binary=BINARY_OUTCOMES, min_n=min_cell, small_n=SMALL_N),
            difference_in_differences(assessments, outcomes, min_n=min_cell, small_n=SMALL_N),
            random_intercept_did(assessments, CONTINUOUS_OUTCOMES, min_n=min_cell, small_n=SMALL_N),
        ]
    results = pd.concat(parts, ignore_index=True)
    return suppress_small_binary_counts(results, small_binary_cells(assessments, BINARY_OUTCOMES, min_cell))


def _published_stages(hidden: pd.Series, counts: pd.Series, min_cell: int) -> dict[str, bool]:
    """Which of a cell's counts may be shown, given which atomic counts are hidden.

    A sum (assessed before = linked + lost, after = linked + new, either wave = all
    three) is shown only when all its terms are, so no published sum has exactly one
    hidden term; a small sum is hidden anyway.
    """
    shown = {stage: not hidden[stage] for stage in _FLOW_ATOMS}
    for stage, terms in _FLOW_SUMS.items():
        shown[stage] = all(shown[t] for t in terms) and not 0 < counts[stage] < min_cell
    return shown


def protected_flow(assessments: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """results.evaluation_flow: ``flow_table`` with secondary suppression (see the module docstring).

    Per group, the atomic counts linked, lost and new form a table with municipalities
    as rows and the group's 'all' row as known column totals; ``protect_table`` hides
    counts 1..min_cell-1 and enough others that no line pins a hidden one (its LP audit
    checks it). ``n`` (assessed at either wave) and the before/after sums follow
    ``_published_stages``. The 'all'/'all' rows hide a stage hidden in either group's
    total. Columns as ``flow_table`` plus ``suppression`` ('primary', 'secondary' or '').
    """
    raw = flow_table(assessments, min_cell=1)  # the true counts, protected below
    raw = raw.assign(either=raw["n"].astype(float))
    rows = []
    hidden_in_totals = pd.Series(False, index=list(_FLOW_ATOMS))
    for group in [g for g in raw["group"].unique() if g != ALL]:
        part = raw.loc[raw["group"] == group]
        wide = part.pivot(index="municipality", columns="stage", values="estimate")
        wide["either"] = part.groupby("municipality")["either"].first()
        wide = wide.loc[[m for m in wide.index if m != ALL] + [ALL]]
        protection = protect_table(wide, list(_FLOW_ATOMS), total_row=ALL, threshold=min_cell)
        hidden_in_totals |= protection.suppressed.loc[ALL, list(_FLOW_ATOMS)].astype(bool)
        for municipality in wide.index:
            rows += _flow_rows(municipality, group, wide.loc[municipality], protection.suppressed.loc[municipality],
                               protection.primary.loc[municipality], min_cell)
    total = raw.loc[raw["group"] == ALL].set_index("stage")["estimate"]
    total["either"] = raw.loc[raw["group"] == ALL, "either"].iloc[0]
    primary = pd.Series({s: 0 < total[s] < min_cell for s in _FLOW_ATOMS})
    rows += _flow_rows(ALL, ALL, total, hidden_in_totals | primary, primary, min_cell)
    return tidy_frame(rows, ["municipality", "group", "stage"], ["share_of_pre", "suppressed", "suppression"])


def _flow_rows(municipality: str, group: str, counts: pd.Series, hidden: pd.Series, primary: pd.Series,
               min_cell: int) -> list[dict]:
    shown = _published_stages(hidden, counts, min_cell)
    either = int(counts["either"]) if shown["either"] else None
    base = counts["assessed_pre"] if shown["assessed_pre"] and counts["assessed_pre"] > 0 else None
    rows = []
    for stage in ("assessed_pre", "assessed_post", *_FLOW_ATOMS):
        small = bool(primary[stage]) if stage in _FLOW_ATOMS else 0 < counts[stage] < min_cell
        kind = "" if shown[stage] else "primary" if small else "secondary"
        rows.append({"municipality": municipality, "group": group, "stage": stage,
                     "estimate": float(counts[stage]) if shown[stage] else None, "n": either,
                     "share_of_pre": counts[stage] / base if shown[stage] and base else None,
                     "suppressed": bool(kind), "suppression": kind,
                     "method": "count of linked pseudonyms",
                     "correction": _FLOW_CORRECTION.format(max_small=min_cell - 1)})
    return rows


def evaluation_tables(
    pilot: pd.DataFrame,
    specialists: pd.DataFrame,
    pilot_codebook: Codebook,
    specialists_codebook: Codebook,
    min_cell: int,
) -> dict[str, pd.DataFrame]:
    """The four ``results`` tables of the evaluation, keyed "results.<name>"."""
    assessments = pilot_assessments(pilot, pilot_codebook)
    attrition = attrition_balance(assessments, ATTRITION_COVARIATES, min_n=min_cell, small_n=SMALL_N)
    cooperation = sector_cooperation_change(specialists, cooperation_columns(specialists_codebook),
                                            min_n=min_cell, small_n=SMALL_N)
    return {
        "results.evaluation": evaluation_results(assessments, min_cell),
        "results.attrition": attrition,
        "results.evaluation_flow": protected_flow(assessments, min_cell),
        "results.cooperation_change": cooperation,
    }


_DESCRIPTIONS: Mapping[str, str] = {
    "evaluation": "results.evaluation: pre, post, change and DiD per outcome, group and municipality (and 'all').",
    "attrition": "results.attrition: baseline differences of pupils lost to follow-up versus those kept.",
    "evaluation_flow": "results.evaluation_flow: pupils assessed before, after, both, lost, new (small cells hidden).",
    "cooperation_change": "results.cooperation_change: specialists' cooperation with each sector, before vs after.",
}


@dg.multi_asset(
    specs=[dg.AssetSpec(["results", name], group_name="evaluation", kinds={"duckdb"},
                        deps=[["anon", "pilot"], ["anon", "specialists"]], description=_DESCRIPTIONS[name])
           for name in RESULT_TABLES],
    pool="duckdb", name="evaluation_results",
    description="Evaluate the pilot: linking, attrition, within-group change, difference in differences.",
)
def evaluation_results_asset(context: AssetExecutionContext, study: StudyResource):
    config, codebooks = study.load()
    with connect(config.db_path, read_only=True) as con:
        pilot = con.execute("SELECT * FROM anon.pilot ORDER BY pupil_id, wave").df()
        specialists = con.execute("SELECT * FROM anon.specialists ORDER BY staff_id, wave").df()
    tables = evaluation_tables(pilot, specialists, codebooks["pilot"], codebooks["specialists"],
                               config.privacy.min_cell)
    write_tables(config.db_path, tables)
    context.log.info("evaluation results written")
    for name in RESULT_TABLES:
        table = tables[f"results.{name}"]
        metadata: dict = {"dagster/row_count": len(table)}
        if "warning" in table.columns:
            metadata["rows_with_warning"] = int(table["warning"].notna().sum())
        yield dg.MaterializeResult(asset_key=["results", name], metadata=metadata)


evaluation_report = report_asset(
    "evaluation",
    deps=[*(["results", name] for name in RESULT_TABLES), meta_key("provenance")],
    description="The pilot evaluation report (flow, attrition, effects with intervals), et and en.",
)

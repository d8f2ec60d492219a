"""Pilot-evaluation assets: the plan's assessments (and specialists) -> results.evaluation and friends.

Thin wiring around ``analyses.evaluation`` (the methods and their R validation live
there): scale scores from the codebook, then linking and flow, attrition, within-group
change, difference in differences (pooled: cluster-robust CR2, the primary; CR1 and a
random-intercept model as checks; per municipality: Welch with small-n warnings) and the
specialists' cooperation change, written to schema ``results`` in one transaction.

The design is the study's plan (``plan.evaluation``, :class:`pipelines.plan.EvaluationPlan`):
the instrument, the waves in order (``evaluation_waves``: the first is before, the last
after; waves between them are counted in the flow table and otherwise not used), the group
column with its treated and comparison values, the continuous and binary outcomes, the
attrition covariates and the small-n threshold. The cooperation change uses
``plan.evaluation.cooperation`` and is skipped (no rows, a log line) when the study has no
such instrument or it has fewer than two waves. Rows of other groups or waves, and
planned outcomes the table lacks, are left out with a log line (counts and names only).

Small counts. The analysis functions return true numbers; the rules are applied here,
with the study's ``privacy.min_cell``, before a table is written. ``publish_evaluation``
(``publish_attrition`` for ``results.attrition``) blanks every row built from fewer
than ``min_cell`` pupils (a 'did' row: fewer in either group; attrition: lost or kept)
with the warning ``suppressed_n_below_min``, the rule of ``analyses.evaluation.results``
(a count 1..min_cell-1 is ``analyses.small_cells.is_small``).
Two more ways a table could give away a count of 1..min_cell-1 are closed here:

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

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
from analyses.evaluation.did import contrast_label
from analyses.evaluation.linking import ALL, BETWEEN, DEFAULT_WAVES
from analyses.evaluation.results import evaluation_frame, suppressed_row
from analyses.small_cells import is_small
from analyses.tidy import tidy_frame
from pipelines.assets.common import meta_key, output_key
from pipelines.assets.reports import report_asset
from pipelines.config import Codebook, Study
from pipelines.plan import EvaluationPlan
from pipelines.privacy.cells import protect_table
from pipelines.freshness import skip_when_up_to_date
from pipelines.resources import StudyResource
from pipelines.scales import with_scale_scores
from pipelines.study_plan import evaluation_waves, with_plan_outcomes
from pipelines.warehouse import connect, table_exists, write_tables

PLAN_TAGS = {"mapstudy/plan": "evaluation"}


@dataclass(frozen=True)
class EvaluationDesign:
    """The evaluation's design as the analyses take it (from ``plan.evaluation`` and the study's waves).

    ``continuous`` outcomes are analysed as numbers (scale scores, counts, ordinal levels),
    ``binary`` ones as 0/1 (McNemar within groups, linear-probability DiD); ``attrition``
    lists the baseline covariates compared between pupils lost and kept; below
    ``small_n`` pupils an estimate is kept but flagged ``small_n``.
    """

    waves: tuple[str, ...]
    group: str
    treated: str
    comparison: str
    continuous: tuple[str, ...] = ()
    binary: tuple[str, ...] = ()
    attrition: tuple[str, ...] = ()
    small_n: int = 10

    @classmethod
    def from_plan(cls, plan: EvaluationPlan, waves: Sequence[str]) -> "EvaluationDesign":
        return cls(tuple(waves), plan.group, code_text(plan.treated), code_text(plan.comparison),
                   tuple(plan.continuous), tuple(plan.binary), tuple(plan.attrition_covariates), plan.small_n)

    @property
    def outcomes(self) -> list[str]:
        return [*self.continuous, *self.binary]

    @property
    def groups(self) -> tuple[str, str]:
        return self.treated, self.comparison

    @property
    def did_group(self) -> str:
        return contrast_label(self.treated, self.comparison)

    def keywords(self) -> dict:
        """The design arguments every analysis function takes."""
        return {"waves": self.waves, "group": self.group}


def code_text(value: object) -> str:
    """A code as text: 1.0 reads as "1", so numeric and text group codes compare alike."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
    """The assessment rows with every codebook scale score whose items the table has."""
    return with_scale_scores(pilot, codebook)


def cooperation_columns(codebook: Codebook, group: str = "cooperation", prefix: str = "coop_") -> dict[str, str]:
    """Partner sector -> column of the specialists' cooperation items (codebook group ``group``)."""
    return {name.removeprefix(prefix): name for name, var in codebook.variables.items() if var.group == group}


def design_assessments(pilot: pd.DataFrame, codebook: Codebook, design: EvaluationDesign,
                       log: Callable[[str], None] = lambda _: None, study: Study | None = None,
                       instrument: str | None = None) -> tuple[pd.DataFrame, EvaluationDesign]:
    """The rows the design analyses, with scale scores and plan outcomes; the design cut to what the table has.

    Rows of waves outside the design, or of a group other than the treated and comparison
    values, are left out; planned outcomes and covariates that the table lacks are dropped
    from the design. Each is one log line with counts and names, never a value.
    """
    frame = pilot_assessments(pilot, codebook)
    if study is not None and instrument is not None:
        frame = with_plan_outcomes(frame, study, instrument)
    other_wave = ~frame["wave"].isin(design.waves)
    if other_wave.any():
        log(f"evaluation: {int(other_wave.sum())} row(s) of waves outside {list(design.waves)} left out")
    frame = frame.loc[~other_wave]
    groups = frame[design.group].map(lambda v: None if pd.isna(v) else code_text(v))
    other_group = ~groups.isin(design.groups)
    if other_group.any():
        log(f"evaluation: {int(other_group.sum())} row(s) neither '{design.treated}' nor '{design.comparison}' "
            f"in column '{design.group}' left out")
    frame = frame.loc[~other_group].assign(**{design.group: groups[~other_group]}).reset_index(drop=True)
    for role, value in (("treated", design.treated), ("comparison", design.comparison)):
        if not (frame[design.group] == value).any():
            log(f"evaluation: no {role} pupils ('{value}'): no difference in differences can be estimated")

    def present(names: Sequence[str], kind: str) -> tuple[str, ...]:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            log(f"evaluation: {kind} {missing} not in the table: left out")
        return tuple(n for n in names if n in frame.columns)

    design = EvaluationDesign(design.waves, design.group, design.treated, design.comparison,
                              present(design.continuous, "outcome(s)"), present(design.binary, "outcome(s)"),
                              present(design.attrition, "attrition covariate(s)"), design.small_n)
    return frame, design


def _binary_cell_counts(pre: np.ndarray, post: np.ndarray) -> list[int]:
    """The counts of children a binary cell's rows reveal: with/without the flag, and changers."""
    both = ~(np.isnan(pre) | np.isnan(post))
    pre, post = pre[both], post[both]
    return [int((pre == 1).sum()), int((pre == 0).sum()), int((post == 1).sum()), int((post == 0).sum()),
            int(((pre == 0) & (post == 1)).sum()), int(((pre == 1) & (post == 0)).sum())]


def small_binary_cells(assessments: pd.DataFrame, outcomes: Sequence[str], min_cell: int,
                       waves: Sequence[str], group: str) -> set[tuple]:
    """(outcome, group, municipality) cells of binary outcomes revealing a count 1..min_cell-1."""
    linked = link_waves(assessments, outcomes, waves, group)
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


def suppress_small_binary_counts(results: pd.DataFrame, small: set[tuple], groups: tuple[str, str]) -> pd.DataFrame:
    """Blank the numbers of rows whose cell (or, for a DiD row, either of ``groups``' cells) is in ``small``."""
    out = results.copy()
    hidden = []
    for row in out.itertuples(index=False):
        cell_groups = groups if row.contrast == "did" else (row.group,)
        hidden.append(any((row.outcome, g, row.municipality) in small for g in cell_groups))
    hidden = np.array(hidden, dtype=bool)
    for column in _BLANKED:
        out.loc[hidden, column] = np.nan
    out.loc[hidden, "warning"] = [f"{w}; {SMALL_COUNT}" if isinstance(w, str) and w else SMALL_COUNT
                                  for w in out.loc[hidden, "warning"]]
    return out


def linked_cell_sizes(assessments: pd.DataFrame, outcomes: Sequence[str], waves: Sequence[str],
                      group: str) -> dict[tuple, int]:
    """(outcome, group, municipality or 'all') -> linked pupils with both waves of the outcome."""
    linked = link_waves(assessments, outcomes, waves, group)
    sizes: dict[tuple, int] = {}
    for outcome in outcomes:
        pre = pd.to_numeric(linked[f"{outcome}_pre"], errors="coerce")
        post = pd.to_numeric(linked[f"{outcome}_post"], errors="coerce")
        both = linked.loc[pre.notna() & post.notna()]
        for (g, m), size in both.groupby(["group", "municipality"]).size().items():
            sizes[(outcome, g, m)] = int(size)
        for g, size in both.groupby("group").size().items():
            sizes[(outcome, g, ALL)] = int(size)
    return sizes


def publish_evaluation(results: pd.DataFrame, sizes: Mapping[tuple, int], min_cell: int,
                       groups: tuple[str, str]) -> pd.DataFrame:
    """results.evaluation as published: rows built from fewer than ``min_cell`` pupils blanked.

    ``results`` are the analyses' true rows, ``sizes`` the pupils per (outcome, group,
    municipality) (``linked_cell_sizes``). A pre/post/change row of a cell with fewer than
    ``min_cell`` pupils (none included: the row has no numbers to show) loses every
    number, ``n`` too, and gets the warning ``suppressed_n_below_min`` alone; a 'did' row
    the same when its smaller group is a small count (``is_small``; a group with nobody
    is the analyses' ``one_group_only`` row, nothing to hide). That includes the
    random-intercept row left without an estimate (``too_few_clusters``): its ``n`` (both
    groups) next to the larger group's 'all' row would give the small group back. Other
    rows are unchanged.
    """
    def hidden(row: Mapping) -> bool:
        if row["contrast"] == "did":
            return is_small(min(sizes.get((row["outcome"], g, row["municipality"]), 0) for g in groups), min_cell)
        return sizes.get((row["outcome"], row["group"], row["municipality"]), 0) < min_cell

    return _suppressed(results, np.array([hidden(row) for row in results.to_dict("records")], dtype=bool))


def _suppressed(results: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """A copy of ``results`` with the rows of ``mask`` as ``suppressed_row`` makes them (types kept)."""
    out = results.copy()
    if mask.any():
        for column, value in suppressed_row({}).items():
            out.loc[mask, column] = np.nan if value is None else value
    return out


def attrition_sizes(assessments: pd.DataFrame, covariates: Sequence[str], waves: Sequence[str],
                    group: str) -> dict[tuple, int]:
    """(covariate, group or 'all') -> the smaller of the lost and kept pupils with the baseline covariate."""
    linked = link_waves(assessments, covariates, waves, group)
    baseline = linked.loc[linked["in_pre"]]
    sizes: dict[tuple, int] = {}
    for g, part in [*baseline.groupby("group", sort=True), (ALL, baseline)]:
        for covariate in covariates:
            known = pd.to_numeric(part[f"{covariate}_pre"], errors="coerce").notna()
            sizes[(covariate, g)] = int(min((known & ~part["in_post"]).sum(), (known & part["in_post"]).sum()))
    return sizes


def publish_attrition(results: pd.DataFrame, sizes: Mapping[tuple, int], min_cell: int) -> pd.DataFrame:
    """results.attrition as published: a row with fewer than ``min_cell`` lost or kept pupils blanked."""
    return _suppressed(results, np.array([sizes.get((row["outcome"], row["group"]), 0) < min_cell
                                          for row in results.to_dict("records")], dtype=bool))


def evaluation_results(assessments: pd.DataFrame, min_cell: int, design: EvaluationDesign) -> pd.DataFrame:
    """results.evaluation: pre/post/change per group and 'did' rows, per municipality and 'all'.

    The pooled DiD rows come as CR2 (primary), CR1 and the random-intercept check; the
    random-intercept model is fitted for the continuous outcomes only (for 0/1 outcomes a
    linear mixed model is no better check than the CR1 row).
    """
    outcomes, keywords = design.outcomes, design.keywords()
    did = {"treated": design.treated, "comparison": design.comparison, "small_n": design.small_n}
    with warnings.catch_warnings():
        # a municipality variance at its boundary 0 is expected with few municipalities (did.py)
        warnings.simplefilter("ignore", SingularMatrixWarning)
        parts = [
            within_group_change(assessments, outcomes, binary=design.binary, small_n=design.small_n, **keywords),
            difference_in_differences(assessments, outcomes, **did, **keywords),
            random_intercept_did(assessments, design.continuous, **did, **keywords),
        ]
    results = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else parts[0]
    sizes = linked_cell_sizes(assessments, outcomes, design.waves, design.group)
    results = publish_evaluation(results, sizes, min_cell, design.groups)
    small = small_binary_cells(assessments, design.binary, min_cell, design.waves, design.group)
    return suppress_small_binary_counts(results, small, design.groups)


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


def protected_flow(assessments: pd.DataFrame, min_cell: int, waves: Sequence[str] = DEFAULT_WAVES,
                   group: str = "group") -> pd.DataFrame:
    """results.evaluation_flow: ``flow_table`` with secondary suppression (see the module docstring).

    Per group, the atomic counts linked, lost and new (and the counts assessed at each wave
    between the first and the last) form a table with municipalities as rows and the
    group's 'all' row as known column totals; ``protect_table`` hides counts
    1..min_cell-1 and enough others that no line pins a hidden one (its LP audit checks
    it). ``n`` (assessed at the first or last wave) and the before/after sums follow
    ``_published_stages``. The 'all'/'all' rows hide a stage hidden in either group's
    total. Columns as ``flow_table`` plus ``suppression`` ('primary', 'secondary' or '').
    """
    raw = flow_table(assessments, min_cell=1, waves=waves, group=group)  # the true counts, protected below
    raw = raw.assign(either=raw["n"].astype(float),
                     key=[f"{BETWEEN}:{w}" if st == BETWEEN else st for st, w in zip(raw["stage"], raw["wave"])])
    wave_of = raw.dropna(subset=["wave"]).groupby("key")["wave"].first().to_dict()
    atoms = [*_FLOW_ATOMS, *[f"{BETWEEN}:{w}" for w in list(waves)[1:-1]]]
    rows = []
    hidden_in_totals = pd.Series(False, index=atoms)
    for group_value in [g for g in raw["group"].unique() if g != ALL]:
        part = raw.loc[raw["group"] == group_value]
        wide = part.pivot(index="municipality", columns="key", values="estimate")
        wide["either"] = part.groupby("municipality")["either"].first()
        wide = wide.loc[[m for m in wide.index if m != ALL] + [ALL]]
        protection = protect_table(wide, atoms, total_row=ALL, threshold=min_cell)
        hidden_in_totals |= protection.suppressed.loc[ALL, atoms].astype(bool)
        for municipality in wide.index:
            rows += _flow_rows(municipality, group_value, wide.loc[municipality],
                               protection.suppressed.loc[municipality], protection.primary.loc[municipality],
                               min_cell, atoms, wave_of)
    total = raw.loc[raw["group"] == ALL].set_index("key")["estimate"]
    total["either"] = raw.loc[raw["group"] == ALL, "either"].iloc[0]
    primary = pd.Series({s: 0 < total[s] < min_cell for s in atoms})
    rows += _flow_rows(ALL, ALL, total, hidden_in_totals | primary, primary, min_cell, atoms, wave_of)
    return tidy_frame(rows, ["municipality", "group", "stage", "wave"], ["share_of_pre", "suppressed", "suppression"])


def _flow_rows(municipality: str, group: str, counts: pd.Series, hidden: pd.Series, primary: pd.Series,
               min_cell: int, atoms: Sequence[str] = _FLOW_ATOMS, wave_of: Mapping[str, str] | None = None) -> list[dict]:
    shown = _published_stages(hidden, counts, min_cell)
    shown |= {key: not hidden[key] for key in atoms if key not in shown}
    either = int(counts["either"]) if shown["either"] else None
    base = counts["assessed_pre"] if shown["assessed_pre"] and counts["assessed_pre"] > 0 else None
    rows = []
    for key in ("assessed_pre", "assessed_post", *atoms):
        small = bool(primary[key]) if key in atoms else 0 < counts[key] < min_cell
        kind = "" if shown[key] else "primary" if small else "secondary"
        rows.append({"municipality": municipality, "group": group, "stage": key.split(":", 1)[0],
                     "wave": (wave_of or {}).get(key),
                     "estimate": float(counts[key]) if shown[key] else None, "n": either,
                     "share_of_pre": counts[key] / base if shown[key] and base else None,
                     "suppressed": bool(kind), "suppression": kind,
                     "method": "count of linked pseudonyms",
                     "correction": _FLOW_CORRECTION.format(max_small=min_cell - 1)})
    return rows


@dataclass(frozen=True)
class Cooperation:
    """The specialists' answers and what the cooperation change needs of them."""

    responses: pd.DataFrame
    columns: dict[str, str]  # partner sector -> column
    waves: tuple[str, ...]


def no_rows() -> pd.DataFrame:
    """An evaluation table without rows (a part skipped), with its columns and writable types."""
    frame = evaluation_frame([])
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("string")
    return frame


def evaluation_tables(
    assessments: pd.DataFrame,
    design: EvaluationDesign,
    min_cell: int,
    cooperation: Cooperation | None = None,
) -> dict[str, pd.DataFrame]:
    """The four ``results`` tables of the evaluation, keyed "results.<name>".

    ``assessments`` are the design's rows (``design_assessments``); without
    ``cooperation`` the cooperation table has no rows.
    """
    keywords = design.keywords()
    attrition = publish_attrition(
        attrition_balance(assessments, design.attrition, small_n=design.small_n, **keywords),
        attrition_sizes(assessments, design.attrition, design.waves, design.group), min_cell)
    if cooperation is None:
        cooperation_change = no_rows()
    else:
        cooperation_change = sector_cooperation_change(cooperation.responses, cooperation.columns, min_n=min_cell,
                                                       small_n=design.small_n, waves=cooperation.waves)
    return {
        "results.evaluation": evaluation_results(assessments, min_cell, design),
        "results.attrition": attrition if len(attrition) else no_rows(),
        "results.evaluation_flow": protected_flow(assessments, min_cell, design.waves, design.group),
        "results.cooperation_change": cooperation_change if len(cooperation_change) else no_rows(),
    }


def load_cooperation(study: Study, codebooks: Mapping[str, Codebook], log: Callable[[str], None]) -> Cooperation | None:
    """The specialists' cooperation answers of the plan, or None (with a log line) when they cannot be compared."""
    plan = study.plan.evaluation.cooperation if study.plan.evaluation else None
    if plan is None:
        log("cooperation change skipped: the plan has no evaluation.cooperation part")
        return None
    codebook = codebooks.get(plan.instrument)
    if codebook is None or not table_exists(study.db_path, f"anon.{plan.instrument}"):
        log(f"cooperation change skipped: the study has no '{plan.instrument}' instrument")
        return None
    waves = tuple(study.instrument_waves(codebook))
    if len(waves) < 2:
        log(f"cooperation change skipped: '{plan.instrument}' has {len(waves)} wave(s), two are needed")
        return None
    columns = cooperation_columns(codebook, plan.group, plan.prefix)
    with connect(study.db_path, read_only=True) as con:
        responses = con.execute(f'SELECT * FROM anon."{plan.instrument}"').df()
    columns = {partner: column for partner, column in columns.items() if column in responses.columns}
    if not columns or "staff_id" not in responses.columns or "sector" not in responses.columns:
        log(f"cooperation change skipped: '{plan.instrument}' has no cooperation items of group '{plan.group}'")
        return None
    responses = responses.loc[responses["wave"].isin(waves)]
    order = [c for c in ("staff_id", "wave") if c in responses.columns]
    return Cooperation(responses.sort_values(order, ignore_index=True), columns, waves)


_DESCRIPTIONS: Mapping[str, str] = {
    "evaluation": "results.evaluation: pre, post, change and DiD per outcome, group and municipality (and 'all').",
    "attrition": "results.attrition: baseline differences of pupils lost to follow-up versus those kept.",
    "evaluation_flow": "results.evaluation_flow: pupils assessed before, after, both, lost, new (small cells hidden).",
    "cooperation_change": "results.cooperation_change: specialists' cooperation with each sector, before vs after.",
}


@dg.multi_asset(
    specs=[dg.AssetSpec(["results", name], group_name="evaluation", kinds={"duckdb"},
                        deps=[["anon", "pilot"], ["anon", "specialists"]], description=_DESCRIPTIONS[name],
                        tags=PLAN_TAGS)
           for name in RESULT_TABLES],
    pool="duckdb", name="evaluation_results",
    description="Evaluate the pilot (the study's plan): linking, attrition, within-group change, difference in differences.",
)
@skip_when_up_to_date
def evaluation_results_asset(context: AssetExecutionContext, study: StudyResource):
    config, codebooks = study.load()
    plan = config.plan.evaluation
    waves = evaluation_waves(config, codebooks[plan.instrument]) if plan and plan.instrument in codebooks else []
    if plan is None or plan.instrument not in codebooks or len(waves) < 2:
        why = ("the plan has no evaluation part" if plan is None
               else f"the study has no '{plan.instrument}' instrument" if plan.instrument not in codebooks
               else f"'{plan.instrument}' has fewer than two waves")
        context.log.info(f"evaluation skipped: {why}")
        tables = {f"results.{name}": no_rows() for name in RESULT_TABLES}
        tables["results.evaluation_flow"] = tidy_frame([], ["municipality", "group", "stage", "wave"],
                                                       ["share_of_pre", "suppressed", "suppression"]).astype(
            {"municipality": "string", "group": "string", "stage": "string", "wave": "string",
             "method": "string", "ci_method": "string", "correction": "string", "suppression": "string"})
    else:
        with connect(config.db_path, read_only=True) as con:
            pilot = con.execute(f'SELECT * FROM anon."{plan.instrument}" ORDER BY pupil_id, wave').df()
        assessments, design = design_assessments(pilot, codebooks[plan.instrument],
                                                 EvaluationDesign.from_plan(plan, waves), context.log.warning,
                                                 study=config, instrument=plan.instrument)
        if len(waves) > 2:
            context.log.info(f"evaluation: change and DiD from '{waves[0]}' to '{waves[-1]}'; "
                             f"{waves[1:-1]} counted in the flow table only")
        tables = evaluation_tables(assessments, design, config.privacy.min_cell,
                                   load_cooperation(config, codebooks, context.log.info))
    write_tables(config.db_path, tables)
    context.log.info("evaluation results written")
    for name in RESULT_TABLES:
        table = tables[f"results.{name}"]
        metadata: dict = {"dagster/row_count": len(table)}
        if "warning" in table.columns:
            metadata["rows_with_warning"] = int(table["warning"].notna().sum())
        if name == "evaluation":
            metadata["waves"] = ", ".join(waves)
        yield dg.MaterializeResult(asset_key=output_key(context, "results", name), metadata=metadata)


evaluation_report = report_asset(
    "evaluation",
    deps=[*(["results", name] for name in RESULT_TABLES), meta_key("provenance")],
    description="The pilot evaluation report (flow, attrition, effects with intervals), et and en.",
)

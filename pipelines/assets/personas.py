"""Persona assets: the plan's instrument (one wave) -> results.persona_* (issue 5, items 5-8; issue 10).

Thin wiring around the plain functions of ``personas/`` (methods and their validation
live there). Everything the analysis decides comes from the study's plan
(``plan.personas`` in the study file, :class:`pipelines.plan.PersonaPlan`): the
instrument and wave, the 0/1 indicators (a column as it is, or a variable cut with
``below``/``at_least``/``event``), the fit settings, the outcomes, the support-measure
group and the place column. The seed is ``derived_seed(study.seed, "personas")``.

Steps: build the indicators; drop those that are entirely missing, constant or not 0/1 in
the wave (each dropped one is a row ``indicator_dropped`` of
``results.persona_selection`` with its reason, and a line in the run log; they are not
counted in the BIC); fit k = 1..K latent classes with many random starts, choose k,
judge the chosen solution (posterior certainty, bootstrap Jaccard, agreement with
k-modes), build the persona-card rows and assign every pupil of the wave to a class.
With fewer than two usable indicators nothing is fitted: ``results.persona_selection``
says why (a ``no_fit`` row) and the other tables are empty. The four tables are written
in one transaction. Missing answers stay in the fit (full-information likelihood).

Researchers can rename personas in ``studies/<study>.personas.yaml`` (optional): a map
from class number (1..k) to any of name_et, name_en, description_et, description_en.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import yaml
from dagster import AssetExecutionContext

from analyses.small_cells import DEFAULT_MIN_CELL
from analyses.tidy import tidy_frame
from personas import (
    assign_classes,
    bootstrap_stability,
    encode_indicators,
    fit_latent_classes,
    indicator_rows,
    kmodes_agreement,
    no_fit_rows,
    persona_profiles,
    posterior,
    quality_table,
    selection_table,
    usable_indicators,
    with_progress,
)
from personas import cards
from personas.cards import OVERRIDE_KEYS
from personas.quality import quality_frame
from personas.selection import DROP_REASONS, MIN_INDICATORS
from pipelines.assets.common import meta_key, output_key
from pipelines.assets.reports import report_asset
from pipelines.config import Codebook, Study, normalise_text
from pipelines.plan import PersonaIndicator, PersonaPlan, derived_seed
from pipelines.freshness import skip_when_up_to_date
from pipelines.resources import StudyResource
from pipelines.scales import with_scale_scores
from pipelines.study_plan import first_wave, with_plan_outcomes
from pipelines.warehouse import connect, write_tables

RESULT_TABLES = ("persona_selection", "persona_profiles", "persona_assignments", "persona_quality")
PLAN_TAGS = {"mapstudy/plan": "personas"}
#: Processes for the fits: the run shares its machine with the rest of the pipeline.
N_JOBS = 1
MISSING_PLACE = "(missing)"


def persona_seed(study: Study) -> int:
    """The personas' seed, derived from the study seed (recorded in meta.analysis_plan too)."""
    return derived_seed(study.seed, "personas")


def _code_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def indicator_column(frame: pd.DataFrame, spec: PersonaIndicator) -> pd.Series:
    """The 0/1 (float, NaN = missing) column of one planned indicator; all NaN if its variable is absent."""
    if spec.variable not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    source = frame[spec.variable]
    if spec.event is not None:
        events = {normalise_text(_code_text(v)) for v in spec.event}
        hit = source.map(lambda v: np.nan if pd.isna(v) else float(normalise_text(_code_text(v)) in events))
        return hit.astype("float64")
    values = pd.to_numeric(source, errors="coerce").astype("float64")
    if spec.below is not None:
        return pd.Series(np.where(values.isna(), np.nan, (values < spec.below).astype("float64")), index=frame.index)
    if spec.at_least is not None:
        return pd.Series(np.where(values.isna(), np.nan, (values >= spec.at_least).astype("float64")),
                         index=frame.index)
    return values


def persona_frame(rows: pd.DataFrame, codebook: Codebook, plan: PersonaPlan, wave: str | None,
                  study: Study | None = None) -> pd.DataFrame:
    """The wave's rows with scale scores, the plan's outcomes and one column per planned indicator."""
    frame = rows if wave is None or "wave" not in rows.columns else rows[rows["wave"] == wave]
    frame = with_scale_scores(frame.reset_index(drop=True), codebook)
    if study is not None:
        frame = with_plan_outcomes(frame, study, plan.instrument)
    indicators = {spec.column: indicator_column(frame, spec) for spec in plan.indicator_specs()}
    return frame.drop(columns=[c for c in indicators if c in frame.columns]).assign(**indicators)


def _cut_text(spec: PersonaIndicator, lang: str) -> str:
    if spec.below is not None:
        return f" (< {_code_text(spec.below)})"
    if spec.at_least is not None:
        return f" (≥ {_code_text(spec.at_least)})"
    if spec.event is not None:
        return " (" + ", ".join(_code_text(v) for v in spec.event) + ")"
    return ""


def indicator_labels(codebook: Codebook, plan: PersonaPlan) -> dict[str, dict[str, str]]:
    """{indicator: {"et": ..., "en": ...}}: the plan's label, else the codebook's (with the cut), else the name."""
    labels = {}
    for spec in plan.indicator_specs():
        if spec.label is not None:
            labels[spec.column] = {"et": spec.label.et, "en": spec.label.en}
            continue
        entry = (codebook.variables.get(spec.variable) or codebook.derived.get(spec.variable)
                 or codebook.scales.get(spec.variable))
        if entry is None:
            labels[spec.column] = {"et": spec.column, "en": spec.column}
        else:
            labels[spec.column] = {lang: getattr(entry.label, lang) + _cut_text(spec, lang) for lang in ("et", "en")}
    return labels


def support_columns(codebook: Codebook, plan: PersonaPlan, frame: pd.DataFrame) -> list[str]:
    if not plan.support_group:
        return []
    return [name for name, var in codebook.variables.items()
            if var.group == plan.support_group and name in frame.columns]


def usable_outcomes(frame: pd.DataFrame, plan: PersonaPlan) -> tuple[list[str], list[str]]:
    """Plan outcomes the frame has with at least two answered values; and those left out."""
    used, skipped = [], []
    for name in plan.outcomes:
        if name in frame.columns and frame[name].dropna().nunique() >= 2:
            used.append(name)
        else:
            skipped.append(name)
    return used, skipped


def load_overrides(path: Path) -> dict[int, dict[str, str]]:
    """Researchers' persona names and descriptions; an absent file means none."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    overrides = {}
    for key, texts in data.items():
        unknown = set(texts) - set(OVERRIDE_KEYS)
        if unknown:
            raise ValueError(f"{path.name}: class {key}: unknown keys {sorted(unknown)}; allowed {list(OVERRIDE_KEYS)}")
        overrides[int(key)] = {k: str(v) for k, v in texts.items()}
    return overrides


@dataclass
class PersonaRun:
    """The four tables and what the run decided (for the log and the asset metadata)."""

    tables: dict[str, pd.DataFrame]
    wave: str | None
    seed: int
    used: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    skipped_outcomes: list[str] = field(default_factory=list)
    no_fit: str | None = None

    @property
    def chosen_k(self) -> int | None:
        selection = self.tables["results.persona_selection"]
        chosen = selection.loc[selection["term"] == "chosen_k", "estimate"]
        return int(chosen.item()) if len(chosen) else None


def empty_tables() -> dict[str, pd.DataFrame]:
    """Profiles, assignments and quality without rows (no fit), with their columns."""
    profiles = tidy_frame([], cards.ID_COLUMNS, cards.EXTRA_COLUMNS)
    assignments = tidy_frame([], ["analysis", "pupil_id", "class"], ["assigned"])
    for frame in (profiles, assignments):
        for column in frame.columns:
            if frame[column].dtype == object:
                frame[column] = frame[column].astype("string")
    quality = quality_frame([])
    for column in quality.columns:
        if quality[column].dtype == object:
            quality[column] = quality[column].astype("string")
    return {"results.persona_profiles": profiles, "results.persona_assignments": assignments,
            "results.persona_quality": quality}


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Selection rows of several kinds in one table; ``n_classes`` stays an integer column."""
    out = pd.concat(parts, ignore_index=True)
    out["n_classes"] = pd.array(out["n_classes"], dtype="Int64")
    out["chosen"] = pd.array(out["chosen"], dtype="boolean")
    return out


def persona_tables(rows: pd.DataFrame, codebook: Codebook, plan: PersonaPlan, seed: int, wave: str | None,
                   overrides: dict[int, dict[str, str]] | None = None, study: Study | None = None,
                   n_jobs: int = N_JOBS) -> PersonaRun:
    """The four results tables from all rows of the plan's instrument (the wave is selected here)."""
    frame = persona_frame(rows, codebook, plan, wave, study)
    names = [spec.column for spec in plan.indicator_specs()]
    labels = indicator_labels(codebook, plan)
    used, dropped = usable_indicators(frame, names)
    screened = indicator_rows(frame, used, dropped, labels, names)
    run = PersonaRun({}, wave, seed, used, dropped)
    reason = "no_pupils" if frame.empty else "too_few_indicators" if len(used) < MIN_INDICATORS else None
    if reason:
        run.no_fit = reason
        selection = _stack([screened, no_fit_rows(reason, len(used), len(frame))])
        run.tables = {"results.persona_selection": selection, **empty_tables()}
        return run
    levels = {name: [0.0, 1.0] for name in used}
    indicators = encode_indicators(frame, categorical=used, levels=levels)
    fit = fit_latent_classes(indicators, k_max=plan.k_max, n_init=plan.n_init, seed=seed,
                             short_iter=plan.short_iter, n_final=min(plan.n_final, plan.n_init),
                             max_iter=plan.max_iter, n_jobs=n_jobs)
    selection = selection_table(fit, min_class_share=plan.min_class_share, n_jobs=n_jobs)
    k = int(selection.loc[selection["term"] == "chosen_k", "estimate"].item())
    solution = fit.solutions[k]
    parts = [quality_table(posterior(solution, indicators), solution.weights)]
    if plan.n_boot > 0:
        parts.append(bootstrap_stability(solution, indicators, n_boot=plan.n_boot, seed=seed,
                                         n_init=plan.boot_n_init, n_jobs=n_jobs))
    parts.append(kmodes_agreement(solution, indicators, seed=seed, n_init=plan.kmodes_n_init))
    quality = pd.concat(parts, ignore_index=True)
    outcomes, run.skipped_outcomes = usable_outcomes(frame, plan)
    supports = support_columns(codebook, plan, frame)
    profiles = persona_profiles(
        solution, indicators, labels,
        outcomes=frame[outcomes].astype(object).where(frame[outcomes].notna(), np.nan) if outcomes else None,
        groups=frame[plan.place].astype(object).fillna(MISSING_PLACE) if plan.place in frame.columns else None,
        supports=frame[supports] if supports else None, overrides=overrides,
        focus_levels={name: 1.0 for name in used},
        min_cell=study.privacy.min_cell if study is not None else DEFAULT_MIN_CELL,
    )
    id_column = "pupil_id" if "pupil_id" in frame.columns else frame.columns[0]
    run.tables = {
        "results.persona_selection": _stack([screened, selection]),
        "results.persona_profiles": profiles,
        "results.persona_assignments": assign_classes(solution, indicators, frame[id_column]),
        "results.persona_quality": quality,
    }
    return run


def log_decisions(run: PersonaRun, log: Callable[[str], None]) -> None:
    """One line per dropped indicator or outcome and for a skipped fit (names only, never values)."""
    for name, reason in run.dropped.items():
        log(f"persona indicator '{name}' dropped (wave {run.wave}): {DROP_REASONS[reason]}")
    for name in run.skipped_outcomes:
        log(f"persona outcome '{name}' left out: absent or without two answered values in wave {run.wave}")
    if run.no_fit:
        log(f"no persona model fitted: {run.no_fit} ({len(run.used)} usable indicator(s))")


_DESCRIPTIONS = {
    "persona_selection": "results.persona_selection: indicators used and dropped; BIC, aBIC, AIC, ICL, entropy R2, smallest class per k; the chosen k and why (or why nothing was fitted).",
    "persona_profiles": "results.persona_profiles: persona-card rows (size, characteristics, outcomes, places, support, texts).",
    "persona_assignments": "results.persona_assignments: each pupil's posterior per class (the plan's wave); `assigned` marks the modal class.",
    "persona_quality": "results.persona_quality: average posterior, odds of correct classification, entropy R2, bootstrap Jaccard, k-modes ARI.",
}


@dg.multi_asset(
    specs=[dg.AssetSpec(["results", name], group_name="personas", kinds={"duckdb"},
                        deps=[["anon", "pupils"]], description=_DESCRIPTIONS[name], tags=PLAN_TAGS)
           for name in RESULT_TABLES],
    pool="duckdb", name="persona_results",
    description="Latent class personas of one wave of pupils (the study's plan): fit, select, validate, card data, assignments.",
)
@skip_when_up_to_date
def persona_results_asset(context: AssetExecutionContext, study: StudyResource):
    config, codebooks = study.load()
    plan = config.plan.personas
    seed = persona_seed(config)
    if plan is None or plan.instrument not in codebooks:
        why = "the plan has no personas part" if plan is None else f"the study has no '{plan.instrument}' instrument"
        context.log.info(f"personas skipped: {why}")
        run = PersonaRun({"results.persona_selection": no_fit_rows("not_planned", 0, 0), **empty_tables()},
                         None, seed, no_fit="not_planned")
    else:
        codebook = codebooks[plan.instrument]
        wave = first_wave(config, codebook, plan.wave)
        with connect(config.db_path, read_only=True) as con:
            rows = con.execute(f'SELECT * FROM anon."{plan.instrument}"').df()
        order = [c for c in ("pupil_id", "wave") if c in rows.columns]
        rows = rows.sort_values(order, ignore_index=True) if order else rows
        overrides = load_overrides(study.path().parent / f"{config.study}.personas.yaml")
        run = with_progress(context.log.info, persona_tables, rows, codebook, plan, seed, wave, overrides=overrides, study=config)
        log_decisions(run, context.log.warning)
    write_tables(config.db_path, run.tables)
    context.log.info("persona results written")
    for name in RESULT_TABLES:
        metadata: dict = {"dagster/row_count": len(run.tables[f"results.{name}"])}
        if name == "persona_selection":
            metadata |= {"seed": run.seed, "wave": run.wave or "", "indicators_used": len(run.used),
                         "indicators_dropped": ", ".join(run.dropped) or "none"}
            if run.chosen_k is not None:
                metadata["chosen_k"] = run.chosen_k
            if run.no_fit:
                metadata["no_fit"] = run.no_fit
        yield dg.MaterializeResult(asset_key=output_key(context, "results", name), metadata=metadata)


persona_report = report_asset(
    "personas",
    deps=[*(["results", name] for name in RESULT_TABLES), meta_key("provenance"),
          ["results", "published_family"]],  # the family table its municipality counts come from
    description="The persona cards (size, distinguishing characteristics, outcomes, places, support), et and en.",
)

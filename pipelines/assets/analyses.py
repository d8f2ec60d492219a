"""Analysis assets: the dropout-cause statistics of a study as tidy `results.*` tables.

Thin by design: each asset reads `anon.*` from the study's DuckDB (with the plan's
outcome columns and the scale scores added), calls the plain functions of `analyses/`
(which know nothing of Dagster or files), adds the identifying columns (instrument,
wave, geography) and writes its tables in one transaction. What is analysed is the
study's analysis plan (``study.plan``, pipelines/plan.py): one block of rows per plan
entry. A plan entry whose instrument the study lacks, or whose outcome its table does
not hold, gives no rows and a line in the run log, never an error; a model that cannot
be estimated (no usable term, too few events) gives a ``not_estimable`` row saying why.

The `table_*` builders below are plain functions of data frames, codebooks and plan
entries, so a researcher can call them from a notebook on a frame read from DuckDB.

Every results table carries the blocking check `rows_name_their_method`: a row without a
method cannot be published, so it is checked in memory before anything is written.
Metadata and log lines carry counts, method and column names only, never a value of an
identifying column.
"""

from collections.abc import Callable, Iterable, Mapping

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext

from analyses.associations import associations
from analyses.descriptives import describe_categorical, describe_multiselect, describe_numeric
from analyses.imputation import missing_pattern, multiple_imputation_models
from analyses.models import fit_dropout_models
from analyses.scales import scale_reliability
from analyses.screening import screening_accuracy
from analyses.tidy import ESTIMATE_COLUMNS, METHOD_COLUMNS
from pipelines import warehouse
from pipelines.analysis_specs import (
    GEOGRAPHIES,
    ModelSpec,
    candidate_factors,
    descriptive_variables,
    group_members,
    model_columns,
    model_specs,
)
from pipelines.assets.common import PLAN_TAG, output_key
from pipelines.config import Codebook, Study
from pipelines.plan import AssociationPlan, ReasonsPlan, ScreeningPlan
from pipelines.freshness import skip_when_up_to_date
from pipelines.resources import StudyResource
from pipelines.scales import scale_definitions, with_scale_scores
from pipelines.study_plan import with_plan_outcomes

METHOD_CHECK = "rows_name_their_method"
#: Estimator refitted on each imputed dataset: the cluster-robust CR1 logit, fast enough
#: for m = 20 at national scale; the headline random-intercept fit is complete-case.
#: The number of imputations is the plan's (``plan.imputations``; 0: no imputation rows).
IMPUTATION_ESTIMATOR = "CR1"
#: A model needs at least this many events and non-events among its complete cases.
MIN_EVENTS = 10
#: The method of a row that says a planned model could not be estimated, and why.
NOT_ESTIMABLE = "not_estimable"
Frames = dict[str, pd.DataFrame]
Log = Callable[[str], None]


class ResultsContractError(RuntimeError):
    """A results table breaks the tidy contract; nothing was written."""


def _quiet(message: str) -> None:
    """The default log of the table builders (a notebook call prints nothing)."""


def with_ids(frame: pd.DataFrame, **ids: object) -> pd.DataFrame:
    """The frame with constant identifying columns put first (instrument, wave ...)."""
    out = frame.copy()
    for position, (column, value) in enumerate(ids.items()):
        out.insert(position, column, value)
    return out


def _concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def empty_results(*ids: str) -> pd.DataFrame:
    """A results table with no rows but the tidy contract's columns (a plan part with nothing to show)."""
    columns = {c: pd.Series(dtype="string") for c in ids}
    columns |= {c: pd.Series(dtype="float64") for c in ESTIMATE_COLUMNS}
    columns |= {c: pd.Series(dtype="string") for c in METHOD_COLUMNS}
    return pd.DataFrame(columns)


def _or_empty(frame: pd.DataFrame, *ids: str) -> pd.DataFrame:
    return frame if len(frame.columns) else empty_results(*ids)


def _waves(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if "wave" not in frame.columns or frame["wave"].isna().all():
        return [("", frame)] if len(frame) else []
    return [(str(wave), sub) for wave, sub in frame.groupby("wave", sort=True)]


def scored(frame: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """An anon table with its scale scores (the score columns are named after the scales)."""
    return with_scale_scores(frame, codebook) if codebook.scales and len(frame) else frame


def table_descriptives(frame: pd.DataFrame, codebook: Codebook, outcome: str, study: Study | None = None,
                       instrument: str | None = None) -> pd.DataFrame:
    """An instrument's characteristics per wave for the whole study, each county and municipality.

    ``geography`` says the grouping (study / county / municipality); the columns of the
    coarser groupings are empty. Categorical rows carry ``level``, numeric rows ``measure``.
    """
    categorical, numeric = descriptive_variables(codebook, frame, outcome, study)
    places = [c for c in ("county", "municipality") if c in frame.columns]
    frame = frame[["wave", *places, *categorical, *numeric]]  # narrow: groups copy less
    parts = []
    for geography, columns in GEOGRAPHIES.items():
        if not set(columns) <= set(places):
            continue
        by = ["wave", *columns]
        if categorical:
            parts.append(with_ids(describe_categorical(frame, categorical, by), geography=geography))
        if numeric:
            parts.append(with_ids(describe_numeric(frame, numeric, by), geography=geography))
    table = _concat(parts)
    if table.empty:
        return table
    table = with_ids(table, instrument=instrument or codebook.instrument, outcome=outcome)
    ordered = ["instrument", "outcome", "geography", "wave", "county", "municipality", "variable", "level", "measure"]
    return table[[c for c in ordered if c in table.columns] + [c for c in table.columns if c not in ordered]]


def table_associations(frame: pd.DataFrame, codebook: Codebook, entry: AssociationPlan, seed: int,
                       study: Study | None = None, log: Log = _quiet) -> pd.DataFrame:
    """Every candidate factor of the instrument vs the entry's outcome, per wave.

    Each instrument and wave is one family for the Benjamini-Hochberg adjustment (the
    tests that answer one question on one sample); the Monte-Carlo Fisher tests use the
    study seed.
    """
    factors = candidate_factors(codebook, frame, entry.outcome, study)
    if not factors:
        log(f"associations: no candidate factor of {entry.instrument} for {entry.outcome}")
        return pd.DataFrame()
    parts = []
    for wave, sub in _waves(frame):
        if sub[entry.outcome].nunique() < 2:
            log(f"associations: {entry.instrument} {entry.outcome} takes one value in wave {wave}: not tested")
            continue
        result = associations(sub, entry.outcome, factors, outcome_type=entry.kind, seed=seed)
        parts.append(with_ids(result, instrument=entry.instrument, wave=wave))
    return _concat(parts)


def model_frame(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The rows of the model's wave with a cluster, with the plan's coding of the terms.

    A pupil without a school cannot be placed in a clustered model; rescaled terms are
    added and reference levels put first (:func:`pipelines.analysis_specs.model_columns`).
    """
    rows = frame
    if spec.wave is not None and "wave" in frame.columns:
        rows = rows.loc[rows["wave"] == spec.wave]
    if spec.cluster and spec.cluster in rows.columns:
        rows = rows.loc[rows[spec.cluster].notna()]
    return model_columns(rows, spec)


def usable_terms(frame: pd.DataFrame, spec: ModelSpec) -> tuple[list[str], dict[str, str]]:
    """The spec's terms that the frame holds with at least two values, and why the others are left out."""
    usable, left_out = [], {}
    for term in spec.terms:
        if term not in frame.columns:
            left_out[term] = "not in the data"
        elif frame[term].dropna().nunique() < 2:
            left_out[term] = "constant or missing"
        else:
            usable.append(term)
    return usable, left_out


def not_estimable_reason(frame: pd.DataFrame, spec: ModelSpec, terms: list[str]) -> str | None:
    """Why the model cannot be estimated on this frame (None: it can be tried)."""
    if spec.outcome not in frame.columns:
        return f"the outcome {spec.outcome} is not in the data"
    if spec.cluster and spec.cluster not in frame.columns:
        return f"the cluster {spec.cluster} is not in the data"
    if not terms:
        return "no term has two or more values"
    complete = frame[[spec.outcome, *terms, *([spec.cluster] if spec.cluster else [])]].dropna()
    outcome = pd.to_numeric(complete[spec.outcome], errors="coerce")
    if not outcome.dropna().isin([0, 1]).all():
        return f"the outcome {spec.outcome} is not 0/1"
    events, non_events = int((outcome == 1).sum()), int((outcome == 0).sum())
    if min(events, non_events) < MIN_EVENTS:
        return f"fewer than {MIN_EVENTS} events or non-events among the complete cases"
    if spec.cluster and complete[spec.cluster].nunique() < 2:
        return "fewer than two clusters among the complete cases"
    return None


def not_estimable_tables(spec: ModelSpec, reason: str, n: int) -> Frames:
    """``models`` and ``model_fit`` rows saying that a planned model was not estimated, and why."""
    row = {"term": None, "effect": None, "estimate": np.nan, "std_error": np.nan, "statistic": np.nan,
           "p_value": np.nan, "conf_low": np.nan, "conf_high": np.nan, "n": n, "method": NOT_ESTIMABLE,
           "ci_method": "none", "correction": "none", "headline": False, "note": reason}
    ids = {"model": spec.name, "outcome": spec.outcome, "wave": spec.wave}
    models = with_ids(pd.DataFrame([row]), **ids)
    fit = with_ids(pd.DataFrame([{**row, "estimator": "specification", "measure": "not_estimable"}]), **ids)
    return {"models": models, "model_fit": fit}


def _term_scale(models: pd.DataFrame, spec: ModelSpec) -> pd.Series:
    notes = {}
    for term in spec.terms:
        note = spec.term_note(term)
        if note is not None:
            notes[term] = note
    if not notes:
        return pd.Series([None] * len(models), index=models.index, dtype="object")
    return models["term"].map(lambda t: None if not isinstance(t, str)
                              else notes.get(t, notes.get(t.split(":", 1)[0])))


def tables_models(frame: pd.DataFrame, spec: ModelSpec, seed: int, imputations: int = 20,
                  log: Log = _quiet) -> Frames:
    """``models`` and ``model_fit`` of one specification: every estimator, then the MI fit.

    The pooled multiple-imputation rows (method ``..._mice_pooled``) join the estimators;
    the complete-case rows the imputation function returns beside them are the CR1 rows
    already present, so they are not repeated. ``imputations`` 0 leaves MI out. Terms
    that the data do not hold, or hold with one value, are left out (logged); a model
    with no usable term or too few events is one ``not_estimable`` row.
    """
    data = model_frame(frame, spec)
    terms, left_out = usable_terms(data, spec)
    for term, why in left_out.items():
        log(f"model {spec.name}: term {term} left out ({why})")
    reason = not_estimable_reason(data, spec, terms)
    if reason is None:
        try:
            models, fit = fit_dropout_models(data, spec.outcome, terms, spec.cluster, model=spec.name)
        except (ValueError, KeyError, np.linalg.LinAlgError) as exc:
            reason = f"the fit failed ({type(exc).__name__})"
    if reason is not None:
        log(f"model {spec.name}: not estimable: {reason}")
        return not_estimable_tables(spec, reason, len(data))
    parts_models, parts_fit = [models], [fit]
    if imputations > 0:
        try:
            mi_models, mi_fit = multiple_imputation_models(data, spec.outcome, terms, spec.cluster, model=spec.name,
                                                           m=imputations, seed=seed, estimator=IMPUTATION_ESTIMATOR)
            parts_models.append(mi_models.loc[~mi_models["method"].str.endswith("_complete_case")])
            parts_fit.append(mi_fit)
        except (ValueError, KeyError, np.linalg.LinAlgError) as exc:
            log(f"model {spec.name}: multiple imputation failed ({type(exc).__name__}); complete-case rows only")
    else:
        log(f"model {spec.name}: plan.imputations is 0, no multiple imputation")
    ids = {"model": spec.name, "outcome": spec.outcome, "wave": spec.wave}
    models = pd.concat(parts_models, ignore_index=True).drop(columns="model")
    models["term_scale"] = _term_scale(models, spec)
    return {
        "models": with_ids(models, **ids),
        "model_fit": with_ids(pd.concat(parts_fit, ignore_index=True).drop(columns="model"), **ids),
    }


def table_missingness(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The missingness patterns of the model's outcome and terms (mice's md.pattern)."""
    data = model_frame(frame, spec)
    columns = [c for c in (spec.outcome, *spec.terms) if c in data.columns]
    if data.empty or not columns:
        return pd.DataFrame()
    return with_ids(missing_pattern(data, columns), model=spec.name, wave=spec.wave)


def table_reasons(frame: pd.DataFrame, codebook: Codebook, entry: ReasonsPlan, log: Log = _quiet) -> pd.DataFrame:
    """Shares of the reasons given by those with the event, per wave, whole study and county."""
    options = [o for o in group_members(codebook, entry.group) if o in frame.columns]
    if not options or entry.outcome not in frame.columns:
        log(f"reasons: {entry.instrument} has no columns of group {entry.group} or no {entry.outcome}")
        return pd.DataFrame()
    events = frame.loc[pd.to_numeric(frame[entry.outcome], errors="coerce") == 1]
    if events.empty:
        log(f"reasons: no {entry.instrument} record has {entry.outcome} = 1")
        return pd.DataFrame()
    parts = [with_ids(describe_multiselect(events, options, ["wave", *GEOGRAPHIES[g]]), geography=g)
             for g in ("study", "county") if set(GEOGRAPHIES[g]) <= set(events.columns)]
    table = with_ids(_concat(parts), instrument=entry.instrument, group=entry.group, outcome=entry.outcome)
    ordered = ["instrument", "group", "outcome", "geography", "wave", "county", "option"]
    return table[ordered + [c for c in table.columns if c not in ordered]]


def top_level(frame: pd.DataFrame, codebook: Codebook, outcome: str) -> pd.Series:
    """1 where the outcome is at its highest code (the value set's, else the data's), 0 below, missing if missing."""
    level = pd.to_numeric(frame[outcome], errors="coerce")
    variable = codebook.variables.get(outcome)
    codes = codebook.value_sets[variable.values].codes if variable is not None and variable.values else {}
    numeric = [c for c in codes if isinstance(c, int)]
    highest = max(numeric) if numeric else level.max()
    return (level == highest).astype("Float64").where(level.notna())


def screening_indicators(codebook: Codebook, frame: pd.DataFrame, entry: ScreeningPlan) -> tuple[list[str], list[str]]:
    """(flags, scores) of a screening entry that the frame holds: flags, the groups' members, the combined."""
    flags = [*entry.flags, *(m for g in entry.flag_groups for m in group_members(codebook, g)), *entry.combined]
    flags = [f for f in dict.fromkeys(flags) if f in frame.columns]
    scores = [s for s in entry.scores if s in frame.columns]
    return flags, scores


def table_screening(frame: pd.DataFrame, codebook: Codebook, entry: ScreeningPlan, log: Log = _quiet) -> pd.DataFrame:
    """The entry's flags and scores judged against its outcome (or its top level), per wave."""
    if entry.outcome not in frame.columns:
        log(f"screening: {entry.instrument} has no column {entry.outcome}")
        return pd.DataFrame()
    outcome = entry.outcome
    if entry.outcome_top_level:
        outcome = f"{entry.outcome}_high"
        frame = frame.assign(**{outcome: top_level(frame, codebook, entry.outcome)})
    flags, scores = screening_indicators(codebook, frame, entry)
    if not flags and not scores:
        log(f"screening: no indicator of the plan is in {entry.instrument}")
        return pd.DataFrame()
    parts = []
    for wave, sub in _waves(frame):
        if pd.to_numeric(sub[outcome], errors="coerce").dropna().nunique() < 2:
            log(f"screening: {entry.instrument} {outcome} takes one value in wave {wave}: not judged")
            continue
        result = screening_accuracy(sub, outcome, flags=flags, scores=scores)
        parts.append(with_ids(result, instrument=entry.instrument, wave=wave))
    return _concat(parts)


def table_scales(frames: Mapping[str, pd.DataFrame], codebooks: Mapping[str, Codebook]) -> pd.DataFrame:
    """Reliability of every scale of every instrument's codebook, per wave."""
    parts = []
    for instrument, codebook in codebooks.items():
        if instrument not in frames:
            continue
        for definition in scale_definitions(codebook):
            for wave, sub in _waves(frames[instrument]):
                parts.append(with_ids(scale_reliability(sub, definition), instrument=instrument, wave=wave))
    return _concat(parts)


def rows_without_method(frame: pd.DataFrame) -> int:
    """Rows whose ``method`` is missing or empty (all rows when the column is absent)."""
    if "method" not in frame.columns:
        return len(frame)
    method = frame["method"].astype("string")
    return int((method.isna() | (method.str.strip() == "")).sum())


def missing_contract_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in (*ESTIMATE_COLUMNS, *METHOD_COLUMNS) if c not in frame.columns]


def read_instrument(config: Study, instrument: str, codebooks: Mapping[str, Codebook]) -> pd.DataFrame:
    """``anon.<instrument>`` with the plan's outcome columns and the scale scores."""
    frame = warehouse.read_table(config.db_path, f"anon.{instrument}")
    return scored(with_plan_outcomes(frame, config, instrument), codebooks[instrument])


class _Reader:
    """Reads each instrument once per asset, and says (once) what a plan entry cannot use."""

    def __init__(self, config: Study, codebooks: Mapping[str, Codebook], log: Log) -> None:
        self.config, self.codebooks, self.log, self.frames = config, codebooks, log, {}

    def get(self, part: str, instrument: str, columns: Iterable[str] = ()) -> pd.DataFrame | None:
        if instrument not in self.codebooks:
            self.log(f"{part}: skipped for {instrument} (no {instrument} inputs)")
            return None
        if instrument not in self.frames:
            self.frames[instrument] = read_instrument(self.config, instrument, self.codebooks)
        frame = self.frames[instrument]
        if frame.empty:
            self.log(f"{part}: skipped for {instrument} (the table has no rows)")
            return None
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            self.log(f"{part}: skipped for {instrument} (no column {', '.join(absent)})")
            return None
        return frame


def _entries(config: Study, part: str, log: Log) -> list:
    """The plan's entries of a part; an empty part says so in the log (and gives an empty table)."""
    entries = list(getattr(config.plan, part))
    if not entries:
        log(f"{part}: the plan has no {part} part, no rows")
    return entries


Builder = Callable[[Study, Mapping[str, Codebook], Log], Frames]
Summary = Callable[[str, pd.DataFrame], dict]


def _build_descriptives(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    read, parts = _Reader(config, codebooks, log), []
    for entry in _entries(config, "descriptives", log):
        frame = read.get("descriptives", entry.instrument, [entry.outcome])
        if frame is not None:
            parts.append(table_descriptives(frame, codebooks[entry.instrument], entry.outcome, config))
    return {"descriptives": _or_empty(_concat(parts), "instrument", "outcome", "geography", "wave", "variable")}


def _build_associations(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    read, parts = _Reader(config, codebooks, log), []
    for entry in _entries(config, "associations", log):
        frame = read.get("associations", entry.instrument, [entry.outcome])
        if frame is not None:
            parts.append(table_associations(frame, codebooks[entry.instrument], entry, config.seed, config, log))
    return {"associations": _or_empty(_concat(parts), "instrument", "wave", "outcome", "factor")}


def _build_models(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    read, models, fits = _Reader(config, codebooks, log), [], []
    _entries(config, "models", log)
    for spec in model_specs(config, dict(codebooks)):
        frame = read.get("models", spec.instrument)
        if frame is None:
            continue
        tables = tables_models(frame, spec, config.seed, config.plan.imputations, log)
        models.append(tables["models"])
        fits.append(tables["model_fit"])
    ids = ("model", "outcome", "wave", "term")
    return {"models": _or_empty(_concat(models), *ids), "model_fit": _or_empty(_concat(fits), *ids)}


def _build_missingness(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    read, parts = _Reader(config, codebooks, log), []
    for spec in model_specs(config, dict(codebooks)):
        frame = read.get("missingness", spec.instrument)
        if frame is not None:
            parts.append(table_missingness(frame, spec))
    return {"missingness": _or_empty(_concat(parts), "model", "wave", "pattern", "variable")}


def _build_reasons(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    read, parts = _Reader(config, codebooks, log), []
    for entry in _entries(config, "reasons", log):
        frame = read.get("reasons", entry.instrument, [entry.outcome])
        if frame is not None:
            parts.append(table_reasons(frame, codebooks[entry.instrument], entry, log))
    return {"reasons": _or_empty(_concat(parts), "instrument", "group", "outcome", "geography", "wave", "option")}


def _build_screening(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    read, parts = _Reader(config, codebooks, log), []
    for entry in _entries(config, "screening", log):
        frame = read.get("screening", entry.instrument, [entry.outcome])
        if frame is not None:
            parts.append(table_screening(frame, codebooks[entry.instrument], entry, log))
    return {"screening": _or_empty(_concat(parts), "instrument", "wave", "outcome", "indicator")}


def _build_scales(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    read = _Reader(config, codebooks, log)
    frames = {}
    for instrument, codebook in codebooks.items():
        if not codebook.scales:
            continue
        frame = read.get("scales", instrument)
        if frame is not None:
            frames[instrument] = frame
    if not frames:
        log("scales: no instrument of the study has a codebook scale with data")
    return {"scales": _or_empty(table_scales(frames, codebooks), "instrument", "wave", "scale")}


def _results_asset(name: str, descriptions: Mapping[str, str], instruments: Iterable[str], build: Builder,
                   summary: Summary, part: str | None = None) -> dg.AssetsDefinition:
    """A multi-asset writing ``results.<table>`` for each described table, with the method check.

    ``instruments`` become its deps on ``anon.<instrument>``; ``part`` (the plan part it
    analyses) becomes the tag ``mapstudy/plan``, by which study_definitions.py leaves it out
    when the plan has no such part.
    """
    deps = [["anon", i] for i in instruments]
    tags = {PLAN_TAG: part} if part else {}
    specs = [dg.AssetSpec(["results", t], group_name="analyses", deps=deps, kinds={"duckdb"}, description=d,
                          tags=tags)
             for t, d in descriptions.items()]
    checks = [dg.AssetCheckSpec(METHOD_CHECK, asset=["results", t], blocking=True,
                                description="Every row names its method and has the tidy contract's columns.")
              for t in descriptions]

    @dg.multi_asset(specs=specs, check_specs=checks, pool="duckdb", name=name,
                    description=f"Compute and write {', '.join('results.' + t for t in descriptions)}.")
    @skip_when_up_to_date(modules=(build.__module__, summary.__module__))
    def _asset(context: AssetExecutionContext, study: StudyResource):
        config, codebooks = study.load()
        frames = build(config, codebooks, context.log.info)
        problems = {t: rows_without_method(f) + len(missing_contract_columns(f)) for t, f in frames.items()}
        if any(problems.values()):
            for table, count in problems.items():
                yield dg.AssetCheckResult(asset_key=output_key(context, "results", table), check_name=METHOD_CHECK,
                                          passed=count == 0, metadata={"problems": count})
            raise ResultsContractError("results tables break the tidy contract, nothing written: "
                                       + ", ".join(t for t, n in problems.items() if n))
        warehouse.write_tables(config.db_path, {f"results.{t}": f for t, f in frames.items()})
        for table, frame in frames.items():
            context.log.info(f"results.{table}: {len(frame)} rows")
            yield dg.MaterializeResult(asset_key=output_key(context, "results", table),
                                       metadata={"dagster/row_count": len(frame),
                                                 **(summary(table, frame) if len(frame) else {})})
            yield dg.AssetCheckResult(asset_key=output_key(context, "results", table), check_name=METHOD_CHECK,
                                      passed=True, metadata={"rows": len(frame),
                                                             "methods": int(frame["method"].nunique())})

    return _asset


def _methods(frame: pd.DataFrame) -> dict:
    return {"methods": ", ".join(sorted(frame["method"].astype(str).unique())[:12])}


def _associations_summary(table: str, frame: pd.DataFrame) -> dict:
    tested = frame.loc[frame["p_adjusted"].notna()]
    return {"tests": len(tested), "significant_bh_0.05": int((tested["p_adjusted"] < 0.05).sum()),
            "tests_used": ", ".join(sorted(frame["test"].astype(str).unique()))}


def _models_summary(table: str, frame: pd.DataFrame) -> dict:
    """Per model: its data support (model_fit) or headline method and school SD (models)."""
    out: dict = {}
    for model, rows in frame.groupby("model", sort=False):
        if table == "model_fit":
            spec = rows.loc[(rows["estimator"] == "specification") & rows["term"].isna()]
            spec = spec.drop_duplicates("measure").set_index("measure")["estimate"]
            out |= {f"{model} {k}": float(spec[k]) for k in ("n", "n_clusters", "events", "events_per_variable")
                    if k in spec.index}
            continue
        headline = rows.loc[rows["headline"].fillna(False).astype(bool)]
        school_sd = headline.loc[headline["term"] == "sd__(Intercept)", "estimate"]
        out |= {f"{model} headline_method": str(headline["method"].iloc[0]) if len(headline) else "none",
                f"{model} estimators": ", ".join(rows["method"].astype(str).unique()),
                f"{model} school_sd": float(school_sd.iloc[0]) if len(school_sd) else float("nan"),
                f"{model} n": int(headline["n"].max()) if len(headline) else 0}
    return out


def _scales_summary(table: str, frame: pd.DataFrame) -> dict:
    alpha = frame.loc[frame["statistic_name"] == "alpha_raw"]
    return {f"alpha {r.instrument}/{r.wave}/{r.scale}": round(float(r.estimate), 3) for r in alpha.itertuples()}


def _missingness_summary(table: str, frame: pd.DataFrame) -> dict:
    totals = frame.loc[frame["pattern"] == "missing_total"]
    return {"variables_with_missing": int((totals["estimate"] > 0).sum()),
            "patterns": int(frame.loc[frame["pattern"] != "missing_total", "pattern"].nunique())}


def _plan_instruments(study: Study, part: str) -> list[str]:
    """The instruments a plan part names that the study has inputs for (all of them when none is present)."""
    entries = getattr(study.plan, part)
    named = list(dict.fromkeys(e.instrument for e in entries))
    present = [i for i in named if i in study.instruments]
    return present or named


def build_analysis_assets(study: Study) -> list[dg.AssetsDefinition]:
    """The analysis assets of a study: each depends on the instruments its plan part names.

    A plan part that is empty, or whose instruments are all absent, is left out of the
    definitions by ``pipelines.study_definitions.prune_assets`` (it reads the deps and the tag).
    """
    return [
        _results_asset("descriptives", {"descriptives": (
            "results.descriptives: characteristics per instrument, outcome (plan.descriptives) and wave for the "
            "study, each county and municipality: shares with Wilson CIs, means with t CIs, medians with IQR; raw "
            "counts (suppress when publishing).")},
            _plan_instruments(study, "descriptives"), _build_descriptives,
            lambda t, f: {"variables": int(f["variable"].nunique())}, part="descriptives"),
        _results_asset("associations", {"associations": (
            "results.associations: every candidate factor vs each plan.associations outcome, per instrument and "
            "wave: chi-square / Fisher, Cramér's V (bias-corrected), Mann-Whitney with rank-biserial, Kendall "
            "tau-b; BH-adjusted per instrument and wave.")},
            _plan_instruments(study, "associations"), _build_associations, _associations_summary,
            part="associations"),
        _results_asset("models", {
            "models": ("results.models: every plan.models model on its wave, one row per estimator and term: "
                       "log-odds, odds ratios with 95% CIs; `headline` marks the ML random-intercept model; MI "
                       "pooled rows; `term_scale` says a term's unit or reference level; not_estimable rows say why "
                       "a model could not be fitted."),
            "model_fit": ("results.model_fit: events per variable, separation, VIF, AUC, calibration, "
                          "Hosmer-Lemeshow, likelihoods, the headline choice, MI fractions of missing information."),
        }, _plan_instruments(study, "models"), _build_models, _models_summary, part="models"),
        _results_asset("missingness", {"missingness": (
            "results.missingness: missingness patterns of each plan model's outcome and terms (mice::md.pattern).")},
            _plan_instruments(study, "models"), _build_missingness, _missingness_summary, part="models"),
        _results_asset("reasons", {"reasons": (
            "results.reasons: the reasons (multi-select, plan.reasons) of those with the event, per wave, study "
            "and county, Wilson CIs.")},
            _plan_instruments(study, "reasons"), _build_reasons, lambda t, f: _methods(f), part="reasons"),
        _results_asset("screening", {"screening": (
            "results.screening: the plan's flags and scores vs their outcome (plan.screening): prevalence, "
            "sensitivity, specificity, PPV, NPV (Wilson) and AUC (DeLong), per instrument and wave.")},
            _plan_instruments(study, "screening"), _build_screening,
            lambda t, f: {"indicators": int(f["indicator"].nunique())}, part="screening"),
        _results_asset("scales", {"scales": (
            "results.scales: reliability of every codebook scale per instrument and wave: alpha raw and "
            "standardised (Feldt CI), omega total, item-total correlations, alpha if deleted.")},
            study.instruments, _build_scales, _scales_summary),
    ]

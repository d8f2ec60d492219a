"""Analysis assets: the dropout-cause statistics of a study as tidy `results.*` tables.

Thin by design: each asset reads `anon.*` from the study's DuckDB, calls the plain
functions of `analyses/` (which know nothing of Dagster or files), adds the identifying
columns (instrument, wave, geography) and writes its tables in one transaction. The
`table_*` builders below are plain functions of data frames and codebooks, so a
researcher can call them from a notebook on a frame read from DuckDB.

Every results table carries the blocking check `rows_name_their_method`: a row without a
method cannot be published, so it is checked in memory before anything is written.
Metadata carry counts, method names and estimates only, never a value of an identifying
column.
"""

from collections.abc import Callable, Iterable, Mapping

import dagster as dg
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
    DROPOUT_MAIN,
    DROPOUT_REASONS_GROUP,
    GEOGRAPHIES,
    PILOT_COMBINED_CRITERION,
    PILOT_CRITERIA_GROUP,
    PILOT_OUTCOME,
    PUPIL_OUTCOME,
    PUPIL_WARNING_FLAGS,
    SCREENING_SCORES,
    ModelSpec,
    candidate_factors,
    descriptive_variables,
    group_members,
)
from pipelines.config import Codebook, Study
from pipelines.resources import StudyResource
from pipelines.scales import scale_definitions, with_scale_scores

METHOD_CHECK = "rows_name_their_method"
#: Imputations of the missing-data sensitivity analysis (mice's m; Rubin's rules pool them).
IMPUTATIONS = 20
#: Estimator refitted on each imputed dataset: the cluster-robust CR1 logit, fast enough
#: for m = 20 at national scale; the headline random-intercept fit is complete-case.
IMPUTATION_ESTIMATOR = "CR1"
Frames = dict[str, pd.DataFrame]


class ResultsContractError(RuntimeError):
    """A results table breaks the tidy contract; nothing was written."""


def with_ids(frame: pd.DataFrame, **ids: object) -> pd.DataFrame:
    """The frame with constant identifying columns put first (instrument, wave ...)."""
    out = frame.copy()
    for position, (column, value) in enumerate(ids.items()):
        out.insert(position, column, value)
    return out


def _concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _waves(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(str(wave), sub) for wave, sub in frame.groupby("wave", sort=True)]


def scored(frame: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """An anon table with its scale scores (the score columns are named after the scales)."""
    return with_scale_scores(frame, codebook) if codebook.scales else frame


def table_descriptives(pupils: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """The pupils' characteristics per wave for the whole study, each county and municipality.

    ``geography`` says the grouping (study / county / municipality); the columns of the
    coarser groupings are empty. Categorical rows carry ``level``, numeric rows ``measure``.
    """
    categorical, numeric = descriptive_variables(codebook, pupils, PUPIL_OUTCOME)
    pupils = pupils[["wave", "county", "municipality", *categorical, *numeric]]  # narrow: groups copy less
    parts = []
    for geography, columns in GEOGRAPHIES.items():
        by = ["wave", *columns]
        parts.append(with_ids(describe_categorical(pupils, categorical, by), geography=geography))
        parts.append(with_ids(describe_numeric(pupils, numeric, by), geography=geography))
    table = _concat(parts)
    ordered = ["geography", "wave", "county", "municipality", "variable", "level", "measure"]
    return table[ordered + [c for c in table.columns if c not in ordered]]


def table_associations(pupils: pd.DataFrame, pilot: pd.DataFrame, codebooks: Mapping[str, Codebook],
                       seed: int) -> pd.DataFrame:
    """Every candidate factor vs dropout (pupils) and vs risk level (pilot), per wave.

    Each instrument and wave is one family for the Benjamini-Hochberg adjustment (the
    tests that answer one question on one sample); the Monte-Carlo Fisher tests use the
    study seed.
    """
    parts = []
    for instrument, frame, outcome, kind in (("pupils", pupils, PUPIL_OUTCOME, "binary"),
                                             ("pilot", pilot, PILOT_OUTCOME, "ordinal")):
        factors = candidate_factors(codebooks[instrument], frame, outcome)
        for wave, sub in _waves(frame):
            if sub[outcome].nunique() < 2:
                continue
            result = associations(sub, outcome, factors, outcome_type=kind, seed=seed)
            parts.append(with_ids(result, instrument=instrument, wave=wave))
    return _concat(parts)


def model_frame(pupils: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The rows of the model's wave with a cluster (a pupil without a school cannot be placed)."""
    return pupils.loc[(pupils["wave"] == spec.wave) & pupils[spec.cluster].notna()]


def tables_models(pupils: pd.DataFrame, spec: ModelSpec, seed: int) -> Frames:
    """``models`` and ``model_fit`` of one specification: every estimator, then the MI fit.

    The pooled multiple-imputation rows (method ``..._mice_pooled``) join the estimators;
    the complete-case rows the imputation function returns beside them are the CR1 rows
    already present, so they are not repeated.
    """
    frame = model_frame(pupils, spec)
    models, fit = fit_dropout_models(frame, spec.outcome, spec.terms, spec.cluster, model=spec.name)
    mi_models, mi_fit = multiple_imputation_models(frame, spec.outcome, spec.terms, spec.cluster, model=spec.name,
                                                   m=IMPUTATIONS, seed=seed, estimator=IMPUTATION_ESTIMATOR)
    mi_models = mi_models.loc[~mi_models["method"].str.endswith("_complete_case")]
    ids = {"model": spec.name, "outcome": spec.outcome, "wave": spec.wave}
    return {
        "models": with_ids(pd.concat([models, mi_models], ignore_index=True).drop(columns="model"), **ids),
        "model_fit": with_ids(pd.concat([fit, mi_fit], ignore_index=True).drop(columns="model"), **ids),
    }


def table_missingness(pupils: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The missingness patterns of the model's outcome and terms (mice's md.pattern)."""
    frame = model_frame(pupils, spec)
    return with_ids(missing_pattern(frame, [spec.outcome, *spec.terms]), model=spec.name, wave=spec.wave)


def table_dropout_reasons(pupils: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Shares of the reasons of the pupils who dropped out, per wave, whole study and county."""
    options = group_members(codebook, DROPOUT_REASONS_GROUP)
    dropped = pupils.loc[pupils[PUPIL_OUTCOME] == 1]
    parts = [with_ids(describe_multiselect(dropped, options, ["wave", *GEOGRAPHIES[g]]), geography=g)
             for g in ("study", "county")]
    table = _concat(parts)
    ordered = ["geography", "wave", "county", "option"]
    return table[ordered + [c for c in table.columns if c not in ordered]]


def risk_high(pilot: pd.DataFrame, codebook: Codebook) -> pd.Series:
    """1 where the risk level is the value set's highest code, 0 below it, missing if missing."""
    highest = max(int(c) for c in codebook.value_sets[codebook.variables[PILOT_OUTCOME].values].codes)
    level = pd.to_numeric(pilot[PILOT_OUTCOME], errors="coerce")
    return (level == highest).astype("Float64").where(level.notna())


def table_screening(pupils: pd.DataFrame, pilot: pd.DataFrame, codebooks: Mapping[str, Codebook]) -> pd.DataFrame:
    """Warning flags vs dropout (pupils) and assessment criteria vs high risk (pilot), per wave."""
    pilot = pilot.assign(risk_level_high=risk_high(pilot, codebooks["pilot"]))
    criteria = [*group_members(codebooks["pilot"], PILOT_CRITERIA_GROUP), PILOT_COMBINED_CRITERION]
    parts = []
    for instrument, frame, outcome, flags in (("pupils", pupils, PUPIL_OUTCOME, list(PUPIL_WARNING_FLAGS)),
                                              ("pilot", pilot, "risk_level_high", criteria)):
        scores = [s for s in SCREENING_SCORES if s in frame.columns]
        for wave, sub in _waves(frame):
            result = screening_accuracy(sub, outcome, flags=flags, scores=scores)
            parts.append(with_ids(result, instrument=instrument, wave=wave))
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


def _read(config: Study, instrument: str, codebooks: Mapping[str, Codebook]) -> pd.DataFrame:
    return scored(warehouse.read_table(config.db_path, f"anon.{instrument}"), codebooks[instrument])


Builder = Callable[[Study, Mapping[str, Codebook]], Frames]
Summary = Callable[[str, pd.DataFrame], dict]


def _results_asset(name: str, descriptions: Mapping[str, str], instruments: tuple[str, ...], build: Builder,
                   summary: Summary) -> dg.AssetsDefinition:
    """A multi-asset writing ``results.<table>`` for each described table, with the method check."""
    deps = [["anon", i] for i in instruments]
    specs = [dg.AssetSpec(["results", t], group_name="analyses", deps=deps, kinds={"duckdb"}, description=d)
             for t, d in descriptions.items()]
    checks = [dg.AssetCheckSpec(METHOD_CHECK, asset=["results", t], blocking=True,
                                description="Every row names its method and has the tidy contract's columns.")
              for t in descriptions]

    @dg.multi_asset(specs=specs, check_specs=checks, pool="duckdb", name=name,
                    description=f"Compute and write {', '.join('results.' + t for t in descriptions)}.")
    def _asset(context: AssetExecutionContext, study: StudyResource):
        config, codebooks = study.load()
        frames = build(config, codebooks)
        problems = {t: rows_without_method(f) + len(missing_contract_columns(f)) for t, f in frames.items()}
        if any(problems.values()):
            for table, count in problems.items():
                yield dg.AssetCheckResult(asset_key=dg.AssetKey(["results", table]), check_name=METHOD_CHECK,
                                          passed=count == 0, metadata={"problems": count})
            raise ResultsContractError("results tables break the tidy contract, nothing written: "
                                       + ", ".join(t for t, n in problems.items() if n))
        warehouse.write_tables(config.db_path, {f"results.{t}": f for t, f in frames.items()})
        for table, frame in frames.items():
            context.log.info(f"results.{table}: {len(frame)} rows")
            yield dg.MaterializeResult(asset_key=["results", table],
                                       metadata={"dagster/row_count": len(frame), **summary(table, frame)})
            yield dg.AssetCheckResult(asset_key=dg.AssetKey(["results", table]), check_name=METHOD_CHECK,
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
    if table == "model_fit":
        specification = frame.loc[frame["estimator"] == "specification"].set_index("measure")["estimate"]
        return {k: float(specification[k]) for k in ("n", "n_clusters", "events", "events_per_variable")
                if k in specification.index}
    headline = frame.loc[frame["headline"]]
    school_sd = headline.loc[headline["term"] == "sd__(Intercept)", "estimate"]
    return {"headline_method": str(headline["method"].iloc[0]) if len(headline) else "none",
            "estimators": ", ".join(frame["method"].unique()),
            "school_sd": float(school_sd.iloc[0]) if len(school_sd) else float("nan"),
            "n": int(headline["n"].max()) if len(headline) else 0}


def _scales_summary(table: str, frame: pd.DataFrame) -> dict:
    alpha = frame.loc[frame["statistic_name"] == "alpha_raw"]
    return {f"alpha {r.instrument}/{r.wave}/{r.scale}": round(float(r.estimate), 3) for r in alpha.itertuples()}


def _missingness_summary(table: str, frame: pd.DataFrame) -> dict:
    totals = frame.loc[frame["pattern"] == "missing_total"]
    return {"variables_with_missing": int((totals["estimate"] > 0).sum()),
            "patterns": int(frame.loc[frame["pattern"] != "missing_total", "pattern"].nunique())}


def _build_descriptives(config: Study, codebooks: Mapping[str, Codebook]) -> Frames:
    return {"descriptives": table_descriptives(_read(config, "pupils", codebooks), codebooks["pupils"])}


def _build_associations(config: Study, codebooks: Mapping[str, Codebook]) -> Frames:
    return {"associations": table_associations(_read(config, "pupils", codebooks), _read(config, "pilot", codebooks),
                                               codebooks, config.seed)}


def _build_models(config: Study, codebooks: Mapping[str, Codebook]) -> Frames:
    return tables_models(_read(config, "pupils", codebooks), DROPOUT_MAIN, config.seed)


def _build_missingness(config: Study, codebooks: Mapping[str, Codebook]) -> Frames:
    return {"missingness": table_missingness(_read(config, "pupils", codebooks), DROPOUT_MAIN)}


def _build_dropout_reasons(config: Study, codebooks: Mapping[str, Codebook]) -> Frames:
    return {"dropout_reasons": table_dropout_reasons(_read(config, "pupils", codebooks), codebooks["pupils"])}


def _build_screening(config: Study, codebooks: Mapping[str, Codebook]) -> Frames:
    return {"screening": table_screening(_read(config, "pupils", codebooks), _read(config, "pilot", codebooks),
                                         codebooks)}


def _build_scales(config: Study, codebooks: Mapping[str, Codebook]) -> Frames:
    frames = {i: warehouse.read_table(config.db_path, f"anon.{i}") for i, cb in codebooks.items() if cb.scales}
    return {"scales": table_scales(frames, codebooks)}


analysis_assets = [
    _results_asset("descriptives", {"descriptives": (
        "results.descriptives: pupils' characteristics per wave for the study, each county and municipality: "
        "shares with Wilson CIs, means with t CIs, medians with IQR; raw counts (suppress when publishing).")},
        ("pupils",), _build_descriptives, lambda t, f: {"variables": int(f["variable"].nunique())}),
    _results_asset("associations", {"associations": (
        "results.associations: every candidate factor vs dropout (pupils) and vs risk level (pilot), per wave: "
        "chi-square / Fisher, Cramér's V (bias-corrected), Mann-Whitney with rank-biserial, Kendall tau-b; "
        "BH-adjusted per instrument and wave.")},
        ("pupils", "pilot"), _build_associations, _associations_summary),
    _results_asset("dropout_models", {
        "models": ("results.models: dropout_main on the baseline wave, one row per estimator and term: log-odds, "
                   "odds ratios with 95% CIs; `headline` marks the ML random-intercept model; MI pooled rows."),
        "model_fit": ("results.model_fit: events per variable, separation, VIF, AUC, calibration, "
                      "Hosmer-Lemeshow, likelihoods, the headline choice, MI fractions of missing information."),
    }, ("pupils",), _build_models, _models_summary),
    _results_asset("missingness", {"missingness": (
        "results.missingness: missingness patterns of dropout_main's outcome and terms (mice::md.pattern).")},
        ("pupils",), _build_missingness, _missingness_summary),
    _results_asset("dropout_reasons", {"dropout_reasons": (
        "results.dropout_reasons: reasons of the pupils who dropped out (multi-select), per wave, study and "
        "county, Wilson CIs.")},
        ("pupils",), _build_dropout_reasons, lambda t, f: _methods(f)),
    _results_asset("screening", {"screening": (
        "results.screening: pupils' warning flags vs dropout and the pilot's criteria vs high risk level: "
        "prevalence, sensitivity, specificity, PPV, NPV (Wilson) and AUC (DeLong), per wave.")},
        ("pupils", "pilot"), _build_screening, lambda t, f: {"indicators": int(f["indicator"].nunique())}),
    _results_asset("scales", {"scales": (
        "results.scales: reliability of every codebook scale per instrument and wave: alpha raw and "
        "standardised (Feldt CI), omega total, item-total correlations, alpha if deleted.")},
        ("pupils", "pilot", "specialists"), _build_scales, _scales_summary),
]

"""Persona assets: anon.pupils (baseline wave) -> results.persona_* (issue 5, items 5-8).

Thin wiring around the plain functions of ``personas/`` (methods and their validation
live there): encode the indicators of :data:`PERSONA_SPEC`, fit k = 1..K latent classes
with many random starts, choose k, judge the chosen solution (posterior certainty,
bootstrap Jaccard, agreement with k-modes), build the persona-card rows and assign every
baseline pupil to a class. The four tables are written in one transaction.

The indicators are the fourteen binary characteristics the demo generator plants through
its latent class model (pipelines/synth/truth.py): the derived and harmonised 0/1 columns
plus low motivation, the codebook's ``motivation`` scale score below 3 (the same cut the
generator uses). Missing answers stay in the fit (full-information likelihood).

Researchers can rename personas in ``studies/<study>.personas.yaml`` (optional): a map
from class number (1..k) to any of name_et, name_en, description_et, description_en.
"""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import yaml
from dagster import AssetExecutionContext

from personas import (
    assign_classes,
    bootstrap_stability,
    encode_indicators,
    fit_latent_classes,
    kmodes_agreement,
    persona_profiles,
    posterior,
    quality_table,
    selection_table,
)
from personas.cards import OVERRIDE_KEYS
from pipelines.assets.common import meta_key
from pipelines.assets.reports import report_asset
from pipelines.config import Codebook
from pipelines.resources import StudyResource
from pipelines.scales import with_scale_scores
from pipelines.warehouse import connect, write_tables

#: Binary (0/1) columns of anon.pupils clustered on, in card order.
BINARY_INDICATORS: tuple[str, ...] = (
    "chronic_absence", "failing_any", "behaviour_any", "sen_support_any", "repeated_grade",
    "single_parent", "parent_abroad", "low_income", "child_protection_case", "health_concern",
    "mental_health_concern", "bullying", "hobby_education",
)
#: Scale scores dichotomised as "score < cut" (the generator's definition of low motivation).
LOW_SCALE_INDICATORS: dict[str, tuple[str, float]] = {"low_motivation": ("motivation", 3.0)}
LOW_SCALE_LABELS: dict[str, dict[str, str]] = {
    "low_motivation": {"et": "Madal õpimotivatsioon (skaala keskmine alla 3)",
                       "en": "Low learning motivation (scale mean below 3)"},
}
#: Outcome rates per class (three-step, BCH correction); support measures are a codebook group.
OUTCOMES: tuple[str, ...] = ("dropout", "status")
SUPPORT_GROUP = "support_measures"
GROUP_COLUMN = "municipality"
WAVE = "baseline"


@dataclass(frozen=True)
class PersonaSettings:
    """Fit settings of the pipeline run, kept short so that `make demo` stays fast.

    The issue's defaults (K = 8, >= 20 starts) are the library's; the run fits k = 1..6
    with 20 short starts (50 EM iterations), the best 4 run to convergence (<= 500
    iterations), 20 bootstrap refits for stability and 10 k-modes starts.
    """

    k_max: int = 6
    n_init: int = 20
    short_iter: int = 50
    n_final: int = 4
    max_iter: int = 500
    seed: int = 20240501
    n_boot: int = 20
    boot_n_init: int = 5
    kmodes_n_init: int = 10
    n_jobs: int = 1


SETTINGS = PersonaSettings()
RESULT_TABLES = ("persona_selection", "persona_profiles", "persona_assignments", "persona_quality")


def indicator_names() -> list[str]:
    return [*BINARY_INDICATORS, *LOW_SCALE_INDICATORS]


def persona_frame(pupils: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Baseline pupils with scale scores and the dichotomised low-scale indicators added."""
    frame = with_scale_scores(pupils[pupils["wave"] == WAVE].reset_index(drop=True), codebook)
    for name, (scale, cut) in LOW_SCALE_INDICATORS.items():
        score = pd.to_numeric(frame[scale], errors="coerce").astype("float64")
        frame[name] = np.where(score.isna(), np.nan, (score < cut).astype("float64"))
    for name in BINARY_INDICATORS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def indicator_labels(codebook: Codebook) -> dict[str, dict[str, str]]:
    """{indicator: {"et": ..., "en": ...}} from the codebook (variables or derived) and the spec."""
    labels = dict(LOW_SCALE_LABELS)
    for name in BINARY_INDICATORS:
        entry = codebook.variables.get(name) or codebook.derived[name]
        labels[name] = {"et": entry.label.et, "en": entry.label.en}
    return labels


def support_columns(codebook: Codebook) -> list[str]:
    return [name for name, var in codebook.variables.items() if var.group == SUPPORT_GROUP]


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


def persona_tables(pupils: pd.DataFrame, codebook: Codebook, settings: PersonaSettings = SETTINGS,
                   overrides: dict[int, dict[str, str]] | None = None) -> dict[str, pd.DataFrame]:
    """The four results tables from all pupil rows (the baseline wave is selected here)."""
    frame = persona_frame(pupils, codebook)
    indicators = encode_indicators(frame, categorical=indicator_names(),
                                   levels={name: [0.0, 1.0] for name in indicator_names()})
    fit = fit_latent_classes(indicators, k_max=settings.k_max, n_init=settings.n_init, seed=settings.seed,
                             short_iter=settings.short_iter, n_final=settings.n_final,
                             max_iter=settings.max_iter, n_jobs=settings.n_jobs)
    selection = selection_table(fit, n_jobs=settings.n_jobs)
    k = int(selection.loc[selection["term"] == "chosen_k", "estimate"].item())
    solution = fit.solutions[k]
    quality = pd.concat([
        quality_table(posterior(solution, indicators), solution.weights),
        bootstrap_stability(solution, indicators, n_boot=settings.n_boot, seed=settings.seed,
                            n_init=settings.boot_n_init, n_jobs=settings.n_jobs),
        kmodes_agreement(solution, indicators, seed=settings.seed, n_init=settings.kmodes_n_init),
    ], ignore_index=True)
    profiles = persona_profiles(
        solution, indicators, indicator_labels(codebook),
        outcomes=frame[list(OUTCOMES)].astype(object).where(frame[list(OUTCOMES)].notna(), np.nan),
        groups=frame[GROUP_COLUMN].astype(object).fillna("(missing)"),
        supports=frame[support_columns(codebook)], overrides=overrides,
        focus_levels={name: 1.0 for name in indicator_names()},
    )
    return {
        "results.persona_selection": selection,
        "results.persona_profiles": profiles,
        "results.persona_assignments": assign_classes(solution, indicators, frame["pupil_id"]),
        "results.persona_quality": quality,
    }


_DESCRIPTIONS = {
    "persona_selection": "results.persona_selection: BIC, aBIC, AIC, ICL, entropy R2, smallest class per k; the chosen k and why.",
    "persona_profiles": "results.persona_profiles: persona-card rows (size, characteristics, outcomes, municipalities, support, texts).",
    "persona_assignments": "results.persona_assignments: each baseline pupil's posterior per class; `assigned` marks the modal class.",
    "persona_quality": "results.persona_quality: average posterior, odds of correct classification, entropy R2, bootstrap Jaccard, k-modes ARI.",
}


@dg.multi_asset(
    specs=[dg.AssetSpec(["results", name], group_name="personas", kinds={"duckdb"},
                        deps=[["anon", "pupils"]], description=_DESCRIPTIONS[name])
           for name in RESULT_TABLES],
    pool="duckdb", name="persona_results",
    description="Latent class personas of the baseline pupils: fit, select, validate, card data, assignments.",
)
def persona_results_asset(context: AssetExecutionContext, study: StudyResource):
    config, codebooks = study.load()
    with connect(config.db_path, read_only=True) as con:
        pupils = con.execute("SELECT * FROM anon.pupils ORDER BY pupil_id, wave").df()
    overrides = load_overrides(study.path().parent / f"{config.study}.personas.yaml")
    tables = persona_tables(pupils, codebooks["pupils"], overrides=overrides)
    write_tables(config.db_path, tables)
    context.log.info("persona results written")
    selection = tables["results.persona_selection"]
    chosen_k = int(selection.loc[selection["term"] == "chosen_k", "estimate"].item())
    for name in RESULT_TABLES:
        metadata: dict = {"dagster/row_count": len(tables[f"results.{name}"])}
        if name == "persona_selection":
            metadata["chosen_k"] = chosen_k
        yield dg.MaterializeResult(asset_key=["results", name], metadata=metadata)


persona_report = report_asset(
    "personas",
    deps=[*(["results", name] for name in RESULT_TABLES), meta_key("provenance")],
    description="The persona cards (size, distinguishing characteristics, outcomes, places, support), et and en.",
)

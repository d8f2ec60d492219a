"""The persona assets on a generated study: the planted classes come back, tables are sound.

The generator plants four latent classes over the fourteen indicators of the demo's
analysis plan (``plan.personas`` in studies/demo.yaml) and records each baseline pupil's class by pseudonym
(``truth['personas']['labels']``) and the adjusted Rand index the true parameters reach on
the same data (``ideal_ari``, the most any method can reach). The asset is materialised
through Dagster into the study's DuckDB and ``results.persona_assignments`` is read back:
its modal classes must come within 0.05 of ``ideal_ari``. The fast check runs on the
600-pupil ``small_study``; the slow one on a 3,000-pupil study (the demo's size), where the
comparison is stable. Other shapes of study (indicators entirely missing or constant, too
few usable indicators, other cuts) run ``persona_tables`` on altered pupil frames.
"""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from pipelines.assets.personas import (
    PLAN_TAGS,
    RESULT_TABLES,
    load_overrides,
    persona_frame,
    persona_results_asset,
    persona_seed,
    persona_tables,
)
from pipelines.plan import PersonaIndicator, derived_seed
from pipelines.config import load_codebooks, load_study
from pipelines.resources import StudyResource
from pipelines.warehouse import read_table, write_tables
from tests.conftest import generate

PLANTED_K = 4


def materialise(study) -> dict[str, pd.DataFrame]:
    outcome = dg.materialize([persona_results_asset], resources={"study": StudyResource(study_file=str(study.path))})
    assert outcome.success
    tables = {name: read_table(study.db_path, f"results.{name}") for name in RESULT_TABLES}
    (selection,) = [m for m in outcome.asset_materializations_for_node("persona_results")
                    if m.asset_key == dg.AssetKey(["results", "persona_selection"])]
    tables["metadata"] = {key: value.value for key, value in selection.metadata.items()}
    return tables


def recovered_ari(assignments: pd.DataFrame, labels: dict[str, int]) -> tuple[float, int]:
    modal = assignments[assignments["assigned"].astype(bool)]
    modal = modal[modal["pupil_id"].isin(labels)]
    truth = [labels[p] for p in modal["pupil_id"]]
    return adjusted_rand_score(truth, modal["class"].to_numpy()), len(modal)


@pytest.fixture(scope="module")
def results(small_study):
    study, books, truth = small_study
    return study, books, truth, materialise(study)


def chosen_k(selection: pd.DataFrame) -> int:
    return int(selection.loc[selection["term"] == "chosen_k", "estimate"].item())


def test_assignments_agree_with_planted_classes_small_study(results):
    _, _, truth, tables = results
    labels = truth["personas"]["labels"]
    ari, matched = recovered_ari(tables["persona_assignments"], labels)
    assert matched >= 0.98 * len(labels)  # a few pupils are rejected or erased by ingest
    assert ari == pytest.approx(truth["personas"]["ideal_ari"], abs=0.05)


def test_selection_chooses_the_planted_number_of_classes(results):
    _, _, truth, tables = results
    selection = tables["persona_selection"]
    assert chosen_k(selection) == PLANTED_K == truth["personas"]["k"]
    assert set(selection["n_classes"].dropna()) == set(range(1, 7))  # the plan's k = 1..6
    weights = tables["persona_profiles"].query("section == 'size' and variable == 'class_weight'")
    np.testing.assert_allclose(np.sort(weights["estimate"].to_numpy())[::-1], truth["personas"]["shares"], atol=0.05)


def test_assignments_are_a_posterior_per_baseline_pupil(results):
    study, _, _, tables = results
    assignments = tables["persona_assignments"]
    pupils = read_table(study.db_path, "anon.pupils")
    baseline = set(pupils.loc[pupils["wave"] == "baseline", "pupil_id"])
    assert set(assignments["pupil_id"]) == baseline
    per_pupil = assignments.groupby("pupil_id")
    np.testing.assert_allclose(per_pupil["estimate"].sum().to_numpy(), 1.0, atol=1e-9)
    assert (per_pupil["assigned"].sum() == 1).all()
    assert (per_pupil["class"].count() == PLANTED_K).all()
    # the assigned class is the most probable one
    top = assignments.loc[per_pupil["estimate"].idxmax()]
    assert top["assigned"].astype(bool).all()


def test_quality_of_the_chosen_solution(results):
    _, _, _, tables = results
    quality = tables["persona_quality"]
    avepp = quality[quality["term"] == "average_posterior"]
    assert len(avepp) == PLANTED_K and (avepp["estimate"] >= 0.7).all()
    assert {"entropy_r2", "bootstrap_jaccard", "adjusted_rand_index"} <= set(quality["term"])
    assert quality["method"].notna().all()


def test_profiles_flag_small_cells_and_carry_outcomes_and_supports(results):
    study, books, _, tables = results
    profiles = tables["persona_profiles"]
    towns = profiles[profiles["section"] == "municipality"]
    small = (towns["estimate"] >= 1) & (towns["estimate"] <= 4)
    assert (towns["small_cell"].astype(bool) == small).all()
    outcomes = profiles[profiles["section"] == "outcome"]
    assert set(outcomes["variable"]) == {"dropout", "status"}
    assert outcomes["correction"].str.startswith("BCH").all()
    supports = {n for n, v in books["pupils"].variables.items() if v.group == "support_measures"}
    assert set(profiles.loc[profiles["section"] == "support", "variable"]) == supports
    names = profiles[profiles["section"] == "name"]
    assert len(names) == PLANTED_K and names["text_et"].str.len().gt(0).all() and names["text_en"].str.len().gt(0).all()
    characteristics = profiles[profiles["section"] == "characteristic"]
    planned = [spec.column for spec in study.plan.personas.indicator_specs()]
    assert set(characteristics["variable"]) == set(planned)
    used = tables["persona_selection"].query("term == 'indicator_used'")
    assert used["variable"].tolist() == planned and used["label_en"].str.len().gt(0).all()
    assert tables["persona_selection"].query("term == 'indicator_dropped'").empty


def test_low_motivation_is_the_motivation_score_below_three(small_study):
    study, books, _ = small_study
    frame = persona_frame(read_table(study.db_path, "anon.pupils"), books["pupils"], study.plan.personas, "baseline")
    score = frame["motivation"].astype("float64")
    assert (frame["wave"] == "baseline").all()
    np.testing.assert_array_equal(frame["low_motivation"].isna(), score.isna())
    observed = score.notna()
    np.testing.assert_array_equal(frame.loc[observed, "low_motivation"], (score[observed] < 3).astype(float))
    assert 0.15 < frame["low_motivation"].mean() < 0.5  # planted: high in two of four classes


def test_seed_derives_from_the_study_seed_and_is_recorded(results):
    study, _, _, tables = results
    seed = derived_seed(study.seed, "personas")
    assert persona_seed(study) == seed and tables["metadata"]["seed"] == seed
    plan = read_table(study.db_path, "meta.analysis_plan").query("part == 'personas'")
    assert json.loads(plan["spec"].item())["seed"] == seed
    assert all(PLAN_TAGS.items() <= spec.tags.items() for spec in persona_results_asset.specs)


#: Quick fit settings for the other shapes of study (the shapes matter here, not the classes).
QUICK = {"k_max": 3, "n_init": 4, "n_final": 2, "n_boot": 2, "boot_n_init": 2, "kmodes_n_init": 2}


def other_shape(small_study, pupils: pd.DataFrame, **changes):
    study, books, _ = small_study
    plan = study.plan.personas.model_copy(update={**QUICK, **changes})
    return persona_tables(pupils, books["pupils"], plan, persona_seed(study), "baseline", study=study), plan


def test_missing_and_constant_indicators_are_dropped_and_not_counted_in_bic(small_study):
    study, _, _ = small_study
    pupils = read_table(study.db_path, "anon.pupils")
    missing = ["chronic_absence", "failing_any", "behaviour_any"]
    pupils = pupils.drop(columns=missing).assign(bullying=1.0)  # three indicators absent, one constant
    run, plan = other_shape(small_study, pupils)
    selection = run.tables["results.persona_selection"]
    dropped = selection[selection["term"] == "indicator_dropped"].set_index("variable")
    assert set(dropped.index) == {*missing, "bullying"}
    assert dropped.loc[missing, "note"].str.startswith("entirely missing").all()
    assert dropped.loc["bullying", "note"].startswith("constant") and (dropped.loc[missing, "n"] == 0).all()
    used = selection.loc[selection["term"] == "indicator_used", "variable"].tolist()
    planned = [spec.column for spec in plan.indicator_specs()]
    assert used == [c for c in planned if c not in dropped.index] == run.used and len(used) == 10
    parameters = selection[selection["term"] == "n_parameters"].set_index("n_classes")["estimate"]
    for k, count in parameters.items():
        assert count == k - 1 + k * len(used)  # k - 1 shares, one probability per used 0/1 indicator
    assert run.chosen_k is not None
    characteristics = run.tables["results.persona_profiles"].query("section == 'characteristic'")
    assert set(characteristics["variable"]) == set(used)
    assert run.tables["results.persona_assignments"]["pupil_id"].nunique() == (pupils["wave"] == "baseline").sum()


def test_fewer_than_two_usable_indicators_fit_nothing_and_say_why(small_study, tmp_path):
    study, _, _ = small_study
    pupils = read_table(study.db_path, "anon.pupils")[["pupil_id", "wave", "municipality", "low_income"]]
    run, _ = other_shape(small_study, pupils)
    assert run.no_fit == "too_few_indicators" and run.chosen_k is None and run.used == ["low_income"]
    selection = run.tables["results.persona_selection"]
    (no_fit,) = selection[selection["term"] == "no_fit"].itertuples()
    assert no_fit.note == "too_few_indicators" and no_fit.estimate == 1
    assert (selection["term"] == "indicator_dropped").sum() == 13
    for name in ("persona_profiles", "persona_assignments", "persona_quality"):
        assert run.tables[f"results.{name}"].empty
    write_tables(tmp_path / "no_fit.duckdb", run.tables)  # empty tables are written with their columns
    assert "class" in read_table(tmp_path / "no_fit.duckdb", "results.persona_profiles").columns


def test_cuts_at_least_and_event_make_zero_one_indicators(small_study):
    study, books, _ = small_study
    frame = pd.DataFrame({"wave": "baseline", "absences": [0, 12, np.nan, 30], "answer": ["yes", "No", None, "maybe"]})
    plan = study.plan.personas.model_copy(update={"indicators": [
        PersonaIndicator(variable="absences", at_least=12, name="many_absences"),
        PersonaIndicator(variable="answer", event=["yes", "maybe"], name="said_yes"),
        PersonaIndicator(variable="not_in_this_study", below=1, name="absent"),
    ]})
    out = persona_frame(frame, books["pupils"], plan, "baseline")
    np.testing.assert_array_equal(out["many_absences"], [0.0, 1.0, np.nan, 1.0])
    np.testing.assert_array_equal(out["said_yes"], [1.0, 0.0, np.nan, 1.0])
    assert out["absent"].isna().all()


def test_overrides_file_is_optional_and_checked(tmp_path):
    assert load_overrides(tmp_path / "absent.personas.yaml") == {}
    path = tmp_path / "demo.personas.yaml"
    path.write_text("1: {name_en: Absent and disengaged, name_et: Eemaldunud}\n", encoding="utf-8")
    assert load_overrides(path) == {1: {"name_en": "Absent and disengaged", "name_et": "Eemaldunud"}}
    path.write_text("2: {title: x}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown keys"):
        load_overrides(path)


@pytest.mark.slow
def test_assignments_agree_with_planted_classes_demo_size(tmp_path):
    from pipelines.ingest.stage import run_ingest

    study_file, truth = generate(tmp_path, pupils=3000, seed=11)
    study = load_study(study_file)
    run_ingest(study, load_codebooks(study))
    tables = materialise(study)
    assert chosen_k(tables["persona_selection"]) == PLANTED_K
    ari, _ = recovered_ari(tables["persona_assignments"], truth["personas"]["labels"])
    assert ari == pytest.approx(truth["personas"]["ideal_ari"], abs=0.05)


@pytest.mark.slow
def test_persona_cards_render_in_both_languages_without_small_counts(results):
    from pipelines.assets.personas import persona_report

    study, _, _, tables = results
    outcome = dg.materialize([persona_report], resources={"study": StudyResource(study_file=str(study.path))},
                             selection=[persona_report.key])
    assert outcome.success
    checks = outcome.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)  # the blocking small-cell audit
    k = chosen_k(tables["persona_selection"])
    for lang in ("et", "en"):
        page = (study.report_dir(lang) / "personas.html").read_text(encoding="utf-8")
        assert page.count("data:image/png;base64") == k  # one figure per persona
        names = tables["persona_profiles"].query("section == 'name'")[f"text_{lang}"]
        assert all(name.split(",")[0] in page for name in names)
        assert (study.report_dir(lang) / "personas.pdf").stat().st_size > 10_000

"""Any study by YAML alone: the analyses and their assets on a study shaped unlike the demo.

The variant study reads the small demo study's exports (tests/conftest.py) through its own
study file: pupils only (no pilot, specialists or services inputs), its outcome defined in
the plan under another name (``left`` = status 'dropped_out'), a model with a reference
level and a term per 10 units, two imputations, no personas part. The definitions must
load with the missing parts left out and said so, the remaining analyses must write their
tables, and a model that cannot be estimated must say so in a row, not a traceback.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from pipelines import warehouse
from pipelines.analysis_specs import ModelSpec, candidate_factors, model_specs
from pipelines.assets.analyses import (
    NOT_ESTIMABLE,
    build_analysis_assets,
    model_frame,
    tables_models,
)
from pipelines.config import load_codebooks, load_study
from pipelines.resources import StudyResource

VARIANT_PLAN = {
    "outcomes": {"left": {"variable": "status", "event": ["dropped_out"]}},
    "descriptives": [{"instrument": "pupils", "outcome": "left"}],
    "associations": [{"instrument": "pupils", "outcome": "left", "kind": "binary"},
                     {"instrument": "pilot", "outcome": "risk_level", "kind": "ordinal"}],
    "models": [{"name": "left_per10", "instrument": "pupils", "outcome": "left",
                "terms": [{"variable": "sex", "reference": "female"},
                          {"variable": "unexcused_absences", "per": 10}, "failing_any", "repeated_grade"],
                "cluster": "school_id"}],
    "imputations": 2,
    "screening": [{"instrument": "pupils", "outcome": "left", "flags": ["chronic_absence", "failing_any"],
                   "scores": ["unexcused_absences"]},
                  {"instrument": "pilot", "outcome": "risk_level", "outcome_top_level": True,
                   "flag_groups": ["screening_criteria"]}],
    "reasons": [{"instrument": "pupils", "group": "dropout_reasons", "outcome": "left"}],
}


def variant_file(small_study, root, plan: dict, instruments=("pupils",), name="variant"):
    """The small study's exports under a new study file: only ``instruments``, ``plan`` as the plan."""
    data = yaml.safe_load(small_study[0].path.read_text(encoding="utf-8"))
    data["study"] = name
    data["processed_dir"] = str(root / "processed")
    data["reports_dir"] = str(root / "reports")
    data["inputs"] = [i for i in data["inputs"] if i["instrument"] in instruments]
    data["plan"] = plan
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def variant(small_study, tmp_path_factory):
    """(study, codebooks) of the pupils-only variant study, ingested."""
    from pipelines.ingest.stage import run_ingest

    path = variant_file(small_study, tmp_path_factory.mktemp("variant"), VARIANT_PLAN)
    study = load_study(path)
    books = load_codebooks(study)
    run_ingest(study, books)
    return study, books


@pytest.fixture(scope="module")
def variant_results(variant):
    import dagster as dg

    study, _ = variant
    run = dg.materialize(build_analysis_assets(study), resources={"study": StudyResource(study_file=str(study.path))},
                         raise_on_error=True)
    tables = ("descriptives", "associations", "models", "model_fit", "missingness", "reasons", "screening", "scales")
    return run, {t: warehouse.read_table(study.db_path, f"results.{t}") for t in tables}


def test_definitions_leave_out_what_the_study_lacks_and_say_why(variant):
    from pipelines.study_definitions import build_definitions

    study, _ = variant
    defs, skipped = build_definitions(str(study.path))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"anon/pupils", "raw/pupils", "results/models", "results/descriptives", "reports/technical",
            "reports/overview", "share/pupils"} <= keys
    assert not any(k.endswith(("/pilot", "/specialists", "/services")) for k in keys), keys
    assert not {"results/persona_profiles", "reports/personas", "results/evaluation", "reports/evaluation"} & keys
    text = "\n".join(skipped)
    assert "the plan has no personas part" in text
    assert "(the plan has no evaluation part)" in text or "no pilot" in text
    assert all(line.startswith("skipped: ") for line in skipped)
    defs.resolve_job_def("study")  # the job resolves: no dangling deps


def test_demo_definitions_skip_nothing():
    from pipelines.config import PROJECT_ROOT
    from pipelines.study_definitions import build_definitions

    defs, skipped = build_definitions(str(PROJECT_ROOT / "studies" / "demo.yaml"))
    assert skipped == []
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"anon/pilot", "reports/evaluation", "reports/personas", "results/reasons"} <= keys


def test_prune_drops_dependents_of_skipped_assets(variant):
    import dagster as dg

    from pipelines.study_definitions import prune_assets

    study, _ = variant

    @dg.asset(key=["results", "needs_pilot"], deps=[["anon", "pilot"]])
    def needs_pilot():
        return None

    @dg.asset(key=["reports", "of_pilot"], deps=[["results", "needs_pilot"]])
    def of_pilot():
        return None

    @dg.asset(key=["results", "plan_part"], tags={"mapstudy/plan": "personas"})
    def plan_part():
        return None

    @dg.asset(key=["reports", "any"], deps=[["results", "needs_pilot"], ["results", "kept"], ["meta", "provenance"]],
              tags={"mapstudy/deps": "any"})
    def any_report():
        return None

    @dg.asset(key=["results", "kept"], deps=[["anon", "pupils"]], tags={"mapstudy/plan": "models"})
    def kept():
        return None

    @dg.asset(key=["results", "optional_pilot"], deps=[["anon", "pupils"], ["anon", "pilot"]],
              tags={"mapstudy/plan": "models"})
    def optional_pilot():
        return None

    assets, lines = prune_assets([needs_pilot, of_pilot, plan_part, any_report, kept, optional_pilot], study)
    names = {k.to_user_string() for a in assets for k in a.keys}
    assert names == {"reports/any", "results/kept", "results/optional_pilot"}
    assert {d.asset_key.to_user_string() for a in assets for s in a.specs for d in s.deps} == {
        "results/kept", "meta/provenance", "anon/pupils"}
    assert lines == ["skipped: results/needs_pilot (no pilot inputs)",
                     "skipped: results/plan_part (the plan has no personas part)",
                     "skipped: reports/of_pilot (needs results/needs_pilot, skipped)"]


def test_the_plan_outcome_and_its_source_are_used_and_excluded(variant, variant_results):
    study, books = variant
    _, tables = variant_results
    assoc = tables["associations"]
    assert set(assoc["instrument"]) == {"pupils"} and set(assoc["outcome"]) == {"left"}
    factors = set(assoc["factor"])
    assert not {"status", "left", "dropout", "school_id", "municipality", "reason_family"} & factors
    assert {"chronic_absence", "sex"} <= factors
    anon = warehouse.read_table(study.db_path, "anon.pupils")
    assert "status" not in candidate_factors(books["pupils"], anon, "left", study)
    desc = tables["descriptives"]
    assert set(desc["outcome"]) == {"left"} and "left" in set(desc["variable"])
    reasons = tables["reasons"]
    assert set(reasons["outcome"]) == {"left"} and set(reasons["group"]) == {"dropout_reasons"}
    screening = tables["screening"]
    assert set(screening["instrument"]) == {"pupils"}
    assert set(screening["indicator"]) == {"chronic_absence", "failing_any", "unexcused_absences"}
    scales = tables["scales"]
    assert set(scales["instrument"]) == {"pupils"}


def test_model_reference_level_and_per_10_term(variant, variant_results):
    study, books = variant
    _, tables = variant_results
    models = tables["models"]
    assert set(models["model"]) == {"left_per10"} and set(models["outcome"]) == {"left"}
    assert set(models["wave"]) == {"baseline"}  # the instrument's first wave: the plan named none
    headline = models.loc[models["headline"]].set_index("term")
    assert {"sex:male", "unexcused_absences_per10", "failing_any", "repeated_grade"} <= set(headline.index)
    assert "sex:female" not in headline.index
    assert headline.loc["sex:male", "term_scale"] == "reference level female"
    assert headline.loc["unexcused_absences_per10", "term_scale"] == "unexcused_absences per 10 units"
    assert any(m.endswith("_mice_pooled") for m in models["method"])
    # per 10 units: the log-odds is 10 times the one per unit of the same data
    spec = model_specs(study, books)[0]
    anon = warehouse.read_table(study.db_path, "anon.pupils")
    from pipelines.study_plan import with_plan_outcomes

    anon = with_plan_outcomes(anon, study, "pupils")
    unit = ModelSpec(name="unit", outcome="left", terms=("sex", "unexcused_absences", "failing_any", "repeated_grade"),
                     wave="baseline", cluster="school_id", references={"sex": "female"})
    per_unit = tables_models(anon, unit, study.seed, imputations=0)["models"]
    per_unit = per_unit.loc[per_unit["headline"]].set_index("term")
    assert headline.loc["unexcused_absences_per10", "estimate"] == pytest.approx(
        10 * per_unit.loc["unexcused_absences", "estimate"], rel=1e-4)
    assert len(model_frame(anon, spec)) == headline["n"].max() or headline["n"].max() <= len(model_frame(anon, spec))


def test_a_model_that_cannot_be_estimated_is_a_row_not_a_traceback(variant):
    study, _ = variant
    anon = warehouse.read_table(study.db_path, "anon.pupils")
    lines = []
    constant = ModelSpec(name="nothing", outcome="dropout", terms=("absent_column",), wave="baseline",
                         cluster="school_id")
    tables = tables_models(anon.assign(absent_column=1), constant, 1, imputations=0, log=lines.append)
    row = tables["models"]
    assert len(row) == 1 and row["method"].iloc[0] == NOT_ESTIMABLE
    assert row["note"].iloc[0] == "no term has two or more values"
    assert any("absent_column left out (constant or missing)" in line for line in lines)
    few = anon.loc[anon["wave"] == "baseline"].head(30)
    rare = ModelSpec(name="rare", outcome="dropout", terms=("failing_any",), wave="baseline", cluster="school_id")
    tables = tables_models(few.assign(dropout=(few.index == few.index[0]).astype(float)), rare, 1, imputations=0)
    assert tables["models"]["method"].tolist() == [NOT_ESTIMABLE]
    assert "events" in tables["models"]["note"].iloc[0]
    assert tables["model_fit"]["method"].tolist() == [NOT_ESTIMABLE]


def test_zero_imputations_and_empty_parts_give_no_rows(small_study, tmp_path):
    import dagster as dg

    from pipelines.ingest.stage import run_ingest

    plan = {"models": [{"name": "m", "outcome": "dropout", "terms": ["failing_any", "chronic_absence"]}],
            "imputations": 0}
    study = load_study(variant_file(small_study, tmp_path, plan, name="bare"))
    run_ingest(study, load_codebooks(study))
    run = dg.materialize(build_analysis_assets(study), resources={"study": StudyResource(study_file=str(study.path))},
                         raise_on_error=True)
    assert run.success
    models = warehouse.read_table(study.db_path, "results.models")
    assert not models["method"].str.contains("mice").any() and models["headline"].any()
    for table in ("descriptives", "associations", "screening", "reasons"):
        frame = warehouse.read_table(study.db_path, f"results.{table}")
        assert len(frame) == 0 and {"estimate", "method"} <= set(frame.columns), table
    assert isinstance(models, pd.DataFrame)


def test_technical_and_overview_reports_render_and_say_what_they_lack(variant, variant_results, tmp_path):
    """Both reports render on the pupils-only study with its own outcome (a kernel each: ~6 s)."""
    from pipelines.config import PROJECT_ROOT
    from pipelines.privacy.cells import audit_html_tables

    study, _ = variant
    pages = {}
    for report, lang in (("technical", "et"), ("overview", "en")):
        written = render_report(PROJECT_ROOT / "reports" / f"{report}.qmd", tmp_path / lang,
                                {"study": study.study, "db": str(study.db_path), "lang": lang})
        pages[report] = next(p for p in written if p.suffix == ".html").read_text(encoding="utf-8")
        assert "Traceback" not in pages[report]
        assert audit_html_tables(pages[report], study.privacy.min_cell).empty, report
    assert "Sellest aruandest puudub:" in pages["technical"] and "Piloot" in pages["technical"]
    assert "left_per10" in pages["technical"] and "10 ühiku kohta" in pages["technical"]
    assert "Not shown in this overview:" in pages["overview"] and "Pilot" in pages["overview"]


def render_report(qmd, out, params):
    from pipelines.render.engine import render_report as render

    return render(qmd, out, params)

"""The privacy layer in the pipeline: shareable tables at k, meta.disclosure, and erasure.

Unit tests of pipelines/privacy/shareable.py run on the session's small ingested study;
the pipeline test runs `mapstudy erase` on a generated study, then the whole Dagster job,
and searches every output (tests/artifact_search.py) for the erased pupils' pseudonyms.
The risk measures themselves are checked against sdcMicro in tests/test_disclosure.py.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import load_codebooks, load_study
from pipelines.ingest.stage import run_ingest, study_keys
from pipelines.privacy import disclosure
from pipelines.privacy.erasure import erased_pseudonyms, register_path
from pipelines.privacy.identity import code_identity, valid_code
from pipelines.privacy.shareable import (MISSING_RULE, disclosure_report, global_recoding, key_columns, person_keys,
                                         protect, records_below_k, release_ids)
from pipelines.warehouse import read_table
from tests.artifact_search import index_run, run_whole_job
from tests.conftest import generate

ERASE_PUPILS = 300
ERASED = 3


@pytest.fixture(scope="module")
def protected_pupils(small_study):
    study, books, _ = small_study
    anon = read_table(study.db_path, "anon.pupils")
    return study, books["pupils"], anon, protect(anon, books["pupils"], study)


def test_shareable_pupils_reach_k_within_each_wave(protected_pupils):
    study, codebook, anon, protected = protected_pupils
    table = protected.table
    k = study.privacy.k_anonymity
    assert protected.keys_after[0] == "wave"
    assert set(protected.keys_after) == {"wave", "county", "municipality", "school_type", "grade", "sex",
                                         "home_language", "age"}
    sizes = table.groupby(protected.keys_after, dropna=False).size()
    assert sizes.min() >= k
    assert records_below_k(table, protected.keys_after, k) == 0
    assert records_below_k(anon, protected.keys_before, k) > len(anon) / 2  # the anon table is far from k
    assert len(table) + protected.records_removed == len(anon)
    assert protected.records_removed < 0.02 * len(anon)


def test_shareable_pupils_reach_k_over_their_linked_waves(protected_pupils):
    study, codebook, anon, protected = protected_pupils
    assert protected.person == "pupil_id"
    assert records_below_k(protected.table, protected.keys_after, study.privacy.k_anonymity, "pupil_id") == 0
    histories = person_keys(protected.table, protected.keys_after, "pupil_id")
    assert len(histories) == protected.table["pupil_id"].nunique()
    assert histories.groupby(list(histories.columns), dropna=False).size().min() >= study.privacy.k_anonymity


def test_linked_waves_make_classes_per_pupil():
    """Per wave every class has 5 records, but a pupil's two waves together single out pairs."""
    baseline = pd.DataFrame({"pupil_id": [f"P-{i}" for i in range(10)], "wave": "baseline",
                             "grade": ["4-6"] * 10})
    followup = pd.DataFrame({"pupil_id": [f"P-{i}" for i in range(10)], "wave": "followup",
                             "grade": ["4-6"] * 5 + ["7-9"] * 5})
    frame = pd.concat([baseline, followup], ignore_index=True)
    assert records_below_k(frame, ["wave", "grade"], 5) == 0
    assert records_below_k(frame, ["wave", "grade"], 5, "pupil_id") == 0
    moved = frame.copy()
    moved.loc[15, "grade"] = "4-6"  # a sixth pupil stays in 4-6, leaving 4 who moved on
    assert records_below_k(moved, ["wave", "grade"], 5) == 4  # the four 7-9 follow-up records
    assert records_below_k(moved, ["wave", "grade"], 5, "pupil_id") == 8  # their baseline records too
    assert list(person_keys(moved, ["wave", "grade"], "pupil_id").columns) == [
        "waves_present", "grade@baseline", "grade@followup"]
    # a record without a pupil id is a person of its own, in whichever wave it is
    unlinked = pd.concat([frame, pd.DataFrame({"pupil_id": [None, None], "wave": ["baseline", "followup"],
                                               "grade": ["4-6", "4-6"]})], ignore_index=True)
    assert len(person_keys(unlinked, ["wave", "grade"], "pupil_id")) == 12
    assert records_below_k(unlinked, ["wave", "grade"], 5, "pupil_id") == 2


def test_shareable_tables_have_their_own_pseudonyms(small_study):
    study, books, _ = small_study
    keys = study_keys(study)
    anon = read_table(study.db_path, "anon.pupils").head(50)
    released = release_ids(anon, books["pupils"], keys, "share.pupils")
    other = release_ids(anon, books["pupils"], keys, "share.pilot")
    assert released["pupil_id"].str.fullmatch(r"P-[A-Z2-7]{16}").all()
    assert not set(released["pupil_id"]) & set(anon["pupil_id"])
    assert not set(released["pupil_id"]) & set(other["pupil_id"])
    # within a release the link holds: one original pseudonym, one released pseudonym
    pairs = pd.DataFrame({"anon": anon["pupil_id"], "released": released["pupil_id"]}).drop_duplicates()
    assert pairs["anon"].is_unique and pairs["released"].is_unique
    assert released["pupil_id"].tolist() == release_ids(anon, books["pupils"], keys, "share.pupils")["pupil_id"].tolist()


def test_shareable_pupils_are_recoded_and_hold_no_free_text(protected_pupils):
    study, codebook, anon, protected = protected_pupils
    table = protected.table
    for gone in ("school_id", "birth_year", "notes", "identity_match", "source"):
        assert gone in anon.columns and gone not in table.columns
    assert set(table["grade"].dropna()) <= set(disclosure.SCHOOL_STAGES)
    assert set(table["age"].dropna()) <= {"0-6", "7-9", "10-12", "13-15", "16-18", "19-119"}
    counties = {c.name for c in study.counties.values()}
    assert set(table["municipality"].dropna()) <= set(anon["municipality"]) | counties
    # derived columns are recomputed from the protected values: male is missing where sex is
    assert (table["male"].isna() == table["sex"].isna()).all()
    assert ((table["male"] == 1) == (table["sex"] == "male")).dropna().all()
    # analytic and sensitive values are untouched: the dropout count only loses removed records
    assert table["dropout"].sum() <= anon["dropout"].sum()
    assert table["dropout"].sum() >= anon["dropout"].sum() - protected.records_removed


def test_small_municipalities_become_their_county():
    from pipelines.config import Privacy

    frame = pd.DataFrame({"municipality": ["A"] * 30 + ["B"] * 3, "grade": [3] * 33, "age": [9] * 33})
    recoded = global_recoding(frame, Privacy(small_municipality=10), {"A": "Maakond", "B": "Maakond"})
    assert list(recoded["municipality"].unique()) == ["A", "Maakond"]
    assert set(recoded["grade"]) == {"1-3"} and set(recoded["age"]) == {"7-9"}


def test_event_dates_are_shared_as_their_month(small_study):
    study, books, _ = small_study
    anon = read_table(study.db_path, "anon.pilot")
    shared = protect(anon, books["pilot"], study).table
    assert anon["assessed_on"].notna().any()
    assert shared["assessed_on"].dropna().str.fullmatch(r"\d{4}-\d{2}").all()
    report = disclosure_report("pilot", anon, protect(anon, books["pilot"], study), study.privacy)
    assert "global recoding: month" in set(report.loc[report["variable"] == "assessed_on", "method"])


def test_disclosure_report_measures_before_and_after(protected_pupils):
    study, codebook, anon, protected = protected_pupils
    report = disclosure_report("pupils", anon, protected, study.privacy)
    assert list(report.columns[:5]) == ["table", "stage", "analysis", "measure", "variable"]
    assert set(report["stage"]) == {"settings", "before", "global_recoding", "local_suppression", "after",
                                    "before_linked", "after_linked"}

    def value(stage, measure, variable=""):
        row = report[(report["stage"] == stage) & (report["measure"] == measure) & (report["variable"] == variable)]
        assert len(row) == 1, (stage, measure, variable)
        return row["estimate"].iloc[0]

    assert value("after", "records_below_k") == 0
    assert value("after_linked", "records_below_k") == 0
    assert value("after_linked", "records") == protected.table["pupil_id"].nunique()
    assert value("before_linked", "records_below_k") > value("after_linked", "records") / 2
    linked = report[report["measure"] == "linked_by"]
    assert linked["variable"].tolist() == ["pupil_id"] and "per person over all waves" in linked["method"].iloc[0]
    assert value("before", "records_below_k") == records_below_k(anon, protected.keys_before, 5)
    assert value("after", "fk_min") >= 5
    assert value("after", "max_individual_risk") <= 1 / 5
    # unweighted: expected re-identifications = number of classes (sum over records of 1 / fk)
    assert value("after", "expected_reidentifications") == pytest.approx(value("after", "equivalence_classes"))
    assert value("after", "records") == len(protected.table)
    assert value("settings", "records_removed") == protected.records_removed
    assert "missing is its own category" in report.loc[report["measure"] == "missing_rule", "method"].iloc[0]
    assert set(report.loc[report["stage"] != "settings", "correction"]) == {disclosure._RULE_LABEL[MISSING_RULE]}
    lost = value("local_suppression", "suppressed_values_total")
    assert lost == int(protected.suppressed[protected.keys_after].isna().sum().sum()
                       - protected.recoded[protected.keys_after].isna().sum().sum())
    assert {"dropout", "status", "sen_support"} <= set(report.loc[report["measure"] == "l_min", "variable"])


@pytest.fixture(scope="module")
def erased_run(tmp_path_factory):
    """A generated study: pupils erased with `mapstudy erase`, then the whole job run."""
    root = tmp_path_factory.mktemp("erasure")
    study_file, truth = generate(root, pupils=ERASE_PUPILS)
    study = load_study(study_file)
    run_ingest(study, load_codebooks(study))  # the run before the erasure
    with duckdb.connect(str(study.db_path), read_only=True) as con:
        in_pilot = {p for (p,) in con.execute("SELECT DISTINCT pupil_id FROM anon.pilot").fetchall()}
        in_pupils = {p for (p,) in con.execute("SELECT DISTINCT pupil_id FROM anon.pupils").fetchall()}
    keys = study_keys(study)
    by_pseudonym = {keys.pseudonym("pupil", code_identity(c)): c for c in truth["canaries"]["personal_codes"]
                    if valid_code(c)}
    chosen = sorted(p for p in by_pseudonym if p in in_pilot and p in in_pupils)[:ERASED]
    assert len(chosen) == ERASED
    cli = CliRunner().invoke(app, ["erase", "--study", str(study_file), "--codes", "-"],
                             input="\n".join(by_pseudonym[p] for p in chosen) + "\n")
    assert cli.exit_code == 0, cli.output
    result = run_whole_job(study_file, root / "dagster")
    index = index_run(root, [root / "raw", root / "data" / "truth", root / "secrets", root / "codebooks",
                             register_path(study), study_file])
    return study, chosen, result, index


@pytest.mark.slow  # a second whole-job run: keeps `make test` under 10 minutes
def test_erased_pupils_appear_in_no_output(erased_run):
    study, chosen, result, index = erased_run
    assert sorted(erased_pseudonyms(study)) == chosen
    assert any(s.startswith("duckdb:share.pupils") for s in index.sources)
    assert any(s.startswith("html:") for s in index.sources) and any(s.startswith("pdf:") for s in index.sources)
    hits = index.hits(chosen)
    assert hits.empty, f"erased pseudonyms found in {sorted(set(hits['source']))}"
    with duckdb.connect(str(study.db_path), read_only=True) as con:
        (erased_rows,), = con.execute("SELECT coalesce(sum(n), 0) FROM meta.quality WHERE rule = 'erased'").fetchall()
    assert erased_rows >= 2 * ERASED  # each chosen pupil had rows in anon.pupils and anon.pilot


@pytest.mark.slow
def test_pipeline_gates_k_and_writes_meta_disclosure(erased_run):
    study, _, result, _ = erased_run
    steps = {e.step_key: e.event_type_value for e in result.all_events if e.step_key and (
        e.is_step_success or e.is_step_failure)}
    assert steps.get("ingest_study") == "STEP_SUCCESS" and steps.get("protect_microdata") == "STEP_SUCCESS"
    # keys carry the study's prefix in the code location (demo/share/pupils): compare without it
    checks = {("/".join(c.asset_key.path[-2:]), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("share/pupils", "k_anonymity")] and checks[("share/pilot", "k_anonymity")]
    codebooks = load_codebooks(study)
    with duckdb.connect(str(study.db_path), read_only=True) as con:
        for name in ("pupils", "pilot"):
            table = con.execute(f"SELECT * FROM share.{name}").df()
            keys = key_columns(codebooks[name], table.columns)
            # independent of the Python measures: GROUP BY keeps missing values as their own group
            (smallest,), = con.execute(f"SELECT min(n) FROM (SELECT count(*) AS n FROM share.{name} "
                                       f"GROUP BY {', '.join(keys)})").fetchall()
            assert smallest >= study.privacy.k_anonymity
        rows = con.execute("SELECT \"table\", stage, measure, estimate FROM meta.disclosure "
                           "WHERE measure = 'records_below_k'").fetchall()
    below = {(t, s): e for t, s, _, e in rows}
    assert below[("share.pupils", "after")] == 0 and below[("share.pilot", "after")] == 0
    assert below[("anon.pupils", "before")] > 0


@pytest.fixture(scope="module")
def shared_study(small_study, tmp_path_factory):
    """A copy of the small study's database with the shareable tables written by the asset."""
    import shutil

    import dagster as dg

    from pipelines.assets.privacy import build_protect_microdata
    from pipelines.privacy.shareable import shared_instruments
    from pipelines.resources import StudyResource

    study, books, _ = small_study
    processed = tmp_path_factory.mktemp("processed")
    shutil.copy(study.db_path, processed / study.db_path.name)
    copy = study.model_copy(update={"processed_dir": str(processed)})
    study_file = processed / "study.yaml"
    data = yaml.safe_load(study.path.read_text(encoding="utf-8"))
    data["processed_dir"] = str(processed)
    study_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = dg.materialize([build_protect_microdata(shared_instruments(books))], resources={"study": StudyResource(study_file=str(study_file))})
    assert result.success
    return copy, books, study_file


def test_share_writes_only_the_shareable_tables_and_says_what_was_done(shared_study, tmp_path):
    study, books, study_file = shared_study
    out = tmp_path / "release"
    cli = CliRunner().invoke(app, ["share", "--study", str(study_file), "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "disclosure.csv", "pilot.csv", "pilot.parquet",
                                                      "pupils.csv", "pupils.parquet"]
    assert not list(tmp_path.glob(".*partial"))
    for name in ("pupils", "pilot"):
        shared = read_table(study.db_path, f"share.{name}")
        released = duckdb.execute(f"SELECT * FROM read_parquet('{out / f'{name}.parquet'}')").df()
        assert len(released) == len(shared) and list(released.columns) == list(shared.columns)
        assert len(pd.read_csv(out / f"{name}.csv")) == len(shared)
        anon_ids = set(read_table(study.db_path, f"anon.{name}")["pupil_id"])
        assert not set(released["pupil_id"]) & anon_ids
    disclosure = pd.read_csv(out / "disclosure.csv")
    assert set(disclosure["table"]) == {"share.pupils", "share.pilot"}
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "k = 5" in readme and "cannot be joined" in readme
    again = CliRunner().invoke(app, ["share", "--study", str(study_file), "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output


def test_share_refuses_a_table_below_k_and_writes_nothing(shared_study, tmp_path):
    from pipelines.privacy.release import ReleaseError, write_release
    from pipelines.warehouse import write_tables

    study, books, _ = shared_study
    original = read_table(study.db_path, "share.pilot")
    broken = original.copy()
    broken.loc[0, "municipality"] = "Nowhere"
    write_tables(study.db_path, {"share.pilot": broken})
    try:
        with pytest.raises(ReleaseError, match=r"share.pilot has \d+ record\(s\) below k = 5"):
            write_release(study, books, tmp_path / "release")
        assert not (tmp_path / "release").exists() and not list(tmp_path.iterdir())
    finally:
        write_tables(study.db_path, {"share.pilot": original})

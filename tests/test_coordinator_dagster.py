"""Coordinator reports in Dagster: partitions per municipality, studies apart in one instance.

Fast: two studies (the same exports under two study names) built and ingested in ONE
Dagster instance: their asset keys carry their own prefix, their materialisations,
checks and partitions never mix; the municipality reports are partitioned by the study's
municipalities and `mapstudy run` runs every partition. Slow: a whole run of a small
shape materialises every municipality partition and the county reports, writes the index,
and the published family passes its audit.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.assets.coordinator import municipalities, slug
from pipelines.config import load_study


def _renamed(study_file: Path, name: str, root: Path) -> Path:
    data = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    data["study"] = name
    data["processed_dir"] = str(root / name / "processed")
    data["reports_dir"] = str(root / name / "reports")
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _ingest_keys(defs, prefix: str) -> set[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return {k for k in graph.get_all_asset_keys()
            if k.path[0] == prefix and k.path[1] in ("anon", "meta") and graph.get(k).is_executable
            and k.path[2] != "disclosure"}


def test_two_studies_in_one_instance_do_not_mix(small_study, tmp_path):
    from pipelines.study_definitions import MUNICIPALITY_JOB, build_definitions
    from pipelines.runner import RANGE_END_TAG, RANGE_START_TAG, study_jobs

    study, _, _ = small_study
    files = {name: _renamed(study.path, name, tmp_path) for name in ("alpha", "beta")}
    instance = dg.DagsterInstance.ephemeral()
    runs, keys = {}, {}
    for name, path in files.items():
        defs, _ = build_definitions(str(path), key_prefix=name)
        all_keys = defs.resolve_asset_graph().get_all_asset_keys()
        assert all(k.path[0] == name for k in all_keys)  # every key under the study's prefix
        keys[name] = all_keys
        # the municipality reports: partitioned by the study's municipalities, in a job of their own
        job = defs.resolve_job_def(MUNICIPALITY_JOB)
        assert job.partitions_def.get_partition_keys() == municipalities(load_study(path))
        assert dg.AssetKey([name, "reports", "municipality"]) not in defs.resolve_job_def("study").asset_layer.selected_asset_keys
        ordered = study_jobs(defs)
        assert [n for n, _ in ordered] == ["study", MUNICIPALITY_JOB]
        partitions = job.partitions_def.get_partition_keys()
        assert ordered[1][1] == {RANGE_START_TAG: partitions[0], RANGE_END_TAG: partitions[-1]}
        result = defs.resolve_job_def("study").get_subset(asset_selection=_ingest_keys(defs, name)).execute_in_process(
            instance=instance)
        assert result.success
        runs[name] = result.run_id
    assert not keys["alpha"] & keys["beta"]
    for name in files:
        event = instance.get_latest_materialization_event(dg.AssetKey([name, "anon", "pupils"]))
        assert event is not None and event.run_id == runs[name]
        record = instance.get_run_by_id(runs[name])
        assert all(k.path[0] == name for k in record.asset_selection)
        planned = {e.dagster_event.asset_key for e in instance.all_logs(runs[name])
                   if e.dagster_event is not None and e.dagster_event.asset_key is not None}
        assert planned and all(k.path[0] == name for k in planned)
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey([name, "anon", "pupils"]), "no_direct_identifiers"), limit=5)
        assert [c.run_id for c in checks] == [runs[name]]
    assert instance.get_latest_materialization_event(dg.AssetKey(["anon", "pupils"])) is None
    # a partition materialised in one study is that study's only
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=dg.AssetKey(["alpha", "reports", "municipality"]), partition=municipalities(study)[0]))
    assert instance.get_materialized_partitions(dg.AssetKey(["alpha", "reports", "municipality"])) == {
        municipalities(study)[0]}
    assert not instance.get_materialized_partitions(dg.AssetKey(["beta", "reports", "municipality"]))


def test_place_slugs_are_plain_and_distinct(small_study):
    study, _, _ = small_study
    names = municipalities(study)
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    assert all(s.isascii() and " " not in s for s in slugs)
    assert slug("Võru linn") == "voru-linn"


@pytest.mark.slow
def test_run_materialises_every_partition_and_the_index(tmp_path, monkeypatch):
    from pipelines.runner import open_instance, run_study_job
    from pipelines.synth.shapes import make_shape
    from pipelines.warehouse import read_table

    monkeypatch.setenv("MAPSTUDY_DAGSTER_STORAGE", str(tmp_path / "dagster"))
    monkeypatch.setenv("MAPSTUDY_DAGSTER_LOGS", str(tmp_path / "logs"))
    study_file, _ = make_shape("sparse_county", tmp_path / "shape", pupils=300, seed=7)
    assert run_study_job(study_file)
    study = load_study(study_file)
    with open_instance() as instance:
        done = instance.get_materialized_partitions(dg.AssetKey([study.study, "reports", "municipality"]))
    assert done == set(municipalities(study))
    for lang in ("et", "en"):
        for name in municipalities(study):
            for suffix in ("html", "pdf"):
                assert (study.report_dir(lang) / "municipality" / f"{slug(name)}.{suffix}").is_file()
        for county in study.counties.values():
            assert (study.report_dir(lang) / "county" / f"{slug(county.name)}.html").is_file()
    index = (study.report_dir("et").parent / "index.html").read_text(encoding="utf-8")
    assert all(f"municipality/{slug(n)}.html" in index for n in municipalities(study))
    cells = read_table(study.db_path, "results.published_family")
    small = cells["value"].notna() & (cells["value"] >= 1) & (cells["value"] < study.privacy.min_cell)
    assert not small.any()
    os.environ.pop("MAPSTUDY_STUDY", None)

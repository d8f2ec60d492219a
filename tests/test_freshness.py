"""Skip what is up to date (pipelines/freshness.py): what counts as an input, and the step's decision.

The whole job's behaviour (a rerun with nothing changed recomputes nothing; a changed raw
file recomputes the ingest and only what its new content reaches) is tested on generated
study shapes in tests/test_shapes_whole_job.py.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from pipelines import warehouse
from pipelines.config import PROJECT_ROOT
from pipelines.freshness import (UP_TO_DATE, VERSIONS_TABLE, code_version, read_record, skip_when_up_to_date,
                                 source_closure, table_versions)
from pipelines.resources import StudyResource
from tests.conftest import make_study_file


def test_the_code_of_a_node_is_its_module_and_every_project_module_it_imports():
    files = {p.relative_to(PROJECT_ROOT).as_posix() for p in source_closure(["pipelines.assets.ingest"])}
    assert "pipelines/assets/ingest.py" in files
    assert "pipelines/ingest/stage.py" in files  # imported directly
    assert "pipelines/privacy/pseudonyms.py" in files  # imported by what it imports
    assert "pipelines/assets/__init__.py" in files  # a package runs its __init__
    assert not any(f.startswith("pipelines/render/") for f in files)  # the ingest renders nothing
    assert code_version(("pipelines.assets.ingest",)) != code_version(("pipelines.assets.personas",))


def test_a_table_version_sees_values_row_order_and_columns():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA results")

    def version(sql: str) -> str:
        con.execute(f"CREATE OR REPLACE TABLE results.t AS {sql}")
        return table_versions(con, ["results.t"])["results.t"]

    base = version("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(x, y)")
    assert version("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(x, y)") == base
    assert version("SELECT * FROM (VALUES (1, 'a'), (2, 'c')) v(x, y)") != base
    assert version("SELECT * FROM (VALUES (2, 'b'), (1, 'a')) v(x, y)") != base
    assert version("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(x, z)") != base
    assert version("SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (2, 'b')) v(x, y)") != base
    assert table_versions(con, ["results.gone"]) == {"results.gone": "absent"}


class Calls:
    """Which of the test assets computed, the source's values, and whether `first` fails."""

    def __init__(self) -> None:
        self.computed: list[str] = []
        self.values: object = ()
        self.fail = False


def _assets(calls: Calls):
    """`source` writes anon.source from its values (a raw file's stand-in), `first` a rounded copy, `second` a sum."""

    @dg.asset(key=["anon", "source"])
    @skip_when_up_to_date(extra_inputs=lambda config, resource: {"values": repr(calls.values)})
    def source(context, study: StudyResource):
        config, _ = study.load()
        calls.computed.append("source")
        warehouse.write_tables(config.db_path, {"anon.source": pd.DataFrame({"x": list(calls.values)})})
        return dg.MaterializeResult()

    @dg.asset(key=["results", "first"], deps=[["anon", "source"]])
    @skip_when_up_to_date
    def first(context, study: StudyResource):
        config, _ = study.load()
        calls.computed.append("first")
        if calls.fail:
            raise RuntimeError("planned failure")
        source = warehouse.read_table(config.db_path, "anon.source")
        warehouse.write_tables(config.db_path, {"results.first": (source[["x"]] // 10).astype("int64")})
        return dg.MaterializeResult(metadata={"rows": len(source)})

    @dg.asset(key=["results", "second"], deps=[["results", "first"]],
              check_specs=[dg.AssetCheckSpec("positive", asset=["results", "second"])])
    @skip_when_up_to_date
    def second(context, study: StudyResource):
        config, _ = study.load()
        calls.computed.append("second")
        total = int(warehouse.read_table(config.db_path, "results.first")["x"].sum())
        warehouse.write_tables(config.db_path, {"results.second": pd.DataFrame({"total": [total]})})
        yield dg.MaterializeResult(asset_key=["results", "second"])
        yield dg.AssetCheckResult(asset_key=["results", "second"], check_name="positive", passed=total >= 0)

    return [source, first, second]


@pytest.fixture
def study_file(tmp_path):
    return make_study_file(tmp_path)


def _run(study_file, calls: Calls, force: bool = False) -> dg.ExecuteInProcessResult:
    calls.computed.clear()
    return dg.materialize(_assets(calls), resources={"study": StudyResource(study_file=str(study_file), force=force)},
                          raise_on_error=False)


def _up_to_date(result) -> set[str]:
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events()
            if UP_TO_DATE in e.step_materialization_data.materialization.metadata}


def test_an_asset_is_skipped_while_its_inputs_are_unchanged_and_recomputed_when_they_change(study_file):
    calls = Calls()
    calls.values = [11, 25, 37]
    assert _run(study_file, calls).success and calls.computed == ["source", "first", "second"]

    again = _run(study_file, calls)
    assert again.success and calls.computed == [] and _up_to_date(again) == {"source", "first", "second"}
    check = again.get_asset_check_evaluations()[0]
    assert check.passed and UP_TO_DATE in check.metadata  # the recorded check result, said to be recorded

    calls.values = (11, 25, 37)  # a changed input that writes the same table: nothing downstream to do
    assert _run(study_file, calls).success and calls.computed == ["source"]

    calls.values = [99]
    assert _run(study_file, calls).success and calls.computed == ["source", "first", "second"]

    assert _run(study_file, calls, force=True).success and calls.computed == ["source", "first", "second"]


def test_the_data_version_is_the_content_of_the_table(study_file):
    calls = Calls()
    calls.values = [1, 2]
    first = _run(study_file, calls)
    versions = {".".join(e.asset_key.path): e.step_materialization_data.materialization.tags.get("dagster/data_version")
                for e in first.get_asset_materialization_events()}
    from pipelines.config import load_study

    with warehouse.connect(load_study(study_file).db_path, read_only=True) as con:
        assert versions == table_versions(con, ["anon.source", "results.first", "results.second"])


def test_a_failed_step_leaves_no_record_and_is_computed_again(study_file):
    from pipelines.config import load_study

    calls = Calls()
    calls.values = [5]
    calls.fail = True
    assert not _run(study_file, calls).success
    db = load_study(study_file).db_path
    with warehouse.connect(db, read_only=True) as con:
        assert read_record(con, "results__first") is None and read_record(con, "results__second") is None
    calls.fail = False
    assert _run(study_file, calls).success and calls.computed == ["first", "second"]  # source kept its record
    with warehouse.connect(db, read_only=True) as con:
        assert read_record(con, "results__first") is not None


def test_a_changed_or_removed_output_is_computed_again(study_file):
    from pipelines.config import load_study

    calls = Calls()
    calls.values = [5, 15]
    _run(study_file, calls)
    db = load_study(study_file).db_path
    with warehouse.connect(db) as con:
        con.execute("DROP TABLE results.second")
    assert _run(study_file, calls).success and calls.computed == ["second"]
    warehouse.write_tables(db, {"results.first": pd.DataFrame({"x": [7]})})  # edited by hand
    # `first` writes its table again; `second` read the same content before: nothing for it to do
    assert _run(study_file, calls).success and calls.computed == ["first"]
    with warehouse.connect(db, read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {VERSIONS_TABLE}").fetchone()[0] == 3

"""The study database under runs: work on a staging copy, promote on success only; readers wait for writers."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest

from pipelines import warehouse


def _write(db, value):
    warehouse.write_tables(db, {"results.t": pd.DataFrame({"a": [value]})})


def test_a_successful_run_replaces_the_database(tmp_path):
    db = tmp_path / "s.duckdb"
    _write(db, 1)
    with warehouse.staged(db) as promote:
        _write(db, 2)  # goes to the staging copy
        assert warehouse.read_table(db, "results.t")["a"].tolist() == [2]
        assert warehouse.staging_path(db).is_file()
        promote()
    assert warehouse.read_table(db, "results.t")["a"].tolist() == [2]
    assert not warehouse.staging_path(db).exists() and not (tmp_path / "s.duckdb.wal").exists()


def test_a_failed_run_leaves_the_previous_database(tmp_path):
    db = tmp_path / "s.duckdb"
    _write(db, 1)
    before = db.read_bytes()
    with pytest.raises(RuntimeError):
        with warehouse.staged(db):
            _write(db, 2)
            raise RuntimeError("a step failed")
    with warehouse.staged(db):
        _write(db, 3)  # finished without promote(): a failed Dagster run
    assert db.read_bytes() == before
    assert not list(tmp_path.glob("*.staging*"))
    assert warehouse.active_path(db) == db  # the redirect ends with the run


def test_a_first_run_that_fails_leaves_no_database(tmp_path):
    db = tmp_path / "s.duckdb"
    with warehouse.staged(db):
        _write(db, 1)
    assert not db.exists()


def test_a_reader_waits_for_a_writer_in_another_process(tmp_path):
    db = tmp_path / "s.duckdb"
    _write(db, 1)
    writer = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); time.sleep(2); c.close()", str(db)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "open"
    started = time.monotonic()
    assert warehouse.read_table(db, "results.t")["a"].tolist() == [1]
    assert time.monotonic() - started > 0.5
    writer.wait(timeout=30)

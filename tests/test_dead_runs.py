"""A run whose process died keeps no concurrency slot: the next run frees it (fast, without running a job)."""

from __future__ import annotations

import os
import warnings

import pytest

from pipelines.locks import file_lock
from pipelines.runner import ALIVE_TAG, open_instance


@pytest.fixture
def instance(tmp_path, monkeypatch):
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from pipelines.config import PROJECT_ROOT

    monkeypatch.setenv("DAGSTER_HOME", str(PROJECT_ROOT))
    monkeypatch.setenv("MAPSTUDY_DAGSTER_STORAGE", str(tmp_path / "dagster"))
    monkeypatch.setenv("MAPSTUDY_DAGSTER_LOGS", str(tmp_path / "logs"))
    with open_instance() as inst:  # creates the storage under the instance lock
        inst.event_log_storage.set_concurrency_slots("duckdb", 1)
        yield inst


def _started_run(instance, tmp_path, name):
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun

    lock = tmp_path / f"{name}.lock"
    run = instance.add_run(DagsterRun(job_name="study", run_id=f"{name}-0000-0000-0000-000000000000",
                                      status=dg.DagsterRunStatus.STARTED, tags={ALIVE_TAG: str(lock)}))
    claim = instance.event_log_storage.claim_concurrency_slot("duckdb", run.run_id, "ingest_study")
    return run, lock, claim


def test_the_slot_of_a_dead_run_is_freed_and_a_live_one_kept(instance, tmp_path):
    import dagster as dg

    dead, _, claim = _started_run(instance, tmp_path, "dead")
    assert claim.is_claimed
    live, live_lock, _ = _started_run(instance, tmp_path, "live")
    held = file_lock(live_lock)
    held.acquire()  # this process stands for the live run's process
    try:
        messages = []
        with open_instance(messages.append) as again:
            assert again.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
            assert again.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
            slots = again.event_log_storage.get_concurrency_info("duckdb")
            assert {s.run_id for s in slots.claimed_slots} <= {live.run_id}
        assert messages == ["freed the concurrency slots of 1 run(s) that were killed or crashed"]
    finally:
        held.release()
    assert os.path.exists(live_lock)

"""Running the study's Dagster job in-process, with the project's own Dagster instance.

`mapstudy run` and `make demo` use this, so their runs appear in the Dagster UI
(`make dev`) beside the ones launched there, and everything Dagster stores stays under
the git-ignored `.mapstudy/` folder.

A run is safe against crashes and against other commands:

* it holds the study lock (`pipelines/locks.py`) from start to end, so two runs, or a run
  and an erasure or a release of the same study, never overlap;
* it checks the key and the erasure register before launching (a missing key is one line,
  not a failed step);
* Dagster's storage is created, and cleaned of dead runs, under the instance lock
  (`.mapstudy/dagster.lock`): two first runs in a fresh clone cannot both create it, and a
  run killed with `kill -9` no longer keeps the `duckdb` concurrency slot for ever. Each
  run holds an OS lock `.mapstudy/dagster-alive/<run id>.lock` while it lives and names it
  in its tags; a run whose lock is free is dead: its slots are freed and it is marked
  failed;
* it works on a staging copy of the database, renamed over the database only when the
  run succeeded (`warehouse.staged`).
"""

from __future__ import annotations

import errno
import os
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

from filelock import Timeout

from pipelines.config import PROJECT_ROOT
from pipelines.locks import file_lock, held, study_lock

STATE_DIR = PROJECT_ROOT / ".mapstudy"
#: The run tag naming the lock its process holds while the run lives.
ALIVE_TAG = "mapstudy/alive_lock"
#: Run statuses of a run that has not ended (only these can be dead yet unfinished).
_UNFINISHED = ("NOT_STARTED", "STARTING", "STARTED", "CANCELING", "QUEUED")

Notify = Callable[[str], None]


def dagster_environment(study_file: Path | None = None) -> dict[str, str]:
    """The environment variables the project's dagster.yaml and definitions read.

    The storage and log folders may be set beforehand (tests run with their own).
    """
    env = {
        "DAGSTER_HOME": str(PROJECT_ROOT),
        "MAPSTUDY_DAGSTER_STORAGE": os.environ.get("MAPSTUDY_DAGSTER_STORAGE") or str(STATE_DIR / "dagster"),
        "MAPSTUDY_DAGSTER_LOGS": os.environ.get("MAPSTUDY_DAGSTER_LOGS") or str(STATE_DIR / "logs"),
    }
    if study_file is not None:
        env["MAPSTUDY_STUDY"] = str(Path(study_file).resolve())
    return env


def _storage_dir() -> Path:
    return Path(os.environ["MAPSTUDY_DAGSTER_STORAGE"])


def _alive_dir(storage: Path) -> Path:
    return storage.with_name(storage.name + "-alive")


def _is_alive(lock_path: Path) -> bool:
    """A run lives while its process holds its lock (the OS frees the lock of a dead process)."""
    lock = file_lock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def release_dead_runs(instance) -> list[str]:
    """Mark failed, and free the concurrency slots of, every unfinished run whose process is gone.

    Runs launched elsewhere (the Dagster UI) carry no alive lock and are left to Dagster;
    a finished run that still holds slots has them freed. Call under the instance lock.
    """
    import dagster as dg

    events = instance.event_log_storage
    statuses = [dg.DagsterRunStatus[s] for s in _UNFINISHED]
    released = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=statuses)):
        lock_path = run.tags.get(ALIVE_TAG)
        if not lock_path or _is_alive(Path(lock_path)):
            continue
        events.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_failed(run, message="the process running this run ended before the run did "
                                                "(killed or crashed); mapstudy freed its concurrency slots")
        Path(lock_path).unlink(missing_ok=True)
        released.append(run.run_id)
    for run_id in events.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            events.free_concurrency_slots_for_run(run_id)
            released.append(run_id)
    return released


def open_instance(notify: Notify | None = None):
    """Dagster's instance, its storage created once and cleaned of dead runs under the instance lock."""
    import dagster as dg

    storage = _storage_dir()
    storage.parent.mkdir(parents=True, exist_ok=True)
    with held(file_lock(storage.with_name(storage.name + ".lock")), "Dagster's storage", None, notify):
        instance = dg.DagsterInstance.get()
        try:
            released = release_dead_runs(instance)  # also creates the event log's index now
        except BaseException:
            instance.dispose()
            raise
    if released and notify:
        notify(f"freed the concurrency slots of {len(released)} run(s) that were killed or crashed")
    return instance


def preflight(study_file: Path) -> None:
    """What must hold before a run is launched: the key exists and the erasure register is under it.

    Raises MissingKeyError or ErasureKeyMismatch with a readable message.
    """
    from pipelines.config import load_study
    from pipelines.ingest.stage import study_keys
    from pipelines.privacy.erasure import check_register

    study = load_study(study_file)
    check_register(study, study_keys(study))


def run_study_job(study_file: Path, wait: float | None = None, notify: Notify | None = None,
                  accept_partial: bool = False, force: bool = False) -> bool:
    """Materialise every asset of the study in this process; True when the run succeeded.

    Holds the study lock (waiting up to ``wait`` seconds, None: as long as it takes); the
    database is replaced only when the run succeeded. Raises DataLossError when the ingest
    refused to write because files or rows would be lost (``accept_partial`` writes the rest).
    Assets whose inputs are unchanged are not recomputed (pipelines/freshness.py) unless ``force``.
    """
    os.environ.update(dagster_environment(study_file))
    import dagster as dg

    from pipelines import warehouse
    from pipelines.config import load_study

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    study = load_study(study_file)
    with study_lock(study, wait, notify):
        preflight(study_file)
        from pipelines.config import load_codebooks
        from pipelines.freshness import nothing_changed, record_definitions
        from pipelines.resources import StudyResource

        study_path = str(Path(study_file).resolve())
        resource = StudyResource(study_file=study_path, accept_partial=accept_partial, force=force)
        codebooks = load_codebooks(study)
        fresh, steps = nothing_changed(study, codebooks, resource)  # from the records: no assets imported
        if fresh:  # nothing changed: no Dagster run, no staging copy
            print(f"up to date: all {steps} steps; no input, code or setting changed since they were computed "
                  "(mapstudy run --force recomputes)")
            return True
        # Something changed (or the records cannot tell): each step decides for itself.
        from pipelines import executor
        from pipelines.study_definitions import build_definitions

        workers = executor.workers()
        defs, skipped = build_definitions(study_path, key_prefix=study.study, workers=workers)
        for line in skipped:  # assets the study cannot have (absent instruments or plan parts), and why
            print(line)
        run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
        if workers > 1:
            os.environ.update(executor.BLAS_ENV)  # before the forkserver starts: its workers inherit it
            run_config["execution"] = {"config": executor.execution_config(workers)}
        with open_instance(notify) as instance, warehouse.staged(study.db_path) as promote:
            # The study job, then each partitioned job over all its partitions in one run
            # (its assets render them in one step): all on the staging database.
            for name, tags in study_jobs(defs):
                alive = _alive_dir(_storage_dir()) / f"{uuid.uuid4()}.lock"
                job = executor.reconstructable_job(study_path, study.study, name, accept_partial, force, workers)
                with held(file_lock(alive), "this run's alive lock"), \
                        dg.execute_job(job, instance, run_config=run_config,
                                       tags={ALIVE_TAG: str(alive), **tags}) as result:
                    events = list(result.all_events)
                    success = result.success
                alive.unlink(missing_ok=True)
                if not success:
                    break
            if success:
                record_definitions(defs, study, codebooks)
                promote()
    from pipelines.ingest.losses import data_loss_in

    lost = data_loss_in(events)
    if lost is not None:
        raise lost
    if not success and (cause := io_failure_in(events)) is not None:
        raise cause
    return success


#: Run tags of a run over a range of partitions (a single-run backfill of the partitioned assets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def study_jobs(defs) -> list[tuple[str, dict[str, str]]]:
    """The jobs a run executes, in order, with their run tags: ``study``, then every
    partitioned job over all of its partitions (e.g. ``municipality_reports``)."""
    jobs = [("study", {})]
    for job in defs.resolve_all_job_defs():
        keys = job.partitions_def.get_partition_keys() if job.partitions_def is not None else []
        if job.name != "study" and not job.name.startswith("__") and keys:
            jobs.append((job.name, {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}))
    return jobs


class RunFailed(RuntimeError):
    """A step failed for a reason outside the data and the code (a full disk, permissions)."""

    def __init__(self, step: str, errno_code: int) -> None:
        super().__init__(f"the run failed in step {step}: {os.strerror(errno_code)}")
        self.step = step
        self.errno = errno_code


#: What Python's and DuckDB's messages say for the I/O failures a user can fix.
_IO_MARKERS = ((errno.ENOSPC, "No space left on device"), (errno.EDQUOT, "Disk quota exceeded"),
               (errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied"))


def io_failure_in(events) -> RunFailed | None:
    """The first failed step whose error (or its cause) is a full disk or a permission error.

    ``events``: a run's events (or its result). Only the marker is matched; nothing of the
    message is kept (it could quote data).
    """
    for event in getattr(events, "all_events", events) or []:
        if not getattr(event, "is_step_failure", False):
            continue
        error = getattr(event.step_failure_data, "error", None)
        while error is not None:
            for code, marker in _IO_MARKERS:
                if marker in (error.message or ""):
                    return RunFailed(event.step_key, code)
            error = error.cause or error.context
    return None

"""Which Dagster executor runs a study's jobs: in the runner's process, or multiprocess with warm workers.

``MAPSTUDY_WORKERS`` (default 1) says how many steps run at once. With 1, every step runs
in the runner's own process, one after another; the steps that take time use both cores
themselves (the report batches render on two kernels, the persona fits pin BLAS). With 2
or more, Dagster's multiprocess executor runs independent steps side by side (the study-
wide reports while the analyses compute). Measured on the demo on 2 cores, the
multiprocess executor was slower: each step pays a worker start (1.5-5 s on a busy
machine) and the steps writing DuckDB wait for the one-writer pool's slot (polled, ~3 s),
which on a chain of a dozen short analyses costs more than running two reports at once
saves. It is the executor for a machine with more cores, and the path to a distributed
executor (README, "Bigger studies").

- **Warm workers.** A worker is forked from a Dagster forkserver that has already imported
  the asset modules (pandas, statsmodels, the report engine...): a step starts in a
  fraction of a second instead of the seconds a fresh interpreter needs.
- **The study travels as arguments, not environment.** The forkserver keeps the
  environment it started with, so each worker rebuilds the study's definitions from the
  arguments of :func:`study_job` (study file, key prefix, staging database, flags), passed
  by :func:`reconstructable_job`; one runner process can run several studies.
- **One writer.** DuckDB admits one writing process: every writing asset is in the
  ``duckdb`` pool (one at a time, dagster.yaml), and a connection meeting another
  process's lock waits (``warehouse.LOCK_WAIT_SECONDS``). Reports only read.
- **One BLAS thread per worker.** Two workers each running a multi-threaded BLAS on two
  cores would fight; the runner pins BLAS and OpenMP to one thread (``BLAS_ENV``) before
  the forkserver starts, and the persona fits pin it again with threadpoolctl.
"""

from __future__ import annotations

import functools
import os

import dagster as dg

#: Environment variable: how many steps run at once (default 1: in the runner's process).
WORKERS_ENV = "MAPSTUDY_WORKERS"
#: Modules the forkserver imports once, so that every worker starts with them loaded.
PRELOAD = ("pipelines.assets.ingest", "pipelines.assets.analyses", "pipelines.assets.personas",
           "pipelines.assets.evaluation", "pipelines.assets.services", "pipelines.assets.coordinator",
           "pipelines.assets.reports", "pipelines.assets.privacy", "pipelines.study_definitions")
#: One BLAS / OpenMP thread per worker process.
BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def workers() -> int:
    """How many steps run at once: ``MAPSTUDY_WORKERS``, else 1 (in the runner's process)."""
    value = os.environ.get(WORKERS_ENV, "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of at least 1, not {value!r}")
    return int(value)


def executor_for(count: int) -> dg.ExecutorDefinition:
    """The executor of a study's definitions: in-process for one worker, else multiprocess.

    Only the chosen executor's config schema is in the job (and so in Dagster's stored snapshots).
    """
    return dg.in_process_executor if count <= 1 else dg.multiprocess_executor


def execution_config(count: int) -> dict:
    """The executor's run config: none in-process, else ``count`` at once with warm forks."""
    if count <= 1:
        return {}
    return {"max_concurrent": count, "start_method": {"forkserver": {"preload_modules": list(PRELOAD)}}}


@functools.cache
def _definitions(study_file: str, key_prefix: str, accept_partial: bool, force: bool, count: int) -> dg.Definitions:
    from pipelines.freshness import use_graph
    from pipelines.study_definitions import build_definitions

    defs = build_definitions(study_file, key_prefix=key_prefix, accept_partial=accept_partial, force=force,
                             workers=count)[0]
    use_graph(defs)
    return defs


def study_job(study_file: str, key_prefix: str, job_name: str, staging: str | None, accept_partial: bool,
              force: bool, count: int) -> dg.JobDefinition:
    """The job ``job_name`` of a study, rebuilt in a worker (Dagster calls this by name with these arguments)."""
    from pipelines.warehouse import STAGING_ENV

    if staging:
        os.environ[STAGING_ENV] = staging  # the run's staging copy of the database, as in the runner
    return _definitions(study_file, key_prefix, accept_partial, force, count).resolve_job_def(job_name)


def reconstructable_job(study_file: str, key_prefix: str, job_name: str, accept_partial: bool = False,
                        force: bool = False, count: int = 1):
    """A job Dagster can rebuild in another process: :func:`study_job` with the run's arguments."""
    from pipelines.warehouse import STAGING_ENV

    return dg.build_reconstructable_job(
        "pipelines.executor", "study_job",
        reconstructable_args=(study_file, key_prefix, job_name, os.environ.get(STAGING_ENV), accept_partial, force,
                              count))

"""Whole-job runs under crashes and concurrency (slow: each run of a 300-pupil study takes about a minute).

* `kill -9` during ingest, the analyses and the rendering: the previous database is intact,
  and the next run frees the dead run's concurrency slot, completes and gives the tables
  and reports of a clean run;
* two concurrent first runs in a fresh Dagster storage both complete (the second waits
  for the study lock) and give the clean run's tables;
* `mapstudy share --out` into a folder whose name holds a quote.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.config import PROJECT_ROOT, load_study
from tests.conftest import generate

pytestmark = pytest.mark.slow

MAPSTUDY = str(Path(sys.executable).with_name("mapstudy"))
RUN_TIMEOUT = 900  # a run that hangs on a dead run's slot fails the test instead of hanging it


def _env(root: Path, storage: str) -> dict[str, str]:
    return {**os.environ, "MAPSTUDY_DAGSTER_STORAGE": str(root / storage),
            "MAPSTUDY_DAGSTER_LOGS": str(root / f"{storage}-logs"), "COLUMNS": "200"}


def _start(study_file: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([MAPSTUDY, "run", "--study", str(study_file)], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _run(study_file: Path, env: dict[str, str]) -> str:
    proc = _start(study_file, env)
    output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, output[-3000:]
    return output


def _contents(db: Path) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL").fetchall()
        return {f"{s}.{t}": con.execute(f'SELECT md5(string_agg(CAST(x AS VARCHAR), \'|\')) FROM {s}."{t}" x')
                .fetchone()[0] for s, t in tables}


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A generated study and its clean run: (root, study file, tables, report files)."""
    root = tmp_path_factory.mktemp("crash")
    study_file, _ = generate(root, pupils=300)
    _run(study_file, _env(root, "dagster"))
    study = load_study(study_file)
    return root, study_file, _contents(study.db_path), _files(root / "reports")


@pytest.mark.parametrize("stage, trigger", [
    ("ingest", "ingest_study - ingest"),
    ("analyses", "descriptives - results.descriptives"),
    ("rendering", "rendering the overview report (et)"),
])
def test_a_run_killed_at_any_stage_is_recovered_by_the_next(clean, stage, trigger):
    root, study_file, tables, reports = clean
    study = load_study(study_file)
    env = _env(root, "dagster")
    before = hashlib.sha256(study.db_path.read_bytes()).hexdigest()
    proc = _start(study_file, env)
    seen = []
    deadline = time.monotonic() + RUN_TIMEOUT
    for line in proc.stdout:
        seen.append(line)
        if trigger in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "the run never reached " + stage
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    # the killed run worked on a copy: the previous good database is as it was
    assert hashlib.sha256(study.db_path.read_bytes()).hexdigest() == before

    output = _run(study_file, env)
    if stage in ("ingest", "analyses"):  # steps in the duckdb pool: the dead run held the slot
        assert "freed the concurrency slots of 1 run(s)" in output
    assert _contents(study.db_path) == tables
    assert {name: digest for name, digest in _files(root / "reports").items()
            if not name.endswith(".partial")} == reports
    assert not list(study.db_path.parent.glob("*.staging*"))


def test_two_concurrent_first_runs_lose_nothing(clean):
    root, study_file, tables, _ = clean
    env = _env(root, "dagster-fresh")  # a fresh clone: Dagster's storage does not exist yet
    procs = [_start(study_file, env) for _ in range(2)]
    outputs = [p.communicate(timeout=2 * RUN_TIMEOUT)[0] for p in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
        assert "Traceback" not in output
    assert sum("another mapstudy command is using study demo; waiting" in o for o in outputs) == 1
    assert _contents(load_study(study_file).db_path) == tables
    _run(study_file, env)  # the storage both created is sound (one alembic head): a third run works


def test_share_into_a_folder_named_with_a_quote(clean):
    root, study_file, _, _ = clean
    out = root / "o'brien's release"
    result = subprocess.run([MAPSTUDY, "share", "--study", str(study_file), "--out", str(out)], cwd=PROJECT_ROOT,
                            env=_env(root, "dagster"), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert (out / "pupils.parquet").is_file() and (out / "pupils.csv").is_file()

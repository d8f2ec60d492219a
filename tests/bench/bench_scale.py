"""Scale targets (issue 16): wall, CPU and peak RSS of each stage at N pupils.

``.venv/bin/python -m tests.bench.bench_scale 100000 1000000`` prints one table per N:
synth, ingest, protect (share.*: recoding, the generalisation-lattice search, local
suppression, disclosure measures, written), descriptives (results.descriptives) and models
(results.models without multiple imputation: the plan's models with ``imputations`` 0).

Each stage runs in its own process (``python -m tests.bench.bench_scale --stage STAGE N``),
so its peak RSS is its own (imports included); CPU is user + system of that process and its
threads. The study of N pupils is generated once under the bench folder
(``.mapstudy/bench/study-N``, tests/bench/common.py) and reused when present (its synth
row is then the stored measurement, marked "stored"); ``--fresh`` generates it again.
Ingest is run when the study's DuckDB is missing or older than its raw files, or with
``--fresh``; otherwise its stored row is shown. Protect, descriptives and models run every
time. Nothing here touches the demo's data/ or reports.

``--whole-run N``: one whole ``mapstudy run`` on the study of N pupils (its own DuckDB,
reports and Dagster storage under ``run-N``; the console log kept as ``run-N/run.log``), then
its steps' times from Dagster's event log (``--steps N`` prints them again).

``--fingerprint`` (with ``--stage``) prints a SHA-256 of each result table instead of
timing it (a check that an optimisation leaves the results unchanged):
``python -m tests.bench.bench_scale --stage protect 30000 --fingerprint``.

Targets: 1,000,000 pupils, these stages together under 15 minutes and 12 GB peak RSS.
Never fails on time; prints.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from tests.bench.common import BENCH_DIR, SEED, Timing, print_table, study_file, timed

STAGES = ("synth", "ingest", "protect", "descriptives", "models")
TARGETS = {1_000_000: (15 * 60, 12 * 1024)}  # pupils: (wall s of the stages together, peak RSS MB)


def _root(pupils: int) -> Path:
    return BENCH_DIR / f"study-{pupils}"


def _stored(pupils: int, stage: str) -> Path:
    return _root(pupils) / f"bench-{stage}.json"


def _load(pupils: int):
    from pipelines.config import load_codebooks, load_study

    study = load_study(_root(pupils) / "study.yaml")
    return study, load_codebooks(study)


def _log(message: str) -> None:
    """Stage logs go to stderr, counts and names only (as the assets log them)."""
    print(f"  log: {message}", file=sys.stderr, flush=True)


# --- the stages, each called in its own process ---------------------------------------------

def stage_synth(pupils: int) -> tuple[Timing, dict]:
    import shutil

    from pipelines.synth.generate import generate_study

    root = _root(pupils)
    shutil.rmtree(root, ignore_errors=True)
    path = study_file(root)
    row, _ = timed("synth", lambda: generate_study(path, root, pupils=pupils, seed=SEED))
    return row, {}


def stage_ingest(pupils: int) -> tuple[Timing, dict]:
    from pipelines.ingest.stage import run_ingest

    study, books = _load(pupils)
    row, summary = timed("ingest", lambda: run_ingest(study, books))
    return row, {}


def protect_tables(study, books) -> dict:
    """What the protect_microdata asset computes: share.* and meta.disclosure (pipelines/assets/privacy.py)."""
    import pandas as pd

    from pipelines import warehouse
    from pipelines.ingest.stage import study_keys
    from pipelines.privacy.shareable import (
        disclosure_report,
        protect,
        release_ids,
        shareable_below_k,
        shared_instruments,
    )

    keys = study_keys(study)
    tables, reports = {}, []
    for name in shared_instruments(books):
        anon = warehouse.read_table(study.db_path, f"anon.{name}")
        protected = protect(anon, books[name], study)
        tables[f"share.{name}"] = release_ids(protected.table, books[name], keys, f"share.{name}")
        reports.append(disclosure_report(name, anon, protected, study.privacy))
        below = shareable_below_k(tables[f"share.{name}"], books[name], study.privacy.k_anonymity)
        _log(f"share.{name}: {len(protected.table)} of {len(anon)} records, {protected.records_removed} left out, "
             f"{below} below k")
        del anon, protected
    tables["meta.disclosure"] = pd.concat(reports, ignore_index=True)
    return tables


def stage_protect(pupils: int, fingerprint: bool = False):
    from pipelines import warehouse

    study, books = _load(pupils)
    if fingerprint:
        return protect_tables(study, books)
    row, tables = timed("protect (share.*, meta.disclosure)", lambda: protect_tables(study, books))
    write, _ = timed("  write share.* and meta.disclosure", lambda: warehouse.write_tables(study.db_path, tables))
    row.wall, row.cpu, row.peak_rss_mb = row.wall + write.wall, row.cpu + write.cpu, write.peak_rss_mb
    row.note = f"of which writing {write.wall:.1f} s"
    return row, {}


def stage_descriptives(pupils: int, fingerprint: bool = False):
    from pipelines.assets.analyses import _build_descriptives

    study, books = _load(pupils)
    if fingerprint:
        return _build_descriptives(study, books, _log)
    row, _ = timed("descriptives (results.descriptives)", lambda: _build_descriptives(study, books, _log))
    return row, {}


def _no_mi(study):
    return study.model_copy(update={"plan": study.plan.model_copy(update={"imputations": 0})})


def stage_models(pupils: int, fingerprint: bool = False):
    from pipelines.assets.analyses import _build_models

    study, books = _load(pupils)
    study = _no_mi(study)
    if fingerprint:
        return _build_models(study, books, _log)
    row, _ = timed("models, no MI (results.models, model_fit)", lambda: _build_models(study, books, _log))
    return row, {}


STAGE_FUNCTIONS = {"synth": stage_synth, "ingest": stage_ingest, "protect": stage_protect,
                   "descriptives": stage_descriptives, "models": stage_models}


def table_fingerprint(frame) -> str:
    """SHA-256 of a table's columns, dtypes and values, rows in a canonical order (floats to 10 digits)."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].round(10)
    out = out[sorted(out.columns)]
    text = out.astype("string").fillna("<NA>")
    text = text.sort_values(list(text.columns), ignore_index=True)
    digest = hashlib.sha256()
    digest.update(repr([(c, str(frame[c].dtype)) for c in sorted(frame.columns)]).encode())
    digest.update(text.to_csv(index=False).encode())
    return digest.hexdigest()[:16]


# --- the parent: one child process per stage ------------------------------------------------

def _child(stage: str, pupils: int) -> Timing | None:
    done = subprocess.run([sys.executable, "-m", "tests.bench.bench_scale", "--stage", stage, str(pupils)],
                          capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            return Timing(**json.loads(line[len("BENCH "):]))
    tail = done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else []
    print(f"  {stage} at {pupils} failed (exit {done.returncode}): {tail}", flush=True)
    return None


def _ingest_current(pupils: int) -> bool:
    from pipelines.config import load_study
    from pipelines.warehouse import active_path

    db = active_path(load_study(_root(pupils) / "study.yaml").db_path)
    raw = _root(pupils) / "raw"
    if not db.is_file() or not raw.is_dir():
        return False
    newest = max((p.stat().st_mtime for p in raw.rglob("*") if p.is_file()), default=0)
    return db.stat().st_mtime >= newest and _stored(pupils, "ingest").is_file()


def run_size(pupils: int, fresh: bool, stages=STAGES) -> list[Timing]:
    rows: list[Timing] = []
    have_study = (_root(pupils) / "study.yaml").is_file() and _stored(pupils, "synth").is_file()
    for stage in stages:
        reuse = (stage == "synth" and have_study and not fresh) or (
            stage == "ingest" and not fresh and have_study and _ingest_current(pupils))
        if reuse:
            row = Timing(**json.loads(_stored(pupils, stage).read_text()))
            row.note = ("stored; " + row.note).rstrip("; ")
        else:
            print(f"  {stage} at {pupils} pupils ...", flush=True)
            row = _child(stage, pupils)
            if row is None:
                if stage in ("synth", "ingest"):
                    break
                continue
            if stage in ("synth", "ingest"):
                _stored(pupils, stage).write_text(json.dumps(asdict(row)))
        rows.append(row)
    total_wall = sum(r.wall for r in rows)
    total = Timing("together", total_wall, sum(r.cpu for r in rows), max((r.peak_rss_mb for r in rows), default=0))
    if pupils in TARGETS:
        wall, rss = TARGETS[pupils]
        total.note = (f"target {wall / 60:.0f} min, {rss / 1024:.0f} GB: "
                      + ("met" if total.wall <= wall and total.peak_rss_mb <= rss else "NOT met"))
    return rows + [total]


def whole_run(pupils: int) -> Timing:
    """``mapstudy run`` on the study of N pupils, as run_all.py's _whole_run but in its own folder.

    The raw files and key are the study's (``study-N``); DuckDB, reports, erasure register,
    Dagster storage and logs go to ``run-N``, so the stage benchmarks' database is not
    touched. The run's console output is kept in ``run-N/run.log`` (its per-step times).
    """
    import resource
    import shutil
    import time

    import yaml

    study = yaml.safe_load((_root(pupils) / "study.yaml").read_text(encoding="utf-8"))
    root = BENCH_DIR / f"run-{pupils}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for key, folder in (("processed_dir", "processed"), ("reports_dir", "reports"), ("erasure_dir", "erasure")):
        study[key] = str(root / folder)
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(study, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = dict(os.environ, MAPSTUDY_DAGSTER_STORAGE=str(root / "dagster"), MAPSTUDY_DAGSTER_LOGS=str(root / "logs"))
    mapstudy = str(Path(sys.executable).with_name("mapstudy"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(root / "run.log", "w", encoding="utf-8") as log:
        done = subprocess.run([mapstudy, "run", "--study", str(path)], stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    note = ("ok" if done.returncode == 0 else f"exit {done.returncode}") + f"; log {root / 'run.log'}"
    # ru_maxrss of RUSAGE_CHILDREN: the largest process of the run (Dagster runs steps in-process)
    return Timing("whole run (mapstudy run)", wall, cpu, after.ru_maxrss / 1024, note)


def step_times(pupils: int) -> list[tuple[str, str, float]]:
    """(run's job, step, seconds from STEP_START to its end) of the whole run, from Dagster's event logs."""
    import datetime as dt
    import sqlite3

    rows = []
    for db in sorted((BENCH_DIR / f"run-{pupils}" / "dagster" / "history" / "runs").glob("*-*.db")):
        with sqlite3.connect(db) as con:
            events = con.execute("SELECT dagster_event_type, step_key, timestamp FROM event_logs WHERE "
                                 "dagster_event_type IN ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE') "
                                 "ORDER BY id").fetchall()
        started = {}
        for kind, step, stamp in events:
            when = dt.datetime.fromisoformat(stamp)
            if kind == "STEP_START":
                started[step] = when
            elif step in started:
                rows.append((db.stem[:8], step + ("" if kind == "STEP_SUCCESS" else " (failed)"),
                             (when - started.pop(step)).total_seconds()))
    return rows


def print_steps(pupils: int) -> None:
    steps = step_times(pupils)
    print(f"\nsteps of the whole run at {pupils} pupils (wall s, from Dagster's event log; steps may overlap)")
    for run, step, seconds in sorted(steps, key=lambda r: -r[2]):
        print(f"  {run}  {step:<40} {seconds:8.1f}")


def main(argv: list[str]) -> None:
    if "--whole-run" in argv:
        pupils = int([a for a in argv if a.isdigit()][0])
        print_table([whole_run(pupils)], f"mapstudy run, {pupils} pupils (load average now {os.getloadavg()[0]:.1f})")
        print_steps(pupils)
        return
    if "--steps" in argv:
        print_steps(int([a for a in argv if a.isdigit()][0]))
        return
    if "--stage" in argv:
        stage = argv[argv.index("--stage") + 1]
        pupils = int([a for a in argv if a.isdigit()][0])
        if "--fingerprint" in argv:
            tables = STAGE_FUNCTIONS[stage](pupils, fingerprint=True)
            for name, frame in sorted(tables.items()):
                print(f"{name:<22} {len(frame):>9} rows  {table_fingerprint(frame)}")
            return
        row, _ = STAGE_FUNCTIONS[stage](pupils)
        print("BENCH " + json.dumps(asdict(row)), flush=True)
        return
    sizes = [int(a) for a in argv if a.isdigit()] or [100_000]
    chosen = [s for s in STAGES if f"--no-{s}" not in argv]
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    print(f"bench folder {BENCH_DIR}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    for pupils in sizes:
        rows = run_size(pupils, "--fresh" in argv, chosen)
        print_table(rows, f"{pupils} pupils (load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main(sys.argv[1:])

"""`make bench`: wall, CPU and peak RSS of each stage and of the whole run, as one table.

Prints; never fails on time. Everything is written under the bench folder
(``.mapstudy/bench``, or ``BENCH_DIR``): its own generated study, DuckDB, reports and
Dagster storage. The demo's data/, reports and Dagster storage are never touched.

Each stage runs in its own process (tests/bench/stage.py), so its peak RSS is its own
(including ~200 MB of imports); CPU time is user + system of that process and its
threads, the number to compare on a shared machine (wall time is noisy there). The
ratio ingest / bare read is measured in the same process, one after the other.

- default: the demo's size (``PUPILS``, 3,000): synth, bare read, ingest, personas, one
  PMM draw, the whole ``mapstudy run --force`` on the bench study, then a rerun with
  nothing changed (which skips every step: pipelines/freshness.py);
- ``make bench BENCH=long`` (or ``--long``) adds 30,000 and 100,000 pupils for the stages,
  protect / descriptives / models at those sizes (tests/bench/bench_scale.py) and the
  latent-class scaling benchmark (tests/bench/bench_personas.py; tens of minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.common import BENCH_DIR, Timing, print_table

STAGES = ("synth", "ingest", "personas", "pmm")


def _child(args: list[str]) -> str:
    """Run a child process (it measures itself); its stdout."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else []
        print(f"  {' '.join(args[-2:])} failed (exit {done.returncode}): {tail}", flush=True)
    return done.stdout


def _stage_rows(stage: str, pupils: int) -> list[Timing]:
    out = _child([sys.executable, "-m", "tests.bench.stage", stage, str(pupils)])
    rows = []
    for line in out.splitlines():
        if line.startswith("BENCH "):
            rows.append(Timing(**json.loads(line[len("BENCH "):])))
    return rows


def _whole_run(pupils: int, *options: str, label: str = "whole run (mapstudy run --force: every asset and report)"
               ) -> Timing:
    """``mapstudy run`` on the bench study, Dagster storage and logs in the bench folder."""
    import resource

    study = BENCH_DIR / f"study-{pupils}" / "study.yaml"
    env = dict(os.environ, MAPSTUDY_DAGSTER_STORAGE=str(BENCH_DIR / "dagster"),
               MAPSTUDY_DAGSTER_LOGS=str(BENCH_DIR / "logs"))
    mapstudy = str(Path(sys.executable).with_name("mapstudy"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([mapstudy, "run", "--study", str(study), *options], capture_output=True, text=True,
                          env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    note = "ok" if done.returncode == 0 else f"exit {done.returncode}"
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: the run's unless a stage was larger
    return Timing(label, wall, cpu, after.ru_maxrss / 1024, note)


def main(long: bool) -> None:
    sizes = [int(os.environ.get("PUPILS", "3000"))] + ([30_000, 100_000] if long else [])
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    print(f"bench folder {BENCH_DIR}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    for pupils in sizes:
        rows: list[Timing] = []
        for stage in STAGES:
            print(f"  {stage} at {pupils} pupils ...", flush=True)
            rows += _stage_rows(stage, pupils)
        if pupils == sizes[0] or os.environ.get("BENCH_WHOLE_RUN_ALL") == "1":
            print(f"  whole run at {pupils} pupils ...", flush=True)
            rows.append(_whole_run(pupils, "--force"))  # everything computed, as from clean
            rows.append(_whole_run(pupils, label="rerun, nothing changed (mapstudy run)"))
        print_table(rows, f"{pupils} pupils (load average now {os.getloadavg()[0]:.1f}; CPU is the number to compare)")
    study = BENCH_DIR / f"study-{sizes[0]}" / "study.yaml"
    if os.environ.get("SKIP_RENDER") != "1" and study.is_file():  # per report-language render times
        from pipelines.config import load_study

        print("\nreport rendering, a fresh kernel per report vs one warm kernel (tests/bench/bench_render.py):",
              flush=True)
        subprocess.run([sys.executable, "-m", "tests.bench.bench_render", str(load_study(study).db_path)], check=False)
    if long:
        # the scale stages on the studies generated and ingested above (1,000,000 pupils: run
        # ``python -m tests.bench.bench_scale 100000 1000000`` on its own, about an hour)
        print("\nprotect, descriptives, models without MI (tests/bench/bench_scale.py):", flush=True)
        subprocess.run([sys.executable, "-m", "tests.bench.bench_scale", "--no-synth", "--no-ingest",
                        *map(str, sizes[1:])], check=False)
        print("\nlatent class scaling (tests/bench/bench_personas.py):", flush=True)
        subprocess.run([sys.executable, "-m", "tests.bench.bench_personas"], check=False)


if __name__ == "__main__":
    main(long="--long" in sys.argv[1:] or os.environ.get("BENCH") == "long")

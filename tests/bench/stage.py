"""One benchmark stage in its own process (so peak RSS is the stage's own):
``python -m tests.bench.stage STAGE PUPILS``; prints one JSON line per timed row.

Stages: ``synth`` (generate the study's raw exports), ``ingest`` (bare library read of the
same files, then ``ingest_study``, then ``run_ingest`` writing DuckDB: the ratio ingest /
bare read comes from the first two), ``personas`` (the personas step on anon.pupils),
``pmm`` (one predictive-mean-matching draw with 10 % missing over PUPILS rows).
Everything lives under the bench folder (tests/bench/common.py).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from tests.bench.common import BENCH_DIR, SEED, Timing, study_file, timed


def _study_path(pupils: int):
    return BENCH_DIR / f"study-{pupils}" / "study.yaml"


def synth(pupils: int) -> list[Timing]:
    import shutil

    from pipelines.synth.generate import generate_study

    root = BENCH_DIR / f"study-{pupils}"
    shutil.rmtree(root, ignore_errors=True)
    path = study_file(root)
    row, _ = timed("synth (generate raw exports)", lambda: generate_study(path, root, pupils=pupils, seed=SEED))
    return [row]


def ingest(pupils: int) -> list[Timing]:
    from pipelines.config import load_codebooks, load_study
    from pipelines.ingest.stage import run_ingest, study_keys
    from pipelines.ingest.study import ingest_study
    from tests.bench.bench_ingest import bare_read

    study = load_study(_study_path(pupils))
    books = load_codebooks(study)
    keys = study_keys(study)
    bare, _ = timed("bare read (format libraries only)", lambda: bare_read(study))
    core, _ = timed("ingest, in memory (read..pseudonymise)", lambda: ingest_study(study, books, keys))
    core.note = f"ingest / bare read: {core.cpu / bare.cpu:.2f}x CPU ({core.wall / bare.wall:.2f}x wall)"
    written, _ = timed("ingest stage (run_ingest, DuckDB written)", lambda: run_ingest(study, books))
    return [bare, core, written]


def personas(pupils: int) -> list[Timing]:
    from tests.bench.bench_persona_step import persona_step_on

    return persona_step_on(_study_path(pupils))


def pmm(pupils: int) -> list[Timing]:
    import numpy as np

    from analyses.imputation import _draw_pmm

    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(pupils), rng.normal(size=(pupils, 3))])
    y = X @ rng.normal(size=4) + rng.normal(size=pupils)
    missing = rng.uniform(size=pupils) < 0.1
    row, _ = timed(f"imputation: one PMM draw ({pupils} rows)", lambda: _draw_pmm(X, y, missing, rng))
    return [row]


STAGES = {"synth": synth, "ingest": ingest, "personas": personas, "pmm": pmm}

if __name__ == "__main__":
    for timing in STAGES[sys.argv[1]](int(sys.argv[2])):
        print("BENCH " + json.dumps(asdict(timing)), flush=True)

"""The personas step of a generated study, timed by phase: fit (k = 1..k_max), selection,
bootstrap stability, k-modes agreement, and the whole ``persona_tables`` call.

``.venv/bin/python -m tests.bench.bench_persona_step [pupils ...]`` (default 3,000).
Generates and ingests under the bench folder (tests/bench/common.py), never the demo's.
Prints wall and CPU seconds; never fails on time.
"""

from __future__ import annotations

import sys

from tests.bench.common import SEED, Timing, fresh_root, print_table, study_file, timed


def persona_step(pupils: int) -> list[Timing]:
    """Generate and ingest a study of ``pupils`` under the bench folder, then time its personas step."""
    from pipelines.config import load_codebooks, load_study
    from pipelines.ingest.stage import run_ingest
    from pipelines.synth.generate import generate_study

    root = fresh_root(f"personas-{pupils}")
    path = study_file(root)
    generate_study(path, root, pupils=pupils, seed=SEED)
    study = load_study(path)
    run_ingest(study, load_codebooks(study))
    return persona_step_on(path)


def persona_step_on(path) -> list[Timing]:
    """The personas step of an already ingested study, timed by phase."""
    from pipelines.assets import personas as asset
    from pipelines.config import load_codebooks, load_study
    from pipelines.warehouse import connect

    study = load_study(path)
    books = load_codebooks(study)
    plan = study.plan.personas
    with connect(study.db_path, read_only=True) as con:
        rows = con.execute(f'SELECT * FROM anon."{plan.instrument}"').df()
    rows = rows.sort_values([c for c in ("pupil_id", "wave") if c in rows.columns], ignore_index=True)
    wave = asset.first_wave(study, books[plan.instrument], plan.wave)

    phases: list[Timing] = []
    originals = {}
    for name in ("fit_latent_classes", "selection_table", "bootstrap_stability", "kmodes_agreement"):
        original = getattr(asset, name)
        originals[name] = original

        def wrapper(*args, _name=name, _original=original, **kwargs):
            timing, value = timed(f"  {_name}", lambda: _original(*args, **kwargs))
            phases.append(timing)
            return value

        setattr(asset, name, wrapper)
    try:
        total, _ = timed("personas step (fit, select, bootstrap, k-modes)",
                         lambda: asset.persona_tables(rows, books[plan.instrument], plan, asset.persona_seed(study), wave,
                                                      study=study))
    finally:
        for name, original in originals.items():
            setattr(asset, name, original)
    return [total, *phases]


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [3000]:
        print_table(persona_step(size), f"personas step, {size} pupils")

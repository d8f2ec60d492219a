"""`make bench`: wall time of the whole demo run and of each stage. Prints; never fails on time.

Stages are timed as a researcher meets them: generating the demo study, the ingest stage
(read, harmonise, resolve, pseudonymise, write DuckDB), rendering the overview report in
both languages, and the whole `mapstudy run` (the Dagster job in-process). Set PUPILS to
time another size (default 3,000, the demo's). The personas benchmark runs afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines.config import PROJECT_ROOT, load_codebooks, load_study

STUDY = PROJECT_ROOT / "studies" / "demo.yaml"


def _timed(label: str, fn) -> float:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    print(f"{label:<42} {seconds:8.2f} s", flush=True)
    return seconds


def main() -> None:
    pupils = int(os.environ.get("PUPILS", "3000"))
    print(f"demo study, {pupils} pupils, {os.cpu_count()} cores")
    from pipelines.synth.generate import generate_study

    _timed("synth (generate raw exports)", lambda: generate_study(STUDY, PROJECT_ROOT, pupils=pupils, seed=20231))
    study = load_study(STUDY)
    books = load_codebooks(study)
    from pipelines.ingest.stage import run_ingest

    _timed("ingest stage (raw -> anon/meta in DuckDB)", lambda: run_ingest(study, books))
    from pipelines.assets.reports import LANGUAGES
    from pipelines.render.engine import render_report

    for lang in LANGUAGES:
        _timed(f"overview report ({lang}, html+pdf)", lambda lang=lang: render_report(
            PROJECT_ROOT / "reports" / "overview.qmd", study.report_dir(lang),
            {"study": study.study, "db": str(study.db_path), "lang": lang}))
    mapstudy = str(Path(sys.executable).with_name("mapstudy"))
    _timed("whole run (mapstudy run, Dagster in-process)",
           lambda: subprocess.run([mapstudy, "run", "--study", str(STUDY)], check=True, capture_output=True))
    if os.environ.get("SKIP_RENDER") != "1":  # per report-language render times, fresh vs warm kernel
        print("\nrender benchmark:", flush=True)
        subprocess.run([sys.executable, "-m", "tests.bench.bench_render", str(study.db_path)], check=False)
    bench_personas = PROJECT_ROOT / "tests" / "bench" / "bench_personas.py"
    if bench_personas.is_file() and os.environ.get("SKIP_PERSONAS") != "1":
        print("\npersonas benchmark:", flush=True)
        subprocess.run([sys.executable, str(bench_personas)], check=False)


if __name__ == "__main__":
    main()

"""Report rendering times, per report and language: a fresh kernel against a warm one.

`python -m tests.bench.bench_render [DB] [--coordinator STUDY.yaml]` (default: the demo's processed database, after
`make demo`) renders every study report under reports/ in both languages into a scratch
folder and prints, per report-language, the seconds of

- ``cold``: ``render_report`` (a fresh encrypted kernel, imports, execution, HTML + PDF);
- ``warm``: the same report in one warm kernel (``notebook.WarmKernel``), split into the
  execution and the HTML + PDF writing;

then the wall time of the whole batch with ``engine.render_reports`` (one warm kernel,
HTML/PDF written in a thread while the next report executes). ``render_table()`` returns
the rows for a combined benchmark table. Prints only; never fails on time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from pipelines.config import PROJECT_ROOT

REPORTS = PROJECT_ROOT / "reports"
LANGUAGES = ("et", "en")
#: Reports rendered once per place (see coordinator_batch), not once per study.
PER_PLACE = ("municipality", "county")


def study_reports() -> list[Path]:
    """Every report of a study run (partials start with ``_``)."""
    return sorted(p for p in REPORTS.glob("*.qmd") if not p.name.startswith("_") and p.stem not in PER_PLACE)


def render_table(db: Path, study: str = "demo", cold: bool = True) -> list[dict[str, object]]:
    """One row per report-language: cold, warm execution, warm HTML+PDF seconds; and a batch row."""
    from pipelines.render.engine import (FRESH_KERNEL_ENV, RenderJob, prepared, render_report, render_reports,
                                         write_formats)
    from pipelines.render.notebook import WarmKernel, executed_notebook

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="mapstudy-bench-render-") as scratch:
        out = Path(scratch)
        jobs = [RenderJob(qmd, out / "warm" / lang, {"study": study, "db": str(db), "lang": lang})
                for qmd in study_reports() for lang in LANGUAGES]
        with WarmKernel(REPORTS) as kernel:
            started = time.perf_counter()
            kernel.start()
            rows.append({"report": "(kernel start + imports)", "lang": "", "cold": None,
                         "warm_execute": time.perf_counter() - started, "warm_write": None})
            for job in jobs:
                qmd, folder, params = prepared(job.qmd, job.output_dir, job.params, job.formats)
                started = time.perf_counter()
                notebook, front_matter = executed_notebook(qmd, params, kernel)
                executed = time.perf_counter()
                write_formats(notebook, front_matter, qmd, folder, params, job.formats)
                rows.append({"report": qmd.stem, "lang": params["lang"], "cold": None,
                             "warm_execute": executed - started, "warm_write": time.perf_counter() - executed})
        if cold:  # a fresh kernel per report: render_report as it was before the warm kernels
            previous = os.environ.get(FRESH_KERNEL_ENV)
            os.environ[FRESH_KERNEL_ENV] = "1"
            try:
                for row, job in zip(rows[1:], jobs, strict=True):
                    started = time.perf_counter()
                    render_report(job.qmd, out / "cold" / str(job.params["lang"]), dict(job.params), engine="embedded")
                    row["cold"] = time.perf_counter() - started
            finally:
                if previous is None:
                    os.environ.pop(FRESH_KERNEL_ENV, None)
                else:
                    os.environ[FRESH_KERNEL_ENV] = previous
        batch = [RenderJob(j.qmd, out / "batch" / str(j.params["lang"]), j.params) for j in jobs]
        started = time.perf_counter()
        render_reports(batch, engine="embedded")
        seconds = time.perf_counter() - started
        rows.append({"report": f"(batch: {len(batch)} report-languages, render_reports)", "lang": "",
                     "cold": None, "warm_execute": seconds, "warm_write": None})
        rows.append({"report": "(batch, per report-language)", "lang": "", "cold": None,
                     "warm_execute": seconds / max(len(batch), 1), "warm_write": None})
    return rows


def coordinator_batch(db: Path, study_file: Path, formats: tuple[str, ...] = ("html", "pdf")) -> dict[str, float]:
    """Every municipality and county report of the study, both languages, in one render_reports batch.

    Issue 12's target: under 1.2 s per report-language (HTML and PDF) once warm. Returns
    the batch's wall seconds, the number of report-languages and the seconds per one.
    """
    from pipelines.config import load_study
    from pipelines.render.engine import RenderJob, render_reports

    study = load_study(study_file)
    places = [("county", {"county": cid}) for cid in study.counties]
    places += [("municipality", {"municipality": m.name, "county": cid})
               for cid, county in study.counties.items() for m in county.municipalities]
    with tempfile.TemporaryDirectory(prefix="mapstudy-bench-coordinator-") as scratch:
        jobs = [RenderJob(REPORTS / f"{kind}.qmd", Path(scratch) / lang / kind / str(i),
                          {"study": study.study, "db": str(db), "lang": lang, **params}, formats)
                for i, (kind, params) in enumerate(places) for lang in LANGUAGES]
        started = time.perf_counter()
        render_reports(jobs, engine="embedded")
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "reports": len(jobs), "per_report": seconds / max(len(jobs), 1)}


def print_table(rows: list[dict[str, object]]) -> None:
    def cell(value: object) -> str:
        return f"{value:8.2f}" if isinstance(value, float) else f"{'':>8}"

    print(f"{'report':<52} {'lang':<4} {'cold s':>8} {'warm ex':>8} {'warm wr':>8} {'warm s':>8}")
    for row in rows:
        warm = (row["warm_execute"] + row["warm_write"]) if row["warm_write"] is not None else None
        print(f"{row['report']:<52} {row['lang']:<4} {cell(row['cold'])} {cell(row['warm_execute'])} "
              f"{cell(row['warm_write'])} {cell(warm)}", flush=True)


def main() -> None:
    db = Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT_ROOT / "data" / "processed" / "demo.duckdb"
    if not db.is_file():
        print(f"render benchmark skipped: {db} does not exist (make demo first)")
        return
    if "--coordinator" in sys.argv:  # python -m tests.bench.bench_render DB --coordinator STUDY.yaml
        study_file = Path(sys.argv[sys.argv.index("--coordinator") + 1])
        found = coordinator_batch(db.resolve(), study_file)
        print(f"municipality and county reports, et+en, html+pdf, one warm kernel: {found['reports']} "
              f"report-languages in {found['seconds']:.1f} s = {found['per_report']:.2f} s each "
              f"(target < 1.2 s; load average {os.getloadavg()[0]:.1f})")
        return
    print(f"report rendering, {db.name}, {os.cpu_count()} cores (cold = fresh kernel per report)")
    print_table(render_table(db.resolve(), cold=os.environ.get("BENCH_COLD", "1") != "0"))


if __name__ == "__main__":
    main()

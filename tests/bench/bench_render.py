"""Report rendering times, per report and language: a fresh kernel against a warm one.

`python -m tests.bench.bench_render [DB] [--coordinator STUDY.yaml]` (default: the demo's processed database, after
`make demo`) renders every study report under reports/ in both languages into a scratch
folder and prints, per report-language, the seconds of

- ``cold``: ``render_report`` (a fresh encrypted kernel, imports, execution, HTML + PDF);
- ``warm``: the same report in one warm kernel (``notebook.WarmKernel``), split into the
  execution and the HTML + PDF writing;

then the wall time of the whole batch with ``engine.render_reports`` (warm kernels, two at
once from PARALLEL_FROM reports on, HTML/PDF written in threads while the next reports
execute). ``render_table()`` returns the rows for a combined benchmark table.

`python -m tests.bench.bench_render DB --coordinator STUDY.yaml [--kernels 1,2]` times the
municipality and county reports (issue 16): for one municipality and one county, per
language, the warm kernel's execution and the HTML and PDF writing; then every
municipality and county report in both languages as one ``render_reports`` batch, once per
kernel count (``MAPSTUDY_RENDER_KERNELS``). Prints only; never fails on time.
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


def coordinator_places(study_file: Path) -> tuple[str, list[tuple[str, dict[str, str]]]]:
    """The study's name and its coordinator reports: (kind, parameters), counties first."""
    from pipelines.config import load_study

    study = load_study(study_file)
    places = [("county", {"county": cid}) for cid in study.counties]
    places += [("municipality", {"municipality": m.name, "county": cid})
               for cid, county in study.counties.items() for m in county.municipalities]
    return study.study, places


def coordinator_batch(db: Path, study_file: Path, formats: tuple[str, ...] = ("html", "pdf"),
                      kernels: int | None = None) -> dict[str, float]:
    """Every municipality and county report of the study, both languages, in one render_reports batch.

    Issue 12's target: under 1.2 s per report-language (HTML and PDF) once warm. ``kernels``
    sets ``MAPSTUDY_RENDER_KERNELS`` for the batch (None: the engine's choice). Returns the
    batch's wall seconds, the number of report-languages and the seconds per one.
    """
    from pipelines.render.engine import RENDER_KERNELS_ENV, RenderJob, render_reports

    name, places = coordinator_places(study_file)
    previous = os.environ.get(RENDER_KERNELS_ENV)
    if kernels is not None:
        os.environ[RENDER_KERNELS_ENV] = str(kernels)
    try:
        with tempfile.TemporaryDirectory(prefix="mapstudy-bench-coordinator-") as scratch:
            jobs = [RenderJob(REPORTS / f"{kind}.qmd", Path(scratch) / lang / kind / str(i),
                              {"study": name, "db": str(db), "lang": lang, **params}, formats)
                    for i, (kind, params) in enumerate(places) for lang in LANGUAGES]
            started = time.perf_counter()
            render_reports(jobs, engine="embedded")
            seconds = time.perf_counter() - started
    finally:
        if previous is None:
            os.environ.pop(RENDER_KERNELS_ENV, None)
        else:
            os.environ[RENDER_KERNELS_ENV] = previous
    return {"seconds": seconds, "reports": len(jobs), "per_report": seconds / max(len(jobs), 1)}


def coordinator_breakdown(db: Path, study_file: Path, repeats: int = 3) -> list[dict[str, object]]:
    """One municipality's and one county's report per language, in one warm kernel: the median
    seconds of execution, HTML (nbconvert) and PDF (Markdown, pandoc, Typst) over ``repeats``."""
    from statistics import median

    from pipelines.render.engine import prepared, report_title
    from pipelines.render.html import notebook_to_html
    from pipelines.render.notebook import WarmKernel, executed_notebook
    from pipelines.render.pdf import notebook_to_pdf

    name, places = coordinator_places(study_file)
    sample = [next(p for p in places if p[0] == kind) for kind in ("municipality", "county")]
    rows = []
    with WarmKernel(REPORTS) as kernel:
        kernel.start()
        for kind, params in sample:
            for lang in LANGUAGES:
                qmd, _, clean = prepared(REPORTS / f"{kind}.qmd", Path(tempfile.gettempdir()),
                                         {"study": name, "db": str(db), "lang": lang, **params}, ("html", "pdf"))
                times: dict[str, list[float]] = {"execute": [], "html": [], "pdf": []}
                for _ in range(repeats + 1):  # the first is a warm-up
                    started = time.perf_counter()
                    notebook, front_matter = executed_notebook(qmd, clean, kernel)
                    executed = time.perf_counter()
                    title = report_title(qmd, lang, front_matter)
                    notebook_to_html(notebook, title, lang)
                    html_done = time.perf_counter()
                    notebook_to_pdf(notebook, title, lang)
                    for part, seconds in zip(times, (executed - started, html_done - executed,
                                                     time.perf_counter() - html_done), strict=True):
                        times[part].append(seconds)
                rows.append({"report": kind, "lang": lang, **{part: median(v[1:]) for part, v in times.items()}})
    return rows


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
    if "--coordinator" in sys.argv:  # python -m tests.bench.bench_render DB --coordinator STUDY.yaml [--kernels 1,2]
        study_file = Path(sys.argv[sys.argv.index("--coordinator") + 1])
        kernels = ([int(k) for k in sys.argv[sys.argv.index("--kernels") + 1].split(",")]
                   if "--kernels" in sys.argv else [1, 2])
        print(f"one report-language in a warm kernel, median seconds (load average {os.getloadavg()[0]:.1f}):")
        print(f"{'report':<14} {'lang':<4} {'execute':>8} {'html':>8} {'pdf':>8} {'total':>8}")
        for row in coordinator_breakdown(db.resolve(), study_file):
            print(f"{row['report']:<14} {row['lang']:<4} {row['execute']:8.2f} {row['html']:8.2f} {row['pdf']:8.2f} "
                  f"{row['execute'] + row['html'] + row['pdf']:8.2f}", flush=True)
        for count in kernels:
            found = coordinator_batch(db.resolve(), study_file, kernels=count)
            print(f"municipality and county reports, et+en, html+pdf, {count} kernel(s): {found['reports']} "
                  f"report-languages in {found['seconds']:.1f} s = {found['per_report']:.2f} s each "
                  f"(target < 1.2 s; load average {os.getloadavg()[0]:.1f})", flush=True)
        return
    print(f"report rendering, {db.name}, {os.cpu_count()} cores (cold = fresh kernel per report)")
    print_table(render_table(db.resolve(), cold=os.environ.get("BENCH_COLD", "1") != "0"))


if __name__ == "__main__":
    main()

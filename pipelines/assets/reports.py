"""Report assets: render each report in every language from the processed DuckDB only.

`report_asset` makes the asset for one report: it renders every language, audits every
rendered HTML table for visible small counts (the renderer marks count cells, see
pipelines/privacy/cells.py) and records the audit as the report's `small_cells` check.
"""

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.assets.common import meta_key
from pipelines.config import PROJECT_ROOT
from pipelines.privacy.cells import audit_html_tables
from pipelines.render.engine import RenderJob, render_reports
from pipelines.freshness import note_files, skip_when_up_to_date
from pipelines.resources import StudyResource

LANGUAGES = ("et", "en")  # Estonian first


def render_languages(context: AssetExecutionContext, study: StudyResource, report: str) -> dg.MaterializeResult:
    """Render `reports/<report>.qmd` in every language; fail the small-cell audit loudly."""
    config, _ = study.load()
    written, problems = [], []
    context.log.info(f"rendering the {report} report ({', '.join(LANGUAGES)})")
    # One warm kernel for every language (render_reports): the kernel start and imports are paid once.
    jobs = [RenderJob(PROJECT_ROOT / "reports" / f"{report}.qmd", config.report_dir(lang),
                      {"study": config.study, "db": str(config.db_path), "lang": lang}) for lang in LANGUAGES]
    for lang, paths in zip(LANGUAGES, render_reports(jobs), strict=True):
        written += paths
        for path in paths:
            if path.suffix == ".html":
                audit = audit_html_tables(path.read_text(encoding="utf-8"), config.privacy.min_cell)
                problems += [f"{path.name} ({lang}): table {r.table}, row {r.row}, column {r.column}: {r.rule}"
                             for r in audit.itertuples()]
    note_files(written)
    return dg.MaterializeResult(
        metadata={"files": [f"{p.parent.name}/{p.name}" for p in written]},
        check_results=[dg.AssetCheckResult(check_name="small_cells", passed=not problems,
                                           metadata={"problems": "; ".join(problems) or "none"})],
    )


def report_asset(report: str, deps: list, description: str, tags: dict[str, str] | None = None
                 ) -> dg.AssetsDefinition:
    """The asset of one report (key reports/<report>) with its blocking small-cell audit."""

    @dg.asset(key=["reports", report], group_name="reports", deps=deps, kinds={"html", "pdf"},
              description=description, tags=tags,
              check_specs=[dg.AssetCheckSpec("small_cells", asset=["reports", report], blocking=True,
                                             description="No rendered table shows a count from 1 to min_cell-1.")])
    @skip_when_up_to_date(reports=True)
    def _report(context: AssetExecutionContext, study: StudyResource) -> dg.MaterializeResult:
        return render_languages(context, study, report)

    return _report


overview_report = report_asset(
    "overview",
    # meta.* are written with every anon table by the one ingest asset: the report waits for all of them
    # without naming an instrument (a study has the instruments it has).
    deps=[meta_key("quality"), meta_key("provenance"), meta_key("row_counts")],
    description="The data overview report (what was received, data quality, provenance), et and en.",
)

"""Report assets: render each report in every language from the processed DuckDB only."""


import dagster as dg
from dagster import AssetExecutionContext

from pipelines.assets.common import ANON_INSTRUMENTS, meta_key
from pipelines.config import PROJECT_ROOT
from pipelines.render.engine import render_report
from pipelines.resources import StudyResource

LANGUAGES = ("et", "en")  # Estonian first


@dg.asset(key=["reports", "overview"], group_name="reports",
          deps=[["anon", i] for i in ANON_INSTRUMENTS] + [meta_key("quality"), meta_key("provenance"),
                                                            meta_key("row_counts")],
          kinds={"html", "pdf"},
          description="The data overview report (what was received, data quality, provenance), et and en.")
def overview_report(context: AssetExecutionContext, study: StudyResource) -> dg.MaterializeResult:
    config, _ = study.load()
    written = []
    for lang in LANGUAGES:
        context.log.info(f"rendering the overview report ({lang})")
        params = {"study": config.study, "db": str(config.db_path), "lang": lang}
        written += render_report(PROJECT_ROOT / "reports" / "overview.qmd", config.report_dir(lang), params)
    return dg.MaterializeResult(metadata={
        "files": [p.name for p in written],
    })

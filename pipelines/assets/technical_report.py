"""The technical report asset: the dropout-cause results in Estonian and English.

Rendered like the overview report, from the processed DuckDB only (`results.*` and
`meta.*`); every table goes through the suppressing `report_table`, and the rendered
tables are audited for small counts (`report_asset`).
"""

from pipelines.assets.common import DEPS_TAG, meta_key
from pipelines.assets.reports import report_asset

#: The results tables the report shows.
REPORTED_RESULTS = ("models", "model_fit", "missingness", "scales", "associations", "screening", "reasons")

technical_report = report_asset(
    "technical",
    deps=[["results", t] for t in REPORTED_RESULTS] + [meta_key("provenance")],
    description="The technical report (dropout models, reliability, associations, screening, methods), et and en.",
    tags={DEPS_TAG: "any"},  # shows what the plan produced; says in a sentence what it could not show
)

"""The Dagster code location: every asset, check, job and sensor of the pipeline.

Loaded by `dagster dev` (make dev), by `mapstudy run` and by the tests. The study is the
file named by MAPSTUDY_STUDY (the demo study by default).
"""

from __future__ import annotations

import warnings

import dagster as dg

# observable_source_asset is marked beta; the raw exports are observed with it on purpose.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from pipelines.assets.analyses import analysis_assets
from pipelines.assets.evaluation import evaluation_report, evaluation_results_asset
from pipelines.assets.ingest import ingest_study_asset, raw_assets
from pipelines.assets.personas import persona_report, persona_results_asset
from pipelines.assets.privacy import protect_microdata
from pipelines.assets.reports import overview_report
from pipelines.assets.technical_report import technical_report
from pipelines.resources import StudyResource, default_study_file
from pipelines.sensors import build_raw_files_sensor

study_job = dg.define_asset_job(
    "study", selection=dg.AssetSelection.all(),
    description="Everything for one study: ingest, analyses, reports.",
)

defs = dg.Definitions(
    assets=[*raw_assets, ingest_study_asset, protect_microdata, *analysis_assets, overview_report,
            technical_report, evaluation_results_asset, evaluation_report, persona_results_asset,
            persona_report],
    resources={"study": StudyResource(study_file=default_study_file())},
    jobs=[study_job],
    sensors=[build_raw_files_sensor(study_job)],
)

"""Running the study's Dagster job in-process, with the project's own Dagster instance.

`mapstudy run` and `make demo` use this, so their runs appear in the Dagster UI
(`make dev`) beside the ones launched there, and everything Dagster stores stays under
the git-ignored `.mapstudy/` folder.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from pipelines.config import PROJECT_ROOT

STATE_DIR = PROJECT_ROOT / ".mapstudy"


def dagster_environment(study_file: Path | None = None) -> dict[str, str]:
    """The environment variables the project's dagster.yaml and definitions read."""
    env = {
        "DAGSTER_HOME": str(PROJECT_ROOT),
        "MAPSTUDY_DAGSTER_STORAGE": str(STATE_DIR / "dagster"),
        "MAPSTUDY_DAGSTER_LOGS": str(STATE_DIR / "logs"),
    }
    if study_file is not None:
        env["MAPSTUDY_STUDY"] = str(Path(study_file).resolve())
    return env


def run_study_job(study_file: Path) -> bool:
    """Materialise every asset of the study in this process; True when the run succeeded."""
    os.environ.update(dagster_environment(study_file))
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from pipelines.definitions import defs

    with dg.DagsterInstance.get() as instance:
        job = defs.resolve_job_def("study")
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        resources={"study": _study_resource(study_file)},
                                        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})
    return result.success


def _study_resource(study_file: Path):
    from pipelines.resources import StudyResource

    return StudyResource(study_file=str(Path(study_file).resolve()))

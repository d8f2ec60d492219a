"""The study a Dagster run works on, as a resource: one YAML file names everything."""


import os
from pathlib import Path

import dagster as dg

from pipelines.config import PROJECT_ROOT, Codebook, Study, load_codebooks, load_study

DEFAULT_STUDY = "studies/demo.yaml"


def default_study_file() -> str:
    """`MAPSTUDY_STUDY` names the study file; the demo study otherwise."""
    return os.environ.get("MAPSTUDY_STUDY", DEFAULT_STUDY)


class StudyResource(dg.ConfigurableResource):
    """Loads and validates the study configuration and its codebooks."""

    study_file: str = DEFAULT_STUDY
    #: write what could be read when files or rows are lost (meta.losses says what); else the run stops
    accept_partial: bool = False
    #: recompute every asset, even those whose inputs are unchanged (pipelines/freshness.py)
    force: bool = False

    def path(self) -> Path:
        p = Path(self.study_file)
        return p if p.is_absolute() else PROJECT_ROOT / p

    def load(self) -> tuple[Study, dict[str, Codebook]]:
        study = load_study(self.path())
        return study, load_codebooks(study)

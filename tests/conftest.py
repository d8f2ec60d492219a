"""Shared fixtures: a small generated study in a temporary folder, ingested once per session.

The study file is the demo's with every path made absolute under the temporary folder,
so tests never touch the project's own data/ and can run in parallel with `make demo`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.config import PROJECT_ROOT, load_codebooks, load_study

SMALL_PUPILS = 600
SEED = 7


def make_study_file(root: Path, name: str = "demo") -> Path:
    """A copy of the demo study whose raw, processed, report, erasure and key paths live under root."""
    data = yaml.safe_load((PROJECT_ROOT / "studies" / "demo.yaml").read_text(encoding="utf-8"))
    data["study"] = name
    data["raw_dir"] = str(root / "raw")
    data["processed_dir"] = str(root / "processed")
    data["reports_dir"] = str(root / "reports")
    data["erasure_dir"] = str(root / "erasure")
    data["secret"] = {"env": "MAPSTUDY_TEST_KEY_UNSET", "file": str(root / "secrets" / "demo.key")}
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def generate(root: Path, pupils: int = SMALL_PUPILS, seed: int = SEED) -> tuple[Path, dict]:
    from pipelines.synth.generate import generate_study

    study_file = make_study_file(root)
    truth = generate_study(study_file, root, pupils=pupils, seed=seed)
    return study_file, truth


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """(study, codebooks, truth) for a generated study of SMALL_PUPILS pupils, already ingested."""
    from pipelines.ingest.stage import run_ingest

    root = tmp_path_factory.mktemp("study")
    study_file, truth = generate(root)
    study = load_study(study_file)
    books = load_codebooks(study)
    run_ingest(study, books)
    assert json.loads((root / "data" / "truth" / "demo.json").read_text(encoding="utf-8"))["seed"] == SEED
    return study, books, truth

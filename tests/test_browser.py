"""The HTML reports in a real browser (headless Chromium): no console error, no broken image
or link, nothing sticking out of a 390 px phone screen outside a table's scrolling box.

Skipped, with the reason, where Chromium, chromedriver or selenium is missing (`.ci/run`
installs Debian's chromium and chromium-driver when it runs as root). Screenshots of every
page (desktop and phone width) are saved under the test's tmp folder, for a human to look
at: `pytest tests/test_browser.py --basetemp=/tmp/shots`.

The fast test opens the overview of the render tests' fixture database in both languages;
the slow one runs a whole small generated study (`mapstudy run`) and opens every report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import check_pages, missing_browser

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=f"no browser test: {missing_browser()}")

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def assert_no_problems(found: dict[str, list[str]]) -> None:
    problems = [f"{page}: {problem}" for page, listed in found.items() for problem in listed]
    assert not problems, "\n".join(problems)


def test_overview_reads_well_in_chromium(tmp_path):
    from pipelines.render.engine import RenderJob, render_reports
    from tests.test_render import build_study_db

    db = build_study_db(tmp_path / "fixture.duckdb")
    jobs = [RenderJob(REPORTS / "overview.qmd", tmp_path / "reports" / lang,
                      {"study": "fixture", "db": str(db), "lang": lang}, ("html",)) for lang in ("et", "en")]
    pages = [paths[0] for paths in render_reports(jobs, engine="embedded")]
    found = check_pages(pages, tmp_path / "screenshots")
    assert sorted(found) == ["en/overview.html", "et/overview.html"]
    assert_no_problems(found)
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == 4


@pytest.mark.slow
def test_every_report_of_a_small_study_reads_well_in_chromium(tmp_path):
    from tests.conftest import generate

    study_file, _ = generate(tmp_path)
    env = {**os.environ, "MAPSTUDY_DAGSTER_STORAGE": str(tmp_path / "dagster"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    (tmp_path / "dagster").mkdir()
    mapstudy = str(Path(sys.executable).with_name("mapstudy"))
    run = subprocess.run([mapstudy, "run", "--study", str(study_file)], env=env, capture_output=True, text=True,
                         check=False, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    pages = sorted((tmp_path / "reports").rglob("*.html"))  # study reports, per-municipality ones, the index
    assert {"et", "en"} <= {p.parent.name for p in pages} and len(pages) >= 8
    assert_no_problems(check_pages(pages, tmp_path / "screenshots", root=tmp_path / "reports"))

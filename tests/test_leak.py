"""The leak test (issue 3, item 9): no planted identifier reaches any artifact of a run.

The generator plants canaries (every name, inflected name, personal code, e-mail, phone,
address and birth date it wrote into the raw exports; the truth's ``canaries``). The
whole Dagster job (ingest, protection, reports) runs on a generated study in a temporary
folder with a temporary Dagster instance, and every artifact is searched by querying it
(tests/artifact_search.py): every DuckDB table and column, Parquet files, every text cell
of Dagster's sqlite storage (runs, event logs, snapshots, check results), the compute
logs, the rendered HTML (text, attributes, PNG figures' text chunks), the PDFs' text and
the files `mapstudy share` writes (Parquet, CSV, README).

Not a leak: a canary whose words also occur in the project's fixed texts (codebooks,
study files, report texts and templates). A surname that is an ordinary word ("Kool" =
school, "Laine" = wave, "Post") appears in every report because the codebook or the
report says it, not because a pupil is called so. Those canaries are excluded, and the
test checks the exclusion stays small and holds names only: a code, e-mail, phone,
address or birth date is never excluded.

Rasterised chart text (pixels of a PNG) is not OCR'd; a chart's labels come from the
result tables, which are searched, and its alt text and metadata are searched.
"""

from __future__ import annotations

import json
import sqlite3
import zlib

import duckdb
import pytest

from pipelines.config import PROJECT_ROOT, load_codebooks, load_study
from pipelines.privacy.release import write_release
from tests.artifact_search import ArtifactIndex, index_run, run_whole_job, words, words_of
from tests.conftest import generate

LEAK_PUPILS = 400
# The project's own texts, including the statistics' source, whose method names reach the
# results tables ("adjusted Rand index" holds the surname Rand).
FIXED_TEXTS = ("codebooks/*.yaml", "studies/*.yaml", "reports/_texts/*.yaml", "reports/*.qmd",
               "pipelines/render/templates/*", "analyses/**/*.py", "personas/*.py", "pipelines/assets/*.py")


def fixed_words() -> str:
    """The project's own texts as one run of words: a canary found here is an ordinary word."""
    texts = [p.read_text(encoding="utf-8") for pattern in FIXED_TEXTS for p in sorted(PROJECT_ROOT.glob(pattern))]
    return words("\n".join(texts))


def ordinary_words(canaries: dict[str, list[str]]) -> set[str]:
    """Canaries whose words occur, as a consecutive run, in the project's fixed texts."""
    vocabulary = fixed_words().split()
    distinct = sorted({c for values in canaries.values() for c in values})
    runs = [w.split() for w in words_of(distinct)]
    longest = max((len(r) for r in runs), default=0)
    known = {" ".join(vocabulary[i:i + n]) for n in range(1, longest + 1) for i in range(len(vocabulary) - n + 1)}
    return {c for c, run in zip(distinct, runs) if run and " ".join(run) in known}


def run_and_search(tmp_path, pupils: int):
    root = tmp_path
    study_file, truth = generate(root, pupils=pupils)
    result = run_whole_job(study_file, root / "dagster")
    study = load_study(study_file)
    write_release(study, load_codebooks(study), root / "release")  # what `mapstudy share` hands on
    not_outputs = [root / "raw", root / "data" / "truth", root / "secrets", root / "codebooks", study_file]
    return truth, result, index_run(root, not_outputs)


def _leak_check(tmp_path, pupils: int) -> None:
    truth, result, index = run_and_search(tmp_path, pupils)
    sources = " ".join(index.sources)
    for expected in ("duckdb:anon.pupils", "duckdb:share.pupils", "duckdb:meta.disclosure", "duckdb:meta.quality",
                     "html:et/overview.html", "html:en/overview.html", "pdf:et/overview.pdf", "pdf:en/overview.pdf",
                     ":event_logs.event", ":runs.run_body", "text:", "parquet:pupils.parquet", "text:pupils.csv",
                     "text:README.md"):
        assert expected in sources, f"{expected} was not searched"
    canaries = truth["canaries"]
    excluded = ordinary_words(canaries)
    assert excluded <= set(canaries["names"]), "only names may be excluded as ordinary words"
    assert len(excluded) < 0.03 * len(canaries["names"])
    needles = {c for values in canaries.values() for c in values} - excluded
    assert len(needles) > 1000
    hits = index.hits(needles)
    assert hits.empty, f"{len(hits)} planted identifier(s) found in: {sorted(set(hits['source']))}"
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert not failed, f"no leak, but steps failed (their artifacts were not searched): {failed}"


def test_no_canary_in_any_artifact(tmp_path):
    _leak_check(tmp_path, LEAK_PUPILS)


@pytest.mark.slow
def test_no_canary_in_any_artifact_default_demo_size(tmp_path):
    _leak_check(tmp_path, 3000)


@pytest.mark.slow
def test_no_canary_in_any_artifact_50000_pupils(tmp_path):
    _leak_check(tmp_path, 50_000)


def test_search_finds_values_where_a_byte_search_would_not(tmp_path):
    """The search must see through compression, JSON escapes, HTML entities and PDF streams."""
    db = tmp_path / "out.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA results")
        con.execute("CREATE TABLE results.t AS SELECT 'x' || i AS filler, "
                    "CASE WHEN i = 777 THEN 'teatas Marile Tamm' ELSE 'ok' END AS note, "
                    "CASE WHEN i = 5 THEN 49403136526 END AS code FROM range(20000) r(i)")
        con.execute(f"COPY (SELECT 'mari.tamm@example.ee' AS e) TO '{tmp_path / 'x.parquet'}' (FORMAT parquet)")
    store = sqlite3.connect(tmp_path / "events.db")
    store.execute("CREATE TABLE event_logs (event TEXT, snapshot BLOB)")
    store.execute("INSERT INTO event_logs VALUES (?, ?)", (json.dumps({"message": "Jõgeva Õie"}),
                                                          zlib.compress(b'{"body": "Rein Saar"}')))
    store.commit()
    store.close()
    (tmp_path / "page.html").write_text('<p>Kask&nbsp;J&uuml;ri</p><img alt="Linda Kuusk" src="a.png">',
                                        encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.text(0.1, 0.5, "Peeter Sepp +372 5123 4567")
    fig.savefig(tmp_path / "chart.pdf")
    plt.close(fig)
    hay = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for hidden in ("Õie", "Rein Saar", "Jüri", "Peeter"):  # escaped or compressed on disk
        assert hidden.encode() not in hay

    index = index_run(tmp_path)
    needles = ["Marile", "Tamm", "49403136526", "mari.tamm@example.ee", "Õie", "Saar", "Jüri", "Linda Kuusk",
               "Peeter", "+372 5123 4567", "Tammsaare", "Rein Tamm"]
    found = set(index.hits(needles)["needle"])
    assert found == set(needles) - {"Tammsaare", "Rein Tamm"}  # whole words, in their order


def test_ordinary_words_are_only_words_of_the_project_texts():
    canaries = {"names": ["Kool", "Laine", "Tamm", "Mari-Liisa"], "personal_codes": ["49403136526"]}
    assert ordinary_words(canaries) == {"Kool", "Laine"}


def test_an_empty_index_finds_nothing():
    assert ArtifactIndex().hits(["Tamm"]).empty

"""Report rendering: texts, small-cell display, the overview's queries, the embedded engine.

The render tests build their own small processed study database (the DuckDB contract's
tables, by hand, so they depend on neither the generator nor the ingest): three
counties, municipalities of very different sizes (one with 2-3 pupils, to exercise
suppression), two waves, a rejected row, quality findings with identifying-looking
messages (canaries that must never reach a report) and provenance. The Estonian
overview is rendered twice with the embedded engine (content, then byte-identical
output); the English render is the same code path with the other texts and is
marked slow (each render starts a kernel: 10-25 s on the shared machine).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from pathlib import Path

import duckdb
import pandas as pd
import pypdf
import pytest

from pipelines.privacy.cells import audit_html_tables
from pipelines.render import overview
from pipelines.render.engine import (FRESH_KERNEL_ENV, RENDER_KERNELS_ENV, RenderError, RenderJob, batch_kernels,
                                     render_report, render_reports)
from pipelines.render.notebook import (REMOVE_CELL, REMOVE_INPUT, ReportExecutionError, WarmKernel, execute,
                                       expand_includes, inject_parameters, read_qmd)
from pipelines.render.figures import horizontal_bars
from pipelines.render.tables import format_date, published_cells, published_counts, report_table
from pipelines.render.texts import LANGUAGES, load_texts

REPORTS = Path(__file__).resolve().parents[1] / "reports"
#: Planted in quality messages: a report that shows it leaks finding details.
CANARY = "Mari Maasikas 49001010001"

MUNICIPALITY_PUPILS = {
    ("voru", "Võru vald"): (40, 36),
    ("voru", "Setomaa vald"): (3, 2),
    ("laane_viru", "Väike-Maarja vald"): (25, 22),
    ("tartu", "Tartu linn"): (120, 110),
    ("tartu", "Nõo vald"): (12, 0),
}
#: Planted quality findings: (instrument, wave, rule, severity, action, how many).
QUALITY = [
    ("pupils", "baseline", "invalid_personal_code", "warning", "kept", 3),
    ("pupils", "baseline", "duplicate_record", "warning", "row_rejected", 2),
    ("pupils", "followup", "municipality_spelling", "info", "recoded", 17),
    ("pupils", "followup", "missing_code", "info", "value_set_missing", 41),
    ("pilot", "pre", "unmapped_value", "warning", "value_set_missing", 6),
]


def build_study_db(path: Path) -> Path:
    """Write the fixture database to ``path`` and return it."""
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA meta; CREATE SCHEMA anon;")
    pupils = []
    for (county, municipality), waves in MUNICIPALITY_PUPILS.items():
        for wave, count in zip(("baseline", "followup"), waves, strict=True):
            pupils += [
                {"pupil_id": f"p{county[:2]}{municipality[:3]}{i:03d}", "wave": wave, "county": county,
                 "municipality": municipality, "grade": 1 + i % 9}
                for i in range(count)
            ]
    con.register("pupils_frame", pd.DataFrame(pupils))
    con.execute("CREATE TABLE anon.pupils AS SELECT * FROM pupils_frame")
    con.execute(
        "CREATE TABLE anon.pilot AS SELECT pupil_id, CASE WHEN wave = 'baseline' THEN 'pre' ELSE 'post' END AS wave, "
        "county, municipality FROM anon.pupils WHERE grade <= 3"
    )
    con.execute(
        "CREATE TABLE anon.specialists AS SELECT 's' || range::VARCHAR AS staff_id, "
        "CASE WHEN range % 2 = 0 THEN 'pre' ELSE 'post' END AS wave, 'tartu' AS county, 'Tartu linn' AS municipality "
        "FROM range(14)"
    )
    con.execute(
        "CREATE TABLE anon.services AS SELECT NULL::VARCHAR AS wave, county, municipality, 'youth_work' AS service_type "
        "FROM (SELECT DISTINCT county, municipality FROM anon.pupils)"
    )
    rejected = {(q[0], q[1]): q[5] for q in QUALITY if q[4] == "row_rejected"}
    row_counts = []
    for instrument, wave, county, accepted in con.execute(
        "SELECT instrument, wave, county, count(*) FROM (SELECT 'pupils' AS instrument, wave, county FROM anon.pupils "
        "UNION ALL SELECT 'pilot', wave, county FROM anon.pilot UNION ALL SELECT 'specialists', wave, NULL FROM anon.specialists) "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        dropped = rejected.get((instrument, wave), 0) if county == "voru" else 0
        row_counts.append((instrument, wave, county, f"{county or 'ulikool'}/{instrument}_{wave}.dat",
                           accepted + dropped, accepted, dropped))
    # In the study file's order of inputs (pupils, pilot, specialists), as ingest writes them: the
    # overview lists instruments in that order; the waves' order is meta.analysis_plan's.
    row_counts.sort(key=lambda r: ("pupils", "pilot", "specialists").index(r[0]))
    con.execute("CREATE TABLE meta.row_counts (instrument VARCHAR, wave VARCHAR, county VARCHAR, file VARCHAR, "
                "rows_read BIGINT, rows_accepted BIGINT, rows_rejected BIGINT)")
    con.executemany("INSERT INTO meta.row_counts VALUES (?, ?, ?, ?, ?, ?, ?)", row_counts)
    con.execute("CREATE TABLE meta.analysis_plan (part VARCHAR, name VARCHAR, instrument VARCHAR, present BOOLEAN, "
                "spec VARCHAR)")
    con.executemany("INSERT INTO meta.analysis_plan VALUES ('waves', ?, ?, true, ?)", [
        (i, i, json.dumps({"waves": w})) for i, w in (("pilot", ["pre", "post"]), ("pupils", ["baseline", "followup"]),
                                                      ("services", []), ("specialists", ["pre", "post"]))])
    con.execute('CREATE TABLE meta.quality (instrument VARCHAR, wave VARCHAR, file VARCHAR, "row" BIGINT, '
                '"column" VARCHAR, variable VARCHAR, rule VARCHAR, severity VARCHAR, action VARCHAR, message VARCHAR)')
    con.executemany(
        "INSERT INTO meta.quality VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(instrument, wave, "voru/file.sav", i + 2, "col", "var", rule, severity, action, f"{CANARY}: finding {rule}")
         for instrument, wave, rule, severity, action, count in QUALITY for i in range(count)],
    )
    con.execute("CREATE TABLE meta.variables (instrument VARCHAR, variable VARCHAR, type VARCHAR, role VARCHAR, "
                "label_et VARCHAR, label_en VARCHAR, scales VARCHAR)")
    con.executemany("INSERT INTO meta.variables VALUES (?, ?, ?, ?, ?, ?, ?)", [
        ("pupils", "personal_code", "string", "direct_identifier", "Isikukood", "Personal identification code", None),
        ("pupils", "municipality", "municipality", "quasi_identifier", "Omavalitsus", "Municipality", None),
        ("pupils", "grade", "integer", "quasi_identifier", "Klass", "Grade", None),
        ("pupils", "absences", "integer", "sensitive", "Põhjuseta puudumised", "Unexcused absences", None),
        ("pupils", "motivation_1", "categorical", "analytic", "Õpimotivatsioon 1", "Learning motivation 1", "motivation"),
        ("pilot", "sdl_1", "categorical", "analytic", "Enesejuhitud õppimine 1", "Self-directed learning 1", "sdl"),
        ("specialists", "sector", "categorical", "analytic", "Sektor", "Sector", None),
    ])
    con.execute("CREATE TABLE meta.value_labels (instrument VARCHAR, variable VARCHAR, code VARCHAR, "
                "label_et VARCHAR, label_en VARCHAR)")
    con.execute("CREATE TABLE meta.study (key VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO meta.study VALUES (?, ?)", [
        ("study", "fixture"), ("title_et", "Testuuring: õ ä ö ü š ž"), ("title_en", "Test study"),
        ("reference_date", "2023-09-01"), ("min_cell", "5"), ("k_anonymity", "5"),
    ])
    provenance = [
        ("input", "voru/opilased_2023.sav", hashlib.sha256(b"a").hexdigest()),
        ("code", "git_commit", "unknown"),
        ("lockfile", "uv.lock", hashlib.sha256(b"lock").hexdigest()),
        ("config", "studies/fixture.yaml", hashlib.sha256(b"cfg").hexdigest()),
        ("seed", "synth", "42"),
        ("software", "duckdb", duckdb.__version__),
    ]
    run = hashlib.sha256("".join("|".join(row) for row in provenance).encode()).hexdigest()
    con.execute("CREATE TABLE meta.provenance (kind VARCHAR, name VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO meta.provenance VALUES (?, ?, ?)", [*provenance, ("fingerprint", "run", run)])
    con.close()
    return path


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_study_db(tmp_path_factory.mktemp("study") / "fixture.duckdb")


@pytest.fixture(scope="module")
def con(study_db: Path):
    connection = duckdb.connect(str(study_db), read_only=True)
    yield connection
    connection.close()


def render(study_db: Path, output_dir: Path, lang: str) -> tuple[list[Path], float]:
    start = time.perf_counter()
    paths = render_report(REPORTS / "overview.qmd", output_dir,
                          {"study": "fixture", "db": str(study_db), "lang": lang}, engine="embedded")
    return paths, time.perf_counter() - start


@pytest.fixture(scope="module")
def rendered_et(study_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Estonian overview, HTML and PDF, in a fresh kernel (the timing shows with ``-s``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FRESH_KERNEL_ENV, "1")
        paths, seconds = render(study_db, tmp_path_factory.mktemp("et"), "et")
    print(f"overview et: html+pdf in {seconds:.1f} s")
    return {p.suffix[1:]: p for p in paths}


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(path.read_bytes())).pages)


def all_keys(node, prefix=""):
    if isinstance(node, dict):
        return {k for key, value in node.items() for k in all_keys(value, f"{prefix}{key}.")}
    return {prefix.rstrip(".")}


# --- texts ---------------------------------------------------------------------------


def test_both_languages_have_the_same_keys():
    estonian, english = (all_keys(load_texts(lang)._strings) for lang in LANGUAGES)
    assert estonian == english
    assert "overview.title" in estonian


def test_text_fills_fields_and_names_missing_keys():
    texts = load_texts("et")
    assert texts("overview.subtitle", title="T", reference_date="2023-09-01") == "T. Võrdluskuupäev 2023-09-01."
    assert texts.label("waves", "baseline") == "alguskaardistus"
    assert texts.label("waves", "wave3") == "wave3"
    with pytest.raises(KeyError, match="overview.nope"):
        texts("overview.nope")
    with pytest.raises(ValueError):
        load_texts("ru")


# --- tables --------------------------------------------------------------------------


def test_small_counts_and_their_shares_are_suppressed():
    frame = pd.DataFrame({"kov": ["A", "B", "C", "D"], "n": [0, 1, 4, 1234], "pct": [0.0, 50.0, 12.5, 61.7],
                          "base": [0, 2, 32, 2000]})
    cells = published_cells(frame, lang="et", min_cell=5, counts=["n", "base"], shares={"pct": ("n", "base")})
    assert list(cells["n"]) == ["0", "<5", "<5", "1\u202f234"]
    assert list(cells["base"]) == ["0", "<5", "32", "2\u202f000"]
    assert list(cells["pct"]) == ["–", "…", "…", "61,7%"]
    english = published_cells(frame, lang="en", min_cell=5, counts=["n", "base"], shares={"pct": ("n", "base")})
    assert list(english["n"]) == ["0", "<5", "<5", "1,234"] and list(english["pct"])[-1] == "61.7%"
    with pytest.raises(ValueError, match="base"):
        published_cells(frame, lang="en", min_cell=5, counts=["n"], shares={"pct": ("n", "base")})
    assert list(published_cells(frame, lang="en", min_cell=2, counts=["n"])["n"]) == ["0", "<2", "4", "1,234"]
    assert (format_date("2023-09-01", "et"), format_date("2023-09-01", "en")) == ("01.09.2023", "2023-09-01")


def test_row_total_and_known_totals_trigger_secondary_suppression():
    read = pd.DataFrame({"accepted": [43, 20], "rejected": [2, 0], "read": [45, 20]})
    cells = published_cells(read, lang="en", min_cell=5, counts=["accepted", "rejected", "read"], row_total="read")
    assert list(cells.iloc[0]) == ["x", "<5", "45"]  # 45 - 43 would give the 2 back
    assert list(cells.iloc[1]) == ["20", "0", "20"]
    municipalities = pd.DataFrame({"county": ["v", "v", "v", "t"], "kov": ["a", "b", "c", "d"], "n": [3, 40, 9, 2]})
    cells = published_cells(municipalities, lang="en", min_cell=5, counts=["n"], known_totals="county")
    assert list(cells["n"]) == ["<5", "40", "x", "<5"]  # the county total is published elsewhere
    assert list(published_cells(municipalities, lang="en", min_cell=5, counts=["n"])["n"]) == ["<5", "40", "9", "<5"]


def test_charts_draw_only_what_the_table_publishes():
    """A bar of a secondary-suppressed cell would give back the count the table hides."""
    municipalities = pd.DataFrame({"county": ["v", "v", "v", "t", "t"], "kov": ["a", "b", "c", "d", "e"],
                                   "baseline": [3, 40, 9, 2, 30], "followup": [6, 38, 12, 7, 29]})
    protection = {"min_cell": 5, "counts": ["baseline", "followup"], "known_totals": "county"}
    cells = published_cells(municipalities, lang="en", **protection)
    published = published_counts(municipalities, **protection)
    assert (cells == "x").any().any()  # the case that matters is present
    for column in protection["counts"]:
        for row in municipalities.index:
            shown, value, mark = cells.at[row, column], published.values.at[row, column], published.marks.at[row, column]
            if mark:
                assert pd.isna(value) and mark == shown
            else:
                assert shown == f"{value:,.0f}"
    figure = horizontal_bars(municipalities, category="kov", series=["baseline", "followup"],
                             series_labels=["Baseline", "Follow-up"], xlabel="Pupils", published=published, alt="x")
    assert figure.png.startswith(b"\x89PNG")


def test_report_table_marks_count_cells_for_the_html_audit():
    frame = pd.DataFrame({"kov": ["Võru vald", "Setomaa vald"], "n": [120, 3], "note": ["a|b", "c"]})
    table = report_table(frame, lang="et", min_cell=5, counts=["n"], labels={"kov": "KOV", "n": "Õpilasi"},
                         caption="Tabel")
    html = table._repr_html_()
    assert '<td class="count">&lt;5</td>' in html and '<td class="count">120</td>' in html
    assert "note" not in html and audit_html_tables(html).empty
    assert audit_html_tables(html.replace("&lt;5", "3")).shape[0] == 1
    markdown = table._repr_markdown_()
    assert "| KOV | Õpilasi |" in markdown and "|:---|---:|" in markdown and "| Setomaa vald | <5 |" in markdown
    assert ": Tabel" in markdown
    with pytest.raises(KeyError, match="missing"):
        report_table(frame, lang="et", min_cell=5, counts=["missing"])


# --- the overview's queries ----------------------------------------------------------


def test_received_rows_reconcile(con):
    received = overview.received_by_source(con)
    assert (received["rows_read"] == received["rows_accepted"] + received["rows_rejected"]).all()
    voru = received[(received["instrument"] == "pupils") & (received["wave"] == "baseline")
                    & (received["county"] == "voru")].iloc[0]
    assert (voru["rows_read"], voru["rows_accepted"], voru["rows_rejected"]) == (45, 43, 2)
    assert voru["accepted_pct"] == pytest.approx(43 / 45 * 100)
    assert list(received["instrument"].drop_duplicates()) == ["pupils", "pilot", "specialists"]
    specialists = received[received["instrument"] == "specialists"]
    assert list(specialists["wave"]) == ["pre", "post"] and specialists["county"].isna().all()


def test_records_by_municipality_count_the_anon_tables(con):
    records = overview.records_by_municipality(con)
    pupils = records[records["instrument"] == "pupils"].set_index(["municipality", "wave"])["records"]
    assert pupils[("Setomaa vald", "baseline")] == 3 and pupils[("Tartu linn", "followup")] == 110
    assert ("Nõo vald", "followup") not in pupils.index
    assert records.loc[records["instrument"] == "services", "wave"].isna().all()
    wide, pairs = overview.wide_by_municipality(records, overview.instruments(con), overview.wave_order(con))
    assert pairs[:2] == [("pupils", "baseline"), ("pupils", "followup")] and pairs[-1] == ("services", None)
    nõo = wide.set_index("municipality").loc["Nõo vald"]
    assert (nõo["pupils/baseline"], nõo["pupils/followup"], nõo["services/"]) == (12, 0, 1)
    only = overview.records_by_municipality(con, "Võru vald")
    assert set(only["municipality"]) == {"Võru vald"}


def test_quality_findings_are_counted_by_rule_without_messages(con):
    quality = overview.quality_by_rule(con)
    assert list(quality.columns) == ["rule", "severity", "action", "instrument", "findings"]
    planted = {(q[2], q[0]): q[5] for q in QUALITY}
    assert {(r.rule, r.instrument): r.findings for r in quality.itertuples()} == planted
    assert quality["severity"].iloc[0] == "warning" and quality["severity"].iloc[-1] == "info"


def test_variables_provenance_and_fingerprint(con):
    roles = overview.variables_by_role(con).set_index("role")
    assert roles.loc["quasi_identifier", "pupils"] == 2 and roles.loc["analytic", "specialists"] == 1
    assert list(roles.index) == ["direct_identifier", "quasi_identifier", "sensitive", "analytic"]
    assert list(overview.variable_list(con, "pupils", "en")["label"])[:2] == ["Personal identification code", "Municipality"]
    assert overview.variable_instruments(con) == ["pupils", "pilot", "specialists"]
    provenance = overview.provenance(con)
    assert provenance["kind"].iloc[0] == "fingerprint" and provenance["kind"].iloc[-1] == "software"
    assert re.fullmatch("[0-9a-f]{64}", overview.run_fingerprint(con))


# --- reading a .qmd ------------------------------------------------------------------


def test_report_kernels_talk_over_encrypted_sockets(tmp_path):
    """The kernel's channels carry study results: CurveZMQ keys, not plain TCP."""
    (tmp_path / "k.qmd").write_text("```{python}\nfrom ipykernel.kernelapp import IPKernelApp\n"
                                    "print(IPKernelApp.instance().curve_secretkey is not None)\n```\n",
                                    encoding="utf-8")
    notebook, _ = read_qmd(tmp_path / "k.qmd")
    execute(notebook, tmp_path, "k.qmd")
    assert notebook.cells[0].outputs[0]["text"] == "True\n"


def test_a_warm_kernel_is_encrypted_and_reset_between_reports(tmp_path):
    """Reports run in turn in one kernel start as in a fresh one: no name of the one before, and
    the idle kernel holds no lock on a database a report read (the pipeline may write it next)."""
    database = tmp_path / "probe.duckdb"
    duckdb.connect(str(database)).close()
    (tmp_path / "a.qmd").write_text("```{python}\nleft_over = 1\nimport matplotlib\n"
                                    "matplotlib.rcParams['font.size'] = 31\nimport duckdb\n"
                                    f"con = duckdb.connect({str(database)!r}, read_only=True)\n```\n",
                                    encoding="utf-8")
    (tmp_path / "b.qmd").write_text("```{python}\nfrom ipykernel.kernelapp import IPKernelApp\nimport os\n"
                                    "import matplotlib\nprint(IPKernelApp.instance().curve_secretkey is not None,"
                                    " 'left_over' in globals(), matplotlib.rcParams['font.size'], os.getcwd())\n```\n",
                                    encoding="utf-8")
    first, _ = read_qmd(tmp_path / "a.qmd")
    second, _ = read_qmd(tmp_path / "b.qmd")
    with WarmKernel(tmp_path) as kernel:
        kernel.execute(first, tmp_path, "a.qmd")
        writer = duckdb.connect(str(database))  # read-write: no conflicting lock from the idle kernel
        writer.execute("CREATE TABLE written AS SELECT 1 AS x")
        writer.close()
        kernel.execute(second, tmp_path, "b.qmd")
    assert len(first.cells) == 1 and len(second.cells) == 1
    encrypted, left_over, size, cwd = second.cells[0].outputs[0]["text"].split()
    assert (encrypted, left_over, cwd) == ("True", "False", str(tmp_path.resolve()))
    assert float(size) != 31


def test_read_qmd_turns_cell_options_into_tags(tmp_path):
    (tmp_path / "_part.qmd").write_text("```{python}\n#| include: false\nx = 2\n```\n", encoding="utf-8")
    (tmp_path / "r.qmd").write_text(
        "---\ntitle: T\nexecute:\n  echo: false\n---\n\n```{python}\n#| tags: [parameters]\nlang = 'et'\n```\n\n"
        "{{< include _part.qmd >}}\n\n# Pealkiri\n\n```{python}\n#| echo: true\n#| output: false\nprint(lang)\n```\n",
        encoding="utf-8",
    )
    notebook, options = read_qmd(tmp_path / "r.qmd")
    assert options["title"] == "T"
    kinds = [c.cell_type for c in notebook.cells]
    assert kinds == ["code", "code", "markdown", "code"]
    assert notebook.cells[0].metadata["tags"] == ["parameters", REMOVE_INPUT]
    assert notebook.cells[1].metadata["tags"] == [REMOVE_INPUT, REMOVE_CELL]
    assert notebook.cells[3].metadata["tags"] == ["remove-output"] and notebook.cells[3].source == "print(lang)"
    assert [c.id for c in notebook.cells] == ["cell-0", "cell-1", "cell-2", "cell-3"]
    inject_parameters(notebook, {"lang": "en", "db": "/x/it's.duckdb"})
    assert notebook.cells[1].source == "lang = 'en'\ndb = \"/x/it's.duckdb\""
    with pytest.raises(ValueError, match="identifier"):
        inject_parameters(notebook, {"a b": "1"})
    with pytest.raises(FileNotFoundError):
        expand_includes("{{< include _none.qmd >}}", tmp_path)


def test_render_request_is_checked(study_db, tmp_path):
    params = {"study": "fixture", "db": str(study_db), "lang": "et"}
    with pytest.raises(RenderError, match="lang"):
        render_report(REPORTS / "overview.qmd", tmp_path, {**params, "lang": "de"})
    with pytest.raises(RenderError, match="absolute"):
        render_report(REPORTS / "overview.qmd", tmp_path, {**params, "db": "data/x.duckdb"})
    with pytest.raises(RenderError, match="db"):
        render_report(REPORTS / "overview.qmd", tmp_path, {"study": "fixture", "lang": "et"})
    with pytest.raises(RenderError, match="formats"):
        render_report(REPORTS / "overview.qmd", tmp_path, params, formats=("docx",))


# --- rendering the overview ----------------------------------------------------------


WORDS = {"et": ["Andmete ülevaade", "Saadud andmed", "Andmekvaliteet", "Lisa A. Päritolu", "Lisa B. Tunnuste loetelu"],
         "en": ["Data overview", "Data received", "Data quality", "Appendix A. Provenance", "Appendix B. Variables"]}


def check_overview(outputs: dict[str, Path], lang: str, con) -> None:
    """What every rendered overview must hold, and what it must never hold."""
    fingerprint = overview.run_fingerprint(con)[:12]
    html = outputs["html"].read_text(encoding="utf-8")
    text = pdf_text(outputs["pdf"])
    assert f'<html lang="{lang}">' in html
    for document in (html, text):
        assert fingerprint in document and all(word in document for word in WORDS[lang])
    # self-contained: no scripts, no stylesheets or images fetched from anywhere
    assert "<script" not in html and "<link" not in html and not re.search(r"src=\"(?!data:)", html)
    assert "data:image/png;base64," in html
    # small cells: every count cell passes the audit, the Setomaa pupils show as <5
    assert audit_html_tables(html).empty
    assert html.count('<td class="count">&lt;5</td>') >= 5 and "<5" in text
    # no record details: neither finding messages nor pseudonyms
    pupil_ids = [row[0] for row in con.execute("SELECT pupil_id FROM anon.pupils").fetchall()]
    for document in (html, text):
        assert CANARY not in document and "Maasikas" not in document
        assert not any(pupil_id in document for pupil_id in pupil_ids)


def test_estonian_overview(rendered_et, con):
    check_overview(rendered_et, "et", con)
    text = pdf_text(rendered_et["pdf"])
    assert "Testuuring: õ ä ö ü š ž. Võrdluskuupäev 01.09.2023." in text and "Võru maakond" in text and "Õpilased" in text


@pytest.mark.slow
def test_english_overview(study_db, con, tmp_path):
    paths, seconds = render(study_db, tmp_path, "en")
    print(f"overview en: html+pdf in {seconds:.1f} s")
    check_overview({p.suffix[1:]: p for p in paths}, "en", con)


def test_render_is_byte_identical(rendered_et, study_db, tmp_path):
    """A fresh kernel's render, a warm kernel's (twice in turn, batch API) and render_report's shared warm
    kernel (after the batch ran in it) give the same bytes."""
    params = {"study": "fixture", "db": str(study_db), "lang": "et"}
    batch = render_reports([RenderJob(REPORTS / "overview.qmd", tmp_path / str(i), params) for i in range(2)],
                           engine="embedded")
    shared, _ = render(study_db, tmp_path / "shared", "et")
    for again in [*batch, shared]:
        assert [p.name for p in again] == ["overview.html", "overview.pdf"]
        for path in again:
            assert path.read_bytes() == rendered_et[path.suffix[1:]].read_bytes(), path.name


def test_a_batch_in_two_kernels_gives_the_same_bytes_in_job_order(rendered_et, study_db, tmp_path, monkeypatch):
    """A large batch runs in two kernel processes at once (each report in whichever is free): every
    overview has the fresh kernel's bytes, and each job's files are written after the job's before it."""
    monkeypatch.setenv(RENDER_KERNELS_ENV, "2")
    # each pid report waits (at most a minute) until both kernels have run one, then prints its kernel's pid
    (tmp_path / "pid.qmd").write_text(
        "```{python}\nimport os, pathlib, time\nseen = pathlib.Path('seen')\nseen.mkdir(exist_ok=True)\n"
        "(seen / str(os.getpid())).touch()\nstart = time.time()\n"
        "while len(list(seen.iterdir())) < 2 and time.time() < start + 60:\n    time.sleep(0.02)\n"
        "print(f'pid-{os.getpid()}-pid')\n```\n", encoding="utf-8")
    params = {"study": "fixture", "db": str(study_db), "lang": "et"}
    jobs = [RenderJob(REPORTS / "overview.qmd", tmp_path / "o0", params)]
    jobs += [RenderJob(tmp_path / "pid.qmd", tmp_path / f"p{i}", params, ("html",)) for i in range(6)]
    jobs += [RenderJob(REPORTS / "overview.qmd", tmp_path / "o1", params)]
    written = render_reports(jobs, engine="embedded")
    assert [[p.parent.name for p in paths] for paths in written] == [[j.output_dir.name] * len(j.formats) for j in jobs]
    for paths in (written[0], written[-1]):
        for path in paths:
            assert path.read_bytes() == rendered_et[path.suffix[1:]].read_bytes(), path
    pids = {re.search(r"pid-(\d+)-pid", paths[0].read_text(encoding="utf-8")).group(1) for paths in written[1:-1]}
    assert len(pids) == 2, "the pid reports ran in one kernel only"
    times = [path.stat().st_mtime_ns for paths in written for path in paths]
    assert times == sorted(times)


def test_a_failed_report_stops_a_parallel_batch_after_the_reports_before_it(tmp_path, monkeypatch):
    monkeypatch.setenv(RENDER_KERNELS_ENV, "2")
    (tmp_path / "ok.qmd").write_text("```{python}\nprint(1)\n```\n", encoding="utf-8")
    (tmp_path / "bad.qmd").write_text("```{python}\nraise ValueError('no')\n```\n", encoding="utf-8")
    params = {"study": "fixture", "db": str(tmp_path / "none.duckdb"), "lang": "et"}
    jobs = [RenderJob(tmp_path / f"{name}.qmd", tmp_path / str(i), params, ("html",))
            for i, name in enumerate(["ok", "ok", "bad", *["ok"] * 5])]
    with pytest.raises(ReportExecutionError, match="bad.qmd"):
        render_reports(jobs, engine="embedded")
    assert (tmp_path / "0" / "ok.html").is_file() and (tmp_path / "1" / "ok.html").is_file()
    assert not (tmp_path / "2" / "bad.html").exists()


def test_batch_kernels(monkeypatch):
    monkeypatch.delenv(RENDER_KERNELS_ENV, raising=False)
    assert batch_kernels(2) == 1 and 1 <= batch_kernels(40) <= 2
    monkeypatch.setenv(RENDER_KERNELS_ENV, "3")
    assert batch_kernels(40) == 3 and batch_kernels(2) == 2
    monkeypatch.setenv(RENDER_KERNELS_ENV, "zero")
    with pytest.raises(RenderError, match=RENDER_KERNELS_ENV):
        batch_kernels(10)


def test_instruments_waves_and_people_come_from_the_database(con):
    assert overview.instruments(con) == ("pupils", "pilot", "specialists", "services")
    assert overview.wave_order(con)[:4] == ("baseline", "followup", "pre", "post")
    assert overview.person_instruments(con) == ("pupils", "pilot", "specialists")
    assert overview.not_in_study(con) == []


def test_a_file_without_rows_and_an_empty_table_render(tmp_path):
    """A 0-row input (no share of accepted rows) and a table without rows are shown, not a crash."""
    from pipelines.render.tables import published_cells

    frame = pd.DataFrame({"file": ["a", "b"], "rows_read": [0, 40], "rows_accepted": [0, 38],
                          "rows_rejected": [0, 2], "accepted_pct": pd.array([pd.NA, 95.0], dtype="Float64")})
    cells = published_cells(frame, lang="en", min_cell=5, counts=["rows_accepted", "rows_rejected", "rows_read"],
                            row_total="rows_read", shares={"accepted_pct": ("rows_accepted", "rows_read")})
    assert cells.loc[0, "accepted_pct"] == "–" and cells.loc[0, "rows_read"] == "0"
    empty = published_cells(frame.iloc[:0], lang="en", min_cell=5)
    assert empty.empty and list(empty.columns) == list(frame.columns)


def test_coordinator_estimates_are_the_first_matching_row():
    """The coordinator's indexed look-up finds what filtering results.descriptives found: the first row of
    the estimate's key (a study row whatever its county, a county row by county, a KOV row by both)."""
    from pipelines.render.coordinator import Coordinator

    desc = pd.DataFrame({
        "instrument": ["pupils"] * 7, "wave": ["w1"] * 6 + ["w2"], "variable": ["v"] * 7,
        "level": [1, 1, 1, 1, 2, 1, 1], "geography": ["study", "study", "county", "municipality", "county",
                                                      "municipality", "county"],
        "county": ["all", "x", "c", "c", "c", "d", "c"], "municipality": ["all", "all", "all", "m", "all", "m", "all"],
        "estimate": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], "conf_low": [0.0] * 7, "conf_high": [1.0] * 7})

    def filtered(instrument, wave, variable, level, key):  # the look-up as it was: masks over the table
        geography, county, municipality = key
        rows = desc.loc[(desc["instrument"] == instrument) & (desc["wave"] == wave) & (desc["variable"] == variable)
                        & (desc["level"].astype(str) == level) & (desc["geography"] == geography)]
        if geography != "study":
            rows = rows.loc[rows["county"] == county]
        if geography == "municipality":
            rows = rows.loc[rows["municipality"] == municipality]
        return rows.iloc[0]["estimate"] if len(rows) else None

    estimates = Coordinator._estimates(desc)
    for wave in ("w1", "w2", "w3"):
        for level in ("1", "2"):
            for key in [("study", "all", "all"), ("county", "c", "all"), ("county", "d", "all"),
                        ("municipality", "c", "m"), ("municipality", "d", "m"), ("municipality", "c", "n")]:
                hit = Coordinator._estimate(estimates, "pupils", wave, "v", level, key)
                assert (hit["estimate"] if hit else None) == filtered("pupils", wave, "v", level, key), (wave, level, key)
    assert Coordinator._estimates(desc.iloc[:0]) == {}


def test_family_rows_are_the_unstacked_cells():
    """family_rows builds the wide frame from lists: the same frame as pandas' unstack (sorted places and
    categories, NaN where a place lacks a cell), and unusual input still takes the unstack."""
    from pipelines.render.family_tables import _unstacked, family_rows

    cells = pd.DataFrame({
        "family": ["f"] * 7 + ["g"] * 2,
        "level": ["study", "county", "municipality", "municipality", "county", "study", "municipality", "study",
                  "county"],
        "county": ["all", "võru", "võru", "tartu", "võru", "all", "tartu", "all", "x"],
        "municipality": ["all", "all", "Võru vald", "Nõo vald", "all", "all", "Nõo vald", "all", "all"],
        "column": ["2", "2", "2", "2", "10", "10", "__total", "a", "a"],
        "value": [40.0, 12.0, float("nan"), 7.0, 3.0, 9.0, 20.0, 1.0, 2.0],
        "mark": ["", "", "x", "", "<5", "", "", "", ""],
    }).astype({"family": "str", "level": "str", "county": "str", "municipality": "str", "column": "str",
               "mark": "str"})
    for family in ("f", "g", "none"):
        pd.testing.assert_frame_equal(family_rows(cells, family), _unstacked(cells.loc[cells["family"] == family]))
    with pytest.raises(ValueError):  # a repeated cell: unstack's own error, as before
        family_rows(pd.concat([cells, cells.iloc[:1]]), "f")


def test_pandoc_reads_markdown_without_raw_html_only_when_it_has_none():
    """Without raw HTML pandoc gives the same Typst for a text with '<5' marks and no tag, faster;
    a text with a tag (or anything like one) keeps pandoc's full Markdown reader."""
    from pipelines.render.pdf import pandoc_markdown, run_pandoc

    table = "| Piirkond | Õpilasi |\n|:---|---:|\n" + "".join(f"| Vald {i} | <5 |\n" for i in range(30))
    text = f"## Õpilased {{#opilased}}\n\nArvud 1–4 on kujul „<5“, x on varjatud.\n\n{table}\n: Tabel\n"
    args = ["--wrap=preserve", "--columns=100000"]
    assert pandoc_markdown(text) != "markdown"
    assert run_pandoc(text, pandoc_markdown(text), "typst", args) == run_pandoc(text, "markdown", "typst", args)
    for html in ("a<br>b", "</p>", "<!-- x -->", "<https://example.org>", "a <span>b</span>"):
        assert pandoc_markdown(text + html) == "markdown"

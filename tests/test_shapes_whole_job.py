"""Any study by YAML alone (issue 10): the whole job on four differently shaped studies.

The shapes come from `pipelines/synth/shapes.py` (read its docstring): the demo; pupils
only; three pilot waves with renamed columns and a 0/1 outcome; one Russian-language
county whose pupil exports lack three persona indicators. Each is generated into a
temporary folder with its own Dagster storage, then `mapstudy run` runs in a subprocess,
as a researcher would run it: it must exit 0, write the tables and reports the shape can
have (and none of those it cannot, saying why), and recover the effects the shape
planted: the dropout model's log-odds inside the headline intervals, the pilot's
difference-in-differences where there is a pilot, the four persona classes.

The first tests check the generators alone (seconds). The whole-job runs take ~45 s each
on 400 pupils: pupils_only and sparse_county are in the default suite, demo (whose whole
job other tests run too) and three_waves are slow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import adjusted_rand_score

from pipelines.config import load_codebooks, load_study
from pipelines.synth import shapes
from pipelines.synth.shapes import SHAPES, make_shape, read_export

PUPILS = 400
SEED = 7
LANGS = ("et", "en")
ALWAYS_REPORTS = ("overview", "technical", "personas")
ALL_INSTRUMENTS = ("pilot", "pupils", "services", "specialists")
PRIMARY = "cluster-robust CR2"
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")


# --------------------------------------------------------------------------- generators alone


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Every shape generated once (300 pupils): name -> (root, study file, truth)."""
    out = {}
    for name in SHAPES:
        root = tmp_path_factory.mktemp(f"gen_{name}")
        study_file, truth = make_shape(name, root, pupils=300, seed=SEED)
        out[name] = (root, study_file, truth)
    return out


@pytest.mark.parametrize("name", SHAPES)
def test_each_shape_loads_and_lists_exactly_the_files_it_wrote(generated, name):
    root, study_file, truth = generated[name]
    study = load_study(study_file)
    books = load_codebooks(study)  # the plan is checked against the (overridden) codebooks here
    assert study.study == name == truth["study"] == truth["shape"]["name"]
    assert list(study.instruments) == truth["shape"]["instruments"] == sorted(books)
    assert set(truth["shape"]["absent_instruments"]) == set(ALL_INSTRUMENTS) - set(study.instruments)
    listed = {(study.raw_path / i.path).resolve() for i in study.inputs}
    written = {p.resolve() for p in study.raw_path.rglob("*") if p.is_file()}
    assert listed == written
    stored = json.loads((root / "data" / "truth" / f"{name}.json").read_text(encoding="utf-8"))
    assert stored == json.loads(json.dumps(truth))
    assert set(truth["counts"]) == set(study.instruments)
    assert all(k.split("/")[0] in study.instruments for by_key in truth["defects"].values() for k in by_key)
    assert ("pilot" in truth) == ("pilot" in study.instruments)
    plan = study.plan
    assert plan.personas is not None and plan.personas.n_init == shapes.SMALL_PERSONAS["n_init"]
    assert (plan.evaluation is not None) == ("pilot" in study.instruments)
    assert {m.name for m in plan.models} == {truth["dropout"]["model"]}
    assert {m.outcome for m in plan.models} == {truth["dropout"]["outcome"]}


@pytest.mark.parametrize("name", SHAPES)
def test_check_finds_no_error_and_warns_of_the_absent_indicators(generated, name):
    from pipelines.study_check import check_study

    study = load_study(generated[name][1])
    problems = check_study(study, load_codebooks(study))
    assert not [p for p in problems if p.level == "error"], [str(p) for p in problems]
    warned = {v for p in problems for v in shapes.ABSENT_INDICATORS if "plan.personas.indicators" in str(p)
              and f"'{v}'" in str(p)}
    assert warned == (set(shapes.ABSENT_INDICATORS) if name == "sparse_county" else set())


def test_pupils_only_has_no_other_instrument_nor_evaluation(generated):
    _, study_file, _ = generated["pupils_only"]
    data = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    assert {i["instrument"] for i in data["inputs"]} == {"pupils"}
    assert "evaluation" not in data["plan"]
    assert all(p.get("instrument", "pupils") == "pupils"
               for part in ("associations", "screening", "models") for p in data["plan"][part])


def test_three_waves_mid_wave_renamed_columns_and_left_school(generated):
    root, study_file, truth = generated["three_waves"]
    study = load_study(study_file)
    books = load_codebooks(study)
    assert study.instrument_waves(books["pilot"]) == ["pre", "mid", "post"]
    pilot = [i for i in study.inputs if i.instrument == "pilot"]
    assert sorted((i.county, i.wave) for i in pilot) == sorted((c, w) for c in study.counties
                                                               for w in ("pre", "mid", "post"))
    for item in pilot:
        export = read_export(study.raw_path / item.path, study.sources[item.source].model_dump())
        for variable in shapes.RENAMED_PILOT:
            first, later = books["pilot"].variables[variable].source_columns(item.source)
            assert (first in export.frame) == (item.wave == "pre"), (item.path, variable)
            assert (later in export.frame) == (item.wave != "pre"), (item.path, variable)
    mids = sum(len(read_export(study.raw_path / i.path, study.sources[i.source].model_dump()).frame)
               for i in pilot if i.wave == "mid")
    assert mids == truth["counts"]["pilot"]["mid"]["rows_written"] > 0
    assert "status" not in books["pupils"].variables and "dropout" not in books["pupils"].derived
    assert books["pupils"].variables["left_school"].values == "yesno"
    ones = 0
    for item in (i for i in study.inputs if i.instrument == "pupils"):
        export = read_export(study.raw_path / item.path, study.sources[item.source].model_dump())
        column = shapes.LEFT_SCHOOL_COLUMNS[item.source]
        assert column in export.frame
        ones += int(sum(shapes._code_text(v) == "1" for v in export.frame[column]))
    assert ones == truth["shape"]["left_school_events"] > 0
    assert study.plan.outcomes[shapes.OUTCOME].variable == "left_school"


def test_sparse_county_is_russian_lacks_three_indicators_and_borrows_columns(generated):
    root, study_file, truth = generated["sparse_county"]
    study = load_study(study_file)
    books = load_codebooks(study)
    assert list(study.counties) == ["ida_viru"] and set(study.sources) == {shapes.SPARSE_SOURCE}
    assert study.sources[shapes.SPARSE_SOURCE].columns_like == "tartu_forms"
    for item in study.inputs:
        export = read_export(study.raw_path / item.path, {"format": "xlsx"})
        book = books[item.instrument]
        for variable in shapes.ABSENT_INDICATORS if item.instrument == "pupils" else ():
            assert not set(book.variables[variable].source_columns(item.source)) & set(export.frame.columns)
        yesno = [c for v, var in book.variables.items() if var.values == "yesno"
                 for c in var.source_columns(item.source) if c in export.frame]
        cells = pd.concat([export.frame[c] for c in yesno]).dropna().astype(str)
        assert cells.map(lambda v: bool(_CYRILLIC.search(v))).mean() > 0.95, item.path
    assert truth["personas"]["absent_indicators"] == list(shapes.ABSENT_INDICATORS)
    assert 0.5 < truth["personas"]["ideal_ari"] < 0.9


def test_shapes_are_reproducible(tmp_path):
    first, _ = make_shape("three_waves", tmp_path / "a", pupils=150, seed=3)
    second, _ = make_shape("three_waves", tmp_path / "b", pupils=150, seed=3)
    files = lambda root: {p.relative_to(root): p.read_bytes() for p in sorted((root / "raw").rglob("*"))
                          if p.is_file()}
    assert files(tmp_path / "a") == files(tmp_path / "b")


# --------------------------------------------------------------------------- the whole job


def _run(root: Path, study_file: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAPSTUDY_DAGSTER_STORAGE": str(root / "dagster" / "storage"),
           "MAPSTUDY_DAGSTER_LOGS": str(root / "dagster" / "logs")}
    mapstudy = Path(sys.executable).parent / "mapstudy"
    return subprocess.run([str(mapstudy), "run", "--study", str(study_file), *options], env=env, capture_output=True,
                          text=True, timeout=900)


def _failure_lines(output: str) -> str:
    """What a failed run says went wrong: the failed steps and the last error of each chain."""
    keep = [line for line in output.splitlines()
            if "STEP_FAILURE" in line or re.search(r"^\S*(Error|Exception)\b.*:", line.strip())
            or line.startswith("error:")]
    return "\n".join(dict.fromkeys(re.sub(r"\x1b\[[0-9;]*m", "", line) for line in keep))[-4000:]


class ShapeRun:
    def __init__(self, name: str, root: Path, study_file: Path, truth: dict, proc: subprocess.CompletedProcess):
        self.name, self.root, self.study_file, self.truth, self.proc = name, root, study_file, truth, proc
        self.study = load_study(study_file)
        self.output = proc.stdout + proc.stderr
        (root / "run.log").write_text(self.output, encoding="utf-8")

    @property
    def instruments(self) -> list[str]:
        return self.truth["shape"]["instruments"]

    def tables(self) -> set[str]:
        db = self.study.db_path
        assert db.is_file(), f"{self.name}: no database (the run did not succeed):\n{_failure_lines(self.output)}"
        with duckdb.connect(str(db), read_only=True) as con:
            return {f"{s}.{t}" for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}

    def read(self, sql: str) -> pd.DataFrame:
        self.tables()
        with duckdb.connect(str(self.study.db_path), read_only=True) as con:
            return con.execute(sql).df()


_SHAPE_PARAMS = [
    pytest.param("pupils_only", id="pupils_only"),
    pytest.param("sparse_county", id="sparse_county"),
    pytest.param("three_waves", id="three_waves", marks=pytest.mark.slow),
    pytest.param("demo", id="demo", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module", params=_SHAPE_PARAMS)
def shape_run(request, tmp_path_factory) -> ShapeRun:
    name = request.param
    root = tmp_path_factory.mktemp(f"run_{name}")
    study_file, truth = make_shape(name, root, pupils=PUPILS, seed=SEED)
    return ShapeRun(name, root, study_file, truth, _run(root, study_file))


def test_the_whole_job_exits_0(shape_run):
    assert shape_run.proc.returncode == 0, f"{shape_run.name}: exit {shape_run.proc.returncode}\n" \
                                           f"{_failure_lines(shape_run.output)}"


def test_the_tables_and_reports_the_shape_can_have_and_no_others(shape_run):
    tables = shape_run.tables()
    has_pilot = "pilot" in shape_run.instruments
    for instrument in ALL_INSTRUMENTS:
        assert (f"anon.{instrument}" in tables) == (instrument in shape_run.instruments), instrument
    expected = {"results.models", "results.model_fit", "results.screening", "results.associations",
                "results.descriptives", "results.reasons", "results.persona_selection",
                "results.persona_assignments", "meta.analysis_plan", "meta.quality", "share.pupils"}
    assert expected <= tables, sorted(expected - tables)
    assert ("results.evaluation" in tables) == has_pilot
    reports = shape_run.study.report_dir("et").parent
    written = {p.relative_to(reports).as_posix() for p in reports.glob("*/*") if p.suffix in (".html", ".pdf")}
    # (the per-county and per-municipality reports, in <lang>/county/ and <lang>/municipality/, are not judged here)
    staff = {"specialists", "services"} & set(shape_run.instruments)
    kinds = (*ALWAYS_REPORTS, *(("evaluation",) if has_pilot else ()), *(("services",) if staff else ()))
    wanted = {f"{lang}/{report}.{ext}" for lang in LANGS for ext in ("html", "pdf") for report in kinds}
    assert written == wanted, (sorted(wanted - written), sorted(written - wanted))
    skips = [line for line in shape_run.output.splitlines() if line.startswith("skipped:")]
    for kind in ("evaluation", "services"):
        said = [line for line in skips if line.startswith(f"skipped: reports/{kind} (")]
        assert bool(said) == (kind not in kinds), (kind, skips)  # the run says why a report is left out
    if not has_pilot:
        assert any(line.startswith("skipped: evaluation_results (") for line in skips), skips


def test_the_planted_dropout_model_is_recovered(shape_run):
    planted = shape_run.truth["dropout"]
    models = shape_run.read("SELECT * FROM results.models")
    main = models[models["model"] == planted["model"]]
    assert set(main["outcome"]) == {planted["outcome"]} and set(main["wave"]) == {planted["wave"]}
    headline = main[main["headline"].astype(bool)].set_index("term")
    log_odds = pd.Series(planted["log_odds"])
    rows = headline.loc[log_odds.index]
    inside = (rows["conf_low"] <= log_odds) & (log_odds <= rows["conf_high"])
    assert inside.sum() >= len(log_odds) - 1, rows.assign(planted=log_odds)[["estimate", "conf_low", "conf_high",
                                                                              "planted"]]
    assert inside["(Intercept)"] and inside["chronic_absence"]


def test_the_planted_pilot_effects_are_recovered(shape_run):
    if "pilot" not in shape_run.instruments:
        assert "results.evaluation" not in shape_run.tables()
        return
    evaluation = shape_run.read("SELECT * FROM results.evaluation")
    rows = evaluation[(evaluation["contrast"] == "did") & (evaluation["municipality"] == "all")
                      & evaluation["correction"].fillna("").str.startswith(PRIMARY)].set_index("outcome")
    assert rows.index.is_unique
    effects = shape_run.truth["pilot"]["effects"]
    for outcome, planted in effects.items():
        row = rows.loc[outcome]
        assert row["conf_low"] <= planted["did"] <= row["conf_high"], (outcome, row[["estimate", "conf_low",
                                                                                     "conf_high"]].to_dict())
        assert np.sign(row["estimate"]) == np.sign(planted["did"]), outcome
    if len(shape_run.study.counties) > 1:  # one county's 8 municipalities are too few clusters for the sign test
        assert rows.loc["sdl", "conf_low"] > 0 and rows.loc["unexcused_absences", "conf_high"] < 0
    for outcome in shape_run.truth["pilot"]["null_outcomes"]:
        assert np.isfinite(rows.loc[outcome, "p_value"]), outcome


def test_the_planted_persona_classes_are_recovered(shape_run):
    truth = shape_run.truth["personas"]
    selection = shape_run.read("SELECT * FROM results.persona_selection")
    assert int(selection.loc[selection["term"] == "chosen_k", "estimate"].item()) == truth["k"]
    dropped = set(selection.loc[selection["term"] == "indicator_dropped", "variable"])
    assert dropped == set(truth.get("absent_indicators", []))
    assignments = shape_run.read("SELECT pupil_id, class FROM results.persona_assignments WHERE assigned")
    labels = truth["labels"]
    modal = assignments[assignments["pupil_id"].isin(labels)]
    assert len(modal) >= 0.98 * len(labels)
    ari = adjusted_rand_score([labels[p] for p in modal["pupil_id"]], modal["class"].to_numpy())
    assert ari >= truth["ideal_ari"] - 0.10, (ari, truth["ideal_ari"])  # few starts at 400 pupils: within 0.1


def test_shape_specific_data_came_through(shape_run):
    name = shape_run.name
    if name == "three_waves":
        pilot = shape_run.read("SELECT wave, unexcused_absences, sdl_plan_1 FROM anon.pilot")
        assert set(pilot["wave"]) == {"pre", "mid", "post"}
        filled = pilot.groupby("wave")[["unexcused_absences", "sdl_plan_1"]].apply(lambda f: f.notna().mean())
        assert (filled > 0.9).all().all(), filled  # the renamed columns were found in every wave
        quality = shape_run.read("SELECT variable FROM meta.quality WHERE rule = 'missing_column'")
        assert not set(quality["variable"]) & set(shapes.RENAMED_PILOT)
        pupils = shape_run.read("SELECT left_school FROM anon.pupils")
        assert set(pupils["left_school"].dropna().astype(int)) == {0, 1}
        spec = shape_run.read("SELECT spec FROM meta.analysis_plan WHERE part = 'evaluation'")["spec"].item()
        assert json.loads(spec)["waves"] == ["pre", "mid", "post"]  # first vs last; the mid wave counted
        flow = shape_run.read("SELECT stage, wave FROM results.evaluation_flow")
        assert set(flow["wave"].dropna()) == {"pre", "mid", "post"}
        scales = shape_run.read("SELECT DISTINCT wave FROM results.scales")
        assert {"pre", "mid", "post"} <= set(scales["wave"])
    if name == "sparse_county":
        quality = shape_run.read("SELECT variable, rule FROM meta.quality")
        missing = set(quality.loc[quality["rule"] == "missing_column", "variable"])
        assert missing == set(shapes.ABSENT_INDICATORS)
        pupils = shape_run.read("SELECT sex, home_language, hobby_education FROM anon.pupils")
        assert pupils.notna().mean().min() > 0.95  # the Russian answers were understood
    plan = shape_run.read("SELECT part, name, present FROM meta.analysis_plan")
    if "pilot" not in shape_run.instruments:
        assert plan.loc[plan["part"] == "evaluation"].empty or not plan.loc[plan["part"] == "evaluation",
                                                                             "present"].any()


def test_no_planted_identifier_in_any_artifact(shape_run):
    """The leak test (tests/test_leak.py) on each shape: its database, reports, Dagster storage and the
    run's console output hold none of the names, codes, e-mails, phones, addresses or birth dates it planted."""
    from tests.artifact_search import index_run, words_of
    from tests.test_leak import fixed_words

    root = shape_run.root
    inputs = [root / "raw", root / "data" / "truth", root / "secrets", root / "codebooks", shape_run.study_file,
              *(p for p in root.rglob("*.lock")), *(p for p in root.rglob("*-alive") if p.is_dir())]
    index = index_run(root, inputs)
    canaries = shape_run.truth["canaries"]
    # the study's own texts (its study file and codebook overrides) are fixed texts as the project's are
    own = [shape_run.study_file, *sorted((root / "codebooks").glob("*.yaml"))]
    vocabulary = (fixed_words() + " " + " ".join(words_of([p.read_text(encoding="utf-8") for p in own]))).split()
    distinct = sorted({c for values in canaries.values() for c in values})
    runs = [w.split() for w in words_of(distinct)]
    longest = max((len(r) for r in runs), default=0)
    known = {" ".join(vocabulary[i:i + n]) for n in range(1, longest + 1) for i in range(len(vocabulary) - n + 1)}
    excluded = {c for c, run in zip(distinct, runs) if run and " ".join(run) in known}
    assert excluded <= set(canaries["names"]), "only names may be excluded as ordinary words"
    assert len(excluded) < 0.03 * len(canaries["names"])
    assert any(s.startswith("text:") for s in index.sources)  # the console output was searched
    hits = index.hits(set(distinct) - excluded)
    assert hits.empty, f"{len(hits)} planted identifier(s) found in: {sorted(set(hits['source']))}"


def test_a_rerun_computes_only_what_changed(shape_run):
    """Skip what is up to date (pipelines/freshness.py), run as a user would, after the whole job.

    Nothing changed: no Dagster run at all, one line saying so. Then an input of the ingest
    alone changes (--accept-partial, with nothing lost): the ingest computes again, writes
    the same tables, and every other step reports its record.
    """
    again = _run(shape_run.root, shape_run.study_file)
    out = again.stdout + again.stderr
    assert again.returncode == 0, _failure_lines(out)
    assert "up to date: all" in out and "computing" not in out, out[-2000:]
    partial = _run(shape_run.root, shape_run.study_file, "--accept-partial")
    out = partial.stdout + partial.stderr
    assert partial.returncode == 0, _failure_lines(out)
    assert set(re.findall(r"computing (\S+): changed", out)) == {"ingest_study"}
    fresh = set(re.findall(r"up to date: (\S+) \(its inputs", out))
    assert {"models", "persona_results", "reports__overview", "reports__municipality"} <= fresh


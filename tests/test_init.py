"""`mapstudy init` drafts a study from a folder of exports; `mapstudy check` says what would fail."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from pipelines.config import PROJECT_ROOT, load_codebooks, load_study
from pipelines.draft import draft_study, fold_text, match_municipality
from tests.conftest import generate

PUPILS = 300


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("init")
    study_file, _truth = generate(root, pupils=PUPILS)
    return root, study_file


def _row_counts(db: Path) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute("SELECT file, instrument, wave, rows_read, rows_accepted, rows_rejected "
                            "FROM meta.row_counts").df()
        anon = {t: con.execute(f"SELECT count(*) FROM anon.{t}").fetchone()[0]
                for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = 'anon'").fetchall()}
    return frame.sort_values("file").reset_index(drop=True), anon


def test_init_drafts_a_study_that_ingests_the_same_rows_as_the_demo(generated, tmp_path):
    from pipelines.ingest.stage import run_ingest

    root, demo_file = generated
    draft = draft_study(root / "raw", "drafted", tmp_path / "studies")
    data = yaml.safe_load(draft.study_file.read_text(encoding="utf-8"))
    demo = yaml.safe_load(demo_file.read_text(encoding="utf-8"))
    assert data["inputs"] and {i["path"] for i in data["inputs"]} == {i["path"] for i in demo["inputs"]}
    by_path = {i["path"]: i for i in data["inputs"]}
    for item in demo["inputs"]:  # instrument and wave guessed as the demo has them
        assert (by_path[item["path"]]["instrument"], by_path[item["path"]].get("wave")) == (
            item["instrument"], item.get("wave")), item["path"]
    assert set(data["counties"]) == set(demo["counties"])

    # no edits beyond the plan (and where the test keeps its key and database)
    data["plan"] = demo["plan"]
    data["secret"] = demo["secret"]
    data["processed_dir"] = str(tmp_path / "processed")
    edited = tmp_path / "drafted_with_plan.yaml"
    edited.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    study = load_study(edited)
    run_ingest(study, load_codebooks(study))
    demo_study = load_study(demo_file)
    run_ingest(demo_study, load_codebooks(demo_study))

    drafted_counts, drafted_anon = _row_counts(study.db_path)
    demo_counts, demo_anon = _row_counts(demo_study.db_path)
    pd.testing.assert_frame_equal(drafted_counts, demo_counts)
    assert drafted_anon == demo_anon
    assert drafted_counts["rows_accepted"].sum() > 0


def test_drafted_files_hold_no_cell_values(generated, tmp_path):
    """Only headers, labels and municipality names reach the draft: no identifying cell value."""
    from pipelines.ingest.readers import read_raw

    root, demo_file = generated
    draft = draft_study(root / "raw", "drafted", tmp_path / "studies")
    text = "\n".join(p.read_text(encoding="utf-8") for p in [draft.study_file, *draft.codebook_files]).casefold()
    ref = yaml.safe_load((PROJECT_ROOT / "pipelines" / "reference" / "municipalities_ee.yaml").read_text("utf-8"))
    for place in sorted([*ref, *(m for names in ref.values() for m in names)], key=len, reverse=True):
        text = text.replace(place.casefold(), " ")  # place names are allowed (and some are surnames too)
    study = load_study(demo_file)
    books = load_codebooks(study)
    for item in study.inputs:
        frame = read_raw(study.raw_path / item.path, study.sources[item.source]).frame
        cb = books[item.instrument]
        for name, var in cb.variables.items():
            if var.role not in ("direct_identifier", "free_text") and name != "school":
                continue
            for column in var.source_columns(item.source):
                if column not in frame:
                    continue
                values = [v.strip() for v in frame[column].dropna().astype(str).unique()]
                leaked = any(re.search(rf"(?<!\w){re.escape(v.casefold())}(?!\w)", text)
                             for v in values if len(v) >= 4 and not v.replace(".", "").isdigit())
                assert not leaked, f"a value of {item.path}:{name} is in the draft"  # never the value itself


def test_drafted_study_loads_and_check_names_what_is_left(generated, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    root, _ = generated
    result = CliRunner().invoke(app, ["init", "--raw", str(root / "raw"), "--study", "drafted",
                                      "--studies-dir", str(tmp_path / "studies")])
    assert result.exit_code == 0, result.output  # drafted; check's findings are what is left to decide
    assert "the draft is written" in " ".join(result.output.split())
    again = CliRunner().invoke(app, ["init", "--raw", str(root / "raw"), "--study", "drafted",
                                     "--studies-dir", str(tmp_path / "studies")])
    assert again.exit_code == 2 and "exists" in again.output  # never overwrites a draft silently
    result = CliRunner().invoke(app, ["check", "--study", str(tmp_path / "studies" / "drafted.yaml")])
    # the drafted key file does not exist yet: check says so, names the key, exits 2
    assert result.exit_code == 2, result.output
    assert "secret" in result.output and "key new" in result.output


@pytest.mark.parametrize("spelling, official", [
    ("Võru lv", "Võru linn"), ("VORU VALD", "Võru vald"), ("Antsla", "Antsla vald"),
    ("Tartu linnavalitsus", "Tartu linn"), ("Väike Maarja vald", "Väike-Maarja vald"), ("Таллинн", "Tallinn"),
    ("Люганузе", "Lüganuse vald"), ("Кохтла-Ярве", "Kohtla-Järve linn"), ("Нарва-Йыэсуу", "Narva-Jõesuu linn"),
    ("Rakvere", None), ("Atlantis", None),
])
def test_municipality_spellings(spelling, official):
    import yaml as _yaml

    ref = _yaml.safe_load((PROJECT_ROOT / "pipelines" / "reference" / "municipalities_ee.yaml").read_text("utf-8"))
    reference = {m: c for c, names in ref.items() for m in names}
    assert match_municipality(spelling, reference)[0] == official


def test_folding():
    assert fold_text("Õpilase  ISIKUKOOD") == "opilase isikukood"
    assert fold_text("Пол") == "pol"


def _drop_csv_columns(src: Path, dst: Path, drop: set[str]) -> None:
    """A copy of a ';'-separated cp1257 export without some columns (cells never leave memory)."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(src.read_bytes().decode("cp1257")), delimiter=";"))
    keep = [i for i, c in enumerate(rows[0]) if c not in drop]
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(out.getvalue().encode("cp1257"))


def test_check_finds_absent_columns_indicators_terms_files_and_key(generated, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    root, demo_file = generated
    data = yaml.safe_load(demo_file.read_text(encoding="utf-8"))
    # one county's pupils only, without parent_abroad (a persona indicator) and repeated_grade (a model term)
    _drop_csv_columns(root / "raw" / "laane-viru" / "kaardistus_2023.csv", tmp_path / "raw" / "lv" / "p.csv",
                      {"G3Q02", "G2Q04"})
    data["raw_dir"] = str(tmp_path / "raw")
    data["inputs"] = [{"instrument": "pupils", "wave": "baseline", "county": "laane_viru",
                       "source": "laaneviru_ls", "path": "lv/p.csv"},
                      {"instrument": "pupils", "wave": "baseline", "county": "laane_viru",
                       "source": "laaneviru_ls", "path": "lv/not_there.csv"}]
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--study", str(path)])
    out = " ".join(result.output.split())
    assert result.exit_code == 2, out
    assert "lv/p.csv: 2 codebook column(s) absent" in out and "parent_abroad (G3Q02)" in out
    assert "plan.personas.indicators.6: 'parent_abroad' needs parent_abroad, absent from every pupils file: " \
           "the indicator will be dropped" in out
    assert "warning: " + str(path) + ": plan.personas.indicators.6" in out
    assert "error: " + str(path) + ": plan.models.0.terms.3: 'repeated_grade'" in out
    assert "the term cannot be estimated" in out
    assert "inputs.1.path: 'lv/not_there.csv' not found" in out
    assert "inputs.1.wave: 'lv/not_there.csv' has the same instrument, wave and county as inputs.0" in out

    # the same study with the column back and the missing file gone: warnings only, exit 0
    data["inputs"] = data["inputs"][:1]
    _drop_csv_columns(root / "raw" / "laane-viru" / "kaardistus_2023.csv", tmp_path / "raw" / "lv" / "p.csv",
                      {"G3Q02"})
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--study", str(path)])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert "will be dropped" in out and "ok:" in out

    # no key: an error naming the secret
    data["demo"] = False
    data["secret"] = {"env": "MAPSTUDY_TEST_NO_SUCH_KEY", "file": str(tmp_path / "nokey.key")}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--study", str(path)])
    assert result.exit_code == 2 and f"{path}: secret: no pseudonymisation key" in " ".join(result.output.split())


def test_init_matches_columns_by_label_folded_and_fuzzy_spellings(tmp_path):
    import pyreadstat

    raw = tmp_path / "raw" / "ida-viru"
    raw.mkdir(parents=True)
    frame = pd.DataFrame({
        "q1": ["x"] * 3, "q2": ["x"] * 3, "q3": ["x"] * 3,  # identity fields, matched by their labels
        "kov_nimi": ["Narva linn", "Sillamäe", "Нарва"],
        "Sugu": [1.0, 2.0, 1.0],
        "q7": [1.0, 2.0, 3.0],
        "Kodune_keel": [1.0, 2.0, 1.0],
        "puudumised_kokku": [3.0, 0.0, 12.0],
        "Mitu_puudulikku_poolaastahinnet_opilasel": [0.0, 1.0, 0.0],
        "lemmikvarv": ["x"] * 3,
    })
    labels = ["Isikukood", "Eesnimi", "Фамилия", "Omavalitsus", "Пол", "Hariduslik tugi", None,
              "Põhjuseta puudutud tunnid poolaastas", None, "Lemmikvärv"]
    pyreadstat.write_sav(frame, str(raw / "opilased_2025.sav"), column_labels=labels,
                         variable_value_labels={"Sugu": {1.0: "poiss", 2.0: "tüdruk"},
                                                "q7": {1.0: "üldine tugi", 2.0: "tõhustatud tugi", 3.0: "ei tea mis"}})
    draft = draft_study(tmp_path / "raw", "ida", tmp_path / "studies")
    study = yaml.safe_load(draft.study_file.read_text(encoding="utf-8"))
    assert study["inputs"] == [{"instrument": "pupils", "wave": "baseline", "county": "ida_viru",
                                "source": "ida_viru_sav", "path": "ida-viru/opilased_2025.sav"}]
    assert study["sources"] == {"ida_viru_sav": {"format": "sav"}}
    names = [m["name"] for m in study["counties"]["ida_viru"]["municipalities"]]
    assert "Narva linn" in names and "Sillamäe linn" in names
    text = (tmp_path / "studies" / "ida" / "codebooks" / "pupils.yaml").read_text(encoding="utf-8")
    overrides = yaml.safe_load(text)["variables"]
    expected = {"personal_code": "q1", "first_name": "q2", "last_name": "q3", "municipality": "kov_nimi",
                "sex": "Sugu", "sen_support": "q7", "home_language": "Kodune_keel",
                "unexcused_absences": "puudumised_kokku", "failing_grades": "Mitu_puudulikku_poolaastahinnet_opilasel"}
    assert {k: v["source"]["ida_viru_sav"] for k, v in overrides.items()} == expected
    assert '"lemmikvarv"' in text  # unmatched: a comment for the researcher
    assert "confidence" in text and "similar spelling" in text and "Russian label translated" in text
    assert '"ei tea mis"' in text  # a value label the value set does not spell
    # the draft loads: check runs on it and names only what is left (the key)
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["check", "--study", str(draft.study_file)])
    out = " ".join(result.output.split())
    assert result.exit_code == 2 and "secret" in out and "contradicts" not in out, out


def test_a_municipality_match_holding_other_values_writes_none_of_them(tmp_path):
    import pyreadstat

    raw = tmp_path / "raw" / "x"
    raw.mkdir(parents=True)
    streets = [f"Canarystreet {i}" for i in range(12)]  # stand-ins for addresses in a mismatched column
    frame = pd.DataFrame({"isikukood": ["x"] * 12, "kov": streets, "sugu": [1.0] * 12, "klassiaste": [5.0] * 12})
    pyreadstat.write_sav(frame, str(raw / "opilased_2023.sav"), column_labels=["Isikukood", "Omavalitsus", None, None])
    draft = draft_study(tmp_path / "raw", "x", tmp_path / "studies")
    text = "\n".join(p.read_text(encoding="utf-8") for p in [draft.study_file, *draft.codebook_files])
    assert "Canarystreet" not in text and "canarystreet" not in text
    assert any("not municipality names" in t for t in draft.todo)


def test_a_column_renamed_in_one_wave_keeps_the_base_name_too(generated, tmp_path):
    """The study's own column names replace the base's for a source, so the draft lists both."""
    root, _ = generated
    raw = tmp_path / "raw" / "lv"
    raw.mkdir(parents=True)
    for name in ("kaardistus_2023.csv", "kaardistus_2024.csv"):
        data = (root / "raw" / "laane-viru" / name).read_bytes()
        if name.endswith("2024.csv"):
            first, rest = data.split(b"\n", 1)
            data = first.replace(b";G2Q03;", b";G2Q03x;") + b"\n" + rest  # the header only
        (raw / name).write_bytes(data)
    draft = draft_study(tmp_path / "raw", "renamed", tmp_path / "studies")
    text = (tmp_path / "studies" / "renamed" / "codebooks" / "pupils.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text)["variables"] == {"failing_grades": {"source": {"lv_csv": ["G2Q03", "G2Q03x"]}}}
    data = yaml.safe_load(draft.study_file.read_text(encoding="utf-8"))
    assert data["sources"]["lv_csv"]["columns_like"] == "laaneviru_ls"
    data["secret"] = {"env": "MAPSTUDY_TEST_NO_KEY"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    books = load_codebooks(load_study(path))
    assert books["pupils"].variables["failing_grades"].source_columns("lv_csv") == ["G2Q03", "G2Q03x"]
    assert books["pupils"].variables["grade"].source_columns("lv_csv") == ["G1Q13"]


def test_questionnaire_codes_match_only_with_a_suffix_added():
    from pipelines.draft import _candidates, base_codebooks

    books = base_codebooks()
    assert [m.variable for m in _candidates("G2Q01v2", None, books["pilot"])] == ["unexcused_absences"]
    assert _candidates("G2Q09", None, books["pupils"]) == []  # a neighbour's code is not a match

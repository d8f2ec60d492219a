"""`mapstudy export`: the shareable tables for researchers, read back in every format.

Two studies: the demo-like small study (pupils and pilot) and the pupils_only shape (no
pilot table). Each is protected by the disclosure-control asset, then exported; the
tests read every file back (pyreadstat for .sav/.dta, pandas for both CSV dialects,
python-calamine for .xlsx, frictionless for datapackage.json) and, where installed, open
the .sav with GNU PSPP and the .sav/.dta with R's haven.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import load_codebooks, load_study
from pipelines.privacy.export import (BAND_DASH, MISSING_CODE, describe_columns, parse_formats, write_csv_dialect,
                                      write_export)
from pipelines.warehouse import read_table


def _protected(study_file: Path) -> tuple:
    import dagster as dg

    from pipelines.assets.privacy import build_protect_microdata
    from pipelines.privacy.shareable import shared_instruments
    from pipelines.resources import StudyResource

    study = load_study(study_file)
    books = load_codebooks(study)
    result = dg.materialize([build_protect_microdata(shared_instruments(books))],
                            resources={"study": StudyResource(study_file=str(study_file))})
    assert result.success
    return study, books


def _copy_of(small_study, root: Path) -> Path:
    study, _, _ = small_study
    processed = root / "processed"
    processed.mkdir(parents=True)
    shutil.copy(study.db_path, processed / study.db_path.name)
    data = yaml.safe_load(study.path.read_text(encoding="utf-8"))
    data["processed_dir"] = str(processed)
    study_file = processed / "study.yaml"
    study_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return study_file


@pytest.fixture(scope="module")
def demo_export(small_study, tmp_path_factory):
    """The small demo-like study protected, exported in every format (Estonian, Excel dialect) by the CLI."""
    root = tmp_path_factory.mktemp("export_demo")
    study_file = _copy_of(small_study, root)
    study, books = _protected(study_file)
    out = root / "out"
    cli = CliRunner().invoke(app, ["export", "--study", str(study_file), "--out", str(out), "--format", "all",
                                   "--lang", "et", "--dialect", "excel-et"])
    assert cli.exit_code == 0, cli.output
    return study, books, study_file, out


@pytest.fixture(scope="module")
def pupils_only_export(tmp_path_factory):
    """The pupils_only shape (no pilot table), ingested, protected and exported in English, RFC 4180."""
    from pipelines.ingest.stage import run_ingest
    from pipelines.synth.shapes import make_shape

    root = tmp_path_factory.mktemp("export_pupils_only")
    study_file, _ = make_shape("pupils_only", root, pupils=300, seed=11)
    data = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    data.setdefault("privacy", {})["keep"] = []  # the fixed recoding (bands), where the demo export has the lattice
    study_file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    study = load_study(study_file)
    run_ingest(study, load_codebooks(study))
    study, books = _protected(study_file)
    out = root / "out"
    write_export(study, books, out, ["all"], lang="en", dialect="rfc4180")
    return study, books, study_file, out


def _expected_numbers(study, books, name):
    table = read_table(study.db_path, f"share.{name}")
    return table, {c.name: c for c in describe_columns(table, books[name], study)}


@pytest.mark.parametrize("which", ["demo_export", "pupils_only_export"])
def test_every_format_is_written_and_reads_back_with_its_labels(which, request):
    study, books, _, out = request.getfixturevalue(which)
    lang = "et" if which == "demo_export" else "en"
    names = ["pupils", "pilot"] if which == "demo_export" else ["pupils"]
    expected_files = {f"{n}.{f}" for n in names for f in ("sav", "dta", "parquet", "csv")}
    expected_files |= {"data.xlsx", "codebook.html", "datapackage.json", "README.md"}
    assert {p.name for p in out.iterdir()} == expected_files
    assert not list(out.parent.glob(".*partial"))
    for name in names:
        table, columns = _expected_numbers(study, books, name)
        # Parquet: the shareable table as it is.
        parquet = pd.read_parquet(out / f"{name}.parquet")
        pd.testing.assert_frame_equal(parquet.reset_index(drop=True), table.reset_index(drop=True), check_dtype=False)
        # .sav: numbers, variable and value labels in the language, -9 declared missing, measure levels.
        sav, meta = pyreadstat.read_sav(str(out / f"{name}.sav"), user_missing=True)
        assert len(sav) == len(table)
        coded = [c for c, col in columns.items() if col.kind == "coded" and col.codes]
        assert "wave" in coded and len(coded) >= 3
        for column in coded:
            col = columns[column]
            labels = meta.variable_value_labels[column]
            assert labels[float(MISSING_CODE)] and meta.missing_ranges[column] == [{"lo": -9.0, "hi": -9.0}]
            numbers = col.number_of(table[column]).fillna(MISSING_CODE).to_numpy(dtype=float)
            np.testing.assert_array_equal(sav[column].to_numpy(dtype=float), numbers)
            assert {labels[n] for n in np.unique(numbers)} <= {lab[lang] for _, lab in col.codes.values()} | {
                labels[float(MISSING_CODE)]}
            assert meta.column_names_to_labels[column] == col.label[lang]
        assert meta.variable_measure["wave"] == "ordinal" and meta.variable_measure["county"] == "nominal"
        bands = [c for c in table.columns if table[c].astype("string").str.fullmatch(r"\d{1,3}-\d{1,3}").any()]
        for column in bands:  # school-age bands and stages: ordinal, labelled with an en dash
            assert meta.variable_measure[column] == "ordinal"
            assert any(BAND_DASH in v for v in meta.variable_value_labels[column].values())
        if name == "pupils":
            assert meta.variable_measure["unexcused_absences"] == "scale"
        # .dta: the same numbers with value labels, missing as Stata's system missing.
        dta, dmeta = pyreadstat.read_dta(str(out / f"{name}.dta"))
        col = columns["municipality"]
        assert set(dmeta.variable_value_labels["municipality"].values()) == {lab[lang] for _, lab in col.codes.values()}
        np.testing.assert_array_equal(dta["municipality"].to_numpy(dtype=float),
                                      col.number_of(table["municipality"]).to_numpy(dtype=float, na_value=np.nan))
    # Estonian letters intact in the labels (the demo's municipalities and value labels have them).
    _, meta = pyreadstat.read_sav(str(out / "pupils.sav"), metadataonly=True)
    all_labels = " ".join(v for labels in meta.variable_value_labels.values() for v in labels.values())
    if lang == "et":
        assert re.search("[õäöü]", all_labels) and "tüdruk" in all_labels
    if which == "pupils_only_export":  # the fixed recoding: age bands and school stages
        assert f"7{BAND_DASH}9" in all_labels and f"4{BAND_DASH}6" in all_labels


def test_excel_dialect_csv_opens_as_columns_with_decimal_commas_and_bands_as_text(demo_export, tmp_path):
    study, books, _, out = demo_export
    raw = (out / "pupils.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    csv = pd.read_csv(out / "pupils.csv", sep=";", decimal=",", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    table = read_table(study.db_path, "share.pupils")
    assert list(csv.columns) == list(table.columns) and len(csv) == len(table)
    assert not csv.apply(lambda c: c.str.fullmatch(r"\d{1,3}-\d{1,3}").any()).any()  # no band Excel would take for a date
    # A number with decimals, a band and formula-like text in the Excel dialect, read back by pandas.
    frame = pd.DataFrame({"score": [1.5, 2.25, None], "band": [f"7{BAND_DASH}9", "10–12", None],
                          "note": ["=HYPERLINK(\"x\")", "@SUM(A1)", "-3"]})
    write_csv_dialect(frame, tmp_path / "x.csv", "excel-et")
    text = (tmp_path / "x.csv").read_text(encoding="utf-8-sig")
    assert "1,5;" in text and "2,25;" in text
    back = pd.read_csv(tmp_path / "x.csv", sep=";", decimal=",", encoding="utf-8-sig", dtype={"note": str})
    assert back["score"].tolist()[:2] == [1.5, 2.25]
    assert back["note"].tolist() == ["'=HYPERLINK(\"x\")", "'@SUM(A1)", "-3"]
    write_csv_dialect(frame, tmp_path / "y.csv", "rfc4180")
    plain = (tmp_path / "y.csv").read_bytes()
    assert not plain.startswith(b"\xef\xbb\xbf") and b"1.5," in plain and b"'=HYPERLINK" in plain


def test_rfc4180_csv_and_xlsx_read_back(pupils_only_export):
    from python_calamine import CalamineWorkbook

    study, books, _, out = pupils_only_export
    table, columns = _expected_numbers(study, books, "pupils")
    csv = pd.read_csv(out / "pupils.csv", dtype=str, keep_default_na=False)
    assert len(csv) == len(table)
    sex = columns["sex"].label_of(table["sex"], "en").fillna("")
    assert csv["sex"].tolist() == sex.tolist()
    grade = columns["grade"].label_of(table["grade"], "en").fillna("")
    assert csv["grade"].tolist() == grade.tolist() and csv["grade"].str.contains(BAND_DASH).any()
    book = CalamineWorkbook.from_path(str(out / "data.xlsx"))
    assert book.sheet_names == ["pupils", "codebook"]
    rows = book.get_sheet_by_name("pupils").to_python()
    assert rows[0] == list(table.columns) and len(rows) == len(table) + 1
    codebook = pd.DataFrame(book.get_sheet_by_name("codebook").to_python()[1:],
                            columns=book.get_sheet_by_name("codebook").to_python()[0])
    assert set(codebook["variable"]) == set(table.columns)
    row = codebook[codebook["variable"] == "sex"].iloc[0]
    assert row["label_et"] == "Sugu" and "girl" in row["values"]
    texts = [cell for r in rows + book.get_sheet_by_name("codebook").to_python() for cell in r if isinstance(cell, str)]
    assert not [t for t in texts if t[:1] in ("=", "+", "@") or (t[:1] == "-" and not re.fullmatch(r"-\d+", t))]


def _published_counts(html: str) -> list[int]:
    return [int(n) for n in re.findall(r": (\d+)(?:<br>|</td>)", html)]


@pytest.mark.parametrize("which", ["demo_export", "pupils_only_export"])
def test_codebook_validates_and_shows_no_small_count(which, request):
    import frictionless

    study, _, _, out = request.getfixturevalue(which)
    descriptor = json.loads((out / "datapackage.json").read_text(encoding="utf-8"))
    assert descriptor["mapstudy:fingerprint"] == descriptor["mapstudy:fingerprint"].strip()
    csv_resources = [r for r in descriptor["resources"] if r["format"] == "csv"]
    assert csv_resources and all(r["schema"]["fields"] for r in csv_resources)
    report = frictionless.validate(out / "datapackage.json")  # the descriptor and every CSV/Parquet cell
    assert report.valid, report.flatten(["resourceName", "type", "message"])[:5]
    html = (out / "codebook.html").read_text(encoding="utf-8")
    counts = _published_counts(html)
    assert counts and not [n for n in counts if 1 <= n < study.privacy.min_cell]
    for field in (f for r in csv_resources for f in r["schema"]["fields"]):
        for shown in field.get("mapstudy:counts", {}).values():
            assert not (shown.isdigit() and 1 <= int(shown) < study.privacy.min_cell)
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "Run fingerprint" in readme and "What protection cost" in readme and "Frictionless" in readme


def test_export_refuses_unknown_options_and_an_existing_folder(demo_export, tmp_path):
    _, _, study_file, out = demo_export
    for args in (["--format", "spss"], ["--lang", "ru"], ["--dialect", "excel"]):
        cli = CliRunner().invoke(app, ["export", "--study", str(study_file), "--out", str(tmp_path / "x"), *args])
        assert cli.exit_code == 2 and "error" in cli.output and not (tmp_path / "x").exists()
    again = CliRunner().invoke(app, ["export", "--study", str(study_file), "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    assert parse_formats(["sav,csv", "dta"]) == ["sav", "dta", "csv"] and len(parse_formats(["all"])) == 5


def test_export_refuses_a_table_below_k_and_writes_nothing(demo_export, tmp_path):
    from pipelines.privacy.release import ReleaseError
    from pipelines.warehouse import write_tables

    study, books, _, _ = demo_export
    original = read_table(study.db_path, "share.pupils")
    broken = original.copy()
    broken.loc[0, "municipality"] = "Nowhere"
    write_tables(study.db_path, {"share.pupils": broken})
    try:
        with pytest.raises(ReleaseError, match=r"below k = 5"):
            write_export(study, books, tmp_path / "release", ["sav"])
        assert not list(tmp_path.iterdir())
    finally:
        write_tables(study.db_path, {"share.pupils": original})


def test_pspp_shows_estonian_value_labels(demo_export, tmp_path):
    if shutil.which("pspp") is None:
        pytest.skip("GNU PSPP is not installed (apt-get install pspp)")
    _, _, _, out = demo_export
    syntax = tmp_path / "dict.sps"
    syntax.write_text(f'GET FILE="{out / "pupils.sav"}".\nDISPLAY DICTIONARY.\n', encoding="utf-8")
    done = subprocess.run(["pspp", "-O", "format=txt", "-o", str(tmp_path / "dict.txt"), str(syntax)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    listing = (tmp_path / "dict.txt").read_text(encoding="utf-8")
    assert "tüdruk" in listing and "Omavalitsus" in listing and "puudub või varjatud" in listing
    assert re.search(r"sex\s*\|.*Nominal", listing)


def test_r_haven_reads_the_labels(pupils_only_export):
    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed")
    probe = subprocess.run(["Rscript", "-e", "library(haven)"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("R's haven is not installed (apt-get install r-cran-haven)")
    _, _, _, out = pupils_only_export
    script = (f'library(haven); s <- read_sav("{out / "pupils.sav"}", user_na = TRUE); '
              f'd <- read_dta("{out / "pupils.dta"}"); '
              'cat(names(attr(s$sex, "labels")), sep = "\\n"); cat(attr(s$sex, "na_values"), "\\n"); '
              'cat(names(attr(d$sex, "labels")), sep = "\\n"); cat(nrow(s) == nrow(d), "\\n")')
    done = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    lines = done.stdout.split("\n")
    assert "girl" in lines and "boy" in lines and "-9 " in lines and "TRUE " in lines


def test_export_waits_for_the_study_lock(demo_export, tmp_path):
    from pipelines.locks import study_lock

    study, _, study_file, _ = demo_export
    with study_lock(study, wait=0):
        cli = CliRunner().invoke(app, ["--wait", "0", "export", "--study", str(study_file),
                                       "--out", str(tmp_path / "x"), "--format", "parquet"])
    assert cli.exit_code == 2 and "another mapstudy command" in cli.output and not (tmp_path / "x").exists()

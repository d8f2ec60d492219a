"""Tests of the demo-study generator (pipelines/synth): determinism, readable files in the
declared formats, identifiers, spellings, planted defects and planted effects."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyreadstat
import pytest
import statsmodels.api as sm
from stdnum.ee import ik

from pipelines.privacy.identity import code_identity
from pipelines.privacy.pseudonyms import PseudonymKeys, demo_secret_hex
from pipelines.synth import cohort, pilot
from pipelines.synth.config import Spellings, load_study_files, normalise_spelling
from pipelines.synth.generate import generate_study
from pipelines.synth.schools import municipalities, schools
from pipelines.synth.truth import DROPOUT_LOG_ODDS, INDICATORS

REPO = Path(__file__).resolve().parents[1]
SIZE = 300
SEED = 7


def _project(root: Path) -> Path:
    for folder in ("studies", "codebooks"):
        shutil.copytree(REPO / folder, root / folder)
    return root


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = _project(tmp_path_factory.mktemp("synth"))
    truth = generate_study(root / "studies" / "demo.yaml", root, pupils=SIZE, seed=SEED)
    return root, truth


@pytest.fixture(scope="module")
def files(generated):
    root, _ = generated
    return load_study_files(root / "studies" / "demo.yaml", root)


def _read(files, entry) -> pd.DataFrame:
    """An input file as strings/numbers with its source's column names."""
    return _read_path(files.raw_dir / entry["path"], json.dumps(files.study["sources"][entry["source"]]))


@functools.lru_cache(maxsize=64)
def _read_path(path: Path, source_json: str) -> pd.DataFrame:
    source = json.loads(source_json)
    if source["format"] == "sav":
        return pyreadstat.read_sav(str(path), user_missing=True)[0]
    if source["format"] == "dta":
        return pyreadstat.read_dta(str(path))[0]
    if source["format"] == "csv":
        with path.open(encoding=source["encoding"], newline="") as handle:
            return pd.DataFrame(list(csv.DictReader(handle, delimiter=source["delimiter"])), dtype=object)
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    return pd.DataFrame(rows[1:], columns=rows[0], dtype=object)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.parts[len(root.parts)] in ("data", ".mapstudy")}


def test_same_seed_and_size_give_byte_identical_files(generated, tmp_path):
    root, _ = generated
    again = _project(tmp_path / "again")
    generate_study(again / "studies" / "demo.yaml", again, pupils=SIZE, seed=SEED)
    first, second = _hashes(root), _hashes(again)
    assert len(first) == 17  # 15 raw files, the truth and the key
    assert first == second


def test_only_the_listed_raw_files_are_written_and_truth_is_outside_raw(generated, files):
    root, _ = generated
    written = sorted(str(p.relative_to(files.raw_dir)) for p in files.raw_dir.rglob("*") if p.is_file())
    assert written == sorted(entry["path"] for entry in files.study["inputs"])
    assert (root / "data" / "truth" / "demo.json").is_file()
    assert not list(files.raw_dir.rglob("*.json"))
    assert files.key_file.read_text(encoding="utf-8").strip() == demo_secret_hex(SEED)


def test_truth_has_every_key_and_reloads_from_json(generated):
    root, truth = generated
    assert set(truth) == {"study", "seed", "pupils", "counts", "defects", "dropout", "personas", "pilot", "canaries",
                          "specialists", "services"}
    assert json.loads((root / "data" / "truth" / "demo.json").read_text(encoding="utf-8")) == truth
    assert truth["dropout"]["log_odds"] == pytest.approx(DROPOUT_LOG_ODDS)
    assert set(truth["dropout"]["log_odds"]) == {"(Intercept)", "male", "chronic_absence", "failing_any",
                                                 "repeated_grade", "low_income", "hobby_education"}
    assert truth["personas"]["k"] == 4 and sum(truth["personas"]["shares"]) == pytest.approx(1.0)
    assert len(truth["personas"]["labels"]) == SIZE
    assert 0.7 < truth["personas"]["ideal_ari"] < 0.97
    assert truth["pilot"] == {"effects": {"sdl": {"did": 0.35}, "unexcused_absences": {"did": -6.0}},
                              "null_outcomes": ["failing_grades", "risk_level"]}
    assert {"names", "personal_codes", "emails", "phones", "addresses", "birth_dates"} <= set(truth["canaries"])
    assert set(truth["counts"]) == {"pupils", "pilot", "specialists", "services"}


def test_rows_written_match_the_files(generated, files):
    _, truth = generated
    rows: dict[tuple[str, str], int] = {}
    for entry in files.study["inputs"]:
        key = (entry["instrument"], entry.get("wave") or "all")
        rows[key] = rows.get(key, 0) + len(_read(files, entry))
    for (instrument, wave), count in rows.items():
        assert truth["counts"][instrument][wave]["rows_written"] == count
    pupils = truth["counts"]["pupils"]["baseline"]
    assert pupils["rows_written"] == SIZE + pupils["duplicates_planted"] + pupils["rejects_planted"]


def test_personal_codes_valid_except_planted_and_labels_are_ingest_pseudonyms(generated, files):
    _, truth = generated
    keys = PseudonymKeys.from_secret(bytes.fromhex(demo_secret_hex(SEED)))
    for wave in ("baseline", "followup"):
        invalid = 0
        pseudonyms = set()
        for entry in files.inputs("pupils"):
            if entry["wave"] != wave:
                continue
            frame = _read(files, entry)
            column = files.column("pupils", "personal_code", entry["source"], wave)
            codes = [str(c) for c in frame[column]]
            invalid += sum(not ik.is_valid(c) for c in codes)
            pseudonyms |= {keys.pseudonym("pupil", code_identity(c)) for c in codes if ik.is_valid(c)}
        assert invalid == truth["defects"]["invalid_personal_code"][f"pupils/{wave}"] > 0
        if wave == "baseline":  # every labelled pupil appears, except those planted with a bad code
            # a pupil planted with a bad code has no other row in the wave (defects never
            # share rows), so exactly the planted ones are missing under the code pseudonym
            assert len(set(truth["personas"]["labels"]) - pseudonyms) == invalid
    for code in truth["canaries"]["personal_codes"][:50]:
        assert len(code) == 11 and code.isdigit()


def test_codes_agree_with_sex_and_birth_date(files):
    entry = next(e for e in files.inputs("pupils") if e["source"] == "voru_sav")
    frame = _read(files, entry)
    valid = frame[frame["isikukood"].map(ik.is_valid)]
    assert (valid["isikukood"].map(ik.get_birth_date) == valid["synniaeg"]).all()
    male = valid["isikukood"].str[0].isin(["3", "5"])
    assert (male == (valid["sugu"] == 1)).all()


def _unmapped(files, spellings, instrument, entry, frame) -> int:
    count = 0
    for variable, spec in files.variables(instrument).items():
        if spec.get("type") != "categorical" or entry["source"] not in spec["source"]:
            continue
        column = files.column(instrument, variable, entry["source"], entry.get("wave"))
        missing = {normalise_spelling(m) for m in files.missing_codes(instrument, variable)}
        for value in frame[column]:
            if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if normalise_spelling(value) in missing:
                continue
            count += not spellings.maps(spec["values"], value)
    return count


def test_every_written_spelling_maps_except_planted_unmappable(generated, files):
    _, truth = generated
    spellings = Spellings(files.value_sets)
    planted = truth["defects"]["unmappable_category"]
    for entry in files.study["inputs"]:
        instrument = entry["instrument"]
        unmapped = _unmapped(files, spellings, instrument, entry, _read(files, entry))
        if instrument == "pupils":
            assert unmapped > 0
        else:
            assert unmapped == 0, entry["path"]
    totals = {}
    for entry in files.inputs("pupils"):
        totals[entry["wave"]] = totals.get(entry["wave"], 0) + _unmapped(
            files, spellings, "pupils", entry, _read(files, entry))
    assert totals == {w: planted[f"pupils/{w}"] for w in ("baseline", "followup")}


def test_municipalities_are_canonical_except_planted_variants_and_rejects(generated, files):
    _, truth = generated
    canonical = set(municipalities(files)["municipality"])
    for instrument in ("pupils", "pilot", "specialists", "services"):
        seen: dict[str, int] = {}
        for entry in files.inputs(instrument):
            wave = entry.get("wave") or "all"
            column = files.column(instrument, "municipality", entry["source"], entry.get("wave"))
            values = _read(files, entry)[column]
            seen[wave] = seen.get(wave, 0) + int((~values.isin(canonical)).sum())
        for wave, count in seen.items():
            key = f"{instrument}/{wave}"
            planted = sum(truth["defects"].get(c, {}).get(key, 0)
                          for c in ("municipality_variant", "missing_municipality", "unknown_municipality"))
            assert count == planted > 0


def test_laaneviru_followup_renames_the_absence_column(files):
    base = _read(files, next(e for e in files.inputs("pupils") if e["county"] == "laane_viru" and e["wave"] == "baseline"))
    follow = _read(files, next(e for e in files.inputs("pupils") if e["county"] == "laane_viru" and e["wave"] == "followup"))
    assert "G2Q02" in base.columns and "G2Q02b" not in base.columns
    assert "G2Q02b" in follow.columns and "G2Q02" not in follow.columns
    assert base["G1Q04"].str.match(r"^\d\d\.\d\d\.\d{4}$").all()


def test_tartu_writes_russian_rows_and_estonian_question_headers(generated, files):
    _, truth = generated
    entry = next(e for e in files.inputs("pupils") if e["county"] == "tartu" and e["wave"] == "baseline")
    frame = _read(files, entry)
    assert "Mitmendas klassis õpilane õpib?" in frame.columns
    russian = frame["Õpilase kodune keel"].isin(["русский"]).sum()
    assert russian == truth["defects"]["russian_rows"]["pupils/baseline"] > 0


def test_canaries_cover_identifiers_written(generated, files):
    _, truth = generated
    canaries = {k: set(v) for k, v in truth["canaries"].items()}
    entry = next(e for e in files.inputs("pupils") if e["source"] == "laaneviru_ls")
    frame = _read(files, entry)
    assert set(frame["G1Q05"]) - {""} <= canaries["emails"]
    assert set(frame["G1Q07"]) - {""} <= canaries["phones"]
    assert set(frame["G1Q08"]) - {""} <= canaries["addresses"]
    assert set(frame["G1Q04"]) <= canaries["birth_dates"]
    assert set(frame["G1Q01"]) <= canaries["personal_codes"]
    assert set(frame["G1Q02"].str.strip()) <= canaries["names"]
    assert any(n.endswith("le") for n in canaries["names"])  # inflected forms from the notes


def _population(n: int, seed: int):
    root_files = load_study_files(REPO / "studies" / "demo.yaml", REPO)
    rng = np.random.default_rng(seed)
    munis = municipalities(root_files)
    table = schools(rng, munis, n)
    base, indicators = cohort.baseline(rng, munis, table, n, dt.date(2023, 9, 1))
    return rng, base, indicators, root_files


def test_counts_agree_with_the_flags_they_derive_from():
    _, base, indicators, _ = _population(4000, 11)
    flag = {name: indicators[:, j] for j, name in enumerate(INDICATORS)}
    assert ((base["unexcused_absences"] >= 40) == (flag["chronic_absence"] == 1)).all()
    assert ((base["failing_grades"] >= 1) == (flag["failing_any"] == 1)).all()
    assert ((base["behaviour_incidents"] >= 3) == (flag["behaviour_any"] == 1)).all()
    assert ((base["sen_support"] >= 2) == (flag["sen_support_any"] == 1)).all()
    keyed = base[["motivation_1", "motivation_2", "motivation_4"]].sum(axis=1) + (6 - base["motivation_3"])
    assert ((keyed / 4 < 3) == (flag["low_motivation"] == 1)).all()
    assert 0.08 < (base["status"] == "dropped_out").mean() < 0.18
    assert base.loc[base["status"] != "dropped_out", "reason_work"].isna().all()


def test_pilot_effects_are_planted_as_difference_in_differences():
    rng, base, _, files = _population(8000, 5)
    items = [v for v, s in files.variables("pilot").items() if s.get("values") == "agree5"]
    reversed_items = [v for v in items if files.variables("pilot")[v].get("reverse")]
    chosen = pilot.select_pupils(rng, base)
    chosen = pd.concat([chosen] * 40, ignore_index=True)  # many draws of the same design: precise means
    waves = pilot.assessments(rng, chosen, base, items, reversed_items)
    means = {}
    for wave, frame in waves.items():
        keyed = frame[items].astype(float).copy()
        keyed[reversed_items] = 6 - keyed[reversed_items]
        frame = frame.assign(sdl=keyed.mean(axis=1))
        means[wave] = frame.groupby("group")[["sdl", "unexcused_absences", "failing_grades", "risk_level"]].mean()
    did = (means["post"].loc["pilot"] - means["pre"].loc["pilot"]) - (
        means["post"].loc["comparison"] - means["pre"].loc["comparison"])
    assert did["sdl"] == pytest.approx(0.35, abs=0.04)
    assert did["unexcused_absences"] == pytest.approx(-6.0, abs=1.2)
    assert abs(did["failing_grades"]) < 0.15 and abs(did["risk_level"]) < 0.08
    assert means["pre"].loc["pilot", "sdl"] < means["pre"].loc["comparison", "sdl"]


@pytest.mark.slow
def test_logistic_fit_recovers_the_planted_odds_ratios():
    _, base, indicators, _ = _population(60000, 3)
    flag = {name: indicators[:, j] for j, name in enumerate(INDICATORS)}
    design = pd.DataFrame({"male": (base["sex"] == "male").astype(int),
                           **{t: flag[t] for t in ("chronic_absence", "failing_any", "repeated_grade", "low_income",
                                                   "hobby_education")}})
    fit = sm.GLM(base["dropout"], sm.add_constant(design), family=sm.families.Binomial()).fit()
    # A marginal fit ignores the school intercept (SD 0.4): its coefficients are the
    # conditional ones shrunk by 1/sqrt(1 + c^2 sd^2), c = 16 sqrt(3) / (15 pi) (Zeger,
    # Liang & Albert 1988), about 0.973 here. The glmer comparison is the analyses' job.
    shrink = 1 / np.sqrt(1 + (16 * np.sqrt(3) / (15 * np.pi)) ** 2 * 0.4**2)
    for term, value in DROPOUT_LOG_ODDS.items():
        estimate = fit.params["const" if term == "(Intercept)" else term]
        assert estimate == pytest.approx(value * shrink, abs=0.1), term

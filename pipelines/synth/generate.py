"""Entry point of the demo-study generator: `generate_study(...)`.

Reads the study YAML and codebooks, draws the population with its planted truth, writes
every input file the study lists (in each source's own format, with counted defects),
the demo key file, and the ground truth to data/truth/<study>.json (never under the raw
folder). The same seed and size give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.privacy.identity import code_identity
from pipelines.privacy.pseudonyms import PseudonymKeys, demo_secret_hex, write_key_file
from pipelines.synth import cohort, mess, people, pilot, staff, writers
from pipelines.synth.config import Spellings, StudyFiles, load_study_files
from pipelines.synth.notes import write_notes
from pipelines.synth.schools import municipalities, schools
from pipelines.synth.truth import CLASS_SHARES, DROPOUT_LOG_ODDS, SCHOOL_SD, ideal_ari

STYLE_OF_FORMAT = {"sav": "numeric", "dta": "numeric", "csv": "limesurvey", "xlsx": "text"}
_CANARY_KIND = {"first_name": "names", "last_name": "names", "other_name": "names", "personal_code": "personal_codes",
                "email": "emails", "phone": "phones", "address": "addresses", "birth_date": "birth_dates"}


def _progress(callback: Callable[[str, float], None] | None, message: str, fraction: float) -> None:
    if callback is not None:
        callback(message, fraction)


def _population(rng: np.random.Generator, files: StudyFiles, pupils: int) -> dict[str, Any]:
    """Every table in codebook codes, before spelling and mess."""
    reference = dt.date.fromisoformat(str(files.study["reference_date"]))
    munis = municipalities(files)
    school_table = schools(rng, munis, pupils)
    base, indicators = cohort.baseline(rng, munis, school_table, pupils, reference)
    follow = cohort.followup(rng, base, indicators, munis, school_table, reference)
    for frame in (base, follow):
        russian_text = (frame["home_language"] == "ru").to_numpy() & _text_counties(files, "pupils")(frame)
        frame["_russian"] = russian_text
        frame["class_name"] = frame["grade"].astype(str) + frame["class_letter"]
        frame["notes"], inflected = write_notes(rng, frame["first_name"].to_numpy(), frame["last_name"].to_numpy(),
                                                frame["parent_name"].to_numpy(), frame["parent_phone"].to_numpy(),
                                                frame["email"].to_numpy(), russian_text)
        frame.attrs["inflected"] = inflected
    sdl = [v for v, spec in files.variables("pilot").items() if spec.get("values") == "agree5"]
    reversed_items = [v for v in sdl if files.variables("pilot")[v].get("reverse")]
    chosen = pilot.select_pupils(rng, base)
    pilot_waves = pilot.assessments(rng, chosen, base, sdl, reversed_items)
    managers = _case_managers(rng, munis)
    for frame in pilot_waves.values():
        frame["case_manager"] = frame["municipality"].map(managers)
        frame["_russian"] = (frame["home_language"] == "ru").to_numpy() & _text_counties(files, "pilot")(frame)
        frame["notes"], inflected = write_notes(rng, frame["first_name"].to_numpy(), frame["last_name"].to_numpy(),
                                                None, None, None, frame["_russian"].to_numpy())
        frame.attrs["inflected"] = inflected
    staff_waves = staff.specialists(rng, munis)
    for frame in staff_waves.values():
        frame["comments"], inflected = write_notes(rng, frame["first_name"].to_numpy(), frame["last_name"].to_numpy(),
                                                   None, frame["phone"].to_numpy(), frame["email"].to_numpy(), staff=True)
        frame.attrs["inflected"] = inflected
    outsiders = _outsiders(rng, base, follow, reference)
    cooperation_truth = staff.plant_cooperation(staff_waves)
    service_table, services_truth = staff.plant_service_gap(staff.services(rng, munis), base)
    return {"munis": munis, "baseline": base, "followup": follow, "indicators": indicators,
            "pilot": pilot_waves, "specialists": staff_waves, "services": service_table,
            "outsiders": outsiders, "planted": {"specialists": cooperation_truth, "services": services_truth}}


def _text_counties(files: StudyFiles, instrument: str) -> Callable[[pd.DataFrame], np.ndarray]:
    """Rows of counties whose export for this instrument is a text (xlsx) form."""
    counties = {entry.get("county") for entry in files.inputs(instrument)
                if files.study["sources"][entry["source"]]["format"] == "xlsx"}
    return lambda frame: frame["county"].isin(counties).to_numpy()


def _case_managers(rng: np.random.Generator, munis: pd.DataFrame) -> dict[str, str]:
    n = len(munis)
    first, last = people.draw_names(rng, np.full(n, "et"), (rng.random(n) < 0.2).astype(np.int8))
    return {m: f"{a} {b}" for m, a, b in zip(munis["municipality"], first, last)}


def _outsiders(rng: np.random.Generator, base: pd.DataFrame, follow: pd.DataFrame, reference: dt.date) -> pd.DataFrame:
    """Identities for rejected rows: people of no study municipality, codes unused elsewhere."""
    n = max(64, len(base) // 50)
    frame = pd.DataFrame({"home_language": np.full(n, "et"), "municipality": np.full(n, "Tallinn")})
    male = (rng.random(n) < 0.5).astype(np.int8)
    grade = rng.integers(5, 12, n)
    birth = people.school_birth_dates(rng, grade, np.zeros(n, dtype=np.int8), reference)
    out = pd.DataFrame(cohort.identities(rng, frame, birth, male))
    taken = set(base["personal_code"]) | set(follow["personal_code"])
    out = out[~out["personal_code"].isin(taken)].reset_index(drop=True)
    return out.drop(columns=["class_letter"])


def _spelled(files: StudyFiles, spellings: Spellings, instrument: str, source: str, style: str,
             frame: pd.DataFrame) -> pd.DataFrame:
    """The codebook variables this source has, spelled in the source's style."""
    out = {}
    russian = frame["_russian"].to_numpy() if "_russian" in frame else np.zeros(len(frame), dtype=bool)
    for variable, spec in files.variables(instrument).items():
        if source not in spec.get("source", {}) or variable not in frame:
            continue
        values = frame[variable].astype(object).to_numpy()
        if spec.get("type") == "categorical":
            set_style = "et" if style == "text" else style
            lookup = spellings.lookup(spec["values"], set_style)
            spelled = np.array([None if pd.isna(v) else lookup[v] for v in values], dtype=object)
            if style == "text" and russian.any():
                ru = spellings.lookup(spec["values"], "ru")
                spelled[russian] = [None if pd.isna(v) else ru[v] for v in values[russian]]
            values = spelled
        out[variable] = values
    spelled_frame = pd.DataFrame(out, index=range(len(frame)))
    spelled_frame["_russian"] = russian
    return spelled_frame


def _plant(rng: np.random.Generator, frame: pd.DataFrame, ctx: mess.MessContext, outsiders: pd.DataFrame) -> pd.DataFrame:
    """Every defect class that fits this instrument and format, then rows shuffled."""
    # The planters write single cells; a cell written into an Arrow-backed text column copies
    # the whole column (quadratic in pupils), so text columns are plain objects meanwhile.
    text = {c: frame[c].dtype for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)}
    frame = frame.astype({c: object for c in text})
    frame = _planted(rng, frame, ctx, outsiders)
    return frame.astype(text).iloc[rng.permutation(len(frame))].reset_index(drop=True)


def _planted(rng: np.random.Generator, frame: pd.DataFrame, ctx: mess.MessContext,
             outsiders: pd.DataFrame) -> pd.DataFrame:
    mess.municipality_variants(rng, frame, ctx)
    mess.missing_codes(rng, frame, ctx)
    mess.stray_spaces(rng, frame, ctx)
    mess.likert_as_text(rng, frame, ctx)
    if ctx.instrument in ("pupils", "pilot"):
        mess.out_of_range(rng, frame, ctx)
        mess.wrong_date_format(rng, frame, ctx)
    if ctx.instrument == "pupils":
        mess.invalid_codes(rng, frame, ctx)
        mess.unmappable(rng, frame, ctx)
        frame = mess.duplicates(rng, frame, ctx)
        frame = mess.rejects(rng, frame, ctx, outsiders)
    return frame


def _write(files: StudyFiles, spellings: Spellings, instrument: str, entry: dict, frame: pd.DataFrame, path: Path) -> None:
    source = entry["source"]
    options = files.study["sources"][source]
    wave = entry.get("wave")
    variables = files.variables(instrument)
    names = {v: files.column(instrument, v, source, wave) for v in frame.columns if not v.startswith("_")}
    renamed = frame.rename(columns=names)
    dates = [names[v] for v in names if variables[v].get("type") == "date"]
    fmt = options["format"]
    if fmt == "csv":
        writers.write_csv(renamed, path, options.get("delimiter", ";"), options.get("encoding", "utf-8"),
                          options.get("decimal", "."), options.get("date_format", "%d.%m.%Y"))
    elif fmt == "xlsx":
        writers.write_xlsx(renamed, path, sheet="Vastused" if instrument != "services" else "Teenused",
                           timestamp_column="Ajatempel" if instrument != "services" else None)
    else:
        labels = {names[v]: variables[v]["label"]["et"] for v in names}
        value_labels = {names[v]: {spellings.spell(s["values"], c, "numeric"): spellings.spell(s["values"], c, "label")
                                   for c in spellings.codes(s["values"])}
                        for v, s in variables.items() if v in names and s.get("type") == "categorical"}
        if fmt == "sav":
            missing = {names[v]: [c for c in files.missing_codes(instrument, v) if isinstance(c, int)]
                       for v in names if variables[v].get("type") in ("categorical", "integer", "number")}
            writers.write_sav(renamed, path, value_labels, missing, labels, dates)
        else:
            writers.write_dta(renamed, path, value_labels, labels, dates)


def _canaries(files: StudyFiles, instrument: str, frame: pd.DataFrame, inflected: set[str], into: dict[str, set]) -> None:
    variables = files.variables(instrument)
    for variable in frame.columns:
        kind = _CANARY_KIND.get(variables.get(variable, {}).get("identity", ""))
        if kind is None:
            continue
        for value in pd.unique(frame[variable].to_numpy(dtype=object)):  # sets: each distinct value once
            if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
                continue
            if kind == "birth_dates":
                stamp = pd.Timestamp(value)
                into[kind].update({stamp.strftime("%d.%m.%Y"), stamp.strftime("%Y-%m-%d")})
            elif kind == "names":
                into[kind].add(str(value).strip())
                into[kind].update(str(value).split())
            else:
                into[kind].add(str(value).strip())
    into["names"].update(inflected)


def _frame_for(population: dict[str, Any], entry: dict) -> pd.DataFrame:
    """The rows (codes) one input file holds: its instrument, wave and county."""
    instrument, wave, county = entry["instrument"], entry.get("wave"), entry.get("county")
    table = population[wave] if instrument == "pupils" else population[instrument]
    if isinstance(table, dict):
        table = table[wave]
    inflected = table.attrs.get("inflected", set())
    if county is not None:
        table = table[table["county"] == county]
    table = table.reset_index(drop=True)
    table.attrs["inflected"] = inflected
    return table


def generate_study(study_path: Path, project_root: Path, pupils: int = 3000, seed: int = 20231,
                   progress: Callable[[str, float], None] | None = None) -> dict:
    """Write the demo study's raw files, key file and ground truth; return the truth dict."""
    project_root = Path(project_root)
    files = load_study_files(Path(study_path), project_root)
    spellings = Spellings(files.value_sets)
    rng = np.random.default_rng(seed)
    _progress(progress, "drawing the population", 0.0)
    population = _population(rng, files, pupils)
    munis = population["munis"]
    aliases = dict(zip(munis["municipality"], munis["aliases"]))
    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    defects: dict[str, Counter] = defaultdict(Counter)
    canaries: dict[str, set] = defaultdict(set)
    entries = files.study["inputs"]
    for number, entry in enumerate(entries):
        instrument, wave = entry["instrument"], entry.get("wave") or "all"
        source = entry["source"]
        style = STYLE_OF_FORMAT[files.study["sources"][source]["format"]]
        _progress(progress, f"writing {entry['path']}", 0.1 + 0.85 * number / len(entries))
        table = _frame_for(population, entry)
        frame = _spelled(files, spellings, instrument, source, style, table)
        missing = {v: files.missing_codes(instrument, v) for v in frame.columns if not v.startswith("_")}
        ctx = mess.MessContext(instrument, style, files.variables(instrument), spellings, missing, aliases)
        frame = _plant(rng, frame, ctx, population["outsiders"])
        key = f"{instrument}/{wave}"
        for variable in frame.columns:
            if not variable.startswith("_") and entry.get("wave"):
                first_wave = files.codebooks[instrument]["waves"][0]
                if files.column(instrument, variable, source, wave) != files.column(instrument, variable, source, first_wave):
                    ctx.counts["column_renamed"] += 1
        if style == "text":
            ctx.counts["russian_rows"] += int(frame["_russian"].sum())
        for defect, count in ctx.counts.items():
            if count:
                defects[defect][key] += count
        tally = counts[instrument].setdefault(wave, {"rows_written": 0, "rejects_planted": 0, "duplicates_planted": 0})
        tally["rows_written"] += len(frame)
        tally["rejects_planted"] += ctx.counts["missing_municipality"] + ctx.counts["unknown_municipality"]
        tally["duplicates_planted"] += ctx.counts["duplicate_row"]
        path = files.raw_dir / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(files, spellings, instrument, entry, frame, path)
        _canaries(files, instrument, frame, table.attrs.get("inflected", set()), canaries)
    for frame in population["specialists"].values():
        canaries["names"].update(frame.attrs.get("inflected", set()))
    secret_hex = demo_secret_hex(seed)
    write_key_file(files.key_file, secret_hex)
    truth = _truth(files, seed, pupils, population, secret_hex, counts, defects, canaries)
    truth_path = project_root / "data" / "truth" / f"{files.study['study']}.json"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    _progress(progress, "done", 1.0)
    return truth


def _truth(files, seed, pupils, population, secret_hex, counts, defects, canaries) -> dict:
    base = population["baseline"]
    keys = PseudonymKeys.from_secret(bytes.fromhex(secret_hex))
    pupils_ids = keys.pseudonyms("pupil", [code_identity(code) for code in base["personal_code"]])  # = .pseudonym per code
    labels = {pseudonym: int(c) for pseudonym, c in zip(pupils_ids, base["persona"])}
    return {
        "study": files.study["study"],
        "seed": seed,
        "pupils": pupils,
        "counts": {k: dict(v) for k, v in counts.items()},
        "defects": {k: dict(sorted(v.items())) for k, v in sorted(defects.items())},
        "dropout": {"model": "dropout_main", "outcome": "dropout", "wave": "baseline",
                    "log_odds": dict(DROPOUT_LOG_ODDS), "school_sd": SCHOOL_SD},
        "personas": {"k": len(CLASS_SHARES), "shares": list(CLASS_SHARES),
                     "ideal_ari": round(ideal_ari(base["persona"].to_numpy(), population["indicators"]), 6),
                     "labels": labels},
        "pilot": {"effects": {"sdl": {"did": pilot.SDL_DID}, "unexcused_absences": {"did": pilot.ABSENCE_DID}},
                  "null_outcomes": list(pilot.NULL_OUTCOMES)},
        "canaries": {k: sorted(v) for k, v in sorted(canaries.items())},
        **population["planted"],
    }

"""Differently shaped generated studies, built from the demo generator's output.

Issue 10 asks that any study run by YAML alone; the tests prove it on studies of other
shapes than the demo. Each shape here is a study file, an optional folder of per-study
codebook overrides, raw exports and a ground truth, all under one root folder:

- ``demo``: the demo study as the generator writes it;
- ``pupils_only``: only the pupil mapping (no pilot, specialists or services) and a plan
  without evaluation;
- ``three_waves``: the pilot has three waves ``pre, mid, post`` (a mid file per county,
  the same pupils as pre, each measure taken from post with probability 1/2, so its
  expectation lies half-way), columns renamed from the mid wave on (the override
  codebook lists both names), and the pupils' outcome delivered as a 0/1 column
  ``left_school`` instead of the ``status`` answer (plan outcome ``dropout_flag``);
- ``sparse_county``: a fourth county (Ida-Viru) as the study's only county, its forms
  written in Russian (every categorical answer in its Russian alias, some municipalities
  in Cyrillic), three persona indicators absent from every pupil file, the pilot in
  that county only, and a source that borrows Tartu's column names (``columns_like``).

Shapes are derived by generating the demo (or a demo-like study) and transforming the
exports: each file is read back with pandas/pyreadstat, changed and written again with the
generator's own writers (same formats, fixed times). The truth file (``data/truth/<study>.json``)
keeps what still holds and says under ``shape`` what was changed. Every plan is small
(few persona starts and bootstrap samples, few imputations) so a whole run is quick.

``make_shape(name, root, pupils, seed) -> (study_file, truth)`` is the entry point.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
import yaml

from pipelines.config import PROJECT_ROOT
from pipelines.synth import writers
from pipelines.synth.config import StudyFiles, load_study_files, normalise_spelling

SHAPES: tuple[str, ...] = ("demo", "pupils_only", "three_waves", "sparse_county")

#: Sizes of the small plan every shape runs with (the demo's plan otherwise).
SMALL_PERSONAS = {"k_max": 4, "n_init": 6, "n_boot": 4}
SMALL_IMPUTATIONS = 5

#: three_waves: pilot variables whose column is renamed from the mid wave on.
RENAMED_PILOT = ("unexcused_absences", "sdl_plan_1", "sdl_plan_2", "sdl_mot_1")
#: three_waves: the 0/1 column that replaces the status answer, per source.
LEFT_SCHOOL_COLUMNS = {"voru_sav": "lahkus_koolist", "laaneviru_ls": "G6Q09",
                       "tartu_forms": "Kas õpilane lahkus õppeaasta jooksul koolist?"}
#: three_waves: the plan's name of the 0/1 outcome, and of the model on it.
OUTCOME = "dropout_flag"
MODEL = "leaving_main"
MID_SHARE = 0.5  # chance that a mid cell holds the post value (else the pre value)

#: sparse_county: indicators whose columns the county's pupil exports lack.
ABSENT_INDICATORS = ("parent_abroad", "bullying", "child_protection_case")
SPARSE_COUNTY = {
    "ida_viru": {
        "name": "Ida-Viru maakond",
        "project": "Ida-Viru kaasava hariduse võrgustik",
        "municipalities": [
            {"name": "Narva linn", "aliases": ["Narva", "Нарва"]},
            {"name": "Sillamäe linn", "aliases": ["Sillamäe", "Силламяэ"]},
            {"name": "Kohtla-Järve linn", "aliases": ["Kohtla-Järve", "Кохтла-Ярве"]},
            {"name": "Jõhvi vald", "aliases": ["Jõhvi", "Йыхви"]},
            {"name": "Narva-Jõesuu linn", "aliases": ["Narva-Jõesuu", "Нарва-Йыэсуу"]},
            {"name": "Alutaguse vald", "aliases": ["Alutaguse", "Алутагузе"]},
            {"name": "Lüganuse vald", "aliases": ["Lüganuse", "Люганузе"]},
            {"name": "Toila vald", "aliases": ["Toila", "Тойла"]},
        ],
    },
}
SPARSE_SOURCE = "idaviru_forms"  # in the final study; the generator writes its files as tartu_forms

_SHEET = {"services": "Teenused"}
_TIMESTAMP = "Ajatempel"


# --------------------------------------------------------------------------- study files


def _demo_study() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "studies" / "demo.yaml").read_text(encoding="utf-8"))


def _rooted(data: dict[str, Any], root: Path, name: str) -> dict[str, Any]:
    """The study with its name and every output path under root (as tests/conftest.py does)."""
    data = copy.deepcopy(data)
    data["study"] = name
    data["raw_dir"] = str(root / "raw")
    data["processed_dir"] = str(root / "processed")
    data["reports_dir"] = str(root / "reports")
    data["erasure_dir"] = str(root / "erasure")
    data["secret"] = {"env": "MAPSTUDY_TEST_KEY_UNSET", "file": str(root / "secrets" / f"{name}.key")}
    return data


def small_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with few persona starts, bootstrap samples and imputations."""
    plan = copy.deepcopy(plan)
    if plan.get("personas"):
        plan["personas"].update(SMALL_PERSONAS)
    plan["imputations"] = SMALL_IMPUTATIONS
    return plan


def _dump(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _generate(data: dict[str, Any], root: Path, pupils: int, seed: int) -> dict:
    """Run the demo generator on a (demo-like) study dict; the generation file is removed after."""
    from pipelines.synth.generate import generate_study

    path = _dump(data, root / "_generate.yaml")
    try:
        return generate_study(path, root, pupils=pupils, seed=seed)
    finally:
        path.unlink(missing_ok=True)


def _write_truth(root: Path, truth: dict) -> None:
    path = root / "data" / "truth" / f"{truth['study']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- exports


class Export:
    """One raw export read back: its columns as the file has them, and what the format keeps beside."""

    def __init__(self, frame: pd.DataFrame, fmt: str, meta: dict[str, Any] | None = None):
        self.frame = frame
        self.fmt = fmt
        self.meta = meta or {}

    def rename(self, names: dict[str, str]) -> None:
        self.frame = self.frame.rename(columns=names)
        for key in ("value_labels", "missing", "labels"):
            if key in self.meta:
                self.meta[key] = {names.get(k, k): v for k, v in self.meta[key].items()}
        if "dates" in self.meta:
            self.meta["dates"] = [names.get(c, c) for c in self.meta["dates"]]

    def drop(self, columns: list[str]) -> None:
        self.frame = self.frame.drop(columns=[c for c in columns if c in self.frame])
        for key in ("value_labels", "missing", "labels"):
            if key in self.meta:
                self.meta[key] = {k: v for k, v in self.meta[key].items() if k not in columns}


def read_export(path: Path, options: dict[str, Any]) -> Export:
    """A generated export as written (values unconverted: codes, spellings, missing codes)."""
    fmt = options["format"]
    if fmt == "csv":
        frame = pd.read_csv(path, sep=options.get("delimiter", ";"), encoding=options.get("encoding", "utf-8"),
                            dtype=str, keep_default_na=False)
        return Export(frame.drop(columns=["id"]), fmt)
    if fmt == "xlsx":
        frame = pd.read_excel(path, sheet_name=0, dtype=object)
        sheet = pd.ExcelFile(path).sheet_names[0]
        timestamped = frame.columns[0] == _TIMESTAMP
        if timestamped:
            frame = frame.drop(columns=[_TIMESTAMP])
        return Export(frame, fmt, {"sheet": sheet, "timestamped": timestamped})
    if fmt == "sav":
        frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
        dates = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, dt.date)).any()]
        missing = {c: [int(r["lo"]) for r in ranges if r["lo"] == r["hi"]]
                   for c, ranges in (meta.missing_ranges or {}).items()}
        labels = {c: l for c, l in (meta.column_names_to_labels or {}).items() if l}
        return Export(frame, fmt, {"value_labels": dict(meta.variable_value_labels or {}), "missing": missing,
                                   "labels": labels, "dates": dates})
    raise ValueError(f"shapes: cannot transform {fmt} exports ({path.name})")


def write_export(export: Export, path: Path, options: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if export.fmt == "csv":
        writers.write_csv(export.frame, path, options.get("delimiter", ";"), options.get("encoding", "utf-8"),
                          options.get("decimal", "."), options.get("date_format", "%d.%m.%Y"))
    elif export.fmt == "xlsx":
        writers.write_xlsx(export.frame, path, sheet=export.meta.get("sheet", "Vastused"),
                           timestamp_column=_TIMESTAMP if export.meta.get("timestamped") else None)
    elif export.fmt == "sav":
        value_labels = {c: {int(k): v for k, v in m.items()} for c, m in export.meta["value_labels"].items()}
        writers.write_sav(export.frame, path, value_labels, export.meta["missing"], export.meta["labels"],
                          [c for c in export.meta["dates"] if c in export.frame])
    else:
        raise ValueError(f"shapes: cannot write {export.fmt} exports")


def _code_text(value: Any) -> str | None:
    """A cell as the text the value sets spell: integral numbers without '.0'; None when empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def spelling_codes(value_set: dict[str, Any]) -> dict[str, Any]:
    """Normalised spelling -> code, for every spelling a value set knows (codes, labels, aliases)."""
    out: dict[str, Any] = {}
    for code, entry in value_set["codes"].items():
        for spelling in (code, entry.get("et", ""), entry.get("en", ""), *entry.get("aliases", [])):
            out.setdefault(normalise_spelling(str(spelling)), code)
    return out


# --------------------------------------------------------------------------- shapes


def _shape_info(truth: dict, **info: Any) -> None:
    truth.setdefault("shape", {}).update(info)


def _demo(root: Path, pupils: int, seed: int) -> tuple[Path, dict]:
    data = _rooted(_demo_study(), root, "demo")
    truth = _generate(data, root, pupils, seed)
    data["plan"] = small_plan(data["plan"])
    _shape_info(truth, name="demo", instruments=sorted({i["instrument"] for i in data["inputs"]}),
                absent_instruments=[], changes=[])
    _write_truth(root, truth)
    return _dump(data, root / "study.yaml"), truth


def _pupils_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's parts on pupils only: no evaluation, no pilot associations or screening."""
    plan = copy.deepcopy(plan)
    plan.pop("evaluation", None)
    for part in ("descriptives", "associations", "models", "screening", "reasons"):
        plan[part] = [p for p in plan.get(part, []) if p.get("instrument", "pupils") == "pupils"]
    return plan


def _prune_truth(truth: dict, instruments: set[str]) -> None:
    """Counts and defects of the instruments the shape keeps; no pilot truth without a pilot."""
    truth["counts"] = {k: v for k, v in truth["counts"].items() if k in instruments}
    truth["defects"] = {defect: kept for defect, by_key in truth["defects"].items()
                        if (kept := {k: n for k, n in by_key.items() if k.split("/")[0] in instruments})}
    if "pilot" not in instruments:
        truth.pop("pilot", None)


def _pupils_only(root: Path, pupils: int, seed: int) -> tuple[Path, dict]:
    data = _rooted(_demo_study(), root, "pupils_only")
    truth = _generate(data, root, pupils, seed)
    raw = Path(data["raw_dir"])
    dropped = [i for i in data["inputs"] if i["instrument"] != "pupils"]
    for entry in dropped:
        (raw / entry["path"]).unlink()
    for folder in sorted({(raw / e["path"]).parent for e in dropped}):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    data["inputs"] = [i for i in data["inputs"] if i["instrument"] == "pupils"]
    data["sources"] = {s: o for s, o in data["sources"].items() if any(i["source"] == s for i in data["inputs"])}
    data["plan"] = small_plan(_pupils_plan(data["plan"]))
    _prune_truth(truth, {"pupils"})
    _shape_info(truth, name="pupils_only", instruments=["pupils"],
                absent_instruments=["pilot", "services", "specialists"],
                changes=["pilot, specialists and services files removed", "plan without evaluation"])
    _write_truth(root, truth)
    return _dump(data, root / "study.yaml"), truth


def renamed_column(column: str, fmt: str) -> str:
    """The later waves' name of a column: how a tool's new questionnaire version names it."""
    return {"sav": f"{column}_v2", "csv": f"{column}v2"}.get(fmt, f"{column} (v2)")  # not "(uus)": Uus is a surname


def _mid_date(rng: np.random.Generator, fmt: str, options: dict[str, Any], n: int) -> list[Any]:
    days = [dt.date(2024, 1, int(d)) for d in rng.integers(8, 27, n)]
    if fmt == "csv":
        return [d.strftime(options.get("date_format", "%d.%m.%Y")) for d in days]
    if fmt == "xlsx":
        return [pd.Timestamp(d) for d in days]
    return days


def _mid_wave(rng: np.random.Generator, files: StudyFiles, source: str, pre: Export, post: Export) -> Export:
    """Pupils assessed at pre and post, each measure taken from post with probability MID_SHARE.

    The measures' expectation at mid is half-way between pre and post (a cell is one or the
    other), the spelling stays the source's own, and identities and group are pre's.
    """
    variables = files.variables("pilot")
    column = {v: files.column("pilot", v, source, "pre") for v in variables if source in variables[v]["source"]}
    code_column = column["personal_code"]

    def codes(frame: pd.DataFrame) -> pd.Series:
        return frame[code_column].map(lambda v: "".join(str(v).split()) if _code_text(v) else None)

    pre_codes, post_codes = codes(pre.frame), codes(post.frame)
    post_row = {c: i for i, c in reversed(list(enumerate(post_codes))) if c}
    keep = [i for i, c in enumerate(pre_codes) if c in post_row]
    mid = pre.frame.iloc[keep].reset_index(drop=True).copy()
    later = post.frame.iloc[[post_row[pre_codes.iloc[i]] for i in keep]].reset_index(drop=True)
    measures = [v for v, spec in variables.items() if v in column and spec["role"] in ("analytic", "sensitive")
                and spec["type"] != "date" and v != "group"]
    for variable in measures:
        name = column[variable]
        if name in mid and name in later:
            take = rng.random(len(mid)) < MID_SHARE
            mid[name] = np.where(take, later[name].to_numpy(dtype=object), mid[name].to_numpy(dtype=object))
            if pre.fmt == "sav":
                mid[name] = pd.to_numeric(mid[name], errors="coerce")
    dated = column.get("assessed_on")
    if dated in mid:
        mid[dated] = _mid_date(rng, pre.fmt, files.study["sources"][source], len(mid))
    return Export(mid, pre.fmt, copy.deepcopy(pre.meta))


def _left_school(export: Export, status_column: str, new_column: str, status_set: dict[str, Any]) -> int:
    """Replace the status answer by a 0/1 'left school' column in place; the number of 1s."""
    lookup = spelling_codes(status_set)
    values = []
    for value in export.frame[status_column]:
        text = _code_text(value)
        code = lookup.get(normalise_spelling(text)) if text not in (None, "") else None
        if code == "dropped_out":
            values.append(1)
        elif code is not None:
            values.append(0)
        else:
            values.append(value)  # missing codes, empty cells and unmappable spellings stay as written
    if export.fmt == "sav":
        export.frame[status_column] = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy()
    elif export.fmt == "csv":
        export.frame[status_column] = ["" if v is None else str(v) for v in values]
    else:
        export.frame[status_column] = values
    export.rename({status_column: new_column})
    if export.fmt == "sav":
        export.meta["value_labels"][new_column] = {0: "ei", 1: "jah"}
        export.meta["labels"][new_column] = "Lahkus õppeaasta jooksul koolist"
    return int(sum(1 for v in values if isinstance(v, int) and v == 1))


def _three_waves_codebooks(files: StudyFiles, folder: Path) -> None:
    pilot = files.variables("pilot")
    fmts = {s: o["format"] for s, o in files.study["sources"].items()}
    patches = {}
    for variable in RENAMED_PILOT:
        source = {}
        for name, column in pilot[variable]["source"].items():
            if name in fmts:
                source[name] = [column, renamed_column(column, fmts[name])]
        patches[variable] = {"source": source}
    _dump({"variables": patches}, folder / "pilot.yaml")
    pupils = {
        "variables": {
            "status": {"remove": True},
            "left_school": {
                "type": "categorical", "values": "yesno", "role": "sensitive",
                "label": {"et": "Lahkus õppeaasta jooksul koolist", "en": "Left school during the school year"},
                "source": dict(LEFT_SCHOOL_COLUMNS),
            },
        },
        "derived": {"dropout": {"remove": True}},
    }
    _dump(pupils, folder / "pupils.yaml")


def _rename_outcome(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with the dropout outcome as the 0/1 left_school answer (and no status)."""
    plan = copy.deepcopy(plan)
    plan["outcomes"] = {OUTCOME: {"variable": "left_school", "event": [1],
                                  "label": {"et": "Lahkus koolist", "en": "Left school"}}}
    for part in ("descriptives", "associations", "models", "screening", "reasons"):
        for entry in plan.get(part, []):
            if entry.get("outcome") == "dropout":
                entry["outcome"] = OUTCOME
    for model in plan.get("models", []):
        if model["name"] == "dropout_main":
            model["name"] = MODEL
            model["label"] = {"et": "Koolist lahkumise mudel", "en": "Leaving-school model"}
    if plan.get("personas"):
        plan["personas"]["outcomes"] = [OUTCOME]
    if plan.get("evaluation"):
        plan["evaluation"].pop("waves", None)  # the study's waves: pre, mid, post (first vs last)
    return plan


def _three_waves(root: Path, pupils: int, seed: int) -> tuple[Path, dict]:
    data = _rooted(_demo_study(), root, "three_waves")
    truth = _generate(data, root, pupils, seed)
    files = _files(data, root)
    raw = Path(data["raw_dir"])
    rng = np.random.default_rng([seed, 3])
    folder = root / "codebooks"
    _three_waves_codebooks(files, folder)
    data["codebooks"] = str(folder)
    data["waves"] = {"pilot": ["pre", "mid", "post"]}
    inputs, mid_rows, renamed, left = [], 0, 0, 0
    for entry in data["inputs"]:
        options = data["sources"][entry["source"]]
        path = raw / entry["path"]
        if entry["instrument"] == "pupils":
            export = read_export(path, options)
            status = files.column("pupils", "status", entry["source"], entry["wave"])
            left += _left_school(export, status, LEFT_SCHOOL_COLUMNS[entry["source"]], files.value_sets["status"])
            write_export(export, path, options)
        if entry["instrument"] == "pilot" and entry["wave"] == "post":
            pre_entry = next(e for e in data["inputs"] if e["instrument"] == "pilot" and e["wave"] == "pre"
                             and e["county"] == entry["county"])
            pre = read_export(raw / pre_entry["path"], options)
            post = read_export(path, options)
            mid = _mid_wave(rng, files, entry["source"], pre, post)
            names = {files.column("pilot", v, entry["source"], "pre"): None for v in RENAMED_PILOT}
            names = {c: renamed_column(c, options["format"]) for c in names}
            for export in (mid, post):
                export.rename(names)
                renamed += sum(1 for c in names.values() if c in export.frame)
            mid_path = f"{Path(entry['path']).parent}/piloot_keskel{path.suffix}"
            write_export(mid, raw / mid_path, options)
            write_export(post, path, options)
            mid_rows += len(mid.frame)
            inputs.append({**pre_entry, "wave": "mid", "path": mid_path})
        inputs.append(entry)
    data["inputs"] = sorted(inputs, key=lambda e: (e["instrument"] != "pupils", e["instrument"],
                                                   ["pre", "mid", "post"].index(e["wave"])
                                                   if e["instrument"] == "pilot" else 0))
    data["plan"] = small_plan(_rename_outcome(data["plan"]))
    truth["counts"]["pilot"]["mid"] = {"rows_written": mid_rows, "rejects_planted": 0, "duplicates_planted": 0}
    truth["defects"].setdefault("column_renamed", {})
    truth["defects"]["column_renamed"]["pilot/mid"] = renamed // 2
    truth["defects"]["column_renamed"]["pilot/post"] = (truth["defects"]["column_renamed"].get("pilot/post", 0)
                                                        + renamed // 2)
    truth["dropout"].update({"model": MODEL, "outcome": OUTCOME})
    truth["pilot"]["waves"] = ["pre", "mid", "post"]
    truth["pilot"]["mid_share"] = MID_SHARE
    _shape_info(truth, name="three_waves", instruments=["pilot", "pupils", "services", "specialists"],
                absent_instruments=[], renamed={"pilot": list(RENAMED_PILOT)}, outcome=OUTCOME,
                left_school_events=left,
                changes=["pilot mid wave per county (pre pupils also at post; each measure from post with "
                         f"probability {MID_SHARE})", f"pilot columns {list(RENAMED_PILOT)} renamed from mid on",
                         "pupils' status replaced by a 0/1 left_school column (1 = dropped out)",
                         "defects of pilot/mid are not counted except column_renamed"])
    _write_truth(root, truth)
    return _dump(data, root / "study.yaml"), truth


def _files(data: dict[str, Any], root: Path) -> StudyFiles:
    """The generator's view of a study dict (base codebooks)."""
    path = _dump(data, root / "_files.yaml")
    try:
        return load_study_files(path, root)
    finally:
        path.unlink(missing_ok=True)


def _russian(export: Export, files: StudyFiles, instrument: str, source: str, wave: str | None) -> int:
    """Every categorical answer written in its Russian alias (where the set has one); cells changed."""
    from pipelines.synth.config import Spellings

    spellings = Spellings(files.value_sets)
    changed = 0
    for variable, spec in files.variables(instrument).items():
        if spec.get("type") != "categorical" or source not in spec.get("source", {}):
            continue
        column = files.column(instrument, variable, source, wave)
        if column not in export.frame:
            continue
        lookup = spelling_codes(files.value_sets[spec["values"]])
        russian = spellings.lookup(spec["values"], "ru")
        values = []
        for value in export.frame[column]:
            text = _code_text(value)
            code = lookup.get(normalise_spelling(text)) if text not in (None, "") else None
            if code is not None and russian[code] != value:
                values.append(russian[code])
                changed += 1
            else:
                values.append(value)
        export.frame[column] = values
    return changed


def _ideal_ari_without(root: Path, data: dict[str, Any], pupils: int, seed: int, absent: tuple[str, ...]) -> float:
    """The ideal classifier's ARI when only the indicators the exports still have are seen."""
    from sklearn.metrics import adjusted_rand_score

    from pipelines.synth import generate, truth as planted

    rng = np.random.default_rng(seed)
    population = generate._population(rng, _files(data, root), pupils)  # the same draws as generate_study
    keep = [j for j, name in enumerate(planted.INDICATORS) if name not in absent]
    p = planted.CLASS_PROBABILITIES[:, keep]
    x = population["indicators"][:, keep].astype(float)
    log_post = np.log(np.asarray(planted.CLASS_SHARES)) + x @ np.log(p).T + (1 - x) @ np.log1p(-p).T
    return float(adjusted_rand_score(population["baseline"]["persona"].to_numpy(), log_post.argmax(axis=1)))


def _sparse_county(root: Path, pupils: int, seed: int) -> tuple[Path, dict]:
    demo = _demo_study()
    data = _rooted(demo, root, "sparse_county")
    data["counties"] = copy.deepcopy(SPARSE_COUNTY)
    data["sources"] = {"tartu_forms": copy.deepcopy(demo["sources"]["tartu_forms"])}
    data["inputs"] = [
        {"instrument": "pupils", "wave": "baseline", "county": "ida_viru", "source": "tartu_forms",
         "path": "ida-viru/opilased_2023.xlsx"},
        {"instrument": "pupils", "wave": "followup", "county": "ida_viru", "source": "tartu_forms",
         "path": "ida-viru/opilased_2024.xlsx"},
        {"instrument": "pilot", "wave": "pre", "county": "ida_viru", "source": "tartu_forms",
         "path": "ida-viru/pilootprojekt_algus.xlsx"},
        {"instrument": "pilot", "wave": "post", "county": "ida_viru", "source": "tartu_forms",
         "path": "ida-viru/pilootprojekt_lopp.xlsx"},
    ]
    truth = _generate(data, root, pupils, seed)
    files = _files(data, root)
    raw = Path(data["raw_dir"])
    russian = 0
    for entry in data["inputs"]:
        options = data["sources"][entry["source"]]
        path = raw / entry["path"]
        export = read_export(path, options)
        if entry["instrument"] == "pupils":
            export.drop([files.column("pupils", v, entry["source"], entry["wave"]) for v in ABSENT_INDICATORS])
        russian += _russian(export, files, entry["instrument"], entry["source"], entry["wave"])
        write_export(export, path, options)
    ideal = _ideal_ari_without(root, data, pupils, seed, ABSENT_INDICATORS)
    data["sources"] = {SPARSE_SOURCE: {"format": "xlsx", "columns_like": "tartu_forms"}}
    for entry in data["inputs"]:
        entry["source"] = SPARSE_SOURCE
    plan = small_plan(data["plan"])
    plan["evaluation"].pop("cooperation", None)  # no specialists in this study
    data["plan"] = plan
    truth["defects"] = {defect: kept for defect, by_key in truth["defects"].items()
                        if (kept := {k: n for k, n in by_key.items() if not k.startswith("pupils/")})}
    truth["personas"].update({"absent_indicators": list(ABSENT_INDICATORS), "ideal_ari": round(ideal, 6),
                              "indicators_used": 14 - len(ABSENT_INDICATORS)})
    _shape_info(truth, name="sparse_county", instruments=["pilot", "pupils"],
                absent_instruments=["services", "specialists"], county="ida_viru", russian_cells=russian,
                absent_indicators=list(ABSENT_INDICATORS), source=SPARSE_SOURCE,
                changes=["one county (Ida-Viru), forms in Russian: every categorical answer in its Russian alias",
                         f"pupil files lack {list(ABSENT_INDICATORS)}",
                         f"source {SPARSE_SOURCE} borrows tartu_forms' column names (columns_like)",
                         "defects of the pupil files are not counted (columns dropped)"])
    _write_truth(root, truth)
    return _dump(data, root / "study.yaml"), truth


_MAKERS = {"demo": _demo, "pupils_only": _pupils_only, "three_waves": _three_waves, "sparse_county": _sparse_county}


def make_shape(name: str, root: Path, pupils: int = 500, seed: int = 7) -> tuple[Path, dict]:
    """Write one shaped study under root: study.yaml, codebooks/ (if any), raw/, secrets/, data/truth/.

    Returns the study file and the truth (also in root/data/truth/<study>.json). The same
    name, size and seed give the same files.
    """
    if name not in _MAKERS:
        raise ValueError(f"unknown study shape {name!r}; shapes: {', '.join(SHAPES)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in ("raw", "codebooks"):
        if (root / stale).exists():
            shutil.rmtree(root / stale)
    return _MAKERS[name](root, pupils, seed)

"""Per-study codebooks: a study's overrides change its codebooks only, and mistakes name the file and key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from pipelines.codebooks import override_files
from pipelines.config import PROJECT_ROOT, ConfigError, load_codebooks, load_study

DEMO = PROJECT_ROOT / "studies" / "demo.yaml"


def _base_hashes() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (PROJECT_ROOT / "codebooks").glob("*.yaml")}


def _study(root: Path, name: str, overrides: dict[str, dict], mutate=None) -> Path:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["study"] = name
    folder = root / name / "codebooks"
    folder.mkdir(parents=True)
    for file, body in overrides.items():
        (folder / file).write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    data["codebooks"] = str(folder)
    if mutate:
        mutate(data)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_two_studies_load_their_own_codebooks_and_leave_the_base_alone(tmp_path):
    before = _base_hashes()
    a = _study(tmp_path, "a", {
        "pupils.yaml": {
            "variables": {
                "grade": {"label": {"et": "Klass (A)", "en": "Grade (A)"}, "range": [1, 9]},
                "notes": {"remove": True},
                "sen_support": {"source": {"voru_sav": "hev_tugi", "tartu_forms": None}},
                "truancy_warning": {"type": "categorical", "values": "traffic", "role": "analytic",
                                    "label": {"et": "Hoiatus", "en": "Warning"}, "source": {"voru_sav": "hoiatus"}},
            },
            "waves": ["baseline", "followup", "second_followup"],
            "defaults": {"missing": [-9]},
        },
        "value_sets.yaml": {"traffic": {"kind": "ordinal", "codes": {1: {"et": "roheline", "en": "green"},
                                                                       2: {"et": "punane", "en": "red"}}},
                            "yesno": {"kind": "binary", "codes": {0: {"et": "ei", "en": "no", "aliases": ["EI"]},
                                                                  1: {"et": "jah", "en": "yes", "aliases": ["JAH"]}}}},
    })
    b = _study(tmp_path, "b", {"pupils.yaml": {"variables": {"grade": {"range": [1, 12], "required": True}}},
                               "brand_new.yaml": {"label": {"et": "Uus", "en": "New"}, "unit": "none", "waves": [],
                                                  "variables": {"municipality": {
                                                      "type": "municipality", "role": "analytic",
                                                      "label": {"et": "KOV", "en": "Municipality"},
                                                      "source": {"municipal_xlsx": "KOV"}}}}},
               mutate=lambda d: d["inputs"].append({"instrument": "brand_new", "source": "municipal_xlsx",
                                                    "path": "kov/uus.xlsx"}))
    sa, sb = load_study(a), load_study(b)
    books_a, books_b = load_codebooks(sa), load_codebooks(sb)
    base = load_codebooks(load_study(DEMO))

    pa, pb, p0 = books_a["pupils"], books_b["pupils"], base["pupils"]
    assert pa.variables["grade"].range == (1, 9) and pa.variables["grade"].label.en == "Grade (A)"
    assert pa.variables["grade"].source == p0.variables["grade"].source  # untouched fields kept
    assert pb.variables["grade"].range == (1, 12) and pb.variables["grade"].required
    assert p0.variables["grade"].range == (1, 12) and not p0.variables["grade"].required
    assert "notes" not in pa.variables and "notes" in pb.variables
    assert pa.variables["sen_support"].source_columns("voru_sav") == ["hev_tugi"]
    assert pa.variables["sen_support"].source_columns("tartu_forms") == []
    assert pa.variables["sen_support"].source_columns("laaneviru_ls") == ["G2Q01"]
    assert pa.variables["truancy_warning"].values == "traffic" and "traffic" not in pb.value_sets
    assert pa.value_sets["yesno"].codes[1].aliases == ["JAH"]
    assert pa.waves == ["baseline", "followup", "second_followup"] and pb.waves == p0.waves
    assert pa.missing_codes("school_type") == [-9]
    assert books_b["brand_new"].variables["municipality"].source_columns("municipal_xlsx") == ["KOV"]
    assert "brand_new" not in books_a
    assert [p.name for p in override_files(sa)] == ["pupils.yaml", "value_sets.yaml"]
    assert _base_hashes() == before


def test_columns_like_shares_one_mapping(tmp_path):
    def mutate(d):
        d["sources"]["voru_copy"] = {"format": "sav", "columns_like": "voru_sav"}
        d["inputs"][0]["source"] = "voru_copy"
    path = _study(tmp_path, "c", {"pupils.yaml": {"variables": {"grade": {"source": {"voru_copy": "klass_nr"}}}}},
                  mutate)
    books = load_codebooks(load_study(path))
    pupils = books["pupils"]
    assert pupils.variables["personal_code"].source_columns("voru_copy") == ["isikukood"]
    assert pupils.variables["grade"].source_columns("voru_copy") == ["klass_nr"]  # its own name wins
    assert books["pilot"].variables["personal_code"].source_columns("voru_copy") == ["isikukood"]


def test_columns_like_unknown_source_is_named(tmp_path):
    def mutate(d):
        d["sources"]["voru_copy"] = {"format": "sav", "columns_like": "nowhere"}
    path = _study(tmp_path, "d", {}, mutate)
    with pytest.raises(ConfigError, match=r"sources\.voru_copy\.columns_like: 'nowhere'"):
        load_codebooks(load_study(path))


@pytest.mark.parametrize("override, match", [
    ({"variables": {"grade": {"type": "colour"}}}, r"pupils\.yaml: variables\.grade\.type"),
    ({"variables": {"grade": {"values": "yesno"}}}, r"pupils\.yaml: variables\.grade\.values"),
    ({"variables": {"nothing_here": {"remove": True}}}, r"pupils\.yaml: variables\.nothing_here\.remove"),
    ({"variables": {"new_one": {"type": "integer", "role": "analytic"}}}, r"pupils\.yaml: variables\.new_one\.label"),
    ({"variables": {"status": {"remove": True}}}, r"pupils\.yaml: derived\.dropout\.expr: uses 'status'"),
])
def test_override_mistakes_name_the_override_file_and_key(tmp_path, override, match):
    path = _study(tmp_path, "e", {"pupils.yaml": override})
    with pytest.raises(ConfigError, match=match) as info:
        load_codebooks(load_study(path))
    assert str(tmp_path / "e" / "codebooks" / "pupils.yaml") in str(info.value)


def test_override_files_are_in_the_provenance(tmp_path):
    from pipelines.provenance import provenance_table

    path = _study(tmp_path, "f", {"pupils.yaml": {"variables": {"grade": {"range": [1, 9]}}},
                                  "value_sets.yaml": {}})
    study = load_study(path)
    table = provenance_table(study, load_codebooks(study), [])
    configs = set(table.loc[table["kind"] == "config", "name"])
    assert {"pupils.yaml", "value_sets.yaml"} <= configs  # outside the project: by file name

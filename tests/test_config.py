"""The study configuration and codebooks: valid files load, broken ones name file and key."""

from pathlib import Path

import pytest
import yaml

from pipelines.config import PROJECT_ROOT, ConfigError, load_codebooks, load_study

DEMO = PROJECT_ROOT / "studies" / "demo.yaml"


def test_demo_study_and_codebooks_load():
    study = load_study(DEMO)
    books = load_codebooks(study)
    assert set(books) == {"pupils", "pilot", "specialists", "services"}
    assert sum(len(c.municipalities) for c in study.counties.values()) == 21
    assert books["pilot"].scale_items("sdl_planning") == [f"sdl_plan_{i}" for i in range(1, 6)]
    assert books["pupils"].variables["motivation_3"].reverse


def _write_study(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("study: demo\ncounties: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+"):
        load_study(path)


def test_unknown_key_is_named(tmp_path):
    path = _write_study(tmp_path, lambda d: d["privacy"].update(min_cel=3))
    with pytest.raises(ConfigError, match=r"privacy\.min_cel"):
        load_study(path)


def test_input_with_unknown_source_is_named(tmp_path):
    path = _write_study(tmp_path, lambda d: d["inputs"][2].update(source="nowhere"))
    with pytest.raises(ConfigError, match=r"inputs\.2\.source"):
        load_codebooks(load_study(path))


def test_wave_not_in_codebook_is_named(tmp_path):
    path = _write_study(tmp_path, lambda d: d["inputs"][0].update(wave="wave9"))
    with pytest.raises(ConfigError, match=r"inputs\.0\.wave"):
        load_codebooks(load_study(path))


def test_municipality_spelling_naming_two_places_is_refused(tmp_path):
    def clash(d):
        d["counties"]["voru"]["municipalities"][0]["aliases"].append("Tartu linn")
    path = _write_study(tmp_path, clash)
    with pytest.raises(ConfigError, match=r"counties\.voru"):
        load_codebooks(load_study(path))


def _codebook_dir(tmp_path: Path, mutate) -> Path:
    folder = tmp_path / "codebooks"
    folder.mkdir()
    for src in (PROJECT_ROOT / "codebooks").glob("*.yaml"):
        (folder / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    pupils = yaml.safe_load((folder / "pupils.yaml").read_text(encoding="utf-8"))
    mutate(pupils)
    (folder / "pupils.yaml").write_text(yaml.safe_dump(pupils, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.mark.parametrize("mutate, key", [
    (lambda cb: cb["variables"]["sex"].update(values="no_such_set"), r"variables\.sex\.values"),
    (lambda cb: cb["variables"]["grade"].update(reverse=True), r"variables\.grade\.reverse"),
    (lambda cb: cb["variables"]["notes"].pop("free_text"), r"variables\.notes\.free_text"),
    (lambda cb: cb["variables"]["grade"]["source"].update(voru_sav="sugu"), r"source\.voru_sav: column 'sugu' is already"),
    (lambda cb: cb["variables"]["motivation_1"].update(scale="nonexistent"), r"variables\.motivation_1\.scale"),
])
def test_codebook_contradictions_are_named(tmp_path, mutate, key):
    folder = _codebook_dir(tmp_path, mutate)
    with pytest.raises(ConfigError, match=r"pupils\.yaml") as err:
        load_codebooks(load_study(DEMO), folder)
    assert err.match(key)

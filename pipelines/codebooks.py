"""Per-study codebooks: the shared base codebooks with a study's own overrides merged in.

The base codebooks in `codebooks/` are shared by every study of a clone; a study changes
them only through its own folder (study file key ``codebooks: <dir>``), so one study's
edits never change another's. In that folder, all optional:

- ``<instrument>.yaml`` with the keys of a codebook, each optional:
  ``variables``, ``derived`` and ``scales``: a name the base lacks is a new entry,
  validated whole; a name the base has is a patch merged field by field (``source``
  merged key by key, a ``null`` column deleting that source's mapping);
  ``remove: true`` deletes the base entry. ``waves``, ``defaults``, ``label`` (and any
  other top-level key) replace the base's. An instrument the base lacks comes wholly
  from this file.
- ``value_sets.yaml``: sets added to the base's, or replacing a base set whole.

Every mistake names the file it came from (the override or the base) and the key.
A source with ``columns_like: <other source>`` (study file, ``sources``) then gets the
other source's column names for every variable whose codebook names none of its own.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

from pydantic import ValidationError

from pipelines import config as C

#: Codebook sections whose entries are merged name by name.
ENTRY_SECTIONS = ("variables", "derived", "scales")


def study_codebook_dir(study: C.Study) -> Path | None:
    """The study's own codebook folder, or None when the study has none."""
    if not study.codebooks:
        return None
    return study.resolve(study.codebooks)


def override_files(study: C.Study) -> list[Path]:
    """The study's override files that exist (for provenance), sorted."""
    folder = study_codebook_dir(study)
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def load_study_value_sets(study: C.Study, base_dir: Path) -> dict[str, C.ValueSet]:
    """The base value sets with the study's value_sets.yaml added or replacing sets whole."""
    sets = dict(C.load_value_sets(base_dir / "value_sets.yaml"))
    folder = study_codebook_dir(study)
    path = folder / "value_sets.yaml" if folder is not None else None
    if path is not None and path.is_file() and C._read_yaml(path) is not None:  # an empty file adds nothing
        sets.update(C.load_value_sets(path))
    return sets


def _merge_entry(base: dict, patch: dict) -> dict:
    merged = {**base, **{k: v for k, v in patch.items() if k != "source"}}
    if "source" in patch:
        source = dict(base.get("source") or {})
        if not isinstance(patch["source"], dict):
            merged["source"] = patch["source"]  # let validation name it
            return merged
        for name, columns in patch["source"].items():
            if columns is None:
                source.pop(name, None)
            else:
                source[name] = columns
        merged["source"] = source
    return merged


def merge_codebook_data(base: dict | None, override: dict, override_path: Path) -> tuple[dict, dict[str, str]]:
    """(merged data, origin) where origin maps 'section.name' / top key to 'override' for what it changed."""
    data = copy.deepcopy(base) if base else {}
    origin: dict[str, str] = {}
    for key, value in override.items():
        if key in ENTRY_SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise C.ConfigError(f"{override_path}: {key}: expected a mapping of names")
            section = dict(data.get(key) or {})
            for name, patch in value.items():
                where = f"{key}.{name}"
                if patch is None or not isinstance(patch, dict):
                    raise C.ConfigError(f"{override_path}: {where}: expected a mapping of fields "
                                        "(or remove: true)")
                if patch.get("remove") is True:
                    if name not in section:
                        raise C.ConfigError(f"{override_path}: {where}.remove: the base codebook has no such entry")
                    del section[name]
                    origin[where] = "removed"
                    continue
                if "remove" in patch:
                    raise C.ConfigError(f"{override_path}: {where}.remove: write remove: true (or leave it out)")
                section[name] = _merge_entry(section[name], patch) if name in section else patch
                origin[where] = "override"
            data[key] = section
        else:
            data[key] = value
            origin[key] = "override"
    return data, origin


def _origin_of(key: str, origin: dict[str, str]) -> bool:
    """Whether a dotted key ('variables.x.source', 'waves.0') points into the override."""
    parts = key.split(".")
    if parts[0] in ENTRY_SECTIONS and len(parts) > 1:
        return origin.get(f"{parts[0]}.{parts[1]}") == "override"
    return origin.get(parts[0]) == "override"


def _report(problems: list[str], base_path: Path | None, override_path: Path, origin: dict[str, str],
            heading: str) -> C.ConfigError:
    """One error naming, for each problem, the file its key came from."""
    lines = [f"{heading}"]
    for problem in problems:
        key = problem.split(":", 1)[0].strip()
        ours = base_path is None or _origin_of(key, origin) or "the study's override" in problem
        path = override_path if ours else base_path
        lines.append(f"  {path}: {problem}")
    return C.ConfigError("\n".join(lines))


def load_merged_codebook(instrument: str, base_path: Path | None, override_path: Path | None,
                         value_sets: dict[str, C.ValueSet]) -> C.Codebook:
    """The base codebook with the override merged in, validated and cross-checked."""
    if override_path is None:
        assert base_path is not None
        return C.load_codebook(base_path, value_sets)
    override = C._read_yaml(override_path)
    if override is None:
        override = {}
    if not isinstance(override, dict):
        raise C.ConfigError(f"{override_path}: expected a mapping at the top level")
    base = C._read_yaml(base_path) if base_path is not None else None
    if base is not None and not isinstance(base, dict):
        raise C.ConfigError(f"{base_path}: expected a mapping at the top level")
    data, origin = merge_codebook_data(base, override, override_path)
    if data.get("instrument", instrument) != instrument:
        raise C.ConfigError(f"{override_path}: instrument: '{data['instrument']}' but the file is for '{instrument}'")
    data.setdefault("instrument", instrument)
    try:
        cb = C.Codebook.model_validate({**data, "path": base_path or override_path})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise _report(problems, base_path, override_path, origin,
                      f"codebook '{instrument}' with the study's overrides: {len(problems)} problem(s)") from None
    cb = cb.model_copy(update={"value_sets": value_sets})
    problems = C._codebook_problems(cb)
    removed = {k.split(".", 1)[1] for k, v in origin.items() if v == "removed" and k.startswith("variables.")}
    removed |= {k.split(".", 1)[1] for k, v in origin.items() if v == "removed" and k.startswith("derived.")}
    for name, d in cb.derived.items():
        used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r"'[^']*'", " ", d.expr))) & removed
        for gone in sorted(used):
            problems.append(f"derived.{name}.expr: uses '{gone}', which the study's override removes")
    if problems:
        raise _report(problems, base_path, override_path, origin,
                      f"codebook '{instrument}' with the study's overrides contradicts itself")
    return cb


def load_study_codebook(study: C.Study, instrument: str, base_dir: Path,
                        value_sets: dict[str, C.ValueSet]) -> C.Codebook:
    base_path = base_dir / f"{instrument}.yaml"
    folder = study_codebook_dir(study)
    override_path = folder / f"{instrument}.yaml" if folder is not None else None
    if override_path is not None and not override_path.is_file():
        override_path = None
    if not base_path.is_file():
        if override_path is None:
            where = f" or {folder / (instrument + '.yaml')}" if folder is not None else ""
            raise C.ConfigError(f"{study.path}: inputs: instrument '{instrument}' has no codebook at "
                                f"{base_path}{where}")
        return load_merged_codebook(instrument, None, override_path, value_sets)
    return load_merged_codebook(instrument, base_path, override_path, value_sets)


def columns_like_problems(study: C.Study, books: dict[str, C.Codebook]) -> list[str]:
    """Sources whose columns_like names nothing known, or goes round in a circle."""
    known = set(study.sources) | {s for cb in books.values() for v in cb.variables.values() for s in v.source}
    problems = []
    for name, source in study.sources.items():
        if source.columns_like is None:
            continue
        if source.columns_like not in known:
            problems.append(f"sources.{name}.columns_like: '{source.columns_like}' is not a source of the study "
                            "nor of any codebook")
            continue
        seen, current = {name}, source.columns_like
        while current in study.sources and study.sources[current].columns_like is not None:
            if current in seen:
                problems.append(f"sources.{name}.columns_like: goes round in a circle ({current})")
                break
            seen.add(current)
            current = study.sources[current].columns_like
    return problems


def apply_columns_like(study: C.Study, cb: C.Codebook) -> C.Codebook:
    """The codebook with each columns_like source given its model's column names (where it has none)."""
    likes = {n: s.columns_like for n, s in study.sources.items() if s.columns_like}
    if not likes:
        return cb
    variables = {}
    for vname, var in cb.variables.items():
        source = dict(var.source)
        changed = True
        while changed:  # chains (a like b like c) settle in a few rounds
            changed = False
            for name, model in likes.items():
                if name not in source and model in source:
                    source[name] = source[model]
                    changed = True
        variables[vname] = var if source == var.source else var.model_copy(update={"source": source})
    return cb.model_copy(update={"variables": variables})


def load_study_codebooks(study: C.Study, base_dir: Path) -> dict[str, C.Codebook]:
    """Every codebook the study's inputs name, with the study's overrides and columns_like applied."""
    folder = study_codebook_dir(study)
    if folder is not None and not folder.is_dir():
        raise C.ConfigError(f"{study.path}: codebooks: '{study.codebooks}' is not a folder ({folder})")
    value_sets = load_study_value_sets(study, base_dir)
    books = {}
    for instrument in sorted({i.instrument for i in study.inputs}):
        books[instrument] = load_study_codebook(study, instrument, base_dir, value_sets)
    problems = columns_like_problems(study, books)
    if problems:
        raise C.ConfigError(f"{study.path}: the study configuration contradicts itself\n  " + "\n  ".join(problems))
    return {name: apply_columns_like(study, cb) for name, cb in books.items()}

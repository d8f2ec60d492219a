"""Study configurations and codebooks: loaded from YAML, validated, cross-checked.

A researcher adds a county, a wave or a variable by editing YAML, so every mistake there
must stop the run with a message that names the file and the key, before any data are
read. Pydantic checks each file's shape; `_cross_check_*` checks what a schema cannot
(a codebook contradicting itself, a study naming a source no codebook knows).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.plan import AnalysisPlan

Role = Literal["direct_identifier", "quasi_identifier", "sensitive", "analytic", "free_text"]
VarType = Literal["string", "integer", "number", "date", "categorical", "municipality"]
Identity = Literal["personal_code", "first_name", "last_name", "birth_date", "email", "phone", "address", "other_name"]
Format = Literal["sav", "zsav", "dta", "csv", "xlsx"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """A configuration file is unreadable or contradicts itself; the message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Labels(_Strict):
    et: str
    en: str


class ValueCode(_Strict):
    et: str
    en: str
    aliases: list[str] = Field(default_factory=list)


class ValueSet(_Strict):
    kind: Literal["binary", "nominal", "ordinal"]
    codes: dict[str | int, ValueCode]

    @field_validator("codes")
    @classmethod
    def _codes_fit_kind(cls, codes: dict[str | int, ValueCode], info: Any) -> dict[str | int, ValueCode]:
        kind = info.data.get("kind")
        if kind in ("binary", "ordinal") and not all(isinstance(c, int) for c in codes):
            raise ValueError(f"a {kind} value set needs integer codes")
        if kind == "nominal" and not all(isinstance(c, str) for c in codes):
            raise ValueError("a nominal value set needs text codes (short English words)")
        return codes


class Variable(_Strict):
    type: VarType
    role: Role
    label: Labels
    source: dict[str, str | list[str]] = Field(default_factory=dict)
    values: str | None = None
    missing: list[str | int | float] | None = None
    range: tuple[float, float] | None = None
    required: bool = False
    identity: Identity | None = None
    transform: Literal["pseudonymise"] | None = None
    pseudonym_domain: Literal["school"] | None = None
    from_identity: Literal["sex"] | None = None
    free_text: Literal["scrub", "drop"] | None = None
    scale: str | list[str] | None = None
    reverse: bool = False
    group: str | None = None

    @property
    def scales(self) -> list[str]:
        if self.scale is None:
            return []
        return [self.scale] if isinstance(self.scale, str) else list(self.scale)

    def source_columns(self, source: str) -> list[str]:
        cols = self.source.get(source, [])
        return [cols] if isinstance(cols, str) else list(cols)


class Derived(_Strict):
    type: Literal["integer", "number"]
    role: Role
    expr: str
    label: Labels


class Scale(_Strict):
    label: Labels
    min_answered: float = Field(gt=0, le=1)


class Codebook(_Strict):
    instrument: str
    label: Labels
    unit: Literal["pupil", "staff", "none"]
    waves: list[str]
    defaults: dict[str, list[str | int | float]] = Field(default_factory=dict)
    variables: dict[str, Variable]
    derived: dict[str, Derived] = Field(default_factory=dict)
    scales: dict[str, Scale] = Field(default_factory=dict)
    path: Path | None = None
    value_sets: dict[str, ValueSet] = Field(default_factory=dict)

    def missing_codes(self, name: str) -> list[str | int | float]:
        var = self.variables[name]
        return var.missing if var.missing is not None else list(self.defaults.get("missing", []))

    def scale_items(self, scale: str) -> list[str]:
        return [n for n, v in self.variables.items() if scale in v.scales]

    def by_role(self, *roles: str) -> list[str]:
        return [n for n, v in self.variables.items() if v.role in roles]


class Municipality(_Strict):
    name: str
    aliases: list[str] = Field(default_factory=list)


class County(_Strict):
    name: str
    project: str
    municipalities: list[Municipality]


class Source(_Strict):
    format: Format
    delimiter: str | None = None
    encoding: str | None = None
    decimal: Literal[".", ","] | None = None
    date_format: str | None = None
    sheet: int | str = 0
    columns_like: str | None = None  # use this other source's column names wherever a codebook names none


class Input(_Strict):
    instrument: str
    source: str
    path: str
    wave: str | None = None
    county: str | None = None


class Secret(_Strict):
    env: str | None = None
    file: str | None = None


#: Global recoding of an anon column in the shareable tables (pipelines/privacy/shareable.py).
ShareRecoding = Literal["keep", "drop", "age_bands", "grade_bands", "county_if_small", "month"]


def _default_share_recoding() -> dict[str, ShareRecoding]:
    return {"school_id": "drop", "birth_year": "drop", "age": "age_bands", "grade": "grade_bands",
            "municipality": "county_if_small", "assessed_on": "month"}


class Privacy(_Strict):
    min_cell: int = Field(default=5, ge=2)
    k_anonymity: int = Field(default=5, ge=2)
    l_diversity: int = Field(default=2, ge=1)  # meta.disclosure counts records whose class has fewer distinct values
    share_recoding: dict[str, ShareRecoding] = Field(default_factory=_default_share_recoding)
    small_municipality: int = Field(default=20, ge=0)  # county_if_small: fewer records than this -> the county
    # Quasi-identifiers the researchers need most (e.g. [municipality]): the shareable tables are then
    # protected by a search of the generalisation lattice that coarsens the other keys first and
    # suppresses these last (pipelines/privacy/lattice.py); empty: fixed recoding + local suppression.
    keep: list[str] = Field(default_factory=list)
    # With keep: the largest share of records the search may leave to local suppression at a lattice node.
    max_suppressed_share: float = Field(default=0.05, ge=0, le=1)


class Ingest(_Strict):
    """Thresholds of the ingest: what counts as a loss that stops the run (see README, exit codes)."""

    # A file is a problem when more than this share of its rows is rejected (duplicates and erased
    # people aside) and at least min_rejected_rows are: a stray row or two in a small file is noise.
    max_rejected_share: float = Field(default=0.02, ge=0, le=1)
    min_rejected_rows: int = Field(default=3, ge=1)
    max_cell_chars: int = Field(default=10_000, ge=1)  # longer cells are truncated to this, with a finding


class Study(_Strict):
    study: str = Field(pattern=r"^[a-z0-9_-]+$")
    title: Labels
    demo: bool = False
    reference_date: dt.date
    raw_dir: str
    codebooks: str | None = None  # the study's own codebook overrides (pipelines/codebooks.py), like raw_dir
    processed_dir: str = "data/processed"
    reports_dir: str = "reports/_output"
    erasure_dir: str = "data/erasure"  # the erasure register: keep it with the study's data
    secret: Secret
    privacy: Privacy = Privacy()
    ingest: Ingest = Ingest()
    seed: int = 20231  # every random method (imputation, bootstraps, starts) derives from it
    counties: dict[str, County]
    sources: dict[str, Source]
    inputs: list[Input]
    waves: dict[str, list[str]] = Field(default_factory=dict)  # instrument -> waves in order (default: codebook's)
    plan: AnalysisPlan = AnalysisPlan()
    path: Path | None = None

    def resolve(self, relative: str) -> Path:
        """A path from the config: absolute as written, else relative to the project."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else PROJECT_ROOT / p

    @property
    def raw_path(self) -> Path:
        return self.resolve(self.raw_dir)

    @property
    def db_path(self) -> Path:
        return self.resolve(self.processed_dir) / f"{self.study}.duckdb"

    def report_dir(self, lang: str) -> Path:
        """Where a language's rendered reports go: <reports_dir>/<study>/<lang>/."""
        return self.resolve(self.reports_dir) / self.study / lang

    def municipality_county(self) -> dict[str, str]:
        return {m.name: cid for cid, c in self.counties.items() for m in c.municipalities}

    @property
    def instruments(self) -> tuple[str, ...]:
        """The instruments this study has inputs for, sorted: only these get tables and assets."""
        return tuple(sorted({i.instrument for i in self.inputs}))

    def instrument_waves(self, codebook: "Codebook") -> list[str]:
        """The waves of an instrument in their order: the study's list, else the codebook's."""
        return list(self.waves.get(codebook.instrument, codebook.waves))


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


def _validation_message(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {len(exc.errors())} problem(s)"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def _parse(model: type[BaseModel], path: Path, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate({**data, "path": path} if "path" in model.model_fields else data)
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from None


def load_value_sets(path: Path) -> dict[str, ValueSet]:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of value-set names")
    sets: dict[str, ValueSet] = {}
    for name, body in data.items():
        try:
            sets[name] = ValueSet.model_validate(body)
        except ValidationError as exc:
            raise ConfigError(_validation_message(path, exc).replace(": ", f": {name}.", 1)) from None
    for name, vs in sets.items():
        seen: dict[str, str | int] = {}
        for code, body in vs.codes.items():
            for alias in [body.et, *body.aliases]:
                key = normalise_text(alias)
                if key in seen and seen[key] != code:
                    raise ConfigError(f"{path}: {name}.codes.{code}: spelling '{alias}' also means code {seen[key]}")
                seen[key] = code
    return sets


def load_codebook(path: Path, value_sets: dict[str, ValueSet]) -> Codebook:
    cb: Codebook = _parse(Codebook, path, _read_yaml(path))
    cb = cb.model_copy(update={"value_sets": value_sets})
    _cross_check_codebook(cb, path)
    return cb


def _cross_check_codebook(cb: Codebook, path: Path) -> None:
    """What one codebook can contradict in itself."""
    problems = _codebook_problems(cb)
    if problems:
        raise ConfigError(f"{path}: the codebook contradicts itself\n  " + "\n  ".join(problems))


def _codebook_problems(cb: Codebook) -> list[str]:
    """Each contradiction as 'key: reason' (the key names the place in the codebook)."""
    problems: list[str] = []
    columns_seen: dict[tuple[str, str], str] = {}
    for name, var in cb.variables.items():
        key = f"variables.{name}"
        if var.type == "categorical" and var.values is None:
            problems.append(f"{key}.values: a categorical variable needs a value set")
        if var.values is not None and var.values not in cb.value_sets:
            problems.append(f"{key}.values: unknown value set '{var.values}'")
        if var.type != "categorical" and var.values is not None:
            problems.append(f"{key}.values: only categorical variables take a value set")
        if var.role == "free_text" and var.free_text is None:
            problems.append(f"{key}.free_text: say 'scrub' or 'drop' for free text")
        if var.free_text is not None and var.role != "free_text":
            problems.append(f"{key}.free_text: only variables with role free_text are scrubbed or dropped")
        if var.identity is not None and var.role != "direct_identifier":
            problems.append(f"{key}.identity: an identity field must have role direct_identifier")
        if var.reverse and not var.scales:
            problems.append(f"{key}.reverse: reverse keying needs scale membership")
        for scale in var.scales:
            if scale not in cb.scales:
                problems.append(f"{key}.scale: scale '{scale}' is not defined under scales")
        if var.scales and (var.values is None or cb.value_sets.get(var.values, None) is None
                           or cb.value_sets[var.values].kind != "ordinal"):
            problems.append(f"{key}.scale: scale items must be ordinal categorical variables")
        if var.range is not None and var.type not in ("integer", "number"):
            problems.append(f"{key}.range: only numbers have a range")
        if var.transform == "pseudonymise" and var.pseudonym_domain is None:
            problems.append(f"{key}.pseudonym_domain: say which pseudonym domain to use")
        for source, columns in var.source.items():
            for col in [columns] if isinstance(columns, str) else columns:
                other = columns_seen.get((source, normalise_text(col)))
                if other is not None:
                    problems.append(f"{key}.source.{source}: column '{col}' is already {other}'s")
                columns_seen[(source, normalise_text(col))] = name
    for scale in cb.scales:
        if not cb.scale_items(scale):
            problems.append(f"scales.{scale}: no variable belongs to this scale")
        kinds = {cb.variables[i].values for i in cb.scale_items(scale)}
        if len(kinds) > 1:
            problems.append(f"scales.{scale}: items use different value sets {sorted(kinds)}")
    for name in cb.derived:
        if name in cb.variables:
            problems.append(f"derived.{name}: a variable of that name already exists")
    if cb.unit in ("pupil", "staff") and not any(v.identity for v in cb.variables.values()):
        problems.append(f"unit: a {cb.unit} instrument needs at least one identity field")
    return problems


def load_study(path: Path) -> Study:
    path = Path(path)
    return _parse(Study, path, _read_yaml(path))


def load_codebooks(study: Study, codebook_dir: Path | None = None) -> dict[str, Codebook]:
    """Every codebook the study's inputs name, cross-checked against the study.

    The base codebooks (`codebooks/`, or `codebook_dir`) with the study's own overrides
    merged in (study key `codebooks`, see pipelines/codebooks.py) and each `columns_like`
    source given its model's column names.
    """
    from pipelines.codebooks import load_study_codebooks  # it builds on this module

    books = load_study_codebooks(study, codebook_dir or PROJECT_ROOT / "codebooks")
    _cross_check_study(study, books)
    from pipelines.study_plan import plan_problems  # the plan module reads codebooks: import here

    problems = plan_problems(study, books)
    if problems:
        raise ConfigError(f"{study.path}: the analysis plan names what the study does not have\n  "
                          + "\n  ".join(problems))
    return books


def _cross_check_study(study: Study, books: dict[str, Codebook]) -> None:
    problems: list[str] = []
    for i, item in enumerate(study.inputs):
        key = f"inputs.{i}"
        cb = books[item.instrument]
        if item.source not in study.sources:
            problems.append(f"{key}.source: '{item.source}' is not listed under sources")
        if not any(item.source in v.source for v in cb.variables.values()):
            problems.append(f"{key}.source: codebook '{item.instrument}' has no columns for source '{item.source}'")
        waves = study.instrument_waves(cb)
        if waves and item.wave not in waves:
            problems.append(f"{key}.wave: '{item.wave}' is not one of {waves} (waves of '{item.instrument}')")
        if not waves and item.wave is not None:
            problems.append(f"{key}.wave: instrument '{item.instrument}' has no waves")
        if item.county is not None and item.county not in study.counties:
            problems.append(f"{key}.county: '{item.county}' is not listed under counties")
        if Path(item.path).is_absolute() or ".." in Path(item.path).parts or item.path.startswith("~"):
            problems.append(f"{key}.path: must be a path inside raw_dir ({study.raw_dir}), without '..'")
        fmt = study.sources.get(item.source)
        if fmt is not None and Path(item.path).suffix.lower().lstrip(".") != fmt.format:
            problems.append(f"{key}.path: a '{fmt.format}' source but the file ends in '{Path(item.path).suffix}'")
    for instrument in study.waves:
        if instrument not in books:
            problems.append(f"waves.{instrument}: the study has no inputs of this instrument")
    seen: dict[str, str] = {}
    for cid, county in study.counties.items():
        for m in county.municipalities:
            for spelling in [m.name, *m.aliases]:
                k = normalise_text(spelling)
                if k in seen and seen[k] != m.name:
                    problems.append(f"counties.{cid}: '{spelling}' names both {seen[k]} and {m.name}")
                seen[k] = m.name
    paths = [i.path for i in study.inputs]
    for p in sorted({p for p in paths if paths.count(p) > 1}):
        problems.append(f"inputs: file '{p}' is listed more than once")
    if problems:
        raise ConfigError(f"{study.path}: the study configuration contradicts itself\n  " + "\n  ".join(problems))


def normalise_text(value: str) -> str:
    """Case- and space-insensitive form of a spelling, for matching codes and aliases."""
    return " ".join(str(value).split()).casefold()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

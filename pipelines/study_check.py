"""`mapstudy check`: what a run of the study would fail on, found from configs and file headers.

Reads the study file, its codebooks (with the study's overrides) and only the header of
each raw export (`pipelines.headers`): no data row, so it is quick and safe on any study.
Each problem names the file, the key and the reason. Errors are what a run would fail on
(a file not found or unreadable, rows that would all be rejected, a model term or outcome
or the evaluation's groups with no data, no key); warnings are what a run would lose (a
column absent from a file, a persona indicator or another plan name absent everywhere).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.config import Codebook, Study, normalise_text
from pipelines.headers import HeaderError, read_header
from pipelines.ingest.readers import OutsideRawDir, check_inside
from pipelines.study_plan import BOOKKEEPING, _uses, sourced_variables


@dataclass(frozen=True)
class Problem:
    level: str  # "error" or "warning"
    where: str  # file, or file: key
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def _expr_names(expr: str) -> set[str]:
    """Identifiers a derived indicator's SQL mentions (string literals removed)."""
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r"'[^']*'", " ", expr)))


def needed_variables(column: str, study: Study, cb: Codebook, _seen: frozenset[str] = frozenset()) -> set[str] | None:
    """Codebook variables a plan column needs, all of them; None when it needs none (bookkeeping)."""
    if column in ("age", "birth_year"):  # computed from the birth date
        return {n for n, v in cb.variables.items() if v.identity == "birth_date"} or None
    if column in BOOKKEEPING or column in _seen:
        return None
    if column in cb.variables:
        return {column}
    if column.endswith("_id") and column[:-3] in cb.variables:
        return {column[:-3]}
    if column in cb.derived:
        needed: set[str] = set()
        for name in _expr_names(cb.derived[column].expr) & (set(cb.variables) | set(cb.derived)):
            more = needed_variables(name, study, cb, _seen | {column})
            needed |= more or set()
        return needed
    outcome = study.plan.outcomes.get(column)
    if outcome is not None and outcome.instrument == cb.instrument:
        return needed_variables(outcome.variable, study, cb, _seen | {column})
    return None


def _present(var_names: list[str], header_columns: set[str]) -> bool:
    return any(normalise_text(n) in header_columns for n in var_names)


def check_study(study: Study, codebooks: dict[str, Codebook]) -> list[Problem]:
    problems: list[Problem] = []
    sf = str(study.path)

    # the key
    from pipelines.ingest.stage import study_keys
    from pipelines.privacy.pseudonyms import MissingKeyError

    try:
        study_keys(study)
    except MissingKeyError as exc:
        if study.demo:
            problems.append(Problem("warning", f"{sf}: secret", f"{exc} For the demo, `mapstudy synth` makes it."))
        else:
            problems.append(Problem("error", f"{sf}: secret", str(exc)))
    except Exception as exc:  # a malformed key: never quote it
        problems.append(Problem("error", f"{sf}: secret", f"the key cannot be used ({type(exc).__name__}): "
                                "make a new one with `mapstudy key new --out FILE`"))

    # privacy.keep: each name must be a quasi-identifier a shareable table releases
    problems += _keep_problems(study, codebooks, sf)

    # two files of one instrument, wave and county: the same people twice, kept once
    seen: dict[tuple, int] = {}
    for i, item in enumerate(study.inputs):
        cb = codebooks[item.instrument]
        if cb.unit == "none" or not study.instrument_waves(cb):
            continue
        key = (item.instrument, item.wave, item.county)
        if key in seen:
            problems.append(Problem("warning", f"{sf}: inputs.{i}.wave", f"'{item.path}' has the same instrument, "
                                    f"wave and county as inputs.{seen[key]}: a person in both is kept once "
                                    "(the other record is rejected as a duplicate); is the wave right?"))
        else:
            seen[key] = i

    # each input's header against its codebook
    present_by_instrument: dict[str, set[str]] = {name: set() for name in codebooks}
    read_any: set[str] = set()  # instruments with at least one header read
    for i, item in enumerate(study.inputs):
        cb = codebooks[item.instrument]
        path = study.raw_path / item.path
        where = f"{sf}: inputs.{i}.path"
        try:
            check_inside(path, study.raw_path)  # a symlink out of the raw folder is refused, never read
        except OutsideRawDir as exc:
            problems.append(Problem("error", where, str(exc)))
            continue
        if not path.is_file():
            problems.append(Problem("error", where, f"'{item.path}' not found under {study.raw_path}"))
            continue
        try:
            header = read_header(path, study.sources[item.source])
        except HeaderError as exc:
            problems.append(Problem("error", where, str(exc)))
            continue
        if header.format == "csv" and len(header.columns) <= 1:
            problems.append(Problem("error", where, f"'{item.path}' has a single column: the delimiter is not "
                                    f"{header.delimiter!r}; set it under sources.{item.source}.delimiter"))
            continue
        read_any.add(item.instrument)
        columns = {normalise_text(c) for c in header.columns}
        absent, required, identities = [], [], []
        for name, var in cb.variables.items():
            names = var.source_columns(item.source)
            if not names:
                continue
            if _present(names, columns):
                present_by_instrument[item.instrument].add(name)
                if var.identity:
                    identities.append(name)
                continue
            absent.append(f"{name} ({' / '.join(names)})")
            if var.required:
                required.append(name)
        if required:
            problems.append(Problem("error", f"{item.path}", "required column(s) absent, every row would be "
                                    f"rejected: {', '.join(required)} (source {item.source}, codebook {item.instrument})"))
        if cb.unit in ("pupil", "staff") and not identities:
            problems.append(Problem("error", f"{item.path}", "no identity column (personal code, names, birth "
                                    f"date, e-mail) found: every row would be rejected (source {item.source})"))
        if absent:
            problems.append(Problem("warning", f"{item.path}", f"{len(absent)} codebook column(s) absent, missing "
                                    f"for every row: {', '.join(absent)}"))

    # the plan's names: in a source of the study, and in at least one file
    for key, instrument, column in _uses(study.plan):
        cb = codebooks.get(instrument)
        if cb is None:
            continue
        sourced = sourced_variables(study, cb)
        present = present_by_instrument[instrument]
        if column in cb.scales:  # a scale score needs at least one of its items
            items = set(cb.scale_items(column))
            if items & sourced & present or (items & sourced and instrument not in read_any):
                continue
            needed = items
        else:
            needed = needed_variables(column, study, cb)
        if not needed:
            continue
        unsourced = sorted(needed - sourced)
        absent = sorted(needed - present - set(unsourced)) if instrument in read_any else []
        if not unsourced and not absent:
            continue
        what = (f"'{column}' needs {', '.join(unsourced)}, which no source of the study maps to a column "
                f"(codebook {instrument})" if unsourced else
                f"'{column}' needs {', '.join(absent)}, absent from every {instrument} file")
        problems.append(_plan_problem(f"{sf}: {key}", key, what))
    return problems


def _keep_problems(study: Study, codebooks: dict[str, Codebook], sf: str) -> list[Problem]:
    """A warning per ``privacy.keep`` name that no shareable table has as a released quasi-identifier."""
    from pipelines.privacy.shareable import quasi_identifiers, shared_instruments

    released: set[str] = set()
    for name in shared_instruments(codebooks):
        cb = codebooks[name]
        candidates = ["county", "birth_year", "age", *cb.variables, *(f"{v}_id" for v in cb.variables)]
        released |= set(quasi_identifiers(cb, candidates))
    released -= {c for c, how in study.privacy.share_recoding.items() if how == "drop"}
    return [Problem("warning", f"{sf}: privacy.keep", f"'{c}' is not a quasi-identifier any shareable table "
                    f"releases (choose from {', '.join(sorted(released))}): nothing to keep")
            for c in study.privacy.keep if c not in released]


def _plan_problem(where: str, key: str, what: str) -> Problem:
    """A plan name with no data: an error where the analysis cannot run, else a warning of what is lost."""
    if key.startswith("plan.personas.indicators"):
        return Problem("warning", where, f"{what}: the indicator will be dropped")
    if ".terms." in key:
        return Problem("error", where, f"{what}: the term cannot be estimated")
    if key.startswith("plan.models."):
        return Problem("error", where, f"{what}: the model cannot be fitted")
    if key == "plan.evaluation.group":
        return Problem("error", where, f"{what}: the evaluation cannot tell its groups apart")
    return Problem("warning", where, f"{what}: it will be missing from this analysis")

"""Which columns the dropout-cause analyses use, and as what: from the codebooks and the plan.

The statistics in `analyses/` take plain column lists and measurement levels; this module
is the one place that reads them off the codebooks and the study's analysis plan
(``study.plan``, see pipelines/plan.py), so a new variable in a codebook enters the
associations, descriptives and scales without code, and a new study's outcome, models
and flags are YAML:

- a categorical variable's measurement level is its value set's kind (binary, nominal,
  ordinal); an integer or number is continuous; a derived indicator is binary when the
  data hold only 0/1 (every derived indicator of the codebooks is a 0/1 flag);
- candidate factors are the analytic, sensitive and quasi-identifying variables, minus
  what cannot be a cause, found by type and role rather than by name
  (:func:`excluded_factors`): identifiers, pseudonymised and free-text columns, places
  (type ``municipality``) and dates; the outcome and what it is made of (the plan
  outcome's source variable, a derived outcome's inputs, derived columns computed from the
  outcome); answers that exist only after the outcome (the member variables of the plan's
  ``reasons`` groups); scale items (their scale score enters instead); and a derived
  indicator that only recodes one nominal or binary variable (it carries the same
  information as the variable, which is tested).

The prespecified models are the plan's (``plan.models``): :func:`model_specs` resolves
each one's wave, reference levels and rescaled terms into a :class:`ModelSpec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from pipelines.config import Codebook, Study
from pipelines.plan import ModelPlan
from pipelines.study_plan import first_wave

FACTOR_ROLES = ("analytic", "sensitive", "quasi_identifier")
#: Variable types that are never candidate factors: places group the descriptives, dates are timing.
NOT_FACTOR_TYPES = ("municipality", "date", "string")
#: Grouping levels of the descriptives: whole study, county, municipality (each per wave).
GEOGRAPHIES = {"study": (), "county": ("county",), "municipality": ("county", "municipality")}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"'(?:[^']|'')*'")


@dataclass(frozen=True)
class ModelSpec:
    """A prespecified multivariable model, resolved: outcome ~ terms on one wave, clustered.

    ``terms`` are the model's column names as they enter the design (a rescaled term is
    named ``<variable>_per<per>``); ``references`` maps a nominal term to its reference
    level, ``per`` a rescaled term to (source variable, divisor).
    """

    name: str
    outcome: str
    terms: tuple[str, ...]
    wave: str | None
    cluster: str | None
    instrument: str = "pupils"
    references: dict[str, object] = field(default_factory=dict)
    per: dict[str, tuple[str, float]] = field(default_factory=dict)
    label_et: str | None = None
    label_en: str | None = None

    def term_note(self, term: str) -> str | None:
        """How a term was coded, for the ``term_scale`` column (None: as it is)."""
        if term in self.per:
            variable, per = self.per[term]
            return f"{variable} per {_number(per)} units"
        if term in self.references:
            return f"reference level {self.references[term]}"
        return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def rescaled_name(variable: str, per: float) -> str:
    """The column name of a term rescaled per ``per`` units: ``unexcused_absences_per10``."""
    return f"{variable}_per{_number(per).replace('.', '_')}"


def model_spec(study: Study, codebook: Codebook, plan: ModelPlan) -> ModelSpec:
    """One plan model resolved against the study: its wave (the instrument's first by default)."""
    terms, references, per = [], {}, {}
    for term in plan.term_specs():
        name = term.variable
        if term.per is not None:
            name = rescaled_name(term.variable, term.per)
            per[name] = (term.variable, float(term.per))
        if term.reference is not None:
            references[name] = term.reference
        terms.append(name)
    return ModelSpec(name=plan.name, outcome=plan.outcome, terms=tuple(terms),
                     wave=first_wave(study, codebook, plan.wave), cluster=plan.cluster, instrument=plan.instrument,
                     references=references, per=per,
                     label_et=plan.label.et if plan.label else None, label_en=plan.label.en if plan.label else None)


def model_specs(study: Study, codebooks: dict[str, Codebook]) -> list[ModelSpec]:
    """Every plan model whose instrument the study has, resolved."""
    return [model_spec(study, codebooks[m.instrument], m) for m in study.plan.models if m.instrument in codebooks]


def model_columns(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The frame with the model's coded terms: rescaled columns added, reference levels first.

    A nominal term with a reference becomes a pandas Categorical whose first category is
    the reference (the design codes the others against it); the reference must be a level
    that occurs, otherwise the term is left as it is (the fit reports what it can).
    """
    out = frame.copy()
    for name, (variable, per) in spec.per.items():
        if variable in out.columns:
            out[name] = pd.to_numeric(out[variable], errors="coerce") / per
    for name, reference in spec.references.items():
        if name not in out.columns:
            continue
        values = out[name]
        levels = sorted({_level(v) for v in values.dropna()}, key=str)
        ref = _level(reference)
        matched = next((lv for lv in levels if str(lv) == str(ref)), None)
        if matched is None:
            continue
        categories = [matched, *[lv for lv in levels if lv != matched]]
        out[name] = pd.Categorical(values.map(lambda v: None if pd.isna(v) else _level(v)), categories=categories)
    return out


def _level(value: object) -> object:
    """A level as the plan writes it: integral floats as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def measurement_level(codebook: Codebook, column: str, frame: pd.DataFrame) -> str | None:
    """binary / nominal / ordinal / continuous, or None for a column that is none of these."""
    variable = codebook.variables.get(column)
    if variable is not None:
        if variable.type == "categorical" and variable.values:
            return codebook.value_sets[variable.values].kind
        if variable.type in ("integer", "number"):
            return "continuous"
        return None
    if column in codebook.scales:
        return "continuous"
    if column in frame.columns:  # a derived indicator, or an outcome the plan defines
        values = pd.to_numeric(frame[column], errors="coerce").dropna()
        if column in codebook.derived or len(values):
            return "binary" if values.isin([0, 1]).all() else "continuous"
    return None


def group_members(codebook: Codebook, group: str) -> list[str]:
    """The variables of a codebook group (multi-select options, criteria), in codebook order."""
    return [name for name, v in codebook.variables.items() if v.group == group]


def expression_names(codebook: Codebook, expr: str) -> set[str]:
    """The codebook variables and derived indicators a derived expression reads."""
    known = set(codebook.variables) | set(codebook.derived)
    return {n for n in _NAME.findall(_LITERAL.sub(" ", expr)) if n in known}


def outcome_inputs(study: Study | None, codebook: Codebook, outcome: str) -> set[str]:
    """What the outcome is made of: a plan outcome's source variable, a derived outcome's inputs."""
    inputs: set[str] = set()
    if study is not None:
        definition = study.plan.outcomes.get(outcome)
        if definition is not None and definition.instrument == codebook.instrument:
            inputs.add(definition.variable)
    if outcome in codebook.derived:
        inputs |= expression_names(codebook, codebook.derived[outcome].expr)
    return inputs


def excluded_factors(codebook: Codebook, outcome: str, study: Study | None = None) -> dict[str, str]:
    """Columns of this codebook that are never candidate factors of ``outcome``, and why.

    Found by type, role and the plan, never by a variable's name (see the module's text).
    """
    why: dict[str, str] = {outcome: "the outcome"}
    for name in outcome_inputs(study, codebook, outcome):
        why.setdefault(name, "the outcome's source")
    for name, v in codebook.variables.items():
        if v.transform == "pseudonymise":
            why.setdefault(name, "pseudonymised: a cluster, not a factor")
        elif v.type in NOT_FACTOR_TYPES:
            why.setdefault(name, f"type {v.type}: a place, a date or text, not a factor")
    groups = {r.group for r in study.plan.reasons if r.instrument == codebook.instrument} if study else set()
    for group in sorted(groups):
        for name in group_members(codebook, group):
            why.setdefault(name, f"answered after the outcome (group {group})")
    for name, derived in codebook.derived.items():
        inputs = expression_names(codebook, derived.expr)
        if outcome in inputs:
            why.setdefault(name, "computed from the outcome")
        elif len(inputs) == 1:
            source = codebook.variables.get(next(iter(inputs)))
            if source is not None and source.values and codebook.value_sets[source.values].kind in ("nominal",
                                                                                                     "binary"):
                why.setdefault(name, f"recodes {next(iter(inputs))}: the same information")
    return why


def candidate_factors(codebook: Codebook, frame: pd.DataFrame, outcome: str,
                      study: Study | None = None) -> dict[str, str]:
    """Every candidate factor of ``outcome`` present in ``frame``, with its measurement level.

    Codebook variables first, then derived indicators, then scale scores (the frame must
    hold them, see ``pipelines.scales.with_scale_scores``). ``study`` supplies the plan
    (outcome definitions, reasons groups); without it only the codebook is used.
    """
    excluded = excluded_factors(codebook, outcome, study)
    plan_outcomes = set(study.plan.outcomes) if study else set()
    names = [n for n, v in codebook.variables.items()
             if v.role in FACTOR_ROLES and not v.scales and not v.identity and v.transform is None]
    names += [n for n, d in codebook.derived.items() if d.role in FACTOR_ROLES]
    names += list(codebook.scales)
    factors = {}
    for name in names:
        if name in excluded or name in plan_outcomes or name not in frame.columns:
            continue
        level = measurement_level(codebook, name, frame)
        if level is not None:
            factors[name] = level
    return factors


def outcome_kind(codebook: Codebook, outcome: str, frame: pd.DataFrame) -> str:
    """binary or ordinal: an ordinal value set's outcome is ordinal, anything else binary."""
    level = measurement_level(codebook, outcome, frame)
    return "ordinal" if level == "ordinal" else "binary"


def descriptive_variables(codebook: Codebook, frame: pd.DataFrame, outcome: str,
                          study: Study | None = None) -> tuple[list[str], list[str]]:
    """(categorical, numeric) characteristics to describe: the candidate factors and the outcome."""
    levels = candidate_factors(codebook, frame, outcome, study)
    if outcome in frame.columns:
        levels[outcome] = measurement_level(codebook, outcome, frame) or "binary"
    categorical = [n for n, level in levels.items() if level != "continuous"]
    numeric = [n for n, level in levels.items() if level == "continuous"]
    return categorical, numeric

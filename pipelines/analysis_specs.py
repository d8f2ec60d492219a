"""Which columns the dropout-cause analyses use, and as what: derived from the codebooks.

The statistics in `analyses/` take plain column lists and measurement levels; this module
is the one place that reads them off the codebooks, so a new variable in a codebook enters
the associations, descriptives and scales without code:

- a categorical variable's measurement level is its value set's kind (binary, nominal,
  ordinal); an integer or number is continuous; a derived indicator is binary when the
  data hold only 0/1 (every derived indicator of the codebooks is a 0/1 flag);
- candidate factors are the analytic, sensitive and quasi-identifying variables, minus
  what cannot be a cause: identifiers and free text (by role), the outcome and what it is
  made of, answers that exist only after the outcome (groups ``dropout_reasons``),
  scale items (their scale score enters instead), and the short documented list
  :data:`NOT_FACTORS`.

The hand-written parts are the prespecified model (:data:`DROPOUT_MAIN`), whose terms
are a research decision, not a property of the codebook, and :data:`NOT_FACTORS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from pipelines.config import Codebook

FACTOR_ROLES = ("analytic", "sensitive", "quasi_identifier")
#: Groups whose answers are given only for pupils who dropped out: consequences, not causes.
OUTCOME_GROUPS = ("dropout_reasons",)
#: Variables that are never candidate factors, and why.
NOT_FACTORS = {
    "school": "pseudonymised school: the cluster of the models, not a factor",
    "municipality": "geography: the grouping of the descriptives, not a factor",
    "status": "the outcome's source (dropout = status 'dropped_out')",
    "male": "the same information as sex (nominal), which is tested",
    "assessed_on": "assessment date: timing, not a factor",
}
#: Grouping levels of the descriptives: whole study, county, municipality (each per wave).
GEOGRAPHIES = {"study": (), "county": ("county",), "municipality": ("county", "municipality")}


@dataclass(frozen=True)
class ModelSpec:
    """A prespecified multivariable model: outcome ~ terms on one wave, clustered."""

    name: str
    outcome: str
    terms: tuple[str, ...]
    wave: str
    cluster: str


#: The main dropout model of the study protocol (and of the demo study's planted truth).
DROPOUT_MAIN = ModelSpec(
    name="dropout_main",
    outcome="dropout",
    terms=("male", "chronic_absence", "failing_any", "repeated_grade", "low_income", "hobby_education"),
    wave="baseline",
    cluster="school_id",
)
#: The pupils' binary outcome and the pilot's ordinal one.
PUPIL_OUTCOME = "dropout"
PILOT_OUTCOME = "risk_level"
#: The pupils' early-warning flags (derived indicators) and the pilot's criteria group.
PUPIL_WARNING_FLAGS = ("chronic_absence", "failing_any", "behaviour_any", "any_warning_flag")
PILOT_CRITERIA_GROUP = "screening_criteria"
PILOT_COMBINED_CRITERION = "any_criterion"
#: Continuous indicators judged by their AUC beside the flags they are cut from.
SCREENING_SCORES = ("unexcused_absences", "failing_grades")
#: Multi-select question of the pupils: why a pupil dropped out.
DROPOUT_REASONS_GROUP = "dropout_reasons"


def measurement_level(codebook: Codebook, column: str, frame: pd.DataFrame) -> str | None:
    """binary / nominal / ordinal / continuous, or None for a column that is none of these."""
    variable = codebook.variables.get(column)
    if variable is not None:
        if variable.type == "categorical" and variable.values:
            return codebook.value_sets[variable.values].kind
        if variable.type in ("integer", "number"):
            return "continuous"
        return None
    if column in codebook.derived and column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce").dropna()
        return "binary" if values.isin([0, 1]).all() else "continuous"
    if column in codebook.scales:
        return "continuous"
    return None


def group_members(codebook: Codebook, group: str) -> list[str]:
    """The variables of a codebook group (multi-select options, criteria), in codebook order."""
    return [name for name, v in codebook.variables.items() if v.group == group]


def candidate_factors(codebook: Codebook, frame: pd.DataFrame, outcome: str) -> dict[str, str]:
    """Every candidate factor of ``outcome`` present in ``frame``, with its measurement level.

    Codebook variables first, then derived indicators, then scale scores (the frame must
    hold them, see ``pipelines.scales.with_scale_scores``).
    """
    excluded = set(NOT_FACTORS) | {outcome}
    for group in OUTCOME_GROUPS:
        excluded |= set(group_members(codebook, group))
    names = [n for n, v in codebook.variables.items()
             if v.role in FACTOR_ROLES and not v.scales and not v.identity and v.transform is None]
    names += [n for n, d in codebook.derived.items() if d.role in FACTOR_ROLES]
    names += list(codebook.scales)
    factors = {}
    for name in names:
        if name in excluded or name not in frame.columns or outcome_source(codebook, name, outcome):
            continue
        level = measurement_level(codebook, name, frame)
        if level is not None:
            factors[name] = level
    return factors


def outcome_source(codebook: Codebook, name: str, outcome: str) -> bool:
    """True for a derived variable computed from the outcome (it would test the outcome itself)."""
    derived = codebook.derived.get(name)
    return derived is not None and re.search(rf"\b{re.escape(outcome)}\b", derived.expr) is not None


def descriptive_variables(codebook: Codebook, frame: pd.DataFrame, outcome: str) -> tuple[list[str], list[str]]:
    """(categorical, numeric) characteristics to describe: the candidate factors and the outcome."""
    levels = candidate_factors(codebook, frame, outcome)
    levels[outcome] = "binary"
    categorical = [n for n, level in levels.items() if level != "continuous"]
    numeric = [n for n, level in levels.items() if level == "continuous"]
    return categorical, numeric

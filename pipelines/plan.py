"""The analysis plan of a study: which analyses run on which columns, read from YAML.

A study's research decisions (the dropout model's outcome and terms, the warning flags
and screening scores, the persona indicators and their cuts, the evaluation design, the
number of imputations) are data, not code: they live under ``plan:`` in the study file,
are validated here with the same file-and-key messages as the rest of the configuration,
and the resolved plan is written to ``meta.analysis_plan`` so that reports read it from
the database. Nothing in Python names a demo variable, wave or group.

Every part of the plan is optional. A part that is absent, or whose instrument the study
does not have, is skipped by its assets with a line in the run output saying why.

Seeds: every random method derives its seed from ``study.seed`` and the name of the
method (:func:`derived_seed`), so one number in the study file reproduces everything and
two methods never share a random stream by accident.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Value = str | int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanLabels(_Strict):
    et: str
    en: str


class OutcomeDefinition(_Strict):
    """A 0/1 column made from an answer: 1 where ``variable`` is one of ``event``.

    ``{variable: status, event: [dropped_out]}`` makes dropout from the status question;
    ``{variable: left_school, event: [1]}`` takes a yes/no answer as it is. Missing stays
    missing; any other answered value is 0.
    """

    variable: str
    event: list[Value] = Field(min_length=1)
    instrument: str = "pupils"
    label: PlanLabels | None = None


class Term(_Strict):
    """A model term: a column, with its reference level or a rescaling ("per 10 hours")."""

    variable: str
    reference: Value | None = None  # nominal terms: the level the others are compared with
    per: float | None = Field(default=None, gt=0)  # numeric terms: the effect per this many units


class ModelPlan(_Strict):
    """A prespecified multivariable logistic model: outcome ~ terms on one wave, clustered."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    instrument: str = "pupils"
    wave: str | None = None  # None: the instrument's first wave
    outcome: str
    terms: list[str | Term] = Field(min_length=1)
    cluster: str | None = "school_id"
    label: PlanLabels | None = None

    def term_specs(self) -> list[Term]:
        return [Term(variable=t) if isinstance(t, str) else t for t in self.terms]


class AssociationPlan(_Strict):
    """Every candidate factor of an instrument against one outcome, per wave."""

    instrument: str
    outcome: str
    kind: Literal["binary", "ordinal"] = "binary"


class ScreeningPlan(_Strict):
    """Indicators (0/1 flags, codebook groups of flags, numeric scores) judged against an outcome.

    ``outcome_top_level: true`` turns an ordinal outcome into 1 at its highest code (high
    risk) and 0 below it.
    """

    instrument: str
    outcome: str
    outcome_top_level: bool = False
    flags: list[str] = Field(default_factory=list)
    flag_groups: list[str] = Field(default_factory=list)
    combined: list[str] = Field(default_factory=list)  # derived "any of" flags listed after the group's
    scores: list[str] = Field(default_factory=list)


class ReasonsPlan(_Strict):
    """The multi-select reasons given for the outcome, described among pupils with the event."""

    instrument: str = "pupils"
    group: str
    outcome: str


class PersonaIndicator(_Strict):
    """A 0/1 indicator for the latent class model.

    A plain name takes a 0/1 column as it is. Otherwise ``variable`` is cut: ``below``
    (score < cut, e.g. a scale mean below 3), ``at_least`` (value >= cut) or ``event``
    (the listed answers). ``name`` and ``label`` say how the persona cards call it.
    """

    variable: str
    name: str | None = None
    below: float | None = None
    at_least: float | None = None
    event: list[Value] | None = None
    label: PlanLabels | None = None

    @model_validator(mode="after")
    def _one_cut(self) -> "PersonaIndicator":
        cuts = [c for c in (self.below, self.at_least, self.event) if c is not None]
        if len(cuts) > 1:
            raise ValueError("give at most one of below, at_least, event")
        return self

    @property
    def column(self) -> str:
        return self.name or self.variable


class PersonaPlan(_Strict):
    """Latent class personas: indicators, k range, random starts, bootstrap size."""

    instrument: str = "pupils"
    wave: str | None = None  # None: the instrument's first wave
    indicators: list[str | PersonaIndicator] = Field(min_length=2)
    k_max: int = Field(default=6, ge=1, le=12)
    n_init: int = Field(default=20, ge=1)
    short_iter: int = Field(default=50, ge=1)
    n_final: int = Field(default=4, ge=1)
    max_iter: int = Field(default=500, ge=1)
    n_boot: int = Field(default=20, ge=0)
    boot_n_init: int = Field(default=5, ge=1)
    kmodes_n_init: int = Field(default=10, ge=1)
    min_class_share: float = Field(default=0.05, gt=0, lt=0.5)
    outcomes: list[str] = Field(default_factory=list)
    support_group: str | None = None
    place: str = "municipality"

    def indicator_specs(self) -> list[PersonaIndicator]:
        return [PersonaIndicator(variable=i) if isinstance(i, str) else i for i in self.indicators]


class CooperationPlan(_Strict):
    """Specialists' cooperation items (a codebook group, one item per partner sector)."""

    instrument: str = "specialists"
    group: str = "cooperation"
    prefix: str = "coop_"  # stripped from the item names to give the partner sector


class EvaluationPlan(_Strict):
    """The pilot evaluation: waves in order, treated and comparison groups, outcomes."""

    instrument: str = "pilot"
    waves: list[str] | None = None  # None: the instrument's waves; the first is before, the last after
    group: str = "group"
    treated: Value
    comparison: Value
    continuous: list[str] = Field(default_factory=list)
    binary: list[str] = Field(default_factory=list)
    attrition_covariates: list[str] = Field(default_factory=list)
    small_n: int = Field(default=10, ge=1)
    cooperation: CooperationPlan | None = None


class NeedPlan(_Strict):
    """A support need of the pupils and the service types that meet it (the gap analysis).

    ``need`` is a 0/1 column of ``instrument`` (a variable, derived indicator or plan
    outcome); ``service_types`` are codes of the services' ``service_type``.
    """

    need: str
    instrument: str = "pupils"
    service_types: list[str] = Field(min_length=1)
    label: PlanLabels | None = None


class ServicesPlan(_Strict):
    """Specialists and services: the cooperation items, and need against supply per municipality."""

    instrument: str = "services"
    specialists: str = "specialists"
    wave: str | None = None  # the pupils' wave the need is read from; None: its first wave
    needs: list[NeedPlan] = Field(default_factory=list)
    cooperation_group: str = "cooperation"
    cooperation_prefix: str = "coop_"  # stripped from the item names to give the partner sector
    barriers_group: str | None = None  # a multi-response group of the specialists (barriers to cooperation)
    training_needs_group: str | None = None  # a multi-response group of the specialists (training needs, ranked)
    threshold: float = Field(default=3, ge=1, le=5)  # a link "exists" at this mean frequency (3: monthly)
    n_boot: int = Field(default=999, ge=0)
    available_code: Value = 3  # the availability code that counts as available


class SurveyPlan(_Strict):
    """How the study's sample was drawn, for design-based estimates (analyses/survey.py).

    Each key names a column of ``instrument``: ``weights`` (sampling weights), ``strata``
    (the stratum of each unit), ``cluster`` (the primary sampling unit, e.g. the school),
    ``fpc`` (the stratum's population count of PSUs, or the sampling fraction). All are
    optional, but a survey part names at least one of weights, strata and cluster.
    """

    instrument: str = "pupils"
    weights: str | None = None
    strata: str | None = None
    cluster: str | None = None
    fpc: str | None = None

    @model_validator(mode="after")
    def _names_a_design(self) -> SurveyPlan:
        if not (self.weights or self.strata or self.cluster):
            raise ValueError("survey: name at least one of weights, strata and cluster")
        return self


class AnalysisPlan(_Strict):
    """Everything a study decides about its analyses; see studies/demo.yaml for an example."""

    outcomes: dict[str, OutcomeDefinition] = Field(default_factory=dict)
    descriptives: list[AssociationPlan] = Field(default_factory=list)
    associations: list[AssociationPlan] = Field(default_factory=list)
    models: list[ModelPlan] = Field(default_factory=list)
    imputations: int = Field(default=20, ge=0)
    screening: list[ScreeningPlan] = Field(default_factory=list)
    reasons: list[ReasonsPlan] = Field(default_factory=list)
    personas: PersonaPlan | None = None
    evaluation: EvaluationPlan | None = None
    services: ServicesPlan | None = None
    survey: SurveyPlan | None = None


def derived_seed(seed: int, method: str) -> int:
    """A reproducible seed for one random method, from the study seed and the method's name."""
    digest = hashlib.sha256(f"{seed}:{method}".encode()).digest()
    return int.from_bytes(digest[:4], "big")

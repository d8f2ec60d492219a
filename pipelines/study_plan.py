"""The analysis plan against the study's codebooks: checked, resolved, applied to tables.

`pipelines.plan` says what a plan may contain; this module knows the codebooks, so it can
say whether a plan's names exist (a variable, a derived indicator, a scale score or an
outcome the plan defines) and whether any input of the study has a column for them, fill
in what the plan left to the study (a model's wave), write the resolved plan as
``meta.analysis_plan`` and add the plan's outcome columns to an anon table.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pipelines.config import Codebook, Study, normalise_text
from pipelines.plan import AnalysisPlan, derived_seed

#: Columns every anon table of a unit has besides the codebook's (pipelines.ingest.typing).
BOOKKEEPING = {"pupil_id", "staff_id", "wave", "county", "source", "identity_match", "age", "birth_year"}


def known_columns(study: Study, codebook: Codebook) -> set[str]:
    """Names an analysis of this instrument may use: variables, derived, scales, plan outcomes."""
    names = set(codebook.variables) | set(codebook.derived) | set(codebook.scales) | BOOKKEEPING
    names |= {f"{n}_id" for n, v in codebook.variables.items() if v.transform == "pseudonymise"}
    names |= {n for n, o in study.plan.outcomes.items() if o.instrument == codebook.instrument}
    return names


def sourced_variables(study: Study, codebook: Codebook) -> set[str]:
    """Codebook variables that at least one of the study's inputs of this instrument maps a column to."""
    sources = {i.source for i in study.inputs if i.instrument == codebook.instrument}
    return {n for n, v in codebook.variables.items() if any(v.source_columns(s) for s in sources)}


def _uses(plan: AnalysisPlan) -> list[tuple[str, str, str]]:
    """(key in the study file, instrument, column) for every name the plan refers to."""
    uses: list[tuple[str, str, str]] = []
    for name, o in plan.outcomes.items():
        uses.append((f"plan.outcomes.{name}.variable", o.instrument, o.variable))
    for part in ("descriptives", "associations"):
        for i, a in enumerate(getattr(plan, part)):
            uses.append((f"plan.{part}.{i}.outcome", a.instrument, a.outcome))
    for i, m in enumerate(plan.models):
        uses.append((f"plan.models.{i}.outcome", m.instrument, m.outcome))
        uses += [(f"plan.models.{i}.terms.{j}", m.instrument, t.variable) for j, t in enumerate(m.term_specs())]
        if m.cluster:
            uses.append((f"plan.models.{i}.cluster", m.instrument, m.cluster))
    for i, s in enumerate(plan.screening):
        uses.append((f"plan.screening.{i}.outcome", s.instrument, s.outcome))
        uses += [(f"plan.screening.{i}.flags", s.instrument, f) for f in s.flags]
        uses += [(f"plan.screening.{i}.combined", s.instrument, f) for f in s.combined]
        uses += [(f"plan.screening.{i}.scores", s.instrument, f) for f in s.scores]
    for i, r in enumerate(plan.reasons):
        uses.append((f"plan.reasons.{i}.outcome", r.instrument, r.outcome))
    if plan.personas:
        p = plan.personas
        uses += [(f"plan.personas.indicators.{j}", p.instrument, ind.variable)
                 for j, ind in enumerate(p.indicator_specs())]
        uses += [(f"plan.personas.outcomes.{j}", p.instrument, o) for j, o in enumerate(p.outcomes)]
        uses.append(("plan.personas.place", p.instrument, p.place))
    if plan.survey:
        uses += [(f"plan.survey.{key}", plan.survey.instrument, getattr(plan.survey, key))
                 for key in ("weights", "strata", "cluster", "fpc") if getattr(plan.survey, key)]
    if plan.evaluation:
        e = plan.evaluation
        uses.append(("plan.evaluation.group", e.instrument, e.group))
        for part in ("continuous", "binary", "attrition_covariates"):
            uses += [(f"plan.evaluation.{part}", e.instrument, c) for c in getattr(e, part)]
    if plan.services:
        uses += [(f"plan.services.needs.{j}.need", n.instrument, n.need) for j, n in enumerate(plan.services.needs)]
    return uses


def plan_problems(study: Study, codebooks: dict[str, Codebook]) -> list[str]:
    """Names in the plan that no codebook knows, or waves and groups the study lacks.

    A plan part whose instrument the study does not have is not a problem (it is skipped
    at run time); a name that the instrument's codebook does not know is.
    """
    plan = study.plan
    problems: list[str] = []
    for key, instrument, column in _uses(plan):
        codebook = codebooks.get(instrument)
        if codebook is None:
            continue
        if column not in known_columns(study, codebook):
            problems.append(f"{key}: '{column}' is not a variable, derived indicator or scale of "
                            f"codebook '{instrument}' nor an outcome under plan.outcomes")
    for i, s in enumerate(plan.screening):
        codebook = codebooks.get(s.instrument)
        for group in s.flag_groups if codebook else []:
            if not any(v.group == group for v in codebook.variables.values()):
                problems.append(f"plan.screening.{i}.flag_groups: no variable of '{s.instrument}' is in group '{group}'")
    for i, r in enumerate(plan.reasons):
        codebook = codebooks.get(r.instrument)
        if codebook and not any(v.group == r.group for v in codebook.variables.values()):
            problems.append(f"plan.reasons.{i}.group: no variable of '{r.instrument}' is in group '{r.group}'")
    for i, m in enumerate(plan.models):
        codebook = codebooks.get(m.instrument)
        if codebook and m.wave is not None and m.wave not in study.instrument_waves(codebook):
            problems.append(f"plan.models.{i}.wave: '{m.wave}' is not a wave of '{m.instrument}'")
    if plan.personas and plan.personas.instrument in codebooks:
        p = plan.personas
        codebook = codebooks[p.instrument]
        if p.wave is not None and p.wave not in study.instrument_waves(codebook):
            problems.append(f"plan.personas.wave: '{p.wave}' is not a wave of '{p.instrument}'")
        if p.support_group and not any(v.group == p.support_group for v in codebook.variables.values()):
            problems.append(f"plan.personas.support_group: no variable of '{p.instrument}' is in group "
                            f"'{p.support_group}'")
        columns = [ind.column for ind in p.indicator_specs()]
        for name in sorted({c for c in columns if columns.count(c) > 1}):
            problems.append(f"plan.personas.indicators: '{name}' is listed twice (give one a name)")
    if plan.evaluation and plan.evaluation.instrument in codebooks:
        e = plan.evaluation
        codebook = codebooks[e.instrument]
        waves = study.instrument_waves(codebook)
        for wave in e.waves or []:
            if wave not in waves:
                problems.append(f"plan.evaluation.waves: '{wave}' is not a wave of '{e.instrument}' {waves}")
        if len(evaluation_waves(study, codebook)) < 2:
            problems.append(f"plan.evaluation.waves: an evaluation needs two waves of '{e.instrument}'")
        group = codebook.variables.get(e.group)
        if group is not None and group.values:
            codes = {normalise_text(str(c)) for c in codebook.value_sets[group.values].codes}
            for key in ("treated", "comparison"):
                if normalise_text(str(getattr(e, key))) not in codes:
                    problems.append(f"plan.evaluation.{key}: '{getattr(e, key)}' is not a code of value set "
                                    f"'{group.values}'")
        if e.cooperation and e.cooperation.instrument in codebooks:
            c = e.cooperation
            if not any(v.group == c.group for v in codebooks[c.instrument].variables.values()):
                problems.append(f"plan.evaluation.cooperation.group: no variable of '{c.instrument}' is in "
                                f"group '{c.group}'")
    if plan.services:
        problems += _services_problems(study, codebooks)
    return problems


def _services_problems(study: Study, codebooks: dict[str, Codebook]) -> list[str]:
    """plan.services: its groups exist in the specialists' codebook, its service types are codes."""
    s, problems = study.plan.services, []
    staff = codebooks.get(s.specialists)
    for key, group in (("cooperation_group", s.cooperation_group), ("barriers_group", s.barriers_group),
                       ("training_needs_group", s.training_needs_group)):
        if staff and group and not any(v.group == group for v in staff.variables.values()):
            problems.append(f"plan.services.{key}: no variable of '{s.specialists}' is in group '{group}'")
    services = codebooks.get(s.instrument)
    kind = services.variables.get("service_type") if services else None
    if kind is not None and kind.values:
        codes = {normalise_text(str(c)) for c in services.value_sets[kind.values].codes}
        for j, need in enumerate(s.needs):
            for code in need.service_types:
                if normalise_text(code) not in codes:
                    problems.append(f"plan.services.needs.{j}.service_types: '{code}' is not a code of value set "
                                    f"'{kind.values}'")
    for j, need in enumerate(s.needs):
        book = codebooks.get(need.instrument)
        if book and s.wave is not None and s.wave not in study.instrument_waves(book):
            problems.append(f"plan.services.wave: '{s.wave}' is not a wave of '{need.instrument}'")
            break
    return problems


def first_wave(study: Study, codebook: Codebook, wave: str | None) -> str | None:
    """The plan's wave, or the instrument's first wave when the plan names none."""
    if wave is not None:
        return wave
    waves = study.instrument_waves(codebook)
    return waves[0] if waves else None


def evaluation_waves(study: Study, codebook: Codebook) -> list[str]:
    """The evaluation's waves in order (the plan's, else the instrument's)."""
    e = study.plan.evaluation
    return list(e.waves) if e and e.waves else study.instrument_waves(codebook)


def with_plan_outcomes(frame: pd.DataFrame, study: Study, instrument: str) -> pd.DataFrame:
    """The anon table with the plan's 0/1 outcome columns of this instrument added (or replaced)."""
    out = frame
    for name, definition in study.plan.outcomes.items():
        if definition.instrument != instrument or definition.variable not in frame.columns:
            continue
        source = frame[definition.variable]
        events = {normalise_text(str(v)) for v in definition.event}
        text = source.map(lambda v: None if pd.isna(v) else normalise_text(_code_text(v)), na_action=None)
        value = np.where(source.isna(), np.nan, text.isin(events).astype(float))
        out = out.assign(**{name: pd.Series(value, index=frame.index, dtype="float64")})
    return out


def _code_text(value: object) -> str:
    """A cell as the text a plan writes for it: integral numbers without '.0'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def analysis_plan_table(study: Study, codebooks: dict[str, Codebook]) -> pd.DataFrame:
    """meta.analysis_plan: the resolved plan, one row per part, as JSON; seeds included.

    Reports read what was analysed from here (never from Python modules), and a later
    reader sees exactly which plan produced the results.
    """
    plan = study.plan
    rows = []

    def add(part: str, name: str, body: dict, instrument: str | None) -> None:
        present = instrument is None or instrument in codebooks
        rows.append({"part": part, "name": name, "instrument": instrument, "present": present,
                     "spec": json.dumps(body, ensure_ascii=False, sort_keys=True, default=str)})

    for name, o in plan.outcomes.items():
        add("outcome", name, o.model_dump(mode="json"), o.instrument)
    for part in ("descriptives", "associations"):
        for a in getattr(plan, part):
            add(part.rstrip("s"), a.outcome, a.model_dump(mode="json"), a.instrument)
    for m in plan.models:
        body = m.model_dump(mode="json")
        if m.instrument in codebooks:
            body["wave"] = first_wave(study, codebooks[m.instrument], m.wave)
        body["imputations"] = plan.imputations
        body["imputation_seed"] = study.seed
        add("model", m.name, body, m.instrument)
    for s in plan.screening:
        add("screening", s.outcome, s.model_dump(mode="json"), s.instrument)
    for r in plan.reasons:
        add("reasons", r.group, r.model_dump(mode="json"), r.instrument)
    if plan.personas:
        p = plan.personas
        body = p.model_dump(mode="json")
        if p.instrument in codebooks:
            body["wave"] = first_wave(study, codebooks[p.instrument], p.wave)
        body["indicator_columns"] = [i.column for i in p.indicator_specs()]
        body["seed"] = derived_seed(study.seed, "personas")
        add("personas", "personas", body, p.instrument)
    if plan.evaluation:
        e = plan.evaluation
        body = e.model_dump(mode="json")
        if e.instrument in codebooks:
            body["waves"] = evaluation_waves(study, codebooks[e.instrument])
        add("evaluation", "evaluation", body, e.instrument)
    if plan.services:
        s = plan.services
        body = s.model_dump(mode="json")
        pupils = {n.instrument for n in s.needs}
        if len(pupils) == 1 and next(iter(pupils)) in codebooks:
            body["wave"] = first_wave(study, codebooks[next(iter(pupils))], s.wave)
        body["seed"] = derived_seed(study.seed, "cooperation_network")
        add("services", "services", body, s.instrument)
    if plan.survey:
        add("survey", "survey", plan.survey.model_dump(mode="json"), plan.survey.instrument)
    for instrument, codebook in sorted(codebooks.items()):
        add("waves", instrument, {"waves": study.instrument_waves(codebook)}, instrument)
    return pd.DataFrame(rows, columns=["part", "name", "instrument", "present", "spec"])

"""The pupils of the demo study: baseline and follow-up waves in codebook codes.

Every pupil has a persona class that drives the binary characteristics (truth.py); the
counts are drawn consistently with them (chronic_absence = 1 exactly when unexcused
absences >= 40, failing_any when failing grades >= 1, behaviour_any when incidents >= 3,
sen_support_any when the support level >= 2: the derived rules of codebooks/pupils.yaml),
and the motivation items are drawn so that their scale mean (item 3 reverse-keyed) is
below 3 exactly for pupils with low motivation. Status follows the planted dropout model.
About 70% of baseline pupils reappear in the follow-up with the same personal code, in the
next grade, with their class kept and their characteristics partly persisting.
Values here are codes (value_sets.yaml); spellings are the writers' business.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipelines.synth import people
from pipelines.synth.truth import INDICATORS, MALE_SHARE, draw_classes, draw_dropout, draw_indicators

_GRADE_WEIGHTS = np.array([1, 1, 2, 3, 4, 6, 8, 9, 10, 9, 7, 5], dtype=float)
_GRADES_BY_TYPE = {"basic": (1, 9), "upper_secondary": (1, 12), "vocational": (10, 12)}
MOTIVATION_ITEMS = ("motivation_1", "motivation_2", "motivation_3", "motivation_4")
REVERSED_MOTIVATION = ("motivation_3",)
REASONS = ("reason_learning", "reason_motivation", "reason_family", "reason_health", "reason_work", "reason_moved")
SUPPORT = ("support_specialist", "individual_curriculum", "counselling", "youth_work", "social_services")
_PERSIST = 0.7  # probability a characteristic keeps its baseline value in the follow-up


def _bern(rng: np.random.Generator, p: np.ndarray | float, n: int) -> np.ndarray:
    return (rng.random(n) < p).astype(np.int8)


def _grades(rng: np.random.Generator, school_type: np.ndarray) -> np.ndarray:
    grade = np.empty(len(school_type), dtype=np.int64)
    for kind, (low, high) in _GRADES_BY_TYPE.items():
        rows = school_type == kind
        weights = _GRADE_WEIGHTS[low - 1:high] / _GRADE_WEIGHTS[low - 1:high].sum()
        grade[rows] = rng.choice(np.arange(low, high + 1), size=int(rows.sum()), p=weights)
    return grade


def _motivation(rng: np.random.Generator, low: np.ndarray) -> dict[str, np.ndarray]:
    """Four Likert items whose keyed mean is < 3 exactly when `low` is 1."""
    n = len(low)
    keyed = np.zeros((n, len(MOTIVATION_ITEMS)), dtype=np.int64)
    todo = np.arange(n)
    while todo.size:
        theta = rng.normal(np.where(low[todo] == 1, -0.9, 0.8), 0.6)
        draw = np.clip(np.rint(3 + theta[:, None] + rng.normal(0, 0.7, (todo.size, keyed.shape[1]))), 1, 5)
        keyed[todo] = draw
        todo = todo[(keyed[todo].mean(axis=1) < 3) != (low[todo] == 1)]
    items = {name: keyed[:, j] for j, name in enumerate(MOTIVATION_ITEMS)}
    for name in REVERSED_MOTIVATION:
        items[name] = 6 - items[name]
    return items


def counts_from_flags(rng: np.random.Generator, flags: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Counts and support level consistent with the derived indicators' thresholds."""
    n = len(flags["chronic_absence"])
    absences = np.where(flags["chronic_absence"] == 1, 40 + rng.negative_binomial(2, 0.07, n),
                        np.minimum(rng.negative_binomial(1.2, 0.12, n), 39))
    failing = np.where(flags["failing_any"] == 1, np.minimum(1 + rng.poisson(1.2, n), 20), 0)
    behaviour = np.where(flags["behaviour_any"] == 1, np.minimum(3 + rng.poisson(2.0, n), 200),
                         rng.choice(3, size=n, p=[0.6, 0.25, 0.15]))
    sen = np.where(flags["sen_support_any"] == 1, rng.choice([2, 3], size=n, p=[0.75, 0.25]),
                   rng.choice([0, 1], size=n))
    return {"unexcused_absences": np.minimum(absences, 600), "failing_grades": failing,
            "behaviour_incidents": behaviour, "sen_support": sen}


def _characteristics(rng: np.random.Generator, frame: pd.DataFrame, flags: dict[str, np.ndarray],
                     school_effect: np.ndarray) -> pd.DataFrame:
    """Everything that follows from the flags: counts, items, support, status, reasons."""
    n = len(frame)
    out = frame.copy()
    for name in INDICATORS:
        if name not in ("chronic_absence", "failing_any", "behaviour_any", "sen_support_any", "low_motivation"):
            out[name] = flags[name]
    for name, values in counts_from_flags(rng, flags).items():
        out[name] = values
    for name, values in _motivation(rng, flags["low_motivation"]).items():
        out[name] = values
    family = (flags["single_parent"] | flags["child_protection_case"] | flags["low_income"]).astype(int)
    out["support_specialist"] = _bern(rng, 0.3 + 0.4 * flags["sen_support_any"], n)
    out["individual_curriculum"] = _bern(rng, 0.05 + 0.5 * flags["sen_support_any"], n)
    out["counselling"] = _bern(rng, 0.2 + 0.3 * flags["mental_health_concern"], n)
    out["youth_work"] = _bern(rng, 0.15 + 0.2 * flags["behaviour_any"], n)
    out["social_services"] = _bern(rng, 0.1 + 0.4 * family, n)
    terms = {"male": (out["sex"] == "male").to_numpy().astype(int), **{k: flags[k] for k in
             ("chronic_absence", "failing_any", "repeated_grade", "low_income", "hobby_education")}}
    dropout = draw_dropout(rng, terms, school_effect)
    warning = flags["chronic_absence"] | flags["failing_any"] | flags["behaviour_any"]
    at_risk = _bern(rng, 0.25 + 0.35 * warning, n)
    out["status"] = np.where(dropout == 1, "dropped_out", np.where(at_risk == 1, "at_risk", "enrolled"))
    age16 = (out["grade"].to_numpy() >= 9).astype(int)
    reason_p = {
        "reason_learning": 0.15 + 0.5 * flags["failing_any"],
        "reason_motivation": 0.2 + 0.5 * flags["low_motivation"],
        "reason_family": 0.1 + 0.5 * family,
        "reason_health": 0.05 + 0.5 * (flags["health_concern"] | flags["mental_health_concern"]),
        "reason_work": 0.05 + 0.25 * age16,
        "reason_moved": np.full(n, 0.1),
    }
    for name, p in reason_p.items():
        out[name] = pd.array(np.where(dropout == 1, _bern(rng, p, n), -1), dtype="Int64")
        out.loc[dropout == 0, name] = pd.NA
    out["dropout"] = dropout
    return out


def baseline(rng: np.random.Generator, munis: pd.DataFrame, schools: pd.DataFrame, n: int,
             reference: dt.date) -> tuple[pd.DataFrame, np.ndarray]:
    """Baseline pupils (codes) and their n x len(INDICATORS) true indicator matrix."""
    muni_index = rng.choice(len(munis), size=n, p=munis["share"].to_numpy())
    frame = pd.DataFrame({"municipality": munis["municipality"].to_numpy()[muni_index],
                          "county": munis["county"].to_numpy()[muni_index]})
    school_rows = np.empty(n, dtype=np.int64)
    for name, rows in frame.groupby("municipality").indices.items():
        candidates = np.flatnonzero(schools["municipality"].to_numpy() == name)
        weights = schools["size_weight"].to_numpy()[candidates]
        school_rows[rows] = rng.choice(candidates, size=len(rows), p=weights / weights.sum())
    frame["school"] = schools["school"].to_numpy()[school_rows]
    frame["school_type"] = schools["school_type"].to_numpy()[school_rows]
    school_effect = schools["school_effect"].to_numpy()[school_rows]
    frame["grade"] = _grades(rng, frame["school_type"].to_numpy())
    male = _bern(rng, MALE_SHARE, n)
    frame["sex"] = np.where(male == 1, "male", "female")
    russian = munis["russian_share"].to_numpy()[muni_index]
    u = rng.random(n)
    frame["home_language"] = np.where(u < russian, "ru", np.where(u > 0.98, "other", "et"))
    classes = draw_classes(rng, n)
    indicators = draw_indicators(rng, classes)
    flags = {name: indicators[:, j] for j, name in enumerate(INDICATORS)}
    frame = _characteristics(rng, frame, flags, school_effect)
    frame["persona"] = classes
    frame["school_effect"] = school_effect
    birth = people.school_birth_dates(rng, frame["grade"].to_numpy(), flags["repeated_grade"], reference)
    frame = frame.assign(**identities(rng, frame, birth, male))
    frame["pupil_id"] = np.arange(n)
    return frame, indicators


def identities(rng: np.random.Generator, frame: pd.DataFrame, birth: np.ndarray, male: np.ndarray) -> dict:
    """Names, personal code, birth date, e-mail, parent, phone, address, class name."""
    language = frame["home_language"].to_numpy()
    first, last = people.draw_names(rng, language, male)
    parent_first, _ = people.draw_names(rng, language, np.zeros(len(frame), dtype=np.int8))
    parent_last = np.where(language == "ru", [people.feminine(x) for x in last], last)
    letters = np.array(list("abcde"))[rng.integers(0, 5, size=len(frame))]
    return {
        "first_name": first, "last_name": last,
        "birth_date": birth,
        "personal_code": people.personal_codes(rng, birth, male),
        "email": people.emails(rng, first, last),
        "parent_name": np.array([f"{a} {b}" for a, b in zip(parent_first, parent_last)], dtype=object),
        "parent_phone": people.phones(rng, len(frame)),
        "home_address": people.addresses(rng, frame["municipality"].to_numpy()),
        "class_letter": letters,
    }


def followup(rng: np.random.Generator, base: pd.DataFrame, base_indicators: np.ndarray, munis: pd.DataFrame,
             schools: pd.DataFrame, reference: dt.date) -> pd.DataFrame:
    """The follow-up wave: ~70% of baseline pupils a grade up, plus new pupils."""
    n = len(base)
    p_stay = np.where(base["dropout"].to_numpy() == 1, 0.45, 0.76) * (base["grade"].to_numpy() < 12)
    stay = np.flatnonzero(rng.random(n) < p_stay)
    stayers = base.iloc[stay].copy()
    stayers["grade"] = stayers["grade"] + 1
    kept = rng.random((len(stay), len(INDICATORS))) < _PERSIST
    redrawn = draw_indicators(rng, stayers["persona"].to_numpy())
    indicators = np.where(kept, base_indicators[stay], redrawn)
    flags = {name: indicators[:, j] for j, name in enumerate(INDICATORS)}
    carried = stayers[["municipality", "county", "school", "school_type", "grade", "sex", "home_language",
                       "persona", "school_effect", "first_name", "last_name", "birth_date", "personal_code",
                       "email", "parent_name", "parent_phone", "home_address", "class_letter", "pupil_id"]]
    stayers = _characteristics(rng, carried.reset_index(drop=True), flags, carried["school_effect"].to_numpy())
    newcomers, _ = baseline(rng, munis, schools, int(round(0.3 * n)), reference)
    newcomers["pupil_id"] = newcomers["pupil_id"] + n + 10**8  # ids distinct from baseline pupils
    _redraw_taken_codes(rng, newcomers, set(base["personal_code"]))
    return pd.concat([stayers, newcomers], ignore_index=True)


def _redraw_taken_codes(rng: np.random.Generator, newcomers: pd.DataFrame, taken: set[str]) -> None:
    """New pupils drawn separately could get a baseline pupil's code: draw those again."""
    male = (newcomers["sex"] == "male").to_numpy()
    for _ in range(100):
        codes = newcomers["personal_code"].to_numpy()
        # a set lookup per code: np.isin on object arrays compares every code with every taken one
        known = np.fromiter((code in taken for code in codes), dtype=bool, count=len(codes))
        clash = np.flatnonzero(known | pd.Series(codes).duplicated().to_numpy())
        if clash.size == 0:
            return
        births = newcomers["birth_date"].to_numpy()[clash].astype("datetime64[D]")
        newcomers.iloc[clash, newcomers.columns.get_loc("personal_code")] = people.personal_codes(rng, births, male[clash])
    raise RuntimeError("could not draw unique personal codes for the follow-up wave")

"""Planting the defects real exports have, each one counted for the truth.

Every planter changes rows that no other planter has touched (so one row carries one
defect and the ingest's findings can be reconciled class by class), and returns how many
it planted. Defect classes (the keys of the truth's `defects`):

- municipality_variant: alias, letters folded ("Voru vald"), extra spaces, upper case
  (the ingest must accept these);
- invalid_personal_code: a wrong check digit (the pupil stays recognisable by name,
  birth date and municipality);
- missing_code: -9, 99 or "ei tea"/"не знаю", from the variable's own missing list;
- stray_spaces: leading or trailing spaces around an answer;
- likert_as_text: a Likert answer as its Estonian text in a coded (LimeSurvey) file;
- out_of_range: grade 14, absences -5 (value becomes missing, row kept);
- unmappable_category: a spelling no value set knows (row kept, value missing);
- date_wrong_format: a date written as 14/05/2024 where dd.mm.yyyy or a date cell is due;
- duplicate_row: the same pupil twice in one file, exact or near-exact (rejected);
- missing_municipality, unknown_municipality: rows the ingest must reject.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.synth.config import Spellings
from pipelines.synth.names import fold_ascii
from pipelines.synth.people import wrong_check_digit

UNKNOWN_MUNICIPALITY = "Tallinn"
#: Spellings that no value set maps, one per export style.
UNMAPPABLE = {"numeric": 7, "limesurvey": "A9", "text": "vahel"}

#: Per instrument: which variables receive missing codes, stray spaces and so on.
_MISSING_TARGETS = {
    "pupils": ("unexcused_absences", "sen_support", "motivation_2", "low_income"),
    "pilot": ("failing_grades", "sdl_mot_2", "risk_level"),
    "specialists": ("caseload", "comp_assessment", "experience_years"),
    "services": ("waiting_days", "capacity"),
}
_UNMAPPABLE_TARGET = {"numeric": "school_type", "limesurvey": "sen_support", "text": "bullying"}
_OUT_OF_RANGE = {"pupils": (("grade", 14), ("unexcused_absences", -5)), "pilot": (("failing_grades", 25),)}
_LIKERT_SET = "agree5"


@dataclass
class MessContext:
    """What the planters need to know about one file."""

    instrument: str
    style: str  # numeric | limesurvey | text
    variables: dict[str, dict[str, Any]]
    spellings: Spellings
    missing_codes: dict[str, list[Any]]
    aliases: dict[str, list[str]]
    touched: set[int] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)


def _howmany(n: int, rate: float) -> int:
    return max(1, int(round(rate * n))) if n else 0


def _free_rows(rng: np.random.Generator, ctx: MessContext, frame: pd.DataFrame, k: int, mask=None) -> np.ndarray:
    candidates = np.array([i for i in range(len(frame)) if i not in ctx.touched
                           and (mask is None or mask[i])], dtype=np.int64)
    rows = rng.permutation(candidates)[:k]
    ctx.touched.update(int(i) for i in rows)
    return rows


def municipality_variants(rng, frame, ctx, rate=0.03) -> None:
    """Alias, folded letters, extra spaces or upper case instead of the canonical name."""
    col = frame.columns.get_loc("municipality")
    for i in _free_rows(rng, ctx, frame, _howmany(len(frame), rate)):
        name = frame.iat[i, col]
        options = [*ctx.aliases.get(name, []), fold_ascii(name), f" {name}", f"{name}  ",
                   name.replace(" ", "  "), name.upper()]
        options = [o for o in options if o != name]
        frame.iat[i, col] = options[rng.integers(0, len(options))]
        ctx.counts["municipality_variant"] += 1


def invalid_codes(rng, frame, ctx, rate=0.01) -> None:
    col = frame.columns.get_loc("personal_code")
    for i in _free_rows(rng, ctx, frame, _howmany(len(frame), rate)):
        frame.iat[i, col] = wrong_check_digit(frame.iat[i, col], int(rng.integers(1, 10)))
        ctx.counts["invalid_personal_code"] += 1


def _spelled_missing(rng, ctx: MessContext, variable: str, russian: bool) -> Any:
    codes = ctx.missing_codes[variable]
    numeric = [c for c in codes if isinstance(c, int)]
    if ctx.style == "numeric":
        return numeric[rng.integers(0, len(numeric))]
    if ctx.style == "text":
        return "не знаю" if russian and "не знаю" in codes else "ei tea"
    texts = [str(c) for c in numeric] + ["ei tea"]
    return texts[rng.integers(0, len(texts))]


def missing_codes(rng, frame, ctx, rate=0.02) -> None:
    targets = [t for t in _MISSING_TARGETS.get(ctx.instrument, ()) if t in frame.columns]
    russian = frame["_russian"].to_numpy() if "_russian" in frame else np.zeros(len(frame), bool)
    for i in _free_rows(rng, ctx, frame, _howmany(len(frame), rate)):
        variable = targets[rng.integers(0, len(targets))]
        frame.iat[i, frame.columns.get_loc(variable)] = _spelled_missing(rng, ctx, variable, bool(russian[i]))
        ctx.counts["missing_code"] += 1


def stray_spaces(rng, frame, ctx, rate=0.03) -> None:
    """Spaces around a text answer (coded/text exports) or a school name (numeric ones)."""
    if ctx.style == "numeric":
        columns = [c for c in ("school", "role_title") if c in frame.columns]
    else:
        columns = [v for v, spec in ctx.variables.items() if spec.get("type") == "categorical" and v in frame.columns
                   and v not in ("group",)]
    for i in _free_rows(rng, ctx, frame, _howmany(len(frame), rate)):
        order = rng.permutation(len(columns))
        for j in order:
            col = frame.columns.get_loc(columns[j])
            value = frame.iat[i, col]
            if isinstance(value, str) and value:
                frame.iat[i, col] = (" " + value) if rng.random() < 0.5 else (value + "  ")
                ctx.counts["stray_spaces"] += 1
                break


def likert_as_text(rng, frame, ctx, rate=0.02) -> None:
    if ctx.style != "limesurvey":
        return
    items = [v for v, spec in ctx.variables.items() if spec.get("values") == _LIKERT_SET and v in frame.columns]
    back = {ctx.spellings.spell(_LIKERT_SET, c, "limesurvey"): ctx.spellings.spell(_LIKERT_SET, c, "et")
            for c in ctx.spellings.codes(_LIKERT_SET)}
    for i in _free_rows(rng, ctx, frame, _howmany(len(frame), rate)):
        col = frame.columns.get_loc(items[rng.integers(0, len(items))])
        if frame.iat[i, col] in back:
            frame.iat[i, col] = back[frame.iat[i, col]]
            ctx.counts["likert_as_text"] += 1


def out_of_range(rng, frame, ctx, rate=0.005) -> None:
    options = _OUT_OF_RANGE.get(ctx.instrument, ())
    for i in _free_rows(rng, ctx, frame, _howmany(len(frame), rate) if options else 0):
        variable, value = options[rng.integers(0, len(options))]
        frame.iat[i, frame.columns.get_loc(variable)] = value if ctx.style != "limesurvey" else str(value)
        ctx.counts["out_of_range"] += 1


def unmappable(rng, frame, ctx, rate=0.003) -> None:
    variable = _UNMAPPABLE_TARGET[ctx.style]
    if ctx.instrument != "pupils" or variable not in frame.columns:
        return
    for i in _free_rows(rng, ctx, frame, _howmany(len(frame), rate)):
        frame.iat[i, frame.columns.get_loc(variable)] = UNMAPPABLE[ctx.style]
        ctx.counts["unmappable_category"] += 1


def wrong_date_format(rng, frame, ctx, column="assessed_on") -> None:
    if ctx.style == "numeric" or column not in frame.columns:
        return
    frame[column] = frame[column].astype(object)  # a datetime column would parse the text back
    for i in _free_rows(rng, ctx, frame, 1):
        value = pd.Timestamp(frame.iat[i, frame.columns.get_loc(column)])
        frame.iat[i, frame.columns.get_loc(column)] = value.strftime("%d/%m/%Y")
        ctx.counts["date_wrong_format"] += 1


def duplicates(rng, frame, ctx, rate=0.01) -> pd.DataFrame:
    """Append exact or near-exact copies (notes emptied) of untouched rows."""
    rows = _free_rows(rng, ctx, frame, _howmany(len(frame), rate))
    copies = frame.iloc[rows].copy()
    near = rng.random(len(copies)) < 0.5
    if "notes" in copies:
        copies.loc[copies.index[near], "notes"] = ""
    ctx.counts["duplicate_row"] += len(copies)
    return pd.concat([frame, copies], ignore_index=True)


def rejects(rng, frame, ctx, outsiders: pd.DataFrame, rate=0.003) -> pd.DataFrame:
    """Append rows of people outside the study with no or an unknown municipality."""
    k = _howmany(len(frame), rate)
    clean = np.array([i for i in range(len(frame)) if i not in ctx.touched], dtype=np.int64)
    template = frame.iloc[clean[rng.integers(0, len(clean), size=2 * k)]].copy().reset_index(drop=True)
    # an outsider of the template row's sex, so code and sex agree as in every other row
    male = np.array([str(code)[0] in "35" for code in template["personal_code"]])
    outsider_male = outsiders["personal_code"].str[0].isin(["3", "5"]).to_numpy()
    picks = np.empty(len(template), dtype=np.int64)
    picks[male] = np.flatnonzero(outsider_male)[: int(male.sum())]
    picks[~male] = np.flatnonzero(~outsider_male)[: int((~male).sum())]
    for column in outsiders.columns:
        if column in template:
            template[column] = outsiders[column].to_numpy()[picks]
    if "notes" in template:
        template["notes"] = ""
    template.loc[:k - 1, "municipality"] = ""
    template.loc[k:, "municipality"] = UNKNOWN_MUNICIPALITY
    ctx.counts["missing_municipality"] += k
    ctx.counts["unknown_municipality"] += k
    return pd.concat([frame, template], ignore_index=True)

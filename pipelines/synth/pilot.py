"""Pilot assessments: pilot and comparison pupils before and after the pilot year.

Planted effects (truth `pilot`): the self-directed-learning score `sdl` (mean of the 10
items after reverse-keying) rises by 0.35 more in the pilot group than in the comparison
group, and unexcused absences fall by 6 lessons more. Both are exact in expectation:
items are drawn from the same latent trait before and after (no common trend that the
1-5 clipping could bend), pilot pupils then get 3 or 4 of their 10 keyed items raised by
one step (3.5 / 10 = 0.35), and absences are Poisson with the pilot's rate lowered by 6
(pilot rates stay above 20, so the lowered rate is never clipped). Failing grades and the
risk level are drawn from the same distribution before and after: null outcomes.
Pilot pupils are worse at baseline than comparison pupils.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SDL_DID = 0.35
ABSENCE_DID = -6.0
NULL_OUTCOMES = ("failing_grades", "risk_level")
_PILOT_PER_MUNICIPALITY = (7, 8)
_COMPARISON_PER_MUNICIPALITY = 15
_LOST_AT_POST = 0.10
_CARRIED = ("municipality", "county", "school", "home_language", "first_name", "last_name", "birth_date",
            "personal_code", "pupil_id")


def select_pupils(rng: np.random.Generator, base: pd.DataFrame) -> pd.DataFrame:
    """7-8 pilot pupils per municipality from baseline pupils at risk, ~15 comparison pupils."""
    chosen = []
    for _, rows in base.groupby("municipality", sort=True).indices.items():
        rows = rng.permutation(rows)
        risk = rows[base["status"].to_numpy()[rows] == "at_risk"]
        pilot = risk[: rng.choice(_PILOT_PER_MUNICIPALITY)]
        rest = np.setdiff1d(rows, pilot)
        rest = rest[base["status"].to_numpy()[rest] != "dropped_out"]
        comparison = rng.permutation(rest)[:_COMPARISON_PER_MUNICIPALITY]
        chosen.append(pd.DataFrame({"row": np.concatenate([pilot, comparison]),
                                    "group": ["pilot"] * len(pilot) + ["comparison"] * len(comparison)}))
    picked = pd.concat(chosen, ignore_index=True)
    out = base.iloc[picked["row"].to_numpy()][list(_CARRIED)].reset_index(drop=True)
    out["group"] = picked["group"].to_numpy()
    return out


def _sdl_items(rng: np.random.Generator, theta: np.ndarray, items: list[str]) -> np.ndarray:
    noise = rng.normal(0, 0.8, (len(theta), len(items)))
    return np.clip(np.rint(3 + theta[:, None] + noise), 1, 5).astype(np.int64)


def _raise_items(rng: np.random.Generator, keyed: np.ndarray, pilot: np.ndarray) -> np.ndarray:
    """Raise 3 or 4 (mean 3.5) of each pilot pupil's keyed items below 5 by one step."""
    out = keyed.copy()
    steps = rng.choice([3, 4], size=len(keyed))
    order = np.argsort(rng.random(keyed.shape) + (keyed >= 5) * 2, axis=1)  # items below 5 first
    for i in np.flatnonzero(pilot):
        room = order[i][: int((keyed[i] < 5).sum())]
        out[i, room[: steps[i]]] += 1
    return out


def assessments(rng: np.random.Generator, pupils: pd.DataFrame, base: pd.DataFrame, sdl_items: list[str],
                reversed_items: list[str]) -> dict[str, pd.DataFrame]:
    """The pre and post assessment tables (codes), one row per pupil assessed."""
    n = len(pupils)
    pilot = (pupils["group"] == "pilot").to_numpy()
    theta = rng.normal(np.where(pilot, -0.6, 0.0), 0.7)
    rate = np.where(pilot, 20 + rng.gamma(4, 6, n), rng.gamma(2, 8, n))
    fail_rate = rng.gamma(2, np.where(pilot, 0.75, 0.3), n)
    risk_p = np.where(pilot[:, None], [0.15, 0.45, 0.40], [0.5, 0.35, 0.15])
    keyed_pre = _sdl_items(rng, theta, sdl_items)
    keyed_post = _raise_items(rng, _sdl_items(rng, theta, sdl_items), pilot)
    waves = {}
    for wave, keyed, absence_rate, months in (("pre", keyed_pre, rate, (9, 10)),
                                              ("post", keyed_post, rate + ABSENCE_DID * pilot, (4, 5))):
        frame = pupils.copy()
        year = 2023 if wave == "pre" else 2024
        month = rng.integers(months[0], months[1] + 1, n)
        frame["assessed_on"] = pd.to_datetime(pd.DataFrame({"year": year, "month": month,
                                                            "day": rng.integers(1, 29, n)}))
        absences = np.minimum(rng.poisson(absence_rate), 600)
        failing = np.minimum(rng.poisson(fail_rate), 20)
        frame["unexcused_absences"] = absences
        frame["failing_grades"] = failing
        frame["risk_level"] = 1 + (rng.random(n)[:, None] > np.cumsum(risk_p, axis=1)).sum(axis=1).clip(0, 2)
        frame["attendance_flag"] = (absences >= 40).astype(np.int8)
        frame["behaviour_flag"] = (rng.random(n) < np.where(pilot, 0.4, 0.15)).astype(np.int8)
        frame["performance_flag"] = (failing >= 1).astype(np.int8)
        for j, item in enumerate(sdl_items):
            frame[item] = 6 - keyed[:, j] if item in reversed_items else keyed[:, j]
        waves[wave] = frame
    lost = rng.random(n) < _LOST_AT_POST
    waves["post"] = waves["post"][~lost].reset_index(drop=True)
    # a few pupils enter the pilot late and are assessed only at the end
    late_count = max(1, n // 40)
    outside = base[~base["pupil_id"].isin(pupils["pupil_id"]) & (base["status"] != "dropped_out")]
    late = outside.iloc[rng.permutation(len(outside))[:late_count]][list(_CARRIED)].reset_index(drop=True)
    late["group"] = np.where(rng.random(len(late)) < 0.5, "pilot", "comparison")
    late_post = assessments_without_pre(rng, late, waves["post"])
    waves["post"] = pd.concat([waves["post"], late_post], ignore_index=True)
    return waves


def assessments_without_pre(rng: np.random.Generator, late: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    """Post-only rows for late entrants: measures copied from random post rows of their group."""
    rows = []
    for group in late["group"]:
        pool = np.flatnonzero(template["group"].to_numpy() == group)
        rows.append(pool[rng.integers(0, len(pool))])
    measures = template.iloc[rows].drop(columns=list(_CARRIED) + ["group"]).reset_index(drop=True)
    return pd.concat([late.reset_index(drop=True), measures], axis=1)

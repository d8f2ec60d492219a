"""Municipalities and schools of the demo study, with realistic, unequal sizes.

Pupil numbers follow the municipalities' populations (Statistics Estonia, 2023, rounded),
so Tartu linn is large and Setomaa or Peipsiääre have only a few dozen mapped pupils at
the default size: small cells occur as they do in real studies. A municipality that a
researcher adds to the study YAML gets a mid-sized default. Each municipality has several
schools; each school carries a random intercept on the dropout logit (truth.SCHOOL_SD).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipelines.synth.config import StudyFiles
from pipelines.synth.names import SCHOOL_SUFFIXES, TOWN_SCHOOL_WORDS, villages_of
from pipelines.synth.truth import SCHOOL_SD

POPULATION: dict[str, int] = {
    "Antsla vald": 4500, "Rõuge vald": 5300, "Setomaa vald": 3200, "Võru linn": 11900, "Võru vald": 10800,
    "Väike-Maarja vald": 5800, "Haljala vald": 4200, "Kadrina vald": 4900, "Viru-Nigula vald": 5600,
    "Rakvere vald": 4500, "Rakvere linn": 15000, "Vinni vald": 6700, "Tapa vald": 10500,
    "Tartu linn": 95000, "Elva vald": 14200, "Nõo vald": 4200, "Kambja vald": 11000, "Kastre vald": 5100,
    "Luunja vald": 5100, "Peipsiääre vald": 3000, "Tartu vald": 11500,
}
_DEFAULT_POPULATION = 6000
#: Share of pupils whose home language is Russian (the rest Estonian, 2% other).
RUSSIAN_SHARE: dict[str, float] = {
    "Tartu linn": 0.17, "Peipsiääre vald": 0.30, "Tapa vald": 0.15, "Rakvere linn": 0.08, "Viru-Nigula vald": 0.10,
}
_DEFAULT_RUSSIAN_SHARE = 0.03
_SCHOOLS_AT_DEFAULT = 150
_DEFAULT_PUPILS = 3000


def municipalities(files: StudyFiles) -> pd.DataFrame:
    """One row per municipality of the study YAML: name, county key, pupil share."""
    rows = []
    for county, spec in files.counties().items():
        for entry in spec["municipalities"]:
            name = entry["name"]
            rows.append({"municipality": name, "county": county, "aliases": list(entry.get("aliases", [])),
                         "population": POPULATION.get(name, _DEFAULT_POPULATION),
                         "russian_share": RUSSIAN_SHARE.get(name, _DEFAULT_RUSSIAN_SHARE)})
    frame = pd.DataFrame(rows)
    frame["share"] = frame["population"] / frame["population"].sum()
    return frame


def _school_names(municipality: str, count: int, county_seat: bool, used: set[str]) -> list[tuple[str, str]]:
    """(name, school type) pairs: a gymnasium first, then basic schools, a vocational school
    in the county's largest municipality; names like "Antsla Gümnaasium"."""
    places = list(villages_of(municipality))
    town = places[0]
    types = ["upper_secondary"] + (["vocational"] if county_seat else []) + ["basic"] * count
    names: list[tuple[str, str]] = []
    words = iter(TOWN_SCHOOL_WORDS)
    place_cycle = iter(places[1:] if len(places) > 1 else [])
    for i, school_type in enumerate(types[:count]):
        suffix = SCHOOL_SUFFIXES[school_type][i % len(SCHOOL_SUFFIXES[school_type])]
        stem = next(place_cycle, None)
        if i == 0 or school_type == "vocational" or stem is None:
            word = next(words, None)
            stem = town if i == 0 or school_type == "vocational" else (f"{town} {word}" if word else f"{town} {i}.")
        name = f"{stem} {suffix}"
        if name in used:  # the same village name in two municipalities
            name = f"{stem} {suffix} ({municipality.rsplit(' ', 1)[0]})"
        used.add(name)
        names.append((name, school_type))
    return names


def schools(rng: np.random.Generator, munis: pd.DataFrame, pupils: int) -> pd.DataFrame:
    """Schools of each municipality with type and dropout random intercept.

    About 150 schools in all at the default 3,000 pupils, growing with the square root of
    the study size (bigger studies cover more schools, not only bigger ones).
    """
    total = _SCHOOLS_AT_DEFAULT * math.sqrt(max(pupils, 1) / _DEFAULT_PUPILS)
    largest = munis.loc[munis.groupby("county")["population"].idxmax(), "municipality"].tolist()
    rows = []
    used: set[str] = set()
    for muni in munis.itertuples():
        count = max(2, int(round(total * muni.share)))
        for name, school_type in _school_names(muni.municipality, count, muni.municipality in largest, used):
            rows.append({"school": name, "municipality": muni.municipality, "school_type": school_type})
    frame = pd.DataFrame(rows)
    frame["school_effect"] = rng.normal(0.0, SCHOOL_SD, size=len(frame))
    frame["size_weight"] = rng.gamma(2.0, 1.0, size=len(frame))
    return frame

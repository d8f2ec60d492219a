"""Specialists (before and after the pilot) and the municipalities' service mapping.

Specialists: about 60 per county, spread over its municipalities by size; about 60% of
them answer both waves (same e-mail, the identity the staff pseudonym is computed from).
After the pilot, those who took the project's training report a little more cooperation
with each sector (each frequency one step up with probability 0.35) and a little more
competence (one step up with probability 0.3). Services: 5-12 per municipality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.synth import people
from pipelines.synth.names import fold_ascii

SPECIALISTS_PER_COUNTY = 60
_BOTH_WAVES = 0.6
SECTOR_ROLES: dict[str, tuple[str, ...]] = {
    "education": ("sotsiaalpedagoog", "eripedagoog", "klassiõpetaja", "koolipsühholoog", "HEV-koordinaator"),
    "social": ("sotsiaaltöötaja", "sotsiaalnõunik"),
    "youth": ("noorsootöötaja", "noortekeskuse juht"),
    "child_protection": ("lastekaitsespetsialist", "lastekaitsetöötaja"),
    "health": ("kooliõde", "perearst"),
    "police": ("noorsoopolitseinik", "piirkonnapolitseinik"),
}
_SECTOR_P = [0.45, 0.15, 0.12, 0.14, 0.09, 0.05]
COMPETENCE = ("comp_noticing", "comp_assessment", "comp_case_management", "comp_cooperation")
COOPERATION = ("coop_education", "coop_social", "coop_youth", "coop_child_protection", "coop_health", "coop_police")
BARRIERS = ("barrier_time", "barrier_information", "barrier_data_protection", "barrier_turnover")
#: Training needs (multi-response) and how often each is named: mental health and data protection most.
TRAINING_NEEDS = {"training_need_noticing": 0.35, "training_need_case_management": 0.3,
                  "training_need_data_protection": 0.45, "training_need_mental_health": 0.55,
                  "training_need_cooperation": 0.25}


def _people(rng: np.random.Generator, munis: pd.DataFrame, count: int) -> pd.DataFrame:
    county_share = munis["share"] / munis.groupby("county")["share"].transform("sum")
    n_per = np.maximum(1, np.rint(np.sqrt(county_share) / np.sqrt(county_share).groupby(munis["county"]).transform("sum")
                                  * count)).astype(int)
    frame = pd.DataFrame({"municipality": np.repeat(munis["municipality"].to_numpy(), n_per),
                          "county": np.repeat(munis["county"].to_numpy(), n_per)})
    n = len(frame)
    male = (rng.random(n) < 0.2).astype(np.int8)
    first, last = people.draw_names(rng, np.where(rng.random(n) < 0.08, "ru", "et"), male)
    frame["first_name"], frame["last_name"] = first, last
    domain = np.array([fold_ascii(m.rsplit(" ", 1)[0]).lower().replace("-", "") + ".ee"
                       for m in frame["municipality"]])
    frame["email"] = people.unique_emails(people.emails(rng, first, last, domains=None))
    work = rng.random(n) < 0.6
    frame.loc[work, "email"] = people.unique_emails(np.array(
        [f"{e.split('@')[0]}@{d}" for e, d in zip(frame["email"][work], domain[work])], dtype=object))
    frame["phone"] = people.phones(rng, n)
    sector_codes = np.array(list(SECTOR_ROLES))
    frame["sector"] = sector_codes[rng.choice(len(sector_codes), size=n, p=_SECTOR_P)]
    frame["role_title"] = [SECTOR_ROLES[s][rng.integers(0, len(SECTOR_ROLES[s]))] for s in frame["sector"]]
    frame["experience_years"] = np.round(rng.gamma(2.0, 6.0, n).clip(0, 45), 1)
    caseload = rng.negative_binomial(2, 0.06, n).clip(0, 400)
    frame["caseload"] = np.where(caseload == 99, 98, caseload)  # 99 is a missing code here
    frame["training_taken"] = (rng.random(n) < 0.45).astype(np.int8)
    level = rng.normal(0, 0.8, n)
    for item in COMPETENCE:
        frame[item] = np.clip(np.rint(3.2 + level + rng.normal(0, 0.7, n)), 1, 5).astype(np.int64)
    for item in COOPERATION:
        frame[item] = rng.choice(np.arange(1, 6), size=n, p=[0.15, 0.3, 0.3, 0.2, 0.05])
    for j, item in enumerate(BARRIERS):
        frame[item] = (rng.random(n) < (0.6, 0.45, 0.35, 0.4)[j]).astype(np.int8)
    return frame


def specialists(rng: np.random.Generator, munis: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Pre and post survey tables (codes); about 60% of the pre respondents answer again."""
    count = SPECIALISTS_PER_COUNTY
    pre = _people(rng, munis, count)
    again = pre[rng.random(len(pre)) < _BOTH_WAVES].copy()
    trained = again["training_taken"].to_numpy() == 1
    for item in COOPERATION:
        step = trained & (rng.random(len(again)) < 0.35)
        again[item] = np.minimum(again[item].to_numpy() + step, 5)
    for item in COMPETENCE:
        step = trained & (rng.random(len(again)) < 0.3)
        again[item] = np.minimum(again[item].to_numpy() + step, 5)
    again["experience_years"] = again["experience_years"] + 1.0
    newcomers = _people(rng, munis, int(round(count * 0.4)))
    newcomers = newcomers[~newcomers["email"].isin(pre["email"])]
    waves = {"pre": pre, "post": pd.concat([again, newcomers], ignore_index=True)}
    child = rng.spawn(1)[0]  # its own stream: the main one (and all drawn after it) stays as it was
    for frame in waves.values():
        for item, p in TRAINING_NEEDS.items():
            frame[item] = (child.random(len(frame)) < p).astype(np.int8)
    return waves


_SERVICE_NAMES = {
    "counselling": ("{town} perenõustamine", "Noorte psühholoogiline nõustamine"),
    "support_specialist": ("{town} tugikeskus", "Logopeediline abi"),
    "youth_work": ("{town} noortekeskus", "Mobiilne noorsootöö"),
    "social_service": ("Tugiisikuteenus", "{town} sotsiaalteenused lastele"),
    "health_service": ("Kooliõendus", "Laste vaimse tervise keskus"),
    "hobby_education": ("{town} huvikool", "{town} spordiklubi"),
    "case_management": ("Juhtumikorraldus {town}", "Võrgustikutöö"),
}


def services(rng: np.random.Generator, munis: pd.DataFrame) -> pd.DataFrame:
    """5-12 services per municipality (codes), each with a contact person."""
    rows = []
    for muni in munis["municipality"]:
        town = muni.rsplit(" ", 1)[0]
        count = int(rng.integers(5, 13))
        kinds = rng.choice(list(_SERVICE_NAMES), size=count)
        for kind in kinds:
            template = _SERVICE_NAMES[kind][rng.integers(0, 2)]
            capacity = int(rng.integers(5, 120))
            rows.append({"municipality": muni, "service_name": template.format(town=town), "service_type": kind,
                         "provider_type": ["municipality", "state", "ngo", "private"][rng.choice(4, p=[.55, .15, .2, .1])],
                         "target_age_group": int(rng.integers(1, 5)), "capacity": capacity,
                         "current_users": int(min(capacity * rng.uniform(0.3, 1.3), 10000)),
                         "waiting_days": round(float(rng.gamma(1.5, 12.0)), 1),
                         "availability": int(rng.choice([1, 2, 3], p=[0.15, 0.45, 0.4]))})
    frame = pd.DataFrame(rows)
    n = len(frame)
    first, last = people.draw_names(rng, np.full(n, "et"), (rng.random(n) < 0.25).astype(np.int8))
    frame["contact_person"] = [f"{a} {b}" for a, b in zip(first, last)]
    frame["contact_email"] = people.unique_emails(people.emails(rng, first, last))
    frame["contact_phone"] = people.phones(rng, n)
    return frame


# ---------------------------------------------------------------------------------------
# Planted structure (issue 13): deterministic edits of the drawn tables, no random draws,
# so the generator's random stream (and everything drawn after it) is unchanged.

#: The planted weak link: these two sectors report cooperating with each other two steps
#: less often than drawn (at least 1, never), in every municipality and wave.
WEAK_LINK = ("education", "police")
WEAK_STEP = 2
#: In the municipality with the most specialists answering before the pilot, every
#: cooperation answer after it is this many steps higher (at most 5, daily).
RISE_STEP = 2
#: Service types that meet a mental-health concern in the demo (its plan says the same).
MENTAL_HEALTH_TYPES = ("counselling", "health_service")


def plant_cooperation(waves: dict[str, pd.DataFrame]) -> dict:
    """Plant the density rise and the weak link into the specialists' waves; return the truth."""
    first, last = list(waves)[0], list(waves)[-1]
    counts = waves[first]["municipality"].value_counts()
    rising = sorted(counts[counts == counts.max()].index)[0]
    post = waves[last]
    chosen = (post["municipality"] == rising).to_numpy()
    for item in COOPERATION:
        post.loc[chosen, item] = np.minimum(post.loc[chosen, item].to_numpy() + RISE_STEP, 5)
    a, b = WEAK_LINK
    for frame in waves.values():
        for own, partner in ((a, b), (b, a)):
            rows = (frame["sector"] == own).to_numpy()
            column = f"coop_{partner}"
            frame.loc[rows, column] = np.maximum(frame.loc[rows, column].to_numpy() - WEAK_STEP, 1)
    return {"weak_link": list(WEAK_LINK), "weak_step": WEAK_STEP,
            "density_rise": {"municipality": rising, "step": RISE_STEP, "waves": [first, last]},
            "training_needs": dict(TRAINING_NEEDS)}


def plant_service_gap(frame: pd.DataFrame, pupils: pd.DataFrame, need: str = "mental_health_concern"
                      ) -> tuple[pd.DataFrame, dict]:
    """The municipality with the highest share of pupils with ``need`` (among those with at
    least the median number of pupils) gets no service of MENTAL_HEALTH_TYPES; every other
    municipality gets at least one (its first service becomes counselling). Returns the
    services and the truth."""
    share = pupils.groupby("municipality")[need].mean()
    size = pupils["municipality"].value_counts()
    eligible = share[size.reindex(share.index).fillna(0) >= size.median()]
    gap = sorted(eligible[eligible == eligible.max()].index)[0]
    out = frame.loc[~((frame["municipality"] == gap) & frame["service_type"].isin(MENTAL_HEALTH_TYPES))].copy()
    for muni, rows in out.groupby("municipality", sort=True):
        if muni != gap and not rows["service_type"].isin(MENTAL_HEALTH_TYPES).any():
            out.loc[rows.index[0], "service_type"] = MENTAL_HEALTH_TYPES[0]
            out.loc[rows.index[0], "service_name"] = _SERVICE_NAMES[MENTAL_HEALTH_TYPES[0]][1]
    truth = {"gap": {"municipality": gap, "need": need, "service_types": list(MENTAL_HEALTH_TYPES),
                     "need_share": round(float(share[gap]), 6), "pupils": int(size[gap])}}
    return out.reset_index(drop=True), truth

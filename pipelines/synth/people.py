"""Realistic direct identifiers for generated people, drawn vectorised with numpy.

Personal codes follow the Estonian isikukood (GYYMMDDSSSC: sex-and-century digit, birth
date, serial, check digit by the two-pass modulus-11 rule of EVS 585, the rule
`stdnum.ee.ik` implements and the tests check against). Serials are unique within each
birth date and sex, so codes never collide. Names come from names.NAME_POOLS; e-mails
fold Estonian letters ("Jõgi" -> "jogi"); phones are +372 mobiles in the forms people
type them; addresses are town streets or farms in the municipality's villages.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipelines.synth.names import FARMS, NAME_POOLS, STREETS, fold_ascii, villages_of

_W1 = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 1])
_W2 = np.array([3, 4, 5, 6, 7, 8, 9, 1, 2, 3])
_EPOCH = np.datetime64("1970-01-01", "D")
_MAIL_DOMAINS = np.array(["gmail.com", "hot.ee", "mail.ee", "online.ee", "outlook.com"])
_FEMALE_ENDINGS = (("ov", "ova"), ("ev", "eva"), ("in", "ina"), ("ski", "skaja"), ("ev", "eva"))


def check_digits(first_ten: np.ndarray) -> np.ndarray:
    """Check digit of each row of an (n, 10) digit array (EVS 585 modulus 11)."""
    first = (first_ten @ _W1) % 11
    second = (first_ten @ _W2) % 11
    return np.where(first < 10, first, np.where(second < 10, second, 0))


def personal_codes(rng: np.random.Generator, birth_dates: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Unique valid personal codes for people born on `birth_dates` (datetime64[D])."""
    dates = pd.DatetimeIndex(birth_dates)
    years = dates.year.to_numpy()
    century = np.where(years >= 2000, 5, 3)
    sex_century = century + (1 - male.astype(int))
    day_number = (birth_dates - _EPOCH).astype(np.int64)
    group = day_number * 2 + male.astype(np.int64)
    order = np.lexsort((rng.random(len(group)), group))
    _, starts, sizes = np.unique(group[order], return_index=True, return_counts=True)
    if sizes.size and sizes.max() > 999:
        raise ValueError("more than 999 people share a birth date and sex: the serials would collide")
    rank = np.arange(len(group)) - np.repeat(starts, sizes)
    offset = np.repeat(rng.integers(0, 999, size=sizes.size), sizes)
    serial = np.empty(len(group), dtype=np.int64)
    serial[order] = (offset + rank * 7) % 999 + 1  # 7 is coprime with 999: distinct serials
    head = (sex_century * 10**9 + (years % 100) * 10**7 + dates.month.to_numpy() * 10**5
            + dates.day.to_numpy() * 10**3 + serial)
    digits = (head[:, None] // 10 ** np.arange(9, -1, -1)) % 10
    return (head * 10 + check_digits(digits)).astype(str)


def wrong_check_digit(code: str, shift: int) -> str:
    """The same code with its check digit changed by `shift` (1..9): an invalid code."""
    return code[:-1] + str((int(code[-1]) + shift) % 10)


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    return pool[rng.integers(0, len(pool), size=n)]


def feminine(last_name: str) -> str:
    """A Russian surname's feminine form (Smirnov -> Smirnova); Estonian ones are unisex."""
    for ending, female in _FEMALE_ENDINGS:
        if last_name.endswith(ending):
            return last_name[: -len(ending)] + female
    return last_name


def draw_names(rng: np.random.Generator, language: np.ndarray, male: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last names by home language ("ru" gets Russian names) and sex."""
    n = len(language)
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    for lang, pool in NAME_POOLS.items():
        rows = language == lang if lang == "ru" else language != "ru"
        m = rows & (male == 1)
        f = rows & (male == 0)
        first[m] = _pick(rng, pool.male, int(m.sum()))
        first[f] = _pick(rng, pool.female, int(f.sum()))
        last[rows] = _pick(rng, pool.last, int(rows.sum()))
        if lang == "ru":
            last[f] = [feminine(name) for name in last[f]]
    return first, last


def emails(rng: np.random.Generator, first: np.ndarray, last: np.ndarray, domains: np.ndarray | None = None) -> np.ndarray:
    """firstname.lastname@domain, Estonian letters folded, lower case."""
    domain = _pick(rng, _MAIL_DOMAINS if domains is None else domains, len(first))
    return np.array([
        fold_ascii(f"{a}.{b}").lower().replace(" ", "").replace("'", "") + "@" + d
        for a, b, d in zip(first, last, domain)
    ], dtype=object)


def unique_emails(mails: np.ndarray) -> np.ndarray:
    """Make e-mails unique by numbering repeats (mari.tamm2@...), as mail servers do."""
    seen: dict[str, int] = {}
    out = []
    for mail in mails:
        count = seen.get(mail, 0) + 1
        seen[mail] = count
        local, domain = mail.split("@")
        out.append(mail if count == 1 else f"{local}{count}@{domain}")
    return np.array(out, dtype=object)


def phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mobile numbers in the forms people write them: +372 5123 4567, 51234567, ..."""
    number = rng.integers(1_000_000, 9_999_999, size=n) + 50_000_000
    style = rng.integers(0, 4, size=n)
    out = []
    for value, form in zip(number.astype(str), style):
        if form == 0:
            out.append(f"+372 {value[:4]} {value[4:]}")
        elif form == 1:
            out.append(f"{value[:4]} {value[4:]}")
        elif form == 2:
            out.append(f"+372{value}")
        else:
            out.append(str(value))
    return np.array(out, dtype=object)


def addresses(rng: np.random.Generator, municipality: np.ndarray) -> np.ndarray:
    """Home addresses: "Tamme tn 5-12, Võru" in towns, "Kase talu, Rõuge küla" in the country."""
    n = len(municipality)
    out = np.empty(n, dtype=object)
    street = _pick(rng, STREETS, n)
    farm = _pick(rng, FARMS, n)
    house = rng.integers(1, 80, size=n)
    flat = rng.integers(1, 40, size=n)
    rural = rng.random(n) < 0.55
    village_draw = rng.random(n)
    for name in np.unique(municipality):
        rows = np.flatnonzero(municipality == name)
        villages = villages_of(str(name))
        town = str(name).endswith(" linn") or len(villages) == 1
        for i in rows:
            village = villages[int(village_draw[i] * len(villages))]
            if rural[i] and not town:
                out[i] = f"{farm[i]} talu, {village} küla"
            elif flat[i] < 15:
                out[i] = f"{street[i]} tn {house[i]}-{flat[i]}, {village}"
            else:
                out[i] = f"{street[i]} tn {house[i]}, {village}"
    return out


def school_birth_dates(rng: np.random.Generator, grade: np.ndarray, years_behind: np.ndarray, reference: dt.date) -> np.ndarray:
    """Birth dates consistent with grade at the reference date (school starts at 7 by 1 Oct).

    A pupil in grade g in autumn of year Y was born between 2 Oct of Y-7-g and 1 Oct of
    Y-6-g; pupils who repeated a grade are a year older.
    """
    start = np.array([np.datetime64(f"{reference.year - 7 - g}-10-02", "D") for g in range(0, 13)])
    offset = rng.integers(0, 365, size=len(grade))
    return start[grade] + offset - 365 * years_behind.astype(np.int64)

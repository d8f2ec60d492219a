"""Identity resolution: who is who across files, before anything is pseudonymised.

Pupils are known by their personal code (isikukood) where it is valid. Exports also hold
mistyped codes and rows without one; such a row is matched to a valid-coded record of the
whole study (every instrument and wave) by normalised name + birth date + municipality,
then by name + birth date alone when that is unambiguous, so that the same pupil keeps
one pseudonym. What cannot be matched gets a pseudonym from name, birth date and
municipality and is marked unlinked. Staff are known by e-mail, else by name and
municipality. The rules are documented in the README ("Identity resolution").

Written as pure functions so that the ingest step and the demo generator (which must
predict the pseudonyms it plants as ground truth) can never disagree.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from stdnum.ee import ik

from pipelines.config import normalise_text
from pipelines.ingest.harmonise import fold

#: identity_match values, from strongest to weakest.
MATCH_CODE = "personal_code"
MATCH_NAME_DOB_MUNICIPALITY = "name_dob_municipality"
MATCH_NAME_DOB = "name_dob"
MATCH_UNLINKED = "unlinked"
MATCH_EMAIL = "email"
MATCH_NAME_MUNICIPALITY = "name_municipality"

_CODE_WRAPPERS = re.compile(r"^(?:PNOEE-|EE)", re.IGNORECASE)


def code_identity(personal_code: str) -> str:
    """Identity of a person known by a valid Estonian personal code (isikukood)."""
    return "ik:" + personal_code


def clean_code(value: object) -> str | None:
    """The 11 digits of a personal code as written (spaces, EE/PNOEE- prefixes removed)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = re.sub(r"\s", "", str(value))
    text = _CODE_WRAPPERS.sub("", text)
    if text.endswith(".0"):  # a code stored as a number in SPSS or Excel
        text = text[:-2]
    return text or None


def valid_code(code: str | None) -> bool:
    return code is not None and ik.is_valid(code)


_WEIGHTS_FIRST = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 1])
_WEIGHTS_SECOND = np.array([3, 4, 5, 6, 7, 8, 9, 1, 2, 3])
_CENTURY = np.array([0, 1800, 1800, 1900, 1900, 2000, 2000, 2100, 2100, 0])
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def check_codes(codes: Sequence[str | None]) -> tuple[np.ndarray, list[dt.date | None]]:
    """``valid_code`` and ``birth_date_from_code`` for many codes at once.

    Codes of exactly 11 ASCII digits (nearly all) are checked with array arithmetic, the
    same rules as ``stdnum.ee.ik`` (century digit 1-8, a real calendar date, the two-pass
    check digit); anything else goes through stdnum, each distinct code once. Returns the
    validity per code and the birth date of each valid code (None elsewhere).
    """
    n = len(codes)
    valid = np.zeros(n, dtype=bool)
    births: list[dt.date | None] = [None] * n
    plain = np.fromiter((isinstance(c, str) and len(c) == 11 and c.isascii() and c.isdigit() for c in codes),
                        dtype=bool, count=n)
    rows = np.flatnonzero(plain)
    if rows.size:
        text = np.array([codes[i] for i in rows], dtype="<U11")
        digits = text.view(np.uint32).reshape(-1, 11).astype(np.int64) - ord("0")
        check = digits[:, :10] @ _WEIGHTS_FIRST % 11
        check = np.where(check == 10, digits[:, :10] @ _WEIGHTS_SECOND % 11, check) % 10
        century = _CENTURY[digits[:, 0]]
        year = century + digits[:, 1] * 10 + digits[:, 2]
        month = digits[:, 3] * 10 + digits[:, 4]
        day = digits[:, 5] * 10 + digits[:, 6]
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        month_ok = (month >= 1) & (month <= 12)
        days = _MONTH_DAYS[np.where(month_ok, month, 0)] + (leap & (month == 2))
        ok = (century > 0) & month_ok & (day >= 1) & (day <= days) & (check == digits[:, 10])
        valid[rows] = ok
        for i, y, m, d in zip(rows[ok].tolist(), year[ok].tolist(), month[ok].tolist(), day[ok].tolist()):
            births[i] = dt.date(y, m, d)
    seen: dict[str, tuple[bool, dt.date | None]] = {}
    for i in np.flatnonzero(~plain).tolist():
        code = codes[i]
        if code is None or (isinstance(code, float) and code != code):
            continue
        if code not in seen:
            good = valid_code(code)
            seen[code] = (good, birth_date_from_code(code) if good else None)
        valid[i], births[i] = seen[code]
    return valid, births


def sex_from_code(code: str) -> str:
    """The first digit of an isikukood is odd for men and even for women."""
    return "male" if int(code[0]) % 2 == 1 else "female"


def birth_date_from_code(code: str) -> dt.date:
    return ik.get_birth_date(code)


def name_key(first: object, last: object) -> str | None:
    """Normalised full name: case, spacing, hyphen spacing and Estonian letters folded."""
    parts = [p for p in (first, last) if isinstance(p, str) and p.strip()]
    if len(parts) < 2:
        return None
    text = fold(normalise_text(" ".join(parts)))
    return re.sub(r"\s*-\s*", "-", text)


@dataclass(frozen=True)
class ResolvedIdentity:
    """Per row: the identity string to pseudonymise (None = reject) and how it was found."""

    identity: pd.Series
    match: pd.Series
    code_invalid: pd.Series  # a code was written but fails the checks
    sex_from_code: pd.Series  # sex derived from the code ("male"/"female") where valid


def pupil_identity_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The identity fields of one harmonised pupil frame, normalised (in memory only)."""
    written = frame.get("personal_code", pd.Series(None, index=frame.index, dtype="object"))
    position, distinct_written = pd.factorize(written.astype(object).fillna("").astype(str).to_numpy(dtype=object))
    distinct = [clean_code(c) if c else None for c in distinct_written.tolist()]  # each distinct cell once
    distinct_valid, distinct_births = check_codes(distinct)
    codes = pd.Series(_objects(distinct)[position], index=frame.index, dtype="object")
    valid = pd.Series(distinct_valid[position], index=frame.index)
    from_code = _objects(distinct_births)[position]
    dob_written = frame.get("birth_date", pd.Series(None, index=frame.index, dtype="object"))
    dob = np.where(valid.to_numpy(dtype=bool), from_code, dob_written.to_numpy(dtype=object))
    n = len(frame)
    names = _name_keys(frame.get("first_name", pd.Series([None] * n, index=frame.index, dtype="object")),
                       frame.get("last_name", pd.Series([None] * n, index=frame.index, dtype="object")))
    return pd.DataFrame({
        "code": codes, "valid": valid.astype(bool), "dob": _objects(list(dob)), "name": names,
        "municipality": frame["municipality"],
    }, index=frame.index)


def _name_keys(first: pd.Series, last: pd.Series) -> list[str | None]:
    """``name_key(f, l)`` per row, each distinct (first, last) pair folded once."""
    try:
        first_codes, first_distinct = pd.factorize(first.to_numpy(dtype=object), use_na_sentinel=False)
        last_codes, last_distinct = pd.factorize(last.to_numpy(dtype=object), use_na_sentinel=False)
    except TypeError:  # an unhashable cell: one call per row
        return [name_key(f, l) for f, l in zip(first, last)]
    pair_codes, pairs = pd.factorize(first_codes.astype(np.int64) * max(len(last_distinct), 1) + last_codes)
    width = max(len(last_distinct), 1)
    keys = [name_key(first_distinct[p // width], last_distinct[p % width]) for p in pairs.tolist()]
    return _objects(keys)[pair_codes].tolist()


_SEX_OF_DIGIT = {str(d): ("male" if d % 2 == 1 else "female") for d in range(10)}


def resolve_pupils(identities: list[pd.DataFrame]) -> list[ResolvedIdentity]:
    """Resolve pupil identities over all frames of a study at once (see module docstring).

    A valid code is its own identity (done by whole columns); only the rows without one are
    looked up, by name + birth date (+ municipality), among the valid-coded rows of the study.
    """
    # rows looked up: no valid code, and a name and a birth date (``is None``, as a cell is tested
    # one by one; a name column of text dtype holds NaN, not None, for a missing name)
    unresolved = [ids[~ids["valid"].to_numpy(dtype=bool) & _not_none(ids["name"]) & _not_none(ids["dob"])]
                  for ids in identities]
    wanted = {(name, dob) for u in unresolved for name, dob in zip(u["name"], u["dob"])}
    by_triple: dict[tuple, set[str]] = {}
    by_pair: dict[tuple, set[str]] = {}
    if wanted:
        for ids in identities:
            known = ids[ids["valid"] & ids["name"].notna()]
            for code, name, dob, mun in zip(known["code"], known["name"], known["dob"], known["municipality"]):
                if (name, dob) in wanted:  # only what a looked-up row can use
                    by_triple.setdefault((name, dob, mun), set()).add(code)
                    by_pair.setdefault((name, dob), set()).add(code)
    resolved = []
    for ids, pending in zip(identities, unresolved):
        valid = ids["valid"].to_numpy(dtype=bool)
        codes = ids["code"].to_numpy(dtype=object)
        identity = np.full(len(ids), None, dtype=object)
        match = np.full(len(ids), None, dtype=object)
        sex = np.full(len(ids), None, dtype=object)
        at = np.flatnonzero(valid)
        valid_codes = codes[at].tolist()
        identity[at] = _objects([code_identity(c) for c in valid_codes])
        match[at] = MATCH_CODE
        sex[at] = _objects([_SEX_OF_DIGIT[c[0]] for c in valid_codes])
        rows = ids.index.get_indexer(pending.index)
        for row, name, dob, mun in zip(rows.tolist(), pending["name"], pending["dob"], pending["municipality"]):
            triple = by_triple.get((name, dob, mun), set())
            pair = by_pair.get((name, dob), set())
            if len(triple) == 1:
                identity[row], match[row] = code_identity(next(iter(triple))), MATCH_NAME_DOB_MUNICIPALITY
            elif len(pair) == 1:
                identity[row], match[row] = code_identity(next(iter(pair))), MATCH_NAME_DOB
            else:
                identity[row], match[row] = f"nd:{name}|{dob.isoformat()}|{mun}", MATCH_UNLINKED
        invalid = ids["code"].notna() & ~ids["valid"]
        resolved.append(ResolvedIdentity(
            identity=pd.Series(identity, index=ids.index, dtype="object"),
            match=pd.Series(match, index=ids.index, dtype="object"),
            code_invalid=invalid, sex_from_code=pd.Series(sex, index=ids.index, dtype="object"),
        ))
    return resolved


def resolve_staff(frame: pd.DataFrame) -> ResolvedIdentity:
    """Staff: e-mail (case-folded) where given, else name + municipality."""
    emails = frame.get("email", pd.Series(None, index=frame.index, dtype="object"))
    identity, match = [], []
    for email, first, last, mun in zip(emails, frame.get("first_name", [None] * len(frame)),
                                       frame.get("last_name", [None] * len(frame)), frame["municipality"]):
        if isinstance(email, str) and "@" in email:
            identity.append("em:" + email.strip().casefold())
            match.append(MATCH_EMAIL)
            continue
        name = name_key(first, last)
        if name is not None:
            identity.append(f"nm:{name}|{mun}")
            match.append(MATCH_NAME_MUNICIPALITY)
        else:
            identity.append(None)
            match.append(None)
    none = pd.Series(False, index=frame.index)
    return ResolvedIdentity(pd.Series(identity, index=frame.index, dtype="object"),
                            pd.Series(match, index=frame.index, dtype="object"), none,
                            pd.Series(None, index=frame.index, dtype="object"))


def _not_none(column: pd.Series) -> np.ndarray:
    return np.fromiter((v is not None for v in column.tolist()), dtype=bool, count=len(column))


def _objects(items: list) -> np.ndarray:
    """A 1-D object array of the items (np.array would convert or nest them)."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array

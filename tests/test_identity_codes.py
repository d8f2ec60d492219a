"""Personal codes checked in bulk (identity.check_codes) agree with stdnum row by row."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from stdnum.ee import ik

from pipelines.privacy.identity import check_codes, pupil_identity_frame


def _codes(n: int = 20000, seed: int = 3) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        head = f"{rng.integers(0, 10)}{rng.integers(0, 100):02d}{rng.integers(0, 14):02d}{rng.integers(0, 32):02d}" \
               f"{rng.integers(0, 1000):03d}"
        out.append(head + ik.calc_check_digit(head + "0") if rng.random() < 0.7 else head + str(rng.integers(0, 10)))
    out += ["49602290000", "30002290001", "50002290007", "61902290000", "39901010000", "3990101000", "399010100000",
            "3990101000a", "३९९०१०१०००४", "39901 010004", None, float("nan"), "", "PNOEE-39901010004"]
    leap = [f"{c}{y:02d}0229{s:03d}" for c in (3, 4, 5, 6, 1, 7) for y in (0, 4, 96, 99) for s in (0, 1)]
    out += [h + ik.calc_check_digit(h + "0") for h in leap]
    return out


def test_bulk_check_matches_stdnum():
    codes = _codes()
    valid, births = check_codes(codes)
    for code, ok, born in zip(codes, valid, births):
        expected = isinstance(code, str) and ik.is_valid(code)
        assert ok == expected
        assert born == (ik.get_birth_date(code) if expected else None)
    assert valid.sum() > 5000


def test_identity_frame_reads_each_code_as_before():
    frame = pd.DataFrame({"personal_code": ["39901010004", 39901010004.0, " 399 0101 0004", "EE39901010004", None,
                                            "12345", float("nan")],
                          "birth_date": [None, None, None, None, dt.date(2010, 1, 2), None, None],
                          "first_name": ["A"] * 7, "last_name": ["B"] * 7, "municipality": ["X"] * 7})
    code = "39901010004" if ik.is_valid("39901010004") else None
    ids = pupil_identity_frame(frame)
    assert ids["code"].tolist()[:4] == ["39901010004"] * 4
    assert ids["code"].tolist()[4] is None and ids["code"].tolist()[6] is None
    assert ids["valid"].tolist() == [code is not None] * 4 + [False, False, False]
    assert ids["dob"].tolist()[4] == dt.date(2010, 1, 2)


def test_bulk_pseudonyms_equal_one_by_one():
    import os

    from pipelines.privacy.pseudonyms import PseudonymKeys

    keys = PseudonymKeys.from_secret(os.urandom(32))
    identities = [f"ik:{i:011d}" for i in range(3000)] * 2 + [None, float("nan"), "õ|Võru vald", ""]
    for domain in ("pupil", "staff", "school"):
        assert keys.pseudonyms(domain, identities) == [
            keys.pseudonym(domain, i) if isinstance(i, str) else None for i in identities]
    assert keys.pseudonyms("pupil", []) == []


def _resolve_row_by_row(identities: list[pd.DataFrame]) -> list[tuple]:
    """The rules of identity.resolve_pupils written one row at a time (the reference)."""
    from pipelines.privacy import identity as ident

    by_triple: dict[tuple, set] = {}
    by_pair: dict[tuple, set] = {}
    for ids in identities:
        known = ids[ids["valid"] & ids["name"].notna()]
        for code, name, dob, mun in zip(known["code"], known["name"], known["dob"], known["municipality"]):
            by_triple.setdefault((name, dob, mun), set()).add(code)
            by_pair.setdefault((name, dob), set()).add(code)
    out = []
    for ids in identities:
        identity, match = [], []
        for code, valid, name, dob, mun in zip(ids["code"], ids["valid"], ids["name"], ids["dob"], ids["municipality"]):
            if valid:
                identity.append("ik:" + code)
                match.append(ident.MATCH_CODE)
            elif name is None or dob is None:
                identity.append(None)
                match.append(None)
            elif len(by_triple.get((name, dob, mun), set())) == 1:
                identity.append("ik:" + next(iter(by_triple[(name, dob, mun)])))
                match.append(ident.MATCH_NAME_DOB_MUNICIPALITY)
            elif len(by_pair.get((name, dob), set())) == 1:
                identity.append("ik:" + next(iter(by_pair[(name, dob)])))
                match.append(ident.MATCH_NAME_DOB)
            else:
                identity.append(f"nd:{name}|{dob.isoformat()}|{mun}")
                match.append(ident.MATCH_UNLINKED)
        sex = [ident.sex_from_code(c) if v else None for c, v in zip(ids["code"], ids["valid"])]
        out.append((identity, match, (ids["code"].notna() & ~ids["valid"]).tolist(), sex))
    return out


def test_identities_resolved_by_columns_as_row_by_row():
    """Valid codes, matches by name + birth date (+ municipality), ambiguous and unlinked rows, rows
    without a name or a birth date: the column-wise resolve_pupils gives the row-by-row result."""
    from pipelines.privacy.identity import name_key, resolve_pupils

    rng = np.random.default_rng(5)
    valid_codes = [c for c in _codes(3000, seed=9) if isinstance(c, str) and ik.is_valid(c)][:60]
    firsts = ["Mari", "Jüri", " mari ", "Õie", None, "Ann-Liis", "Peeter", "Kalev", "Liis"]
    lasts = ["Tamm", "Kask", "tamm", None, "Mägi", "Saar", "Sepp", "Mets"]
    muns = ["Võru vald", "Antsla vald"]
    pupils = [(c, firsts[rng.integers(0, len(firsts))], lasts[rng.integers(0, len(lasts))],
               ik.get_birth_date(c) if rng.random() < 0.9 else None, muns[rng.integers(0, 2)]) for c in valid_codes]
    for code, *rest in pupils[:5]:  # another pupil of the same name and birth date: ambiguous
        head = code[:7] + f"{(int(code[7:10]) + 1) % 1000:03d}"
        pupils.append((head + ik.calc_check_digit(head + "0"), *rest))
    frames = []
    for size in (400, 250, 3):
        rows = []
        for i in rng.integers(0, len(pupils), size):
            code, first, last, dob, mun = pupils[i]
            draw = rng.random()
            if draw < 0.3:  # the code mistyped or left out; the rest as the pupil's, sometimes another municipality
                code = "12345" if draw < 0.15 else None
                mun = muns[rng.integers(0, 2)]
            elif draw < 0.4:  # someone else entirely
                code, first, last = None, firsts[rng.integers(0, len(firsts))], lasts[rng.integers(0, len(lasts))]
            rows.append({"personal_code": code, "birth_date": dob, "first_name": first, "last_name": last,
                         "municipality": mun})
        frames.append(pd.DataFrame(rows, index=pd.RangeIndex(1, size + 1)))
    ids = [pupil_identity_frame(f) for f in frames]
    for frame, one in zip(frames, ids):
        assert one["name"].tolist() == pd.Series([name_key(f, l) for f, l in zip(frame["first_name"],
                                                                                frame["last_name"])]).tolist()
    got = resolve_pupils(ids)
    for resolved, (identity, match, invalid, sex) in zip(got, _resolve_row_by_row(ids)):
        assert resolved.identity.tolist() == identity
        assert resolved.match.tolist() == match
        assert resolved.code_invalid.tolist() == invalid
        assert resolved.sex_from_code.tolist() == sex
    kinds = {m for r in got for m in r.match.tolist()}
    assert {"personal_code", "name_dob_municipality", "name_dob", "unlinked", None} <= kinds

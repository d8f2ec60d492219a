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

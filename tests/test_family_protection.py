"""The family of reports (municipality, county, study) is protected as one table.

A constructed case: per-report protection (each report's tables alone) publishes every
cell of the county and of the other municipalities, so a KOV's hidden count is the
county's value minus theirs; the family protection hides enough that no suppressed cell
can be pinned by linear programming over every line of the family at once.
"""

from __future__ import annotations

import pandas as pd

from pipelines.privacy.family import (ALL, audit_family, block_audits, family_lines, family_values,
                                      naive_protection, protect_family)

MIN_CELL = 5


def constructed() -> pd.DataFrame:
    body = pd.DataFrame(
        [("A", "a1", "yes", 2), ("A", "a1", "no", 30), ("A", "a2", "yes", 6), ("A", "a2", "no", 40),
         ("A", "a3", "yes", 7), ("A", "a3", "no", 25), ("B", "b1", "yes", 9), ("B", "b1", "no", 20),
         ("B", "b2", "yes", 8), ("B", "b2", "no", 33)],
        columns=["county", "municipality", "level", "count"])
    return family_values(body, category="level")


def test_family_table_adds_up():
    values = constructed()
    assert values.at[("county", "A", ALL), "yes"] == 15
    assert values.at[("study", ALL, ALL), "total"] == 180
    assert len(family_lines(values)) == 8 + 2 * 3 + 3  # row lines, county lines, study lines


def test_naive_per_report_protection_leaks():
    values = constructed()
    hidden = naive_protection(values, MIN_CELL)
    primary = (values >= 1) & (values < MIN_CELL)
    assert hidden.at[("municipality", "A", "a1"), "yes"]  # the KOV report hides its 2...
    audit = audit_family(values, hidden, primary, MIN_CELL)
    leaked = audit.loc[~audit["protected"]]
    # ...but the county report and the other KOVs' reports give it back (15 - 6 - 7 = 2)
    assert ((leaked["municipality"] == "a1") & (leaked["column"] == "yes")).any()
    assert (leaked["width"] < 1e-9).any()


def test_family_protection_holds():
    values = constructed()
    family = protect_family(values, MIN_CELL)
    assert family.passed
    assert family.suppressed.at[("municipality", "A", "a1"), "yes"]
    assert family.audit["protected"].all()
    assert (family.audit["width"] > 0).all()
    # every block, audited as one report table, passes the cells audit too
    assert all(a["protected"].all() for a in block_audits(values, family.suppressed, family.primary, MIN_CELL))
    long = family.long()
    hidden = long.loc[long["mark"] != ""]
    assert hidden["value"].isna().all()
    assert set(long.loc[long["mark"] == "", "value"].dropna()) & set(range(1, MIN_CELL)) == set()


def test_multi_select_family_without_row_total():
    body = pd.DataFrame([("A", "a1", "r1", 3), ("A", "a2", "r1", 9), ("B", "b1", "r1", 12),
                         ("A", "a1", "r2", 10), ("A", "a2", "r2", 11), ("B", "b1", "r2", 2)],
                        columns=["county", "municipality", "reason", "count"])
    values = family_values(body, category="reason", row_total=False)
    family = protect_family(values, MIN_CELL, row_total=None)
    assert family.passed
    assert family.suppressed.at[("municipality", "A", "a1"), "r1"]
    assert family.suppressed.at[("county", "B", ALL), "r2"]  # a county of one KOV: its row is the KOV's


def test_published_family_from_results_tables(tmp_path):
    """results.descriptives -> results.published_family: the constructed leak is closed end to end."""
    import duckdb

    from pipelines.privacy.family import audit_family
    from pipelines.render.family_tables import audit_published, family_rows, published_family

    counts = {("A", "a1"): (2, 30), ("A", "a2"): (6, 40), ("A", "a3"): (7, 25), ("B", "b1"): (9, 20), ("B", "b2"): (8, 33)}
    rows = []
    for (county, municipality), (yes, no) in counts.items():
        for level, count in (("1", yes), ("0", no)):
            rows.append({"instrument": "pupils", "outcome": "left", "geography": "municipality", "wave": "w1",
                         "county": county, "municipality": municipality, "variable": "flag_x", "level": level,
                         "count": float(count), "n": yes + no, "n_missing": 0, "method": "proportion",
                         "estimate": count / (yes + no), "conf_low": 0.0, "conf_high": 1.0})
    con = duckdb.connect(str(tmp_path / "study.duckdb"))
    for schema in ("results", "meta"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.register("d", pd.DataFrame(rows))
    con.execute("CREATE TABLE results.descriptives AS SELECT * FROM d")
    con.register("s", pd.DataFrame([{"instrument": "pupils", "indicator": "flag_x", "indicator_type": "flag"}]))
    con.execute("CREATE TABLE results.screening AS SELECT * FROM s")
    con.register("m", pd.DataFrame([{"county": c, "municipality": m} for c, m in counts]))
    con.execute("CREATE TABLE meta.municipalities AS SELECT * FROM m")
    cells, summary = published_family(con, MIN_CELL)
    assert summary["passed"].all() and audit_published(cells, MIN_CELL) == []
    wide = family_rows(cells, "descriptives/pupils/w1/flag_x")
    assert wide.at[("municipality", "A", "a1"), "1__mark"] == "<5"
    # what a reader sees, audited over every line of the family: nothing pinned
    values = constructed().rename(columns={"yes": "1", "no": "0"})
    values = values.assign(__missing=0.0)[["0", "1", "__missing", "total"]]
    hidden = wide[[f"{c}__mark" for c in values.columns]].ne("").set_axis(values.columns, axis=1).loc[values.index]
    primary = (values >= 1) & (values < MIN_CELL)
    assert audit_family(values, hidden, primary, MIN_CELL)["protected"].all()


def test_known_totals_stay_published_and_the_family_still_holds():
    """Pupils per municipality are published by the overview: the family never hides them."""
    values = constructed()
    family = protect_family(values, MIN_CELL, known_columns=["total"])
    assert family.passed
    totals = family.suppressed["total"] & (values["total"] >= MIN_CELL)
    assert not totals.any()
    assert family.suppressed.at[("municipality", "A", "a1"), "yes"]

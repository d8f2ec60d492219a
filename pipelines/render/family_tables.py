"""The linked count tables of the coordinator reports, protected once as families.

Every count a municipality (KOV) report or a county report shows comes from one table
built here from ``results.*`` and protected with :func:`pipelines.privacy.family.protect_family`
(municipality, county and study rows together). The ``reports/family`` asset writes the
published cells to ``results.published_family`` once per run; every report of the family
reads them from there, so a count hidden in one report is hidden in all of them.

Families (names in the ``family`` column; nothing here names a variable of a study):

* ``descriptives/<instrument>/<wave>/<variable>``: levels of each categorical variable of
  ``results.descriptives`` (first wave of each instrument), a ``__missing`` column and the total;
* ``personas``: pupils per persona (``results.persona_profiles`` municipality counts);
* ``specialists/<wave>``: specialists per sector (``results.specialists_counts``);
* ``service_needs/<wave>``: pupils with each need (``results.service_gaps``; needs overlap: no total);
* ``reasons/<instrument>/<group>/<wave>``: multi-select reasons per county (``results.reasons``),
  with the respondents as ``__base`` (counties sum to the study; no municipality rows).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipelines.privacy.family import ALL, TOTAL, ProtectedFamily, family_values, protect_family

MISSING = "__missing"
BASE = "__base"
COLUMNS = ["family", "level", "county", "municipality", "column", "value", "mark"]


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [schema, name]).fetchone()[0])


def _read(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    return con.execute(f"SELECT * FROM {table}").df() if _exists(con, table) else pd.DataFrame()


def _first(values: pd.Series) -> str | None:
    """The first value in row order (results tables are written in the plan's wave order)."""
    values = values.dropna()
    return None if values.empty else values.iloc[0]


def _pick_wave(frame: pd.DataFrame) -> str | None:
    waves = frame["wave"].dropna().unique().tolist()
    return "pre" if "pre" in waves else (waves[0] if waves else None)


def shown_variables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The variables the coordinator reports describe per municipality: the plan's screening
    flags (``results.screening``, indicator type ``flag``) and the descriptives' outcomes."""
    screening = _read(con, "results.screening")
    flags = screening.loc[screening["indicator_type"] == "flag", "indicator"].tolist() if len(screening) else []
    desc = _read(con, "results.descriptives")
    outcomes = desc["outcome"].dropna().tolist() if len(desc) and "outcome" in desc else []
    return list(dict.fromkeys([*flags, *outcomes]))


def families(con: duckdb.DuckDBPyConnection, min_cell: int) -> dict[str, ProtectedFamily]:
    """Every family of the study's results, protected."""
    places = _read(con, "meta.municipalities")
    places = places[["county", "municipality"]].astype(str) if len(places) else None
    county_of = dict(zip(places["municipality"], places["county"])) if places is not None else {}
    out: dict[str, ProtectedFamily] = {}

    desc = _read(con, "results.descriptives")
    shown = shown_variables(con)
    if len(desc):
        local = desc.loc[(desc["geography"] == "municipality") & (desc["method"] == "proportion")
                         & desc["variable"].isin(shown)]
        for instrument, rows in local.groupby("instrument", sort=False):
            wave = _first(rows["wave"])
            rows = rows.loc[rows["wave"] == wave]
            for variable, block in rows.groupby("variable", sort=False):
                body = block[["county", "municipality", "level", "count"]].copy()
                missing = block.groupby(["county", "municipality"], as_index=False)["n_missing"].first()
                missing = missing.assign(level=MISSING).rename(columns={"n_missing": "count"})
                body = pd.concat([body, missing], ignore_index=True).fillna({"count": 0})
                levels = [*dict.fromkeys(block["level"].astype(str)), MISSING]
                values = family_values(body.astype({"level": str}), category="level", categories=levels,
                                       places=places)
                # pupils per municipality and wave are published by the overview report: known totals
                out[f"descriptives/{instrument}/{wave}/{variable}"] = protect_family(values, min_cell,
                                                                                    known_columns=[TOTAL])

    profiles = _read(con, "results.persona_profiles")
    if len(profiles) and (profiles["section"] == "municipality").any():
        rows = profiles.loc[profiles["section"] == "municipality"]
        body = pd.DataFrame({"county": [county_of.get(m, ALL) for m in rows["group"]],
                             "municipality": rows["group"].astype(str), "class": rows["class"].astype(str),
                             "count": rows["n"].astype(float)})
        classes = [str(c) for c in sorted(rows["class"].unique())]
        out["personas"] = protect_family(family_values(body, category="class", categories=classes, places=places),
                                         min_cell, known_columns=[TOTAL])

    counts = _read(con, "results.specialists_counts")
    if len(counts) and (counts["variable"] == "sector").any():
        sector = counts.loc[(counts["variable"] == "sector") & (counts["municipality"] != ALL) & (counts["county"] != ALL)]
        wave = _pick_wave(sector)
        sector = sector.loc[sector["wave"] == wave]
        if len(sector):
            values = family_values(sector.astype({"level": str}), category="level", places=places)
            out[f"specialists/{wave}"] = protect_family(values, min_cell)

    gaps = _read(con, "results.service_gaps")
    if len(gaps):
        local = gaps.loc[gaps["municipality"] != ALL]
        wave = _first(local["wave"])
        local = local.loc[local["wave"] == wave]
        if len(local):
            values = family_values(local.assign(need=local["need"].astype(str)), category="need", count="need_count",
                                   places=places, row_total=False)
            out[f"service_needs/{wave}"] = protect_family(values, min_cell, row_total=None)

    reasons = _read(con, "results.reasons")
    if len(reasons):
        local = reasons.loc[reasons["geography"] == "county"]
        for (instrument, group), rows in local.groupby(["instrument", "group"], sort=False):
            wave = _first(rows["wave"])
            rows = rows.loc[rows["wave"] == wave]
            body = rows[["county", "option", "count"]].assign(municipality=rows["county"])
            base = rows.groupby("county", as_index=False)["n"].first().rename(columns={"n": "count"})
            base = base.assign(option=BASE, municipality=base["county"])
            body = pd.concat([body, base], ignore_index=True)
            # counties are the finest level here: each is its own one-member "county" row
            values = family_values(body.astype({"option": str}), category="option", row_total=False)
            values = values.loc[values.index.get_level_values(0) != "county"]
            values = _counties_as_body(values)
            out[f"reasons/{instrument}/{group}/{wave}"] = protect_family(values, min_cell, row_total=None)
    return out


def _counties_as_body(values: pd.DataFrame) -> pd.DataFrame:
    """A two-level family (counties and study): the counties as the county rows, no municipality rows."""
    body = values.loc[values.index.get_level_values(0) == "municipality"]
    counties = body.set_axis(pd.MultiIndex.from_tuples([("county", c, ALL) for _, c, _ in body.index]))
    study = values.loc[values.index.get_level_values(0) == "study"]
    return pd.concat([study, counties])


def published_family(con: duckdb.DuckDBPyConnection, min_cell: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(published cells, audit summary): the long table ``results.published_family`` and one
    row per family with the number of suppressed cells and whether the audit passed (no values)."""
    cells, summary = [], []
    for name, family in families(con, min_cell).items():
        long = family.long().assign(family=name)
        if not family.passed:  # no pattern protects every cell: the family is not published at all
            long["value"] = pd.NA
            long["mark"] = long["mark"].replace("", "x")
        cells.append(long)
        summary.append({"family": name, "cells": int(family.values.size),
                        "suppressed": int(family.suppressed.to_numpy().sum()), "passed": family.passed})
    frame = pd.concat(cells, ignore_index=True)[COLUMNS] if cells else pd.DataFrame(columns=COLUMNS)
    frame["value"] = pd.to_numeric(frame["value"]).astype("Float64")
    return frame, pd.DataFrame(summary, columns=["family", "cells", "suppressed", "passed"])


def audit_published(cells: pd.DataFrame, min_cell: int) -> list[str]:
    """What is wrong with published cells (empty: nothing): a visible count 1..min_cell-1, or a
    hidden cell with a value. Names family and position only, never a value."""
    problems = []
    small = cells["value"].notna() & (cells["value"] >= 1) & (cells["value"] < min_cell)
    leaky = cells["value"].notna() & (cells["mark"] != "")
    for rule, mask in (("visible count below min_cell", small), ("hidden cell with a value", leaky)):
        for row in cells.loc[mask].itertuples():
            problems.append(f"{row.family}: {row.level} {row.county} {row.municipality} {row.column}: {rule}")
    return problems


def family_rows(cells: pd.DataFrame, family: str) -> pd.DataFrame:
    """One family's published cells, wide: index (level, county, municipality), a value and a
    mark column per category (``<column>`` and ``<column>__mark``).

    The frame pandas' ``unstack`` makes (rows and categories sorted, NaN where a place has no
    cell), built from plain lists: a coordinator report reads a dozen families, and the
    unstacks were a third of its code's time. Unusual input (no cells, a repeated cell,
    marks not of the string dtype) takes the ``unstack`` itself.
    """
    rows = cells.loc[cells["family"] == family]
    if len(rows) and isinstance(rows["mark"].dtype, pd.StringDtype) and rows["value"].dtype == "float64":
        places = list(zip(rows["level"].tolist(), rows["county"].tolist(), rows["municipality"].tolist()))
        columns = rows["column"].tolist()
        if len(set(zip(places, columns))) == len(places):
            return _wide(places, columns, rows["value"].tolist(), rows["mark"].tolist(), rows["mark"].dtype)
    return _unstacked(rows)


def _wide(places: list[tuple], columns: list[str], values: list[float], marks: list[object], mark_dtype) -> pd.DataFrame:
    index, names = sorted(set(places)), sorted(set(columns))
    row_of = {place: i for i, place in enumerate(index)}
    column_of = {name: j for j, name in enumerate(names)}
    wide_values = np.full((len(names), len(index)), np.nan)
    wide_marks: list[list[object]] = [[None] * len(index) for _ in names]
    for place, column, value, mark in zip(places, columns, values, marks, strict=True):
        wide_values[column_of[column], row_of[place]] = value
        wide_marks[column_of[column]][row_of[place]] = mark
    data: dict[str, object] = {name: wide_values[j] for j, name in enumerate(names)}
    data.update({f"{name}__mark": pd.array(wide_marks[j], dtype=mark_dtype) for j, name in enumerate(names)})
    wide = pd.DataFrame(data, index=pd.MultiIndex.from_tuples(index, names=["level", "county", "municipality"]))
    wide.columns.name = "column"
    return wide


def _unstacked(cells: pd.DataFrame) -> pd.DataFrame:
    rows = cells.set_index(["level", "county", "municipality", "column"])
    values = rows["value"].unstack("column")
    marks = rows["mark"].unstack("column").add_suffix("__mark")
    return values.join(marks)


__all__ = ["ALL", "BASE", "MISSING", "TOTAL", "families", "published_family", "family_rows"]

"""The shape of an `anon` table: which columns, in which order, with which types.

Derived once from the codebook so that the ingest, the DuckDB writer and the checks agree:
direct identifiers never get a column, a birth date becomes birth year and age, a school
name becomes a keyed school pseudonym, and codes keep their codebook types (ordinal and
yes/no answers as small integers, nominal answers as their short English codes).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipelines.config import Codebook

ID_COLUMN = {"pupil": "pupil_id", "staff": "staff_id"}


def anon_columns(codebook: Codebook) -> list[str]:
    columns: list[str] = []
    if codebook.unit in ID_COLUMN:
        columns.append(ID_COLUMN[codebook.unit])
    if codebook.waves:
        columns.append("wave")
    columns.append("county")
    for name, var in codebook.variables.items():
        if var.transform == "pseudonymise":
            columns.append(f"{name}_id")
        elif var.identity == "birth_date":
            columns += ["birth_year", "age"]
        elif var.role == "free_text":
            if var.free_text == "scrub":
                columns.append(name)
        elif var.role != "direct_identifier":
            columns.append(name)
    if codebook.unit == "pupil":
        columns.append("identity_match")
    columns.append("source")
    return columns


def _dtype(codebook: Codebook, name: str) -> str:
    if name in ("birth_year", "age"):
        return "Int16"
    var = codebook.variables.get(name)
    if var is None:
        return "string"
    if var.type == "categorical":
        kind = codebook.value_sets[var.values].kind  # type: ignore[index]
        return "string" if kind == "nominal" else "Int16"
    return {"integer": "Int32", "number": "Float64", "date": "datetime64[s]"}.get(var.type, "string")


def typed_frame(frame: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Cast each column to its codebook type (nullable types: missing stays missing)."""
    out = {}
    for column in frame.columns:
        dtype = _dtype(codebook, column)
        series = frame[column]
        if dtype.startswith("datetime"):
            out[column] = pd.to_datetime(series, errors="raise").astype(dtype)
        elif dtype in ("Int16", "Int32"):
            out[column] = pd.to_numeric(series, errors="raise").astype(dtype)
        elif dtype == "Float64":
            out[column] = pd.to_numeric(series, errors="raise").astype(dtype)
        else:
            out[column] = series.astype("string")
    return pd.DataFrame(out, columns=frame.columns)


def coarsen_birth_date(dates: pd.Series, reference: dt.date) -> tuple[pd.Series, pd.Series]:
    """Birth year and completed age at the study's reference date; the date itself is dropped.

    Each distinct cell is looked at once (a cohort's birth dates repeat)."""
    cells = dates.tolist()
    done: dict[object, tuple[int | None, int | None]] = {}
    years, ages = [], []
    for d in cells:
        try:
            year, age = done[d]
        except KeyError:
            year, age = done[d] = _year_and_age(d, reference)
        except TypeError:  # an unhashable cell
            year, age = _year_and_age(d, reference)
        years.append(year)
        ages.append(age)
    return pd.Series(years, index=dates.index, dtype="Int16"), pd.Series(ages, index=dates.index, dtype="Int16")


def _year_and_age(d: object, reference: dt.date) -> tuple[int | None, int | None]:
    if isinstance(d, dt.date):
        return d.year, reference.year - d.year - ((reference.month, reference.day) < (d.month, d.day))
    return None, None

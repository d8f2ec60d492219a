"""The numbers behind the data-overview report, read from the processed study database.

Plain functions over a DuckDB connection returning tidy frames, so the report stays a
thin layout and the queries are tested on their own. They read only ``meta.*`` tables
and counts of ``anon.*`` rows: no function here returns a value of any pupil's record,
and data-quality findings are counted by rule without their messages, rows or columns.
Which instruments and waves there are, and their order, come from the database too
(:func:`instruments`, :func:`wave_order`, :func:`person_instruments`): nothing here names
an instrument or a wave, so a study with other instruments, or without some, renders.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from pipelines.ingest.typing import ID_COLUMN

#: Columns whose presence in an anon table says its rows are people (pupils, staff): their
#: counts are suppressed when small. Rows of other instruments (services) are
#: institutions, and a count of two services discloses no one.
PERSON_COLUMNS: tuple[str, ...] = tuple(ID_COLUMN.values())
#: Provenance kinds in the order the appendix lists them.
PROVENANCE_KINDS: tuple[str, ...] = ("fingerprint", "code", "lockfile", "config", "seed", "input", "software")
#: How many leading characters of the run fingerprint a report shows prominently.
SHORT_FINGERPRINT = 12


def _rank(values: pd.Series, order: tuple[str, ...]) -> pd.Series:
    """Sort key: position in ``order``, unknown values after, missing last."""
    known = {value: i for i, value in enumerate(order)}
    return values.map(lambda v: (len(order) + 1, "") if pd.isna(v) else (known.get(v, len(order)), str(v)))


def _sorted(frame: pd.DataFrame, by: list[str], orders: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    keys = {c: _rank(frame[c], orders.get(c, ())) for c in by}
    ranked = frame.assign(**{f"_key_{c}": keys[c] for c in by})
    return ranked.sort_values([f"_key_{c}" for c in by], kind="stable").drop(
        columns=[f"_key_{c}" for c in by]
    ).reset_index(drop=True)


def has_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """Whether the study database holds ``schema.name`` (instruments are optional)."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def _anon_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'anon' ORDER BY table_name").fetchall()]


def instruments(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """The study's instruments in the order its study file lists their inputs (``meta.row_counts``),
    then any other instrument the database knows (anon tables, codebook variables), alphabetically."""
    order: list[str] = []
    if has_table(con, "meta", "row_counts"):
        order = [row[0] for row in con.execute(
            "SELECT instrument FROM meta.row_counts GROUP BY instrument ORDER BY min(rowid)").fetchall()]
    known = set(_anon_tables(con))
    if has_table(con, "meta", "variables"):
        known |= {row[0] for row in con.execute("SELECT DISTINCT instrument FROM meta.variables").fetchall()}
    return tuple(order + sorted(known - set(order)))


def wave_order(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """Waves in the study's order: each instrument's waves from ``meta.analysis_plan``, else the
    order in which ``meta.row_counts`` lists them; waves a study adds later sort after these."""
    waves: list[str] = []
    if has_table(con, "meta", "analysis_plan"):
        rows = con.execute("SELECT name, spec FROM meta.analysis_plan WHERE part = 'waves'").fetchall()
        by_instrument = {name: json.loads(spec).get("waves", []) for name, spec in rows}
        for instrument in [*instruments(con), *sorted(by_instrument)]:
            waves += by_instrument.get(instrument, [])
    if has_table(con, "meta", "row_counts"):
        waves += [row[0] for row in con.execute(
            "SELECT wave FROM meta.row_counts WHERE wave IS NOT NULL GROUP BY wave ORDER BY min(rowid)").fetchall()]
    return tuple(dict.fromkeys(waves))


def person_instruments(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """Instruments whose rows are people: their anon table has a pupil or staff pseudonym column."""
    found = {row[0] for row in con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = 'anon' "
        f"AND column_name IN ({', '.join('?' for _ in PERSON_COLUMNS)})", list(PERSON_COLUMNS)).fetchall()}
    return tuple(i for i in instruments(con) if i in found)


def not_in_study(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(instrument, why) for what the overview cannot show: instruments the analysis plan names that
    the study has no inputs for ("no_inputs"), and instruments whose inputs gave no rows ("no_rows")."""
    out: list[tuple[str, str]] = []
    if has_table(con, "meta", "analysis_plan"):
        rows = con.execute("SELECT DISTINCT instrument FROM meta.analysis_plan "
                           "WHERE NOT present AND instrument IS NOT NULL ORDER BY instrument").fetchall()
        out += [(row[0], "no_inputs") for row in rows]
    if has_table(con, "meta", "row_counts"):
        rows = con.execute("SELECT instrument FROM meta.row_counts GROUP BY instrument "
                           "HAVING sum(rows_accepted) = 0 ORDER BY min(rowid)").fetchall()
        out += [(row[0], "no_rows") for row in rows]
    return out


def received_by_source(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rows read, accepted and rejected per instrument, wave and county.

    Columns: instrument, wave, county, files, rows_read, rows_accepted, rows_rejected,
    accepted_pct (accepted as a percentage of read; its base is rows_read).
    """
    frame = con.execute(
        """
        SELECT instrument, wave, county, count(DISTINCT file) AS files,
               sum(rows_read) AS rows_read, sum(rows_accepted) AS rows_accepted,
               sum(rows_rejected) AS rows_rejected
        FROM meta.row_counts GROUP BY instrument, wave, county
        """
    ).df()
    for column in ("files", "rows_read", "rows_accepted", "rows_rejected"):
        frame[column] = frame[column].astype("Int64")
    share = frame["rows_accepted"].astype("Float64") / frame["rows_read"].astype("Float64") * 100
    frame["accepted_pct"] = share.where(frame["rows_read"] > 0)  # no rows read: no share (shown as "–")
    return _sorted(frame, ["instrument", "county", "wave"], {"instrument": instruments(con), "wave": wave_order(con)})


def records_by_municipality(con: duckdb.DuckDBPyConnection, municipality: str | None = None) -> pd.DataFrame:
    """Accepted records per county, municipality, instrument and wave, from ``anon.*``.

    Columns: county, municipality, instrument, wave, records. Instruments missing from
    the database are skipped; ``municipality`` restricts the rows to one municipality.
    """
    parts = []
    for instrument in instruments(con):
        if not has_table(con, "anon", instrument):
            continue
        columns = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'anon' AND table_name = ?",
                [instrument],
            ).fetchall()
        }
        wave = "wave" if "wave" in columns else "NULL::VARCHAR"
        parts.append(
            f"SELECT county, municipality, '{instrument}' AS instrument, {wave} AS wave, count(*) AS records "
            f"FROM anon.{instrument} GROUP BY ALL"
        )
    if not parts:
        return pd.DataFrame(columns=["county", "municipality", "instrument", "wave", "records"])
    frame = con.execute(" UNION ALL ".join(parts)).df()
    if municipality is not None:
        frame = frame[frame["municipality"] == municipality]
    frame["records"] = frame["records"].astype("Int64")
    return _sorted(frame, ["county", "municipality", "instrument", "wave"],
                   {"instrument": instruments(con), "wave": wave_order(con)})


def wide_by_municipality(long: pd.DataFrame, instrument_order: tuple[str, ...] = (),
                         waves: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[tuple[str, str | None]]]:
    """Pivot :func:`records_by_municipality` to one row per municipality.

    Returns the wide frame (county, municipality, then one column per instrument and
    wave named ``instrument/wave``, 0 where nothing was received) and the list of
    (instrument, wave) pairs in column order (``instrument_order`` and ``waves``, from
    :func:`instruments` and :func:`wave_order`; unknown ones after, alphabetically).
    """
    pairs = list(dict.fromkeys(zip(long["instrument"], long["wave"], strict=True)))
    pairs = [p for p in _sorted(pd.DataFrame(pairs, columns=["instrument", "wave"]), ["instrument", "wave"],
                                {"instrument": instrument_order, "wave": waves}).itertuples(index=False, name=None)]
    keyed = long.assign(column=[f"{i}/{'' if pd.isna(w) else w}" for i, w in zip(long["instrument"], long["wave"], strict=True)])
    wide = keyed.groupby(["county", "municipality", "column"])["records"].sum().unstack(fill_value=0).reset_index()
    names = [f"{i}/{'' if w is None or pd.isna(w) else w}" for i, w in pairs]
    for name in names:
        wide[name] = wide[name].astype("Int64") if name in wide else pd.array([0] * len(wide), dtype="Int64")
    wide = wide[["county", "municipality", *names]]
    wide.columns.name = None
    return _sorted(wide, ["county", "municipality"], {}), [(i, None if pd.isna(w) else w) for i, w in pairs]


def quality_by_rule(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Data-quality findings counted by rule, severity, action and instrument.

    Columns: rule, severity, action, instrument, findings. Messages, rows and
    columns of findings are never read.
    """
    frame = con.execute(
        """
        SELECT rule, severity, action, instrument, count(*) AS findings
        FROM meta.quality GROUP BY rule, severity, action, instrument
        """
    ).df()
    frame["findings"] = frame["findings"].astype("Int64")
    return _sorted(frame, ["severity", "rule", "action", "instrument"],
                   {"severity": ("error", "warning", "info"), "instrument": instruments(con)})


def variables_by_role(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """How many codebook variables each instrument has in each role.

    Columns: role, then one column per instrument (counts of variables, not people).
    """
    long = con.execute("SELECT instrument, role, count(*) AS variables FROM meta.variables GROUP BY ALL").df()
    wide = long.pivot_table(index="role", columns="instrument", values="variables", aggfunc="sum",
                            fill_value=0).reset_index()
    wide.columns.name = None
    order = instruments(con)
    columns = [i for i in order if i in wide.columns] + sorted(
        c for c in wide.columns if c not in order and c != "role")
    roles = ("direct_identifier", "quasi_identifier", "sensitive", "analytic", "free_text")
    wide = wide[["role", *columns]]
    for column in columns:
        wide[column] = wide[column].astype("Int64")
    return _sorted(wide, ["role"], {"role": roles})


def variable_list(con: duckdb.DuckDBPyConnection, instrument: str, lang: str) -> pd.DataFrame:
    """The codebook variables of one instrument: variable, type, role, label, scales."""
    label = "label_et" if lang == "et" else "label_en"
    return con.execute(
        f"SELECT variable, type, role, {label} AS label, scales FROM meta.variables "
        "WHERE instrument = ? ORDER BY rowid",
        [instrument],
    ).df()


def variable_instruments(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Instruments that have codebook variables, in report order."""
    found = {row[0] for row in con.execute("SELECT DISTINCT instrument FROM meta.variables").fetchall()}
    order = instruments(con)
    return [i for i in order if i in found] + sorted(found - set(order))


def provenance(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``meta.provenance`` ordered for the appendix: columns kind, name, value."""
    frame = con.execute("SELECT kind, name, value FROM meta.provenance").df()
    return _sorted(frame, ["kind", "name"], {"kind": PROVENANCE_KINDS})


def run_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run's fingerprint (``kind = 'fingerprint'``, ``name = 'run'``), or None."""
    row = con.execute(
        "SELECT value FROM meta.provenance WHERE kind = 'fingerprint' AND name = 'run'"
    ).fetchone()
    return None if row is None else str(row[0])

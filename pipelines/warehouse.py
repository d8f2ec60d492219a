"""The study's DuckDB file: the one place that writes it, one transaction per stage.

DuckDB allows one writer at a time; every asset that writes goes through `write_tables`,
and the Dagster assets that call it share the `duckdb` concurrency pool. Each write is a
single transaction, so a failure leaves the previous contents whole. Tables are written
in a fixed row order so that the same inputs give the same table contents, bit for bit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd

SCHEMAS = ("anon", "results", "meta", "share")


@contextlib.contextmanager
def connect(db_path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the study database; read-only connections for reports and checks."""
    if read_only and not db_path.is_file():
        raise FileNotFoundError(f"{db_path} does not exist yet: run the study first (mapstudy run)")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path), read_only=read_only, config={"threads": 2})
    try:
        yield con
    finally:
        con.close()


def write_tables(db_path: Path, tables: Mapping[str, pd.DataFrame],
                 derived: Mapping[str, Mapping[str, tuple[str, str]]] | None = None) -> None:
    """Replace the named tables ("schema.table") in one transaction.

    `derived` maps a table to {column: (SQL type, SQL expression)} computed in the database
    after the table is written, in the order given (a later expression may use an earlier one).
    """
    derived = derived or {}
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for schema in SCHEMAS:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for name, frame in tables.items():
                schema, table = name.split(".")
                if schema not in SCHEMAS:
                    raise ValueError(f"unknown schema in {name!r}")
                query = "SELECT * FROM _incoming"
                for column, (sql_type, expr) in derived.get(name, {}).items():
                    query = f'SELECT *, CAST(({expr}) AS {sql_type}) AS "{column}" FROM ({query})'
                con.register("_incoming", frame)
                con.execute(f'CREATE OR REPLACE TABLE {schema}."{table}" AS {query}')
                con.unregister("_incoming")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def read_table(db_path: Path, name: str) -> pd.DataFrame:
    with connect(db_path, read_only=True) as con:
        return con.execute(f"SELECT * FROM {name}").df()


def table_exists(db_path: Path, name: str) -> bool:
    if not db_path.is_file():
        return False
    schema, table = name.split(".")
    with connect(db_path, read_only=True) as con:
        hit = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                          [schema, table]).fetchone()
    return bool(hit and hit[0])

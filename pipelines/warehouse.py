"""The study's DuckDB file: the one place that writes it, one transaction per stage.

DuckDB allows one writer at a time; every asset that writes goes through `write_tables`,
and the Dagster assets that call it share the `duckdb` concurrency pool. Each write is a
single transaction, so a failure leaves the previous contents whole. Tables are written
in a fixed row order so that the same inputs give the same table contents, bit for bit.

A `mapstudy run` works on a copy, `<db>.staging` (`staged`): every connection to the
study's database during the run opens the copy (`active_path`, told by the environment
variable `MAPSTUDY_DB_STAGING`, which report kernels inherit), and the copy is renamed over
the database only when the run succeeded. A failed or killed run leaves the previous good
database as it was, and readers of the database never meet a writer. Where a reader and a
writer of one file do meet (steps in separate processes under `dagster dev`), the
connection waits for the other's lock instead of failing (`LOCK_WAIT_SECONDS`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd

SCHEMAS = ("anon", "results", "meta", "share")
STAGING_ENV = "MAPSTUDY_DB_STAGING"


def staging_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".staging")


def active_path(db_path: Path | str) -> Path:
    """The file that stands for the study database ``db_path`` now: its staging copy during a run."""
    db_path = Path(db_path)
    staged = os.environ.get(STAGING_ENV)
    if staged and db_path.resolve() == Path(staged).resolve():
        return staging_path(db_path)
    return db_path


def _checkpoint(path: Path) -> None:
    """Fold a leftover write-ahead log into the file, so that the file alone is the database."""
    if Path(f"{path}.wal").exists():
        con = duckdb.connect(str(path))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()


def _remove(path: Path) -> None:
    for leftover in (path, Path(f"{path}.wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


@contextlib.contextmanager
def staged(db_path: Path) -> Iterator[Callable[[], None]]:
    """Work on ``<db>.staging`` inside the block; call the yielded ``promote()`` to keep the work.

    The caller holds the study lock (nobody else writes the database). Without
    ``promote()`` (a failed run, an exception) the copy is removed and the database is
    left as it was; a copy left behind by a killed run is replaced at the next run.
    """
    db_path = Path(db_path)
    staging = staging_path(db_path)
    _remove(staging)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tempfile.TemporaryFile(dir=db_path.parent).close()  # a read-only folder fails here, before any work
    if db_path.is_file():
        _checkpoint(db_path)
        shutil.copyfile(db_path, staging)
    promoted = False

    def promote() -> None:
        nonlocal promoted
        if staging.is_file():
            _checkpoint(staging)
            with open(staging, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(staging, db_path)
        promoted = True

    previous = os.environ.get(STAGING_ENV)
    os.environ[STAGING_ENV] = str(db_path.resolve())
    try:
        yield promote
    finally:
        if previous is None:
            os.environ.pop(STAGING_ENV, None)
        else:
            os.environ[STAGING_ENV] = previous
        if not promoted:
            _remove(staging)


@contextlib.contextmanager
def connect(db_path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the study database; read-only connections for reports and checks."""
    db_path = active_path(db_path)
    if read_only and not db_path.is_file():
        raise FileNotFoundError(f"{db_path} does not exist yet: run the study first (mapstudy run)")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(db_path, read_only)
    try:
        yield con
    finally:
        con.close()


#: How long a connection waits for another process's connection to the same file (DuckDB
#: allows one writing process, or readers only): the `dagster dev` UI runs steps in
#: separate processes, where a report's reader can meet a writer of another step.
LOCK_WAIT_SECONDS = 120.0


def open_read_only(db_path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to an existing database file that the caller closes (a report's).

    Waits, like :func:`connect`, while another process writes the file.
    """
    return _open(Path(db_path), True)


def _open(db_path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.05
    while True:
        try:
            return duckdb.connect(str(db_path), read_only=read_only, config={"threads": 2})
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


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
            # After an I/O error (a full disk) DuckDB has already aborted the transaction, and
            # ROLLBACK fails with "no transaction is active": keep the real cause.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise


def read_table(db_path: Path, name: str) -> pd.DataFrame:
    with connect(db_path, read_only=True) as con:
        return con.execute(f"SELECT * FROM {name}").df()


def table_exists(db_path: Path, name: str) -> bool:
    if not active_path(db_path).is_file():
        return False
    schema, table = name.split(".")
    with connect(db_path, read_only=True) as con:
        hit = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                          [schema, table]).fetchone()
    return bool(hit and hit[0])


def replace_rows(db_path: Path, name: str, key_column: str, key: str, row: Mapping[str, str]) -> None:
    """Replace the rows of table ``name`` whose ``key_column`` is ``key`` by ``row`` (all text columns).

    For small bookkeeping tables written one row at a time (``meta.versions``); the table
    is created on first use. One transaction.
    """
    schema, table = name.split(".")
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema in {name!r}")
    columns = list(row)
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f'CREATE TABLE IF NOT EXISTS {schema}."{table}" ('
                        + ", ".join(f'"{c}" VARCHAR' for c in columns) + ")")
            for c in columns:  # a table made by an older version gains the columns it lacks
                con.execute(f'ALTER TABLE {schema}."{table}" ADD COLUMN IF NOT EXISTS "{c}" VARCHAR')
            con.execute(f'DELETE FROM {schema}."{table}" WHERE "{key_column}" = ?', [key])
            con.execute(f'INSERT INTO {schema}."{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
                        f'VALUES ({", ".join("?" for _ in columns)})', [row[c] for c in columns])
            con.execute("COMMIT")
        except Exception:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise

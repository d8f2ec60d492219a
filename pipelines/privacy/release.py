"""A shareable release: the ``share`` tables as files a research team can hand on.

The processed DuckDB file holds the ``anon`` tables next to the ``share`` ones, and the
``anon`` tables are not k-anonymous (full quasi-identifiers, school pseudonyms, linkable
ids), so the database itself must never be passed on. ``mapstudy share`` writes only the
shareable tables, after checking k again on what it is about to write (per wave and per
pupil over linked waves, pipelines/privacy/shareable.py), into a new folder:

* ``<instrument>.parquet`` and ``<instrument>.csv`` (UTF-8, comma-separated) per shareable
  table; in the CSV files a text cell that a spreadsheet would run as a formula (starting
  with ``=``, ``+``, ``-``, ``@``, tab or carriage return) starts with a single quote
  (pipelines/spreadsheet_safe.py);
* ``disclosure.csv``: the ``meta.disclosure`` rows of the shareable tables (settings,
  risk after protection, information lost), so the receiver sees what was done;
* ``README.md``: what the files are, the protection settings, the run fingerprint, and
  why the ``pupil_id`` of one file does not match another's.

The folder is written under a temporary name and renamed when complete, so a failed or
interrupted export leaves no half-release behind; an existing folder is never
overwritten.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd

from pipelines import warehouse
from pipelines.config import Codebook, Study
from pipelines.privacy.shareable import shareable_below_k, shared_instruments
from pipelines.spreadsheet_safe import write_csv


class ReleaseError(RuntimeError):
    """The release cannot be written; nothing was written."""


def _fingerprint(study: Study) -> str:
    if not warehouse.table_exists(study.db_path, "meta.provenance"):
        return "missing"
    provenance = warehouse.read_table(study.db_path, "meta.provenance")
    rows = provenance.loc[provenance["kind"] == "fingerprint", "value"]
    return str(rows.iloc[0]) if len(rows) else "missing"


def _readme(study: Study, tables: Mapping[str, pd.DataFrame], fingerprint: str) -> str:
    privacy = study.privacy
    lines = [
        f"# Shareable release of the study `{study.study}`",
        "",
        f"Run fingerprint: `{fingerprint}` (the same fingerprint is printed in every report of the run).",
        "",
        "## Files",
        "",
    ]
    for name, table in tables.items():
        lines.append(f"- `{name}.parquet`, `{name}.csv`: {len(table)} records, columns: "
                     + ", ".join(f"`{c}`" for c in table.columns))
    lines += [
        "- `disclosure.csv`: the protection settings, the disclosure risk after protection and the "
        "information lost (the `meta.disclosure` rows of these tables).",
        "",
        "## Protection",
        "",
        f"- k-anonymity with k = {privacy.k_anonymity}: every record shares its quasi-identifiers with at "
        f"least {privacy.k_anonymity - 1} others in its wave, and every pupil the whole history of them over "
        "the waves with as many other pupils. A suppressed value is empty; a missing value counts as a value "
        "of its own.",
        "- Global recoding: " + ", ".join(f"`{c}` {how}" for c, how in privacy.share_recoding.items()) + ".",
        *([f"- Kept by request ({', '.join(f'`{c}`' for c in privacy.keep)}): the other keys were coarsened first "
           "(a generalisation lattice) and these suppressed last; `disclosure.csv` gives each key's chosen level, "
           "its information loss and `survived_share`, the share of records whose value survived."]
          if privacy.keep else []),
        "- Free text, direct identifiers and data-quality bookkeeping are not included.",
        "- `pupil_id` links a pupil's waves within one file only: each file has pseudonyms of its own, so the "
        "files cannot be joined to each other or to any other output of the study. Do not try to re-link "
        "them, and do not combine these files with other data about the same pupils.",
        "",
        "Counts below " + str(privacy.min_cell) + " must not be published from these files: suppress them as "
        "the study's reports do.",
        "",
    ]
    return "\n".join(lines)


def checked_tables(study: Study, codebooks: Mapping[str, Codebook], out_dir: Path) -> dict[str, pd.DataFrame]:
    """The shareable tables of ``study``, after the checks every release makes before writing.

    ``out_dir`` must not exist; the database must hold every shareable table; each table must
    be k-anonymous per wave and per pupil over linked waves. Raises :class:`ReleaseError`
    (nothing written) otherwise. ``mapstudy share`` and ``mapstudy export`` both call it.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ReleaseError(f"{out_dir} exists: choose a new folder (a release is never overwritten)")
    if not study.db_path.is_file():
        raise ReleaseError(f"{study.db_path} does not exist: run the study first")
    shared = shared_instruments(codebooks)
    missing = [n for n in shared if not warehouse.table_exists(study.db_path, f"share.{n}")]
    if missing:
        raise ReleaseError(f"the database has no shareable table for {missing}: run the study first")
    k = study.privacy.k_anonymity
    tables = {name: warehouse.read_table(study.db_path, f"share.{name}") for name in shared}
    failing = {name: n for name, t in tables.items() if (n := shareable_below_k(t, codebooks[name], k))}
    if failing:
        raise ReleaseError("k-anonymity does not hold, nothing written: " + ", ".join(
            f"share.{name} has {n} record(s) below k = {k}" for name, n in failing.items()))
    return tables


def fingerprint(study: Study) -> str:
    """The run fingerprint of the study's database (``missing`` when it has none)."""
    return _fingerprint(study)


def write_release(study: Study, codebooks: Mapping[str, Codebook], out_dir: Path) -> list[Path]:
    """Write the shareable tables of ``study`` into the new folder ``out_dir``; the files written."""
    out_dir = Path(out_dir)
    tables = checked_tables(study, codebooks, out_dir)
    disclosure = warehouse.read_table(study.db_path, "meta.disclosure")
    disclosure = disclosure[disclosure["table"].str.startswith("share.")]
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with duckdb.connect() as con:
            for name, table in tables.items():
                con.register("_table", table)
                target = str(partial / f"{name}.parquet").replace("'", "''")  # a quote in --out stays a quote
                con.execute(f"COPY _table TO '{target}' (FORMAT parquet)")
                con.unregister("_table")
                write_csv(table, partial / f"{name}.csv")  # formula-like text neutralised for spreadsheets
        write_csv(disclosure, partial / "disclosure.csv")
        (partial / "README.md").write_text(_readme(study, tables, _fingerprint(study)), encoding="utf-8")
        os.replace(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return sorted(out_dir.iterdir())

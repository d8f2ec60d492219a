"""Readers for the export formats that schools, municipalities and universities use.

Each reader returns the file's cells as they are (no interpretation beyond the format
itself), so that harmonisation is the one place that turns spellings into codes and every
decision there is recorded. Raw files are opened read-only and never written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyreadstat
from charset_normalizer import from_bytes

from pipelines.config import Source


class UnreadableFile(Exception):
    """A raw file could not be read as its source says. The message holds no cell values."""


@dataclass(frozen=True)
class RawTable:
    """A file's cells as read: one column per header, one row per data row (1-based in the file)."""

    frame: pd.DataFrame
    encoding: str | None = None
    delimiter: str | None = None


def read_raw(path: Path, source: Source) -> RawTable:
    """Read one export according to its source's format; raise UnreadableFile with the reason."""
    if not path.is_file():
        raise UnreadableFile(f"{path.name}: file not found")
    readers = {"sav": _read_spss, "zsav": _read_spss, "dta": _read_stata, "csv": _read_csv, "xlsx": _read_excel}
    try:
        return readers[source.format](path, source)
    except UnreadableFile:
        raise
    except Exception as exc:  # the libraries' messages can quote cells: keep only the kind of error
        raise UnreadableFile(f"{path.name}: cannot be read as {source.format} ({type(exc).__name__})") from None


def _read_spss(path: Path, source: Source) -> RawTable:
    # Codes, not labels: harmonisation maps codes through the codebook's value sets, which
    # also accept the labels, so a file with or without value labels reads the same.
    frame, _meta = pyreadstat.read_sav(str(path), apply_value_formats=False, user_missing=True)
    return RawTable(frame)


def _read_stata(path: Path, source: Source) -> RawTable:
    frame, _meta = pyreadstat.read_dta(str(path), apply_value_formats=False)
    return RawTable(frame)


def _detect_encoding(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[: 1 << 20], cp_isolation=["cp1257", "cp1252", "iso8859_13", "iso8859_15"]).best()
    return best.encoding if best is not None else "cp1257"


def _read_csv(path: Path, source: Source) -> RawTable:
    data = path.read_bytes()
    encoding = source.encoding or _detect_encoding(data)
    if encoding.replace("-", "").lower() in ("utf8",) and data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{path.name}: not valid {encoding} at byte {exc.start}") from None
    delimiter = source.delimiter
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:20000], delimiters=";,\t|").delimiter
        except csv.Error:
            raise UnreadableFile(f"{path.name}: cannot tell the delimiter; set it under sources in the study file") from None
    frame = pd.read_csv(
        io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_values=[], quotechar='"', engine="c"
    )
    return RawTable(frame, encoding=encoding, delimiter=delimiter)


def _read_excel(path: Path, source: Source) -> RawTable:
    # calamine (Rust) reads a workbook ten times faster than openpyxl, with the same cell types.
    frame = pd.read_excel(path, sheet_name=source.sheet, dtype=object, engine="calamine", keep_default_na=False, na_values=[])
    return RawTable(frame)

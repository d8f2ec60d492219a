"""What an export declares about itself, read cheaply: column names, variable and value labels.

`mapstudy check` and `mapstudy init` read only this: the header row of a CSV (with its
encoding and delimiter detected from the first bytes), the first row of a workbook, and
the metadata of an SPSS or Stata file (no data rows). Nothing here returns a cell value.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config import Source

FORMATS = {".sav": "sav", ".zsav": "zsav", ".dta": "dta", ".csv": "csv", ".xlsx": "xlsx"}
_HEAD_BYTES = 1 << 16


class HeaderError(Exception):
    """The header of a file cannot be read; the message names the file and the reason, never a cell."""


@dataclass
class FileHeader:
    format: str
    columns: list[str]
    labels: dict[str, str] = field(default_factory=dict)  # column -> variable label (SPSS/Stata)
    value_labels: dict[str, dict[object, str]] = field(default_factory=dict)  # column -> code -> label
    encoding: str | None = None
    delimiter: str | None = None


def file_format(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def _detect(data: bytes, declared: str | None) -> str:
    """The readers' encoding detection (cp1257 vs cp1252, UTF-8/16), so check sees what ingest reads."""
    from pipelines.ingest.readers import detect_encoding

    return detect_encoding(data, declared)[0]


def _csv_header(path: Path, source: Source | None) -> FileHeader:
    with open(path, "rb") as fh:
        data = fh.read(_HEAD_BYTES)
    encoding = _detect(data, source.encoding if source else None)
    text = data.decode(encoding, errors="ignore")
    lines = text.splitlines()
    first = lines[0] if lines else ""
    delimiter = source.delimiter if source and source.delimiter else None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=";,\t|").delimiter
        except csv.Error:
            counts = {d: first.count(d) for d in ";,\t|"}
            delimiter = max(counts, key=counts.get) if max(counts.values()) else ","
    columns = next(csv.reader([first], delimiter=delimiter, quotechar='"'), [])
    return FileHeader("csv", [c.strip() for c in columns], encoding=encoding, delimiter=delimiter)


def _xlsx_header(path: Path, source: Source | None) -> FileHeader:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    sheet_ref = source.sheet if source is not None else 0
    sheet = book.get_sheet_by_index(sheet_ref) if isinstance(sheet_ref, int) else book.get_sheet_by_name(sheet_ref)
    rows = sheet.to_python(nrows=1)
    columns = [str(c).strip() for c in rows[0]] if rows else []
    while columns and columns[-1] == "":
        columns.pop()
    return FileHeader("xlsx", columns)


def _stat_header(path: Path, fmt: str) -> FileHeader:
    import pyreadstat

    reader = pyreadstat.read_dta if fmt == "dta" else pyreadstat.read_sav
    _frame, meta = reader(str(path), metadataonly=True)
    labels = {c: str(lab) for c, lab in (meta.column_names_to_labels or {}).items() if lab}
    values = {c: dict(v) for c, v in (meta.variable_value_labels or {}).items()}
    return FileHeader(fmt, list(meta.column_names), labels=labels, value_labels=values,
                      encoding=getattr(meta, "file_encoding", None))


def read_header(path: Path, source: Source | None = None) -> FileHeader:
    """The file's header as its source (or, without one, its extension) says to read it."""
    fmt = source.format if source is not None else file_format(path)
    if fmt is None:
        raise HeaderError(f"{path.name}: not an export format mapstudy reads (.sav .zsav .dta .csv .xlsx)")
    if not path.is_file():
        raise HeaderError(f"{path.name}: file not found")
    try:
        if fmt == "csv":
            return _csv_header(path, source)
        if fmt == "xlsx":
            return _xlsx_header(path, source)
        return _stat_header(path, fmt)
    except HeaderError:
        raise
    except Exception as exc:  # library messages can quote cells: keep only the kind of error
        raise HeaderError(f"{path.name}: cannot read its header as {fmt} ({type(exc).__name__})") from None

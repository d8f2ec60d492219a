"""Readers for the export formats that schools, municipalities and universities use.

Each reader returns the file's cells as they are (no interpretation beyond the format
itself), so that harmonisation is the one place that turns spellings into codes and every
decision there is recorded. Raw files are opened read-only and never written.

What a reader must decide about the file itself (which encoding, a malformed row, a NUL
byte, an over-long cell) it records as notes on the `RawTable`, by row number and column,
never with a value; the ingest turns them into findings. A malformed CSV row is rejected
alone and the rest of the file is read.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
from charset_normalizer import from_bytes

from pipelines.config import Source


class UnreadableFile(Exception):
    """A raw file could not be read as its source says. The message holds no cell values."""

    rule = "unreadable_file"


class MissingFile(UnreadableFile):
    """A file listed in the study is not there."""

    rule = "missing_file"


class EmptyFile(UnreadableFile):
    """A file of zero bytes."""

    rule = "empty_file"


class OutsideRawDir(UnreadableFile):
    """A path (through a symlink) that leaves the study's raw folder: refused, never read."""

    rule = "outside_raw_dir"


@dataclass(frozen=True)
class ReadNote:
    """Something the reader decided about the file: becomes one finding (no values)."""

    rule: str
    severity: str
    action: str
    message: str
    rows: tuple[int, ...] = ()  # 1-based data rows; empty for a file-level note
    column: str | None = None
    n: int = 1


@dataclass(frozen=True)
class RawTable:
    """A file's cells as read: one column per header, one row per data row.

    The frame's index is the 1-based data row of the file; rows the reader rejected
    (malformed CSV rows) are not in the frame but in `rejected` (row -> rule).
    """

    frame: pd.DataFrame
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[ReadNote] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    value_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> code text -> label
    declared_missing: dict[str, "DeclaredMissing"] = field(default_factory=dict)
    #: a text reader's bound on any cell (its longest record) and whether a NUL byte occurs: lets
    #: the NUL and long-cell scan of every cell be skipped when it cannot find anything
    longest_record: int | None = None
    has_nul: bool | None = None

    @property
    def rows_read(self) -> int:
        return len(self.frame) + len(self.rejected)


@dataclass(frozen=True)
class DeclaredMissing:
    """User-missing values and ranges a .sav/.dta file declares for one column."""

    values: frozenset[str] = frozenset()
    ranges: tuple[tuple[float, float], ...] = ()

    def __contains__(self, cell: Any) -> bool:
        text = _code_text(cell)
        if text is None:
            return False
        if text in self.values:
            return True
        try:
            number = float(text)
        except ValueError:
            return False
        return any(lo <= number <= hi for lo, hi in self.ranges)


def read_raw(path: Path, source: Source, max_cell_chars: int = 10_000, raw_dir: Path | None = None) -> RawTable:
    """Read one export according to its source's format; raise UnreadableFile with the reason."""
    if raw_dir is not None:
        check_inside(path, raw_dir)
    if not path.exists():
        raise MissingFile(f"{path.name}: file not found")
    if not path.is_file():
        raise UnreadableFile(f"{path.name}: not a file (a folder or a device)")
    if path.stat().st_size == 0:
        raise EmptyFile(f"{path.name}: the file is empty (0 bytes)")
    readers = {"sav": _read_spss, "zsav": _read_spss, "dta": _read_stata, "csv": _read_csv, "xlsx": _read_excel}
    try:
        table = readers[source.format](path, source)
    except UnreadableFile:
        raise
    except Exception as exc:  # the libraries' messages can quote cells: keep only the kind of error
        raise UnreadableFile(f"{path.name}: cannot be read as {source.format} ({type(exc).__name__})") from None
    return _sanitise(table, max_cell_chars)


def check_inside(path: Path, raw_dir: Path) -> None:
    """Refuse a path that resolves (through '..' or a symlink) outside raw_dir; reads nothing."""
    root = Path(raw_dir).resolve()
    try:
        target = Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise OutsideRawDir(f"{Path(path).name}: the path cannot be resolved (a symlink loop?)") from None
    if not target.is_relative_to(root):
        raise OutsideRawDir(f"{Path(path).name}: resolves outside the study's raw folder {root} "
                            "(a symlink or '..'): refused, not read")


# ---------------------------------------------------------------------------------------------
# SPSS and Stata: codes, plus the file's own value labels and declared missing values


def _code_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = str(value).strip()
    return text or None


def _labels(meta: Any) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for column, mapping in (getattr(meta, "variable_value_labels", None) or {}).items():
        labels = {}
        for code, label in mapping.items():
            key = _code_text(code)
            if key is not None and isinstance(label, str) and label.strip():
                labels[key] = label
        if labels:
            out[str(column)] = labels
    return out


def _declared_missing(meta: Any) -> dict[str, DeclaredMissing]:
    out: dict[str, DeclaredMissing] = {}
    columns = set((getattr(meta, "missing_ranges", None) or {})) | set((getattr(meta, "missing_user_values", None) or {}))
    for column in columns:
        values: set[str] = set()
        ranges: list[tuple[float, float]] = []
        for r in (meta.missing_ranges or {}).get(column, []):
            lo, hi = r.get("lo"), r.get("hi")
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
                ranges.append((float(lo), float(hi)))
            elif lo is not None:
                values.add(str(lo).strip())
        for v in (getattr(meta, "missing_user_values", None) or {}).get(column, []):
            text = _code_text(v)
            if text is not None:
                values.add(text)
        if values or ranges:
            out[str(column)] = DeclaredMissing(frozenset(values), tuple(ranges))
    return out


def _read_spss(path: Path, source: Source) -> RawTable:
    # Codes, not labels: harmonisation maps codes through the codebook's value sets and, for a
    # code the value set does not know, through the file's own label for it.
    frame, meta = pyreadstat.read_sav(str(path), apply_value_formats=False, user_missing=True)
    return RawTable(_numbered(frame), value_labels=_labels(meta), declared_missing=_declared_missing(meta))


def _read_stata(path: Path, source: Source) -> RawTable:
    # Stata's extended missing values (.a-.z) come as the letters, declared missing per column.
    frame, meta = pyreadstat.read_dta(str(path), apply_value_formats=False, user_missing=True)
    return RawTable(_numbered(frame), value_labels=_labels(meta), declared_missing=_declared_missing(meta))


def _read_excel(path: Path, source: Source) -> RawTable:
    # calamine (Rust) reads a workbook ten times faster than openpyxl, with the same cell types.
    table = _calamine_table(path, source.sheet)
    if table is not None:
        return table
    # a sheet the plain path does not cover (or a broken file): pandas decides, and words the error
    frame = pd.read_excel(path, sheet_name=source.sheet, dtype=object, engine="calamine", keep_default_na=False,
                          na_values=[])
    return RawTable(_numbered(frame))


def _calamine_table(path: Path, sheet: int | str) -> RawTable | None:
    """The table of what ``pd.read_excel(path, sheet_name=sheet, dtype=object, engine="calamine",
    keep_default_na=False, na_values=[])`` returns, built from python-calamine's rows by whole
    columns instead of pandas' call per cell, with the longest text cell and whether one holds
    a NUL (so that the NUL and long-cell scan is skipped when it cannot find anything); None when
    the sheet is not a plain table (no rows, one column, a header cell that is not a distinct
    non-empty text) or cannot be opened, so that pandas reads it (and raises its own error)."""
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        if isinstance(sheet, int):
            if not 0 <= sheet < len(workbook.sheet_names):
                return None
            rows = workbook.get_sheet_by_index(sheet).to_python(skip_empty_area=False)
        else:
            if sheet not in workbook.sheet_names:
                return None
            rows = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    except Exception:  # noqa: BLE001 - pandas opens it again and raises what it raises
        return None
    if not rows:
        return None
    header = rows[0]
    width = len(header)
    if width < 2 or any(len(row) != width for row in rows) \
            or not all(isinstance(h, str) and h.strip() and not h.startswith("Unnamed:") for h in header) \
            or len(set(header)) != width:
        return None
    cells = np.empty((len(rows) - 1, width), dtype=object)
    if len(rows) > 1:
        cells[:] = rows[1:]
    longest, has_nul = 0, False
    for i in range(width):
        column = cells[:, i]
        values = column.tolist()
        kinds = set(map(type, values))
        texts = values if kinds == {str} else [v for v in values if type(v) is str] if str in kinds else []
        if texts:
            longest = max(longest, max(map(len, texts)))
            has_nul = has_nul or "\x00" in "".join(texts)
        if kinds - {str}:
            cells[:, i] = _excel_cells(column, kinds)
    frame = pd.DataFrame(cells, columns=header, index=pd.RangeIndex(1, len(cells) + 1), dtype=object, copy=False)
    return RawTable(frame, longest_record=longest, has_nul=has_nul)


def _calamine_frame(path: Path, sheet: int | str) -> pd.DataFrame | None:
    """The frame of ``_calamine_table``, numbered from 0 as pandas numbers it (for comparing)."""
    table = _calamine_table(path, sheet)
    return None if table is None else table.frame.set_axis(pd.RangeIndex(len(table.frame)))


def _excel_cells(column: np.ndarray, kinds: set[type]) -> np.ndarray:
    """pandas' calamine cell conversion on one column: whole floats become ints, dates datetimes."""
    column = column.copy()
    if float in kinds:
        at = np.flatnonzero(np.fromiter((type(v) is float for v in column), dtype=bool, count=len(column)))
        values = column[at].astype(np.float64)
        whole = np.isfinite(values) & (values == np.floor(values))
        small = whole & (np.abs(values) < 2.0 ** 53)
        column[at[small]] = values[small].astype(np.int64).tolist()
        for i in at[whole & ~small]:  # a huge whole float: Python's int of it, as pandas does
            column[i] = int(column[i])
    if kinds - {float, str, bool, int, dt.datetime, dt.timedelta, dt.time}:
        column[:] = [_excel_cell(v) for v in column.tolist()]
    return column
def _excel_cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


def _numbered(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


# ---------------------------------------------------------------------------------------------
# Encodings

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_SINGLE_BYTE = ("cp1257", "cp1252", "iso8859_13", "iso8859_15")
#: Letters of Estonian (and of Russian names written in Latin letters): what a right guess gives.
_PLAUSIBLE = set("õäöüšžÕÄÖÜŠŽ")


def _family(encoding: str) -> str:
    e = encoding.replace("-", "").replace("_", "").lower()
    if e.startswith("utf8"):
        return "utf8"
    if e.startswith("utf16"):
        return "utf16"
    return e


def _plausibility(text: str) -> tuple[int, int]:
    """(implausible, plausible) counts of non-ASCII letters: fewer implausible is better."""
    bad = good = 0
    for ch in set(text):
        if ord(ch) < 128:
            continue
        count = text.count(ch)
        if ch in _PLAUSIBLE:
            good += count
        elif ch.isalpha():
            bad += count
    return bad, good


def _decodes(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _best_single_byte(data: bytes) -> str | None:
    """cp1257, cp1252 and their ISO cousins told apart: decodable, then Estonian-plausible."""
    candidates = []
    for encoding in _SINGLE_BYTE:
        text = _decodes(data, encoding)
        if text is not None:
            bad, good = _plausibility(text)
            candidates.append((bad, -good, encoding))
    if not candidates:
        return None
    best = from_bytes(data[: 1 << 20], cp_isolation=list(_SINGLE_BYTE)).best()
    preferred = best.encoding if best is not None else "cp1257"
    candidates.sort(key=lambda c: (c[0], c[1], c[2] != preferred, _SINGLE_BYTE.index(c[2])))
    return candidates[0][2]


def detect_encoding(data: bytes, declared: str | None = None) -> tuple[str, str | None]:
    """(encoding, why the declared one was overridden or None).

    A byte-order mark wins over everything; then UTF-16 without a mark; then UTF-8 when the
    bytes are valid UTF-8 with non-ASCII letters; then the declared encoding if the bytes
    decode and read as Estonian; else the most plausible of cp1257/cp1252/ISO-8859-13/15.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            if declared is None or _family(declared) == _family(encoding):
                return encoding, None
            return encoding, f"a {encoding.replace('-sig', '')} byte-order mark overrides the declared {declared}"
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        return utf16, (None if declared is None or _family(declared) == "utf16"
                       else f"the bytes are {utf16} (no byte-order mark), not the declared {declared}")
    is_utf8 = _decodes(data, "utf-8") is not None
    non_ascii = not data.isascii() if is_utf8 else True
    if is_utf8 and (non_ascii or declared is None):
        if declared is None or _family(declared) == "utf8" or not non_ascii:
            return ("utf-8" if declared is None or _family(declared) == "utf8" else declared), None
        return "utf-8", f"the bytes are valid UTF-8, not the declared {declared}"
    if declared is not None:
        text = _decodes(data, declared)
        if text is not None:
            if _family(declared) in ("utf8", "utf16") or _plausibility(text)[0] == 0:
                return declared, None
            best = _best_single_byte(data)
            if best is not None and _plausibility(data.decode(best))[0] == 0:
                return best, f"the text reads as Estonian in {best}, not in the declared {declared}"
            return declared, None
        best = _best_single_byte(data)
        if best is None:
            raise UnreadableFile(f"not valid {declared} (the declared encoding) nor any known encoding")
        return best, f"the bytes are not valid {declared} (the declared encoding); read as {best}"
    best = _best_single_byte(data)
    if best is None:
        raise UnreadableFile("the encoding cannot be told (not UTF-8/UTF-16 nor a Baltic/Western code page)")
    return best, None


# ---------------------------------------------------------------------------------------------
# CSV: row by row, so that one bad row is rejected alone

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
csv.field_size_limit(1 << 30)  # a huge cell is read, then truncated with a finding (max_cell_chars)
_MAX_JOINED_LINES = 200  # a quoted cell may span lines: at most this many


def _fields(text: str, delimiter: str, strict: bool) -> list[str]:
    return next(csv.reader([text], delimiter=delimiter, strict=strict), [])


def _fits(fields: list[str], width: int) -> list[str] | None:
    """The fields when they fit the header (trailing empty cells beyond it dropped), else None."""
    if len(fields) > width and not any(f.strip() for f in fields[width:]):
        fields = fields[:width]
    return fields if len(fields) == width else None


def _parse_csv(text: str, delimiter: str) -> tuple[list[str], list[tuple[int, list[str] | None, str]], int]:
    """(header, [(file line, fields or None, problem)], longest record) for every non-blank data record.

    Each physical line is a record unless a quoted cell spans lines; a line with a stray quote
    that no following line closes, or whose joined record does not fit the header, is one
    malformed record and reading goes on with the next line.
    """
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines):
        raise UnreadableFile("no header row")
    header = _fields(lines[i], delimiter, strict=False)
    while header and not header[-1].strip():
        header = header[:-1]
    width = len(header)
    out: list[tuple[int, list[str] | None, str]] = []
    longest = max(map(len, lines), default=0)
    i += 1
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.count('"') % 2 == 0:
            fields = _fits(_fields(line, delimiter, strict=False), width)
            out.append((i + 1, fields, "" if fields is not None else "ragged"))
            i += 1
            continue
        # An odd number of quotes: a cell spanning lines, a literal quote inside a cell, or a stray quote.
        try:
            fields = _fits(_fields(line, delimiter, strict=True), width)
        except csv.Error:
            fields = None
        if fields is not None:
            out.append((i + 1, fields, ""))
            i += 1
            continue
        joined, j, row_like = line, i, False
        while j + 1 < len(lines) and j - i < _MAX_JOINED_LINES:
            j += 1
            if joined.count('"') % 2 == 1 and lines[j].count('"') % 2 == 0 \
                    and _fits(_fields(lines[j], delimiter, strict=False), width) is not None:
                row_like = True  # a whole row inside the "cell": a stray quote, not a cell spanning lines
            joined += "\n" + lines[j]
            if joined.count('"') % 2 == 0:
                break
        fields = None
        if joined.count('"') % 2 == 0 and not row_like:
            try:
                fields = _fits(_fields(joined, delimiter, strict=True), width)
            except csv.Error:
                fields = None
        if fields is not None:
            out.append((i + 1, fields, ""))
            longest = max(longest, len(joined))
            i = j + 1
        else:
            out.append((i + 1, None, "unbalanced_quote"))
            i += 1
    return header, out, longest


def _dedupe(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in header:
        name = name.strip()
        if name in seen:
            seen[name] += 1
            out.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out


def _read_csv(path: Path, source: Source) -> RawTable:
    data = path.read_bytes()
    try:
        encoding, overridden = detect_encoding(data, source.encoding)
    except UnreadableFile as exc:
        raise UnreadableFile(f"{path.name}: {exc}") from None
    if encoding == "utf-8" and data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    text = _decodes(data, encoding)
    if text is None:
        raise UnreadableFile(f"{path.name}: not valid {encoding}")
    if text.startswith("\ufeff"):
        text = text[1:]
    notes = []
    if overridden:
        notes.append(ReadNote("encoding_overridden", "warning", "recoded", overridden))
    delimiter = source.delimiter
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:20000], delimiters=";,\t|").delimiter
        except csv.Error:
            raise UnreadableFile(f"{path.name}: cannot tell the delimiter; set it under sources in the study file") from None
    try:
        header, records, longest = _parse_csv(text, delimiter)
    except UnreadableFile as exc:
        raise UnreadableFile(f"{path.name}: {exc}") from None
    header = _dedupe(header)
    width = len(header)
    rows: list[list[str]] = []
    numbers: list[int] = []
    rejected: dict[int, str] = {}
    messages: dict[int, str] = {}
    # Data rows are numbered in file order; a malformed row keeps its number (it is rejected).
    for number, (line, fields, problem) in enumerate(records, start=1):
        if fields is None:
            rejected[number] = "malformed_row"
            messages[number] = (f"unbalanced quote (file line {line}): row rejected" if problem == "unbalanced_quote"
                                else f"the row's cells do not fit the header's {width} (file line {line}): row rejected")
            continue
        rows.append(fields)
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=header, index=pd.Index(numbers, dtype="int64"), dtype=object) if rows else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in header}).set_axis(pd.Index([], dtype="int64"))
    for number, message in messages.items():
        notes.append(ReadNote("malformed_row", "error", "row_rejected", message, rows=(number,)))
    return RawTable(frame, encoding=encoding, delimiter=delimiter, notes=notes, rejected=rejected,
                    longest_record=longest, has_nul="\x00" in text)


# ---------------------------------------------------------------------------------------------
# Every format: NUL bytes and over-long cells


def _clean_cells(frame: pd.DataFrame, max_cell_chars: int) -> bool:
    """True when no text cell holds a NUL or is longer than ``max_cell_chars`` (one pass in C
    per column instead of a Python call per cell)."""
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if series.dtype != object:
            continue
        texts = [v for v in series.to_numpy() if isinstance(v, str)]
        if texts and (max(map(len, texts)) > max_cell_chars or "\x00" in "".join(texts)):
            return False
    return True


def _sanitise(table: RawTable, max_cell_chars: int) -> RawTable:
    if table.has_nul is False and table.longest_record is not None and table.longest_record <= max_cell_chars:
        return table  # no cell can hold a NUL or be longer than its record
    frame = table.frame
    if _clean_cells(frame, max_cell_chars):
        return table  # what the loop below would return, found without a call per cell
    notes = list(table.notes)
    changed = False
    for column in frame.columns:
        series = frame[column]
        if series.dtype != object:
            continue
        is_text = series.map(lambda v: isinstance(v, str))
        if not is_text.any():
            continue
        text = series[is_text]
        nul = text.str.contains("\x00", regex=False)
        if nul.any():
            if not changed:
                frame, changed = frame.copy(), True
            frame.loc[nul[nul].index, column] = text[nul].str.replace("\x00", "", regex=False)
            notes.append(ReadNote("nul_removed", "warning", "recoded", "NUL bytes removed from the cell",
                                  rows=tuple(int(r) for r in nul[nul].index), column=str(column)))
            text = frame.loc[is_text[is_text].index, column]
        long = text.str.len() > max_cell_chars
        if long.any():
            if not changed:
                frame, changed = frame.copy(), True
            frame.loc[long[long].index, column] = text[long].str.slice(0, max_cell_chars)
            notes.append(ReadNote("cell_truncated", "warning", "truncated",
                                  f"cell longer than {max_cell_chars} characters (ingest.max_cell_chars): truncated",
                                  rows=tuple(int(r) for r in long[long].index), column=str(column)))
    if not changed and len(notes) == len(table.notes):
        return table
    return RawTable(frame, encoding=table.encoding, delimiter=table.delimiter, notes=notes, rejected=table.rejected,
                    value_labels=table.value_labels, declared_missing=table.declared_missing)

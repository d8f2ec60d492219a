"""Writing one export file the way each county's tool does, byte-for-byte reproducibly.

- sav (Võru, SPSS): numeric codes with value labels, user-missing -9/99 declared, dates
  as SPSS dates; readstat stamps the creation time into the header, so the stamp is
  overwritten with a fixed one after writing (header offsets 92/101 of the SPSS format).
- csv (Lääne-Viru, LimeSurvey): `;`-separated, Windows-1257, dd.mm.yyyy, decimal comma,
  a leading response `id` column as LimeSurvey writes.
- xlsx (Tartu forms, municipal workbook): full question texts as headers; a Google-Forms
  style `Ajatempel` column first for forms; dates as date cells. Written as SpreadsheetML
  directly, with fixed zip-entry and document times.
- dta (university, Stata 15): numeric codes with value labels; the `<timestamp>` in the
  header is fixed after writing.
Columns whose name starts with "_" are helpers and never written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat

FIXED_TIME = dt.datetime(2024, 6, 1, 12, 0, 0)
_SAV_DATE_OFFSET = 92  # after the 8-byte bias: "dd mmm yy" (9 bytes) then "hh:mm:ss" (8 bytes)
_DTA_STAMP = re.compile(rb"<timestamp>.(.{0,17})</timestamp>", re.S)


def _visible(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if not str(c).startswith("_")]]


def _text(value: Any, decimal: str = ".", date_format: str = "%d.%m.%Y") -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (pd.Timestamp, dt.date, np.datetime64)):
        return pd.Timestamp(value).strftime(date_format)
    if isinstance(value, (float, np.floating)):
        text = repr(float(value))
        return text[:-2] if text.endswith(".0") else text.replace(".", decimal)
    return str(value)


class _PerValue:
    """``fn(value)`` remembered per distinct value (and its type): export columns repeat few values.

    The type is part of the key (``1``, ``1.0`` and ``True`` print differently); float
    zeros and NaN are never remembered (``-0.0 == 0.0``, and NaN is unequal to itself).
    """

    def __init__(self, fn):
        self.fn, self.known = fn, {}

    def __call__(self, value: Any):
        key = (type(value), value)
        try:
            return self.known[key]
        except KeyError:
            pass
        except TypeError:  # unhashable
            return self.fn(value)
        result = self.fn(value)
        if not (isinstance(value, (float, np.floating)) and (value == 0 or value != value)):
            self.known[key] = result
        return result


def write_csv(frame: pd.DataFrame, path: Path, delimiter: str, encoding: str, decimal: str, date_format: str) -> None:
    """LimeSurvey-style CSV with a response id column."""
    frame = _visible(frame)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["id", *frame.columns])
    texts = [_PerValue(lambda v: _text(v, decimal, date_format)) for _ in frame.columns]
    for number, row in enumerate(frame.itertuples(index=False, name=None), start=1):
        writer.writerow([number, *(text(v) for text, v in zip(texts, row))])
    path.write_bytes(buffer.getvalue().encode(encoding))


_XML_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_DATE_STYLE, _DATETIME_STYLE = 1, 2
_ROWS_PER_CHUNK = 20_000
_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        '</Relationships>'),
    "docProps/core.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<dc:creator>mapstudy synth</dc:creator>'
        '<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        '<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
        '</cp:coreProperties>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
        '</Relationships>'),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<numFmts count="2"><numFmt numFmtId="164" formatCode="dd\\.mm\\.yyyy"/>'
        '<numFmt numFmtId="165" formatCode="dd\\.mm\\.yyyy\\ hh:mm:ss"/></numFmts>'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '</styleSheet>'),
}


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _cell_xml(value: Any, ref: str) -> str:
    """One cell: strings inline, numbers as numbers, dates as Excel serials with a date style."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, str):
        if not value:
            return ""
        space = ' xml:space="preserve"' if value != value.strip() else ""
        return f'<c r="{ref}" t="inlineStr"><is><t{space}>{value.translate(_XML_ESCAPE)}</t></is></c>'
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        stamp = pd.Timestamp(value)
        serial = (stamp.to_pydatetime().replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86400
        style = _DATE_STYLE if stamp == stamp.normalize() else _DATETIME_STYLE
        return f'<c r="{ref}" s="{style}"><v>{serial:.10g}</v></c>'
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    if isinstance(value, (float, np.floating)):
        return f'<c r="{ref}"><v>{float(value)!r}</v></c>'
    return f'<c r="{ref}"><v>{int(value)}</v></c>'


def _cell_tail(value: Any) -> str:
    """``_cell_xml(value, ref)`` without its leading '<c r="REF"' ('' for an empty cell)."""
    xml = _cell_xml(value, "")
    return xml[len('<c r=""'):] if xml else ""


def _sheet_chunks(header: list[str], columns: list[np.ndarray], n: int):
    """The worksheet XML in pieces of at most _ROWS_PER_CHUNK rows (bounded memory)."""
    letters = [_column_letters(j) for j in range(len(header))]
    yield ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
           '<row r="1">' + "".join(_cell_xml(h, f"{letters[j]}1") for j, h in enumerate(header)) + "</row>")
    # A cell is '<c r="REF"' + a tail that depends on the value only: the tails are remembered per value.
    tails = [_PerValue(_cell_tail) for _ in columns]
    for start in range(0, n, _ROWS_PER_CHUNK):
        stop = min(start + _ROWS_PER_CHUNK, n)
        numbers = [str(r + 2) for r in range(start, stop)]
        cells = [[(f'<c r="{letter}{number}"{tail}' if tail else "")
                  for tail, number in zip(map(tail_of, column[start:stop]), numbers)]
                 for letter, column, tail_of in zip(letters, columns, tails)]
        yield "".join(f'<row r="{number}">' + "".join(row) + "</row>" for number, *row in zip(numbers, *cells))
    yield "</sheetData></worksheet>"


def write_xlsx(frame: pd.DataFrame, path: Path, sheet: str, timestamp_column: str | None = None) -> None:
    """An Excel workbook with one sheet, headers as given, and fixed zip and document times.

    Written directly as SpreadsheetML (inline strings): openpyxl's cell-by-cell writer is
    too slow for 10^6 pupils and stamps the save time, which breaks reproducibility.
    """
    frame = _visible(frame)
    header = ([timestamp_column] if timestamp_column else []) + [str(c) for c in frame.columns]
    columns = [frame[c].to_numpy(dtype=object) for c in frame.columns]
    if timestamp_column:
        stamps = pd.date_range(FIXED_TIME - dt.timedelta(days=30), periods=max(len(frame), 1), freq="37s")
        columns.insert(0, np.array(stamps[: len(frame)].to_pydatetime(), dtype=object))
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = {name: text.replace("{stamp}", stamp).replace("{sheet}", sheet.translate(_XML_ESCAPE))
             for name, text in _XLSX_PARTS.items()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(_zip_entry(name), text)
        with archive.open(_zip_entry("xl/worksheets/sheet1.xml"), "w", force_zip64=True) as handle:
            for chunk in _sheet_chunks(header, columns, len(frame)):
                handle.write(chunk.encode("utf-8"))


def _zip_entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=FIXED_TIME.timetuple()[:6])
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


def _stat_frame(frame: pd.DataFrame, date_columns: list[str]) -> pd.DataFrame:
    """Numbers as float, strings as str ('' for missing), dates as datetime.date."""
    out = {}
    for column in frame.columns:
        values = frame[column]
        if column in date_columns:
            out[column] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in values]
        elif values.map(lambda v: isinstance(v, str)).any():
            out[column] = ["" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
                           for v in values]
        else:
            out[column] = pd.to_numeric(values.astype(object), errors="coerce").astype(float)
    return pd.DataFrame(out)


def write_sav(frame: pd.DataFrame, path: Path, value_labels: dict[str, dict[int, str]],
              missing: dict[str, list[int]], labels: dict[str, str], date_columns: list[str]) -> None:
    frame = _stat_frame(_visible(frame), date_columns)
    value_labels = {k: {float(c): v for c, v in m.items()} for k, m in value_labels.items() if k in frame}
    missing = {k: [float(v) for v in m][:3] for k, m in missing.items() if k in frame and frame[k].dtype == float}
    pyreadstat.write_sav(frame, str(path), column_labels={k: v for k, v in labels.items() if k in frame},
                         variable_value_labels=value_labels, missing_ranges=missing)
    data = bytearray(path.read_bytes())
    data[_SAV_DATE_OFFSET:_SAV_DATE_OFFSET + 17] = FIXED_TIME.strftime("%d %b %y%H:%M:%S").encode("ascii")
    path.write_bytes(bytes(data))


def write_dta(frame: pd.DataFrame, path: Path, value_labels: dict[str, dict[int, str]],
              labels: dict[str, str], date_columns: list[str]) -> None:
    frame = _stat_frame(_visible(frame), date_columns)
    value_labels = {k: {int(c): v for c, v in m.items()} for k, m in value_labels.items() if k in frame}
    pyreadstat.write_dta(frame, str(path), column_labels={k: v[:80] for k, v in labels.items() if k in frame},
                         variable_value_labels=value_labels, version=15)
    data = path.read_bytes()
    stamp = FIXED_TIME.strftime("%d %b %Y %H:%M").encode("ascii")
    data = _DTA_STAMP.sub(lambda m: b"<timestamp>" + bytes([len(stamp)]) + stamp + b"</timestamp>", data, count=1)
    path.write_bytes(data)

"""Data for researchers: the shareable tables as SPSS, Stata, Parquet, CSV and Excel files, with a codebook.

``mapstudy export`` writes the ``share.*`` tables (k-anonymous, pipelines/privacy/shareable.py)
in the formats researchers use, labelled from the study's codebooks in Estonian or English:

* ``<table>.sav`` (pyreadstat): variable labels, value labels, measure levels (nominal,
  ordinal, scale), and a declared missing value ``-9`` ("missing or suppressed") in every
  coded variable; text is UTF-8, so Estonian letters stay as they are;
* ``<table>.dta`` (Stata 15, pyreadstat): the same numeric codes with value labels
  (missing is Stata's ``.``; variable labels are cut to Stata's 80 characters);
* ``<table>.parquet``: the shareable table as it is in the database (the codes);
* ``<table>.csv``: one row per record, coded variables written as their labels in the
  chosen language, in one of two dialects: ``rfc4180`` (UTF-8, comma, CRLF, decimal
  point) or ``excel-et`` (UTF-8 with BOM, semicolon, decimal comma: what Estonian Excel
  opens as columns). Bands are labelled with an en dash (``7–9``), which Excel keeps as
  text where ``7-9`` would turn into a date;
* ``<table>.xlsx``: the labelled table and a ``codebook`` sheet;
* ``codebook.html`` (self-contained, for reading) and ``datapackage.json`` (Frictionless
  Data Package: the machine-readable codebook, see :func:`datapackage`);
* ``README.md``: what the files are, the run fingerprint, the protection and the loss.

Every CSV and XLSX text cell goes through pipelines/spreadsheet_safe.py (no formula
injection). Before anything is written the tables pass the same checks as ``mapstudy
share`` (pipelines/privacy/release.py ``checked_tables``: k per wave and per pupil over
linked waves); the folder is written under a temporary name and renamed when complete.

Counts in the codebook (per value) are protected like every published table: counts
from 1 to ``privacy.min_cell - 1`` show as ``<min_cell``, with secondary suppression so a
hidden count cannot be subtracted back from the total (pipelines/privacy/cells.py).
No value of an identifying column is ever read: such columns are not in ``share.*``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import warehouse
from pipelines.config import Codebook, Study
from pipelines.ingest.typing import ID_COLUMN
from pipelines.privacy.cells import protect_table
from pipelines.privacy.release import ReleaseError, checked_tables, fingerprint
from pipelines.spreadsheet_safe import safe_frame, write_csv

FORMATS = ("sav", "dta", "parquet", "csv", "xlsx")
LANGUAGES = ("et", "en")
DIALECTS = ("rfc4180", "excel-et")
#: The declared missing value of coded variables in the .sav file.
MISSING_CODE = -9
MISSING_LABEL = {"et": "puudub või varjatud (avalikustamiskontroll)", "en": "missing or suppressed (disclosure control)"}
BAND_DASH = "\u2013"  # en dash: "7–9" stays text in Excel, "7-9" becomes a date

#: Labels of the columns every shareable table has besides the codebook's variables.
STRUCTURAL_LABELS = {
    "wave": {"et": "Laine", "en": "Wave"},
    "county": {"et": "Maakond", "en": "County"},
    "age": {"et": "Vanus (uuringu võrdluskuupäeval)", "en": "Age (at the study's reference date)"},
    "birth_year": {"et": "Sünniaasta", "en": "Year of birth"},
}
PSEUDONYM_LABEL = {"et": "Pseudonüüm (ainult selles failis; seob sama isiku laineid)",
                   "en": "Pseudonym (this file only; links the same person's waves)"}


class ExportError(ReleaseError):
    """The export cannot be written; nothing was written."""


@dataclass
class Column:
    """What the export knows about one column of a shareable table.

    ``kind``: ``coded`` (a finite set of codes, each with a number and labels), ``number``,
    ``text`` or ``pseudonym``. ``codes`` maps a code as stored in ``share.*`` to
    ``(number, {"et": label, "en": label})``. ``measure``: SPSS's nominal, ordinal or scale.
    """

    name: str
    label: dict[str, str]
    kind: str
    measure: str
    role: str = ""
    codes: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    source_missing: list = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)
    recoding: str = ""
    counts: dict = field(default_factory=dict, repr=False)  # protected counts, computed once per table

    def number_of(self, series: pd.Series) -> pd.Series:
        """Coded values as their numbers (missing stays missing)."""
        numbers = {code: number for code, (number, _) in self.codes.items()}
        return series.astype("string").map(numbers).astype("Float64")

    def label_of(self, series: pd.Series, lang: str) -> pd.Series:
        """Coded values as their labels in ``lang`` (missing stays missing)."""
        labels = {code: labels[lang] for code, (_, labels) in self.codes.items()}
        return series.astype("string").map(labels).astype("string")


def _band_key(text: str) -> tuple[float, str]:
    head = str(text).split("-")[0].strip()
    try:
        return float(head), str(text)
    except ValueError:
        return float("inf"), str(text)


_BAND = re.compile(r"^(\d{1,3})-(\d{1,3})$")


def _is_band(text: str) -> bool:
    """A closed integer band such as ``7-9`` or ``10-12`` (not a month such as ``2024-03``)."""
    match = _BAND.match(text)
    return bool(match) and int(match.group(1)) <= int(match.group(2))


def _band_label(code: str) -> str:
    """``7-9`` as ``7–9`` (en dash, stays text in Excel); an open top band ``19-119`` as ``19+``."""
    match = _BAND.match(code)
    if not match:
        return code
    return f"{match.group(1)}+" if int(match.group(2)) >= 99 else code.replace("-", BAND_DASH)


def _integral(series: pd.Series) -> bool:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return bool(len(values) == 0 or np.all(np.equal(np.mod(values.to_numpy(dtype=float), 1), 0)))


def _sources(codebook: Codebook, name: str, study: Study) -> dict[str, list[str]]:
    """Source columns of a variable per source, the source named with its counties and waves."""
    var = codebook.variables.get(name)
    if var is None:
        return {}
    used: dict[str, set[str]] = {}
    for item in study.inputs:
        if item.instrument == codebook.instrument:
            where = study.counties[item.county].name if item.county in study.counties else ""
            used.setdefault(item.source, set()).add(" ".join(p for p in (where, item.wave or "") if p))
    result = {}
    for source, columns in var.source.items():
        columns = [columns] if isinstance(columns, str) else list(columns)
        context = ", ".join(sorted(used.get(source, ())))
        result[f"{source} ({context})" if context else source] = columns
    return result


def describe_columns(table: pd.DataFrame, codebook: Codebook, study: Study,
                     recodings: Mapping[str, str] | None = None) -> list[Column]:
    """One :class:`Column` per column of a shareable table, from the codebook and the study."""
    recodings = dict(recodings or {})
    person = ID_COLUMN.get(codebook.unit)
    columns = []
    for name in table.columns:
        values = table[name]
        present = [str(v) for v in pd.unique(values.dropna().astype("string"))]
        recoding = recodings.get(name, "")
        if name == person or name.endswith("_id"):
            columns.append(Column(name, dict(PSEUDONYM_LABEL), "pseudonym", "nominal", recoding=recoding))
            continue
        if name == "wave":
            order = [w for w in codebook.waves if w in present] + sorted(set(present) - set(codebook.waves))
            codes = {w: (i + 1, {"et": w, "en": w}) for i, w in enumerate(order)}
            columns.append(Column(name, dict(STRUCTURAL_LABELS["wave"]), "coded", "ordinal", "stratum", codes))
            continue
        if name == "county":
            ids = list(study.counties) + sorted(set(present) - set(study.counties))
            codes = {c: (i + 1, {"et": study.counties[c].name if c in study.counties else c,
                                 "en": study.counties[c].name if c in study.counties else c})
                     for i, c in enumerate(ids)}
            columns.append(Column(name, dict(STRUCTURAL_LABELS["county"]), "coded", "nominal", "quasi_identifier",
                                  codes, recoding=recoding))
            continue
        var = codebook.variables.get(name)
        derived = codebook.derived.get(name)
        label = (var.label if var is not None else derived.label if derived is not None else None)
        label = ({"et": label.et, "en": label.en} if label is not None
                 else dict(STRUCTURAL_LABELS.get(name, {"et": name, "en": name})))
        role = var.role if var is not None else derived.role if derived is not None else ""
        missing = list(codebook.missing_codes(name)) if var is not None else []
        sources = _sources(codebook, name, study)
        value_set = codebook.value_sets.get(var.values) if var is not None and var.values else None
        if value_set is not None:
            codes = {}
            for i, (code, labels) in enumerate(value_set.codes.items()):
                number = code if isinstance(code, int) else i + 1
                codes[str(code)] = (number, {"et": labels.et, "en": labels.en})
            measure = "ordinal" if value_set.kind == "ordinal" else "nominal"
            columns.append(Column(name, label, "coded", measure, role, codes, missing, sources, recoding))
        elif var is not None and var.type == "municipality":
            order = [m.name for c in study.counties.values() for m in c.municipalities]
            order += [c.name for c in study.counties.values()]
            order += sorted(set(present) - set(order))
            codes = {m: (i + 1, {"et": m, "en": m}) for i, m in enumerate(order)}
            columns.append(Column(name, label, "coded", "nominal", role, codes, missing, sources, recoding))
        elif not present and role == "quasi_identifier":  # a key the disclosure control dropped: all missing
            columns.append(Column(name, label, "coded", "nominal", role, {}, missing, sources, recoding))
        elif values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            if present and all(_is_band(v) for v in present):
                order = sorted(present, key=_band_key)
                codes = {b: (i + 1, {"et": _band_label(b), "en": _band_label(b)}) for i, b in enumerate(order)}
                columns.append(Column(name, label, "coded", "ordinal", role, codes, missing, sources, recoding))
            else:
                columns.append(Column(name, label, "text", "nominal", role, {}, missing, sources, recoding))
        else:
            columns.append(Column(name, label, "number", "scale", role, {}, missing, sources, recoding))
    for col in columns:  # a stored value no label set knows keeps its own code, never silently missing
        if col.kind == "coded":
            unknown = [v for v in pd.unique(table[col.name].dropna().astype("string")) if str(v) not in col.codes]
            top = max((number for number, _ in col.codes.values()), default=0)
            for i, value in enumerate(sorted(map(str, unknown))):
                col.codes[value] = (top + i + 1, {"et": value, "en": value})
    return columns


def _numeric(series: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(series, errors="coerce")
    return numbers.astype("Int64") if _integral(numbers) else numbers.astype("Float64")


def coded_frame(table: pd.DataFrame, columns: Sequence[Column], *, missing_code: bool) -> pd.DataFrame:
    """The table with coded columns as their numbers (SPSS/Stata); ``missing_code``: missing as -9."""
    out = {}
    for col in columns:
        series = table[col.name]
        if col.kind == "coded":
            numbers = col.number_of(series)
            out[col.name] = numbers.fillna(MISSING_CODE) if missing_code else numbers
        elif col.kind == "number":
            out[col.name] = pd.to_numeric(series, errors="coerce").astype(float)
        else:
            out[col.name] = series.astype("string").fillna("").astype(object)
    frame = pd.DataFrame(out, index=table.index)
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.Float64Dtype):
            frame[name] = frame[name].astype(float)
    return frame


def labelled_frame(table: pd.DataFrame, columns: Sequence[Column], lang: str) -> pd.DataFrame:
    """The table as a reader sees it: coded columns as labels in ``lang``, numbers as numbers."""
    out = {}
    for col in columns:
        series = table[col.name]
        if col.kind == "coded":
            out[col.name] = col.label_of(series, lang)
        elif col.kind == "number":
            out[col.name] = _numeric(series)
        else:
            out[col.name] = series.astype("string")
    return pd.DataFrame(out, index=table.index)


def _value_text(col: Column, lang: str) -> str:
    return "; ".join(f"{number} = {labels[lang]}" for number, labels in col.codes.values())


def protected_counts(table: pd.DataFrame, col: Column, min_cell: int) -> list[tuple[str, str]]:
    """(value code, count as published) per code and for missing, then the total: small counts hidden."""
    if col.kind != "coded" or table.empty:
        return []
    key = (min_cell, len(table))
    if key not in col.counts:
        col.counts[key] = _protected_counts(table, col, min_cell)
    return col.counts[key]


def _protected_counts(table: pd.DataFrame, col: Column, min_cell: int) -> list[tuple[str, str]]:
    series = table[col.name].astype("string")
    rows = [(code, int((series == code).sum())) for code in col.codes]
    rows.append(("(missing)", int(series.isna().sum())))
    frame = pd.DataFrame(rows + [("total", len(series))], columns=["value", "n"]).set_index("value")
    protected = protect_table(frame, ["n"], total_row="total", threshold=min_cell)
    return [(value, str(protected.display.at[value, "n"])) for value in frame.index]


@dataclass
class ExportTable:
    name: str
    table: pd.DataFrame
    columns: list[Column]
    codebook: Codebook


def _recodings(study: Study, disclosure: pd.DataFrame, name: str) -> dict[str, str]:
    """Per column: the global recoding and the values local suppression blanked (from meta.disclosure)."""
    rows = disclosure[disclosure["table"] == f"share.{name}"]
    text: dict[str, list[str]] = {}
    for row in rows[rows["measure"] == "recoding"].itertuples():
        text.setdefault(row.variable, []).append(str(row.method))
    for c, how in study.privacy.share_recoding.items():
        if c not in text and how != "keep":
            text.setdefault(c, []).append(f"global recoding: {how}")
    for row in rows[rows["measure"] == "generalisation"].itertuples():
        text.setdefault(row.variable, []).append(f"generalisation {row.method} (privacy.keep search)")
    local = rows[(rows["stage"] == "local_suppression") & (rows["measure"] == "suppressed_values")]
    for row in local.itertuples():
        if row.estimate and row.estimate > 0:
            text.setdefault(row.variable, []).append(
                f"local suppression: {int(row.estimate)} of {int(row.n)} values set to missing")
    return {c: "; ".join(v) for c, v in text.items()}


def _disclosure(study: Study) -> pd.DataFrame:
    if not warehouse.table_exists(study.db_path, "meta.disclosure"):
        return pd.DataFrame(columns=["table", "stage", "measure", "variable", "estimate", "n", "method"])
    frame = warehouse.read_table(study.db_path, "meta.disclosure")
    return frame[frame["table"].astype("string").str.startswith("share.")].reset_index(drop=True)


# --- writers -------------------------------------------------------------------------------------------

def write_sav(item: ExportTable, path: Path, lang: str) -> None:
    import pyreadstat

    frame = coded_frame(item.table, item.columns, missing_code=True)
    value_labels, missing, measure, formats = {}, {}, {}, {}
    for col in item.columns:
        measure[col.name] = col.measure
        if col.kind == "coded" or (col.kind == "number" and _integral(item.table[col.name])):
            formats[col.name] = "F8.0"
        if col.kind == "coded":
            labels = {float(number): labels[lang] for number, labels in col.codes.values()}
            labels[float(MISSING_CODE)] = MISSING_LABEL[lang]
            value_labels[col.name] = labels
            missing[col.name] = [MISSING_CODE]
    pyreadstat.write_sav(frame, str(path), column_labels={c.name: c.label[lang] for c in item.columns},
                         variable_value_labels=value_labels, missing_ranges=missing, variable_measure=measure,
                         variable_format=formats,
                         file_label=f"{item.codebook.label.et if lang == 'et' else item.codebook.label.en}"[:64])


def write_dta(item: ExportTable, path: Path, lang: str) -> None:
    import pyreadstat

    frame = coded_frame(item.table, item.columns, missing_code=False)
    value_labels = {col.name: {int(number): labels[lang][:32000] for number, labels in col.codes.values()}
                    for col in item.columns if col.kind == "coded"}
    pyreadstat.write_dta(frame, str(path), column_labels={c.name: c.label[lang][:80] for c in item.columns},
                         variable_value_labels=value_labels, version=15,
                         file_label=(item.codebook.label.et if lang == "et" else item.codebook.label.en)[:80])


def write_parquet(item: ExportTable, path: Path) -> None:
    item.table.to_parquet(path, index=False)


def write_csv_dialect(frame: pd.DataFrame, path: Path, dialect: str) -> None:
    """CSV in ``rfc4180`` (UTF-8, comma, CRLF) or ``excel-et`` (UTF-8 BOM, semicolon, decimal comma)."""
    if dialect == "excel-et":
        write_csv(frame, path, sep=";", decimal=",", encoding="utf-8-sig", lineterminator="\r\n")
    else:
        write_csv(frame, path, sep=",", encoding="utf-8", lineterminator="\r\n")


def codebook_rows(items: Sequence[ExportTable], lang: str, min_cell: int) -> pd.DataFrame:
    rows = []
    for item in items:
        for col in item.columns:
            counts = protected_counts(item.table, col, min_cell)
            rows.append({
                "table": item.name, "variable": col.name, "label": col.label[lang],
                "label_et": col.label["et"], "label_en": col.label["en"], "type": col.kind,
                "measure": col.measure, "role": col.role, "values": _value_text(col, lang),
                "missing": (f".sav code {MISSING_CODE}: {MISSING_LABEL[lang]}" if col.kind == "coded" else "")
                + ("; in the sources: " + ", ".join(str(m) for m in col.source_missing) if col.source_missing else ""),
                "sources": "; ".join(f"{s}: {', '.join(c)}" for s, c in col.sources.items()),
                "recoding": col.recoding,
                "counts": "; ".join(f"{v}: {n}" for v, n in counts),
            })
    return pd.DataFrame(rows)


def _sheet(workbook, title: str, frame: pd.DataFrame) -> None:
    """One sheet, every text cell neutralised; numbers stay numbers and text stays text (no date guessing)."""
    sheet = workbook.create_sheet(title=title[:31])
    safe = safe_frame(frame)
    sheet.append([str(c) for c in safe.columns])
    for row in safe.astype(object).itertuples(index=False, name=None):
        sheet.append([None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                      else (int(v) if isinstance(v, np.integer) else float(v) if isinstance(v, np.floating) else v)
                      for v in row])


def write_xlsx(items: Sequence[ExportTable], path: Path, lang: str, min_cell: int) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    for item in items:
        _sheet(workbook, item.name, labelled_frame(item.table, item.columns, lang))
    _sheet(workbook, "codebook", codebook_rows(items, lang, min_cell))
    workbook.save(path)


# --- codebook ------------------------------------------------------------------------------------------

_FIELD_TYPE = {"coded": "string", "text": "string", "pseudonym": "string"}


def _field(item: ExportTable, col: Column, lang: str, values: str, decimal_comma: bool, min_cell: int) -> dict:
    """One Table Schema field; ``values``: ``labels`` (CSV) or ``codes`` (Parquet) for coded columns."""
    series = item.table[col.name]
    if col.kind == "number":
        kind = "integer" if _integral(series) else "number"
    elif col.kind == "coded" and values == "codes" and pd.api.types.is_numeric_dtype(series.dtype):
        kind = "integer"
    else:
        kind = "string"
    entry = {"name": col.name, "title": col.label[lang], "type": kind,
             "description": f"et: {col.label['et']} / en: {col.label['en']}",
             "mapstudy:measure": col.measure, "mapstudy:role": col.role}
    if kind == "number" and decimal_comma:
        entry["decimalChar"] = ","
    if col.kind == "coded":
        enum = ([labels[lang] for _, labels in col.codes.values()] if values == "labels"
                else [int(c) if kind == "integer" else c for c in col.codes])
        entry["constraints"] = {"enum": enum}
        entry["mapstudy:codes"] = [{"value": code, "code": number, "label_et": labels["et"], "label_en": labels["en"]}
                                   for code, (number, labels) in col.codes.items()]
        entry["mapstudy:spss_missing"] = MISSING_CODE
    if col.sources:
        entry["mapstudy:sources"] = col.sources
    if col.source_missing:
        entry["mapstudy:source_missing"] = [str(m) for m in col.source_missing]
    if col.recoding:
        entry["mapstudy:recoding"] = col.recoding
    counts = protected_counts(item.table, col, min_cell)
    if counts:
        entry["mapstudy:counts"] = dict(counts)
    return entry


_FILE_VALUES = {"sav": "numeric codes with value labels (mapstudy:codes); -9 declared missing",
                "dta": "numeric codes with value labels (mapstudy:codes); missing is .",
                "xlsx": "labels, one sheet per table, and a codebook sheet"}


def datapackage(study: Study, items: Sequence[ExportTable], formats: Sequence[str], lang: str, dialect: str,
                run_fingerprint: str, min_cell: int) -> dict:
    """The Frictionless Data Package (v1) describing the export.

    The CSV files are tabular data resources whose Table Schema describes the file as
    written: coded fields are ``string`` with their labels in ``constraints.enum``, the
    dialect and encoding are the file's, and a number field has ``decimalChar: ","`` in the
    Excel dialect; the Parquet files are tabular resources whose enums are the codes.
    Every field names its title and description in both languages, and extra properties
    (``mapstudy:codes`` with the numbers used in .sav/.dta, ``mapstudy:measure``,
    ``mapstudy:sources``, ``mapstudy:recoding``, ``mapstudy:counts`` (protected)) carry the
    rest of the codebook. The .sav, .dta and .xlsx files are ``type: file`` resources
    (Frictionless cannot check their cells without plugins) that refer to the same fields.
    """
    resources = []
    title = {item.name: item.codebook.label.et if lang == "et" else item.codebook.label.en for item in items}
    for item in items:
        for fmt in formats:
            resource = {"name": f"{item.name}-{fmt}", "path": f"{item.name}.{fmt}", "format": fmt,
                        "title": title[item.name]}
            if fmt == "csv":
                fields = [_field(item, c, lang, "labels", dialect == "excel-et", min_cell) for c in item.columns]
                resource.update({"profile": "tabular-data-resource", "mediatype": "text/csv",
                                 "encoding": "utf-8-sig" if dialect == "excel-et" else "utf-8",
                                 "dialect": {"delimiter": ";" if dialect == "excel-et" else ",",
                                             "lineTerminator": "\r\n", "header": True, "doubleQuote": True},
                                 "schema": {"fields": fields, "missingValues": [""]}})
            elif fmt == "parquet":
                fields = [_field(item, c, lang, "codes", False, min_cell) for c in item.columns]
                resource.update({"profile": "tabular-data-resource", "mediatype": "application/vnd.apache.parquet",
                                 "schema": {"fields": fields, "missingValues": [""]}})
            else:
                resource.update({"type": "file", "mapstudy:values": _FILE_VALUES[fmt],
                                 "mapstudy:fields": f"{item.name}-csv" if "csv" in formats else f"{item.name}-parquet"
                                 if "parquet" in formats else ""})
            resources.append(resource)
    return {"profile": "data-package", "name": study.study.replace("_", "-"),
            "title": study.title.et if lang == "et" else study.title.en,
            "created": _created(), "mapstudy:fingerprint": run_fingerprint,
            "mapstudy:k_anonymity": study.privacy.k_anonymity, "mapstudy:language": lang,
            "resources": resources}


def _created() -> str:
    """A fixed timestamp per run of the same inputs would be better; the date is what readers need."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch else dt.datetime.now(dt.timezone.utc)
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


_HTML_TEXT = {
    "et": {"codebook": "koodiraamat", "fingerprint": "Käivituse sõrmejälg", "records": "kirjet",
           "small": "loendid 1 kuni {last} on näidatud kui &lt;{min}; x tähistab loendit, mis on peidetud, et väikest "
                    "ei saaks summast tagasi arvutada",
           "control": "Avalikustamiskontroll", "variables": "Tunnused",
           "head": ["tunnus", "silt (et / en)", "tüüp", "väärtused", "puuduvad", "lähteveerud", "ümberkodeerimine",
                    "loendid"],
           "loss_head": ["näitaja", "tunnus", "väärtus"], "missing": "puudub", "total": "kokku", "sources": "allikates"},
    "en": {"codebook": "codebook", "fingerprint": "Run fingerprint", "records": "records",
           "small": "counts from 1 to {last} show as &lt;{min}; x marks a count hidden so that a small one cannot be "
                    "subtracted back from the total",
           "control": "Disclosure control", "variables": "Variables",
           "head": ["variable", "label (et / en)", "type", "values", "missing", "source columns", "recoding",
                    "counts"],
           "loss_head": ["measure", "variable", "value"], "missing": "missing", "total": "total",
           "sources": "in the sources"},
}


def codebook_html(study: Study, items: Sequence[ExportTable], lang: str, run_fingerprint: str,
                  loss: pd.DataFrame, min_cell: int) -> str:
    """A self-contained HTML codebook: per table and variable its labels, values, sources, recoding, counts."""
    text = _HTML_TEXT[lang]
    title = study.title.et if lang == "et" else study.title.en
    parts = [f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'><title>{_e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:2px 6px;vertical-align:top;text-align:left}</style></head><body>",
             f"<h1>{_e(title)}: {text['codebook']}</h1><p>{text['fingerprint']}: <code>{_e(run_fingerprint)}</code>; "
             f"k = {study.privacy.k_anonymity}; " + text["small"].format(last=min_cell - 1, min=min_cell) + ".</p>"]
    for item in items:
        parts.append(f"<h2 id='{_e(item.name)}'>{_e(item.name)} ({len(item.table)} {text['records']})</h2>")
        table_loss = loss[loss["table"] == f"share.{item.name}"] if len(loss) else loss
        if len(table_loss):
            parts.append(f"<h3>{text['control']}</h3><table><tr>"
                         + "".join(f"<th>{h}</th>" for h in text["loss_head"]) + "</tr>")
            for row in table_loss.itertuples():
                parts.append(f"<tr><td>{_e(row.measure)}</td><td>{_e(row.variable)}</td><td>{_e(row.value)}</td></tr>")
            parts.append("</table>")
        parts.append(f"<h3>{text['variables']}</h3><table><tr>" + "".join(f"<th>{h}</th>" for h in text["head"])
                     + "</tr>")
        for col in item.columns:
            values = "<br>".join(f"{number} = {_e(labels['et'])} / {_e(labels['en'])}"
                                 for number, labels in col.codes.values())
            missing = (f".sav {MISSING_CODE} = {_e(MISSING_LABEL[lang])}<br>" if col.kind == "coded" else "")
            if col.source_missing:
                missing += f"{text['sources']}: " + _e(", ".join(str(m) for m in col.source_missing))
            sources = "<br>".join(f"{_e(s)}: {_e(', '.join(c))}" for s, c in col.sources.items())
            named = {code: f"{number} {labels[lang]}" for code, (number, labels) in col.codes.items()}
            named.update({"(missing)": text["missing"], "total": text["total"]})
            counts = "<br>".join(f"{_e(named.get(v, v))}: {_e(n)}" for v, n in protected_counts(item.table, col, min_cell))
            parts.append(f"<tr><td><code>{_e(col.name)}</code></td><td>{_e(col.label['et'])} / "
                         f"{_e(col.label['en'])}</td><td>{_e(col.kind)} ({_e(col.measure)})</td><td>{values}</td>"
                         f"<td>{missing}</td><td>{sources}</td><td>{_e(col.recoding)}</td><td>{counts}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def loss_summary(disclosure: pd.DataFrame) -> pd.DataFrame:
    """Per shareable table: what protection cost (values suppressed per variable, records left out,
    the chosen generalisation and the share of records whose kept variables survived)."""
    if disclosure.empty:
        return pd.DataFrame(columns=["table", "measure", "variable", "value"])
    wanted = disclosure[
        ((disclosure["stage"] == "local_suppression") & (disclosure["measure"] == "suppressed_values"))
        | ((disclosure["stage"] == "settings") & disclosure["measure"].isin(
            ["records_removed", "generalisation", "survived_share", "information_loss", "lattice",
             "lattice_below_k"]))
        | ((disclosure["stage"] == "after_linked") & disclosure["measure"].isin(["fk_min", "records"]))
    ]
    rows = []
    for row in wanted.itertuples():
        value = row.estimate if pd.notna(row.estimate) else row.method
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, float):
            value = f"{value:.3f}"
        measure = row.measure if row.stage == "settings" else f"{row.stage}: {row.measure}"
        rows.append({"table": row.table, "measure": measure, "variable": row.variable or "", "value": value})
    return pd.DataFrame(rows)


def _readme(study: Study, items: Sequence[ExportTable], files: Sequence[str], lang: str, dialect: str,
            run_fingerprint: str, loss: pd.DataFrame) -> str:
    privacy = study.privacy
    lines = [f"# Data for researchers: the study `{study.study}`", "",
             f"Run fingerprint: `{run_fingerprint}` (printed in every report of the run).", "",
             f"Labels in {'Estonian' if lang == 'et' else 'English'}; CSV dialect `{dialect}`"
             + (" (UTF-8 with BOM, `;`, decimal comma: opens as columns in Estonian Excel)" if dialect == "excel-et"
                else " (RFC 4180: UTF-8, comma, CRLF, decimal point)") + ".", "", "## Files", ""]
    for item in items:
        lines.append(f"- `{item.name}`: {len(item.table)} records, {len(item.columns)} variables: "
                     + ", ".join(f"`{f}`" for f in files if f.startswith(item.name + ".")))
    lines += [
        *(["- `data.xlsx`: every table with labels, one sheet each, and a `codebook` sheet."] if "data.xlsx" in files
          else []),
        "- `codebook.html`: every variable's label (et/en), type, values and labels, missing codes, source columns "
        "per source, the recoding the disclosure control applied and protected counts.",
        "- `datapackage.json`: the same as a Frictionless Data Package (Table Schema per file). Chosen over "
        "DDI-Codebook 2.5 because it is plain JSON that R (`frictionless`), Python (`frictionless`), "
        "pandas and any JSON reader open, validates against a published JSON Schema, and describes the CSV "
        "dialect the files are actually written in; DDI suits archives that ingest XML.",
        "",
        "In `.sav` files coded variables hold numbers with value labels and `-9` is the declared missing value "
        "(missing in the data or suppressed by disclosure control; the two are not told apart, on purpose). "
        "In `.dta` files missing is `.`. CSV and Excel files hold the labels; Parquet holds the codes. Bands "
        "are written `7–9` (en dash) so that Excel keeps them as text.",
        "",
        "## Protection",
        "",
        f"- k-anonymity with k = {privacy.k_anonymity}: every record shares its quasi-identifiers with at least "
        f"{privacy.k_anonymity - 1} others in its wave, and every pupil the whole history of them over the waves.",
        "- Global recoding: " + ", ".join(f"`{c}` {how}" for c, how in privacy.share_recoding.items()) + ".",
    ]
    if privacy.keep:
        lines.append("- Kept by request (generalised and suppressed last): "
                     + ", ".join(f"`{c}`" for c in privacy.keep) + ".")
    lines += [
        "- Free text, direct identifiers and data-quality bookkeeping are not included.",
        "- `pupil_id` links a pupil's waves within one table only: the tables cannot be joined to each other "
        "or to any other output of the study. Do not try to re-link them or combine them with other data "
        "about the same pupils.",
        f"- Counts below {privacy.min_cell} must not be published from these files.",
        "",
        "## What protection cost",
        "",
        "| table | measure | variable | value |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {r.table} | {r.measure} | {r.variable} | {r.value} |" for r in loss.itertuples()]
    lines.append("")
    return "\n".join(lines)


def parse_formats(values: Sequence[str]) -> list[str]:
    """``--format`` values (repeatable, comma-separated or ``all``) in the order of :data:`FORMATS`."""
    wanted = {p.strip().lower() for v in values for p in str(v).split(",") if p.strip()}
    if "all" in wanted:
        wanted = set(FORMATS)
    unknown = sorted(wanted - set(FORMATS))
    if unknown or not wanted:
        raise ExportError(f"unknown export format(s) {', '.join(unknown) or '(none)'}: choose from "
                          f"{', '.join(FORMATS)} or all")
    return [f for f in FORMATS if f in wanted]


def write_export(study: Study, codebooks: Mapping[str, Codebook], out_dir: Path, formats: Sequence[str],
                 lang: str = "et", dialect: str = "rfc4180") -> list[Path]:
    """Write the shareable tables of ``study`` into the new folder ``out_dir``; the files written."""
    if lang not in LANGUAGES:
        raise ExportError(f"unknown language {lang!r}: choose from {', '.join(LANGUAGES)}")
    if dialect not in DIALECTS:
        raise ExportError(f"unknown CSV dialect {dialect!r}: choose from {', '.join(DIALECTS)}")
    formats = parse_formats(formats)
    out_dir = Path(out_dir)
    tables = checked_tables(study, codebooks, out_dir)  # the same checks as `mapstudy share`, before any write
    disclosure = _disclosure(study)
    items = [ExportTable(name, table, describe_columns(table, codebooks[name], study,
                                                       _recodings(study, disclosure, name)), codebooks[name])
             for name, table in tables.items()]
    run_fingerprint = fingerprint(study)
    min_cell = study.privacy.min_cell
    loss = loss_summary(disclosure)
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        files = []
        for item in items:
            for fmt in formats:
                path = partial / f"{item.name}.{fmt}"
                if fmt == "sav":
                    write_sav(item, path, lang)
                elif fmt == "dta":
                    write_dta(item, path, lang)
                elif fmt == "parquet":
                    write_parquet(item, path)
                elif fmt == "csv":
                    write_csv_dialect(labelled_frame(item.table, item.columns, lang), path, dialect)
                else:
                    continue
                files.append(path.name)
        if "xlsx" in formats:
            write_xlsx(items, partial / "data.xlsx", lang, min_cell)
            files.append("data.xlsx")
        package = datapackage(study, items, [f for f in formats if f != "xlsx"], lang, dialect, run_fingerprint,
                              min_cell)
        if "xlsx" in formats:
            package["resources"].append({"name": "workbook", "path": "data.xlsx", "format": "xlsx", "type": "file",
                                         "mapstudy:values": _FILE_VALUES["xlsx"]})
        (partial / "datapackage.json").write_text(json.dumps(package, ensure_ascii=False, indent=2), encoding="utf-8")
        (partial / "codebook.html").write_text(codebook_html(study, items, lang, run_fingerprint, loss, min_cell),
                                               encoding="utf-8")
        (partial / "README.md").write_text(_readme(study, items, files, lang, dialect, run_fingerprint, loss),
                                           encoding="utf-8")
        os.replace(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return sorted(out_dir.iterdir())

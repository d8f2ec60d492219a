"""Harmonisation: one county's export, in its own columns and spellings, to the codebook.

For every codebook variable the file's column is found by the names the codebook gives for
this source; each distinct cell value is then interpreted once (text to code, decimal
comma to number, Estonian date to date) and the result spread back over the rows, which
keeps this fast on large files. Everything that is changed or refused is a finding; a row
is rejected only when it cannot belong to the study (no municipality, no required field).
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import Codebook, Source, Study, Variable, normalise_text
from pipelines.ingest.findings import Findings

_MISSING = object()  # a missing-value code
_EMPTY = object()  # an empty cell


@dataclass
class Harmonised:
    """A file in codebook form: canonical columns (identifiers still present, in memory only)."""

    frame: pd.DataFrame  # one row per data row of the file, index = 1-based file row
    rejected: pd.Series  # reason per rejected row (index = file row), empty when none


def fold(text: str) -> str:
    """ASCII folding for matching spellings written without Estonian letters (Võru -> voru)."""
    if text.isascii():  # ASCII is its own NFKD form and has no combining marks
        return text
    return unicodedata.normalize("NFKD", text).translate(_NOT_COMBINING)


class _DropCombining(dict):
    """A ``str.translate`` table that deletes combining characters (filled as characters come)."""

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.combining(chr(code)) else code
        self[code] = kept
        return kept


_NOT_COMBINING = _DropCombining()


def _cell_text(value: Any) -> Any:
    """A cell as text for matching, or _EMPTY. Whole floats lose their '.0'."""
    if value is None:
        return _EMPTY
    if isinstance(value, float):
        if math.isnan(value):
            return _EMPTY
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value
    text = str(value)
    return _EMPTY if not text.strip() else text


def _lookup(spellings: dict[str, Any]) -> Callable[[str], Any]:
    exact = {normalise_text(k): v for k, v in spellings.items()}
    folded = {fold(k): v for k, v in exact.items()}

    def find(text: str) -> Any:
        key = normalise_text(text)
        if key in exact:
            return exact[key]
        return folded.get(fold(key), None)

    return find


def value_set_lookup(codebook: Codebook, var: Variable) -> Callable[[str], Any]:
    value_set = codebook.value_sets[var.values]  # type: ignore[index]
    spellings: dict[str, Any] = {}
    for code, body in value_set.codes.items():
        for spelling in [str(code), body.et, body.en, *body.aliases]:
            spellings[spelling] = code
    return _lookup(spellings)


def municipality_lookup(study: Study) -> Callable[[str], Any]:
    spellings: dict[str, str] = {}
    for county in study.counties.values():
        for m in county.municipalities:
            for spelling in [m.name, *m.aliases]:
                spellings[spelling] = m.name
    return _lookup(spellings)


def _parse_number(text: str, integer: bool) -> float | int | None:
    t = text.strip().replace("\u00a0", "").replace(" ", "")
    if "," in t and "." not in t:
        t = t.replace(",", ".")
    try:
        number = float(t)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if integer:
        return int(number) if number.is_integer() else None
    return number


# Day-first dotted (Estonian) and ISO dates only: a slashed date may be month-first (a US-locale
# export), so it is refused with a finding rather than guessed.
_DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d", "%d.%m.%y", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M")


def _parse_date(value: Any, preferred: str | None) -> dt.date | None:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    for fmt in ((preferred,) if preferred else ()) + _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def find_column(columns: list[str], names: list[str]) -> tuple[str | None, bool]:
    """The file column for a variable's source names; (None, False) when absent, flag when ambiguous."""
    wanted = {normalise_text(n) for n in names}
    hits = [c for c in columns if normalise_text(str(c)) in wanted]
    return (hits[0] if hits else None), len(hits) > 1


class _Interpreter:
    """Interprets the distinct cells of one column for one variable."""

    def __init__(self, study: Study, codebook: Codebook, source: Source, name: str,
                 labels: dict[str, str] | None = None, declared_missing: Any = None):
        self.var = codebook.variables[name]
        self.missing = {normalise_text(str(_cell_text(m))) for m in codebook.missing_codes(name)}
        self.labels = {normalise_text(k): v for k, v in (labels or {}).items()}  # the file's own value labels
        self.declared_missing = declared_missing  # the file's declared user-missing values (contains a cell)
        self.date_format = source.date_format
        if self.var.type == "categorical":
            self.categories = value_set_lookup(codebook, self.var)
        if self.var.type == "municipality":
            self.municipalities = municipality_lookup(study)

    def many(self, distinct: list[Any]) -> tuple[list[Any], list[str | None]]:
        """(values, rules) for a column's distinct cells: ``self(cell)`` of each, with the cells
        of a text variable (most of a file's distinct cells: names, codes, notes) done inline."""
        if self.var.type != "string" or self.declared_missing is not None:
            decided = [self(v) for v in distinct]
            return [d[0] for d in decided], [d[1] for d in decided]
        if not all(type(raw) is str for raw in distinct):
            decided = [self(v) if type(v) is not str else self._text(v) for v in distinct]
            return [d[0] for d in decided], [d[1] for d in decided]
        # spaces folded: "" for an empty or blank cell (missing, no rule), else the text, with
        # stray_whitespace when that changed it
        clean = [" ".join(raw.split()) for raw in distinct]
        return ([c or None for c in clean],
                [None if not c or c == raw else "stray_whitespace" for c, raw in zip(clean, distinct)])

    @staticmethod
    def _text(raw: str) -> tuple[Any, str | None]:
        """``self(raw)`` for a text cell of a text variable without declared missing values."""
        clean = " ".join(raw.split())
        return (clean or None), (None if not clean or clean == raw else "stray_whitespace")

    def __call__(self, raw: Any) -> tuple[Any, str | None]:
        """(value, rule) for one distinct cell; rule None when taken as written."""
        cell = _cell_text(raw)
        if cell is _EMPTY:
            return None, None
        if self.var.type != "string" and isinstance(cell, str) and normalise_text(cell) in self.missing:
            return None, "missing_code"
        if self.declared_missing is not None and raw in self.declared_missing:
            return None, "declared_missing"
        kind = self.var.type
        if kind == "string":
            clean = " ".join(cell.split()) if isinstance(cell, str) else str(cell)
            return clean, ("stray_whitespace" if isinstance(cell, str) and clean != cell else None)
        if kind == "date":
            parsed = _parse_date(cell, self.date_format)
            return (parsed, None) if parsed is not None else (None, "bad_date")
        if kind in ("integer", "number"):
            if not isinstance(cell, str):
                return None, "bad_number"
            number = _parse_number(cell, kind == "integer")
            if number is None:
                return None, "bad_number"
            low, high = self.var.range or (-math.inf, math.inf)
            if not low <= number <= high:
                return None, "out_of_range"
            return number, None
        if not isinstance(cell, str):
            return None, "unmapped_value"
        if kind == "municipality":
            name = self.municipalities(cell)
            if name is None:
                return None, "unknown_municipality"
            return name, (None if cell == name else "municipality_spelling")
        label = self.labels.get(normalise_text(cell))
        by_label = self.categories(label) if label is not None else None
        code = self.categories(cell)
        if by_label is not None and by_label != code:
            # The file says what its code means: its label wins over a code the value set reads otherwise.
            return by_label, "value_label"
        if code is None:
            return None, "unmapped_value"
        spelled_as_code = normalise_text(cell) == normalise_text(str(code))
        return code, (None if spelled_as_code else "value_spelling")


_MESSAGES = {
    "missing_code": ("info", "set_missing", "missing-value code set to missing"),
    "declared_missing": ("info", "set_missing", "a missing value the file itself declares (user-missing) set to missing"),
    "value_label": ("info", "recoded", "code mapped through the file's own value label"),
    "value_spelling": ("info", "recoded", "answers given as text or variant spellings recoded to codes"),
    "stray_whitespace": ("info", "recoded", "stray spaces removed"),
    "municipality_spelling": ("info", "recoded", "variant spellings mapped to the municipality's name"),
    "unmapped_value": ("warning", "set_missing", "answer matches no code of value set '{values}'"),
    "bad_number": ("warning", "set_missing", "expected a {type}"),
    "out_of_range": ("warning", "set_missing", "outside the range {range}"),
    "bad_date": ("warning", "set_missing", "expected a date like dd.mm.yyyy"),
    "unknown_municipality": ("error", "row_rejected", "not a municipality of this study"),
}
_PER_CELL = {"unmapped_value", "bad_number", "out_of_range", "bad_date", "unknown_municipality"}


def harmonise(raw: pd.DataFrame, study: Study, codebook: Codebook, source_name: str, findings: Findings,
              value_labels: dict[str, dict[str, str]] | None = None, declared_missing: dict[str, Any] | None = None,
              keep_index: bool = False) -> Harmonised:
    """Turn a raw export into codebook columns, recording every finding.

    `value_labels` and `declared_missing` are what a .sav/.dta file declares per column;
    `keep_index` keeps the frame's index as the file's data-row numbers (a reader that
    rejected malformed rows numbers the rest), else rows are numbered from 1.
    """
    source = study.sources[source_name]
    raw = raw.copy(deep=False)  # a new index and column names below; the cells are only read
    if not keep_index:
        raw.index = pd.RangeIndex(1, len(raw) + 1)
    value_labels = value_labels or {}
    declared_missing = declared_missing or {}
    columns = [str(c) for c in raw.columns]
    raw.columns = columns
    out: dict[str, pd.Series] = {}
    used: set[str] = set()
    rejected = pd.Series(pd.NA, index=raw.index, dtype="object")

    for name, var in codebook.variables.items():
        names = var.source_columns(source_name)
        if not names:
            if var.required:  # the rows cannot belong to the study without it
                findings.summary("column_not_in_source", "error", "row_rejected", len(raw), None, name,
                                 f"required variable has no column for source '{source_name}' in the codebook")
                out[name] = pd.Series([None] * len(raw), index=raw.index, dtype="object")
                rejected = rejected.fillna("missing_required")
            else:
                findings.summary("column_not_in_source", "info", "set_missing", len(raw), None, name,
                                 f"the codebook gives no column for source '{source_name}': missing for every row")
            continue
        column, ambiguous = find_column(columns, names)
        if ambiguous:
            findings.summary("ambiguous_column", "warning", "first_used", 1, column, name,
                             "several of the variable's column names are present; the first is used")
        if column is None:
            findings.summary("missing_column", "error" if var.required else "warning", "set_missing",
                             len(raw), ", ".join(names), name, "column not in file: the variable is missing for every row")
            out[name] = pd.Series([None] * len(raw), index=raw.index, dtype="object")
            if var.required:
                rejected = rejected.fillna("missing_required")
            continue
        used.add(column)
        interpret = _Interpreter(study, codebook, source, name, value_labels.get(column),
                                 declared_missing.get(column))
        # Each distinct cell is interpreted once; rules are found on the distinct cells and
        # spread to rows by their codes (rows in file order, rules in sorted order).
        codes, distinct = pd.factorize(raw[column].to_numpy(dtype=object))
        values, decided_rules = interpret.many(distinct.tolist())
        codes[codes < 0] = len(values)  # a missing cell (None, NaN): empty, no rule, as interpret(nan) says
        values.append(None)
        decided_rules.append(None)
        out[name] = pd.Series(_objects(values)[codes], index=raw.index, dtype="object")
        by_rule: dict[str, list[int]] = {}
        for position, rule in enumerate(decided_rules):
            if rule is not None:
                by_rule.setdefault(rule, []).append(position)
        for rule in sorted(by_rule):
            at = np.flatnonzero(np.isin(codes, by_rule[rule]))
            rows = raw.index[at]
            severity, action, message = _MESSAGES[rule]
            message = message.format(values=var.values, type=var.type, range=list(var.range or ()))
            if rule in _PER_CELL:
                findings.cells(rule, severity, action, rows.to_numpy(), column, name, message)
            else:
                findings.summary(rule, severity, action, len(rows), column, name, message)
            if action == "row_rejected":
                rejected.loc[rows] = rejected.loc[rows].fillna(rule)
        if var.required:
            blank = [p for p, (v, r) in enumerate(zip(values, decided_rules)) if r is None and pd.isna(v)]
            absent = raw.index[np.flatnonzero(np.isin(codes, blank))]
            findings.cells("missing_required", "error", "row_rejected", absent.to_numpy(), column, name,
                           "required value missing")
            rejected.loc[absent] = rejected.loc[absent].fillna("missing_required")

    unknown = [c for c in columns if c not in used]
    for column in unknown:
        findings.summary("unknown_column", "info", "ignored", 1, column, None, "column not in the codebook: not read")
    frame = pd.DataFrame(out, index=raw.index)
    return Harmonised(frame=frame, rejected=rejected.dropna())



def _objects(items: list[Any]) -> np.ndarray:
    """A 1-D object array of the items (np.array would nest sequences)."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array

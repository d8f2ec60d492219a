"""Data-quality findings: what was wrong where, never what the value was.

Every decision harmonisation takes about a cell or a row is recorded here and lands in
`meta.quality`, so a researcher can see what happened to each file without the findings
themselves becoming a leak: a finding names the file, row, column and rule, and counts.
Problems that concern single cells are listed one row each; routine recodings (a text
answer turned into its code, a missing-value code) are summarised per column with a count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

QUALITY_COLUMNS = ["instrument", "wave", "file", "row", "column", "variable", "rule", "severity", "action", "n", "message"]

#: What each rule means, for the reports and the README. Rules not listed here are an error.
RULES: dict[str, str] = {
    "unreadable_file": "the file could not be read as its source format says",
    "missing_file": "a file listed in the study is not there",
    "empty_file": "the file has no data rows (0 bytes, or a header only)",
    "outside_raw_dir": "the path leaves the study's raw folder (a symlink or '..'): refused, not read",
    "malformed_row": "a CSV row with an unbalanced quote or a different number of cells than the header (row rejected)",
    "encoding_overridden": "the file's bytes (byte-order mark, UTF-8/UTF-16, Estonian letters) overrode the declared encoding",
    "nul_removed": "NUL bytes were removed from a cell",
    "cell_truncated": "a cell longer than ingest.max_cell_chars was truncated",
    "column_not_in_source": "the codebook gives no column for this source: the variable is missing for the file",
    "declared_missing": "a value the file declares as missing (SPSS user-missing) was set to missing",
    "value_label": "a code was mapped through the file's own value label",
    "missing_column": "a codebook variable's column is not in the file",
    "ambiguous_column": "more than one of a variable's column names is in the file",
    "unknown_column": "a column the codebook does not know (not read)",
    "missing_code": "a missing-value code (e.g. -9, 99, 'ei tea') was set to missing",
    "value_spelling": "an answer given as text or a variant spelling was recoded to its code",
    "stray_whitespace": "leading, trailing or doubled spaces were removed",
    "unmapped_value": "an answer matches no code of the variable's value set (set to missing)",
    "bad_number": "not a number, or not a whole number where one is expected (set to missing)",
    "out_of_range": "a number outside the codebook's range (set to missing)",
    "bad_date": "not a date in a known format (set to missing)",
    "municipality_spelling": "a variant spelling of a municipality was mapped to its name",
    "unknown_municipality": "the municipality is not one of the study's (row rejected)",
    "missing_required": "a required variable is missing (row rejected)",
    "invalid_personal_code": "the personal code fails the isikukood checks",
    "identity_matched_by_name": "no valid code: the pupil was linked by name, birth date and municipality",
    "identity_unlinked": "no valid code and no match: pseudonym from name, birth date and municipality",
    "no_identity": "neither a valid code nor name and birth date (row rejected)",
    "sex_from_code": "sex was missing and taken from the personal code",
    "duplicate_record": "the same person twice in one instrument and wave (later copy rejected)",
    "free_text_scrubbed": "identifiers in free text were replaced by placeholders",
    "erased": "the person is in the erasure register (row excluded)",
}


@dataclass
class Findings:
    """Collects findings for one file; `frame()` gives the rows of `meta.quality`."""

    instrument: str
    wave: str | None
    file: str
    #: one entry per call: (rows or None for a summary, column, variable, rule, severity, action, n, message)
    _calls: list[tuple] = field(default_factory=list)

    def cells(self, rule: str, severity: str, action: str, rows: Iterable[int], column: str | None,
              variable: str | None, message: str) -> None:
        """One finding per listed row (1-based data rows of the file)."""
        rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype="int64")
        if rows.size == 0:
            return
        self._check(rule, severity)
        self._calls.append((rows, column, variable, rule, severity, action, 1, message))

    def summary(self, rule: str, severity: str, action: str, n: int, column: str | None,
                variable: str | None, message: str) -> None:
        """One finding that stands for n cells (or the whole file when row is unknown)."""
        if n <= 0:
            return
        self._check(rule, severity)
        self._calls.append((None, column, variable, rule, severity, action, int(n), message))

    @staticmethod
    def _check(rule: str, severity: str) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown data-quality rule {rule!r}")
        if severity not in ("info", "warning", "error"):
            raise ValueError(f"unknown severity {severity!r}")

    def frame(self) -> pd.DataFrame:
        """The findings as one frame, built once: what concatenating one frame per call gave (a
        column is text where every call's value is text, else objects holding text and None)."""
        if not self._calls:
            return combine([])
        sizes = np.array([1 if rows is None else len(rows) for rows, *_ in self._calls])
        total = int(sizes.sum())
        row = np.empty(total, dtype=object)
        at = 0
        for (rows, *_), size in zip(self._calls, sizes.tolist()):
            row[at:at + size] = None if rows is None else rows.tolist()
            at += size
        columns = {"instrument": _column([self.instrument], sizes), "wave": _column([self.wave], sizes),
                   "file": _column([self.file], sizes), "row": pd.Series(row, dtype=object)}
        for position, name in enumerate(("column", "variable", "rule", "severity", "action", "n", "message"), start=1):
            columns[name] = _column([call[position] for call in self._calls], sizes)
        return combine([pd.DataFrame(columns)])


def _column(values: list, sizes: np.ndarray) -> pd.Series:
    """One value per call (or one for all) repeated over the call's rows: inferred text when
    every value is text, int64 for numbers, else objects as they are (text and None)."""
    repeated = np.repeat(_objects(values), sizes) if len(values) > 1 else np.repeat(_objects(values), sizes.sum())
    if all(isinstance(v, str) for v in values):
        return pd.Series(repeated.tolist())
    if all(type(v) is int for v in values):
        return pd.Series(repeated.astype(np.int64))
    return pd.Series(repeated, dtype=object)


def _objects(items: list) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate finding frames into the meta.quality shape (empty-safe, typed)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_quality()
    out = pd.concat(parts, ignore_index=True)[QUALITY_COLUMNS]
    out["row"] = out["row"].astype("Int64")
    out["n"] = out["n"].astype("int64")
    return out


def empty_quality() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in QUALITY_COLUMNS})
    frame["row"] = frame["row"].astype("Int64")
    frame["n"] = frame["n"].astype("int64")
    return frame

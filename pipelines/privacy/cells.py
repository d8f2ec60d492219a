"""Small-cell suppression for every published table, and the audits that check it.

Every count a report or an aggregate export shows goes through :func:`protect_table`:

* primary suppression: counts 1 .. threshold-1 (default threshold 5, so 1-4) are
  suppressed, in the body and in the margins alike. Zero is *not* suppressed by default
  (``suppress_zeros=False``): hiding every zero would hide most of a sparse table, and a
  zero names no one; note that a zero next to a small total can still tell that "all of
  them" share an attribute, which is why totals under the threshold are suppressed too.
* percentages are suppressed when their numerator is suppressed (they would give it
  back as percentage x base) or their base is under the threshold.
* secondary suppression: the table's additive lines (each body row with its row total,
  each body column with its column total, and the margins against the grand total) must
  never hold exactly one suppressed cell, or it follows by subtraction. Such a line gets
  its smallest unsuppressed non-zero body cell suppressed too (a zero only if nothing
  else is left, the total last). With ``singleton_detection`` (sdcTable's
  SIMPLEHEURISTIC ``detectSingletons``) a line whose only two suppressed cells include
  a count of 1 gets a third: that one pupil knows their own cell and could subtract.
* the result is audited by linear programming (tau-ARGUS's audit): for every suppressed
  cell the smallest and largest value consistent with the published cells and margins
  (cells >= 0, continuous relaxation, ``scipy.optimize.linprog`` / HiGHS). A cell is
  protected when its interval has width > 0 and does not lie inside 1 .. threshold-1
  (the interval must not pin it as a small count). A second audit adds what the display
  itself says (primary cells are shown as "<5", so 1 .. threshold-1) and requires width
  > 0 even then. Unprotected cells trigger further suppression in their row, then
  column, until the audit passes or nothing is left to suppress.

Tables come as wide DataFrames: one row per category of the row variable, ``count_columns``
for the categories of the column variable, optionally a row-total column and a total
row. A long table (one count column, one row per category) is the one-column case.
Protection covers one table and its own margins; cells shared with other tables of the
same report must be passed as margins of one combined table.

Suppressed cells display as ``"<threshold"`` when primary and ``secondary_marker``
(default ``"x"``) when secondary: a secondary cell holds a large count, and "<5" would
misinform the reader.

Rendered reports are checked by :func:`audit_html_tables`. Convention for report writers:
every cell that shows a count carries ``class="count"`` (among other classes if needed)
or a ``data-count`` attribute; the audit reads those and also every other body cell
(a count formatted as a string is still a count), and the hidden ``chart-data`` tables
of figures. A body cell whose whole number counts no one carries ``data-not-count``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
import re

import numpy as np
import pandas as pd
from scipy.optimize import linprog

DEFAULT_THRESHOLD = 5


@dataclass(frozen=True)
class ProtectedTable:
    """A table after small-cell control.

    ``published``: numbers safe to export, suppressed cells missing; ``display``: strings
    for reports; ``suppressed`` and ``primary``: boolean masks on the same shape (the
    published columns); ``audit``: one row per suppressed count cell (see
    :func:`audit_suppression`); ``passed``: every suppressed cell is protected.
    """

    published: pd.DataFrame
    display: pd.DataFrame
    suppressed: pd.DataFrame
    primary: pd.DataFrame
    audit: pd.DataFrame
    passed: bool


@dataclass(frozen=True)
class _Structure:
    """Positions of body, margins and the additive lines of a count table."""

    body_rows: list[Hashable]
    body_columns: list[str]
    row_total: str | None
    total_row: Hashable | None

    def lines(self) -> list[tuple[list[tuple[Hashable, str]], tuple[Hashable, str]]]:
        """Each additive line as (its cells, its total cell)."""
        lines = []
        rows = self.body_rows + ([self.total_row] if self.total_row is not None else [])
        columns = self.body_columns + ([self.row_total] if self.row_total is not None else [])
        if self.row_total is not None:
            for row in rows:
                lines.append(([(row, c) for c in self.body_columns], (row, self.row_total)))
        if self.total_row is not None:
            for column in columns:
                lines.append(([(r, column) for r in self.body_rows], (self.total_row, column)))
        return lines


def _structure(table: pd.DataFrame, count_columns: Sequence[str], row_total: str | None, total_row: Hashable | None) -> _Structure:
    if not table.index.is_unique:
        raise ValueError("table rows must have unique labels")
    body_rows = [r for r in table.index if r != total_row] if total_row is not None else list(table.index)
    if total_row is not None and total_row not in table.index:
        raise KeyError("total_row is not a row of the table")
    body_columns = [c for c in count_columns if c != row_total]
    return _Structure(body_rows, body_columns, row_total, total_row)


def _check_additive(values: pd.DataFrame, structure: _Structure) -> None:
    for cells, total in structure.lines():
        if not np.isclose(sum(values.at[cell] for cell in cells), values.at[total]):
            raise ValueError(
                "a margin does not equal the sum of its cells: add the missing categories "
                "(e.g. 'no answer') as a column or row so the table is additive"
            )


def _secondary(values: pd.DataFrame, suppressed: pd.DataFrame, structure: _Structure, singleton_detection: bool) -> None:
    """Line rule: no line with exactly one suppressed cell (or two with a singleton)."""
    changed = True
    while changed:
        changed = False
        for cells, total in structure.lines():
            line = cells + [total]
            hidden = [cell for cell in line if suppressed.at[cell]]
            singleton_pair = (
                singleton_detection and len(hidden) == 2 and any(values.at[c] == 1 for c in hidden if c != total)
            )
            if len(hidden) == 1 or singleton_pair:
                if _suppress_one_more(values, suppressed, cells, total):
                    changed = True


def _suppress_one_more(values: pd.DataFrame, suppressed: pd.DataFrame, cells: list, total: tuple) -> bool:
    open_cells = [c for c in cells if not suppressed.at[c]]
    nonzero = [c for c in open_cells if values.at[c] > 0]
    for candidates in (nonzero, open_cells, [] if suppressed.at[total] else [total]):
        if candidates:
            choice = min(candidates, key=lambda c: values.at[c])
            suppressed.at[choice] = True
            return True
    return False


def _interval(values: pd.DataFrame, suppressed: pd.DataFrame, structure: _Structure, bounds: Mapping) -> dict:
    """Min and max of every suppressed cell given published cells and additivity."""
    unknown = [(r, c) for r in suppressed.index for c in suppressed.columns if suppressed.at[r, c]]
    position = {cell: i for i, cell in enumerate(unknown)}
    equations, rhs = [], []
    for cells, total in structure.lines():
        row = np.zeros(len(unknown))
        constant = 0.0
        for cell in cells:
            if cell in position:
                row[position[cell]] += 1
            else:
                constant += values.at[cell]
        if total in position:
            row[position[total]] -= 1
        else:
            constant -= values.at[total]
        if row.any():
            equations.append(row)
            rhs.append(-constant)
    a_eq = np.array(equations) if equations else None
    b_eq = np.array(rhs) if equations else None
    var_bounds = [bounds.get(cell, (0, None)) for cell in unknown]
    intervals = {}
    for cell, i in position.items():
        objective = np.zeros(len(unknown))
        objective[i] = 1
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=var_bounds, method="highs")
        high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=var_bounds, method="highs")
        if low.status != 0 and high.status != 0:
            raise ValueError("the published table is inconsistent: the audit has no feasible solution")
        upper = np.inf if high.status == 3 else -high.fun
        intervals[cell] = (low.fun, upper)
    return intervals


def audit_suppression(
    values: pd.DataFrame,
    suppressed: pd.DataFrame,
    *,
    count_columns: Sequence[str] | None = None,
    row_total: str | None = None,
    total_row: Hashable | None = None,
    primary: pd.DataFrame | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    """Feasible interval of each suppressed count cell, by linear programming.

    Columns: row, column, primary, lower, upper, width, pinned_below_threshold (interval
    inside 1 .. threshold-1), lower_given_display / upper_given_display / width_given_display
    (primary cells also known to be 1 .. threshold-1 because they show "<threshold",
    secondary cells with a value at or above the threshold known to be at least that),
    protected (width > 0, not pinned, and width_given_display > 0 unless threshold <= 2,
    where the marker "<2" already says 1 by design). ``values`` and ``suppressed`` hold the count columns (body and row total)
    and all rows (body and total row); ``primary`` defaults to the suppressed cells
    holding 1 .. threshold-1.
    """
    count_columns = list(count_columns if count_columns is not None else values.columns)
    structure = _structure(values, count_columns, row_total, total_row)
    values = values[count_columns].astype(float)
    suppressed = suppressed[count_columns].astype(bool)
    if primary is None:
        primary = suppressed & (values >= 1) & (values < threshold)
    primary = primary[count_columns].astype(bool)
    plain = _interval(values, suppressed, structure, {})
    display_bounds = {}
    for cell in plain:
        if primary.at[cell]:
            display_bounds[cell] = (1, threshold - 1)
        elif values.at[cell] >= threshold:
            display_bounds[cell] = (threshold, None)
    with_display = _interval(values, suppressed, structure, display_bounds)
    # With threshold 2 the marker "<2" itself says 1: the display check cannot apply.
    display_exact = threshold <= 2
    rows = []
    for (row, column), (lower, upper) in plain.items():
        low_d, up_d = with_display[(row, column)]
        pinned = lower >= 1 - 1e-9 and upper <= threshold - 1 + 1e-9
        width = upper - lower
        width_d = up_d - low_d
        rows.append(
            {
                "row": row, "column": column, "primary": bool(primary.at[row, column]),
                "lower": lower, "upper": upper, "width": width, "pinned_below_threshold": pinned,
                "lower_given_display": low_d, "upper_given_display": up_d, "width_given_display": width_d,
                "protected": bool(width > 1e-9 and not pinned and (width_d > 1e-9 or display_exact)),
            }
        )
    columns = ["row", "column", "primary", "lower", "upper", "width", "pinned_below_threshold",
               "lower_given_display", "upper_given_display", "width_given_display", "protected"]
    return pd.DataFrame(rows, columns=columns)


def protect_table(
    table: pd.DataFrame,
    count_columns: Sequence[str],
    *,
    row_total: str | None = None,
    total_row: Hashable | None = None,
    percent_of: Mapping[str, tuple[str, str]] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    suppress_zeros: bool = False,
    secondary: bool = True,
    singleton_detection: bool = True,
    secondary_marker: str = "x",
) -> ProtectedTable:
    """Small-cell control of one count table (see the module docstring for the rules).

    ``count_columns`` are the count columns including the ``row_total`` column if there
    is one; ``total_row`` is the label of the total row; ``percent_of`` maps each
    percentage column to ``(numerator count column, base count column)``. Other columns
    (labels) pass through unchanged. Margins must add up (an error says so otherwise).
    """
    count_columns = list(count_columns)
    percent_of = dict(percent_of or {})
    structure = _structure(table, count_columns, row_total, total_row)
    values = table[count_columns].apply(pd.to_numeric, errors="raise").astype(float)
    if values.isna().any().any():
        raise ValueError("count cells must not be missing")
    _check_additive(values, structure)
    small = (values >= 1) & (values < threshold)
    if suppress_zeros:
        small |= values == 0
    primary = small.copy()
    suppressed = primary.copy()
    if secondary:
        _secondary(values, suppressed, structure, singleton_detection)
    audit = audit_suppression(values, suppressed, count_columns=count_columns, row_total=row_total,
                              total_row=total_row, primary=primary, threshold=threshold)
    while secondary and not audit.empty and not audit["protected"].all():
        if not _widen(values, suppressed, structure, audit):
            break
        _secondary(values, suppressed, structure, singleton_detection)
        audit = audit_suppression(values, suppressed, count_columns=count_columns, row_total=row_total,
                                  total_row=total_row, primary=primary, threshold=threshold)

    published = table.copy()
    display = table.copy().astype(object)
    for column in count_columns:
        published[column] = values[column].where(~suppressed[column]).astype("Float64")
        display[column] = [
            (f"<{threshold}" if primary.at[r, column] else secondary_marker) if suppressed.at[r, column]
            else f"{values.at[r, column]:.0f}"
            for r in table.index
        ]
    pct_mask = pd.DataFrame(False, index=table.index, columns=list(percent_of))
    for pct, (numerator, base) in percent_of.items():
        hidden = suppressed[numerator] | suppressed[base] | ((values[base] >= 1) & (values[base] < threshold))
        pct_mask[pct] = hidden
        published[pct] = pd.to_numeric(table[pct]).where(~hidden).astype("Float64")
        display[pct] = [secondary_marker if hidden[r] else f"{float(table.at[r, pct]):.1f}" for r in table.index]
    mask = pd.concat([suppressed, pct_mask], axis=1)
    primary_mask = pd.concat([primary, pd.DataFrame(False, index=table.index, columns=list(percent_of))], axis=1)
    passed = bool(audit["protected"].all()) if not audit.empty else True
    return ProtectedTable(published, display, mask, primary_mask, audit, passed)


def _widen(values: pd.DataFrame, suppressed: pd.DataFrame, structure: _Structure, audit: pd.DataFrame) -> bool:
    """Suppress one more cell in a line through an unprotected cell; False if none is left."""
    for record in audit.loc[~audit["protected"]].itertuples():
        cell = (record.row, record.column)
        for cells, total in structure.lines():
            if cell in cells or cell == total:
                open_cells = [c for c in cells if not suppressed.at[c] and values.at[c] > 0]
                if open_cells:
                    choice = min(open_cells, key=lambda c: values.at[c])
                    suppressed.at[choice] = True
                    return True
    return False


#: A cell (or any ancestor table) with this attribute holds a number that counts no one
#: (a rank, a class number, degrees of freedom, a year); the audit leaves its bare whole
#: numbers alone. Everything else is read.
NOT_COUNT_ATTRIBUTE = "data-not-count"
#: Class of a (hidden) table that carries the numbers a chart draws.
CHART_DATA_CLASS = "chart-data"
#: Attribute of a report figure listing what a reader can read off the chart as
#: numbers (value labels, bar lengths of count bars), separated by CHART_VALUE_SEPARATOR.
CHART_VALUES_ATTRIBUTE = "data-chart-values"
CHART_VALUE_SEPARATOR = "|"


class _TableCells(HTMLParser):
    """Every body and header cell of every table: (row, column, text, marked, exempt)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[tuple[int, int, str, bool, bool]]] = []
        self.chart_tables: set[int] = set()
        self.charts: list[list[str]] = []
        self._open: list[dict] = []
        self._capture: list[str] | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if CHART_VALUES_ATTRIBUTE in attributes:
            values = attributes.get(CHART_VALUES_ATTRIBUTE) or ""
            self.charts.append([v for v in values.split(CHART_VALUE_SEPARATOR) if v.strip()])
        if tag == "table":
            self._open.append({"cells": [], "row": -1, "column": -1, "chart": CHART_DATA_CLASS in classes})
        elif tag == "tr" and self._open:
            self._open[-1]["row"] += 1
            self._open[-1]["column"] = -1
        elif tag in ("td", "th") and self._open:
            self._open[-1]["column"] += 1
            self._capture = []
            self._cell = {"marked": "count" in classes or "data-count" in attributes,
                          "exempt": NOT_COUNT_ATTRIBUTE in attributes or "not-count" in classes,
                          "header": tag == "th"}

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._capture is not None and self._open:
            table = self._open[-1]
            cell = self._cell or {}
            table["cells"].append((table["row"], table["column"], "".join(self._capture),
                                   bool(cell.get("marked")), bool(cell.get("exempt") or cell.get("header"))))
            self._capture = None
            self._cell = None
        elif tag == "table" and self._open:
            closed = self._open.pop()
            if closed["chart"]:
                self.chart_tables.add(len(self.tables))
            self.tables.append(closed["cells"])

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._capture.append(data)


_WHOLE_NUMBER = re.compile(r"^(?:\d+|[1-9]\d{0,2}(?:[ ,\u00a0\u202f]\d{3})+)$")


def _whole_number(text: str) -> int | None:
    """The cell's text as a whole number, else None.

    Digits, optionally in thousands groups separated by a space, a (narrow) no-break
    space or a comma: English ``1,234`` and Estonian ``1 234``. An Estonian decimal
    ``3,2`` is not a whole number (its comma is not followed by three digits).
    """
    cleaned = text.strip()
    if not _WHOLE_NUMBER.match(cleaned):
        return None
    return int(re.sub(r"\D", "", cleaned))


def audit_html_tables(html: str, threshold: int = DEFAULT_THRESHOLD, every_cell: bool = True) -> pd.DataFrame:
    """Visible small counts in a rendered report: one row per offending cell.

    A cell fails when its text, without spaces and thousands separators, is a whole
    number from 1 to threshold-1 and it is either marked as a count (``class="count"``
    or ``data-count``, the renderer's convention) or, with ``every_cell`` (the default),
    any body cell of any table, including the hidden ``chart-data`` tables in which
    report figures carry the numbers they draw: a count shown as a plain string is read
    too. Body cells that count no one (ranks, class numbers, degrees of freedom) carry
    ``data-not-count``; header cells are read only when marked. Every figure's
    ``data-chart-values`` (``render.figures.chart_values``: value labels and count bar
    lengths) is read the same way. Columns: table (0-based, in document order of
    closing; ``chart <i>`` for the i-th figure), row, column (0-based within the table;
    the value's position for a chart), rule. The cell text itself is not reported. An empty result means the report passed.
    """
    parser = _TableCells()
    parser.feed(html)
    parser.close()
    findings = []
    for table_number, cells in enumerate(parser.tables):
        where = "chart data" if table_number in parser.chart_tables else "count"
        for row, column, text, marked, exempt in cells:
            if not (marked or (every_cell and not exempt)):
                continue
            value = _whole_number(text)
            if value is not None and 1 <= value < threshold:
                rule = f"visible {where} between 1 and {threshold - 1}"
                findings.append({"table": table_number, "row": row, "column": column,
                                 "rule": rule if marked or where == "chart data" else rule + " (unmarked cell)"})
    for chart_number, values in enumerate(parser.charts):
        for position, text in enumerate(values):
            value = _whole_number(text)
            if value is not None and 1 <= value < threshold:
                findings.append({"table": f"chart {chart_number}", "row": 0, "column": position,
                                 "rule": f"visible chart value between 1 and {threshold - 1}"})
    return pd.DataFrame(findings, columns=["table", "row", "column", "rule"])

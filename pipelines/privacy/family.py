"""Small-cell protection of a family of reports: municipality, county and study, together.

A municipality (KOV) report, its county's report and the study-wide reports publish the
same counts at three levels: each municipality's row, the county's row (the sum of its
municipalities) and the study's row (the sum of the counties). Protecting each report's
table on its own leaks: a count hidden in one KOV report is the county's published value
minus the other KOVs' published values. So the linked table is protected once, as a
whole, and every report of the family publishes from that one protected table.

The family table is hierarchical: rows are municipalities, counties and the study;
columns are categories and (when the categories are exhaustive) a row total. Its additive
lines are

* every row: its categories add up to its total (``row_total``);
* every county and column: its municipalities add up to the county;
* every column: the counties add up to the study.

The rules are those of :mod:`pipelines.privacy.cells` extended to these lines: primary
suppression of counts 1 .. min_cell-1, the line rule (no additive line with exactly one
suppressed cell, or two with a singleton), and the linear-programming audit of every
suppressed cell over *all* lines at once (its smallest and largest value given every
published cell of the family; protected when the interval has width > 0 without and
with what the display says, and does not lie inside 1 .. min_cell-1), widening the
suppression until the audit passes. :func:`block_audits` audits each block of the family
(one county's municipalities with the county row; the counties with the study row) with
:func:`pipelines.privacy.cells.audit_suppression`, the audit every report table passes
(the tests use it; the family's own audit already covers every line of every block).

Nothing here prints or logs a count; the audit frame holds positions and intervals only
for the caller's tests and blocking checks (intervals of suppressed cells must never be
published).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from pipelines.privacy.cells import audit_suppression

#: Label of an aggregated level (the value ``results.*`` tables use).
ALL = "all"
#: Name of the row-total column of a family table.
TOTAL = "total"
LEVELS = ("municipality", "county", "study")

Cell = tuple[tuple[str, str, str], str]


@dataclass(frozen=True)
class ProtectedFamily:
    """A family table after protection.

    ``values``: the true counts (index: level, county, municipality; columns: categories
    and ``total`` when there is one), never to be published as such; ``suppressed`` and
    ``primary``: boolean masks of the same shape; ``audit``: one row per suppressed cell
    (level, county, municipality, column, primary, width, width_given_display,
    pinned_below_threshold, protected); ``passed``: every suppressed cell is protected.
    """

    values: pd.DataFrame
    suppressed: pd.DataFrame
    primary: pd.DataFrame
    audit: pd.DataFrame
    passed: bool
    min_cell: int
    row_total: str | None

    @property
    def published(self) -> pd.DataFrame:
        """The counts a report may show: suppressed cells missing."""
        return self.values.mask(self.suppressed)

    def marks(self) -> pd.DataFrame:
        """What a report shows instead of a hidden count: ``<min_cell``, ``x``; "" where shown."""
        marks = pd.DataFrame("", index=self.values.index, columns=self.values.columns)
        marks = marks.mask(self.suppressed, "x")
        return marks.mask(self.primary, f"<{self.min_cell}")

    def long(self) -> pd.DataFrame:
        """One row per cell: level, county, municipality, column, value (missing when hidden), mark."""
        published = self.published.stack(future_stack=True).rename("value")
        marks = self.marks().stack(future_stack=True).rename("mark")
        frame = pd.concat([published, marks], axis=1).reset_index()
        frame.columns = ["level", "county", "municipality", "column", "value", "mark"]
        return frame


def family_values(body: pd.DataFrame, *, category: str, count: str = "count", county: str = "county",
                  municipality: str = "municipality", categories: Sequence[str] | None = None,
                  places: pd.DataFrame | None = None, row_total: bool = True) -> pd.DataFrame:
    """The family table of a long frame of municipality counts (one row per municipality and category).

    County and study rows are the sums of their municipalities; ``row_total`` adds the
    ``total`` column (only for exhaustive categories: a multi-select's options do not add
    up). ``places`` (columns county, municipality) adds municipalities without rows as zeros.
    """
    frame = body[[county, municipality, category, count]].copy()
    frame.columns = ["county", "municipality", "category", "count"]
    wide = frame.pivot_table(index=["county", "municipality"], columns="category", values="count",
                             aggfunc="sum", fill_value=0)
    if places is not None:
        index = pd.MultiIndex.from_frame(places[["county", "municipality"]].drop_duplicates().astype(str))
        wide = wide.reindex(index.union(wide.index), fill_value=0)
    if categories is not None:
        wide = wide.reindex(columns=list(categories), fill_value=0)
    wide = wide.astype(float)
    wide.columns = [str(c) for c in wide.columns]
    if row_total:
        wide[TOTAL] = wide.sum(axis=1)
    rows = [wide.assign(level="municipality").reset_index()]
    counties = wide.groupby(level="county").sum()
    rows.append(counties.assign(level="county", municipality=ALL).reset_index())
    rows.append(pd.DataFrame([wide.sum()]).assign(level="study", county=ALL, municipality=ALL))
    table = pd.concat(rows, ignore_index=True)
    order = {level: i for i, level in enumerate(("study", "county", "municipality"))}
    table["order"] = table["level"].map(order)
    table = table.sort_values(["order", "county", "municipality"]).drop(columns="order")
    return table.set_index(["level", "county", "municipality"])


def family_lines(values: pd.DataFrame, row_total: str | None = TOTAL) -> list[tuple[list[Cell], Cell]]:
    """Every additive line of a family table as (its cells, its total cell)."""
    index = list(values.index)
    columns = list(values.columns)
    body_columns = [c for c in columns if c != row_total]
    lines: list[tuple[list[Cell], Cell]] = []
    if row_total is not None and row_total in columns:
        for row in index:
            lines.append(([(row, c) for c in body_columns], (row, row_total)))
    study = [r for r in index if r[0] == "study"]
    counties = [r for r in index if r[0] == "county"]
    for county_row in counties:
        members = [r for r in index if r[0] == "municipality" and r[1] == county_row[1]]
        if not members:  # a two-level family (counties and study): the county rows are its body
            continue
        for column in columns:
            lines.append(([(r, column) for r in members], (county_row, column)))
    for study_row in study:
        for column in columns:
            lines.append(([(r, column) for r in counties], (study_row, column)))
    return lines


def _line_rule(vals: dict, hidden: dict, lines, singleton_detection: bool, fixed: frozenset = frozenset()) -> None:
    """No line with exactly one suppressed cell (or two of which one is a singleton 1)."""
    changed = True
    while changed:
        changed = False
        for cells, total in lines:
            shut = [c for c in cells if hidden[c]] + ([total] if hidden[total] else [])
            singleton = singleton_detection and len(shut) == 2 and any(vals[c] == 1 for c in shut if c != total)
            if len(shut) == 1 or singleton:
                if _suppress_one_more(vals, hidden, cells, total, fixed):
                    changed = True


def _suppress_one_more(vals: dict, hidden: dict, cells, total, fixed: frozenset = frozenset()) -> bool:
    """Suppress the smallest open non-zero cell of a line (a zero if nothing else, the total last);
    ``fixed`` cells (published elsewhere) are never chosen."""
    open_cells = [c for c in cells if not hidden[c] and c not in fixed]
    nonzero = [c for c in open_cells if vals[c] > 0]
    for candidates in (nonzero, open_cells, [] if hidden[total] or total in fixed else [total]):
        if candidates:
            hidden[min(candidates, key=vals.__getitem__)] = True
            return True
    return False


class _Program:
    """The linear program of a published family: the suppressed cells as unknowns, every line an equation."""

    def __init__(self, vals: dict, hidden: dict, lines) -> None:
        self.unknown = [cell for cell, shut in hidden.items() if shut]
        self.position = {cell: i for i, cell in enumerate(self.unknown)}
        equations, rhs = [], []
        for cells, total in lines:
            row = np.zeros(len(self.unknown))
            constant = 0.0
            for cell in cells:
                if cell in self.position:
                    row[self.position[cell]] += 1
                else:
                    constant += vals[cell]
            if total in self.position:
                row[self.position[total]] -= 1
            else:
                constant -= vals[total]
            if row.any():
                equations.append(row)
                rhs.append(-constant)
        self.a_eq = np.array(equations) if equations else None
        self.b_eq = np.array(rhs) if equations else None

    def interval(self, cell: Cell, bounds: dict) -> tuple[float, float]:
        """Smallest and largest value of a suppressed cell given the published cells and the lines."""
        var_bounds = [bounds.get(c, (0, None)) for c in self.unknown]
        objective = np.zeros(len(self.unknown))
        objective[self.position[cell]] = 1
        low = linprog(objective, A_eq=self.a_eq, b_eq=self.b_eq, bounds=var_bounds, method="highs")
        high = linprog(-objective, A_eq=self.a_eq, b_eq=self.b_eq, bounds=var_bounds, method="highs")
        if low.status != 0 and high.status != 0:
            raise ValueError("the published family is inconsistent: the audit has no feasible solution")
        return low.fun, np.inf if high.status == 3 else -high.fun


def _cells(frame: pd.DataFrame) -> dict:
    return {(row, column): value for row, values in zip(frame.index, frame.to_numpy().tolist())
            for column, value in zip(frame.columns, values)}


def audit_family(values: pd.DataFrame, suppressed: pd.DataFrame, primary: pd.DataFrame, min_cell: int,
                 row_total: str | None = TOTAL, lines=None, first_only: bool = False) -> pd.DataFrame:
    """The interval audit of a published family (every suppressed cell, over every line at once)."""
    lines = family_lines(values, row_total) if lines is None else lines
    return _audit(_cells(values.astype(float)), _cells(suppressed.astype(bool)), _cells(primary.astype(bool)),
                  min_cell, lines, first_only)


def _audit(vals: dict, hidden: dict, primary: dict, min_cell: int, lines, first_only: bool = False) -> pd.DataFrame:
    """``first_only`` stops at the first unprotected cell (the protection loop needs only one)."""
    program = _Program(vals, hidden, lines)
    display = {}
    for cell in program.unknown:
        if primary[cell]:
            display[cell] = (1, min_cell - 1)
        elif vals[cell] >= min_cell:
            display[cell] = (min_cell, None)
    rows = []
    # primary cells first: they are the ones a leak would give back
    for row, column in sorted(program.unknown, key=lambda c: not primary[c]):
        low, high = program.interval((row, column), {})
        pinned = low >= 1 - 1e-9 and high <= min_cell - 1 + 1e-9
        width = high - low
        width_d = np.inf
        if width > 1e-9 and not pinned:
            low_d, high_d = program.interval((row, column), display)
            width_d = high_d - low_d
        protected = bool(width > 1e-9 and not pinned and (width_d > 1e-9 or min_cell <= 2))
        rows.append({"level": row[0], "county": row[1], "municipality": row[2], "column": column,
                     "primary": bool(primary[(row, column)]), "width": width, "width_given_display": width_d,
                     "pinned_below_threshold": pinned, "protected": protected})
        if first_only and not protected:
            break
    return pd.DataFrame(rows, columns=["level", "county", "municipality", "column", "primary", "width",
                                       "width_given_display", "pinned_below_threshold", "protected"])


def _widen(vals: dict, hidden: dict, lines, audit: pd.DataFrame, fixed: frozenset = frozenset()) -> bool:
    """Suppress one more cell in a line through an unprotected cell; False when none is left.

    The smallest open non-zero cell of those lines (body cells before totals), else a zero."""
    for record in audit.loc[~audit["protected"]].itertuples():
        cell = ((record.level, record.county, record.municipality), record.column)
        through = [(cells, total) for cells, total in lines if cell == total or cell in cells]
        for candidates in ([c for cells, _ in through for c in cells if not hidden[c] and c not in fixed and vals[c] > 0],
                           [t for _, t in through if not hidden[t] and t not in fixed and vals[t] > 0],
                           [c for cells, t in through for c in [*cells, t] if not hidden[c] and c not in fixed]):
            if candidates:
                hidden[min(candidates, key=vals.__getitem__)] = True
                return True
    return False


def _blocks(values: pd.DataFrame) -> list[list[tuple[str, str, str]]]:
    """The family's report tables: each county's municipalities then the county row; the counties
    then the study row (the last row of each block is its total row)."""
    counties = [r for r in values.index if r[0] == "county"]
    blocks = [[r for r in values.index if r[0] == "municipality" and r[1] == c[1]] + [c] for c in counties]
    blocks.append(counties + [r for r in values.index if r[0] == "study"])
    return blocks


def block_audits(values: pd.DataFrame, suppressed: pd.DataFrame, primary: pd.DataFrame, min_cell: int,
                 row_total: str | None = TOTAL) -> list[pd.DataFrame]:
    """Each block of the family audited by :func:`pipelines.privacy.cells.audit_suppression`,
    as one report table would be (a check on top of the family's own audit)."""
    total = row_total if row_total in values.columns else None
    audits = []
    for rows in _blocks(values):
        def flat(frame: pd.DataFrame) -> pd.DataFrame:
            return frame.loc[rows].set_axis(range(len(rows)))

        audits.append(audit_suppression(flat(values), flat(suppressed), count_columns=list(values.columns),
                                        row_total=total, total_row=len(rows) - 1, primary=flat(primary),
                                        threshold=min_cell))
    return audits


def protect_family(values: pd.DataFrame, min_cell: int, *, row_total: str | None = TOTAL,
                   singleton_detection: bool = True, suppressed: pd.DataFrame | None = None,
                   known_columns: Sequence[str] = ()) -> ProtectedFamily:
    """Protect a family table (from :func:`family_values`) as a whole; see the module docstring.

    ``suppressed`` may force cells hidden from the start (cells another report hides).
    ``known_columns``: columns another report publishes (e.g. pupils per municipality, the
    row total): their cells of min_cell or more are taken as known and never hidden, so the
    protection does not rest on hiding what a reader can read elsewhere.
    """
    row_total = row_total if row_total in values.columns else None
    values = values.astype(float)
    if values.isna().any().any():
        raise ValueError("count cells must not be missing")
    lines = family_lines(values, row_total)
    vals = _cells(values)
    for cells, total in lines:
        if not np.isclose(sum(vals[c] for c in cells), vals[total]):
            raise ValueError("a family margin does not equal the sum of its cells")
    primary_frame = (values >= 1) & (values < min_cell)
    primary = _cells(primary_frame)
    hidden = dict(primary)
    if suppressed is not None:
        for cell, shut in _cells(suppressed.reindex_like(values).fillna(False).astype(bool)).items():
            hidden[cell] = hidden[cell] or shut
    fixed = frozenset(cell for cell in vals if cell[1] in known_columns and vals[cell] >= min_cell)
    _line_rule(vals, hidden, lines, singleton_detection, fixed)
    audit = _audit(vals, hidden, primary, min_cell, lines)
    while not audit.empty and not audit["protected"].all():
        # one more cell through every unprotected cell at once, then audit again
        widened = False
        for i in audit.index[~audit["protected"]]:
            widened |= _widen(vals, hidden, lines, audit.loc[[i]], fixed)
        if not widened:
            break
        _line_rule(vals, hidden, lines, singleton_detection, fixed)
        audit = _audit(vals, hidden, primary, min_cell, lines)
    passed = bool(audit["protected"].all()) if not audit.empty else True
    mask = pd.DataFrame([[hidden[(r, c)] for c in values.columns] for r in values.index],
                        index=values.index, columns=values.columns)
    return ProtectedFamily(values, mask, primary_frame, audit, passed, min_cell, row_total)


def naive_protection(values: pd.DataFrame, min_cell: int, row_total: str | None = TOTAL) -> pd.DataFrame:
    """What stays hidden when every report protects its own tables alone (for tests and comparisons).

    A KOV report protects each of its rows (the KOV, its county, the study) as a table of
    its own; a county report its municipalities with the county row as their total; the
    study report its counties with the study row. A cell stays hidden only when every
    report showing it hides it: the mask returned.
    """
    from pipelines.privacy.cells import protect_table

    row_total = row_total if row_total in values.columns else None
    shown = pd.DataFrame(False, index=values.index, columns=values.columns)
    tables = [[row] for row in values.index] + _blocks(values)
    for rows in tables:
        table = values.loc[rows].set_axis(range(len(rows)))
        protected = protect_table(table, list(values.columns), row_total=row_total,
                                  total_row=len(rows) - 1 if len(rows) > 1 else None, threshold=min_cell)
        for i, row in enumerate(rows):
            for column in values.columns:
                if not protected.suppressed.at[i, column]:
                    shown.at[row, column] = True
    return ~shown

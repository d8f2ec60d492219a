"""The one way a report shows a table: small cells suppressed, numbers in the language's style.

Every table in every report goes through :func:`report_table`, so that no report can
publish a count of 1..(min_cell - 1) people: municipalities are small, and a cell of
two pupils can point at a real child (DOMAIN.md). The suppression itself is
:func:`pipelines.privacy.cells.protect_table` (primary suppression of 1..min_cell-1,
secondary suppression along the table's additive lines, percentages hidden with
their numerator or when their base is small, and the linear-programming audit); this
module decides which columns are counts and which lines add up, and formats the
published cells for the report's language:

* a primary-suppressed count shows ``<min_cell``; a secondary one ``x`` (it holds a
  large count, hidden only so that a small one cannot be computed back);
* a hidden percentage shows ``…``; a missing value ``–``.

Tables render twice from one object: HTML for the web report (count cells carry
``class="count"``, the audit convention of ``cells.audit_html_tables``, which reads every
other body cell too unless its column is declared ``not_counts``) and a Markdown
pipe table for the PDF path (pandoc turns it into a Typst table).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from pipelines.privacy.cells import NOT_COUNT_ATTRIBUTE, protect_table
from pipelines.privacy.cells import ProtectedTable as ProtectedCells

#: Shown for a count hidden by secondary suppression.
SECONDARY_MARK = "x"
#: Shown for a percentage hidden because its numerator or base is suppressed or small.
SUPPRESSED_SHARE = "…"
#: Shown for a value that does not exist (no rows, no base).
NOT_AVAILABLE = "–"
#: Column kinds that are right-aligned.
NUMERIC_KINDS = frozenset({"count", "share", "number"})
#: Label of the margin row added for protection when totals are published elsewhere.
KNOWN_TOTAL = "__known_total__"


def format_number(value: float, lang: str, decimals: int = 0) -> str:
    """A number in the language's convention: Estonian writes ``1 234,5``, English ``1,234.5``.

    A value that rounds to zero is written without a sign (never ``-0,00``). Charts use
    the same function for their axes (:mod:`pipelines.render.figures`).
    """
    if round(value, decimals) == 0:
        value = 0.0
    text = f"{value:,.{decimals}f}"
    if lang == "et":
        return text.replace(",", "\u202f").replace(".", ",")  # narrow no-break space: 1 234,5
    return text


def format_p(value: float, lang: str) -> str:
    """A p-value with three decimals, below 0.001 as ``<0,001`` (``<0.001``), never ``0,000``."""
    if value is None or not math.isfinite(value):
        return NOT_AVAILABLE
    if value < 0.001:
        return "<" + format_number(0.001, lang, 3)
    return format_number(value, lang, 3)


def format_date(iso_date: str, lang: str) -> str:
    """An ISO date (``2023-09-01``) as the language writes it: ``01.09.2023`` in Estonian."""
    year, month, day = iso_date[:10].split("-")
    return f"{day}.{month}.{year}" if lang == "et" else f"{year}-{month}-{day}"


def plain_cell(value: object, lang: str) -> str:
    """A cell that is neither a count nor a share: text as it is, numbers localised."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return NOT_AVAILABLE
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return format_number(value, lang)
    if isinstance(value, float):
        if not math.isfinite(value):
            return NOT_AVAILABLE
        return format_number(value, lang, decimals=0 if value.is_integer() else 2)
    return str(value)


def published_cells(
    frame: pd.DataFrame,
    *,
    lang: str,
    min_cell: int,
    counts: Sequence[str] = (),
    shares: Mapping[str, tuple[str, str]] | None = None,
    row_total: str | None = None,
    known_totals: str | bool | None = None,
) -> pd.DataFrame:
    """Every cell of ``frame`` as the string a report may publish.

    ``counts``: columns counting people (they are protected); ``shares``: percentage
    column -> (numerator count column, base count column); ``row_total``: a count
    column that is the sum of the other count columns (e.g. rows read = accepted +
    rejected), protected as an additive line. ``known_totals``: the column totals are
    published elsewhere in the report (True: of the whole table; a column name: of
    each group of rows with the same value there, e.g. per county), so protection
    treats them as known margins; they are not shown in this table.
    """
    shares = dict(shares or {})
    frame = frame.reset_index(drop=True)
    missing = [c for c in [*counts, *shares, *(c for pair in shares.values() for c in pair)] if c not in frame.columns]
    if missing:
        raise KeyError(f"report table has no columns {missing}")
    uncounted = sorted({c for pair in shares.values() for c in pair} - set(counts))
    if uncounted:
        raise ValueError(f"a share's numerator and base must be count columns too: {uncounted}")
    if frame.empty:  # a table with no rows (an instrument without records): nothing to protect or format
        return frame.astype(object)
    if not counts:
        return frame.apply(lambda column: [plain_cell(v, lang) for v in column]).astype(object)
    # A share without a value (its base is 0: a file without rows) is shown as "–"; the
    # protection works on numbers, so it sees 0 there.
    no_share = {column: frame[column].isna() for column in shares}
    frame = frame.assign(**{column: pd.to_numeric(frame[column]).astype("Float64").fillna(0.0) for column in shares})
    shown = []
    for table, protected in _protected_blocks(frame, min_cell, counts, shares, row_total, known_totals):
        cells = table.astype(object).copy()
        for column in table.columns:
            if column in counts:
                cells[column] = [
                    _mark(protected, r, column, min_cell) if protected.suppressed.at[r, column]
                    else format_number(float(table.at[r, column]), lang)
                    for r in table.index
                ]
            elif column in shares:
                cells[column] = [
                    SUPPRESSED_SHARE if protected.suppressed.at[r, column]
                    else NOT_AVAILABLE if pd.isna(protected.published.at[r, column]) or table.at[r, shares[column][1]] == 0
                    or (r in no_share[column].index and no_share[column].at[r])
                    else format_number(float(protected.published.at[r, column]), lang, decimals=1) + "%"
                    for r in table.index
                ]
            else:
                cells[column] = [plain_cell(v, lang) for v in table[column]]
        shown.append(cells.drop(index=[KNOWN_TOTAL], errors="ignore"))
    return pd.concat(shown).loc[frame.index]


def _mark(protected: ProtectedCells, row: object, column: str, min_cell: int) -> str:
    return f"<{min_cell}" if protected.primary.at[row, column] else SECONDARY_MARK


def _protected_blocks(
    frame: pd.DataFrame,
    min_cell: int,
    counts: Sequence[str],
    shares: Mapping[str, tuple[str, str]],
    row_total: str | None,
    known_totals: str | bool | None,
) -> list[tuple[pd.DataFrame, ProtectedCells]]:
    """The frame in its protection blocks (one, or one per ``known_totals`` group), each
    with its known-total row when there is one, and :func:`protect_table`'s result."""
    with_totals = known_totals is True or isinstance(known_totals, str)
    if isinstance(known_totals, str):
        blocks = [group for _, group in frame.groupby(known_totals, sort=False, dropna=False)]
    else:
        blocks = [frame]
    protected_blocks = []
    for block in blocks:
        table = block.copy()
        if with_totals:
            total = {c: block[c].sum() for c in counts}
            table = pd.concat([table, pd.DataFrame([total], index=[KNOWN_TOTAL])])
        protected = protect_table(
            table, list(counts), row_total=row_total, total_row=KNOWN_TOTAL if with_totals else None,
            percent_of=shares, threshold=min_cell, secondary_marker=SECONDARY_MARK,
        )
        protected_blocks.append((table, protected))
    return protected_blocks


@dataclass(frozen=True)
class PublishedCounts:
    """The count columns of a table as a report publishes them, for charts.

    ``values``: the counts, missing where suppressed; ``marks``: ``""`` where a count is
    shown, else what the table shows instead (``<min_cell`` or ``x``). A chart drawn from
    these shows exactly what the table beside it shows: a bar of a secondary-suppressed
    cell would give back the count the table hides.
    """

    values: pd.DataFrame
    marks: pd.DataFrame


def published_counts(
    frame: pd.DataFrame,
    *,
    min_cell: int,
    counts: Sequence[str],
    row_total: str | None = None,
    known_totals: str | bool | None = None,
) -> PublishedCounts:
    """The ``counts`` of ``frame`` after the same protection :func:`published_cells` applies."""
    frame = frame.reset_index(drop=True)
    values, marks = [], []
    for table, protected in _protected_blocks(frame, min_cell, counts, {}, row_total, known_totals):
        body = table.drop(index=[KNOWN_TOTAL], errors="ignore")
        hidden = protected.suppressed.loc[body.index, list(counts)]
        values.append(body[list(counts)].astype(float).mask(hidden))
        marks.append(pd.DataFrame({c: [_mark(protected, r, c, min_cell) if hidden.at[r, c] else "" for r in body.index]
                                   for c in counts}, index=body.index))
    return PublishedCounts(pd.concat(values).loc[frame.index], pd.concat(marks).loc[frame.index])


@dataclass(frozen=True)
class ReportTable:
    """A table ready for display: every cell already a published string.

    ``kinds`` says per column whether it holds counts, shares, numbers or text: it
    sets the HTML class of body cells (``count`` marks the cells the disclosure audit
    reads) and the alignment.
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    kinds: tuple[str, ...]
    caption: str = ""
    note: str = ""
    #: Per column: True where its whole numbers count no one (files, ranks, variables);
    #: the cells carry ``data-not-count`` and the disclosure audit leaves them alone.
    not_counts: tuple[bool, ...] = ()

    def _repr_html_(self) -> str:
        parts = ['<table class="report-table">']
        if self.caption:
            parts.append(f"<caption>{html.escape(self.caption)}</caption>")
        parts.append("<thead><tr>")
        for name, kind in zip(self.header, self.kinds, strict=True):
            align = "num" if kind in NUMERIC_KINDS else "text"
            parts.append(f'<th class="{align}">{html.escape(name)}</th>')
        parts.append("</tr></thead><tbody>")
        exempt = self.not_counts or (False,) * len(self.kinds)
        for row in self.rows:
            parts.append("<tr>")
            for cell, kind, not_count in zip(row, self.kinds, exempt, strict=True):
                marker = f" {NOT_COUNT_ATTRIBUTE}" if not_count else ""
                parts.append(f'<td class="{kind}"{marker}>{html.escape(cell)}</td>')
            parts.append("</tr>")
        parts.append("</tbody></table>")
        if self.note:
            parts.append(f'<p class="table-note">{html.escape(self.note)}</p>')
        return "".join(parts)

    def _repr_markdown_(self) -> str:
        def escape(cell: str) -> str:
            return cell.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")

        align = ["---:" if kind in NUMERIC_KINDS else ":---" for kind in self.kinds]
        lines = [
            "| " + " | ".join(escape(h) for h in self.header) + " |",
            "|" + "|".join(align) + "|",
        ]
        lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in self.rows]
        text = "\n".join(lines)
        if self.caption:
            text += f"\n\n: {escape(self.caption)}"
        if self.note:
            text += f"\n\n*{escape(self.note)}*"
        return "\n" + text + "\n"

    def __repr__(self) -> str:
        return "\n".join(["\t".join(self.header)] + ["\t".join(row) for row in self.rows])


def report_table(
    frame: pd.DataFrame,
    *,
    lang: str,
    min_cell: int,
    counts: Sequence[str] = (),
    shares: Mapping[str, tuple[str, str]] | None = None,
    row_total: str | None = None,
    known_totals: str | bool | None = None,
    labels: Mapping[str, str] | None = None,
    caption: str = "",
    note: str = "",
    not_counts: Sequence[str] = (),
) -> ReportTable:
    """Protect and format a frame as a :class:`ReportTable` (see :func:`published_cells`).

    ``labels`` selects and renames the displayed columns, in its order (columns used
    only for protection, such as a share's base, can be left out); by default every
    column is shown under its own name. ``not_counts`` names columns whose whole
    numbers count no one (files, ranks, variables): the HTML audit reads every other
    cell of the table, so a count shown as a plain string is still caught.
    """
    overlap = set(not_counts) & (set(counts) | set(shares or {}))
    if overlap:
        raise ValueError(f"columns cannot be both counts and not counts: {sorted(overlap)}")
    cells = published_cells(frame, lang=lang, min_cell=min_cell, counts=counts, shares=shares,
                            row_total=row_total, known_totals=known_totals)
    labels = dict(labels) if labels is not None else {c: str(c) for c in frame.columns}
    shares = dict(shares or {})
    kinds = tuple(
        "count" if c in counts else "share" if c in shares else
        "number" if pd.api.types.is_numeric_dtype(frame[c]) else "text"
        for c in labels
    )
    return ReportTable(
        header=tuple(labels.values()),
        rows=tuple(tuple(row) for row in cells[list(labels)].itertuples(index=False, name=None)),
        kinds=kinds,
        caption=caption,
        note=note,
        not_counts=tuple(c in not_counts for c in labels),
    )

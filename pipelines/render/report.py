"""What a running report holds: its parameters, its language, a read-only study database.

A ``.qmd`` starts with ``report = open_report(study, db, lang, municipality)`` and then
only calls this object, so that every report shows text in its language, every table
through the suppressing :func:`~pipelines.render.tables.report_table`, and reads the
processed DuckDB file read-only (a report can never change the data it describes, and
never sees raw exports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from IPython.display import Markdown, display

from pipelines.render.figures import ReportFigure
from pipelines.warehouse import active_path, open_read_only
from pipelines.render.tables import PublishedCounts, published_counts, report_table
from pipelines.render.texts import Texts, load_texts

@dataclass(frozen=True)
class FingerprintNote:
    """The run fingerprint as a framed note: HTML box on the web, a bold line in the PDF."""

    label: str
    fingerprint: str
    explanation: str

    def _repr_html_(self) -> str:
        return (f'<p class="fingerprint"><strong>{html.escape(self.label)}</strong> '
                f"<code>{html.escape(self.fingerprint)}</code><br><span>{html.escape(self.explanation)}</span></p>")

    def _repr_markdown_(self) -> str:
        return f"**{self.label}** `{self.fingerprint}`\\\n{self.explanation}"

    def __repr__(self) -> str:
        return f"{self.label} {self.fingerprint}"


#: Small-cell threshold when the study does not set one (DOMAIN.md: cells of 1-4 disclose).
DEFAULT_MIN_CELL = 5


@dataclass
class Report:
    """One report being rendered: parameters, strings and a read-only connection."""

    study: str
    lang: str
    municipality: str | None
    con: duckdb.DuckDBPyConnection
    texts: Texts
    settings: dict[str, str]

    @property
    def min_cell(self) -> int:
        """The study's small-cell threshold (``meta.study`` key ``min_cell``)."""
        return int(self.settings.get("min_cell", DEFAULT_MIN_CELL))

    def text(self, key: str, **fields: Any) -> str:
        """The report language's string at ``key``.

        ``{min_cell}`` and ``{max_small}`` (the largest suppressed count) are always
        available, so texts explaining suppression state the study's own threshold.
        """
        return self.texts(key, **{"min_cell": self.min_cell, "max_small": self.min_cell - 1, **fields})

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a read-only query against the study database."""
        return self.con.execute(sql, list(parameters)).df()

    def show_markdown(self, markdown: str) -> None:
        """Display Markdown (headings, paragraphs) as report text."""
        display(Markdown(markdown))

    def show_text(self, key: str, **fields: Any) -> None:
        """Display the string at ``key`` as a Markdown paragraph."""
        self.show_markdown(self.text(key, **fields))

    def heading(self, key: str, level: int = 2) -> None:
        """Display the string at ``key`` as a heading of ``level``."""
        self.show_markdown("#" * level + " " + self.text(key))

    def show_table(
        self,
        frame: pd.DataFrame,
        *,
        counts: Sequence[str] = (),
        shares: Mapping[str, tuple[str, str]] | None = None,
        row_total: str | None = None,
        known_totals: str | bool | None = None,
        labels: Mapping[str, str] | None = None,
        caption: str = "",
        note: str = "",
        not_counts: Sequence[str] = (),
    ) -> None:
        """Display a table with the study's small-cell protection (see ``tables.report_table``)."""
        display(report_table(frame, lang=self.lang, min_cell=self.min_cell, counts=counts, shares=shares,
                             row_total=row_total, known_totals=known_totals, labels=labels,
                             caption=caption, note=note, not_counts=not_counts))

    def published_counts(
        self,
        frame: pd.DataFrame,
        *,
        counts: Sequence[str],
        row_total: str | None = None,
        known_totals: str | bool | None = None,
    ) -> PublishedCounts:
        """The counts a table of ``frame`` with the same arguments shows: for its chart."""
        return published_counts(frame, min_cell=self.min_cell, counts=counts, row_total=row_total,
                                known_totals=known_totals)

    def show_fingerprint(self, fingerprint: str | None, length: int) -> None:
        """Display the first ``length`` characters of the run fingerprint, prominently."""
        shown = fingerprint[:length] if fingerprint else self.text("common.fingerprint_missing")
        display(FingerprintNote(self.text("common.fingerprint_label"), shown,
                                self.text("common.fingerprint_explanation")))

    def show_figure(self, figure: ReportFigure) -> None:
        """Display a chart made with :mod:`pipelines.render.figures`."""
        display(figure)


def study_settings(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """``meta.study`` as a dict (study name, titles, reference date, privacy settings)."""
    rows = con.execute("SELECT key, value FROM meta.study ORDER BY key").fetchall()
    return {str(key): str(value) for key, value in rows}


def open_report(study: str, db: str | Path, lang: str, municipality: str | None = None) -> Report:
    """Open the processed study database read-only and bind the report's language."""
    path = active_path(db)  # the run's staging copy while `mapstudy run` renders
    if not path.is_file():
        raise FileNotFoundError(f"the processed database {path} does not exist: run the pipeline first")
    con = open_read_only(path)  # waits while a step in another process writes the database
    return Report(
        study=study,
        lang=lang,
        municipality=municipality or None,
        con=con,
        texts=load_texts(lang),
        settings=study_settings(con),
    )

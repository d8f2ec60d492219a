"""Plain, reproducible charts for the reports.

One style for every chart (DejaVu Sans, the font matplotlib ships, so Estonian letters
render the same on every machine; no chart junk), PNG bytes without the matplotlib
version or a date in their metadata so the same data give the same bytes, and bar
charts that apply the same small-cell rule as the tables: a bar of 1..min_cell-1
people is not drawn but marked ``<min_cell``.

Numbers on the axes are written as the tables write them (``tables.format_number``:
decimal comma and spaced thousands in Estonian) when a figure is frozen with its
language (``report_figure(fig, alt, lang)``); an odds-ratio axis gets plain ticks
(0,5 1 2), not powers of ten (``odds_ratio_axis``). Chart text is never below 8 pt.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.container  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipelines.privacy.cells import CHART_VALUE_SEPARATOR, CHART_VALUES_ATTRIBUTE  # noqa: E402
from pipelines.render.tables import PublishedCounts, format_number  # noqa: E402

#: The chart style: readable at print size, no top/right frame, fixed SVG id salt.
STYLE: dict[str, object] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "x",
    "grid.color": "#dddddd",
    "axes.axisbelow": True,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "svg.hashsalt": "mapstudy",
    "svg.fonttype": "path",
}

#: Colours safe for colour-blind readers (Okabe-Ito), in the order series use them.
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")


def png_bytes(fig: matplotlib.figure.Figure) -> bytes:
    """The figure as PNG with no software or date metadata (deterministic bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def chart_values(fig: matplotlib.figure.Figure) -> tuple[str, ...]:
    """What a reader can read off a chart as numbers, for the disclosure audit.

    The texts drawn on the axes and the figure (value labels, annotations; not tick
    labels) and the lengths of bar series whose bars are all whole numbers (a bar chart
    of counts; a series of means or shares is not a count). The HTML carries them in
    the figure's ``data-chart-values`` so ``cells.audit_html_tables`` reads every
    chart's data, not only the tables.
    """
    values: list[str] = [t.get_text().strip() for t in fig.texts if t.get_text().strip()]
    for ax in fig.axes:
        values += [t.get_text().strip() for t in ax.texts if t.get_text().strip()]
        for container in ax.containers:
            if not isinstance(container, matplotlib.container.BarContainer):
                continue
            lengths = [p.get_width() if container.orientation == "horizontal" else p.get_height()
                       for p in container.patches]
            drawn = [v for v in lengths if math.isfinite(v)]  # a suppressed count is drawn as no bar
            if drawn and all(float(v).is_integer() for v in drawn):
                values += [str(int(abs(v))) for v in drawn]
    return tuple(values)


@dataclass(frozen=True)
class ReportFigure:
    """A rendered chart with its alternative text, displayable as HTML or PNG."""

    png: bytes
    alt: str
    #: The numbers the chart shows (``chart_values``), audited with the tables.
    values: tuple[str, ...] = ()

    def _repr_png_(self) -> bytes:
        return self.png

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        shown = html.escape(CHART_VALUE_SEPARATOR.join(self.values))
        return (f'<figure {CHART_VALUES_ATTRIBUTE}="{shown}">'
                f'<img src="data:image/png;base64,{data}" alt="{html.escape(self.alt)}"></figure>')

    def __repr__(self) -> str:
        return self.alt


#: The smallest chart text (points at the figure's size; figures are at most 7 in wide).
MIN_FONT_SIZE = 8
#: Odds-ratio ticks a reader knows: the 1-2-5 series.
ODDS_RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def tick_decimals(values: Sequence[float]) -> int:
    """The fewest decimals that write every tick exactly (0,25 needs 2, 0,5 needs 1)."""
    for decimals in range(7):
        if all(abs(round(v, decimals) - v) < 1e-9 * max(1.0, abs(v)) for v in values):
            return decimals
    return 6


class LocaleFormatter(matplotlib.ticker.Formatter):
    """Tick labels by ``tables.format_number`` in the report's language, one decimal count per axis."""

    def __init__(self, lang: str, each: bool = False) -> None:
        self.lang = lang
        self.each = each  # each tick its own decimals (0,5 1 2 on a log axis), else one count per axis

    def __call__(self, x: float, pos: int | None = None) -> str:
        shown = [x] if self.each else [v for v in getattr(self, "locs", []) if np.isfinite(v)] or [x]
        return format_number(float(x), self.lang, tick_decimals(shown))


def localise_axes(fig: matplotlib.figure.Figure, lang: str) -> None:
    """Every numeric axis of ``fig`` labelled as the tables write numbers in ``lang``.

    Axes with category labels (fixed tick texts) and log axes set by
    :func:`odds_ratio_axis` keep their labels.
    """
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if axis.get_scale() == "linear" and isinstance(formatter, matplotlib.ticker.ScalarFormatter):
                axis.set_major_formatter(LocaleFormatter(lang))


def odds_ratio_axis(ax: matplotlib.axes.Axes, lang: str) -> None:
    """A log-scaled x axis of odds ratios with plain ticks (0,5 1 2 5), written as the tables write them."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t for t in ODDS_RATIO_TICKS if low <= t <= high]
    if len(ticks) > 7:  # a wide range: 1 and the tenfolds, halves and doubles
        ticks = [t for t in ticks if t in (0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0)]
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.xaxis.set_major_formatter(LocaleFormatter(lang, each=True))
    ax.set_xlim(low, high)


def report_figure(fig: matplotlib.figure.Figure, alt: str, lang: str | None = None) -> ReportFigure:
    """Freeze a matplotlib figure into a :class:`ReportFigure` and close it.

    With ``lang``, numeric axes are labelled in that language (:func:`localise_axes`).
    """
    if lang is not None:
        localise_axes(fig, lang)
    if fig.get_layout_engine() is None:
        # long category labels shrink the axes instead of widening the figure: a chart stays at
        # its width (7 in), so the PDF, which fits it to the text width, keeps its text at 8 pt or more
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.tight_layout()
    try:
        return ReportFigure(png=png_bytes(fig), alt=alt, values=chart_values(fig))
    finally:
        plt.close(fig)


def horizontal_bars(
    frame: pd.DataFrame,
    *,
    category: str,
    series: Sequence[str],
    series_labels: Sequence[str],
    xlabel: str,
    published: PublishedCounts,
    alt: str,
    lang: str | None = None,
) -> ReportFigure:
    """Grouped horizontal bars of counts, one group per ``category`` row.

    The bars are ``published`` (:func:`pipelines.render.tables.published_counts` of the
    same protection as the table the chart illustrates): a suppressed count is drawn as no
    bar with the table's mark (``<min_cell`` or ``x``), so the chart never shows a count
    the table hides. Categories keep the frame's order, top to bottom.
    """
    with plt.rc_context(STYLE):
        n_rows, n_series = len(frame), len(series)
        fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.22 * n_rows * max(n_series, 1)))
        height = 0.8 / max(n_series, 1)
        positions = np.arange(n_rows)[::-1]
        for i, (column, label) in enumerate(zip(series, series_labels, strict=True)):
            values = published.values[column].fillna(0).to_numpy(dtype=float)
            marks = published.marks[column].to_numpy(dtype=object)
            offsets = positions + (n_series - 1) / 2 * height - i * height
            ax.barh(offsets, values, height=height * 0.95, color=PALETTE[i % len(PALETTE)], label=label)
            for y, mark in zip(offsets, marks, strict=True):
                if mark:
                    ax.text(0, y, f" {mark}", va="center", ha="left", fontsize=MIN_FONT_SIZE)
        ax.set_yticks(positions, [str(c) for c in frame[category]])
        ax.set_xlabel(xlabel)
        ax.tick_params(axis="y", length=0)
        if n_series > 1:
            ax.legend(frameon=False, loc="lower right")
        return report_figure(fig, alt, lang)

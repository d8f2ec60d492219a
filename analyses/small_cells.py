"""The study's small-cell rule, stated once for every module that publishes a number.

A count from 1 to ``min_cell - 1`` (the study's ``privacy.min_cell``, default 5) can
point at a child in a small municipality, so it is never published; zero is (a zero
names no one). A share gives its count back (share x base), and a share of a known base
gives the complement too, so a share is hidden when either is small. Analyses return
true counts; the publishing layer (``pipelines.render.tables.report_table`` with
``pipelines.privacy.cells.protect_table`` for tables, ``audit_html_tables`` for the
rendered report) applies this rule, and where a module must decide cell by cell
(persona cards, evaluation flow, screening shares) it asks these functions, so no
module carries its own threshold.
"""

from __future__ import annotations

import math

#: The default of the study's ``privacy.min_cell``.
DEFAULT_MIN_CELL = 5


def is_small(count: float | None, min_cell: int = DEFAULT_MIN_CELL) -> bool:
    """True for a count from 1 to min_cell - 1 (missing and zero are not small)."""
    if count is None or (isinstance(count, float) and math.isnan(count)):
        return False
    return 0 < count < min_cell


def reveals_small(count: float | None, base: float | None, min_cell: int = DEFAULT_MIN_CELL) -> bool:
    """True when a count of a known base, or its complement base - count, is small."""
    if count is None or base is None:
        return False
    return is_small(count, min_cell) or is_small(base - count, min_cell)


def share_reveals_small(share: float | None, base: float | None, min_cell: int = DEFAULT_MIN_CELL) -> bool:
    """True when a share of ``base`` units gives back a small count (share x base) or complement."""
    try:
        share, base = float(share), float(base)  # None and pandas' NA raise TypeError
    except (TypeError, ValueError):
        return False
    if math.isnan(share) or math.isnan(base):
        return False
    return reveals_small(round(share * base), base, min_cell)

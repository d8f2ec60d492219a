"""The shape of ``results.evaluation`` rows and the small-numbers rule applied to them.

Every evaluation estimate is one row identified by outcome, group, municipality (or
'all') and contrast ('pre', 'post', 'change', 'did'), with an effect size next to the raw
estimate, a ``warning`` column (codes of ``analyses.methods``) and a ``method_code``
(the registry code a report selects rows by, never the method prose). The warning rule is stated once here so every function
applies the same one:

* ``n < min_n`` (default 5, the study's small-cell threshold): the row is *suppressed*:
  every number, including ``n``, is blanked, because a mean of 1-4 children can point at
  a child, and nothing can be said from so few anyway. ``within_group_change``,
  ``difference_in_differences`` and ``random_intercept_did`` return true numbers for
  every cell (only the ``small_n`` warning); the asset layer
  (``pipelines.assets.evaluation.publish_evaluation``) applies this rule with the
  study's ``privacy.min_cell`` before ``results.evaluation`` is written.
* ``n < small_n`` (default 10): kept, with warning ``small_n``: the interval is wide and
  the estimate should be read as description, not as evidence.
* a test whose smallest attainable two-sided p-value is above 0.05 (an exact McNemar
  test with fewer than 6 discordant pairs, an exact signed-rank test with fewer than 6
  non-zero differences) gets ``cannot_reach_significance``: no result of that test could
  be called an effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from analyses.tidy import ESTIMATE_COLUMNS, tidy_frame

ID_COLUMNS: tuple[str, ...] = ("outcome", "group", "municipality", "contrast")
EFFECT_COLUMNS: tuple[str, ...] = (
    "effect_size",
    "effect_size_name",
    "es_conf_low",
    "es_conf_high",
    "warning",
    "method_code",
)

SUPPRESSED = "suppressed_n_below_min"
SMALL_N = "small_n"
CANNOT_REACH_SIGNIFICANCE = "cannot_reach_significance"

_NUMBERS = (*ESTIMATE_COLUMNS, "effect_size", "es_conf_low", "es_conf_high")


def small_numbers_warning(n: int, min_n: int = 5, small_n: int = 10) -> str | None:
    """The warning the module rule above gives a row built from ``n`` units."""
    if n < min_n:
        return SUPPRESSED
    if n < small_n:
        return SMALL_N
    return None


def apply_small_numbers(row: dict[str, Any], n: int, min_n: int = 5, small_n: int = 10) -> dict[str, Any]:
    """Set the row's warning for ``n`` units and blank every number if it is suppressed."""
    warning = small_numbers_warning(n, min_n, small_n)
    if warning == SUPPRESSED:
        return suppressed_row(row)
    return add_warning(row, warning)


def suppressed_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row as published when it is built from fewer than ``min_n`` units: no numbers, warning SUPPRESSED."""
    return {**row, **{column: None for column in _NUMBERS}, "warning": SUPPRESSED}


def add_warning(row: dict[str, Any], warning: str | None) -> dict[str, Any]:
    """Append ``warning`` to the row's warnings ('; '-separated), if there is one."""
    if not warning:
        return row
    current = row.get("warning")
    return {**row, "warning": f"{current}; {warning}" if current else warning}


def evaluation_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Build the ``results.evaluation`` table from row dicts, in the contract's order."""
    frame = tidy_frame(rows, ID_COLUMNS, EFFECT_COLUMNS)
    for column in ("effect_size", "es_conf_low", "es_conf_high"):
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame

"""The tidy result contract shared by every statistical function.

Every estimate the project publishes is one row of a long table, in the spirit of R's
broom: identifying columns first (analysis, model, outcome, term, group, municipality,
wave ...), then the estimate columns below, then method columns that name how the
number was made. Keeping one contract means reports, exports and tests can read any
result table the same way, and a method can never be left unnamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

#: Columns every tidy result row carries, in this order, after its identifying columns.
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "conf_low",
    "conf_high",
    "n",
)

#: Method columns: every row says how it was computed. ``method`` is mandatory and
#: non-empty; the others may be empty where they do not apply.
METHOD_COLUMNS: tuple[str, ...] = ("method", "ci_method", "correction")


def tidy_frame(
    rows: Iterable[Mapping[str, Any]],
    id_columns: Iterable[str],
    extra_columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Build a tidy result table from row dicts, with the contract's column order.

    Missing estimate or method keys become NA, so a function only fills what applies
    (a test statistic without a CI, say). Columns a caller adds beyond the contract
    (``odds_ratio``, ``effect_size`` ...) go in ``extra_columns`` and follow the
    estimate columns. A row without a ``method`` is a programming error and raises.
    """
    id_columns = list(id_columns)
    extra_columns = list(extra_columns)
    columns = id_columns + list(ESTIMATE_COLUMNS) + extra_columns + list(METHOD_COLUMNS)
    records = [dict(r) for r in rows]
    for i, record in enumerate(records):
        if not record.get("method"):
            raise ValueError(f"tidy row {i} has no 'method': every estimate must name its method")
        unknown = set(record) - set(columns)
        if unknown:
            raise ValueError(f"tidy row {i} has columns outside the declared contract: {sorted(unknown)}")
    frame = pd.DataFrame.from_records(records, columns=columns)
    for column in ESTIMATE_COLUMNS:
        if column == "n":
            frame[column] = pd.array(frame[column], dtype="Int64")
        else:
            frame[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    return frame

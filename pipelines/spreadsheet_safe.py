"""Cells safe to open in a spreadsheet: no formula injection in the CSV/XLSX files we write.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or
``@`` as a formula (and tab or carriage return open the same hole), so a free-text answer
such as ``=HYPERLINK("http://...")`` in a shared CSV would act when the receiver opens it.
Following OWASP's advice, every text cell that starts with one of these characters is
prefixed with a single quote, unless it is a number as written (``-3``, ``+1.5``), which
stays as it is. Numbers, dates and missing values are never changed.

Every CSV or XLSX the project writes for people goes through `safe_frame` (or
`write_csv`); raw exports the demo generator imitates are not such files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def neutralise(value: object) -> object:
    """The cell as a spreadsheet may show it: a formula-like text gets a leading single quote."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _NUMBER.match(value):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and text column names) are neutralised."""
    safe = frame.copy()
    for column in safe.columns:
        series = safe[column]
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            safe[column] = series.map(neutralise, na_action="ignore")
    safe.columns = [neutralise(c) for c in safe.columns]
    return safe


def write_csv(frame: pd.DataFrame, path: Path, **kwargs) -> None:
    """``frame.to_csv(path, index=False, encoding="utf-8")`` with every text cell neutralised."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("encoding", "utf-8")
    safe_frame(frame).to_csv(path, **kwargs)

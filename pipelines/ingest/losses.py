"""What a run lost: files unreadable, missing or empty, and rows rejected above the threshold.

`problems` reads an `IngestResult` (its findings and row counts, never a value) and lists
each problem as file, rule and rows affected. The ingest stage refuses to write when there
are any (`DataLossError`, so the previous database stays whole) unless the user accepts a
partial run; then the problems are written to `meta.losses` for the reports to say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.config import Ingest

LOSS_COLUMNS = ["instrument", "wave", "file", "rule", "rows", "message"]

#: file-level findings that mean the file's rows are gone
_FILE_RULES = {
    "missing_file": "missing",
    "unreadable_file": "unreadable",
    "outside_raw_dir": "unreadable",
    "empty_file": "empty",
}
#: rejections that are not losses: the person's other record is kept, or they asked to be erased
_NOT_LOST = ("duplicate_record", "erased")

HINT = ("fix or replace the file(s) named above (see meta.quality of the last partial run, or the run log), "
        "or run again with --accept-partial to write the rest and record what is missing in meta.losses")


@dataclass(frozen=True)
class Problem:
    instrument: str
    wave: str | None
    file: str
    rule: str  # missing, unreadable, empty, rejected_rows
    rows: int | None  # rows affected (None: unknown, the file could not be read)
    message: str

    def line(self) -> str:
        rows = "rows unknown" if self.rows is None else f"{self.rows} row(s)"
        return f"{self.file}: {self.rule} ({rows}): {self.message}"


class DataLossError(RuntimeError):
    """Files or rows would be lost; nothing was written. The message holds no cell values."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []

    @classmethod
    def of(cls, problems: list[Problem]) -> "DataLossError":
        lines = [p.line() for p in problems]
        return cls(f"{len(problems)} data-loss problem(s), nothing written:\n  " + "\n  ".join(lines)
                   + f"\nwhat to do: {HINT}", problems)


def problems(quality: pd.DataFrame, row_counts: pd.DataFrame, thresholds: Ingest) -> list[Problem]:
    """Every file unreadable, missing or empty, and every file with too many rows rejected."""
    out: list[Problem] = []
    q = quality
    for row in row_counts.itertuples(index=False):
        mine = q[q["file"] == row.file]
        file_level = mine[mine["rule"].isin(list(_FILE_RULES)) & (mine["action"] == "file_rejected")]
        if len(file_level):
            rule = str(file_level["rule"].iloc[0])
            message = str(file_level["message"].iloc[0])
            rows = None if rule != "empty_file" else 0
            out.append(Problem(row.instrument, row.wave, row.file, _FILE_RULES[rule], rows, _without_name(message)))
            continue
        not_lost = int(mine.loc[mine["rule"].isin(_NOT_LOST), "n"].sum())
        lost = int(row.rows_rejected) - not_lost
        if row.rows_read and lost > thresholds.max_rejected_share * row.rows_read \
                and lost >= thresholds.min_rejected_rows:
            rejected = mine[((mine["action"] == "row_rejected") | (mine["severity"] == "error"))
                            & ~mine["rule"].isin(_NOT_LOST)]
            reasons = rejected.groupby("rule")["n"].sum().sort_index()
            why = ", ".join(f"{rule} {min(int(n), lost)}" for rule, n in reasons.items()) or "rejected"
            out.append(Problem(row.instrument, row.wave, row.file, "rejected_rows", lost,
                               f"{lost} of {row.rows_read} rows rejected ({lost / row.rows_read:.1%}, more than "
                               f"ingest.max_rejected_share {thresholds.max_rejected_share:.1%}): {why}"))
    return out


def _without_name(message: str) -> str:
    """Findings start with the file's base name; the problem line names the file already."""
    head, sep, rest = message.partition(": ")
    return rest if sep and "/" not in head and "." in head else message


def losses_table(found: list[Problem]) -> pd.DataFrame:
    """`meta.losses`: one row per problem of an accepted partial run (empty for a clean run)."""
    frame = pd.DataFrame([[p.instrument, p.wave, p.file, p.rule, p.rows, p.message] for p in found],
                         columns=LOSS_COLUMNS)
    for column in ("instrument", "wave", "file", "rule", "message"):
        frame[column] = frame[column].astype("object")
    frame["rows"] = frame["rows"].astype("Int64")
    return frame


def data_loss_in(run_result: Any) -> DataLossError | None:
    """The DataLossError that failed a Dagster run (rebuilt from its message), or None.

    Dagster keeps a step's exception as serialised error info (class name, message, cause),
    so this reads the failure events of a run: its result, or its list of events.
    """
    for event in getattr(run_result, "all_events", run_result) or []:
        if not getattr(event, "is_step_failure", False):
            continue
        error = getattr(event.step_failure_data, "error", None)
        while error is not None:
            if error.cls_name == "DataLossError":
                message = error.message.strip()
                prefix = next((p for p in ("pipelines.ingest.losses.DataLossError: ", "DataLossError: ")
                               if message.startswith(p)), "")
                return DataLossError(message[len(prefix):])
            error = error.cause
    return None

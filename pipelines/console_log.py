"""The run's console log: Dagster's events in one line each, a failed step without its stack trace.

Dagster's own console logger prints a failed step's whole stack trace (some 80 lines),
and an ERROR line for every step that did not run because of it, before mapstudy can say
in one line what went wrong and what to do. The stack trace
stays in Dagster's event log (the UI shows it); the console gets the step, the error's
class and its first line. `mapstudy --debug run` sets MAPSTUDY_DEBUG and gets it whole.
"""

from __future__ import annotations

import logging
import os
import sys

import dagster as dg

DEBUG_ENV = "MAPSTUDY_DEBUG"
_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"


def short_message(message: str) -> str:
    """A step-failure message cut to its first line plus the error's class and first line.

    Dagster writes 'Execution of step "x" failed.\\n\\n<wrapper>::\\n\\n<Error>: <text>\\n\\nStack Trace: ...';
    the wrapper (DagsterExecutionStepExecutionError) says nothing a user can act on.
    """
    head, _, rest = message.partition("\n\n")
    if not rest:
        return head
    body = rest.split("\n\nStack Trace:", 1)[0]
    cause = body.split("::\n\n", 1)[1] if "::\n\n" in body else body
    first = cause.strip().splitlines()[0] if cause.strip() else ""
    if not first or first.startswith("dagster._core.errors."):
        return head
    return f"{head.rstrip('.')}: {first}"


def is_consequence(message: str) -> bool:
    """A step not run because an earlier one failed: the failure itself was already said."""
    return "Dependencies for step" in message and "Not executing" in message


class _ShortFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = short_message(record.message)
        return super().formatMessage(record)


@dg.logger(config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO")},
           description="One line per event on stderr; a failed step's stack trace only with --debug.")
def console_logger(init_context) -> logging.Logger:
    logger = logging.Logger("mapstudy", init_context.logger_config["log_level"])
    handler = logging.StreamHandler(sys.stderr)
    full = os.environ.get(DEBUG_ENV) == "1"
    handler.setFormatter(logging.Formatter(_FORMAT) if full else _ShortFormatter(_FORMAT))
    if not full:  # one failed step would otherwise print an ERROR line for every step after it
        handler.addFilter(lambda record: not is_consequence(record.getMessage()))
    logger.addHandler(handler)
    return logger

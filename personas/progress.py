"""Progress lines from long persona fits, for whoever is listening.

The statistics know nothing of Dagster: they call ``report(message)``, and a caller that
wants the lines (the personas asset, a notebook) wraps the work in
``reporting(callback)`` or calls ``with_progress(callback, fn, ...)``. Without a listener
``report`` does nothing. Lines hold counts and settings only, never data values. Work in
joblib worker processes does not report; its results are reported as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_listener: ContextVar[Callable[[str], None] | None] = ContextVar("personas_progress", default=None)


def report(message: str) -> None:
    listener = _listener.get()
    if listener is not None:
        listener(message)


@contextmanager
def reporting(callback: Callable[[str], None] | None) -> Iterator[None]:
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


def with_progress(callback: Callable[[str], None] | None, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` with its progress lines sent to ``callback``."""
    with reporting(callback):
        return fn(*args, **kwargs)

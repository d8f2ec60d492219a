"""One BLAS thread inside CPU-bound statistics (issue 16).

OpenBLAS's default thread pool spins its threads around every small matrix product: the
latent class M-step costs ~50x the CPU of a single-threaded product on a busy two-core
machine, and where work already runs in parallel (joblib workers, several assets at
once) the BLAS threads only compete with them. ``one_blas_thread`` pins BLAS to one
thread for the duration of a call (a context manager and a decorator); the previous
limit is restored afterwards. The controller is built once per process, so entering
the limit costs microseconds, not the library scan of ``threadpool_limits``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from threadpoolctl import ThreadpoolController

F = TypeVar("F", bound=Callable)

_controller: ThreadpoolController | None = None


def _get_controller() -> ThreadpoolController:
    global _controller
    if _controller is None:
        import numpy  # noqa: F401  (its BLAS must be loaded before the scan)

        _controller = ThreadpoolController()
    return _controller


@contextmanager
def one_blas_thread_block():
    """``with one_blas_thread_block(): ...`` runs the block with one BLAS thread."""
    with _get_controller().limit(limits=1, user_api="blas"):
        yield


def one_blas_thread(fn: F) -> F:
    """Decorator: the function runs with one BLAS thread (in whichever process calls it)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with one_blas_thread_block():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def blas_threads() -> int | None:
    """The BLAS library's current thread count (None without a BLAS), for tests."""
    infos = [info for info in ThreadpoolController().info() if info.get("user_api") == "blas"]
    return infos[0]["num_threads"] if infos else None

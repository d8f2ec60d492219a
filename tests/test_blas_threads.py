"""BLAS pinned to one thread inside the persona fits and bootstraps (analyses/threads.py)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from analyses.threads import blas_threads, one_blas_thread
from personas import em
from personas.encoding import encode_indicators
from personas.fitting import fit_latent_classes
from tests.bench.bench_personas import simulated_pupils


@pytest.fixture
def two_blas_threads():
    if blas_threads() is None:
        pytest.skip("numpy has no BLAS thread pool here")
    with threadpool_limits(limits=2, user_api="blas"):
        yield


def test_decorator_pins_and_restores(two_blas_threads):
    before = blas_threads()
    assert one_blas_thread(blas_threads)() == 1
    assert blas_threads() == before


def test_fit_runs_em_with_one_blas_thread(two_blas_threads, monkeypatch):
    seen = []
    m_step = em.m_step

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return m_step(*args, **kwargs)

    monkeypatch.setattr(em, "m_step", spy)
    frame = simulated_pupils(200)
    indicators = encode_indicators(frame, categorical=list(frame.columns), levels={c: (0.0, 1.0) for c in frame.columns})
    fit_latent_classes(indicators, k_max=2, n_init=2, n_final=1, max_iter=5, n_jobs=1)
    assert seen and set(seen) == {1}
    assert blas_threads() == 2

"""Progress lines from persona fits, and warm- vs cold-started bootstrap refits."""

from __future__ import annotations

from personas import bootstrap_stability, encode_indicators, fit_latent_classes, reporting, with_progress
from tests.bench.bench_personas import simulated_pupils


def _indicators(n=400):
    frame = simulated_pupils(n)
    return encode_indicators(frame, categorical=list(frame.columns), levels={c: (0.0, 1.0) for c in frame.columns})


def test_fit_and_bootstrap_report_progress_and_only_counts():
    indicators = _indicators()
    lines: list[str] = []
    fit = with_progress(lines.append, fit_latent_classes, indicators, k_min=2, k_max=3, n_init=3, n_final=2, n_jobs=1)
    assert any("short runs" in line for line in lines)
    assert any(line.startswith("latent classes k=3: 2 final runs") for line in lines)
    lines.clear()
    with reporting(lines.append):
        bootstrap_stability(fit.solutions[2], indicators, n_boot=6, n_jobs=1)
    assert lines == ["bootstrap stability k=2: 5 of 6 resamples refitted", "bootstrap stability k=2: 6 of 6 resamples refitted"]
    fit_latent_classes(indicators, k_min=2, k_max=2, n_init=2, n_final=1, n_jobs=1)  # no listener: silent
    assert len(lines) == 2


def test_warm_and_cold_refits_agree_on_clear_classes():
    indicators = _indicators(600)
    solution = fit_latent_classes(indicators, k_min=2, k_max=2, n_init=4, n_final=2, n_jobs=1).solutions[2]
    warm = bootstrap_stability(solution, indicators, n_boot=6, n_jobs=1)
    cold = bootstrap_stability(solution, indicators, n_boot=6, n_init=3, n_jobs=1, warm_start=False)
    assert "warm start" in warm["method"].iloc[0] and "random starts" in cold["method"].iloc[0]
    assert (abs(warm["estimate"].to_numpy() - cold["estimate"].to_numpy()) < 0.1).all()


def test_early_stop_only_for_a_steady_creep():
    import numpy as np

    from personas.fitting import _cannot_converge

    step, tol, cap = 100, 1e-10, 1000

    def blocks(r, first, start):  # gains of three blocks of `step` iterations, per-iteration ratio r
        c = first * r ** np.arange(start, start + 3 * step)
        return [np.array([c[i * step:(i + 1) * step].sum()]) for i in range(3)]

    earlier, before, now = blocks(0.9999, 1e-6, 0)  # would need ~10^5 iterations: hopeless
    assert _cannot_converge(now, before, earlier, step, tol, np.array([350]), cap).all()
    earlier, before, now = blocks(0.97, 1e-6, 0)  # converges in a few hundred: keep going
    assert not _cannot_converge(now, before, earlier, step, tol, np.array([350]), cap).any()
    # gains that sped up (a plateau being left) are never stopped
    assert not _cannot_converge(np.array([2e-6]), np.array([1e-6]), np.array([1.1e-6]), step, tol,
                                np.array([350]), cap).any()
    # an unsteady slowdown (ratios 0.5 then 0.99) is not extrapolated
    assert not _cannot_converge(np.array([0.99e-6]), np.array([1e-6]), np.array([2e-6]), step, tol,
                                np.array([350]), cap).any()

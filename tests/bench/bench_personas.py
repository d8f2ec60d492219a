"""Benchmark of latent class fitting: k = 1..8, 20 starts each, 20 binary indicators.

A plain script (not collected by pytest): ``.venv/bin/python tests/bench/bench_personas.py
[n ...]``. It prints wall times and never fails on time; the target from issue 5 is under
two minutes for 20,000 pupils on two cores.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

from personas.encoding import encode_indicators
from personas.fitting import fit_latent_classes
from personas.selection import selection_table

N_INDICATORS = 20
TRUE_CLASSES = 5


def simulated_pupils(n: int, seed: int = 11) -> pd.DataFrame:
    """Binary indicators from five planted classes, 5 % of answers missing."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(TRUE_CLASSES, 5.0))
    profiles = rng.uniform(0.1, 0.9, size=(TRUE_CLASSES, N_INDICATORS))
    classes = rng.choice(TRUE_CLASSES, size=n, p=shares)
    answers = (rng.uniform(size=(n, N_INDICATORS)) < profiles[classes]).astype(float)
    answers[rng.uniform(size=answers.shape) < 0.05] = np.nan
    return pd.DataFrame(answers, columns=[f"item_{j + 1}" for j in range(N_INDICATORS)])


def bench(n: int) -> None:
    frame = simulated_pupils(n)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    indicators = encode_indicators(frame, categorical=list(frame.columns), levels={c: (0.0, 1.0) for c in frame.columns})
    fit = fit_latent_classes(indicators, k_max=8, n_init=20, n_jobs=2)
    elapsed = time.perf_counter() - start
    table = selection_table(fit)
    chosen = int(table.loc[table["term"] == "chosen_k", "estimate"].iloc[0])
    iterations = {k: s.iterations for k, s in fit.solutions.items()}
    print(f"load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f}")
    print(f"n={n}: k=1..8 x 20 starts on 2 cores: {elapsed:.1f} s wall; chosen k={chosen}; "
          f"final iterations per k {iterations}; replicated {[s.replicated for s in fit.solutions.values()]}")


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [20_000, 100_000]
    for size in sizes:
        bench(size)

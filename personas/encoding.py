"""Turn a frame of pupil indicators into the numeric matrix a latent class model reads.

Categorical indicators become 0-based integer codes (StepMix's ``categorical_nan``
convention) with NaN for a missing answer, so the likelihood uses every observed answer
of every pupil (full-information ML) instead of dropping incomplete pupils. Scale scores
stay as floats with NaN (StepMix's ``continuous_nan``, a diagonal Gaussian per class).
The levels of each categorical indicator are fixed here, once, so that a new wave
scored against a fitted model (where a rare answer may be absent) lines up code by code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class IndicatorMatrix:
    """Indicators of n pupils, ready for estimation.

    ``categorical`` is n x p with 0-based codes (NaN = missing); ``continuous`` is n x q
    (NaN = missing); ``levels[j]`` lists the original answer codes of categorical
    indicator j in code order.
    """

    categorical: np.ndarray
    continuous: np.ndarray
    categorical_names: tuple[str, ...]
    continuous_names: tuple[str, ...]
    levels: tuple[tuple[Any, ...], ...]

    @property
    def n_rows(self) -> int:
        return self.categorical.shape[0]

    @property
    def n_levels(self) -> tuple[int, ...]:
        return tuple(len(lv) for lv in self.levels)

    @property
    def max_levels(self) -> int:
        return max(self.n_levels, default=0)

    def take(self, rows: np.ndarray) -> IndicatorMatrix:
        """The same indicators for a subset (or bootstrap resample) of rows."""
        return IndicatorMatrix(
            self.categorical[rows],
            self.continuous[rows],
            self.categorical_names,
            self.continuous_names,
            self.levels,
        )

    def stepmix_input(self) -> np.ndarray:
        """Columns in the order of :meth:`stepmix_descriptor`: categorical, then continuous."""
        return np.hstack([self.categorical, self.continuous])

    def stepmix_descriptor(self) -> str | dict:
        """StepMix measurement descriptor: a string for one kind, a nested dict for both."""
        p, q = self.categorical.shape[1], self.continuous.shape[1]
        if q == 0:
            return "categorical_nan"
        if p == 0:
            return "continuous_nan"
        return {
            "categorical": {"model": "categorical_nan", "n_columns": p},
            "continuous": {"model": "continuous_nan", "n_columns": q},
        }


def encode_indicators(
    frame: pd.DataFrame,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    levels: Mapping[str, Sequence[Any]] | None = None,
) -> IndicatorMatrix:
    """Encode the named indicator columns of ``frame``.

    ``levels`` gives, per categorical column, its answer codes in order (from the
    codebook); a column without it takes its sorted observed values. An observed value
    outside the given levels raises: silently treating it as missing would change the
    likelihood. Messages name the column only, never a value.
    """
    categorical = list(categorical)
    continuous = list(continuous)
    if not categorical and not continuous:
        raise ValueError("no indicators given: name at least one categorical or continuous column")
    levels = dict(levels or {})
    n = len(frame)
    codes = np.empty((n, len(categorical)), dtype=float)
    column_levels: list[tuple[Any, ...]] = []
    for j, name in enumerate(categorical):
        column = frame[name]
        observed = column.notna().to_numpy()
        if name in levels:
            lv = tuple(levels[name])
        else:
            lv = tuple(sorted(pd.unique(column[observed])))
        if len(lv) < 2:
            raise ValueError(f"categorical indicator {name!r} has fewer than two levels")
        position = {level: i for i, level in enumerate(lv)}
        mapped = column[observed].map(position)
        if mapped.isna().any():
            raise ValueError(f"categorical indicator {name!r} holds values outside its declared levels")
        codes[:, j] = np.nan
        codes[observed, j] = mapped.to_numpy(dtype=float)
        column_levels.append(lv)
    scores = np.empty((n, len(continuous)), dtype=float)
    for j, name in enumerate(continuous):
        scores[:, j] = pd.to_numeric(frame[name], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    return IndicatorMatrix(codes, scores, tuple(categorical), tuple(continuous), tuple(column_levels))


def encode_like(frame: pd.DataFrame, template: IndicatorMatrix) -> IndicatorMatrix:
    """Encode new pupils (a pilot cohort, a new wave) with the indicators and levels of a fit."""
    levels = dict(zip(template.categorical_names, template.levels))
    return encode_indicators(frame, template.categorical_names, template.continuous_names, levels)

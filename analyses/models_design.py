"""The design matrix shared by every dropout model: outcome, terms, clusters.

A model specification is an outcome column (0/1), term columns and, for the clustered
models, a cluster column (the school). Terms are coded as R's ``model.matrix`` codes
them with treatment contrasts, so the coefficients line up with R's by name:

- numeric and boolean columns enter as they are (booleans as 0/1);
- a categorical column becomes one dummy per non-reference level, named
  ``variable:level``. The reference is the first category of a pandas ``Categorical``
  (so the caller controls it, as with R's ``relevel``), otherwise the first level in
  sorted order (R's ``factor`` default). Levels with no rows left after complete-case
  filtering are dropped rather than kept as all-zero columns.

The intercept is called ``(Intercept)``, R's name. Rows with a missing outcome, term or
cluster are left out (complete-case analysis, as ``glm``'s ``na.omit``); the number kept
is the model's ``n``. Error messages name columns, never values: the data are about
children, and a cluster or level value could identify one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class ModelData:
    """Complete-case arrays for one model specification.

    ``columns`` names the columns of ``X`` (intercept first); ``term_columns`` maps each
    term variable to its design columns (one, or a categorical's dummies), which the
    generalised VIF needs. ``groups`` holds cluster codes 0..G-1 (None without a cluster).
    """

    y: np.ndarray
    X: np.ndarray
    columns: tuple[str, ...]
    term_columns: dict[str, tuple[str, ...]]
    groups: np.ndarray | None
    outcome: str
    cluster: str | None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_clusters(self) -> int | None:
        return None if self.groups is None else int(self.groups.max()) + 1


def _is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    )


def _dummies(series: pd.Series, name: str) -> tuple[list[str], np.ndarray]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna().unique())
        levels = [level for level in series.cat.categories if level in present]
    else:
        levels = sorted(series.dropna().unique())
    if len(levels) < 2:
        raise ValueError(f"term {name!r} has fewer than two levels among the complete cases")
    names = [f"{name}:{level}" for level in levels[1:]]
    values = np.column_stack([(series == level).to_numpy(dtype=float) for level in levels[1:]])
    return names, values


def design_columns(complete: pd.DataFrame, terms: Sequence[str]
                   ) -> tuple[np.ndarray, list[str], dict[str, tuple[str, ...]]]:
    """The design matrix of ``terms`` on complete cases: intercept, then each term's columns.

    Returns ``(X, names, term_columns)``; shared by the logistic and the linear models so
    that both code a term (numeric as is, categorical as treatment dummies) the same way.
    """
    names: list[str] = [INTERCEPT]
    blocks: list[np.ndarray] = [np.ones((len(complete), 1))]
    term_columns: dict[str, tuple[str, ...]] = {}
    for term in terms:
        series = complete[term]
        if _is_categorical(series):
            dummy_names, values = _dummies(series, term)
        else:
            dummy_names, values = [term], series.to_numpy(dtype=float)[:, None]
        names += dummy_names
        blocks.append(values)
        term_columns[term] = tuple(dummy_names)
    return np.hstack(blocks), names, term_columns


def _outcome_01(series: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"outcome {name!r} must be numeric 0/1 or boolean")
    values = series.to_numpy(dtype=float)
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"outcome {name!r} must hold only 0 and 1")
    return values


def model_data(
    df: pd.DataFrame, outcome: str, terms: Sequence[str], cluster: str | None = None
) -> ModelData:
    """Code ``outcome ~ terms`` (plus the cluster) as arrays, complete cases only."""
    wanted = [outcome, *terms] + ([cluster] if cluster else [])
    absent = [c for c in wanted if c not in df.columns]
    if absent:
        raise KeyError(f"columns not in the data: {absent}")
    complete = df.loc[df[wanted].notna().all(axis=1), wanted]
    if complete.empty:
        raise ValueError("no complete cases for the model specification")
    y = _outcome_01(complete[outcome], outcome)
    X, names, term_columns = design_columns(complete, terms)
    groups = None
    if cluster:
        groups = pd.factorize(complete[cluster], sort=True)[0].astype(np.intp)
    return ModelData(
        y=y,
        X=X,
        columns=tuple(names),
        term_columns=term_columns,
        groups=groups,
        outcome=outcome,
        cluster=cluster,
    )

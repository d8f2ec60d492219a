"""Missing data in the dropout models: pattern, multiple imputation, Rubin's rules.

- ``missing_pattern``: the table of ``mice::md.pattern`` as tidy rows: each distinct
  pattern of observed (1) / missing (0) values with its row count, variables ordered by
  their number of missing values, patterns from complete downwards; plus a
  ``missing_total`` pattern holding each variable's number of missing values.
- ``impute_chained``: multiple imputation by chained equations (van Buuren and
  Groothuis-Oudshoorn 2011) in the way of ``mice``'s defaults: starting values drawn from
  the observed values, then ``iterations`` sweeps over the incomplete columns in their
  given order, each imputed from all other columns with

  * predictive mean matching (``mice.impute.pmm``, type-1 matching, 5 donors, a
    Bayesian draw of the regression parameters) for numeric columns,
  * logistic regression with a draw of the coefficients from their approximate posterior
    (``mice.impute.logreg``) for numeric 0/1 (and boolean) columns,
  * a multinomial logit and draws from its predicted probabilities
    (``mice.impute.polyreg``) for categorical (non-numeric) columns; with two levels this
    is a logistic model without the parameter draw.

  The imputation model is single-level: the school is not a predictor, which can shrink
  between-school variation in imputed values (mice's ``2l`` methods would keep it). Each
  imputation draws from its own stream spawned from ``seed`` (numpy ``SeedSequence``),
  so imputation i is the same whatever m is. R's RNG cannot be reproduced; the tests
  check the behaviour instead.
- ``rubin_pool``: Rubin's (1987) rules with the Barnard and Rubin (1999) small-sample
  degrees of freedom, exactly as ``mice::pool`` computes estimate, ubar, b, t, riv,
  lambda, df and fmi from the same per-imputation estimates and variances.
- ``multiple_imputation_models``: the dropout logistic model (cluster-robust CR1, or the
  random-intercept model) fitted on each imputed dataset and pooled, with the
  complete-case fit alongside as the sensitivity analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from analyses.models_design import model_data
from analyses.models_logistic import CORRECTION, METHOD, fit_logistic, logistic_rows, vcov_cr1
from analyses.models_random_intercept import fit_random_intercept, method_name, random_intercept_rows
from analyses.models_tidy import coefficient_rows, fit_frame, models_frame
from analyses.tidy import tidy_frame

PMM_DONORS = 5


def missing_pattern(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Missingness patterns as tidy rows (``pattern``, ``variable``; ``estimate`` 1/0, ``n``)."""
    observed = df[list(columns)].notna()
    order = sorted(columns, key=lambda c: (int((~observed[c]).sum()), list(columns).index(c)))
    observed = observed[order].astype(int)
    counts = observed.value_counts(sort=False).reset_index(name="count")
    counts = counts.sort_values(order, ascending=False, kind="stable").reset_index(drop=True)
    rows = []
    for i, pattern in counts.iterrows():
        missing_here = int(len(order) - pattern[order].sum())
        for variable in order:
            rows.append({"pattern": str(i + 1), "variable": variable, "estimate": int(pattern[variable]),
                         "n": int(pattern["count"]), "n_missing_in_pattern": missing_here,
                         "method": "missingness_pattern_md_pattern"})
    for variable in order:
        rows.append({"pattern": "missing_total", "variable": variable, "estimate": int((~df[variable].notna()).sum()),
                     "n": len(df), "method": "missing_count_per_variable"})
    return tidy_frame(rows, ("pattern", "variable"), ("n_missing_in_pattern",))


def rubin_pool(estimates: np.ndarray, variances: np.ndarray, dfcom: float) -> dict[str, np.ndarray]:
    """Pool m x k estimates and their variances (``mice::pool``, Barnard-Rubin df)."""
    estimates = np.asarray(estimates, dtype=float)
    variances = np.asarray(variances, dtype=float)
    m = estimates.shape[0]
    qbar = estimates.mean(axis=0)
    ubar = variances.mean(axis=0)
    b = estimates.var(axis=0, ddof=1)
    t = ubar + (1 + 1 / m) * b
    riv = (1 + 1 / m) * b / ubar
    lam = (1 + 1 / m) * b / t
    df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    with np.errstate(divide="ignore", invalid="ignore"):
        df_old = (m - 1) / lam**2
        df = np.where(b > 0, df_old * df_obs / (df_old + df_obs), dfcom)
    fmi = (riv + 2 / (df + 3)) / (riv + 1)
    return {"estimate": qbar, "ubar": ubar, "b": b, "t": t, "df": df, "riv": riv, "lambda": lam, "fmi": fmi,
            "std_error": np.sqrt(t), "m": m, "dfcom": dfcom}


def _kind(series: pd.Series) -> str:
    """``binary`` (numeric 0/1), ``numeric`` or ``categorical`` (any non-numeric column)."""
    if not pd.api.types.is_numeric_dtype(series):
        return "categorical"
    return "binary" if set(series.dropna().unique()) <= {0.0, 1.0} else "numeric"


def _predictors(frame: pd.DataFrame, target: str) -> np.ndarray:
    others = frame.drop(columns=[target])
    blocks = [np.ones((len(frame), 1))]
    for column in others.columns:
        series = others[column]
        if pd.api.types.is_numeric_dtype(series):
            blocks.append(series.to_numpy(dtype=float)[:, None])
        else:
            levels = sorted(series.unique())
            blocks.append(np.column_stack([(series == level).to_numpy(dtype=float) for level in levels[1:]]))
    return np.hstack(blocks)


def _draw_pmm(X: np.ndarray, y: np.ndarray, missing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Predictive mean matching with a Bayesian parameter draw (mice.impute.pmm)."""
    Xo, yo = X[~missing], y[~missing]
    xtx = Xo.T @ Xo
    xtx += np.diag(np.maximum(np.diag(xtx), 1e-12) * 1e-5)
    inverse = np.linalg.inv(xtx)
    beta = inverse @ Xo.T @ yo
    residual = yo - Xo @ beta
    sigma = np.sqrt(residual @ residual / rng.chisquare(max(len(yo) - X.shape[1], 1)))
    beta_star = beta + sigma * np.linalg.cholesky(inverse) @ rng.standard_normal(len(beta))
    fitted_obs, fitted_mis = Xo @ beta, X[missing] @ beta_star
    ties = _side_stream(rng)
    # The dense version drew a missing x observed matrix of tie-breaking noise here; the
    # stream skips it, so every later draw (the donor picks, the next column) is unchanged.
    _skip_doubles(rng, len(fitted_mis) * len(fitted_obs))
    donors = _nearest_donors(fitted_obs, fitted_mis, min(PMM_DONORS, len(yo)), ties)
    chosen = donors[np.arange(len(donors)), rng.integers(0, donors.shape[1], len(donors))]
    return yo[chosen]


def _side_stream(rng: np.random.Generator) -> np.random.Generator:
    """A generator for tie-breaking that leaves ``rng``'s own stream untouched."""
    bit = rng.bit_generator
    if hasattr(bit, "jumped"):
        return np.random.Generator(bit.jumped())
    return rng.spawn(1)[0]


def _skip_doubles(rng: np.random.Generator, count: int) -> None:
    """Advance ``rng`` as if ``count`` uniform doubles had been drawn, in constant memory."""
    bit = rng.bit_generator
    if count <= 0:
        return
    if hasattr(bit, "advance") and type(bit).__name__ in ("PCG64", "PCG64DXSM"):
        before = bit.state
        bit.advance(count)  # one 64-bit output per double; advance() drops the 32-bit buffer
        after = bit.state
        after["has_uint32"], after["uinteger"] = before["has_uint32"], before["uinteger"]
        bit.state = after
        return
    for start in range(0, count, 1 << 20):
        rng.random(min(1 << 20, count - start))


def _nearest_donors(fitted_obs: np.ndarray, fitted_mis: np.ndarray, k: int,
                    ties: np.random.Generator) -> np.ndarray:
    """The ``k`` observed rows whose fitted values are nearest each missing row's.

    Sort once (equal fitted values in random order, as mice's matcher shuffles before
    sorting), find each missing value's place with ``searchsorted``; the ``k`` nearest lie
    among the ``k`` sorted neighbours on either side. Time n log n, memory n x 2k.
    Returns row indices into ``fitted_obs``, nearest first.
    """
    n_obs = len(fitted_obs)
    order = np.lexsort((ties.permutation(n_obs), fitted_obs))
    ranked = fitted_obs[order]
    place = np.searchsorted(ranked, fitted_mis)
    window = place[:, None] + np.arange(-k, k)[None, :]
    inside = (window >= 0) & (window < n_obs)
    window = np.clip(window, 0, n_obs - 1)
    distance = np.where(inside, np.abs(ranked[window] - fitted_mis[:, None]), np.inf)
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
    return order[np.take_along_axis(window, nearest, axis=1)]


def _multinomial_fit(X: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline-category logit by Newton steps with a weak ridge (1e-4).

    Returns the p x (classes - 1) coefficients and the penalised information matrix
    (coefficients stacked class by class). The ridge keeps estimates finite under
    separation, the role mice's data augmentation plays.
    """
    n, p = X.shape
    k = classes - 1
    Y = (labels[:, None] == np.arange(1, classes)[None, :]).astype(float)
    B = np.zeros((p, k))
    ridge = 1e-4 * np.eye(p * k)
    for _ in range(100):
        P = special.softmax(np.column_stack([np.zeros(n), X @ B]), axis=1)[:, 1:]
        gradient = (X.T @ (Y - P)).T.ravel() - ridge @ B.T.ravel()
        information = ridge.copy()
        for a in range(k):
            for b in range(k):
                w = P[:, a] * ((a == b) - P[:, b])
                information[a * p:(a + 1) * p, b * p:(b + 1) * p] += (X * w[:, None]).T @ X
        step = np.linalg.solve(information, gradient)
        B = B + step.reshape(k, p).T
        if np.max(np.abs(step)) < 1e-8:
            break
    return B, information


def _draw_logreg(X: np.ndarray, y: np.ndarray, missing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Logistic regression with a posterior draw of the coefficients (mice.impute.logreg)."""
    beta, information = _multinomial_fit(X[~missing], y[~missing].astype(int), 2)
    beta_star = beta[:, 0] + np.linalg.cholesky(np.linalg.inv(information)) @ rng.standard_normal(len(beta))
    return (rng.uniform(size=missing.sum()) < special.expit(X[missing] @ beta_star)).astype(float)


def _draw_polyreg(X: np.ndarray, y: np.ndarray, missing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multinomial logit and draws from its predicted probabilities (mice.impute.polyreg)."""
    classes, labels = np.unique(y[~missing], return_inverse=True)
    B, _ = _multinomial_fit(X[~missing], labels, len(classes))
    eta = X[missing] @ B
    probabilities = special.softmax(np.column_stack([np.zeros(len(eta)), eta]), axis=1)
    picks = (rng.uniform(size=(len(probabilities), 1)) > probabilities.cumsum(axis=1)).sum(axis=1)
    return classes[np.minimum(picks, len(classes) - 1)]


def _impute_once(frame: pd.DataFrame, missing: dict[str, np.ndarray], kinds: dict[str, str],
                 iterations: int, rng: np.random.Generator) -> pd.DataFrame:
    work = frame.copy()
    for column, mask in missing.items():
        observed = work.loc[~mask, column].to_numpy()
        work.loc[mask, column] = rng.choice(observed, size=int(mask.sum()))
    for _ in range(iterations):
        for column, mask in missing.items():
            X = _predictors(work, column)
            kind = kinds[column]
            if kind == "numeric":
                draws = _draw_pmm(X, work[column].to_numpy(dtype=float), mask, rng)
            elif kind == "binary":
                draws = _draw_logreg(X, work[column].to_numpy(dtype=float), mask, rng)
            else:
                draws = _draw_polyreg(X, work[column].astype(str).to_numpy(), mask, rng)
            work.loc[mask, column] = draws
    return work


def impute_chained(
    df: pd.DataFrame, columns: Sequence[str], m: int = 20, seed: int = 20240501, iterations: int = 10
) -> list[pd.DataFrame]:
    """``m`` completed copies of ``df[columns]`` by chained equations (see module notes)."""
    frame = df[list(columns)].copy()
    for column in frame.columns:
        if pd.api.types.is_bool_dtype(frame[column]) or str(frame[column].dtype) == "boolean":
            frame[column] = frame[column].astype("Float64").astype(float)
        elif pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype(float)
        else:
            frame[column] = frame[column].astype(object)
    missing = {c: frame[c].isna().to_numpy() for c in frame.columns if frame[c].isna().any()}
    for column, mask in missing.items():
        if mask.all():
            raise ValueError(f"column {column!r} has no observed values to impute from")
    kinds = {c: _kind(frame[c]) for c in missing}
    streams = np.random.SeedSequence(seed).spawn(m)
    completed = [_impute_once(frame, missing, kinds, iterations, np.random.default_rng(s)) for s in streams]
    # A Categorical keeps its categories (their order says the model's reference level).
    categorical = {c: df[c].dtype.categories for c in columns if isinstance(df[c].dtype, pd.CategoricalDtype)}
    for done in completed:
        for column, categories in categorical.items():
            done[column] = pd.Categorical(done[column], categories=categories)
    return completed


def multiple_imputation_models(
    df: pd.DataFrame,
    outcome: str,
    terms: Sequence[str],
    cluster: str,
    model: str = "dropout_main",
    m: int = 20,
    seed: int = 20240501,
    iterations: int = 10,
    estimator: str = "CR1",
    auxiliary: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pooled MI fit and the complete-case fit of ``outcome ~ terms`` by school.

    ``estimator`` is ``CR1`` (ML logistic, cluster-robust CR1) or ``glmm`` (random
    intercept, nAGQ 15; fixed effects pooled). Outcome, terms and ``auxiliary`` columns
    enter the imputation model; rows without a cluster are left out. The complete-case
    degrees of freedom n - k serve as mice's ``dfcom``. Returns ``(models, fit)``: the
    coefficient rows (pooled, then complete case) and per-term ``riv``/``lambda``/``fmi``
    rows plus m and the seed.
    """
    terms = list(terms)
    clustered = df.loc[df[cluster].notna()]
    columns = [outcome, *terms, *[a for a in auxiliary if a not in terms]]
    completed = impute_chained(clustered, columns, m=m, seed=seed, iterations=iterations)
    estimates, variances = [], []
    for frame in completed:
        frame[cluster] = clustered[cluster].to_numpy()
        data = model_data(frame, outcome, terms, cluster)
        if estimator == "CR1":
            fit = fit_logistic(data)
            params, vcov = fit.params, vcov_cr1(data, fit)
        elif estimator == "glmm":
            ri = fit_random_intercept(data)
            params, vcov = ri.params, ri.vcov[:-1, :-1]
        else:
            raise ValueError(f"unknown estimator {estimator!r}: use 'CR1' or 'glmm'")
        estimates.append(params)
        variances.append(np.diag(vcov))
    pooled = rubin_pool(np.array(estimates), np.array(variances), dfcom=data.n - data.X.shape[1])
    base = METHOD["CR1"] if estimator == "CR1" else method_name(15)
    correction = (CORRECTION["CR1"] if estimator == "CR1" else "none") + (
        f"; Rubin's rules over m={m} chained-equation imputations (seed {seed})"
    )
    pooled_rows = coefficient_rows(model, data.columns, pooled["estimate"], pooled["std_error"], data.n,
                                   f"{base}_mice_pooled", correction, df=pooled["df"], t_method="t_barnard_rubin")
    complete = model_data(clustered, outcome, terms, cluster)
    if estimator == "CR1":
        cc_rows = logistic_rows(model, complete, fit_logistic(complete), "CR1")
    else:
        cc_rows = [r for r in random_intercept_rows(model, complete, fit_random_intercept(complete)) if r["effect"] == "fixed"]
    cc_rows = [{**r, "method": f"{r['method']}_complete_case"} for r in cc_rows]
    fit_rows = []
    for i, term in enumerate(data.columns):
        for measure in ("riv", "lambda", "fmi"):
            fit_rows.append({"model": model, "estimator": f"{base}_mice_pooled", "measure": measure, "term": term,
                             "estimate": pooled[measure][i], "df": pooled["df"][i], "n": data.n,
                             "method": "rubin_rules_barnard_rubin"})
    fit_rows.append({"model": model, "estimator": f"{base}_mice_pooled", "measure": "imputations",
                     "estimate": m, "n": data.n, "method": "chained_equations_pmm_logreg_polyreg",
                     "note": f"seed {seed}, {iterations} iterations, single-level imputation model"})
    fit_rows.append({"model": model, "estimator": f"{base}_complete_case", "measure": "n", "estimate": complete.n,
                     "n": complete.n, "method": "complete_cases"})
    return models_frame(pooled_rows + cc_rows), fit_frame(fit_rows)

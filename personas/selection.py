"""Choose the number of latent classes: information criteria, entropy and a stated rule.

The rule: the lowest BIC among the solutions whose best log-likelihood was replicated
(a solution found once may be a local maximum) and whose smallest class holds at least
``min_class_share`` of the pupils (a persona of a handful of pupils is neither stable
nor publishable in small municipalities). BIC is the criterion that picks the right k
most consistently in simulation studies of latent class models (Nylund, Asparouhov &
Muthen 2007, Structural Equation Modeling 14(4)); AIC tends to over-extract, aBIC and ICL
are reported beside it for the researcher's judgement. The bootstrap likelihood-ratio
test (McLachlan 1987; the BLRT of the same study) is optional because it refits both
models on every bootstrap sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from analyses.threads import one_blas_thread
from analyses.tidy import tidy_frame
from personas.fitting import LcaFit, fit_latent_classes, posterior
from personas.simulate import draw_indicators

#: A class smaller than this share of pupils does not qualify under the selection rule.
MIN_CLASS_SHARE = 0.05
ID_COLUMNS = ["analysis", "n_classes", "term"]
EXTRA_COLUMNS = ["chosen", "note", "variable", "label_et", "label_en"]
#: Why an indicator is left out of the fit (``note`` of an ``indicator_dropped`` row).
DROP_REASONS = {
    "entirely_missing": "entirely missing: no pupil of the wave has an answer",
    "constant": "constant: every answered pupil has the same value, so it carries no information on classes",
    "not_binary": "holds values other than 0 and 1",
}
#: Fewer usable indicators than this: no latent class model is fitted.
MIN_INDICATORS = 2
CRITERION_METHODS = {
    "loglik": "maximised log-likelihood (best of the replicated final EM runs)",
    "n_parameters": "free parameters: (k - 1) + k * sum(levels - 1) + 2 k q",
    "AIC": "AIC = -2 LL + 2 p",
    "BIC": "BIC = -2 LL + p ln n",
    "aBIC": "sample-size adjusted BIC (Sclove 1987) = -2 LL + p ln((n + 2) / 24)",
    "CAIC": "consistent AIC (Bozdogan 1987) = -2 LL + p (ln n + 1)",
    "ICL": "ICL-BIC (Biernacki, Celeux & Govaert 2000) = BIC + 2 EN, EN = -sum_i sum_c p_ic ln p_ic",
    "entropy_r2": "entropy R2 (Ramaswamy et al. 1993) = 1 - EN / (n ln k)",
    "smallest_class_share": "smallest estimated class share (model class weights)",
    "n_at_best": "final EM runs that reached the best log-likelihood to 0.01",
    "replicated": "1 if the best log-likelihood was reached by at least two final runs",
}


def classification_entropy(probabilities: np.ndarray) -> float:
    """EN = -sum_i sum_c p_ic ln p_ic, with StepMix's clipping at 1e-15."""
    clipped = np.clip(probabilities, 1e-15, 1 - 1e-15)
    return float(-(clipped * np.log(clipped)).sum())


def entropy_r2(probabilities: np.ndarray) -> float:
    """1 - EN / (n ln k): 1 for perfectly separated classes; undefined for k = 1."""
    n, k = probabilities.shape
    if k == 1:
        return float("nan")
    return 1.0 - classification_entropy(probabilities) / (n * np.log(k))


def information_criteria(loglik: float, n_parameters: int, n: int, entropy: float) -> dict[str, float]:
    """The criteria of :data:`CRITERION_METHODS`, all on the -2 LL scale (lower is better)."""
    deviance = -2.0 * loglik
    bic = deviance + n_parameters * np.log(n)
    return {
        "AIC": deviance + 2 * n_parameters,
        "BIC": bic,
        "aBIC": deviance + n_parameters * np.log((n + 2) / 24),
        "CAIC": deviance + n_parameters * (np.log(n) + 1),
        "ICL": bic + 2 * entropy,
    }


def choose_k(summary: pd.DataFrame, min_class_share: float = MIN_CLASS_SHARE) -> tuple[int, str]:
    """Apply the selection rule to a wide per-k summary; return k and the reason in words."""
    eligible = summary[summary["replicated"] & summary["converged"] & (summary["smallest_class_share"] >= min_class_share)]
    if eligible.empty:
        k = int(summary.loc[summary["BIC"].idxmin(), "n_classes"])
        return k, (
            f"no solution had a replicated best log-likelihood and a smallest class of at least "
            f"{min_class_share:.0%}; k = {k} has the lowest BIC overall and must be judged by the researcher"
        )
    k = int(eligible.loc[eligible["BIC"].idxmin(), "n_classes"])
    excluded = sorted(set(summary["n_classes"]) - set(eligible["n_classes"]))
    reason = (
        f"k = {k} has the lowest BIC among solutions whose best log-likelihood was replicated "
        f"by at least two final EM runs, that converged, and whose smallest class holds at least "
        f"{min_class_share:.0%} of pupils"
    )
    if excluded:
        reason += f"; not eligible: k = {', '.join(map(str, excluded))}"
    return k, reason


def summarise(fit: LcaFit) -> pd.DataFrame:
    """One wide row per k with every criterion (the input of :func:`choose_k`)."""
    n = fit.indicators.n_rows
    records = []
    for k, solution in fit.solutions.items():
        probabilities = posterior(solution, fit.indicators)
        entropy = classification_entropy(probabilities)
        records.append(
            {
                "n_classes": k,
                "loglik": solution.loglik,
                "n_parameters": solution.n_parameters,
                **information_criteria(solution.loglik, solution.n_parameters, n, entropy),
                "entropy_r2": entropy_r2(probabilities),
                "smallest_class_share": float(solution.weights.min()),
                "n_at_best": solution.n_at_best,
                "replicated": solution.replicated,
                "converged": solution.converged,
            }
        )
    return pd.DataFrame.from_records(records)


@one_blas_thread
def bootstrap_lrt(
    fit: LcaFit, n_classes: int, n_draws: int, seed: int = 1, n_init: int = 10, n_final: int = 2, n_jobs: int = -1
) -> dict[str, float]:
    """Parametric bootstrap LRT of k vs k - 1 classes.

    Samples are drawn from the fitted k - 1 class solution, both models are refitted on
    each, and p = (1 + #{LR_b >= LR}) / (n_draws + 1).
    """
    null = fit.solutions[n_classes - 1]
    observed = 2.0 * (fit.solutions[n_classes].loglik - null.loglik)
    rngs = [np.random.default_rng([seed, n_classes, b]) for b in range(n_draws)]

    @one_blas_thread
    def one(rng: np.random.Generator) -> float:
        sample = draw_indicators(null, fit.indicators, rng)
        refit = fit_latent_classes(sample, k_min=n_classes - 1, k_max=n_classes, n_init=n_init, n_final=n_final,
                                   seed=int(rng.integers(2**31 - 1)), n_jobs=1)
        return 2.0 * (refit.solutions[n_classes].loglik - refit.solutions[n_classes - 1].loglik)

    draws = np.array(Parallel(n_jobs=n_jobs)(delayed(one)(rng) for rng in rngs))
    return {"statistic": observed, "p_value": (1 + np.sum(draws >= observed)) / (n_draws + 1), "n_draws": n_draws}


def selection_table(
    fit: LcaFit, min_class_share: float = MIN_CLASS_SHARE, blrt_draws: int = 0, seed: int = 1, n_jobs: int = -1
) -> pd.DataFrame:
    """Tidy model-selection table for ``results.persona_selection``.

    One row per k and criterion (``term``), plus a ``chosen_k`` row whose estimate is
    the chosen k and whose ``note`` gives the reason; ``chosen`` marks the chosen k's
    rows. With ``blrt_draws > 0`` a ``BLRT`` row per k >= 2 holds the likelihood ratio
    (statistic) and its bootstrap p-value.
    """
    summary = summarise(fit)
    k_chosen, reason = choose_k(summary, min_class_share)
    n = fit.indicators.n_rows
    rows = []
    for record in summary.to_dict("records"):
        k = int(record["n_classes"])
        for term, method in CRITERION_METHODS.items():
            rows.append({"analysis": "lca_selection", "n_classes": k, "term": term, "estimate": float(record[term]),
                         "n": n, "chosen": k == k_chosen, "note": pd.NA, "method": method,
                         "ci_method": pd.NA, "correction": pd.NA})
        if blrt_draws and k - 1 in fit.solutions:
            test = bootstrap_lrt(fit, k, blrt_draws, seed=seed, n_jobs=n_jobs)
            rows.append({"analysis": "lca_selection", "n_classes": k, "term": "BLRT", "statistic": test["statistic"],
                         "p_value": test["p_value"], "n": n, "chosen": k == k_chosen,
                         "note": f"{k} vs {k - 1} classes, {blrt_draws} parametric bootstrap samples",
                         "method": "bootstrap likelihood-ratio test (McLachlan 1987), LR = 2 (LL_k - LL_k-1)",
                         "ci_method": pd.NA, "correction": pd.NA})
    rows.append({"analysis": "lca_selection", "n_classes": k_chosen, "term": "chosen_k", "estimate": float(k_chosen),
                 "n": n, "chosen": True, "note": reason,
                 "method": f"lowest BIC among replicated, converged solutions with smallest class >= {min_class_share:.0%}",
                 "ci_method": pd.NA, "correction": pd.NA})
    return tidy_frame(rows, ID_COLUMNS, EXTRA_COLUMNS)


def usable_indicators(frame: pd.DataFrame, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Split 0/1 indicator columns into those a latent class model can use and those it cannot.

    An indicator that is entirely missing (or absent from ``frame``) or constant among the
    answered rows says nothing about classes: it would only add parameters to the BIC (and
    StepMix fails on a column without answers). A column with values other than 0 and 1 is
    not a 0/1 indicator. Returns (used names, {dropped name: reason code of
    :data:`DROP_REASONS`}), both in the order of ``names``. Only counts are inspected.
    """
    used, dropped = [], {}
    for name in names:
        values = pd.to_numeric(frame[name], errors="coerce") if name in frame.columns else pd.Series(dtype=float)
        observed = values.dropna()
        if observed.empty:
            dropped[name] = "entirely_missing"
        elif not observed.isin([0, 1]).all():
            dropped[name] = "not_binary"
        elif observed.nunique() < 2:
            dropped[name] = "constant"
        else:
            used.append(name)
    return used, dropped


def indicator_rows(
    frame: pd.DataFrame,
    used: list[str],
    dropped: dict[str, str],
    labels: dict[str, dict[str, str]],
    order: list[str],
) -> pd.DataFrame:
    """``indicator_used`` and ``indicator_dropped`` rows of ``results.persona_selection``.

    One row per planned indicator in ``order``: ``variable`` its name, ``label_et`` and
    ``label_en``, ``n`` the pupils who answered it, ``note`` the reason for a dropped one.
    """
    rows = []
    for name in order:
        answered = int(pd.to_numeric(frame[name], errors="coerce").notna().sum()) if name in frame.columns else 0
        label = labels.get(name, {})
        rows.append({"analysis": "lca_indicators", "n_classes": pd.NA,
                     "term": "indicator_dropped" if name in dropped else "indicator_used",
                     "n": answered, "chosen": name not in dropped,
                     "note": DROP_REASONS[dropped[name]] if name in dropped else pd.NA,
                     "variable": name, "label_et": label.get("et", name), "label_en": label.get("en", name),
                     "method": "indicator screening before the fit: an indicator entirely missing, constant or "
                               "not 0/1 is left out (it is not counted in the BIC)",
                     "ci_method": pd.NA, "correction": pd.NA})
    return tidy_frame(rows, ID_COLUMNS, EXTRA_COLUMNS)


def no_fit_rows(reason: str, n_indicators: int, n: int) -> pd.DataFrame:
    """The ``no_fit`` row of ``results.persona_selection``: why no model was fitted.

    ``note`` holds the reason code (``too_few_indicators``, ``no_pupils``,
    ``not_planned``; reports turn it into a sentence), ``estimate`` the number of usable
    indicators, ``n`` the pupils of the wave.
    """
    texts = {"too_few_indicators": f"fewer than {MIN_INDICATORS} usable indicators: no latent class model was fitted",
             "no_pupils": "no pupils in the wave: no latent class model was fitted",
             "not_planned": "the study's analysis plan has no personas part"}
    return tidy_frame([{"analysis": "lca_selection", "n_classes": pd.NA, "term": "no_fit",
                        "estimate": float(n_indicators), "n": n, "chosen": False, "note": reason,
                        "method": "no fit: " + texts[reason],
                        "ci_method": pd.NA, "correction": pd.NA}], ID_COLUMNS, EXTRA_COLUMNS)

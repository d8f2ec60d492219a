"""Bivariate associations of candidate factors with a binary or ordinal outcome.

One call, :func:`associations`, tests every candidate factor against the outcome and
adjusts the family's p-values with Benjamini-Hochberg. The test follows the factor's
and the outcome's measurement level:

============  ==================================  ======================================
factor        binary outcome                      ordinal outcome (risk level)
============  ==================================  ======================================
binary        2x2 table: Pearson chi-square, or   Mann-Whitney U of the outcome between
              Fisher's exact test; odds ratio     the factor's two groups; rank-biserial
nominal       r x 2 table: Pearson chi-square,    r x k table: as for a binary outcome;
              or Fisher Monte-Carlo; Cramér's V   Cramér's V
ordinal       Mann-Whitney U of the factor        Kendall's tau-b (normal approximation
continuous    between outcome groups;             with tie-corrected variance,
              rank-biserial correlation           ``cor.test(method = "kendall",
                                                  exact = FALSE)``)
============  ==================================  ======================================

Contingency tables: the expected-count rule is "any expected count below 5 switches
from the chi-square approximation to Fisher's exact test". A 2x2 table then gets the
exact conditional test (``fisher.test``); a larger table gets a Monte-Carlo p-value
from ``replicates`` tables drawn with the observed margins and a fixed seed, computed
like R's ``fisher.test(simulate.p.value = TRUE, B = replicates)``: same statistic, same
tolerance, same (1 + hits) / (B + 1), but not the same random stream, so it agrees with
R only within Monte-Carlo error. The chi-square test never uses Yates' continuity
correction (``chisq.test(correct = FALSE)``): Fisher's test covers the small tables.

Effect sizes, each named in ``effect_size_name``; the headline sits in ``estimate``:

- binary x binary: odds ratio of the outcome's upper level, factor upper vs lower
  level, with a Wald interval on the log odds ratio (the interval of a logistic
  regression's ``confint.default``); :func:`odds_ratio_2x2` also gives the conditional
  MLE with its exact interval (``fisher.test``).
- tables otherwise: bias-corrected Cramér's V (Bergsma 2013, effectsize's
  ``cramers_v(adjust = TRUE)``) is the headline, because the raw V is biased upward in
  small samples; the raw V is kept in ``cramers_v_raw``.
- Mann-Whitney: rank-biserial correlation 2U / (n1 n2) - 1, the probability that the
  upper group is higher minus the probability that it is lower (effectsize's
  ``rank_biserial``). The test is the normal approximation with tie and continuity
  correction, ``wilcox.test(exact = FALSE, correct = TRUE)``.
- Kendall: tau-b itself.

Each factor is analysed on the pupils with both values present (``n`` per row).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.stats import contingency

from analyses import rank_tests
from analyses.descriptives import as_numeric
from analyses.methods import WARNINGS
from analyses.multiple_testing import BENJAMINI_HOCHBERG, benjamini_hochberg, bonferroni, holm
from analyses.tidy import tidy_frame

FACTOR_TYPES = ("binary", "nominal", "ordinal", "continuous")
OUTCOME_TYPES = ("binary", "ordinal")
#: Monte-Carlo replicates for Fisher's test on tables larger than 2x2; SE of p is at
#: most 0.5 / sqrt(B) = 0.0035 and about 0.0015 near p = 0.05.
DEFAULT_REPLICATES = 20_000
DEFAULT_SEED = 20240401
EXPECTED_COUNT_MINIMUM = 5.0
ZERO_CELL = WARNINGS["zero_cell"].code
#: Test name of a factor or outcome with fewer than 2 observed levels among the pupils
#: with both values (common in a small municipality); it stays out of the BH family.
NOT_TESTABLE = "not_testable_fewer_than_2_levels"

_EXTRA_COLUMNS = [
    "effect_size_name",
    "test",
    "df",
    "p_adjusted",
    "p_holm",
    "p_bonferroni",
    "cramers_v_raw",
    "cramers_v_corrected",
    "min_expected",
    "warning",
]


def cramers_v(table: np.ndarray) -> tuple[float, float]:
    """Raw and bias-corrected (Bergsma 2013) Cramér's V of a contingency table.

    Both come from the Pearson chi-square without continuity correction. The corrected
    V shrinks phi^2 by its expectation under independence and the table dimensions
    accordingly, as in effectsize's ``cramers_v(adjust = TRUE)``.
    """
    table = np.asarray(table, dtype=float)
    n = table.sum()
    rows, cols = table.shape
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    phi2 = chi2 / n
    raw = np.sqrt(phi2 / (min(rows, cols) - 1))
    phi2_corrected = max(0.0, phi2 - (rows - 1) * (cols - 1) / (n - 1))
    rows_corrected = rows - (rows - 1) ** 2 / (n - 1)
    cols_corrected = cols - (cols - 1) ** 2 / (n - 1)
    corrected = np.sqrt(phi2_corrected / (min(rows_corrected, cols_corrected) - 1))
    return float(raw), float(corrected)


def fisher_monte_carlo_p(table: np.ndarray, replicates: int, seed: int) -> float:
    """Monte-Carlo p-value of Fisher's exact test for an r x c table.

    Tables are drawn with the observed margins (Patefield's algorithm, scipy's
    ``random_table``); the statistic is the table's log probability up to a constant,
    -sum(log x!), and a drawn table counts when it is at most as probable as the
    observed one, with R's relative tolerance 64 machine epsilons. p = (1 + hits) /
    (B + 1), as ``fisher.test(simulate.p.value = TRUE)``.
    """
    table = np.asarray(table, dtype=np.int64)
    rng = np.random.default_rng(seed)
    drawn = stats.random_table(table.sum(axis=1), table.sum(axis=0)).rvs(size=replicates, random_state=rng)
    observed = -special.gammaln(table + 1.0).sum()
    simulated = -special.gammaln(drawn + 1.0).sum(axis=(1, 2))
    almost_one = 1 + 64 * np.finfo(float).eps
    hits = int(np.sum(simulated <= observed / almost_one))
    return (1 + hits) / (replicates + 1)


def table_test(
    table: np.ndarray, replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED, fisher: bool = False,
) -> dict:
    """Test independence in a contingency table with the expected-count rule.

    ``fisher=True`` requests Fisher's exact test whatever the expected counts: exact for
    2 x 2 and, where the enumeration is feasible, for r x c tables
    (:func:`analyses.contingency.fisher_test`), otherwise its Monte Carlo p-value.

    Returns the test's name, p-value and the smallest expected count; the chi-square
    statistic and its df only when the chi-square test is the one used (Fisher's
    test has no statistic of that kind, and a chi-square beside its p would mislead).
    """
    table = np.asarray(table, dtype=np.int64)
    chi2, chi2_p, df, expected = stats.chi2_contingency(table, correction=False)
    min_expected = float(expected.min())
    if fisher:
        from analyses.contingency import fisher_test

        result = fisher_test(table, replicates=replicates, seed=seed)
        row = {"test": result["method"], "p_value": result["p_value"], "min_expected": min_expected}
        if result["method"] == "fisher_monte_carlo":
            row["method_detail"] = f"fisher_monte_carlo_B{replicates}_seed{seed}"
        return row
    if min_expected >= EXPECTED_COUNT_MINIMUM:
        return {
            "test": "pearson_chisq",
            "statistic": float(chi2),
            "df": float(df),
            "p_value": float(chi2_p),
            "min_expected": min_expected,
        }
    if table.shape == (2, 2):
        p = stats.fisher_exact(table, alternative="two-sided").pvalue
        return {"test": "fisher_exact", "p_value": float(p), "min_expected": min_expected}
    p = fisher_monte_carlo_p(table, replicates, seed)
    return {"test": "fisher_monte_carlo", "method_detail": f"fisher_monte_carlo_B{replicates}_seed{seed}",
            "p_value": p, "min_expected": min_expected}


def _wald_odds_ratio(table: np.ndarray, conf_level: float) -> tuple[float, float, float, float]:
    """Odds ratio, SE of its log and Wald interval; table [[hi_pos, hi_neg], [lo_pos, lo_neg]]."""
    table = np.asarray(table, dtype=float)
    with np.errstate(divide="ignore"):
        log_or = np.log(table[0, 0]) + np.log(table[1, 1]) - np.log(table[0, 1]) - np.log(table[1, 0])
        se = float(np.sqrt(np.sum(1.0 / table)))
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    with np.errstate(invalid="ignore"):
        return float(np.exp(log_or)), se, float(np.exp(log_or - z * se)), float(np.exp(log_or + z * se))


def _binary_levels(values: pd.Series, role: str) -> tuple:
    """The two sorted levels of a binary column (lower, upper); other counts are errors."""
    levels = sorted(values.dropna().unique().tolist())
    if len(levels) != 2:
        raise ValueError(f"{role} must have exactly 2 observed levels, found {len(levels)}")
    return levels[0], levels[1]


def _ordered_codes(values: pd.Series, column: str) -> pd.Series:
    """Numeric codes of an ordinal column: an ordered categorical's codes, else the numbers."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        if not values.cat.ordered:
            raise ValueError("an ordinal categorical column must be ordered")
        codes = values.cat.codes.astype(float)
        return codes.where(codes >= 0)
    return as_numeric(values, column)


def _two_by_two(pair: pd.DataFrame, factor: str, outcome: str) -> np.ndarray:
    """2x2 counts as [[upper factor & upper outcome, upper & lower], [lower & upper, lower & lower]]."""
    f_low, f_high = _binary_levels(pair[factor], "a binary factor")
    o_low, o_high = _binary_levels(pair[outcome], "a binary outcome")
    return np.array(
        [
            [np.sum((pair[factor] == f) & (pair[outcome] == o)) for o in (o_high, o_low)]
            for f in (f_high, f_low)
        ]
    )


def odds_ratio_2x2(frame: pd.DataFrame, factor: str, outcome: str, conf_level: float = 0.95) -> pd.DataFrame:
    """Odds ratio of the outcome's upper level for the factor's upper vs lower level.

    Two rows: the sample (unconditional ML) odds ratio with a Wald interval on the log
    scale (``std_error`` is that of the log odds ratio; equal to a logistic regression
    of the outcome on the factor with ``confint.default``), and the conditional MLE
    with the exact conditional interval, as R's ``fisher.test(table)$estimate`` and
    ``$conf.int``. No 0.5 is added to empty cells: with a zero cell the sample odds
    ratio is 0 or infinite and its Wald interval undefined, so the Wald row keeps the
    estimate (NaN when infinite, or 0/0), no interval and the warning ``zero_cell``; the
    conditional row's exact interval (0 or infinity at one end) is the one to read.
    """
    pair = frame[[factor, outcome]].dropna()
    table = _two_by_two(pair, factor, outcome)
    odds_ratio, se, low, high = _wald_odds_ratio(table, conf_level)
    conditional = contingency.odds_ratio(table, kind="conditional")
    c_low, c_high = conditional.confidence_interval(confidence_level=conf_level)
    common = {"outcome": outcome, "factor": factor, "n": int(table.sum())}
    zero = bool((table == 0).any())
    with np.errstate(divide="ignore"):
        log_or = np.log(odds_ratio) if np.isfinite(odds_ratio) else np.inf
    rows = [
        {
            **common,
            "estimate": odds_ratio if np.isfinite(odds_ratio) else np.nan,
            "std_error": se if np.isfinite(se) else np.nan,
            "conf_low": np.nan if zero else low,
            "conf_high": np.nan if zero else high,
            "log_odds_ratio": log_or if np.isfinite(log_or) else np.nan,
            "method": "odds_ratio_sample",
            "ci_method": "wald_log_odds_ratio",
            "correction": "none",
            "warning": ZERO_CELL if zero else None,
        },
        {
            **common,
            "estimate": float(conditional.statistic),
            "conf_low": float(c_low),
            "conf_high": float(c_high),
            "log_odds_ratio": np.log(conditional.statistic),
            "method": "odds_ratio_conditional_mle",
            "ci_method": "exact_conditional",
            "correction": "none",
        },
    ]
    return tidy_frame(rows, ["outcome", "factor"], ["log_odds_ratio", "warning"])


def mann_whitney(upper: np.ndarray, lower: np.ndarray) -> dict:
    """Mann-Whitney U of ``upper`` vs ``lower`` with the rank-biserial correlation.

    Normal approximation with tie-corrected variance and continuity correction, as
    ``wilcox.test(upper, lower, exact = FALSE, correct = TRUE)``; U is R's W
    (``analyses.rank_tests.mann_whitney``, the one implementation).
    """
    result = rank_tests.mann_whitney(upper, lower, exact=False)
    return {key: result[key] for key in ("statistic", "p_value", "rank_biserial")}


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> dict:
    """Kendall's tau-b with R's normal approximation (``cor.test(method = "kendall", exact = FALSE)``).

    The z statistic uses the tie-corrected variance of S (Kendall 1970) and no
    continuity correction, R's default.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(x)
    tau = float(stats.kendalltau(x, y, variant="b").statistic)
    x_ties = np.unique(x, return_counts=True)[1]
    y_ties = np.unique(y, return_counts=True)[1]
    t0 = n * (n - 1) / 2
    t1 = np.sum(x_ties * (x_ties - 1)) / 2
    t2 = np.sum(y_ties * (y_ties - 1)) / 2
    s = tau * np.sqrt((t0 - t1) * (t0 - t2))
    v0 = n * (n - 1) * (2 * n + 5)
    vt = np.sum(x_ties * (x_ties - 1) * (2 * x_ties + 5))
    vu = np.sum(y_ties * (y_ties - 1) * (2 * y_ties + 5))
    v1 = np.sum(x_ties * (x_ties - 1)) * np.sum(y_ties * (y_ties - 1))
    v2 = np.sum(x_ties * (x_ties - 1) * (x_ties - 2)) * np.sum(y_ties * (y_ties - 1) * (y_ties - 2))
    var_s = (v0 - vt - vu) / 18 + v1 / (2 * n * (n - 1)) + v2 / (9 * n * (n - 1) * (n - 2))
    z = s / np.sqrt(var_s)
    return {"tau_b": tau, "statistic": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))}


def _table_row(
    pair: pd.DataFrame, factor: str, outcome: str, replicates: int, seed: int, fisher: bool = False,
    conf_level: float = 0.95,
) -> dict:
    from analyses.contingency import cramers_v as cramers_v_interval

    table = pd.crosstab(pair[factor], pair[outcome]).to_numpy()
    test = table_test(table, replicates, seed, fisher)
    raw, corrected = cramers_v(table)
    interval = cramers_v_interval(table, conf_level, adjust=True, alternative="two.sided")
    return {
        **test,
        "estimate": corrected,
        "conf_low": interval.get("conf_low", np.nan),
        "conf_high": interval.get("conf_high", np.nan),
        "effect_size_name": "cramers_v_bias_corrected_bergsma",
        "cramers_v_raw": raw,
        "cramers_v_corrected": corrected,
        "ci_method": interval.get("ci_method", "none"),
        "correction": "none",
    }


def _association_row(
    pair: pd.DataFrame,
    factor: str,
    factor_type: str,
    outcome: str,
    outcome_type: str,
    replicates: int,
    seed: int,
    conf_level: float,
    fisher: bool = False,
) -> dict:
    """Test and effect size of one factor; the dispatch table of the module docstring."""
    if factor_type == "binary" and outcome_type == "binary":
        row = _table_row(pair, factor, outcome, replicates, seed, fisher, conf_level)
        table = _two_by_two(pair, factor, outcome)
        odds_ratio, _, low, high = _wald_odds_ratio(table, conf_level)
        return {
            **row,
            "estimate": odds_ratio,
            "conf_low": low,
            "conf_high": high,
            "effect_size_name": "odds_ratio",
            "ci_method": "wald_log_odds_ratio",
            **({"conf_low": np.nan, "conf_high": np.nan, "warning": ZERO_CELL} if (table == 0).any() else {}),
        }
    if factor_type == "nominal":
        return _table_row(pair, factor, outcome, replicates, seed, fisher, conf_level)
    if outcome_type == "binary":
        o_low, o_high = _binary_levels(pair[outcome], "a binary outcome")
        codes = _ordered_codes(pair[factor], factor)
        result = mann_whitney(codes[pair[outcome] == o_high].to_numpy(), codes[pair[outcome] == o_low].to_numpy())
    elif factor_type == "binary":
        f_low, f_high = _binary_levels(pair[factor], "a binary factor")
        codes = _ordered_codes(pair[outcome], outcome)
        result = mann_whitney(codes[pair[factor] == f_high].to_numpy(), codes[pair[factor] == f_low].to_numpy())
    else:
        result = kendall_tau_b(
            _ordered_codes(pair[factor], factor).to_numpy(), _ordered_codes(pair[outcome], outcome).to_numpy()
        )
        return {
            "test": "kendall_tau_b",
            "statistic": result["statistic"],
            "p_value": result["p_value"],
            "estimate": result["tau_b"],
            "effect_size_name": "kendall_tau_b",
            "ci_method": "none",
            "correction": "tie_corrected_variance_normal_approximation",
        }
    return {
        "test": "mann_whitney_u",
        "statistic": result["statistic"],
        "p_value": result["p_value"],
        "estimate": result["rank_biserial"],
        "effect_size_name": "rank_biserial",
        "ci_method": "none",
        "correction": "normal_approximation_tie_and_continuity_corrected",
    }


def associations(
    frame: pd.DataFrame,
    outcome: str,
    factors: Mapping[str, str],
    outcome_type: str = "binary",
    replicates: int = DEFAULT_REPLICATES,
    seed: int = DEFAULT_SEED,
    conf_level: float = 0.95,
    fisher: bool = False,
) -> pd.DataFrame:
    """Test each candidate factor against the outcome; one tidy row per factor.

    ``fisher=True``: Fisher's exact test for every table (binary x binary, nominal), on
    request, instead of the expected-count rule (see :func:`table_test`).

    ``factors`` maps column name to its type (binary / nominal / ordinal /
    continuous). Columns: ``outcome``, ``factor``, ``factor_type``; ``estimate`` the
    headline effect size named in ``effect_size_name`` (``conf_low``/``conf_high`` for
    the odds ratio, and for Cramér's V the two-sided noncentral chi-square interval of
    :func:`analyses.contingency.cramers_v`); ``statistic`` the test statistic (chi-square, U or z; none
    for Fisher's tests);
    ``p_value`` the test's p and ``p_adjusted`` the Benjamini-Hochberg p (``p_holm``,
    ``p_bonferroni`` the family-wise Holm and Bonferroni p beside it) across all
    factors of this call; ``test`` the test used (a code of ``analyses.methods``, never
    with parameters appended); ``df``; both Cramér's Vs for tables; ``min_expected``;
    ``warning`` (``zero_cell``: a 2x2 table with an empty cell has no Wald OR interval).
    ``method`` is the test with its parameters (``fisher_monte_carlo_B<B>_seed<seed>``),
    ``ci_method`` the effect-size interval,
    ``correction`` the test's correction and the family adjustment. A factor that
    cannot be tested here (:data:`NOT_TESTABLE`) keeps its row with missing numbers.
    """
    if outcome_type not in OUTCOME_TYPES:
        raise ValueError(f"outcome_type must be one of {OUTCOME_TYPES}")
    if outcome_type == "binary":
        _binary_levels(frame[outcome], "a binary outcome")
    rows = []
    for factor, factor_type in factors.items():
        if factor_type not in FACTOR_TYPES:
            raise ValueError(f"factor {factor!r}: type must be one of {FACTOR_TYPES}")
        pair = frame[[factor, outcome]].dropna()
        if pair[factor].nunique() < 2 or pair[outcome].nunique() < 2:
            row = {"test": NOT_TESTABLE, "p_value": np.nan, "ci_method": "none", "correction": "none"}
        else:
            row = _association_row(pair, factor, factor_type, outcome, outcome_type, replicates, seed, conf_level,
                                   fisher)
        rows.append({"outcome": outcome, "factor": factor, "factor_type": factor_type, "n": len(pair), **row})
    p_values = [row["p_value"] for row in rows]
    adjusted = benjamini_hochberg(p_values)
    family_size = int(np.sum(~np.isnan(adjusted)))
    for row, p_adjusted, p_holm, p_bonferroni in zip(rows, adjusted, holm(p_values), bonferroni(p_values),
                                                     strict=True):
        row["p_adjusted"] = float(p_adjusted)
        row["p_holm"] = float(p_holm)
        row["p_bonferroni"] = float(p_bonferroni)
        row["method"] = row.pop("method_detail", None) or row["test"]
        row["correction"] = f"{row['correction']}; p_adjusted: {BENJAMINI_HOCHBERG} over {family_size} tests"
    return tidy_frame(rows, ["outcome", "factor", "factor_type"], _EXTRA_COLUMNS)

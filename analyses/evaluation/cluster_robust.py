"""OLS with cluster-robust standard errors for few clusters.

Two corrections are offered, both named in the result rows:

* CR1 ("HC1" in R sandwich): V = c M (sum_j X_j' e_j e_j' X_j) M with M = (X'X)^-1 and
  c = G/(G-1) * (n-1)/(n-k), exactly ``sandwich::vcovCL(fit, cluster, type = "HC1")``;
  tests use t with G - 1 df (Stata's and Cameron & Miller's convention).
* CR2, the bias-reduced linearisation of Bell & McCaffrey (2002) with Satterthwaite
  degrees of freedom (Pustejovsky & Tipton 2018), exactly ``clubSandwich::vcovCR(fit,
  cluster, type = "CR2")`` with ``coef_test(..., test = "Satterthwaite")`` for an
  unweighted ``lm`` (working model: identity). The residuals of cluster j are
  multiplied by A_j = (I - H_jj)^(-1/2) (symmetric root; pseudo-inverse on null
  eigenvalues as clubSandwich does). With few clusters CR1 tests over-reject; CR2 with
  Satterthwaite df keeps close to nominal size, so it is the primary DiD inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from analyses.sandwich import symmetric_inverse_root

#: A standard error below this times max(|estimate|, 1) is rounding noise, not a variance.
DEGENERATE_SE = 1e-10
DEGENERATE = "degenerate_standard_error"


@dataclass(frozen=True)
class ClusterRobustFit:
    """Coefficients with CR1 and CR2 standard errors and degrees of freedom."""

    coefficients: np.ndarray
    vcov_cr1: np.ndarray
    vcov_cr2: np.ndarray
    df_cr2: np.ndarray
    n: int
    n_clusters: int

    @property
    def df_cr1(self) -> float:
        return float(self.n_clusters - 1)

    def test(self, index: int, correction: str, conf_level: float = 0.95) -> dict:
        """estimate, std_error, statistic, df, p_value, conf_low, conf_high of one coefficient.

        A standard error that is zero up to rounding (below ``DEGENERATE_SE`` times the
        size of the estimate, e.g. one treated and one comparison cluster: each cluster's
        residuals sum to zero) gives the estimate alone with ``warning``
        ``degenerate_standard_error`` instead of a p-value of ~1e-16.
        """
        vcov, df = (self.vcov_cr2, self.df_cr2[index]) if correction == "CR2" else (self.vcov_cr1, self.df_cr1)
        estimate = float(self.coefficients[index])
        se = float(np.sqrt(max(vcov[index, index], 0.0)))
        if not np.isfinite(se) or se <= DEGENERATE_SE * max(abs(estimate), 1.0) or not np.isfinite(df) or df <= 0:
            return {"estimate": estimate, "std_error": None, "statistic": None, "df": None, "p_value": None,
                    "conf_low": None, "conf_high": None, "warning": DEGENERATE}
        statistic = estimate / se
        q = stats.t.ppf(1.0 - (1.0 - conf_level) / 2.0, df)
        return {"estimate": estimate, "std_error": se, "statistic": statistic, "df": float(df),
                "p_value": float(2.0 * stats.t.sf(abs(statistic), df)),
                "conf_low": estimate - q * se, "conf_high": estimate + q * se}


def cluster_robust_ols(y: np.ndarray, design: np.ndarray, clusters: np.ndarray) -> ClusterRobustFit:
    """Fit y = X b by OLS; return CR1 and CR2 covariance and CR2 Satterthwaite df per coefficient."""
    y = np.asarray(y, dtype=float)
    x = np.asarray(design, dtype=float)
    n, k = x.shape
    bread = np.linalg.inv(x.T @ x)
    coefficients = bread @ x.T @ y
    residuals = y - x @ coefficients
    labels, codes = np.unique(np.asarray(clusters), return_inverse=True)
    members = [np.flatnonzero(codes == j) for j in range(labels.size)]
    g = labels.size

    scores_cr1 = np.array([x[m].T @ residuals[m] for m in members])
    adjust = g / (g - 1) * (n - 1) / (n - k) if g > 1 else np.nan
    vcov_cr1 = adjust * bread @ (scores_cr1.T @ scores_cr1) @ bread

    roots = [symmetric_inverse_root(np.eye(m.size) - x[m] @ bread @ x[m].T) for m in members]
    scores_cr2 = np.array([x[m].T @ root @ residuals[m] for m, root in zip(members, roots)])
    vcov_cr2 = bread @ (scores_cr2.T @ scores_cr2) @ bread

    df_cr2 = np.array([_satterthwaite_df(x, bread, members, roots, np.eye(k)[i]) for i in range(k)])
    return ClusterRobustFit(coefficients, vcov_cr1, vcov_cr2, df_cr2, n, g)


def _satterthwaite_df(x, bread, members, roots, contrast) -> float:
    """Bell-McCaffrey df of c'V_CR2 c under the working model Var(y) = I.

    With g_j = A_j X_j M c, c'Vc = sum_j (g_j' e_j)^2 and e = (I - H) y, so under
    Var(y) = I the cross-moments are Omega_ij = g_i' (I - H)_ij g_j
    = [i = j] g_i'g_i - (X_i'g_i)' M (X_j'g_j), and df = tr(Omega)^2 / sum(Omega^2).
    """
    g_vectors = [root @ x[m] @ bread @ contrast for m, root in zip(members, roots)]
    projected = np.array([x[m].T @ gv for m, gv in zip(members, g_vectors)])
    omega = -projected @ bread @ projected.T
    omega[np.diag_indices_from(omega)] += [gv @ gv for gv in g_vectors]
    total = float(np.sum(omega**2))
    return float(np.trace(omega) ** 2 / total) if total > 0 else float("nan")

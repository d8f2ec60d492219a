"""Pieces of the cluster-robust (sandwich) estimators shared by the models and the evaluation.

``symmetric_inverse_root`` is the CR2 adjustment's matrix power: the symmetric inverse
square root with eigenvalues at or below ``EIGEN_TOLERANCE`` treated as zero (a
pseudo-inverse root), as clubSandwich's ``matrix_power`` does. It is used by the CR2
of the logistic models (``models_logistic``) and of the DiD OLS
(``evaluation.cluster_robust``), both validated against clubSandwich.
"""

from __future__ import annotations

import numpy as np

#: Eigenvalues at or below this are null (clubSandwich's tolerance).
EIGEN_TOLERANCE = 1e-12


def symmetric_inverse_root(matrix: np.ndarray, tolerance: float = EIGEN_TOLERANCE) -> np.ndarray:
    """M^(-1/2) of a symmetric matrix, null eigenvalues left at zero."""
    values, vectors = np.linalg.eigh(matrix)
    keep = values > tolerance
    roots = np.zeros_like(values)
    roots[keep] = 1.0 / np.sqrt(values[keep])
    return (vectors * roots) @ vectors.T

"""How well the chosen solution classifies pupils: posterior certainty per class.

Average posterior probability (AvePP) and odds of correct classification (OCC) follow
Nagin (2005, Group-based modeling of development, ch. 5): AvePP >= 0.7 and OCC >= 5 are
the usual marks of a class whose members are assigned with confidence. Entropy R2
summarises all classes at once. Stability and agreement rows (see
:mod:`personas.stability`) share this table's columns, so ``results.persona_quality`` is
one concatenation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyses.tidy import tidy_frame
from personas.selection import entropy_r2

ID_COLUMNS = ["analysis", "n_classes", "class", "term"]
EXTRA_COLUMNS = ["threshold", "meets_threshold"]
AVEPP_THRESHOLD = 0.7
OCC_THRESHOLD = 5.0


def average_posterior(probabilities: np.ndarray) -> np.ndarray:
    """AvePP_c: mean posterior of class c among pupils modally assigned to c (NaN if none)."""
    modal = probabilities.argmax(axis=1)
    k = probabilities.shape[1]
    return np.array([probabilities[modal == c, c].mean() if np.any(modal == c) else np.nan for c in range(k)])


def odds_correct_classification(avepp: np.ndarray, class_shares: np.ndarray) -> np.ndarray:
    """OCC_c = [AvePP_c / (1 - AvePP_c)] / [pi_c / (1 - pi_c)] (Nagin 2005); inf if AvePP_c = 1."""
    with np.errstate(divide="ignore"):
        return (avepp / (1 - avepp)) / (class_shares / (1 - class_shares))


def quality_table(probabilities: np.ndarray, class_shares: np.ndarray) -> pd.DataFrame:
    """Tidy per-class certainty rows plus entropy R2 for ``results.persona_quality``.

    ``class_shares`` are the model's class weights; classes are numbered from 1.
    """
    n, k = probabilities.shape
    modal = probabilities.argmax(axis=1)
    avepp = average_posterior(probabilities)
    occ = odds_correct_classification(avepp, class_shares)
    rows = []
    for c in range(k):
        members = int(np.sum(modal == c))
        common = {"analysis": "lca_quality", "n_classes": k, "class": c + 1, "ci_method": pd.NA, "correction": pd.NA}
        rows += [
            {**common, "term": "class_share", "estimate": class_shares[c], "n": n,
             "method": "estimated class weight (latent class model)"},
            {**common, "term": "modal_share", "estimate": members / n, "n": n,
             "method": "share of pupils whose most probable class this is (modal assignment)"},
            {**common, "term": "average_posterior", "estimate": avepp[c], "n": members,
             "threshold": AVEPP_THRESHOLD, "meets_threshold": bool(avepp[c] >= AVEPP_THRESHOLD),
             "method": "average posterior probability among modally assigned pupils (Nagin 2005)"},
            {**common, "term": "odds_correct_classification", "estimate": occ[c], "n": members,
             "threshold": OCC_THRESHOLD, "meets_threshold": bool(occ[c] >= OCC_THRESHOLD),
             "method": "OCC = [AvePP/(1-AvePP)] / [pi/(1-pi)] (Nagin 2005)"},
        ]
    rows.append({"analysis": "lca_quality", "n_classes": k, "class": pd.NA, "term": "entropy_r2",
                 "estimate": entropy_r2(probabilities), "n": n,
                 "method": "entropy R2 = 1 - EN / (n ln k) (Ramaswamy et al. 1993)",
                 "ci_method": pd.NA, "correction": pd.NA})
    return quality_frame(rows)


def quality_frame(rows: list[dict]) -> pd.DataFrame:
    """Tidy frame with this table's columns (shared with stability and agreement rows)."""
    frame = tidy_frame(rows, ID_COLUMNS, EXTRA_COLUMNS)
    frame["class"] = pd.array(frame["class"], dtype="Int64")
    frame["threshold"] = pd.to_numeric(frame["threshold"]).astype("float64")
    frame["meets_threshold"] = pd.array(frame["meets_threshold"], dtype="boolean")
    return frame

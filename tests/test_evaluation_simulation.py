"""Self-check on simulated pilots: planted DiD recovered, planted nulls null at the nominal rate.

21 municipalities, 8 pilot and 12 comparison pupils each, 15 % lost to follow-up, a
municipality effect on the change (so clustering matters) and a baseline difference
between the groups. ``sdl_total`` carries a planted DiD of 0.5; three null outcomes 0.
"""

import numpy as np
import pandas as pd
import pytest

from analyses.evaluation import difference_in_differences

PLANTED = {"sdl_total": 0.5, "null_a": 0.0, "null_b": 0.0, "null_c": 0.0}


def simulate(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(21):
        municipality_shift = rng.normal(0, 0.3, size=len(PLANTED))
        for i in range(20):
            pilot = i < 8
            pupil = {"pupil_id": f"m{m}p{i}", "group": "pilot" if pilot else "comparison",
                     "municipality": f"m{m}"}
            pre = rng.normal(-0.4 if pilot else 0.0, 1.0, size=len(PLANTED))
            post = (pre + 0.1 + municipality_shift + rng.normal(0, 0.6, size=len(PLANTED))
                    + pilot * np.array(list(PLANTED.values())))
            rows.append({**pupil, "wave": "pre", **dict(zip(PLANTED, pre))})
            if rng.random() > 0.15:
                rows.append({**pupil, "wave": "post", **dict(zip(PLANTED, post))})
    return pd.DataFrame(rows)


def _pooled_cr2(seed):
    rows = difference_in_differences(simulate(seed), list(PLANTED), by_municipality=False)
    return rows.loc[rows["correction"].str.startswith("cluster-robust CR2")].set_index("outcome")


def test_pooled_did_covers_the_planted_value():
    # one seed: the planted effect is covered and found; nulls are judged over seeds below
    rows = _pooled_cr2(seed=1)
    assert set(rows.index) == set(PLANTED)
    assert rows.loc["sdl_total", "conf_low"] <= 0.5 <= rows.loc["sdl_total", "conf_high"]
    assert rows.loc["sdl_total", "p_value"] < 0.05


@pytest.mark.slow
def test_nulls_are_declared_effects_at_about_the_nominal_rate_over_20_seeds():
    nulls = [o for o, v in PLANTED.items() if v == 0]
    false_positives = covered = 0
    for seed in range(100, 120):
        rows = _pooled_cr2(seed)
        false_positives += int((rows.loc[nulls, "p_value"] < 0.05).sum())
        covered += int(rows.loc["sdl_total", "conf_low"] <= 0.5 <= rows.loc["sdl_total", "conf_high"])
    # 60 null tests at 5 %: expect 3; P(X >= 9) < 0.5 % under Binomial(60, 0.05)
    assert false_positives <= 8
    assert covered >= 16  # 95 % coverage: P(X < 16) < 0.3 % under Binomial(20, 0.95)

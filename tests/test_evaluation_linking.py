"""The flow table, attrition balance and the small-numbers rule on a hand-made frame."""

import numpy as np
import pandas as pd
import pytest

from analyses.evaluation import attrition_balance, flow_table, link_waves


def _assessments():
    """Municipality A: 8 pilot pupils pre, 6 of them post, 1 new; B: 3 comparison pupils."""
    rows = []
    for i in range(8):
        rows.append({"pupil_id": f"a{i}", "wave": "pre", "group": "pilot", "municipality": "A", "score": float(i)})
    for i in range(6):
        rows.append({"pupil_id": f"a{i}", "wave": "post", "group": "pilot", "municipality": "A", "score": i + 1.0})
    rows.append({"pupil_id": "a9", "wave": "post", "group": "pilot", "municipality": "A", "score": 3.0})
    for i in range(3):
        for wave in ("pre", "post"):
            rows.append({"pupil_id": f"b{i}", "wave": wave, "group": "comparison", "municipality": "B", "score": 1.0})
    return pd.DataFrame(rows)


def test_link_waves_gives_one_row_per_pupil():
    linked = link_waves(_assessments(), ["score"]).set_index("pupil_id")
    assert len(linked) == 12
    assert linked.loc["a0", ["score_pre", "score_post"]].tolist() == [0.0, 1.0]
    assert not linked.loc["a7", "in_post"] and np.isnan(linked.loc["a7", "score_post"])
    assert linked.loc["a9", "municipality"] == "A" and not linked.loc["a9", "in_pre"]


def test_link_waves_refuses_duplicates_without_naming_the_pupil():
    frame = pd.concat([_assessments(), _assessments().iloc[[0]]])
    with pytest.raises(ValueError) as error:
        link_waves(frame, ["score"])
    assert "a0" not in str(error.value) and "1 pupil" in str(error.value)


def test_flow_table_counts_and_suppresses_small_cells():
    table = flow_table(_assessments()).set_index(["municipality", "group", "stage"]).sort_index()
    a = table.loc[("A", "pilot")]
    assert a.loc["assessed_pre", "estimate"] == 8 and a.loc["assessed_post", "estimate"] == 7
    assert a.loc["linked", "estimate"] == 6 and a.loc["linked", "share_of_pre"] == pytest.approx(0.75)
    assert a.loc["lost", "suppressed"] and np.isnan(a.loc["lost", "estimate"])  # 2 pupils: hidden
    assert a.loc["new", "suppressed"]
    b = table.loc[("B", "comparison")]
    assert b["estimate"].isna().sum() == 3 and b.loc["lost", "estimate"] == 0  # zeros are shown
    assert table.loc[("all", "all", "assessed_pre"), "estimate"] == 11


def test_attrition_balance_uses_unweighted_pooled_sd():
    frame = _assessments()
    more = frame.loc[frame["pupil_id"].str.startswith("a") & (frame["wave"] == "pre")].copy()
    more["pupil_id"] = "c" + more["pupil_id"]  # 8 more pilot pupils, all lost
    frame = pd.concat([frame, more], ignore_index=True)
    rows = attrition_balance(frame, ["score"], small_n=5).set_index("group")
    lost = np.r_[6.0, 7.0, np.arange(8.0)]
    kept = np.arange(6.0)
    expected = (lost.mean() - kept.mean()) / np.sqrt((lost.var(ddof=1) + kept.var(ddof=1)) / 2)
    assert rows.loc["pilot", "effect_size"] == pytest.approx(expected)
    assert rows.loc["pilot", "n"] == 16 and rows.loc["pilot", "contrast"] == "lost_vs_kept"
    # nobody lost among the comparison pupils: true numbers here, blanked when published
    assert rows.loc["comparison", "warning"] == "small_n" and np.isnan(rows.loc["comparison", "estimate"])
    assert rows.loc["comparison", "n"] > 0
    from pipelines.assets.evaluation import attrition_sizes, publish_attrition

    published = publish_attrition(rows.reset_index(), attrition_sizes(frame, ["score"], ("pre", "post"), "group"),
                                  5).set_index("group")
    assert published.loc["comparison", "warning"] == "suppressed_n_below_min"
    assert pd.isna(published.loc["comparison", "n"])
    assert published.loc["pilot", "n"] == 16 and pd.isna(published.loc["pilot", "warning"])

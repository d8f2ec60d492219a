"""The disclosure audit reads every number a reader sees (issue 15 item 3).

Not only the cells the renderer marked as counts: a count formatted as a plain string,
and the value labels and count bars of every chart (``figures.chart_values``, carried in
the figure's ``data-chart-values``).
"""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from pipelines.privacy.cells import audit_html_tables
from pipelines.render.figures import chart_values, report_figure
from pipelines.render.tables import report_table


def _bars(values, labels=()):
    fig, ax = plt.subplots()
    ax.barh(range(len(values)), values)
    for y, text in enumerate(labels):
        ax.text(0, y, text)
    return fig


def test_count_bars_and_value_labels_are_audited():
    html = report_figure(_bars([3, 12]), alt="pupils per school")._repr_html_()
    findings = audit_html_tables(html, threshold=5)
    assert findings["table"].tolist() == ["chart 0"] and findings["rule"].str.contains("chart").all()
    labelled = report_figure(_bars([0.25, 0.5], labels=["2", "40%"]), alt="shares")._repr_html_()
    assert len(audit_html_tables(labelled, threshold=5)) == 1  # the label '2', not the share bars


def test_bars_of_means_or_suppressed_counts_pass():
    assert chart_values(_bars([2.5, 3.25])) == ()
    html = report_figure(_bars([float("nan"), 12.0], labels=["<5"]), alt="x")._repr_html_()
    assert audit_html_tables(html, threshold=5).empty
    plt.close("all")


def test_a_count_shown_as_text_is_caught_and_not_counts_are_declared():
    frame = pd.DataFrame({"school": ["A", "B"], "pupils": ["3", "40"], "rank": [1, 2]})
    table = report_table(frame, lang="en", min_cell=5)
    findings = audit_html_tables(table._repr_html_(), threshold=5)
    assert sorted(findings["column"]) == [1, 2, 2]  # the string "3" and both ranks
    declared = report_table(frame, lang="en", min_cell=5, not_counts=["rank"])
    assert audit_html_tables(declared._repr_html_(), threshold=5)["column"].tolist() == [1]
    with pytest.raises(ValueError, match="both counts and not counts"):
        report_table(frame.assign(n=[5, 6]), lang="en", min_cell=5, counts=["n"], not_counts=["n"])


def test_one_small_cell_rule():
    from analyses.small_cells import is_small, reveals_small, share_reveals_small

    assert [is_small(n, 5) for n in (0, 1, 4, 5, None, float("nan"))] == [False, True, True, False, False, False]
    assert is_small(9, 10) and not is_small(9, 5)
    assert reveals_small(18, 20, 5) and not reveals_small(10, 20, 5)
    assert share_reveals_small(0.1, 30, 5) and not share_reveals_small(0.5, 30, 5)
    assert not share_reveals_small(0.1, pd.NA, 5) and not share_reveals_small(None, 30, 5)

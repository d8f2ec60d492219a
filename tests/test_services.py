"""Specialists and services (issue 13): network measures against hand-computed graphs and
networkx's documented examples, gaps on a hand example, the plan's checks, the planted
structure recovered on the small study, and a study without these instruments skipping them."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from analyses import services as sv
from analyses import specialists as sp

TOL = 1e-9


def _matrix(weights: dict[tuple[str, str], float], n: int = 10, se: float = 0.1) -> pd.DataFrame:
    rows = [{"measure": "frequency", "sector": a, "partner": b, "estimate": w, "std_error": se, "n": n,
             "method": "test"} for (a, b), w in weights.items()]
    return pd.DataFrame(rows)


# A small directed graph computed by hand:
# a->b 4, b->a 2, a->c 1, c->a 1, b->c 3 (c->b not reported).
HAND = {("a", "b"): 4.0, ("b", "a"): 2.0, ("a", "c"): 1.0, ("c", "a"): 1.0, ("b", "c"): 3.0}


def test_density_and_reciprocity_by_hand():
    assert sp.density_weighted(HAND) == pytest.approx(np.mean([3, 1, 0, 0, 2]) / 4, abs=TOL)
    assert sp.density_binary(HAND, 3) == pytest.approx(2 / 5, abs=TOL)
    # pairs observed both ways: (a,b), (b,a), (a,c), (c,a): sum min = 2 + 2 + 1 + 1, sum w = 4 + 2 + 1 + 1
    assert sp.reciprocity_weighted(HAND) == pytest.approx(6 / 8, abs=TOL)


def test_network_measures_by_hand():
    out = sp.network_measures(_matrix(HAND), threshold=2, weakest=1).set_index(["measure", "sector", "partner"],
                                                                              drop=False)
    get = lambda m, s=None, p=None: out.loc[(out["measure"] == m) & (out["sector"].fillna("") == (s or ""))
                                            & (out["partner"].fillna("") == (p or "")), "estimate"].iloc[0]
    # threshold 2: edges a->b, b->a, b->c; reciprocated a<->b: 2 of 3 edges (networkx overall_reciprocity)
    assert get("reciprocity_binary") == pytest.approx(2 / 3, abs=TOL)
    assert get("density_binary") == pytest.approx(3 / 5, abs=TOL)
    assert get("in_strength", "a") == pytest.approx(3.0, abs=TOL)
    assert get("out_strength", "b") == pytest.approx(5.0, abs=TOL)
    assert get("in_strength", "c") == pytest.approx(4.0, abs=TOL)
    # degree centrality (in + out) / (n - 1) on the thresholded graph: a 2/2, b 3/2, c 1/2
    assert get("degree_centrality", "b") == pytest.approx(1.5, abs=TOL)
    assert get("degree_centrality", "c") == pytest.approx(0.5, abs=TOL)
    assert get("asymmetry", "a", "b") == pytest.approx(2.0, abs=TOL)
    # Welch: se = sqrt(0.1^2 + 0.1^2), df = (2 v)^2 / (2 v^2 / 9) = 18
    row = out.loc[(out["measure"] == "asymmetry") & (out["sector"] == "a") & (out["partner"] == "b")].iloc[0]
    se = math.sqrt(0.02)
    assert row["std_error"] == pytest.approx(se, abs=TOL)
    assert row["conf_low"] == pytest.approx(2.0 - stats.t.ppf(0.975, 18) * se, abs=TOL)
    links = out.loc[out["measure"] == "link_strength"].sort_values("rank")
    assert list(zip(links["sector"], links["partner"])) == [("a", "c"), ("a", "b"), ("b", "c")]
    assert links["estimate"].tolist() == pytest.approx([1.0, 3.0, 3.0], abs=TOL)
    assert links["weakest"].tolist() == [True, False, False]


def test_networkx_documented_examples():
    # networkx docs, reciprocity: G = nx.DiGraph([(1, 2), (2, 1)]) -> 1.0; and overall_reciprocity of
    # [(1, 2), (2, 1), (1, 3)] is 2/3 (two of three edges reciprocated).
    assert nx.overall_reciprocity(nx.DiGraph([(1, 2), (2, 1)])) == pytest.approx(1.0, abs=TOL)
    g = sp.graph({(1, 2): 3.0, (2, 1): 3.0, (1, 3): 3.0}, threshold=3)
    assert nx.overall_reciprocity(g) == pytest.approx(2 / 3, abs=TOL)
    # density of a complete directed graph is 1, and our binary density agrees with networkx's when
    # every ordered pair is observed
    full = {(a, b): 3.0 + (a < b) for a in "xyz" for b in "xyz" if a != b}
    assert sp.density_binary(full, 4) == pytest.approx(nx.density(sp.graph(full, threshold=4)), abs=TOL)


def test_matrix_mean_and_t_interval():
    frame = pd.DataFrame({"sector": ["a"] * 4 + ["b"] * 3, "coop_a": [1, 2, 3, 4, 5, 5, 4],
                          "coop_b": [2, 2, 2, np.nan, 1, 1, 1]})
    m = sp.cooperation_matrix(frame, {"a": "coop_a", "b": "coop_b"}).set_index(["sector", "partner"])
    values = np.array([1, 2, 3, 4.0])
    low, high = stats.t.interval(0.95, 3, loc=values.mean(), scale=stats.sem(values))
    assert m.loc[("a", "a"), "estimate"] == pytest.approx(2.5, abs=TOL)
    assert (m.loc[("a", "a"), "conf_low"], m.loc[("a", "a"), "conf_high"]) == pytest.approx((low, high), abs=TOL)
    assert m.loc[("a", "b"), "n"] == 3


def test_density_change_matches_slow_path_and_is_reproducible():
    rng = np.random.default_rng(3)
    n = 80
    frame = pd.DataFrame({"sector": rng.choice(["a", "b", "c"], n), "wave": np.repeat(["pre", "post"], n // 2),
                          "staff_id": [f"s{i % 50}" for i in range(n)]})
    items = {s: f"coop_{s}" for s in "abc"}
    for column in items.values():
        frame[column] = rng.integers(1, 6, n).astype(float)
    frame.loc[3, "coop_b"] = np.nan
    first = sp.density_change(frame, items, "pre", "post", seed=11, n_boot=200)
    again = sp.density_change(frame, items, "pre", "post", seed=11, n_boot=200)
    assert first == again
    slow = {w: sp.density_weighted(sp.weights(sp.cooperation_matrix(frame[frame["wave"] == w], items)))
            for w in ("pre", "post")}
    assert first["estimate"] == pytest.approx(slow["post"] - slow["pre"], abs=1e-12)
    assert first["conf_low"] < first["estimate"] < first["conf_high"]


def test_service_gaps_hand_example():
    pupils = pd.DataFrame({"county": "k", "municipality": ["A"] * 10 + ["B"] * 20 + ["C"] * 10,
                           "need": [1] * 5 + [0] * 5 + [1] * 2 + [0] * 18 + [0] * 10})
    services = pd.DataFrame({"county": "k", "municipality": ["B", "B", "C"], "service_type": ["x", "y", "x"],
                             "capacity": [100, 7, 3]})
    needs = sv.need_shares(pupils, {"need": "need"})
    gaps = sv.service_gaps(needs, services, {"need": ["x"]}).set_index("municipality")
    low, high = sp_wilson(5, 10)
    assert gaps.at["A", "reading"] == "no_supply"
    assert gaps.at["A", "estimate"] == pytest.approx(500.0, abs=TOL)
    assert (gaps.at["A", "conf_low"], gaps.at["A", "conf_high"]) == pytest.approx((1000 * low, 1000 * high), abs=TOL)
    assert gaps.at["B", "places_per_1000"] == pytest.approx(5000.0, abs=TOL)  # the y service does not count
    assert gaps.at["B", "reading"] == "no_gap"
    assert gaps.at["C", "reading"] == "no_need"


def sp_wilson(count, total):
    from analyses.descriptives import wilson_interval

    return wilson_interval(count, total)


def test_plan_checks_name_the_key(tmp_path):
    from pipelines.config import ConfigError, load_codebooks, load_study
    from tests.conftest import make_study_file

    path = make_study_file(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["plan"]["services"]["needs"][0]["service_types"] = ["counselling", "psychiatry"]
    data["plan"]["services"]["needs"][1]["need"] = "no_such_need"
    data["plan"]["services"]["cooperation_group"] = "no_such_group"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    study = load_study(path)
    with pytest.raises(ConfigError) as error:
        load_codebooks(study)
    problems = str(error.value)
    assert "plan.services.needs.0.service_types: 'psychiatry'" in problems
    assert "plan.services.needs.1.need: 'no_such_need'" in problems
    assert "plan.services.cooperation_group: no variable of 'specialists' is in group 'no_such_group'" in problems


def test_demo_plan_has_no_problems():
    from pipelines.config import PROJECT_ROOT, load_codebooks, load_study
    from pipelines.study_plan import analysis_plan_table, plan_problems

    study = load_study(PROJECT_ROOT / "studies" / "demo.yaml")
    books = load_codebooks(study)
    assert plan_problems(study, books) == []
    table = analysis_plan_table(study, books)
    assert (table["part"] == "services").sum() == 1


@pytest.fixture(scope="module")
def results(small_study):
    from pipelines.assets import services as assets

    study, books, truth = small_study
    frames = {}
    for build in (assets.build_specialists, assets.build_network, assets.build_inventory, assets.build_gaps):
        frames |= build(study, books, lambda message: None)
    return frames, truth


def test_results_keep_the_tidy_contract(results):
    from pipelines.assets.analyses import missing_contract_columns, rows_without_method

    frames, _ = results
    for name, frame in frames.items():
        assert len(frame), name
        assert rows_without_method(frame) == 0, name
        assert missing_contract_columns(frame) == [], name


def test_planted_weak_link_is_the_weakest(results):
    frames, truth = results
    net = frames["cooperation_network"]
    study = net.loc[(net["county"] == "all") & (net["municipality"] == "all") & (net["measure"] == "link_strength")]
    planted = sorted(truth["specialists"]["weak_link"])
    for wave, rows in study.groupby("wave"):
        weakest = rows.loc[rows["rank"] == 1].iloc[0]
        assert sorted([weakest["sector"], weakest["partner"]]) == planted, wave
        assert rows.sort_values("rank")["estimate"].iloc[1] - weakest["estimate"] > 0.5


def test_planted_density_rise_is_recovered(results):
    frames, truth = results
    net = frames["cooperation_network"]
    change = net.loc[(net["measure"] == "density_change") & (net["municipality"] != "all")]
    top = change.sort_values("estimate").iloc[-1]
    assert top["municipality"] == truth["specialists"]["density_rise"]["municipality"]
    assert top["conf_low"] > 0


def test_planted_service_gap_is_recovered(results):
    frames, truth = results
    planted = truth["services"]["gap"]
    gaps = frames["service_gaps"]
    rows = gaps.loc[(gaps["need"] == planted["need"]) & (gaps["municipality"] != "all")].set_index("municipality")
    assert rows.at[planted["municipality"], "reading"] == "no_supply"
    assert rows.at[planted["municipality"], "places"] == 0
    assert rows.at[planted["municipality"], "conf_low"] > 0
    assert rows.at[planted["municipality"], "need_share"] == pytest.approx(planted["need_share"], abs=0.1)
    others = rows.drop(index=planted["municipality"])
    assert (others["reading"] != "no_supply").all()


def test_planted_training_needs_rank_in_order(results):
    frames, truth = results
    shares = frames["specialists_shares"]
    study = shares.loc[(shares["county"] == "all") & (shares["sector"] == "all") & (shares["group"] == "training_needs")]
    planted = truth["specialists"]["training_needs"]
    for wave, rows in study.groupby("wave"):
        top = rows.sort_values("rank").iloc[0]
        assert top["option"] == max(planted, key=planted.get), wave
        for row in rows.itertuples():
            assert row.conf_low <= planted[row.option] <= row.conf_high or abs(row.estimate - planted[row.option]) < 0.12


def test_a_study_without_specialists_or_services_skips_their_assets(small_study, tmp_path):
    from pipelines.config import load_study
    from pipelines.study_definitions import _keys, prune_assets, study_assets

    study, _, _ = small_study
    data = yaml.safe_load(study.path.read_text(encoding="utf-8"))
    data["inputs"] = [i for i in data["inputs"] if i["instrument"] not in ("specialists", "services")]
    data["plan"].pop("evaluation", None)
    path = tmp_path / "no_staff.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    lean = load_study(path)
    assets, lines = prune_assets(study_assets(lean, []), lean)
    keys = {k.to_user_string() for a in assets for k in _keys(a)}
    assert not {"results/cooperation_network", "results/service_gaps", "results/specialists_counts",
                "results/services_inventory", "reports/services"} & keys
    text = "\n".join(lines)
    for name in ("specialists (no specialists inputs)", "results/cooperation_network (no specialists inputs)",
                 "results/services_inventory (no services inputs)", "service_gaps (no services inputs)"):
        assert f"skipped: {name}" in text, text
    assert "reports/services" in text


def test_network_measures_against_r_igraph():
    """tests/reference/network.R -> network.json (igraph reciprocity, edge_density, strength, degree)."""
    import json
    from pathlib import Path

    reference = json.loads((Path(__file__).parent / "reference" / "network.json").read_text(encoding="utf-8"))
    for name, spec in reference["graphs"].items():
        w = {(e["from"], e["to"]): float(e["weight"]) for e in spec["edges"]}
        out = sp.network_measures(_matrix(w), threshold=spec["threshold"])
        value = lambda m, s=None: out.loc[(out["measure"] == m) & (out["sector"].fillna("") == (s or "")),
                                          "estimate"].iloc[0]
        assert value("reciprocity_binary") == pytest.approx(spec["reciprocity"], abs=TOL), name
        assert nx.density(sp.graph(w, spec["threshold"])) == pytest.approx(spec["edge_density"], abs=TOL), name
        if len(w) == len(spec["in_strength"]) * (len(spec["in_strength"]) - 1):  # every ordered pair observed
            assert value("density_binary") == pytest.approx(spec["edge_density"], abs=TOL), name
        for sector, expected in spec["in_strength"].items():
            assert value("in_strength", sector) == pytest.approx(expected, abs=TOL), (name, sector)
        for sector, expected in spec["out_strength"].items():
            assert value("out_strength", sector) == pytest.approx(expected, abs=TOL), (name, sector)
        for sector, expected in spec["degree_centrality"].items():
            assert value("degree_centrality", sector) == pytest.approx(expected, abs=TOL), (name, sector)


@pytest.mark.slow
def test_services_report_renders_with_and_without_results(results, small_study, tmp_path):
    """Without the tables the report says what cannot be shown; with them it shows the sections, et and en,
    and passes the small-cell audit (a kernel per render: slow)."""
    import shutil

    from pipelines import warehouse
    from pipelines.config import PROJECT_ROOT
    from pipelines.privacy.cells import audit_html_tables
    from pipelines.render.engine import render_report

    study = small_study[0]
    frames, truth = results
    db = tmp_path / "copy.duckdb"
    shutil.copy(study.db_path, db)
    qmd = PROJECT_ROOT / "reports" / "services.qmd"

    def render(lang: str, folder: str) -> str:
        written = render_report(qmd, tmp_path / folder / lang, {"study": study.study, "db": str(db), "lang": lang})
        html = next(p for p in written if p.suffix == ".html").read_text(encoding="utf-8")
        assert "Traceback" not in html
        assert audit_html_tables(html, study.privacy.min_cell).empty
        return html

    bare = render("en", "bare")
    assert "cannot be shown" in bare and "Need and supply cannot be compared" in bare
    warehouse.write_tables(db, {f"results.{name}": frame for name, frame in frames.items()})
    for lang, heading, reading in (("et", "Valdkondadevaheline koostöö", "sellist teenust pole üldse"),
                                   ("en", "Cooperation between sectors", "no such service at all")):
        html = render(lang, "full")
        assert heading in html and reading in html
        assert truth["services"]["gap"]["municipality"] in html
        assert "cannot be shown" not in html and "ei saa näidata" not in html


def test_functions_work_on_a_plain_frame_without_county_or_wave():
    frame = pd.DataFrame({"municipality": ["A", "A", "B", "B", "B"], "sector": ["education", "police"] * 2 + ["police"],
                          "caseload": [10, 20, 30, 40, 50], "coop_education": [1, 2, 3, 4, 5],
                          "coop_police": [5, 4, 3, 2, 1]})
    counts = sp.specialist_counts(frame)
    assert set(counts["county"]) == {"all"} and set(counts["municipality"]) == {"all", "A", "B"}
    study = counts.loc[(counts["municipality"] == "all") & (counts["level"] == "police")].iloc[0]
    assert (study["count"], study["n"]) == (3, 5)
    work = sp.workload(frame, pd.DataFrame({"county": ["all", "all"], "municipality": ["A", "B"], "pupils": [100, 50]}),
                       variables=["caseload"])
    per = work.loc[(work["measure"] == "per_100_pupils") & (work["municipality"] == "all")
                   & (work["variable"] == "caseload")]
    assert per["estimate"].iloc[0] == pytest.approx(100 * 150 / 150, abs=TOL)
    net = sp.cooperation_network(frame, {"education": "coop_education", "police": "coop_police"}, seed=1)
    assert "density_change" not in set(net["measure"])  # one wave: no change
    assert sp.roles_by_sector(frame).empty

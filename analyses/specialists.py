"""Specialists: who works with children, how loaded they are, and who cooperates with whom.

Plain functions over the specialists' survey (one row per respondent and wave) and, for
the per-pupil measures, the number of pupils per place. Every table is tidy
(:mod:`analyses.tidy`) and is computed for the study, each county and each municipality:
the identifying columns ``county`` and ``municipality`` hold :data:`ALL` where a row
covers more than one. Counts are true counts; small-cell protection is the publishing
layer's job.

Method choices, named in the rows:

- counts and shares (sector, role, training taken, barriers): Wilson score intervals
  (:mod:`analyses.descriptives`), denominators the respondents who answered;
- experience and caseload: mean with Student t interval, median with type-7 quartiles
  (:func:`analyses.descriptives.describe_numeric`); per 100 pupils: the sum over the
  place's respondents divided by its pupils (no interval: the pupil count is taken as
  known and the respondents are not a sample of a defined population);
- the cooperation network: a directed graph on sectors. The weight of A -> B is the mean
  frequency (1 never ... 5 daily) that A's respondents report for cooperating with B
  (Student t interval). Self-loops (education with education) stay in the matrix but not
  in the graph. Measures over the ordered pairs with at least one answer:

  * ``density_weighted``: mean of (w - 1) / (5 - 1), i.e. 0 when nobody cooperates, 1
    when all pairs do daily;
  * ``density_binary``: share of ordered pairs with w >= ``threshold`` (default 3,
    monthly), networkx ``density`` of that graph when every pair is observed;
  * ``reciprocity_binary``: networkx ``overall_reciprocity`` of the thresholded graph;
  * ``reciprocity_weighted``: sum min(w_ij, w_ji) / sum w_ij over pairs observed both ways
    (Squartini et al. 2013, weighted reciprocity), 1 when every pair reports the same;
  * ``asymmetry`` per unordered pair: w(A->B) - w(B->A) with Welch's interval (the two
    directions are answered by different respondents);
  * ``link_strength`` per unordered pair: mean of the two directions (or the one
    observed), ``rank`` 1 the weakest;
  * ``in_strength``, ``out_strength`` (sums of weights, networkx weighted degree) and
    ``degree_centrality`` (networkx, thresholded graph, in + out) per sector;
  * ``density_change`` (last wave minus first): percentile interval of a cluster
    bootstrap that resamples respondents (a staff pseudonym answering both waves is one
    cluster, so linked answers stay together), seed given by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import networkx as nx
import numpy as np
import pandas as pd
from scipy import stats

from analyses.descriptives import as_numeric, describe_categorical, describe_multiselect, describe_numeric
from analyses.intervals import WILSON, wilson_interval
from analyses.scales import ScaleDefinition, scale_reliability
from analyses.tidy import tidy_frame

ALL = "all"
PLACE = ("county", "municipality")
FREQUENCY_MIN, FREQUENCY_MAX = 1.0, 5.0
DEFAULT_THRESHOLD = 3.0


def places(frame: pd.DataFrame, county: str = "county", municipality: str = "municipality"
           ) -> Iterable[tuple[dict, pd.DataFrame]]:
    """(ids, rows) for the study, each county and each municipality (sorted)."""
    yield {"county": ALL, "municipality": ALL}, frame
    if county in frame.columns:
        for name, sub in frame.groupby(county, sort=True):
            yield {"county": str(name), "municipality": ALL}, sub
    if municipality in frame.columns:
        with_county = county in frame.columns
        keys = [county, municipality] if with_county else [municipality]
        for key, sub in frame.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            yield {"county": str(key[0]) if with_county else ALL, "municipality": str(key[-1])}, sub


def _by_place(frame: pd.DataFrame, build, wave: str | None = "wave") -> pd.DataFrame:
    """``build(sub)`` for every place and wave, with county, municipality, wave in front."""
    parts = []
    for ids, sub in places(frame):
        waves = sub.groupby(wave, sort=True) if wave and wave in sub.columns else [("", sub)]
        for wave_value, rows in waves:
            out = build(rows)
            if len(out):
                out.insert(0, "wave", str(wave_value))
                out.insert(0, "municipality", ids["municipality"])
                out.insert(0, "county", ids["county"])
                parts.append(out)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def specialist_counts(frame: pd.DataFrame, variables: Sequence[str] = ("sector",), conf_level: float = 0.95
                      ) -> pd.DataFrame:
    """Respondents per level of each variable (sector, role ...) per place and wave, Wilson shares."""
    present = [v for v in variables if v in frame.columns and frame[v].notna().any()]
    if not present:
        return pd.DataFrame()
    return _by_place(frame, lambda rows: describe_categorical(rows, present, conf_level=conf_level))


def roles_by_sector(frame: pd.DataFrame, sector: str = "sector", role: str = "role_title") -> pd.DataFrame:
    """Respondents per sector and role title (study and county level only: titles are specific)."""
    if role not in frame.columns or sector not in frame.columns or frame[role].isna().all():
        return pd.DataFrame()
    data = frame.assign(_role=frame[sector].astype("string") + ": " + frame[role].astype("string").str.strip())
    out = _by_place(data, lambda rows: describe_categorical(rows, ["_role"]))
    out = out.loc[out["municipality"] == ALL].reset_index(drop=True)
    out["variable"] = role
    return out


def workload(frame: pd.DataFrame, pupils: pd.DataFrame | None = None, variables: Sequence[str] = (
        "experience_years", "caseload"), sector: str = "sector", caseload: str = "caseload",
        conf_level: float = 0.95) -> pd.DataFrame:
    """Experience and caseload per specialist (all sectors and each sector), and per 100 pupils.

    ``pupils``: columns county, municipality, pupils (the place's pupil count; study and
    county totals are summed from the municipalities). Per-100-pupil rows (``measure``
    ``per_100_pupils``): specialists (respondents) and their total caseload.
    """
    present = [v for v in variables if v in frame.columns]
    if not present:
        return pd.DataFrame()

    def build(rows: pd.DataFrame) -> pd.DataFrame:
        every = describe_numeric(rows, present, conf_level=conf_level)
        every.insert(0, "sector", ALL)
        by_sector = describe_numeric(rows, present, by=[sector], conf_level=conf_level) if sector in rows else None
        return pd.concat([every, by_sector], ignore_index=True) if by_sector is not None else every

    out = _by_place(frame, build)
    if pupils is None or not len(out):
        return out
    counts = _pupil_counts(pupils)
    rows = []
    for ids, sub in places(frame):
        n_pupils = counts.get((ids["county"], ids["municipality"]))
        if not n_pupils:
            continue
        waves = sub.groupby("wave", sort=True) if "wave" in sub.columns else [("", sub)]
        for wave_value, wave_rows in waves:
            common = {**ids, "wave": str(wave_value), "sector": ALL, "measure": "per_100_pupils",
                      "pupils": n_pupils, "ci_method": "none", "correction": "none"}
            rows.append({**common, "variable": "specialists", "estimate": 100 * len(wave_rows) / n_pupils,
                         "n": len(wave_rows), "method": "respondents_per_100_pupils"})
            if caseload in wave_rows.columns:
                load = as_numeric(wave_rows[caseload], caseload).dropna()
                rows.append({**common, "variable": caseload, "estimate": 100 * load.sum() / n_pupils,
                             "n": len(load), "method": "sum_of_reported_caseloads_per_100_pupils"})
    extra = tidy_frame(rows, ["county", "municipality", "wave", "sector", "variable", "measure"], ["pupils"])
    return pd.concat([out, extra], ignore_index=True)


def _pupil_counts(pupils: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(county, municipality) -> pupils, with county and study totals."""
    counts: dict[tuple[str, str], int] = {}
    for row in pupils.itertuples(index=False):
        county, muni, n = str(row.county), str(row.municipality), int(row.pupils)
        counts[(county, muni)] = counts.get((county, muni), 0) + n
        if county != ALL:  # a study without counties: the study total only
            counts[(county, ALL)] = counts.get((county, ALL), 0) + n
        counts[(ALL, ALL)] = counts.get((ALL, ALL), 0) + n
    return counts


def yes_shares(frame: pd.DataFrame, columns: Sequence[str], sector: str = "sector", conf_level: float = 0.95
               ) -> pd.DataFrame:
    """Share answering yes (1) to each 0/1 column (training taken, each barrier), all and per sector.

    A multi-response group (barriers) is read as :func:`describe_multiselect` does: the
    denominator is those who answered any of its columns.
    """
    present = [c for c in columns if c in frame.columns]
    if not present:
        return pd.DataFrame()

    def build(rows: pd.DataFrame) -> pd.DataFrame:
        every = describe_multiselect(rows, present, conf_level=conf_level)
        every.insert(0, "sector", ALL)
        if sector not in rows.columns:
            return every
        return pd.concat([every, describe_multiselect(rows, present, by=[sector], conf_level=conf_level)],
                         ignore_index=True)

    return _by_place(frame, build)


def ranked(shares: pd.DataFrame) -> pd.DataFrame:
    """:func:`yes_shares` with ``rank`` (1 = named most often) within each place, wave and sector."""
    if not len(shares):
        return shares
    keys = ["county", "municipality", "wave", "sector"]
    out = shares.copy()
    out["rank"] = out.groupby(keys, sort=False)["estimate"].rank(method="min", ascending=False).astype("Int64")
    return out


def co_occurrence(frame: pd.DataFrame, columns: Sequence[str], conf_level: float = 0.95) -> pd.DataFrame:
    """Share of respondents naming both of each pair of a multi-response group, with phi.

    Denominator: respondents who answered any of the group. ``phi`` is the Pearson
    correlation of the two 0/1 answers (NA when one is constant).
    """
    present = [c for c in columns if c in frame.columns]
    if len(present) < 2:
        return pd.DataFrame()

    def build(rows: pd.DataFrame) -> pd.DataFrame:
        answers = pd.DataFrame({c: as_numeric(rows[c], c) for c in present})
        answers = answers[answers.notna().any(axis=1)].fillna(0)
        total = len(answers)
        out = []
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                both = int(((answers[a] == 1) & (answers[b] == 1)).sum())
                low, high = wilson_interval(both, total, conf_level)
                phi = (float(np.corrcoef(answers[a], answers[b])[0, 1])
                       if total > 1 and answers[a].std() > 0 and answers[b].std() > 0 else np.nan)
                out.append({"option": a, "other": b, "estimate": both / total if total else np.nan,
                            "conf_low": low, "conf_high": high, "n": total, "count": both, "phi": phi,
                            "method": "share_of_respondents_naming_both", "ci_method": WILSON,
                            "correction": "none"})
        return tidy_frame(out, ["option", "other"], ["count", "phi"])

    return _by_place(frame, build)


def competence(frame: pd.DataFrame, scale: ScaleDefinition, sector: str = "sector", conf_level: float = 0.95
               ) -> pd.DataFrame:
    """The scale's reliability per wave (study level) and its score per place, wave and sector."""
    parts = []
    waves = frame.groupby("wave", sort=True) if "wave" in frame.columns else [("", frame)]
    for wave_value, rows in waves:
        reliability = scale_reliability(rows, scale, conf_level)
        reliability = reliability.rename(columns={"statistic_name": "measure"})
        reliability.insert(0, "wave", str(wave_value))
        reliability.insert(0, "municipality", ALL)
        reliability.insert(0, "county", ALL)
        parts.append(reliability)
    if scale.name in frame.columns:
        def build(rows: pd.DataFrame) -> pd.DataFrame:
            every = describe_numeric(rows, [scale.name], conf_level=conf_level)
            every.insert(0, "sector", ALL)
            if sector not in rows.columns:
                return every
            return pd.concat([every, describe_numeric(rows, [scale.name], by=[sector], conf_level=conf_level)],
                             ignore_index=True)

        scores = _by_place(frame, build).rename(columns={"variable": "scale"})
        scores["measure"] = "score_" + scores["measure"].astype(str)
        parts.append(scores)
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------------------
# The cooperation network


def cooperation_matrix(frame: pd.DataFrame, items: Mapping[str, str], sector: str = "sector",
                       conf_level: float = 0.95) -> pd.DataFrame:
    """Mean reported frequency for each (respondent sector, partner sector), Student t CI.

    ``items`` maps partner sector -> column. Rows: ``sector`` (who answers), ``partner``.
    """
    rows = []
    for own, sub in frame.dropna(subset=[sector]).groupby(sector, sort=True):
        for partner, column in items.items():
            values = as_numeric(sub[column], column).dropna().to_numpy(float)
            n = values.size
            mean = float(values.mean()) if n else np.nan
            se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
            t = stats.t.ppf(1 - (1 - conf_level) / 2, n - 1) if n > 1 else np.nan
            rows.append({"measure": "frequency", "sector": str(own), "partner": str(partner), "estimate": mean,
                         "std_error": se, "conf_low": mean - t * se, "conf_high": mean + t * se, "n": n,
                         "method": "mean_reported_frequency", "ci_method": "student_t", "correction": "none"})
    return tidy_frame(rows, ["measure", "sector", "partner"])


def weights(matrix: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(A, B) -> mean frequency of the observed off-diagonal pairs of a :func:`cooperation_matrix`."""
    m = matrix.loc[(matrix["measure"] == "frequency") & (matrix["sector"] != matrix["partner"])
                   & matrix["estimate"].notna()]
    return {(a, b): float(w) for a, b, w in zip(m["sector"], m["partner"], m["estimate"])}


def graph(w: Mapping[tuple[str, str], float], threshold: float | None = None) -> nx.DiGraph:
    """The directed graph of the weights (only edges with w >= threshold when given)."""
    g = nx.DiGraph()
    g.add_nodes_from(sorted({s for pair in w for s in pair}))
    g.add_weighted_edges_from((a, b, x) for (a, b), x in w.items() if threshold is None or x >= threshold)
    return g


def density_weighted(w: Mapping[tuple[str, str], float], low: float = FREQUENCY_MIN, high: float = FREQUENCY_MAX
                     ) -> float:
    """Mean rescaled weight (w - low) / (high - low) over the observed ordered pairs."""
    if not w:
        return np.nan
    return float(np.mean([(x - low) / (high - low) for x in w.values()]))


def density_binary(w: Mapping[tuple[str, str], float], threshold: float = DEFAULT_THRESHOLD) -> float:
    """Share of the observed ordered pairs whose weight is at least ``threshold``."""
    if not w:
        return np.nan
    return float(np.mean([x >= threshold for x in w.values()]))


def reciprocity_weighted(w: Mapping[tuple[str, str], float]) -> float:
    """Squartini et al.'s weighted reciprocity over pairs observed both ways: sum min / sum w."""
    both = [(x, w[(b, a)]) for (a, b), x in w.items() if (b, a) in w]
    total = sum(x for x, _ in both)
    return float(sum(min(x, y) for x, y in both) / total) if total > 0 else np.nan


def network_measures(matrix: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, weakest: int = 3) -> pd.DataFrame:
    """Density, reciprocity, asymmetry, link strength ranks and centralities of one matrix."""
    w = weights(matrix)
    freq = matrix.loc[matrix["measure"] == "frequency"].set_index(["sector", "partner"])
    n_pairs = len(w)
    method_graph = f"directed sector graph of mean reported frequency; threshold {threshold:g}"
    rows: list[dict] = []
    binary = graph(w, threshold)
    frequency = matrix.loc[matrix["measure"] == "frequency"]
    respondents = int(frequency.groupby("sector")["n"].max().sum()) if len(frequency) else 0
    rows.append({"measure": "density_weighted", "estimate": density_weighted(w), "n": n_pairs,
                 "method": "mean of (w - 1) / 4 over observed ordered sector pairs", "ci_method": "none"})
    rows.append({"measure": "density_binary", "estimate": density_binary(w, threshold), "n": n_pairs,
                 "method": f"share of observed ordered sector pairs with w >= {threshold:g}", "ci_method": "none"})
    recip = nx.overall_reciprocity(binary) if binary.number_of_edges() else np.nan
    rows.append({"measure": "reciprocity_binary", "estimate": recip, "n": n_pairs,
                 "method": f"networkx overall_reciprocity; {method_graph}", "ci_method": "none"})
    rows.append({"measure": "reciprocity_weighted", "estimate": reciprocity_weighted(w), "n": n_pairs,
                 "method": "sum min(w_ij, w_ji) / sum w_ij (Squartini et al. 2013)", "ci_method": "none"})
    links = []
    for a, b in sorted({tuple(sorted(p)) for p in w}):
        there, back = w.get((a, b)), w.get((b, a))
        if there is not None and back is not None:
            ra, rb = freq.loc[(a, b)], freq.loc[(b, a)]
            diff = there - back
            se = float(np.hypot(ra["std_error"], rb["std_error"]))
            df = _welch_df(ra["std_error"], ra["n"], rb["std_error"], rb["n"])
            t = stats.t.ppf(0.975, df) if np.isfinite(df) and df > 0 else np.nan
            rows.append({"measure": "asymmetry", "sector": a, "partner": b, "estimate": diff, "std_error": se,
                         "statistic": diff / se if se > 0 else np.nan,
                         "p_value": 2 * stats.t.sf(abs(diff / se), df) if se > 0 and np.isfinite(t) else np.nan,
                         "conf_low": diff - t * se, "conf_high": diff + t * se, "n": int(ra["n"] + rb["n"]),
                         "method": "difference of mean reported frequency, A->B minus B->A (Welch t)",
                         "ci_method": "welch_satterthwaite_t"})
        observed = [x for x in (there, back) if x is not None]
        links.append((float(np.mean(observed)), a, b, len(observed)))
    for rank, (strength, a, b, k) in enumerate(sorted(links), start=1):
        rows.append({"measure": "link_strength", "sector": a, "partner": b, "estimate": strength, "n": k,
                     "rank": rank, "weakest": rank <= weakest,
                     "method": "mean of the two directions' mean reported frequency (rank 1 weakest)",
                     "ci_method": "none"})
    full = graph(w)
    for node in sorted(full.nodes):
        rows.append({"measure": "in_strength", "sector": node, "estimate": float(full.in_degree(node, weight="weight")),
                     "n": full.in_degree(node), "method": "networkx in_degree(weight) on mean frequencies",
                     "ci_method": "none"})
        rows.append({"measure": "out_strength", "sector": node,
                     "estimate": float(full.out_degree(node, weight="weight")),
                     "n": full.out_degree(node), "method": "networkx out_degree(weight) on mean frequencies",
                     "ci_method": "none"})
    centrality = nx.degree_centrality(binary) if binary.number_of_nodes() > 1 else {}
    for node, value in sorted(centrality.items()):
        rows.append({"measure": "degree_centrality", "sector": node, "estimate": float(value),
                     "n": binary.number_of_nodes(), "method": f"networkx degree_centrality (in + out); {method_graph}",
                     "ci_method": "none"})
    for row in rows:
        row.setdefault("correction", "none")
        row.setdefault("respondents", respondents)
    return tidy_frame(rows, ["measure", "sector", "partner"], ["rank", "weakest", "respondents"])


def _welch_df(se_a: float, n_a: float, se_b: float, n_b: float) -> float:
    va, vb = se_a**2, se_b**2
    if not (np.isfinite(va) and np.isfinite(vb)) or n_a < 2 or n_b < 2 or va + vb == 0:
        return np.nan
    return float((va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1)))


def _fast_density(codes: np.ndarray, answers: np.ndarray, partner_codes: np.ndarray, n_sectors: int) -> float:
    """Weighted density from respondent sector codes and their answers (numpy, for the bootstrap)."""
    known = ~np.isnan(answers)
    sums = np.zeros((n_sectors, answers.shape[1]))
    counts = np.zeros((n_sectors, answers.shape[1]))
    np.add.at(sums, codes, np.where(known, answers, 0.0))
    np.add.at(counts, codes, known)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    off = np.arange(n_sectors)[:, None] != partner_codes[None, :]
    values = means[off & (counts > 0)]
    return float(np.mean((values - FREQUENCY_MIN) / (FREQUENCY_MAX - FREQUENCY_MIN))) if values.size else np.nan


def density_change(frame: pd.DataFrame, items: Mapping[str, str], before: str, after: str, seed: int,
                   n_boot: int = 999, sector: str = "sector", respondent: str = "staff_id",
                   conf_level: float = 0.95) -> dict:
    """Weighted density after minus before, with a cluster-bootstrap percentile interval.

    Clusters are respondents (staff pseudonym; a row without one is its own cluster), so
    a specialist answering both waves is resampled with both answers.
    """
    data = frame.loc[frame["wave"].isin([before, after]) & frame[sector].notna()].reset_index(drop=True)
    sectors = sorted(set(data[sector].astype(str)) | set(items))
    index = {s: i for i, s in enumerate(sectors)}
    codes = data[sector].astype(str).map(index).to_numpy()
    partner_codes = np.array([index[p] for p in items])
    answers = np.column_stack([as_numeric(data[c], c).to_numpy(float) for c in items.values()]) if len(data) \
        else np.zeros((0, len(items)))
    is_after = (data["wave"] == after).to_numpy()

    def change(rows: np.ndarray) -> float:
        post, pre = rows[is_after[rows]], rows[~is_after[rows]]
        if not post.size or not pre.size:
            return np.nan
        return (_fast_density(codes[post], answers[post], partner_codes, len(sectors))
                - _fast_density(codes[pre], answers[pre], partner_codes, len(sectors)))

    all_rows = np.arange(len(data))
    estimate = change(all_rows)
    n_before, n_after = int((~is_after).sum()), int(is_after.sum())
    result = {"estimate": estimate, "n": n_before + n_after, "n_before": n_before, "n_after": n_after,
              "method": f"weighted density {after} minus {before}",
              "ci_method": f"cluster bootstrap over respondents, percentile, {n_boot} replicates, seed {seed}",
              "correction": "none"}
    if not np.isfinite(estimate) or n_boot <= 0:
        return result
    ids = data[respondent].astype("string") if respondent in data.columns else pd.Series(pd.NA, index=data.index)
    cluster = ids.fillna(pd.Series([f"_row{i}" for i in range(len(data))], dtype="string")).to_numpy()
    labels, cluster_codes = np.unique(cluster, return_inverse=True)
    members = [np.flatnonzero(cluster_codes == c) for c in range(len(labels))]
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for b in range(n_boot):
        chosen = rng.integers(0, len(members), len(members))
        draws[b] = change(np.concatenate([members[c] for c in chosen]))
    draws = draws[np.isfinite(draws)]
    alpha = 1 - conf_level
    if draws.size:
        result["conf_low"], result["conf_high"] = (float(x) for x in np.quantile(draws, [alpha / 2, 1 - alpha / 2]))
        result["std_error"] = float(np.std(draws, ddof=1))
    return result


def cooperation_network(frame: pd.DataFrame, items: Mapping[str, str], seed: int, waves: Sequence[str] = (),
                        sector: str = "sector", threshold: float = DEFAULT_THRESHOLD, n_boot: int = 999,
                        weakest: int = 3, conf_level: float = 0.95) -> pd.DataFrame:
    """The matrix and network measures per place and wave, and the change in density.

    ``waves``: the survey's waves in order; with two or more, ``density_change`` rows
    (wave ``"<last> - <first>"``) compare the last with the first. Each place's
    bootstrap gets its own seed from ``seed`` and the place's position in the listing.
    """
    def build(rows: pd.DataFrame) -> pd.DataFrame:
        matrix = cooperation_matrix(rows, items, sector, conf_level)
        return pd.concat([matrix, network_measures(matrix, threshold, weakest)], ignore_index=True)

    out = _by_place(frame, build)
    if len(waves) >= 2 and "wave" in frame.columns:
        before, after = waves[0], waves[-1]
        rows = []
        for position, (ids, sub) in enumerate(places(frame)):
            place_seed = int((seed + 7919 * position) % 2**32)
            rows.append({**ids, "wave": f"{after} - {before}", "measure": "density_change",
                         **density_change(sub, items, before, after, place_seed, n_boot, sector,
                                          conf_level=conf_level)})
        change = tidy_frame(rows, ["county", "municipality", "wave", "measure"], ["n_before", "n_after"])
        out = pd.concat([out, change], ignore_index=True)
    return out

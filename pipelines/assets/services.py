"""Specialists and services (issue 13): results tables from anon.specialists, anon.services, anon.pupils.

Thin assets over :mod:`analyses.specialists` and :mod:`analyses.services`, made with the
analyses' ``_results_asset`` (tidy-contract check, DuckDB pool, deps on the anon tables):

- ``results.specialists_counts``, ``specialists_workload``, ``specialists_shares``,
  ``specialists_competence`` (anon.specialists; per 100 pupils when the study has pupils);
- ``results.cooperation_network`` (anon.specialists; the cooperation items are the
  codebook group ``plan.services.cooperation_group``);
- ``results.services_inventory`` (anon.services);
- ``results.services_needs`` and ``results.service_gaps`` (anon.services and anon.pupils,
  plan part ``services``: the need -> service-type mapping).

A study without specialists or services has none of these (definitions.prune_assets
drops them with a "skipped: ..." line). Tables hold true counts: reports protect them.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pandas as pd

from analyses import services as services_analysis
from analyses import specialists as specialists_analysis
from pipelines import warehouse
from pipelines.assets.analyses import Frames, Log, _results_asset, empty_results, read_instrument
from pipelines.assets.common import CONTEXT_TAG, DEPS_TAG, meta_key
from pipelines.assets.reports import report_asset
from pipelines.config import Codebook, Study
from pipelines.plan import ServicesPlan, derived_seed
from pipelines.scales import scale_definitions
from pipelines.study_plan import first_wave

PLACE_IDS = ("county", "municipality", "wave")
NETWORK_SEED = "cooperation_network"


def services_plan(config: Study) -> ServicesPlan:
    """The study's services plan, or the schema's defaults when the plan has none."""
    return config.plan.services or ServicesPlan()


def group_items(codebook: Codebook, group: str | None) -> list[str]:
    """The codebook's variables in ``group``, in codebook order."""
    if not group:
        return []
    return [name for name, v in codebook.variables.items() if v.group == group]


def cooperation_items(codebook: Codebook, plan: ServicesPlan) -> dict[str, str]:
    """Partner sector -> column: the cooperation group's items with the plan's prefix stripped."""
    items = group_items(codebook, plan.cooperation_group)
    return {(i[len(plan.cooperation_prefix):] if i.startswith(plan.cooperation_prefix) else i): i for i in items}


def pupil_counts(config: Study, codebooks: Mapping[str, Codebook], instrument: str = "pupils",
                 wave: str | None = None) -> pd.DataFrame | None:
    """Pupils per county and municipality on the plan's (else the first) wave of ``instrument``."""
    if instrument not in codebooks or not warehouse.table_exists(config.db_path, f"anon.{instrument}"):
        return None
    frame = warehouse.read_table(config.db_path, f"anon.{instrument}")
    chosen = first_wave(config, codebooks[instrument], wave)
    if chosen is not None and "wave" in frame.columns:
        frame = frame.loc[frame["wave"] == chosen]
    if "county" not in frame.columns:
        frame = frame.assign(county=specialists_analysis.ALL)
    return frame.groupby(["county", "municipality"]).size().rename("pupils").reset_index()


def _need_instrument(plan: ServicesPlan) -> str:
    return plan.needs[0].instrument if plan.needs else "pupils"


def build_specialists(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    plan = services_plan(config)
    codebook = codebooks[plan.specialists]
    frame = read_instrument(config, plan.specialists, codebooks)
    if frame.empty:
        log("specialists: the table has no rows")
    pupils = pupil_counts(config, codebooks, _need_instrument(plan), plan.wave)
    if pupils is None:
        log("specialists: no pupils table, so nothing per 100 pupils")
    groups = {"training": [c for c in ("training_taken",) if c in frame.columns]}
    for part, name in (("barriers", plan.barriers_group), ("training_needs", plan.training_needs_group)):
        groups[part] = group_items(codebook, name)
        if not groups[part]:
            log(f"specialists: no {part} group in the plan or codebook, so no {part} shares")
    parts = []
    for part, columns in groups.items():
        shares = specialists_analysis.ranked(specialists_analysis.yes_shares(frame, columns))
        if len(shares):
            parts.append(shares.assign(group=part))
    pairs = specialists_analysis.co_occurrence(frame, groups["barriers"])
    if len(pairs):
        parts.append(pairs.assign(sector=specialists_analysis.ALL, group="barriers"))
    shares = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(shares):
        shares = shares[["group", *[c for c in shares.columns if c != "group"]]]
    counts = specialists_analysis.specialist_counts(frame, ["sector"])
    roles = specialists_analysis.roles_by_sector(frame)
    competence = [specialists_analysis.competence(frame, d) for d in scale_definitions(codebook)]
    return {
        "specialists_counts": _or_empty(pd.concat([counts, roles], ignore_index=True), "variable", "level"),
        "specialists_workload": _or_empty(specialists_analysis.workload(frame, pupils), "variable", "measure"),
        "specialists_shares": _or_empty(shares, "group", "option"),
        "specialists_competence": _or_empty(pd.concat(competence, ignore_index=True) if competence
                                            else pd.DataFrame(), "scale", "measure"),
    }


def build_network(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    plan = services_plan(config)
    codebook = codebooks[plan.specialists]
    items = cooperation_items(codebook, plan)
    frame = read_instrument(config, plan.specialists, codebooks)
    if not items or frame.empty or "sector" not in frame.columns:
        log(f"cooperation_network: no variables in group '{plan.cooperation_group}', no sector column or no rows; "
            "empty table")
        return {"cooperation_network": empty_results(*PLACE_IDS, "measure", "sector", "partner")}
    waves = config.instrument_waves(codebook)
    seed = derived_seed(config.seed, NETWORK_SEED)
    network = specialists_analysis.cooperation_network(frame, items, seed, waves=waves, threshold=plan.threshold,
                                                        n_boot=plan.n_boot)
    log(f"cooperation_network: {len(items)} partner sectors, waves {waves}, bootstrap seed {seed}")
    return {"cooperation_network": network}


def build_inventory(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    plan = services_plan(config)
    frame = read_instrument(config, plan.instrument, codebooks)
    if "county" not in frame.columns:
        frame = frame.assign(county=specialists_analysis.ALL)
    inventory = services_analysis.inventory(frame, available_code=plan.available_code)
    return {"services_inventory": _or_empty(inventory, "county", "municipality", "dimension", "category", "measure")}


def build_gaps(config: Study, codebooks: Mapping[str, Codebook], log: Log) -> Frames:
    plan = config.plan.services
    services = read_instrument(config, plan.instrument, codebooks)
    parts_need, parts_gap = [], []
    for instrument in dict.fromkeys(n.instrument for n in plan.needs):
        if instrument not in codebooks:
            log(f"service_gaps: skipped for {instrument} (no {instrument} inputs)")
            continue
        pupils = read_instrument(config, instrument, codebooks)
        wave = first_wave(config, codebooks[instrument], plan.wave)
        if wave is not None and "wave" in pupils.columns:
            pupils = pupils.loc[pupils["wave"] == wave]
        entries = [n for n in plan.needs if n.instrument == instrument]
        absent = [n.need for n in entries if n.need not in pupils.columns]
        if absent:
            log(f"service_gaps: no column {', '.join(absent)} in {instrument}; those needs are left out")
        needs = {n.need: n.need for n in entries if n.need in pupils.columns}
        shares = services_analysis.need_shares(pupils, needs)
        shares.insert(0, "wave", wave or "")
        parts_need.append(shares)
        gaps = services_analysis.service_gaps(shares, services, {n.need: n.service_types for n in entries})
        gaps.insert(0, "wave", wave or "")
        parts_gap.append(gaps)
    need_table = pd.concat(parts_need, ignore_index=True) if parts_need else pd.DataFrame()
    gap_table = pd.concat(parts_gap, ignore_index=True) if parts_gap else pd.DataFrame()
    return {"services_needs": _or_empty(need_table, "wave", "county", "municipality", "need"),
            "service_gaps": _or_empty(gap_table, "wave", "county", "municipality", "need")}


def _or_empty(frame: pd.DataFrame, *ids: str) -> pd.DataFrame:
    return frame if len(frame.columns) else empty_results(*ids)


def _summary(table: str, frame: pd.DataFrame) -> dict:
    out = {"methods": ", ".join(sorted(frame["method"].astype(str).unique())[:8])}
    if table == "service_gaps" and "reading" in frame.columns:
        places = frame.loc[frame["municipality"] != specialists_analysis.ALL]
        out |= {f"readings {k}": int(v) for k, v in places["reading"].value_counts().items()}
    return out


def build_services_assets(study: Study) -> list[dg.AssetsDefinition]:
    """The specialists' and services' results assets (prune_assets leaves out what the study lacks)."""
    plan = services_plan(study)
    staff, services = plan.specialists, plan.instrument
    need_instruments = sorted({n.instrument for n in plan.needs}) or ["pupils"]
    return [
        _results_asset("specialists", {
            "specialists_counts": ("results.specialists_counts: specialists by sector (and sector: role title, "
                                   "study and county) per wave, study / county / municipality, Wilson CIs."),
            "specialists_workload": ("results.specialists_workload: experience and caseload per specialist (mean "
                                     "with t CI, median with IQR), all and per sector; specialists and caseload per "
                                     "100 pupils."),
            "specialists_shares": ("results.specialists_shares: training taken, each barrier and each training need "
                                   "(multi-response), shares with Wilson CIs and ranks, all and per sector; barrier "
                                   "co-occurrence."),
            "specialists_competence": ("results.specialists_competence: reliability of the competence scale per "
                                       "wave (alpha, omega) and its score per place, wave and sector."),
        }, [staff], build_specialists, _summary),
        _results_asset("cooperation_network", {
            "cooperation_network": ("results.cooperation_network: sector x sector mean reported cooperation "
                                    "frequency per place and wave; density, reciprocity, asymmetry, weakest links, "
                                    "strength and degree centrality (networkx); change in density with a cluster-"
                                    "bootstrap CI.")}, [staff], build_network, _summary),
        _results_asset("services_inventory", {
            "services_inventory": ("results.services_inventory: services, places, users, utilisation, waiting "
                                   "days (median, IQR) and availability per place, by type, provider and age "
                                   "group.")}, [services], build_inventory, _summary),
        _results_asset("service_gaps", {
            "services_needs": ("results.services_needs: share and number of pupils with each plan.services need, "
                               "per place, Wilson CIs."),
            "service_gaps": ("results.service_gaps: need per 1,000 pupils against places per 1,000 pupils of the "
                             "service types that meet it, per place and need, with an interval and a reading."),
        }, [services, *need_instruments], build_gaps, _summary, part="services"),
    ]


RESULT_TABLES = ("specialists_counts", "specialists_workload", "specialists_shares", "specialists_competence",
                 "cooperation_network", "services_inventory", "services_needs", "service_gaps")

services_report = report_asset(
    "services",
    deps=[*(["results", name] for name in RESULT_TABLES), meta_key("provenance"),
          ["results", "published_family"]],  # the family table its municipality counts come from
    description=("Specialists and services: who works with children, cooperation matrix and network, services "
                 "and need against supply per municipality, et and en; says what cannot be shown."),
    tags={DEPS_TAG: "any", CONTEXT_TAG: "results.published_family"},
)

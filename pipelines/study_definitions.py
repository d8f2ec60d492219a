"""Every asset, check, job and sensor of the pipeline, built for one study file.

:func:`build_definitions` builds the definitions of any study file; `mapstudy run` builds
them in the runner and again in each worker process (pipelines/executor.py), and
pipelines/definitions.py, the code location `dagster dev` loads, builds those of the study
named by MAPSTUDY_STUDY. Building has no side effect, so workers can import this module.

The asset graph is the study's: raw and anon assets for the instruments it has inputs
for, and every other asset only when what it needs is there. An asset says what it needs
in two ways, which :func:`prune_assets` reads (nothing here names an asset or an
instrument):

- a dep on ``["anon", <instrument>]``: the study must have inputs of that instrument;
- the tag ``{"mapstudy/plan": "<part>"}``: the study's analysis plan must have that part
  (``personas``, ``evaluation``, ``models`` ...), not empty, on an instrument the study has.
  Such an asset is judged by its part: its deps on other instruments the study lacks are
  optional inputs of the part (the evaluation's specialists), removed, not fatal.

An asset depending on a left-out asset is left out too (a report of skipped results),
unless it carries ``{"mapstudy/deps": "any"}`` (a report that shows what there is): then
only its left-out deps are removed, and it is left out when nothing it reads is left.
Each left-out asset gives one line ("skipped: personas (the plan has no personas part)"),
printed when a run starts and logged by the ingest asset.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

# observable_source_asset is marked beta; the raw exports are observed with it on purpose.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from pipelines.assets.analyses import build_analysis_assets
from pipelines.assets.common import CONTEXT_TAG, DEPS_TAG, PLAN_TAG
from pipelines.assets.coordinator import MUNICIPALITY_KEY, build_coordinator_assets
from pipelines.assets.evaluation import evaluation_report, evaluation_results_asset
from pipelines.assets.ingest import build_ingest_assets
from pipelines.assets.personas import persona_report, persona_results_asset
from pipelines.assets.privacy import build_protect_microdata
from pipelines.assets.reports import overview_report
from pipelines.assets.services import build_services_assets, services_report
from pipelines.assets.technical_report import technical_report
from pipelines.config import Study
from pipelines.console_log import console_logger
from pipelines.executor import executor_for
from pipelines.privacy.shareable import shared_instruments
from pipelines.resources import StudyResource, default_study_file
from pipelines.sensors import build_raw_files_sensor

#: Deps on these asset-key prefixes name an instrument that the study must have.
INSTRUMENT_PREFIXES = ("anon", "raw")


def _asset_name(asset: dg.AssetsDefinition) -> str:
    """How a skip line names an asset: its single key, or the multi-asset's node name."""
    keys = list(_keys(asset))
    if len(keys) == 1:
        return keys[0].to_user_string()
    return asset.node_def.name if asset.is_executable else ", ".join(k.to_user_string() for k in keys)


def _specs(asset) -> list[dg.AssetSpec]:
    return list(getattr(asset, "specs", []))  # a source asset (raw exports) has none


def _keys(asset) -> set[dg.AssetKey]:
    return set(asset.keys) if hasattr(asset, "keys") else {asset.key}


def _spec_tags(asset: dg.AssetsDefinition) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in _specs(asset):
        tags |= dict(spec.tags or {})
    return tags


def _deps(asset: dg.AssetsDefinition) -> set[dg.AssetKey]:
    return {dep.asset_key for spec in _specs(asset) for dep in spec.deps}


def plan_part_missing(study: Study, part: str) -> str | None:
    """Why the study cannot run a plan part (None: it can): the part is absent or its instruments are."""
    if part not in type(study.plan).model_fields:
        return None  # a tag this module does not know: the asset decides for itself
    value = getattr(study.plan, part)
    if value is None or (isinstance(value, (list, dict)) and not value):
        return f"the plan has no {part} part"
    entries = value if isinstance(value, list) else [value]
    named = [e.instrument for e in entries if hasattr(e, "instrument")]
    if named and not any(i in study.instruments for i in named):
        absent = ", ".join(dict.fromkeys(named))
        return f"no {absent} inputs"
    return None


def _absent_instrument_deps(asset: dg.AssetsDefinition, study: Study) -> set[dg.AssetKey]:
    return {key for key in _deps(asset) if len(key.path) == 2 and key.path[0] in INSTRUMENT_PREFIXES
            and key.path[1] not in study.instruments}


def _own_reason(asset: dg.AssetsDefinition, study: Study) -> str | None:
    """Why an asset cannot run on this study by what it declares itself (None: it can).

    An asset with a plan tag is judged by its plan part (whose instrument the study must
    have); its deps on other, absent instruments are optional inputs of that part (e.g.
    the evaluation's specialists) and are removed by :func:`prune_assets`, not fatal.
    """
    part = _spec_tags(asset).get(PLAN_TAG)
    if part:
        reason = plan_part_missing(study, part)
        if reason:
            return reason
        if part in type(study.plan).model_fields:
            return None
    absent = sorted({key.path[1] for key in _absent_instrument_deps(asset, study)})
    if absent:
        return f"no {', '.join(absent)} inputs"
    return None


def _without_deps(asset: dg.AssetsDefinition, lost: set[dg.AssetKey]) -> dg.AssetsDefinition:
    return asset.map_asset_specs(
        lambda spec: spec.replace_attributes(deps=[d for d in spec.deps if d.asset_key not in lost]))


def prune_assets(assets: Sequence[dg.AssetsDefinition], study: Study
                 ) -> tuple[list[dg.AssetsDefinition], list[str]]:
    """The assets this study can run, and one "skipped: <asset> (<why>)" line per asset left out.

    Reads only what each asset declares (deps on ``anon``/``raw`` instruments, the
    ``mapstudy/plan`` tag, the ``mapstudy/deps`` tag), so a new asset module needs no
    change here. Left-out assets take the assets depending on them along (transitively).
    """
    kept: list[dg.AssetsDefinition] = []
    dropped: set[dg.AssetKey] = set()
    names = {key: _asset_name(asset) for asset in assets for key in _keys(asset)}
    lines: list[str] = []
    for asset in assets:
        reason = _own_reason(asset, study)
        if reason:
            dropped |= _keys(asset)
            lines.append(f"skipped: {_asset_name(asset)} ({reason})")
        else:
            optional = _absent_instrument_deps(asset, study)
            kept.append(_without_deps(asset, optional) if optional else asset)
    changed = True
    while changed:
        changed = False
        for i, asset in enumerate(kept):
            lost = _deps(asset) & dropped
            if not lost:
                continue
            changed = True
            if _spec_tags(asset).get(DEPS_TAG) == "any" and _deps(asset) - lost - _context_keys(asset):
                kept[i] = _without_deps(asset, lost)
                break
            del kept[i]
            dropped |= _keys(asset)
            needed = sorted({names.get(k, k.to_user_string()) for k in lost})
            lines.append(f"skipped: {_asset_name(asset)} (needs {', '.join(needed)}, skipped)")
            break
    return kept, lines


def _context_keys(asset: dg.AssetsDefinition) -> set[dg.AssetKey]:
    """Deps that give a show-what-there-is asset context, not content: meta.* and its CONTEXT_TAG list."""
    named = tuple(_spec_tags(asset).get(CONTEXT_TAG, "").split("."))
    return {key for key in _deps(asset) if key.path[0] == "meta" or tuple(key.path[-2:]) == named}


def study_assets(study: Study, shared: Sequence[str], on_start=None) -> list[dg.AssetsDefinition]:
    """Every asset the pipeline could build for this study, before pruning."""
    return [*build_ingest_assets(study.instruments, on_start), build_protect_microdata(shared),
            *build_analysis_assets(study), overview_report, technical_report, evaluation_results_asset,
            evaluation_report, persona_results_asset, persona_report, *build_services_assets(study), services_report,
            *build_coordinator_assets(study)]


#: The job of the municipality reports (partitioned by municipality: a job of its own).
MUNICIPALITY_JOB = "municipality_reports"


def with_key_prefix(assets: Sequence, prefix: str) -> list:
    """Every asset (and its deps and checks) under the key prefix ``prefix``."""
    from dagster._core.definitions.module_loaders.utils import replace_keys_in_asset

    keys = {key for asset in assets for key in _keys(asset)}
    replacements = {key: key.with_prefix(prefix) for key in keys}
    return [replace_keys_in_asset(asset, replacements) for asset in assets]


def build_definitions(study_file: str | None = None, key_prefix: str | None = None, accept_partial: bool = False,
                      force: bool = False, workers: int = 1) -> tuple[dg.Definitions, list[str]]:
    """The definitions of one study file, and the lines saying which assets were left out and why.

    ``key_prefix`` (``mapstudy run`` and ``make dev`` pass the study's name) puts every asset
    key under it (``demo/results/models``), so studies sharing one Dagster instance never
    share an asset's status. Jobs: ``study`` (every unpartitioned asset) and
    ``municipality_reports`` (the reports partitioned by the study's municipalities).
    ``workers``: 1 runs every step in the launching process, more with Dagster's
    multiprocess executor (pipelines/executor.py).
    """
    resource = StudyResource(study_file=study_file or default_study_file(), accept_partial=accept_partial, force=force)
    study, codebooks = resource.load()
    lines: list[str] = []
    assets, skipped = prune_assets(study_assets(study, shared_instruments(codebooks), lambda: lines), study)
    lines += skipped
    if key_prefix:
        assets = with_key_prefix(assets, key_prefix)
    municipal = dg.AssetKey(MUNICIPALITY_KEY).with_prefix(key_prefix) if key_prefix else dg.AssetKey(MUNICIPALITY_KEY)
    present = {key for asset in assets for key in _keys(asset)}
    partitioned = dg.AssetSelection.assets(municipal) if municipal in present else None
    everything = dg.AssetSelection.all() - partitioned if partitioned is not None else dg.AssetSelection.all()
    job = dg.define_asset_job("study", selection=everything,
                              description="Everything for one study: ingest, analyses, reports.")
    jobs = [job]
    if partitioned is not None:
        jobs.append(dg.define_asset_job(MUNICIPALITY_JOB, selection=partitioned,
                                        description="The municipality reports, one partition per municipality."))
    definitions = dg.Definitions(
        assets=assets,
        resources={"study": resource},
        jobs=jobs,
        sensors=[build_raw_files_sensor(job)],
        loggers={"console": console_logger},
        executor=executor_for(workers),
    )
    return definitions, lines


def study_key_prefix(study_file: str | None = None) -> str:
    """The key prefix of a study: its name (``study:`` in the study file)."""
    from pipelines.config import load_study

    return load_study(StudyResource(study_file=study_file or default_study_file()).path()).study

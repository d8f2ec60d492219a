"""Disclosure-control assets: the shareable microdata (`share.*`) and `meta.disclosure`.

One multi-asset protects every shareable instrument and measures the risk before and
after in the same DuckDB transaction, so the risk table always describes the shareable
tables beside it. Its k-anonymity checks are blocking: the tables are checked in memory
before anything is written (nothing is written when k fails), and the written tables are
read back and checked again for the check result; where a table links a pupil's waves, k
is checked per pupil over the waves too (pipelines/privacy/shareable.py). Each shareable
table carries its own pseudonyms (``release_ids``), so the share tables cannot be joined to
each other or to the anon tables. Messages and metadata carry counts and column names
only, never a value.
"""

from collections.abc import Sequence

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from pipelines import warehouse
from pipelines.assets.common import meta_key, output_key
from pipelines.ingest.stage import study_keys
from pipelines.privacy.shareable import disclosure_report, protect, release_ids, shareable_below_k
from pipelines.freshness import skip_when_up_to_date
from pipelines.resources import StudyResource

K_CHECK = "k_anonymity"


class ShareGateError(RuntimeError):
    """A shareable table would break k-anonymity; nothing was written."""


def build_protect_microdata(shared: Sequence[str]) -> dg.AssetsDefinition:
    """The disclosure-control multi-asset for the study's shareable instruments.

    ``shared`` is ``pipelines.privacy.shareable.shared_instruments(codebooks)``: the
    instruments of the study whose records are pupils.
    """
    shared = tuple(shared)
    _specs = [
        dg.AssetSpec(["share", i], group_name="share", deps=[["anon", i]], kinds={"duckdb"},
                     description=f"share.{i}: anon.{i} with quasi-identifiers recoded and suppressed to k-anonymity.")
        for i in shared
    ] + [
        dg.AssetSpec(meta_key("disclosure"), group_name="share", deps=[["anon", i] for i in shared],
                     kinds={"duckdb"},
                     description="meta.disclosure: k, individual risk, l-diversity and information loss, "
                                 "before and after protection."),
    ]
    _checks = [
        dg.AssetCheckSpec(K_CHECK, asset=["share", i], blocking=True,
                          description="Every record shares its key (within its wave) with at least k - 1 others, and "
                                      "every pupil their keys over all waves with at least k - 1 other pupils.")
        for i in shared
    ]

    @dg.multi_asset(specs=_specs, check_specs=_checks, pool="duckdb", name="protect_microdata",
                    description="Recode, suppress and measure: the shareable tables and their disclosure risk.")
    @skip_when_up_to_date
    def protect_microdata(context: AssetExecutionContext, study: StudyResource):
        config, codebooks = study.load()
        k = config.privacy.k_anonymity
        keys = study_keys(config)
        tables, reports, removed = {}, [], {}
        for name in shared:
            anon = warehouse.read_table(config.db_path, f"anon.{name}")
            protected = protect(anon, codebooks[name], config)
            tables[name] = release_ids(protected.table, codebooks[name], keys, f"share.{name}")
            removed[name] = protected.records_removed
            reports.append(disclosure_report(name, anon, protected, config.privacy))
            context.log.info(f"share.{name}: {len(protected.table)} of {len(anon)} records, "
                             f"{protected.records_removed} left out to reach k = {k}")
        failing = {name: shareable_below_k(table, codebooks[name], k) for name, table in tables.items()}
        failing = {name: n for name, n in failing.items() if n}
        if failing:
            for name in shared:
                yield dg.AssetCheckResult(asset_key=output_key(context, "share", name), check_name=K_CHECK,
                                          passed=name not in failing, metadata={"records_below_k": failing.get(name, 0)})
            raise ShareGateError("k-anonymity gate failed, nothing written: " + ", ".join(
                f"share.{name} has {n} record(s) below k = {k}" for name, n in failing.items()))
        disclosure = pd.concat(reports, ignore_index=True)
        warehouse.write_tables(config.db_path, {**{f"share.{n}": t for n, t in tables.items()},
                                                "meta.disclosure": disclosure})
        for name in shared:
            written = warehouse.read_table(config.db_path, f"share.{name}")
            below = shareable_below_k(written, codebooks[name], k)
            yield dg.MaterializeResult(asset_key=output_key(context, "share", name), metadata={
                "dagster/row_count": len(written), "records_left_out": removed[name], "k": k})
            yield dg.AssetCheckResult(asset_key=output_key(context, "share", name), check_name=K_CHECK, passed=below == 0,
                                      metadata={"records_below_k": below, "k": k, "records": len(written)})
        yield dg.MaterializeResult(asset_key=output_key(context, "meta", "disclosure"), metadata={
            "dagster/row_count": len(disclosure), **_headline(disclosure)})

    return protect_microdata


def _headline(disclosure: pd.DataFrame) -> dict[str, float]:
    """Expected re-identifications before and after, per table, for the asset's metadata."""
    rows = disclosure[disclosure["measure"] == "expected_reidentifications"]
    return {f"expected re-identifications {r.table}": round(float(r.estimate), 3) for r in rows.itertuples()}

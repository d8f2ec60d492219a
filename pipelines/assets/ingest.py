"""Ingest assets: the raw exports (observed, never written) and the anon and meta tables.

One multi-asset reads every export of the study, because identity resolution must see all
pupil files at once and identifying values must never cross an asset boundary (Dagster
would store them). Its privacy gate and row reconciliation are blocking checks: when they
fail, nothing downstream runs.

The assets are built from the study (:func:`build_ingest_assets`): a raw and an anon asset
for each instrument the study has inputs for, and no others, so an absent instrument is
an absent asset rather than an empty table or an error.
"""


import hashlib
from collections.abc import Callable, Sequence

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.assets.common import meta_key, output_key
from pipelines.config import file_sha256
from pipelines.ingest.stage import PrivacyGateError, run_ingest
from pipelines.ingest.study import IngestResult
from pipelines.freshness import skip_when_up_to_date
from pipelines.ingest.inputs import ingest_inputs
from pipelines.resources import StudyResource


def _raw_asset(instrument: str) -> dg.AssetsDefinition:
    @dg.observable_source_asset(key=["raw", instrument], group_name="ingest",
                                description=f"The study's raw {instrument} exports under data/raw/<study>/ (read-only).")
    def observe(study: StudyResource) -> dg.DataVersion:
        config, _ = study.load()
        digests = []
        for item in config.inputs:
            if item.instrument == instrument:
                path = config.raw_path / item.path
                inside = path.resolve().is_relative_to(config.raw_path.resolve())  # never read through a symlink out
                digests.append(f"{item.path}:{file_sha256(path) if inside and path.is_file() else 'missing'}")
        return dg.DataVersion(hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16])

    return observe


_meta_specs = [
    dg.AssetSpec(meta_key("quality"), group_name="ingest", kinds={"duckdb"},
                 description="meta.quality: every data-quality finding (file, row, column, rule), no values."),
    dg.AssetSpec(meta_key("row_counts"), group_name="ingest", kinds={"duckdb"},
                 description="meta.row_counts: rows read, accepted and rejected per input file."),
    dg.AssetSpec(meta_key("provenance"), group_name="ingest", kinds={"duckdb"},
                 description="meta.provenance: input hashes, code and lockfile versions, config hashes, seeds."),
]


def build_ingest_assets(instruments: Sequence[str],
                        on_start: Callable[[], list[str]] | None = None) -> list[dg.AssetsDefinition]:
    """The raw source assets and the ingest multi-asset for the study's instruments.

    ``on_start`` gives lines the run logs first (study_definitions.py passes the assets it left
    out and why, so the run's log says what the run will not produce).
    """
    instruments = tuple(instruments)
    anon_specs = [
        dg.AssetSpec(["anon", i], group_name="anon", deps=[["raw", i]], kinds={"duckdb"},
                     description=f"anon.{i}: pseudonymised, harmonised {i} records, one row per person and wave.")
        for i in instruments
    ]
    checks = [
        dg.AssetCheckSpec("no_direct_identifiers", asset=["anon", i], blocking=True,
                          description="No column is a direct identifier; no text holds a code, e-mail, phone or name.")
        for i in instruments
    ] + [
        dg.AssetCheckSpec("rows_reconcile", asset=meta_key("row_counts"), blocking=True,
                          description="Every input row is accepted or rejected with a reason: "
                                      "read = accepted + rejected."),
    ]

    @dg.multi_asset(specs=anon_specs + _meta_specs, check_specs=checks, pool="duckdb", name="ingest_study",
                    description="Read, harmonise, validate and pseudonymise every export of the study into DuckDB.")
    @skip_when_up_to_date(extra_inputs=ingest_inputs)
    def ingest_study_asset(context: AssetExecutionContext, study: StudyResource):
        for line in on_start() if on_start else []:
            context.log.info(line)
        config, codebooks = study.load()

        def progress(message: str, fraction: float) -> None:
            context.log.info(f"ingest {fraction:4.0%}: {message}")

        try:
            summary = run_ingest(config, codebooks, progress, accept_partial=study.accept_partial)
        except PrivacyGateError as exc:
            for i in instruments:
                yield dg.AssetCheckResult(asset_key=output_key(context, "anon", i), check_name="no_direct_identifiers",
                                          passed=False, metadata={"problems": str(exc)})
            raise
        result = summary.result
        for i in instruments:
            table = result.tables.get(i)
            rows, columns = (len(table), len(table.columns)) if table is not None else (0, 0)
            yield dg.MaterializeResult(asset_key=output_key(context, "anon", i), metadata={
                "dagster/row_count": rows, "columns": columns,
                "fingerprint": summary.provenance_fingerprint[:12],
            })
            yield dg.AssetCheckResult(asset_key=output_key(context, "anon", i), check_name="no_direct_identifiers",
                                      passed=True, metadata={"problems": 0})
        by_rule = result.quality.groupby("rule")["n"].sum().sort_index()
        yield dg.MaterializeResult(asset_key=output_key(context, "meta", "quality"), metadata={
            "dagster/row_count": len(result.quality), **{f"rule {k}": int(v) for k, v in by_rule.items()}})
        counts = result.row_counts
        yield dg.MaterializeResult(asset_key=output_key(context, "meta", "row_counts"), metadata={
            "dagster/row_count": len(counts), "rows_read": int(counts["rows_read"].sum()),
            "rows_accepted": int(counts["rows_accepted"].sum()), "rows_rejected": int(counts["rows_rejected"].sum())})
        mismatched = unreconciled_files(result)
        yield dg.AssetCheckResult(asset_key=output_key(context, "meta", "row_counts"), check_name="rows_reconcile",
                                  passed=not mismatched,
                                  metadata={"files_not_reconciled": ", ".join(mismatched) or "none"})
        yield dg.MaterializeResult(asset_key=output_key(context, "meta", "provenance"),
                                   metadata={"fingerprint": summary.provenance_fingerprint})

    return [*(_raw_asset(i) for i in instruments), ingest_study_asset]


def unreconciled_files(result: IngestResult) -> list[str]:
    """Files whose rows in the anon tables differ from read - rejected (should be none)."""
    bad = []
    for row in result.row_counts.itertuples():
        table = result.tables[row.instrument]
        written = int((table["source"] == row.file).sum())
        if row.rows_read != row.rows_accepted + row.rows_rejected or written != row.rows_accepted:
            bad.append(row.file)
    return bad

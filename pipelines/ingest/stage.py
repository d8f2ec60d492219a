"""The ingest stage as one call: study in, anon and meta tables written, summary out.

The Dagster asset and the tests call this; it owns the order of the work (keys, ingest,
privacy gate, one DuckDB transaction) so that nothing is written when the gate fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines import catalog, warehouse
from pipelines.config import Codebook, Study
from pipelines.ingest import losses
from pipelines.ingest.losses import DataLossError
from pipelines.ingest.study import IngestResult, Progress, ingest_study
from pipelines.privacy import erasure, gates
from pipelines.privacy.pseudonyms import PseudonymKeys, load_secret
from pipelines.provenance import provenance_table
from pipelines.study_plan import analysis_plan_table


class PrivacyGateError(RuntimeError):
    """The anon tables would hold identifiers; nothing was written."""


@dataclass
class IngestSummary:
    result: IngestResult
    provenance_fingerprint: str
    gate_problems: list[str]
    losses: list[losses.Problem] = field(default_factory=list)  # accepted with --accept-partial; empty when clean


def study_keys(study: Study) -> PseudonymKeys:
    key_file = study.resolve(study.secret.file) if study.secret.file else None
    return PseudonymKeys.from_secret(load_secret(study.secret.env, key_file))


def derived_columns(codebook: Codebook) -> dict[str, tuple[str, str]]:
    return {name: ("INTEGER" if d.type == "integer" else "DOUBLE", d.expr) for name, d in codebook.derived.items()}


def run_ingest(study: Study, codebooks: dict[str, Codebook], progress: Progress | None = None,
               accept_partial: bool = False) -> IngestSummary:
    """Ingest the study and write it in one transaction.

    A file unreadable, missing or empty, or rows rejected above `ingest.max_rejected_share`,
    raise DataLossError before anything is written (the previous database stays whole),
    unless `accept_partial`: then the rest is written and the problems go to `meta.losses`.
    """
    keys = study_keys(study)
    result = ingest_study(study, codebooks, keys, erasure.erased_pseudonyms(study, keys), progress)
    lost = losses.problems(result.quality, result.row_counts, study.ingest)
    if lost and not accept_partial:
        raise DataLossError.of(lost)
    problems = []
    for instrument, frame in result.tables.items():
        problems += gates.role_violations(f"anon.{instrument}", frame, codebooks[instrument])
        problems += gates.content_violations(f"anon.{instrument}", frame, codebooks[instrument], result.names_scanner)
    if problems:
        raise PrivacyGateError("privacy gate failed, nothing written:\n  " + "\n  ".join(problems))
    provenance = provenance_table(study, codebooks, result.inputs, result.encodings)
    tables = {f"anon.{name}": frame for name, frame in result.tables.items()}
    tables |= {
        "meta.quality": result.quality,
        "meta.row_counts": result.row_counts,
        "meta.losses": losses.losses_table(lost),
        "meta.provenance": provenance,
        "meta.variables": catalog.variables_table(codebooks),
        "meta.value_labels": catalog.value_labels_table(codebooks),
        "meta.study": catalog.study_table(study),
        "meta.municipalities": catalog.municipalities_table(study),
        "meta.analysis_plan": analysis_plan_table(study, codebooks),
    }
    derived = {f"anon.{name}": derived_columns(cb) for name, cb in codebooks.items()}
    warehouse.write_tables(study.db_path, tables, derived)
    fingerprint = provenance.loc[provenance["kind"] == "fingerprint", "value"].iloc[0]
    return IngestSummary(result, fingerprint, problems, lost)

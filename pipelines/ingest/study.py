"""Ingest a whole study: read every input, harmonise, resolve identities, pseudonymise.

This is the privacy boundary. Identifying values exist only inside `ingest_study`, in
memory; what it returns holds pseudonyms, coarsened quasi-identifiers, scrubbed free text
and findings without values, and is all that may be written anywhere. Pupil identities are
resolved over every pupil instrument and wave at once, so that a mistyped code in one file
still links to the same pupil's valid code in another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.config import Codebook, Input, Study, file_sha256
from pipelines.ingest.findings import Findings, combine
from pipelines.ingest.harmonise import harmonise
from pipelines.ingest.readers import UnreadableFile, check_inside, read_raw
from pipelines.ingest.typing import ID_COLUMN, anon_columns, coarsen_birth_date, typed_frame
from pipelines.privacy import identity as ident
from pipelines.privacy.pseudonyms import PseudonymKeys
from pipelines.privacy.scrub import Scrubber, harvest_names

Progress = Callable[[str, float], None]

NAME_IDENTITIES = ("first_name", "last_name", "other_name")


@dataclass
class _Part:
    """One input file on its way through the ingest (identifiers present: memory only)."""

    item: Input
    order: int
    findings: Findings
    frame: pd.DataFrame | None = None
    rejected: pd.Series = field(default_factory=lambda: pd.Series(dtype="object"))
    rows_read: int = 0
    sha256: str | None = None
    encoding: str | None = None


@dataclass
class IngestResult:
    """Everything the ingest step may write: no identifying values anywhere in it."""

    tables: dict[str, pd.DataFrame]
    quality: pd.DataFrame
    row_counts: pd.DataFrame
    inputs: list[tuple[str, str | None]]  # (path relative to raw_dir, SHA-256 or None if missing)
    names_scanner: Scrubber  # the study's names, compiled, for the privacy gate (memory only)
    encodings: dict[str, str] = field(default_factory=dict)  # CSV path -> the encoding it was read in


def ingest_study(study: Study, codebooks: dict[str, Codebook], keys: PseudonymKeys,
                 erased: frozenset[str] = frozenset(), progress: Progress | None = None) -> IngestResult:
    """Read, harmonise, resolve and pseudonymise every input of the study."""
    report = progress or (lambda _msg, _frac: None)
    parts = []
    for order, item in enumerate(study.inputs):
        report(f"reading {item.path}", order / max(len(study.inputs), 1) * 0.7)
        parts.append(_read_part(study, codebooks[item.instrument], item, order))

    report("resolving identities", 0.75)
    _resolve_identities(parts, codebooks, keys)
    report("pseudonymising and scrubbing", 0.85)
    scrubber = Scrubber(_study_names(parts, codebooks))
    tables = {}
    for instrument, codebook in codebooks.items():
        mine = [p for p in parts if p.item.instrument == instrument]
        _exclude_erased(mine, erased)
        _reject_duplicates(mine, codebook)
        tables[instrument] = _anon_table(study, codebook, mine, keys, scrubber)
    report("done", 1.0)
    return IngestResult(
        tables=tables,
        quality=combine([p.findings.frame() for p in parts]),
        row_counts=_row_counts(parts),
        inputs=[(p.item.path, p.sha256) for p in parts],
        names_scanner=scrubber,
        encodings={p.item.path: p.encoding for p in parts if p.encoding},
    )


def _study_names(parts: list[_Part], codebooks: dict[str, Codebook]) -> frozenset[str]:
    """Every name token in any name column of the study: free text is scrubbed of all of them."""
    names: set[str] = set()
    for part in parts:
        if part.frame is None:
            continue
        variables = codebooks[part.item.instrument].variables
        columns = [n for n, v in variables.items() if v.identity in NAME_IDENTITIES and n in part.frame]
        names |= harvest_names(part.frame, columns)
    return frozenset(names)


def _read_part(study: Study, codebook: Codebook, item: Input, order: int) -> _Part:
    part = _Part(item=item, order=order, findings=Findings(item.instrument, item.wave, item.path))
    path = study.raw_path / item.path
    try:
        check_inside(path, study.raw_path)  # before anything opens the file
        if path.is_file():
            part.sha256 = file_sha256(path)
        raw = read_raw(path, study.sources[item.source], study.ingest.max_cell_chars)
    except UnreadableFile as exc:
        part.findings.summary(exc.rule, "error", "file_rejected", 1, None, None, str(exc))
        return part
    except OSError as exc:  # permissions, a vanished file: the message names the file, not its content
        part.findings.summary("unreadable_file", "error", "file_rejected", 1, None, None,
                              f"{path.name}: cannot be opened ({exc.strerror or type(exc).__name__})")
        return part
    part.encoding = raw.encoding
    for note in raw.notes:
        if note.rows:
            part.findings.cells(note.rule, note.severity, note.action, np.asarray(note.rows), note.column, None,
                                note.message)
        else:
            part.findings.summary(note.rule, note.severity, note.action, note.n, note.column, None, note.message)
    part.rows_read = raw.rows_read
    if part.rows_read == 0:
        part.findings.summary("empty_file", "error", "file_rejected", 1, None, None,
                              f"{path.name}: a header but no data rows")
    harmonised = harmonise(raw.frame, study, codebook, item.source, part.findings, raw.value_labels,
                           raw.declared_missing, keep_index=True)
    part.frame = harmonised.frame
    part.rejected = pd.concat([harmonised.rejected, pd.Series(raw.rejected, dtype="object")])
    return part


def _resolve_identities(parts: list[_Part], codebooks: dict[str, Codebook], keys: PseudonymKeys) -> None:
    """Attach `_id` (pseudonym) and `_match` to every readable frame; reject rows with no identity."""
    pupils = [p for p in parts if p.frame is not None and codebooks[p.item.instrument].unit == "pupil"]
    frames = [ident.pupil_identity_frame(p.frame) for p in pupils]
    for part, ids, resolved in zip(pupils, frames, ident.resolve_pupils(frames)):
        frame = part.frame
        _note_identity_findings(part, resolved)
        if "sex" in frame:
            fill = frame["sex"].isna() & resolved.sex_from_code.notna()
            part.findings.summary("sex_from_code", "info", "recoded", int(fill.sum()), None, "sex",
                                  "sex taken from the personal code")
            frame.loc[fill, "sex"] = resolved.sex_from_code[fill]
        if "birth_date" in frame:
            frame["birth_date"] = ids["dob"]
        _attach(part, resolved, "pupil", keys)
    for part in parts:
        if part.frame is not None and codebooks[part.item.instrument].unit == "staff":
            _attach(part, ident.resolve_staff(part.frame), "staff", keys)


def _note_identity_findings(part: _Part, resolved: ident.ResolvedIdentity) -> None:
    f = part.findings
    invalid_rows = resolved.code_invalid[resolved.code_invalid].index.to_numpy()
    f.cells("invalid_personal_code", "warning", "kept", invalid_rows, None, "personal_code",
            "personal code fails the isikukood checks (digits, birth date or check digit)")
    by_name = resolved.match.isin([ident.MATCH_NAME_DOB_MUNICIPALITY, ident.MATCH_NAME_DOB])
    f.summary("identity_matched_by_name", "info", "kept", int(by_name.sum()), None, "personal_code",
              "linked to a valid-coded record by name and birth date")
    f.summary("identity_unlinked", "warning", "kept", int((resolved.match == ident.MATCH_UNLINKED).sum()), None,
              "personal_code", "no valid code and no match: pseudonym from name, birth date and municipality")


def _attach(part: _Part, resolved: ident.ResolvedIdentity, domain: str, keys: PseudonymKeys) -> None:
    frame = part.frame
    missing = resolved.identity.isna() & ~frame.index.isin(part.rejected.index)
    part.findings.cells("no_identity", "error", "row_rejected", missing[missing].index.to_numpy(), None, None,
                        "neither a valid personal code nor name and birth date")
    part.rejected = pd.concat([part.rejected, pd.Series("no_identity", index=missing[missing].index)])
    frame["_id"] = keys.pseudonyms(domain, resolved.identity)
    frame["_match"] = resolved.match


def _exclude_erased(parts: list[_Part], erased: frozenset[str]) -> None:
    if not erased:
        return
    for part in parts:
        if part.frame is None or "_id" not in part.frame:
            continue
        hit = part.frame["_id"].isin(erased) & ~part.frame.index.isin(part.rejected.index)
        part.findings.summary("erased", "info", "row_excluded", int(hit.sum()), None, None,
                              "rows of people in the erasure register")
        part.rejected = pd.concat([part.rejected, pd.Series("erased", index=hit[hit].index)])


def _reject_duplicates(parts: list[_Part], codebook: Codebook) -> None:
    """Keep one record per person and wave: the most complete, then the first in file order."""
    if codebook.unit == "none":
        return
    analytic = [n for n, v in codebook.variables.items() if v.role != "direct_identifier"]
    rows = []
    for part in parts:
        if part.frame is None:
            continue
        live = part.frame[~part.frame.index.isin(part.rejected.index)]
        rows.append(pd.DataFrame({
            "wave": part.item.wave, "id": live["_id"], "filled": live.reindex(columns=analytic).notna().sum(axis=1),
            "order": part.order, "row": live.index,
        }))
    if not rows:
        return
    allrows = pd.concat(rows, ignore_index=True).sort_values(["wave", "id", "filled", "order", "row"],
                                                             ascending=[True, True, False, True, True])
    dup = allrows[allrows.duplicated(["wave", "id"], keep="first")]
    for part in parts:
        mine = dup.loc[dup["order"] == part.order, "row"].to_numpy()
        part.findings.cells("duplicate_record", "warning", "row_rejected", mine, None, None,
                            "the same person again in this instrument and wave: the more complete record is kept")
        part.rejected = pd.concat([part.rejected, pd.Series("duplicate_record", index=mine)])


def _anon_table(study: Study, codebook: Codebook, parts: list[_Part], keys: PseudonymKeys,
                scrubber: Scrubber) -> pd.DataFrame:
    pieces = []
    county_of = study.municipality_county()
    for part in parts:
        if part.frame is None:
            continue
        live = part.frame[~part.frame.index.isin(part.rejected.index)]  # read only: no copy
        piece = pd.DataFrame(index=live.index)
        if codebook.unit != "none":
            piece[ID_COLUMN[codebook.unit]] = live["_id"]
        if codebook.waves:
            piece["wave"] = part.item.wave
        piece["county"] = live["municipality"].map(county_of)
        for name, var in codebook.variables.items():
            if name not in live:
                continue
            if var.transform == "pseudonymise":
                piece[f"{name}_id"] = keys.pseudonyms(var.pseudonym_domain,
                                                      _scoped_names(live[name], live["municipality"]))
            elif var.role == "free_text":
                if var.free_text == "scrub":
                    piece[name], counts = scrubber.scrub_series(live[name])
                    part.findings.summary("free_text_scrubbed", "info", "recoded", sum(counts.values()), None, name,
                                          "identifiers replaced by placeholders: " + ", ".join(
                                              f"{kind} {n}" for kind, n in sorted(counts.items())))
            elif var.identity == "birth_date":
                piece["birth_year"], piece["age"] = coarsen_birth_date(live[name], study.reference_date)
            elif var.role != "direct_identifier":
                piece[name] = live[name]
        if codebook.unit == "pupil":
            piece["identity_match"] = live["_match"]
        piece["source"] = part.item.path
        pieces.append(piece)
    columns = anon_columns(codebook)
    if not pieces:
        return typed_frame(pd.DataFrame(columns=columns), codebook)
    table = typed_frame(pd.concat(pieces, ignore_index=True).reindex(columns=columns), codebook)
    order = [c for c in (ID_COLUMN.get(codebook.unit), "wave", "municipality", "source") if c in table]
    return table.sort_values(order, kind="mergesort", na_position="last").reset_index(drop=True)


def _scoped_names(names: pd.Series, municipalities: pd.Series) -> list[str | None]:
    """``f"{_lower(name)}|{municipality}"`` per row, None where the name is not text (``_lower``
    keeps text text and anything else as it is); each distinct name lowered once."""
    lowered: dict[str, str] = {}
    out: list[str | None] = []
    for name, municipality in zip(names.tolist(), municipalities.tolist()):
        if isinstance(name, str):
            low = lowered.get(name)
            if low is None:
                low = lowered[name] = _lower(name)
            out.append(f"{low}|{municipality}")
        else:
            out.append(None)
    return out


def _lower(value: object) -> object:
    return " ".join(value.split()).casefold() if isinstance(value, str) else value


def _row_counts(parts: list[_Part]) -> pd.DataFrame:
    records = []
    for part in parts:
        rejected = int(part.rejected.index.nunique()) if part.frame is not None else 0
        records.append({
            "instrument": part.item.instrument, "wave": part.item.wave, "county": part.item.county,
            "file": part.item.path, "rows_read": part.rows_read,
            "rows_accepted": part.rows_read - rejected, "rows_rejected": rejected,
        })
    frame = pd.DataFrame.from_records(records)
    for column in ("rows_read", "rows_accepted", "rows_rejected"):
        frame[column] = frame[column].astype(np.int64)
    return frame

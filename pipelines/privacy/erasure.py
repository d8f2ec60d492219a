"""The erasure register: people who asked to be removed stay removed in every later run.

The register holds pseudonyms only (never a personal code), one per line, in
`<erasure_dir>/<study>.txt` (data/erasure/ by default) beside the data it governs and outside git. `mapstudy erase`
adds to it from personal codes given on a file or standard input; the ingest step excludes
every listed pseudonym from every instrument and wave, and counts the rows it excluded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pipelines.config import Study
from pipelines.privacy.identity import clean_code, code_identity, valid_code
from pipelines.privacy.pseudonyms import PseudonymKeys


def register_path(study: Study) -> Path:
    return study.resolve(study.erasure_dir) / f"{study.study}.txt"


def erased_pseudonyms(study: Study) -> frozenset[str]:
    path = register_path(study)
    if not path.is_file():
        return frozenset()
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def add_to_register(study: Study, keys: PseudonymKeys, codes: Iterable[str]) -> tuple[int, int]:
    """Add the pseudonyms of valid personal codes; return (added, invalid codes skipped)."""
    current = set(erased_pseudonyms(study))
    added, invalid = 0, 0
    for raw in codes:
        code = clean_code(raw)
        if not code:
            continue
        if not valid_code(code):
            invalid += 1
            continue
        pseudonym = keys.pseudonym("pupil", code_identity(code))
        if pseudonym not in current:
            current.add(pseudonym)
            added += 1
    path = register_path(study)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{p}\n" for p in sorted(current)), encoding="utf-8")
    return added, invalid

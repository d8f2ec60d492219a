"""The erasure register: people who asked to be removed stay removed in every later run.

The register holds pseudonyms only (never a personal code or an e-mail), one per line, in
`<erasure_dir>/<study>.txt` (data/erasure/ by default) beside the data it governs and outside
git. Pupils are listed by their pupil pseudonym (`P-...`), specialists by their staff
pseudonym (`S-...`). `mapstudy erase` adds to it from personal codes (`--codes`) or staff
e-mails (`--staff`) given on a file or standard input; the ingest step excludes every listed
pseudonym from every instrument and wave, and counts the rows it excluded.

The first line records the fingerprint of the key the pseudonyms were made with
(`# key-fingerprint: ...`, a hash of a derived key, never the key). Pseudonyms change with
the key, so after a key change the run refuses to go on until the register is re-keyed
from the personal codes and e-mails kept by the person responsible for erasures
(`mapstudy erase --rekey --codes FILE [--staff FILE]`).

The register is rewritten whole, through a temporary file renamed over it, by a command
holding the study lock (`pipelines/locks.py`): concurrent erasures queue, none is lost, and
a crash leaves the old register or the new one.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Study
from pipelines.locks import write_text_atomically
from pipelines.privacy.identity import clean_code, code_identity, name_key, valid_code
from pipelines.privacy.pseudonyms import PseudonymKeys

FINGERPRINT_PREFIX = "# key-fingerprint:"


class ErasureError(RuntimeError):
    """The erasure request or the register cannot be used; the message says what to do."""


class ErasureKeyMismatch(ErasureError):
    """The register was made with another key than the study's current one."""


@dataclass(frozen=True)
class Register:
    fingerprint: str | None  # None: an old register written before fingerprints were recorded
    pseudonyms: frozenset[str]


def register_path(study: Study) -> Path:
    return study.resolve(study.erasure_dir) / f"{study.study}.txt"


def read_register(study: Study) -> Register:
    path = register_path(study)
    if not path.is_file():
        return Register(None, frozenset())
    fingerprint, pseudonyms = None, set()
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if line.startswith(FINGERPRINT_PREFIX):
            fingerprint = line[len(FINGERPRINT_PREFIX):].strip()
        elif line and not line.startswith("#"):
            pseudonyms.add(line)
    return Register(fingerprint, frozenset(pseudonyms))


def check_register(study: Study, keys: PseudonymKeys) -> Register:
    """The register, after checking it was made with ``keys``; ErasureKeyMismatch otherwise."""
    register = read_register(study)
    if register.pseudonyms and register.fingerprint and register.fingerprint != keys.fingerprint():
        raise ErasureKeyMismatch(
            f"the erasure register {register_path(study)} was made with another pseudonymisation key "
            f"(fingerprint {register.fingerprint}, the study's key has {keys.fingerprint()}): its "
            f"{len(register.pseudonyms)} people would not be excluded. Nothing was run. Re-key it from the "
            "personal codes (and staff e-mails) kept by the person responsible for erasures: "
            "mapstudy erase --rekey --codes FILE [--staff FILE]")
    return register


def erased_pseudonyms(study: Study, keys: PseudonymKeys | None = None) -> frozenset[str]:
    """Every pseudonym in the register (checked against ``keys`` when given)."""
    register = check_register(study, keys) if keys is not None else read_register(study)
    return register.pseudonyms


def write_register(study: Study, keys: PseudonymKeys, pseudonyms: Iterable[str]) -> Path:
    path = register_path(study)
    body = "".join(f"{p}\n" for p in sorted(set(pseudonyms)))
    write_text_atomically(path, f"{FINGERPRINT_PREFIX} {keys.fingerprint()}\n{body}")
    return path


def read_request_lines(path: Path | None, stdin_text: str | None = None) -> list[str]:
    """The lines of an erasure request file: UTF-8 (with or without BOM) or UTF-16 with BOM.

    Raises ErasureError (never quoting the content) for anything else.
    """
    if path is None:
        data = (stdin_text or "").encode("utf-8")
        where = "standard input"
    else:
        where = str(path)
        if path.is_dir():
            raise ErasureError(f"{where} is a folder, not a file of personal codes")
        data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise ErasureError(f"{where} is not a text file in UTF-8 or UTF-16 (with a BOM): save it as "
                           "UTF-8 text, one personal code (or e-mail) per line") from None
    if "\x00" in text:
        raise ErasureError(f"{where} holds binary data, not text: give a text file, one personal code "
                           "(or e-mail) per line")
    return [line.lstrip("\ufeff") for line in text.splitlines()]


def staff_identity(line: str) -> str | None:
    """The identity `identity.resolve_staff` gives a specialist written as an e-mail, or as
    ``first name;last name;municipality`` (the municipality as the study file spells it)."""
    text = line.strip().lstrip("\ufeff")
    if "@" in text and ";" not in text:
        return "em:" + text.casefold()
    parts = [p.strip() for p in text.split(";")]
    if len(parts) == 3 and all(parts):
        name = name_key(parts[0], parts[1])
        return f"nm:{name}|{parts[2]}" if name else None
    return None


def pseudonyms_of_request(keys: PseudonymKeys, codes: Iterable[str] = (),
                          staff: Iterable[str] = ()) -> tuple[set[str], int]:
    """(pseudonyms, lines that were neither a valid personal code nor a staff identity)."""
    found, invalid = set(), 0
    for raw in codes:
        code = clean_code(raw.lstrip("\ufeff"))
        if not code:
            continue
        if not valid_code(code):
            invalid += 1
            continue
        found.add(keys.pseudonym("pupil", code_identity(code)))
    for raw in staff:
        if not raw.strip():
            continue
        identity = staff_identity(raw)
        if identity is None:
            invalid += 1
            continue
        found.add(keys.pseudonym("staff", identity))
    return found, invalid


def add_to_register(study: Study, keys: PseudonymKeys, codes: Iterable[str],
                    staff: Iterable[str] = ()) -> tuple[int, int]:
    """Add the pseudonyms of valid personal codes and staff identities; return (added, invalid lines).

    The caller holds the study lock. Refuses (ErasureKeyMismatch) a register made with another key.
    """
    current = check_register(study, keys).pseudonyms
    found, invalid = pseudonyms_of_request(keys, codes, staff)
    added = found - current
    if added or found or not register_path(study).is_file():
        write_register(study, keys, current | found)
    return len(added), invalid


def rekey_register(study: Study, keys: PseudonymKeys, codes: Iterable[str],
                   staff: Iterable[str] = ()) -> tuple[int, int]:
    """Replace the register by the pseudonyms of every code and staff identity, under the current key.

    Refuses when the request names fewer people than the register holds (those missing would
    reappear in the next run). Returns (people in the new register, invalid lines).
    """
    old = read_register(study)
    found, invalid = pseudonyms_of_request(keys, codes, staff)
    if len(found) < len(old.pseudonyms):
        raise ErasureError(
            f"the register holds {len(old.pseudonyms)} people but the files name only {len(found)} valid ones: "
            "re-keying would bring the others back. Nothing was changed. Give every personal code (--codes) "
            "and staff e-mail (--staff) ever erased.")
    write_register(study, keys, found)
    return len(found), invalid

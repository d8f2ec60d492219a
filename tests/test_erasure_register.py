"""The erasure register: atomic under the study lock, key fingerprints, re-keying, staff, odd request files."""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import PROJECT_ROOT, load_study
from pipelines.ingest.stage import run_ingest, study_keys
from pipelines.ingest.typing import ID_COLUMN
from pipelines.privacy import erasure
from pipelines.privacy.identity import code_identity, resolve_staff
from pipelines.privacy.pseudonyms import PseudonymKeys, new_secret_hex, write_key_file
from pipelines.warehouse import read_table
from tests.conftest import make_study_file

# valid isikukoodid (check digits correct), made up for the tests
CODES = ["37605030299", "49403136526", "38001085718", "60001019906", "50001010006", "39912310174",
         "48807120000", "37001010007", "46512240019", "50512314918"]


@pytest.fixture
def keyed_study(tmp_path):
    study_file = make_study_file(tmp_path)
    write_key_file(tmp_path / "secrets" / "demo.key", new_secret_hex())
    study = load_study(study_file)
    return study_file, study, study_keys(study)


def test_register_records_the_key_fingerprint_never_the_key(keyed_study):
    _, study, keys = keyed_study
    added, invalid = erasure.add_to_register(study, keys, CODES[:2] + ["12345678901", ""])
    assert (added, invalid) == (2, 1)
    text = erasure.register_path(study).read_text(encoding="utf-8")
    secret = (study.resolve(study.secret.file)).read_text(encoding="utf-8").strip()
    assert text.splitlines()[0] == f"{erasure.FINGERPRINT_PREFIX} {keys.fingerprint()}"
    assert secret not in text and not any(code in text for code in CODES)
    assert erasure.erased_pseudonyms(study, keys) == {keys.pseudonym("pupil", code_identity(c)) for c in CODES[:2]}


def test_a_key_change_is_refused_until_the_register_is_rekeyed(keyed_study):
    _, study, old_keys = keyed_study
    erasure.add_to_register(study, old_keys, CODES[:3])
    new_keys = PseudonymKeys.from_secret(bytes.fromhex(new_secret_hex()))
    with pytest.raises(erasure.ErasureKeyMismatch) as err:
        erasure.erased_pseudonyms(study, new_keys)
    assert "--rekey" in str(err.value) and not any(c in str(err.value) for c in CODES)
    with pytest.raises(erasure.ErasureKeyMismatch):
        erasure.add_to_register(study, new_keys, CODES[3:4])
    with pytest.raises(erasure.ErasureError, match="would bring the others back"):
        erasure.rekey_register(study, new_keys, CODES[:2])
    assert erasure.read_register(study).fingerprint == old_keys.fingerprint()  # nothing changed
    assert erasure.rekey_register(study, new_keys, CODES[:3]) == (3, 0)
    assert erasure.erased_pseudonyms(study, new_keys) == {new_keys.pseudonym("pupil", code_identity(c))
                                                          for c in CODES[:3]}


@pytest.mark.parametrize("encode", [
    lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    lambda text: text.encode("utf-16"),  # with its BOM, as Windows Notepad writes "Unicode"
    lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    lambda text: text.replace("\n", "\r\n").encode("utf-8"),
], ids=["utf8-bom", "utf16-le", "utf16-be", "crlf"])
def test_request_files_in_utf8_bom_and_utf16_read_every_code(tmp_path, encode):
    path = tmp_path / "codes.txt"
    path.write_bytes(encode("\n".join(CODES[:3]) + "\n"))
    lines = erasure.read_request_lines(path)
    keys = PseudonymKeys.from_secret(b"k" * 32)
    found, invalid = erasure.pseudonyms_of_request(keys, lines)
    assert invalid == 0 and len(found) == 3


def test_a_binary_request_file_is_refused_without_quoting_it(tmp_path):
    path = tmp_path / "codes.bin"
    path.write_bytes(b"\x00\x8f" + CODES[0].encode() + b"\xff\x00")
    with pytest.raises(erasure.ErasureError) as err:
        erasure.read_request_lines(path)
    assert CODES[0] not in str(err.value)


def test_staff_identities_match_what_ingest_pseudonymises():
    keys = PseudonymKeys.from_secret(b"k" * 32)
    frame = pd.DataFrame({"email": ["  Mari.Maasikas@Kool.EE ", None], "first_name": [None, "Jaan"],
                          "last_name": [None, "Tamm"], "municipality": ["Tartu linn", "Võru vald"]})
    expected = {keys.pseudonym("staff", i) for i in resolve_staff(frame).identity}
    found, invalid = erasure.pseudonyms_of_request(keys, staff=["mari.maasikas@kool.ee", "Jaan;Tamm;Võru vald"])
    assert invalid == 0 and found == expected


def test_erased_specialists_leave_the_specialists_table(small_study, tmp_path):
    study, books, truth = small_study
    keys = study_keys(study)
    ids = set(read_table(study.db_path, "anon.specialists")[ID_COLUMN["staff"]])
    emails = [e for e in truth["canaries"]["emails"] if keys.pseudonym("staff", "em:" + e.strip().casefold()) in ids]
    assert emails, "the generated specialists have e-mails"
    copy = study.model_copy(update={"processed_dir": str(tmp_path / "processed"),
                                    "erasure_dir": str(tmp_path / "erasure")})
    assert erasure.add_to_register(copy, keys, [], staff=[emails[0]]) == (1, 0)
    run_ingest(copy, books)
    after = read_table(copy.db_path, "anon.specialists")
    assert keys.pseudonym("staff", "em:" + emails[0].strip().casefold()) not in set(after[ID_COLUMN["staff"]])
    quality = read_table(copy.db_path, "meta.quality")
    erased = quality[(quality["rule"] == "erased") & (quality["instrument"] == "specialists")]
    assert erased["n"].sum() >= 1


def test_ten_concurrent_erasures_lose_nothing(keyed_study):
    study_file, study, keys = keyed_study
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([str(Path(sys.executable).with_name("mapstudy")), "erase", "--study", str(study_file),
                               "--codes", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=PROJECT_ROOT, env=env, text=True)
             for _ in CODES]
    outputs = [p.communicate(input=code + "\n", timeout=300) for p, code in zip(procs, CODES)]
    for proc, (_, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
    assert erasure.erased_pseudonyms(study, keys) == {keys.pseudonym("pupil", code_identity(c)) for c in CODES}
    assert not list(erasure.register_path(study).parent.glob("*.partial"))

"""The privacy gate: identifiers by role and by content are refused, pseudonyms are not."""

import pandas as pd

from pipelines.config import PROJECT_ROOT, load_codebooks, load_study
from pipelines.privacy.gates import content_violations, role_violations
from pipelines.privacy.scrub import Scrubber

BOOKS = load_codebooks(load_study(PROJECT_ROOT / "studies" / "demo.yaml"))


def test_pseudonyms_that_look_like_phone_digits_pass():
    frame = pd.DataFrame({"pupil_id": ["P-3456723ABCDEFGHI", "P-ABCDEFGHIJKLMNOP"], "notes": [None, "hea"]})
    assert content_violations("anon.pupils", frame, BOOKS["pupils"], Scrubber(["Mari"])) == []


def test_a_malformed_pseudonym_is_refused_without_quoting_it():
    frame = pd.DataFrame({"pupil_id": ["38001085718"]})
    problems = content_violations("anon.pupils", frame, BOOKS["pupils"], Scrubber(()))
    assert problems == ["content: anon.pupils.pupil_id holds 1 value(s) that are not pseudonyms"]


def test_codes_emails_phones_and_names_are_found_by_content():
    frame = pd.DataFrame({"municipality": ["Tapa vald", "36805280109"], "notes": ["Helista 5123 4567", "Marile"]})
    problems = content_violations("anon.pupils", frame, BOOKS["pupils"], Scrubber(["Mari"]))
    assert any("municipality" in p and "personal_code" in p for p in problems)
    assert any("notes" in p and "phone" in p for p in problems)
    assert any("notes" in p and "name" in p for p in problems)
    assert not any("36805280109" in p or "Mari" in p for p in problems)


def test_a_direct_identifier_column_is_refused_by_role():
    frame = pd.DataFrame({"first_name": ["x"], "parent_phone": ["y"], "grade": [3]})
    problems = role_violations("anon.pupils", frame, BOOKS["pupils"])
    assert len(problems) == 2 and all(p.startswith("role: ") for p in problems)

"""Free-text scrubbing: Estonian personal codes (S6), contacts, addresses, inflected names.

Personal-code cases are python-stdnum's `stdnum/ee/ik.py` doctests as listed in
/work/shared/reference/sdc/README.md (S6), inlined here.
"""

import random
import time

import pandas as pd
import pytest

from pipelines.privacy.scrub import Scrubber, find_identifiers, harvest_names, name_stems, scrub_text

VALID_CODES = ["36805280109", "60001019906", "38001085718", "60001017869", "51205280105"]
INVALID_CODES = ["36805280108", "06805280106", "38102290106"]
NAMES = ["Mari", "Liisa", "Tamm", "Kask", "Peeter", "Rebane", "Mart", "Mägi", "Sepp", "Jaan"]


@pytest.fixture(scope="module")
def scrubber():
    return Scrubber(NAMES)


@pytest.mark.parametrize("code", VALID_CODES)
def test_s6_valid_codes_in_all_forms(scrubber, code):
    for text in (f"Isikukood {code}.", f"kood:EE{code}", f"PNOEE-{code} allkiri", f"({code})"):
        result = scrubber.scrub(text)
        assert code not in result.text
        assert "[ISIKUKOOD]" in result.text
        assert result.counts == {"personal_code": 1}


@pytest.mark.parametrize("code", INVALID_CODES)
def test_s6_invalid_codes_scrubbed_by_default_and_counted_apart(code):
    assert scrub_text(f"nr {code}").text == "nr [ISIKUKOOD]"
    assert find_identifiers(f"nr {code}") == {"personal_code_unverified": 1}
    kept = scrub_text(f"nr {code}", scrub_invalid_codes=False)
    assert kept.text == f"nr {code}" and kept.counts == {}


@pytest.mark.parametrize("code", VALID_CODES)
def test_codes_written_with_spaces_dots_or_dashes(scrubber, code):
    for text in (f"kood {code[:3]} {code[3:6]} {code[6:]}.", f"kood {code[:7]} {code[7:]}",
                 f"kood {code[:5]}-{code[5:]}", f"kood {code[:3]}.{code[3:7]}.{code[7:]}"):
        result = scrubber.scrub(text)
        assert result.text.startswith("kood [ISIKUKOOD]") and result.counts == {"personal_code": 1}, text
        assert scrubber.find(text) == {"personal_code": 1}


def test_spaced_digits_that_cannot_be_a_birth_date_are_left_to_the_other_rules(scrubber):
    assert scrubber.scrub("kuupäev 2023 12 01, 15 tundi").counts == {}
    assert scrubber.scrub("tel 372 5123 4567").text == "tel [TELEFON]"
    spaced_invalid = f"{INVALID_CODES[0][:4]} {INVALID_CODES[0][4:]}"
    assert scrubber.scrub(f"nr {spaced_invalid}").counts == {"personal_code_unverified": 1}


def test_longer_digit_runs_are_not_codes():
    assert scrub_text("arve 368052801091").counts.get("personal_code", 0) == 0


def test_contacts_and_addresses(scrubber):
    text = ("Ema: mari.tamm@kool.ee, tel +372 5123 4567 või 5123-4567, kodu 6 123 456. "
            "elab Tamme tn 5-12, Tartu 50090; varem Kase talu, Mäe külas, elab Pikk 3.")
    result = scrubber.scrub(text)
    assert result.text == (
        "Ema: [E-POST], tel [TELEFON] või [TELEFON], kodu [TELEFON]. "
        "elab [AADRESS], Tartu [AADRESS]; varem [AADRESS], [AADRESS], elab [AADRESS]."
    )
    assert result.counts == {"email": 1, "phone": 3, "address": 5}


def test_school_numbers_survive(scrubber):
    text = "Puudus 5 tundi. Klass 7. Hinne 3, aasta 2024."
    assert scrubber.scrub(text).text == text


@pytest.mark.parametrize(
    "word",
    ["Mari", "Marile", "Marit", "Marilt", "Mariga", "mari", "MARI", "Marigi", "Mari-Liisa", "Mari-Liisale",
     "Mari-Leen", "Tamm", "Tamme", "Tammega", "Tammele", "tammede", "Kask", "Kase", "Kasel", "Peetri",
     "Peetriga", "Rebase", "Rebast", "Mardi", "Mardiga", "Mäe", "Sepa", "Sepale", "Jaani", "Jaanile"],
)
def test_inflected_names(scrubber, word):
    result = scrubber.scrub(f"Täna {word} puudus.")
    assert result.text == "Täna [NIMI] puudus."
    assert result.counts == {"name": 1}


@pytest.mark.parametrize("word", ["Marina", "Tammsaare", "maria", "kasvas", "peeti", "samm"])
def test_names_match_whole_words_only(scrubber, word):
    # "Marina" = Mari + -na (essive) is scrubbed by design; the rest must survive.
    expected = "[NIMI]" if word == "Marina" else word
    assert scrubber.scrub(word).text == expected


def test_name_stems_rules():
    assert {"tamme", "tammi"} <= name_stems("Tamm")
    assert "kase" in name_stems("Kask")
    assert "peetri" in name_stems("Peeter")
    assert {"rebase", "rebas"} <= name_stems("Rebane")
    assert "mardi" in name_stems("Mart")
    assert "mäe" in name_stems("Mägi")
    assert name_stems("Mari") == frozenset({"mari"})


def test_harvest_names_splits_compounds():
    frame = pd.DataFrame({"first": ["Mari-Liisa", "Jaan", None], "parent": ["Ülle Tamm", "A. Kask", "Mart"]})
    assert harvest_names(frame, ["first", "parent"]) == {"Mari", "Liisa", "Jaan", "Ülle", "Tamm", "Kask", "Mart"}


def test_find_identifiers_reports_kinds_not_values(scrubber):
    found = find_identifiers("Mari (36805280109) tel 5123 4567", scrubber)
    assert found == {"name": 1, "personal_code": 1, "phone": 1}
    assert all(isinstance(v, int) for v in found.values())
    assert find_identifiers("Õpilane puudus kolm korda.", scrubber) == {}


def test_scrub_series_keeps_missing_and_sums_counts(scrubber):
    notes = pd.Series(["Mari puudus", None, "Tammega rääkisin, tel 5123 4567"], dtype="string")
    scrubbed, counts = scrubber.scrub_series(notes)
    assert scrubbed.tolist()[0] == "[NIMI] puudus"
    assert pd.isna(scrubbed.iloc[1])
    assert counts == {"name": 2, "phone": 1}


def test_thousands_of_names_over_many_notes_is_fast():
    rng = random.Random(7)
    letters = "abdeghijklmnoprstuvõäöü"
    names = {"".join(rng.choice(letters) for _ in range(rng.randint(4, 9))).capitalize() for _ in range(5000)}
    chosen = sorted(names)[:50]
    started = time.perf_counter()
    scrubber = Scrubber(names)
    notes = [f"Õpilane {chosen[i % 50]}le helistati, kontakt {i % 7} korda, märkus number {i}." for i in range(10000)]
    results = [scrubber.scrub(note) for note in notes]
    elapsed = time.perf_counter() - started
    assert all(r.counts.get("name") == 1 for r in results)
    assert elapsed < 15, f"scrubbing took {elapsed:.1f} s"


def test_find_ignores_placeholders_of_an_earlier_scrub():
    """A surname like Post must not make the placeholder [E-POST] look like a name."""
    scrubber = Scrubber(["Post", "Nimi"])
    scrubbed = scrubber.scrub("Kirjuta Post Nimi aadressile mari@kool.ee").text
    assert scrubber.find(scrubbed) == {}
    assert scrubber.find(scrubbed + " ja Post") == {"name": 1}


def test_two_scans_find_what_the_one_alternation_finds():
    """`_matches` (names and the other kinds scanned apart, branches a text cannot match left out)
    gives the matches of the scanner's one alternation, on texts mixing every kind."""
    rng = random.Random(11)
    words = ["Mari", "Tamme", "kase", "Jaanile", "Peetri", "Mäe", "Rebase", "Post", "[E-POST]", "Mari-Liisa", "Tamm-Kask",
             "Tallinnas", "3", "korda", "Pikk", "tn", "Tamme tn 5-12", "Kase talu", "Mäe küla", "12345", "39901010004",
             "EE39901010004", "PNOEE-39901010004", "394 031 36526", "5123 4567", "+372 5123 4567", "mari@kool.ee",
             "@", "Pärnu mnt 12", "Narva mnt.", "Kase talus", "alevik", "Tartu 5a", "Tartus 3,", "Elva 12, Tartu",
             "Aia 3 51003", "١٢٣", "MARI", "ſepp", "Õie-Mai", "88888888", "õpilane", ",", "-", "\n"]
    separators = [" ", " ", ", ", "", "-", "\n"]
    texts = ["".join(rng.choice(words) + rng.choice(separators) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    for scanner in (Scrubber(["Mari", "Tamm", "Kask", "Jaan", "Peeter", "Mägi", "Rebane", "Post", "Sepp", "Liisa"]),
                    Scrubber(), Scrubber(["Mari"], scrub_invalid_codes=False)):
        for text in texts:
            assert [(m.lastgroup, m.span()) for m in scanner._matches(text)] == \
                [(m.lastgroup, m.span()) for m in scanner._pattern.finditer(text)]

"""Reader features: encodings, malformed rows, NUL bytes, long cells, SPSS labels and missing values.

Every test writes its own small file; findings are checked by rule, row and column only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from pipelines.config import Source
from pipelines.ingest import readers
from pipelines.ingest.readers import detect_encoding, read_raw

HEADER = "nimi;linn;märkus"
ROWS = ["Šarlota;Võru;õun", "Žanna;Tartu;ülo", "Mart;Pärnu;äiu", "Jüri;Rõuge;öö", "Tõnu;Elva;šokk"]
TEXT = "\n".join([HEADER, *ROWS]) + "\n"


def _csv(tmp_path: Path, data: bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _rules(table: readers.RawTable) -> dict[str, list]:
    rules: dict[str, list] = {}
    for note in table.notes:
        rules.setdefault(note.rule, []).extend(note.rows)
    return rules


def _read(path: Path, encoding: str | None = None, delimiter: str | None = ";", **kw) -> readers.RawTable:
    return read_raw(path, Source(format="csv", encoding=encoding, delimiter=delimiter), **kw)


@pytest.mark.parametrize("codec,bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-8", b"\xef\xbb\xbf")])
def test_a_byte_order_mark_beats_a_wrong_declared_encoding(tmp_path, codec, bom):
    table = _read(_csv(tmp_path, bom + TEXT.encode(codec)), encoding="cp1257")
    assert len(table.frame) == len(ROWS)
    assert list(table.frame.columns) == HEADER.split(";")
    assert table.frame.iloc[0, 0] == "Šarlota"
    assert "encoding_overridden" in _rules(table)


def test_utf16_without_bom_is_detected(tmp_path):
    table = _read(_csv(tmp_path, TEXT.encode("utf-16-le")), encoding="cp1257")
    assert table.encoding == "utf-16-le" and len(table.frame) == len(ROWS)
    assert table.frame.iloc[4, 2] == "šokk"


def test_utf8_bom_without_declaration_is_read_without_finding(tmp_path):
    table = _read(_csv(tmp_path, b"\xef\xbb\xbf" + TEXT.encode("utf-8")))
    assert list(table.frame.columns)[0] == "nimi" and not table.notes


def test_cp1257_is_told_from_cp1252(tmp_path):
    data = TEXT.encode("cp1257")
    assert detect_encoding(data) == ("cp1257", None)
    table = _read(_csv(tmp_path, data))
    assert table.encoding == "cp1257" and table.frame.iloc[0, 0] == "Šarlota"
    # declared cp1252 but written in cp1257: the Estonian letters decide, and it is said
    table = _read(_csv(tmp_path, data, "g.csv"), encoding="cp1252")
    assert table.encoding == "cp1257" and table.frame.iloc[1, 0] == "Žanna"
    assert "encoding_overridden" in _rules(table)


def test_cp1252_is_told_from_cp1257(tmp_path):
    data = TEXT.encode("cp1252")  # š and ž are 0x9A/0x9E in cp1252, undefined in cp1257
    encoding, _ = detect_encoding(data)
    assert encoding in ("cp1252", "iso8859_15") or data.decode(encoding) == TEXT
    assert _read(_csv(tmp_path, data)).frame.iloc[0, 0] == "Šarlota"


def test_a_valid_utf8_file_beats_a_declared_code_page(tmp_path):
    table = _read(_csv(tmp_path, TEXT.encode("utf-8")), encoding="cp1257")
    assert table.encoding == "utf-8" and table.frame.iloc[0, 1] == "Võru"
    assert "encoding_overridden" in _rules(table)


def test_a_ragged_row_is_rejected_alone_with_its_row_number(tmp_path):
    lines = [HEADER, ROWS[0], ROWS[1] + ";extra", ROWS[2], "Ain;Tapa", ROWS[3]]
    table = _read(_csv(tmp_path, ("\n".join(lines) + "\n").encode("utf-8")))
    assert table.rejected == {2: "malformed_row", 4: "malformed_row"}
    assert list(table.frame.index) == [1, 3, 5]
    assert table.rows_read == 5
    assert _rules(table)["malformed_row"] == [2, 4]


def test_trailing_empty_cells_are_not_ragged(tmp_path):
    lines = [HEADER, ROWS[0] + ";", ROWS[1] + ";;"]
    table = _read(_csv(tmp_path, ("\n".join(lines) + "\n").encode("utf-8")))
    assert not table.rejected and len(table.frame) == 2


def test_an_unbalanced_quote_rejects_one_row_and_the_rest_is_read(tmp_path):
    lines = [HEADER, ROWS[0], '"Žanna;Tartu;ülo', ROWS[2], ROWS[3], ROWS[4]]
    table = _read(_csv(tmp_path, ("\n".join(lines) + "\n").encode("utf-8")))
    assert table.rejected == {2: "malformed_row"}
    assert list(table.frame.index) == [1, 3, 4, 5]
    assert table.frame.loc[5, "nimi"] == "Tõnu"


def test_a_quoted_cell_may_span_lines_and_hold_the_delimiter(tmp_path):
    lines = [HEADER, ROWS[0], 'Žanna;"Tartu;\nlinn";"ütles ""tere"""', ROWS[2]]
    table = _read(_csv(tmp_path, ("\n".join(lines) + "\n").encode("utf-8")))
    assert not table.rejected and len(table.frame) == 3
    assert table.frame.loc[2, "linn"] == "Tartu;\nlinn" and table.frame.loc[2, "märkus"] == 'ütles "tere"'


def test_a_literal_quote_inside_a_cell_is_kept(tmp_path):
    lines = [HEADER, 'Mart;Pä"rnu;x', ROWS[1]]
    table = _read(_csv(tmp_path, ("\n".join(lines) + "\n").encode("utf-8")))
    assert not table.rejected and len(table.frame) == 2


def test_nul_bytes_are_removed_with_a_finding(tmp_path):
    lines = [HEADER, ROWS[0], "Ž\x00anna;Tar\x00tu;ülo", ROWS[2]]
    table = _read(_csv(tmp_path, ("\n".join(lines) + "\n").encode("utf-8")))
    assert table.frame.loc[2, "nimi"] == "Žanna" and table.frame.loc[2, "linn"] == "Tartu"
    notes = [n for n in table.notes if n.rule == "nul_removed"]
    assert {(n.column, n.rows) for n in notes} == {("nimi", (2,)), ("linn", (2,))}


def test_an_overlong_cell_is_truncated_with_a_finding(tmp_path):
    lines = [HEADER, ROWS[0], "Žanna;Tartu;" + "x" * 5000, ROWS[2]]
    table = _read(_csv(tmp_path, ("\n".join(lines) + "\n").encode("utf-8")), max_cell_chars=100)
    assert len(table.frame.loc[2, "märkus"]) == 100
    (note,) = [n for n in table.notes if n.rule == "cell_truncated"]
    assert note.rows == (2,) and note.column == "märkus"
    assert "x" * 20 not in note.message


def test_a_header_only_csv_has_no_rows_and_an_empty_file_is_refused(tmp_path):
    assert _read(_csv(tmp_path, (HEADER + "\n").encode("utf-8"))).rows_read == 0
    with pytest.raises(readers.EmptyFile):
        _read(_csv(tmp_path, b"", "e.csv"))


def test_a_missing_file_and_a_folder_are_told_apart(tmp_path):
    with pytest.raises(readers.MissingFile):
        _read(tmp_path / "absent.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(readers.UnreadableFile) as err:
        _read(tmp_path / "dir.csv")
    assert err.value.rule == "unreadable_file"


def test_a_symlink_out_of_the_raw_folder_is_refused_unread(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    outside = _csv(tmp_path, TEXT.encode("utf-8"), "outside.csv")
    (raw / "link.csv").symlink_to(outside)
    with pytest.raises(readers.OutsideRawDir):
        read_raw(raw / "link.csv", Source(format="csv", delimiter=";"), raw_dir=raw)
    with pytest.raises(readers.OutsideRawDir):
        read_raw(raw / ".." / "outside.csv", Source(format="csv", delimiter=";"), raw_dir=raw)
    inside = _csv(raw, TEXT.encode("utf-8"), "inside.csv")
    (raw / "ok.csv").symlink_to(inside)
    assert len(read_raw(raw / "ok.csv", Source(format="csv", delimiter=";"), raw_dir=raw).frame) == len(ROWS)


def test_a_labelled_sav_with_user_missing_values(tmp_path):
    path = tmp_path / "labelled.sav"
    frame = pd.DataFrame({"sugu": [7.0, 8.0, 97.0, 7.0, np.nan], "klass": [5.0, 6.0, 99.0, 98.0, 7.0]})
    pyreadstat.write_sav(frame, str(path), variable_value_labels={"sugu": {7.0: "poiss", 8.0: "tüdruk", 97.0: "ei vasta"}},
                         missing_ranges={"sugu": [97.0], "klass": [{"lo": 98.0, "hi": 99.0}]})
    table = read_raw(path, Source(format="sav"))
    assert table.value_labels["sugu"] == {"7": "poiss", "8": "tüdruk", "97": "ei vasta"}
    assert 97.0 in table.declared_missing["sugu"] and 7.0 not in table.declared_missing["sugu"]
    assert 98.0 in table.declared_missing["klass"] and 99.0 in table.declared_missing["klass"]
    assert 7.0 not in table.declared_missing["klass"]


def test_harmonisation_uses_the_files_labels_and_declared_missing(tmp_path):
    """A labelled code maps by its label; a declared user-missing code is missing (declared_missing)."""
    from pipelines.config import load_codebooks, load_study
    from pipelines.ingest.findings import Findings
    from pipelines.ingest.harmonise import harmonise

    from .conftest import make_study_file

    study = load_study(make_study_file(tmp_path))
    books = load_codebooks(study)
    path = tmp_path / "labelled.sav"
    frame = pd.DataFrame({"KOV": ["Võru linn"] * 4, "sugu": [7.0, 8.0, 97.0, 1.0]})
    pyreadstat.write_sav(frame, str(path), variable_value_labels={"sugu": {7.0: "poiss", 8.0: "tüdruk", 1.0: "tüdruk"}},
                         missing_ranges={"sugu": [97.0]})
    table = read_raw(path, Source(format="sav"))
    findings = Findings("pupils", "baseline", "labelled.sav")
    out = harmonise(table.frame, study, books["pupils"], "voru_sav", findings, table.value_labels,
                    table.declared_missing, keep_index=True)
    assert out.frame["sex"].tolist() == ["male", "female", None, "female"]  # code 1 is labelled 'tüdruk' here
    assert {"declared_missing", "value_label"} <= set(findings.frame()["rule"])


def test_a_dta_with_extended_missing_values(tmp_path):
    path = tmp_path / "missing.dta"
    frame = pd.DataFrame({"klass": [5.0, "a", 7.0, "b"], "nimi": ["a", "b", "c", "d"]})
    pyreadstat.write_dta(frame, str(path), missing_user_values={"klass": ["a", "b"]}, version=15)
    table = read_raw(path, Source(format="dta"))
    assert "a" in table.declared_missing["klass"] and 5.0 not in table.declared_missing["klass"]
    assert "nimi" not in table.declared_missing


def _cells(frame: pd.DataFrame) -> tuple:
    """Columns, dtypes and every cell with its Python type (1 and 1.0, None and '' told apart)."""
    return (list(frame.columns), [str(d) for d in frame.dtypes],
            [[(type(v).__name__, repr(v)) for v in frame[c].tolist()] for c in frame.columns])


def test_an_xlsx_reads_as_pandas_reads_it(tmp_path):
    """The column-wise calamine path gives pandas' read_excel frame cell for cell (types too); sheets
    it does not cover (no header, duplicate header cells, not a workbook) fall back to pandas."""
    import datetime as dt

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Vastused"
    sheet.append(["a", "b", "c", "d", "e"])
    sheet.append([1, 2.5, "x", dt.date(2020, 1, 2), dt.datetime(2021, 3, 4, 5, 6)])
    sheet.append([None, None, None, None, None])
    sheet.append([True, 1e20, "  ", dt.time(12, 30), -0.0])
    sheet.append([3, None, "", 2**60, float(2**53)])
    sheet.append(["=1/0", 7, "y", 1.5e300, -3])
    plain = tmp_path / "plain.xlsx"
    book.save(plain)
    for name in (0, "Vastused"):
        expected = pd.read_excel(plain, sheet_name=name, dtype=object, engine="calamine", keep_default_na=False,
                                 na_values=[])
        assert _cells(readers._calamine_frame(plain, name)) == _cells(expected)
        assert _cells(read_raw(plain, Source(format="xlsx", sheet=name)).frame) == \
            _cells(expected.set_axis(pd.RangeIndex(1, len(expected) + 1)))

    book = openpyxl.Workbook()
    book.active.append(["h", "h", 3])
    book.active.append([1, 2, 3])
    duplicated = tmp_path / "duplicated.xlsx"
    book.save(duplicated)
    assert readers._calamine_frame(duplicated, 0) is None
    assert list(read_raw(duplicated, Source(format="xlsx")).frame.columns) == ["h", "h.1", 3]
    not_a_book = _csv(tmp_path, TEXT.encode("utf-8"), "text.xlsx")
    assert readers._calamine_frame(not_a_book, 0) is None
    with pytest.raises(readers.UnreadableFile, match=r"cannot be read as xlsx \(CalamineError\)"):
        read_raw(not_a_book, Source(format="xlsx"))

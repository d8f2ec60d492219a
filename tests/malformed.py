"""A corpus of malformed inputs: variants of a small generated study's exports.

Each `Variant` changes one thing in a copy of the raw folder (or of the study file) the way
real exports go wrong: truncated, empty, renamed, corrupt or wrongly encoded files, ragged
rows, stray quotes, NUL bytes, huge cells, symlinks out of the raw folder, '..' paths,
files listed but absent, folders in place of files, a newer Stata release. The tests in
test_malformed.py run the ingest on each and check that nothing is lost in silence.

`expect` says what must happen: "loss" (the run refuses to write: DataLossError), "read"
(the run writes; a one-row problem may still count as a loss in a small file, so either is
allowed), "config" (the study file is refused at load). `rule` is the finding (or loss
rule) the variant must produce for its file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

CSV = "laane-viru/kaardistus_2023.csv"  # cp1257, ';' (declared in the demo study)
CSV_PILOT = "laane-viru/piloot_alguses.csv"
SAV = "voru/opilased_2023.sav"
XLSX = "tartu/opilaste_kaardistus_2023.xlsx"
DTA = "ulikool/spetsialistid_2023.dta"
CSV_SOURCE = "laaneviru_ls"

Mutate = Callable[[Path, dict], None]


@dataclass(frozen=True)
class Variant:
    name: str
    target: str  # the input path (relative to raw_dir) the variant breaks
    expect: str  # loss | read | config
    rule: str | None  # a meta.quality rule that must name the target file (None: none required)
    mutate: Mutate
    encoding: str | None = None  # the encoding meta.provenance must record for the target file


# --- helpers -------------------------------------------------------------------------------


def _lines(raw: Path, target: str = CSV) -> list[str]:
    return (raw / target).read_bytes().decode("cp1257").split("\n")


def _write_lines(raw: Path, lines: list[str], target: str = CSV, encoding: str = "cp1257") -> None:
    (raw / target).write_bytes("\n".join(lines).encode(encoding))


def _edit_rows(rows: list[int], edit: Callable[[str], str], target: str = CSV) -> Mutate:
    """Apply `edit` to the given data rows (1-based, after the header)."""
    def mutate(raw: Path, study: dict) -> None:
        lines = _lines(raw, target)
        for r in rows:
            lines[r] = edit(lines[r])
        _write_lines(raw, lines, target)
    return mutate


def _reencode(encoding: str, bom: bytes = b"", target: str = CSV, baltic: bool = False) -> Mutate:
    """The file in another encoding; `baltic` first puts letters that cp1252 and cp1257 write apart in it."""
    def mutate(raw: Path, study: dict) -> None:
        if baltic:
            _with_baltic_letters(raw, target)
        text = (raw / target).read_bytes().decode("cp1257")
        (raw / target).write_bytes(bom + text.encode(encoding))
    return mutate


def _with_baltic_letters(raw: Path, target: str = CSV) -> None:
    """Š, š, Ž, ž (one byte each in cp1257 and cp1252, different bytes) in the notes of a few rows."""
    lines = _lines(raw, target)
    for row in (2, 5, 8):
        cells = lines[row].rstrip("\r").split(";")
        cells[-1] = "Puškini tänav; Žanna ja Šarlota ütlesid" .replace(";", ",")
        lines[row] = ";".join(cells) + "\r"
    _write_lines(raw, lines, target)


def _bytes(fn: Callable[[bytes], bytes], target: str) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        (raw / target).write_bytes(fn((raw / target).read_bytes()))
    return mutate


def _replace_with_dir(target: str) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        (raw / target).unlink()
        (raw / target).mkdir()
    return mutate


def _delete(target: str) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        (raw / target).unlink()
    return mutate


def _symlink_outside(target: str) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        outside = raw.parent / "outside" / Path(target).name
        outside.parent.mkdir(exist_ok=True)
        shutil.move(raw / target, outside)
        (raw / target).symlink_to(outside)
    return mutate


def _symlink_inside(target: str) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        moved = raw / "kept" / Path(target).name
        moved.parent.mkdir(exist_ok=True)
        shutil.move(raw / target, moved)
        (raw / target).symlink_to(moved)
    return mutate


def _study(edit: Callable[[dict], None]) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        edit(study)
    return mutate


def _input(study: dict, target: str) -> dict:
    return next(i for i in study["inputs"] if i["path"] == target)


def _garbage(size: int, seed: int = 11) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8).tobytes()


def _drop_column(name: str, target: str = CSV) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        lines = _lines(raw, target)
        header = lines[0].rstrip("\r").split(";")
        k = header.index(name)
        out = []
        for line in lines:
            if not line:
                out.append(line)
                continue
            cells = line.rstrip("\r").split(";")  # the generated file quotes no cell that holds the delimiter
            out.append(";".join(cells[:k] + cells[k + 1:]) + ("\r" if line.endswith("\r") else ""))
        _write_lines(raw, out, target)
    return mutate


def _xlsx_frame(edit: Callable[[pd.DataFrame], pd.DataFrame], target: str = XLSX) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        frame = pd.read_excel(raw / target, dtype=object, engine="calamine")
        edit(frame).to_excel(raw / target, index=False)
    return mutate


def _sav_rewrite(edit: Callable[[pd.DataFrame, dict], None], target: str = SAV) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        frame, meta = pyreadstat.read_sav(str(raw / target), apply_value_formats=False, user_missing=True)
        extra: dict = {"variable_value_labels": dict(meta.variable_value_labels), "missing_ranges": {}}
        edit(frame, extra)
        pyreadstat.write_sav(frame, str(raw / target), **extra)
    return mutate


def _sav_labels_and_user_missing(frame: pd.DataFrame, extra: dict) -> None:
    # sex written as 7/8 with labels, 97 declared missing: codes the codebook does not know
    frame["sugu"] = frame["sugu"].map({1.0: 7.0, 2.0: 8.0}).astype(float)
    frame.loc[frame.index[:3], "sugu"] = 97.0
    extra["variable_value_labels"]["sugu"] = {7.0: "poiss", 8.0: "tüdruk", 97.0: "ei vasta"}
    extra["missing_ranges"]["sugu"] = [97.0]


def _sav_text_in_numeric(frame: pd.DataFrame, extra: dict) -> None:
    frame["puudumised"] = frame["puudumised"].map(lambda v: "palju" if v == v else "").astype(str)


def _dta_release(data: bytes) -> bytes:
    return data.replace(b"<release>119</release>", b"<release>122</release>", 1)


def _add_listed_absent(study: dict) -> None:
    study["inputs"].append({**_input(study, CSV), "path": "laane-viru/kaardistus_2023_lisa.csv"})


def _set_path(target: str, path: str) -> Callable[[dict], None]:
    def edit(study: dict) -> None:
        _input(study, target)["path"] = path
    return edit


def _declare_encoding(encoding: str | None, baltic: bool = False) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        if baltic:
            _with_baltic_letters(raw)
        study["sources"][CSV_SOURCE]["encoding"] = encoding
    return mutate


def _ragged_share(n: int) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        lines = _lines(raw)
        for r in range(1, len(lines) - 1, n):
            lines[r] = lines[r].rstrip("\r") + ";x;y\r"
        _write_lines(raw, lines)
    return mutate


def _truncate_text(fraction: float, target: str = CSV) -> Mutate:
    return _bytes(lambda b: b[: int(len(b) * fraction)], target)


def _insert_cell(row: int, column: int, text: str, target: str = CSV) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        lines = _lines(raw, target)
        cells = lines[row].split(";")
        cells[column] = text
        lines[row] = ";".join(cells)
        (raw / target).write_bytes("\n".join(lines).encode("cp1257", errors="replace"))
    return mutate


def _long_cell(row: int, size: int, target: str = CSV) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        lines = _lines(raw, target)
        cells = lines[row].split(";")
        cells[-1] = "a" * size
        lines[row] = ";".join(cells)
        _write_lines(raw, lines, target)
    return mutate


def _header_only(target: str = CSV) -> Mutate:
    def mutate(raw: Path, study: dict) -> None:
        _write_lines(raw, _lines(raw, target)[:1] + [""], target)
    return mutate


def _blank_lines(raw: Path, study: dict) -> None:
    lines = _lines(raw)
    _write_lines(raw, [x for line in lines for x in (line, "")])


def _crlf(raw: Path, study: dict) -> None:
    _write_lines(raw, [line + "\r" if line else line for line in _lines(raw)])


def _xlsx_long_cell(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.iloc[2, -1] = "b" * 20_000
    return frame


# --- the corpus ----------------------------------------------------------------------------


def variants() -> list[Variant]:
    v = Variant
    return [
        # CSV: empty, header only, folder, absent, listed but absent
        v("csv_zero_bytes", CSV, "loss", "empty_file", _bytes(lambda b: b"", CSV)),
        v("csv_header_only", CSV, "loss", "empty_file", _header_only()),
        v("csv_folder_in_place", CSV, "loss", "unreadable_file", _replace_with_dir(CSV)),
        v("csv_absent", CSV, "loss", "missing_file", _delete(CSV)),
        v("csv_listed_but_absent", "laane-viru/kaardistus_2023_lisa.csv", "loss", "missing_file",
          _study(_add_listed_absent)),
        # CSV: rows
        v("csv_one_ragged_row_long", CSV, "read", "malformed_row", _edit_rows([5], lambda s: s.rstrip("\r") + ";x\r")),
        v("csv_one_ragged_row_short", CSV, "read", "malformed_row", _edit_rows([7], lambda s: s.rsplit(";", 3)[0] + "\r")),
        v("csv_unbalanced_quote", CSV, "read", "malformed_row", _edit_rows([4], lambda s: '"' + s)),
        v("csv_unbalanced_quote_mid", CSV, "read", "malformed_row",
          _edit_rows([6], lambda s: s.replace(";", ';"', 3))),
        v("csv_two_stray_quotes_apart", CSV, "read", "malformed_row",
          _edit_rows([3, 9], lambda s: s.replace(";", ';"', 1))),
        v("csv_many_ragged_rows", CSV, "loss", "malformed_row", _ragged_share(4)),
        v("csv_truncated_mid_row", CSV, "read", "malformed_row", _truncate_text(0.55)),
        v("csv_wrong_delimiter", CSV, "loss", "missing_column",
          _bytes(lambda b: b.replace(b";", b","), CSV)),
        v("csv_random_bytes", CSV, "loss", None, _bytes(lambda b: _garbage(4000), CSV)),
        v("csv_binary_zip", CSV, "loss", None, lambda raw, s: shutil.copyfile(raw / XLSX, raw / CSV)),
        # CSV: encodings
        v("csv_utf16le_bom", CSV, "read", "encoding_overridden", _reencode("utf-16-le", b"\xff\xfe")),
        v("csv_utf16be_bom", CSV, "read", "encoding_overridden", _reencode("utf-16-be", b"\xfe\xff")),
        v("csv_utf16le_no_bom", CSV, "read", "encoding_overridden", _reencode("utf-16-le")),
        v("csv_utf8_bom", CSV, "read", "encoding_overridden", _reencode("utf-8", b"\xef\xbb\xbf")),
        v("csv_utf8_no_bom", CSV, "read", "encoding_overridden", _reencode("utf-8", baltic=True), "utf-8"),
        v("csv_declared_cp1252_is_cp1257", CSV, "read", "encoding_overridden", _declare_encoding("cp1252", baltic=True), "cp1257"),
        v("csv_declared_utf8_is_cp1257", CSV, "read", "encoding_overridden", _declare_encoding("utf-8", baltic=True)),
        v("csv_undeclared_cp1257", CSV, "read", None, _declare_encoding(None, baltic=True), "cp1257"),
        v("csv_cp1252_written", CSV, "read", "encoding_overridden", _reencode("cp1252", baltic=True), "cp1252"),
        # CSV: cells
        v("csv_nul_bytes", CSV, "read", "nul_removed", _edit_rows([2, 3], lambda s: s.replace(";", ";\x00", 2))),
        v("csv_long_cell", CSV, "read", "cell_truncated", _long_cell(3, 20_000)),
        v("csv_huge_cell", CSV, "read", "cell_truncated", _long_cell(4, 2_000_000)),
        v("csv_embedded_newline_quoted", CSV, "read", None, _insert_cell(2, -1, '"rida\nteine rida"')),
        v("csv_crlf", CSV, "read", None, _crlf),
        v("csv_blank_lines", CSV, "read", None, _blank_lines),
        v("csv_optional_column_dropped", CSV, "read", "missing_column", _drop_column("G7Q01")),
        v("csv_required_column_dropped", CSV, "loss", "missing_column", _drop_column("G1Q11")),
        v("csv_pilot_ragged_and_quote", CSV_PILOT, "read", "malformed_row",
          _edit_rows([2, 5], lambda s: s.rstrip("\r") + ';"\r', CSV_PILOT)),
        # containment
        v("csv_symlink_outside", CSV, "loss", "outside_raw_dir", _symlink_outside(CSV)),
        v("csv_symlink_inside", CSV, "read", None, _symlink_inside(CSV)),
        v("sav_symlink_outside", SAV, "loss", "outside_raw_dir", _symlink_outside(SAV)),
        v("path_dotdot", CSV, "config", None, _study(_set_path(CSV, "../outside/kaardistus_2023.csv"))),
        v("path_absolute", CSV, "config", None, _study(_set_path(CSV, "/etc/kaardistus_2023.csv"))),
        # SPSS
        v("sav_truncated", SAV, "loss", "unreadable_file", _truncate_text(0.5, SAV)),
        v("sav_zero_bytes", SAV, "loss", "empty_file", _bytes(lambda b: b"", SAV)),
        v("sav_is_text", SAV, "loss", "unreadable_file", _bytes(lambda b: b"isikukood;KOV\n1;2\n", SAV)),
        v("sav_is_xlsx", SAV, "loss", "unreadable_file", lambda raw, s: shutil.copyfile(raw / XLSX, raw / SAV)),
        v("sav_folder_in_place", SAV, "loss", "unreadable_file", _replace_with_dir(SAV)),
        v("sav_labels_user_missing", SAV, "read", "declared_missing", _sav_rewrite(_sav_labels_and_user_missing)),
        v("sav_text_in_numeric", SAV, "read", "bad_number", _sav_rewrite(_sav_text_in_numeric)),
        # Excel
        v("xlsx_truncated", XLSX, "loss", "unreadable_file", _truncate_text(0.6, XLSX)),
        v("xlsx_zero_bytes", XLSX, "loss", "empty_file", _bytes(lambda b: b"", XLSX)),
        v("xlsx_is_csv", XLSX, "loss", "unreadable_file", lambda raw, s: shutil.copyfile(raw / CSV, raw / XLSX)),
        v("xlsx_header_only", XLSX, "loss", "empty_file", _xlsx_frame(lambda f: f.iloc[:0])),
        v("xlsx_long_cell", XLSX, "read", "cell_truncated", _xlsx_frame(_xlsx_long_cell)),
        # Stata
        v("dta_newer_release", DTA, "loss", "unreadable_file", _bytes(_dta_release, DTA)),
        v("dta_truncated", DTA, "loss", "unreadable_file", _truncate_text(0.5, DTA)),
        v("dta_zero_bytes", DTA, "loss", "empty_file", _bytes(lambda b: b"", DTA)),
    ]


def apply(variant: Variant, raw: Path, study: dict) -> None:
    """Break a copy of the raw folder (and of the study's data) as the variant says."""
    variant.mutate(raw, study)

"""Ingest against the bare reading of the same files, in the same process and run.

The bare read is the floor: each input opened with its format's library and nothing else
(pyreadstat for .sav/.dta, pandas.read_csv with the source's delimiter and encoding,
python-calamine for .xlsx), cells left as the library returns them. The ingest is
``ingest_study`` (read, harmonise, validate, resolve identities, pseudonymise, scrub) up
to the tables it would write. Both are CPU-timed; the ratio ingest / bare read is the
issue 16 target (< 3 at 30,000 pupils).

``.venv/bin/python -m tests.bench.bench_ingest [pupils ...]`` (default 30,000). Studies are
generated under the bench folder (tests/bench/common.py) and reused when present.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.bench.common import BENCH_DIR, SEED, Timing, print_table, study_file, timed


def bench_study(pupils: int) -> Path:
    """The study file of a generated study of ``pupils`` under the bench folder (generated once)."""
    root = BENCH_DIR / f"ingest-{pupils}"
    path = root / "study.yaml"
    if not (root / "generated.ok").is_file():
        from pipelines.synth.generate import generate_study

        path = study_file(root)
        generate_study(path, root, pupils=pupils, seed=SEED)
        (root / "generated.ok").write_text("ok\n")
    return path


def bare_read(study) -> int:
    """Open every input with its format's library; the number of cells read."""
    import pandas as pd
    import pyreadstat
    from python_calamine import CalamineWorkbook

    cells = 0
    for item in study.inputs:
        source = study.sources[item.source]
        path = study.raw_path / item.path
        if source.format == "sav":
            frame, _ = pyreadstat.read_sav(str(path), apply_value_formats=False, user_missing=True)
            cells += frame.size
        elif source.format == "dta":
            frame, _ = pyreadstat.read_dta(str(path), apply_value_formats=False, user_missing=True)
            cells += frame.size
        elif source.format == "csv":
            frame = pd.read_csv(path, sep=source.delimiter or ",", encoding=source.encoding or "utf-8",
                                dtype=str, keep_default_na=False, on_bad_lines="skip", encoding_errors="replace")
            cells += frame.size
        elif source.format == "xlsx":
            workbook = CalamineWorkbook.from_path(str(path))
            sheet = source.sheet if isinstance(source.sheet, int) else workbook.sheet_names.index(source.sheet)
            rows = workbook.get_sheet_by_index(sheet).to_python()
            cells += sum(len(r) for r in rows)
    return cells


def frame_fingerprint(frame) -> str:
    """SHA-256 of a frame's columns, dtypes, index and every value (``repr`` tells None, NaN and
    <NA>, 1 and 1.0 apart): equal digests mean the same table, row for row. Prints no value."""
    import hashlib

    digest = hashlib.sha256(repr((list(frame.columns), list(frame.index))).encode())
    for position, column in enumerate(frame.columns):
        series = frame.iloc[:, position]
        digest.update(f"\0{column}\0{series.dtype}\0".encode())
        digest.update(repr(series.tolist()).encode())
    return digest.hexdigest()


def result_fingerprint(result) -> dict[str, str]:
    """A digest per table an ``IngestResult`` holds (anon tables, meta.quality, meta.row_counts,
    inputs and encodings, the names scanner's pattern): the ingest's output, compared before and
    after an optimisation. Digests only, never a value."""
    import hashlib

    out = {f"anon.{name}": frame_fingerprint(frame) for name, frame in sorted(result.tables.items())}
    out["meta.quality"] = frame_fingerprint(result.quality)
    out["meta.row_counts"] = frame_fingerprint(result.row_counts)
    out["inputs"] = hashlib.sha256(repr((result.inputs, sorted(result.encodings.items()))).encode()).hexdigest()
    out["names_scanner"] = hashlib.sha256(result.names_scanner.pattern_text.encode()).hexdigest()
    return out


def ingest_vs_bare(pupils: int, repeats: int = 1) -> list[Timing]:
    from pipelines.config import load_codebooks, load_study
    from pipelines.ingest.stage import study_keys
    from pipelines.ingest.study import ingest_study

    study = load_study(bench_study(pupils))
    books = load_codebooks(study)
    keys = study_keys(study)
    bare = min((timed(f"bare read ({pupils} pupils)", lambda: bare_read(study))[0] for _ in range(repeats)),
               key=lambda t: t.cpu)
    ingest = min((timed(f"ingest ({pupils} pupils, no DuckDB write)", lambda: ingest_study(study, books, keys))[0]
                  for _ in range(repeats)), key=lambda t: t.cpu)
    ingest.note = f"ingest / bare read = {ingest.cpu / bare.cpu:.2f}x CPU, {ingest.wall / bare.wall:.2f}x wall"
    return [bare, ingest]


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [30_000]:
        print_table(ingest_vs_bare(size, repeats=2), f"ingest vs bare read, {size} pupils (best of 2 by CPU)")

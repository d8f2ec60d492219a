"""Nothing lost in silence: the ingest on every variant of the malformed corpus (tests/malformed.py).

For each variant: no traceback but the expected ones (DataLossError, ConfigError), never a
run that writes with rows lost and no finding, raw files unchanged, and the previous good
database byte-identical after a refused run. A few variants go through `mapstudy run`.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.config import PROJECT_ROOT, ConfigError, load_codebooks, load_study
from pipelines.ingest.losses import DataLossError
from pipelines.ingest.stage import run_ingest

from . import malformed
from .conftest import generate

PUPILS = 200
#: Variants the default suite runs (a few kinds, to keep `make test` short); `make test-slow` runs them all.
FAST = {"csv_zero_bytes", "csv_unbalanced_quote", "csv_many_ragged_rows", "csv_utf16le_bom", "csv_symlink_outside",
        "path_dotdot", "sav_truncated", "sav_labels_user_missing"}
CANARIES = ("aaaaaaaaaa", "bbbbbbbbbb", "palju")  # injected cell texts no finding may quote


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    """Every entry under root: a file's hash, a symlink's target, or 'dir' (nothing followed out)."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = _sha(path)
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small generated study, ingested once: the previous good database every variant starts from."""
    root = tmp_path_factory.mktemp("malformed")
    study_file, _ = generate(root, pupils=PUPILS)
    study = load_study(study_file)
    run_ingest(study, load_codebooks(study))
    with duckdb.connect(str(study.db_path), read_only=True) as con:
        accepted = dict(con.execute("SELECT file, rows_accepted FROM meta.row_counts").fetchall())
    return root, yaml.safe_load(study_file.read_text(encoding="utf-8")), study.db_path, accepted


def _prepare(variant: malformed.Variant, base, tmp_path: Path) -> tuple[Path, Path]:
    root, data, good_db, _ = base
    raw = tmp_path / "raw"
    shutil.copytree(root / "raw", raw, symlinks=True)
    study = copy.deepcopy(data)
    study.update(raw_dir=str(raw), processed_dir=str(tmp_path / "processed"), reports_dir=str(tmp_path / "reports"))
    malformed.apply(variant, raw, study)
    (tmp_path / "processed").mkdir()
    shutil.copyfile(good_db, tmp_path / "processed" / good_db.name)
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(study, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return study_file, raw


def _check_written(db: Path, variant: malformed.Variant, accepted_before: dict[str, int]) -> None:
    with duckdb.connect(str(db), read_only=True) as con:
        counts = con.execute("SELECT file, rows_read, rows_accepted, rows_rejected FROM meta.row_counts").fetchall()
        quality = con.execute("SELECT file, rule, action, message FROM meta.quality").fetchall()
        losses = con.execute("SELECT file, rule, message FROM meta.losses").fetchall()
        encodings = dict(con.execute("SELECT name, value FROM meta.provenance WHERE kind = 'encoding'").fetchall())
    if variant.encoding:
        assert encodings.get(variant.target) == variant.encoding, variant.name
    for file, read, accepted, rejected in counts:
        assert read == accepted + rejected, file
        if accepted < accepted_before.get(file, 0):  # rows gone: a finding must say so
            said = [r for f, r, a, _ in quality if f == file and a in ("row_rejected", "file_rejected")]
            assert said or any(f == file for f, _, _ in losses), f"{file}: rows lost in silence ({variant.name})"
    if variant.rule:
        assert any(f == variant.target and r == variant.rule for f, r, _, _ in quality), \
            f"{variant.name}: no {variant.rule} finding for {variant.target}"
    texts = [m for *_, m in quality] + [m for *_, m in losses]
    assert not [t for t in texts if any(c in str(t) for c in CANARIES)], "a finding quotes a cell"


def _run_variant(variant: malformed.Variant, base, tmp_path: Path) -> None:
    study_file, raw = _prepare(variant, base, tmp_path)
    before = _tree(tmp_path)
    before.pop("processed/demo.duckdb")
    if variant.expect == "config":
        with pytest.raises(ConfigError) as err:
            load_codebooks(load_study(study_file))
        assert "inside raw_dir" in str(err.value)
        return
    study = load_study(study_file)
    books = load_codebooks(study)
    good = _sha(study.db_path)
    try:
        run_ingest(study, books)
        refused = None
    except DataLossError as exc:
        refused = exc
    if variant.expect == "loss":
        assert refused is not None, f"{variant.name}: the run wrote although {variant.target} lost rows"
    if refused is not None:
        assert _sha(study.db_path) == good, "a refused run changed the previous database"
        assert variant.target in str(refused) and "--accept-partial" in str(refused)
        assert not any(c in str(refused) for c in CANARIES)
        partial = study.model_copy(update={"processed_dir": str(tmp_path / "partial")})
        summary = run_ingest(partial, books, accept_partial=True)
        assert variant.target in {p.file for p in summary.losses}
        _check_written(partial.db_path, variant, base[3])
    else:
        _check_written(study.db_path, variant, base[3])
    after = _tree(tmp_path)
    assert {k: v for k, v in after.items() if k.startswith(("raw", "outside"))} == \
        {k: v for k, v in before.items() if k.startswith(("raw", "outside"))}, "a raw file was changed"


def test_the_corpus_is_big_enough_and_covers_every_kind():
    names = [v.name for v in malformed.variants()]
    assert len(names) >= 40 and len(set(names)) == len(names)
    assert FAST <= set(names)
    rules = {v.rule for v in malformed.variants()}
    assert {"empty_file", "missing_file", "unreadable_file", "outside_raw_dir", "malformed_row",
            "encoding_overridden", "nul_removed", "cell_truncated", "declared_missing"} <= rules


@pytest.mark.parametrize("variant", [pytest.param(v, id=v.name, marks=() if v.name in FAST else pytest.mark.slow)
                                     for v in malformed.variants()])
def test_nothing_is_lost_in_silence(variant, base, tmp_path):
    _run_variant(variant, base, tmp_path)


def _cli(study_file: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAPSTUDY_DAGSTER_STORAGE": str(tmp_path / "dagster"),
           "MAPSTUDY_DAGSTER_LOGS": str(tmp_path / "dagster-logs"), "COLUMNS": "200"}
    mapstudy = Path(sys.executable).parent / "mapstudy"
    return subprocess.run([str(mapstudy), "run", "--study", str(study_file), *args],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("name", ["csv_zero_bytes", pytest.param("sav_truncated", marks=pytest.mark.slow),
                                  pytest.param("path_dotdot", marks=pytest.mark.slow)])
def test_the_command_line_says_what_it_lost(name, base, tmp_path):
    variant = next(v for v in malformed.variants() if v.name == name)
    study_file, _ = _prepare(variant, base, tmp_path)
    good = _sha(tmp_path / "processed" / "demo.duckdb")
    done = _cli(study_file, tmp_path)
    output = done.stdout + done.stderr
    assert "Traceback (most recent call last)" not in output
    if variant.expect == "config":
        assert done.returncode == 2 and "inside raw_dir" in output
        return
    assert done.returncode == 1, output[-2000:]
    assert f"lost: {variant.target}" in output and "--accept-partial" in output
    assert "done" not in output.splitlines()[-1]
    assert _sha(tmp_path / "processed" / "demo.duckdb") == good


@pytest.mark.slow
def test_an_accepted_partial_run_exits_1_and_records_the_losses(base, tmp_path):
    variant = next(v for v in malformed.variants() if v.name == "csv_many_ragged_rows")
    study_file, _ = _prepare(variant, base, tmp_path)
    done = _cli(study_file, tmp_path, "--accept-partial")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert f"lost: {variant.target}" in output and "partial run" in output
    with duckdb.connect(str(tmp_path / "processed" / "demo.duckdb"), read_only=True) as con:
        assert con.execute("SELECT file FROM meta.losses").fetchall() == [(variant.target,)]


def test_a_source_without_some_codebook_columns_ingests_cleanly(base, tmp_path):
    """Issue 10: a codebook variable with no column for a source is missing there, one finding per file."""
    root, data, _, accepted_before = base
    study = load_study(root / "study.yaml").model_copy(update={"processed_dir": str(tmp_path)})
    books = load_codebooks(study)
    pupils = books["pupils"]
    dropped = [n for n, v in pupils.variables.items()
               if malformed.CSV_SOURCE in v.source and not v.required and v.identity is None][:16]
    assert len(dropped) == 16
    variables = {n: (v.model_copy(update={"source": {s: c for s, c in v.source.items() if s != malformed.CSV_SOURCE}})
                     if n in dropped else v) for n, v in pupils.variables.items()}
    books = {**books, "pupils": pupils.model_copy(update={"variables": variables})}
    run_ingest(study, books)
    csv_files = [i.path for i in study.inputs if i.source == malformed.CSV_SOURCE and i.instrument == "pupils"]
    with duckdb.connect(str(study.db_path), read_only=True) as con:
        found = con.execute("SELECT file, variable, count(*) FROM meta.quality WHERE rule = 'column_not_in_source' "
                            "GROUP BY file, variable").fetchall()
        accepted = dict(con.execute("SELECT file, rows_accepted FROM meta.row_counts").fetchall())
    assert sorted(found) == sorted((f, v, 1) for f in csv_files for v in dropped)
    assert accepted == accepted_before


def test_check_refuses_a_symlink_out_of_the_raw_folder_without_reading_it(base, tmp_path):
    from pipelines.study_check import check_study

    variant = next(v for v in malformed.variants() if v.name == "csv_symlink_outside")
    study_file, _ = _prepare(variant, base, tmp_path)
    study = load_study(study_file)
    problems = check_study(study, load_codebooks(study))
    mine = [p for p in problems if "outside the study's raw folder" in str(p)]
    assert len(mine) == 1 and mine[0].level == "error"

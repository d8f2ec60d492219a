"""Expected failures of every command end in one readable message and exit code 2, never a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines import warehouse
from pipelines.config import PROJECT_ROOT, load_study
from pipelines.locks import study_lock
from pipelines.privacy import erasure
from pipelines.privacy.pseudonyms import PseudonymKeys, new_secret_hex, write_key_file
from tests.conftest import make_study_file

MAPSTUDY = str(Path(sys.executable).with_name("mapstudy"))
CODE = "37605030299"


def mapstudy(*args: str, root: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAPSTUDY_DAGSTER_STORAGE": str(root / "dagster"),
           "MAPSTUDY_DAGSTER_LOGS": str(root / "logs"), "COLUMNS": "200"}
    return subprocess.run([MAPSTUDY, *args], cwd=PROJECT_ROOT, env=env, input=stdin, capture_output=True,
                          text=True, timeout=300, check=False)


def assert_one_message(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.count("error:") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert CODE not in result.stderr + result.stdout


@pytest.fixture
def study(tmp_path):
    study_file = make_study_file(tmp_path)
    write_key_file(tmp_path / "secrets" / "demo.key", new_secret_hex())
    return tmp_path, study_file


def test_report_in_an_unknown_language(study):
    root, study_file = study
    assert_one_message(mapstudy("report", "--study", str(study_file), "--lang", "ru", root=root),
                       "unknown report language ru", "et, en")


def test_erase_with_a_missing_file(study):
    root, study_file = study
    assert_one_message(mapstudy("erase", "--study", str(study_file), "--codes", str(root / "none.txt"), root=root),
                       "no such file", "none.txt")


def test_erase_with_a_binary_file(study):
    root, study_file = study
    (root / "codes.bin").write_bytes(b"\x00\xff" + CODE.encode() + b"\x00\x9c")
    assert_one_message(mapstudy("erase", "--study", str(study_file), "--codes", str(root / "codes.bin"), root=root),
                       "not a text file")


def test_erase_with_a_utf16_file_works(study):
    root, study_file = study
    (root / "codes.txt").write_bytes((CODE + "\r\n").encode("utf-16"))
    result = mapstudy("erase", "--study", str(study_file), "--codes", str(root / "codes.txt"), root=root)
    assert result.returncode == 0, result.stderr
    assert "1 pseudonym(s) added" in result.stderr


def test_erase_without_people(study):
    root, study_file = study
    assert_one_message(mapstudy("erase", "--study", str(study_file), root=root), "give the people to erase")


def test_debug_shows_the_traceback(study):
    root, study_file = study
    result = mapstudy("--debug", "erase", "--study", str(study_file), "--codes", str(root / "none.txt"), root=root)
    assert result.returncode == 2 and "Traceback" in result.stderr and "no such file" in result.stderr


def test_run_without_a_key_stops_before_the_run(study):
    root, study_file = study
    st = load_study(study_file)
    (root / "secrets" / "demo.key").unlink()
    first = st.raw_path / st.inputs[0].path
    first.parent.mkdir(parents=True, exist_ok=True)
    first.write_bytes(b"")
    assert_one_message(mapstudy("run", "--study", str(study_file), root=root), "no pseudonymisation key found")
    assert not (root / "dagster").exists()  # no Dagster run was launched
    assert not st.db_path.exists()


def test_run_refuses_a_register_made_with_another_key(study):
    root, study_file = study
    st = load_study(study_file)
    erasure.add_to_register(st, PseudonymKeys.from_secret(bytes.fromhex(new_secret_hex())), [CODE])
    first = st.raw_path / st.inputs[0].path
    first.parent.mkdir(parents=True, exist_ok=True)
    first.write_bytes(b"")
    assert_one_message(mapstudy("run", "--study", str(study_file), root=root),
                       "another pseudonymisation key", "mapstudy erase --rekey")


def test_share_without_a_database(study):
    root, study_file = study
    assert_one_message(mapstudy("share", "--study", str(study_file), "--out", str(root / "it's"), root=root),
                       "does not exist")


def test_a_busy_study_waits_then_says_so(study):
    root, study_file = study
    (root / "codes.txt").write_text(CODE + "\n", encoding="utf-8")
    with study_lock(load_study(study_file)):
        now = mapstudy("--wait", "0", "erase", "--study", str(study_file), "--codes", str(root / "codes.txt"),
                       root=root)
        later = mapstudy("--wait", "1", "erase", "--study", str(study_file), "--codes", str(root / "codes.txt"),
                         root=root)
    assert_one_message(now, "another mapstudy command is using study demo")
    assert_one_message(later, "another mapstudy command is using study demo; waiting", "after 1 s")
    assert not erasure.register_path(load_study(study_file)).exists()


class _FullDisk:
    """A connection whose write fails as DuckDB's does on a full disk (the transaction is then gone)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql, *args):
        self.statements.append(sql.split()[0])
        if sql.startswith("CREATE OR REPLACE"):
            raise duckdb.IOException('Could not write file "x.duckdb.wal": No space left on device')
        if sql == "ROLLBACK":
            raise duckdb.TransactionException("cannot rollback - no transaction is active")

    def register(self, *args):
        pass

    unregister = register


def test_a_full_disk_is_reported_as_a_full_disk(monkeypatch, tmp_path):
    from pipelines.cli import _explain

    fake = _FullDisk()
    monkeypatch.setattr(warehouse, "connect", lambda *a, **k: contextlib.nullcontext(fake))
    with pytest.raises(duckdb.IOException) as err:
        warehouse.write_tables(tmp_path / "x.duckdb", {"anon.t": pd.DataFrame({"a": [1]})})
    assert "ROLLBACK" in fake.statements
    message, hint = _explain(err.value)
    assert message.startswith("the disk is full") and "free some space" in hint
    assert _explain(OSError(errno.ENOSPC, "No space left on device", "/x/report.html"))[0] == \
        "the disk is full: /x/report.html"
    assert _explain(PermissionError(errno.EACCES, "Permission denied", "/data/processed"))[0] == \
        "permission denied: /data/processed"
    assert _explain(OSError(errno.EROFS, "Read-only file system", "/data/processed"))[0].startswith(
        "the file system is read-only")


def test_unexpected_errors_do_not_show_their_message():
    from pipelines.cli import _explain

    message, hint = _explain(ValueError(f"could not convert {CODE}"))
    assert CODE not in message and "--debug" in hint


def test_a_full_disk_inside_a_run_is_named_without_its_message():
    from types import SimpleNamespace

    from pipelines.cli import _explain
    from pipelines.runner import io_failure_in

    cause = SimpleNamespace(message=f"IOException: Could not write file: No space left on device ({CODE})",
                            cause=None, context=None)
    wrapper = SimpleNamespace(message="Error occurred while executing op", cause=cause, context=None)
    event = SimpleNamespace(is_step_failure=True, step_key="ingest_study",
                            step_failure_data=SimpleNamespace(error=wrapper))
    failed = io_failure_in(SimpleNamespace(all_events=[SimpleNamespace(is_step_failure=False), event]))
    message, hint = _explain(failed)
    assert message == "the run failed in step ingest_study: the disk is full" and "free some space" in hint
    assert CODE not in message + hint
    assert io_failure_in(SimpleNamespace(all_events=[])) is None

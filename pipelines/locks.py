"""Locks between mapstudy commands, and files written so that a crash never leaves half of one.

* **The study lock**: `mapstudy run`, `report`, `erase` and `share` of one study take it, so
  that they never overlap (a run replacing the database while a release reads it, two
  erasures rewriting the register). A second command waits, saying so, or gives up after
  its `--wait` seconds. The lock is an OS file lock (`flock`): it is released when its
  process ends, killed or not, so a crashed command never blocks the next one.
* **The instance lock** guards Dagster's own storage under `.mapstudy/` while it is
  created or cleaned (see `pipelines/runner.py`).
* `write_text_atomically` writes to a temporary name in the same folder and renames it
  over the target: readers see the old file or the new one, never a half.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from pipelines.config import PROJECT_ROOT, Study

LOCK_DIR = PROJECT_ROOT / ".mapstudy" / "locks"


class LockTimeout(RuntimeError):
    """Another mapstudy command held the lock for longer than this one would wait."""


def file_lock(path: Path) -> FileLock:
    """An OS-level lock (never a lock file that outlives a killed process)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, fallback_to_soft=False, preserve_lock_file=True)


def study_lock_path(study: Study) -> Path:
    """One lock per study database (two temporary test studies called "demo" do not share one)."""
    where = hashlib.sha256(str(study.db_path.resolve()).encode("utf-8")).hexdigest()[:12]
    return LOCK_DIR / f"{study.study}-{where}.lock"


@contextlib.contextmanager
def held(lock: FileLock, what: str, wait: float | None = None,
         notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``lock``; when busy, say so through ``notify`` and wait up to ``wait`` seconds (None: as long as it takes)."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if wait is not None and wait <= 0:
            raise LockTimeout(f"another mapstudy command is using {what}") from None
        if notify:
            notify(f"another mapstudy command is using {what}; waiting"
                   + (f" up to {wait:g} s" if wait is not None else "") + "...")
        try:
            lock.acquire(timeout=-1 if wait is None else wait)
        except Timeout:
            raise LockTimeout(f"another mapstudy command is still using {what} after {wait:g} s") from None
    try:
        yield
    finally:
        lock.release()


def study_lock(study: Study, wait: float | None = None,
               notify: Callable[[str], None] | None = None) -> contextlib.AbstractContextManager[None]:
    """The study lock (see the module docstring)."""
    return held(file_lock(study_lock_path(study)), f"study {study.study}", wait, notify)


def write_text_atomically(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, synced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise

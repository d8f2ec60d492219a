"""Provenance: the fingerprint of a run, so every number can be traced to its inputs.

`meta.provenance` holds, as (kind, name, value) rows, the SHA-256 of every input file (and the encoding each CSV was read in), the
code version, the lockfile's and every configuration file's hash, the seeds and the
versions of the packages that compute. The `fingerprint` row hashes all the others; every
report prints it. No timestamps: the same inputs and code give the same table, bit for bit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path

import pandas as pd

from pipelines.codebooks import override_files
from pipelines.config import PROJECT_ROOT, Codebook, Study, file_sha256

SOFTWARE = ("dagster", "duckdb", "pandas", "numpy", "scipy", "statsmodels", "stepmix", "pyreadstat")


def code_version(root: Path = PROJECT_ROOT) -> str:
    """The git commit, marked '+dirty' when tracked files differ from it; 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def provenance_table(study: Study, codebooks: dict[str, Codebook],
                     inputs: list[tuple[str, str | None]], encodings: dict[str, str] | None = None) -> pd.DataFrame:
    rows: list[tuple[str, str, str]] = []
    rows += [("input", path, digest or "missing") for path, digest in inputs]
    rows += [("encoding", path, encoding) for path, encoding in sorted((encodings or {}).items())]
    rows.append(("code", "git_commit", code_version()))
    lock = PROJECT_ROOT / "uv.lock"
    rows.append(("lockfile", "uv.lock", file_sha256(lock) if lock.is_file() else "missing"))
    configs = [study.path] + [cb.path for cb in codebooks.values()] + [PROJECT_ROOT / "codebooks" / "value_sets.yaml"]
    configs += [p for p in override_files(study) if p not in configs]  # the study's own codebook overrides
    rows += [("config", _relative(p), file_sha256(p)) for p in configs if p is not None]
    rows.append(("seed", "analysis", str(study.seed)))
    rows.append(("software", "python", platform.python_version()))
    rows += [("software", name, importlib.metadata.version(name)) for name in SOFTWARE]
    digest = hashlib.sha256("\n".join("\t".join(r) for r in sorted(rows)).encode()).hexdigest()
    rows.append(("fingerprint", "run", digest))
    return pd.DataFrame(rows, columns=["kind", "name", "value"])


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return Path(path).name

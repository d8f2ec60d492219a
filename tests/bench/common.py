"""Shared pieces of the benchmarks: a bench folder of their own, a generated study in it,
and a timer that reports wall time, CPU time (every thread of the process) and peak RSS.

Nothing here touches the demo's data/processed, data/raw or reports: every study is the
demo's study file with its paths moved under ``BENCH_DIR`` (default ``.mapstudy/bench``,
git-ignored). The machine may be shared: CPU time is the number to compare, wall time is
noisy.
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.config import PROJECT_ROOT

BENCH_DIR = Path(os.environ.get("BENCH_DIR", PROJECT_ROOT / ".mapstudy" / "bench"))
SEED = 20231


@dataclass
class Timing:
    stage: str
    wall: float
    cpu: float
    peak_rss_mb: float
    note: str = ""


def peak_rss_mb() -> float:
    """Peak resident set of this process and its finished children (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def timed(stage: str, fn, note: str = "") -> tuple[Timing, object]:
    """Run fn(); wall, CPU of this process and its waited-for children, and peak RSS so far."""
    def cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    wall0, cpu0 = time.perf_counter(), cpu()
    value = fn()
    return Timing(stage, time.perf_counter() - wall0, cpu() - cpu0, peak_rss_mb(), note), value


def study_file(root: Path, name: str = "demo") -> Path:
    """The demo's study file with raw, processed, reports, erasure and key under ``root``."""
    data = yaml.safe_load((PROJECT_ROOT / "studies" / "demo.yaml").read_text(encoding="utf-8"))
    data["study"] = name
    for key, folder in (("raw_dir", "raw"), ("processed_dir", "processed"), ("reports_dir", "reports"),
                        ("erasure_dir", "erasure")):
        data[key] = str(root / folder)
    data["secret"] = {"env": "MAPSTUDY_BENCH_KEY_UNSET", "file": str(root / "secrets" / "demo.key")}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def fresh_root(label: str) -> Path:
    root = BENCH_DIR / label
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


def print_table(rows: list[Timing], title: str) -> None:
    print(f"\n{title}")
    print(f"{'stage':<46} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}  note")
    for row in rows:
        print(f"{row.stage:<46} {row.wall:8.2f} {row.cpu:8.2f} {row.peak_rss_mb:12.0f}  {row.note}")

"""Render a report ``.qmd`` to HTML and PDF: Quarto when installed, else the embedded engine.

Researchers who have the Quarto CLI get Quarto's rendering; everybody else (a fresh
clone has only Python) gets the embedded engine, which executes the same ``.qmd``
once with nbclient and converts it with nbconvert (HTML) and pandoc + Typst (PDF).
Both read the same parameters: ``study``, ``db`` (the processed DuckDB file),
``lang`` (``et`` or ``en``) and optionally ``municipality``. The embedded engine's
output is deterministic: the same database and code give the same bytes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from pipelines.render.html import notebook_to_html
from pipelines.render.notebook import WarmKernel, executed_notebook
from pipelines.render.pdf import notebook_to_pdf
from pipelines.render.texts import LANGUAGES, load_texts

FORMATS: tuple[str, ...] = ("html", "pdf")
REQUIRED_PARAMS: tuple[str, ...] = ("study", "db", "lang")
#: Quarto's output format for each of ours: PDF goes through Typst, as in the embedded engine.
QUARTO_FORMATS: dict[str, str] = {"html": "html", "pdf": "typst"}
#: Seconds a Quarto render may take before it is stopped.
QUARTO_TIMEOUT = 900


class RenderError(RuntimeError):
    """A report could not be rendered; the message says which and what to do."""


def check_request(qmd: Path, params: Mapping[str, str], formats: Sequence[str]) -> None:
    """Stop early, with a clear message, on a request that cannot render."""
    if not qmd.is_file():
        raise RenderError(f"report source {qmd} does not exist")
    missing = [p for p in REQUIRED_PARAMS if not params.get(p)]
    if missing:
        raise RenderError(f"report {qmd.name} needs the parameters {missing}")
    if params["lang"] not in LANGUAGES:
        raise RenderError(f"report language must be one of {LANGUAGES}, not {params['lang']!r}")
    if not Path(params["db"]).is_absolute():
        raise RenderError("parameter 'db' must be an absolute path (reports run in their own folder)")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise RenderError(f"unknown report formats {unknown}: choose from {FORMATS}")


def report_title(qmd: Path, lang: str, front_matter: Mapping[str, object]) -> str:
    """The document title: the text ``<report>.title`` in the language, else the front matter's."""
    try:
        return load_texts(lang)(f"{qmd.stem}.title")
    except KeyError:
        return str(front_matter.get("title", qmd.stem))


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new version, never a half."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def render_embedded(
    qmd: Path, output_dir: Path, params: Mapping[str, str], formats: Sequence[str], kernel: WarmKernel | None = None
) -> list[Path]:
    """Execute the report once (in ``kernel`` if given) and write each requested format from it."""
    notebook, front_matter = executed_notebook(qmd, params, kernel)
    return write_formats(notebook, front_matter, qmd, output_dir, params, formats)


def convert_formats(notebook: NotebookNode, front_matter: Mapping[str, object], qmd: Path, output_dir: Path,
                    params: Mapping[str, str], formats: Sequence[str]) -> list[tuple[Path, bytes]]:
    """Each requested format of one executed notebook: its file path and bytes, not yet written."""
    title = report_title(qmd, params["lang"], front_matter)
    converted = []
    for fmt in formats:
        path = output_dir / f"{qmd.stem}.{fmt}"
        if fmt == "html":
            converted.append((path, notebook_to_html(notebook, title, params["lang"]).encode("utf-8")))
        else:
            converted.append((path, notebook_to_pdf(notebook, title, params["lang"])))
    return converted


def write_formats(notebook: NotebookNode, front_matter: Mapping[str, object], qmd: Path, output_dir: Path,
                  params: Mapping[str, str], formats: Sequence[str]) -> list[Path]:
    """Write each requested format of one executed notebook (HTML and PDF share the execution)."""
    written = []
    for path, data in convert_formats(notebook, front_matter, qmd, output_dir, params, formats):
        write_atomically(path, data)
        written.append(path)
    return written


def render_quarto(
    quarto: str, qmd: Path, output_dir: Path, params: Mapping[str, str], formats: Sequence[str]
) -> list[Path]:
    """Render with the Quarto CLI, one ``quarto render`` per format."""
    written = []
    for fmt in formats:
        command = [quarto, "render", str(qmd), "--to", QUARTO_FORMATS[fmt], "--output-dir", str(output_dir)]
        for name, value in params.items():
            command += ["-P", f"{name}:{value}"]
        result = subprocess.run(command, cwd=qmd.parent, capture_output=True, text=True,
                                timeout=QUARTO_TIMEOUT, check=False)
        if result.returncode != 0:
            raise RenderError(f"quarto could not render {qmd.name} as {fmt}:\n{result.stderr[-4000:]}")
        written.append(output_dir / f"{qmd.stem}.{fmt}")
    return written


def choose_engine(engine: str) -> str | None:
    """The Quarto CLI's path when ``engine`` renders with Quarto, else None (embedded)."""
    if engine not in ("auto", "quarto", "embedded"):
        raise RenderError(f"unknown render engine {engine!r}: choose auto, quarto or embedded")
    quarto = shutil.which("quarto")
    if engine == "quarto" and quarto is None:
        raise RenderError("the Quarto CLI is not on PATH: install it or use engine='embedded'")
    return quarto if engine != "embedded" else None


def prepared(qmd: Path, output_dir: Path, params: Mapping[str, object], formats: Sequence[str]
             ) -> tuple[Path, Path, dict[str, str]]:
    """A request checked and normalised: absolute report path, output folder made, string parameters."""
    qmd = Path(qmd).resolve()
    output_dir = Path(output_dir)
    clean_params = {name: str(value) for name, value in params.items() if value is not None}
    check_request(qmd, clean_params, formats)
    output_dir.mkdir(parents=True, exist_ok=True)
    return qmd, output_dir, clean_params


@dataclass(frozen=True)
class RenderJob:
    """One report to render: its ``.qmd``, output folder, parameters and formats."""

    qmd: Path
    output_dir: Path
    params: Mapping[str, object]
    formats: Sequence[str] = field(default=FORMATS)


def render_reports(jobs: Iterable[RenderJob], engine: str = "auto") -> list[list[Path]]:
    """Render many reports in warm kernels; each job's written files, in job order.

    The batch form of :func:`render_report` for a run's reports (every language, every
    municipality): warm encrypted kernels execute the reports, each kernel's namespace
    reset between them, so a kernel start and the imports are paid once per kernel; each
    report is executed once for HTML and PDF. A batch of :data:`PARALLEL_FROM` reports or
    more runs in :func:`batch_kernels` kernels at once (two processes on a two-core
    machine), each taking the next report when it is free, while writer threads convert
    the executed notebooks (nbconvert, pandoc, Typst); the files are written in job order.
    The bytes are the same as :func:`render_report`'s, whichever kernel ran a report.
    Requests are checked before anything renders. With Quarto, each job is a ``quarto
    render`` as in :func:`render_report`.
    """
    quarto = choose_engine(engine)
    requests = [(prepared(job.qmd, job.output_dir, job.params, job.formats), job.formats) for job in jobs]
    if quarto is not None:
        return [render_quarto(quarto, qmd, out, params, formats) for (qmd, out, params), formats in requests]
    if not requests:
        return []
    folder = requests[0][0][0].parent
    shared = shared_kernel(folder)  # this thread's warm kernel, else one for this batch
    kernels = batch_kernels(len(requests)) if shared is not None else 1
    kernel_context = contextlib.nullcontext(shared) if shared is not None else WarmKernel(folder)
    batch = _Batch(requests)
    with kernel_context as kernel, ThreadPoolExecutor(kernels, "mapstudy-convert") as writers:
        helpers = [threading.Thread(target=batch.run_helper, args=(folder, writers), name=f"mapstudy-kernel-{i}",
                                    daemon=True) for i in range(1, kernels)]
        for helper in helpers:
            helper.start()
        try:
            batch.run(kernel, writers)  # this thread's kernel takes reports too
        except BaseException:  # interrupted: the helpers take no further report
            batch.stopped = True
            raise
        finally:
            for helper in helpers:
                helper.join()
    return batch.results()  # the writers are done: every executed report is converted and written


#: Kernels a large batch executes reports in at once, when set (else :func:`batch_kernels` decides).
RENDER_KERNELS_ENV = "MAPSTUDY_RENDER_KERNELS"
#: A further kernel costs its start and imports (about 2 s of one core, more on a busy
#: machine): a batch of fewer reports than this (a study report's two languages, a few
#: counties) is done in one kernel about as soon as a second one would have started.
PARALLEL_FROM = 8
#: At most this many kernels by default: report execution and the HTML/PDF writing share the cores.
MAX_KERNELS = 2


def batch_kernels(reports: int) -> int:
    """How many kernels a batch of ``reports`` executes in: one per core up to :data:`MAX_KERNELS`."""
    configured = os.environ.get(RENDER_KERNELS_ENV, "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise RenderError(f"{RENDER_KERNELS_ENV} must be a whole number of kernels, 1 or more")
        wanted = int(configured)
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        wanted = min(MAX_KERNELS, cores) if reports >= PARALLEL_FROM else 1
    return max(1, min(wanted, reports))


class _Batch:
    """The reports of one :func:`render_reports` call, shared by the threads that execute them.

    Each executing thread (the caller's, with its warm kernel, and one helper thread per
    further kernel) takes the next report not yet taken, executes it and hands it to the
    writers, which convert it to each format in memory; the files are then written in job
    order by whichever thread finds the next report in order ready (no thread ever waits
    for another report). After a failure no new report is taken; the reports before the
    failed one are still written (and those the other kernels had already executed), then
    the first failure in job order is raised.
    """

    def __init__(self, requests: Sequence[tuple[tuple[Path, Path, dict[str, str]], Sequence[str]]]) -> None:
        self.requests = list(requests)
        self.lock = threading.Lock()
        self.flushing = threading.Lock()  # held while files are written, one report after another
        self.taken = 0
        self.stopped = False
        #: per report: its converted files (path, bytes), then its written paths, or its failure
        self.done: dict[int, list[tuple[Path, bytes]] | list[Path] | BaseException] = {}
        self.written = 0  # reports before this one are written (or failed)

    def take(self) -> int | None:
        with self.lock:
            if self.stopped or self.taken >= len(self.requests):
                return None
            self.taken += 1
            return self.taken - 1

    def run(self, kernel: WarmKernel, writers: ThreadPoolExecutor) -> None:
        """Execute reports in ``kernel`` until none is left (or one failed)."""
        while (index := self.take()) is not None:
            (qmd, out, params), formats = self.requests[index]
            try:
                notebook, front_matter = executed_notebook(qmd, params, kernel)
            except BaseException as error:  # noqa: BLE001 - raised again by results(), in job order
                self.ready(index, error)
                return
            writers.submit(self.convert, index, notebook, front_matter)

    def run_helper(self, folder: Path, writers: ThreadPoolExecutor) -> None:
        """A further kernel's thread: reports execute in its own kernel, shut down when none is left."""
        with WarmKernel(folder) as kernel:
            self.run(kernel, writers)

    def convert(self, index: int, notebook: NotebookNode, front_matter: Mapping[str, object]) -> None:
        (qmd, out, params), formats = self.requests[index]
        try:
            converted: list[tuple[Path, bytes]] | BaseException = convert_formats(
                notebook, front_matter, qmd, out, params, formats)
        except BaseException as error:  # noqa: BLE001 - raised again by results(), in job order
            converted = error
        self.ready(index, converted)

    def ready(self, index: int, result: list[tuple[Path, bytes]] | BaseException) -> None:
        """Record a report's converted files (or failure) and write every report now next in order."""
        with self.lock:
            self.done[index] = result
            if isinstance(result, BaseException):
                self.stopped = True
        with self.flushing:
            while True:
                with self.lock:
                    if self.written not in self.done:
                        return
                    index, result = self.written, self.done[self.written]
                if not isinstance(result, BaseException):
                    try:
                        for path, data in result:
                            write_atomically(path, data)
                        result = [path for path, _ in result]
                    except BaseException as error:  # noqa: BLE001
                        result = error
                with self.lock:
                    self.done[index] = result
                    self.written += 1
                    if isinstance(result, BaseException):
                        self.stopped = True

    def results(self) -> list[list[Path]]:
        """Each report's written files in job order, or the first failure."""
        paths = []
        for index in range(len(self.requests)):
            result = self.done.get(index)
            if isinstance(result, BaseException):
                raise result
            if result is None or index >= self.written:
                raise RenderError(f"report {index + 1} of the batch was not rendered")  # only after a failure
            paths.append(result)
        return paths


#: Set to 1 for a fresh kernel per ``render_report`` call (the old behaviour; slower, same bytes).
FRESH_KERNEL_ENV = "MAPSTUDY_FRESH_KERNEL"
_WARM = threading.local()
_WARM_KERNELS: list[WarmKernel] = []


def _close_warm_kernels() -> None:
    for kernel in _WARM_KERNELS:
        kernel.close()


atexit.register(_close_warm_kernels)


def shared_kernel(workdir: Path) -> WarmKernel | None:
    """This thread's warm kernel, kept between ``render_report`` calls (None: a fresh kernel each time).

    Every report a process renders one at a time (a run's reports, each municipality's
    partition, both languages) then shares one kernel start and the imports, without the
    caller batching them (:func:`render_reports` also overlaps the HTML/PDF writing). One
    kernel per thread, never shared across a fork; shut down when the process exits.
    """
    if os.environ.get(FRESH_KERNEL_ENV) == "1":
        return None
    kernel = getattr(_WARM, "kernel", None)
    if kernel is None or getattr(_WARM, "pid", None) != os.getpid():
        kernel = WarmKernel(workdir)
        _WARM.kernel, _WARM.pid = kernel, os.getpid()
        _WARM_KERNELS.append(kernel)
    return kernel


def render_report(
    qmd: Path,
    output_dir: Path,
    params: dict[str, str],
    formats: Sequence[str] = FORMATS,
    engine: str = "auto",
) -> list[Path]:
    """Render ``qmd`` with ``params`` into ``output_dir``; the written files, in ``formats`` order.

    ``engine`` is ``"auto"`` (Quarto if ``quarto`` is on PATH, else embedded),
    ``"quarto"`` or ``"embedded"``. Files are named ``<report>.html`` and
    ``<report>.pdf``; the caller picks the folder (``reports/_output/<study>/<lang>``).
    """
    quarto = choose_engine(engine)
    qmd, output_dir, params = prepared(qmd, output_dir, params, formats)
    if quarto is not None:
        return render_quarto(quarto, qmd, output_dir, params, formats)
    return render_embedded(qmd, output_dir, params, formats, shared_kernel(qmd.parent))

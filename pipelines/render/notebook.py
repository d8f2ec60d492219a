"""From a ``.qmd`` file to an executed, clean notebook, without the Quarto CLI.

The embedded engine follows Quarto's own conventions so that the same ``.qmd`` renders
with either engine: ``{{< include file >}}`` shortcodes are expanded, the YAML front
matter sets the document options, ``#|`` cell options (``echo``, ``output``,
``include``, ``tags``) are honoured, and parameters are injected as a cell right after
the cell tagged ``parameters`` (papermill's and Quarto's rule), so they override its
defaults. The ``.qmd`` is read with jupytext's R Markdown reader: jupytext's own
``qmd`` format shells out to the Quarto CLI, which is exactly what is missing here.

Execution uses nbclient with the ``python3`` kernel of this virtual environment, a
fixed working directory (the report's folder), per-cell and start-up timeouts, and a
fixed environment (hash seed, matplotlib backend, time zone), and the result is
stripped of everything that changes from run to run (timings, execution counts,
random cell ids, kernel metadata), so that renders are byte-identical.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets.config import Config

#: ``{{< include path >}}``: Quarto's shortcode for shared partials.
INCLUDE = re.compile(r"^\{\{<\s*include\s+(\S+)\s*>\}\}\s*$", re.MULTILINE)
#: Seconds a single cell may run, and the kernel may take to start.
CELL_TIMEOUT = 300
STARTUP_TIMEOUT = 120
#: Tags the exporters act on (nbconvert's TagRemovePreprocessor).
REMOVE_INPUT, REMOVE_OUTPUT, REMOVE_CELL = "remove-input", "remove-output", "remove-cell"


class ReportExecutionError(RuntimeError):
    """A report cell failed; names the report and the cell, the cause is chained."""


def expand_includes(text: str, folder: Path, depth: int = 0) -> str:
    """Replace each include shortcode by the named file's text, recursively."""
    if depth > 10:
        raise ValueError("includes nest more than 10 deep: is a partial including itself?")

    def replace(match: re.Match[str]) -> str:
        path = folder / match.group(1)
        if not path.is_file():
            raise FileNotFoundError(f"included partial {path} does not exist")
        return expand_includes(path.read_text(encoding="utf-8"), path.parent, depth + 1).rstrip("\n")

    return INCLUDE.sub(replace, text)


def split_cell_options(source: str) -> tuple[dict[str, Any], str]:
    """Quarto's ``#|`` option lines at the top of a code cell, as a dict, and the code."""
    lines = source.splitlines()
    option_lines = []
    while lines and lines[0].startswith("#|"):
        option_lines.append(lines.pop(0)[2:].strip())
    options = yaml.safe_load("\n".join(option_lines)) if option_lines else {}
    return (options or {}), "\n".join(lines)


def front_matter(cell: nbformat.NotebookNode) -> dict[str, Any]:
    """The YAML front matter held in the raw cell jupytext makes of it."""
    text = cell.source.strip()
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.strip("-\n")) or {}


def read_qmd(qmd: Path) -> tuple[nbformat.NotebookNode, dict[str, Any]]:
    """Read a ``.qmd`` into a notebook with tagged cells, and its front matter.

    Cell options become tags: ``echo: false`` hides the code (the default, from the
    front matter's ``execute.echo``), ``output: false`` hides the output, ``include:
    false`` hides both; ``tags`` are kept. Cell ids are numbered, not random.
    """
    text = expand_includes(qmd.read_text(encoding="utf-8"), qmd.parent)
    notebook = jupytext.reads(text, fmt="Rmd")
    options: dict[str, Any] = {}
    cells = []
    for cell in notebook.cells:
        if cell.cell_type == "raw" and not cells and not options:
            options = front_matter(cell)
            continue
        if cell.cell_type == "code":
            cell_options, cell.source = split_cell_options(cell.source)
            echo = cell_options.get("echo", options.get("execute", {}).get("echo", False))
            tags = list(cell_options.get("tags", []))
            if not echo:
                tags.append(REMOVE_INPUT)
            if cell_options.get("output") is False:
                tags.append(REMOVE_OUTPUT)
            if cell_options.get("include") is False:
                tags.append(REMOVE_CELL)
            cell.metadata = {"tags": tags} if tags else {}
        else:
            cell.metadata = {}
        cells.append(cell)
    notebook.cells = cells
    for i, cell in enumerate(notebook.cells):
        cell.id = f"cell-{i}"
    notebook.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return notebook, options


def inject_parameters(notebook: nbformat.NotebookNode, params: Mapping[str, str]) -> None:
    """Insert the parameters as a code cell after the ``parameters`` cell (or first).

    Values are string literals (``repr``), so a parameter can never inject code; names
    must be Python identifiers.
    """
    for name in params:
        if not str(name).isidentifier():
            raise ValueError(f"report parameter name {name!r} is not a Python identifier")
    source = "\n".join(f"{name} = {str(value)!r}" for name, value in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters", REMOVE_INPUT]})
    cell.id = "injected-parameters"
    position = next(
        (i + 1 for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])), 0
    )
    notebook.cells.insert(position, cell)


def kernel_environment() -> dict[str, str]:
    """The kernel's environment: this process's, with everything that varies pinned."""
    env = dict(os.environ)
    env.update({"PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "TZ": "UTC", "SOURCE_DATE_EPOCH": "0"})
    return env


#: Run in a warm kernel before each report: the user namespace is emptied (imported modules
#: stay in ``sys.modules``, which is the import work the reports share), open figures are
#: closed, matplotlib's settings are those of its rc file again, and the working directory
#: is the report's folder. Each report then starts as in a fresh kernel, so a report's
#: bytes do not depend on what the kernel ran before it.
RESET_SOURCE = """\
get_ipython().run_line_magic("reset", "-f")
import gc as _gc, os as _os
import matplotlib as _mpl
import matplotlib.pyplot as _plt
_plt.close("all")
_mpl.rc_file_defaults()
_os.chdir({workdir!r})
del _mpl, _plt, _os
_gc.collect()
del _gc
"""
#: Run in a warm kernel after each report: the report's DuckDB connections are closed and its
#: names dropped, so the idle kernel holds no lock on the study database (a pipeline run may
#: write it next).
CLEANUP_SOURCE = """\
import duckdb as _duckdb
for _value in list(globals().values()):
    for _con in (_value, getattr(_value, "con", None)):
        if isinstance(_con, _duckdb.DuckDBPyConnection):
            _con.close()
get_ipython().run_line_magic("reset", "-f")
import gc as _gc
_gc.collect()
del _gc
"""
#: Imported once when a warm kernel starts, so that even its first report skips them. Then
#: everything alive is moved out of the garbage collector's sight (``gc.freeze``): the
#: imported modules are some 160,000 objects that every full collection would walk again
#: (the resets' ``gc.collect`` and IPython's own in ``%reset``, 0.08 s each, and the
#: collections pandas' allocations trigger in the report cells). Frozen objects are still
#: freed by reference counting; only cycles among them would wait for the kernel's exit.
WARM_IMPORTS = """\
import duckdb, matplotlib.pyplot, numpy, pandas
import pipelines.render.coordinator, pipelines.render.figures, pipelines.render.overview, pipelines.render.report
import gc as _gc
_gc.collect()
_gc.freeze()
del _gc
"""


def notebook_client(notebook: nbformat.NotebookNode, workdir: Path) -> NotebookClient:
    """An nbclient client for the ``python3`` kernel with encrypted sockets.

    The kernel's sockets are CurveZMQ-encrypted with keys made for this kernel alone
    (``transport_encryption="required"``): report cells carry study results, and plain
    TCP on localhost would let any local process read them.
    """
    return NotebookClient(
        notebook,
        kernel_name="python3",
        config=Config({"KernelManager": {"transport_encryption": "required"}}),
        timeout=CELL_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        record_timing=False,
        allow_errors=False,
        resources={"metadata": {"path": str(workdir)}},
    )


def execute(notebook: nbformat.NotebookNode, workdir: Path, name: str) -> None:
    """Run every cell in a fresh ``python3`` kernel with ``workdir`` as working directory."""
    client = notebook_client(notebook, workdir)
    try:
        client.execute(env=kernel_environment())
    except CellExecutionError as error:
        raise ReportExecutionError(f"report {name} failed while executing a cell (see the chained error)") from error


class WarmKernel:
    """One encrypted ``python3`` kernel that executes many reports in turn.

    Starting a kernel and importing pandas, matplotlib, DuckDB and the report code costs
    seconds; a batch of reports (every language, every municipality) pays it once.
    Before each report the kernel's namespace is reset (``RESET_SOURCE``), so the result
    is the same as in a fresh kernel. Use as a context manager; the kernel is shut down
    at exit. A kernel that died (or a report that failed) is replaced by a fresh one for
    the next report.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.client: NotebookClient | None = None

    def __enter__(self) -> "WarmKernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut the kernel down (if one is running)."""
        client, self.client = self.client, None
        if client is not None and client.km is not None:
            client._cleanup_kernel()  # noqa: SLF001 - nbclient's own shutdown of the kernel it started

    def start(self) -> None:
        """Start the kernel now and do the shared imports (else the first report does)."""
        if self.client is None:
            self._run(nbformat.v4.new_notebook(), "kernel start")

    def _run(self, notebook: nbformat.NotebookNode, name: str) -> None:
        if self.client is None:
            self.client = notebook_client(notebook, self.workdir)
            self.client.owns_km = False  # keep the kernel between reports; close() shuts it down
            # a new kernel does the shared imports and freezes its heap before anything else
            self._execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WARM_IMPORTS)]), "kernel start")
        self._execute(notebook, name)

    def _execute(self, notebook: nbformat.NotebookNode, name: str) -> None:
        client = self.client
        assert client is not None
        client.nb = notebook
        client.resources = {"metadata": {"path": str(self.workdir)}}
        try:
            client.execute(cleanup_kc=False, env=kernel_environment(), cwd=str(self.workdir))
        except CellExecutionError as error:
            self.close()
            raise ReportExecutionError(f"report {name} failed while executing a cell (see the chained error)") from error
        except Exception:
            self.close()
            raise

    def execute(self, notebook: nbformat.NotebookNode, workdir: Path, name: str) -> None:
        """Run every cell of ``notebook`` after resetting the kernel; as :func:`execute`."""
        reset = nbformat.v4.new_code_cell(RESET_SOURCE.format(workdir=str(Path(workdir).resolve())))
        cleanup = nbformat.v4.new_code_cell(CLEANUP_SOURCE)
        notebook.cells.insert(0, reset)
        notebook.cells.append(cleanup)
        try:
            self._run(notebook, name)
        finally:
            notebook.cells.remove(reset)
            notebook.cells.remove(cleanup)


def clean(notebook: nbformat.NotebookNode) -> None:
    """Drop what differs between runs and what a reader must not see.

    Execution counts and kernel metadata vary between runs; stderr streams hold
    warnings meant for the developer, not the reader.
    """
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                continue
            if "execution_count" in output:
                output["execution_count"] = None
            output["metadata"] = {}
            kept.append(output)
        cell.outputs = kept
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
    notebook.metadata = {k: v for k, v in notebook.metadata.items() if k in ("kernelspec", "language_info")}
    notebook.metadata["language_info"] = {"name": "python"}


def executed_notebook(
    qmd: Path, params: Mapping[str, str], kernel: WarmKernel | None = None
) -> tuple[nbformat.NotebookNode, dict[str, Any]]:
    """Read, parametrise, execute and clean a ``.qmd``: the embedded engine's first half.

    With ``kernel`` the report runs in that warm kernel, else in a fresh one.
    """
    notebook, options = read_qmd(qmd)
    inject_parameters(notebook, params)
    if kernel is None:
        execute(notebook, qmd.parent, qmd.name)
    else:
        kernel.execute(notebook, qmd.parent, qmd.name)
    clean(notebook)
    return notebook, options

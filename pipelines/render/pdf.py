"""Executed notebook to PDF: Markdown (nbconvert), then Typst (pandoc), then PDF (typst).

No LaTeX and no Quarto: pandoc comes with pypandoc-binary and the Typst compiler with
the ``typst`` package, both pinned in the lockfile. Outputs are taken in their
Markdown form (report tables offer a pipe table with its caption, figures a PNG whose
alternative text becomes the numbered caption, "Joonis 2."), the table of contents comes
before the first section and "lisas A" links to the appendix. The fonts are the
DejaVu family that matplotlib ships, the same as the charts use, and system fonts are
ignored, so the PDF looks and hashes the same on every machine; Estonian letters
(õ ä ö ü š ž) are in DejaVu. The Typst preamble fixes the document date to none, so
the bytes depend only on the content.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import tempfile
import threading
from pathlib import Path
from string import Template

import matplotlib
import nbformat
import pypandoc
import typst
from nbconvert import MarkdownExporter

from pipelines.render.html import APPENDIX, numeric_columns, tag_removal_config
from pipelines.render.texts import load_texts

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: matplotlib's bundled TrueType fonts: DejaVu Sans and DejaVu Sans Mono.
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
#: pandoc's line width: wide enough that no pipe table counts as "wide", so Typst sizes
#: the columns to their content instead of splitting the page into equal parts.
PANDOC_COLUMNS = 100_000
#: An extracted image reference in nbconvert's Markdown: ``![alt](file.png)``.
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+\.(?:png|jpe?g))\)")


def escape_markdown(text: str) -> str:
    """Text safe inside a Markdown image's caption."""
    return re.sub(r"([\\`*_{}\[\]<>#|$@])", r"\\\1", " ".join(text.split()))


def captioned_figures(notebook: nbformat.NotebookNode) -> dict[str, bytes]:
    """Replace each chart output by a Markdown figure whose caption is the chart's alternative text.

    A report figure's output holds its PNG and, as plain text, its alternative text; a
    Markdown image alone in its paragraph becomes a numbered figure in Typst. The images
    are returned by file name, for the Typst compiler's folder.
    """
    images: dict[str, bytes] = {}
    for index, cell in enumerate(notebook.cells):
        for number, output in enumerate(cell.get("outputs", [])):
            data = output.get("data", {})
            if output.get("output_type") != "display_data" or "image/png" not in data:
                continue
            name = f"chart-{index}-{number}.png"
            images[name] = base64.b64decode(data["image/png"])
            caption = escape_markdown(str(data.get("text/plain", "")))
            output["data"] = {"text/markdown": f"![{caption}]({name}){{width=100%}}\n"}
    return images


_EXPORTERS = threading.local()


def markdown_exporter(config) -> MarkdownExporter:
    """This thread's Markdown exporter (templates compiled once per thread, not per report)."""
    if getattr(_EXPORTERS, "markdown", None) is None:
        _EXPORTERS.markdown = MarkdownExporter(config=config, exclude_input_prompt=True, exclude_output_prompt=True)
    return _EXPORTERS.markdown


def notebook_to_markdown(notebook: nbformat.NotebookNode) -> tuple[str, dict[str, bytes]]:
    """The notebook as pandoc Markdown and its extracted images (file name to bytes)."""
    notebook = copy.deepcopy(notebook)
    charts = captioned_figures(notebook)
    config = tag_removal_config()
    config.NbConvertBase.display_data_priority = ["text/markdown", "image/png", "image/jpeg", "text/plain"]
    exporter = markdown_exporter(config)
    markdown, resources = exporter.from_notebook_node(notebook, resources={"unique_key": "figure"})
    # nbconvert's own images have the alternative text "png": no caption; report charts keep theirs
    markdown = IMAGE.sub(lambda m: m.group(0) if m.group(2) in charts else f"![]({m.group(2)}){{width=100%}}",
                         markdown)
    return markdown, {**dict(resources.get("outputs", {})), **charts}


#: A pipe table's cell separator (an escaped ``\\|`` inside a cell is not one).
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def align_number_columns(markdown: str) -> str:
    """Right-align the left-aligned pipe-table columns whose cells are all numbers (as in the HTML)."""
    lines = markdown.split("\n")
    for i, line in enumerate(lines):
        if not (re.fullmatch(r"\|(?:\s*:?-{3,}:?\s*\|)+", line.strip()) and i > 0 and lines[i - 1].startswith("|")):
            continue
        body = []
        for row in lines[i + 1:]:
            if not row.startswith("|"):
                break
            body.append([c.strip().replace("\\", "") for c in CELL_SEPARATOR.split(row.strip())[1:-1]])
        numeric = numeric_columns(body)
        align = line.strip()[1:-1].split("|")
        lines[i] = "|" + "|".join("---:" if j in numeric and a.strip() == ":---" else a for j, a in enumerate(align)) + "|"
    return "\n".join(lines)


def link_appendix(markdown: str, lang: str) -> str:
    """Give the appendix heading an id and link the text's references to it ("lisas A")."""
    if lang not in APPENDIX:
        return markdown
    start, reference = APPENDIX[lang]
    heading = re.compile(rf"^(#+ {re.escape(start)}\b.*?)\s*$", re.MULTILINE)
    if not heading.search(markdown):
        return markdown
    markdown = heading.sub(r"\1 {#appendix-a}", markdown, count=1)
    lines = [line if line.startswith("#") else reference.sub(lambda m: f"[{m.group(0)}](#appendix-a)", line)
             for line in markdown.split("\n")]
    return "\n".join(lines)


_PANDOC_LOCK = threading.Lock()
_PANDOC: list[str] = []


def pandoc_path() -> str:
    """The pandoc binary pypandoc chooses (pypandoc-binary's own unless ``PYPANDOC_PANDOC`` or a
    newer one on PATH is found), looked up once per process.

    pypandoc probes its candidates anew in every thread that converts first and, while it
    probes, another thread can run an older pandoc (one without Typst); and every
    ``convert_text`` call starts pandoc twice more to list its formats. So the engine asks
    pypandoc once, under a lock, and runs that binary itself.
    """
    with _PANDOC_LOCK:
        if not _PANDOC:
            _PANDOC.append(pypandoc.get_pandoc_path())
        return _PANDOC[0]


def run_pandoc(text: str, source: str, target: str, args: list[str]) -> str:
    """``text`` converted by pandoc from ``source`` to ``target`` (what ``pypandoc.convert_text`` runs)."""
    result = subprocess.run([pandoc_path(), f"--from={source}", f"--to={target}", *args], input=text.encode("utf-8"),
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pandoc could not convert a report from {source} to {target} "
                           f"(exit {result.returncode}): {result.stderr.decode('utf-8', errors='replace')[-1000:]}")
    return result.stdout.decode("utf-8", errors="replace")


#: Where pandoc's ``raw_html`` extension could find HTML: a tag, an end tag, a comment, a
#: declaration or a processing instruction (and, to be safe, an autolink ``<https://...>``).
MAYBE_HTML = re.compile(r"<[A-Za-z/!?]")


def pandoc_markdown(markdown: str) -> str:
    """The pandoc reader for ``markdown``: pandoc's Markdown, without raw HTML when there is none.

    With ``raw_html`` pandoc tries to read every ``<`` as the start of an HTML tag, which in
    a report is mostly a suppressed count (``<5``): a third of pandoc's time on the
    municipality report, two thirds on the evaluation report. A text in which nothing can
    start a tag reads the same without it (and without ``native_divs``/``native_spans``,
    which act on HTML ``div``/``span`` tags only), so the output is the same.
    """
    return "markdown" if MAYBE_HTML.search(markdown) else "markdown-raw_html-native_divs-native_spans"


def markdown_to_typst(markdown: str, title: str, lang: str) -> str:
    """A complete Typst document: our preamble, then pandoc's Typst for the body.

    The table of contents (sections and subsections) goes before the first section.
    """
    source = align_number_columns(link_appendix(markdown, lang))
    body = run_pandoc(source, pandoc_markdown(source), "typst", ["--wrap=preserve", f"--columns={PANDOC_COLUMNS}"])
    first = re.search(r"^== ", body, re.MULTILINE)
    if first is not None:
        contents = json.dumps(load_texts(lang)("common.contents"), ensure_ascii=False)
        body = body[:first.start()] + f"#outline(title: {contents}, target: heading.where(level: 2).or(heading.where(level: 3)))\n\n" + body[first.start():]
    preamble = Template((TEMPLATES / "report.typ").read_text(encoding="utf-8"))
    return preamble.substitute(title=json.dumps(title, ensure_ascii=False), lang=json.dumps(lang)) + body


def compile_typst(source: str, images: dict[str, bytes]) -> bytes:
    """Compile a Typst document with its images in a scratch folder; the PDF bytes."""
    with tempfile.TemporaryDirectory(prefix="mapstudy-typst-") as scratch:
        folder = Path(scratch)
        for name, data in images.items():
            (folder / name).write_bytes(data)
        main = folder / "report.typ"
        main.write_text(source, encoding="utf-8")
        return typst.compile(str(main), root=str(folder), font_paths=[str(FONT_DIR)], ignore_system_fonts=True)


def notebook_to_pdf(notebook: nbformat.NotebookNode, title: str, lang: str) -> bytes:
    """The PDF of an executed notebook."""
    markdown, images = notebook_to_markdown(notebook)
    return compile_typst(markdown_to_typst(markdown, title, lang), images)

"""Executed notebook to PDF: Markdown (nbconvert), then Typst (pandoc), then PDF (typst).

No LaTeX and no Quarto: pandoc comes with pypandoc-binary and the Typst compiler with
the ``typst`` package, both pinned in the lockfile. Outputs are taken in their
Markdown form (report tables offer a pipe table, figures a PNG, placed without a caption: nbconvert's
alternative text is only the word "png"). The fonts are the
DejaVu family that matplotlib ships, the same as the charts use, and system fonts are
ignored, so the PDF looks and hashes the same on every machine; Estonian letters
(õ ä ö ü š ž) are in DejaVu. The Typst preamble fixes the document date to none, so
the bytes depend only on the content.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from string import Template

import matplotlib
import nbformat
import pypandoc
import typst
from nbconvert import MarkdownExporter

from pipelines.render.html import tag_removal_config

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: matplotlib's bundled TrueType fonts: DejaVu Sans and DejaVu Sans Mono.
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
#: pandoc's line width: wide enough that no pipe table counts as "wide", so Typst sizes
#: the columns to their content instead of splitting the page into equal parts.
PANDOC_COLUMNS = 100_000
#: An extracted image reference in nbconvert's Markdown: ``![alt](file.png)``.
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+\.(?:png|jpe?g))\)")


def notebook_to_markdown(notebook: nbformat.NotebookNode) -> tuple[str, dict[str, bytes]]:
    """The notebook as pandoc Markdown and its extracted images (file name to bytes)."""
    config = tag_removal_config()
    config.NbConvertBase.display_data_priority = ["text/markdown", "image/png", "image/jpeg", "text/plain"]
    exporter = MarkdownExporter(config=config, exclude_input_prompt=True, exclude_output_prompt=True)
    markdown, resources = exporter.from_notebook_node(notebook, resources={"unique_key": "figure"})
    markdown = IMAGE.sub(r"![](\2){width=100%}", markdown)
    return markdown, dict(resources.get("outputs", {}))


def markdown_to_typst(markdown: str, title: str, lang: str) -> str:
    """A complete Typst document: our preamble, then pandoc's Typst for the body."""
    body = pypandoc.convert_text(markdown, "typst", format="markdown", extra_args=["--wrap=preserve", f"--columns={PANDOC_COLUMNS}"])
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

"""Executed notebook to one self-contained HTML file.

nbconvert's ``basic`` template renders the cells without its own page chrome (no
JupyterLab CSS, no MathJax or require.js from a CDN); the page around it is ours:
one inline stylesheet, the language in ``<html lang>``, nothing fetched from the
network. Images are already data URIs (nbconvert inlines PNG outputs, and report
figures carry their own ``<img>``), so the file can be mailed or archived as it is.
Code is hidden by the cells' ``remove-input`` tags (Quarto's ``echo: false``).
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from pipelines.render.notebook import REMOVE_CELL, REMOVE_INPUT, REMOVE_OUTPUT

TEMPLATES = Path(__file__).resolve().parent / "templates"


def tag_removal_config() -> Config:
    """nbconvert configuration that honours the cell tags ``read_qmd`` sets."""
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {REMOVE_INPUT}
    config.TagRemovePreprocessor.remove_all_outputs_tags = {REMOVE_OUTPUT}
    config.TagRemovePreprocessor.remove_cell_tags = {REMOVE_CELL}
    return config


def notebook_to_html(notebook: nbformat.NotebookNode, title: str, lang: str) -> str:
    """The complete HTML page of an executed notebook."""
    exporter = HTMLExporter(
        config=tag_removal_config(),
        template_name="basic",
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(notebook)
    page = Template((TEMPLATES / "page.html").read_text(encoding="utf-8"))
    return page.substitute(
        lang=html.escape(lang),
        title=html.escape(title),
        css=(TEMPLATES / "report.css").read_text(encoding="utf-8").strip(),
        body=body.strip(),
    )

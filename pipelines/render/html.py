"""Executed notebook to one self-contained HTML file.

nbconvert's ``basic`` template renders the cells without its own page chrome (no
JupyterLab CSS, no MathJax or require.js from a CDN); the page around it is ours:
one inline stylesheet, the language in ``<html lang>``, nothing fetched from the
network. Images are already data URIs (nbconvert inlines PNG outputs, and report
figures carry their own ``<img>``), so the file can be mailed or archived as it is.
Code is hidden by the cells' ``remove-input`` tags (Quarto's ``echo: false``).

The body is then finished as a reader needs it (:func:`finish_body`): headings get plain
ASCII ids, a table of contents comes before the first section, tables and figures are
numbered with captions ("Tabel 3.", "Joonis 2."), every table sits in a container that
scrolls sideways on a narrow screen, and "lisas A" / "Appendix A" link to the appendix.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from pathlib import Path
from string import Template

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from pipelines.render.notebook import REMOVE_CELL, REMOVE_INPUT, REMOVE_OUTPUT
from pipelines.render.texts import load_texts

TEMPLATES = Path(__file__).resolve().parent / "templates"


def tag_removal_config() -> Config:
    """nbconvert configuration that honours the cell tags ``read_qmd`` sets."""
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {REMOVE_INPUT}
    config.TagRemovePreprocessor.remove_all_outputs_tags = {REMOVE_OUTPUT}
    config.TagRemovePreprocessor.remove_cell_tags = {REMOVE_CELL}
    return config


HEADING = re.compile(r'<h([1-3]) id="[^"]*">(.*?)(?:<a class="anchor-link"[^>]*>[^<]*</a>)?</h\1>', re.DOTALL)
TABLE = re.compile(r'<table class="report-table">(?:<caption>(.*?)</caption>)?(.*?)</table>(\s*<p class="table-note">.*?</p>)?',
                   re.DOTALL)
FIGURE = re.compile(r'<figure([^>]*)><img ([^>]*?)alt="([^"]*)"([^>]*)></figure>')
#: The appendix the texts refer to ("täielik päritolutabel on lisas A"), by its heading's start.
APPENDIX = {"et": ("Lisa A", re.compile(r"\blisas A\b")), "en": ("Appendix A", re.compile(r"\bAppendix A\b"))}


#: A cell that reads as a number, a range or a p-value (already written in the language's
#: convention): such text columns are right-aligned like the count columns.
NUMERIC_TEXT = re.compile(r"^(?:[<>≤≥]\s?)?[-−+]?[\d\u00a0\u202f ]*\d(?:[.,]\d+)?\s?%?"
                          r"(?:\s?(?:…|–|-)\s?[-−+]?[\d\u00a0\u202f ]*\d(?:[.,]\d+)?\s?%?)?"
                          r"(?:\s\((?:[-−+]?[\d\u00a0\u202f ]*\d(?:[.,]\d+)?)\s?…\s?(?:[-−+]?[\d\u00a0\u202f ]*\d(?:[.,]\d+)?)\))?$")
#: Cells a numeric column may hold besides numbers: not available, suppressed, hidden share.
NUMERIC_BLANKS = frozenset({"", "–", "x", "…"})


def numeric_columns(rows: list[list[str]]) -> set[int]:
    """The columns whose every body cell is a number (or a blank or suppression mark), at least one a number."""
    found = set()
    for column in range(max((len(r) for r in rows), default=0)):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", r[column])).strip() for r in rows if column < len(r)]
        if any(NUMERIC_TEXT.match(c) for c in cells) and all(
                NUMERIC_TEXT.match(c) or c in NUMERIC_BLANKS or (c.startswith("<") and c[1:].isdigit()) for c in cells):
            found.add(column)
    return found


def align_numbers(table: str) -> str:
    """Right-align the text columns of a report table that hold numbers (class ``number``)."""
    body = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[-1], re.DOTALL) if "<tbody>" in table else []
    rows = [re.findall(r'<td class="[^"]*">(.*?)</td>', row, re.DOTALL) for row in body]
    columns = numeric_columns(rows)
    if not columns:
        return table

    return re.sub(r"<tr>.*?</tr>", lambda m: _classes(m.group(0), columns), table, flags=re.DOTALL)


def _classes(row: str, columns: set[int]) -> str:
    """A row with its ``text`` cells in ``columns`` re-classed ``number``."""
    index = -1

    def cell(match: re.Match[str]) -> str:
        nonlocal index
        index += 1
        if index in columns and match.group(2) == "text":
            return f'<{match.group(1)} class="number"'
        return match.group(0)

    return re.sub(r'<(t[dh]) class="([^"]*)"', cell, row)


def slug(text: str) -> str:
    """An ASCII id for a heading: letters folded (õ -> o), words joined by hyphens."""
    plain = unicodedata.normalize("NFKD", html.unescape(re.sub(r"<[^>]+>", "", text)))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-") or "section"


def finish_body(body: str, lang: str) -> str:
    """Heading ids, table of contents, numbered captions, scrolling tables, appendix links."""
    texts = load_texts(lang)
    used: dict[str, int] = {}
    headings: list[tuple[int, str, str]] = []
    appendix_id = None

    def heading(match: re.Match[str]) -> str:
        nonlocal appendix_id
        level, inner = int(match.group(1)), match.group(2).strip()
        ident = slug(inner)
        used[ident] = used.get(ident, 0) + 1
        if used[ident] > 1:
            ident = f"{ident}-{used[ident]}"
        if re.sub(r"<[^>]+>", "", inner).startswith(APPENDIX.get(lang, ("\0",))[0]):
            appendix_id = ident
        headings.append((level, ident, inner))
        return f'<h{level} id="{ident}">{inner}</h{level}>'

    body = HEADING.sub(heading, body)
    tables = iter(range(1, 10_000))

    def table(match: re.Match[str]) -> str:
        # The caption and the note stay at the screen's width; only the table scrolls sideways.
        number = next(tables)
        ident = slug(texts("common.table_label", number=number))
        label = html.escape(texts("common.table_label", number=number))
        caption = (f'<p class="table-caption" id="{ident}-caption"><span class="label">{label}</span> '
                   f"{match.group(1)}</p>") if match.group(1) else ""
        labelled = f' aria-labelledby="{ident}-caption"' if caption else ""
        note = (match.group(3) or "").strip()
        return (f'<div class="table-block" id="{ident}">{caption}<div class="table-scroll" role="region" tabindex="0"'
                f'{labelled}><table class="report-table">{align_numbers(match.group(2))}</table></div>{note}</div>')

    body = TABLE.sub(table, body)
    figures = iter(range(1, 10_000))

    def figure(match: re.Match[str]) -> str:
        number = next(figures)
        label = texts("common.figure_label", number=number)
        return (f'<figure{match.group(1)} id="{slug(label)}"><img {match.group(2)}alt="{match.group(3)}"{match.group(4)}>'
                f'<figcaption><span class="label">{html.escape(label)}</span> {match.group(3)}</figcaption></figure>')

    body = FIGURE.sub(figure, body)
    if appendix_id is not None:
        pattern = APPENDIX[lang][1]
        # only in running text (paragraphs), never inside a heading or an attribute
        body = re.sub(r"<p\b[^>]*>.*?</p>", lambda m: pattern.sub(
            lambda r: f'<a href="#{appendix_id}">{r.group(0)}</a>', m.group(0)), body, flags=re.DOTALL)
    sections = [(level, ident, inner) for level, ident, inner in headings if level in (2, 3)]
    if len(sections) >= 2:
        items, open_sub = [], False
        for level, ident, inner in sections:
            link = f'<a href="#{ident}">{inner}</a>'
            if level == 2:
                items.append(("</li></ol>" if open_sub else "</li>") if items else "")
                items.append(f"<li>{link}")
                open_sub = False
            else:
                items.append("<li>" if not items else ("" if open_sub else "<ol>") + "<li>")
                items[-1] += f"{link}</li>"
                open_sub = True
        items.append("</li></ol>" if open_sub else "</li>")
        toc = (f'<nav class="toc" aria-label="{html.escape(texts("common.contents"))}">'
               f'<p class="toc-title">{html.escape(texts("common.contents"))}</p><ol>{"".join(items)}</ol></nav>')
        first = re.search(r"<h2 id=", body)
        # the cell's wrapper div starts before the heading: put the contents before that cell
        start = body.rfind('<div class="jp-Cell', 0, first.start()) if first else -1
        position = start if start >= 0 else first.start()
        body = body[:position] + toc + "\n" + body[position:]
    return body


_EXPORTERS = threading.local()


def html_exporter() -> HTMLExporter:
    """This thread's HTML exporter: its Jinja templates are compiled once, not for every report."""
    if getattr(_EXPORTERS, "html", None) is None:
        _EXPORTERS.html = HTMLExporter(config=tag_removal_config(), template_name="basic",
                                       exclude_input_prompt=True, exclude_output_prompt=True)
    return _EXPORTERS.html


def notebook_to_html(notebook: nbformat.NotebookNode, title: str, lang: str) -> str:
    """The complete HTML page of an executed notebook."""
    body, _ = html_exporter().from_notebook_node(notebook)
    page = Template((TEMPLATES / "page.html").read_text(encoding="utf-8"))
    return page.substitute(
        lang=html.escape(lang),
        title=html.escape(title),
        css=(TEMPLATES / "report.css").read_text(encoding="utf-8").strip(),
        body=finish_body(body.strip(), lang),
    )

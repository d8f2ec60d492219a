"""Coordinator reports (issue 12): one per municipality (KOV) and one per county, et and en.

- ``results/published_family``: the linked count tables of the coordinator reports,
  protected once as families (``pipelines/render/family_tables.py``,
  ``pipelines/privacy/family.py``) with the blocking check ``family_audit``;
- ``reports/municipality``: partitioned by the study's municipalities (static partitions
  read from the study file in ``build_definitions``); each partition renders
  ``reports/municipality.qmd`` in every language to
  ``reports/_output/<study>/<lang>/municipality/<slug>.html|pdf``. A run over many
  partitions renders them in one step (single-run backfill policy), so the renders of a
  run can share warm kernels;
- ``reports/county``: one asset rendering ``reports/county.qmd`` for every county to
  ``.../<lang>/county/<slug>.html|pdf``.

Both report assets (re)write the study's index page ``reports/_output/<study>/index.html``,
which links every report found on disk in both languages.
"""


import contextlib
import html
import os
import tempfile
import time
import unicodedata
import warnings
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

# backfill_policy is marked beta; the municipality reports use the single-run policy on purpose.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from pipelines import warehouse
from pipelines.assets.common import DEPS_TAG, meta_key, output_key
from pipelines.config import PROJECT_ROOT, Study
from pipelines.privacy.cells import audit_html_tables
from pipelines.render.engine import RenderJob, render_reports
from pipelines.render.texts import LANGUAGES, load_texts
from pipelines.freshness import note_files, skip_when_up_to_date
from pipelines.resources import StudyResource

FAMILY_KEY = ["results", "published_family"]
MUNICIPALITY_KEY = ["reports", "municipality"]
COUNTY_KEY = ["reports", "county"]
#: The results the families are built from (whatever of them the study has).
FAMILY_SOURCES = ("descriptives", "screening", "persona_profiles", "specialists_counts", "service_gaps", "reasons")


def slug(name: str) -> str:
    """A file name for a place: ``Võru linn`` -> ``voru-linn`` (ASCII, lower case, hyphens)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "-".join("".join(ch if ch.isalnum() else " " for ch in ascii_name.lower()).split()) or "place"


def municipalities(study: Study) -> list[str]:
    """The study's municipalities in study-file order: the partition keys."""
    return [m.name for county in study.counties.values() for m in county.municipalities]


def county_of(study: Study) -> dict[str, str]:
    return {m.name: cid for cid, county in study.counties.items() for m in county.municipalities}


def municipality_partitions(study: Study) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(municipalities(study))


def report_path(study: Study, lang: str, kind: str, place: str, suffix: str) -> Path:
    return study.report_dir(lang) / kind / f"{slug(place)}.{suffix}"


def render_places(study: Study, kind: str, places: Sequence[tuple[str, dict[str, str]]], log
                  ) -> tuple[list[Path], list[str], float]:
    """Render ``reports/<kind>.qmd`` for each (place, parameters) in every language as one batch.

    One ``render_reports`` call: its warm kernels (two at once on a large batch) execute the
    reports while writer threads convert them. Each report is written to a scratch folder,
    audited, then moved to its place; (files, audit problems, seconds).
    """
    written, problems = [], []
    started = time.perf_counter()
    qmd = PROJECT_ROOT / "reports" / f"{kind}.qmd"
    with contextlib.ExitStack() as stack:
        jobs, targets = [], []
        for place, params in places:
            for lang in LANGUAGES:
                out = study.report_dir(lang) / kind
                out.mkdir(parents=True, exist_ok=True)
                scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=out, prefix=".render-")))
                jobs.append(RenderJob(qmd, scratch, {"study": study.study, "db": str(study.db_path), "lang": lang,
                                                     **params}))
                targets.append((place, lang))
        log(f"rendering {len(places)} {kind} report(s) in {', '.join(LANGUAGES)}")
        for (place, lang), paths in zip(targets, render_reports(jobs), strict=True):
            for path in paths:
                target = report_path(study, lang, kind, place, path.suffix.lstrip("."))
                if path.suffix == ".html":
                    audit = audit_html_tables(path.read_text(encoding="utf-8"), study.privacy.min_cell)
                    problems += [f"{target.name} ({lang}): table {r.table}, row {r.row}, column {r.column}: {r.rule}"
                                 for r in audit.itertuples()]
                os.replace(path, target)
                written.append(target)
    note_files(written)
    return written, problems, time.perf_counter() - started


def render_place(study: Study, kind: str, place: str, params: dict[str, str], log) -> tuple[list[Path], list[str], float]:
    """Render ``reports/<kind>.qmd`` for one place in every language; (files, audit problems, seconds)."""
    return render_places(study, kind, [(place, params)], log)


def write_index(study: Study) -> Path:
    """``reports/_output/<study>/index.html``: every report on disk, in both languages."""
    root = study.report_dir(LANGUAGES[0]).parent
    texts = load_texts(LANGUAGES[0])
    parts = ['<!DOCTYPE html><html lang="et"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(texts('coordinator.index.title'))}</title>",
             "<style>body{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem}"
             "table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left}</style></head><body>"]
    for lang in LANGUAGES:
        t = load_texts(lang)
        title = getattr(study.title, lang)
        parts.append(f'<section lang="{lang}"><h1>{html.escape(t("coordinator.index.title"))}: '
                     f"{html.escape(str(title))}</h1>")
        folder = root / lang
        study_wide = sorted(p for p in folder.glob("*.html")) if folder.is_dir() else []
        parts.append(f"<h2>{html.escape(t('coordinator.index.study_reports'))}</h2><ul>")
        for page in study_wide:
            parts.append(_link(root, page, _report_name(t, page.stem)))
        parts.append("</ul>")
        for kind, places in (("county", [(c.name, c.name) for c in study.counties.values()]),
                             ("municipality", [(m, m) for m in municipalities(study)])):
            parts.append(f"<h2>{html.escape(t(f'coordinator.index.{kind}_reports'))}</h2><ul>")
            for place, label in places:
                page = report_path(study, lang, kind, place, "html")
                if page.is_file():
                    pdf = page.with_suffix(".pdf")
                    extra = f' (<a href="{html.escape(pdf.relative_to(root).as_posix())}">PDF</a>)' if pdf.is_file() else ""
                    parts.append(f'<li><a href="{html.escape(page.relative_to(root).as_posix())}">'
                                 f"{html.escape(label)}</a>{extra}</li>")
            parts.append("</ul>")
        parts.append("</section>")
    parts.append("</body></html>")
    index = root / "index.html"
    root.mkdir(parents=True, exist_ok=True)
    partial = index.with_name(index.name + ".partial")
    partial.write_text("\n".join(parts), encoding="utf-8")
    os.replace(partial, index)
    return index


def _report_name(texts, stem: str) -> str:
    try:
        return texts(f"{stem}.title")
    except KeyError:
        return stem


def _link(root: Path, page: Path, label: str) -> str:
    pdf = page.with_suffix(".pdf")
    extra = f' (<a href="{html.escape(pdf.relative_to(root).as_posix())}">PDF</a>)' if pdf.is_file() else ""
    return f'<li><a href="{html.escape(page.relative_to(root).as_posix())}">{html.escape(label)}</a>{extra}</li>'


@dg.asset(key=FAMILY_KEY, group_name="reports", pool="duckdb", kinds={"duckdb"},
          deps=[["results", name] for name in FAMILY_SOURCES] + [meta_key("quality")],
          tags={DEPS_TAG: "any"},
          description="The coordinator reports' count tables, protected once as families (municipality, county, "
                      "study) and written to results.published_family; every KOV and county report publishes "
                      "from it.",
          check_specs=[dg.AssetCheckSpec("family_audit", asset=FAMILY_KEY, blocking=True,
                                         description="The interval audit over every line of every family finds "
                                                     "no suppressed count that can be pinned.")])
@skip_when_up_to_date
def published_family_asset(context: AssetExecutionContext, study: StudyResource):
    from pipelines.render.family_tables import published_family

    config, _ = study.load()
    with warehouse.connect(config.db_path, read_only=True) as con:
        cells, summary = published_family(con, config.privacy.min_cell)
    warehouse.write_tables(config.db_path, {"results.published_family": cells})
    withheld = summary.loc[~summary["passed"], "family"].tolist()
    context.log.info(f"results.published_family: {len(summary)} families, {len(withheld)} withheld whole")
    yield dg.MaterializeResult(asset_key=output_key(context, *FAMILY_KEY), metadata={
        "families": len(summary), "suppressed_cells": int(summary["suppressed"].sum()) if len(summary) else 0,
        "withheld_families": ", ".join(withheld) or "none"})
    # A family no pattern protects is published wholly hidden: what is published is safe either way.
    from pipelines.render.family_tables import audit_published

    problems = audit_published(cells, config.privacy.min_cell)
    yield dg.AssetCheckResult(asset_key=output_key(context, *FAMILY_KEY), check_name="family_audit", passed=not problems,
                              metadata={"problems": "; ".join(problems) or "none"})


def _result(context: AssetExecutionContext, key: Sequence[str], written: list[Path], problems: list[str],
            seconds: float, partition: str | None = None):
    metadata = {"files": [f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p in written],
                "render_seconds": round(seconds, 1)}
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(check_name="small_cells", passed=not problems,
                                           metadata={"problems": "; ".join(problems) or "none"})])


def build_coordinator_assets(study: Study) -> list[dg.AssetsDefinition]:
    """The family table, the partitioned municipality reports and the county reports of a study."""
    partitions = municipality_partitions(study)

    @dg.asset(key=MUNICIPALITY_KEY, group_name="reports", deps=[FAMILY_KEY], kinds={"html", "pdf"},
              partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(),
              description="One report per municipality (KOV), et and en, HTML and PDF.",
              check_specs=[dg.AssetCheckSpec("small_cells", asset=MUNICIPALITY_KEY, blocking=True,
                                             description="No rendered table shows a count from 1 to min_cell-1.")])
    @skip_when_up_to_date(reports=True)
    def municipality_reports(context: AssetExecutionContext, study: StudyResource) -> dg.MaterializeResult:
        config, _ = study.load()
        counties = county_of(config)
        written, problems, seconds = render_places(
            config, "municipality", [(name, {"municipality": name, "county": counties[name]})
                                     for name in context.partition_keys], context.log.info)
        write_index(config)
        context.log.info(f"municipality reports: {len(context.partition_keys)} in {seconds:.1f} s")
        return _result(context, MUNICIPALITY_KEY, written, problems, seconds)

    @dg.asset(key=COUNTY_KEY, group_name="reports", deps=[FAMILY_KEY], kinds={"html", "pdf"},
              description="One report per county comparing its municipalities, et and en, HTML and PDF.",
              check_specs=[dg.AssetCheckSpec("small_cells", asset=COUNTY_KEY, blocking=True,
                                             description="No rendered table shows a count from 1 to min_cell-1.")])
    @skip_when_up_to_date(reports=True)
    def county_reports(context: AssetExecutionContext, study: StudyResource) -> dg.MaterializeResult:
        config, _ = study.load()
        written, problems, seconds = render_places(
            config, "county", [(county.name, {"county": cid}) for cid, county in config.counties.items()],
            context.log.info)
        write_index(config)
        return _result(context, COUNTY_KEY, written, problems, seconds)

    return [published_family_asset, municipality_reports, county_reports]

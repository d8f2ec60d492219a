"""`mapstudy`: the command line for the common jobs of a mapping study.

Each command says what it did and, when it fails, what to do next. Errors in the study
configuration, the key or the data stop with one readable message, not a traceback, and
never quote a value from an identifying column.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.config import PROJECT_ROOT, ConfigError, load_codebooks, load_study
from pipelines.privacy.pseudonyms import MissingKeyError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Mapping studies for school-dropout prevention: generate, run, report, share, erase.")
key_app = typer.Typer(no_args_is_help=True, help="Pseudonymisation keys.")
app.add_typer(key_app, name="key")
console = Console(stderr=True)

DEMO_STUDY = PROJECT_ROOT / "studies" / "demo.yaml"
StudyOption = typer.Option(DEMO_STUDY, "--study", "-s", help="The study's YAML file.", dir_okay=False)


def _fail(message: str, hint: str | None = None) -> None:
    console.print(f"[bold red]error:[/] {message}")
    if hint:
        console.print(f"[yellow]what to do:[/] {hint}")
    raise typer.Exit(code=2)


def _load(study_file: Path):
    try:
        study = load_study(study_file)
        return study, load_codebooks(study)
    except ConfigError as exc:
        _fail(str(exc), "fix the file and key named above, then run again")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=console, transient=False)


@app.command()
def check(study_file: Path = StudyOption) -> None:
    """Validate the study configuration and its codebooks without reading any data."""
    study, codebooks = _load(study_file)
    missing = [i.path for i in study.inputs if not (study.raw_path / i.path).is_file()]
    console.print(f"[green]ok:[/] {study_file} with {len(codebooks)} codebooks and {len(study.inputs)} inputs")
    if missing:
        console.print(f"[yellow]{len(missing)} input file(s) not found under {study.raw_path}:[/] " + ", ".join(missing))


@app.command()
def synth(study_file: Path = StudyOption,
          pupils: int = typer.Option(3000, min=50, max=1_000_000, help="Pupils in the baseline mapping."),
          seed: int = typer.Option(20231, help="Random seed: the same seed gives the same files.")) -> None:
    """Generate the demo study's raw exports, its key and its ground truth."""
    from pipelines.synth.generate import generate_study

    study, _ = _load(study_file)
    if not study.demo:
        _fail(f"{study_file} is not a demo study (demo: false)", "synth writes generated data only for demo studies")
    started = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("generating", total=1.0)
        generate_study(study_file, PROJECT_ROOT, pupils=pupils, seed=seed,
                       progress=lambda msg, frac: bar.update(task, completed=frac, description=msg))
    console.print(f"[green]generated[/] {pupils} pupils (seed {seed}) under {study.raw_path} "
                  f"in {time.perf_counter() - started:.1f} s")


@app.command()
def run(study_file: Path = StudyOption) -> None:
    """Materialise every asset of the study: ingest, analyses, reports."""
    from pipelines.runner import run_study_job

    study, _ = _load(study_file)
    missing = [i.path for i in study.inputs if not (study.raw_path / i.path).is_file()]
    if len(missing) == len(study.inputs):
        _fail(f"no input files found under {study.raw_path}",
              "copy the exports there" + (" or run `mapstudy synth`" if study.demo else ""))
    started = time.perf_counter()
    try:
        ok = run_study_job(study_file)
    except MissingKeyError as exc:
        _fail(str(exc))
    if not ok:
        _fail("the run failed: see the step that failed above (or in the Dagster UI, `make dev`)")
    console.print(f"[green]done[/] in {time.perf_counter() - started:.1f} s: {study.db_path}, "
                  f"{study.report_dir('et').parent}")


@app.command()
def demo(pupils: int = typer.Option(3000, min=50, max=1_000_000), seed: int = typer.Option(20231)) -> None:
    """Generate the demo study and run everything on it."""
    synth(DEMO_STUDY, pupils, seed)
    run(DEMO_STUDY)


@app.command()
def report(study_file: Path = StudyOption,
           lang: list[str] = typer.Option(["et", "en"], help="Languages, Estonian first."),
           name: str = typer.Option("overview", help="Which report (a .qmd under reports/).")) -> None:
    """Render a report from the processed database (without running the pipeline)."""
    from pipelines.render.engine import render_report

    study, _ = _load(study_file)
    if not study.db_path.is_file():
        _fail(f"{study.db_path} does not exist", "run the study first: mapstudy run --study " + str(study_file))
    qmd = PROJECT_ROOT / "reports" / f"{name}.qmd"
    if not qmd.is_file():
        _fail(f"no report called {name!r}", "see reports/*.qmd for the report names")
    for language in lang:
        for path in render_report(qmd, study.report_dir(language),
                                  {"study": study.study, "db": str(study.db_path), "lang": language}):
            console.print(f"wrote {path}")


@app.command()
def erase(study_file: Path = StudyOption,
          codes: Path = typer.Option(..., "--codes", help="File with one personal code per line, or - for stdin.",
                                     allow_dash=True)) -> None:
    """Record people in the erasure register; every later run excludes them everywhere."""
    from pipelines.ingest.stage import study_keys
    from pipelines.privacy.erasure import add_to_register, register_path

    study, _ = _load(study_file)
    lines = sys.stdin.read().splitlines() if str(codes) == "-" else codes.read_text(encoding="utf-8").splitlines()
    try:
        added, invalid = add_to_register(study, study_keys(study), lines)
    except MissingKeyError as exc:
        _fail(str(exc))
    console.print(f"[green]{added} pseudonym(s) added[/] to {register_path(study)}"
                  + (f"; {invalid} line(s) were not valid personal codes and were skipped" if invalid else ""))
    console.print("run the study again (mapstudy run) to remove them from every output")


@app.command()
def share(study_file: Path = StudyOption,
          out: Path = typer.Option(..., "--out", help="A new folder for the release.", file_okay=False)) -> None:
    """Write the shareable (k-anonymous) tables as files a research team may hand on."""
    from pipelines.privacy.release import ReleaseError, write_release

    study, codebooks = _load(study_file)
    try:
        written = write_release(study, codebooks, out)
    except ReleaseError as exc:
        _fail(str(exc), "run the study (mapstudy run) and choose a folder that does not exist yet")
    for path in written:
        console.print(f"wrote {path}")
    console.print("hand on this folder only, never the DuckDB file: it holds the anon tables too")


@key_app.command("new")
def key_new(out: Path = typer.Option(..., "--out", help="Where to write the key: outside the repository.")) -> None:
    """Create a new random pseudonymisation key file (readable by its owner only)."""
    from pipelines.privacy.pseudonyms import new_secret_hex, write_key_file

    if out.exists():
        _fail(f"{out} exists", "choose another path: replacing a key changes every pseudonym")
    if out.resolve().is_relative_to(PROJECT_ROOT) and not out.resolve().is_relative_to(PROJECT_ROOT / ".mapstudy"):
        _fail("the key must not live inside the repository", "write it e.g. to ~/.config/mapstudy/<study>.key")
    write_key_file(out, new_secret_hex())
    console.print(f"[green]wrote[/] {out}: share it with your team over a secure channel, never by e-mail or git")

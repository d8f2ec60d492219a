"""`mapstudy`: the command line for the common jobs of a mapping study.

Each command says what it did and, when it fails, what to do next. Errors in the study
configuration, the key or the data, and I/O failures (a full disk, a read-only folder, a
missing file), stop with one readable message and exit code 2, not a traceback, and never
quote a value from an identifying column (`mapstudy --debug ...` shows the traceback).

`run`, `report`, `erase`, `share` and `export` of one study hold the study lock: a second command
waits for the first, saying so (`mapstudy --wait SECONDS ...` gives up after that long;
`--wait 0` does not wait).
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class _Options:
    debug: bool = False
    wait: float | None = None


_options = _Options()


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show the full traceback when a command fails."),
          wait: float = typer.Option(-1, "--wait", metavar="SECONDS",
                                     help="How long to wait for another command using the same study "
                                          "(default: as long as it takes; 0: do not wait).")) -> None:
    """Mapping studies for school-dropout prevention: generate, run, report, share, erase."""
    _options.debug = debug
    if debug:  # the run's console log shows a failed step's stack trace too (pipelines/console_log.py)
        os.environ["MAPSTUDY_DEBUG"] = "1"
    _options.wait = None if wait < 0 else wait


def _fail(message: str, hint: str | None = None) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    if hint:
        console.print(f"[yellow]what to do:[/] {hint}", highlight=False)
    raise typer.Exit(code=2)


def _notify(message: str) -> None:
    console.print(f"[yellow]{message}[/]", highlight=False)


_OS_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free some space on the disk, then run the command again: "
                                       "what was written before is intact"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space, then run the command again"),
    errno.EACCES: ("permission denied", "make the file or folder readable and writable by you, or set "
                                        "another folder in the study file"),
    errno.EPERM: ("operation not permitted", "make the file or folder writable by you"),
    errno.EROFS: ("the file system is read-only", "set folders on a writable disk in the study file "
                                                  "(processed_dir, reports_dir, erasure_dir)"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.EISDIR: ("a folder was given where a file is expected", "give the path of a file"),
    errno.ENOTDIR: ("a file stands where a folder is expected", "check the path"),
}


def _explain_os_error(exc: OSError) -> tuple[str, str]:
    what, hint = _OS_ERRORS.get(exc.errno, (exc.strerror or type(exc).__name__, "check the path and try again"))
    where = f": {exc.filename}" if exc.filename else ""
    return what + where, hint


def _explain_duckdb_error(exc: Exception) -> tuple[str, str]:
    import duckdb

    text = str(exc)
    for marker, code in (("No space left", errno.ENOSPC), ("Disk quota", errno.EDQUOT),
                         ("Permission denied", errno.EACCES), ("Read-only file system", errno.EROFS)):
        if marker in text:
            what, hint = _OS_ERRORS[code]
            return f"{what} (while the study database was written)", hint
    if "Could not set lock" in text or "Conflicting lock" in text:
        return ("the study database is in use by another program (the Dagster UI, a notebook?)",
                "close the other program's connection, then run the command again")
    if isinstance(exc, duckdb.IOException):  # paths, never data values
        return f"the study database could not be read or written ({text.splitlines()[0]})",             "check the disk and the folder's permissions"
    return ("the study database reported an error", "run the command again with --debug to see it; "
            "if the database is damaged, run the study again (mapstudy run)")


def _explain(exc: BaseException) -> tuple[str, str | None]:
    """One readable message and what to do, for the failures a user can meet (never quoting data)."""
    import duckdb

    from pipelines.locks import LockTimeout
    from pipelines.privacy.erasure import ErasureError
    from pipelines.privacy.release import ReleaseError
    from pipelines.render.engine import RenderError
    from pipelines.runner import RunFailed

    if isinstance(exc, LockTimeout):
        return str(exc), "wait until the other command has finished (or give --wait SECONDS a longer time)"
    if isinstance(exc, (MissingKeyError, ConfigError)):
        return str(exc), None
    if isinstance(exc, ErasureError):
        return str(exc), None
    from pipelines.privacy.export import ExportError

    if isinstance(exc, ExportError):
        return str(exc), "mapstudy export --help lists the formats, languages and dialects"
    if isinstance(exc, ReleaseError):
        return str(exc), "run the study (mapstudy run) and choose a folder that does not exist yet"
    if isinstance(exc, RenderError):
        return str(exc), None
    if isinstance(exc, RunFailed):
        what, hint = _OS_ERRORS.get(exc.errno, (str(exc), "see the step that failed above"))
        return f"the run failed in step {exc.step}: {what}", hint + " (the previous database is unchanged)"
    if isinstance(exc, OSError):
        return _explain_os_error(exc)
    if isinstance(exc, duckdb.Error):
        return _explain_duckdb_error(exc)
    if isinstance(exc, UnicodeError):
        return ("a file is not in the expected text encoding", "save it as UTF-8 text and run the command again")
    return (f"unexpected error ({type(exc).__name__}); its message is not shown because it may quote data",
            "run the command again with --debug to see the traceback, and report it")


def _guarded(command: Callable) -> Callable:
    """Turn expected failures of a command into one message and exit code 2 (--debug: the traceback too)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            console.print("[bold red]interrupted[/]: outputs are written only when complete, so nothing is half-written")
            raise typer.Exit(code=130) from None
        except Exception as exc:  # noqa: BLE001: the point is to catch everything here
            if _options.debug:
                traceback.print_exc()
            message, hint = _explain(exc)
            _fail(message, hint)

    return wrapper


def _study_lock(study):
    from pipelines.locks import study_lock

    return study_lock(study, _options.wait, _notify)


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
@_guarded
def check(study_file: Path = StudyOption) -> None:
    """Find what a run would fail on: study file, codebooks, plan, key and each raw file's header.

    Reads only the headers of the raw files. Errors (exit code 2) name file, key and reason;
    warnings (exit code 0) say what a run would lose.
    """
    from pipelines.study_check import check_study

    study, codebooks = _load(study_file)
    problems = check_study(study, codebooks)
    errors = [p for p in problems if p.level == "error"]
    for p in problems:
        colour = "red" if p.level == "error" else "yellow"
        console.print(f"[bold {colour}]{p.level}:[/] {p}", highlight=False, soft_wrap=True)
    summary = f"{study_file} with {len(codebooks)} codebooks and {len(study.inputs)} inputs"
    if errors:
        _fail(f"{len(errors)} error(s) in {summary}", "fix each file and key named above, then run check again")
    console.print(f"[green]ok:[/] {summary}" + (f" ({len(problems)} warning(s) above)" if problems else ""))


@app.command()
@_guarded
def init(raw: Path = typer.Option(..., "--raw", help="The folder of raw exports to read (headers and labels only).",
                                  exists=True, file_okay=False),
         name: str = typer.Option(..., "--study", help="The new study's name (lower-case letters, digits, - and _)."),
         studies_dir: Path = typer.Option(PROJECT_ROOT / "studies", "--studies-dir",
                                          help="Where to write <name>.yaml and <name>/codebooks/.", file_okay=False),
         force: bool = typer.Option(False, "--force", help="Overwrite an earlier draft of the same name.")) -> None:
    """Draft a study file and its codebook overrides from a folder of exports, then check the draft."""
    from pipelines.draft import draft_study

    try:
        draft = draft_study(raw, name, studies_dir, force=force)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"[green]drafted[/] {draft.study_file}", highlight=False)
    for path in draft.codebook_files:
        console.print(f"[green]drafted[/] {path}", highlight=False)
    for line in draft.todo:
        console.print(f"[yellow]left to decide:[/] {line}", highlight=False)
    console.print("read the TODO comments in these files; checking the draft:")
    try:
        check(draft.study_file)
    except typer.Exit as exc:
        if exc.exit_code != 2:
            raise
        console.print(f"[yellow]the draft is written[/]: decide what check names above, then run "
                      f"`mapstudy check --study {draft.study_file}` again", highlight=False)


@app.command()
@_guarded
def synth(study_file: Path = StudyOption,
          pupils: int = typer.Option(3000, min=50, max=1_000_000, help="Pupils in the baseline mapping."),
          seed: int = typer.Option(20231, help="Random seed: the same seed gives the same files."),
          shape: str | None = typer.Option(None, help="Instead: a study of another shape (pupils_only, three_waves, "
                                                      "sparse_county, demo; pipelines/synth/shapes.py) under --out."),
          out: Path | None = typer.Option(None, help="With --shape: the folder for its study file and data.")) -> None:
    """Generate the demo study's raw exports, its key and its ground truth."""
    from pipelines.synth.generate import generate_study

    if shape is not None:
        from pipelines.synth.shapes import SHAPES, make_shape

        if shape not in SHAPES or out is None:
            _fail(f"--shape must be one of {', '.join(SHAPES)} and needs --out DIR", "e.g. --shape three_waves --out /tmp/s")
        written, _ = make_shape(shape, out.resolve(), pupils=pupils, seed=seed)
        console.print(f"[green]generated[/] the {shape} study ({pupils} pupils, seed {seed}): {written}")
        return
    study, _ = _load(study_file)
    if not study.demo:
        _fail(f"{study_file} is not a demo study (demo: false)", "synth writes generated data only for demo studies")
    started = time.perf_counter()
    with _study_lock(study), _progress() as bar:  # a run must not read the exports while they are rewritten
        task = bar.add_task("generating", total=1.0)
        generate_study(study_file, PROJECT_ROOT, pupils=pupils, seed=seed,
                       progress=lambda msg, frac: bar.update(task, completed=frac, description=msg))
    console.print(f"[green]generated[/] {pupils} pupils (seed {seed}) under {study.raw_path} "
                  f"in {time.perf_counter() - started:.1f} s")


def _stop_for_losses(exc: Exception) -> None:
    """Exit code 1: files or rows would be lost; one line per problem (no values), nothing written."""
    lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip() and not line.startswith("what to do")]
    for line in lines:
        console.print(f"[bold red]lost:[/] {line}", highlight=False)
    console.print(f"[bold red]stopped:[/] {len(lines)} file(s) would lose rows; nothing was written, the previous "
                  "database and reports are unchanged", highlight=False)
    console.print("[yellow]what to do:[/] fix or replace the file(s) named above and run again, or run again with "
                  "--accept-partial to write the rest (meta.losses and the overview report then say what is missing)",
                  highlight=False)
    raise typer.Exit(code=1)


def _accepted_losses(study) -> list[tuple]:
    """The problems an accepted partial run recorded in meta.losses (file, rule, rows, message)."""
    import duckdb

    try:
        with duckdb.connect(str(study.db_path), read_only=True) as con:
            return con.execute("SELECT file, rule, rows, message FROM meta.losses ORDER BY file").fetchall()
    except duckdb.Error:
        return []


@app.command()
@_guarded
def run(study_file: Path = StudyOption,
        accept_partial: bool = typer.Option(False, "--accept-partial",
                                            help="Write what could be read even when files or rows are lost; "
                                                 "meta.losses and the reports say what is missing."),
        force: bool = typer.Option(False, "--force", help="Recompute every asset, even those whose inputs, code "
                                                          "and settings are unchanged since they were computed.")
        ) -> None:
    """Materialise every asset of the study whose inputs changed: ingest, analyses, reports."""
    from pipelines.runner import run_study_job
    from pipelines.ingest.losses import DataLossError

    study, _ = _load(study_file)
    missing = [i.path for i in study.inputs if not (study.raw_path / i.path).is_file()]
    if len(missing) == len(study.inputs):
        _fail(f"no input files found under {study.raw_path}",
              "copy the exports there" + (" or run `mapstudy synth`" if study.demo else ""))
    started = time.perf_counter()
    try:
        ok = run_study_job(study_file, wait=_options.wait, notify=_notify, accept_partial=accept_partial, force=force)
    except MissingKeyError as exc:
        _fail(str(exc))
    except DataLossError as exc:
        _stop_for_losses(exc)
    if not ok:
        _fail("the run failed: see the step that failed above (or in the Dagster UI, `make dev`)")
    console.print(f"[green]done[/] in {time.perf_counter() - started:.1f} s: {study.db_path}, "
                  f"{study.report_dir('et').parent}")
    accepted = _accepted_losses(study) if accept_partial else []
    for file, rule, rows, message in accepted:
        console.print(f"[yellow]lost:[/] {file}: {rule} ({'rows unknown' if rows is None else f'{rows} row(s)'}): "
                      f"{message}", highlight=False)
    if accepted:
        console.print(f"[yellow]partial run:[/] {len(accepted)} file(s) lost rows, accepted with --accept-partial; "
                      "meta.losses and the overview report say which", highlight=False)
        raise typer.Exit(code=1)


@app.command()
@_guarded
def demo(pupils: int = typer.Option(3000, min=50, max=1_000_000), seed: int = typer.Option(20231)) -> None:
    """Generate the demo study and run everything on it."""
    synth(DEMO_STUDY, pupils, seed, shape=None, out=None)  # called as a function: no typer defaults
    run(DEMO_STUDY, accept_partial=False, force=False)


@app.command()
@_guarded
def report(study_file: Path = StudyOption,
           lang: list[str] = typer.Option(["et", "en"], help="Languages, Estonian first."),
           name: str = typer.Option("overview", help="Which report (a .qmd under reports/)."),
           municipality: str = typer.Option(None, "--municipality",
                                            help="Render the report of this municipality (KOV), as the study file names it."),
           county: str = typer.Option(None, "--county", help="Render the report of this county (its id or name).")) -> None:
    """Render a report from the processed database (without running the pipeline)."""
    from pipelines.render.engine import render_report
    from pipelines.render.texts import LANGUAGES

    unknown = [language for language in lang if language not in LANGUAGES]
    if unknown:
        _fail(f"unknown report language {', '.join(unknown)}", f"choose from {', '.join(LANGUAGES)}")
    study, _ = _load(study_file)
    if not study.db_path.is_file():
        _fail(f"{study.db_path} does not exist", "run the study first: mapstudy run --study " + str(study_file))
    if municipality or county:
        _place_report(study, municipality, county)
        return
    qmd = PROJECT_ROOT / "reports" / f"{name}.qmd"
    if not qmd.is_file():
        _fail(f"no report called {name!r}", "see reports/*.qmd for the report names")
    with _study_lock(study):  # a run must not replace the database under the renderer
        for language in lang:
            for path in render_report(qmd, study.report_dir(language),
                                      {"study": study.study, "db": str(study.db_path), "lang": language}):
                console.print(f"wrote {path}")


def _place_report(study, municipality: str | None, county: str | None) -> None:
    """Render one municipality's or county's report (both languages) and the study's index page."""
    from pipelines.assets.coordinator import county_of, municipalities, render_place, write_index
    from pipelines.warehouse import table_exists

    if not table_exists(study.db_path, "results.published_family"):
        _fail("the database has no coordinator tables (results.published_family)",
              "run the study again: mapstudy run --study FILE")
    with _study_lock(study):
        if municipality:
            if municipality not in municipalities(study):
                _fail(f"no municipality {municipality!r} in the study", "use a name as the study file writes it")
            paths, problems, seconds = render_place(study, "municipality", municipality,
                                                    {"municipality": municipality, "county": county_of(study)[municipality]},
                                                    lambda line: None)
        else:
            ids = {cid: cid for cid in study.counties} | {c.name: cid for cid, c in study.counties.items()}
            if county not in ids:
                _fail(f"no county {county!r} in the study", "use its id or name as the study file writes it")
            paths, problems, seconds = render_place(study, "county", study.counties[ids[county]].name,
                                                    {"county": ids[county]}, lambda line: None)
        write_index(study)
    for path in paths:
        console.print(f"wrote {path}")
    console.print(f"rendered in {seconds:.1f} s")
    if problems:
        _fail(f"the small-cell audit found {len(problems)} visible small count(s)", "; ".join(problems))


@app.command()
@_guarded
def erase(study_file: Path = StudyOption,
          codes: Path = typer.Option(None, "--codes", allow_dash=True,
                                     help="File with one personal code per line (UTF-8 or UTF-16), or - for stdin."),
          staff: Path = typer.Option(None, "--staff", allow_dash=True,
                                     help="File with one specialist per line: an e-mail, or "
                                          "'first name;last name;municipality'; or - for stdin."),
          rekey: bool = typer.Option(False, "--rekey",
                                     help="After a key change: rebuild the register under the current key from "
                                          "every personal code and e-mail ever erased.")) -> None:
    """Record people in the erasure register; every later run excludes them everywhere."""
    from pipelines.ingest.stage import study_keys
    from pipelines.privacy.erasure import add_to_register, read_request_lines, register_path, rekey_register

    if codes is None and staff is None:
        _fail("give the people to erase", "--codes FILE (personal codes) and/or --staff FILE (specialists' e-mails)")
    if str(codes) == "-" and str(staff) == "-":
        _fail("only one of --codes and --staff can read standard input", "give the other as a file")
    study, _ = _load(study_file)

    def lines(path: Path | None) -> list[str]:
        if path is None:
            return []
        if str(path) == "-":
            return read_request_lines(None, sys.stdin.read())
        return read_request_lines(path)

    code_lines, staff_lines = lines(codes), lines(staff)
    keys = study_keys(study)
    with _study_lock(study):
        if rekey:
            people, invalid = rekey_register(study, keys, code_lines, staff_lines)
            console.print(f"[green]re-keyed[/] {register_path(study)}: {people} people under the current key")
        else:
            added, invalid = add_to_register(study, keys, code_lines, staff_lines)
            console.print(f"[green]{added} pseudonym(s) added[/] to {register_path(study)}")
    if invalid:
        console.print(f"[yellow]{invalid} line(s) were neither a valid personal code nor a specialist's e-mail "
                      "and were skipped[/] (their content is not shown)")
    console.print("run the study again (mapstudy run) to remove them from every output")


@app.command()
@_guarded
def share(study_file: Path = StudyOption,
          out: Path = typer.Option(..., "--out", help="A new folder for the release.", file_okay=False)) -> None:
    """Write the shareable (k-anonymous) tables as files a research team may hand on."""
    from pipelines.privacy.release import ReleaseError, write_release

    study, codebooks = _load(study_file)
    try:
        with _study_lock(study):  # a run must not replace the database while the release reads it
            written = write_release(study, codebooks, out)
    except ReleaseError as exc:
        _fail(str(exc), "run the study (mapstudy run) and choose a folder that does not exist yet")
    for path in written:
        console.print(f"wrote {path}")
    console.print("hand on this folder only, never the DuckDB file: it holds the anon tables too")


@app.command()
@_guarded
def export(study_file: Path = StudyOption,
           out: Path = typer.Option(..., "--out", help="A new folder for the export.", file_okay=False),
           fmt: list[str] = typer.Option(["all"], "--format", "-f",
                                         help="sav, dta, parquet, csv, xlsx (repeat or comma-separate) or all."),
           lang: str = typer.Option("et", "--lang", help="Language of labels: et or en."),
           dialect: str = typer.Option("rfc4180", "--dialect",
                                       help="CSV dialect: rfc4180 (UTF-8, comma) or excel-et (UTF-8 BOM, ';', "
                                            "decimal comma).")) -> None:
    """Write the shareable tables for researchers: SPSS, Stata, Parquet, CSV, Excel, with a codebook."""
    from pipelines.privacy.export import write_export

    study, codebooks = _load(study_file)
    with _study_lock(study):  # a run must not replace the database while the export reads it
        written = write_export(study, codebooks, out, fmt, lang=lang, dialect=dialect)
    for path in written:
        console.print(f"wrote {path}")
    console.print("hand on this folder only, never the DuckDB file: it holds the anon tables too")


@key_app.command("new")
@_guarded
def key_new(out: Path = typer.Option(..., "--out", help="Where to write the key: outside the repository.")) -> None:
    """Create a new random pseudonymisation key file (readable by its owner only)."""
    from pipelines.privacy.pseudonyms import new_secret_hex, write_key_file

    if out.exists():
        _fail(f"{out} exists", "choose another path: replacing a key changes every pseudonym")
    if out.resolve().is_relative_to(PROJECT_ROOT) and not out.resolve().is_relative_to(PROJECT_ROOT / ".mapstudy"):
        _fail("the key must not live inside the repository", "write it e.g. to ~/.config/mapstudy/<study>.key")
    write_key_file(out, new_secret_hex())
    console.print(f"[green]wrote[/] {out}: share it with your team over a secure channel, never by e-mail or git")

"""Run a study's whole Dagster job in a temporary folder, then search every artifact it left
for given strings, by querying, not grepping bytes.

The run uses a Dagster instance whose storage, event log and compute logs all live in the
temporary folder (a dagster.yaml written there), so the search sees all of Dagster's
storage and the project's own instance is untouched.

DuckDB and Parquet compress their pages, Dagster's sqlite storage holds JSON (with
non-ASCII letters escaped) and zlib-compressed snapshots, HTML escapes entities and PDFs
compress their text streams: a byte search misses values in all of them. So each artifact
is read the way its own tools read it (SQL for DuckDB, Parquet and sqlite; JSON decoding
for Dagster's serialised events; an HTML parser; pypdf for PDF text; PIL for the text
chunks of embedded PNG figures), every text value goes into one DuckDB table, and one
SQL query finds the needles: an exact match (case-insensitive) or the needle's words as a
consecutive run of the value's words (letters and digits, case-insensitive), so "Tamm"
is found in "tamm, Mari" but not in "Tammsaare" and a name is found in lower case too.
"""

from __future__ import annotations

import base64
import io
import warnings
import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd

#: Words of a text: letters and digits, lower case, separated by single spaces and padded.
NORMALISE_SQL = "' ' || trim(regexp_replace(lower({x}), '[^\\pL\\pN]+', ' ', 'g')) || ' '"


class _HtmlText(HTMLParser):
    """The visible text of an HTML page, its attribute texts and its embedded PNG figures."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.images: list[bytes] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if value.startswith("data:image/png;base64,"):
                self.images.append(base64.b64decode(value.split(",", 1)[1]))
            elif not value.startswith("data:"):
                self.texts.append(value)

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(data)


def _png_texts(png: bytes) -> list[str]:
    """The text chunks of a PNG (matplotlib writes its metadata there)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return [f"{k} {v}" for k, v in image.info.items() if isinstance(v, str)]


def _json_strings(value: object) -> Iterator[str]:
    """Every key and string leaf of a decoded JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_strings(v)


def _decoded(value: object) -> list[str]:
    """A sqlite cell as texts: blobs decompressed when zlib, JSON decoded to its strings."""
    if isinstance(value, bytes):
        try:
            value = zlib.decompress(value)
        except zlib.error:
            pass
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    try:
        return [text, *_json_strings(json.loads(text))]
    except (ValueError, RecursionError):
        return [text]


class ArtifactIndex:
    """Every text value of a run's artifacts, labelled by where it was found."""

    def __init__(self) -> None:
        self.con = duckdb.connect(config={"threads": 2})
        self.con.execute("CREATE TABLE artifact(source VARCHAR, value VARCHAR)")
        self.sources: list[str] = []

    def add(self, source: str, values: Iterable[str]) -> None:
        self.add_rows([(source, v) for v in values])

    def add_rows(self, rows: list[tuple[str, str]]) -> None:
        """(source, text) pairs; empty texts are left out."""
        frame = pd.DataFrame([r for r in rows if r[1]], columns=["source", "value"], dtype="string")
        self.con.register("_rows", frame)
        self.con.execute("INSERT INTO artifact SELECT source, value FROM _rows")
        self.con.unregister("_rows")
        self.sources += sorted(set(frame["source"]))

    def add_relation_columns(self, source: str, relation: str) -> None:
        """Every column of a DuckDB relation (table or read_parquet), cast to text, distinct values."""
        columns = [r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        for column in columns:
            self.con.execute(f"""INSERT INTO artifact SELECT DISTINCT '{source}.{column}', CAST("{column}" AS VARCHAR)
                                 FROM {relation} WHERE "{column}" IS NOT NULL""")
        self.sources.append(source)

    def add_duckdb(self, db_path: Path) -> list[str]:
        """Every table of a DuckDB file; returns the tables' names."""
        self.con.execute(f"ATTACH '{db_path}' AS searched (READ_ONLY)")
        tables = self.con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                                  "WHERE table_catalog = 'searched'").fetchall()
        for schema, table in tables:
            self.add_relation_columns(f"duckdb:{schema}.{table}", f'searched.{schema}."{table}"')
        self.con.execute("DETACH searched")
        return [f"{s}.{t}" for s, t in tables]

    def add_parquet(self, path: Path) -> None:
        self.add_relation_columns(f"parquet:{path.name}", f"read_parquet('{path}')")

    def add_sqlite(self, path: Path) -> None:
        """Every text or blob cell of every table of a sqlite file (Dagster's storage)."""
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = []
        try:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for column in [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]:
                    cells = con.execute(f'SELECT "{column}" FROM "{table}" '
                                        f'WHERE typeof("{column}") IN (\'text\', \'blob\')').fetchall()
                    rows += [(f"sqlite:{path.name}:{table}.{column}", t) for (c,) in cells for t in _decoded(c)]
        finally:
            con.close()
        self.add_rows(rows)

    def add_text_file(self, path: Path) -> None:
        self.add(f"text:{path.name}", path.read_text(encoding="utf-8", errors="replace").splitlines())

    def add_html(self, path: Path) -> None:
        parser = _HtmlText()
        parser.feed(path.read_text(encoding="utf-8"))
        self.add(f"html:{path.parent.name}/{path.name}", parser.texts)
        self.add(f"html-figures:{path.parent.name}/{path.name}", [t for png in parser.images for t in _png_texts(png)])

    def add_pdf(self, path: Path) -> None:
        from pypdf import PdfReader

        reader = PdfReader(path)
        texts = [page.extract_text() or "" for page in reader.pages]
        texts += [str(v) for v in (reader.metadata or {}).values()]
        self.add(f"pdf:{path.parent.name}/{path.name}", texts)

    def values(self) -> int:
        return self.con.execute("SELECT count(*) FROM artifact").fetchall()[0][0]

    def hits(self, needles: Iterable[str]) -> pd.DataFrame:
        """(source, needle) for every needle found as an exact value or a run of words.

        The run-of-words test is joined on the needle's first word, so only values that
        hold that word are compared in full (a hash join, not needles x values).
        """
        frame = pd.DataFrame({"needle": sorted(set(needles))}, dtype="string")
        self.con.register("_needles", frame)
        query = f"""
            WITH needle AS (SELECT needle, {NORMALISE_SQL.format(x='needle')} AS words FROM _needles),
                 keyed AS (SELECT *, split_part(trim(words), ' ', 1) AS first FROM needle WHERE trim(words) <> ''),
                 value AS (SELECT source, value, {NORMALISE_SQL.format(x='value')} AS words
                           FROM (SELECT DISTINCT source, value FROM artifact)),
                 split AS (SELECT source, words, unnest(string_split(trim(words), ' ')) AS word FROM value),
                 word AS (SELECT DISTINCT source, words, word FROM split)
            SELECT DISTINCT source, needle FROM (
                SELECT value.source, needle.needle FROM value JOIN needle ON lower(value.value) = lower(needle.needle)
                UNION ALL
                SELECT word.source, keyed.needle FROM word JOIN keyed ON word.word = keyed.first
                WHERE contains(word.words, keyed.words))
            ORDER BY 1, 2"""
        try:
            return self.con.execute(query).df()
        finally:
            self.con.unregister("_needles")


def words(text: str) -> str:
    """The same normalisation as the search, for a text outside the index."""
    return words_of([text])[0]


def words_of(texts: Iterable[str]) -> list[str]:
    """:func:`words` of many texts in one query (a study has hundreds of thousands of canaries)."""
    with duckdb.connect() as con:
        con.register("_texts", pd.DataFrame({"text": list(texts)}, dtype="string"))
        return [w for (w,) in con.execute(f"SELECT {NORMALISE_SQL.format(x='text')} FROM _texts").fetchall()]


def index_run(root: Path, not_outputs: Iterable[Path] = ()) -> ArtifactIndex:
    """Index every file a study run leaves under root, except the inputs in ``not_outputs``.

    DuckDB files, Parquet, sqlite (Dagster's storage), HTML, PDF, and text files (logs,
    exported CSV and JSON). Raise on a file kind it cannot read, so nothing is skipped
    silently.
    """
    index = ArtifactIndex()
    skipped = [Path(p) for p in not_outputs]
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(path.is_relative_to(p) for p in skipped):
            continue
        suffix = path.suffix.lower()
        if suffix in (".db-shm", ".db-wal", ".wal"):
            continue  # a database's write-ahead log: read through the database itself
        if suffix == ".duckdb":
            index.add_duckdb(path)
        elif suffix == ".parquet":
            index.add_parquet(path)
        elif suffix == ".db":
            index.add_sqlite(path)
        elif suffix in (".html", ".htm"):
            index.add_html(path)
        elif suffix == ".pdf":
            index.add_pdf(path)
        elif suffix in (".out", ".err", ".log", ".txt", ".csv", ".json", ".md", ".yaml", ".complete", ""):
            index.add_text_file(path)
        else:
            raise ValueError(f"no reader for {path.name}: teach artifact_search to query it")
    return index


DAGSTER_YAML = """telemetry:
  enabled: false
storage:
  sqlite:
    base_dir: {home}/storage
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}/storage
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/logs
"""


def run_whole_job(study_file: Path, dagster_home: Path):
    """Materialise every asset of the study's job with an instance kept under dagster_home."""
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from pipelines.definitions import defs
    from pipelines.resources import StudyResource

    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML.format(home=dagster_home), encoding="utf-8")
    from pipelines.runner import RANGE_START_TAG, study_jobs

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        resources = {"study": StudyResource(study_file=str(study_file))}
        result = defs.resolve_job_def("study").execute_in_process(
            instance=instance, raise_on_error=False, resources=resources)
        # then the partitioned jobs (the municipality reports), as mapstudy run does, over their first
        # partition only (a render costs seconds): its reports are searched too; the study job's result
        # is returned
        for name, tags in study_jobs(defs)[1:]:
            if result.success:
                first = {key: tags[RANGE_START_TAG] for key in tags}
                assert defs.resolve_job_def(name).execute_in_process(
                    instance=instance, raise_on_error=False, resources=resources, tags=first).success, name
        return result

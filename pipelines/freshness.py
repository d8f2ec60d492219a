"""Skip what is up to date: an asset is recomputed only when what it is computed from changed.

What an asset is computed from, its *inputs*:

- ``code``: the source of the module defining it and every project module that module
  imports (transitively, read with :mod:`ast`), the report sources for a report, the
  lockfile and the Python version;
- ``settings``: the study file and the codebooks (base and the study's overrides);
- the content of every DuckDB table an ancestor asset writes, and of the tables no asset
  names (``meta.study``, ``meta.variables``... the ingest writes them beside its assets),
  each as a content hash (:func:`table_versions`);
- for the ingest: the raw files' hashes, the key's fingerprint, the erasure register and
  the git commit (it writes the commit into ``meta.provenance``, which every report shows).

Each computed asset (each node: a multi-asset is one) records its inputs and the content
of what it wrote in ``meta.versions``, in the study database itself. The record lives and
dies with the data it describes: a failed run's staging copy is thrown away with its
records, so a record never vouches for a table that was not kept. When a node's inputs and
outputs are what its record says, its step logs ``up to date: ...`` and reports the
recorded result instead of computing (:func:`skip_when_up_to_date`); ``--force``
(``StudyResource.force``) recomputes everything. Before a run, `mapstudy run` asks
:func:`nothing_changed` (from the records alone, no asset module imported): when nothing
changed, no Dagster run starts.

Ancestors rather than declared deps: a node is judged by every table written upstream of
it, so a read its declaration forgot still counts. A node reading a table that is not
upstream would race under a parallel executor anyway.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import json
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from pipelines import warehouse
from pipelines.config import PROJECT_ROOT, Study, file_sha256

#: The packages whose source counts as the pipeline's code.
PACKAGES = ("pipelines", "analyses", "personas")
#: Where a node's record lives in the study database.
VERSIONS_TABLE = "meta.versions"
#: Metadata key of a materialisation reported from the record instead of computed.
UP_TO_DATE = "mapstudy/up_to_date"


# -- code -------------------------------------------------------------------------------------


def _module_file(module: str) -> Path | None:
    base = PROJECT_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _imports(path: Path) -> frozenset[str]:
    """The project modules a source file imports anywhere in it (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {n for n in names if n.split(".")[0] in PACKAGES and _module_file(n) is not None}
    return frozenset(found)


def source_closure(modules: Iterable[str]) -> list[Path]:
    """The files of ``modules`` and of every project module they import, transitively, sorted."""
    seen: set[Path] = set()
    todo = [m for m in modules]
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if path is None or path in seen:
            continue
        seen.add(path)
        parents = module.split(".")
        todo += [".".join(parents[:i]) for i in range(1, len(parents))]  # packages run their __init__
        todo += sorted(_imports(path))
    return sorted(seen)


def report_sources() -> list[Path]:
    """What a report's rendering reads besides the database: the report sources and the render package."""
    reports = PROJECT_ROOT / "reports"
    files = [p for p in reports.rglob("*") if p.is_file() and "_output" not in p.relative_to(reports).parts]
    render = PROJECT_ROOT / "pipelines" / "render"
    return sorted(files + [p for p in render.rglob("*") if p.is_file() and p.suffix != ".pyc"])


@functools.lru_cache(maxsize=256)
def code_version(modules: tuple[str, ...], extra: tuple[Path, ...] = ()) -> str:
    """A hash of the code a node runs: its modules' import closure, ``extra`` files, the lockfile, Python.

    Cached for the process: the code does not change during a run.
    """
    digest = hashlib.sha256(platform.python_version().encode())
    lock = PROJECT_ROOT / "uv.lock"
    for path in [*source_closure(modules), *extra, *([lock] if lock.is_file() else [])]:
        digest.update(f"\n{path.relative_to(PROJECT_ROOT)}:".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# -- settings and data --------------------------------------------------------------------------


def settings_version(study: Study, codebook_files: Iterable[Path]) -> str:
    """A hash of the study file's meaning and of every codebook file the study reads."""
    digest = hashlib.sha256(study.model_dump_json(exclude={"path"}).encode())
    for path in sorted(set(codebook_files)):
        digest.update(f"\n{path.name}:{file_sha256(path)}".encode())
    return digest.hexdigest()[:16]


def table_versions(con, tables: Iterable[str]) -> dict[str, str]:
    """Each table's content hash ("absent" when it does not exist): columns, types and rows in order.

    DuckDB hashes each row; the sum weighted by row number makes the hash see row order.
    Not cryptographic: it notices change, it does not resist forgery.
    """
    present = {f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
    versions: dict[str, str] = {}
    for table in sorted(set(tables)):
        if table not in present:
            versions[table] = "absent"
            continue
        schema, name = table.split(".")
        columns = con.execute(f'DESCRIBE {schema}."{name}"').fetchall()
        rows, weighted = con.execute(
            f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT * (rowid + 1)), 0) FROM {schema}."{name}" t').fetchone()
        text = f"{[c[:2] for c in columns]}|{rows}|{weighted}"
        versions[table] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return versions


def all_tables(con) -> set[str]:
    """Every table of the study database, as "schema.table" (the record table aside)."""
    rows = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    return {f"{s}.{t}" for s, t in rows if s in warehouse.SCHEMAS} - {VERSIONS_TABLE}


def files_version(paths: Iterable[Path]) -> dict[str, str]:
    """Each file's SHA-256 (short), by path relative to the project ("missing" when gone)."""
    out = {}
    for path in sorted(set(paths)):
        key = str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)
        out[key] = file_sha256(path)[:16] if path.is_file() else "missing"
    return out


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """What a node was last computed from, and what it wrote."""

    node: str
    inputs: dict[str, str]
    outputs: dict[str, str]  # table -> version, or file -> hash
    checks: dict[str, bool]  # "asset key/check name" -> passed
    recorded_at: str
    how: dict = field(default_factory=dict)  # modules, reports, extra: to judge it again without Dagster

    def changed_inputs(self, inputs: Mapping[str, str]) -> list[str]:
        """The inputs that differ from the recorded ones (added or gone ones included)."""
        return sorted(k for k in set(inputs) | set(self.inputs) if inputs.get(k) != self.inputs.get(k))


def read_record(con, node: str) -> Record | None:
    """The node's record, read on a connection to the study database (None: never recorded)."""
    if VERSIONS_TABLE not in {f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}:
        return None
    row = con.execute(f"SELECT * FROM {VERSIONS_TABLE} WHERE node = ?", [node]).df()
    if row.empty:
        return None
    row = row.iloc[0]
    how = json.loads(row["how"]) if "how" in row and isinstance(row["how"], str) else {}
    return Record(node, json.loads(row["inputs"]), json.loads(row["outputs"]), json.loads(row["checks"]),
                  str(row["recorded_at"]), how)


def write_record(db_path: Path, record: Record) -> None:
    warehouse.replace_rows(db_path, VERSIONS_TABLE, "node", record.node, {
        "node": record.node, "inputs": json.dumps(record.inputs, sort_keys=True),
        "outputs": json.dumps(record.outputs, sort_keys=True), "checks": json.dumps(record.checks, sort_keys=True),
        "recorded_at": record.recorded_at, "how": json.dumps(record.how, sort_keys=True)})


# -- the step -----------------------------------------------------------------------------------


def _table_of(key: dg.AssetKey) -> str | None:
    schema, name = key.path[-2:] if len(key.path) >= 2 else ("", "")
    return f"{schema}.{name}" if schema in warehouse.SCHEMAS else None


#: The asset graph of the definitions being run (:func:`use_graph`).
_GRAPH: dict[str, object] = {}


def use_graph(defs: dg.Definitions) -> None:
    """Judge steps by these definitions' whole asset graph (ancestors of a node across jobs)."""
    _GRAPH["graph"] = defs.resolve_asset_graph()


@dataclass(frozen=True)
class Step:
    """One node as its freshness sees it: its definition, the job's asset graph, its partitions."""

    assets_def: dg.AssetsDefinition
    graph: object  # every asset of the definitions (Definitions.resolve_asset_graph())
    partition_keys: tuple[str, ...] = ()

    @classmethod
    def of(cls, context: dg.AssetExecutionContext) -> "Step":
        partitioned = context.has_partition_key_range or context.has_partition_key
        # The definitions' whole graph (registered by whoever built them: a job's own graph
        # may hold only its assets); `dg.materialize` registers none: its job holds everything.
        graph = _GRAPH.get("graph")
        if graph is None or not all(graph.has(k) for k in context.assets_def.keys):
            graph = context.job_def.asset_layer.asset_graph
        return cls(context.assets_def, graph, tuple(context.partition_keys) if partitioned else ())

    @property
    def name(self) -> str:
        return self.assets_def.node_def.name

    def ancestors(self) -> set[dg.AssetKey]:
        """Every asset key upstream of the node's keys."""
        own = set(self.assets_def.keys)
        seen: set[dg.AssetKey] = set()
        todo = [parent for key in own for parent in self.graph.get(key).parent_keys]
        while todo:
            key = todo.pop()
            if key in seen or key in own:
                continue
            seen.add(key)
            if self.graph.has(key):
                todo += list(self.graph.get(key).parent_keys)
        return seen


@dataclass
class Node:
    """What the step of one node reads and writes, for its record."""

    name: str
    db_path: Path
    inputs: dict[str, str]


#: Tables only reports read: the provenance names the git commit of the last ingest, so a
#: commit re-renders every report (their fingerprint changes) but recomputes no analysis.
READ_BY_REPORTS_ONLY = frozenset({"meta.provenance"})


def node_inputs(step: Step, study: Study, codebook_files: Iterable[Path], code: str,
                extra: Mapping[str, str], reading: "Reading | None", reports: bool = False) -> Node:
    """The node's inputs now: code, settings, upstream tables, partitions, ``extra``.

    ``reading``: a read of the study database (None: there is no database yet). The
    tables no asset names (meta.study, meta.variables... written by the ingest beside its
    assets) count for every node downstream of a table, never for the ingest itself.
    """
    upstream = {t for key in step.ancestors() if (t := _table_of(key))}
    named = {t for key in step.graph.get_all_asset_keys() if (t := _table_of(key))}
    own = sorted({t for key in step.assets_def.keys if (t := _table_of(key))})
    inputs = {"code": code, "settings": settings_version(study, codebook_files), **extra}
    if step.partition_keys:
        inputs["partitions"] = hashlib.sha256("\n".join(step.partition_keys).encode()).hexdigest()[:16]
    if reading is not None and upstream:
        present = all_tables(reading.con)
        tables = upstream | (present - named)
        # every report shows the run's fingerprint, upstream of it or not; other nodes never read it
        tables = tables | (READ_BY_REPORTS_ONLY & present) if reports else tables - READ_BY_REPORTS_ONLY
        inputs |= {f"table {t}": v for t, v in reading.versions(tables - set(own)).items()}
    return Node(step.name, study.db_path, inputs)


def outputs_now(reading: "Reading", record: Record) -> dict[str, str]:
    """The current versions of what the record says the node wrote (tables, then files)."""
    tables = [k for k in record.outputs if "/" not in k and k.split(".")[0] in warehouse.SCHEMAS]
    now = reading.versions(tables) if tables else {}
    return now | files_version(PROJECT_ROOT / k for k in record.outputs if k not in now)


@contextlib.contextmanager
def _reading(db_path: Path) -> Iterator:
    """A read-only connection to the study database, or None when it does not exist yet."""
    if not warehouse.active_path(db_path).is_file():
        yield None
        return
    with warehouse.connect(db_path, read_only=True) as con:
        yield con


class Reading:
    """One read of the study database for freshness decisions: its tables' versions, each hashed once."""

    def __init__(self, con) -> None:
        self.con = con
        self._versions: dict[str, str] = {}

    def versions(self, tables: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(tables))
        missing = [t for t in wanted if t not in self._versions]
        if missing:
            self._versions |= table_versions(self.con, missing)
        return {t: self._versions[t] for t in wanted}


def up_to_date(step: Step, resource, modules: Sequence[str], reports: bool,
               extra_inputs: "ExtraInputs | None") -> tuple[Node, Record | None, bool]:
    """(the node's inputs now, its record, whether the record still holds), on one read of the database."""
    config, codebooks = resource.load()
    files = [c.path for c in codebooks.values() if getattr(c, "path", None)]
    code = code_version(tuple(modules), tuple(report_sources()) if reports else ())
    extra = dict(extra_inputs(config, resource)) if extra_inputs else {}
    with _reading(config.db_path) as con:
        reading = Reading(con) if con is not None else None
        node = node_inputs(step, config, files, code, extra, reading, reports)
        record = read_record(con, node.name) if con is not None and not getattr(resource, "force", False) else None
        fresh = (record is not None and not record.changed_inputs(node.inputs)
                 and outputs_now(reading, record) == record.outputs)
    return node, record, fresh


def _replay(context: dg.AssetExecutionContext, record: Record) -> Iterator:
    """The recorded result, reported again: every selected asset and check, marked up to date."""
    note = f"inputs unchanged since {record.recorded_at}; not recomputed"
    for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
        table = _table_of(key)
        version = record.outputs.get(table) if table else None
        yield dg.MaterializeResult(asset_key=key, metadata={UP_TO_DATE: note},
                                   data_version=dg.DataVersion(version) if version else None)
    for check in sorted(context.selected_asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name)):
        passed = record.checks.get(f"{check.asset_key.to_user_string()}/{check.name}", True)
        yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=passed,
                                  metadata={UP_TO_DATE: note})


#: Files a report step wrote, noted by the step (:func:`note_files`) for its record.
_WRITTEN: list[Path] = []


def note_files(paths: Iterable[Path]) -> None:
    """Tell the running step's record which files it wrote (reports)."""
    _WRITTEN.extend(Path(p) for p in paths)


def _with_version(event: dg.MaterializeResult, key: dg.AssetKey | None, versions: Mapping[str, str]
                  ) -> dg.MaterializeResult:
    """The materialisation of ``key`` with the content hash of its table as its data version."""
    table = _table_of(key) if key is not None else None
    if table is None or table not in versions or event.data_version is not None:
        return event
    return dg.MaterializeResult(asset_key=key, metadata=event.metadata, check_results=event.check_results,
                                data_version=dg.DataVersion(versions[table]), tags=event.tags)


def _check_name(event: dg.AssetCheckResult, context) -> str:
    key = event.asset_key or next(iter(context.assets_def.keys))
    return f"{key.to_user_string()}/{event.check_name}"


ExtraInputs = Callable[[Study, object], Mapping[str, str]]


def skip_when_up_to_date(compute=None, *, extra_inputs: ExtraInputs | None = None, reports: bool = False,
                         modules: Sequence[str] = ()):
    """Decorate an asset's compute function: skip it, reporting its record, when its inputs are unchanged.

    The function's signature is kept (Dagster reads it for the context and the ``study``
    resource). ``extra_inputs`` adds inputs of the node's own (the ingest's raw files and
    key); ``reports`` adds the report sources to its code.
    """
    if compute is None:
        return functools.partial(skip_when_up_to_date, extra_inputs=extra_inputs, reports=reports)
    modules = [compute.__module__]

    @functools.wraps(compute)
    def step(context: dg.AssetExecutionContext, *args, **kwargs):
        resource = kwargs.get("study") or next(a for a in args if hasattr(a, "load"))
        node, record, fresh = up_to_date(Step.of(context), resource, modules, reports, extra_inputs)
        if fresh:
            context.log.info(f"up to date: {node.name} (its inputs are unchanged since {record.recorded_at})")
            yield from _replay(context, record)
            return
        if record is not None:
            changed = record.changed_inputs(node.inputs)
            shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
            context.log.info(f"computing {node.name}: changed since its last run: {shown or 'its outputs'}")
        _WRITTEN.clear()
        # The events are held until the step ends, to give each table's content hash as its
        # data version from one read; a failing step still reports its failed checks.
        pending: list = []
        try:
            result = compute(context, *args, **kwargs)
            pending += list(result) if isinstance(result, Iterator) else [result]
        except BaseException:
            yield from (e for e in pending if isinstance(e, dg.AssetCheckResult))
            raise
        own = context.assets_def.keys
        keys = [e.asset_key or (next(iter(own)) if len(own) == 1 else None) if isinstance(e, dg.MaterializeResult)
                else None for e in pending]
        with warehouse.connect(node.db_path, read_only=True) as con:
            versions = table_versions(con, [t for k in keys if k is not None and (t := _table_of(k))])
        checks: dict[str, bool] = {}
        for event, key in zip(pending, keys, strict=True):
            if isinstance(event, dg.AssetCheckResult):
                checks[_check_name(event, context)] = bool(event.passed)
            if isinstance(event, dg.MaterializeResult):
                checks |= {_check_name(c, context): bool(c.passed) for c in event.check_results}
                event = _with_version(event, key, versions)
            yield event
        outputs = {**versions, **files_version(_WRITTEN)}
        _WRITTEN.clear()
        how = {"modules": list(modules), "reports": reports,
               "extra": f"{extra_inputs.__module__}:{extra_inputs.__qualname__}" if extra_inputs else None}
        write_record(node.db_path, Record(node.name, node.inputs, outputs, checks,
                                          time.strftime("%Y-%m-%d %H:%M:%S"), how))

    return step


#: The record of the definitions themselves: which steps a successful run had.
DEFINITIONS_RECORD = "__definitions__"


def _definitions_inputs(study: Study, codebook_files: Iterable[Path], con) -> dict[str, str]:
    tables = hashlib.sha256("\n".join(sorted(all_tables(con))).encode()).hexdigest()[:16]
    return {"code": code_version(("pipelines.study_definitions",)),
            "settings": settings_version(study, codebook_files), "tables": tables}


def record_definitions(defs: dg.Definitions, study: Study, codebooks: Mapping) -> None:
    """After a successful run: which steps the definitions have, for :func:`nothing_changed`."""
    steps = [a.node_def.name for a in defs.resolve_asset_graph().assets_defs if a.is_executable and a.is_materializable]
    files = [c.path for c in codebooks.values() if getattr(c, "path", None)]
    with warehouse.connect(study.db_path, read_only=True) as con:
        inputs = _definitions_inputs(study, files, con)
    write_record(study.db_path, Record(DEFINITIONS_RECORD, inputs, {name: "step" for name in steps}, {},
                                       time.strftime("%Y-%m-%d %H:%M:%S")))


def nothing_changed(study: Study, codebooks: Mapping, resource) -> tuple[bool, int]:
    """Whether every step of the last successful run would be up to date, judged from the records alone.

    The check every step makes (:func:`up_to_date`), made for all of them before a run
    without building the definitions (no asset module imported): each step's inputs are
    recomputed from what its record says it read (its modules, its tables, its extra
    inputs). When it cannot tell (no records yet), the run starts and each step decides. The definitions' own code and the
    settings are checked first, so a step added or removed is a change.
    """
    files = [c.path for c in codebooks.values() if getattr(c, "path", None)]
    with _reading(study.db_path) as con:
        if con is None or getattr(resource, "force", False):
            return False, 0
        definitions = read_record(con, DEFINITIONS_RECORD)
        if definitions is None or definitions.changed_inputs(_definitions_inputs(study, files, con)):
            return False, 0
        reading = Reading(con)
        for name in definitions.outputs:
            record = read_record(con, name)
            if record is None or not record.how.get("modules"):
                return False, 0
            how = record.how
            inputs = {"code": code_version(tuple(how["modules"]), tuple(report_sources()) if how["reports"] else ()),
                      "settings": settings_version(study, files)}
            if how.get("extra"):
                module, _, function = how["extra"].partition(":")
                extra = getattr(importlib.import_module(module), function, None) if "<" not in function else None
                if extra is None:
                    return False, 0
                inputs |= dict(extra(study, resource))
            if "partitions" in record.inputs:
                inputs["partitions"] = record.inputs["partitions"]  # the settings decide them
            tables = [k.removeprefix("table ") for k in record.inputs if k.startswith("table ")]
            inputs |= {f"table {t}": v for t, v in reading.versions(tables).items()}
            if record.changed_inputs(inputs) or outputs_now(reading, record) != record.outputs:
                return False, 0
    return True, len(definitions.outputs)

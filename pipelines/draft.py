"""`mapstudy init`: draft a study file and its codebook overrides from a folder of exports.

Reads what each export declares (column names, SPSS/Stata variable and value labels,
encoding, delimiter; `pipelines.headers`) and guesses, for the researcher to confirm:

- the instrument of each file: the base codebook whose columns match its header best;
- its wave: words (alguses/lõpus, pre/post, ...) or the year in the file name;
- sources: one per folder, format, encoding, delimiter and header style; a source whose
  header style is a base codebook source's gets ``columns_like: <that source>``;
- column matches: each column to a codebook variable by the codebook's own column names,
  by name and by label (exact after normalising, then Estonian/Russian spellings folded,
  then fuzzy), each written with its confidence as a comment; unmatched columns are
  listed as comments for the researcher to decide;
- counties and municipalities: from the distinct values of the municipality column (not
  an identifying column), matched to Estonia's municipality names.

Privacy: only headers, labels and value labels are read, plus the distinct values of the
municipality column; no cell value of any other column is read into the draft, and no
value at all is printed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.config import PROJECT_ROOT, Codebook, Source, Variable, load_codebook, load_value_sets
from pipelines.headers import FileHeader, HeaderError, file_format, read_header

REFERENCE = Path(__file__).parent / "reference" / "municipalities_ee.yaml"
GLOSSARY = Path(__file__).parent / "reference" / "glossary_ru_et.yaml"

#: Confidence of each way a column can match a variable.
CONF_SOURCE = 1.0  # a column name the base codebook already uses for some source
CONF_NAME = 0.97  # the variable's own name
CONF_LABEL = 0.95  # the variable's label (et or en), or the file's variable label
CONF_FOLDED = 0.9  # the same after folding Estonian letters, transliterating Cyrillic
MIN_FUZZY = 0.8  # below this similarity a column is left unmatched

PRE_WORDS = ("alguses", "algus", "algul", "pre", "before", "enne", "baseline", "start", "до")
POST_WORDS = ("lopus", "lõpus", "lopp", "lõpp", "post", "after", "parast", "pärast", "followup", "jarel",
              "järel", "после")
MID_WORDS = ("keskel", "vahe", "vahepeal", "mid", "middle", "midline", "середина")
_INSTRUMENT_WORDS = {  # file-name words that hint at a base instrument (a tie-breaker only)
    "pupils": ("opilased", "õpilased", "opilaste", "õpilaste", "kaardistus", "pupils"),
    "pilot": ("piloot", "pilot"),
    "specialists": ("spetsialist", "specialist"),
    "services": ("teenus", "services"),
}

_CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p", "r",
                      "s", "t", "u", "f", "h", "ts", "ch", "sh", "sch", "", "y", "", "e", "ju", "ja"]))
IDENTIFYING_ROLES = ("direct_identifier", "free_text")


@functools.lru_cache(maxsize=65536)
def fold_text(text: str) -> str:
    """Lower case, Cyrillic transliterated, Estonian letters folded, punctuation to spaces."""
    text = " ".join(str(text).split()).casefold()
    text = "".join(_CYRILLIC.get(c, c) for c in text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def normal(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def q(text: object) -> str:
    """A YAML scalar (JSON strings are YAML double-quoted strings)."""
    return json.dumps(str(text), ensure_ascii=False)


@functools.lru_cache(maxsize=1)
def _glossary() -> dict[str, str]:
    """Russian name or label (folded) -> the Estonian label the codebooks use."""
    data = yaml.safe_load(GLOSSARY.read_text(encoding="utf-8")) or {}
    return {fold_text(ru): et for ru, et in data.items()}


# ----------------------------------------------------------------------------- base codebooks


def base_codebooks(codebook_dir: Path = PROJECT_ROOT / "codebooks") -> dict[str, Codebook]:
    value_sets = load_value_sets(codebook_dir / "value_sets.yaml")
    return {p.stem: load_codebook(p, value_sets)
            for p in sorted(codebook_dir.glob("*.yaml")) if p.stem != "value_sets"}


# ----------------------------------------------------------------------------- column matching


@dataclass
class Match:
    column: str
    variable: str
    confidence: float
    how: str
    via_source: str | None = None  # the base source whose column name this is


@dataclass
class _Index:
    """A codebook's spellings, normalised once: source column names, names, labels, fuzzy targets."""

    exact: dict[str, list[tuple[str, float, str, str | None]]]  # normal text -> (variable, conf, how, source)
    folded: dict[str, list[tuple[str, float, str]]]  # folded text -> (variable, conf, how)
    fuzzy: list[tuple[str, str]]  # (folded text, variable)


_INDEXES: dict[int, tuple[Codebook, _Index]] = {}


def _index(cb: Codebook) -> _Index:
    cached = _INDEXES.get(id(cb))
    if cached is not None and cached[0] is cb:
        return cached[1]
    exact: dict[str, list] = defaultdict(list)
    folded: dict[str, list] = defaultdict(list)
    fuzzy: list[tuple[str, str]] = []
    for name, var in cb.variables.items():
        for src in sorted(var.source):
            for col in var.source_columns(src):
                exact[normal(col)].append((name, CONF_SOURCE, f"column name of source {src}", src))
                folded[fold_text(col)].append((name, CONF_FOLDED, f"column name of source {src}, spelling folded"))
                fuzzy.append((fold_text(col), name))
        for target, conf, how in ((name, CONF_NAME, "name"), (name.replace("_", " "), CONF_NAME, "name"),
                                  (var.label.et, CONF_LABEL, "label"), (var.label.en, CONF_LABEL, "label")):
            exact[normal(target)].append((name, conf, how, None))
            folded[fold_text(target)].append((name, CONF_FOLDED, "label, spelling folded"))
            fuzzy.append((fold_text(target), name))
    index = _Index(dict(exact), dict(folded), [(t, n) for t, n in dict.fromkeys(fuzzy) if len(t) >= 4])
    _INDEXES[id(cb)] = (cb, index)
    return index


def _candidates(column: str, label: str | None, cb: Codebook, fuzzy: bool = True) -> list[Match]:
    """The best way each variable could match this column (at most one Match per variable)."""
    index = _index(cb)
    best: dict[str, Match] = {}

    def offer(name: str, conf: float, how: str, via: str | None = None) -> None:
        if name not in best or conf > best[name].confidence:
            best[name] = Match(column, name, conf, how, via)

    texts = [t for t in (column, label) if t]
    translated = [_glossary().get(fold_text(t)) for t in texts]
    for et in filter(None, translated):  # a Russian name or label: its Estonian label
        for name, _conf, how, via in index.exact.get(normal(et), ()):
            if via is None:
                offer(name, CONF_FOLDED, "Russian label translated")
    for text in texts:
        for name, conf, how, via in index.exact.get(normal(text), ()):
            if via is not None and text != column:
                continue  # a label equal to another source's column name says little
            offer(name, conf, how, via)
        for name, conf, how in index.folded.get(fold_text(text), ()) if fold_text(text) else ():
            offer(name, conf, how)
    if not best and fuzzy:
        for text in texts:
            ft = fold_text(text)
            if len(ft) < 4:
                continue
            matcher = difflib.SequenceMatcher(None, autojunk=False)
            matcher.set_seq2(ft)
            codelike = _codelike(ft)
            for target, name in index.fuzzy:
                if codelike or _codelike(target):
                    # codes (G2Q01, mot3) differ by one character from their neighbours: only a
                    # suffix added or dropped (G2Q01 -> G2Q01v2) counts as the same column
                    a, b = ft.replace(" ", ""), target.replace(" ", "")
                    if not (a.startswith(b) or b.startswith(a)):
                        continue
                matcher.set_seq1(target)
                if matcher.real_quick_ratio() < MIN_FUZZY or matcher.quick_ratio() < MIN_FUZZY:
                    continue
                ratio = matcher.ratio()
                if ratio >= MIN_FUZZY:
                    offer(name, round(ratio * CONF_FOLDED, 2), "similar spelling")
    return list(best.values())


def _codelike(folded: str) -> bool:
    """A short name with digits and no spaces: a questionnaire code rather than words."""
    return len(folded) <= 12 and " " not in folded and any(c.isdigit() for c in folded)


def match_columns(header: FileHeader, cb: Codebook, fuzzy: bool = True) -> tuple[list[Match], list[str]]:
    """(matches, unmatched columns): each column and each variable used at most once."""
    candidates = [m for c in header.columns if c for m in _candidates(c, header.labels.get(c), cb, fuzzy)]
    candidates.sort(key=lambda m: (-m.confidence, header.columns.index(m.column), m.variable))
    used_cols: set[str] = set()
    used_vars: set[str] = set()
    matches = []
    for m in candidates:
        if m.column in used_cols or m.variable in used_vars:
            continue
        matches.append(m)
        used_cols.add(m.column)
        used_vars.add(m.variable)
    unmatched = [c for c in header.columns if c and c not in used_cols]
    return sorted(matches, key=lambda m: header.columns.index(m.column)), unmatched


def _instrument_score(path: Path, header: FileHeader, cb: Codebook) -> tuple[float, float, int]:
    matches, _ = match_columns(header, cb, fuzzy=False)
    strong = sum(m.confidence for m in matches)
    coverage = len(matches) / max(len(cb.variables), 1)
    hint = int(any(w in fold_text(path.stem) for w in _INSTRUMENT_WORDS.get(cb.instrument, ())))
    return strong, coverage, hint


def guess_instrument(path: Path, header: FileHeader, books: dict[str, Codebook]) -> tuple[str | None, float]:
    """(instrument, share of the file's columns matched) of the best-matching base codebook."""
    scored = sorted(((_instrument_score(path, header, cb), name) for name, cb in books.items()), reverse=True)
    if not scored:
        return None, 0.0
    (strong, _cov, _hint), name = scored[0]
    share = strong / max(len([c for c in header.columns if c]), 1)
    if strong < 3:
        return None, share
    return name, share


# ----------------------------------------------------------------------------- waves


def guess_wave(path: Path, waves: list[str], years: list[int]) -> tuple[str | None, str]:
    """(wave, how) from the file name: pre/post words, else the year's rank among the instrument's years."""
    if not waves:
        return None, ""
    words = fold_text(path.stem).split()
    stem = fold_text(path.stem)
    if any(fold_text(w) in words or stem.endswith(fold_text(w)) for w in PRE_WORDS):
        return waves[0], "the file name says the start"
    if any(fold_text(w) in words or stem.endswith(fold_text(w)) for w in POST_WORDS):
        return waves[-1], "the file name says the end"
    if any(fold_text(w) in words for w in MID_WORDS):
        if len(waves) >= 3:
            return waves[len(waves) // 2], "the file name says the middle"
        return None, (f"the file name says a middle wave: list the waves in order in the study file, "
                      f"e.g. waves: {{<instrument>: [{waves[0]}, mid, {waves[-1]}]}}")
    year = file_year(path)
    if year is not None and year in years:
        rank = sorted(set(years)).index(year)
        if rank < len(waves):
            return waves[rank], f"year {year} is the instrument's year number {rank + 1}"
    return None, ""


def file_year(path: Path) -> int | None:
    found = re.findall(r"(?<!\d)(19\d\d|20\d\d)(?!\d)", path.stem)
    return int(found[-1]) if found else None


# ----------------------------------------------------------------------------- municipalities


def _municipality_reference() -> dict[str, str]:
    """Official municipality name -> county name."""
    data = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    return {m: county for county, names in data.items() for m in names}


_SUFFIXES = [(r"\blinnavalitsus\b", "linn"), (r"\blv\b", "linn"), (r"\bvallavalitsus\b", "vald"),
             (r"\bvv\b", "vald"), (r"\bgorod\b", "linn"), (r"\bvolost\b", "vald"), (r"\bmaakond\b", "")]


_PLACE_CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэ",
                           ["a", "b", "v", "g", "d", "e", "jo", "z", "s", "i", "j", "k", "l", "m", "n", "o", "p",
                            "r", "s", "t", "u", "f", "h", "ts", "ts", "s", "s", "", "o", "", "e"]))
_VOWELS = set("аеёиоуыэюяaeiou")


def _place_from_cyrillic(text: str) -> str:
    """An Estonian place name written in Russian, back in Latin letters (Люганузе -> luganuse).

    Russian renders õ as ы, ä as я, ü as ю and s between vowels as з; я and ю start with j
    at the start of a word or after a vowel (Ярве -> jarve).
    """
    out = []
    low = text.casefold()
    for i, c in enumerate(low):
        prev = low[i - 1] if i else " "
        if c in "яю":
            start = not prev.isalpha() or prev in _VOWELS
            out.append(("j" if start else "") + ("a" if c == "я" else "u"))
        else:
            out.append(_PLACE_CYRILLIC.get(c, c))
    return "".join(out)


def _municipality_key(text: str) -> str:
    key = fold_text(_place_from_cyrillic(text))
    for pattern, repl in _SUFFIXES:
        key = re.sub(pattern, repl, key)
    return " ".join(key.split())


def match_municipality(spelling: str, reference: dict[str, str]) -> tuple[str | None, str]:
    """(official name, how) for one spelling; (None, reason) when absent or ambiguous."""
    key = _municipality_key(spelling)
    if not key:
        return None, "empty"
    by_key = {_municipality_key(m): m for m in reference}
    if key in by_key:
        return by_key[key], "exact"
    stems = [m for m in reference if _municipality_key(m).rsplit(" ", 1)[0] == key
             or _municipality_key(m) == key + " linn" or _municipality_key(m) == key + " vald"]
    if len(stems) == 1:
        return stems[0], "without vald/linn"
    if len(stems) > 1:
        return None, "ambiguous: " + " or ".join(sorted(stems))
    close = difflib.get_close_matches(key, list(by_key), n=2, cutoff=0.85)
    if len(close) == 1:
        return by_key[close[0]], "similar spelling"
    return None, "no Estonian municipality of that name"


# ----------------------------------------------------------------------------- the draft


@dataclass
class DraftFile:
    path: Path  # absolute
    rel: str  # relative to the raw folder, with /
    header: FileHeader | None
    problem: str | None = None
    instrument: str | None = None
    share: float = 0.0
    matches: list[Match] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    like: str | None = None
    source: str | None = None
    wave: str | None = None
    wave_how: str = ""
    county: str | None = None


@dataclass
class Draft:
    study_file: Path
    codebook_files: list[Path]
    todo: list[str]


def _slug(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", fold_text(text))).strip("_") or "x"


def _relative_to_project(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path.resolve())


def scan(raw: Path) -> list[DraftFile]:
    files = []
    for path in sorted(p for p in raw.rglob("*") if p.is_file() and file_format(p)
                       and not p.name.startswith("~$")  # an office lock file
                       and not any(part.startswith(".") for part in p.relative_to(raw).parts)):
        rel = path.relative_to(raw).as_posix()
        try:
            files.append(DraftFile(path, rel, read_header(path)))
        except HeaderError as exc:
            files.append(DraftFile(path, rel, None, problem=str(exc)))
    return files


def _like_source(f: DraftFile) -> str | None:
    """The base source whose column names the file uses for (nearly) all its matches."""
    votes = Counter(m.via_source for m in f.matches if m.via_source)
    if not votes:
        return None
    src, n = votes.most_common(1)[0]
    return src if n >= 0.8 * len(f.matches) else None


def _assign_sources(files: list[DraftFile]) -> dict[str, dict]:
    """Group files into sources (folder, format, encoding, delimiter, header style); name them."""
    groups: dict[tuple, list[DraftFile]] = defaultdict(list)
    for f in files:
        if f.header is None or f.instrument is None:
            continue
        f.like = _like_source(f)
        folder = f.rel.split("/")[0] if "/" in f.rel else "files"
        key = (folder, f.header.format, f.header.encoding if f.header.format == "csv" else None,
               f.header.delimiter, f.like)
        groups[key].append(f)
    sources: dict[str, dict] = {}
    for (folder, fmt, encoding, delimiter, like), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        name = like if like and _slug(folder) + "_" + fmt == like else f"{_slug(folder)}_{fmt}"
        base, n = name, 2
        while name in sources:
            name, n = f"{base}_{n}", n + 1
        body: dict = {"format": fmt}
        if fmt == "csv":
            body["encoding"] = encoding
            body["delimiter"] = delimiter
        if like and like != name:
            body["columns_like"] = like
        sources[name] = body
        for f in members:
            f.source = name
    return sources


def _municipality_values(f: DraftFile, cb: Codebook, source_body: dict) -> Counter:
    """Rows per distinct spelling of the municipality column (a non-identifying column only)."""
    from pipelines.ingest.readers import read_raw

    names = [n for n, v in cb.variables.items() if v.type == "municipality" and v.role not in IDENTIFYING_ROLES]
    column = next((m.column for m in f.matches if m.variable in names and m.confidence >= CONF_FOLDED), None)
    if column is None:
        return Counter()
    src = Source(**{k: v for k, v in source_body.items() if k != "columns_like"})
    try:
        frame = read_raw(f.path, src).frame
    except Exception:
        return Counter()
    if column not in frame.columns:
        return Counter()
    series = frame[column]
    labels = (f.header.value_labels.get(column) or {}) if f.header else {}
    counts: Counter = Counter()
    for value, n in series.value_counts(dropna=True).items():
        text = labels.get(value, labels.get(_number(value), value)) if labels else value
        text = " ".join(str(text).split())
        if text:
            counts[text] += int(n)
    return counts


def _number(value: object) -> object:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def draft_study(raw: Path, name: str, studies_dir: Path = PROJECT_ROOT / "studies",
                codebook_dir: Path = PROJECT_ROOT / "codebooks", force: bool = False) -> Draft:
    """Write <studies_dir>/<name>.yaml and <studies_dir>/<name>/codebooks/*.yaml; return what was written."""
    raw = raw.expanduser().resolve()
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: not a folder")
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise ValueError(f"study name '{name}': use lower-case letters, digits, '-' and '_' only")
    study_file = studies_dir / f"{name}.yaml"
    cb_dir = studies_dir / name / "codebooks"
    if not force and (study_file.exists() or cb_dir.exists()):
        raise FileExistsError(f"{study_file} or {cb_dir} exists: choose another name or pass --force")
    books = base_codebooks(codebook_dir)
    files = scan(raw)
    todo: list[str] = []
    for f in files:
        if f.header is None:
            todo.append(f"{f.rel}: {f.problem}")
            continue
        f.instrument, f.share = guess_instrument(f.path, f.header, books)
        if f.instrument is None:
            todo.append(f"{f.rel}: no codebook matches its columns; add the file under inputs by hand")
            continue
        f.matches, f.unmatched = match_columns(f.header, books[f.instrument])
    sources = _assign_sources(files)

    # waves
    years: dict[str, list[int]] = defaultdict(list)
    for f in files:
        if f.instrument and file_year(f.path) is not None:
            years[f.instrument].append(file_year(f.path))
    for f in files:
        if f.instrument:
            f.wave, f.wave_how = guess_wave(f.path, books[f.instrument].waves, years[f.instrument])

    # municipalities
    reference = _municipality_reference()
    rows_by_file: dict[str, Counter] = {}
    spellings: dict[str, set[str]] = defaultdict(set)
    undecided: dict[str, str] = {}
    for f in files:
        if not f.instrument or f.source is None:
            continue
        counts = _municipality_values(f, books[f.instrument], sources[f.source])
        decided = {spelling: match_municipality(spelling, reference) for spelling in counts}
        unknown = {normal(s): how for s, (official, how) in decided.items() if official is None}
        if len(unknown) > 10 or len(unknown) > len(decided) / 2:
            # not a column of municipality names (a wrong match could hold addresses): write none of it
            column = next(m.column for m in f.matches if books[f.instrument].variables[m.variable].type == "municipality")
            todo.append(f"{f.rel}: column {q(column)} was matched to the municipality but most of its values are "
                        "not municipality names: check the match, and list the counties by hand")
            continue
        undecided.update(unknown)
        per_official: Counter = Counter()
        for spelling, n in counts.items():
            official = decided[spelling][0]
            if official is None:
                continue
            per_official[official] += n
            if _ingest_key(spelling) != _ingest_key(official):  # the ingest would not find it: an alias
                spellings[official].add(normal(spelling))
        rows_by_file[f.rel] = per_official
    counties_in: set[str] = set()
    for counts in rows_by_file.values():
        total = sum(counts.values())
        by_county = Counter()
        for official, n in counts.items():
            by_county[reference[official]] += n
        counties_in |= {c for c, n in by_county.items() if total and n >= 0.05 * total}
    for f in files:
        counts = rows_by_file.get(f.rel)
        if not counts:
            continue
        by_county = Counter()
        for official, n in counts.items():
            by_county[reference[official]] += n
        county, n = by_county.most_common(1)[0]
        if n >= 0.9 * sum(counts.values()) and county in counties_in:
            f.county = county
    outside = sorted({m for counts in rows_by_file.values() for m in counts if reference[m] not in counties_in})

    study_text = _study_text(name, raw, studies_dir, cb_dir, files, sources, books, reference, counties_in,
                             spellings, outside, undecided, todo)
    cb_texts = _codebook_texts(files, books, sources)
    studies_dir.mkdir(parents=True, exist_ok=True)
    cb_dir.mkdir(parents=True, exist_ok=True)
    study_file.write_text(study_text, encoding="utf-8")
    written = []
    for instrument, text in cb_texts.items():
        path = cb_dir / f"{instrument}.yaml"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return Draft(study_file, written, todo)


def _ingest_key(text: str) -> str:
    """How the ingest compares municipality spellings (case, spaces and Estonian letters folded)."""
    from pipelines.ingest.harmonise import fold

    return fold(normal(text))


def _county_key(county: str) -> str:
    return _slug(county.replace(" maakond", ""))


def _study_text(name, raw, studies_dir, cb_dir, files, sources, books, reference, counties_in, spellings,
                outside, undecided, todo) -> str:
    years = sorted({file_year(f.path) for f in files if f.instrument and file_year(f.path)})
    ref_year = years[0] if years else dt.date.today().year
    inside_project = studies_dir.resolve().is_relative_to(PROJECT_ROOT)
    cb_ref = _relative_to_project(cb_dir) if inside_project else str(cb_dir.resolve())
    L = [
        f"# Drafted by `mapstudy init --raw {raw} --study {name}`: a draft to check, not a finished",
        "# study file. Lines marked TODO need your decision; `mapstudy check --study <this file>`",
        "# names everything that would still fail. See README, \"Your own study\".",
        f"study: {name}",
        f"title: {{et: {q(name)}, en: {q(name)}}}   # TODO: the study's title in Estonian and English",
        "demo: false",
        f"reference_date: {ref_year}-09-01   # TODO: ages are computed at this date (guessed: the first school year in the file names)",
        f"raw_dir: {q(_relative_to_project(raw))}",
        f"codebooks: {q(cb_ref)}   # this study's codebook overrides: column matches and your own variables",
        "",
        "secret:",
        "  # The pseudonymisation key, first match wins. Make it once with",
        f"  #   mapstudy key new --out ~/.config/mapstudy/{name}.key",
        "  # and keep it outside the repository (README, \"The pseudonymisation key\").",
        f"  env: MAPSTUDY_KEY_{name.upper().replace('-', '_')}",
        f"  file: ~/.config/mapstudy/{name}.key",
        "",
        "counties:",
    ]
    by_county: dict[str, list[str]] = defaultdict(list)
    for m, c in reference.items():
        by_county[c].append(m)
    if not counties_in:
        L.append("  {}   # TODO: no municipality column was recognised; list your counties and municipalities")
    for county in sorted(counties_in):
        L += [f"  {_county_key(county)}:", f"    name: {q(county)}",
              "    project: \"TODO\"   # TODO: the county's project name", "    municipalities:"]
        for m in sorted(by_county[county]):
            aliases = sorted(spellings.get(m, ()))
            alias = f", aliases: [{', '.join(q(a) for a in aliases)}]" if aliases else ""
            L.append(f"      - {{name: {q(m)}{alias}}}")
    if outside:
        L.append("# Municipalities in the exports outside these counties (rows naming them are rejected")
        L.append("# unless you add their county above):")
        L += [f"#   {m} ({reference[m]})" for m in outside]
    if undecided:
        L.append("# TODO: municipality spellings not matched to a municipality (rows with them are rejected")
        L.append("# unless you add them as aliases above):")
        L += [f"#   {q(s)}: {how}" for s, how in sorted(undecided.items())]
    L += ["", "# How each source writes its files (detected from the files; check them).", "sources:"]
    for src, body in sources.items():
        members = [f.rel for f in files if f.source == src]
        parts = ", ".join(f"{k}: {q(v) if k in ('encoding', 'delimiter') else v}" for k, v in body.items())
        note = f"   # {len(members)} file(s)"
        if "columns_like" in body:
            note += f"; column names as the base codebooks' source {body['columns_like']}"
        L.append(f"  {src}: {{{parts}}}{note}")
    L += ["", "inputs:"]
    for f in files:
        if f.header is None or f.instrument is None:
            L.append(f"  # TODO: {f.rel}: " + (f.problem or "no codebook matches its columns"))
            continue
        cb = books[f.instrument]
        item = [f"instrument: {f.instrument}"]
        note = [f"instrument guessed: {round(f.share * 100)}% of its columns match codebook {f.instrument}"]
        if cb.waves:
            if f.wave is None:
                item.append(f"wave: {cb.waves[0]}")
                note.append(f"TODO: which wave? ({', '.join(cb.waves)}) "
                            + (f.wave_how or "nothing in the file name says"))
            else:
                item.append(f"wave: {f.wave}")
                note.append(f"wave: {f.wave_how}")
        if f.county:
            item.append(f"county: {_county_key(f.county)}")
        item += [f"source: {f.source}", f"path: {q(f.rel)}"]
        L.append(f"  - {{{', '.join(item)}}}   # {'; '.join(note)}")
    if todo:
        L += ["", "# TODO, left to decide:"] + [f"#   {t}" for t in todo]
    L += ["", "# The analysis plan: which analyses run on which columns (models, flags, scales,",
          "# personas, evaluation). Copy the plan section of studies/demo.yaml and adapt it; see",
          "# README, \"Your own study\". An empty plan ingests and describes the data only.",
          "plan: {}", ""]
    return "\n".join(L)


def _codebook_texts(files: list[DraftFile], books: dict[str, Codebook], sources: dict[str, dict]) -> dict[str, str]:
    """One override file per instrument: the column matches the base codebook lacks, and what is left."""
    out = {}
    for instrument in sorted({f.instrument for f in files if f.instrument}):
        cb = books[instrument]
        mine = [f for f in files if f.instrument == instrument and f.source]
        hits_by: dict[str, dict[str, list[tuple[str, Match, bool]]]] = defaultdict(lambda: defaultdict(list))
        known_counts = []
        for f in mine:
            like = sources[f.source].get("columns_like") or f.source
            known_here = 0
            for m in f.matches:
                known = normal(m.column) in {normal(c) for c in cb.variables[m.variable].source_columns(like)}
                known_here += known
                hits_by[m.variable][f.source].append((m.column, m, known))
            if known_here:
                known_counts.append(f"#   {f.rel}: {known_here} column(s) as the base codebook names them for "
                                    f"source {like} (confidence 1.00)")
        # a variable is written when some file of a source has a column the base does not name; then
        # every column of that source's files is listed, since the study's own names replace the base's
        entries = {var: {src: hits for src, hits in by_src.items() if not all(h[2] for h in hits)}
                   for var, by_src in hits_by.items()}
        entries = {var: by_src for var, by_src in entries.items() if by_src}
        L = [f"# Codebook overrides for '{instrument}', drafted by `mapstudy init`. The base is",
             f"# codebooks/{instrument}.yaml; a variable here is merged into the base one field by field",
             "# (`source:` column by column). Add your own variables, `remove: true` a base one, or",
             "# override waves, defaults or value sets (value_sets.yaml here). See README, \"Your own study\".",
             *(["# Columns matched through the base codebook's own column names (not repeated here):"]
               + known_counts if known_counts else []),
             "variables:" + ("" if entries else " {}")]
        for var in [v for v in cb.variables if v in entries]:
            L += [f"  {var}:", "    source:"]
            for src, hits in entries[var].items():
                cols = list(dict.fromkeys(h[0] for h in hits))
                conf = min(h[1].confidence for h in hits)
                hows = sorted({h[1].how for h in hits})
                value = q(cols[0]) if len(cols) == 1 else "[" + ", ".join(q(c) for c in cols) + "]"
                flag = "" if conf >= CONF_FOLDED else "  TODO: check"
                L.append(f"      {src}: {value}   # confidence {conf:.2f} ({'; '.join(hows)}){flag}")
        value_notes = _value_label_notes(mine, cb)
        if value_notes:
            L += ["", "# TODO: value labels in the files that no code of the variable's value set spells",
                  "# (add them as aliases in a value_sets.yaml here, or map them by hand):"] + value_notes
        unmatched = [(f.rel, c) for f in mine for c in f.unmatched]
        if unmatched:
            L += ["", "# TODO: columns no variable matched. Decide for each: map it above (source: {<source>:",
                  "# <column>}), add a new variable for it, or leave it unread (the ingest ignores it):"]
            L += [f"#   {rel}: {q(col)}" for rel, col in unmatched]
        missing = _unsourced(mine, cb, sources)
        if missing:
            L += ["", "# Variables of the base codebook with no column in any of these files (missing for",
                  "# every row; `mapstudy check` lists them per file):"]
            L += [f"#   {line}" for line in _wrap(missing)]
        out[instrument] = "\n".join(L) + "\n"
    return out


def _unsourced(files: list[DraftFile], cb: Codebook, sources: dict[str, dict]) -> list[str]:
    matched = {m.variable for f in files for m in f.matches}
    return [n for n in cb.variables if n not in matched]


def _wrap(names: list[str], width: int = 84) -> list[str]:
    lines, line = [], ""
    for n in names:
        if line and len(line) + len(n) + 2 > width:
            lines.append(line.rstrip(", ") + ",")
            line = ""
        line += n + ", "
    if line:
        lines.append(line.rstrip(", "))
    return lines


def _value_label_notes(files: list[DraftFile], cb: Codebook) -> list[str]:
    from pipelines.ingest.harmonise import value_set_lookup

    notes = []
    for f in files:
        for m in f.matches:
            var: Variable = cb.variables[m.variable]
            labels = f.header.value_labels.get(m.column) if f.header else None
            if not labels or var.type != "categorical" or var.role in IDENTIFYING_ROLES or not var.values:
                continue
            lookup = value_set_lookup(cb, var)
            missing = {normal(c) for c in cb.missing_codes(m.variable) if isinstance(c, str)}
            bad = sorted({str(lab) for lab in labels.values()
                          if lookup(str(lab)) is None and normal(str(lab)) not in missing})
            if bad:
                notes.append(f"#   {f.rel}: {q(m.column)} ({m.variable}, value set {var.values}): "
                             + ", ".join(q(b) for b in bad))
    return notes

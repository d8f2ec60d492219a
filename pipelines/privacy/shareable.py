"""Shareable microdata: the anon tables made k-anonymous for researchers outside the team.

The anon tables still hold every quasi-identifier at full detail (school, municipality,
grade, sex, language, age, birth year). Before a table goes into the `share` schema it is
protected the way sdcMicro's workflow does it (Templ, Kowarik & Meindl 2015), with the
measures of pipelines/privacy/disclosure.py:

1. **Global recoding**, per the study's ``privacy.share_recoding``: grades into the
   Estonian school stages, ages into school-age bands, municipalities with fewer than
   ``privacy.small_municipality`` records into their county, dates of events (the pilot's
   assessment date) to their month, the school pseudonym and the birth year dropped
   (defaults; see pipelines/config.py). Free text, the identity
   match and the source file name are never shared.
2. **Local suppression** (sdcMicro's ``localSuppression`` heuristic) until every record
   shares its key with at least ``privacy.k_anonymity - 1`` others. Suppressing a
   municipality leaves its county, so suppression generalises rather than erases.
3. **Removal** of the few records that still stand out: with missing values counted as
   their own category (the rule below) fewer than k fully suppressed records cannot
   blend in, so they are left out and counted.

Keys: the codebook's quasi-identifiers (a pseudonymised school as its ``_id`` column),
the birth year and age that replace the birth date, and the county. The wave is a
stratum, not a key to suppress: a pupil appears once per wave, so a class of k records
within one wave is k different pupils (without the wave, one pupil's two waves could
fill a class). Derived columns are recomputed from the protected values, so a derived
copy of a quasi-identifier (``male`` from ``sex``) is suppressed with it.

With ``privacy.keep`` (the keys the researchers need most, e.g. the municipality) step 1 is
followed by a search of the generalisation lattice (pipelines/privacy/lattice.py): each key
may be coarsened further, up to dropped, and the node with the least information loss that
leaves at most ``privacy.max_suppressed_share`` of the records below k is taken, the kept
keys at the study's own recoding where any such node allows; step 2 then gives up the kept
keys last. ``survived`` (in ``meta.disclosure`` as ``survived_share``) says for every key,
with or without ``keep``, the share of records whose released value is the study's recoding
of theirs.

Linked waves: a shareable table keeps its pupil pseudonym so that baseline and follow-up
(or pre and post) still link, and so an attacker sees each pupil's keys in every wave at
once (grade stage 4-6 at baseline and 7-9 at follow-up picks out who was in grade 6).
Where a table has both a wave and a person column, classes are therefore formed on the
person: one row per pupil holding the waves the pupil is in and the key of each wave side
by side (:func:`person_keys`), and local suppression and removal work on those rows. Every
pupil then shares the whole history of keys with at least k - 1 others, which implies k
within every wave. Across shareable tables the pseudonyms differ (the asset re-keys each
table, pipelines/privacy/pseudonyms.py ``release_pseudonym``), so tables cannot be joined
into a longer key than the one measured here.

Missing values in keys use disclosure.py's ``own_category`` rule: a released gap is
visible to an attacker, so it is a value (ARX's semantics); sdcMicro's default
(missing matches anything) would count a record safe by classes that need not exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from analyses.tidy import tidy_frame
from pipelines.config import Codebook, Privacy, Study
from pipelines.ingest.stage import derived_columns
from pipelines.ingest.typing import ID_COLUMN
from pipelines.privacy import disclosure, lattice
from pipelines.privacy.pseudonyms import PseudonymKeys

MISSING_RULE = disclosure.OWN_CATEGORY
MISSING_RULE_REASON = (
    "missing is its own category: a suppressed value is visible in the released file, so an "
    "attacker can use it; sdcMicro's alternative (missing matches any value) can count a record "
    "safe by classes that do not exist"
)
#: Codebook units whose instruments get a shareable table (``share.<instrument>``): records of
#: pupils. Staff surveys and service lists are not released as microdata.
SHARED_UNITS = ("pupil",)
#: Columns of an anon table never shared: data-quality bookkeeping, not analysis.
NOT_SHARED = ("identity_match", "source")
STRATUM = "wave"
#: The person-level key column holding which waves a pupil is in ("baseline+followup").
PRESENCE = "waves_present"
ID_COLUMNS = ["table", "stage", "analysis", "measure", "variable"]


def shared_instruments(codebooks: Mapping[str, Codebook]) -> list[str]:
    """The study's instruments that get a shareable table: those whose records are pupils."""
    return [name for name, codebook in sorted(codebooks.items()) if codebook.unit in SHARED_UNITS]


@dataclass(frozen=True)
class ProtectedTable:
    """One anon table made shareable, with what it took.

    ``table``: the shareable rows (derived columns recomputed); ``recoded``: every anon
    record after global recoding only, on the anon table's index; ``suppressed``: the
    recoded records after local suppression (same index), before removal;
    ``keys_before`` / ``keys_after``: the key columns of the anon and the shareable table
    (the stratum first when there is one); ``sensitive``: sensitive columns measured for
    l-diversity; ``records_removed``: records left out because no suppression reached k;
    ``person``: the pseudonym column whose waves were protected together, if any.
    """

    table: pd.DataFrame
    recoded: pd.DataFrame
    suppressed: pd.DataFrame
    keys_before: list[str]
    keys_after: list[str]
    sensitive: list[str]
    records_removed: int
    person: str | None = None
    #: Per key: share of the records (with a value after the study's recoding) whose released value is it.
    survived: dict[str, float] | None = None
    #: With ``privacy.keep``: the generalisation lattice's choice (pipelines/privacy/lattice.py).
    search: lattice.SearchResult | None = None


def quasi_identifiers(codebook: Codebook, columns: Sequence[str]) -> list[str]:
    """The anon table's key columns (without the stratum), in table order."""
    keys = {"county"}
    for name, var in codebook.variables.items():
        if var.role == "quasi_identifier":
            keys.add(f"{name}_id" if var.transform == "pseudonymise" else name)
        if var.identity == "birth_date":
            keys |= {"birth_year", "age"}
    return [c for c in columns if c in keys]


def sensitive_attributes(codebook: Codebook, columns: Sequence[str]) -> list[str]:
    """The codebook's sensitive variables (derived ones too) present in the table."""
    sensitive = {n for n, v in codebook.variables.items() if v.role == "sensitive"}
    sensitive |= {n for n, d in codebook.derived.items() if d.role == "sensitive"}
    return [c for c in columns if c in sensitive]


def key_columns(codebook: Codebook, columns: Sequence[str]) -> list[str]:
    """The columns classes are formed on: the stratum (wave) first, then the quasi-identifiers."""
    return ([STRATUM] if STRATUM in columns else []) + quasi_identifiers(codebook, columns)


def global_recoding(frame: pd.DataFrame, privacy: Privacy, county_names: Mapping[str, str]) -> pd.DataFrame:
    """The frame with ``privacy.share_recoding`` applied to the columns it has.

    ``county_names`` maps a municipality to the name of its county, the label a small
    municipality takes. A recoded column becomes text bands; a dropped one disappears.
    """
    recoded = frame.copy()
    for column, how in privacy.share_recoding.items():
        if column not in recoded.columns or how == "keep":
            continue
        if how == "drop":
            recoded = recoded.drop(columns=column)
        elif how == "age_bands":
            recoded[column] = disclosure.age_bands(recoded[column])
        elif how == "grade_bands":
            recoded[column] = disclosure.grade_bands(recoded[column])
        elif how == "month":
            recoded[column] = disclosure.year_month(recoded[column])
        elif how == "county_if_small":
            recoded[column] = disclosure.merge_small_municipalities(
                recoded[column], county_names, max(privacy.small_municipality, 1))
    return recoded


def person_column(codebook: Codebook, columns: Sequence[str]) -> str | None:
    """The pseudonym column that links a person's waves, when the table has waves too."""
    person = ID_COLUMN.get(codebook.unit)
    return person if person in columns and STRATUM in columns else None


def person_keys(frame: pd.DataFrame, keys: Sequence[str], person: str) -> pd.DataFrame:
    """One row per person: the waves present, then every key of every wave (``key@wave``).

    A wave the person is not in is missing in its ``key@wave`` columns; the presence column
    tells that apart from a suppressed value.
    """
    suppressible = [c for c in keys if c != STRATUM]
    frame = _linkable(frame, person)
    # Integer positions instead of a (person, wave) index: the same rows, without hashing
    # the pseudonyms once per key and wave.
    person_code, persons = pd.factorize(frame[person])  # first appearance, as .unique()
    waves = sorted(frame[STRATUM].unique())
    wave_code = pd.Index(waves).get_indexer(frame[STRATUM])
    if pd.Series(person_code * len(waves) + wave_code).duplicated().any():
        raise ValueError(f"more than one record per {person} and {STRATUM}: cannot form person-level keys")
    wide = pd.DataFrame(index=pd.Index(persons, name=person))
    pattern = np.zeros(len(wide), dtype=np.int64)  # bit w: the person is in waves[w]
    for bit, wave in enumerate(waves):
        rows = np.flatnonzero(wave_code == bit)
        record = np.full(len(wide), -1, dtype=np.int64)  # the person's record in this wave, -1: none
        record[person_code[rows]] = rows
        pattern[person_code[rows]] |= 1 << bit
        for key in suppressible:
            values = pd.api.extensions.take(frame[key].array, record, allow_fill=True)
            wide[f"{key}@{wave}"] = pd.Series(values, index=wide.index, name=key)
    labels = {p: "+".join(w for bit, w in enumerate(waves) if p >> bit & 1) for p in np.unique(pattern)}
    wide.insert(0, PRESENCE, pd.Series(pattern, dtype=np.int64).map(labels).to_numpy(dtype=object))
    return wide


def _linkable(frame: pd.DataFrame, person: str) -> pd.DataFrame:
    """Person and wave as text; a record without a person id is a person of its own."""
    ids = frame[person].astype("string")
    gaps = np.flatnonzero(ids.isna().to_numpy())
    if gaps.size:
        values = ids.to_numpy(dtype=object, na_value=None)
        values[gaps] = [f"(record {i})" for i in gaps]
        ids = pd.Series(values, index=frame.index, dtype="string")
    return frame.assign(**{person: ids, STRATUM: frame[STRATUM].astype("string").fillna("(missing)")})


def _wide_columns(wide: pd.DataFrame) -> list[str]:
    return [c for c in wide.columns if c != PRESENCE]


def _local_suppression(frame: pd.DataFrame, keys: list[str], k: int, persons: pd.Series | None,
                       importance: Sequence[str] | None = None) -> pd.DataFrame:
    """Local suppression to k: per person across waves when ``persons`` is given, else per wave.

    ``importance``: the keys from kept longest to given up first (None: sdcMicro's default).
    """
    if frame.empty:
        return frame.copy()
    if persons is not None:
        return _linked_local_suppression(frame, keys, k, persons, importance)
    if STRATUM not in frame.columns:
        return disclosure.local_suppression(frame, keys, k=k, importance=importance, missing=MISSING_RULE).frame
    parts = [disclosure.local_suppression(part, keys, k=k, importance=importance, missing=MISSING_RULE).frame
             for _, part in frame.groupby(STRATUM, sort=True, dropna=False)]
    return pd.concat(parts).loc[frame.index]


def _linked_local_suppression(frame: pd.DataFrame, keys: list[str], k: int, persons: pd.Series,
                              importance: Sequence[str] | None = None) -> pd.DataFrame:
    """Suppress on person-level keys (grouped by the waves present), then write back per record."""
    person = persons.name
    linked = _linkable(frame.assign(**{person: persons}), person)
    wide = person_keys(linked, [STRATUM, *keys], person)
    columns = _wide_columns(wide)
    order = None
    if importance is not None:  # each key's columns of every wave, in the keys' order
        order = [c for key in importance for c in columns if c.rsplit("@", 1)[0] == key]
    parts = [disclosure.local_suppression(part, columns, k=k, importance=order, missing=MISSING_RULE).frame
             for _, part in wide.groupby(PRESENCE, sort=True)]
    wide = pd.concat(parts)
    result = frame.copy()
    waves = linked[STRATUM]
    for wave in waves.unique():
        rows = (waves == wave).to_numpy()
        at = wide.index.get_indexer(linked.loc[rows, person])  # every person is in wide
        for key in keys:
            result.loc[rows, key] = wide[f"{key}@{wave}"].to_numpy()[at]
    return result


def _person_fk(frame: pd.DataFrame, keys: Sequence[str], person: str) -> pd.Series:
    """Per record: how many persons share its person's whole key history."""
    wide = person_keys(frame, keys, person)
    fk = disclosure.key_frequencies(wide, [PRESENCE, *_wide_columns(wide)], missing=MISSING_RULE)["fk"]
    persons = _linkable(frame, person)[person]
    return pd.Series(fk.to_numpy(dtype=float), index=wide.index).reindex(persons).set_axis(frame.index)


def record_fk(frame: pd.DataFrame, keys: Sequence[str], person: str | None = None) -> np.ndarray:
    """Class size per record: of its key within the wave, or of its person's history."""
    if person is not None:
        return _person_fk(frame, keys, person).to_numpy(dtype=float)
    return disclosure.key_frequencies(frame, keys, missing=MISSING_RULE)["fk"].to_numpy(dtype=float)


def records_below_k(frame: pd.DataFrame, keys: Sequence[str], k: int, person: str | None = None) -> int:
    """How many records share their key (see :func:`key_columns`) with fewer than k - 1 others.

    With ``person``, a record's class is its person's key history (:func:`person_keys`).
    """
    if frame.empty:
        return 0
    return int((record_fk(frame, keys, person) < k).sum())


def _recompute_derived(frame: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Derived columns from the protected values, by the same SQL the warehouse uses."""
    query = "SELECT * FROM _shareable"
    for column, (sql_type, expr) in derived_columns(codebook).items():
        query = f'SELECT *, CAST(({expr}) AS {sql_type}) AS "{column}" FROM ({query})'
    with duckdb.connect(config={"threads": 1}) as con:
        con.register("_shareable", frame)
        return con.execute(query).df()


def protect(anon: pd.DataFrame, codebook: Codebook, study: Study) -> ProtectedTable:
    """Global recoding, local suppression to k and removal of what still stands out."""
    k = study.privacy.k_anonymity
    base = anon.drop(columns=[c for c in anon.columns if c in codebook.derived])
    keys_before = key_columns(codebook, base.columns)
    county_names = {m: study.counties[c].name for m, c in study.municipality_county().items()}
    free_text = [n for n, v in codebook.variables.items() if v.role == "free_text"]
    recoded = global_recoding(base.drop(columns=[c for c in (*NOT_SHARED, *free_text) if c in base.columns]),
                              study.privacy, county_names)
    keys_after = key_columns(codebook, recoded.columns)
    suppressible = [c for c in keys_after if c != STRATUM]
    if not suppressible:
        raise ValueError("the shareable table has no quasi-identifier left: check privacy.share_recoding")
    recoded[suppressible] = recoded[suppressible].convert_dtypes()  # nullable, so a value can be suppressed
    floor = recoded[suppressible].copy()  # the study's own recoding: what "survived" is measured against
    person = person_column(codebook, recoded.columns)
    persons = recoded[person] if person else None
    importance, found = None, None
    kept = [c for c in study.privacy.keep if c in suppressible]
    if study.privacy.keep:
        found = _lattice_search(base, recoded, suppressible, kept, study, county_names, person)
        recoded[suppressible] = found.frame[suppressible].convert_dtypes()
        cardinality = {c: recoded[c].nunique(dropna=True) for c in suppressible}
        # kept keys are suppressed last; the others as sdcMicro orders them (more categories: given up first)
        importance = kept + sorted((c for c in suppressible if c not in kept), key=lambda c: cardinality[c])
    suppressed = recoded.copy()
    suppressed[suppressible] = _local_suppression(recoded[keys_after], suppressible, k, persons,
                                                  importance)[suppressible]
    keep = np.ones(len(suppressed), dtype=bool)
    if len(suppressed):
        keep = record_fk(suppressed, keys_after, person) >= k
    table = _recompute_derived(suppressed[keep].reset_index(drop=True), codebook)
    survived = {}
    for column in suppressible:
        had = floor[column].notna().to_numpy()
        same = (suppressed[column].astype("string") == floor[column].astype("string")).fillna(False).to_numpy(bool)
        survived[column] = float((same & keep & had).sum() / had.sum()) if had.sum() else float("nan")
    return ProtectedTable(
        table=table, recoded=recoded, suppressed=suppressed, keys_before=keys_before, keys_after=keys_after,
        sensitive=sensitive_attributes(codebook, anon.columns), records_removed=int((~keep).sum()), person=person,
        survived=survived, search=found,
    )


def _lattice_search(base: pd.DataFrame, recoded: pd.DataFrame, keys: list[str], kept: list[str], study: Study,
                    county_names: Mapping[str, str], person: str | None) -> lattice.SearchResult:
    """The generalisation lattice over ``keys`` (pipelines/privacy/lattice.py), from the study's recoding up."""
    privacy = study.privacy
    hierarchies, start = {}, recoded[keys].copy()
    for key in keys:
        method = privacy.share_recoding.get(key, "keep")
        if method in lattice.HIERARCHIES and method != "keep":
            hierarchies[key] = lattice.HIERARCHIES[method]
            start[key] = base[key]  # the levels recode the anon values
        else:
            hierarchies[key] = lattice.HIERARCHIES["keep"]
    frame = start.assign(**{c: recoded[c] for c in (person, STRATUM) if c and c in recoded.columns})
    return lattice.search(frame, keys, hierarchies, kept, privacy.k_anonymity, privacy.max_suppressed_share,
                          person=person, stratum=STRATUM if STRATUM in recoded.columns else None,
                          county_names=county_names, small_municipality=privacy.small_municipality)


def shareable_below_k(table: pd.DataFrame, codebook: Codebook, k: int) -> int:
    """Records below k in a shareable table: per wave, and per pupil over linked waves."""
    keys = key_columns(codebook, table.columns)
    person = person_column(codebook, table.columns)
    return max(records_below_k(table, keys, k), records_below_k(table, keys, k, person) if person else 0)


def pseudonym_columns(codebook: Codebook, columns: Sequence[str]) -> list[str]:
    """Columns holding pseudonyms: the unit's id and every pseudonymised variable."""
    names = {*ID_COLUMN.values()} | {f"{n}_id" for n, v in codebook.variables.items() if v.transform == "pseudonymise"}
    return [c for c in columns if c in names]


def release_ids(table: pd.DataFrame, codebook: Codebook, keys: PseudonymKeys, release: str) -> pd.DataFrame:
    """``table`` with every pseudonym replaced by the release's own (see ``release_pseudonym``)."""
    released = table.copy()
    for column in pseudonym_columns(codebook, table.columns):
        distinct = released[column].dropna().unique()
        mapping = {p: keys.release_pseudonym(release, p) for p in distinct}
        released[column] = released[column].map(mapping)
    return released


def _labelled(frame: pd.DataFrame, table: str, stage: str) -> pd.DataFrame:
    labelled = frame.copy()
    labelled.insert(0, "stage", stage)
    labelled.insert(0, "table", table)
    return labelled


def _settings_rows(table: str, protected: ProtectedTable, privacy: Privacy, n: int) -> pd.DataFrame:
    rows = [
        {"measure": "k_threshold", "estimate": privacy.k_anonymity, "method": "k-anonymity: every record has fk >= k"},
        {"measure": "l_threshold", "estimate": privacy.l_diversity, "method": "distinct l-diversity threshold"},
        {"measure": "missing_rule", "method": MISSING_RULE_REASON},
        {"measure": "stratum", "variable": STRATUM,
         "method": "classes are formed within a wave: a pupil appears once per wave"},
        {"measure": "records_removed", "estimate": protected.records_removed,
         "method": "records still below k after local suppression, left out of the shareable table"},
    ]
    if protected.person:
        rows.append({"measure": "linked_by", "variable": protected.person,
                     "method": "classes formed per person over all waves (the waves present and each wave's key); "
                               "k within each wave follows; stages before_linked/after_linked count persons"})
    rows += [{"measure": "key_before", "variable": c, "method": "quasi-identifier of the anon table"}
             for c in protected.keys_before]
    rows += [{"measure": "key_after", "variable": c, "method": "quasi-identifier of the shareable table"}
             for c in protected.keys_after]
    rows += [{"measure": "sensitive", "variable": c, "method": "sensitive attribute measured for l-diversity"}
             for c in protected.sensitive]
    rows += [{"measure": "recoding", "variable": c, "method": f"global recoding: {how}"}
             for c, how in privacy.share_recoding.items()
             if c in protected.keys_before or c in protected.recoded.columns]
    rows += [{"measure": "survived_share", "variable": c, "estimate": share,
              "method": "records whose released value is the one the study's recoding gives (not suppressed, "
                        "not coarsened further, not left out)" + ("; kept by request" if c in privacy.keep else "")}
             for c, share in (protected.survived or {}).items()]
    rows += [{"measure": "keep", "variable": c,
              "method": "kept by request: coarsened and suppressed last" if c in protected.keys_after
              else "named in privacy.keep but not a quasi-identifier of this table: nothing to keep"}
             for c in privacy.keep]
    found = protected.search
    if found is not None:
        rows.append({"measure": "lattice", "estimate": found.loss,
                     "method": f"generalisation lattice: {found.nodes} nodes, {found.feasible} within the "
                               f"suppression limit {privacy.max_suppressed_share:g}; chosen node's loss (mean "
                               "entropy loss per key + share below k); "
                               + ("no node kept the kept variables at their first level: they were coarsened too"
                                  if found.kept_relaxed else "kept variables at their first level")})
        rows.append({"measure": "lattice_below_k", "estimate": found.below_k,
                     "method": "records below k at the chosen node, left to local suppression (kept variables last)"})
        rows += [{"measure": "generalisation", "variable": c, "method": f"lattice level: {level}"}
                 for c, level in found.levels.items()]
        rows += [{"measure": "information_loss", "variable": c, "estimate": loss,
                  "method": "1 - entropy at the chosen level / entropy at the study's recoding"}
                 for c, loss in found.variable_loss.items()]
    for row in rows:
        row.update({"table": table, "stage": "settings", "analysis": "disclosure_control", "n": n,
                    "correction": disclosure._RULE_LABEL[MISSING_RULE]})
        row.setdefault("variable", "")
    return tidy_frame(rows, id_columns=ID_COLUMNS, extra_columns=["threshold"])


def _risk(frame: pd.DataFrame, keys: list[str], sensitive: list[str], privacy: Privacy) -> pd.DataFrame:
    risks = disclosure.record_risk(frame, keys, sensitive=[s for s in sensitive if s in frame.columns],
                                   missing=MISSING_RULE)
    return disclosure.risk_summary(risks, k=privacy.k_anonymity, l=privacy.l_diversity, missing=MISSING_RULE)


def _linked_risk(frame: pd.DataFrame, keys: list[str], person: str, privacy: Privacy) -> pd.DataFrame:
    """Risk of the person-level keys: one record per person, over every wave."""
    wide = person_keys(frame, keys, person)
    return _risk(wide, [PRESENCE, *_wide_columns(wide)], [], privacy)


def disclosure_report(name: str, anon: pd.DataFrame, protected: ProtectedTable, privacy: Privacy) -> pd.DataFrame:
    """The ``meta.disclosure`` rows of one table: settings, risk before and after, loss.

    Columns: table, stage (settings, before = the anon table, global_recoding and
    local_suppression = the information each step lost, after = the shareable table,
    and where waves link, before_linked / after_linked = the same per person over waves),
    analysis, measure, variable, the tidy estimate columns, threshold, method,
    ci_method, correction (the missing-value rule). Risk rows are
    :func:`disclosure.risk_summary`'s; loss rows :func:`disclosure.information_loss`'s.
    Individual risk is unweighted (a census of the pupils in scope): ``rk = 1 / fk``.
    """
    parts = [_settings_rows(f"share.{name}", protected, privacy, len(anon))]
    if len(anon):
        parts.append(_labelled(_risk(anon, protected.keys_before, protected.sensitive, privacy),
                               f"anon.{name}", "before"))
        dropped_as_missing = protected.recoded.reindex(columns=protected.keys_before)
        parts.append(_labelled(disclosure.information_loss(
            anon[protected.keys_before], dropped_as_missing, protected.keys_before, missing=MISSING_RULE),
            f"share.{name}", "global_recoding"))
        parts.append(_labelled(disclosure.information_loss(
            protected.recoded[protected.keys_after], protected.suppressed[protected.keys_after],
            protected.keys_after, missing=MISSING_RULE), f"share.{name}", "local_suppression"))
    if len(protected.table):
        parts.append(_labelled(_risk(protected.table, protected.keys_after, protected.sensitive, privacy),
                               f"share.{name}", "after"))
    if protected.person and len(anon):
        parts.append(_labelled(_linked_risk(anon, protected.keys_before, protected.person, privacy),
                               f"anon.{name}", "before_linked"))
    if protected.person and len(protected.table):
        parts.append(_labelled(_linked_risk(protected.table, protected.keys_after, protected.person, privacy),
                               f"share.{name}", "after_linked"))
    report = pd.concat(parts, ignore_index=True)
    return report[[c for c in parts[0].columns]]

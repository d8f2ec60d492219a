"""The sections of the coordinator reports (``reports/municipality.qmd``, ``reports/county.qmd``).

Every count shown here comes from ``results.published_family`` (the family tables,
protected once for the municipality, county and study reports together); a share is shown
only where every count of its row is published (so it gives nothing back), its interval
from ``results.*``. Tables are :class:`pipelines.render.tables.ReportTable` with count
cells marked ``count`` for the HTML audit. A section is shown only when its results exist.
"""

from __future__ import annotations

import math

import pandas as pd

from pipelines.render.family_tables import BASE, MISSING, TOTAL, family_rows
from pipelines.render.report import Report
from pipelines.render.tables import NOT_AVAILABLE, SUPPRESSED_SHARE, ReportTable, format_number

ALL = "all"


class Coordinator:
    """What both coordinator reports read, bound to one report (language, threshold)."""

    def __init__(self, report: Report, county: str, municipality: str | None = None) -> None:
        self.report = report
        self.lang = report.lang
        self.county = county
        self.municipality = municipality
        # the tables the study database has (one query, not one per table read)
        self.tables = {f"{schema}.{name}" for schema, name in report.con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        self.cells = self._read("results.published_family")
        self.variables = self._read("meta.variables")
        self.places = self._read("meta.municipalities")
        # each variable's label in the report's language (its first row's), looked up per table row
        self.labels: dict[str, object] = {}
        if len(self.variables):
            for name, label in zip(self.variables["variable"], self.variables[f"label_{self.lang}"], strict=True):
                self.labels.setdefault(name, label)

    # reading -----------------------------------------------------------------------------
    def _exists(self, table: str) -> bool:
        return table in self.tables

    def _read(self, table: str) -> pd.DataFrame:
        return self.report.query(f"SELECT * FROM {table}") if self._exists(table) else pd.DataFrame()

    def families(self, prefix: str) -> list[str]:
        if self.cells.empty:
            return []
        return [f for f in dict.fromkeys(self.cells["family"]) if f.startswith(prefix)]

    # labels ------------------------------------------------------------------------------
    def text(self, key: str, **fields) -> str:
        return self.report.text(f"coordinator.{key}", **fields)

    def variable_label(self, name: str) -> str:
        label = self.labels.get(name)
        return label if isinstance(label, str) else name

    def county_name(self, county: str) -> str:
        label = self.report.texts.label("counties", county)
        if label == county and len(self.places):
            hit = self.places.loc[self.places["county"] == county, "county_name"]
            if len(hit):
                return str(hit.iloc[0])
        return label

    def count_share_header(self, first: str, keys) -> tuple[list[str], list[str]]:
        """Header and cell kinds of a table with a count and a share column per place."""
        header, kinds = [self.text(first)], ["text"]
        for key in keys:
            header += [f"{self.place_label(key)}: {self.text('count')}", f"{self.place_label(key)}: {self.text('share')}"]
            kinds += ["count", "share"]
        return header, kinds

    def place_label(self, key: tuple[str, str, str]) -> str:
        level, county, municipality = key
        if level == "study":
            return self.text("whole_study")
        if level == "county":
            return self.county_name(county)
        return municipality

    def number(self, value, decimals: int = 1) -> str:
        if value is None or pd.isna(value) or not math.isfinite(float(value)):
            return NOT_AVAILABLE
        return format_number(float(value), self.lang, decimals)

    def percent(self, value) -> str:
        return NOT_AVAILABLE if value is None or pd.isna(value) else self.number(100 * float(value)) + "%"

    # cells -------------------------------------------------------------------------------
    @staticmethod
    def count_cell(rows: pd.DataFrame, key, column: str) -> str:
        """A published count as the reader sees it: the number, or its mark (<5, x)."""
        if key not in rows.index or column not in rows.columns:
            return NOT_AVAILABLE
        mark = rows.at[key, f"{column}__mark"]
        if isinstance(mark, str) and mark:
            return mark
        value = rows.at[key, column]
        return NOT_AVAILABLE if pd.isna(value) else f"{float(value):.0f}"

    @staticmethod
    def all_published(rows: pd.DataFrame, key, columns) -> bool:
        return key in rows.index and all(pd.notna(rows.at[key, c]) for c in columns if c in rows.columns)

    def keys(self, rows: pd.DataFrame) -> list[tuple[str, str, str]]:
        """The rows a report compares: its KOV (or the county's KOVs), the county, the study."""
        wanted = []
        if self.municipality:
            wanted.append(("municipality", self.county, self.municipality))
        else:
            wanted += [k for k in rows.index if k[0] == "municipality" and k[1] == self.county]
        wanted += [("county", self.county, ALL), ("study", ALL, ALL)]
        return [k for k in wanted if k in rows.index]

    def show(self, header, rows, kinds, caption: str, note: str = "", not_counts=()) -> None:
        """Display a table of published strings; ``not_counts``: per column, True where its
        numbers count no one (rates, effects), so the disclosure audit leaves them alone."""
        formatted = [[self._localise(cell, kind) for cell, kind in zip(row, kinds)] for row in rows]
        _display(ReportTable(tuple(header), tuple(tuple(r) for r in formatted), tuple(kinds), caption=caption,
                             note=note, not_counts=tuple(not_counts)))

    def _localise(self, cell: str, kind: str) -> str:
        if kind == "count" and cell.isdigit():
            return format_number(float(cell), self.lang)
        return cell

    # sections ----------------------------------------------------------------------------
    def pupils(self) -> bool:
        """Warning flags and outcomes: count and share with its interval, KOV beside county and study."""
        names = self.families("descriptives/")
        if not names:
            return False
        estimates = self._estimates(self._read("results.descriptives"))
        self.report.heading("coordinator.pupils.title")
        self.report.show_text("coordinator.pupils.intro")
        for name in names:
            _, instrument, wave, variable = name.split("/", 3)
            rows = family_rows(self.cells, name)
            levels = [c for c in rows.columns if not c.endswith("__mark") and c not in (TOTAL, MISSING)]
            level = "1" if "1" in levels else levels[-1]
            body = []
            for key in self.keys(rows):
                shown = self.all_published(rows, key, levels)
                share, ci = SUPPRESSED_SHARE, SUPPRESSED_SHARE
                if shown:
                    hit = self._estimate(estimates, instrument, wave, variable, level, key)
                    if hit is not None:
                        share = self.percent(hit["estimate"])
                        ci = f"{self.percent(hit['conf_low'])} … {self.percent(hit['conf_high'])}"
                body.append([self.place_label(key), self.count_cell(rows, key, level),
                             self.count_cell(rows, key, TOTAL), share, ci])
            label = self.variable_label(variable)
            self.show([self.text("place"), self.text("pupils.with"), self.text("pupils.all"), self.text("share"),
                       self.text("ci")], body, ["text", "count", "count", "share", "text"],
                      caption=self.text("pupils.caption", variable=label,
                                        wave=self.report.texts.label("waves", wave)),
                      note=self.report.text("common.suppression_note"))
        return True

    @staticmethod
    def _estimates(desc: pd.DataFrame) -> dict[tuple, dict[str, object]]:
        """``results.descriptives`` indexed for :meth:`_estimate`: the first row of each estimate's key.

        A study row is found by (instrument, wave, variable, level, geography), a county row
        also by its county, a municipality row also by county and municipality.
        """
        found: dict[tuple, dict[str, object]] = {}
        if desc.empty:
            return found
        columns = {name: desc[name].tolist() for name in ("instrument", "wave", "variable", "geography", "county",
                                                          "municipality", "estimate", "conf_low", "conf_high")}
        columns["level"] = desc["level"].astype(str).tolist()
        for i, geography in enumerate(columns["geography"]):
            key = (columns["instrument"][i], columns["wave"][i], columns["variable"][i], columns["level"][i], geography)
            if geography != "study":
                key += (columns["county"][i],)
            if geography == "municipality":
                key += (columns["municipality"][i],)
            if key not in found:
                found[key] = {name: columns[name][i] for name in ("estimate", "conf_low", "conf_high")}
        return found

    @staticmethod
    def _estimate(estimates: dict[tuple, dict[str, object]], instrument, wave, variable, level, key):
        geography, county, municipality = key
        wanted = (instrument, wave, variable, level, geography)
        if geography != "study":
            wanted += (county,)
        if geography == "municipality":
            wanted += (municipality,)
        return estimates.get(wanted)

    def reasons(self) -> bool:
        names = self.families("reasons/")
        if not names:
            return False
        self.report.heading("coordinator.reasons.title")
        self.report.show_text("coordinator.reasons.intro")
        for name in names:
            _, instrument, group, wave = name.split("/", 3)
            rows = family_rows(self.cells, name)
            options = [c for c in rows.columns if not c.endswith("__mark") and c != BASE]
            keys = [k for k in (("county", self.county, ALL), ("study", ALL, ALL)) if k in rows.index]
            body = []
            for option in options:
                line = [self.variable_label(option)]
                for key in keys:
                    line.append(self.count_cell(rows, key, option))
                    ok = self.all_published(rows, key, [option, BASE]) and rows.at[key, BASE] >= self.report.min_cell
                    line.append(self.percent(rows.at[key, option] / rows.at[key, BASE]) if ok else SUPPRESSED_SHARE)
                body.append(line)
            header, kinds = self.count_share_header("reasons.reason", keys)
            base = [self.count_cell(rows, k, BASE) for k in keys]
            self.show(header, body, kinds, caption=self.text("reasons.caption", wave=self.report.texts.label("waves", wave),
                                                             base=", ".join(base)),
                      note=self.report.text("common.suppression_note"))
        return True

    def personas(self) -> bool:
        if "personas" not in self.families("personas"):
            return False
        profiles = self._read("results.persona_profiles")
        names = profiles.loc[profiles["section"] == "name"] if len(profiles) else pd.DataFrame()
        rows = family_rows(self.cells, "personas")
        classes = [c for c in rows.columns if not c.endswith("__mark") and c != TOTAL]
        self.report.heading("coordinator.personas.title")
        self.report.show_text("coordinator.personas.intro")
        keys = self.keys(rows)
        body, hidden = [], 0
        own = keys[0]
        for c in classes:
            if self.municipality and pd.isna(rows.at[own, c]):
                hidden += 1  # too small to show for this KOV: left out of its report
                continue
            hit = names.loc[names["class"].astype(str) == c, f"text_{self.lang}"] if len(names) else []
            label = f"{c}. {hit.iloc[0]}" if len(hit) and isinstance(hit.iloc[0], str) else c
            line = [label]
            for key in keys:
                ok = self.all_published(rows, key, [c, TOTAL])
                line += [self.count_cell(rows, key, c),
                         self.percent(rows.at[key, c] / rows.at[key, TOTAL]) if ok and rows.at[key, TOTAL] else SUPPRESSED_SHARE]
            body.append(line)
        header, kinds = self.count_share_header("personas.persona", keys)
        if body:
            self.show(header, body, kinds, caption=self.text("personas.caption"),
                      note=self.report.text("common.suppression_note"))
        if hidden:
            self.report.show_text("coordinator.personas.hidden", hidden=hidden)
        return True

    def specialists(self) -> bool:
        names = self.families("specialists/")
        gaps = self._read("results.service_gaps")
        if not names and gaps.empty:
            return False
        self.report.heading("coordinator.services.title")
        self.report.show_text("coordinator.services.intro")
        for name in names:
            wave = name.split("/", 1)[1]
            rows = family_rows(self.cells, name)
            sectors = [c for c in rows.columns if not c.endswith("__mark") and c != TOTAL]
            keys = self.keys(rows)
            body = [[self.place_label(k), *[self.count_cell(rows, k, s) for s in sectors], self.count_cell(rows, k, TOTAL)]
                    for k in keys]
            labels = self._read("meta.value_labels")
            header = [self.text("place"), *[self._code_label(labels, "sector", s, self.lang) for s in sectors],
                      self.text("total")]
            self.show(header, body, ["text", *["count"] * (len(sectors) + 1)],
                      caption=self.text("services.caption", wave=self.report.texts.label("waves", wave)),
                      note=self.report.text("common.suppression_note"))
        needs = self.families("service_needs/")
        if needs and len(gaps):
            rows = family_rows(self.cells, needs[0])
            keys = self.keys(rows)
            own = gaps.loc[gaps["municipality"] == self.municipality] if self.municipality else \
                gaps.loc[(gaps["county"] == self.county) & (gaps["municipality"] != ALL)]
            body = []
            for record in own.itertuples():
                key = ("municipality", record.county, record.municipality)
                published = key in rows.index and pd.notna(rows.at[key, str(record.need)])
                body.append([record.municipality, self.variable_label(str(record.need)),
                             self.count_cell(rows, key, str(record.need)),
                             self.number(record.need_per_1000, 0) if published else SUPPRESSED_SHARE,
                             self.number(record.places_per_1000, 0),
                             self.text(f"services.readings.{record.reading}") if published else SUPPRESSED_SHARE])
            if body:
                self.show([self.text("place"), self.text("services.need"), self.text("count"),
                           self.text("services.need_per_1000"), self.text("services.places_per_1000"),
                           self.text("services.reading")], body, ["text", "text", "count", "number", "number", "text"],
                          caption=self.text("services.gaps_caption"), note=self.report.text("common.suppression_note"),
                          not_counts=(False, False, False, True, True, False))
        return True

    @staticmethod
    def _code_label(labels: pd.DataFrame, variable: str, code: str, lang: str) -> str:
        if labels.empty:
            return code
        hit = labels.loc[(labels["variable"] == variable) & (labels["code"].astype(str) == code)]
        return str(hit.iloc[0][f"label_{lang}"]) if len(hit) else code

    def pilot(self) -> bool:
        """Difference-in-differences per outcome: the KOV (or the county's KOVs) beside the whole pilot."""
        evaluation = self._read("results.evaluation")
        self.report.heading("coordinator.pilot.title")
        if evaluation.empty:
            self.report.show_text("coordinator.pilot.none")
            return False
        did = evaluation.loc[evaluation["contrast"] == "did"]
        if self.municipality:
            places = [self.municipality]
        else:
            places = [m for m in self.places.loc[self.places["county"] == self.county, "municipality"]] if len(self.places) else []
        local = did.loc[did["municipality"].isin(places) & did["estimate"].notna()]
        if local.empty:
            self.report.show_text("coordinator.pilot.not_here")
            return False
        self.report.show_text("coordinator.pilot.intro")
        overall = did.loc[did["municipality"] == ALL]
        body = []
        for record in pd.concat([local, overall]).itertuples():
            body.append([self.variable_label(str(record.outcome)),
                         self.text("whole_study") if record.municipality == ALL else str(record.municipality),
                         self.number(record.estimate, 2),
                         f"{self.number(record.conf_low, 2)} … {self.number(record.conf_high, 2)}",
                         self.text("pilot.few") if isinstance(record.warning, str) and record.warning else ""])
        self.show([self.text("pilot.outcome"), self.text("place"), self.text("pilot.did"), self.text("ci"),
                   self.text("pilot.warning")], body, ["text", "text", "number", "text", "text"],
                  caption=self.text("pilot.caption"), not_counts=(False, False, True, False, False))
        return True


def _display(obj) -> None:
    from IPython.display import display

    display(obj)


def show_family(report: Report, family: str, header: dict[str, str], *, caption: str, note: str = "") -> bool:
    """Show one family from ``results.published_family`` as one table (study, counties, municipalities).

    For the study-wide reports: they publish the family's counts exactly as the KOV and county
    reports do, so no report of the family gives back what another hides. ``header`` maps
    ``place`` and the family's columns to their labels, in display order. False (nothing
    shown) when the study has no such family yet: the caller shows its own table then.
    """
    coordinator = Coordinator(report, county=ALL)
    if family not in coordinator.families(family):
        return False
    rows = family_rows(coordinator.cells, family)
    order = {"study": 0, "county": 1, "municipality": 2}
    keys = sorted(rows.index, key=lambda k: (order[k[0]], k[1], k[2]))
    columns = [c for c in header if c != "place"]
    body = [[coordinator.place_label(k), *[coordinator.count_cell(rows, k, c) for c in columns]] for k in keys]
    coordinator.show(list(header.values()), body, ["text", *["count"] * len(columns)], caption=caption, note=note)
    return True


def family_cells(report: Report, family: str, cells: list[tuple[tuple[str, str, str], str]]
                 ) -> tuple[list[str], list[bool]] | None:
    """The published strings of some cells of a family (a count, or its mark) and whether each is
    hidden; None when the study has no such family (the caller protects its own table then)."""
    coordinator = Coordinator(report, county=ALL)
    if family not in coordinator.families(family):
        return None
    rows = family_rows(coordinator.cells, family)
    shown = [coordinator.count_cell(rows, key, column) for key, column in cells]
    hidden = [key not in rows.index or column not in rows.columns or pd.isna(rows.at[key, column])
              for key, column in cells]
    return shown, hidden


def show_strings(report: Report, frame: pd.DataFrame, labels: dict[str, str], kinds: dict[str, str], *,
                 caption: str, note: str = "", not_counts: tuple[str, ...] = ()) -> None:
    """Show a frame of already published strings (count columns from :func:`family_cells`)."""
    columns = list(labels)
    Coordinator(report, county=ALL).show(
        list(labels.values()), [[str(v) for v in row] for row in frame[columns].itertuples(index=False, name=None)],
        [kinds.get(c, "text") for c in columns], caption=caption, note=note,
        not_counts=tuple(c in not_counts for c in columns))

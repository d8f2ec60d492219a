"""The study configuration and codebooks as the generator reads them.

The generator follows the same YAML files the ingest reads (studies/<study>.yaml,
codebooks/<instrument>.yaml, codebooks/value_sets.yaml), so a researcher who renames a
column, adds a municipality or a spelling gets a generator that writes it. This module
only reads and looks up; it does not validate (that is the config loader's job).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import PROJECT_ROOT

from pipelines.synth.names import fold_ascii

_LS_CODE = re.compile(r"^A\d+$")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")


@dataclass(frozen=True)
class StudyFiles:
    """Everything the generator needs from the YAML files of one study."""

    study: dict[str, Any]
    codebooks: dict[str, dict[str, Any]]
    value_sets: dict[str, dict[str, Any]]
    project_root: Path

    @property
    def raw_dir(self) -> Path:
        raw = Path(self.study["raw_dir"])
        return raw if raw.is_absolute() else self.project_root / raw

    @property
    def key_file(self) -> Path:
        key = Path(self.study["secret"]["file"])
        return key if key.is_absolute() else self.project_root / key

    def inputs(self, instrument: str) -> list[dict[str, Any]]:
        """The study's input entries for one instrument, in YAML order."""
        return [entry for entry in self.study["inputs"] if entry["instrument"] == instrument]

    def counties(self) -> dict[str, dict[str, Any]]:
        return self.study["counties"]

    def variables(self, instrument: str) -> dict[str, dict[str, Any]]:
        return self.codebooks[instrument]["variables"]

    def column(self, instrument: str, variable: str, source: str, wave: str | None) -> str:
        """The column name a source writes a variable under in a wave.

        A list of names in the codebook means the later waves renamed the column: the
        wave's position in the codebook's `waves` picks the name (the last one sticks).
        """
        name = self.variables(instrument)[variable]["source"][source]
        if isinstance(name, list):
            waves = self.codebooks[instrument].get("waves") or [None]
            position = waves.index(wave) if wave in waves else 0
            return name[min(position, len(name) - 1)]
        return name

    def missing_codes(self, instrument: str, variable: str) -> list[Any]:
        """The missing-value codes that apply to a variable (its own list, else the defaults)."""
        spec = self.variables(instrument)[variable]
        return list(spec.get("missing", self.codebooks[instrument].get("defaults", {}).get("missing", [])))


def load_study_files(study_path: Path, project_root: Path) -> StudyFiles:
    """Read a study YAML and the codebooks of the instruments it lists."""
    study = yaml.safe_load(Path(study_path).read_text(encoding="utf-8"))
    codebook_dir = PROJECT_ROOT / "codebooks"  # the codebooks the ingest reads; outputs go under project_root
    instruments = sorted({entry["instrument"] for entry in study["inputs"]})
    codebooks = {
        name: yaml.safe_load((codebook_dir / f"{name}.yaml").read_text(encoding="utf-8")) for name in instruments
    }
    value_sets = yaml.safe_load((codebook_dir / "value_sets.yaml").read_text(encoding="utf-8"))
    return StudyFiles(study, codebooks, value_sets, project_root)


def normalise_spelling(text: str) -> str:
    """The comparison form the value sets promise: case-, space- and diacritic-insensitive."""
    text = unicodedata.normalize("NFC", str(text))
    return " ".join(fold_ascii(text).casefold().split())


class Spellings:
    """How each export style spells a code of a value set.

    Styles: `numeric` (SPSS/Stata numeric code: the integer code of ordinal and binary
    sets, the digit alias of nominal sets), `label` (the Estonian label: the value label
    of SPSS/Stata files), `limesurvey` (Y/N for yes/no questions, else the A<n> answer
    code), `et` (Estonian answer text as forms write it: the label where it is also an
    alias, else the first alias) and `ru` (the Russian answer text, Estonian where the
    set has none).
    """

    def __init__(self, value_sets: dict[str, dict[str, Any]]):
        self._sets = value_sets

    def codes(self, set_name: str) -> list[Any]:
        return list(self._sets[set_name]["codes"])

    def spell(self, set_name: str, code: Any, style: str) -> Any:
        entry = self._sets[set_name]["codes"][code]
        aliases = [str(a) for a in entry.get("aliases", [])]
        if style == "label":
            return entry["et"]
        if style == "et":  # the Estonian label where exports use it, else the first alias
            return entry["et"] if entry["et"] in aliases or not aliases else aliases[0]
        if style == "numeric":
            if isinstance(code, int):
                return code
            digits = [a for a in aliases if a.isdigit()]
            return int(digits[0])
        if style == "limesurvey":
            yes_no = [a for a in aliases if a in ("Y", "N")]
            if yes_no:
                return yes_no[0]
            return next(a for a in aliases if _LS_CODE.match(a))
        if style == "ru":
            russian = [a for a in aliases if _CYRILLIC.search(a)]
            return russian[0] if russian else self.spell(set_name, code, "et")
        raise ValueError(f"unknown spelling style {style!r}")

    def lookup(self, set_name: str, style: str) -> dict[Any, Any]:
        """Code -> spelling for every code of a set."""
        return {code: self.spell(set_name, code, style) for code in self.codes(set_name)}

    def maps(self, set_name: str, spelling: Any) -> bool:
        """Whether a written spelling maps to a code of the set (as value_sets.yaml says)."""
        wanted = normalise_spelling(spelling)
        for code, entry in self._sets[set_name]["codes"].items():
            known = [code, entry.get("et", ""), entry.get("en", ""), *entry.get("aliases", [])]
            if wanted in {normalise_spelling(k) for k in known}:
                return True
        return False

"""The report language's strings, kept out of the code in ``reports/_texts/<lang>.yaml``.

Reports are written once and rendered in Estonian (first) and English: every visible
word comes from these files, so a translator edits YAML, never a ``.qmd`` or Python. Keys
are dotted paths into the nested YAML (``overview.received.title``). A missing key is a
programming error and raises; it never falls back silently to the other language, so a
half-translated report cannot be published by accident.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

#: Languages a report can be rendered in, the first being the default.
LANGUAGES: tuple[str, ...] = ("et", "en")

#: Where the string files live: the Quarto project's ``_texts`` folder.
TEXTS_DIR = Path(__file__).resolve().parents[2] / "reports" / "_texts"


class Texts:
    """The strings of one language; call it with a dotted key to get a string."""

    def __init__(self, lang: str, strings: dict[str, Any]) -> None:
        self.lang = lang
        self._strings = strings

    def __call__(self, key: str, **fields: Any) -> str:
        """The string at ``key``, with ``{field}`` placeholders filled from ``fields``."""
        value = self.lookup(key)
        if not isinstance(value, str):
            raise KeyError(f"text key {key!r} in language {self.lang!r} is a group, not a string")
        return value.format(**fields) if fields else value

    def lookup(self, key: str) -> Any:
        """The raw value (string or group) at a dotted key; raises KeyError naming it."""
        node: Any = self._strings
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"text key {key!r} is missing from {self.lang}.yaml")
            node = node[part]
        return node

    def label(self, group: str, code: str | None) -> str:
        """The label of ``code`` in ``group`` (a rule, a wave ...), or the code itself.

        Codes come from the study configuration (wave names, county ids), which a
        researcher may extend before the translations catch up: an unknown code is
        shown as it is rather than stopping the report.
        """
        if code is None:
            return self("common.none")
        labels = self.lookup(group)
        return str(labels.get(code, code)) if isinstance(labels, dict) else str(code)


@cache
def load_texts(lang: str) -> Texts:
    """Read ``reports/_texts/<lang>.yaml`` once per process."""
    if lang not in LANGUAGES:
        raise ValueError(f"report language must be one of {LANGUAGES}, not {lang!r}")
    with (TEXTS_DIR / f"{lang}.yaml").open(encoding="utf-8") as stream:
        return Texts(lang, yaml.safe_load(stream))

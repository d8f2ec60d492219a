"""The privacy gate on `anon` tables: no direct identifier may pass the ingest step.

Two independent rules, so one mistake cannot defeat both: by codebook role (no column of
an anon table is a direct identifier or an unscrubbed free text), and by content (no text
cell holds a personal code, e-mail or phone number, no free-text cell holds a name of the
study, and pseudonym columns hold only well-formed pseudonyms). Names are searched in free
text only: municipality and code columns hold
ordinary words that may coincide with a surname. Messages name the rule, table and column
and count hits; they never quote a value.
"""

from __future__ import annotations

import re

import pandas as pd

from pipelines.config import Codebook
from pipelines.privacy.pseudonyms import DOMAIN_PREFIX
from pipelines.privacy.scrub import Scrubber

_PATTERN_SCANNER = Scrubber(())
#: A pseudonym column holds nothing but pseudonyms; checked by their exact form, because
#: base32 text after "P-" can look like a local phone number to the content scanner.
_PSEUDONYM = re.compile("^(?:" + "|".join(re.escape(p) for p in DOMAIN_PREFIX.values()) + ")[A-Z2-7]{16}$")
PSEUDONYM_COLUMNS = ("pupil_id", "staff_id", "school_id")


def role_violations(table: str, frame: pd.DataFrame, codebook: Codebook) -> list[str]:
    problems = []
    for column in frame.columns:
        var = codebook.variables.get(column)
        if var is None:
            continue
        if var.role == "direct_identifier":
            problems.append(f"role: {table}.{column} is a direct identifier and must not be published")
        if var.role == "free_text" and var.free_text != "scrub":
            problems.append(f"role: {table}.{column} is free text marked '{var.free_text}' but was published")
    return problems


def content_violations(table: str, frame: pd.DataFrame, codebook: Codebook, names_scanner: Scrubber) -> list[str]:
    problems = []
    free_text = {n for n, v in codebook.variables.items() if v.role == "free_text"}
    for column in frame.columns:
        if not (pd.api.types.is_string_dtype(frame[column]) or frame[column].dtype == object):
            continue
        if column in PSEUDONYM_COLUMNS:
            values = frame[column].dropna().astype(str)
            odd = int((~values.str.fullmatch(_PSEUDONYM)).sum())
            if odd:
                problems.append(f"content: {table}.{column} holds {odd} value(s) that are not pseudonyms")
            continue
        scanner = names_scanner if column in free_text else _PATTERN_SCANNER
        counts: dict[str, int] = {}
        for value in frame[column].dropna().astype(str).unique():
            for kind, n in scanner.find(value).items():
                counts[kind] = counts.get(kind, 0) + n
        for kind, n in sorted(counts.items()):
            problems.append(f"content: {table}.{column} holds {n} value(s) that look like a {kind}")
    return problems

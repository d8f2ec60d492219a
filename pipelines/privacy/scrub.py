"""Free-text scrubbing: remove direct identifiers from notes before they leave ingest.

Teachers' notes name pupils, parents and places. Everything below replaces an identifier
with a placeholder and counts what it replaced per kind (numbers only, never the values):

=====================  ===============  ==========================================
kind                   placeholder      what is matched
=====================  ===============  ==========================================
personal_code          [ISIKUKOOD]      11 digits, checksum-valid (python-stdnum
                                        ``stdnum.ee.ik``), bare or as ``EE…`` /
                                        ``PNOEE-…`` (ETSI semantic identifier)
personal_code_unverified [ISIKUKOOD]    11 digits with an invalid checksum or date.
                                        Scrubbed too by default: a mistyped code
                                        is still a code (set ``scrub_invalid_codes``
                                        to False to keep them, e.g. for ids of
                                        other registers)
personal_code (spaced)   [ISIKUKOOD]    11 digits written with spaces, dots or
                                        dashes inside ("394 031 36526") whose
                                        digits read as sex/century, a real
                                        month and day: checksum-valid ones count
                                        as codes, the others as unverified
email                  [E-POST]         ``local@domain.tld``
phone                  [TELEFON]        ``+372``/``00372``/``372`` + 7-8 digits, and local
                                        7-8 digit numbers starting 3-8 (Estonian
                                        numbering plan), with spaces or dashes
address                [AADRESS]        "Tamme tn 5-12" (street-type word: tn,
                                        tänav, mnt, pst, tee, põik, plats ...),
                                        "Pikk 3" (capitalised word + house number
                                        when it has a flat/letter part, is not at
                                        a sentence start, or is followed by a
                                        place or postcode), "Kase talu",
                                        "Mäe küla" (talu, küla, alevik and their
                                        case forms), 5-digit postcodes
name                   [NIMI]           every harvested name, see below
=====================  ===============  ==========================================

Names are matched case-insensitively, as whole words, with Estonian inflection: a name's
stems are the nominative itself plus genitive-stem candidates built by these rules
(documented, deliberately generous):

* consonant-final names add a stem vowel a/e/i/u (Tamm → Tamme, Jaan → Jaani,
  Hans → Hansu, Saar → Saare);
* double stops shorten (Sepp → Sepa, Kukk → Kuke, Mikk → Miku);
* ``-sk`` loses the ``k`` (Kask → Kase, Kuusk → Kuuse);
* ``-t``/``-k``/``-p`` after a consonant soften to d/g/b (Mart → Mardi);
  ``-nd``/``-ld``/``-rd`` assimilate (Mänd → Männi);
* ``-el``/``-er`` drop their vowel (Peeter → Peetri, Mihkel → Mihkli);
* ``-ne`` becomes ``-se``/``-s`` (Rebane → Rebase, Rebast);
* ``-gi``/``-ki`` after a vowel becomes ``-e`` (Mägi → Mäe).

A stem may be followed by one case or plural ending (``-le -lt -l -t -d -ga -ks -ni -na
-ta -s -st -sse -i -e -de -te -id -sid`` and plural-case combinations) and the clitic
``-gi``/``-ki``; hyphenated compounds (Mari-Liisa, Tamm-Kask) are replaced whole, also
when only their first part is a harvested name.

Privacy wins over readability: a name that is also a common word is scrubbed wherever
the word occurs (Kask "birch", Tamm "oak", Saar "island", Mets "forest", Mari "berry"),
the generated stems can hit unrelated words (Kask → "kase"), local phone and postcode
patterns also replace other 7-8 or 5 digit numbers, and "Word 3" address patterns can
take a place name with a count ("Tallinnas 3 korda"). Analyses must not depend on the
numbers inside free text.

The whole scan is one compiled regular expression per study; the names form a trie so
that thousands of names cost one pass over the text (no per-name loop).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
from stdnum.ee import ik

#: Placeholder written in place of each kind of identifier.
PLACEHOLDERS: Mapping[str, str] = {
    "personal_code": "[ISIKUKOOD]",
    "personal_code_unverified": "[ISIKUKOOD]",
    "email": "[E-POST]",
    "phone": "[TELEFON]",
    "address": "[AADRESS]",
    "name": "[NIMI]",
}

#: Case and plural endings allowed after a name stem (longest tried first).
NAME_ENDINGS: tuple[str, ...] = (
    "desse", "dele", "delt", "dega", "deks", "dena", "deta", "deni", "dest", "des", "del",
    "sse", "sid", "ide", "le", "lt", "ga", "ks", "ni", "na", "ta", "st", "de", "te", "id",
    "se", "l", "t", "d", "s", "i", "e",
)
NAME_CLITICS: tuple[str, ...] = ("gi", "ki")

_UPPER = "A-ZÕÄÖÜŠŽ"
_LOWER = "a-zõäöüšž"
_VOWELS = "aeiuoõäöü"
_STEM_VOWELS = "aeiu"
_STREET_TYPES = (
    r"(?:tn|tänav(?:a|al|alt|ale)?|pst|puiestee(?:l|lt)?|mnt|maantee(?:l|lt)?|tee(?:l|lt)?"
    r"|põik|plats(?:il)?|allee(?:l)?|väljak(?:ul)?)"
)
_HOUSE_NUMBER = r"\d{1,3}[a-zA-Z]?(?:\s?[-/]\s?\d{1,3}[a-zA-Z]?)?"
_SETTLEMENT = r"(?:talu|tallu|küla|külla|alevik|aleviku)(?:s|st|sse|le|lt|l|ni|ga|d|de)?"

_CODE = r"(?P<code>(?:(?<![\w-])(?i:pnoee-|ee))?(?<!\d)(?P<code_digits>\d{11})(?!\d))"
_SEP = r"[ .\-]?"
_SPACED_CODE = (
    r"(?P<spaced_code>(?<![\d+])"
    + _SEP.join([r"[1-6]", r"\d", r"\d", rf"(?:0{_SEP}[1-9]|1{_SEP}[0-2])", rf"(?:0{_SEP}[1-9]|[12]{_SEP}\d|3{_SEP}[01])",
                 r"\d", r"\d", r"\d", r"\d"])
    + r"(?![ .\-]?\d))"
)
_EMAIL = r"(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
_PHONE = (
    r"(?P<phone>(?:(?<![\w+])\+|(?<!\w)00|(?<![\w+]))372[ -]?\d(?:[ -]?\d){6,7}(?!\d)"
    r"|(?<![\w+])[3-8](?:[ -]?\d){6,7}(?!\d))"
)
_ADDRESS_STREET = (rf"(?<!\w)[{_UPPER}][\w-]*(?:\s[{_UPPER}][\w-]*)?\s{_STREET_TYPES}\.?(?:\s?{_HOUSE_NUMBER})?"
                   r"(?!\w)")
_ADDRESS_SETTLEMENT = rf"(?<!\w)[{_UPPER}][\w-]*\s{_SETTLEMENT}(?!\w)"
#: The address alternatives in order, each with what the text must hold for it to match anywhere
#: (a need of _NEEDS below).
_ADDRESS_BRANCHES: tuple[tuple[str, str], ...] = (
    (_ADDRESS_STREET, "street"),
    (rf"(?<!\w)[{_UPPER}][{_LOWER}]+\s\d{{1,3}}(?:[a-zA-Z]|\s?[-/]\s?\d{{1,3}})[a-zA-Z]?(?!\w)", "word_number"),
    (rf"(?<=[{_LOWER},] )[{_UPPER}][{_LOWER}]+\s\d{{1,3}}(?!\w)", "word_number"),
    (rf"(?<!\w)[{_UPPER}][{_LOWER}]+\s\d{{1,3}}(?=,\s*[{_UPPER}]|,?\s*\d{{5}}(?!\d))", "word_number"),
    (_ADDRESS_SETTLEMENT, "settlement"),
    (r"(?<![\w-])\d{5}(?!\d)", "five_digits"),
)
_ADDRESS = "(?P<address>" + "|".join(branch for branch, _ in _ADDRESS_BRANCHES) + ")"

#: What a text must hold for each kind but names to match in it: every match of the kind (or
#: address branch) contains a match of the need's pattern, so a text without one cannot match
#: that kind and the scan leaves it out (the matches found stay the same). Needs on digits are
#: looked for only in a text with a digit.
_NEEDS: dict[str, re.Pattern] = {
    "code": re.compile(r"\d{11}"),  # _CODE: 11 digits in a row
    "spaced_code": re.compile(r"\d(?:[ .\-]?\d){10}"),  # _SPACED_CODE: 11 digits, each maybe after a separator
    "phone": re.compile(r"\d(?:[ -]?\d){6}"),  # _PHONE: 7 or more digits, each maybe after a space or dash
    "word_number": re.compile(rf"[{_UPPER}][{_LOWER}]+\s\d"),  # "Pikk 3" addresses
    "five_digits": re.compile(r"\d{5}"),  # postcodes
    "street": re.compile(_STREET_TYPES),
    "settlement": re.compile(_SETTLEMENT),
}
_DIGIT_NEEDS = ("code", "spaced_code", "phone", "word_number", "five_digits")
_DIGIT = re.compile(r"\d")


def _needs_met(text: str) -> tuple[bool, ...]:
    """Per need of _NEEDS (in its order), whether ``text`` holds it; then whether it holds an '@'."""
    digit = _DIGIT.search(text) is not None
    return tuple((digit or need not in _DIGIT_NEEDS) and pattern.search(text) is not None
                 for need, pattern in _NEEDS.items()) + ("@" in text,)


@lru_cache(maxsize=None)
def _other_kinds(met: tuple[bool, ...]) -> re.Pattern | None:
    """The alternation of every kind but names, in the scanner's order, without the kinds and
    address branches whose need ``met`` (from _needs_met) says the text lacks; None when none is left."""
    has = dict(zip([*_NEEDS, "email"], met))
    address = [branch for branch, need in _ADDRESS_BRANCHES if has[need]]
    parts = [part for part, kind in ((_CODE, "code"), (_SPACED_CODE, "spaced_code"), (_EMAIL, "email"),
                                     (_PHONE, "phone")) if has[kind]]
    if address:
        parts.append("(?P<address>" + "|".join(address) + ")")
    return re.compile("|".join(parts)) if parts else None


def name_stems(name: str) -> frozenset[str]:
    """Lower-case stems of one name token under the module's inflection rules."""
    base = name.lower()
    stems = {base}
    if not base or base[-1] in _VOWELS:
        if base.endswith("ne") and len(base) > 3:
            stems.update({base[:-2] + "se", base[:-2] + "s"})
        if len(base) > 3 and base[-2:] in ("gi", "ki") and base[-3] in _VOWELS:
            stems.add(base[:-2] + "e")
        return frozenset(stems)
    consonant_stems = {base}
    if len(base) > 2 and base[-1] == base[-2] and base[-1] in "kpt":
        consonant_stems.add(base[:-1])
    if base.endswith("sk"):
        consonant_stems.add(base[:-1])
    if len(base) > 2 and base[-2] not in _VOWELS and base[-1] in "tkp":
        consonant_stems.add(base[:-1] + {"t": "d", "k": "g", "p": "b"}[base[-1]])
    if len(base) > 2 and base[-2:] in ("nd", "ld", "rd"):
        consonant_stems.add(base[:-1] + base[-2])
    if len(base) > 3 and base[-2:] in ("el", "er") and base[-3] not in _VOWELS:
        consonant_stems.add(base[:-2] + base[-1])
    stems.update(stem + vowel for stem in consonant_stems for vowel in _STEM_VOWELS)
    return frozenset(stems)


def _trie_regex(words: Iterable[str]) -> str:
    """A regex alternation of ``words`` factored as a prefix trie (fast for thousands)."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: dict) -> str:
        ends_here = "" in node
        branches = [re.escape(char) + render(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends_here:
            return "(?:" + body + ")?"
        return body

    return render(trie)


def harvest_names(frame: pd.DataFrame, columns: Iterable[str]) -> frozenset[str]:
    """Name tokens from a study's name columns (first, last, parents' names ...).

    Values are split on white space and hyphens so that double names and compounds are
    matched part by part; tokens shorter than two letters (initials) or holding digits
    are dropped.
    """
    values: set[str] = set()
    for column in columns:
        values.update(frame[column].dropna().astype(str).unique())
    # one split of all distinct values (a newline is a separator too), each distinct token checked once
    tokens: set[str] = set()
    for token in set(re.split(r"[\s\-‐–]+", "\n".join(values))):
        token = token.strip(".,;:()'\"")
        if len(token) >= 2 and not any(char.isdigit() for char in token):
            tokens.add(token)
    return frozenset(tokens)


@dataclass(frozen=True)
class ScrubResult:
    """Scrubbed text and how many identifiers of each kind were replaced."""

    text: str
    counts: Mapping[str, int] = field(default_factory=dict)


class Scrubber:
    """One compiled scanner for a study's names; reuse it over all notes of the study."""

    def __init__(self, names: Iterable[str] = (), *, scrub_invalid_codes: bool = True) -> None:
        self.scrub_invalid_codes = scrub_invalid_codes
        stems = {stem for name in names for stem in name_stems(name.strip()) if len(stem) >= 2}
        parts = [_CODE, _SPACED_CODE, _EMAIL, _PHONE, _ADDRESS]
        if stems:
            endings = "|".join(NAME_ENDINGS)
            clitics = "|".join(NAME_CLITICS)
            one_name = rf"(?:{_trie_regex(sorted(stems))})(?:{endings})?(?:{clitics})?"
            parts.append(rf"(?P<name>(?<!\w)(?i:{one_name})(?:-[^\W\d_]+)*(?!\w))")
        #: the whole scanner as one alternation (kinds in this order, names last); it is run as
        #: two scans, names and the rest, merged as the alternation would match (see _matches)
        self.pattern_text = "|".join(parts)
        self._names = re.compile(parts[-1]) if stems else None

    @cached_property
    def _pattern(self) -> re.Pattern:
        """The scanner as one compiled alternation (what ``_matches`` reproduces)."""
        return re.compile(self.pattern_text)

    def _matches(self, text: str) -> Iterator[re.Match]:
        """The matches of ``self._pattern.finditer(text)``, found by two faster scans.

        At each position the alternation takes the first kind that matches there, names last.
        The scan of the other kinds leaves out the kinds and branches the text cannot match (see
        _NEEDS: no 11 digits, no '@', no street word ...), which is most of its cost; the names are a scan
        of their own. Merged leftmost-first, with the other kinds winning a tie, the matches
        are the alternation's: the leftmost match of either scan from a position is where the
        alternation matches next, and lookbehinds see the text before that position in both.
        No kind matches the empty string, so each match moves the position on.
        """
        yield from self._merged(text, _other_kinds(_needs_met(text)))

    def _merged(self, text: str, other: re.Pattern | None) -> Iterator[re.Match]:
        names = self._names
        found = other.search(text) if other is not None else None
        named = names.search(text) if names is not None else None
        while found is not None or named is not None:
            if named is None or (found is not None and found.start() <= named.start()):
                match = found
            else:
                match = named
            yield match
            end = match.end()
            if found is not None and found.start() < end:
                found = other.search(text, end)
            if named is not None and named.start() < end:
                named = names.search(text, end)

    def _kind(self, match: re.Match) -> str | None:
        kind = match.lastgroup
        if kind == "code":
            if ik.is_valid(match.group("code_digits")):
                return "personal_code"
            return "personal_code_unverified" if self.scrub_invalid_codes else None
        if kind == "spaced_code":
            if ik.is_valid(re.sub(r"\D", "", match.group("spaced_code"))):
                return "personal_code"
            return "personal_code_unverified" if self.scrub_invalid_codes else None
        return kind

    def scrub(self, text: str) -> ScrubResult:
        """Replace every identifier in ``text`` by its placeholder; count per kind."""
        counts: dict[str, int] = {}
        other = _other_kinds(_needs_met(text))
        if other is None and self._names is not None:  # names only: the names scan's own sub (C)
            def name(_match: re.Match) -> str:
                counts["name"] = counts.get("name", 0) + 1
                return PLACEHOLDERS["name"]

            return ScrubResult(self._names.sub(name, text), counts)
        pieces: list[str] = []
        kept = 0
        for match in self._merged(text, other):
            kind = match.lastgroup
            if kind == "code" or kind == "spaced_code":  # only codes need a second look
                kind = self._kind(match)
                if kind is None:
                    continue
            counts[kind] = counts.get(kind, 0) + 1
            pieces += (text[kept:match.start()], PLACEHOLDERS[kind])
            kept = match.end()
        if not pieces:
            return ScrubResult(text, counts)
        pieces.append(text[kept:])
        return ScrubResult("".join(pieces), counts)

    def find(self, text: str) -> dict[str, int]:
        """Kinds of identifiers present in ``text`` and how many (never the values).

        Placeholders left by an earlier scrub are blanked first: "[E-POST]" must not count
        as the surname Post.
        """
        counts: Counter[str] = Counter()
        for match in self._matches(_PLACEHOLDER_PATTERN.sub(" ", text)):
            kind = self._kind(match)
            if kind is not None:
                counts[kind] += 1
        return dict(counts)

    def scrub_series(self, notes: pd.Series) -> tuple[pd.Series, dict[str, int]]:
        """Scrub a column of notes (missing stays missing); return it and total counts.

        Each distinct note is scanned once, in order of first appearance, and its counts are
        weighted by how often it occurs (the same totals, in the same key order, as row by row).
        """
        cells = notes.to_numpy(dtype=object)
        present = np.flatnonzero(~pd.isna(notes).to_numpy(dtype=bool))
        codes, distinct = pd.factorize(_objects([str(v) for v in cells[present]]))
        occurrences = np.bincount(codes, minlength=len(distinct)).tolist()
        totals: dict[str, int] = {}
        texts = []
        for text, times in zip(distinct.tolist(), occurrences):
            result = self.scrub(text)
            texts.append(result.text)
            for kind, n in result.counts.items():
                totals[kind] = totals.get(kind, 0) + n * times
        scrubbed = cells.copy()
        if len(present):
            scrubbed[present] = _objects(texts)[codes]
        return pd.Series(scrubbed, index=notes.index, name=notes.name, dtype=notes.dtype), totals


def _objects(items: list) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


_PLACEHOLDER_PATTERN = re.compile("|".join(re.escape(p) for p in sorted(set(PLACEHOLDERS.values()))))


@lru_cache(maxsize=8)
def _cached_scrubber(names: frozenset[str], scrub_invalid_codes: bool) -> Scrubber:
    return Scrubber(names, scrub_invalid_codes=scrub_invalid_codes)


def _scrubber(names: Iterable[str] | Scrubber, scrub_invalid_codes: bool) -> Scrubber:
    if isinstance(names, Scrubber):
        return names
    return _cached_scrubber(frozenset(names), scrub_invalid_codes)


def scrub_text(
    text: str, names: Iterable[str] | Scrubber = (), *, scrub_invalid_codes: bool = True
) -> ScrubResult:
    """Scrub one text; pass a :class:`Scrubber` instead of names when scrubbing many."""
    return _scrubber(names, scrub_invalid_codes).scrub(text)


def find_identifiers(
    text: str, names: Iterable[str] | Scrubber = (), *, scrub_invalid_codes: bool = True
) -> dict[str, int]:
    """For the leak gate: which kinds of identifiers occur in ``text``, with counts only."""
    return _scrubber(names, scrub_invalid_codes).find(text)

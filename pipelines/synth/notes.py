"""Free-text notes that mention people the way support staff write them.

Notes inflect names ("Marile", "Tamme"), quote phone numbers and e-mails, so the privacy
layer's scrubbing is tested on realistic text. Each note's identifying tokens are
returned with it so the truth's canaries list every one of them.
"""

from __future__ import annotations

import numpy as np

from pipelines.synth.names import allative, genitive

_ESTONIAN = (
    "",
    "",
    "{first} puudub sageli esmaspäeviti.",
    "Ema {parent} helistas ({phone}), lubas tulla kooli.",
    "Rääkisime {first_alla} tugiõpilase võimalusest, {last_gen} pere on nõus.",
    "Vanem {parent} palub suhelda e-posti teel: {email}.",
    "{first} {last} vajab abi matemaatikas, {first_alla} määrati konsultatsioon.",
    "Klassijuhataja sõnul on {first_alla} viimasel ajal raske. Kontakt: {phone}.",
)
_RUSSIAN = (
    "",
    "",
    "{first} часто пропускает уроки по понедельникам.",
    "Мама {parent} позвонила ({phone}), обещала прийти в школу.",
    "Родитель {parent} просит писать на {email}.",
)
_STAFF = (
    "",
    "",
    "Koostöö lastekaitsega on paranenud, aitäh {first_alla}!",
    "Palun saatke info ka kolleegile {first} {last}, tel {phone}.",
    "Minuga saab ühendust {email} kaudu.",
)


def write_notes(rng: np.random.Generator, first: np.ndarray, last: np.ndarray, parent: np.ndarray | None,
                phone: np.ndarray | None, email: np.ndarray | None, russian: np.ndarray | None = None,
                staff: bool = False) -> tuple[np.ndarray, set[str]]:
    """One note per row (many empty) and the set of names written in inflected forms."""
    n = len(first)
    russian = np.zeros(n, dtype=bool) if russian is None else russian
    choice = rng.random(n)
    notes = np.empty(n, dtype=object)
    inflected: set[str] = set()
    for i in range(n):
        templates = _STAFF if staff else (_RUSSIAN if russian[i] else _ESTONIAN)
        template = templates[int(choice[i] * len(templates))]
        if not template:
            notes[i] = ""
            continue
        fields = {"first": first[i], "last": last[i], "first_alla": allative(first[i]), "last_gen": genitive(last[i]),
                  "parent": "" if parent is None else parent[i], "phone": "" if phone is None else phone[i],
                  "email": "" if email is None else email[i]}
        notes[i] = template.format(**fields)
        for key in ("first_alla", "last_gen"):
            if "{" + key + "}" in template:
                inflected.add(fields[key])
    return notes, inflected

"""Name and place pools the demo study draws its identifiers from.

Person names are harvested once from Faker's et_EE provider, which keeps Estonian names
and the Latin (Estonian-register) spellings of Russian names apart, so Russian-speaking
pupils get names like "Aleksandr Smirnov" as Estonian school registers write them. The
generator samples from these arrays with numpy: Faker is never called per row, which is
what keeps 10^6 pupils feasible. Places (streets, villages, schools) are short
hand-written lists of real, common Estonian place-name parts, so addresses look like
"Tamme tn 5-12, Võru" or "Kase talu, Rõuge küla".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faker.providers.person.et_EE import Provider as _EtPersons


@dataclass(frozen=True)
class NamePool:
    """First names by sex and last names of one language group."""

    male: np.ndarray
    female: np.ndarray
    last: np.ndarray


def _pool(male: tuple[str, ...] | list[str], female: tuple[str, ...] | list[str], last) -> NamePool:
    return NamePool(np.array(sorted(set(male))), np.array(sorted(set(female))), np.array(sorted(set(last))))


#: Estonian and Russian name pools, keyed by home-language code of value_sets.yaml.
NAME_POOLS: dict[str, NamePool] = {
    "et": _pool(_EtPersons.first_names_male_est, _EtPersons.first_names_female_est, _EtPersons.last_names_est),
    "ru": _pool(_EtPersons.first_names_male_rus, _EtPersons.first_names_female_rus, _EtPersons.last_names_rus),
}

#: Street-name stems ("Tamme tn"), from the most common street names in Estonian towns.
STREETS = np.array([
    "Tamme", "Kase", "Pärna", "Kooli", "Aia", "Põllu", "Vabaduse", "Jaama", "Nurme", "Lille",
    "Metsa", "Pikk", "Lai", "Kalda", "Jõe", "Kesk", "Uus", "Vee", "Õuna", "Kuuse", "Männi",
    "Vahtra", "Sõpruse", "Rägavere", "Tähe", "Roosi", "Rahu", "Karja", "Tööstuse", "Posti",
])
#: Farm-name stems ("Kase talu").
FARMS = np.array([
    "Kase", "Mäe", "Tamme", "Oja", "Nurme", "Põllu", "Metsa", "Kuuse", "Saare", "Liiva",
    "Jaani", "Peetri", "Ansu", "Sepa", "Kõrtsi", "Veski", "Kivi", "Männiku", "Lepiku", "Soo",
])

#: A few real villages or boroughs per municipality; a municipality added in the study
#: YAML that is missing here gets its own stem ("Uus vald" -> "Uus").
VILLAGES: dict[str, tuple[str, ...]] = {
    "Antsla vald": ("Antsla", "Kuldre", "Vaabina", "Lusti", "Ähijärve"),
    "Rõuge vald": ("Rõuge", "Haanja", "Misso", "Varstu", "Mõniste", "Vastse-Roosa"),
    "Setomaa vald": ("Värska", "Obinitsa", "Meremäe", "Mikitamäe", "Saatse"),
    "Võru linn": ("Võru",),
    "Võru vald": ("Parksepa", "Väimela", "Vastseliina", "Lasva", "Sõmerpalu", "Puiga"),
    "Väike-Maarja vald": ("Väike-Maarja", "Simuna", "Kiltsi", "Ebavere", "Triigi"),
    "Haljala vald": ("Haljala", "Võsu", "Vihula", "Aaspere", "Sagadi"),
    "Kadrina vald": ("Kadrina", "Hulja", "Vohnja", "Salla", "Neeruti"),
    "Viru-Nigula vald": ("Kunda", "Viru-Nigula", "Aseri", "Pada", "Kunda küla"),
    "Rakvere vald": ("Sõmeru", "Lepna", "Uhtna", "Näpi", "Roodevälja"),
    "Rakvere linn": ("Rakvere",),
    "Vinni vald": ("Vinni", "Pajusti", "Roela", "Laekvere", "Tudu"),
    "Tapa vald": ("Tapa", "Lehtse", "Jäneda", "Moe", "Porkuni"),
    "Tartu linn": ("Tartu",),
    "Elva vald": ("Elva", "Rõngu", "Puhja", "Konguta", "Palupera", "Rannu"),
    "Nõo vald": ("Nõo", "Tõravere", "Luke", "Meeri", "Voika"),
    "Kambja vald": ("Kambja", "Ülenurme", "Tõrvandi", "Rebase", "Reola"),
    "Kastre vald": ("Kõrveküla", "Haaslava", "Võnnu", "Melliste", "Kurepalu"),
    "Luunja vald": ("Luunja", "Kabina", "Kavastu", "Sirgu", "Veibri"),
    "Peipsiääre vald": ("Kallaste", "Alatskivi", "Kolkja", "Varnja", "Vara"),
    "Tartu vald": ("Kõrveküla", "Lähte", "Äksi", "Laeva", "Vara", "Kõrenduse"),
}

#: School-name endings by school type code of value_sets.yaml (school_type set).
SCHOOL_SUFFIXES: dict[str, tuple[str, ...]] = {
    "basic": ("Põhikool", "Kool", "Lasteaed-Põhikool"),
    "upper_secondary": ("Gümnaasium", "Ühisgümnaasium", "Keskkool"),
    "vocational": ("Kutsehariduskeskus", "Ametikool"),
}

#: Distinct second words for schools in one town ("Tartu Kivilinna Kool").
TOWN_SCHOOL_WORDS = (
    "Kivilinna", "Annelinna", "Raatuse", "Karlova", "Kesklinna", "Mart Reiniku", "Hugo Treffneri",
    "Jaan Poska", "Veeriku", "Tamme", "Descartes'i", "Herbert Masingu", "Forseliuse", "Kunstide",
    "Waldorf", "Pärnaõue", "Aleksander Puškini", "Vabaduse", "Lille", "Nurme", "Kreutzwaldi",
    "Jaani", "Peetri", "Vene", "Rahu", "Kalda", "Sõpruse", "Järve", "Ropka", "Supilinna",
)


def villages_of(municipality: str) -> tuple[str, ...]:
    """The villages or towns addresses in a municipality are drawn from."""
    return VILLAGES.get(municipality, (municipality.rsplit(" ", 1)[0],))


#: Estonian letters folded to ASCII the way e-mail addresses and user names spell them.
FOLD_ASCII = str.maketrans({"õ": "o", "ä": "a", "ö": "o", "ü": "u", "š": "s", "ž": "z",
                            "Õ": "O", "Ä": "A", "Ö": "O", "Ü": "U", "Š": "S", "Ž": "Z"})


def fold_ascii(text: str) -> str:
    """Estonian letters replaced by their ASCII base letters ("Võru vald" -> "Voru vald")."""
    return text.translate(FOLD_ASCII)


def allative(name: str) -> str:
    """The allative case ("to Mari": "Marile", "Jaanile"), as notes write it."""
    return name + ("le" if name[-1] in "aeiouõäöü" else "ile")


def genitive(name: str) -> str:
    """A genitive form ("Tamm" -> "Tamme"); a simple, common pattern, not full morphology."""
    if name[-1] in "aeiouõäöü":
        return name
    return name + ("e" if name[-1] in "mnlr" or name.endswith(("k", "t")) else "i")

"""One country resolver for the whole project: UN-style names, ISO3 and M49.

Backed by pycountry (ISO 3166-1, whose numeric codes are the UN M49 codes of countries and areas; the test suite
checks this against the UNSD M49 table, https://unstats.un.org/unsd/methodology/m49/overview/) plus the small
alias table below for the styles the UN uses and ISO does not. Feeds iso3/m49/is_state in participation and
treaty_events, iso3/is_country in indicator_observations, m49 in firearms_seizures and the country_year_panel.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import pycountry

#: UN styles (UNTC, SDG, UNODC) that pycountry's lookup does not match, with the ISO3 they stand for.
ALIASES: dict[str, str] = {
    "bolivia (plurinational state of)": "BOL",
    "venezuela (bolivarian republic of)": "VEN",
    "iran (islamic republic of)": "IRN",
    "micronesia (federated states of)": "FSM",
    "republic of korea": "KOR",
    "democratic people's republic of korea": "PRK",
    "democratic republic of the congo": "COD",
    "côte d'ivoire": "CIV",
    "cote d'ivoire": "CIV",
    "the former yugoslav republic of macedonia": "MKD",
    "swaziland": "SWZ",
    "st. kitts and nevis": "KNA",
    "st. lucia": "LCA",
    "st. vincent and the grenadines": "VCT",
    "state of palestine": "PSE",
    "holy see": "VAT",
    "turkey": "TUR",
    "czech republic": "CZE",
    "cape verde": "CPV",
    "saint helena": "SHN",
    "united states virgin islands": "VIR",
    "svalbard and jan mayen islands": "SJM",
    "wallis and futuna islands": "WLF",
    "china, hong kong special administrative region": "HKG",
    "china, macao special administrative region": "MAC",
}

#: Participants that are not states, with the code published for them (EUU is the code the World Bank and
#: Eurostat use for the European Union; ISO 3166 reserves EU exceptionally). They carry no M49 code.
NON_STATES: dict[str, str] = {"european union": "EUU", "european community": "EUU"}


@dataclass(frozen=True)
class Country:
    iso3: str
    m49: int | None
    is_state: bool


def normalize(name: str) -> str:
    """Casefold a published name: NFKC, typographic apostrophes to ', whitespace collapsed, footnote marks gone."""
    name = unicodedata.normalize("NFKC", name).replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", name).strip().casefold()


@lru_cache(maxsize=None)
def resolve_name(name: str) -> Country | None:
    """Resolve a published participant or area name; None when nothing matches (the caller's validation fails)."""
    key = normalize(name)
    if key in NON_STATES:
        return Country(NON_STATES[key], None, False)
    iso3 = ALIASES.get(key)
    if iso3 is None:
        try:
            iso3 = pycountry.countries.lookup(key).alpha_3
        except LookupError:
            return None
    return by_iso3(iso3)


@lru_cache(maxsize=None)
def by_iso3(iso3: str) -> Country | None:
    """Country for an ISO3 code; None for codes ISO 3166 does not know."""
    record = pycountry.countries.get(alpha_3=iso3.upper())
    return None if record is None else Country(record.alpha_3, int(record.numeric), True)


@lru_cache(maxsize=None)
def by_m49(m49: int) -> Country | None:
    """Country for an M49 code; None for regional and other aggregates (World = 1, Africa = 2, ...)."""
    record = pycountry.countries.get(numeric=f"{m49:03d}")
    return None if record is None else Country(record.alpha_3, m49, True)

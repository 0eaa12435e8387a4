"""One country resolver for the whole project: UN-style names, ISO3 and M49.

Names resolve, in order, through country_aliases.yaml (operators' aliases and the declared non-state
participants), OCHA's hdx-python-country table of UN names (UNTERM/M49 short names such as "Türkiye",
"Netherlands (Kingdom of the)", "Bolivia (Plurinational State of)"; its bundled copy, never the network), then
pycountry (ISO 3166-1, whose numeric codes are the UN M49 codes of countries and areas; the test suite checks this
against the UNSD M49 table, https://unstats.un.org/unsd/methodology/m49/overview/). Feeds iso3/m49/is_state in
participation and treaty_events, iso3/is_country in indicator_observations, m49 in firearms_seizures and the
country_year_panel.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pycountry

ALIASES_FILE = Path(__file__).resolve().parent.parent / "country_aliases.yaml"
#: Longest name the resolver looks up (the longest UN name is under 60 characters).
MAX_NAME = 300


@dataclass(frozen=True)
class Country:
    iso3: str | None  # None for participants that are not states
    m49: int | None
    is_state: bool


NON_STATE = Country(None, None, False)


def normalize(name: str) -> str:
    """Casefold a published name: NFKC, typographic apostrophes to ', whitespace collapsed."""
    name = unicodedata.normalize("NFKC", name).replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(name.split()).casefold()


@lru_cache(maxsize=1)
def declared() -> tuple[dict[str, str], frozenset[str]]:
    """The aliases (normalised name -> ISO3) and non-state participants (normalised names) of ALIASES_FILE;
    catalog.CatalogError (a configuration error) when it is missing or malformed."""
    from tasks.catalog import country_aliases  # tasks/catalog.py imports this module

    config = country_aliases(ALIASES_FILE)
    return ({normalize(k): v.upper() for k, v in config.aliases.items()},
            frozenset(normalize(n) for n in config.non_states))


@lru_cache(maxsize=1)
def _hdx():
    """OCHA's country table (hdx-python-country), imported on first use: it is slow to import."""
    from hdx.location.country import Country as HdxCountry

    return HdxCountry


@lru_cache(maxsize=4096)
def resolve_name(name: str) -> Country | None:
    """Resolve a published participant or area name; None when nothing matches (the caller's validation fails)."""
    if len(name) > MAX_NAME:
        return None
    key = normalize(name)
    aliases, non_states = declared()
    if key in non_states:
        return NON_STATE
    iso3 = aliases.get(key) or _hdx().get_iso3_country_code(key, use_live=False)
    if iso3 is None:
        try:
            iso3 = pycountry.countries.lookup(key).alpha_3
        except LookupError:
            return None
    return by_iso3(iso3) or _hdx_country(iso3)


def _hdx_country(iso3: str) -> Country | None:
    info = _hdx().get_country_info_from_iso3(iso3, use_live=False) or {}
    code = info.get("m49 numerical code") or ""
    return Country(iso3, int(code), True) if code.isdigit() else None


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

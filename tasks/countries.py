"""One country resolver for the whole project: UN-style names, ISO3 and M49.

Names resolve, in order, through country_aliases.yaml (operators' aliases and the declared non-state
participants), OCHA's hdx-python-country table of UN names (UNTERM/M49 short names such as "Türkiye",
"Netherlands (Kingdom of the)", "Bolivia (Plurinational State of)"; its bundled copy, never the network), then
pycountry (ISO 3166-1, whose numeric codes are the UN M49 codes of countries and areas; the test suite checks this
against the UNSD M49 table, https://unstats.un.org/unsd/methodology/m49/overview/). Feeds iso3/m49/is_state in
participation and treaty_events (with participation.participant_kind: `participant_kind` reads a name that resolves to
no state as an organisation by its head noun), iso3/is_country in indicator_observations, m49 in firearms_seizures and the
country_year_panel.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pycountry

ALIASES_FILE = Path(__file__).resolve().parent.parent / "country_aliases.yaml"
#: Longest name the resolver looks up (the longest UN name is under 60 characters).
MAX_NAME = 300


STATE, ORGANISATION, TERRITORY = "state", "organisation", "territory"


@dataclass(frozen=True)
class Country:
    iso3: str | None  # None for participants that are not states
    m49: int | None
    is_state: bool
    kind: str = STATE  # state | organisation | territory (a non-independent area with its own codes)


NON_STATE = Country(None, None, False, ORGANISATION)
#: Head nouns of organisations' names (`Organization of African Unity`, `European Atomic Energy Community`).
ORGANISATION_HEADS = frozenset((
    "organization organisation community communities union agency bank fund office commission council authority "
    "institute institution association league commonwealth market secretariat programme program centre center "
    "conference committee court tribunal corporation board bureau foundation federation group pact system "
    "partnership alliance facility"
).split())
#: Words that make a name read as a state whatever its head (`Union of Soviet Socialist Republics`).
STATE_WORDS = frozenset("republic republics kingdom principality sultanate emirate emirates duchy".split())
_PREPOSITIONS = frozenset("of for on in to against".split())
_ACRONYM = re.compile(r"\A[A-Z][A-Z&-]{1,11}\Z")
_WORD = re.compile(r"[A-Za-z&-]{1,60}")
_BRACKETED = re.compile(r"\(([^()]{1,14})\) {0,3}\Z")


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


def participant(name: str) -> Country | None:
    """A treaty participant: the state or area it resolves to (a non-independent area such as Hong Kong is a
    territory, is_state false), an organisation when declared or when it reads as one (`reads_as_organisation`),
    else None (an unresolved participant, named by the caller)."""
    country = resolve_name(name)
    if country is None:
        return NON_STATE if reads_as_organisation(name) else None
    if country.iso3 and (_hdx().get_country_info_from_iso3(country.iso3, use_live=False) or {}).get(
            "Independent") == "N":
        return Country(country.iso3, country.m49, False, TERRITORY)
    return country


def reads_as_organisation(name: str) -> bool:
    """Whether a name reads as an organisation's: its head noun (the last word before the first preposition, or
    of the whole name) is an organisation noun (`ORGANISATION_HEADS`), or it is or ends in an acronym (`UNIDO`,
    `Organization of African Unity (OAU)`), and no word makes it read as a state (`STATE_WORDS`)."""
    words = _WORD.findall(unicodedata.normalize("NFKC", name))
    if not words or any(w.lower() in STATE_WORDS for w in words):
        return False
    bracketed = _BRACKETED.findall(name)
    if _ACRONYM.match(name.strip()) or (bracketed and _ACRONYM.match(bracketed[0].strip())):
        return True
    lead = next((i for i, w in enumerate(words) if i and w.lower() in _PREPOSITIONS and w.islower()), len(words))
    heads = {words[lead - 1].lower(), words[-1].lower()} if lead else {words[-1].lower()}
    return bool(heads & ORGANISATION_HEADS)


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

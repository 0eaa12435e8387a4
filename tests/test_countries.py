"""The country resolver, checked against the UNSD M49 table recorded in ../shared/data/unsd/m49."""

from __future__ import annotations

import csv

import pytest

from conftest import SHARED
from tasks.countries import by_iso3, by_m49, resolve_name

M49_ROWS = list(csv.DictReader((SHARED / "unsd/m49/UNSD-Methodology.csv").open(encoding="utf-8-sig"), delimiter=";"))
COUNTRIES = [r for r in M49_ROWS if r["ISO-alpha3 Code"]]


def test_the_m49_table_lists_248_coded_countries_and_areas():
    assert len(COUNTRIES) == 248


@pytest.mark.parametrize("row", COUNTRIES, ids=lambda r: r["ISO-alpha3 Code"])
def test_every_m49_name_resolves_to_its_iso3_and_code(row):
    country = resolve_name(row["Country or Area"])
    assert country is not None and country.iso3 == row["ISO-alpha3 Code"]
    assert country.m49 == int(row["M49 Code"])
    assert by_m49(int(row["M49 Code"])).iso3 == row["ISO-alpha3 Code"]


@pytest.mark.parametrize("name, iso3", [
    ("Bolivia (Plurinational State of)", "BOL"), ("Türkiye", "TUR"), ("Turkey", "TUR"),
    ("Côte d'Ivoire", "CIV"), ("The former Yugoslav Republic of Macedonia", "MKD"), ("Swaziland", "SWZ"),
    ("St. Kitts and Nevis", "KNA"), ("State of Palestine", "PSE"), ("Holy See", "VAT"),
    ("Cook Islands", "COK"), ("Niue", "NIU"), ("Denmark", "DNK"),
])
def test_un_styles_resolve(name, iso3):
    assert resolve_name(name).iso3 == iso3 and resolve_name(name).is_state


def test_european_union_is_a_participant_that_is_not_a_state():
    eu = resolve_name("European Union")
    assert (eu.iso3, eu.m49, eu.is_state) == ("EUU", None, False)


def test_unknown_names_and_aggregates_do_not_resolve():
    assert resolve_name("Atlantis") is None
    assert by_m49(1) is None and by_m49(419) is None  # World, Latin America and the Caribbean
    assert by_iso3("MEX").m49 == 484

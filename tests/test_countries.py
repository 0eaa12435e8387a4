"""The country resolver, checked against the UNSD M49 table recorded in ../shared/data/unsd/m49."""

from __future__ import annotations

import csv
import re

import pytest

from conftest import M49_CSV
from tasks import countries, publish
from tasks.catalog import CatalogError
from tasks.countries import Country, by_iso3, by_m49, resolve_name

M49_ROWS = list(csv.DictReader(M49_CSV.open(encoding="utf-8-sig"), delimiter=";"))
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


@pytest.mark.parametrize("name, iso3", [
    ("Türkiye", "TUR"), ("Czechia", "CZE"), ("North Macedonia", "MKD"), ("Eswatini", "SWZ"),
    ("Gambia (The)", "GMB"), ("Bahamas (The)", "BHS"), ("Netherlands (Kingdom of the)", "NLD"),
    ("Bolivia (Plurinational State of)", "BOL"), ("Congo (The Democratic Republic of the)", "COD"),
    ("United Kingdom of Great Britain and Northern Ireland", "GBR"), ("Lao People’s Democratic Republic", "LAO"),
    ("Republic of Moldova", "MDA"), ("Micronesia (Federated States of)", "FSM"),
])
def test_names_as_untc_writes_them_today_resolve(name, iso3):
    country = resolve_name(name)
    assert country is not None and (country.iso3, country.is_state) == (iso3, True)
    assert country.m49 == by_iso3(iso3).m49


@pytest.mark.parametrize("name", ["European Union", "European Community", "World Health Organization",
                                  "Economic Community of West African States"])
def test_participants_that_are_not_states_have_no_codes(name):
    assert resolve_name(name) == Country(None, None, False, "organisation")


def test_an_operator_adds_an_alias_in_the_yaml_file_without_code_change(aliases_file):
    aliases_file.write_text("aliases:\n  Republic of Ruritania: SRB\nnon_states:\n  - Ruritanian Customs Union\n")
    assert resolve_name("republic of  Ruritania").iso3 == "SRB"
    assert resolve_name("Ruritanian Customs Union").is_state is False


def test_overlong_names_do_not_resolve():
    assert resolve_name("Denmark" + " " * 20_000) is None


def test_unknown_names_and_aggregates_do_not_resolve():
    assert resolve_name("Atlantis") is None
    assert by_m49(1) is None and by_m49(419) is None  # World, Latin America and the Caribbean
    assert by_iso3("MEX").m49 == 484


@pytest.mark.parametrize("text, problem", [
    ("aliases: [Turkey, TUR]\n", "top level, key aliases: Input should be a valid dictionary"),
    ("aliases:\n  Turkey: TURK\n", "expected ISO 3166-1 alpha-3 codes, got ['TURK']"),
    ("aliases:\n  Turkey: TUR\nnonstates: [European Union]\n", "key nonstates: Extra inputs are not permitted"),
    ("aliases: {Turkey: TUR\n", "not valid YAML: expected ',' or '}', but got '<stream end>' at line 2, column 1"),
    (None, "No such file or directory"),
])
def test_a_missing_or_malformed_alias_file_is_a_configuration_error_exit_2(tmp_path, aliases_file, capsys, text,
                                                                          problem):
    """Before any flow starts, in one line naming the file (not a parse failure of every treaty)."""
    from flows.cli import main

    if text is not None:
        aliases_file.write_text(text)
    with pytest.raises(CatalogError, match=f"country aliases {aliases_file}: .*{re.escape(problem)}"):
        countries.declared()
    assert main(["run", "--warehouse", str(tmp_path / "wh")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"armswatch: country aliases {aliases_file}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "wh").exists()
    publish.code_digest()  # raises nothing: flows without treaties (the indicators) still run

"""tasks.m49 on the recorded UNSD M49 CSV, and the UN membership it is joined with."""

import pyarrow.compute as pc
import pytest

from conftest import M49_CSV, M49_URL
from tasks import m49
from tasks.errors import ParseError
from tasks.tables import COUNTRIES

CSV = M49_CSV.read_bytes()


@pytest.fixture(scope="module")
def countries():
    return m49.countries(CSV, M49_URL)


def by_iso3(table, iso3):
    return table.filter(pc.equal(table["iso3"], iso3)).to_pylist()[0]


def test_every_country_or_area_with_the_declared_schema(countries):
    assert countries.schema == COUNTRIES.schema
    assert countries.num_rows == 249
    assert countries["m49"].null_count == 0 and len(set(countries["m49"].to_pylist())) == 249
    assert countries["iso3"].null_count == 1  # Sark (680) has no ISO code


def test_193_members_and_2_observers(countries):
    status = dict(zip(countries["iso3"].to_pylist(), countries["un_status"].to_pylist()))
    assert sum(v == "member" for v in status.values()) == 193
    assert sorted(k for k, v in status.items() if v == "observer") == ["PSE", "VAT"]
    assert {status[t] for t in ("ATA", "BVT", "HMD", "HKG", "PRI", "GRL", "COK", "NIU", "ESH")} == {None}
    assert {status[t] for t in ("SSD", "MNE", "TLS", "CHE", "KOR", "PRK", "TUV")} == {"member"}


def test_membership_declaration_is_consistent():
    declared = m49.un_status()
    assert len(declared) == 195
    assert sum(v == "member" for v in declared.values()) == 193


def test_un_names_regions_and_groups(countries):
    korea, afghanistan, fiji = by_iso3(countries, "KOR"), by_iso3(countries, "AFG"), by_iso3(countries, "FJI")
    assert (korea["name"], korea["m49"], korea["region"], korea["sub_region"]) == (
        "Republic of Korea", 410, "Asia", "Eastern Asia")
    assert (afghanistan["is_ldc"], afghanistan["is_lldc"], afghanistan["is_sids"]) == (True, True, False)
    assert (fiji["is_sids"], fiji["intermediate_region"], fiji["region_code"]) == (True, None, 9)
    assert by_iso3(countries, "NGA")["intermediate_region"] == "Western Africa"
    assert by_iso3(countries, "NAM")["iso2"] == "NA", "Namibia's code is not a missing value"


def test_a_changed_header_is_a_clear_error():
    broken = CSV.replace(b"ISO-alpha3 Code", b"ISO3")
    with pytest.raises(ParseError, match=r"m49: https://unstats.un.org/.*header lacks ISO-alpha3 Code"):
        m49.countries(broken, M49_URL)


@pytest.mark.parametrize("original, bad, message", [
    (b";Algeria;012;", b";Algeria;;", "line 2: no M49 code"),
    (b";Algeria;012;", b";Algeria;12x;", "line 2: m49 '12x' is not a 3-digit code"),
    (b";Egypt;818;", b";Egypt;012;", r"m49 repeated: \[12\]"),
    (b";Libya;434;LY;LBY;;;", b";Libya;434;LY;LBY;yes;;", "line 4: is_ldc is 'yes'"),
])
def test_bad_cells_are_clear_errors(original, bad, message):
    with pytest.raises(ParseError, match=message):
        m49.countries(CSV.replace(original, bad, 1), M49_URL)


def test_a_missing_member_is_a_clear_error():
    without_mexico = b"\n".join(line for line in CSV.split(b"\n") if b";MEX;" not in line)
    with pytest.raises(ParseError, match=r"missing from the M49 list: \['MEX'\]"):
        m49.countries(without_mexico, M49_URL)


def test_not_utf8_is_a_clear_error():
    with pytest.raises(ParseError, match="not UTF-8"):
        m49.countries(b"\xff\xfe" + "Côte".encode("utf-16-le"), M49_URL)

"""tasks.panel on the recorded M49 list, SDG pages and IAFQ releases."""

from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conftest import SHARED, recorded_countries
from tasks import panel, sdg, unodc
from tasks.tables import FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS
from tasks.validate import Validator

FETCHED = datetime(2026, 10, 10, tzinfo=timezone.utc)
NO_SEIZURES = FIREARMS_SEIZURES.schema.empty_table()
COUNTRIES = recorded_countries()


def series(code: str, pages: int, size: int) -> pa.Table:
    return sdg.observations(
        [(sdg.series_data_url(sdg.BASE, code, page, size),
          (SHARED / "sdg" / code / f"Series_Data_page{page}.json").read_bytes()) for page in range(1, pages + 1)],
        "recorded", FETCHED)


def release(date_: str) -> pa.Table:
    path = SHARED / "unodc" / "iafq" / f"release-{date_}" / "data_iafq_firearms_trafficking.xlsx"
    return unodc.seizures(path.read_bytes(), "u")


def with_column(table: pa.Table, name: str, values: list) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), pa.array(values, table.schema.field(index).type))


@pytest.fixture(scope="module")
def observations():
    return pa.concat_tables([series("VC_ARM_SZTRACE", 3, 50), series("VC_IHR_PSRC", 6, 1000)])


@pytest.fixture(scope="module")
def seizures():
    """Both releases, as published: the older one no longer marked latest."""
    old = release("2022-06-17")
    return pa.concat_tables([with_column(old, "is_latest_release", [False] * old.num_rows), release("2024-08-26")])


@pytest.fixture(scope="module")
def table(observations, seizures):
    return panel.build_panel(COUNTRIES, observations, seizures, last_year=2024)


def rows_of(table: pa.Table, iso3: str) -> dict[int, dict]:
    return {row["year"]: row for row in table.filter(pc.equal(table["iso3"], iso3)).to_pylist()}


def test_un_member_and_observer_states_only(table):
    assert table.schema == panel.PANEL.schema
    assert table.num_rows == 195 * 25
    states = set(table["iso3"].to_pylist())
    assert len(states) == 195 and {"VAT", "PSE", "SSD"} <= states
    assert not states & {"ATA", "BVT", "HMD", "HKG", "PRI", "EUU"}
    assert len(set(zip(table["iso3"].to_pylist(), table["year"].to_pylist()))) == table.num_rows
    assert (pc.min(table["year"]).as_py(), pc.max(table["year"]).as_py()) == (2000, 2024)


def test_un_names_and_regions(table):
    korea, mexico = rows_of(table, "KOR")[2020], rows_of(table, "MEX")[2020]
    assert (korea["country"], korea["region"], korea["sub_region"], korea["m49"]) == (
        "Republic of Korea", "Asia", "Eastern Asia", 410)
    assert (mexico["country"], mexico["region"], mexico["un_status"]) == ("Mexico", "Americas", "member")
    assert rows_of(table, "PSE")[2020]["un_status"] == "observer"


def test_mexico_tracing_rate_keeps_its_footnote(table):
    mexico = rows_of(table, "MEX")
    assert {y: (r["arms_traced_pct"], r["arms_traced_pct_footnotes"]) for y, r in mexico.items()
            if r["arms_traced_pct"] is not None} == {
        2021: (99.52, ["2021-2022 average based on available data"]), 2024: (67.0, [])}
    assert mexico[2020]["arms_traced_pct_footnotes"] is None
    assert pc.count(table["arms_traced_pct"]).as_py() == 104


def test_homicide_rate_needs_both_sexes(table, observations):
    # The recorded VC_IHR_PSRC holds FEMALE and MALE rows only.
    assert table["homicide_rate"].null_count == table.num_rows
    assert rows_of(table, "MEX")[2015]["homicide_rate_male"] > rows_of(table, "MEX")[2015]["homicide_rate_female"]
    row = observations.filter(pc.and_(pc.equal(observations["m49"], 484),
                                      pc.equal(observations["series"], "VC_IHR_PSRC"))).slice(0, 1).to_pylist()[0]
    row.update(sex="BOTHSEX", dimensions=[("Sex", "BOTHSEX"), ("Reporting Type", "G")], value=25.5, footnotes=["n"])
    both = pa.concat_tables([observations, pa.Table.from_pylist([row], schema=INDICATOR_OBSERVATIONS.schema)])
    out = panel.build_panel(COUNTRIES, both, NO_SEIZURES, first_year=1990, last_year=2024)
    assert (rows_of(out, "MEX")[row["year"]]["homicide_rate"],
            rows_of(out, "MEX")[row["year"]]["homicide_rate_footnotes"]) == (25.5, ["n"])


def test_iafq_totals_from_the_latest_release_counted_once(table):
    mexico, uk = rows_of(table, "MEX"), rows_of(table, "GBR")
    assert (mexico[2019]["arms_seized"], mexico[2021]["arms_seized"]) == (7486, 20637)
    assert (mexico[2016]["arms_found"], mexico[2016]["arms_surrendered"]) == (1068, 11017)
    # 48 in the 2022 release, revised to 185 in the 2024 release.
    assert uk[2021]["arms_found"] == 185
    assert mexico[2023]["arms_seized"] is None
    assert (pc.count(table["arms_seized"]).as_py(), pc.count(table["arms_found"]).as_py(),
            pc.count(table["arms_surrendered"]).as_py()) == (486, 168, 167)


def test_rows_not_marked_latest_are_ignored(observations):
    old = release("2022-06-17")
    stale = with_column(old, "is_latest_release", [False] * old.num_rows)
    out = panel.build_panel(COUNTRIES, observations, stale, last_year=2024)
    assert pc.count(out["arms_seized"]).as_py() == 0
    stale_sdg = with_column(observations, "is_latest_release", [False] * observations.num_rows)
    out = panel.build_panel(COUNTRIES, stale_sdg, NO_SEIZURES, last_year=2024)
    assert pc.count(out["arms_traced_pct"]).as_py() == 0


def test_subnational_rows_stay_out_of_country_totals(observations):
    new = release("2024-08-26")
    mexico = pc.equal(new["iso3"], "MEX").to_pylist()
    sub = with_column(new, "is_subnational", mexico)
    out = panel.build_panel(COUNTRIES, observations, sub, last_year=2024)
    assert rows_of(out, "MEX")[2021]["arms_seized"] is None
    assert rows_of(out, "GBR")[2021]["arms_found"] == 185


def test_several_values_for_a_state_year_fail(observations):
    doubled = pa.concat_tables([observations, observations.filter(pc.equal(observations["m49"], 484))])
    with pytest.raises(ValueError, match="VC_ARM_SZTRACE .*several values for MEX 2021"):
        panel.build_panel(COUNTRIES, doubled, NO_SEIZURES, last_year=2024)


def test_no_un_state_is_an_error(observations):
    territories = COUNTRIES.filter(pc.is_null(COUNTRIES["un_status"]))
    with pytest.raises(ValueError, match="no UN member"):
        panel.build_panel(territories, observations, NO_SEIZURES, last_year=2024)


def test_latest_year():
    assert panel.latest_year(INDICATOR_OBSERVATIONS.schema.empty_table(), NO_SEIZURES, date(2026, 1, 2)) == 2026


@pytest.mark.parametrize("column, value", [
    ("arms_traced_pct", float("inf")), ("arms_traced_pct", 100.5), ("homicide_rate_male", -1.0),
    ("homicide_rate_female", 5000.0), ("arms_seized", 10**12), ("arms_found", -3),
])
def test_the_panel_suite_bounds_what_the_domain_allows(table, column, value):
    index = table.schema.get_field_index(column)
    values = table[column].to_pylist()
    values[0] = value
    bad = table.set_column(index, table.schema.field(index), pa.array(values, table.schema.field(index).type))
    result = Validator().validate(panel.PANEL, bad, {"today": "2026-11-29", "current_year": 2026})
    assert {f.kwargs["column"] for f in result.table_failures} == {column}


def test_the_panel_suite_passes_the_recorded_data(table):
    assert Validator().validate(panel.PANEL, table, {"today": "2026-11-29", "current_year": 2026}).success

"""tasks.panel on the recorded SDG and IAFQ data plus a hand-made participation table."""

from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pycountry
import pytest

from tasks import panel, sdg, unodc
from tasks.tables import FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIREARMS, ATT = "XVIII-12-c", "XXVI-8"
FETCHED = datetime(2026, 10, 10, tzinfo=timezone.utc)
NO_SEIZURES = FIREARMS_SEIZURES.schema.empty_table()

# Mexico in XVIII-12-c as published by UNTC: signature 31 Dec 2001, ratification 10 Apr 2003.
PARTICIPATION = pa.table({
    "mtdsg_no": [FIREARMS, FIREARMS, FIREARMS],
    "iso3": ["MEX", "FRA", None],
    "signature_date": pa.array([date(2001, 12, 31), date(2002, 2, 9), None], pa.date32()),
    "consent_date": pa.array([date(2003, 4, 10), None, date(2010, 1, 1)], pa.date32()),
})


def series(code: str, pages: int, size: int) -> pa.Table:
    return sdg.observations(
        [(sdg.series_data_url(sdg.BASE, code, page, size),
          (DATA / "sdg" / code / f"Series_Data_page{page}.json").read_bytes()) for page in range(1, pages + 1)],
        "recorded", FETCHED)


@pytest.fixture(scope="module")
def observations():
    return pa.concat_tables([series("VC_ARM_SZTRACE", 3, 50), series("VC_IHR_PSRC", 6, 1000)])


@pytest.fixture(scope="module")
def seizures():
    return pa.concat_tables([
        unodc.seizures((DATA / "unodc" / "iafq" / f"release-{r}" / "data_iafq_firearms_trafficking.xlsx").read_bytes(),
                       "u") for r in ("2022-06-17", "2024-08-26")])


@pytest.fixture(scope="module")
def table(observations, seizures):
    return panel.build_panel(PARTICIPATION, [FIREARMS, ATT], observations, seizures, last_year=2024)


def rows_of(table: pa.Table, iso3: str) -> dict[int, dict]:
    return {row["year"]: row for row in table.filter(pc.equal(table["iso3"], iso3)).to_pylist()}


def test_shape_and_schema(table):
    assert table.schema == panel.panel_schema([FIREARMS, ATT])
    assert table.schema.names[4:7] == ["party__xviii_12_c", "signatory__xviii_12_c", "years_party__xviii_12_c"]
    assert table.num_rows == len(pycountry.countries) * 25
    assert len(set(zip(table["iso3"].to_pylist(), table["year"].to_pylist()))) == table.num_rows
    assert (pc.min(table["year"]).as_py(), pc.max(table["year"]).as_py()) == (2000, 2024)


def test_no_aggregates(table):
    assert 1 not in set(table["m49"].to_pylist())
    assert table["m49"].null_count == 0


def test_mexico_firearms_protocol(table):
    mexico = rows_of(table, "MEX")
    assert [mexico[y]["party__xviii_12_c"] for y in (2000, 2002, 2003, 2024)] == [False, False, True, True]
    assert [mexico[y]["signatory__xviii_12_c"] for y in (2000, 2001, 2002)] == [False, True, True]
    assert [mexico[y]["years_party__xviii_12_c"] for y in (2002, 2003, 2010)] == [None, 0, 7]
    assert (mexico[2003]["m49"], mexico[2003]["country"]) == (484, "Mexico")


def test_signatory_only_and_absent_states(table):
    france, japan = rows_of(table, "FRA"), rows_of(table, "JPN")
    assert (france[2010]["signatory__xviii_12_c"], france[2010]["party__xviii_12_c"]) == (True, False)
    assert france[2010]["years_party__xviii_12_c"] is None
    assert (japan[2010]["signatory__xviii_12_c"], japan[2010]["party__xviii_12_c"]) == (False, False)


def test_treaty_missing_from_participation_is_unknown(table):
    for column in ("party__xxvi_8", "signatory__xxvi_8", "years_party__xxvi_8"):
        assert table[column].null_count == table.num_rows


def test_mexico_arms_traced_pct(table):
    mexico = rows_of(table, "MEX")
    assert {y: r["arms_traced_pct"] for y, r in mexico.items() if r["arms_traced_pct"] is not None} == {
        2021: 99.52, 2024: 67.0}
    assert pc.count(table["arms_traced_pct"]).as_py() == 104


def test_homicide_rate_needs_both_sexes(table, observations):
    # The recorded VC_IHR_PSRC holds FEMALE and MALE rows only.
    assert table["homicide_rate"].null_count == table.num_rows
    row = observations.filter(pc.and_(pc.equal(observations["m49"], 484),
                                      pc.equal(observations["series"], "VC_IHR_PSRC"))).slice(0, 1).to_pylist()[0]
    row.update(sex="BOTHSEX", dimensions=[("Sex", "BOTHSEX"), ("Reporting Type", "G")], value=25.5)
    both = pa.concat_tables([observations, pa.Table.from_pylist([row], schema=INDICATOR_OBSERVATIONS.schema)])
    out = panel.build_panel(PARTICIPATION, [FIREARMS], both, NO_SEIZURES, first_year=1990, last_year=2024)
    assert rows_of(out, "MEX")[row["year"]]["homicide_rate"] == 25.5


def test_iafq_totals_from_latest_release(table):
    mexico, uk = rows_of(table, "MEX"), rows_of(table, "GBR")
    assert (mexico[2021]["arms_seized"], mexico[2016]["arms_found"], mexico[2016]["arms_surrendered"]) == (
        20637, 1068, 11017)
    # 48 in the 2022 release, revised to 185 in the 2024 release.
    assert uk[2021]["arms_found"] == 185
    assert mexico[2023]["arms_seized"] is None
    assert (pc.count(table["arms_seized"]).as_py(), pc.count(table["arms_found"]).as_py(),
            pc.count(table["arms_surrendered"]).as_py()) == (486, 168, 167)


def test_several_values_for_a_state_year_fail(observations):
    doubled = pa.concat_tables([observations, observations.filter(pc.equal(observations["m49"], 484))])
    with pytest.raises(ValueError, match="VC_ARM_SZTRACE .*several values for MEX 2021"):
        panel.build_panel(PARTICIPATION, [FIREARMS], doubled, NO_SEIZURES, last_year=2024)


def test_treaty_slug():
    assert panel.treaty_slug("XVIII-12-c") == "xviii_12_c"
    assert panel.treaty_slug("XXVI-8") == "xxvi_8"

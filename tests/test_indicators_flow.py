"""The indicators flow and the full refresh end to end, on the recorded SDG pages and IAFQ releases."""

from __future__ import annotations

import duckdb
import pytest

from conftest import SHARED, make_mirror
from flows.cli import main
from tasks import sdg
from test_ratification_flow import published_files
from test_unodc import URL as IAFQ_URL, recorded, with_renamed_header

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    """One full refresh over the recorded mirror (treaties, indicators, panel), shared by the read-only tests."""
    warehouse = tmp_path_factory.mktemp("refresh") / "wh"
    code = main(["run", "--mirror", str(SHARED), "--warehouse", str(warehouse)])
    return code, warehouse


def sql(warehouse, query: str):
    return duckdb.sql(query.replace("{wh}", str(warehouse))).fetchall()


def test_full_refresh_exit_code_reflects_the_quarantined_untoc(refreshed):
    code, warehouse = refreshed
    assert code == 1
    assert sorted(p.stem for p in (warehouse / "indicator_observations").glob("*.parquet")) == [
        "VC_ARM_SZTRACE", "VC_IHR_PSRC"]


def test_sdg_series_are_published_with_release_and_aggregates_flagged(refreshed):
    _, wh = refreshed
    assert sql(wh, "select count(*), count(distinct m49), min(release) from '{wh}/indicator_observations/*.parquet' "
                   "where series = 'VC_ARM_SZTRACE'") == [(104, 43, "2026.Q3.G.01")]
    assert sql(wh, "select value, footnotes from '{wh}/indicator_observations/*.parquet' "
                   "where series = 'VC_ARM_SZTRACE' and iso3 = 'MEX' and year = 2021") == [
        (99.52, ["2021-2022 average based on available data"])]
    assert sql(wh, "select count(*) from '{wh}/indicator_observations/*.parquet' where series = 'VC_IHR_PSRC'") == [(5040,)]
    assert sql(wh, "select is_country, iso3 from '{wh}/indicator_observations/*.parquet' "
                   "where series = 'VC_IHR_PSRC' and m49 = 1 limit 1") == [(False, None)]


def test_both_iafq_releases_and_their_revisions(refreshed):
    _, wh = refreshed
    assert sql(wh, "select release_date::varchar, count(*) from '{wh}/firearms_seizures/*.parquet' group by 1 order by 1") == [
        ("2022-06-17", 11032), ("2024-08-26", 15468)]
    assert sql(wh, "select change, count(*) from '{wh}/indicator_revisions/*.parquet' group by 1 order by 1") == [
        ("added", 4785), ("removed", 349), ("value_changed", 35)]


def test_panel_mexico_firearms_protocol_and_tracing(refreshed):
    _, wh = refreshed
    rows = dict(sql(wh, "select year, party from '{wh}/treaty_status_by_year/*.parquet' "
                        "where iso3 = 'MEX' and mtdsg_no = 'XVIII-12-c'"))
    assert rows[2002] is False and rows[2003] is True and rows[2024] is True
    assert sql(wh, "select year, arms_traced_pct from '{wh}/country_year_panel/*.parquet' "
                   "where iso3 = 'MEX' and arms_traced_pct is not null order by year") == [(2021, 99.52), (2024, 67.0)]
    assert sql(wh, "select count(*), count(distinct iso3 || year) from '{wh}/country_year_panel/*.parquet'") == [(4875, 4875)]
    assert sql(wh, "select count(*) from '{wh}/country_year_panel/*.parquet' where arms_seized = 0 and iso3 = 'ATA'") == [(0,)]


def test_a_renamed_iafq_column_publishes_nothing_for_that_release(tmp_path, capsys):
    url = IAFQ_URL.format("2024-08")
    broken = with_renamed_header(recorded("2024-08-26"), "VALUE", "Value")
    mirror = make_mirror(tmp_path, {url: ("iafq.xlsx", broken)})
    warehouse = tmp_path / "wh"
    assert main(["run", "--only", "indicators", "--mirror", str(mirror), "--warehouse", str(warehouse)]) == 1
    out = capsys.readouterr().out
    assert f"unodc: {url}:" in out and "Value" in out
    assert [p.stem for p in (warehouse / "firearms_seizures").glob("*.parquet")] == ["2022-06-17"]
    assert not (warehouse / "indicator_revisions").exists(), "no revisions from a release that was not published"


def test_a_missing_sdg_page_fails_the_series_clearly(tmp_path, capsys):
    page2 = sdg.series_data_url(sdg.BASE, "VC_ARM_SZTRACE", 2, 50)
    warehouse = tmp_path / "wh"
    first = ["run", "--only", "indicators", "--warehouse", str(warehouse)]
    assert main([*first, "--mirror", str(SHARED)]) == 0
    before = published_files(warehouse)
    assert main([*first, "--mirror", str(make_mirror(tmp_path, drop={page2}))]) == 1
    assert f"sdg: {page2}: HTTP 404" in capsys.readouterr().out
    assert published_files(warehouse) == before

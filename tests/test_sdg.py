"""tasks.sdg against the recorded SDG API pages in ../shared/data/sdg."""

import json
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tasks import sdg
from tasks.errors import ParseError
from tasks.tables import INDICATOR_OBSERVATIONS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FETCHED = datetime(2026, 10, 10, 5, 47, tzinfo=timezone.utc)
TRACE, HOMICIDE = "VC_ARM_SZTRACE", "VC_IHR_PSRC"
PAGING = {TRACE: (3, 50, "16.4.2"), HOMICIDE: (6, 1000, "16.1.1")}


def recorded_pages(series: str) -> list[tuple[str, bytes]]:
    pages, size, _ = PAGING[series]
    return [(sdg.series_data_url(sdg.BASE, series, page, size),
             (DATA / "sdg" / series / f"Series_Data_page{page}.json").read_bytes()) for page in range(1, pages + 1)]


def recorded_release(series: str) -> str:
    url = sdg.series_list_url(sdg.BASE, PAGING[series][2])
    return sdg.release_for((DATA / "sdg" / series / "Indicator_Series_List.json").read_bytes(), url, series)


def edited(page: tuple[str, bytes], change) -> tuple[str, bytes]:
    doc = json.loads(page[1])
    change(doc)
    return page[0], json.dumps(doc).encode()


@pytest.fixture(scope="module")
def traced():
    return sdg.observations(recorded_pages(TRACE), recorded_release(TRACE), FETCHED)


@pytest.fixture(scope="module")
def homicide():
    return sdg.observations(recorded_pages(HOMICIDE), recorded_release(HOMICIDE), FETCHED)


def test_urls_are_the_recorded_ones():
    manifest = {entry["url"] for entry in json.loads((DATA / "manifest.json").read_text())}
    for series, (_, _, indicator) in PAGING.items():
        assert {url for url, _ in recorded_pages(series)} <= manifest
        assert sdg.series_list_url(sdg.BASE, indicator) in manifest
    assert sdg.series_data_url(sdg.BASE, TRACE, 2, 50) == (
        "https://unstats.un.org/sdgapi/v1/sdg/Series/Data?seriesCode=VC_ARM_SZTRACE&page=2&pageSize=50")


def test_release_read_from_series_list():
    assert recorded_release(TRACE) == "2026.Q3.G.01"
    assert recorded_release(HOMICIDE) == "2020.Q2.G.03"


def test_release_of_unlisted_series_fails():
    body = (DATA / "sdg" / TRACE / "Indicator_Series_List.json").read_bytes()
    with pytest.raises(ParseError, match="VC_ARM_SZDEST is not listed"):
        sdg.release_for(body, "u", "VC_ARM_SZDEST")


def test_parse_page_reads_paging():
    url, body = recorded_pages(TRACE)[2]
    page = sdg.parse_page(body, url)
    assert (page["total_elements"], page["total_pages"], page["page_number"], len(page["data"])) == (104, 3, 3, 4)


@pytest.mark.parametrize("body, problem", [
    (b"<html><body>Service Unavailable</body></html>", "not JSON"),
    (b'{"totalElements": 1, "data": []}', "page lacks pageNumber"),
    (b'{"totalElements": "1", "totalPages": 1, "pageNumber": 1, "data": []}', "totalElements is '1'"),
    (b"[]", "expected a JSON object"),
])
def test_parse_page_rejects_other_documents(body, problem):
    with pytest.raises(ParseError, match=problem) as error:
        sdg.parse_page(body, "https://example.org/page")
    assert error.value.source == "sdg" and error.value.url == "https://example.org/page"


def test_traced_series(traced):
    assert traced.schema == INDICATOR_OBSERVATIONS.schema
    assert traced.num_rows == 104
    assert len(set(traced["m49"].to_pylist())) == 43
    assert pc.all(traced["is_country"]).as_py()
    assert set(traced["units"].to_pylist()) == {"PERCENT"}
    assert set(traced["reporting_type"].to_pylist()) == {"G"}
    assert traced["sex"].null_count == 104
    assert set(traced["release"].to_pylist()) == {"2026.Q3.G.01"}
    assert set(traced["indicator"].to_pylist()) == {"16.4.2"}


def test_traced_mexico(traced):
    mexico = {row["year"]: row for row in traced.filter(pc.equal(traced["m49"], 484)).to_pylist()}
    assert sorted(mexico) == [2021, 2024]
    row = mexico[2021]
    assert (row["iso3"], row["geo_name"], row["value"], row["nature"], row["source"]) == (
        "MEX", "Mexico", 99.52, "C", "IAFQ")
    assert row["footnotes"] == ["2021-2022 average based on available data"]
    assert mexico[2024]["footnotes"] == []
    assert row["dimensions"] == [("Reporting Type", "G")]
    assert row["fetched_at"] == FETCHED


def test_homicide_series(homicide):
    assert homicide.num_rows == 5040
    assert set(homicide["sex"].to_pylist()) == {"FEMALE", "MALE"}
    assert set(homicide["units"].to_pylist()) == {"PER_100000_POP"}
    world = homicide.filter(pc.equal(homicide["m49"], 1)).to_pylist()
    assert world and all(r["geo_name"] == "World" and not r["is_country"] and r["iso3"] is None for r in world)
    aggregates = homicide.filter(pc.invert(homicide["is_country"]))
    assert aggregates["iso3"].null_count == aggregates.num_rows
    assert {1, 202, 419} <= set(aggregates["m49"].to_pylist())
    assert dict(homicide["dimensions"][0].as_py()) == {"Sex": "FEMALE", "Reporting Type": "G"}


def test_page_order_does_not_matter(traced):
    shuffled = sdg.observations(recorded_pages(TRACE)[::-1], "2026.Q3.G.01", FETCHED)
    assert sorted(shuffled["value"].to_pylist()) == sorted(traced["value"].to_pylist())


def test_missing_page_fails():
    pages = recorded_pages(HOMICIDE)
    with pytest.raises(ParseError, match=r"expected pages 1..6, got \[1, 2, 3, 5, 6\] \(missing \[4\]"):
        sdg.observations(pages[:3] + pages[4:], "r", FETCHED)


def test_repeated_page_fails():
    pages = recorded_pages(TRACE)
    with pytest.raises(ParseError, match=r"duplicate or unexpected \[2\]"):
        sdg.observations(pages[:2] + pages[1:], "r", FETCHED)


def test_row_count_must_match_total_elements():
    pages = recorded_pages(TRACE)
    pages[2] = edited(pages[2], lambda doc: doc["data"].pop())
    with pytest.raises(ParseError, match="totalElements is 104 but the 3 pages hold 103 observations") as error:
        sdg.observations(pages, "r", FETCHED)
    assert error.value.url == pages[0][0]


def test_pages_must_agree_on_totals():
    pages = recorded_pages(TRACE)
    pages[1] = edited(pages[1], lambda doc: doc.update(totalElements=105))
    with pytest.raises(ParseError, match="total_elements is 105 but .*page=1.* says 104"):
        sdg.observations(pages, "r", FETCHED)


def test_value_cells():
    def single_page_with_values(doc):
        doc.update(totalElements=4, totalPages=1, pageNumber=1)
        for observation, value in zip(doc["data"], ["", "NaN", "12.5", 7]):
            observation["value"] = value

    page = edited(recorded_pages(TRACE)[2], single_page_with_values)
    assert sdg.observations([page], "r", FETCHED)["value"].to_pylist() == [None, None, 12.5, 7.0]
    bad = edited(page, lambda doc: doc["data"][0].update(value="<5"))
    with pytest.raises(ParseError, match="value '<5' is not a number"):
        sdg.observations([bad], "r", FETCHED)


def test_several_releases_newest_is_taken():
    listing = json.dumps([{"code": "16.4.2", "series": [
        {"code": TRACE, "release": "2025.Q4.G.01"}, {"code": TRACE, "release": "2026.Q10.G.01"},
        {"code": TRACE, "release": "2026.Q2.G.03"}, {"code": "VC_OTHER", "release": "2099.Q1.G.01"}]}]).encode()
    assert sdg.releases_for(listing, "u", TRACE) == ["2026.Q10.G.01", "2026.Q2.G.03", "2025.Q4.G.01"]
    assert sdg.release_for(listing, "u", TRACE) == "2026.Q10.G.01"


def test_pinned_page_url():
    assert sdg.series_data_url(sdg.BASE, TRACE, 2, 50, "2026.Q3.G.01") == (
        "https://unstats.un.org/sdgapi/v1/sdg/Series/Data?seriesCode=VC_ARM_SZTRACE&page=2&pageSize=50"
        "&releaseCode=2026.Q3.G.01")


def test_missing_total_pages_is_computed():
    pages = [edited(page, lambda doc: doc.pop("totalPages")) for page in recorded_pages(TRACE)]
    assert sdg.parse_page(pages[0][1], pages[0][0])["total_pages"] == 3
    assert sdg.observations(pages, "r", FETCHED).num_rows == 104
    no_size = edited(pages[0], lambda doc: doc.pop("size"))
    assert sdg.parse_page(no_size[1], no_size[0], page_size=50)["total_pages"] == 3
    with pytest.raises(ParseError, match="no size"):
        sdg.parse_page(no_size[1], no_size[0])


@pytest.mark.parametrize("change, problem", [
    (lambda doc: doc.update(totalPages=3000), "totalPages is 3000 but totalElements 104 in pages of 50 make 3"),
    (lambda doc: doc.update(totalElements=10**9, totalPages=None), r"20000000 pages .* over the 500-page cap"),
])
def test_page_count_is_bounded(change, problem):
    url, body = edited(recorded_pages(TRACE)[0], change)
    with pytest.raises(ParseError, match=problem):
        sdg.parse_page(body, url)


@pytest.mark.parametrize("body, problem", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "nested 41 levels deep, over the 32-level cap"),
    (b'{"totalElements": ' + b"9" * 5000 + b"}", "a JSON number of 5000 characters"),
    (b'{"value": 1e400}', "JSON number 1e400 is out of range"),
    (b'{"value": Infinity}', "JSON constant Infinity is not a number"),
])
def test_json_is_bounded(body, problem):
    with pytest.raises(ParseError, match=problem):
        sdg.parse_page(body, "https://example.org/page")


def test_page_size_cap():
    url, body = recorded_pages(TRACE)[0]
    with pytest.raises(ParseError, match=r"response of \d+ bytes, over the 1000-byte cap"):
        sdg.parse_page(body, url, limits=sdg.Limits(max_page_bytes=1000))


def test_infinite_value_string_is_kept_for_the_suite():
    page = edited(recorded_pages(TRACE)[2], lambda doc: doc.update(totalElements=4, totalPages=1, pageNumber=1)
                  or doc["data"][0].update(value="Infinity"))
    assert sdg.observations([page], "r", FETCHED)["value"][0].as_py() == float("inf")


def test_pages_over_the_series_byte_budget_are_not_parsed():
    pages = recorded_pages(TRACE)
    budget = sum(len(body) for _, body in pages) - 1
    with pytest.raises(ParseError, match=rf"3 pages hold {budget + 1} bytes, over the {budget}-byte budget per series"):
        sdg.observations(pages, "r", FETCHED, limits=sdg.Limits(max_series_bytes=budget))
    assert sdg.observations(pages, "r", FETCHED, limits=sdg.Limits(max_series_bytes=budget + 1)).num_rows == 104

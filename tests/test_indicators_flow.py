"""The indicators flow and the full refresh end to end, on the recorded SDG pages and IAFQ releases."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from conftest import REPORT_PAGE, SHARED, make_mirror, report_page
from flows.cli import main
from tasks import registry, sdg
from test_ratification_flow import published_files
from test_unodc import HEAD, URL as IAFQ_URL, recorded, row, with_renamed_header, xlsx

LIST_16_4_2 = sdg.series_list_url(sdg.BASE, "16.4.2")

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
    assert sql(wh, "select release_date::varchar, count(*) from '{wh}/firearms_seizures*/*.parquet' group by 1 "
                   "order by 1") == [("2022-06-17", 11032), ("2024-08-26", 15468)], "with the older release beside it"
    assert sql(wh, "select release_date::varchar, count(*) from '{wh}/firearms_seizures/*.parquet' group by 1") == [
        ("2024-08-26", 15468)], "a glob over the table reads the latest release only"
    assert sql(wh, "select change, count(*) from '{wh}/indicator_revisions/*.parquet' group by 1 order by 1") == [
        ("added", 4785), ("removed", 349), ("value_changed", 35)]


def test_panel_mexico_firearms_protocol_and_tracing(refreshed):
    _, wh = refreshed
    rows = {year: (consent, party) for year, consent, party in sql(
        wh, "select year, consent_deposited, party from '{wh}/treaty_status_by_year/*.parquet' "
            "where iso3 = 'MEX' and mtdsg_no = 'XVIII-12-c'")}
    # ratified 10 April 2003; a party in force from the Protocol's entry into force, 3 July 2005
    assert [rows[y] for y in (2002, 2003, 2004, 2005, 2018)] == [
        (False, False), (True, False), (True, False), (True, True), (True, True)]
    assert max(rows) == 2018, "status by year runs to the as-of year of the recorded snapshot (2018-01-15)"
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
    page = {REPORT_PAGE: ("report.html", report_page("2022-06", "2024-08"))}
    assert main([*first, "--mirror", str(make_mirror(tmp_path, page))]) == 0
    before = published_files(warehouse)
    assert main([*first, "--mirror", str(make_mirror(tmp_path, page, drop={page2}))]) == 1
    assert f"sdg: {page2}: HTTP 404" in capsys.readouterr().out
    assert published_files(warehouse) == before


def sources_folder(tmp_path: Path, edit=None) -> Path:
    """A copy of the project's sources/ folder, with one YAML file edited as text: edit = (name, old, new)."""
    folder = tmp_path / "sources"
    shutil.copytree(registry.FOLDER, folder, dirs_exist_ok=True)
    if edit:
        name, old, new = edit
        path = folder / f"{name}.yaml"
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new))
    return folder


def new_release(date_text: str) -> bytes:
    """An IAFQ workbook as published now: Year as text and number, censored and formatted VALUE, sub-national
    pseudo-codes next to their parent state."""
    return xlsx([["UNODC"], [date_text], HEAD[2],
                 row("MEX", "2023", 21000.0), row("MEX", 2022, "<5"), row("BRA", "2023", "1,234"),
                 row("GBR", 2023, 12.0), row("GBR_E_W", "2023", 9.0), row("GBR_NI", 2023, "<3"),
                 row("GBR_S", "2023", 3.0), row("IRQ_KRI", 2023, 4.0)])


NEW_URL = IAFQ_URL.format("2025-11").replace(".xlsx", "_0.xlsx")


def test_a_new_release_is_found_on_the_report_page_and_supersedes_the_latest(tmp_path, capsys):
    warehouse = tmp_path / "wh"
    run = ["run", "--only", "iafq", "--warehouse", str(warehouse)]
    first = make_mirror(tmp_path, {REPORT_PAGE: ("report.html", report_page("2024-08"))})
    assert main([*run, "--mirror", str(first)]) == 0
    assert sql(warehouse, "select release_date::varchar, bool_and(is_latest_release) from "
                          "'{wh}/firearms_seizures*/*.parquet' group by 1 order by 1") == [
        ("2022-06-17", False), ("2024-08-26", True)]

    # On a rerun the 2024-08 download fails, then its URL serves a workbook that does not parse: each time that
    # release is one batch, failed (the failure wins over "unchanged"), under its release date as published, in the
    # summary, the run log and `status`; its data stays published.
    gone = IAFQ_URL.format("2024-08")
    broken = with_renamed_header(recorded("2024-08-26"), "VALUE", "Value")
    for replace, drop, problem in (({}, {gone}, "HTTP 404"), ({gone: ("broken.xlsx", broken)}, set(), "Value")):
        capsys.readouterr()
        mirror = make_mirror(tmp_path, {REPORT_PAGE: ("report.html", report_page("2024-08")), **replace}, drop=drop)
        assert main([*run, "--mirror", str(mirror)]) == 1
        out = capsys.readouterr().out
        assert sorted(re.findall(r"^indicators +([^/\s]\S*) +(\w+)", out, re.M)) == [
            ("2022-06-17", "unchanged"), ("2024-08-26", "failed")], out
        assert "total: 0 published, 1 unchanged, 0 quarantined, 1 failed" in out
        assert re.search(rf"^indicators / 2024-08-26 failed: its last good data stays published\n +\w+: {gone}: "
                         rf".*{problem}", out, re.M), out
        (log,) = [json.loads(p.read_text()) for p in sorted((warehouse / "_runs").glob("*.json"))[-1:]]
        assert sorted((b["batch"], b["status"]) for b in log["batches"]) == [("2022-06-17", "unchanged"),
                                                                            ("2024-08-26", "failed")]
        capsys.readouterr()
        assert main(["status", "--warehouse", str(warehouse), "--json"]) == 1
        assert [(q["batch"], q["status"]) for q in json.loads(capsys.readouterr().out)["open_quarantines"]] == [
            ("2024-08-26", "failed")]

    # UNODC uploads a new release in November 2025, then re-uploads it the same month as _0; the page links both.
    page = report_page("2024-08", "2025-11").replace(b"</ul>", (
        f'<li><a href="{NEW_URL}">Firearms trafficking data (revised)</a></li></ul>').encode())
    second = make_mirror(tmp_path, {REPORT_PAGE: ("report2.html", page),
                                    NEW_URL: ("new.xlsx", new_release("14/11/2025"))})
    capsys.readouterr()
    assert main([*run, "--mirror", str(second)]) == 0, capsys.readouterr().out
    assert sql(warehouse, "select release_date::varchar, count(*), bool_and(is_latest_release), bool_or("
                          "is_latest_release) from '{wh}/firearms_seizures*/*.parquet' group by 1 order by 1") == [
        ("2022-06-17", 11032, False, False), ("2024-08-26", 15468, False, False), ("2025-11-14", 8, True, True)]
    assert sql(warehouse, "select iso3, subnational_code, is_subnational, value, value_text, value_flag "
                          "from '{wh}/firearms_seizures/*.parquet' where is_latest_release order by all") == [
        ("BRA", None, False, 1234, "1,234", "formatted"),
        ("GBR", "GBR_E_W", True, 9, None, None),
        ("GBR", "GBR_NI", True, None, "<3", "censored"),
        ("GBR", "GBR_S", True, 3, None, None),
        ("GBR", None, False, 12, None, None),
        ("IRQ", "IRQ_KRI", True, 4, None, None),
        ("MEX", None, False, 21000, None, None),
        ("MEX", None, False, None, "<5", "censored"),
    ]
    assert sql(warehouse, "select old_release, new_release, change, count(*) from '{wh}/indicator_revisions/*.parquet' "
                          "where new_release = '2025-11-14' group by all order by all") == [
        ("2024-08-26", "2025-11-14", "added", 7), ("2024-08-26", "2025-11-14", "removed", 15467),
        ("2024-08-26", "2025-11-14", "value_changed", 1)]  # Mexico 2022 arms seized: 23,029 -> censored "<5"
    assert sql(warehouse, "select old_value, new_value from '{wh}/indicator_revisions/*.parquet' "
                          "where change = 'value_changed' and new_release = '2025-11-14'") == [(23029.0, None)]
    assert sql(warehouse, "select count(*) from '{wh}/indicator_revisions/*.parquet' "
                          "where new_release = '2024-08-26'") == [(4785 + 349 + 35,)]

    # The page stops linking the old releases and the configuration pins none: they stay published, with a note.
    folder = sources_folder(tmp_path, ("iafq", "releases:\n  - https://data.unodc.org/sites/dataportal.unodc.org/files/"
                                               "2022-06/data_iafq_firearms_trafficking.xlsx\n  - https://data.unodc.org"
                                               "/sites/dataportal.unodc.org/files/2024-08/data_iafq_firearms_trafficking"
                                               ".xlsx\n", "releases: []\n"))
    only_new = make_mirror(tmp_path, {REPORT_PAGE: ("report3.html", page.replace(b"2024-08", b"2025-11")),
                                      NEW_URL: ("new.xlsx", new_release("14/11/2025"))})
    capsys.readouterr()
    assert main([*run, "--mirror", str(only_new), "--sources", str(folder)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^indicators +2022-06-17 +unchanged +not among the releases read this run \(no longer linked ",
                     out, re.M), out
    assert re.search(r"^indicators +2025-11-14 +unchanged ", out, re.M), out
    assert sorted(p.stem for p in (warehouse / "firearms_seizures").glob("*.parquet")) == ["2025-11-14"]
    assert sorted(p.stem for p in (warehouse / "firearms_seizures_releases").glob("*.parquet")) == [
        "2022-06-17", "2024-08-26"]


def test_sdg_series_listed_under_two_releases_is_pinned_to_the_newest(tmp_path):
    pages = {}
    for n in (1, 2, 3):
        doc = json.loads((SHARED / "sdg" / "VC_ARM_SZTRACE" / f"Series_Data_page{n}.json").read_bytes())
        doc.pop("totalPages")  # as the API sometimes serves them
        pages[sdg.series_data_url(sdg.BASE, "VC_ARM_SZTRACE", n, 50, "2026.Q4.G.01")] = (
            f"page{n}.json", json.dumps(doc).encode())
    listing = json.loads((SHARED / "sdg" / "VC_ARM_SZTRACE" / "Indicator_Series_List.json").read_bytes())
    listing[0]["series"].append({**listing[0]["series"][0], "release": "2026.Q4.G.01"})
    mirror = make_mirror(tmp_path, {LIST_16_4_2: ("list.json", json.dumps(listing).encode()), **pages})
    warehouse = tmp_path / "wh"
    assert main(["run", "--only", "sdg", "--mirror", str(mirror), "--warehouse", str(warehouse)]) == 0
    assert sql(warehouse, "select series, release, count(*), bool_and(is_latest_release) from "
                          "'{wh}/indicator_observations/*.parquet' group by all order by all") == [
        ("VC_ARM_SZTRACE", "2026.Q4.G.01", 104, True), ("VC_IHR_PSRC", "2020.Q2.G.03", 5040, True)]
    assert not (warehouse / "firearms_seizures").exists(), "--only sdg runs that source alone"


def test_an_infinite_rate_and_a_new_dimension_are_quarantined(tmp_path, capsys):
    doc = json.loads((SHARED / "sdg" / "VC_ARM_SZTRACE" / "Series_Data_page3.json").read_bytes())
    doc["data"][0]["dimensions"]["Weapon type"] = "Pistol"
    page3 = sdg.series_data_url(sdg.BASE, "VC_ARM_SZTRACE", 3, 50)
    homicide = json.loads((SHARED / "sdg" / "VC_IHR_PSRC" / "Series_Data_page6.json").read_bytes())
    homicide["data"][0]["value"] = "Infinity"
    page6 = sdg.series_data_url(sdg.BASE, "VC_IHR_PSRC", 6, 1000)
    mirror = make_mirror(tmp_path, {page3: ("p3.json", json.dumps(doc).encode()),
                                    page6: ("p6.json", json.dumps(homicide).encode())})
    warehouse = tmp_path / "wh"
    assert main(["run", "--only", "sdg", "--mirror", str(mirror), "--warehouse", str(warehouse)]) == 1
    out = capsys.readouterr().out
    assert "Weapon type" in out and "known SDG dimension keys" in out
    assert "inf" in out and "finite" in out
    assert not (warehouse / "indicator_observations").exists()


@pytest.mark.parametrize("edit, problem", [
    (("iafq", "releases:\n  - https", "releases: https://x\nold:\n  - https"),
     "key releases: Input should be a valid list"),
    (("iafq", "report_pages:", "report_pagse:"), "key report_pagse: Extra inputs are not permitted"),
    (("sdg", "page_size: 50", "page_size: 0"),
     "series[1] (VC_ARM_SZTRACE), key page_size: Input should be greater than 0"),
    (("sdg", "code: VC_IHR_PSRC", "code: {a: b}"), "series[2], key code: Input should be a valid string"),
    (("sdg", "base: https://unstats.un.org/sdgapi/v1/sdg", "base: ''"), "key base: Input should be a valid URL"),
    (("iafq", "  producer: United Nations Office on Drugs and Crime (UNODC)\n", ""),
     "origin, key producer: Field required"),
])
def test_a_bad_sources_configuration_is_a_usage_error_naming_file_entry_and_key(tmp_path, capsys, edit, problem):
    folder = sources_folder(tmp_path, edit)
    assert main(["run", "--only", "indicators", "--sources", str(folder), "--warehouse", str(tmp_path / "wh")]) == 2
    err = capsys.readouterr().err
    assert f"{folder / edit[0]}.yaml" in err and problem in err, err
    assert not (tmp_path / "wh").exists()


def test_a_bad_treaty_source_configuration_is_a_usage_error_when_treaties_run(tmp_path, capsys):
    folder = sources_folder(tmp_path, ("untc", "hosts:\n  - https://treaties.un.org\n", ""))
    assert main(["run", "--only", "treaties", "--sources", str(folder), "--warehouse", str(tmp_path / "wh")]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'untc'}.yaml" in err and "key hosts: Field required" in err, err
    assert not (tmp_path / "wh").exists()

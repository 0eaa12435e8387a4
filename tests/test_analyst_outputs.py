"""warehouse/armswatch.duckdb and warehouse/report/index.html after a full run over the recorded mirror: the
README's analyst queries, latest-release views, a moved warehouse, the report in a real browser, offline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from PIL import Image, ImageStat

import browser
from conftest import REPORT_PAGE, SHARED, make_mirror, report_page
from flows.cli import main
from tasks import duckdb_views, registry, report
from tasks.panel import PUBLISHED_TABLES

pytestmark = pytest.mark.usefixtures("prefect_harness")
PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A full run (treaties, indicators, countries, status, panel, DuckDB file, report) with the Firearms
    Protocol and the Arms Trade Treaty over the recorded mirror plus a UNODC report page linking its two releases,
    then a second run over the same sources."""
    root = tmp_path_factory.mktemp("analyst")
    catalog = root / "treaties.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n"
                       "- {id: XXVI-8, short_name: Arms Trade Treaty}\n")
    wh = root / "wh"
    mirror = make_mirror(root, {REPORT_PAGE: ("report.html", report_page("2022-06", "2024-08"))})
    args = ["run", "--mirror", str(mirror), "--warehouse", str(wh), "--treaties", str(catalog)]
    assert main(args) == 0
    first = {p: p.stat().st_mtime_ns for p in (wh / duckdb_views.DATABASE, wh / "report" / "index.html")}
    assert main(args) == 0
    return wh, first


def readme_queries() -> list[str]:
    """The SQL blocks of the README's analyst section."""
    section = README.read_text().split("## Analyst queries", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def test_a_view_per_table_and_latest_views(warehouse):
    wh, _ = warehouse
    with duckdb_views.connect(wh) as con:
        views = {v for (v,) in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
        assert {"treaties", "participation", "countries", "treaty_status", "treaty_status_by_year",
                "country_year_panel", "firearms_seizures_latest", "indicator_observations_latest"} <= views
        assert con.execute("select value from firearms_seizures_latest where iso3 = 'MEX' and year = 2019 and "
                           "indicator = 'Arms seized' and dimension = 'Total' and category = 'Total'").fetchall() == [
            (7486,)]
        assert con.execute("select count(*) from indicator_observations_latest").fetchall() == [(5144,)]
        assert con.execute("select count(*) from indicator_revisions where change = 'removed' "
                           "and category = 'Drugs'").fetchall() == [(97,)], "typed revision keys"


def test_a_naive_glob_reads_the_latest_release_only(warehouse):
    """polars, pandas and DuckDB over `firearms_seizures/*.parquet` (or the folder) read the latest IAFQ release
    only; the older release's copy is in firearms_seizures_releases/; _history files carry the run that wrote
    them."""
    import pandas as pd
    import polars as pl

    wh, _ = warehouse
    with duckdb_views.connect(wh) as con:
        latest = con.execute("select count(*) from firearms_seizures_latest").fetchone()[0]
        releases = con.execute("select count(distinct release_date) from firearms_seizures").fetchone()[0]
    assert releases == 2 and latest > 10000
    assert pl.read_parquet(wh / "firearms_seizures" / "*.parquet").height == latest
    assert len(pd.read_parquet(wh / "firearms_seizures")) == latest
    assert duckdb.sql(f"select count(*) from '{wh}/firearms_seizures/*.parquet'").fetchall() == [(latest,)]
    assert [p.name for p in (wh / "firearms_seizures_releases").iterdir()] == ["2022-06-17.parquet"]
    mexico = pl.read_parquet(wh / "firearms_seizures" / "*.parquet").filter(
        (pl.col("iso3") == "MEX") & (pl.col("year") == 2010) & (pl.col("indicator") == "Arms seized")
        & (pl.col("category") == "Total") & (pl.col("dimension") == "Total"))
    assert mexico.height == 1, "counted once"
    runs = pl.read_parquet(wh / "_history" / "firearms_seizures" / "*" / "*.parquet")["run_id"].unique()
    assert runs.len() >= 1 and all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", r) for r in runs)


@pytest.fixture(scope="session")
def oldest_duckdb(tmp_path_factory) -> Path:
    """The Python of a separate environment holding the oldest DuckDB release armswatch.duckdb promises to open
    (duckdb_views.OLDEST_READER), made with the project's uv (from its cache, else PyPI); skipped when neither has
    it (no registry reachable)."""
    uv = shutil.which("uv") or str(PROJECT / ".tools" / "bin" / "uv")  # `make` bootstraps it there
    if not Path(uv).exists():
        pytest.skip(f"no uv to make a separate environment with (run `make setup`): {uv}")
    env = tmp_path_factory.mktemp("oldest-duckdb") / "venv"
    made = subprocess.run([uv, "venv", "-q", str(env), "--python", sys.executable], capture_output=True, text=True)
    python = env / "bin" / "python"
    if made.returncode == 0:
        made = subprocess.run([uv, "pip", "install", "-q", "--python", str(python),
                               f"duckdb=={duckdb_views.OLDEST_READER}"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"duckdb=={duckdb_views.OLDEST_READER} could not be installed (registry unreachable?): "
                    f"{made.stderr.strip()[-300:]}")
    return python


OLD_READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(duckdb.__version__)
print(con.sql("select count(*) from firearms_seizures_latest").fetchone()[0])
print(con.sql("select count(*) from treaty_status where status = 'party' and mtdsg_no = 'XVIII-12-c'").fetchone()[0])
print(con.sql("select comment from duckdb_columns() where table_name = 'participation' and column_name = 'iso3'")
      .fetchone()[0])
"""


def test_the_oldest_duckdb_of_the_year_opens_the_file_from_another_folder(warehouse, oldest_duckdb, tmp_path):
    wh, _ = warehouse
    with duckdb_views.connect(wh) as con:
        latest = con.execute("select count(*) from firearms_seizures_latest").fetchone()[0]
        parties = con.execute("select count(*) from treaty_status where status = 'party' "
                              "and mtdsg_no = 'XVIII-12-c'").fetchone()[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shown = subprocess.run([str(oldest_duckdb), "-c", OLD_READER, str(wh / duckdb_views.DATABASE)], cwd=elsewhere,
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [duckdb_views.OLDEST_READER, str(latest), str(parties),
                                         "ISO 3166-1 alpha-3; null for participants that are not states"]


def test_views_and_columns_carry_the_data_dictionary(warehouse):
    from tasks.tables import PARTICIPATION

    wh, _ = warehouse
    with duckdb_views.connect(wh) as con:
        views = dict(con.execute("select view_name, comment from duckdb_views() where not internal").fetchall())
        columns = dict(con.execute("select column_name, comment from duckdb_columns() "
                                   "where table_name = 'participation'").fetchall())
        missing = con.execute("select table_name, column_name from duckdb_columns() where comment is null "
                              "and table_name in (select view_name from duckdb_views() where not internal)").fetchall()
    assert views["participation"] == PARTICIPATION.doc and views["firearms_seizures_latest"].endswith("release only.")
    assert columns["run_id"].startswith("The armswatch run that published")
    assert missing == [], "every column of every view is described"


def test_a_warehouse_whose_path_has_a_comma_quote_or_bracket_gets_working_views(warehouse, tmp_path, monkeypatch):
    wh, _ = warehouse
    odd = tmp_path / "a,b 'c' [1]" / "wh"
    shutil.copytree(wh, odd, ignore=shutil.ignore_patterns("_raw", "_docs", "report", "_quarantine"))
    duckdb_views.build(odd, list(PUBLISHED_TABLES))
    monkeypatch.chdir(tmp_path)
    with duckdb_views.connect(wh) as con:
        rows = con.execute("select count(*) from participation").fetchone()[0]
    with duckdb_views.connect(odd) as con:
        assert con.execute("select count(*) from participation").fetchone()[0] == rows > 200
        assert con.execute("select count(*) from treaty_status").fetchall() == [(390,)]
        [(sql,)] = con.execute("select sql from duckdb_views() where view_name = 'countries'").fetchall()
    assert f"'{str(odd).replace(chr(39), chr(39) * 2)}/_history/countries/" in sql, "the copy's own files"


def test_csv_of_the_latest_release_and_a_valid_frictionless_datapackage(warehouse):
    """csv/<table>.csv for every table (UTF-8, ISO dates, latest release only) and datapackage.json describing
    each with its schema, descriptions, sources and licences; `frictionless validate` (the command) passes."""
    import csv
    import io

    from tasks import datapackage
    from tasks.tables import FIREARMS_SEIZURES, PARTICIPATION

    wh, _ = warehouse
    shown = subprocess.run([str(Path(sys.executable).with_name("frictionless")), "validate", "--json",
                            str(wh / datapackage.PACKAGE)], capture_output=True, text=True)
    verdict = json.loads(shown.stdout)
    assert shown.returncode == 0 and verdict["valid"], [t["errors"][:3] for t in verdict["tasks"] if t["errors"]]
    package = json.loads((wh / datapackage.PACKAGE).read_text())
    resources = {r["name"]: r for r in package["resources"]}
    assert list(resources) == [t.name for t in PUBLISHED_TABLES]
    described = {f["name"]: f for f in resources["participation"]["schema"]["fields"]}
    assert [f["name"] for f in resources["participation"]["schema"]["fields"]] == PARTICIPATION.schema.names
    assert described["consent_date"]["type"] == "date" and described["is_party"]["type"] == "boolean"
    assert described["iso3"]["description"] == "ISO 3166-1 alpha-3; null for participants that are not states"
    assert described["mtdsg_no"]["constraints"] == {"required": True}
    titles = {name: {s["title"] for s in r["sources"]} for name, r in resources.items()}
    assert titles["participation"] == {registry.treaty_source().origin.title}
    assert titles["country_year_panel"] == {o.title for o in registry.origins()[1:]}, "M49, SDG and IAFQ"
    assert all(r["licenses"] and r["description"] for r in resources.values())
    with duckdb_views.connect(wh) as con:
        latest = con.execute("select count(*) from firearms_seizures_latest").fetchone()[0]
    text = (wh / "csv" / "firearms_seizures.csv").read_bytes().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == latest and {r["is_latest_release"] for r in rows} == {"true"}
    assert list(rows[0]) == FIREARMS_SEIZURES.schema.names
    participation = list(csv.DictReader(io.StringIO((wh / "csv" / "participation.csv").read_text("utf-8"))))
    mexico = next(r for r in participation if r["iso3"] == "MEX" and r["mtdsg_no"] == "XVIII-12-c")
    assert mexico["consent_date"] == "2003-04-10"
    treaties = list(csv.DictReader(io.StringIO((wh / "csv" / "treaties.csv").read_text("utf-8"))))
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", t["fetched_at"]) for t in treaties)
    countries = (wh / "csv" / "countries.csv").read_bytes().decode("utf-8")
    assert "Côte d’Ivoire" in countries and "Curaçao" in countries, "UTF-8 names"


def test_an_output_that_cannot_be_written_fails_the_run(warehouse, tmp_path):
    from flows.panel import OUTPUTS, analyst_outputs
    from tasks.audit import Outcome
    from tasks.run import Report, open_run

    wh, _ = warehouse
    copy = tmp_path / "wh"
    shutil.copytree(wh, copy, ignore=shutil.ignore_patterns("_raw", "_docs", "_quarantine"))
    (copy / duckdb_views.DATABASE).unlink()
    (copy / duckdb_views.DATABASE).mkdir()  # the database cannot be written there
    reports = [Report("treaties", "run", [Outcome("XXVI-8", "published")])]
    with open_run(str(copy), None) as run:
        assert analyst_outputs(run, reports) == []
    [failed] = [o for o in reports[-1].outcomes if o.status == "failed"]
    assert failed.key == OUTPUTS and f"could not build {duckdb_views.DATABASE}" in failed.reason
    assert not reports[-1].ok, "the run's state and exit code say so"


def test_readme_queries_answer(warehouse):
    wh, _ = warehouse
    queries = readme_queries()
    assert len(queries) == 3
    with duckdb_views.connect(wh) as con:
        not_att = con.execute(queries[0]).fetchall()
        cumulative = con.execute(queries[1]).fetchall()
        tracing = con.execute(queries[2]).fetchall()
    assert len(not_att) == 42 and ("Algeria",) in not_att and ("Mexico",) not in not_att
    assert [row for row in cumulative if row[0] in (2002, 2013, 2017)] == [
        (2002, 3, 0, 0, 0), (2013, 107, 106, 9, 0), (2017, 114, 114, 94, 94)]
    assert {row[0] for row in tracing} == {"party", "signatory", "no_action"}
    assert sum(row[1] for row in tracing) == 43


def test_report_is_rebuilt_only_when_something_changed(warehouse):
    wh, first = warehouse
    assert {p: p.stat().st_mtime_ns for p in first} == first, "the second, unchanged run rewrote nothing"


def test_a_treaties_run_that_published_refreshes_status_views_and_report_and_one_that_did_not_leaves_them(
        warehouse, tmp_path, capsys):
    """The daily treaties run alone (not the refresh): what it published reaches treaty_status, the DuckDB views
    and the report in the same run; a rerun that published nothing rebuilds none of them."""
    wh, _ = warehouse
    copy = tmp_path / "wh"
    shutil.copytree(wh, copy)
    catalog = tmp_path / "treaties.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n- {id: XXVI-8, short_name: Arms Trade "
                       "Treaty}\n- {id: XXVI-2, short_name: CCW}\n")
    args = ["run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", str(copy), "--treaties", str(catalog)]
    outputs = (copy / duckdb_views.DATABASE, copy / "report" / "index.html")
    before = [p.stat().st_mtime_ns for p in outputs]
    assert main(args) == 0
    assert re.search(r"panel +XXVI-2 +published", capsys.readouterr().out)
    with duckdb_views.connect(copy) as con:
        assert con.execute("select count(*) from treaty_status where mtdsg_no = 'XXVI-2'").fetchall() == [(195,)]
    rebuilt = [p.stat().st_mtime_ns for p in outputs]
    assert all(new != old for new, old in zip(rebuilt, before)) and "CCW" in outputs[1].read_text()
    assert main(args) == 0
    assert "panel" not in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in outputs] == rebuilt, "nothing published: nothing rebuilt"


def test_a_rerun_with_the_same_failures_rebuilds_nothing_and_a_new_failure_rebuilds(tmp_path):
    from flows.panel import BUILT_FOR, analyst_outputs_due, failing
    from tasks.audit import Outcome
    from tasks.run import Report

    def reports(*outcomes):
        return [Report("treaties", "run", list(outcomes))]

    same = reports(Outcome("XVIII-12", "quarantined", fingerprint="a1"), Outcome("XXVI-8", "unchanged"))
    for path in (duckdb_views.DATABASE, Path("report") / "index.html", Path("report") / report.COUNTRY_INDEX,
                 BUILT_FOR):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(failing(same))
    assert not analyst_outputs_due(tmp_path, same)
    assert analyst_outputs_due(tmp_path, reports(Outcome("XVIII-12", "quarantined", fingerprint="b2")))
    assert analyst_outputs_due(tmp_path, reports(Outcome("XXVI-8", "published")))
    (tmp_path / "report" / report.COUNTRY_INDEX).unlink()
    assert analyst_outputs_due(tmp_path, same), "the state pages are missing"
    (tmp_path / "report" / report.COUNTRY_INDEX).write_text("")
    (tmp_path / "report" / "index.html").unlink()
    assert analyst_outputs_due(tmp_path, same)


def section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]


def test_report_has_every_section_inline(warehouse):
    wh, _ = warehouse
    page = (wh / "report" / "index.html").read_text()
    for name in report.SECTIONS:
        assert f'<section id="{name}">' in page
    assert page.count("<svg") >= 7
    assert re.findall(r"""\bsrc\s*=|<script|<link|<img|url\((?!#)""", page) == [], "nothing is loaded"
    links = set(re.findall(r'href="([^"]+)"', page))
    external = {str(o.url_main) for o in registry.origins()} | {str(o.license.url) for o in registry.origins()}
    assert {link for link in links if not link.startswith("country/")} <= external, "only the sources link out"
    assert "Mexico" in page and "2021-2022 average" in page and "XVIII-12-c" in page
    top = page.split('<section id="map">')[0]
    assert "treaty status as at <b>2018-01-15</b>" in top and "release of <b>2024-08-26</b>" in top
    assert "2026.Q3.G.01" in top and "did not refresh" not in top, "every batch of the last run passed"
    regions = section(page, "status-by-region")
    assert "no_action" not in regions and "<th>no action</th>" in regions
    assert "<th>withdrawn</th>" not in regions, "no state withdrew from either treaty: no empty column"
    assert '<td>Latin America and the Caribbean</td><td class="n">33</td><td>28 (85 %)</td>' in regions
    assert '<td>Northern America</td><td class="n">2</td>' in regions
    intermediate = regions.split("By M49 intermediate region", 1)[1]
    assert intermediate.index("<td>Caribbean</td>") < intermediate.index("<td>South America</td>") \
        < intermediate.index("<td>Northern America</td>") < intermediate.index("<td>Melanesia</td>"), \
        "intermediate regions listed region by region"
    assert '<td>Western Africa</td><td class="n">16</td>' in intermediate
    tracing = section(page, "tracing-rates")
    assert ">99.5*<" in tracing and ">100*<" not in tracing, "Mexico 2021 (99.52, footnoted) is not rounded up"
    years = re.findall(r">(20\d\d)</text>", tracing)
    assert years == sorted(years) and "2013" in years, "every year in order, gaps kept"
    revised = section(page, "revisions")
    assert "Greece" in revised and ">503<" in revised and "503.0" not in revised and ">GRC<" not in revised
    per_year = section(page, "parties-per-year")
    firearms_2004 = r"<title>year: 2004; [^<]*: {}; measure: {}; treaty: Firearms Protocol \(XVIII-12-c\)"
    assert re.search(firearms_2004.format(32, "consents deposited"), per_year)
    assert re.search(firearms_2004.format(0, r"parties \(in force\)"), per_year), "in force from July 2005"
    assert "year: 2017;" in per_year and "year: 2018;" not in per_year and "2018 left out" in per_year
    signed = section(page, "signed-not-ratified")
    assert '<a href="country/USA.html">United States of America</a> (2013-09-25)' in signed


def test_state_pages_for_every_un_state_linked_from_the_map(warehouse):
    wh, _ = warehouse
    folder = wh / "report" / "country"
    assert len(list(folder.glob("[A-Z][A-Z][A-Z].html"))) == 195
    mexico = (folder / "MEX.html").read_text()
    firearms = re.search(r"<tr><td>Firearms Protocol \(XVIII-12-c\)</td>(.*?)</tr>", mexico).group(1)
    assert "<td>party</td>" in firearms and "2003-04-10 (ratification)" in firearms
    assert "treaty status as at <b>2018-01-15</b>" in mexico and "release of <b>2024-08-26</b>" in mexico
    indicators = section(mexico, "indicators")
    assert "99.5" in indicators and "2021-2022 average based on available data" in indicators
    assert "20,637" in indicators, "IAFQ arms seized"
    # The recorded VC_IHR_PSRC extract has FEMALE and MALE rows only: no both-sexes column, said so below the table.
    assert "<th>homicide rate female</th><th>homicide rate male</th>" in indicators
    assert "<th>homicide rate</th>" not in indicators
    assert "No value published for this state: homicide rate (VC_IHR_PSRC (16.1.1), both sexes" in indicators
    rate, count = re.compile(r"\d{1,3}(,\d{3})*\.\d\d"), re.compile(r"\d{1,3}(,\d{3})*")
    for state in folder.glob("[A-Z][A-Z][A-Z].html"):  # every page: each column shown has a value, one format each
        shown = section(state.read_text(), "indicators")
        columns = re.findall(r"<th>(.*?)</th>", shown)[1:]
        rows = [re.findall(r'<td class="n">(.*?)</td>', r) for r in re.findall(r"<tr><td>\d{4}</td>(.*?)</tr>", shown)]
        for i, column in enumerate(columns):
            values = [re.sub(r" <sup>\[\d+\]</sup>", "", r[i]) for r in rows if r[i]]
            assert values, (state.name, column, "a column without a value is not shown")
            form = rate if "rate" in column or "(%)" in column else count
            assert all(form.fullmatch(v) for v in values), (state.name, column, values)
    page = (wh / "report" / "index.html").read_text()
    assert 'href="country/MEX.html"' in section(page, "map") and 'href="country/index.html"' in page


def test_report_in_a_real_browser_offline(warehouse, tmp_path):
    wh, _ = warehouse
    loaded = browser.load((wh / "report" / "index.html").as_uri(), tmp_path)
    assert loaded.requests == []
    for name in report.SECTIONS:
        assert f'id="{name}"' in loaded.dom
    assert loaded.dom.count("<svg") >= 7
    maps = section(loaded.dom, "map")
    status_fill = "|".join(report.STATUS_COLORS[report.STATUS_LABELS[s]] for s in report.STATUS_LABELS)
    for treaty in ("Firearms Protocol", "Arms Trade Treaty"):
        one = maps.split(f"<h3>{treaty}", 1)[1].split("<h3>", 1)[0]
        coloured = re.findall(rf'<path class="area" d="[^"]+" fill="(?:{status_fill})"><title>[^<]+: '
                              r"(?:party|signatory|withdrawn|no action)", one)
        assert len(coloured) >= 150, treaty
    assert "<title>Mexico: party since 2003-04-10</title>" in maps
    sources = section(loaded.dom, "sources")
    for origin in registry.origins():
        assert origin.license.name in sources
    for words in ("Parties per year", "by region", "Arms traced", "revised", "Validation results", "Homicide",
                  "Arms seized", "Firearms Protocol", "Arms Trade Treaty", "quarantined or failed", "Status as at"):
        assert words in loaded.dom
    assert "<title>" in section(loaded.dom, "seizures"), "chart marks carry their values on hover"
    image = Image.open(loaded.screenshot).convert("L")
    assert image.size == (1280, 6000)
    assert ImageStat.Stat(image).stddev[0] > 20, "the screenshot is not blank"
    top = image.crop((0, 0, 1280, 1200))
    assert sum(1 for n in top.histogram() if n) > 50, "a map is drawn (many grey levels), not only text on white"


def test_the_browser_check_sees_a_page_that_makes_requests(tmp_path):
    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="http://example.org/x.png"><script src="https://cdn.example/a.js">'
                    "</script><p>leaky</p></body></html>")
    loaded = browser.load(page.as_uri(), tmp_path / "chrome", height=600)
    assert loaded.requests == ["http://example.org/x.png", "https://cdn.example/a.js"]

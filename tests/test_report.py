"""tasks.duckdb_views, tasks.report, tasks.country_pages and tasks.world_map on a small warehouse written here: views
only for published tables, and pages that say what is missing instead of failing."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow.parquet as pq

from conftest import recorded_countries
from tasks import country_pages, duckdb_views, registry, report, world_map
from tasks.audit import Outcome
from tasks.run import Report
from tasks.tables import COUNTRIES, FIREARMS_SEIZURES, TREATIES

WHEN = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)


def test_only_published_tables_get_views_and_the_page_names_what_is_missing(tmp_path):
    (tmp_path / "countries").mkdir()
    pq.write_table(recorded_countries(),
                   tmp_path / "countries" / "countries.parquet")
    (tmp_path / "treaties").mkdir()  # a table folder without files
    database = duckdb_views.build(tmp_path, [COUNTRIES, TREATIES, FIREARMS_SEIZURES])
    assert database == tmp_path / "armswatch.duckdb"
    kept = tmp_path / "_quarantine" / "run-1" / "countries"
    run = Report("countries", "run-1", [Outcome("countries", "quarantined", {"countries": 249}, reason="bad <code>",
                                                quarantine=kept)])
    with duckdb_views.connect(tmp_path) as con:
        views = {v for (v,) in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
        assert views == {"countries"}
        page = report.build(tmp_path, con, [run], WHEN).read_text()
        folder = country_pages.build(tmp_path, con)
    for section in report.SECTIONS:
        assert f'<section id="{section}">' in page
    assert "No data: treaty status by year" in page and "No data: tracing rates" in page
    top = page.split('<section id="map">')[0]
    assert "Status as at" in top and "nothing published yet" in top
    assert "did not refresh:</b> countries (quarantined)" in top, "the warning is at the top"
    assert "0 of 1 batches passed validation" in page and "1 quarantined or failed" in page
    assert "bad &lt;code&gt;" in page, "reasons are escaped"
    assert "2026-11-29T08:00:00+00:00" in page
    validation = page.split('<section id="validation">')[1].split("</section>")[0]
    assert "kept in _quarantine/run-1/countries" in validation and str(tmp_path) not in validation
    sources = page.split('<section id="sources">')[1]
    for origin in registry.origins():
        assert origin.license.name in sources and origin.citation_full in sources
    pages = sorted(p.name for p in folder.iterdir())
    assert len(pages) == 196 and "MEX.html" in pages and "VAT.html" in pages and "PSE.html" in pages
    mexico = (folder / "MEX.html").read_text()
    assert "Mexico (MEX)" in mexico and "No catalog treaty's status is published" in mexico
    assert "Status as at" in mexico and "did not refresh" not in mexico
    assert '<a href="MEX.html">Mexico</a>' in (folder / "index.html").read_text()


def test_view_statements_quote_each_absolute_path_whole():
    seizures = ["/data/a,b 'c' [1]/_history/firearms_seizures/snapshot_date=2026-11-29/2022-06-17.r1.parquet",
                "/data/a,b 'c' [1]/_history/firearms_seizures/snapshot_date=2026-11-29/2024-08-26.r1.parquet"]
    statements = duckdb_views.view_statements({"firearms_seizures": seizures, "treaties": ["/w/treaties/IV-4.parquet"]})
    quoted = [p.replace("'", "''") for p in seizures]
    assert statements[0] == ('CREATE OR REPLACE VIEW "firearms_seizures" AS SELECT * FROM '
                             f"read_parquet(['{quoted[0]}', '{quoted[1]}'], union_by_name = true, "
                             f"hive_partitioning = false)")
    assert statements[1].startswith('CREATE OR REPLACE VIEW "firearms_seizures_latest" AS SELECT * FROM '
                                    '"firearms_seizures" WHERE is_latest_release')
    assert len(statements) == 3


def test_world_map_shapes_projected_and_the_antimeridian_drawn_on_both_sides():
    shapes = {s.id: s for s in world_map.shapes()}
    assert world_map.ANTARCTICA not in shapes and len(shapes) >= 170
    assert shapes["484"].name == "Mexico"
    assert world_map.equal_earth(0, 0) == (0.0, 0.0)
    x, y = world_map.equal_earth(180, 90)
    assert abs(y - world_map.Y_MAX) < 1e-4 and 0 < x < world_map.X_MAX
    assert abs(world_map.equal_earth(180, 0)[0] - world_map.X_MAX) < 1e-4
    # a ring from 179 to -179 degrees east goes on eastwards (181), not back across the whole map
    assert world_map.unwrap([(179.0, 0.0), (-179.0, 0.0), (-179.0, 1.0)]) == [(179.0, 0.0), (181.0, 0.0),
                                                                           (181.0, 1.0)]
    fiji = shapes["242"].path
    assert fiji.count("M") > 2, "Fiji crosses the antimeridian: drawn again shifted by 360 degrees"
    for shape in shapes.values():
        xs = [float(p.split(",")[0]) for p in shape.path.replace("M", "L").replace("Z", "").split("L") if p]
        assert max(xs) - min(xs) < world_map.WIDTH * 0.6 or shape.id in ("242", "643"), shape.name
    drawn = world_map.draw({"484": world_map.Area("#0072B2", "Mexico: party", "country/MEX.html")},
                           world_map.Area("#F2F2F2", "other"), "test")
    assert drawn.count('class="area"') == 1 and '<a href="country/MEX.html">' in drawn
    assert "<title>Canada: other</title>" in drawn


def test_chart_marks_carry_their_values_as_escaped_hover_titles():
    import altair as alt

    hostile = '<script>alert(1)</script> & "Côte"'
    chart = alt.Chart(alt.Data(values=[{"country": hostile, "n": 503}])).mark_bar().encode(
        x="n:Q", y="country:N", tooltip=["country:N", "n:Q"])
    out = report.svg(chart)
    assert "<script" not in out
    assert "<title>n: 503; country: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Côte&quot;</title>" in out

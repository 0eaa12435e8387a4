"""tasks.duckdb_views and tasks.report on a small warehouse written here: views only for published tables, and a
page that says what is missing instead of failing."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow.parquet as pq

from conftest import M49_URL, SHARED
from tasks import duckdb_views, m49, report
from tasks.audit import Outcome
from tasks.run import Report
from tasks.tables import COUNTRIES, FIREARMS_SEIZURES, TREATIES

WHEN = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)


def test_only_published_tables_get_views_and_the_page_names_what_is_missing(tmp_path):
    (tmp_path / "countries").mkdir()
    pq.write_table(m49.countries((SHARED / "unsd" / "m49" / "UNSD-Methodology.csv").read_bytes(), M49_URL),
                   tmp_path / "countries" / "countries.parquet")
    (tmp_path / "treaties").mkdir()  # a table folder without files
    database = duckdb_views.build(tmp_path, [COUNTRIES, TREATIES, FIREARMS_SEIZURES])
    assert database == tmp_path / "armswatch.duckdb"
    run = Report("countries", "run-1", [Outcome("countries", "quarantined", {"countries": 249}, reason="bad <code>")])
    with duckdb_views.connect(tmp_path) as con:
        views = {v for (v,) in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
        assert views == {"countries"}
        page = report.build(tmp_path, con, [run], WHEN).read_text()
    for section in report.SECTIONS:
        assert f'<section id="{section}">' in page
    assert "No data: treaty status by year" in page and "No data: tracing rates" in page
    assert "0 batches passed validation" in page and "1 quarantined or failed" in page
    assert "bad &lt;code&gt;" in page, "reasons are escaped"
    assert "2026-11-29T08:00:00+00:00" in page


def test_view_statements_read_relative_paths():
    seizures = ["_history/firearms_seizures/snapshot_date=2026-11-29/2022-06-17.r1.parquet",
                "_history/firearms_seizures/snapshot_date=2026-11-29/2024-08-26.r1.parquet"]
    statements = duckdb_views.view_statements({"firearms_seizures": seizures, "treaties": ["treaties/IV-4.parquet"]})
    assert statements[0] == ('CREATE OR REPLACE VIEW "firearms_seizures" AS SELECT * FROM '
                             f"read_parquet(['{seizures[0]}', '{seizures[1]}'], union_by_name = true)")
    assert statements[1].startswith('CREATE OR REPLACE VIEW "firearms_seizures_latest" AS SELECT * FROM '
                                    '"firearms_seizures" WHERE is_latest_release')
    assert len(statements) == 3 and "/tmp" not in " ".join(statements)

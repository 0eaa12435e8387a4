"""The full refresh: treaties, then indicators, then the analyst tables (countries, treaty status, the country ×
year panel; flows/panel.py), then warehouse/armswatch.duckdb and the report.

The analyst tables are built from what is published in the warehouse, so a source that failed this run
contributes its last good data. Tables fed: all.
Run: `python -m flows.refresh [--mirror DIR] [--warehouse DIR]` or `armswatch run`.
"""

from __future__ import annotations

from prefect import flow

from flows.indicators import indicators
from flows.panel import analyst_outputs, country_year_panel
from flows.ratification import ratification
from flows.steps import finish
from tasks.run import Report


@flow(name="armswatch-refresh")
def refresh(warehouse: str = "warehouse", mirror: str | None = None, treaties: str | None = None,
            sources: str | None = None, force: bool = False, alert_block: str | None = None,
            news_block: str | None = None) -> list[Report]:
    """Everything: treaties, indicators, the analyst tables, the DuckDB file and report; one alert for the run."""
    reports = [
        ratification(warehouse=warehouse, mirror=mirror, treaties=treaties, force=force, notify=False),
        indicators(warehouse=warehouse, mirror=mirror, sources=sources, force=force, notify=False),
        country_year_panel(warehouse=warehouse, treaties=treaties, force=force, notify=False),
    ]
    analyst_outputs(warehouse, reports)
    finish(reports, alert_block, news_block, reports[0].new_parties)
    return reports


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", *sys.argv[1:]]))

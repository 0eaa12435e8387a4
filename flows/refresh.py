"""The full refresh: treaties, then indicators, then the country × year panel joining both.

The panel is built from what is published in the warehouse (participation, indicator_observations,
firearms_seizures), so a source that failed this run contributes its last good data. Tables fed: all, and
country_year_panel. Run: `python -m flows.refresh [--mirror DIR] [--warehouse DIR]` or `armswatch run`.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.indicators import indicators
from flows.ratification import ratification
from flows.steps import audit, finish
from tasks import catalog, panel
from tasks.run import Report, Run, open_run
from tasks.tables import FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS, PARTICIPATION


@task(cache_policy=NO_CACHE)
def build_panel(run: Run, treaty_ids: list[str]):
    observations, seizures = run.warehouse.read(INDICATOR_OBSERVATIONS), run.warehouse.read(FIREARMS_SEIZURES)
    return panel.build_panel(run.warehouse.read(PARTICIPATION), treaty_ids, observations, seizures,
                             last_year=panel.latest_year(observations, seizures, run.today))


@flow(name="armswatch-panel")
def country_year_panel(warehouse: str = "warehouse", treaties: str | None = None, force: bool = False,
                       notify: bool = True, alert_block: str | None = None) -> Report:
    """Join the published treaty status and indicators into country_year_panel."""
    ids = [t.id for t in catalog.load(treaties)]
    table = panel.panel_table(ids)
    with open_run(warehouse, None, force) as run:
        report = Report("panel", run.id)
        try:
            staged, errors = {table.name: {table: build_panel(run, ids)}}, {}
        except Exception as exc:  # a panel that cannot be derived is a failed batch, reported and alerted
            staged, errors = {}, {table.name: exc}
        report.outcomes = audit(run, (table,), staged, errors)
    if notify:
        finish([report], alert_block)
    return report


@flow(name="armswatch-refresh")
def refresh(warehouse: str = "warehouse", mirror: str | None = None, treaties: str | None = None,
            sources: str | None = None, force: bool = False, alert_block: str | None = None,
            news_block: str | None = None) -> list[Report]:
    """Everything: treaties, indicators, then the panel; one alert for the whole run."""
    reports = [
        ratification(warehouse=warehouse, mirror=mirror, treaties=treaties, force=force, notify=False),
        indicators(warehouse=warehouse, mirror=mirror, sources=sources, force=force, notify=False),
        country_year_panel(warehouse=warehouse, treaties=treaties, force=force, notify=False),
    ]
    finish(reports, alert_block, news_block, reports[0].new_parties)
    return reports


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", *sys.argv[1:]]))

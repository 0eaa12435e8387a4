"""The full refresh: treaties, then indicators, then the country × year panel joining both.

The panel is built from what is published in the warehouse (participation, indicator_observations,
firearms_seizures), so a source that failed this run contributes its last good data. Tables fed: all, and
country_year_panel. Run: `python -m flows.refresh [--mirror DIR] [--warehouse DIR]` or `armswatch run`.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal

from flows.indicators import indicators
from flows.ratification import ratification
from flows.steps import audit, crash_reason, final_state, finish, reported
from tasks import catalog, panel
from tasks.run import Report, Run, open_run, use_run
from tasks.tables import FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS, PARTICIPATION


@task(cache_policy=NO_CACHE)
def build_panel(run: Run, treaty_ids: list[str]):
    observations, seizures = run.warehouse.read(INDICATOR_OBSERVATIONS), run.warehouse.read(FIREARMS_SEIZURES)
    return panel.build_panel(run.warehouse.read(PARTICIPATION), treaty_ids, observations, seizures,
                             last_year=panel.latest_year(observations, seizures, run.today))


@flow(name="armswatch-panel")
def country_year_panel(warehouse: str = "warehouse", treaties: str | None = None, force: bool = False,
                       notify: bool = True, alert_block: str | None = None, run: Run | None = None):
    """Join the published treaty status and indicators into country_year_panel; not rebuilt when its inputs (the
    published files it reads and the catalog) are those it was last built from. Fetches nothing."""
    ids = [t.id for t in catalog.load(treaties)]
    table = panel.panel_table(ids)
    with (use_run(run, warehouse, None, force) as run,
          reported(Report("panel", run.id), run, notify, alert_block) as report):
        inputs = run.inputs(PARTICIPATION, INDICATOR_OBSERVATIONS, FIREARMS_SEIZURES, extra=",".join(ids))
        if outcome := run.skip(table.name, (table,), inputs):
            report.outcomes = audit(run, (table,), {}, {}, [outcome])
        else:
            report.outcomes = audit(run, (table,), {table.name: {table: build_panel(run, ids)}}, {})
    return final_state([report])


def _report(state, flow: str, run_id: str) -> Report:
    """The report a subflow returned, or one recording why it has none (it crashed)."""
    data = state.result(raise_on_failure=False)
    return data if isinstance(data, Report) else Report(flow, run_id, crash=f"{type(data).__name__}: {data}")


@flow(name="armswatch-refresh")
def refresh(warehouse: str = "warehouse", mirror: str | None = None, treaties: str | None = None,
            sources: str | None = None, force: bool = False, alert_block: str | None = None,
            news_block: str | None = None):
    """Everything: treaties, indicators, then the panel, under one lock and one run id; one alert for the whole
    run. Fails when a subflow failed; stops early (still reporting and alerting) when one crashed."""
    reports: list[Report] = []
    try:
        with open_run(warehouse, mirror, force) as run:
            try:
                for name, subflow in (
                        ("treaties", lambda: ratification(warehouse=warehouse, mirror=mirror, treaties=treaties,
                                                          force=force, notify=False, run=run, return_state=True)),
                        ("indicators", lambda: indicators(warehouse=warehouse, mirror=mirror, sources=sources,
                                                          force=force, notify=False, run=run, return_state=True)),
                        ("panel", lambda: country_year_panel(warehouse=warehouse, treaties=treaties, force=force,
                                                             notify=False, run=run, return_state=True))):
                    reports.append(_report(subflow(), name, run.id))
                    if reports[-1].crash:
                        break
            except (Exception, TerminationSignal) as exc:
                reports.append(Report("refresh", run.id, crash=crash_reason(exc)))
            finally:
                finish(run, reports, alert_block, news_block, reports[0].new_parties if reports else [])
    except TerminationSignal as exc:  # while taking the lock: nothing ran, nothing to report but the signal
        reports.append(Report("refresh", "", crash=crash_reason(exc)))
    return final_state(reports)


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", *sys.argv[1:]]))

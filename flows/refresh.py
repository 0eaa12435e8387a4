"""The full refresh: treaties, then every registered source (indicators, UN M49 countries), then the analyst
tables (treaty status, the country × year panel; flows/panel.py), then warehouse/armswatch.duckdb and the report.

The analyst tables are built from what is published in the warehouse, so a source that failed this run
contributes its last good data. One lock and one run id for the whole refresh. Tables fed: all.
Run: `python -m flows.refresh [--mirror DIR] [--warehouse DIR]` or `armswatch run`.
"""

from __future__ import annotations

from prefect import flow
from prefect.exceptions import TerminationSignal

from flows.indicators import indicators
from flows.panel import analyst_outputs, country_year_panel
from flows.ratification import ratification
from flows.steps import crash_reason, final_state, finish
from tasks.run import Report, open_run


def _report(state, flow: str, run_id: str) -> Report:
    """The report a subflow returned, or one recording why it has none (it crashed)."""
    data = state.result(raise_on_failure=False)
    return data if isinstance(data, Report) else Report(flow, run_id, crash=f"{type(data).__name__}: {data}")


@flow(name="armswatch-refresh")
def refresh(warehouse: str = "warehouse", mirror: str | None = None, treaties: str | None = None,
            sources: str | None = None, force: bool = False, alert_block: str | None = None,
            news_block: str | None = None):
    """Everything: treaties, the sources, then the analyst tables, the DuckDB file and the report, under one lock
    and one run id; one alert for the whole run. Fails when a subflow failed; stops early (still reporting and
    alerting) when one crashed."""
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
                analyst_outputs(run, reports)
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

"""The full refresh: treaties, then every registered source (indicators, UN M49 countries), then the analyst
tables (treaty status, the country × year panel; flows/panel.py), then warehouse/armswatch.duckdb and the report.
The sources' fetching starts first and runs in the background while the treaties are fetched, parsed and
published, so the whole run's fetching overlaps (each host still asked politely, tasks/http.py); parsing,
validating and publishing stay one part after the other.

The analyst tables are built from what is published in the warehouse, so a source that failed this run
contributes its last good data. One lock and one run id for the whole refresh. Tables fed: all.
Run: `python -m flows.refresh [--mirror DIR] [--warehouse DIR]` or `armswatch run`.
"""

from __future__ import annotations

from prefect import flow
from prefect.exceptions import TerminationSignal

from flows.indicators import fetching, indicators
from flows.panel import analyst_outputs, country_year_panel
from flows.ratification import ratification
from flows.steps import crash_reason, final_state, finish, opened, reports_of
from tasks import registry
from tasks.catalog import CatalogError
from tasks.publish import LeaseLost
from tasks.run import Report, Run


def _part(name: str, body, run: Run, **options) -> Report:
    """One flow's body (treaties, indicators, panel) run inside the refresh's own flow run, and its report; or a
    report recording why it has none. Not a subflow: starting one creates a tracking task run, which Prefect's
    SQLite server often refuses (503, "database is locked") while it records the previous part's task runs, and
    the client then waits 2 s before asking again (benchmarks/pipeline.py)."""
    try:
        return reports_of(body.fn(run=run, notify=False, **options))[0]
    except LeaseLost:  # another run owns the warehouse now: nothing more of this run may publish
        raise
    except Exception as exc:
        return Report(name, run.id, crash=crash_reason(exc))


def _sources_fetching(run: Run, sources: str | None) -> dict:
    """The sources' fetching, started before the treaties part (flows/indicators.py `fetching`); none when their
    configuration does not load: the indicators part then reports why, and the treaties still run."""
    try:
        configured = registry.load(sources)
    except CatalogError:
        return {}
    return fetching(run, configured)


@flow(name="armswatch-refresh")
def refresh(warehouse: str = "warehouse", mirror: str | None = None, treaties: str | None = None,
            sources: str | None = None, force: bool = False, alert_block: str | None = None,
            news_block: str | None = None):
    """Everything: treaties, the sources, then the analyst tables, the DuckDB file and the report, under one lock
    and one run id, in one flow run; one alert for the whole run. Fails when a part failed; stops early (still
    reporting and alerting) when one crashed.

    Args:
        warehouse: Where the tables go: a folder (relative to the working directory) or a URL such as
            s3://bucket/prefix.
        mirror: A recorded mirror folder (DIR/manifest.json) served instead of the live URLs; empty for live.
        force: Parse, validate and republish even batches whose sources did not change.
        treaties: Treaty catalog file; empty: the project's treaties.yaml.
        sources: Folder of <source>.yaml configurations; empty: the project's sources/.
        alert_block: Slug of a Prefect notification block for alerts (e.g. slack-webhook/armswatch-alerts); empty:
            ARMSWATCH_ALERT_URL or ARMSWATCH_ALERT_BLOCK of the worker's environment.
        news_block: Slug of a notification block for the opt-in new-ratifications notice.
    """
    reports: list[Report] = []
    try:
        with opened(None, warehouse, mirror, force, alert_block) as run:
            try:
                started = _sources_fetching(run, sources)
                for name, body, options in (("treaties", ratification, {"treaties": treaties, "sources": sources}),
                                            ("indicators", indicators, {"sources": sources, "started": started}),
                                            ("panel", country_year_panel, {"treaties": treaties})):
                    reports.append(_part(name, body, run, **options))
                    if reports[-1].crash:
                        break
                analyst_outputs(run, reports)
            except LeaseLost as exc:  # reported and alerted below, then the run ends with exit 3
                reports.append(Report("refresh", run.id, crash=str(exc)))
                raise
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

"""Analyst tables and outputs: the UN M49 countries, treaty status, the country × year panel, then
warehouse/armswatch.duckdb and warehouse/report/index.html.

Upstream: none; everything is read from what is published in the warehouse (countries comes from the registered
M49 source, tasks/m49.py), so a source that failed this run contributes its last good data. Tables fed:
countries, treaty_status, treaty_status_by_year, country_year_panel.
Run: `armswatch run` (flows/refresh.py runs these after the treaties and indicators flows); a treaties or
indicators flow run on its own runs them too (`outputs`) when it published something. The modules that build the
DuckDB file and the report (duckdb, altair: about 35 MB) are imported only when those are built.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.steps import audit, final_state, opened, reported, reports_of
from tasks import catalog, datapackage, panel, storage
from tasks.audit import Outcome
from tasks.publish import file_name
from tasks.run import Report, Run
from tasks.tables import (COUNTRIES, FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS, PARTICIPATION, TREATIES,
                          TREATY_STATUS, TREATY_STATUS_BY_YEAR)
from tasks.treaty_status import status_tables

SOURCE = "panel"  # what this flow's incidents belong to (tasks/incidents.py)
#: What the DuckDB file and the report were last built for (besides the published data): see `failing`.
BUILT_FOR = Path("report") / "built_for.json"
#: The batch name under which an analyst output that could not be written is reported.
OUTPUTS = "analyst outputs"


@task(cache_policy=NO_CACHE)
def build_status(run: Run, entries: list[catalog.Treaty]) -> dict:
    """treaty_status and treaty_status_by_year batches, one per catalog treaty whose treaties row is published."""
    treaties = {row["mtdsg_no"]: row for row in run.warehouse.read(TREATIES).to_pylist()}
    participation, countries_table = run.warehouse.read(PARTICIPATION), run.warehouse.read(COUNTRIES)
    staged = {}
    for entry in entries:
        if entry.id in treaties:
            row = dict(treaties[entry.id], short_name=entry.short_name or treaties[entry.id]["short_name"])
            status, by_year = status_tables(row, participation, countries_table)
            staged[entry.id] = {TREATY_STATUS: status, TREATY_STATUS_BY_YEAR: by_year}
    return staged


@task(cache_policy=NO_CACHE)
def build_panel(run: Run):
    observations, seizures = run.warehouse.read(INDICATOR_OBSERVATIONS), run.warehouse.read(FIREARMS_SEIZURES)
    return panel.build_panel(run.warehouse.read(COUNTRIES), observations, seizures,
                             last_year=panel.latest_year(observations, seizures, run.today))


@flow(name="armswatch-panel")
def country_year_panel(warehouse: str = "warehouse", treaties: str | None = None, force: bool = False,
                       notify: bool = True, alert_block: str | None = None, run: Run | None = None):
    """Treaty status per state from the published treaties, and the country × year panel from the indicators;
    not rebuilt when their inputs (the published files they read and the catalog) are those they were last built
    from. Fetches nothing. Ends Failed when a batch failed (after publishing the others and alerting)."""
    entries = catalog.load(treaties)
    with (opened(run, warehouse, None, force, alert_block) as run,
          reported(Report("panel", run.id, sources=[SOURCE]), run, notify, alert_block) as reports):
        report = reports[0]
        if not run.warehouse.batches(COUNTRIES):
            reason = "the countries table (UNSD M49) is not published: run the m49 source first (armswatch run)"
            report.outcomes = audit(run, (), {}, {TREATY_STATUS.name: reason, panel.PANEL.name: reason})
            return final_state(reports)
        catalog_text = ",".join(f"{e.id}={e.short_name or ''}" for e in entries)
        published = run.warehouse.batches(TREATIES)  # from the manifest: no data is read unless something is built
        for tables, keys, inputs, build in (
                ((TREATY_STATUS, TREATY_STATUS_BY_YEAR), [e.id for e in entries if file_name(e.id) in published],
                 panel.INPUTS[TREATY_STATUS.name], lambda: build_status(run, entries)),
                ((panel.PANEL,), [panel.PANEL.name], panel.INPUTS[panel.PANEL.name],
                 lambda: {panel.PANEL.name: {panel.PANEL: build_panel(run)}})):
            built_from = run.inputs(*inputs, extra=catalog_text)  # the same for every key
            same = [run.skip(key, tables, built_from) for key in keys]
            if keys and all(same):  # built from exactly these inputs already: not built or validated again
                report.outcomes += audit(run, tables, {}, {}, same)
                continue
            try:
                staged, errors = build(), {}
            except Exception as exc:  # a table that cannot be derived is a failed batch, reported and alerted
                staged, errors = {}, {tables[0].name: exc}
            report.outcomes += audit(run, tables, staged, errors)
    return final_state(reports)


def failing(reports: list[Report]) -> str:
    """What the report shows beyond the published data: each batch that did not pass, and why (its incident)."""
    return json.dumps(sorted([r.flow, o.key, o.status, o.fingerprint] for r in reports for o in r.outcomes if not o.ok))


def analyst_outputs_due(root: Path, reports: list[Report]) -> bool:
    """Rebuild when the run published something, when the batches that fail (or why) changed since the last
    build, or when either output is missing; a rerun over unchanged sources rebuilds nothing."""
    from tasks import duckdb_views, report

    published = any(o.status == "published" for r in reports for o in r.outcomes)
    built_for = root / BUILT_FOR
    built = (root / duckdb_views.DATABASE, root / "report" / "index.html", root / "report" / report.COUNTRY_INDEX,
             built_for)
    return published or not all(p.exists() for p in built) or built_for.read_text() != failing(reports)


@task(cache_policy=NO_CACHE)
def analyst_outputs(run: Run, reports: list[Report]) -> list[str]:
    """warehouse/armswatch.duckdb, csv/ with datapackage.json, and report/ (index.html, country pages), under
    the run's lock; [] when not due. On an object store only armswatch.duckdb (its views name the files by URL),
    when the run published or it is missing. An output that cannot be written is a failed outcome (OUTPUTS) of
    the last report, so the run's state, exit code and alert say so. Before them, the validations' Data Docs."""
    logger = get_run_logger()
    try:  # Data Docs first: the validation process then ends, not to run beside the report's chart renderer
        run.build_docs()
    except Exception as exc:
        logger.error("could not write the Data Docs: %s: %s", type(exc).__name__, exc)
    root = run.warehouse.root
    if not storage.is_local(root):
        return object_store_outputs(run, reports)
    if not analyst_outputs_due(root, reports):
        logger.info("nothing changed: the DuckDB file and the report left as they were")
        return []
    from tasks import country_pages, duckdb_views, report

    try:
        generated_at = datetime.now(timezone.utc)
        database = duckdb_views.build(root, list(panel.PUBLISHED_TABLES))
        package = datapackage.build(run.warehouse, list(panel.PUBLISHED_TABLES), datapackage.origins(), generated_at)
        with duckdb_views.connect(root) as con:
            country_pages.build(root, con)
            page = report.build(root, con, reports, generated_at)
    except Exception as exc:  # the published data stands; the run goes on to report and alert
        output_failed(reports, f"could not build {duckdb_views.DATABASE}, the CSV files or the report in {root}: "
                               f"{type(exc).__name__}: {exc}")
        (root / BUILT_FOR).unlink(missing_ok=True)  # so the next run builds them again
        return []
    storage.atomic_write(root / BUILT_FOR, failing(reports).encode())
    logger.info("wrote %s, %s and %s", database, package, page)
    return [str(database), str(package), str(page)]


def object_store_outputs(run: Run, reports: list[Report]) -> list[str]:
    """armswatch.duckdb on an object store, when the run published or it is missing; the report, the country
    pages and the CSV files are local outputs (read the tables through the manifest, see the README)."""
    from tasks import duckdb_views

    root, logger = run.warehouse.root, get_run_logger()
    published = any(o.status == "published" for r in reports for o in r.outcomes)
    if not published and (root / duckdb_views.DATABASE).exists():
        return []
    try:
        database = duckdb_views.build(root, list(panel.PUBLISHED_TABLES))
    except Exception as exc:  # the published data stands; the run goes on to report and alert
        output_failed(reports, f"could not build {duckdb_views.DATABASE} in {root}: {type(exc).__name__}: {exc}")
        return []
    logger.info("wrote %s (the report and the CSV files are built for local warehouses only)", database)
    return [str(database)]


def output_failed(reports: list[Report], reason: str) -> None:
    """An analyst output that could not be written: a failed outcome of the run's last report."""
    get_run_logger().error(reason)
    reports[-1].outcomes.append(Outcome(OUTPUTS, "failed", reason=reason))


def outputs(run: Run, reports: list[Report], treaties: str | None = None) -> list[Report]:
    """What follows a flow that published something (treaties, a source): treaty status and the panel from what
    is published now, then the DuckDB file and the report; nothing when nothing was published, or while the
    countries table (the m49 source) is not. So the analyst never reads yesterday's outputs after a daily run."""
    if not any(o.status == "published" for r in reports for o in r.outcomes):
        return []
    if not run.warehouse.batches(COUNTRIES):
        get_run_logger().info("countries (UNSD M49) not published yet: treaty status and the panel wait for it")
        return []
    part = reports_of(country_year_panel.fn(run=run, notify=False, treaties=treaties))
    analyst_outputs(run, reports + part)
    return part

"""Indicators flow: every registered source (tasks/registry.py; today the UN SDG API series and the UNODC IAFQ
releases, configured in sources/<name>.yaml) → indicator_observations, firearms_seizures, indicator_revisions.

Reads like the data flow, the same for every source: find its batches, fetch each batch's raw responses
(archived), parse them, relate the batches (which release is the latest), validate and publish, then derive
what is computed from the published data (revisions). No parsing logic here: see tasks/source.py and the source
modules. Run: `python -m flows.indicators [--mirror DIR] [--warehouse DIR]`, `armswatch run --only indicators`
or `armswatch run --only <source>`.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.steps import audit, fetch, finish
from tasks import registry
from tasks.archive import Response
from tasks.audit import Outcome, describe
from tasks.run import Report, Run, open_run
from tasks.source import Batch, Client, Source


def client(run: Run, source: Source) -> Client:
    """Fetching for one source through the fetch task (retries, archive)."""
    def get_all(urls: list[str], kind: str):
        futures = [fetch.submit(run, source.name, url, kind) for url in urls]
        return [future.result() for future in futures]

    return Client(lambda url, kind: fetch(run, source.name, url, kind), get_all)


@task(cache_policy=NO_CACHE, task_run_name="{source.name} batches")
def find_batches(run: Run, source: Source) -> tuple[list[Batch], dict[str, str]]:
    """The source's batches, and the discovery steps that failed (e.g. an unreachable release page)."""
    return source.batches(client(run, source))


@task(cache_policy=NO_CACHE, task_run_name="fetch {source.name} {batch.name}")
def fetch_batch(run: Run, source: Source, batch: Batch) -> list[Response]:
    """The batch's raw responses, fetched and archived (their sha256s tell whether anything changed)."""
    return source.fetch(batch, client(run, source))


@task(cache_policy=NO_CACHE, task_run_name="parse {source.name} {batch.name}")
def parse_batch(source: Source, batch: Batch, responses: list[Response]):
    """(batch key, {table: rows}) from the raw responses."""
    return source.parse(batch, responses)


def run_source(run: Run, source: Source) -> list[Outcome]:
    """One source, batch by batch: fetch, parse, relate, audit and publish, then derive; an outcome per batch."""
    logger = get_run_logger()
    batches, errors = find_batches(run, source)
    staged = {}
    for batch in batches:
        try:
            key, tables = parse_batch(source, batch, fetch_batch(run, source, batch))
        except Exception as exc:  # any failure of one batch is its outcome (tasks/audit.py), not a crash
            errors[batch.name] = exc
            logger.error("%s %s: %s", source.name, batch.name, describe(exc))
            continue
        if key in staged:
            logger.warning("%s %s: same batch %s as an earlier one, which it replaces", source.name, batch.name, key)
        staged[key] = tables
        logger.info("%s %s: %s", source.name, key, ", ".join(f"{t.name} {d.num_rows} rows" for t, d in tables.items()))
    staged, notes = source.relate(staged, run.warehouse)
    before = {key: {t: run.warehouse.read_batch(t, key) for t in source.tables} for key in staged}
    outcomes = audit(run, source.tables, staged, errors)
    outcomes += [Outcome(key, "unchanged", detail=note) for key, note in notes.items()]
    published = {o.key for o in outcomes if o.ok}
    try:
        derived = source.derive(run.warehouse, before, published)
    except Exception as exc:  # derived tables that cannot be computed are a failed batch, reported and alerted
        return outcomes + audit(run, source.derived_tables, {}, {f"{source.name} derived": exc})
    for tables, batch in derived:
        outcomes += audit(run, tables, batch, {})
    return outcomes


@flow(name="armswatch-indicators")
def indicators(warehouse: str = "warehouse", mirror: str | None = None, sources: str | None = None,
               only: str | None = None, force: bool = False, notify: bool = True,
               alert_block: str | None = None) -> Report:
    """Every registered source (or `only` that one): fetch, parse, validate and publish, then derive."""
    configured = registry.load(sources, only)
    with open_run(warehouse, mirror, force) as run:
        report = Report("indicators", run.id)
        for source in configured:
            report.outcomes += run_source(run, source)
    if notify:
        finish([report], alert_block)
    return report


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", "--only", "indicators", *sys.argv[1:]]))

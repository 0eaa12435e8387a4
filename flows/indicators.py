"""Indicators flow: every registered source (tasks/registry.py; today the UN SDG API series and the UNODC IAFQ
releases, configured in sources/<name>.yaml) → indicator_observations, firearms_seizures, indicator_revisions.

Reads like the data flow, the same for every source: find its batches, fetch each batch's raw responses
(archived; every source's fetching runs at once, each host asked politely, tasks/http.py), parse them, relate the
batches (which release is the latest), validate and publish, then derive what is computed from the published
data (revisions). No parsing logic here: see tasks/source.py and the source
modules. Run: `python -m flows.indicators [--mirror DIR] [--warehouse DIR]`, `armswatch run --only indicators`
or `armswatch run --only <source>`.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from flows.panel import outputs
from flows.steps import FETCH_CONCURRENCY, audit, batch_failed, fetch_urls, final_state, opened, reported
from tasks import registry
from tasks.archive import Response
from tasks.audit import Outcome, once
from tasks.run import STAGES, Report, Run
from tasks.source import Batch, Client, Source


def client(run: Run, source: Source) -> Client:
    """Fetching for one source inside its tasks (flows/steps.py fetch_urls: retries, archive), from its declared
    hosts only; the first URL that could not be fetched fails the step."""
    def get_all(urls: list[str], kind: str, max_bytes: int | None = None) -> list[Response]:
        fetched = fetch_urls(run, source.name, urls, kind, source.allowed, max_bytes)
        if failed := next((r for r in fetched if isinstance(r, Exception)), None):
            raise failed
        return fetched

    return Client(lambda url, kind, max_bytes=None: get_all([url], kind, max_bytes)[0], get_all)


#: A batch as fetched: the batch, the key of the published batch its URLs last served before this fetch (None if
#: none; Run.last_published), and its raw responses or the exception that kept them.
Fetched = tuple[Batch, str | None, list[Response] | Exception]


@task(cache_policy=NO_CACHE, task_run_name="fetch {source.name}")
def fetch_source(run: Run, source: Source) -> tuple[list[Fetched], dict[str, str]]:
    """The source's batches, each with the key its URLs were last published under and its raw responses fetched
    and archived (their sha256s tell whether anything changed) or the exception that kept them; and the discovery
    steps that failed (e.g. an unreachable release page). One task run for the whole source (see flows/steps.py
    `fetch`); its batches are fetched concurrently (FETCH_CONCURRENCY at once, each host at most Settings.per_host
    at a time)."""
    get = client(run, source)
    batches, errors = source.batches(get)

    def one(batch: Batch) -> Fetched:
        known = None
        try:
            known = run.last_published(source.tables, batch.urls)  # before this fetch archives what they serve now
            return batch, known, source.fetch(batch, get)
        except Exception as exc:  # that batch's outcome; the others are still fetched
            return batch, known, exc

    with ThreadPoolExecutor(FETCH_CONCURRENCY, thread_name_prefix=f"batches-{source.name}") as pool:
        futures = [pool.submit(contextvars.copy_context().run, one, batch) for batch in batches]  # the task's context
    return [future.result() for future in futures], errors


def fetching(run: Run, configured: list[Source]) -> dict[str, PrefectFuture]:
    """Every source's fetching (fetch_source) submitted at once, by source name: each runs in the background until
    run_source wants its batches (the refresh starts it before the treaties, flows/refresh.py)."""
    return {source.name: fetch_source.submit(run, source) for source in configured}


@task(cache_policy=NO_CACHE, task_run_name="parse {source.name} {batch.name}")
def parse_batch(source: Source, batch: Batch, responses: list[Response]):
    """(batch key, {table: rows}) from the raw responses."""
    return source.parse(batch, responses)


def run_source(run: Run, source: Source, fetched_source: PrefectFuture) -> list[Outcome]:
    """One source, batch by batch: its fetch (`fetched_source`, running), parse, relate, audit and publish, then
    derive; an outcome per batch.

    A batch whose raw bytes are those its published batch was built from is not parsed or validated again
    (Run.published_from); nor is one whose bytes and key are those of an open quarantine (Run.skip). Derived
    tables are computed again only when a batch of the source was published this run.

    One outcome per batch (tasks/audit.py `once`): a batch that failed before its key was known (its download or
    its parse) is keyed by the published batch its URLs served last before this run (Run.last_published), so an
    IAFQ release whose download failed is one row, failed, under its release date, not also `unchanged` under it."""
    return once(_outcomes(run, source, fetched_source))


def _outcomes(run: Run, source: Source, fetched_source: PrefectFuture) -> list[Outcome]:
    logger = get_run_logger()
    fetched, errors = fetched_source.result()
    STAGES.start("parse", sum(not isinstance(r, Exception) for _, _, r in fetched))  # what was fetched is parsed
    staged, skipped, unkeyed = {}, [], []
    for batch, last, responses in fetched:
        key = None
        try:
            if isinstance(responses, Exception):
                raise responses
            shas = [r.sha256 for r in responses]
            if known := run.published_from(source.tables, shas):
                skipped.append(Outcome(known, "unchanged", detail="source unchanged, not parsed"))
                continue
            key, tables = parse_batch(source, batch, responses)
            if outcome := run.skip(key, source.tables, shas):
                skipped.append(outcome)
                continue
        except Exception as exc:  # any failure of one batch is its outcome (tasks/audit.py), not a crash
            if key is None:
                unkeyed.append((batch, last, exc))
            else:
                errors[key] = exc
            batch_failed(f"{source.name} {batch.name}", exc)
            continue
        finally:
            STAGES.advance("parse", int(not isinstance(responses, Exception)))
        if key in staged:
            logger.warning("%s %s: same batch %s as an earlier one, which it replaces", source.name, batch.name, key)
        staged[key] = tables
        logger.info("%s %s: %s", source.name, key, ", ".join(f"{t.name} {d.num_rows} rows" for t, d in tables.items()))
    for batch, last, exc in unkeyed:  # a key another batch staged this run stays that batch's
        errors[last if last is not None and last not in staged else batch.name] = exc
    staged, notes = source.relate(staged, run.warehouse)
    before = {key: {t: run.warehouse.read_batch(t, key) for t in source.tables} for key in staged}
    outcomes = audit(run, source.tables, staged, errors, skipped)
    outcomes += [Outcome(key, "unchanged", detail=note) for key, note in notes.items()]
    published = {o.key for o in outcomes if o.status == "published"}
    if not published:
        return outcomes
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
               alert_block: str | None = None, run: Run | None = None,
               started: dict[str, PrefectFuture] | None = None):
    """Every registered source (or `only` that one): fetch, parse, validate and publish, then derive; when something
    was published (and the flow runs on its own), rebuild treaty status, the panel, the DuckDB file and the
    report. Ends Failed when a batch was quarantined or failed (after publishing the others and alerting).

    Args:
        warehouse: Where the tables go: a folder (relative to the working directory) or a URL such as
            s3://bucket/prefix.
        mirror: A recorded mirror folder (DIR/manifest.json) served instead of the live URLs; empty for live.
        force: Parse, validate and republish even batches whose sources did not change.
        sources: Folder of <source>.yaml configurations; empty: the project's sources/.
        only: One registered source by name (e.g. sdg); empty: every source.
        alert_block: Slug of a Prefect notification block for alerts (e.g. slack-webhook/armswatch-alerts); empty:
            ARMSWATCH_ALERT_URL or ARMSWATCH_ALERT_BLOCK of the worker's environment.
        notify: Internal: False when a parent flow reports and alerts for the whole run.
        run: Internal: the run (lock, run id) a parent flow opened.
        started: Internal: the sources' fetching (`fetching`) the parent flow already started.
    """
    configured = registry.load(sources, only)
    with (opened(run, warehouse, mirror, force, alert_block) as run,
          reported(Report("indicators", run.id, sources=[s.name for s in configured]), run, notify,
                   alert_block, then=outputs) as reports):
        started = started or fetching(run, configured)  # every source fetched at once
        for source in configured:
            for outcome in run_source(run, source, started[source.name]):
                outcome.source = source.name
                reports[0].outcomes.append(outcome)
    return final_state(reports)


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", "--only", "indicators", *sys.argv[1:]]))

"""Treaty ratification flow: UNTC MTDSG status XML → treaties, participation, treaty_footnotes, declarations,
treaty_events, ratification_progress (upstream https://treaties.un.org/doc/Publication/MTDSG/...).

Reads top to bottom like the data flow: fetch each catalog treaty (archived raw), parse it, validate all batches,
publish what passed and quarantine the rest. No parsing logic here: see tasks/untc.py.
Run: `python -m flows.ratification [--mirror DIR] [--warehouse DIR]` or `armswatch run --only treaties`.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.steps import audit, fetch, finish
from tasks import alerts, catalog, tables, untc
from tasks.archive import Response
from tasks.audit import describe
from tasks.run import Report, Run, open_run


@task(cache_policy=NO_CACHE, task_run_name="parse {treaty.id}")
def parse_treaty(run: Run, treaty: catalog.Treaty, response: Response):
    doc = untc.parse_document(response.body, treaty.url, treaty.id, treaty.short_name)
    as_of = untc.status_as_of(response.headers, response.fetched_at)
    return untc.batch_tables(doc, response.sha256, response.fetched_at, as_of)


def counts(batch) -> str:
    """Parsed against stated counts, the as-of date, and every participant name that did not resolve."""
    row = batch[tables.TREATIES].to_pylist()[0]
    detail = (f"parties {row['parsed_parties']}/{row['stated_parties']} stated, "
              f"signatories {row['parsed_signatories']}/{row['stated_signatories']} stated, as of {row['as_of']}")
    unresolved = [p["participant"] for p in batch[tables.PARTICIPATION].to_pylist() if p["is_state"] and not p["iso3"]]
    return detail + (f"; unresolved participants: {', '.join(unresolved)}" if unresolved else "")


@flow(name="armswatch-treaties")
def ratification(warehouse: str = "warehouse", mirror: str | None = None, treaties: str | None = None,
                 force: bool = False, notify: bool = True, alert_block: str | None = None,
                 news_block: str | None = None) -> Report:
    """Fetch, parse, validate and publish every treaty of the catalog; alert on failures, announce new parties."""
    logger = get_run_logger()
    entries = catalog.load(treaties)
    with open_run(warehouse, mirror, force) as run:
        report = Report("treaties", run.id)
        fetches = {t.id: fetch.submit(run, untc.SOURCE, t.url, "xml") for t in entries}
        staged, errors, details = {}, {}, {}
        for treaty in entries:
            try:
                response = fetches[treaty.id].result()
                staged[treaty.id] = parse_treaty(run, treaty, response)
                details[treaty.id] = counts(staged[treaty.id])
                logger.info("%s %s: %s", treaty.id, treaty.short_name, details[treaty.id])
            except Exception as exc:  # any failure of one treaty is its outcome (tasks/audit.py), not a crash
                errors[treaty.id] = exc
                logger.error("%s %s: %s", treaty.id, treaty.short_name, describe(exc))
        before = run.warehouse.read(tables.PARTICIPATION)
        for outcome in audit(run, tables.TREATY_TABLES, staged, errors):
            outcome.detail = details.get(outcome.key, "")
            report.outcomes.append(outcome)
        order = [t.id for t in entries]
        report.outcomes.sort(key=lambda o: order.index(o.key))
        report.new_parties = alerts.new_parties(before, run.warehouse.read(tables.PARTICIPATION))
    if notify:
        finish([report], alert_block, news_block, report.new_parties)
    return report


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", "--only", "treaties", *sys.argv[1:]]))

"""Treaty ratification flow: UNTC MTDSG status XML → treaties, participation, treaty_footnotes, declarations,
treaty_events, ratification_progress (upstream https://treaties.un.org/doc/Publication/MTDSG/...).

Reads top to bottom like the data flow: fetch each catalog treaty (archived raw), parse it, validate all batches,
publish what passed and quarantine the rest. No parsing logic here: see tasks/untc.py.
Run: `python -m flows.ratification [--mirror DIR] [--warehouse DIR]` or `armswatch run --only treaties`.
"""

from __future__ import annotations

from functools import partial

from prefect import flow, get_run_logger

from flows.panel import outputs
from flows.steps import audit, batch_failed, fetch, final_state, opened, reported
from tasks import alerts, catalog, hosts, registry, tables, untc
from tasks.archive import Response, date_of
from tasks.run import STAGES, Report, Run


def parse_treaty(treaty: catalog.Treaty, response: Response):
    """Pure parsing, called directly rather than as a Prefect task: a task run per treaty would cost several
    times the parse itself (the marginal cost of one more treaty is a target, see benchmarks/pipeline.py)."""
    doc = untc.parse_document(response.body, treaty.url, treaty.id, treaty.short_name)
    as_of = date_of(response.headers, response.fetched_at)
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
                 sources: str | None = None, force: bool = False, notify: bool = True,
                 alert_block: str | None = None, news_block: str | None = None, run: Run | None = None):
    """Fetch, parse, validate and publish every treaty of the catalog; when something was published (and the flow
    runs on its own), rebuild treaty status, the panel, the DuckDB file and the report; alert on failures,
    announce new parties. Ends Failed when a batch was quarantined or failed (after publishing the others and
    alerting).

    Args:
        warehouse: Where the tables go: a folder (relative to the working directory) or a URL such as
            s3://bucket/prefix.
        mirror: A recorded mirror folder (DIR/manifest.json) served instead of the live URLs; empty for live.
        treaties: Treaty catalog file; empty: the project's treaties.yaml.
        sources: Folder of <source>.yaml configurations (sources/untc.yaml names the hosts treaties come from);
            empty: the project's sources/.
        force: Parse, validate and republish even batches whose sources did not change.
        alert_block: Slug of a Prefect notification block for alerts (e.g. slack-webhook/armswatch-alerts); empty:
            ARMSWATCH_ALERT_URL or ARMSWATCH_ALERT_BLOCK of the worker's environment.
        news_block: Slug of a notification block for the opt-in new-ratifications notice.
        notify: Internal: False when a parent flow reports and alerts for the whole run.
        run: Internal: the run (lock, run id) a parent flow opened.
    """
    logger = get_run_logger()
    entries = catalog.load(treaties)
    allowed = hosts.origins(registry.treaty_source(sources).hosts)  # sources/untc.yaml: nothing else is asked
    with (opened(run, warehouse, mirror, force, alert_block) as run,
          reported(Report("treaties", run.id, sources=[untc.SOURCE]), run, notify, alert_block, news_block,
                   then=partial(outputs, treaties=treaties)) as reports):
        report = reports[0]
        fetched = fetch(run, untc.SOURCE, [t.url for t in entries], "xml", allowed)
        STAGES.start("parse", sum(not isinstance(r, Exception) for r in fetched))  # what was fetched is parsed
        staged, errors, details, skipped = {}, {}, {}, []
        for treaty, response in zip(entries, fetched):
            try:
                if isinstance(response, Exception):
                    raise response
                if outcome := run.skip(treaty.id, tables.TREATY_TABLES, [response.sha256]):
                    skipped.append(outcome)
                    continue
                staged[treaty.id] = parse_treaty(treaty, response)
                details[treaty.id] = counts(staged[treaty.id])
                logger.info("%s %s: %s", treaty.id, treaty.short_name, details[treaty.id])
            except Exception as exc:  # any failure of one treaty is its outcome (tasks/audit.py), not a crash
                errors[treaty.id] = exc
                batch_failed(f"{treaty.id} {treaty.short_name}", exc)
            finally:
                STAGES.advance("parse", int(not isinstance(response, Exception)))
        before = run.warehouse.read(tables.PARTICIPATION) if staged else None
        for outcome in audit(run, tables.TREATY_TABLES, staged, errors, skipped):
            outcome.detail = details.get(outcome.key, outcome.detail)
            report.outcomes.append(outcome)
        order = [t.id for t in entries]
        report.outcomes.sort(key=lambda o: order.index(o.key))
        if before is not None:
            report.new_parties = alerts.new_parties(before, run.warehouse.read(tables.PARTICIPATION))
    return final_state(reports)


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", "--only", "treaties", *sys.argv[1:]]))

"""Indicators flow: UN SDG API series and UNODC IAFQ releases → indicator_observations, firearms_seizures,
indicator_revisions (upstreams https://unstats.un.org/sdgapi/v1/sdg and https://data.unodc.org; see
indicators.yaml).

Reads like the data flow: fetch every page of every series and every IAFQ release (archived raw), parse them,
validate and publish, then derive what each new release revised from what is now published. No parsing logic
here: see tasks/sdg.py, tasks/unodc.py, tasks/revisions.py.
Run: `python -m flows.indicators [--mirror DIR] [--warehouse DIR]` or `armswatch run --only indicators`.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.steps import audit, fetch, final_state, reported
from tasks import catalog, revisions, sdg, unodc
from tasks.audit import Outcome
from tasks.errors import ArmswatchError
from tasks.run import STAGES, Report, Run, use_run
from tasks.tables import FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS, INDICATOR_REVISIONS


@task(cache_policy=NO_CACHE, task_run_name="SDG series {series.code}")
def sdg_series(run: Run, base: str, series: catalog.Series):
    """Every page of one series, checked against totalPages/totalElements, typed with its release: (None, table),
    or (outcome, None) when the series was last published or quarantined from exactly these pages (Run.skip)."""
    listing = fetch(run, sdg.SOURCE, sdg.series_list_url(base, series.indicator), "json")
    first = fetch(run, sdg.SOURCE, sdg.series_data_url(base, series.code, 1, series.page_size), "json")
    total_pages = sdg.parse_page(first.body, first.url)["total_pages"]
    rest = [fetch.submit(run, sdg.SOURCE, sdg.series_data_url(base, series.code, n, series.page_size), "json")
            for n in range(2, total_pages + 1)]
    pages = [first, *(future.result() for future in rest)]
    if outcome := run.skip(series.code, (INDICATOR_OBSERVATIONS,), [r.sha256 for r in (listing, *pages)]):
        return outcome, None
    release = sdg.release_for(listing.body, listing.url, series.code)
    return None, sdg.observations([(p.url, p.body) for p in pages], release, first.fetched_at)


@task(cache_policy=NO_CACHE, task_run_name="IAFQ {url}")
def iafq_release(run: Run, url: str):
    """(release date as ISO text, the release as a firearms_seizures table), or (release, outcome) when the release
    was last published or quarantined from exactly these bytes (Run.skip)."""
    response = fetch(run, unodc.SOURCE, url, "xlsx")
    if known := run.published_from(FIREARMS_SEIZURES, [response.sha256]):
        return known, Outcome(known, "unchanged", detail="source unchanged, not parsed")
    release = unodc.release_date(response.body, url).isoformat()
    return release, run.skip(release, (FIREARMS_SEIZURES,), [response.sha256]) or unodc.seizures(response.body, url)


@task(cache_policy=NO_CACHE)
def derive_revisions(run: Run, previous: dict, published: set[str]) -> tuple[dict, list[Outcome]]:
    """Revision batches: each SDG series that got a new release, and every consecutive pair of IAFQ releases
    (not derived again from the same published releases); (staged, skipped outcomes)."""
    staged = {}
    for code, old in previous.items():
        new = run.warehouse.read_batch(INDICATOR_OBSERVATIONS, code)
        if code in published and old is not None and new is not None:
            history = revisions.series_revisions(code, old, new, run.warehouse.read_batch(INDICATOR_REVISIONS, code))
            if history is not None:
                staged[code] = {INDICATOR_REVISIONS: history}
    if outcome := run.skip(FIREARMS_SEIZURES.name, (INDICATOR_REVISIONS,), run.inputs(FIREARMS_SEIZURES)):
        return staged, [outcome]
    seizures = revisions.release_pairs_revisions(run.warehouse.read(FIREARMS_SEIZURES))
    if seizures is not None:
        staged[FIREARMS_SEIZURES.name] = {INDICATOR_REVISIONS: seizures}
    return staged, []


@flow(name="armswatch-indicators")
def indicators(warehouse: str = "warehouse", mirror: str | None = None, sources: str | None = None,
               force: bool = False, notify: bool = True, alert_block: str | None = None, run: Run | None = None):
    """Fetch, parse, validate and publish the SDG series and IAFQ releases, then their revisions. Ends Failed when
    a batch was quarantined or failed (after publishing the others and alerting)."""
    logger = get_run_logger()
    config = catalog.load_indicators(sources)
    with (use_run(run, warehouse, mirror, force) as run,
          reported(Report("indicators", run.id), run, notify, alert_block) as report):
        STAGES.start("parse", len(config.series) + len(config.iafq_releases))
        series, series_errors, skipped = {}, {}, []
        for s in config.series:
            try:
                outcome, table = sdg_series(run, config.sdg_base, s)
                if outcome:
                    skipped.append(outcome)
                    continue
                series[s.code] = {INDICATOR_OBSERVATIONS: table}
                logger.info("%s: %d observations", s.code, table.num_rows)
            except ArmswatchError as exc:
                series_errors[s.code] = str(exc)
                logger.error("%s: %s", s.code, exc)
            finally:
                STAGES.advance("parse")
        previous = {code: run.warehouse.read_batch(INDICATOR_OBSERVATIONS, code) for code in series}
        report.outcomes += audit(run, (INDICATOR_OBSERVATIONS,), series, series_errors, skipped)

        seizures, seizure_errors, skipped = {}, {}, []
        for url in config.iafq_releases:
            try:
                release, table = iafq_release(run, url)
                if isinstance(table, Outcome):
                    skipped.append(table)
                    continue
                seizures[release] = {FIREARMS_SEIZURES: table}
                logger.info("IAFQ %s: %d rows", url, table.num_rows)
            except ArmswatchError as exc:
                seizure_errors[url] = str(exc)
                logger.error("IAFQ %s: %s", url, exc)
            finally:
                STAGES.advance("parse")
        report.outcomes += audit(run, (FIREARMS_SEIZURES,), seizures, seizure_errors, skipped)

        published = {o.key for o in report.outcomes if o.status == "published"}
        derived, same = derive_revisions(run, previous, published)
        report.outcomes += audit(run, (INDICATOR_REVISIONS,), derived, {}, same)
    return final_state([report])


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", "--only", "indicators", *sys.argv[1:]]))

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

from flows.steps import audit, fetch, finish
from tasks import catalog, revisions, sdg, unodc
from tasks.audit import describe
from tasks.run import Report, Run, open_run
from tasks.tables import FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS, INDICATOR_REVISIONS


@task(cache_policy=NO_CACHE, task_run_name="SDG series {series.code}")
def sdg_series(run: Run, base: str, series: catalog.Series):
    """Every page of one series, checked against totalPages/totalElements, typed with its release."""
    listing = fetch(run, sdg.SOURCE, sdg.series_list_url(base, series.indicator), "json")
    release = sdg.release_for(listing.body, listing.url, series.code)
    first = fetch(run, sdg.SOURCE, sdg.series_data_url(base, series.code, 1, series.page_size), "json")
    total_pages = sdg.parse_page(first.body, first.url)["total_pages"]
    rest = [fetch.submit(run, sdg.SOURCE, sdg.series_data_url(base, series.code, n, series.page_size), "json")
            for n in range(2, total_pages + 1)]
    pages = [first, *(future.result() for future in rest)]
    return sdg.observations([(p.url, p.body) for p in pages], release, first.fetched_at)


@task(cache_policy=NO_CACHE, task_run_name="IAFQ {url}")
def iafq_release(run: Run, url: str):
    """(release date as ISO text, the release as a firearms_seizures table)."""
    response = fetch(run, unodc.SOURCE, url, "xlsx")
    return unodc.release_date(response.body, url).isoformat(), unodc.seizures(response.body, url)


@task(cache_policy=NO_CACHE)
def derive_revisions(run: Run, previous: dict, published: set[str]) -> dict:
    """Revision batches: each SDG series that got a new release, and every consecutive pair of IAFQ releases."""
    staged = {}
    for code, old in previous.items():
        new = run.warehouse.read_batch(INDICATOR_OBSERVATIONS, code)
        if code in published and old is not None and new is not None:
            history = revisions.series_revisions(code, old, new, run.warehouse.read_batch(INDICATOR_REVISIONS, code))
            if history is not None:
                staged[code] = {INDICATOR_REVISIONS: history}
    seizures = revisions.release_pairs_revisions(run.warehouse.read(FIREARMS_SEIZURES))
    if seizures is not None:
        staged[FIREARMS_SEIZURES.name] = {INDICATOR_REVISIONS: seizures}
    return staged


@flow(name="armswatch-indicators")
def indicators(warehouse: str = "warehouse", mirror: str | None = None, sources: str | None = None,
               force: bool = False, notify: bool = True, alert_block: str | None = None) -> Report:
    """Fetch, parse, validate and publish the SDG series and IAFQ releases, then their revisions."""
    logger = get_run_logger()
    config = catalog.load_indicators(sources)
    with open_run(warehouse, mirror, force) as run:
        report = Report("indicators", run.id)
        series, series_errors = {}, {}
        for s in config.series:
            try:
                series[s.code] = {INDICATOR_OBSERVATIONS: sdg_series(run, config.sdg_base, s)}
                logger.info("%s: %d observations", s.code, series[s.code][INDICATOR_OBSERVATIONS].num_rows)
            except Exception as exc:  # any failure of one series is its outcome (tasks/audit.py), not a crash
                series_errors[s.code] = exc
                logger.error("%s: %s", s.code, describe(exc))
        previous = {code: run.warehouse.read_batch(INDICATOR_OBSERVATIONS, code) for code in series}
        report.outcomes += audit(run, (INDICATOR_OBSERVATIONS,), series, series_errors)

        seizures, seizure_errors = {}, {}
        for url in config.iafq_releases:
            try:
                release, table = iafq_release(run, url)
                seizures[release] = {FIREARMS_SEIZURES: table}
                logger.info("IAFQ %s: %d rows", url, table.num_rows)
            except Exception as exc:
                seizure_errors[url] = exc
                logger.error("IAFQ %s: %s", url, describe(exc))
        report.outcomes += audit(run, (FIREARMS_SEIZURES,), seizures, seizure_errors)

        published = {o.key for o in report.outcomes if o.ok}
        try:
            revised, revision_errors = derive_revisions(run, previous, published), {}
        except Exception as exc:
            revised, revision_errors = {}, {INDICATOR_REVISIONS.name: exc}
        report.outcomes += audit(run, (INDICATOR_REVISIONS,), revised, revision_errors)
    if notify:
        finish([report], alert_block)
    return report


if __name__ == "__main__":
    import sys

    from flows.cli import main

    raise SystemExit(main(["run", "--only", "indicators", *sys.argv[1:]]))

"""The Prefect tasks every flow composes: fetch (with retries for transient failures), audit-and-publish, and
finish (artifacts, alerts). No parsing, publishing or message logic lives here; these wrap tasks/http.py,
tasks/audit.py and tasks/alerts.py as Prefect tasks.
Upstream: whatever URL a flow passes. Tables fed: those of the batches audited.
"""

from __future__ import annotations

import os

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from tasks.alerts import batch_rows, failure_alert, ratification_notice, send, summary_markdown
from tasks.archive import Response
from tasks.audit import Outcome, audit_and_publish
from tasks.errors import FetchError
from tasks.run import Report, Run


def transient_only(task, task_run, state) -> bool:
    """Retry a fetch only for failures that may pass (unreachable, 5xx, broken connection, maintenance page)."""
    try:
        state.result()
    except FetchError as exc:
        return exc.transient
    except Exception:
        return False
    return False


#: Seconds between the attempts of one fetch task, after tasks/http.py's own quick retries: an outage or a
#: maintenance page served with 200 that clears within about 3.5 minutes costs a delay, not a failed batch.
FETCH_RETRY_DELAYS = (30, 60, 120)


@task(retries=len(FETCH_RETRY_DELAYS), retry_delay_seconds=list(FETCH_RETRY_DELAYS), retry_jitter_factor=0.2,
      retry_condition_fn=transient_only, cache_policy=NO_CACHE, task_run_name="fetch {url}")
def fetch(run: Run, source: str, url: str, kind: str) -> Response:
    """One fetch (every attempt archived); retried while its failure is transient (unreachable, 5xx, 429, a
    broken or too slow connection, an HTML page where data was expected)."""
    return run.fetcher.get(source, url, kind)


@task(cache_policy=NO_CACHE, task_run_name="audit and publish {tables}")
def audit(run: Run, tables, staged, errors) -> list[Outcome]:
    return audit_and_publish(run.warehouse, run.validator, run.id, tables, staged, errors, run.today, run.force)


@task(cache_policy=NO_CACHE)
def finish(reports: list[Report], alert_block: str | None, news_block: str | None = None,
           news: list[dict] | None = None) -> None:
    """Artifacts for every run; one alert per flow run when a batch failed; new parties if opted in."""
    logger = get_run_logger()
    name = f"'{flow_run.name}' ({flow_run.flow_name}, id {flow_run.id})"
    create_table_artifact(batch_rows(reports), key="armswatch-batches", description="One row per batch")
    create_markdown_artifact(summary_markdown(name, reports), key="armswatch-summary", description="Run summary")
    alert_block = alert_block or os.environ.get("ARMSWATCH_ALERT_BLOCK")
    news_block = news_block or os.environ.get("ARMSWATCH_NEWS_BLOCK")
    for block, message, what in ((alert_block, failure_alert(name, reports), "failure alert"),
                                 (news_block, ratification_notice(news or []), "new-ratifications notice")):
        if message and block:
            try:
                send(block, message)
                logger.info("sent the %s through block %s", what, block)
            except Exception as exc:  # an unreachable destination must not hide the run's own outcome
                logger.error("could not send the %s through block %s: %s", what, block, type(exc).__name__)
        elif message:
            logger.warning("%s not sent: no notification block configured (ARMSWATCH_ALERT_BLOCK / "
                           "ARMSWATCH_NEWS_BLOCK)", what)

"""The Prefect tasks and helpers every flow composes: fetch (with retries for transient failures), skip batches
whose source bytes are unchanged, audit-and-publish, and finish (artifacts, de-duplicated alerts, run log,
retention); `reported` keeps a run's report and alert even when the run ends early, and `final_state` turns a
report into the flow run's state (Failed when any batch was quarantined or failed). No parsing, publishing or
message logic lives here; these wrap tasks/http.py, tasks/audit.py, tasks/alerts.py and tasks/incidents.py.
Upstream: whatever URL a flow passes. Tables fed: those of the batches audited.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from datetime import datetime, timezone

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from tasks import status
from tasks.alerts import batch_rows, failure_alert, ratification_notice, recovery_notice, send, summary_markdown
from tasks.archive import Response
from tasks.audit import Outcome, audit_and_publish
from tasks.errors import FetchError
from tasks.incidents import Incidents, prune
from tasks.run import SIGNALS, STAGES, Report, Run


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
    response = run.fetcher.get(source, url, kind)
    STAGES.advance("fetch")
    return response


@task(cache_policy=NO_CACHE, task_run_name="audit and publish {tables}")
def audit(run: Run, tables, staged, errors, skipped: list[Outcome] = ()) -> list[Outcome]:
    """Validate and publish the staged batches; the `skipped` outcomes (batches not parsed again, see Run.skip)
    are reported as they are, and Great Expectations is not even imported when nothing was staged."""
    skipped = list(skipped)
    if not staged and not errors:
        return skipped
    STAGES.start("validate", len(staged) + len(errors))
    outcomes = audit_and_publish(run.warehouse, run.validator if staged else None, run.id, tables, staged, errors,
                                 run.today, run.force, run.sources)
    STAGES.advance("validate", len(staged) + len(errors))
    return outcomes + skipped


@contextmanager
def reported(report: Report, run: Run, notify: bool, alert_block: str | None = None, news_block: str | None = None):
    """Run a flow's body; whatever ends it (an exception, SIGTERM), the report records it and, if `notify`, the
    artifacts, the alert and the run log still go out before the lock is released; the flow then ends Failed."""
    try:
        yield report
    except (Exception, TerminationSignal) as exc:  # Prefect turns SIGTERM into TerminationSignal during a run
        report.crash = crash_reason(exc)
        get_run_logger().error("run ended early: %s", report.crash)
    else:
        if signalled := SIGNALS.terminated():  # a SIGTERM whose exception was swallowed (see tasks/run.py Signals)
            report.crash = signalled
            get_run_logger().error("run ended early: %s", report.crash)
    finally:
        if notify:
            finish(run, [report], alert_block, news_block, report.new_parties)


def crash_reason(exc: BaseException) -> str:
    """What ended a run: the signal, even when it surfaced as another error while Prefect was handling it."""
    cause = exc
    while cause is not None and not isinstance(cause, TerminationSignal):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return f"terminated by {signal.Signals(cause.signal).name}"
    return f"{type(exc).__name__}: {exc}"


def final_state(reports: list[Report]):
    """The flow run's state: Completed, or Failed (with the reports as data) when a batch did not pass or the run
    ended early."""
    data = reports if len(reports) > 1 else reports[0]
    bad = [r for r in reports if not r.ok]
    if not bad:
        return Completed(data=data)
    counts = {s: sum(r.counts()[s] for r in reports) for s in ("quarantined", "failed")}
    crash = next((r.crash for r in reports if r.crash), "")
    message = (f"{counts['quarantined']} batch(es) quarantined, {counts['failed']} failed"
               + (f"; run ended early: {crash}" if crash else ""))
    return Failed(message=message, data=data)


def finish(run: Run, reports: list[Report], alert_block: str | None, news_block: str | None = None,
           news: list[dict] | None = None) -> None:
    """Artifacts and run log for every run; an alert for failures that are new or due a reminder; one notice per
    recovered batch; new parties if opted in; then retention. Never raises: the run's own outcome comes first."""
    logger = get_run_logger()
    name = f"'{flow_run.name}' ({flow_run.flow_name}, id {flow_run.id})"
    now = datetime.now(timezone.utc)
    steps = [
        ("artifacts", lambda: (
            create_table_artifact(batch_rows(reports), key="armswatch-batches", description="One row per batch"),
            create_markdown_artifact(summary_markdown(name, reports), key="armswatch-summary",
                                     description="Run summary"))),
        ("run log", lambda: status.log_run(run.warehouse.root, run.id, name, reports, now)),
    ]
    for what, step in steps:
        try:
            step()
        except Exception as exc:
            logger.error("could not write the %s: %s: %s", what, type(exc).__name__, exc)
    try:
        decision = Incidents(run.warehouse.root).triage(reports, now, run.sources)
    except Exception as exc:  # unreadable state: alert on everything rather than on nothing
        logger.error("incident state unreadable (%s); alerting on every failing batch", exc)
        decision = None
    alert = (failure_alert(name, reports) if decision is None
             else failure_alert(name, reports, [(o, kind) for _, o, kind in decision.alert]))
    alert_block = alert_block or os.environ.get("ARMSWATCH_ALERT_BLOCK")
    news_block = news_block or os.environ.get("ARMSWATCH_NEWS_BLOCK")
    for block, message, what in ((alert_block, alert, "failure alert"),
                                 (alert_block, recovery_notice(name, decision.recovered if decision else []),
                                  "recovery notice"),
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
    try:
        prune(run.warehouse.root)
    except OSError as exc:
        logger.error("retention could not prune %s: %s", run.warehouse.root, exc)

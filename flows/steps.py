"""The Prefect tasks and helpers every flow composes: `opened` (the run and its lock; a run the lock refuses
alerts), fetch (tasks/http.py's one retry policy, logged), audit-and-publish (batches whose sources are unchanged
were skipped before, tasks/run.py Run.skip), and finish (alerts delivered or retried, artifacts, run log,
retention); `reported` keeps a run's report and alert even when the run ends early (re-raising LeaseLost, which
ends the run with exit 3), and `final_state` turns the reports into the flow run's state (Failed with its
message, the reports in a RunFailed, when any batch was quarantined or failed; `reports_of` reads them back). No
parsing, publishing or message logic lives here; these wrap tasks/http.py, tasks/audit.py, tasks/alerts.py and
tasks/incidents.py. Importing it defers Prefect's SIGTERM handler outside imports (tasks/run.py outside_imports).
Upstream: whatever URL a flow passes. Tables fed: those of the batches audited.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run
from prefect.states import Completed, Failed
from prefect.utilities import engine
from prefect.utilities.urls import url_for

from tasks import status
from tasks.alerts import (AlertNotDelivered, Channel, batch_rows, channel, failure_alert, ratification_notice,
                          recovery_notice, refused_alert, summary_markdown)
from tasks.archive import Response
from tasks.audit import Outcome, audit_and_publish, describe
from tasks.environment import environment
from tasks.errors import FetchError, Unreachable
from tasks.incidents import mark_source, prune
from tasks.publish import LeaseLost, WarehouseBusy
from tasks.run import SIGNALS, STAGES, Report, Run, outside_imports, terminated_by, totals, use_run

# Prefect's SIGTERM handler (installed while a flow runs, in deployments and in the CLI alike) raises
# TerminationSignal: deferred while the main thread is inside the import system (tasks/run.py outside_imports).
engine._prefect_sigterm_handler = outside_imports(engine._prefect_sigterm_handler)

#: Seconds each of a stopped run's last steps (artifacts, run log, Data Docs, each notice) may take: a
#: termination signal ends the run within seconds, whatever the notification destination does.
STOPPING_STEP_TIMEOUT = 3
#: URLs of one step requested at once (the thread pool Prefect's task runner used to give the per-URL tasks); each
#: host gets at most Settings.per_host of them at a time (tasks/http.py).
FETCH_CONCURRENCY = 6


def fetch_url(run: Run, source: str, url: str, kind: str, allowed: frozenset[str] | None,
              max_bytes: int | None = None) -> Response:
    """One URL through the fetcher's one retry policy (tasks/http.py Fetcher.get), every attempt archived; each
    wait before another attempt is a warning in the run's log, and the first URL that finds its host unreachable
    says so in one line (the host's other URLs then fail at once). Once the run is stopping (Run.stopping) the
    waiting ends, and a URL not yet started is not requested."""
    def waiting(failure: FetchError, attempt: int, wait: float) -> None:
        get_run_logger().warning("%s %s: attempt %d failed (%s); trying again in %.0f s", source, failure.url,
                                 attempt, failure.problem, wait)

    try:
        if run.stopping.is_set():
            raise FetchError(source, url, "not requested: the run was stopped")
        response = run.fetcher.get(source, url, kind, allowed, run.stopping, waiting, max_bytes)
    except Unreachable as exc:
        if exc.first:
            get_run_logger().error("%s", exc.problem)
        raise
    finally:
        STAGES.advance("fetch")
    get_run_logger().info("%s %s: HTTP %s, %d bytes, sha256 %s", source, url, response.status, response.bytes,
                          response.sha256)
    return response


def fetch_urls(run: Run, source: str, urls: list[str], kind: str, allowed: frozenset[str] | None,
               max_bytes: int | None = None) -> list[Response | Exception]:
    """Every URL, FETCH_CONCURRENCY at once (fetch_url): per URL, in order, its response or the exception that ended
    its attempts. `allowed`: the origins the source may fetch; `max_bytes`: a lower cap on each body. Whatever stops
    the caller (SIGTERM) stops the run's fetching (Run.stopping), here and in the background."""
    STAGES.start("fetch", len(urls))
    pool = ThreadPoolExecutor(max_workers=FETCH_CONCURRENCY, thread_name_prefix=f"fetch-{source}")
    try:
        futures = [pool.submit(contextvars.copy_context().run, fetch_url, run, source, url, kind, allowed, max_bytes)
                   for url in urls]  # each worker in the run's context (Prefect's logger)
        return [future.exception() or future.result() for future in futures]
    except BaseException:
        run.stopping.set()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def batch_failed(label: str, exc: BaseException) -> None:
    """A batch's failure in the run's log: an error line, or an info line when its host was unreachable (the
    console already has that host's one line, fetch_url)."""
    level = logging.INFO if isinstance(exc, Unreachable) else logging.ERROR
    get_run_logger().log(level, "%s: %s", label, describe(exc))


@task(cache_policy=NO_CACHE, task_run_name="fetch {source} ({kind})")
def fetch(run: Run, source: str, urls: list[str], kind: str,
          allowed: frozenset[str] | None) -> list[Response | Exception]:
    """A flow's fetching as one task run (fetch_urls): a task run per URL cost more than the fetch itself, in the
    client and in the Prefect server recording it (benchmarks/pipeline.py)."""
    return fetch_urls(run, source, urls, kind, allowed)


def audit(run: Run, tables, staged, errors, skipped: list[Outcome] = ()) -> list[Outcome]:
    """Validate and publish the staged batches, and record the failed ones (a task run, when there are any); the
    `skipped` outcomes (batches not parsed again, see Run.skip) are reported as they are, and Great Expectations
    is not even imported when nothing was staged."""
    return (validate_and_publish(run, tables, staged, errors) if staged or errors else []) + list(skipped)


@task(cache_policy=NO_CACHE, task_run_name="audit and publish {tables}")
def validate_and_publish(run: Run, tables, staged, errors) -> list[Outcome]:
    STAGES.start("validate", len(staged))  # failed batches (errors) are recorded, not validated
    outcomes = audit_and_publish(run.warehouse, run.validator if staged else None, run.id, tables, staged, errors,
                                 run.today, run.force, run.sources)
    STAGES.advance("validate", len(staged))
    return outcomes


@contextmanager
def reported(report: Report, run: Run, notify: bool, alert_block: str | None = None, news_block: str | None = None,
             then=None):
    """Run a flow's body and yield the run's reports (`report` first). Whatever ends it (an exception, SIGTERM),
    the report records it; if `notify`, what follows the flow's own work (`then(run, reports)`, e.g. the analyst
    outputs, flows/panel.py) runs unless it crashed, and the artifacts, the alert and the run log still go out
    before the lock is released; the flow then ends Failed."""
    reports = [report]
    try:
        yield reports
    except LeaseLost as exc:  # another run owns the warehouse now: reported, then the run ends with exit 3
        report.crash = str(exc)
        get_run_logger().error("run ended early: %s", report.crash)
        raise
    except (Exception, TerminationSignal) as exc:  # Prefect turns SIGTERM into TerminationSignal during a run
        report.crash = crash_reason(exc)
        get_run_logger().error("run ended early: %s", report.crash)
    else:
        if signalled := SIGNALS.terminated():  # a SIGTERM whose exception was swallowed (see tasks/run.py Signals)
            report.crash = signalled
            get_run_logger().error("run ended early: %s", report.crash)
    finally:
        if report.crash:  # what the run still fetches in the background (the refresh's sources) is not wanted
            run.stopping.set()
        report.reached, report.unreachable = run.network()
        for outcome in report.outcomes if len(report.sources) == 1 else ():  # a one-source flow's batches
            outcome.source = outcome.source or report.sources[0]
        lost = None
        if notify:
            if then is not None and not report.crash:
                try:
                    reports += then(run, list(reports))
                except LeaseLost as exc:
                    lost = exc
                    reports.append(Report("outputs", run.id, crash=str(exc)))
                except (Exception, TerminationSignal) as exc:
                    reports.append(Report("outputs", run.id, crash=crash_reason(exc)))
            finish(run, reports, alert_block, news_block, report.new_parties)
        if lost is not None:
            raise lost


def crash_reason(exc: BaseException) -> str:
    """What ended a run: the signal, even when it surfaced as another error while Prefect was handling it."""
    cause = exc
    while cause is not None and not isinstance(cause, TerminationSignal):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return terminated_by(cause.signal)
    return f"{type(exc).__name__}: {exc}"


class RunFailed(Exception):
    """A red flow run's result: its message, and its reports (what was published, quarantined, failed). Prefect
    resolves a Failed state's result into an exception; any other data ended the engine with a TypeError."""

    def __init__(self, message: str, reports: list[Report]):
        super().__init__(message, reports)
        self.reports = reports

    def __str__(self) -> str:
        return self.args[0]


class ReportedFailure(logging.Filter):
    """Prefect's engine raises a Failed flow run's result once the run ended and logs it as "Engine execution
    exited with unexpected exception", with a traceback. A RunFailed is the run's outcome, already in its state,
    summary, artifacts and alert, not an engine error: that record is dropped; any other exception is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], RunFailed))


logging.getLogger("prefect.flow_runs").addFilter(ReportedFailure())


def final_state(reports: list[Report]):
    """The flow run's state: Completed (the reports as its result), or Failed with its message (the reports in a
    RunFailed) when a batch did not pass or the run ended early."""
    data = reports if len(reports) > 1 else reports[0]
    bad = [r for r in reports if not r.ok]
    if not bad:
        return Completed(data=data)
    counts = totals(reports)
    crash = next((r.crash for r in reports if r.crash), "")
    message = (f"{counts['quarantined']} batch(es) quarantined, {counts['failed']} failed"
               + (f"; run ended early: {crash}" if crash else ""))
    return Failed(message=message, data=RunFailed(message, reports))


def reports_of(state) -> list[Report]:
    """The reports of a finished flow run's state (final_state); what ended it if it ended before it had one
    (the lock held by another run, an unusable warehouse) is raised."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, RunFailed):
        return data.reports
    if isinstance(data, BaseException):
        raise data
    return data if isinstance(data, list) else [data]


@contextmanager
def opened(run: Run | None, warehouse: str, mirror: str | None, force: bool, alert_block: str | None):
    """The run a parent flow opened, or a new one (tasks/run.py use_run); a run that the warehouse lock refuses
    (another run holds it) sends an alert before it fails, so it is never silent."""
    with ExitStack() as stack:
        try:
            current = stack.enter_context(use_run(run, warehouse, mirror, force))
        except WarehouseBusy as exc:
            deliver(channel(alert_block), refused_alert(run_name(), flow_run.flow_name, str(exc),
                                                    flow_run_link()), "refused-run alert")
            raise
        yield current


def run_name() -> str:
    """The flow run as people read it: its name and its flow's."""
    return f"'{flow_run.name}' ({flow_run.flow_name})"


def within(seconds: float | None, step, *args):
    """`step(*args)`; with `seconds`, waited for that long at most (TimeoutError; the step goes on in a daemon
    thread, which ends with the process)."""
    if seconds is None:
        return step(*args)
    done: dict = {}
    context = contextvars.copy_context()  # the flow run's (Prefect's client and logger)

    def body():
        try:
            done["result"] = context.run(step, *args)
        except BaseException as exc:  # handed to the caller
            done["error"] = exc

    thread = threading.Thread(target=body, daemon=True, name="stopping-step")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"gave up after {seconds} s: the run was stopped")
    if "error" in done:
        raise done["error"]
    return done.get("result")


def finish(run: Run, reports: list[Report], alert_block: str | None, news_block: str | None = None,
           news: list[dict] | None = None) -> None:
    """An alert for failures that are new, not yet delivered or due a reminder; one notice per recovered batch;
    new parties if opted in; then artifacts, run log and Data Docs (if anything was validated) for every run, and
    retention. Never raises: the run's own outcome comes first. In a run stopped by a signal, each of these steps
    is given STOPPING_STEP_TIMEOUT seconds."""
    logger = get_run_logger()
    name = run_name()
    now = datetime.now(timezone.utc)
    delivery = notify(run, reports, name, now, alert_block)
    for report in reports:
        report.alerts = delivery
    news_block = news_block or environment().news_block
    if news_block and (message := ratification_notice(news or [])):  # opt-in
        deliver(Channel("block", news_block), message, "new-ratifications notice")
    steps = [
        ("artifacts", lambda: (
            create_table_artifact(batch_rows(reports), key="armswatch-batches", description="One row per batch"),
            create_markdown_artifact(summary_markdown(name, reports), key="armswatch-summary",
                                     description="Run summary"))),
        ("run log", lambda: status.log_run(run.warehouse.root, run.id, {
            "id": flow_run.id, "name": flow_run.name, "flow": flow_run.flow_name, "url": flow_run_link()},
                                            reports, now)),
        ("Data Docs", run.build_docs),
    ]
    limit = STOPPING_STEP_TIMEOUT if SIGNALS.terminated() else None
    for what, step in steps:
        try:
            within(limit, step)
        except Exception as exc:
            logger.error("could not write the %s: %s: %s", what, type(exc).__name__, exc)
    try:
        for report in reports:
            for outcome in report.outcomes:
                if outcome.quarantine is not None and outcome.quarantine.parent.name == run.id:
                    mark_source(outcome.quarantine, outcome.source)
        prune(run.warehouse.root)
    except OSError as exc:
        logger.error("retention could not prune %s: %s", run.warehouse.root, exc)


def notify(run: Run, reports: list[Report], name: str, now: datetime, alert_block: str | None) -> str:
    """Alert on what `Incidents.triage` selects and record whether the channel confirmed it (retried by the next
    run if not); send the recovery notice. Returns what became of the alert, for the summary and the run log:
    "none configured", "sent via <channel>", "not delivered (<cause>); retried by the next run", or ""."""
    target = channel(alert_block)
    try:
        decision = run.incidents.triage(reports, now, run.sources)
    except Exception as exc:  # unreadable state: alert on everything rather than on nothing
        get_run_logger().error("incident state unreadable (%s); alerting on every failing batch", exc)
        decision = None
    selected = None if decision is None else [(o, kind) for _, o, kind in decision.alert]
    alert = failure_alert(name, reports, selected, run.warehouse.root, flow_run_link())
    error = deliver(target, alert, "failure alert") if alert else None
    if decision is not None:
        try:
            run.incidents.settle(decision, now, error)
        except Exception as exc:
            get_run_logger().error("could not save the incident state: %s: %s", type(exc).__name__, exc)
        deliver(target, recovery_notice(name, decision.recovered), "recovery notice")
    if target is None:
        return "none configured"
    if not alert:
        return ""
    return f"not delivered ({error}); retried by the next run" if error else f"sent via {target.name}"


def deliver(target, message, what: str) -> str | None:
    """Send `message` (if any) through `target`; None when delivered (or nothing to send), else why not, logged."""
    logger = get_run_logger()
    if message is None:
        return None
    if target is None:
        logger.warning("%s not sent: alerts: none configured (ARMSWATCH_ALERT_URL, ARMSWATCH_ALERT_BLOCK or the "
                       "alert_block parameter)", what)
        return "no alert channel configured"
    try:  # a stopped run waits STOPPING_STEP_TIMEOUT at most
        within(STOPPING_STEP_TIMEOUT if SIGNALS.terminated() else None, target.send, message)
    except (AlertNotDelivered, TimeoutError) as exc:
        logger.error("%s not delivered: %s; the next run sends it again", what, exc)
        return str(exc)
    logger.info("sent the %s via %s", what, target.name)
    return None


def flow_run_link() -> str | None:
    """The flow run in the Prefect UI, when it runs on a lasting server (not the CLI's temporary one)."""
    if environment().temporary_server or flow_run.id is None:
        return None
    return url_for("flow-run", obj_id=flow_run.id)

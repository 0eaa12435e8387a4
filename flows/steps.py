"""The Prefect tasks every flow composes: fetch (with retries for transient failures) and audit-and-publish.

No parsing or publishing logic lives here; these wrap tasks/http.py and tasks/audit.py as Prefect tasks.
Upstream: whatever URL a flow passes. Tables fed: those of the batches audited.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.archive import Response
from tasks.audit import Outcome, audit_and_publish
from tasks.errors import FetchError
from tasks.run import Run


def transient_only(task, task_run, state) -> bool:
    """Retry a fetch only for failures that may pass (unreachable, 5xx, broken connection)."""
    try:
        state.result()
    except FetchError as exc:
        return exc.transient
    except Exception:
        return False
    return False


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient_only, cache_policy=NO_CACHE,
      task_run_name="fetch {url}")
def fetch(run: Run, source: str, url: str, kind: str) -> Response:
    return run.fetcher.get(source, url, kind)


@task(cache_policy=NO_CACHE, task_run_name="audit and publish {tables}")
def audit(run: Run, tables, staged, errors) -> list[Outcome]:
    return audit_and_publish(run.warehouse, run.validator, run.id, tables, staged, errors, run.today, run.force)

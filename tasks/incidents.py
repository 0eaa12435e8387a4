"""Open incidents and what is kept of them: alert de-duplication, reminders, recovery notices, retention.

An incident is a batch that was quarantined or failed. Its fingerprint is (batch, the raw sha256s it was built
from and its suites, the failing expectations, or the error with its numbers blanked; not the code that parsed
it): the same batch failing on the same bytes for the same reasons alerts once, then reminds at most every
`ARMSWATCH_REMIND_DAYS` days (default 7); its quarantine folder is written once and reused. When the batch passes
again, one "recovered" notice goes out.
An incident counts as alerted only once its alert was delivered (`settle`); until then every run alerts it again.
An incident is closed silently only by a run that ran its source and no longer has its batch.
State: `<warehouse>/_state/incidents.json`. Retention (`prune`): the last `ARMSWATCH_KEEP` (default 10) quarantine
folders per batch and GX validation results per table, the last 5 x `ARMSWATCH_KEEP` quarantine folders per source,
the last 100 run logs (`_runs/`).
Tables fed: none.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tasks import storage
from tasks.environment import environment
from tasks.storage import atomic_write

KEEP_RUN_LOGS = 100
STATE = "_state/incidents.json"  # relative to the warehouse root
STATE_LIMIT = 64 * 2**20  # bytes of the incidents file
#: Quarantine folders kept per source: this many times ARMSWATCH_KEEP.
PER_SOURCE = 5


def fingerprint(key: str, sources: list[str], failures: list, reason: str) -> str:
    """Stable across runs for the same bytes and the same failing expectations (or the same error)."""
    if failures:
        what = sorted({f"{f.table}:{f.expectation}:{f.kwargs.get('column') or f.kwargs.get('column_list') or ''}"
                       for f in failures})
    else:
        what = [re.sub(r"0x[0-9a-f]+|\d+", "#", reason)]
    return hashlib.sha256(json.dumps([key, sorted(sources), what], default=str).encode()).hexdigest()[:16]


@dataclass
class Decision:
    """What to tell people about one run: batches to alert on (new, not yet delivered, or due a reminder), batches
    that recovered."""

    alert: list[tuple[object, object, str]]  # (report, outcome, "new" | "reminder")
    recovered: list[tuple[str, str]]  # (flow, batch key)


class Incidents:
    def __init__(self, root: Path):
        self.path = storage.location(root) / STATE
        self.open: dict[str, dict] = (json.loads(storage.read_regular(self.path, STATE_LIMIT)) if self.path.exists()
                                      else {})

    def find(self, key: str, tables: list[str], sources: list[str]) -> dict | None:
        """The open incident of batch `key` of `tables` built from exactly these `sources`, if any."""
        return next((i for i in self.open.values() if i["batch"] == key and i.get("tables") == sorted(tables)
                     and i.get("sources") == sorted(sources)), None)

    def triage(self, reports, now: datetime, sources: dict | None = None,
               remind_after: float | None = None) -> Decision:
        """Decide what to alert on and update the open incidents in memory (`settle` records the delivery and
        saves them; the caller holds the warehouse lock). An incident whose alert was never delivered is alerted
        again; one delivered is reminded every `remind_after` days. An incident is closed silently only when a
        run that ran its source no longer has its batch (`--only sdg` leaves the treaties' incidents open).
        `sources`: (table name, batch key) -> what the batch was built from (`Run.with_rules`), kept with each
        incident (and updated when the same incident is parsed again, e.g. by upgraded code)."""
        remind_after = environment().remind_days if remind_after is None else remind_after
        sources = sources or {}
        alert, recovered = [], []
        for report in reports:
            for outcome in report.outcomes:
                ident = f"{report.flow}/{outcome.key}"
                known = self.open.get(ident)
                if outcome.ok:
                    if known:
                        recovered.append((report.flow, outcome.key))
                        del self.open[ident]
                    continue
                built = sorted({s for t in outcome.rows for s in sources.get((t, outcome.key), [])})
                if known and known["fingerprint"] == outcome.fingerprint:
                    known["runs"] = known.get("runs", 1) + 1
                    known["sources"] = built  # e.g. parsed again by upgraded code: found by `find` next time
                    if not known.get("last_alerted"):
                        alert.append((report, outcome, "new"))  # its alert was never delivered
                    elif now - datetime.fromisoformat(known["last_alerted"]) >= timedelta(days=remind_after):
                        alert.append((report, outcome, "reminder"))
                    continue
                alert.append((report, outcome, "new"))
                self.open[ident] = {
                    "flow": report.flow, "batch": outcome.key, "status": outcome.status, "source": outcome.source,
                    "fingerprint": outcome.fingerprint, "first_seen": now.isoformat(timespec="seconds"),
                    "last_alerted": None, "alert_error": None, "runs": 1, "reason": outcome.reason,
                    "quarantine": str(outcome.quarantine) if outcome.quarantine else None,
                    "tables": sorted(outcome.rows), "rows": outcome.rows,
                    "sources": built,
                    "explained": explain(outcome),
                }
        seen = {f"{r.flow}/{o.key}" for r in reports for o in r.outcomes}
        ran = {s for r in reports if not r.crash for s in r.sources}
        for ident in [i for i, v in self.open.items() if i not in seen and v.get("source") in ran]:
            del self.open[ident]  # its batch is no longer in its source's catalog (or discovered upstream)
        return Decision(alert, recovered)

    def settle(self, decision: Decision, now: datetime, error: str | None) -> None:
        """Record the alert of `decision` as delivered now, or (`error`: why not) as still to be delivered by the
        next run, and save the incidents."""
        for report, outcome, _ in decision.alert:
            incident = self.open.get(f"{report.flow}/{outcome.key}")
            if incident is None:
                continue
            if error is None:
                incident["last_alerted"], incident["alert_error"] = now.isoformat(timespec="seconds"), None
            else:
                incident["alert_error"] = error
        atomic_write(self.path, json.dumps(self.open, indent=1, sort_keys=True).encode())


def explain(outcome) -> list[str]:
    """Why a batch failed, as the short readable lines of the run summary."""
    from tasks.alerts import describe

    return [line for f in outcome.failures for line in describe(f)] or outcome.reason.splitlines()


def mark_source(folder: Path, source: str) -> None:
    """Record which source a quarantine folder belongs to (`<folder>/source`), for the per-source retention."""
    marker = storage.location(folder) / "source"
    if source and not marker.exists():
        atomic_write(marker, source.encode())


def prune(root: Path, keep_last: int | None = None) -> list[Path]:
    """Delete all but the newest `keep_last` quarantine folders per batch and validation results per table, all but
    the newest PER_SOURCE x `keep_last` quarantine folders per source (batches named after links that change on
    every run must not grow the quarantine without bound), and all but the newest run logs; folders of open
    incidents are kept. Returns what was deleted."""
    keep_last = environment().keep if keep_last is None else keep_last
    root = storage.location(root)
    protected = {v.get("quarantine") for v in Incidents(root).open.values()}
    deleted = []
    by_batch: dict[str, list[Path]] = {}
    for folder in (root / "_quarantine").glob("*/*"):
        by_batch.setdefault(folder.name, []).append(folder)
    by_source: dict[str, list[Path]] = {}
    for marker in (root / "_quarantine").glob("*/*/source"):
        by_source.setdefault(marker.read_text().strip(), []).append(marker.parent)
    groups = [(folders, keep_last) for folders in by_batch.values()]
    groups += [(folders, keep_last * PER_SOURCE) for folders in by_source.values()]
    groups += [(list(table.glob("*/*")), keep_last) for table in (root / "_docs" / "validations").glob("*")]
    for folders, kept in groups:
        for folder in sorted(folders, key=lambda p: p.parent.name + p.name)[:-kept]:
            if str(folder) not in protected and folder.is_dir():
                storage.remove_tree(folder)
                deleted.append(folder)
    for run in (root / "_quarantine").glob("*"):
        if run.is_dir() and not any(run.iterdir()):
            run.rmdir()
    for log in sorted((root / "_runs").glob("*.json"))[:-KEEP_RUN_LOGS]:
        log.unlink()
        deleted.append(log)
    return deleted

"""One run of armswatch against one warehouse: its id, lock, fetcher, validator, and the summary it reports.

Shared by the flows (flows/ratification.py, flows/indicators.py, flows/refresh.py) and the CLI. Upstream: none
itself; it wires tasks/http.py (fetch), tasks/validate.py and tasks/publish.py. Tables fed: none directly.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from tasks import storage
from tasks.archive import RawArchive
from tasks.audit import Outcome
from tasks.http import Fetcher, Settings
from tasks.publish import Warehouse
from tasks.validate import Validator


@dataclass
class Run:
    id: str
    warehouse: Warehouse
    fetcher: Fetcher
    validator: Validator
    today: date
    force: bool = False


@dataclass
class Report:
    """What one flow did: an outcome per batch, in catalog order."""

    flow: str
    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    new_parties: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    def lines(self) -> list[str]:
        out = [f"{self.flow} (run {self.run_id}):"]
        for o in self.outcomes:
            rows = ", ".join(f"{t} {n}" for t, n in o.rows.items() if n) or "no rows"
            what = {
                "published": f"published ({', '.join(o.tables_changed)})",
                "unchanged": "unchanged, nothing written",
                "quarantined": f"QUARANTINED in {o.quarantine}",
                "failed": f"FAILED{f', kept in {o.quarantine}' if o.quarantine else ''}",
            }[o.status]
            out.append(f"  {o.key:<14} {what}; {o.detail + '; ' if o.detail else ''}{rows}")
            if o.reason:
                out.append(f"      reason: {o.reason}")
        return out


def mirror_dir(mirror: str | None) -> Path | None:
    """The mirror folder from the argument or ARMSWATCH_MIRROR; None means live URLs."""
    value = mirror or os.environ.get("ARMSWATCH_MIRROR") or None
    return Path(value) if value else None


@contextmanager
def open_run(warehouse: str, mirror: str | None, force: bool = False, lock_timeout: float = 0):
    """Lock the warehouse (a folder or URL; finishing any crashed publish) and yield a Run; released on exit.

    GX Data Docs are built in `<warehouse>/_docs/` when the warehouse is a local folder; on an object store the
    validation results are kept in each quarantined batch's `validation.json` only."""
    root = storage.location(warehouse)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with Warehouse(root).locked(lock_timeout) as wh:
        fetcher = Fetcher(RawArchive(root / "_raw"), Settings(), mirror_dir(mirror))
        docs = root / "_docs" if storage.is_local(root) else None
        yield Run(f"{stamp}-{secrets.token_hex(3)}", wh, fetcher, Validator(docs), date.today(), force)

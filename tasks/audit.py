"""The audit step shared by every flow: validate staged batches, publish those that pass, quarantine the rest.

Input is what the fetch and parse stages produced for one run: for each batch key either its staged tables or
the error that stopped it (unreachable source, wrong document, parse failure). Output is one `Outcome` per batch,
which the flows turn into the run summary, Prefect artifacts and alerts. Tables fed: all (through publish).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa

from tasks.incidents import fingerprint
from tasks.publish import PublishError, Warehouse
from tasks.tables import Table
from tasks.validate import Failure, Validator


@dataclass
class Outcome:
    key: str
    status: str  # published | unchanged | quarantined | failed
    rows: dict[str, int] = field(default_factory=dict)
    tables_changed: list[str] = field(default_factory=list)
    reason: str = ""
    failures: list[Failure] = field(default_factory=list)
    quarantine: Path | None = None
    detail: str = ""
    fingerprint: str = ""  # of the incident, for alert de-duplication (tasks/incidents.py)

    @property
    def ok(self) -> bool:
        return self.status in ("published", "unchanged")


def audit_and_publish(warehouse: Warehouse, validator: Validator, run_id: str, tables: tuple[Table, ...],
                      staged: dict[str, dict[Table, pa.Table]], errors: dict[str, str], today: date,
                      force: bool = False, sources: dict[tuple[str, str], list[str]] | None = None) -> list[Outcome]:
    """Validate each table once over all staged batches; publish passing batches; quarantine failing ones.
    `sources`: (table name, batch key) -> raw sha256s the batch was built from (kept with it when published)."""
    parameters = {"today": today.isoformat(), "current_year": today.year}
    sources = sources or {}

    def incident(key: str, failures: list, reason: str) -> str:
        return fingerprint(key, sorted({s for t in tables for s in sources.get((t.name, key), [])}), failures, reason)

    results = {}
    for table in tables if staged else ():
        parts = [batch[table] for batch in staged.values()]
        stacked = pa.concat_tables(parts) if parts else table.schema.empty_table()
        results[table] = validator.validate(table, stacked, parameters)
    outcomes, passing = [], {}
    for key, batch in staged.items():
        failures = [f for table in tables for f in results[table].failures_for(key)]
        rows = {table.name: batch[table].num_rows for table in tables}
        if failures:
            report = {t.name: results[t].report for t in tables if results[t].failures_for(key)}
            reason = "failed validation: " + "; ".join(str(f) for f in failures)
            digest = incident(key, failures, reason)
            folder = warehouse.quarantine(run_id, key, batch, reason, report, digest)
            outcomes.append(Outcome(key, "quarantined", rows, reason=reason, failures=failures, quarantine=folder,
                                    fingerprint=digest))
        else:
            passing[key] = batch
            outcomes.append(Outcome(key, "published", rows))
    for key, reason in errors.items():
        digest = incident(key, [], reason)
        folder = warehouse.quarantine(run_id, key, {}, reason, None, digest)
        outcomes.append(Outcome(key, "failed", reason=reason, quarantine=folder, fingerprint=digest))
    try:
        published = warehouse.publish(run_id, passing, today, force=force, sources=sources)
    except PublishError as exc:  # disk full, permission denied: the batches failed, the run goes on to report it
        for outcome in outcomes:
            if outcome.status == "published":
                outcome.status, outcome.reason = "failed", str(exc)
        return outcomes
    for outcome in outcomes:
        if outcome.status == "published":
            outcome.tables_changed = published.changed.get(outcome.key, [])
            if not outcome.tables_changed:
                outcome.status = "unchanged"
    return outcomes

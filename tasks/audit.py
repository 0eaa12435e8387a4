"""The audit step shared by every flow: validate staged batches, publish those that pass, quarantine the rest.

Input is what the fetch and parse stages produced for one run: for each batch key either its staged tables or
the error that stopped it (unreachable source, wrong document, parse failure, or any unexpected exception while
parsing or deriving it). Output is one `Outcome` per batch, which the flows turn into the run summary, Prefect
artifacts and alerts. Whatever goes wrong with one batch (its tables do not match the declared schema, the
validation of its table raises, its data cannot be written) becomes that batch's `failed` outcome, with the
traceback kept in its quarantine folder; the other batches go on. Tables fed: all (through publish).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa

from tasks.storage import atomic_write
from tasks.errors import ArmswatchError
from tasks.incidents import fingerprint
from tasks.publish import CODE_DIGEST, PublishError, Warehouse
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
    source: str = ""  # the source the batch comes from (untc, sdg, iafq, m49, panel), set by its flow

    @property
    def ok(self) -> bool:
        return self.status in ("published", "unchanged")


def once(outcomes: list[Outcome]) -> list[Outcome]:
    """One outcome per batch key, in the order first seen: a batch reported twice (failed before its key was
    known and noted unchanged under it; skipped, then failed while deriving) keeps the first that did not pass,
    which explains it, else the first."""
    chosen: dict[str, Outcome] = {}
    for o in outcomes:
        if o.key not in chosen or (chosen[o.key].ok and not o.ok):
            chosen[o.key] = o
    return list(chosen.values())


def audit_and_publish(warehouse: Warehouse, validator: Validator, run_id: str, tables: tuple[Table, ...],
                      staged: dict[str, dict[Table, pa.Table]], errors: dict[str, str | Exception], today: date,
                      force: bool = False, sources: dict[tuple[str, str], list[str]] | None = None) -> list[Outcome]:
    """Validate each table once over all staged batches; publish passing batches; quarantine failing ones.

    `errors` maps a batch key to why it has no tables: a message, or the exception itself (then its traceback is
    kept in the quarantine folder). `sources`: (table name, batch key) -> what the batch was built from (raw
    sha256s, suites and code digests; kept with it when published; without the code digest, part of an incident's
    fingerprint)."""
    parameters = {"today": today.isoformat(), "current_year": today.year}
    sources = sources or {}

    def incident(key: str, failures: list, reason: str) -> str:  # the same after an upgrade that changed nothing
        built = {s for t in tables for s in sources.get((t.name, key), []) if not s.startswith(CODE_DIGEST)}
        return fingerprint(key, sorted(built), failures, reason)
    outcomes: dict[str, Outcome] = {}
    failed = dict(errors)
    batches = {}
    for key, batch in staged.items():
        problem = schema_problem(tables, batch)
        if problem:
            reason = f"failed validation: {problem}"
            digest = incident(key, [], reason)
            outcomes[key] = Outcome(key, "quarantined", _rows(batch), reason=reason, fingerprint=digest,
                                    quarantine=_quarantine(warehouse, run_id, key, batch, reason, digest=digest))
        else:
            batches[key] = batch
    results, broken = {}, {}
    for table in tables if batches else ():  # nothing staged: GX is not even imported
        try:
            parts = [batch[table] for batch in batches.values()]
            stacked = pa.concat_tables(parts) if parts else table.schema.empty_table()
            results[table] = validator.validate(table, stacked, parameters)
        except Exception as exc:  # the validation itself broke: every batch of this table failed, not the run
            broken[table] = exc
    passing = {}
    for key, batch in batches.items():
        if broken:
            failed[key] = next(iter(broken.values()))
            continue
        failures = [f for table in tables for f in results[table].failures_for(key)]
        if failures:
            report = {t.name: results[t].report for t in tables if results[t].failures_for(key)}
            reason = "failed validation: " + "; ".join(str(f) for f in failures)
            digest = incident(key, failures, reason)
            outcomes[key] = Outcome(key, "quarantined", _rows(batch), reason=reason, failures=failures,
                                    fingerprint=digest,
                                    quarantine=_quarantine(warehouse, run_id, key, batch, reason, report, digest=digest))
        else:
            passing[key] = batch
    try:
        published = warehouse.publish(run_id, passing, today, force=force, sources=sources)
    except PublishError as exc:  # disk full, permission denied: the batches failed, the run goes on to report it
        outcomes |= {key: Outcome(key, "failed", _rows(batch), reason=str(exc)) for key, batch in passing.items()}
    else:
        for key, batch in passing.items():
            if key in published.failed:
                failed[key] = published.failed[key]
            else:
                changed = published.changed.get(key, [])
                outcomes[key] = Outcome(key, "published" if changed else "unchanged", _rows(batch),
                                        tables_changed=changed)
    for key, why in failed.items():
        reason = why if isinstance(why, str) else describe(why)
        trace = None if isinstance(why, str) else why
        digest = incident(key, [], reason)
        outcomes[key] = Outcome(key, "failed", _rows(staged.get(key)), reason=reason, fingerprint=digest,
                                quarantine=_quarantine(warehouse, run_id, key, staged.get(key), reason, trace=trace,
                                                       digest=digest))
    return [outcomes[key] for key in dict.fromkeys([*staged, *errors])]


def schema_problem(tables: tuple[Table, ...], batch) -> str | None:
    """How a staged batch differs from the declared tables (missing table, not an Arrow table, columns, types,
    nullability); None when it matches."""
    if not isinstance(batch, dict):
        return f"the batch is a {type(batch).__name__}, not a dict of tables"
    for table in tables:
        data = batch.get(table)
        if not isinstance(data, pa.Table):
            return f"{table.name}: no Arrow table staged (got {type(data).__name__})"
        if data.schema.names != table.schema.names:
            return (f"{table.name}: columns {data.schema.names} differ from the declared schema {table.schema.names} "
                    f"(drift)")
        for got, declared in zip(data.schema, table.schema):
            if got.type != declared.type or got.nullable != declared.nullable:
                return (f"{table.name}: column {got.name} is {got.type}{'' if got.nullable else ' not null'}, "
                        f"declared {declared.type}{'' if declared.nullable else ' not null'}")
    return None


def _rows(batch) -> dict[str, int]:
    if not isinstance(batch, dict):
        return {}
    return {t.name: data.num_rows for t, data in batch.items() if isinstance(data, pa.Table)}


def describe(exc: Exception) -> str:
    """An error as one line: our own errors name source, URL and problem; others their type too."""
    return str(exc) if isinstance(exc, ArmswatchError) else f"unexpected {type(exc).__name__}: {exc}"


def _quarantine(warehouse: Warehouse, run_id: str, key: str, batch, reason: str, report: dict | None = None,
                trace: Exception | None = None, digest: str = "") -> Path | None:
    """Keep the batch (as far as it is Arrow tables, nullability relaxed so that bad data can be written), the
    reason, the validation report and, for an exception, its traceback; None if the warehouse cannot take it."""
    tables = {}
    if isinstance(batch, dict):
        for table, data in batch.items():
            if isinstance(table, Table) and isinstance(data, pa.Table):
                tables[table] = data.cast(pa.schema([f.with_nullable(True) for f in data.schema],
                                                    metadata=data.schema.metadata))
    try:
        folder = warehouse.quarantine(run_id, key, tables, reason, report, digest)
        if trace is not None:
            atomic_write(folder / "traceback.txt", "".join(traceback.format_exception(trace)).encode())
    except OSError:  # disk full or read-only: the outcome still reports the batch, without a folder
        return None
    return folder

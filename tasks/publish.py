"""Write–audit–publish into the warehouse: only validated batches become current data, atomically.

Layout under the warehouse root (see warehouse/README.md):
- `<table>/<batch>.parquet`: current data, one file per batch (a treaty, an SDG series, the IAFQ file), each with
  the table's full schema, so `<table>/*.parquet` is one glob for pyarrow, DuckDB and polars;
- `_history/<table>/snapshot_date=YYYY-MM-DD/<batch>.<run_id>.parquet`: every published change, kept;
- `_quarantine/<run_id>/<batch>/`: a failed batch's staged tables, the GX result JSON and the reason;
- `_staging/<run_id>/`: a publish in progress. A publish stages every file, then writes `COMMIT.json` (its moves,
  as paths relative to the warehouse root), then renames. A crash or error before COMMIT leaves only staging
  (rolled back on the next run); after it, the next run rolls the renames forward. A batch's files are thus either
  all old or all new once any run has started. A journal naming a path that is absolute, climbs out with `..`, or
  resolves outside the warehouse through a symlink is refused whole (JournalRefused), nothing of it applied;
- `.lock`: one run at a time (an flock, released by the kernel when its holder dies: stale locks recover).
A batch whose content fingerprint (the data without fetched_at) equals the published one is not rewritten, so a
rerun over unchanged sources writes nothing. Tables fed: all (as files).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath

import filelock
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.archive import atomic_write
from tasks.tables import Table

FINGERPRINT = b"armswatch.fingerprint"
SOURCE_SHA256 = b"armswatch.source_sha256"
VOLATILE = ("fetched_at",)


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse lock."""


class PublishError(RuntimeError):
    """Publishing failed (disk full, permission denied, ...): before the commit the previously published data is
    untouched; after it the journal is kept and the next run's recover() completes the publish."""


class JournalRefused(PublishError):
    """A commit journal names a path outside the warehouse; none of its moves were applied and it is kept."""


@dataclass
class Published:
    """What a publish changed: batch key -> names of the tables rewritten for it."""

    changed: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)  # batch key -> why it could not be staged


def fingerprint(data: pa.Table) -> str:
    """sha256 of the table's content without volatile columns (Arrow IPC bytes are deterministic for equal data)."""
    stable = data.drop_columns([c for c in VOLATILE if c in data.column_names])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, stable.schema) as writer:
        writer.write_table(stable.combine_chunks())
    return hashlib.sha256(sink.getvalue()).hexdigest()


def file_name(key: str) -> str:
    """A batch key as a file-name stem; anything but letters, digits, '.', '_' and '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


class Warehouse:
    def __init__(self, root: Path):
        self.root = Path(root)

    def current(self, table: Table, key: str) -> Path:
        return self.root / table.name / f"{file_name(key)}.parquet"

    def read(self, table: Table) -> pa.Table:
        """The current data of a table (every batch), typed by the declared schema."""
        files = sorted((self.root / table.name).glob("*.parquet"))
        parts = [pq.read_table(f, schema=table.schema) for f in files]
        return pa.concat_tables(parts) if parts else table.schema.empty_table()

    def read_batch(self, table: Table, key: str) -> pa.Table | None:
        path = self.current(table, key)
        return pq.read_table(path, schema=table.schema) if path.exists() else None

    @contextmanager
    def locked(self, timeout: float = 0):
        """Hold the warehouse for one run; WarehouseBusy naming the holder if another run has it."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.root / ".lock", timeout=timeout)
        owner = self.root / ".lock.owner"
        try:
            lock.acquire()
        except filelock.Timeout:
            holder = owner.read_text().strip() if owner.exists() else "unknown process"
            raise WarehouseBusy(f"warehouse {self.root} is in use by another run ({holder}); "
                                f"try again when it has finished") from None
        try:
            owner.write_text(f"pid {os.getpid()} since {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n")
            self.recover()
            yield self
        finally:
            owner.unlink(missing_ok=True)
            lock.release()

    def recover(self) -> list[str]:
        """Finish or undo publishes a crashed run left in _staging; returns what was done."""
        done = []
        for run in sorted((self.root / "_staging").glob("*")):
            journal = run / "COMMIT.json"
            if journal.exists():
                try:
                    moves = json.loads(journal.read_text())
                except (OSError, ValueError) as exc:
                    raise JournalRefused(f"commit journal {journal} is unreadable ({exc}); nothing of it was "
                                         f"applied, it is kept for inspection") from None
                self._apply(self._confined(moves, journal))
                done.append(f"rolled forward {run.name}")
            else:
                done.append(f"rolled back {run.name}")
            shutil.rmtree(run)
        return done

    def publish(self, run_id: str, batches: dict[str, dict[Table, pa.Table]], snapshot: date,
                force: bool = False, sources: dict[tuple[str, str], list[str]] | None = None) -> Published:
        """Publish validated batches: stage changed files, commit the journal, rename into place. `sources` maps
        (table name, batch key) to the raw sha256s the batch was built from, kept in the file's metadata.

        A batch that cannot be staged for a reason other than the file system (e.g. ArrowInvalid: data that does
        not fit its schema) is left out and reported in `Published.failed`; the other batches are published."""
        staging = self.root / "_staging" / run_id
        journal = staging / "COMMIT.json"
        result, moves, applied = Published(), [], False
        try:
            for key, tables in batches.items():
                try:
                    staged = self._stage(staging, run_id, key, tables, snapshot, force, sources or {})
                except OSError:
                    raise
                except Exception as exc:  # this batch's data, not the warehouse: the others go on
                    result.failed[key] = exc
                    continue
                moves += staged
                if staged:
                    result.changed[key] = [Path(m["current"]).parent.name for m in staged]
                else:
                    result.unchanged.append(key)
            if moves:
                checked = self._confined(moves, journal)
                atomic_write(journal, json.dumps(moves, indent=1).encode())
                self._apply(checked)
            applied = True
        except OSError as exc:
            if journal.exists():
                raise PublishError(f"publishing to {self.root} failed after the commit: {exc}; the next run completes "
                                   f"it from {journal}") from exc
            raise PublishError(f"publishing to {self.root} failed, published data left as it was: {exc}") from exc
        finally:
            if applied or not journal.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return result

    def _stage(self, staging: Path, run_id: str, key: str, tables: dict[Table, pa.Table], snapshot: date,
               force: bool, sources: dict[tuple[str, str], list[str]]) -> list[dict]:
        """Write the changed tables of one batch into staging; their moves, paths relative to the root."""
        moves = []
        for table, data in tables.items():
            digest = fingerprint(data)
            target = self.current(table, key)
            if not force and _published_fingerprint(target) == digest:
                continue
            staged = staging / table.name / target.name
            _write_parquet(data, staged, digest, {
                "armswatch.source_sha256": ",".join(sources.get((table.name, key), [])),
                "armswatch.as_of": _as_of(data, snapshot), "armswatch.run_id": run_id,
                "armswatch.published_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            history = (self.root / "_history" / table.name / f"snapshot_date={snapshot.isoformat()}"
                       / f"{file_name(key)}.{run_id}.parquet")
            moves.append({name: str(path.relative_to(self.root))
                          for name, path in (("staged", staged), ("current", target), ("history", history))})
        return moves

    def _confined(self, moves, journal: Path) -> list[tuple[Path, Path, Path]]:
        """The journal's moves as paths inside the warehouse; JournalRefused if any path could leave it."""
        root = self.root.resolve()
        checked = []
        try:
            for move in moves:
                paths = []
                for name in ("staged", "current", "history"):
                    relative = PurePosixPath(move[name])
                    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                        raise ValueError(f"{name} path {move[name]!r} is not relative to the warehouse")
                    path = self.root / relative
                    if not path.resolve().is_relative_to(root):
                        raise ValueError(f"{name} path {move[name]!r} resolves to {path.resolve()}, outside {root}")
                    paths.append(path)
                checked.append(tuple(paths))
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalRefused(f"commit journal {journal} refused: {exc}; nothing of it was applied, it is kept "
                                 f"for inspection") from None
        return checked

    @staticmethod
    def _apply(moves: list[tuple[Path, Path, Path]]) -> None:
        """Idempotent: link each staged file into history, then rename it over the current file."""
        for staged, current, history in moves:
            if not staged.exists():
                continue
            history.parent.mkdir(parents=True, exist_ok=True)
            if not history.exists():
                os.link(staged, history)
            current.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, current)

    def quarantine(self, run_id: str, key: str, tables: dict[Table, pa.Table], reason: str,
                   report: dict | None, incident: str = "") -> Path:
        """Keep a failed batch, its GX results and the reason under _quarantine/<run_id>/<batch>/. A batch already
        quarantined with the same incident fingerprint (same bytes, same failures) is not copied again: the
        folder that holds it is returned."""
        for earlier in sorted((self.root / "_quarantine").glob(f"*/{file_name(key)}/incident"), reverse=True):
            if incident and earlier.read_text().strip() == incident:
                return earlier.parent
        folder = self.root / "_quarantine" / run_id / file_name(key)
        for table, data in tables.items():
            _write_parquet(data, folder / f"{table.name}.parquet", fingerprint(data))
        atomic_write(folder / "reason.txt", (reason + "\n").encode())
        if report is not None:
            atomic_write(folder / "validation.json", json.dumps(report, indent=1, default=str).encode())
        if incident:  # last: only a complete quarantine is reused
            atomic_write(folder / "incident", (incident + "\n").encode())
        return folder


def published_metadata(path: Path) -> dict[str, str]:
    """The armswatch.* key/value metadata of a published file ({} if there is none or no file)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return {}
    return {k.decode(): v.decode() for k, v in metadata.items() if k.startswith(b"armswatch.")}


def _published_fingerprint(path: Path) -> str | None:
    return published_metadata(path).get(FINGERPRINT.decode())


def source_sha256(path: Path) -> str | None:
    """The comma-separated raw sha256s a published file was built from; None if unknown."""
    return published_metadata(path).get(SOURCE_SHA256.decode()) or None


def _as_of(data: pa.Table, snapshot: date) -> str:
    """The date the data is as of: its as_of or release_date column, else the date it was fetched, else today."""
    for column in ("as_of", "release_date", "fetched_at"):
        if column in data.column_names and data.num_rows and (value := pc.max(data[column]).as_py()) is not None:
            return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()
    return snapshot.isoformat()


def _write_parquet(data: pa.Table, path: Path, digest: str, extra: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {**(data.schema.metadata or {}), FINGERPRINT: digest.encode(),
                **{k.encode(): v.encode() for k, v in (extra or {}).items()}}
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(data.replace_schema_metadata(metadata), tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)

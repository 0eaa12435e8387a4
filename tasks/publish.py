"""Write–audit–publish into the warehouse: only validated batches become current data, in one atomic step.

The warehouse is a location by URL (tasks/storage.py): a local folder or an object store (`s3://bucket/prefix`),
both served by this one code path, which needs no rename, hard link or fsync of the store, only an atomic write
of one object (on S3 a PUT; on a local disk a temporary file renamed over the old one).

Layout under the warehouse root (see warehouse/README.md):
- `_manifest.json`: what is current: for every table, each batch's data file, content fingerprint and glob copy
  (`tables`), and the same files as one list per table (`files`, for readers such as DuckDB). It is replaced by
  one atomic write as the commit of a publish, so a reader that follows it sees, for every batch across all its
  tables, either the old or the new version, never a mix (`Warehouse.read`, `Warehouse.files`). Every file it
  names must be a file of its own table (`table_file`: no `..`, glob character or absolute path), else reading it
  fails (PublishError) instead of following it;
- `_history/<table>/snapshot_date=YYYY-MM-DD/<batch>.<run_id>.parquet`: the data files, immutable, one per
  published version, each with a `run_id` column (RUN_ID) besides its table's schema; the manifest names the
  current ones;
- `<table>/<batch>.parquet`: a copy of each current file of the latest release, refreshed just after the commit,
  for readers that glob `<table>/*.parquet` (a batch of an older release, `is_latest_release` false, is copied to
  `<table>_releases/` instead: `copy_folder`); each file is complete, but a glob taken during a publish (or after
  a crash, until the next run) may see one batch's tables at different versions;
- `_pending/<commit>.json`: a publish in progress (its files, as paths relative to the root), written before any
  of them. The next run's recover() rolls it back (deletes its unpublished files) if the manifest does not name
  its commit, or forward (refreshes the copies) if it does. A journal naming a path that is absolute, climbs out
  with `..`, is not a data file and copy of one batch of one table, or resolves outside the warehouse through a
  symlink is refused whole (JournalRefused), nothing of it applied;
- `_quarantine/<run_id>/<batch>/`: a failed batch's staged tables, the GX result JSON and the reason;
- one run at a time: on a local disk an flock on `.lock` (released by the kernel when its holder dies); on an
  object store the lease object `_lock.json`, created only if absent (`If-None-Match: *`), renewed while the run
  lives and taken over (`If-Match`) only after it expired. The commit is fenced: on an object store the manifest
  is written only if it is still the version the run read (`If-Match` its ETag, `If-None-Match: *` when there
  was none), so a run whose lease was taken over while it was paused publishes nothing (LeaseLost, exit 3).
A batch whose content fingerprint (the data without fetched_at) equals the published one is not rewritten, so a
rerun over unchanged sources writes no data file, copy or manifest. Every data file carries key/value metadata:
`armswatch.fingerprint`, `armswatch.source_sha256` (the raw sha256s the batch was built from), `armswatch.as_of`,
`armswatch.run_id`, `armswatch.published_at`. The manifest entry of a batch also names what it was built from
(`sources`): when other bytes give the same data, only that entry changes, so the next run knows the batch is
built from them and does not parse it again (Run.skip). Tables fed: all (as files).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import socket
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import filelock
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from upath import UPath

from tasks import storage
from tasks.storage import atomic_write
from tasks.tables import Table

FINGERPRINT = b"armswatch.fingerprint"
SOURCE_SHA256 = b"armswatch.source_sha256"
VOLATILE = ("fetched_at",)
MANIFEST = "_manifest.json"
MANIFEST_LIMIT = 256 * 2**20  # bytes: a manifest of thousands of batches is a few MiB
#: The column every data file carries besides its table's schema: the run that published that version.
RUN_ID = "run_id"
#: Suffix of the folder holding the glob copies of older releases (`firearms_seizures_releases/`).
RELEASES = "_releases"
#: How long an object-store lock lasts without renewal; its holder renews it every third of that.
LEASE_SECONDS = 600


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse lock."""


class LeaseLost(WarehouseBusy):
    """Another run took over this run's lease of an object-store warehouse (it expired while this run was paused or
    cut off) and may have published since: this run's commit is refused and it publishes nothing (exit 3)."""


class WarehouseUnusable(RuntimeError):
    """The warehouse cannot be written: a local path that is a file or not writable, or a store that refuses or
    cannot be reached when the run takes its lock (no credentials, no such bucket, access denied)."""


class PublishError(RuntimeError):
    """Publishing failed (disk full, permission denied, store unreachable, lock lost): before the commit the
    published data is untouched; after it the data is published and the next run's recover() refreshes the copies."""


class JournalRefused(PublishError):
    """A pending journal is unreadable or names a path outside the table files; none of it was applied and it is
    kept."""


@dataclass
class Published:
    """What a publish changed: batch key -> names of the tables rewritten for it."""

    changed: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)  # batch key -> why it could not be staged


@dataclass
class _Write:
    table: str
    stem: str
    history: str  # relative to the root
    current: str  # its glob copy ("" when the data and its copy stay as published)
    data: bytes | None  # None: the data is as published (only what it is built from, or where its copy is, changed)
    digest: str
    sources: str  # the raw sha256s (or input fingerprints) it is built from, comma-separated


def fingerprint(data: pa.Table) -> str:
    """sha256 of the table's content without volatile columns (Arrow IPC bytes are deterministic for equal data)."""
    stable = data.drop_columns([c for c in VOLATILE if c in data.column_names])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, stable.schema) as writer:
        writer.write_table(stable.combine_chunks())
    return hashlib.sha256(sink.getvalue()).hexdigest()


def table_file(table: str, path: str) -> str:
    """`path` if it is a data file of `table` relative to the warehouse root: `_history/<table>/<partition>/<file>`
    or a glob copy `<table>/<file>` (`<table>_releases/<file>`), a `.parquet` file; ValueError otherwise (absolute,
    `..` or `.`, empty segments, glob characters, backslashes, another table's folder), so that neither a manifest
    nor a journal can make a reader or a recovery touch anything else."""
    parts = path.split("/") if isinstance(path, str) else []
    plain = parts and all(p not in ("", ".", "..") and p.isprintable() for p in parts) and "\\" not in path
    if not (re.fullmatch(r"[a-z][a-z0-9_]*", table) and plain and not storage.GLOB.search(path)
            and path.endswith(".parquet")
            and (parts[:2] == ["_history", table] and len(parts) == 4
                 or parts[0] in (table, table + RELEASES) and len(parts) == 2)):
        raise ValueError(f"path {path!r} is not a table file of {table!r} (_history/{table}/<partition>/<file>.parquet "
                         f"or {table}/<file>.parquet, without '..', glob characters or an absolute path)")
    return path


def copy_folder(table: str, data: pa.Table) -> str:
    """Where the glob copy of a batch goes: `<table>/`, or `<table>_releases/` for a batch of an older release
    (rows all `is_latest_release` false), so that a glob over `<table>/*.parquet` reads the latest release only."""
    if "is_latest_release" in data.column_names and data.num_rows and not pc.any(data["is_latest_release"]).as_py():
        return table + RELEASES
    return table


def copy_of(table: str, stem: str, entry: dict) -> str:
    """The glob copy a manifest entry names (`copy`; an entry written before it was recorded: `<table>/<stem>`)."""
    return entry.get("copy", f"{table}/{stem}.parquet")


def file_name(key: str) -> str:
    """A batch key as a file-name stem; anything but letters, digits, '.', '_' and '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


class Warehouse:
    def __init__(self, root):
        self.root = storage.location(root)
        self._lock = None
        self._manifest: dict | None = None
        self._version: str | None = None  # the ETag of the manifest read last (object stores)
        # Held while the manifest is read and kept, and while a commit replaces it: a run's fetching reads the
        # manifest in the background (flows/indicators.py) while the run publishes, and must not keep what it read
        # just before a commit once the commit is done.
        self._kept = threading.RLock()

    def current(self, table: Table, key: str) -> UPath:
        """The glob copy of a batch's current file (`<table>/<batch>.parquet`, `<table>_releases/` for an older
        release: `copy_folder`), as the manifest names it."""
        stem = file_name(key)
        return self.root / copy_of(table.name, stem, self.entries(table)[stem])

    def manifest(self) -> dict:
        """The published state: {"commit", "run_id", "published_at", "tables": {table: {batch: {"file",
        "fingerprint", "sources"}}}, "files": {table: [file, ...]}}. A warehouse published before the manifest
        existed is read from its `<table>/` files (its "tables" only). While this Warehouse holds the lock no other
        run can commit, so the manifest is read once and then kept by its own commits (a run asks it for every batch
        it may skip)."""
        with self._kept:
            if self._manifest is not None:
                return self._manifest
            manifest = self._read_manifest()
            if self._lock is not None:
                self._manifest = manifest
            return manifest

    def _read_manifest(self) -> dict:
        """The manifest, every path in it checked (`table_file`); on an object store also the version read
        (`_version`: its ETag, None when there is none), which the commit is conditional on."""
        path = self.root / MANIFEST
        if storage.is_local(self.root):
            try:
                found = (storage.read_regular(path, MANIFEST_LIMIT), None)  # a FIFO or a device is never read
            except FileNotFoundError:
                found = None
            except storage.StorageError as exc:
                raise PublishError(f"the warehouse manifest is refused ({exc}); nothing was read or changed") from None
        else:
            found = storage.read_versioned(path)
        self._version = found and found[1]
        if found is None:
            return self._legacy_manifest()
        try:
            manifest = json.loads(found[0])
            if not isinstance(manifest.get("tables"), dict):
                raise ValueError("no 'tables' object")
            for table, entries in manifest["tables"].items():
                for entry in entries.values():
                    table_file(table, entry["file"])
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise PublishError(f"the warehouse manifest {path} is refused ({type(exc).__name__}: {exc}); nothing "
                               f"was read or changed") from None
        return manifest

    def entries(self, table: Table | str) -> dict[str, dict]:
        """The manifest entries of a table's batches, by file-name stem (`file_name(key)`)."""
        return self.manifest()["tables"].get(table if isinstance(table, str) else table.name, {})

    def batches(self, table: Table | str) -> dict[str, UPath]:
        """The current data file of each batch of a table, by file-name stem (`file_name(key)`), as the manifest
        names them."""
        entries = self.entries(table)
        return {stem: self.root / entries[stem]["file"] for stem in sorted(entries)}

    def files(self, table: Table | str) -> list[UPath]:
        """The current data files of a table, one per batch: what `read` reads, for DuckDB, polars or pyarrow."""
        return list(self.batches(table).values())

    def read(self, table: Table) -> pa.Table:
        """The current data of a table (every batch), typed by the declared schema."""
        parts = [_read_parquet(path, table) for path in self.files(table)]
        return pa.concat_tables(parts) if parts else table.schema.empty_table()

    def read_batch(self, table: Table, key: str) -> pa.Table | None:
        entry = self.entries(table).get(file_name(key))
        return _read_parquet(self.root / entry["file"], table) if entry else None

    def built_from(self, table: Table | str, key: str) -> str | None:
        """What the published batch was built from (comma-separated sha256s): its manifest entry's `sources`, or
        for a batch published before the manifest named them, its file's metadata; None if not published."""
        entry = self.entries(table).get(file_name(key))
        return entry_sources(self.root, entry) if entry else None

    @contextmanager
    def locked(self, timeout: float = 0):
        """Hold the warehouse for one run, finishing any crashed publish first; WarehouseBusy naming the holder if
        another run has it."""
        lock = _FileLock(self.root) if storage.is_local(self.root) else _Lease(self.root / "_lock.json")
        try:
            lock.acquire(timeout)
        except WarehouseBusy:
            raise
        except Exception as exc:  # the store itself: no credentials, no bucket, denied, unreachable
            raise WarehouseUnusable(f"warehouse {self.root} cannot be locked for writing: "
                                    f"{type(exc).__name__}: {exc}") from None
        self._lock, self._manifest = lock, None
        try:
            self.recover()
            yield self
        finally:
            self._lock, self._manifest = None, None
            lock.release()

    def recover(self) -> list[str]:
        """Finish (manifest committed) or undo (not committed) the publishes a crashed run left pending."""
        done, journals = [], _listing(self.root / "_pending", "*.json")
        if journals:  # recovering writes no manifest: one read for every journal
            manifest = self.manifest()
            named = {e["file"] for entries in manifest["tables"].values() for e in entries.values()}
        for journal in journals:
            try:
                entry = json.loads(journal.read_bytes())
                commit, moves = str(entry["commit"]), self._confined(entry["files"])
            except (KeyError, TypeError, ValueError) as exc:
                raise JournalRefused(f"pending journal {journal} refused: {exc}; nothing of it was applied, it is "
                                     f"kept for inspection") from None
            if manifest.get("commit") == commit:
                for history, current in moves:
                    if history in named:
                        self._copy(history, current)
                done.append(f"rolled forward {commit}")
            else:
                for history, _ in moves:
                    if history not in named:
                        _delete(self.root / history)
                done.append(f"rolled back {commit}")
            self._sweep({(self.root / p).parent for move in moves for p in move})
            _delete(journal)
        self._sweep({self.root / "_pending"})
        return done

    def publish(self, run_id: str, batches: dict[str, dict[Table, pa.Table]], snapshot: date,
                force: bool = False, sources: dict[tuple[str, str], list[str]] | None = None) -> Published:
        """Publish validated batches: write their changed files, then commit them in the manifest, then refresh
        the glob copies. `sources` maps (table name, batch key) to what the batch was built from (raw sha256s and
        the suites and code digests), kept in its manifest entry (which decides whether a later run skips it) and
        its file's metadata; a batch whose data is unchanged and only its sources changed gets a new manifest
        entry and no new file.

        A batch that cannot be written as Parquet (e.g. ArrowInvalid: data that does not fit its schema) is left
        out and reported in `Published.failed`; the other batches are published."""
        manifest = self.manifest()
        result, writes = Published(), []
        for key, tables in batches.items():
            try:
                staged = self._stage(manifest, run_id, key, tables, snapshot, force, sources or {})
            except Exception as exc:  # this batch's data, not the warehouse: the others go on
                result.failed[key] = exc
                continue
            writes += staged
            if changed := [w.table for w in staged if w.data is not None]:
                result.changed[key] = changed
            else:
                result.unchanged.append(key)
        if writes:
            self._commit(manifest, run_id, writes)
        return result

    def _stage(self, manifest: dict, run_id: str, key: str, tables: dict[Table, pa.Table], snapshot: date,
               force: bool, sources: dict[tuple[str, str], list[str]]) -> list[_Write]:
        """The changed tables of one batch as Parquet bytes, with where they go, and the tables whose data is as
        published but built from other sources (data None: only the manifest entry changes); nothing is written
        yet."""
        stem, writes = file_name(key), []
        as_of = _as_of(tables.values(), snapshot)  # one date for every table of the batch
        for table, data in tables.items():
            digest, built = fingerprint(data), ",".join(sources.get((table.name, key), []))
            published = manifest["tables"].get(table.name, {}).get(stem)
            copy = f"{copy_folder(table.name, data)}/{stem}.parquet"
            if not force and published and published.get("fingerprint") == digest:
                moved = copy != copy_of(table.name, stem, published)
                if moved or (built and built != entry_sources(self.root, published)):
                    writes.append(_Write(table.name, stem, history=published["file"], current=copy if moved else "",
                                         data=None, digest=digest, sources=built or entry_sources(self.root, published)))
                continue
            history = f"_history/{table.name}/snapshot_date={snapshot.isoformat()}/{stem}.{run_id}.parquet"
            data_bytes = _parquet_bytes(data.append_column(RUN_ID, pa.repeat(run_id, data.num_rows)), digest, {
                "armswatch.source_sha256": built, "armswatch.as_of": as_of, "armswatch.run_id": run_id,
                "armswatch.published_at": _now().isoformat(timespec="seconds")})
            writes.append(_Write(table.name, stem, history, copy, data_bytes, digest, built))
        return writes

    def _commit(self, manifest: dict, run_id: str, writes: list[_Write]) -> None:
        commit = f"{run_id}.{secrets.token_hex(4)}"
        journal = self.root / "_pending" / f"{commit}.json"
        tables = {name: dict(entries) for name, entries in manifest["tables"].items()}
        for w in writes:
            copy = w.current or copy_of(w.table, w.stem, manifest["tables"][w.table][w.stem])
            tables.setdefault(w.table, {})[w.stem] = {"file": w.history, "fingerprint": w.digest,
                                                      "sources": w.sources, "copy": copy}
        copies = [w for w in writes if w.current]  # the others change only their manifest entry
        writes = [w for w in writes if w.data is not None]
        new = {"format": 1, "commit": commit, "run_id": run_id,
               "published_at": _now().isoformat(timespec="seconds"), "tables": tables,
               "files": {name: [entries[stem]["file"] for stem in sorted(entries)] for name, entries in tables.items()}}
        committed = False
        try:
            self._check_lock()
            if copies:  # glob copies to write (a commit of sources only needs no journal)
                atomic_write(journal, json.dumps({"commit": commit, "files": [
                    {"history": w.history, "current": w.current} for w in copies]}, indent=1).encode())
            for w in writes:
                atomic_write(self.root / w.history, w.data)
            self._check_lock()
            with self._kept:
                self._manifest = None  # read again if the write below fails part-way
                self._write_manifest(json.dumps(new, indent=1, sort_keys=True).encode())
                committed = True
                if self._lock is not None:
                    self._manifest = new
            for w in copies:
                self._copy(w.history, w.current, w.data)
            _delete(journal)
        except Exception as exc:  # the data is already Parquet: whatever fails now is the store
            if committed:
                raise PublishError(f"publishing to {self.root} failed after the commit: {exc}; the data is "
                                   f"published, the next run completes it from {journal}") from exc
            try:
                for path in (*(self.root / w.history for w in writes), journal):
                    _delete(path)
            except Exception:  # the store refuses even that: the next run's recover() rolls it back
                pass
            if isinstance(exc, LeaseLost):
                raise
            raise PublishError(f"publishing to {self.root} failed, published data left as it was: {exc}") from exc

    def _write_manifest(self, data: bytes) -> None:
        """The commit. On an object store it is fenced: written only if the manifest is still the version this run
        read (If-Match its ETag; If-None-Match when there was none), so a run whose lease another run took over
        while it was paused cannot overwrite what that run published (LeaseLost). A local warehouse's flock
        cannot be taken over while its holder lives."""
        path = self.root / MANIFEST
        if storage.is_local(self.root):
            atomic_write(path, data)
            return
        try:
            version = storage.replace_if(path, data, self._version) if self._version else storage.create(path, data)
        except OSError:  # 412, or the object created meanwhile: another run committed since this one read it
            found = storage.read_versioned(path)
            if (found and found[1]) != self._version:
                raise LeaseLost(f"warehouse {self.root}: another run committed {MANIFEST} since this run read it "
                                f"(its lease was taken over); this run published nothing") from None
            raise
        self._version = version

    def _copy(self, history: str, current: str, data: bytes | None = None) -> None:
        """Refresh a glob copy from its history file and remove the batch's copy from the other folder of its
        table (`<table>/` holds the latest release, `<table>_releases/` the older ones)."""
        atomic_write(self.root / current, (self.root / history).read_bytes() if data is None else data)
        folder, name = current.split("/")
        other = self.root / (folder.removesuffix(RELEASES) if folder.endswith(RELEASES) else folder + RELEASES) / name
        if other.exists():
            _delete(other)

    def _check_lock(self) -> None:
        if self._lock is not None and self._lock.lost:
            raise LeaseLost(f"the warehouse lock was taken over by another run ({self._lock.lost}); this run "
                            f"published nothing")

    def _confined(self, files) -> list[tuple[str, str]]:
        """The journal's files as (history, copy) paths relative to the root; ValueError if any could leave the
        table files (absolute, `..`, another folder, or outside the warehouse through a symlink)."""
        checked = []
        for move in files:
            history, current = str(move["history"]), str(move["current"])
            table = history.split("/")[1] if history.count("/") == 3 else ""
            if (table_file(table, history).split("/")[0] != "_history" or table_file(table, current).startswith("_")
                    or PurePosixPath(current).stem != PurePosixPath(history).stem.rsplit(".", 1)[0]):
                raise ValueError(f"copy {current!r} is not a table file of history {history!r} (one batch of one "
                                 f"table)")
            if storage.is_local(self.root):
                root = self.root.resolve()
                for path in (history, current):
                    if not (resolved := (self.root / path).resolve()).is_relative_to(root):
                        raise ValueError(f"path {path!r} resolves to {resolved}, outside {root}")
            checked.append((history, current))
        return checked

    def _sweep(self, folders) -> None:
        """Remove the temporary files a killed local write left beside the files of a pending publish."""
        if storage.is_local(self.root):
            for folder in {self.root, *folders}:  # the root holds the manifest's
                for tmp in _listing(folder, ".*.tmp"):
                    tmp.unlink(missing_ok=True)

    def _legacy_manifest(self) -> dict:
        tables = {}
        for folder in _listing(self.root, "*"):
            if folder.name.startswith(("_", ".")) or not folder.is_dir():
                continue
            for path in _listing(folder, "*.parquet"):
                tables.setdefault(folder.name, {})[path.stem] = {
                    "file": f"{folder.name}/{path.name}", "fingerprint": _published_fingerprint(path)}
        return {"format": 1, "commit": None, "tables": tables}

    def quarantine(self, run_id: str, key: str, tables: dict[Table, pa.Table], reason: str,
                   report: dict | None, incident: str = "") -> UPath:
        """Keep a failed batch, its GX results and the reason under _quarantine/<run_id>/<batch>/. A batch already
        quarantined with the same incident fingerprint (same bytes, same failures) is not copied again: the
        folder that holds it is returned."""
        for earlier in reversed(_listing(self.root / "_quarantine", f"*/{file_name(key)}/incident")):
            if incident and earlier.read_text().strip() == incident:
                return earlier.parent
        folder = self.root / "_quarantine" / run_id / file_name(key)
        for table, data in tables.items():
            atomic_write(folder / f"{table.name}.parquet", _parquet_bytes(data, fingerprint(data)))
        atomic_write(folder / "reason.txt", (reason + "\n").encode())
        if report is not None:
            atomic_write(folder / "validation.json", json.dumps(report, indent=1, default=str).encode())
        if incident:  # last: only a complete quarantine is reused
            atomic_write(folder / "incident", (incident + "\n").encode())
        return folder


class _FileLock:
    """A local warehouse's lock: an flock, released by the kernel when its holder dies."""

    lost = None

    def __init__(self, root: UPath):
        self.root = root
        self.owner = root / ".lock.owner"

    def acquire(self, timeout: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = filelock.FileLock(self.root / ".lock", timeout=timeout)
        try:
            self.lock.acquire()
        except filelock.Timeout:
            holder = self.owner.read_text().strip() if self.owner.exists() else "unknown process"
            raise WarehouseBusy(f"warehouse {self.root} is in use by another run ({holder}); "
                                f"try again when it has finished") from None
        self.owner.write_text(f"pid {os.getpid()} since {_now().isoformat(timespec='seconds')}\n")

    def release(self) -> None:
        self.owner.unlink(missing_ok=True)
        self.lock.release()


class _Lease:
    """An object-store warehouse's lock: the object `_lock.json` naming its holder and when the lease expires.

    Created only if absent (If-None-Match: *), so of two runs starting at once exactly one gets it; renewed every
    third of LEASE_SECONDS by a thread while the run lives (If-Match its own version); taken over (If-Match the
    version read) only once expired, so a run that died holding it delays the next one by at most LEASE_SECONDS.
    A holder whose renewal fails has lost the lease (`lost`) and publishes nothing more."""

    def __init__(self, path: UPath):
        self.path, self.seconds, self.lost = path, LEASE_SECONDS, None
        self.holder = (f"host {socket.gethostname()} pid {os.getpid()} since {_now().isoformat(timespec='seconds')}"
                       + (f", flow run {os.environ['PREFECT__FLOW_RUN_ID']}" if "PREFECT__FLOW_RUN_ID" in os.environ
                          else ""))
        self.stop = threading.Event()

    def _body(self) -> bytes:
        expires = _now() + timedelta(seconds=self.seconds)
        return json.dumps({"holder": self.holder, "expires": expires.isoformat(timespec="seconds")}).encode()

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.etag = storage.create(self.path, self._body())
                break
            except FileExistsError:
                pass
            found = storage.read_versioned(self.path)
            if found is None:  # released meanwhile
                continue
            holder, expires = _lease_info(found[0])
            if expires <= _now():
                try:
                    self.etag = storage.replace_if(self.path, self._body(), found[1])
                    break
                except OSError:  # another run took it over first
                    continue
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"warehouse {self.path.parent} is in use by another run ({holder}; its lease "
                                    f"{self.path} runs until {expires.isoformat(timespec='seconds')} unless "
                                    f"renewed); try again when it has finished")
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        self.thread = threading.Thread(target=self._renew, name="armswatch-lease", daemon=True)
        self.thread.start()

    def _renew(self) -> None:
        while not self.stop.wait(self.seconds / 3):
            try:
                self.etag = storage.replace_if(self.path, self._body(), self.etag)
            except Exception as exc:
                self.lost = f"renewing {self.path} failed: {type(exc).__name__}"
                return

    def release(self) -> None:
        self.stop.set()
        self.thread.join()
        found = storage.read_versioned(self.path)
        if self.lost is None and found is not None and found[1] == self.etag:
            _delete(self.path)


def _lease_info(body: bytes) -> tuple[str, datetime]:
    """Holder and expiry of a lease object; an unreadable one counts as expired."""
    try:
        lease = json.loads(body)
        return str(lease["holder"]), datetime.fromisoformat(lease["expires"])
    except (ValueError, KeyError, TypeError):
        return "an unreadable lease", datetime.min.replace(tzinfo=timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _listing(folder: UPath, pattern: str) -> list[UPath]:
    try:
        return sorted(folder.glob(pattern))
    except FileNotFoundError:
        return []


def _delete(path: UPath) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _opened(path: UPath):
    """What pyarrow reads `path` from: the local path itself, or a file object of its store."""
    return nullcontext(path) if storage.is_local(path) else path.fs.open(path.path, "rb")


def _read_parquet(path: UPath, table: Table) -> pa.Table:
    with _opened(path) as source:
        return pq.read_table(source, schema=table.schema)


def parquet_metadata(path: UPath) -> pq.FileMetaData | None:
    """The Parquet footer of a file on any store (rows, key/value metadata); None if no such file or not Parquet."""
    try:
        with _opened(path) as source:
            return pq.read_metadata(source)
    except (OSError, pa.ArrowInvalid):
        return None


def footer_metadata(footer: pq.FileMetaData | None) -> dict[str, str]:
    """The armswatch.* key/value metadata of a Parquet footer ({} if there is none)."""
    metadata = (footer.metadata if footer is not None else None) or {}
    return {k.decode(): v.decode() for k, v in metadata.items() if k.startswith(b"armswatch.")}


def published_metadata(path: UPath) -> dict[str, str]:
    """The armswatch.* key/value metadata of a published file ({} if there is none or no file)."""
    return footer_metadata(parquet_metadata(path))


def _published_fingerprint(path: UPath) -> str | None:
    return published_metadata(path).get(FINGERPRINT.decode())


#: How the digest of the code and configuration that parse a batch starts, among what the batch is built from.
CODE_DIGEST = "code:"
CODE = (*sorted(Path(__file__).parent.glob("*.py")), *sorted(Path(__file__).parent.glob("*.yaml")))


def code_digest() -> str:
    """One digest of what turns raw bytes into tables besides the suites: armswatch's tasks (*.py, *.yaml) and
    country_aliases.yaml, as owid/etl checksums a step's code. After any change, every batch is parsed once again."""
    from tasks.countries import ALIASES_FILE  # read when called: operators (and tests) may point it elsewhere

    digest = hashlib.sha256()
    for path in (*CODE, ALIASES_FILE):  # a missing aliases file is the treaty catalog's error (catalog.load), not this
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return CODE_DIGEST + digest.hexdigest()


def entry_sources(root: UPath, entry: dict) -> str:
    """What the batch of a manifest entry was built from (comma-separated sha256s): the entry's `sources`, or for a
    batch published before the manifest named them, its file's metadata ("" if unknown)."""
    if "sources" in entry:
        return entry["sources"]
    return published_metadata(root / entry["file"]).get(SOURCE_SHA256.decode(), "")


#: The columns a batch's as-of date is read from, the first one a table of the batch has (`armswatch.as_of`).
AS_OF_COLUMNS = ("as_of", "release_date", "fetched_at")


def _as_of(batch, snapshot: date) -> str:
    """The date a batch's data is as of: the as_of or release_date column of any of its tables (a treaty's status
    date holds for all six of its tables), else the date it was fetched, else today."""
    batch = list(batch)
    for column in AS_OF_COLUMNS:
        for data in batch:
            if column in data.column_names and data.num_rows and (value := pc.max(data[column]).as_py()) is not None:
                return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()
    return snapshot.isoformat()


def _parquet_bytes(data: pa.Table, digest: str, extra: dict[str, str] | None = None) -> bytes:
    metadata = {**(data.schema.metadata or {}), FINGERPRINT: digest.encode(),
                **{k.encode(): v.encode() for k, v in (extra or {}).items()}}
    sink = pa.BufferOutputStream()
    pq.write_table(data.replace_schema_metadata(metadata), sink, compression="zstd")
    return sink.getvalue().to_pybytes()

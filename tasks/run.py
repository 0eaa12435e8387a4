"""One run of armswatch against one warehouse: its id, lock, fetcher, validator, and the summary it reports.

Shared by the flows (flows/ratification.py, flows/indicators.py, flows/refresh.py) and the CLI. Upstream: none
itself; it wires tasks/http.py (fetch), tasks/validate.py and tasks/publish.py. The fetcher and the validator
(Great Expectations) are built on first use, so a run that fetches nothing builds no fetcher and a run in which
nothing changed never imports Great Expectations. Tables fed: none directly.
"""

from __future__ import annotations

import _thread
import collections
import functools
import hashlib
import os
import secrets
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import cached_property
from pathlib import Path

import pyarrow as pa
from upath import UPath

from tasks import storage
from tasks.audit import Outcome
from tasks.environment import environment
from tasks.incidents import Incidents
from tasks.publish import Warehouse, WarehouseUnusable, code_digest
from tasks import validate
from tasks.validate import IsolatedValidator, suites_digest

STATUSES = ("published", "unchanged", "quarantined", "failed")

# Arrow's bundled allocator (mimalloc) keeps the memory a run frees for reuse: the default run's peak memory was
# about 45 MB lower with the system allocator (benchmarks/pipeline.py). ARROW_DEFAULT_MEMORY_POOL still decides.
if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    pa.set_memory_pool(pa.system_memory_pool())


def totals(reports) -> dict[str, int]:
    """Batches per status (STATUSES) over the reports of one run's flows."""
    return {s: sum(r.counts()[s] for r in reports) for s in STATUSES}


class Stages:
    """Counts per stage (fetch, parse, validate) as a run proceeds. Flows only count; the CLI sets `display` to a
    progress display (flows/console.py) with the same two methods."""

    display = None

    def start(self, stage: str, total: int) -> None:
        """`total` more items are expected in `stage`."""
        if self.display is not None:
            self.display.start(stage, total)

    def advance(self, stage: str, done: int = 1) -> None:
        """`done` items of `stage` finished."""
        if self.display is not None:
            self.display.advance(stage, done)


STAGES = Stages()


class Signals:
    """The termination signals that reached the process during a CLI run, recorded by the interpreter itself
    (`signal.set_wakeup_fd`: one byte per arrival, even when the handler runs once for several). Prefect turns
    SIGTERM into an exception raised wherever the main thread is; raised inside a finalizer (`__del__`) that
    exception is swallowed, and the run would go on as if nothing had arrived. Flows ask `terminated()` when they
    end, so such a signal still ends the run as a crash. A second termination signal ends the process at once
    (`again`). Without `listen()` (deployment runs) nothing is recorded and Prefect's own handling stands."""

    TERMINATION = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self._pipe: int | None = None
        self._arrived: collections.Counter[int] = collections.Counter()
        self._redelivered = 0  # deliveries again of a signal deferred out of an import (outside_imports)

    def listen(self) -> None:
        """Start recording for a new run (the pipe once per process; only the main thread can, elsewhere nothing
        is recorded)."""
        self._read()
        self._arrived.clear()
        self._redelivered = 0
        if self._pipe is not None:
            return
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        try:
            signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except ValueError:
            os.close(read)
            os.close(write)
            return
        self._pipe = read

    def _read(self) -> None:
        while self._pipe is not None:
            try:
                data = os.read(self._pipe, 4096)
            except BlockingIOError:
                break
            if not data:
                break
            self._arrived.update(data)

    def redeliver(self, signum: int) -> None:
        """Deliver `signum` to the main thread's handler again (its first delivery was deferred)."""
        self._redelivered += 1
        _thread.interrupt_main(signum)

    def again(self, signum: int) -> None:
        """Called as a termination signal is handled. While recording (a CLI run), once a second one has arrived
        (Ctrl-C pressed again) the process ends at once by the signal's default action, whatever the first one
        is still doing (reporting, alerting, an import): what was published stays published, since a publish
        commits with one manifest write (tasks/publish.py), and the kernel frees the lock and stops the
        temporary server (flows/server.py)."""
        self._read()
        if self._pipe is None or sum(self._arrived[s] for s in self.TERMINATION) - self._redelivered < 2:
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)  # not reached: the default action ends the process

    def terminated(self) -> str | None:
        """'terminated by SIGTERM' (or SIGINT) once such a signal has arrived; None otherwise."""
        self._read()
        for signum in self.TERMINATION:
            if self._arrived[signum]:
                return terminated_by(signum)
        return None


def terminated_by(signum: int) -> str:
    """What ended a run that a signal ended (a run's crash reason)."""
    return f"terminated by {signal.Signals(signum).name}"


SIGNALS = Signals()
IMPORT_RETRY = 0.05  # seconds until a termination signal that arrived inside an import is delivered again


def outside_imports(handler):
    """`handler`, deferred while the main thread is inside the import system: an exception raised there (the
    CLI's Terminated, Prefect's TerminationSignal) can leave an import lock held, and the next import on another
    thread then waits forever (a SIGTERM while a run imported pandas hung it). Inside an import, the signal is
    delivered again IMPORT_RETRY seconds later. A second signal of a CLI run ends it at once (Signals.again)."""
    @functools.wraps(handler)
    def deferred(signum, frame):
        SIGNALS.again(signum)
        inner = frame
        while inner is not None:
            if inner.f_code.co_filename.startswith("<frozen importlib"):
                threading.Timer(IMPORT_RETRY, SIGNALS.redeliver, (signum,)).start()
                return None
            inner = inner.f_back
        return handler(signum, frame)

    deferred.outside_imports = True
    return deferred


@dataclass
class Run:
    id: str
    warehouse: Warehouse
    mirror: Path | None
    today: date
    force: bool = False
    #: (table name, batch key) -> what the batch is built from: the sha256s of the raw responses (or input
    #: fingerprints), the digest of the suites that validate it and that of the code that parses it (`with_rules`)
    sources: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    suites: dict[tuple[str, ...], str] = field(default_factory=dict, repr=False)
    #: set when the run stops early (a signal, a crash): fetches still running in the background (flows/steps.py
    #: fetch_urls) make no further attempt, and URLs not yet started are not requested
    stopping: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @cached_property
    def fetcher(self):
        from tasks.archive import RawArchive
        from tasks import http

        return http.Fetcher(RawArchive(self.warehouse.root / "_raw"), http.SETTINGS, self.mirror)

    @cached_property
    def validator(self):
        root = self.warehouse.root  # Data Docs on a local disk; on an object store each quarantine's validation.json
        return IsolatedValidator(root / "_docs" if storage.is_local(root) else None)

    @cached_property
    def incidents(self) -> Incidents:
        """The open incidents as the run started (read once: only the run's finish writes them)."""
        return Incidents(self.warehouse.root)

    def network(self) -> tuple[list[str], dict[str, str]]:
        """The hosts this run's fetches reached (any answer) and those found unreachable, with why; none for a run
        that fetched nothing (no fetcher was built)."""
        if "fetcher" not in self.__dict__:
            return [], {}
        return sorted(self.fetcher.hosts.answered), dict(self.fetcher.hosts.unreachable)

    def build_docs(self) -> None:
        """The validations' Data Docs, if anything was validated (tasks/validate.py); the validation process then
        ends. Called before the analyst outputs are built and when the run finishes (for a run stopped before
        them); a second call finds nothing left to build."""
        if "validator" in self.__dict__:  # built on first use only
            self.validator.build_docs()

    @cached_property
    def code(self) -> str:
        """`code_digest()`, once per run."""
        return code_digest()

    def with_rules(self, tables, shas: list[str]) -> list[str]:
        """What a batch of `tables` is built from: `shas` (raw sha256s or input fingerprints), the digest of the
        suites that validate its tables and the digest of the code and configuration that parse it. So a batch is
        parsed and validated again after its suite was edited, armswatch upgraded or an alias added (once: the same
        data is not rewritten, only recorded as built from the new rules)."""
        names = tuple(t.name for t in tables)
        if names not in self.suites:
            self.suites[names] = suites_digest(tables)
        return sorted([*shas, self.suites[names], self.code])

    def built_from(self, key: str, tables, shas: list[str]) -> bool:
        """Record what batch `key` of `tables` is built from (`with_rules`, sorted); True when the published batch
        was built from exactly that (so it need not be parsed or validated again), unless the run is forced."""
        for table in tables:
            self.sources[(table.name, key)] = shas
        if self.force:
            return False
        return all(self.warehouse.built_from(t, key) == ",".join(shas) for t in tables)

    def skip(self, key: str, tables, shas: list[str]) -> Outcome | None:
        """The outcome of batch `key` without parsing or validating it, when its source bytes, suites and code are
        those it was last published from (unchanged) or last quarantined from (still quarantined, the same
        evidence); None when it must be parsed (and then validated: the validation process starts, to import GX
        while the batch is parsed). `force` parses everything."""
        shas = self.with_rules(tables, shas)
        if self.built_from(key, tables, shas):
            return Outcome(key, "unchanged", detail="source unchanged, not parsed")
        known = None if self.force else self.incidents.find(key, [t.name for t in tables], shas)
        if known is None:
            validate.start()
            return None
        return Outcome(key, known["status"], known.get("rows", {}), reason="\n".join(known["explained"]),
                       quarantine=storage.location(known["quarantine"]) if known.get("quarantine") else None,
                       detail="source unchanged since quarantined, not parsed again",
                       fingerprint=known["fingerprint"])

    def published_from(self, tables, shas: list[str]) -> str | None:
        """The key of the published batch of `tables` built from exactly these bytes (and suites), for sources
        whose batch key is only known after parsing (an IAFQ release is keyed by the date inside it); None if none
        or forced."""
        wanted = ",".join(self.with_rules(tables, shas))
        for stem in self.warehouse.batches(tables[0]) if not self.force else ():
            if self.warehouse.built_from(tables[0], stem) == wanted:
                return stem
        return None

    def last_published(self, tables, urls) -> str | None:
        """The key of the published batch of `tables` built from what `urls` last served (the newest archived 200
        response of each; whatever suites and code validated it); None if none. Asked before a batch is fetched,
        it keys the batch if it then fails before parsing gives its key (an IAFQ release whose download or parse
        failed is the release its URL served before)."""
        served = set()
        for url in urls:
            latest = self.fetcher.archive.latest(url)
            if latest is None:
                return None
            served.add(latest.sha256)
        for stem in self.warehouse.batches(tables[0]) if served else ():
            if served <= set((self.warehouse.built_from(tables[0], stem) or "").split(",")):
                return stem
        return None

    def inputs(self, *tables, extra: str = "") -> list[str]:
        """What a derived batch is built from: the content fingerprints of every published file of `tables` (and
        the sha256 of `extra`, e.g. the catalog ids), used like raw sha256s by `built_from`."""
        published = self.warehouse.manifest()["tables"]  # one read; it names each file with its fingerprint
        found = [entries[stem]["fingerprint"] or "" for t in tables
                 for entries in [published.get(t.name, {})] for stem in sorted(entries)]
        return found + ([hashlib.sha256(extra.encode()).hexdigest()] if extra else [])


@dataclass
class Report:
    """What one flow did: an outcome per batch, in catalog order; `crash` names what ended the run early;
    `sources` the sources it ran (only they close incidents of batches no longer seen); `alerts` what became of
    the run's alert (tasks/alerts.py: sent, not delivered and why, or none configured)."""

    flow: str
    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    new_parties: list[dict] = field(default_factory=list)
    crash: str = ""
    #: the hosts the run had reached, and those it found unreachable (origin -> why), when this flow ended
    reached: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    alerts: str = ""

    @property
    def ok(self) -> bool:
        return not self.crash and all(o.ok for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        return {s: sum(o.status == s for o in self.outcomes) for s in STATUSES}


def offline(reports) -> list[str]:
    """The hosts found unreachable when the run reached no upstream host at all (every fetch failed to connect);
    empty otherwise."""
    if any(r.reached for r in reports):
        return []
    return sorted({host for r in reports for host in r.unreachable})


def mirror_dir(mirror: str | None) -> Path | None:
    """The mirror folder from the argument or ARMSWATCH_MIRROR; None means live URLs."""
    value = mirror or environment().mirror
    return Path(value) if value else None


def check_warehouse(warehouse: str) -> UPath:
    """The warehouse location (tasks/storage.py: a folder or URL, resolved); storage.StorageError (exit code 2) for
    a URL no installed backend opens; WarehouseUnusable for a local path that is a file or a folder this process
    cannot write. An object store's access is checked by the run's first write (its lock)."""
    root = storage.location(warehouse)
    if not storage.is_local(root):
        return root
    if root.exists() and not root.is_dir():
        raise WarehouseUnusable(f"warehouse {root} is a file, not a folder")
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise WarehouseUnusable(f"warehouse {root} is not writable ({existing} does not allow this user to write)")
    return root


@contextmanager
def use_run(run: Run | None, warehouse: str, mirror: str | None, force: bool = False):
    """The run a parent flow opened (one lock, one run id for the whole refresh), or a new one."""
    if run is not None:
        yield run
    else:
        with open_run(warehouse, mirror, force) as opened:
            yield opened


@contextmanager
def open_run(warehouse: str, mirror: str | None, force: bool = False, lock_timeout: float = 0):
    """Lock the warehouse (a folder or URL; finishing any crashed publish) and yield a Run; released on exit. The
    environment settings are checked first (every flow, deployed or run by the CLI, opens its run here)."""
    environment()
    root = check_warehouse(warehouse)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with Warehouse(root).locked(lock_timeout) as wh:
        run = Run(f"{stamp}-{secrets.token_hex(3)}", wh, mirror_dir(mirror), date.today(), force)
        if run.mirror is not None:
            run.fetcher  # noqa: B018  (an unreadable mirror is a configuration error before anything runs)
        yield run

"""The one way armswatch fetches anything: a requests Session, the raw archive, and the offline mirror.

Every source (UNTC https://treaties.un.org, the SDG API https://unstats.un.org/sdgapi, UNODC
https://data.unodc.org, UNSD M49 https://unstats.un.org/unsd/methodology/m49/) goes through `Fetcher.get`, the
one retry policy: timeouts, 5xx, 429, a broken connection and an HTML maintenance page are tried again with
exponential backoff and jitter (Retry-After honoured, capped); a host whose name does not resolve or that refuses
connections is not: it is unreachable for the rest of the run and every other URL of it fails at once. One
deadline bounds each request whatever the server or the resolver does (name lookup, connect, headers, redirects,
every byte of the body: lookups are awaited until the deadline at most, and a watchdog shuts the sockets down when
it passes; a lookup that timed out is transient). At most `per_host` requests are in flight per host, one until
it first answered. Also: a User-Agent naming the project; conditional requests from the last archived
ETag/Last-Modified; a cap on decoded bytes for every body (redirect bodies and mirror files included); and every
response archived in the raw archive (tasks/archive.py) before anyone parses it. With a mirror directory the same
Session serves requests from a verified `DIR/manifest.json` through `MirrorAdapter`, a transport adapter, so the
code path is the one used live. Tables fed: none directly (all, through the parsers).
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import io
import json
import mimetypes
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import urljoin

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_when_event_set
from urllib3 import HTTPConnectionPool, HTTPResponse, HTTPSConnectionPool, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (ConnectTimeoutError, DecodeError, MaxRetryError, NameResolutionError,
                                NewConnectionError, ProtocolError, ReadTimeoutError, SSLError)
from urllib3.util.connection import allowed_gai_family

from tasks import hosts
from tasks.archive import RawArchive, Response
from tasks.errors import FetchError, Unreachable, excerpt
from tasks.storage import StorageError, open_regular

USER_AGENT = "armswatch/0.1 (+https://github.com/armswatch/armswatch; UN arms-control treaty and indicator monitor)"
RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Kind:
    """What a document of one kind must look like before it is handed to a parser."""

    content_types: tuple[str, ...]
    magic: tuple[bytes, ...]


KINDS = {
    "xml": Kind(("application/xml", "text/xml"), (b"<",)),
    "json": Kind(("application/json",), (b"{", b"[")),
    "html": Kind(("text/html", "application/xhtml+xml"), (b"<",)),
    "csv": Kind(("text/csv", "application/csv"), (b"",)),
    "xlsx": Kind(
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/octet-stream"),
        (b"PK\x03\x04",),
    ),
}


@dataclass(frozen=True)
class Settings:
    """Fetch limits (defaults documented in README "Reliability"). The deadline runs from the start of each
    attempt and covers everything of it: name lookup, connect, status line and headers, redirects and every body.
    Attempt n (from 1) that failed transiently is followed by a wait of `backoff_factor * 2**(n-1)` s, at most
    `backoff_max`, lengthened by up to BACKOFF_JITTER of itself, or the server's Retry-After (capped at
    `retry_after_max`) if longer. No body, redirect bodies and mirror files included, is ever held beyond
    `max_bytes` decoded bytes."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    deadline: float = 300.0
    retries: int = 4
    backoff_factor: float = 2.0
    backoff_max: float = 60.0
    retry_after_max: float = 120.0
    max_bytes: int = 200 * 1024 * 1024
    max_redirects: int = 10
    per_host: int = 2


#: The settings runs fetch with (tasks/run.py); the tests replace it with one whose waits are zero.
SETTINGS = Settings()
#: Each backoff wait is lengthened by up to this fraction of itself, so URLs failing together do not come back
#: together.
BACKOFF_JITTER = 0.2


class MirrorRefused(Exception):
    """A mirror file that must not be served (outside the folder, not a regular file, not what the manifest says)."""


class MirrorAdapter(BaseAdapter):
    """Serves GET requests from a verified mirror: `DIR/manifest.json` maps each URL to a file below DIR.

    Each entry needs `url`, `file` (relative, inside DIR), `sha256` and `bytes`; `as_of` (YYYY-MM-DD), when given,
    is served as the HTTP Date header at 00:00:00 GMT of that day, so a replay reads as "status at as_of". The
    manifest is refused (FetchError, source "mirror") when an entry lacks these, names a path outside DIR, or maps
    one URL twice. A file is refused (MirrorRefused) when it resolves outside DIR (symlinks included), is not a
    regular file (FIFO, device), exceeds `max_bytes`, or differs from the manifest's byte count or sha256."""

    def __init__(self, directory: Path, max_bytes: int = Settings.max_bytes):
        super().__init__()
        self.directory, self.max_bytes = Path(directory), max_bytes
        self.root = self.directory.resolve()
        self.entries = load_manifest(self.directory / "manifest.json")

    def send(self, request, **kwargs):
        entry = self.entries.get(request.url)
        headers = {}
        if entry is None:
            body, status, reason = f"not in mirror {self.directory}/manifest.json".encode(), 404, "Not Found"
            headers["Content-Type"] = "text/plain"
        else:
            body, status, reason = self._read(entry), 200, "OK"
            headers["Content-Type"] = _content_type(entry.file)
            if entry.as_of is not None:
                headers["Date"] = email.utils.format_datetime(
                    datetime.combine(entry.as_of, datetime.min.time(), timezone.utc), usegmt=True)
        headers["Content-Length"] = str(len(body))
        raw = HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False, decode_content=False,
                           headers=headers, reason=reason)
        return HTTPAdapter.build_response(HTTPAdapter(), request, raw)

    def _read(self, entry: MirrorEntry) -> bytes:
        """The entry's bytes, read without following a path out of the mirror or blocking on a FIFO."""
        where = f"{entry.url}: mirror file {self.directory / entry.file}"
        path = (self.root / entry.file).resolve()
        if not path.is_relative_to(self.root):
            raise MirrorRefused(f"{where} resolves to {path}, outside the mirror folder {self.root}")
        try:
            with open_regular(path) as (fh, info):
                if info.st_size > self.max_bytes:
                    raise MirrorRefused(f"{where} is {info.st_size} bytes, above the {self.max_bytes}-byte cap")
                if info.st_size != entry.bytes:
                    raise MirrorRefused(f"{where} is {info.st_size} bytes; the manifest says {entry.bytes}")
                body = fh.read(self.max_bytes + 1)
        except StorageError:
            raise MirrorRefused(f"{where} is not a regular file (a FIFO, device or folder)") from None
        except OSError as exc:
            raise MirrorRefused(f"{where} cannot be read: {exc.strerror}") from None
        digest = hashlib.sha256(body).hexdigest()
        if len(body) != entry.bytes or digest != entry.sha256:
            raise MirrorRefused(f"{where} has sha256 {digest} ({len(body)} bytes); the manifest says "
                                f"{entry.sha256} ({entry.bytes} bytes)")
        return body

    def close(self):
        pass


@dataclass(frozen=True)
class MirrorEntry:
    url: str
    file: str
    sha256: str
    bytes: int
    as_of: date | None


def load_manifest(manifest: Path) -> dict[str, MirrorEntry]:
    """url -> entry of a mirror manifest, every entry checked; FetchError (source "mirror") naming what is wrong."""
    try:
        raw = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise FetchError("mirror", str(manifest), f"unreadable mirror manifest: {exc}") from None
    if not isinstance(raw, list):
        raise FetchError("mirror", str(manifest), "mirror manifest is not a list of entries")
    entries: dict[str, MirrorEntry] = {}
    for n, item in enumerate(raw, 1):
        try:
            entry = _manifest_entry(item)
            entry = replace(entry, url=requests.Request("GET", entry.url).prepare().url)  # as the adapter sees it
        except (TypeError, ValueError) as exc:
            raise FetchError("mirror", str(manifest), f"entry {n} is invalid: {exc}") from None
        if entry.url in entries:
            raise FetchError("mirror", str(manifest), f"entry {n} maps {entry.url} a second time "
                                                      f"({entries[entry.url].file} and {entry.file}); refused")
        entries[entry.url] = entry
    return entries


def _manifest_entry(item) -> MirrorEntry:
    if not isinstance(item, dict):
        raise TypeError(f"not an object: {item!r}"[:200])
    missing = [k for k in ("url", "file", "sha256", "bytes") if k not in item]
    if missing:
        raise ValueError(f"{item.get('url', '(no url)')} lacks {', '.join(missing)}")
    url, file, sha, size = item["url"], item["file"], item["sha256"], item["bytes"]
    if not isinstance(url, str) or not isinstance(file, str) or not file:
        raise TypeError(f"url and file must be text: {url!r}, {file!r}")
    parts = PurePosixPath(file).parts
    if PurePosixPath(file).is_absolute() or PureWindowsPath(file).is_absolute() or ".." in parts or "\\" in file:
        raise ValueError(f"{url}: file {file!r} leaves the mirror folder (absolute path or '..')")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ValueError(f"{url}: sha256 {sha!r} is not 64 lowercase hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"{url}: bytes {size!r} is not a byte count")
    as_of = item.get("as_of")
    return MirrorEntry(url, file, sha, size, None if as_of is None else date.fromisoformat(as_of))


def _content_type(file: str) -> str:
    if file.endswith(".xlsx"):
        return KINDS["xlsx"].content_types[0]
    return mimetypes.guess_type(file)[0] or "application/octet-stream"


class Deadline:
    """One attempt's total deadline. Its name lookups are awaited until the deadline at most (`Lookups`), and every
    socket the attempt opens (in this thread: `_Watched`) is shut down by a watchdog timer when the deadline passes,
    which ends any read in progress; so no server, not even one dripping its headers a byte at a time, and no
    resolver that never answers keeps a fetch alive beyond it."""

    _current = threading.local()

    def __init__(self, seconds: float):
        self.seconds, self.at = seconds, time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0), self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    @classmethod
    def current(cls) -> Deadline | None:
        return getattr(cls._current, "deadline", None)

    def __enter__(self) -> Deadline:
        Deadline._current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        Deadline._current.deadline = None


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


class LookupTimeout(ConnectTimeoutError):
    """The resolver had not answered the name lookup of `host` when the attempt's deadline passed."""

    def __init__(self, host: str):
        super().__init__(f"name lookup of {host} timed out")
        self.host = host


class Lookups:
    """Name lookups (socket.getaddrinfo, which no socket timeout bounds), each in a daemon thread of its own and
    awaited until the attempt's deadline at most. An attempt whose name is still being looked up (a resolver that
    hangs) waits for that lookup instead of starting another, so a resolver that never answers holds one thread per
    name, not one per attempt. Nothing is cached: a lookup that ended is done again by the next connection."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, int, int], Future] = {}

    def resolve(self, host: str, port: int, timeout: float) -> list[tuple]:
        """getaddrinfo's answer for a TCP connection to host:port (the address families urllib3 allows); what it
        raised (socket.gaierror: the name does not resolve); TimeoutError when it did not answer within `timeout`."""
        key = (host, port, allowed_gai_family())
        with self._lock:
            if (pending := self._pending.get(key)) is None:
                pending = self._pending[key] = Future()
                threading.Thread(target=self._lookup, args=(key, pending), daemon=True, name=f"lookup {host}").start()
        return pending.result(max(timeout, 0))

    def _lookup(self, key: tuple[str, int, int], pending: Future) -> None:
        try:
            answer, error = socket.getaddrinfo(*key, socket.SOCK_STREAM), None
        except Exception as exc:  # handed to every attempt waiting for it
            answer, error = None, exc
        with self._lock:
            del self._pending[key]
        if error is not None:
            pending.set_exception(error)
        else:
            pending.set_result(answer)


LOOKUPS = Lookups()


class _Watched:
    """A urllib3 connection bound by the deadline of the attempt opening it (Deadline): its name is looked up within
    the deadline (Lookups), then urllib3 connects to each address found in turn, and the new socket is watched."""

    def _new_conn(self):
        deadline = Deadline.current()
        if deadline is None:
            return super()._new_conn()
        name = self._dns_host
        try:
            answer = LOOKUPS.resolve(name.strip("[]"), self.port, deadline.remaining())
        except TimeoutError:
            raise LookupTimeout(self.host) from None
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        error = None
        for address in dict.fromkeys(sockaddr[0] for *_, sockaddr in answer):  # each once, in the resolver's order
            self._dns_host = address  # numeric: urllib3 connects without looking it up again
            try:
                sock = super()._new_conn()
            except ConnectTimeoutError as exc:  # refused, unreachable or too slow (NewConnectionError): the next one
                error = exc
                continue
            finally:
                self._dns_host = name
            deadline.watch(sock)
            return sock
        raise error or NewConnectionError(self, f"{self.host} resolved to no address")


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = type("WatchedHTTPConnection", (_Watched, HTTPConnection), {})


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = type("WatchedHTTPSConnection", (_Watched, HTTPSConnection), {})


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """requests' HTTP transport with connections the attempt's Deadline watches (direct or through an HTTP proxy),
    and no retries of its own: Fetcher.get is the one retry policy."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:
            manager.pool_classes_by_scheme = _POOLS
        return manager


def session(settings: Settings, mirror: Path | None = None) -> requests.Session:
    """A Session with the project's User-Agent; with `mirror`, every URL is served from it.

    Redirects are followed by `Fetcher.get` itself, so that every hop is checked and every redirect body is read
    under the same caps."""
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    adapter = MirrorAdapter(mirror, settings.max_bytes) if mirror else WatchedAdapter(max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


class Hosts:
    """What a run knows of each host (origin): requests in flight (at most `per_host`, and one until the host first
    answered, so a host that cannot be reached gets one request, not one per URL), the hosts that answered, and
    those found unreachable with the reason."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self.answered: set[str] = set()
        self.unreachable: dict[str, str] = {}
        self._in_flight: Counter[str] = Counter()
        self._changed = threading.Condition()

    @contextmanager
    def slot(self, origin: str):
        """Wait for a free slot on `origin`; yields the reason it is unreachable instead, if it is."""
        with self._changed:
            while (origin not in self.unreachable
                   and self._in_flight[origin] >= (self.per_host if origin in self.answered else 1)):
                self._changed.wait()
            known = self.unreachable.get(origin)
            if known is None:
                self._in_flight[origin] += 1
        if known is not None:
            yield known
            return
        try:
            yield None
        finally:
            with self._changed:
                self._in_flight[origin] -= 1
                self._changed.notify_all()

    def answer(self, origin: str) -> None:
        with self._changed:
            self.answered.add(origin)
            self._changed.notify_all()

    def lost(self, origin: str, reason: str) -> bool:
        """Mark `origin` unreachable; True if this is the first time in the run."""
        with self._changed:
            first = origin not in self.unreachable
            self.unreachable.setdefault(origin, reason)
            self._changed.notify_all()
            return first


def _reason(exc: requests.ConnectionError) -> Exception | None:
    """urllib3's reason for a failed connection."""
    return exc.args[0].reason if exc.args and isinstance(exc.args[0], MaxRetryError) else None


def unreachable_reason(exc: requests.ConnectionError) -> str | None:
    """Why a failed connection means its host cannot be reached at all this run (its name does not resolve, it
    refused the connection, no route to it); None for failures that may pass (timeouts, resets, a name lookup
    that did not answer within the deadline)."""
    reason = _reason(exc)
    cause = getattr(reason, "__cause__", None)
    if isinstance(reason, NameResolutionError):
        return f"its name does not resolve ({cause or reason})"
    if isinstance(reason, NewConnectionError) and isinstance(cause, OSError):
        if isinstance(cause, ConnectionRefusedError):
            return f"it refused the connection ({cause})"
        if cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"no route to it ({cause})"
    return None


def retry_after(value: str | None, cap: float) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP-date), at most `cap`; None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(max((when - datetime.now(timezone.utc)).total_seconds(), 0.0), cap)


#: What Fetcher.get tells its caller before each wait: the failure, the attempt number, the seconds it will wait.
OnRetry = Callable[[FetchError, int, float], None]


class Fetcher:
    """Fetch a URL, archive whatever came back, and return it only if it looks like the expected document."""

    def __init__(self, archive: RawArchive, settings: Settings = Settings(), mirror: Path | None = None):
        self.archive, self.settings = archive, settings
        self.session = session(settings, mirror)
        self.hosts = Hosts(settings.per_host)

    def get(self, source: str, url: str, kind: str, allowed: frozenset[str] | None = None,
            cancel: threading.Event | None = None, on_retry: OnRetry | None = None,
            max_bytes: int | None = None) -> Response:
        """The document at `url`, every attempt archived; tried again up to `retries` times while its failure is
        transient (see Settings for the waits). `allowed`: the origins the source may fetch (the URL and every
        redirect hop are checked before any request; None: any http(s) origin); a URL with credentials, another
        scheme or origin is refused (FetchError, not transient). Setting `cancel` ends the waiting (the run is
        stopping): the last failure is raised. `max_bytes` lowers the cap on this document's decoded bytes (e.g. a
        page read only for its links). Raises FetchError (Unreachable for a host that cannot be reached at all)."""
        stop = stop_after_attempt(self.settings.retries + 1)
        if cancel is not None:
            stop |= stop_when_event_set(cancel)

        failed: list[FetchError] = []  # the failure waited after

        def told(state: RetryCallState) -> None:
            failed[:] = [state.outcome.exception()]
            if on_retry is not None:
                on_retry(failed[0], state.attempt_number, state.upcoming_sleep)

        def attempt() -> Response:
            if failed and cancel is not None and cancel.is_set():  # cancelled while waiting: no further attempt
                raise failed[0]
            return self._attempt(source, url, kind, allowed, cap)

        retrying = Retrying(retry=retry_if_exception(lambda exc: isinstance(exc, FetchError) and exc.transient),
                            stop=stop, wait=self._wait, sleep=cancel.wait if cancel is not None else time.sleep,
                            before_sleep=told, reraise=True)
        cap = min(max_bytes or self.settings.max_bytes, self.settings.max_bytes)
        return retrying(attempt)

    def _wait(self, state: RetryCallState) -> float:
        s = self.settings
        backoff = min(s.backoff_max, s.backoff_factor * 2 ** (state.attempt_number - 1))
        backoff += random.uniform(0, backoff * BACKOFF_JITTER)
        return max(backoff, state.outcome.exception().retry_after or 0.0)

    def _attempt(self, source: str, url: str, kind: str, allowed: frozenset[str] | None, cap: int) -> Response:
        previous = self.archive.latest(url)
        headers = {}
        if previous is not None and previous.status == 200:
            if previous.headers.get("ETag"):
                headers["If-None-Match"] = previous.headers["ETag"]
            if previous.headers.get("Last-Modified"):
                headers["If-Modified-Since"] = previous.headers["Last-Modified"]
        fetched_at = datetime.now(timezone.utc)
        target = url
        with Deadline(self.settings.deadline) as deadline:
            for _ in range(self.settings.max_redirects + 1):
                resp, body, error, transient = self._hop(source, url, target, headers, fetched_at, deadline,
                                                         allowed, cap)
                if error is not None or not resp.is_redirect:
                    break
                target = urljoin(resp.url, self.session.get_redirect_target(resp))
            else:
                problem = f"too many redirects (Exceeded {self.settings.max_redirects} redirects, last to {target})"
                self.archive.store(url, 0, {}, b"", fetched_at, problem)
                raise FetchError(source, url, problem)
        if error is None and resp.status_code == 200:
            error = kind_problem(kind, resp.headers.get("Content-Type", ""), body)
            transient = error is not None and error.startswith("got an HTML page")  # a maintenance page passes
        if error is not None and target != url:
            error += f" (after a redirect to {target})"
        response = self.archive.store(url, resp.status_code, dict(resp.headers), body, fetched_at, error)
        if error:
            raise FetchError(source, url, f"{error}; {len(body)} bytes received were archived as {response.sha256}",
                             transient=transient)
        if resp.status_code == 304 and previous is not None:
            return self.archive.revalidated(previous, response)
        if resp.status_code != 200:
            raise FetchError(source, url, f"HTTP {resp.status_code} {resp.reason}: {excerpt(body)}",
                             transient=resp.status_code in RETRY_STATUSES,
                             retry_after=retry_after(resp.headers.get("Retry-After"), self.settings.retry_after_max))
        return response

    def _hop(self, source: str, url: str, target: str, headers: dict, fetched_at: datetime, deadline: Deadline,
             allowed: frozenset[str] | None, cap: int):
        """One request to `target` (the URL or a redirect's), in a slot of its host: (response, body, error,
        transient). A target the source may not fetch (`allowed`: its origins; tasks/hosts.py) is refused before
        any request; a host already found unreachable is not asked; one found unreachable now is marked."""
        if refused := hosts.refusal(target, allowed):
            self.archive.store(hosts.redact(url), 0, {}, b"", fetched_at, refused)  # no credentials kept either
            raise FetchError(source, url, refused)
        where = hosts.origin(target)
        with self.hosts.slot(where) as known:
            if known is not None:
                problem = f"{where} is unreachable ({known}, earlier in this run); not requested"
                self.archive.store(url, 0, {}, b"", fetched_at, problem)
                raise Unreachable(source, url, problem, where, first=False)
            resp = self._send(source, url, target, headers, fetched_at, deadline)
            self.hosts.answer(where)
            return (resp, *self._read(resp, deadline, cap))

    def _send(self, source: str, url: str, target: str, headers: dict, fetched_at: datetime,
              deadline: Deadline) -> requests.Response:
        """One request, its body left unread; a FetchError if no response came.

        The request goes to the Session's transport adapter directly: `Session.send` reads a redirect's whole body
        (even with allow_redirects=False, to prepare `Response.next`), which no cap would bound."""
        remaining = deadline.remaining()
        try:
            if remaining <= 0:
                raise requests.Timeout(f"deadline of {deadline.seconds:g} s exceeded before {target} answered")
            request = self.session.prepare_request(requests.Request("GET", target, headers=headers))
            environment = self.session.merge_environment_settings(request.url, {}, True, None, None)
            resp = self.session.get_adapter(request.url).send(
                request, stream=True, verify=environment["verify"], cert=environment["cert"],
                proxies=environment["proxies"],
                timeout=(min(self.settings.connect_timeout, remaining), min(self.settings.read_timeout, remaining)))
            if not deadline.expired:
                return resp
            resp.close()  # the watchdog cut the headers short: what arrived is not a response
            problem, transient = self._late("before the response headers"), True
        except MirrorRefused as exc:
            problem, transient = f"refused by the mirror: {exc}", False
        except (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema) as exc:  # e.g. a redirect to file:// or ftp://
            problem, transient = f"cannot fetch {target}: {exc}", False
        except requests.ConnectionError as exc:
            if isinstance(lookup := _reason(exc), LookupTimeout):  # a slow resolver, not a no: transient
                problem, transient = (f"name lookup of {lookup.host} timed out: the {deadline.seconds:g} s deadline "
                                      f"passed before the resolver answered"), True
            elif deadline.expired:
                problem, transient = self._late("before the response headers"), True
            elif (why := unreachable_reason(exc)) is not None:
                where = hosts.origin(target)
                problem = f"{where} is unreachable: {why}; its other URLs are not requested in this run"
                self.archive.store(url, 0, {}, b"", fetched_at, problem)
                raise Unreachable(source, url, problem, where, first=self.hosts.lost(where, why)) from None
            else:
                problem, transient = f"no response: {exc}", True
        except requests.RequestException as exc:
            problem, transient = f"no response: {exc}", True
        self.archive.store(url, 0, {}, b"", fetched_at, problem)  # status 0: the attempt, with no response
        raise FetchError(source, url, problem, transient=transient)

    def _read(self, resp: requests.Response, deadline: Deadline, cap: int) -> tuple[bytes, str | None, bool]:
        """The decoded body, read as it arrives up to the size cap `cap` and the deadline; the error that stopped it, if
        any, and whether that error may pass on another try.

        `read1` hands over every byte received before a break (requests' iter_content drops a partial last
        chunk), so a truncated body is archived as far as it came; urllib3 bounds what one read1 decodes, so a
        compression bomb stops at the cap. When the deadline passes, the watchdog ends the read in progress."""
        chunks, size = [], 0

        def late():
            return b"".join(chunks), self._late(f"after {size} bytes of the body"), True

        try:
            while True:
                if deadline.remaining() <= 0 or deadline.expired:
                    return late()
                chunk = resp.raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                chunks.append(chunk)
                if size > cap:
                    return b"".join(chunks), f"body larger than the {cap}-byte cap", False
        except DecodeError as exc:
            return b"".join(chunks), f"corrupt compressed body: {exc}", False
        except ReadTimeoutError as exc:
            return late() if deadline.expired else (b"".join(chunks), f"connection timed out mid-body: {exc}", True)
        except (ProtocolError, SSLError, OSError) as exc:
            if deadline.expired:
                return late()
            return b"".join(chunks), f"connection broke mid-body (truncated): {exc}", True
        finally:
            resp.close()
        return late() if deadline.expired else (b"".join(chunks), None, False)

    def _late(self, when: str) -> str:
        return f"connection too slow: the {self.settings.deadline:g} s deadline passed {when}"


def kind_problem(kind: str, content_type: str, body: bytes) -> str | None:
    """Why the body is not a document of `kind` (empty, HTML, wrong content type or start); None if it is."""
    expected = KINDS[kind]
    ctype = content_type.split(";")[0].strip().lower()
    head = body[:512].lstrip()
    if not body.strip():
        return "empty body"
    if kind != "html" and head[:15].lower().startswith((b"<!doctype html", b"<html")):
        return f"got an HTML page instead of {kind} ({ctype or 'no content type'}): {excerpt(body)}"
    if ctype not in expected.content_types:
        return f"wrong content type {ctype or '(none)'} for {kind}; expected one of {', '.join(expected.content_types)}"
    if not head.startswith(expected.magic):
        return f"body does not start like {kind}: {excerpt(body)}"
    return None

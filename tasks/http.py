"""The one way armswatch fetches anything: a requests Session, the raw archive, and the offline mirror.

Every source (UNTC https://treaties.un.org, the SDG API https://unstats.un.org/sdgapi, UNODC
https://data.unodc.org) goes through `Fetcher.get`: connect/read timeouts and a total deadline per fetch; bounded
retries with exponential backoff and jitter on connection errors, 5xx and 429 (honouring Retry-After, capped),
none on other 4xx; a User-Agent naming the project; conditional requests from the last archived
ETag/Last-Modified; a cap on decoded bytes for every body (redirect bodies and mirror files included); and every
response archived in the raw archive (tasks/archive.py) before anyone parses it. With a mirror directory the same
Session serves requests from a verified `DIR/manifest.json` through `MirrorAdapter`, a transport adapter, so the
code path is the one used live. Tables fed: none directly (all, through the parsers).
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import json
import mimetypes
import os
import re
import stat
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import urljoin

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3 import HTTPResponse
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError
from urllib3.util.retry import Retry

from tasks.archive import RawArchive, Response
from tasks.errors import FetchError

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
    """Fetch limits (defaults documented in README "Reliability"). The deadline runs from the start of a fetch:
    every connect and socket read waits at most until it, and reading a body stops there (urllib3's own retries
    are bounded by `retries` and their waits; the status line and headers by `read_timeout` per read). No body,
    redirect bodies and mirror files included, is ever held beyond `max_bytes` decoded bytes."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    deadline: float = 300.0
    retries: int = 4
    backoff_factor: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    max_bytes: int = 200 * 1024 * 1024
    max_redirects: int = 10


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
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise MirrorRefused(f"{where} cannot be read: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise MirrorRefused(f"{where} is not a regular file (a FIFO, device or folder)")
            if info.st_size > self.max_bytes:
                raise MirrorRefused(f"{where} is {info.st_size} bytes, above the {self.max_bytes}-byte cap")
            if info.st_size != entry.bytes:
                raise MirrorRefused(f"{where} is {info.st_size} bytes; the manifest says {entry.bytes}")
            body = fh.read(self.max_bytes + 1)
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


def session(settings: Settings, mirror: Path | None = None) -> requests.Session:
    """A Session with the project's User-Agent and retries; with `mirror`, every URL is served from it.

    Redirects are followed by `Fetcher.get` itself, so that every redirect body is read under the same caps."""
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    retry = Retry(
        total=settings.retries, connect=settings.retries, read=settings.retries, status=settings.retries,
        backoff_factor=settings.backoff_factor, backoff_max=settings.backoff_max, backoff_jitter=1.0,
        status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET"}), respect_retry_after_header=True,
        retry_after_max=settings.retry_after_max, raise_on_status=False, raise_on_redirect=False, redirect=False,
    )
    adapter = MirrorAdapter(mirror, settings.max_bytes) if mirror else HTTPAdapter(max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


class Fetcher:
    """Fetch a URL, archive whatever came back, and return it only if it looks like the expected document."""

    def __init__(self, archive: RawArchive, settings: Settings = Settings(), mirror: Path | None = None):
        self.archive, self.settings = archive, settings
        self.session = session(settings, mirror)

    def get(self, source: str, url: str, kind: str) -> Response:
        previous = self.archive.latest(url)
        headers = {}
        if previous is not None and previous.status == 200:
            if previous.headers.get("ETag"):
                headers["If-None-Match"] = previous.headers["ETag"]
            if previous.headers.get("Last-Modified"):
                headers["If-Modified-Since"] = previous.headers["Last-Modified"]
        fetched_at = datetime.now(timezone.utc)
        deadline = time.monotonic() + self.settings.deadline
        target = url
        for _ in range(self.settings.max_redirects + 1):
            resp = self._send(source, url, target, headers, fetched_at, deadline)
            body, error, transient = self._read(resp, deadline)
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
            raise FetchError(source, url, f"HTTP {resp.status_code} {resp.reason}: {_snippet(body)}",
                             transient=resp.status_code in RETRY_STATUSES)
        return response

    def _send(self, source: str, url: str, target: str, headers: dict, fetched_at: datetime,
              deadline: float) -> requests.Response:
        """One request (urllib3 retries included), its body left unread; a FetchError if no response came.

        The request goes to the Session's transport adapter directly: `Session.send` reads a redirect's whole body
        (even with allow_redirects=False, to prepare `Response.next`), which no cap would bound."""
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise requests.Timeout(f"deadline of {self.settings.deadline:g} s exceeded before {target} answered")
            request = self.session.prepare_request(requests.Request("GET", target, headers=headers))
            environment = self.session.merge_environment_settings(request.url, {}, True, None, None)
            return self.session.get_adapter(request.url).send(
                request, stream=True, verify=environment["verify"], cert=environment["cert"],
                proxies=environment["proxies"],
                timeout=(min(self.settings.connect_timeout, remaining), min(self.settings.read_timeout, remaining)))
        except MirrorRefused as exc:
            problem, transient = f"refused by the mirror: {exc}", False
        except (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema) as exc:  # e.g. a redirect to file:// or ftp://
            problem, transient = f"cannot fetch {target}: {exc}", False
        except requests.RequestException as exc:
            problem, transient = f"unreachable after {self.settings.retries} retries: {exc}", True
        self.archive.store(url, 0, {}, b"", fetched_at, problem)  # status 0: the attempt, with no response
        raise FetchError(source, url, problem, transient=transient)

    def _read(self, resp: requests.Response, deadline: float) -> tuple[bytes, str | None, bool]:
        """The decoded body, read as it arrives up to the size cap and the deadline; the error that stopped it, if
        any, and whether that error may pass on another try.

        `read1` hands over every byte received before a break (requests' iter_content drops a partial last
        chunk), so a truncated body is archived as far as it came; urllib3 bounds what one read1 decodes, so a
        compression bomb stops at the cap. Each socket read waits at most until the deadline."""
        chunks, size = [], 0
        connection = getattr(resp.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b"".join(chunks), self._late(size), True
                if sock is not None:
                    sock.settimeout(min(self.settings.read_timeout, remaining))
                chunk = resp.raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                chunks.append(chunk)
                if size > self.settings.max_bytes:
                    return b"".join(chunks), f"body larger than the {self.settings.max_bytes}-byte cap", False
        except DecodeError as exc:
            return b"".join(chunks), f"corrupt compressed body: {exc}", False
        except ReadTimeoutError as exc:
            if time.monotonic() >= deadline:
                return b"".join(chunks), self._late(size), True
            return b"".join(chunks), f"connection timed out mid-body: {exc}", True
        except (ProtocolError, SSLError, OSError) as exc:
            return b"".join(chunks), f"connection broke mid-body (truncated): {exc}", True
        finally:
            resp.close()
        return b"".join(chunks), None, False

    def _late(self, size: int) -> str:
        return f"connection too slow: the {self.settings.deadline:g} s deadline passed after {size} bytes of the body"


def kind_problem(kind: str, content_type: str, body: bytes) -> str | None:
    """Why the body is not a document of `kind` (empty, HTML, wrong content type or start); None if it is."""
    expected = KINDS[kind]
    ctype = content_type.split(";")[0].strip().lower()
    head = body[:512].lstrip()
    if not body.strip():
        return "empty body"
    if kind != "html" and head[:15].lower().startswith((b"<!doctype html", b"<html")):
        return f"got an HTML page instead of {kind} ({ctype or 'no content type'}): {_snippet(body)}"
    if ctype not in expected.content_types:
        return f"wrong content type {ctype or '(none)'} for {kind}; expected one of {', '.join(expected.content_types)}"
    if not head.startswith(expected.magic):
        return f"body does not start like {kind}: {_snippet(body)}"
    return None


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    return " ".join(text.split()) or "(empty body)"

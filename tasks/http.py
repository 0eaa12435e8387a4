"""The one way armswatch fetches anything: a requests Session, the raw archive, and the offline mirror.

Every source (UNTC https://treaties.un.org, the SDG API https://unstats.un.org/sdgapi, UNODC
https://data.unodc.org) goes through `Fetcher.get`: connect/read timeouts; bounded retries with exponential
backoff and jitter on connection errors, 5xx and 429 (honouring Retry-After, capped), none on other 4xx; a
User-Agent naming the project; conditional requests from the last archived ETag/Last-Modified; a size cap; and
every response archived in the raw archive (tasks/archive.py) before anyone parses it. With a mirror directory the
same Session serves requests from `DIR/manifest.json` through `MirrorAdapter`, a transport adapter, so the code
path is the one used live. Tables fed: none directly (all, through the parsers).
"""

from __future__ import annotations

import io
import json
import mimetypes
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

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
    """Fetch limits. Worst case per URL: attempts x (connect + read timeout) + backoff, bounded by these."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 4
    backoff_factor: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    max_bytes: int = 200 * 1024 * 1024


class MirrorAdapter(BaseAdapter):
    """Serves GET requests from a recorded mirror: `DIR/manifest.json` maps each URL to a file below DIR."""

    def __init__(self, directory: Path):
        super().__init__()
        self.directory = Path(directory)
        manifest = self.directory / "manifest.json"
        try:
            self.files = {e["url"]: e["file"] for e in json.loads(manifest.read_text())}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FetchError("mirror", str(manifest), f"unreadable mirror manifest: {exc}") from None

    def send(self, request, **kwargs):
        file = self.files.get(request.url)
        if file is None:
            body, status, ctype = f"not in mirror {self.directory}/manifest.json".encode(), 404, "text/plain"
        else:
            body, status = (self.directory / file).read_bytes(), 200
            ctype = _content_type(file)
        raw = HTTPResponse(
            body=io.BytesIO(body), status=status, preload_content=False, decode_content=False,
            headers={"Content-Type": ctype, "Content-Length": str(len(body))}, reason="OK" if status == 200 else "Not Found",
        )
        return HTTPAdapter.build_response(HTTPAdapter(), request, raw)

    def close(self):
        pass


def _content_type(file: str) -> str:
    if file.endswith(".xlsx"):
        return KINDS["xlsx"].content_types[0]
    return mimetypes.guess_type(file)[0] or "application/octet-stream"


def session(settings: Settings, mirror: Path | None = None) -> requests.Session:
    """A Session with the project's User-Agent and retries; with `mirror`, every URL is served from it."""
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    retry = Retry(
        total=settings.retries, connect=settings.retries, read=settings.retries, status=settings.retries,
        backoff_factor=settings.backoff_factor, backoff_max=settings.backoff_max, backoff_jitter=1.0,
        status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET"}), respect_retry_after_header=True,
        retry_after_max=settings.retry_after_max, raise_on_status=False, raise_on_redirect=False,
    )
    adapter = MirrorAdapter(mirror) if mirror else HTTPAdapter(max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.max_redirects = 10
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
        try:
            resp = self.session.get(
                url, headers=headers, stream=True,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
            )
        except requests.RequestException as exc:
            redirects = isinstance(exc, requests.TooManyRedirects)
            problem = (f"too many redirects ({exc})" if redirects
                       else f"unreachable after {self.settings.retries} retries: {exc}")
            self.archive.store(url, 0, {}, b"", fetched_at, problem)  # status 0: the attempt, with no response
            raise FetchError(source, url, problem, transient=not redirects) from None
        body, error = self._read(resp)
        if error is None and resp.status_code == 200:
            error = kind_problem(kind, resp.headers.get("Content-Type", ""), body)
        response = self.archive.store(url, resp.status_code, dict(resp.headers), body, fetched_at, error)
        if error:
            raise FetchError(source, url, f"{error}; {len(body)} bytes received were archived as {response.sha256}",
                             transient=error.startswith("connection"))
        if resp.status_code == 304 and previous is not None:
            return self.archive.revalidated(previous, response)
        if resp.status_code != 200:
            raise FetchError(source, url, f"HTTP {resp.status_code} {resp.reason}: {_snippet(body)}",
                             transient=resp.status_code in RETRY_STATUSES)
        return response

    def _read(self, resp: requests.Response) -> tuple[bytes, str | None]:
        """The body, read as it arrives up to the size cap; the error that stopped it, if any.

        `read1` hands over every byte received before a break (requests' iter_content drops a partial last
        chunk), so a truncated body is archived as far as it came."""
        chunks, size = [], 0
        try:
            while chunk := resp.raw.read1(64 * 1024, decode_content=True):
                size += len(chunk)
                chunks.append(chunk)
                if size > self.settings.max_bytes:
                    return b"".join(chunks), f"body larger than the {self.settings.max_bytes}-byte cap"
        except DecodeError as exc:
            return b"".join(chunks), f"corrupt compressed body: {exc}"
        except ReadTimeoutError as exc:
            return b"".join(chunks), f"connection timed out mid-body: {exc}"
        except (ProtocolError, SSLError) as exc:
            return b"".join(chunks), f"connection broke mid-body (truncated): {exc}"
        finally:
            resp.close()
        return b"".join(chunks), None


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

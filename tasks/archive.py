"""The raw archive: every response armswatch receives, kept content-addressed before anything parses it.

Layout under `<warehouse>/_raw/` (a local folder or an object store: every write goes through
tasks/storage.py, one atomic write per file):
- `objects/<sha256[:2]>/<sha256>`: the body bytes, written once (identical bodies are stored once);
- `responses/<YYYY-MM-DD>/<fetched_at>-<url hash>.json`: one metadata record per fetch (url, status, headers,
  fetched_at, sha256, bytes, error), including failed and revalidated ones; status 0 records an attempt that got
  no response (unreachable after retries, redirect loop, a refused mirror file). Responses that urllib3 retried
  internally (a 503 before the 200) and redirect hops that were read cleanly are not recorded, only the final
  response (or the redirect hop whose body broke a cap), under the URL that was asked for;
- `latest/<url hash>.json`: the newest 200 record per URL, read for conditional requests (ETag / Last-Modified).
Feeds no table directly; every table's raw_sha256 / fetched_at points here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from email.utils import parsedate_to_datetime

from upath import UPath

from tasks.storage import atomic_write

#: Response headers kept in the metadata record; others (cookies, tracing) are dropped.
KEPT_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "ETag", "Last-Modified", "Date", "Retry-After")


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: dict
    sha256: str
    bytes: int
    fetched_at: datetime
    error: str | None = None
    body: bytes = field(default=b"", repr=False, compare=False)


def date_of(headers: dict, fetched_at: datetime) -> date:
    """The day a response speaks for (a treaty's status date, a mirror entry's as_of): its HTTP `Date` header, else
    the day it was fetched."""
    value = next((v for k, v in headers.items() if k.lower() == "date"), None)
    try:
        return parsedate_to_datetime(value).date() if value else fetched_at.date()
    except (TypeError, ValueError, IndexError):
        return fetched_at.date()


class RawArchive:
    def __init__(self, root):
        self.root = UPath(root)

    def object_path(self, sha256: str) -> UPath:
        return self.root / "objects" / sha256[:2] / sha256

    def store(self, url: str, status: int, headers: dict, body: bytes, fetched_at: datetime,
              error: str | None = None) -> Response:
        sha = hashlib.sha256(body).hexdigest()
        obj = self.object_path(sha)
        if not obj.exists():
            atomic_write(obj, body)
        kept = {k: headers[k] for k in KEPT_HEADERS if k in headers}
        response = Response(url, status, kept, sha, len(body), fetched_at, error, body=body)
        record = self._record(response)
        url_key = hashlib.sha256(url.encode()).hexdigest()[:20]
        stamp = fetched_at.strftime("%Y%m%dT%H%M%S%fZ")
        atomic_write(self.root / "responses" / fetched_at.strftime("%Y-%m-%d") / f"{stamp}-{url_key}.json", record)
        if error is None and status == 200:
            atomic_write(self.root / "latest" / f"{url_key}.json", record)
        return response

    def latest(self, url: str) -> Response | None:
        path = self.root / "latest" / f"{hashlib.sha256(url.encode()).hexdigest()[:20]}.json"
        return self._load(path) if path.exists() else None

    @staticmethod
    def _load(path: UPath) -> Response:
        meta = json.loads(path.read_text())
        meta["fetched_at"] = datetime.fromisoformat(meta["fetched_at"])
        return Response(**meta)

    def latest_all(self):
        """The newest 200 response of every URL fetched into this archive."""
        for path in sorted((self.root / "latest").glob("*.json")):
            yield self._load(path)

    def revalidated(self, previous: Response, not_modified: Response) -> Response:
        """The previous 200 response, served again after a 304 (its body unchanged), with the new fetched_at."""
        return replace(previous, fetched_at=not_modified.fetched_at, body=self.read(previous.sha256))

    def read(self, sha256: str) -> bytes:
        return self.object_path(sha256).read_bytes()

    @staticmethod
    def _record(response: Response) -> bytes:
        meta = asdict(response)
        meta.pop("body")
        meta["fetched_at"] = response.fetched_at.isoformat()
        return json.dumps(meta, indent=1, sort_keys=True).encode()

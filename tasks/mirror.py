"""Recording a mirror: export what a run fetched, from its raw archive, as files plus `manifest.json`.

The manifest has the format of ../shared/data/manifest.json (url, file, sha256, bytes, source, as_of,
reconstructed, provenance), so `--mirror DIR` / ARMSWATCH_MIRROR serve it through tasks/http.py's MirrorAdapter.
Upstream: every URL of treaties.yaml and sources/*.yaml, as fetched by the flows. Tables fed: none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tasks.archive import RawArchive, atomic_write

_EXTENSIONS = {"application/json": ".json", "application/xml": ".xml", "text/xml": ".xml", "text/csv": ".csv",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx"}


def mirror_path(url: str, content_type: str) -> str:
    """A readable relative file path for a URL: host/path, the query folded into the name, extension by type."""
    parts = urlsplit(url)
    path = unquote(parts.path).strip("/") or "index"
    if parts.query:
        path += "__" + parts.query
    path = re.sub(r"[^A-Za-z0-9._/-]", "_", f"{parts.hostname}/{path}")
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "")
    return path if not extension or path.endswith(extension) else path + extension


def export(archive: RawArchive, directory: Path, provenance: str) -> list[dict]:
    """Write the newest successful response of every URL in `archive` into `directory` with its manifest."""
    directory = Path(directory)
    entries = []
    for response in archive.latest_all():
        file = mirror_path(response.url, response.headers.get("Content-Type", ""))
        body = archive.read(response.sha256)
        atomic_write(directory / file, body)
        entries.append({
            "url": response.url, "file": file, "sha256": response.sha256, "bytes": len(body),
            "source": urlsplit(response.url).hostname, "as_of": response.fetched_at.date().isoformat(),
            "reconstructed": False, "provenance": provenance,
        })
    entries.sort(key=lambda e: e["url"])
    atomic_write(directory / "manifest.json", (json.dumps(entries, indent=1) + "\n").encode())
    return entries

"""Recording a mirror: export what a run fetched, from its raw archive, as files plus `manifest.json`.

The manifest has the format of ../shared/data/manifest.json (url, file, sha256, bytes, source, as_of,
reconstructed, provenance), so `--mirror DIR` / ARMSWATCH_MIRROR serve it through tasks/http.py's MirrorAdapter.
Upstream: every URL of treaties.yaml and sources/*.yaml, as fetched by the flows. Tables fed: none.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tasks.archive import RawArchive, date_of
from tasks.storage import atomic_write

_EXTENSIONS = {"application/json": ".json", "application/xml": ".xml", "text/xml": ".xml", "text/csv": ".csv",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx"}


def mirror_path(url: str, content_type: str) -> str:
    """A readable relative file path for a URL: host/path, the query folded into the name, extension by type.

    Every segment is sanitised after percent-decoding (`..%2F`, `%2e%2e`, backslashes): only letters, digits,
    '.', '_' and '-' remain, and segments made of dots alone become '_', so the path never leaves its folder."""
    parts = urlsplit(url)
    path = unquote(parts.path).replace("\\", "/").strip("/") or "index"
    if parts.query:
        path += "__" + unquote(parts.query).replace("/", "_")
    segments = [re.sub(r"[^A-Za-z0-9._-]", "_", s) for s in [parts.hostname or "no-host", *path.split("/")] if s]
    path = "/".join("_" if not s.strip(".") else s for s in segments)
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "")
    return path if not extension or path.endswith(extension) else path + extension


def export(archive: RawArchive, directory: Path, provenance: str) -> list[dict]:
    """Write the newest successful response of every URL in `archive` into `directory` with its manifest.

    Files are written only inside `directory` (a name that would resolve outside it through an existing symlink is
    refused with ValueError); two URLs whose names collide get the URL's hash appended to the second."""
    directory = Path(directory)
    root = directory.resolve()
    entries, taken = [], set()
    for response in archive.latest_all():
        file = mirror_path(response.url, response.headers.get("Content-Type", ""))
        if file in taken:
            stem, extension = posixpath.splitext(file)
            file = f"{stem}__{hashlib.sha256(response.url.encode()).hexdigest()[:12]}{extension}"
        taken.add(file)
        target = directory / file
        if not target.resolve().is_relative_to(root):
            raise ValueError(f"{response.url}: mirror file {target} would resolve outside {root}; refused")
        body = archive.read(response.sha256)
        atomic_write(target, body)
        entries.append({
            "url": response.url, "file": file, "sha256": response.sha256, "bytes": len(body),
            "source": urlsplit(response.url).hostname, "as_of": date_of(response.headers, response.fetched_at).isoformat(),
            "reconstructed": False, "provenance": provenance,
        })
    entries.sort(key=lambda e: e["url"])
    atomic_write(directory / "manifest.json", (json.dumps(entries, indent=1) + "\n").encode())
    return entries

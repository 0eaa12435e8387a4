"""Where the warehouse lives: a local folder or an object store, named by a URL, behind one interface.

A location is a plain path, a `file://` URL, or any URL an installed fsspec backend opens (`s3://bucket/prefix`
through s3fs; `gs://` with gcsfs, `az://` with adlfs when installed), as a `upath.UPath`: the pathlib operations
(`/`, `read_bytes`, `exists`, `glob`) on every backend, and its fsspec filesystem (`path.fs`, `path.path`) for
pyarrow. Local locations are plain `pathlib.Path` subclasses, so local code keeps working unchanged.

Credentials and endpoint come only from the backend's standard environment or profile (for S3, as botocore reads
them: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ENDPOINT_URL, AWS_REGION, ...).
A URL that carries credentials (`s3://key:secret@bucket`) is refused, so a location, which is logged, printed in
summaries and stored in alerts, never holds a secret. Upstream: none. Tables fed: none (this stores all of them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import fsspec
from upath import UPath

LOCAL_SCHEMES = ("", "file", "local")


class StorageError(ValueError):
    """A warehouse location that cannot be used: an unsupported scheme or credentials inside the URL."""


def location(url: str | os.PathLike) -> UPath:
    """The warehouse location named by `url` (a path or URL); StorageError if no installed backend opens it."""
    if isinstance(url, UPath):
        return url
    text = os.fspath(url)
    parts = urlsplit(text)
    if parts.scheme in LOCAL_SCHEMES or len(parts.scheme) == 1:  # a path, file://, or a Windows drive letter
        return UPath(Path(parts.path if parts.scheme in ("file", "local") else text).resolve())
    if parts.username or parts.password:
        raise StorageError(f"warehouse URL {parts.scheme}://{parts.hostname}{parts.path} carries credentials; "
                           f"give them through the environment or profile instead (e.g. AWS_ACCESS_KEY_ID)")
    try:
        fsspec.get_filesystem_class(parts.scheme)
    except (ValueError, ImportError) as exc:
        raise StorageError(f"unsupported warehouse URL {text}: {exc}") from None
    # Listings are never cached: another machine may have written since (a lock, a manifest, a run's archive).
    return UPath(text.rstrip("/"), use_listings_cache=False)


def is_local(path: UPath) -> bool:
    return isinstance(path, Path)


def atomic_write(path: UPath | Path, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new bytes, never a part: on a local disk a
    temporary file in the same folder, fsync (unless not `durable`: a file rebuilt on every run), then rename; on
    an object store one PUT (atomic per object)."""
    if not is_local(path):
        path.fs.pipe_file(path.path, data)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_tree(path: UPath) -> None:
    """Delete a folder and everything under it (on an object store: every object under that prefix)."""
    if is_local(path):
        shutil.rmtree(path)
    else:
        path.fs.rm(path.path, recursive=True)


def create(path: UPath, data: bytes) -> str:
    """Write `path` only if no object is there (S3 `If-None-Match: *`); its ETag. FileExistsError otherwise."""
    return _etag(path.fs.pipe_file(path.path, data, mode="create"), path)


def replace_if(path: UPath, data: bytes, etag: str) -> str:
    """Overwrite `path` only if it still holds the version `etag` (S3 `If-Match`); the new ETag. OSError (HTTP 412
    precondition failed, or the object gone) when someone else wrote or deleted it first."""
    return _etag(path.fs.pipe_file(path.path, data, IfMatch=etag), path)


def read_versioned(path: UPath) -> tuple[bytes, str] | None:
    """The bytes of `path` and the ETag of that very version (one GET); None if there is no such object."""
    try:
        with path.fs.open(path.path, "rb", cache_type="none") as fh:
            return fh.read(), fh.details["ETag"]
    except FileNotFoundError:
        return None


def _etag(response, path: UPath) -> str:
    if isinstance(response, dict) and response.get("ETag"):
        return response["ETag"]
    return path.fs.info(path.path)["ETag"]

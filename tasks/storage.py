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
import re
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import fsspec
from upath import UPath

LOCAL_SCHEMES = ("file", "local")
#: Characters a glob (DuckDB, fsspec, pathlib) would expand: never part of a location or a manifest path.
GLOB = re.compile(r"[*?\[\]{}]")


class StorageError(ValueError):
    """A warehouse location that cannot be used: an unsupported scheme or credentials inside the URL."""


def location(url: str | os.PathLike) -> UPath:
    """The warehouse location named by `url` (a path or URL); StorageError if it is not one (see `parse_url`) or no
    installed backend opens it."""
    if isinstance(url, UPath):
        return url
    text = os.fspath(url)
    parts = parse_url(text)
    if parts is None:  # a path, or a Windows drive letter
        return UPath(Path(text).resolve())
    if parts.scheme in LOCAL_SCHEMES:
        return UPath(Path(parts.path).resolve())
    try:
        fsspec.get_filesystem_class(parts.scheme)
    except (ValueError, ImportError) as exc:
        raise StorageError(f"unsupported warehouse URL {text}: {exc}") from None
    # Listings are never cached: another machine may have written since (a lock, a manifest, a run's archive).
    return UPath(text.rstrip("/"), use_listings_cache=False)


def parse_url(text: str) -> SplitResult | None:
    """The parts of a warehouse URL, None for a local path; StorageError for anything else that has a scheme: a
    URL must read `scheme://bucket/prefix` (`file:///path`), with a bucket (`s3://`, `s3:`, `s3:name`, `s3:///x`
    are refused, not taken as a local folder `./s3:`), without credentials, port, query string or fragment (they
    would end up in object keys), and a prefix of plain segments (no empty, `.` or `..` segment, no glob
    character)."""
    parts = urlsplit(text)
    if not parts.scheme or len(parts.scheme) == 1:  # a path (./s3:x is a path), or a Windows drive letter
        return None
    if "@" in parts.netloc:
        raise StorageError(f"warehouse URL {parts.scheme}://{parts.hostname or ''}{parts.path} carries credentials; "
                           f"give them through the environment or profile instead (e.g. AWS_ACCESS_KEY_ID)")

    def refuse(problem: str) -> StorageError:
        return StorageError(f"warehouse URL {re.split('[?#]', text)[0]} {problem}; a warehouse URL reads "
                            f"scheme://bucket/prefix, e.g. s3://bucket/armswatch")
    if not text.startswith(f"{parts.scheme}://"):
        raise refuse(f"is not of the form scheme://bucket/prefix (a local folder of that name: ./{text})")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise refuse("has a query string or fragment, which would end up in object keys")
    if parts.scheme in LOCAL_SCHEMES:
        if parts.netloc not in ("", "localhost"):
            raise refuse(f"names host {parts.netloc!r}")
        return parts
    if not parts.netloc:
        raise refuse("names no bucket")
    if ":" in parts.netloc:
        raise refuse("has a port in its bucket name")
    prefix = parts.path[1:].rstrip("/")
    segments = prefix.split("/") if prefix else []
    if any(s in ("", ".", "..") for s in segments) or GLOB.search(parts.netloc + parts.path):
        raise refuse("has an empty, '.' or '..' segment or a glob character in its prefix")
    return parts


def is_local(path: UPath) -> bool:
    return isinstance(path, Path)


def regular_size(path: UPath) -> int:
    """The size of `path` when it is a regular file, found without opening it (a FIFO or a device would block or
    never end); FileNotFoundError if there is none, StorageError naming it if it is something else."""
    if not is_local(path):
        if not path.is_file():
            raise (StorageError(f"{path} is not a file") if path.exists() else FileNotFoundError(str(path)))
        return path.stat().st_size
    mode = os.stat(path)  # follows a symlink to what it names
    if not stat.S_ISREG(mode.st_mode):
        raise StorageError(f"{path} is not a regular file")
    return mode.st_size


def read_regular(path: UPath, limit: int) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes (regular_size, checked again on the
    opened file, which a FIFO swapped in meanwhile cannot block); StorageError naming it otherwise."""
    if regular_size(path) > limit:
        raise StorageError(f"{path} is larger than {limit} bytes")
    if not is_local(path):
        return path.read_bytes()
    with open_regular(path) as (file, _):
        data = file.read(limit + 1)
    if len(data) > limit:
        raise StorageError(f"{path} is larger than {limit} bytes")
    return data


@contextmanager
def open_regular(path: Path):
    """A local file opened for reading, with its `os.stat_result`, if what was opened is a regular file: opened
    without blocking on a FIFO or taking a terminal, then checked on the open file (a FIFO or device swapped in
    after a check by name is never read); StorageError naming it otherwise, OSError if it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"{path} is not a regular file")
        yield file, info


def atomic_write(path: UPath | Path, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new bytes, never a part: on a local disk a
    temporary file in the same folder, fsync (unless not `durable`: a file rebuilt on every run), then rename; on
    an object store one PUT (atomic per object). A local file gets the mode any new file of this process gets
    (0666 less the umask), so the manifest and the data are as readable by the group and others as the warehouse
    folder is."""
    if not is_local(path):
        path.fs.pipe_file(path.path, data)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # as open() would create it (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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

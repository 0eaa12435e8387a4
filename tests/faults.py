"""A fault-injecting HTTP server on 127.0.0.1 for the fetch tests (a helper module, not a test file).

`FaultServer` serves, per path, a script: a list of `Step`s answered in order, the last one repeating, and
records every request it receives per path (method, path, headers). A step is a plain response (status,
headers, body) or one of the faults below. Unscripted paths get a 404 and are still recorded.

Faults (`Step.fault`):
- "delay": wait `delay` seconds before sending anything (the client's read timeout fires);
- "truncate": announce Content-Length len(body) + 1000, send the body, close (a truncated body);
- "stall": send the headers and the first half of the body, then wait `delay` seconds (a timeout mid-body);
- "reset": SO_LINGER 0 then close before answering (the client sees ECONNRESET);
- "chunked": the body in three chunks (Transfer-Encoding: chunked); "chunked_cut": the first chunk, then half of
  the second, then close (a truncated chunked body);
- "drip": send the headers, then the body one byte every `delay` seconds (each read returns in time, the whole
  never does).
Plain steps cover the rest: `redirect_loop`, `corrupt_gzip`, `huge`, `retry_after`, `maintenance_page`, ...

Everything is bounded: handler sockets time out after 5 s, waits never exceed `MAX_WAIT` and end at once when the
server stops, and `serve()` stops the server (shutdown, close) when its block ends.

`unaccepting_port()` stands in for a host that does not answer connects: a loopback listener with backlog 0 that
never accept()s, its accept queue filled first, so a further SYN is dropped and the client's connect times out.
"""

from __future__ import annotations

import email.utils
import gzip
import socket
import struct
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_WAIT = 10.0
XML = "application/xml"


@dataclass(frozen=True)
class Step:
    """One scripted answer: a response, optionally with a fault."""

    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    fault: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict


def ok(body: bytes, content_type: str = XML, **headers) -> Step:
    return Step(200, {"Content-Type": content_type, **headers}, body)


def status(code: int, body: bytes = b"", **headers) -> Step:
    return Step(code, {"Content-Type": "text/plain", **headers}, body or f"status {code}".encode())


def retry_after(value: str, code: int = 429) -> Step:
    return status(code, b"slow down", **{"Retry-After": value})


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date (RFC 9110) `seconds_from_now` seconds away."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def redirect_loop(path: str) -> Step:
    return Step(302, {"Location": path, "Content-Type": "text/plain"}, b"moved")


def corrupt_gzip(content_type: str = XML) -> Step:
    """A body announced as gzip that is not: a valid gzip header followed by garbage."""
    garbage = gzip.compress(b"<?xml")[:10] + b"\x00garbage, not deflate data\xff" * 8
    return Step(200, {"Content-Type": content_type, "Content-Encoding": "gzip"}, garbage)


def gzipped(body: bytes, content_type: str = XML) -> Step:
    return Step(200, {"Content-Type": content_type, "Content-Encoding": "gzip"}, gzip.compress(body))


def huge(size: int, content_type: str = XML) -> Step:
    return ok(b"<?xml version='1.0'?><Document>" + b"x" * size + b"</Document>", content_type)


def maintenance_page(**headers) -> Step:
    page = (b"<!DOCTYPE html>\n<html><head><title>Scheduled maintenance</title></head>"
            b"<body><h1>The site is under maintenance</h1><p>Please come back later.</p></body></html>")
    return ok(page, "text/html; charset=utf-8", **headers)


def gzip_bomb(decoded_size: int) -> bytes:
    """A valid gzip body of about decoded_size / 1000 bytes that decodes to `decoded_size` zero bytes (a multiple
    of 1 MiB): one compressed MiB repeated, its trailer computed MiB by MiB, so no side ever holds the decoded
    size in memory."""
    mib, count = b"\0" * (1 << 20), decoded_size >> 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(mib, crc)
    return head + block * (count - 1) + compressor.flush()[:-8] + struct.pack("<II", crc, decoded_size & 0xFFFFFFFF)


def fault(kind: str, body: bytes = b"", delay: float = 0.0, content_type: str = XML) -> Step:
    return Step(200, {"Content-Type": content_type}, body, kind, delay)


class LoopbackServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on a free loopback port (its request threads daemons) answering with `handler`; serve
    it with `running`."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass


@contextmanager
def running(server: ThreadingHTTPServer):
    """`server` serving in a daemon thread while the block runs; then shut down and closed."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class FaultServer(LoopbackServer):
    """A loopback server with per-path scripts, a request log and a stop event that ends every wait (set as it is
    shut down)."""

    def __init__(self):
        super().__init__(_Handler)
        self.scripts: dict[str, list[Step]] = {}
        self.log: list[Request] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()

    def script(self, path: str, *steps: Step) -> str:
        """Serve `steps` in order at `path` (the last one repeats); returns the full URL."""
        with self._lock:
            self.scripts[path] = list(steps)
        return self.url(path)

    def requests(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    def count(self, path: str) -> int:
        return len(self.requests(path))

    def next_step(self, request: Request) -> Step | None:
        with self._lock:
            self.log.append(request)
            steps = self.scripts.get(request.path)
            if not steps:
                return None
            return steps.pop(0) if len(steps) > 1 else steps[0]

    def wait(self, seconds: float) -> None:
        self.stopping.wait(min(seconds, MAX_WAIT))

    def handle_error(self, request, client_address):
        """Clients hanging up mid-answer is what these tests provoke; stay quiet about it."""


class _Handler(QuietHandler):
    timeout = 5
    server: FaultServer

    def do_GET(self):
        path = urlsplit(self.path).path
        step = self.server.next_step(Request("GET", path, dict(self.headers.items())))
        self.close_connection = True
        if step is None:
            step = status(404, f"no script for {path}".encode())
        try:
            self._answer(step)
        except OSError:
            pass

    def _answer(self, step: Step) -> None:
        if step.fault == "reset":
            return self._reset()
        if step.fault in ("chunked", "chunked_cut"):
            return self._chunked(step)
        if step.fault == "delay":
            self.server.wait(step.delay)
        length = len(step.body) + (1000 if step.fault == "truncate" else 0)
        self.send_response(step.status)
        for name, value in step.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        if step.fault == "drip":
            for i in range(len(step.body)):
                if self.server.stopping.is_set():
                    return
                self.wfile.write(step.body[i:i + 1])
                self.wfile.flush()
                self.server.wait(step.delay)
            return
        if step.fault == "stall":
            self.wfile.write(step.body[: len(step.body) // 2])
            self.wfile.flush()
            self.server.wait(step.delay)
            return
        self.wfile.write(step.body)
        self.wfile.flush()

    def _chunked(self, step: Step) -> None:
        third = len(step.body) // 3
        pieces = [step.body[:third], step.body[third:2 * third], step.body[2 * third:]]
        self.send_response(step.status)
        for name, value in step.headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        if step.fault == "chunked_cut":
            self.wfile.write(b"%x\r\n%s\r\n" % (len(pieces[0]), pieces[0]))
            self.wfile.write(b"%x\r\n%s" % (len(pieces[1]), pieces[1][: len(pieces[1]) // 2]))
            return
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self) -> None:
        """Abort the connection: with SO_LINGER 0 a close sends RST instead of FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()


def serve():
    """A running FaultServer on a free loopback port, stopped when the block ends."""
    return running(FaultServer())


@contextmanager
def unaccepting_port(probe_timeout: float = 0.3, max_fillers: int = 32):
    """A loopback port whose listener never accepts and whose accept queue is full: connects to it time out.

    Yields None if the queue never filled (some kernels answer anyway); callers then skip."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        full = False
        for _ in range(max_fillers):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.settimeout(probe_timeout)
            try:
                filler.connect(("127.0.0.1", port))
            except (TimeoutError, socket.timeout):
                full = True
                break
        yield port if full else None
    finally:
        for filler in fillers:
            filler.close()
        listener.close()

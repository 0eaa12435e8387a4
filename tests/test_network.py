"""The network boundary (issue 20 items 1 and 3, issue 22 items 1 and 2): hosts that cannot be reached fail fast
and once, one deadline per request whatever the server does, politeness per host, only the hosts a source declares
are ever asked (links, redirects, credentials), and discovery is bounded.

Every server here is real and on loopback; what a test asserts is what the servers saw (requests, connections,
bytes sent) and what armswatch said, never how long something took.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

import faults
from tasks.archive import RawArchive
from tasks.errors import FetchError, Unreachable
from tasks.http import Fetcher, Settings

DOC = (Path(__file__).parent / "fixtures" / "mtdsg-5rows.xml").read_bytes()
SETTINGS = Settings(connect_timeout=0.5, read_timeout=2, deadline=1.0, retries=3, backoff_factor=0,
                    retry_after_max=0, max_bytes=1 << 20)

#: socket.connect audit events (host, port) seen while `watching` is set: what really went out on the wire.
CONNECTS: list[tuple] = []
WATCHING = threading.Event()


def _audit(event: str, args) -> None:
    if event == "socket.connect" and WATCHING.is_set() and isinstance(args[1], tuple):
        CONNECTS.append(args[1][:2])


sys.addaudithook(_audit)


@contextmanager
def connects():
    """The (host, port) of every connection attempted inside the block."""
    CONNECTS.clear()
    WATCHING.set()
    try:
        yield CONNECTS
    finally:
        WATCHING.clear()


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def records(root: Path) -> list[dict]:
    import json

    return [json.loads(p.read_text()) for p in sorted((root / "responses").glob("*/*.json"))]


# --- 20.1 a host that cannot be reached fails at once, once ---------------------------------------------------------

def test_a_refused_host_is_asked_once_and_its_other_urls_fail_at_once(tmp_path):
    """Five URLs of a host that refuses connections, fetched concurrently with retries: one connection attempt in
    all (no retry, no second URL), one failure marked as the one that found it, every URL archived as an attempt."""
    port = closed_port()
    urls = [f"http://127.0.0.1:{port}/doc-{n}.xml" for n in range(5)]
    fetcher = Fetcher(RawArchive(tmp_path), SETTINGS)
    with connects() as seen, ThreadPoolExecutor(5) as pool:
        failures = [f.exception() for f in [pool.submit(fetcher.get, "untc", url, "xml") for url in urls]]
    assert seen == [("127.0.0.1", port)]
    assert all(isinstance(f, Unreachable) and f.origin == f"http://127.0.0.1:{port}" for f in failures)
    assert [f.first for f in failures].count(True) == 1
    first = next(f for f in failures if f.first)
    assert "refused the connection" in first.problem and first.transient is False
    assert all("not requested" in f.problem for f in failures if not f.first)
    assert fetcher.hosts.unreachable.keys() == {f"http://127.0.0.1:{port}"} and not fetcher.hosts.answered
    assert [(r["status"], r["bytes"]) for r in records(tmp_path)] == [(0, 0)] * 5


def test_a_5xx_is_still_retried_with_backoff(tmp_path):
    with faults.serve() as server:
        url = server.script("/busy.xml", faults.status(503), faults.status(502), faults.ok(DOC))
        response = Fetcher(RawArchive(tmp_path), SETTINGS).get("untc", url, "xml")
        assert response.body == DOC and server.count("/busy.xml") == 3


# --- 20.3 one deadline per request, whatever the server does ---------------------------------------------------------

class Dripper:
    """Accepts connections and sends a status line and headers one byte at a time (every byte well within the
    read timeout); records how many bytes it could send before the client hung up."""

    HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nX-Padding: " + b"p" * 400 + b"\r\n\r\n"

    def __init__(self, delay: float = 0.02):
        self.delay, self.sent = delay, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/drip.xml"

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                sent = 0
                try:
                    for i in range(len(self.HEAD)):
                        if self.stop.wait(self.delay):
                            break
                        conn.sendall(self.HEAD[i:i + 1])
                        sent += 1
                except OSError:
                    pass
                self.sent.append(sent)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


@pytest.mark.timeout(60)
def test_headers_dripped_a_byte_at_a_time_fail_at_the_deadline(tmp_path):
    """Each header byte comes 20 ms after the last (the read timeout is 2 s), so only the 1 s deadline can end
    the attempt: the server is cut off long before its last header byte, on every attempt."""
    dripper = Dripper()
    try:
        fetcher = Fetcher(RawArchive(tmp_path), replace(SETTINGS, retries=1))
        with pytest.raises(FetchError, match=r"the 1 s deadline passed before the response headers") as info:
            fetcher.get("untc", dripper.url, "xml")
    finally:
        dripper.close()
    assert info.value.transient is True
    assert len(dripper.sent) == 2 and all(n < len(Dripper.HEAD) for n in dripper.sent), dripper.sent


HUNG_RESOLVER = Path(__file__).parent / "hung_resolver"
LOOKUP = """
import json, sys
from tasks.archive import RawArchive
from tasks.errors import FetchError
from tasks.http import Fetcher, Settings
settings = Settings(connect_timeout=0.5, read_timeout=2, deadline=1.0, retries=1, backoff_factor=0)
try:
    Fetcher(RawArchive(sys.argv[1]), settings).get("untc", sys.argv[2], "xml")
except FetchError as exc:
    print(json.dumps({"error": str(exc), "transient": exc.transient}))
"""


@pytest.mark.timeout(120)
def test_a_name_lookup_that_never_answers_fails_at_the_deadline_and_is_retried_once_looked_up(tmp_path):
    """A resolver patched at the socket level (tests/hung_resolver/sitecustomize.py) never answers: each attempt
    fails at the 1 s deadline with one line naming the source, the URL and the lookup, as a timeout (transient, so
    tried again); the second attempt waits for the lookup still in flight rather than starting another."""
    import json
    import os
    import subprocess

    url = "http://treaties.invalid/XXVI-8.en.xml"
    done = subprocess.run([sys.executable, "-c", LOOKUP, str(tmp_path), url], capture_output=True, text=True,
                          timeout=110, cwd=Path(__file__).parents[1],
                          env={**os.environ, "PYTHONPATH": str(HUNG_RESOLVER)})
    assert json.loads(done.stdout) == {"error": f"untc: {url}: name lookup of treaties.invalid timed out: the 1 s "
                                                "deadline passed before the resolver answered", "transient": True}
    assert [line for line in done.stderr.splitlines() if line.startswith("lookup:")] == ["lookup: treaties.invalid"]
    assert [(r["status"], r["error"]) for r in records(tmp_path)] == [(0, json.loads(done.stdout)["error"]
                                                                       .split(": ", 2)[2])] * 2


# --- 20.1 polite per host ------------------------------------------------------------------------------------------

class Tracker(faults.LoopbackServer):
    """Serves DOC after a short pause and logs when each request started and ended."""

    def __init__(self):
        super().__init__(_Tracked)
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()


class _Tracked(faults.QuietHandler):
    def do_GET(self):
        with self.server.lock:
            self.server.events.append(("start", self.path))
        time.sleep(0.1)
        with self.server.lock:
            self.server.events.append(("end", self.path))
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(DOC)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(DOC)


def test_one_request_per_host_until_it_answered_then_at_most_per_host(tmp_path):
    with faults.running(Tracker()) as server:
        urls = [server.url(f"/doc-{n}.xml") for n in range(6)]
        fetcher = Fetcher(RawArchive(tmp_path), SETTINGS)
        with ThreadPoolExecutor(6) as pool:
            assert [r.body for r in pool.map(lambda u: fetcher.get("untc", u, "xml"), urls)] == [DOC] * 6
    in_flight, most = 0, []
    for kind, _ in server.events:
        in_flight += 1 if kind == "start" else -1
        most.append(in_flight)
    assert server.events[1][0] == "end", "a second request only once the host first answered"
    assert max(most) == SETTINGS.per_host


# --- 22.1 only the hosts a source declares; 22.2 bounded discovery ---------------------------------------------------

FILE = "data_iafq_firearms_trafficking"


def iafq(allowed: str, page: str, releases=(), **caps):
    """The IAFQ source of the project's sources/iafq.yaml, pointed at a loopback report page and host."""
    import yaml

    from tasks import catalog, registry
    from tasks.unodc import IafqConfig, IafqSource

    data = yaml.safe_load((registry.FOLDER / "iafq.yaml").read_text())
    data.update(hosts=[allowed], report_pages=[page], releases=list(releases), **caps)
    return IafqSource(catalog.validate(IafqConfig, data, "iafq.yaml", "source iafq:"))


def client(fetcher: Fetcher, source):
    """The client a flow gives a source (flows/indicators.py), over a plain Fetcher."""
    from tasks.source import Client

    def get_all(urls, kind, max_bytes=None):
        return [fetcher.get(source.name, url, kind, source.allowed, max_bytes=max_bytes) for url in urls]

    return Client(lambda url, kind, max_bytes=None: get_all([url], kind, max_bytes)[0], get_all)


def release(base: str, month: str) -> str:
    return f"{base}/sites/dataportal.unodc.org/files/{month}/{FILE}.xlsx"


@pytest.fixture
def two_hosts():
    """The source's own host and an internal service it must never ask."""
    with faults.serve() as own, faults.serve() as internal:
        yield own, internal


def test_links_to_other_hosts_credentials_and_other_schemes_are_refused_and_never_requested(two_hosts, tmp_path):
    own, internal = two_hosts
    port = own.server_address[1]
    hostile = [release(internal.base, "2025-01"),                                   # another host (127.0.0.1:other)
               release(f"http://localhost:{port}", "2025-02"),                      # same port, another host name
               release(f"http://admin:s3cr3t@127.0.0.1:{port}", "2025-03"),         # credentials
               release(f"https://127.0.0.1:{port}", "2025-04"),                     # another scheme
               release(f"ftp://127.0.0.1:{port}", "2025-05"),
               release(f"http://admin:s3cr3t@127.0.0.1:{port}", "2099-12")]         # newest month, still refused
    genuine = release(own.base, "2024-08")
    links = "".join(f'<a href="{url}">x</a>' for url in [*hostile, genuine.removeprefix(own.base)])
    page = own.script("/datareport", faults.ok(f"<html><body>{links}</body></html>".encode(), "text/html"))
    source = iafq(own.base, page)
    batches, errors = source.batches(client(Fetcher(RawArchive(tmp_path), SETTINGS), source))

    assert [b.urls for b in batches] == [(genuine,)]
    [message] = errors.values()
    assert message.startswith(f"unodc: {page}: 6 linked release(s) refused") and "and 3 more" in message
    assert "s3cr3t" not in message and "***@127.0.0.1" in message
    assert internal.log == [], "the internal service got no request"
    assert own.count("/datareport") == 1 and len(own.log) == 1


@pytest.mark.parametrize("location", ["{internal}/internal/admin", "http://localhost:{port}/x.xlsx",
                                      "http://user:pw@127.0.0.1:{port}/x.xlsx", "file:///etc/passwd"])
def test_every_redirect_hop_is_checked_before_it_is_requested(two_hosts, tmp_path, location):
    own, internal = two_hosts
    target = location.format(internal=internal.base, port=own.server_address[1])
    url = own.script("/moved.xlsx", faults.Step(302, {"Location": target}, b"moved"))
    with pytest.raises(FetchError, match="refused") as info:
        Fetcher(RawArchive(tmp_path), SETTINGS).get("iafq", url, "xlsx", frozenset({own.base}))
    assert info.value.transient is False and "pw@" not in str(info.value)
    assert internal.log == [] and own.count("/moved.xlsx") == 1
    assert [(r["status"], r["error"].startswith(target.replace("user:pw@", "***@"))) for r in records(tmp_path)] \
        == [(0, True)]


def test_a_redirect_within_the_declared_hosts_is_followed(two_hosts, tmp_path):
    own, _ = two_hosts
    own.script("/here.xml", faults.ok(DOC))
    url = own.script("/there.xml", faults.Step(301, {"Location": "/here.xml"}, b"moved"))
    assert Fetcher(RawArchive(tmp_path), SETTINGS).get("untc", url, "xml", frozenset({own.base})).body == DOC


def test_a_pinned_release_with_credentials_is_named_without_them_and_refused_unasked(two_hosts, tmp_path):
    own, _ = two_hosts
    pinned = release(f"http://reader:s3cr3t@127.0.0.1:{own.server_address[1]}", "2024-08")
    page = own.script("/datareport", faults.ok(b"<html><body></body></html>", "text/html"))
    source = iafq(own.base, page, releases=[pinned])
    get = client(Fetcher(RawArchive(tmp_path), SETTINGS), source)
    [batch], _ = source.batches(get)
    assert batch.name == pinned.replace("reader:s3cr3t@", "***@")
    with pytest.raises(FetchError, match="carries credentials") as info:
        source.fetch(batch, get)
    assert "s3cr3t" not in str(info.value) and own.count("/datareport") == 1 and len(own.log) == 1
    assert "s3cr3t" not in "".join(p.read_text() for p in (tmp_path / "responses").glob("*/*.json"))


def test_a_page_of_3000_releases_gives_the_newest_max_releases(two_hosts, tmp_path):
    own, _ = two_hosts
    months = [f"{1800 + n // 12}-{n % 12 + 1:02d}" for n in range(3000)]
    links = "".join(f'<a href="/sites/dataportal.unodc.org/files/{m}/{FILE}.xlsx">x</a>' for m in months)
    page = own.script("/datareport", faults.ok(f"<html><body>{links}</body></html>".encode(), "text/html"))
    pinned = release(own.base, "1700-01")
    source = iafq(own.base, page, releases=[pinned], max_releases=20)
    batches, errors = source.batches(client(Fetcher(RawArchive(tmp_path), SETTINGS), source))
    assert errors == {}
    assert [b.name for b in batches] == [pinned, *(release(own.base, m) for m in months[-20:])]


def test_an_oversized_report_page_is_read_only_up_to_its_cap(two_hosts, tmp_path):
    """A 4 MiB page against a 64 KiB cap: the page is an error of its own (archived as far as read), the pinned
    releases still run."""
    own, _ = two_hosts
    body = b"<html><body>" + b"<p>padding</p>" * (300_000) + b"</body></html>"
    page = own.script("/datareport", faults.ok(body, "text/html"))
    pinned = release(own.base, "2024-08")
    source = iafq(own.base, page, releases=[pinned], max_page_bytes=64 * 1024)
    batches, errors = source.batches(client(Fetcher(RawArchive(tmp_path), SETTINGS), source))
    assert [b.name for b in batches] == [pinned]
    assert "body larger than the 65536-byte cap" in errors[f"report page {page}"]
    [record] = records(tmp_path)
    assert 64 * 1024 < record["bytes"] < 64 * 1024 + 65 * 1024 < len(body)


@pytest.mark.parametrize("hosts, problem", [
    (["https://data.unodc.org/sites"], "not an origin: write it as https://data.unodc.org"),
    (["ftp://data.unodc.org"], "scheme 'ftp' is not http or https"),
    ([], "at least 1 item"),
])
def test_a_source_declares_its_hosts_as_origins(hosts, problem):
    import yaml

    from tasks import catalog, registry
    from tasks.unodc import IafqConfig

    data = yaml.safe_load((registry.FOLDER / "iafq.yaml").read_text())
    with pytest.raises(catalog.CatalogError, match=problem):
        catalog.validate(IafqConfig, {**data, "hosts": hosts}, "iafq.yaml", "source iafq:")


# --- 20.1 sources fetched concurrently -------------------------------------------------------------------------------

class Meeting(faults.LoopbackServer):
    """A host whose first request waits (bounded) until each other host got one, then answers 404: it notes whether
    the other hosts were asked while this one was still answering."""

    def __init__(self):
        super().__init__(_Meeting)
        self.arrived, self.others, self.met = threading.Event(), [], []


class _Meeting(faults.QuietHandler):
    def do_GET(self):
        self.server.arrived.set()
        self.server.met.append(all([other.wait(10) for other in self.server.others]))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("prefect_harness")
def test_the_treaties_and_the_sources_are_fetched_at_once(tmp_path):
    """A full run with UNTC, the SDG API and the UNODC report page on three hosts, each holding its first request
    until the other two were asked: fetched one part or one source after the other, the first would wait in
    vain. Each URL is still requested once."""
    import shutil

    import yaml

    from flows.cli import main
    from tasks import registry

    servers = untc, sdg, unodc = Meeting(), Meeting(), Meeting()
    for server in servers:
        server.others = [other.arrived for other in servers if other is not server]
    folder = tmp_path / "sources"
    shutil.copytree(registry.FOLDER, folder)
    edits = {"untc": {"hosts": [untc.base]},
             "sdg": {"base": sdg.base + "/sdgapi/v1/sdg", "hosts": [sdg.base]},
             "iafq": {"report_pages": [unodc.base + "/datareport"], "releases": [], "hosts": [unodc.base]},
             "m49": {"url": unodc.base + "/m49/", "hosts": [unodc.base]}}
    for name, edit in edits.items():
        data = yaml.safe_load((folder / f"{name}.yaml").read_text())
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({**data, **edit}))
    cat = tmp_path / "catalog.yaml"
    cat.write_text(f"- {{id: XXVI-8, short_name: ATT, url: '{untc.base}/XXVI-8.en.xml'}}\n")
    with faults.running(untc), faults.running(sdg), faults.running(unodc):
        assert main(["run", "--treaties", str(cat), "--sources", str(folder), "--warehouse", str(tmp_path / "wh")]) == 1
    assert [server.met[0] for server in servers] == [True, True, True]
    assert len(untc.met) == 1 and len(unodc.met) == 2, "the treaty, the report page and the M49 table, once each"


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("prefect_harness")
def test_a_run_that_stops_ends_its_fetches_waiting_and_requests_nothing_more(tmp_path, monkeypatch):
    """A fetch waiting a minute before its next attempt (503) ends once its run is stopping (Run.stopping: what a
    refresh's sources still fetch in the background after the treaties part crashed), without another request;
    a URL asked after that is not requested at all."""
    from prefect import flow

    from flows.steps import fetch_urls
    from tasks import http
    from tasks.run import open_run

    monkeypatch.setattr(http, "SETTINGS", replace(SETTINGS, backoff_factor=60, backoff_max=60))
    with faults.serve() as server, open_run(str(tmp_path / "wh"), None) as run:
        busy, other = server.script("/busy.xml", faults.status(503)), server.script("/other.xml", faults.ok(DOC))

        @flow
        def fetching(url: str):
            return fetch_urls(run, "untc", [url], "xml", None)

        thread = threading.Thread(target=fetching, args=(busy,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while server.count("/busy.xml") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        run.stopping.set()
        thread.join(60)
        assert not thread.is_alive(), "still waiting for its next attempt"
        [stopped] = fetching(other)
    assert server.count("/busy.xml") == 1 and server.count("/other.xml") == 0
    assert isinstance(stopped, FetchError) and stopped.problem == "not requested: the run was stopped"


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("prefect_harness")
def test_treaty_urls_are_fetched_only_from_the_hosts_of_sources_untc_yaml(two_hosts, tmp_path, capsys):
    """A catalog entry whose url names another host is refused without a request; once sources/untc.yaml names
    that host, it is asked."""
    import shutil

    import yaml

    from flows.cli import main
    from tasks import registry

    own, _ = two_hosts
    url = own.script("/XXVI-8.en.xml", faults.ok(DOC))
    cat = tmp_path / "catalog.yaml"
    cat.write_text(f"- {{id: XXVI-8, short_name: ATT, url: '{url}'}}\n")
    run = ["run", "--only", "treaties", "--treaties", str(cat), "--warehouse", str(tmp_path / "wh")]
    assert main(run) == 1
    refused = f"{url} refused: {own.base} is not among the source's hosts (https://treaties.un.org)"
    assert refused in capsys.readouterr().out
    assert own.count("/XXVI-8.en.xml") == 0
    folder = tmp_path / "sources"
    shutil.copytree(registry.FOLDER, folder)
    untc = yaml.safe_load((folder / "untc.yaml").read_text())
    (folder / "untc.yaml").write_text(yaml.safe_dump({**untc, "hosts": [*untc["hosts"], own.base]}))
    main([*run, "--sources", str(folder)])
    assert own.count("/XXVI-8.en.xml") == 1

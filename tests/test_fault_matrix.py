"""Fault matrix: every way an upstream can misbehave, through `Fetcher(RawArchive(tmp), settings).get(...)`.

Each case says whether the fetch must be retried and succeed or fail clearly, and checks the result or the
FetchError (names source, URL and what was wrong; `transient` as the flows' retry policy needs it), how many requests
the server saw (retries bounded: at most `retries + 1`, a 4xx exactly once), and what the raw archive kept under
`tmp/responses/` and `tmp/objects/`. Document-level cases go through `tasks.untc.parse_document`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import faults
from conftest import MTDSG
from faults import Step
from tasks.archive import RawArchive
from tasks.errors import FetchError, ParseError
from tasks.http import Fetcher, Settings, retry_after
from tasks.untc import parse_document

FIXTURES = Path(__file__).parent / "fixtures"
DOC = (FIXTURES / "mtdsg-5rows.xml").read_bytes()
HEADER_ONLY = (FIXTURES / "mtdsg-header-only.xml").read_bytes()
SOURCE = "untc"
CAP = 64 * 1024
SETTINGS = Settings(connect_timeout=0.5, read_timeout=0.5, retries=3, backoff_factor=0.01, backoff_max=0.05,
                    retry_after_max=1, max_bytes=CAP)
ATTEMPTS = SETTINGS.retries + 1


@pytest.fixture(scope="module")
def server():
    with faults.serve() as srv:
        yield srv


@dataclass(frozen=True)
class Case:
    """One row of the matrix.

    `archived`: what the raw archive must hold for the final response — "body" (every byte sent; for a truncated
    body that is all that came before the close), "prefix" (a non-empty part of the body, what arrived before the
    break), "capped" (more than the cap, a prefix), "empty" (a record with the error but no bytes), or None (no
    response arrived: only the attempt is on record, status 0 with the error)."""

    id: str
    steps: tuple[Step, ...]
    expected: str  # retried_and_succeeded | failed_clearly
    requests: int
    problem: str = ""
    transient: bool | None = None
    archived: str | None = "body"
    record_error: str | None = None
    delivered: bytes | None = None  # the body after content decoding, when it differs from the bytes sent
    attempts: int | None = None  # attempts archived, when not one per request (redirects of one attempt)


SUCCEEDED, FAILED = "retried_and_succeeded", "failed_clearly"

CASES = [
    Case("5xx_burst_then_200", (faults.status(500), faults.status(502), faults.status(503), faults.ok(DOC)),
         SUCCEEDED, 4),
    Case("persistent_503", (faults.status(503),), FAILED, ATTEMPTS, r"HTTP 503 Service Unavailable: status 503",
         transient=True),
    Case("429_retry_after_seconds", (faults.retry_after("3600"), faults.ok(DOC)), SUCCEEDED, 2),
    Case("429_retry_after_http_date", (faults.retry_after(faults.http_date(3600)), faults.ok(DOC)), SUCCEEDED, 2),
    Case("503_retry_after_past_date", (faults.retry_after(faults.http_date(-3600), 503), faults.ok(DOC)),
         SUCCEEDED, 2),
    Case("persistent_429", (faults.retry_after("1"),), FAILED, ATTEMPTS, r"HTTP 429 Too Many Requests",
         transient=True),
    Case("read_timeout_once", (faults.fault("delay", DOC, delay=3), faults.ok(DOC)), SUCCEEDED, 2),
    Case("read_timeout_persistent", (faults.fault("delay", DOC, delay=3),), FAILED, ATTEMPTS,
         r"no response: .*Read timed out", transient=True, archived=None),
    Case("reset_once", (faults.fault("reset"), faults.ok(DOC)), SUCCEEDED, 2),
    Case("reset_persistent", (faults.fault("reset"),), FAILED, ATTEMPTS,
         r"no response: .*Connection reset by peer", transient=True, archived=None),
    Case("truncated_body", (faults.fault("truncate", DOC),), FAILED, ATTEMPTS,
         rf"connection broke mid-body \(truncated\).*; {len(DOC)} bytes received were archived as [0-9a-f]{{64}}",
         transient=True, record_error="truncated"),
    Case("stall_mid_body", (faults.fault("stall", DOC, delay=3),), FAILED, ATTEMPTS,
         rf"connection timed out mid-body.*; {len(DOC) // 2} bytes received were archived", transient=True,
         archived="prefix", record_error="timed out mid-body"),
    Case("body_over_cap", (faults.huge(4 * CAP),), FAILED, 1, rf"body larger than the {CAP}-byte cap",
         transient=False, archived="capped", record_error="cap"),
    Case("wrong_content_type", (faults.ok(DOC, "text/plain"),), FAILED, 1,
         r"wrong content type text/plain for xml; expected one of application/xml, text/xml", transient=False,
         record_error="wrong content type"),
    Case("html_maintenance_200", (faults.maintenance_page(),), FAILED, ATTEMPTS,
         r"got an HTML page instead of xml \(text/html\): <!DOCTYPE html> <html><head><title>Scheduled maintenance",
         transient=True, record_error="HTML page"),
    Case("empty_200", (faults.ok(b""),), FAILED, 1, r"empty body", transient=False, archived="empty",
         record_error="empty body"),
    Case("redirect_loop", (faults.redirect_loop("/redirect_loop"),), FAILED, 11,
         r"too many redirects \(Exceeded 10 redirects", transient=False, archived=None, attempts=1),
    Case("corrupt_gzip", (faults.corrupt_gzip(),), FAILED, 1, r"corrupt compressed body: .*gzip", transient=False,
         archived="empty", record_error="corrupt compressed body"),
    Case("not_found_404", (faults.status(404),), FAILED, 1, r"HTTP 404 Not Found: status 404", transient=False),
    Case("header_only_document", (faults.ok(HEADER_ONLY),), SUCCEEDED, 1),
    Case("gzip_encoded", (faults.gzipped(DOC),), SUCCEEDED, 1, delivered=DOC),
    Case("chunked", (faults.fault("chunked", DOC),), SUCCEEDED, 1),
    Case("chunked_cut", (faults.fault("chunked_cut", DOC),), FAILED, ATTEMPTS,
         r"connection broke mid-body \(truncated\)", transient=True, archived="prefix", record_error="truncated"),
]


def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "responses").glob("*/*.json"))]


def objects(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "objects").glob("*/*")}


def final_body(case: Case) -> bytes:
    return case.steps[-1].body if case.delivered is None else case.delivered


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, server, tmp_path):
    url = server.script(f"/{case.id}", *case.steps)
    fetcher = Fetcher(RawArchive(tmp_path), SETTINGS)

    if case.expected == SUCCEEDED:
        response = fetcher.get(SOURCE, url, "xml")
        assert response.status == 200 and response.error is None
        assert response.body == final_body(case)
    else:
        with pytest.raises(FetchError) as info:
            fetcher.get(SOURCE, url, "xml")
        error = info.value
        assert str(error).startswith(f"{SOURCE}: {url}: ")
        assert (error.source, error.url) == (SOURCE, url)
        assert re.search(case.problem, error.problem, re.S), error.problem
        assert error.transient is case.transient

    assert server.count(f"/{case.id}") == case.requests
    assert_archived(case, tmp_path)


def assert_archived(case: Case, root: Path) -> None:
    """The archive holds one record per attempt (an attempt record where none arrived) and the final response's
    bytes."""
    kept, stored = records(root), objects(root)
    assert len(kept) == (case.attempts or case.requests), kept
    if case.archived is None:
        assert_attempt_only(root, case.problem)
        return
    record = kept[-1]
    assert record["status"] == case.steps[-1].status
    assert stored[record["sha256"]] == RawArchive(root).read(record["sha256"])
    body, sent = stored[record["sha256"]], final_body(case)
    assert record["bytes"] == len(body)
    if case.record_error is None:
        assert record["error"] is None
    else:
        assert case.record_error in record["error"]
    if case.archived == "body":
        assert body == sent
    elif case.archived == "prefix":
        assert 0 < len(body) < len(sent) and sent.startswith(body)
    elif case.archived == "capped":
        assert CAP < len(body) < len(sent) and sent.startswith(body)
    else:
        assert body == b""
    latest = list((root / "latest").glob("*.json"))
    assert len(latest) == (1 if case.expected == SUCCEEDED else 0), "only accepted responses become `latest`"


def assert_attempt_only(root: Path, problem: str) -> None:
    """No response arrived: status-0 records carrying the error, no bytes, and nothing becomes `latest`."""
    kept = records(root)
    assert {(r["status"], r["bytes"]) for r in kept} == {(0, 0)}
    assert re.search(problem, kept[-1]["error"])
    assert set(objects(root).values()) <= {b""} and not list((root / "latest").glob("*.json"))


def test_header_only_document_parses_without_participant_table(server, tmp_path):
    url = server.script("/header-only.xml", faults.ok(HEADER_ONLY))
    response = Fetcher(RawArchive(tmp_path), SETTINGS).get(SOURCE, url, "xml")
    doc = parse_document(response.body, url, "XCIX-7", None)
    assert doc.treaty["participant_table_found"] is False
    assert doc.participation == []
    assert (doc.treaty["stated_parties"], doc.treaty["parsed_parties"]) == (189, 0)


@pytest.mark.timeout(30)
def test_connect_timeout(tmp_path):
    """No response at all: FetchError (transient) after retries + 1 connect attempts; only the attempt recorded."""
    with faults.unaccepting_port() as port:
        if port is None:
            pytest.skip("could not fill a loopback accept queue here, so connects are not left unanswered")
        url = f"http://127.0.0.1:{port}/never-accepted.xml"
        with pytest.raises(FetchError) as info:
            Fetcher(RawArchive(tmp_path), SETTINGS).get(SOURCE, url, "xml")
    assert info.value.url == url and info.value.transient is True
    assert re.search(r"no response: .*ConnectTimeoutError.*connect timeout=0\.5", info.value.problem)
    assert_attempt_only(tmp_path, "ConnectTimeoutError")


@pytest.mark.parametrize("value", ["3600", faults.http_date(3600)], ids=["seconds", "http_date"])
def test_retry_after_wait_is_capped_by_settings(value):
    """A Retry-After of an hour waits at most Settings.retry_after_max (the matrix cases above rely on it)."""
    assert retry_after(value, SETTINGS.retry_after_max) == SETTINGS.retry_after_max


def test_conditional_request_revalidates_with_304(server, tmp_path):
    """A 304 answer to If-None-Match / If-Modified-Since returns the archived body with the new fetched_at."""
    stamp = "Mon, 15 Jan 2018 10:00:00 GMT"
    url = server.script("/conditional.xml", faults.ok(DOC, ETag='"v1"', **{"Last-Modified": stamp}),
                        Step(304, {}, b""))
    fetcher = Fetcher(RawArchive(tmp_path), SETTINGS)
    first = fetcher.get(SOURCE, url, "xml")
    second = fetcher.get(SOURCE, url, "xml")
    again = server.requests("/conditional.xml")[1].headers
    assert (again["If-None-Match"], again["If-Modified-Since"]) == ('"v1"', stamp)
    assert second.body == DOC and second.sha256 == first.sha256 and second.fetched_at > first.fetched_at
    assert [r["status"] for r in records(tmp_path)] == [200, 304]


def test_rejected_response_does_not_drive_conditional_requests(server, tmp_path):
    """A 200 maintenance page must not become the `latest` copy: the next conditional request still names the
    last good document, so a 304 returns that document and never the maintenance page."""
    url = server.script("/maintained.xml", faults.ok(DOC, ETag='"v1"'), faults.maintenance_page(ETag='"maint"'),
                        Step(304, {}, b""))
    fetcher = Fetcher(RawArchive(tmp_path), replace(SETTINGS, retries=0))  # the page is the run's last attempt
    fetcher.get(SOURCE, url, "xml")
    with pytest.raises(FetchError, match="got an HTML page"):
        fetcher.get(SOURCE, url, "xml")
    third = fetcher.get(SOURCE, url, "xml")
    assert server.requests("/maintained.xml")[2].headers["If-None-Match"] == '"v1"'
    assert third.body == DOC


def test_mirror_is_read_through_the_same_path(tmp_path):
    """The offline mirror (MirrorAdapter) still serves whole bodies through Fetcher._read."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "doc.xml").write_bytes(DOC)
    url = "https://treaties.un.org/doc/Publication/MTDSG/Volume%20II/Chapter%20XCIX/XCIX-7-z.en.xml"
    (mirror / "manifest.json").write_text(json.dumps([{"url": url, "file": "doc.xml", "bytes": len(DOC),
                                                       "sha256": hashlib.sha256(DOC).hexdigest()}]))
    response = Fetcher(RawArchive(tmp_path / "raw"), SETTINGS, mirror).get(SOURCE, url, "xml")
    assert response.body == DOC and response.bytes == len(DOC)
    with pytest.raises(FetchError, match=r"HTTP 404 Not Found: not in mirror"):
        Fetcher(RawArchive(tmp_path / "raw"), SETTINGS, mirror).get(SOURCE, url + "?missing", "xml")


# --- document level: tasks.untc.parse_document ---------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Document [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""


def with_prolog(prolog: str, entity_in_name: str = "") -> bytes:
    """The 5-row fixture behind `prolog` (a DOCTYPE), optionally referencing an entity in the first name."""
    body = DOC.split(b"?>", 1)[1]
    if entity_in_name:
        body = body.replace(b"<Entry>Albania</Entry>", f"<Entry>Albania{entity_in_name}</Entry>".encode(), 1)
    return b'<?xml version="1.0" encoding="iso-8859-1"?>\n' + prolog.encode() + body


def test_billion_laughs_is_refused():
    body = BILLION_LAUGHS + DOC.split(b"?>", 1)[1].replace(b"<Entry>Albania</Entry>", b"<Entry>&lol9;</Entry>")
    with pytest.raises(ParseError, match="declares a DTD or entities; refused"):
        parse_document(body, "https://example.test/bomb.xml", "XCIX-7-z", None)


def test_xxe_file_entity_is_refused_without_reading_the_file():
    body = with_prolog('<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")
    with pytest.raises(ParseError, match="declares a DTD or entities; refused") as info:
        parse_document(body, "https://example.test/xxe.xml", "XCIX-7-z", None)
    assert "root:" not in str(info.value)


XXE_NETWORK = {
    "external_entity": ('<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{base}/xxe-entity">]>', "&xxe;"),
    "external_dtd": ('<!DOCTYPE Document SYSTEM "{base}/xxe.dtd">', ""),
    "parameter_entity": ('<!DOCTYPE Document [<!ENTITY % p SYSTEM "{base}/xxe-param"> %p;]>', ""),
}


@pytest.mark.parametrize("variant", sorted(XXE_NETWORK))
def test_xxe_network_entity_is_refused_without_any_request(variant, server):
    prolog, reference = XXE_NETWORK[variant]
    for path in ("/xxe-entity", "/xxe.dtd", "/xxe-param"):
        server.script(path, faults.ok(b"<!ENTITY leaked 'yes'>", "application/xml-dtd"))
    body = with_prolog(prolog.format(base=server.base), reference)
    with pytest.raises(ParseError, match="declares a DTD or entities; refused"):
        parse_document(body, "https://example.test/xxe.xml", "XCIX-7-z", None)
    assert sum(server.count(p) for p in ("/xxe-entity", "/xxe.dtd", "/xxe-param")) == 0


def test_xxe_in_an_encoding_the_byte_check_cannot_see_is_still_not_resolved(server):
    """UTF-16 hides `<!DOCTYPE` from the byte-level check; the parser must still neither read nor fetch."""
    server.script("/xxe-utf16", faults.ok(b"<!ENTITY leaked 'yes'>", "application/xml-dtd"))
    text = with_prolog(f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{server.base}/xxe-utf16">'
                       f'<!ENTITY pw SYSTEM "file:///etc/passwd">]>', "&xxe;&pw;").decode("latin-1")
    body = text.replace('encoding="iso-8859-1"', 'encoding="UTF-16"').encode("utf-16")
    try:
        doc = parse_document(body, "https://example.test/xxe16.xml", "XCIX-7-z", None)
    except ParseError:
        pass
    else:
        assert all("root:" not in p["participant"] and "yes" not in p["participant"] for p in doc.participation)
    assert server.count("/xxe-utf16") == 0


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_xml_is_a_parse_error(fraction):
    body = DOC[: int(len(DOC) * fraction)]
    with pytest.raises(ParseError, match="malformed or truncated XML"):
        parse_document(body, "https://example.test/cut.xml", "XCIX-7-z", None)


@pytest.mark.skipif(not MTDSG.is_dir(), reason="../shared/data not present")
def test_truncated_real_document_is_a_parse_error():
    """A real UNTC document (with its C0 bytes and bare &), cut mid-participant-table in memory."""
    real = (MTDSG / "XVIII-12-c.en.xml").read_bytes()
    assert parse_document(real, "u", "XVIII-12-c", None).treaty["participant_table_found"] is True
    cut = real[: real.index(b"<Participants>") + 1500]
    with pytest.raises(ParseError, match="malformed or truncated XML"):
        parse_document(cut, "u", "XVIII-12-c", None)


def test_renamed_participants_element_parses_as_no_participant_table():
    renamed = DOC.replace(b"<Participants>", b"<Participantz>").replace(b"</Participants>", b"</Participantz>")
    doc = parse_document(renamed, "https://example.test/drift.xml", "XCIX-7-z", None)
    assert doc.treaty["participant_table_found"] is False
    assert doc.participation == []
    assert (doc.treaty["stated_parties"], doc.treaty["parsed_parties"]) == (4, 0)


def test_fixture_with_untc_defects_parses_after_sanitising():
    """The known real defects (a stray 0x19 for ’ and a bare &) injected into the fixture still parse."""
    broken = DOC.replace(b"front matter", b"Montenegro\x19s front matter & notes")
    assert broken != DOC
    doc = parse_document(broken, "https://example.test/ok.xml", "XCIX-7-z", None)
    assert [p["participant"] for p in doc.participation] == [
        "Albania", "Argentina", "Australia", "Denmark", "Montenegro"]
    assert [p["footnotes"] for p in doc.participation] == [[], [], [], [1], [2]]
    assert doc.footnotes[1]["text"] == 'See note 1 under "Montenegro" in the Montenegro\u2019s front matter & notes.'
    assert (doc.treaty["parsed_signatories"], doc.treaty["parsed_parties"]) == (3, 4)

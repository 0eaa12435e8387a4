"""Hostile and unlucky input at the edges armswatch owns (issues 13.3, 13.4, 14.1, 14.2 and 10.4).

Network cases run against the loopback FaultServer (tests/faults.py); every generated input is bounded (the
1.5 GB gzip bomb is 1.6 MB on the wire and is stopped at a 1 MiB cap). No assertion is about wall-clock time:
each case asserts the behaviour (the error, what was archived, what was published) that a missing bound breaks.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tempfile
import threading
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faults
import warehouse_batches as wb
from tasks.archive import RawArchive
from tasks import publish as publish_module
from tasks.audit import audit_and_publish
from tasks.errors import FetchError, ParseError
from tasks.http import Fetcher, MirrorAdapter, Settings
from tasks.mirror import export, mirror_path
from tasks.publish import JournalRefused, PublishError, Warehouse
from tasks.tables import INDICATOR_OBSERVATIONS
from tasks.validate import TableResult, Validator

FIXTURES = Path(__file__).parent / "fixtures"
DOC = (FIXTURES / "mtdsg-5rows.xml").read_bytes()
CAP = 1 << 20
SETTINGS = Settings(connect_timeout=0.5, read_timeout=2, deadline=1.0, retries=0, backoff_factor=0.01,
                    backoff_max=0.05, retry_after_max=1, max_bytes=CAP)
URL = "https://treaties.un.org/doc/Publication/MTDSG/Volume%20II/Chapter%20XCIX/XCIX-7-z.en.xml"
TODAY = date(2026, 11, 29)


@pytest.fixture(scope="module")
def server():
    with faults.serve() as srv:
        yield srv


def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "responses").glob("*/*.json"))]


# --- 14.2 deadlines and decoded-size caps on every fetch ---------------------------------------------------------

@pytest.mark.timeout(30)
def test_a_server_dripping_bytes_fails_at_the_deadline(server, tmp_path):
    """Every byte arrives well within the read timeout, so only a total deadline ends this fetch (200 bytes at
    one per 50 ms would take 10 s, the deadline is 1 s)."""
    body = DOC[:200]
    url = server.script("/drip.xml", faults.fault("drip", body, delay=0.05))
    with pytest.raises(FetchError, match=r"connection too slow: the 1 s deadline passed after \d+ bytes") as info:
        Fetcher(RawArchive(tmp_path), SETTINGS).get("untc", url, "xml")
    assert info.value.transient is True
    [record] = records(tmp_path)
    kept = RawArchive(tmp_path).read(record["sha256"])
    assert 0 < len(kept) < len(body) and body.startswith(kept), "archived as far as it came"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("redirected", [False, True], ids=["direct", "in_a_redirect"])
def test_a_gzip_bomb_stops_at_the_decoded_cap_and_is_archived_as_far_as_read(server, tmp_path, redirected):
    """1.6 MB of gzip that decodes to 1.5 GB: reading stops just past the 1 MiB cap, also when the bomb is the
    body of a redirect (requests would read that whole to discard it), and the next hop is never requested."""
    bomb = faults.gzip_bomb(1536 << 20)
    path = f"/bomb-{redirected}.xml"
    headers = {"Content-Type": faults.XML, "Content-Encoding": "gzip"}
    if redirected:
        server.script("/after-bomb.xml", faults.ok(DOC))
        headers["Location"] = "/after-bomb.xml"
    url = server.script(path, faults.Step(302 if redirected else 200, headers, bomb))
    with pytest.raises(FetchError, match=rf"body larger than the {CAP}-byte cap") as info:
        Fetcher(RawArchive(tmp_path), SETTINGS).get("untc", url, "xml")
    assert info.value.transient is False
    [record] = records(tmp_path)
    assert record["status"] == (302 if redirected else 200)
    kept = RawArchive(tmp_path).read(record["sha256"])
    assert CAP < len(kept) <= CAP + 64 * 1024 and kept.count(0) == len(kept)
    assert server.count("/after-bomb.xml") == 0


def test_redirects_are_followed_and_archived_under_the_catalog_url(server, tmp_path):
    server.script("/moved-here.xml", faults.ok(DOC))
    url = server.script("/moved.xml", faults.Step(301, {"Location": "/moved-here.xml"}, b"moved"))
    response = Fetcher(RawArchive(tmp_path), SETTINGS).get("untc", url, "xml")
    assert response.body == DOC and response.url == url
    assert [(r["url"], r["status"]) for r in records(tmp_path)] == [(url, 200)]


# --- 13.3 verified mirrors and 14.1 duplicate URLs -----------------------------------------------------------------

def mirror_with(tmp_path: Path, body: bytes = DOC, **entry) -> Path:
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    (mirror / "doc.xml").write_bytes(body)
    fields = {"url": URL, "file": "doc.xml", "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body),
              "as_of": "2018-01-15", **entry}
    (mirror / "manifest.json").write_text(json.dumps([fields]))
    return mirror


def mirror_fetch(tmp_path: Path, mirror: Path, settings: Settings = SETTINGS):
    return Fetcher(RawArchive(tmp_path / "raw"), settings, mirror).get("untc", URL, "xml")


def test_mirror_serves_as_of_as_the_date_header(tmp_path):
    response = mirror_fetch(tmp_path, mirror_with(tmp_path))
    assert response.body == DOC and response.headers["Date"] == "Mon, 15 Jan 2018 00:00:00 GMT"


@pytest.mark.parametrize("damage", ["same_size", "appended"])
def test_mirror_file_that_no_longer_matches_its_manifest_is_refused(tmp_path, damage):
    mirror = mirror_with(tmp_path)
    tampered = DOC.replace(b"Albania", b"Albanix") if damage == "same_size" else DOC + b"\n"
    (mirror / "doc.xml").write_bytes(tampered)
    what = r"has sha256 [0-9a-f]{64} .*the manifest says" if damage == "same_size" else r"the manifest says \d+"
    with pytest.raises(FetchError, match=rf"refused by the mirror: {URL}: mirror file .*doc\.xml .*{what}") as info:
        mirror_fetch(tmp_path, mirror)
    assert info.value.transient is False and info.value.url == URL
    assert [(r["status"], r["bytes"]) for r in records(tmp_path / "raw")] == [(0, 0)]


@pytest.mark.parametrize("file", ["../outside.xml", "a/../../outside.xml", "/etc/hostname", "C:\\doc.xml"])
def test_mirror_manifest_naming_a_path_outside_the_folder_is_refused(tmp_path, file):
    (tmp_path / "outside.xml").write_bytes(DOC)
    with pytest.raises(FetchError, match="leaves the mirror folder") as info:
        MirrorAdapter(mirror_with(tmp_path, file=file))
    assert info.value.source == "mirror"


def test_mirror_symlink_leading_out_is_refused(tmp_path):
    mirror = mirror_with(tmp_path)
    (tmp_path / "outside.xml").write_bytes(DOC)
    (mirror / "doc.xml").unlink()
    (mirror / "doc.xml").symlink_to(tmp_path / "outside.xml")
    with pytest.raises(FetchError, match="resolves to .*outside.xml, outside the mirror folder"):
        mirror_fetch(tmp_path, mirror)


@pytest.mark.timeout(20)
def test_mirror_fifo_is_refused_without_blocking(tmp_path):
    mirror = mirror_with(tmp_path)
    (mirror / "doc.xml").unlink()
    os.mkfifo(mirror / "doc.xml")
    with pytest.raises(FetchError, match="is not a regular file"):
        mirror_fetch(tmp_path, mirror)


def test_mirror_device_is_refused(tmp_path):
    mirror = mirror_with(tmp_path)
    (mirror / "doc.xml").unlink()
    try:
        os.mknod(mirror / "doc.xml", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pytest.skip("no CAP_MKNOD here")
    with pytest.raises(FetchError, match="is not a regular file"):
        mirror_fetch(tmp_path, mirror)


def test_mirror_file_above_the_cap_is_refused_before_it_is_read(tmp_path):
    big = b"<?xml version='1.0'?><Document>" + b"x" * (CAP + 1) + b"</Document>"
    with pytest.raises(FetchError, match=rf"is {len(big)} bytes, above the {CAP}-byte cap"):
        mirror_fetch(tmp_path, mirror_with(tmp_path, big))


def test_mirror_manifest_mapping_one_url_twice_is_refused(tmp_path):
    mirror = mirror_with(tmp_path)
    entry = json.loads((mirror / "manifest.json").read_text())[0]
    (mirror / "manifest.json").write_text(json.dumps([entry, {**entry, "file": "other.xml"}]))
    with pytest.raises(FetchError, match=rf"entry 2 maps {URL} a second time \(doc.xml and other.xml\)"):
        MirrorAdapter(mirror)


def test_mirror_manifest_without_checksums_is_refused(tmp_path):
    mirror = mirror_with(tmp_path)
    (mirror / "manifest.json").write_text(json.dumps([{"url": URL, "file": "doc.xml"}]))
    with pytest.raises(FetchError, match="entry 1 is invalid: .* lacks sha256, bytes"):
        MirrorAdapter(mirror)


# --- 14.1 record writes only inside its folder ---------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://treaties.un.org/doc/..%2F..%2F..%2Fescaped.xml",
    "https://treaties.un.org/%2e%2e/%2E%2E/escaped.xml",
    "https://treaties.un.org/a/..\\..\\..\\escaped.xml",
    "https://treaties.un.org/a.xml?x=/../../../escaped",
])
def test_record_writes_only_inside_its_folder(tmp_path, url):
    archive = RawArchive(tmp_path / "raw")
    archive.store(url, 200, {"Content-Type": "application/xml"}, DOC, datetime.now(timezone.utc))
    target = tmp_path / "deep" / "er" / "recorded"
    [entry] = export(archive, target, "test")
    assert ".." not in Path(entry["file"]).parts and not Path(entry["file"]).is_absolute()
    assert (target / entry["file"]).resolve().is_relative_to(target.resolve())
    assert (target / entry["file"]).read_bytes() == DOC
    assert not any(p.name.startswith("escaped") for p in tmp_path.rglob("*") if target not in p.parents)
    assert mirror_fetch_recorded(tmp_path, target, url) == DOC


def mirror_fetch_recorded(tmp_path: Path, mirror: Path, url: str) -> bytes:
    return Fetcher(RawArchive(tmp_path / "replay"), SETTINGS, mirror).get("untc", url, "xml").body


def test_record_keeps_urls_whose_names_collide_apart(tmp_path):
    archive = RawArchive(tmp_path / "raw")
    urls = ["https://x.test/a b.xml", "https://x.test/a_b.xml"]
    for n, url in enumerate(urls):
        archive.store(url, 200, {"Content-Type": "application/xml"}, DOC + b" " * n, datetime.now(timezone.utc))
    entries = export(archive, tmp_path / "rec", "test")
    assert len({e["file"] for e in entries}) == 2
    for n, url in enumerate(urls):
        assert mirror_fetch_recorded(tmp_path, tmp_path / "rec", url) == DOC + b" " * n


# --- 14.1 confined pending journals ----------------------------------------------------------------------------------

def crashed_after_commit(root: Path, monkeypatch) -> Path:
    """Version 1 published, then version 2 committed (manifest written) but its glob copies not refreshed."""
    with Warehouse(root).locked() as warehouse:
        warehouse.publish("run-v1", wb.batches(1), wb.SNAPSHOT)
    real = publish_module.atomic_write

    def crash_on_copies(path, data):
        if path.parent.parent == root and not path.parent.name.startswith("_"):
            raise OSError("crash")
        real(path, data)

    with monkeypatch.context() as patch:
        patch.setattr(publish_module, "atomic_write", crash_on_copies)
        with pytest.raises(PublishError, match="the next run completes it"):
            Warehouse(root).publish("run-v2", wb.batches(2), wb.SNAPSHOT)
    [journal] = (root / "_pending").glob("*.json")
    return journal


def test_journal_paths_are_relative_so_a_moved_warehouse_still_rolls_forward(tmp_path, monkeypatch):
    journal = crashed_after_commit(tmp_path / "before", monkeypatch)
    files = json.loads(journal.read_text())["files"]
    assert files and all(not Path(p).is_absolute() for move in files for p in move.values())
    moved = tmp_path / "after"
    (tmp_path / "before").rename(moved)
    with Warehouse(moved).locked() as warehouse:
        for key in wb.KEYS:
            for table in wb.TABLES:
                assert warehouse.read_batch(table, key).equals(wb.batch(key, 2)[table])
                copy = pq.read_table(warehouse.current(table, key), schema=table.schema)
                assert copy.equals(wb.batch(key, 2)[table])
    assert not list((moved / "_pending").glob("*"))


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "symlink", "other_file", "other_table", "glob"])
def test_recovery_refuses_a_journal_leading_outside_the_warehouse(tmp_path, monkeypatch, escape):
    root, outside = tmp_path / "warehouse", tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("keep me")
    journal = crashed_after_commit(root, monkeypatch)
    entry = json.loads(journal.read_text())
    if escape == "absolute":
        entry["files"][0]["current"] = str(victim)
        entry["files"][0]["history"] = str(outside / "victim.txt")
    elif escape == "dotdot":
        entry["files"][0]["current"] = "../outside/victim.txt"
    elif escape == "other_file":  # inside the warehouse, but not a table's copy
        entry["files"][0]["current"] = "report/index.html"
    elif escape == "other_table":
        entry["files"][0]["current"] = f"countries/{Path(entry['files'][0]['current']).name}"
    elif escape == "glob":
        entry["files"][0]["current"] = entry["files"][0]["current"].rsplit("/", 1)[0] + "/*.parquet"
    else:
        shutil.rmtree(root / "participation")
        (root / "participation").symlink_to(outside)
    journal.write_text(json.dumps(entry))
    before = {p.name: p.read_bytes() for p in root.rglob("*.parquet") if p.is_file()}
    with pytest.raises(JournalRefused, match=rf"pending journal {journal} refused: .*(outside|not a table file)"):
        with Warehouse(root).locked():
            pytest.fail("a run started over a refused journal")
    assert victim.read_text() == "keep me" and sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert journal.exists(), "kept for inspection"
    assert {p.name: p.read_bytes() for p in root.rglob("*.parquet") if p.is_file()} == before


@pytest.mark.parametrize("named", ["../outside/x.parquet", "*", "_history/participation/*/XCIX-1.*.parquet",
                                   "/etc/passwd", "_history/treaties/snapshot_date=2026-11-28/XCIX-1.run-v1.parquet",
                                   "participation/../../outside/x.parquet", "participation//XCIX-1.parquet"])
def test_a_manifest_naming_a_path_outside_its_table_folder_is_refused(tmp_path, named):
    """Every path a manifest names is a file of its own table's folders: reading it (the flows, status, DuckDB
    views) fails naming the manifest and the path instead of following it."""
    root = tmp_path / "warehouse"
    (tmp_path / "outside").mkdir()
    pq.write_table(wb.batch("XCIX-1", 1)[wb.PARTICIPATION], tmp_path / "outside" / "x.parquet")
    with Warehouse(root).locked() as warehouse:
        warehouse.publish("run-v1", wb.batches(1), wb.SNAPSHOT)
    manifest = json.loads((root / "_manifest.json").read_text())
    manifest["tables"]["participation"]["XCIX-1"]["file"] = named
    (root / "_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PublishError, match=rf"manifest {root}/_manifest.json is refused .*{re.escape(repr(named))} is "
                                           rf"not a table file of 'participation'"):
        Warehouse(root).read(wb.PARTICIPATION)


# --- 13.4 every failure is an outcome --------------------------------------------------------------------------------

def observations(series: str, values: list, m49: list | None = None) -> pa.Table:
    rows = [{"series": series, "release": "2026.Q3.G.01", "m49": (m49 or [4 + i for i in range(len(values))])[i],
             "iso3": None, "is_country": False, "year": 2020, "value": v, "units": "NUMBER",
             "dimensions": [], "footnotes": [], "fetched_at": datetime(2026, 11, 29, tzinfo=timezone.utc),
             "is_latest_release": True}
            for i, v in enumerate(values)]
    return pa.Table.from_pylist(rows, schema=INDICATOR_OBSERVATIONS.schema)


@pytest.fixture(scope="module")
def validator():
    return Validator()


def audit(root: Path, validator, staged: dict, errors: dict | None = None):
    outcomes = audit_and_publish(Warehouse(root), validator, "run-1", (INDICATOR_OBSERVATIONS,),
                                 {k: {INDICATOR_OBSERVATIONS: t} for k, t in staged.items()}, errors or {}, TODAY)
    return {o.key: o for o in outcomes}


def published(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / INDICATOR_OBSERVATIONS.name).glob("*.parquet"))


def test_null_in_a_non_nullable_column_is_quarantined_before_the_publish(tmp_path, validator):
    outcomes = audit(tmp_path, validator, {"XX_GOOD": observations("XX_GOOD", [1.0, 2.0]),
                                           "XX_NULL": observations("XX_NULL", [1.0, 2.0], m49=[4, None])})
    assert outcomes["XX_GOOD"].status == "published"
    bad = outcomes["XX_NULL"]
    assert bad.status == "quarantined"
    assert [(f.expectation, f.kwargs["column"]) for f in bad.failures] == [("expect_column_values_to_not_be_null",
                                                                            "m49")]
    assert "declared not null in the schema" in bad.reason
    assert published(tmp_path) == ["XX_GOOD"]
    assert pq.read_table(bad.quarantine / "indicator_observations.parquet").num_rows == 2


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
def test_non_finite_floats_are_quarantined_and_nulls_are_not(tmp_path, validator, value):
    outcomes = audit(tmp_path, validator, {"XX_GOOD": observations("XX_GOOD", [1.0, None]),
                                           "XX_ODD": observations("XX_ODD", [1.0, value])})
    assert outcomes["XX_GOOD"].status == "published"
    assert outcomes["XX_ODD"].status == "quarantined"
    assert [(f.expectation, f.kwargs["column"]) for f in outcomes["XX_ODD"].failures] == [
        ("expect_column_values_to_be_between", "value")]
    assert "finite numbers only" in outcomes["XX_ODD"].reason
    assert published(tmp_path) == ["XX_GOOD"]


class PassEverything:
    """A validator that lets everything through, to reach the publish with data its schema refuses."""

    def validate(self, table, data, parameters=None):
        return TableResult(table.name, True, {})


class Broken:
    def validate(self, table, data, parameters=None):
        raise RuntimeError("the validation service fell over")


def test_publish_time_arrow_error_fails_only_its_batch(tmp_path):
    outcomes = audit(tmp_path, PassEverything(), {"XX_A": observations("XX_A", [1.0]),
                                                  "XX_NULL": observations("XX_NULL", [1.0], m49=[None]),
                                                  "XX_B": observations("XX_B", [2.0])})
    assert [o.status for o in outcomes.values()] == ["published", "failed", "published"]
    bad = outcomes["XX_NULL"]
    assert bad.reason.startswith("unexpected ArrowInvalid: ") and "m49" in bad.reason
    assert "ArrowInvalid" in (bad.quarantine / "traceback.txt").read_text()
    assert published(tmp_path) == ["XX_A", "XX_B"]
    assert not list((tmp_path / "_staging").glob("*"))


def test_a_validation_that_raises_fails_its_batches_not_the_run(tmp_path):
    outcomes = audit(tmp_path, Broken(), {"XX_A": observations("XX_A", [1.0])},
                     {"XX_GONE": "sdg: https://x.test: HTTP 404"})
    assert {k: o.status for k, o in outcomes.items()} == {"XX_A": "failed", "XX_GONE": "failed"}
    assert outcomes["XX_A"].reason == "unexpected RuntimeError: the validation service fell over"
    assert "the validation service fell over" in (outcomes["XX_A"].quarantine / "traceback.txt").read_text()
    assert not (outcomes["XX_GONE"].quarantine / "traceback.txt").exists()
    assert published(tmp_path) == []


def test_an_exception_from_parsing_or_deriving_is_a_failed_outcome_with_its_traceback(tmp_path, validator):
    def derive():
        raise ValueError("cannot derive revisions: release dates out of order")

    try:
        derive()
    except ValueError as exc:
        error = exc
    parse = ParseError("sdg", "https://x.test/p1", "totalPages 0")
    outcomes = audit(tmp_path, validator, {"XX_GOOD": observations("XX_GOOD", [1.0])},
                     {"XX_DERIVED": error, "XX_PARSE": parse})
    assert outcomes["XX_GOOD"].status == "published"
    assert outcomes["XX_DERIVED"].reason == "unexpected ValueError: cannot derive revisions: release dates out of order"
    assert "in derive" in (outcomes["XX_DERIVED"].quarantine / "traceback.txt").read_text()
    assert outcomes["XX_PARSE"].reason == "sdg: https://x.test/p1: totalPages 0"


def test_a_batch_whose_tables_do_not_match_the_schema_is_quarantined_alone(tmp_path, validator):
    drifted = observations("XX_DRIFT", [1.0]).drop_columns(["units"])
    outcomes = audit(tmp_path, validator, {"XX_GOOD": observations("XX_GOOD", [1.0]), "XX_DRIFT": drifted})
    assert outcomes["XX_GOOD"].status == "published"
    assert outcomes["XX_DRIFT"].status == "quarantined"
    assert "differ from the declared schema" in outcomes["XX_DRIFT"].reason and "(drift)" in outcomes["XX_DRIFT"].reason


# --- issue 10 item 4: a maintenance page served with 200 is retried as transient ------------------------------------

RETRYING = replace(SETTINGS, retries=3, backoff_factor=0)


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("prefect_harness")
def test_a_maintenance_page_that_clears_after_two_attempts_is_fetched_by_the_flow_task(server, tmp_path):
    """The flows' Prefect fetch task (the fetcher's one retry policy) retries an HTML page served with 200 as
    transient: the third attempt gets the document, all three archived; a URL beside it in the same task is
    fetched once."""

    from prefect import flow

    from flows.steps import fetch

    url = server.script("/maintained-twice.xml", faults.maintenance_page(), faults.maintenance_page(),
                        faults.ok(DOC))
    fine = server.script("/fine.xml", faults.ok(DOC))
    run = SimpleNamespace(fetcher=Fetcher(RawArchive(tmp_path), RETRYING), stopping=threading.Event())

    @flow
    def one_fetch():
        return fetch(run, "untc", [url, fine], "xml", None)

    assert [r.body for r in one_fetch()] == [DOC, DOC]
    assert (server.count("/maintained-twice.xml"), server.count("/fine.xml")) == (3, 1)
    kept = [r for r in records(tmp_path) if r["url"] == url]
    assert [r["status"] for r in kept] == [200, 200, 200]
    assert ["HTML page" in (r["error"] or "") for r in kept] == [True, True, False]


def test_fetch_retries_wait_their_backoff_with_jitter(server, tmp_path, monkeypatch):
    """Each wait is the backoff (backoff_factor, doubled per attempt) lengthened by at most the jitter fraction,
    each is announced to the caller, and a failure that cannot pass (404) is not retried at all."""
    from tasks.http import BACKOFF_JITTER

    waits, told = [], []
    cancel = threading.Event()
    monkeypatch.setattr(cancel, "wait", waits.append)
    fetcher = Fetcher(RawArchive(tmp_path), replace(SETTINGS, retries=2, backoff_factor=0.05, backoff_max=1))
    url = server.script("/down.xml", faults.maintenance_page())
    with pytest.raises(FetchError, match="HTML page"):
        fetcher.get("untc", url, "xml", None, cancel, lambda exc, n, wait: told.append((n, wait)))
    assert server.count("/down.xml") == 3
    assert 0.05 <= waits[0] <= 0.05 * (1 + BACKOFF_JITTER) and 0.1 <= waits[1] <= 0.1 * (1 + BACKOFF_JITTER)
    assert told == [(1, waits[0]), (2, waits[1])]
    gone = server.script("/gone.xml", faults.Step(404, {}, b"no"))
    with pytest.raises(FetchError, match="HTTP 404"):
        fetcher.get("untc", gone, "xml", None, cancel)
    assert server.count("/gone.xml") == 1 and len(waits) == 2


def test_a_retry_after_longer_than_the_backoff_is_waited(server, tmp_path, monkeypatch):
    waits = []
    cancel = threading.Event()
    monkeypatch.setattr(cancel, "wait", waits.append)
    fetcher = Fetcher(RawArchive(tmp_path), replace(SETTINGS, retries=1, backoff_factor=0.01, retry_after_max=30))
    url = server.script("/slow-down.xml", faults.retry_after("7"), faults.ok(DOC))
    assert fetcher.get("untc", url, "xml", None, cancel).body == DOC
    assert waits == [7.0]


def test_a_cancelled_fetch_stops_waiting_and_raises_the_last_failure(server, tmp_path):
    """A run that is stopping (SIGTERM) sets `cancel`: the URL being retried gives up instead of waiting."""
    cancel = threading.Event()
    cancel.set()
    fetcher = Fetcher(RawArchive(tmp_path), replace(SETTINGS, retries=3, backoff_factor=3600))
    url = server.script("/down-long.xml", faults.maintenance_page())
    with pytest.raises(FetchError, match="HTML page"):
        fetcher.get("untc", url, "xml", None, cancel)
    assert server.count("/down-long.xml") == 1


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("prefect_harness")
def test_a_page_that_stays_html_fails_after_every_retry(server, tmp_path):
    """The URL's failure is its result in the task's list (the flow makes it that batch's outcome); the task run
    itself completes."""

    from prefect import flow

    from flows.steps import fetch

    url = server.script("/maintained-forever.xml", faults.maintenance_page())
    run = SimpleNamespace(fetcher=Fetcher(RawArchive(tmp_path), RETRYING), stopping=threading.Event())

    @flow
    def one_fetch():
        return fetch(run, "untc", [url], "xml", None)

    (result,) = one_fetch()
    assert isinstance(result, FetchError) and "got an HTML page instead of xml" in str(result)
    assert server.count("/maintained-forever.xml") == RETRYING.retries + 1 == len(records(tmp_path))


def test_a_redirect_to_a_local_file_is_refused_without_retries(server, tmp_path):
    url = server.script("/to-file.xml", faults.Step(302, {"Location": "file:///etc/passwd"}, b"moved"))
    with pytest.raises(FetchError, match=r"file:///etc/passwd refused: scheme 'file' is not http or https") as info:
        Fetcher(RawArchive(tmp_path), SETTINGS).get("untc", url, "xml")
    assert info.value.transient is False
    assert [(r["status"], r["bytes"]) for r in records(tmp_path)] == [(0, 0)]


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("prefect_harness")
def test_an_unexpected_exception_in_a_parser_fails_its_batch_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    """Through the CLI and the real flow: one treaty's parser raises something no one anticipated; that treaty is
    FAILED with the reason and its traceback kept, the other treaty is published, the run exits 1."""
    from conftest import SHARED
    from flows.cli import main
    from tasks import untc

    real = untc.parse_document

    def breaks_on_att(body, url, treaty_id, *rest, **kwargs):
        if treaty_id == "XXVI-8":
            raise IndexError("list index out of range")
        return real(body, url, treaty_id, *rest, **kwargs)

    monkeypatch.setattr(untc, "parse_document", breaks_on_att)
    catalog, warehouse = tmp_path / "catalog.yaml", tmp_path / "wh"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n- {id: XXVI-8, short_name: ATT}\n")
    assert main(["run", "--only", "treaties", "--mirror", str(SHARED), "--treaties", str(catalog),
                 "--warehouse", str(warehouse)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^treaties +XXVI-8 +failed\b", out, re.M), out
    assert "    unexpected IndexError: list index out of range" in out
    assert "in breaks_on_att" in next((warehouse / "_quarantine").glob("*/XXVI-8/traceback.txt")).read_text()
    assert (warehouse / "participation" / "XVIII-12-c.parquet").exists()
    assert not (warehouse / "participation" / "XXVI-8.parquet").exists()


# --- properties: names derived from outside never leave their folder ------------------------------------------------

PATHLIKE = st.lists(st.sampled_from(["a", ".", "..", "%2e", "%2E%2e", "%2F", "%5C", "\\", "/", "//", "x.xml", "?", "=",
                                     "&", "%00", " ", "~", "%252e"]), max_size=12).map("".join)
FAST = settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(PATHLIKE)
def test_recorded_names_stay_inside_the_record_folder(path):
    name = mirror_path(f"https://treaties.un.org/{path}", "application/xml")
    parts = Path(name).parts
    assert not Path(name).is_absolute() and ".." not in parts and "." not in parts
    assert parts[0] == "treaties.un.org" and len(parts) >= 2
    assert posixpath.normpath(name) == name


@FAST
@given(st.lists(PATHLIKE.map(lambda p: p.replace("?", "").replace("%", "")), min_size=3, max_size=3))
def test_a_journal_never_touches_anything_outside_the_warehouse(paths):
    with tempfile.TemporaryDirectory() as scratch:
        root, outside = Path(scratch) / "wh", Path(scratch) / "outside"
        (root / "_pending").mkdir(parents=True)
        outside.mkdir()
        (outside / "victim").write_bytes(b"keep")
        kept = root / "_history" / "t" / "snapshot_date=x" / "s.parquet"
        kept.parent.mkdir(parents=True)
        kept.write_bytes(b"kept")
        files = [dict(zip(("history", "current"), paths)), {"history": paths[2], "current": paths[0]},
                 {"history": "_history/t/snapshot_date=x/s.parquet", "current": paths[1]}]
        (root / "_pending" / "run.json").write_text(json.dumps({"commit": "run", "files": files}))
        try:
            Warehouse(root).recover()
        except JournalRefused:
            assert kept.read_bytes() == b"kept", "nothing applied"
        assert sorted(os.listdir(scratch)) == ["outside", "wh"] and list(outside.iterdir()) == [outside / "victim"]
        assert (outside / "victim").read_bytes() == b"keep"


@pytest.mark.usefixtures("prefect_harness")
def test_a_mirror_manifest_mapping_one_url_twice_exits_2(tmp_path, capsys):
    from conftest import make_mirror
    from flows.cli import main

    mirror = make_mirror(tmp_path)
    entries = json.loads((mirror / "manifest.json").read_text())
    firearms = next(e for e in entries if e["url"].endswith("/XVIII-12-c.en.xml"))
    sibling = next(e for e in entries if e["url"].endswith("/XVIII-12-b.en.xml"))
    (mirror / "manifest.json").write_text(json.dumps([*entries, {**sibling, "url": firearms["url"]}]))
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n")
    assert main(["run", "--only", "treaties", "--mirror", str(mirror), "--treaties", str(catalog),
                 "--warehouse", str(tmp_path / "wh")]) == 2
    assert f"maps {firearms['url']} a second time" in capsys.readouterr().err
    assert not (tmp_path / "wh" / "participation").exists()


def test_a_recorded_mirror_keeps_the_as_of_its_responses_spoke_for(tmp_path):
    """Recording a replayed mirror keeps each entry's as_of (served as the Date header), not the day of recording."""
    response = mirror_fetch(tmp_path, mirror_with(tmp_path))
    [entry] = export(RawArchive(tmp_path / "raw"), tmp_path / "recorded", "test")
    assert (entry["url"], entry["as_of"], entry["sha256"]) == (URL, "2018-01-15", response.sha256)
    assert mirror_fetch(tmp_path / "again", tmp_path / "recorded").headers["Date"] == "Mon, 15 Jan 2018 00:00:00 GMT"

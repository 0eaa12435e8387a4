"""The warehouse on an object store: a real S3-compatible server (moto's standalone server, started here on
127.0.0.1 and stopped at the end) holding a full offline run, read back by pyarrow, polars and DuckDB; SIGKILLed
publishes; a second concurrent run; an unchanged rerun; credentials that never leak.

Every request the server answers is in its log, so the objects a run writes are counted from its PUT lines.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import warehouse_batches as wb
from conftest import SHARED
from tasks.publish import LeaseLost, Warehouse, WarehouseBusy, fingerprint

TESTS = Path(__file__).parent
BUCKET = "armswatch-test"
SECRET = "s3cr3t-" + uuid.uuid4().hex  # must never appear in output, logs, artifacts, alerts or objects
KILLS = 8
SEED = 20261129


class Server:
    def __init__(self, log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.endpoint, self.log = f"http://127.0.0.1:{port}", log
        self.proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p",
                                      str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT)

    def puts(self, since: int = 0) -> list[str]:
        """Keys PUT (object writes, copies included) since the log had `since` lines."""
        lines = self.log.read_text().splitlines()[since:]
        return [m.group(1) for m in (re.search(r'"PUT /([^? ]+)\S* HTTP', line) for line in lines) if m]

    def mark(self) -> int:
        return len(self.log.read_text().splitlines())


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("s3") / "server.log")
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ACCESS_KEY_ID": "armswatch-test-key", "AWS_SECRET_ACCESS_KEY": SECRET,
                            "AWS_ENDPOINT_URL": server.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}.items():
            env.setenv(name, value)
        import boto3

        try:
            for _ in range(300):  # the server starts within seconds; bounded
                try:
                    boto3.client("s3").create_bucket(Bucket=BUCKET)
                    break
                except Exception:
                    if server.proc.poll() is not None:
                        raise
                    time.sleep(0.1)
            yield server
        finally:
            server.proc.terminate()
            server.proc.wait(timeout=30)


def url(name: str) -> str:
    return f"s3://{BUCKET}/{name}-{uuid.uuid4().hex[:8]}"


# --- a full offline run ------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.timeout(1200)
def test_full_offline_run_on_s3_reads_back_everywhere_and_an_unchanged_rerun_writes_no_data(s3, capsys, caplog,
                                                                                             tmp_path):
    import duckdb
    import polars as pl
    import pyarrow.dataset as ds
    import s3fs
    from prefect.client.orchestration import get_client

    from flows.cli import main
    from flows.refresh import refresh
    from flows.steps import reports_of
    from tasks.alerts import batch_rows, failure_alert, summary_lines, summary_markdown
    from tasks.tables import PARTICIPATION, TREATIES

    root = url("full")
    reports = reports_of(refresh(warehouse=root, mirror=str(SHARED), return_state=True))
    statuses = {o.key: o.status for r in reports for o in r.outcomes}
    assert statuses["XVIII-12"] == "quarantined" and statuses["XXVI-8"] == "published", statuses
    quarantined = next(o for r in reports for o in r.outcomes if o.key == "XVIII-12")
    assert str(quarantined.quarantine).startswith(f"{root}/_quarantine/")
    assert (quarantined.quarantine / "reason.txt").read_text().startswith("failed validation")

    warehouse = Warehouse(root)
    participation = warehouse.read(PARTICIPATION)
    treaties = warehouse.read(TREATIES)
    assert sorted(treaties["mtdsg_no"].to_pylist()) == ["XVIII-12-a", "XVIII-12-b", "XVIII-12-c", "XXVI-2", "XXVI-8"]
    files = [str(f) for f in warehouse.files(PARTICIPATION)]
    assert files and all(f.startswith(f"{root}/_history/participation/") for f in files)

    # pyarrow, polars and DuckDB read the files the manifest names: the same rows
    fs = s3fs.S3FileSystem()
    arrow = ds.dataset([f.removeprefix("s3://") for f in files], filesystem=fs, format="parquet").to_table()
    assert arrow.num_rows == participation.num_rows > 500
    frame = pl.scan_parquet(files).select(pl.len()).collect().item()
    assert frame == participation.num_rows
    con = duckdb.connect()  # the README's DuckDB read, from the manifest alone (fsspec here: no httpfs offline)
    con.register_filesystem(fs)
    con.sql(f"set variable files = (select list('{root}/' || f) from (select unnest(files.participation) as f "
            f"from read_json('{root}/_manifest.json')))")
    assert con.sql("select count(*) from read_parquet(getvariable('files'))").fetchall() == [(participation.num_rows,)]
    # ... and the glob copies hold the same current data
    assert pl.scan_parquet(f"{root}/participation/*.parquet").select(pl.len()).collect().item() == arrow.num_rows
    panel = pl.read_parquet([str(f) for f in warehouse.files("country_year_panel")])
    assert panel.height > 0 and panel.equals(pl.read_parquet(f"{root}/country_year_panel/*.parquet"))

    # credentials: in no output, log, artifact, alert, summary or stored object
    leaks = ["\n".join(summary_lines(reports)), str(failure_alert("run", reports)),
             summary_markdown("run", reports), json.dumps(batch_rows(reports), default=str), caplog.text,
             "".join(capsys.readouterr())]
    with get_client(sync_client=True) as client:
        leaks += [json.dumps(a.model_dump(mode="json")) for a in client.read_artifacts()]
    assert not [text for text in leaks if SECRET in text]
    stored = fs.find(root.removeprefix("s3://"))
    assert not [key for key in stored if SECRET.encode() in fs.cat_file(key)]

    # `armswatch status` reads the bucket: the manifest's files, the open quarantine, the run log
    assert main(["status", "--warehouse", root]) == 1  # UNTOC 2018 is quarantined
    shown = capsys.readouterr().out
    assert re.search(r"^participation +XXVI-8 +\d+ ", shown, re.M) and "treaties / XVIII-12: quarantined" in shown
    # armswatch.duckdb is in the bucket; its views name the files by URL (read here through fsspec, as a reader
    # with httpfs would read them), so it answers from anywhere
    copy = tmp_path / "armswatch.duckdb"
    copy.write_bytes(fs.cat_file(f"{root.removeprefix('s3://')}/armswatch.duckdb"))
    with duckdb.connect() as con:
        con.register_filesystem(fs)
        con.execute(f"attach '{copy}' as analyst (read_only)")
        assert con.sql("select count(*) from analyst.participation").fetchall() == [(participation.num_rows,)]
        assert con.sql("select count(*) from analyst.firearms_seizures_latest").fetchall()[0][0] > 10000
        [(sql,)] = con.sql("select sql from duckdb_views() where view_name = 'countries'").fetchall()
        assert f"'{root}/_history/countries/" in sql

    # an unchanged rerun through the CLI writes no data file, copy, history or manifest (only the raw archive, the
    # lease, the run log and the incident state)
    mark, manifest = s3.mark(), (warehouse.root / "_manifest.json").read_bytes()
    assert main(["run", "--mirror", str(SHARED), "--warehouse", root]) == 1  # UNTOC 2018 is quarantined again
    prefix = root.removeprefix("s3://") + "/"
    written = [key.removeprefix(prefix) for key in s3.puts(mark)]
    kinds = Counter(key.split("/")[0] for key in written)
    assert set(kinds) <= {"_raw", "_lock.json", "_runs", "_state"}, kinds
    assert (warehouse.root / "_manifest.json").read_bytes() == manifest
    out = capsys.readouterr()
    assert re.search(r"^treaties +XXVI-8 +unchanged\b", out.out, re.M) and "total: 0 published" in out.out, out.out
    assert SECRET not in out.out + out.err
    print(f"\nunchanged rerun: PUTs by top-level folder {dict(kinds)}")


# --- crash safety and the lock -----------------------------------------------------------------------------------

def child(root: str, version: int, run_id: str, mode: str = "publish", lease: float = 2) -> subprocess.Popen:
    env = dict(os.environ, LEASE_SECONDS=str(lease))
    return subprocess.Popen([sys.executable, "-c", wb.CHILD, str(TESTS), root, str(version), run_id, mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def version_of(warehouse: Warehouse, old: int, new: int) -> int:
    """old or new when every batch file the manifest names holds that version; fails on a mix."""
    current = {(t.name, k): fingerprint(warehouse.read_batch(t, k)) for k in wb.KEYS for t in wb.TABLES}
    for version in (old, new):
        if current == {(t.name, k): fingerprint(d) for k, b in wb.batches(version).items() for t, d in b.items()}:
            return version
    pytest.fail(f"the manifest names neither all version {old} nor all version {new}")


def assert_clean(warehouse: Warehouse, history_before: set[str]) -> None:
    fs, root = warehouse.root.fs, warehouse.root.path
    assert not fs.find(f"{root}/_pending"), "nothing pending after recovery"
    named = {str(f.path) for t in wb.TABLES for f in warehouse.files(t)}
    assert set(fs.find(f"{root}/_history")) <= named | history_before, "no uncommitted file left"
    for t in wb.TABLES:
        for k in wb.KEYS:
            assert fingerprint(pq.read_table(fs.open(f"{root}/{t.name}/{k}.parquet"), schema=t.schema)) == \
                fingerprint(warehouse.read_batch(t, k)), "the glob copies follow the manifest"


@pytest.mark.timeout(600)
def test_sigkill_at_random_points_of_an_s3_publish_leaves_old_or_new(s3):
    """KILLS publishes killed after a seeded random delay within the time one publish takes (calibrated by an
    unkilled one): right after each kill a reader following the manifest sees all-old or all-new; the next run
    (taking over the dead run's expired lease) rolls the publish back or forward and leaves nothing pending."""
    root, rng, landed = url("kill"), random.Random(SEED), Counter()
    warehouse = Warehouse(root)
    with warehouse.locked():
        warehouse.publish("run-v1", wb.batches(1), wb.SNAPSHOT)
    proc = child(root, 2, "run-v2")
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    assert proc.stdout.readline().strip() == "done"
    span = time.monotonic() - started
    proc.wait(timeout=30)
    version = 2
    for kill in range(KILLS):
        history = set(warehouse.root.fs.find(f"{warehouse.root.path}/_history"))
        new = version + 1
        proc = child(root, new, f"run-{kill:02d}")
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, span * 1.2))
        proc.send_signal(signal.SIGKILL)
        out = proc.communicate(timeout=30)[0]
        seen = version_of(warehouse, version, new)
        journals = warehouse.root.fs.find(f"{warehouse.root.path}/_pending")
        if journals:
            committed = json.loads(warehouse.root.fs.cat_file(journals[0]))["commit"] == warehouse.manifest()["commit"]
            where = "committed, copies pending: rolled forward" if committed else "not committed: rolled back"
        else:
            where = "after publish" if "done" in out or seen == new else "before publish"
        landed[where] += 1
        with warehouse.locked(timeout=60):  # waits out the dead child's lease, then recovers
            pass
        after = version_of(warehouse, version, new)
        assert after == seen, where
        assert_clean(warehouse, history)
        version = after
    print(f"\n{KILLS} SIGKILLs of S3 publishes: {dict(sorted(landed.items()))}")
    assert sum(landed.values()) == KILLS


def test_a_second_run_is_refused_naming_the_holder_and_an_expired_lease_is_taken_over(s3):
    root = url("lock")
    holder = child(root, 1, "run-holder", mode="hold", lease=600)
    try:
        assert holder.stdout.readline().split() == ["locked", str(holder.pid)]
        with pytest.raises(WarehouseBusy, match=rf"warehouse {re.escape(root)} is in use by another run "
                                                rf"\(host \S+ pid {holder.pid} since .*; its lease "
                                                rf"{re.escape(root)}/_lock.json runs until .*\)"):
            with Warehouse(root).locked(timeout=0.5):
                pytest.fail("a second run entered the locked warehouse")
    finally:
        holder.kill()
        holder.wait(timeout=10)
    lock = Warehouse(root).root / "_lock.json"
    expired = datetime.now(timezone.utc) - timedelta(seconds=1)
    lock.write_bytes(json.dumps({"holder": f"host gone pid {holder.pid}",
                                 "expires": expired.isoformat()}).encode())
    with Warehouse(root).locked(timeout=0):
        holder_now = json.loads(lock.read_bytes())["holder"]
        assert holder_now.startswith(f"host {socket.gethostname()} pid {os.getpid()} since ")
    assert not lock.exists(), "released"


@pytest.mark.usefixtures("prefect_harness")
def test_the_cli_refuses_a_second_run_naming_the_holder(s3, capsys):
    from flows.cli import main

    root = url("cli-lock")
    with Warehouse(root).locked():
        # 3: infrastructure (the lock is held by another run)
        assert main(["run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", root]) == 3
    err = capsys.readouterr().err
    assert f"warehouse {root} is in use by another run (host {socket.gethostname()} pid {os.getpid()}" in err


def test_a_run_whose_lease_was_taken_over_publishes_nothing(s3, monkeypatch):
    monkeypatch.setattr("tasks.publish.LEASE_SECONDS", 0.3)  # renewed every 0.1 s
    root = url("lost")
    warehouse = Warehouse(root)
    with warehouse.locked() as held:
        (warehouse.root / "_lock.json").write_bytes(b'{"holder": "another run", "expires": "2999-01-01T00:00:00"}')
        for _ in range(600):  # until the renewal notices (bounded)
            if held._lock.lost:
                break
            time.sleep(0.05)
        with pytest.raises(LeaseLost, match="taken over by another run"):
            held.publish("run-late", wb.batches(1), wb.SNAPSHOT)
    assert warehouse.manifest()["tables"] == {}
    assert not warehouse.root.fs.find(f"{warehouse.root.path}/_history")


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_paused_past_its_lease_cannot_overwrite_the_publish_of_the_run_that_took_over(s3, capsys,
                                                                                           monkeypatch):
    """Run A (the CLI) pauses after its last lock check, just before its manifest write; meanwhile its lease expires
    and run B takes it over and publishes. A resumes: its commit is fenced (the manifest is no longer the version A
    read), A exits 3 and B's publish stays as B left it."""
    from flows.cli import main

    root = url("fenced")
    real, seen = Warehouse._write_manifest, {}

    def paused(self, data):
        if not seen:  # A's first commit: while A is paused, B takes over the expired lease and publishes
            seen["a"] = "paused"
            lock = Warehouse(root).root / "_lock.json"
            lock.write_bytes(json.dumps({"holder": "run A, paused",
                                         "expires": datetime.now(timezone.utc).isoformat()}).encode())
            with Warehouse(root).locked(timeout=0) as b:
                b.publish("run-b", wb.batches(7), wb.SNAPSHOT)
                seen["b"] = b.manifest()
        return real(self, data)

    monkeypatch.setattr(Warehouse, "_write_manifest", paused)
    assert main(["run", "--only", "m49", "--mirror", str(SHARED), "--warehouse", root]) == 3
    err = capsys.readouterr().err.strip().splitlines()  # the progress bars, then one line
    assert err[-1].startswith(f"armswatch: warehouse {root}: another run committed _manifest.json since this run "
                              f"read it"), err
    after = Warehouse(root)
    assert after.manifest() == seen["b"] and "countries" not in after.manifest()["tables"]
    assert {(t.name, k): fingerprint(after.read_batch(t, k)) for k in wb.KEYS for t in wb.TABLES} == {
        (t.name, k): fingerprint(d) for k, b in wb.batches(7).items() for t, d in b.items()}
    assert not after.root.fs.find(f"{after.root.path}/_history/countries"), "A left no data file"


@pytest.mark.usefixtures("prefect_harness")
def test_a_bucket_that_cannot_be_written_exits_3(s3, capsys):
    from flows.cli import main

    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/armswatch"
    assert main(["run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", missing]) == 3
    err = capsys.readouterr().err
    assert err.strip().startswith(f"armswatch: warehouse {missing} cannot be locked for writing: ") and SECRET not in err


@pytest.mark.parametrize(("warehouse", "problem"), [
    ("nosuchscheme://bucket/x", "unsupported warehouse URL"),
    ("s3://key:secret@bucket/x", "carries credentials"),
    ("s3://", "names no bucket"),
    ("s3:", "is not of the form scheme://bucket/prefix"),
    ("s3:name", "is not of the form scheme://bucket/prefix"),
    ("s3:///x", "names no bucket"),
    ("s3://bucket/x?secret=1", "has a query string or fragment"),
    ("s3://bucket/x#secret", "has a query string or fragment"),
    ("s3://bucket/a/../x", "'..' segment"),
    ("s3://bucket//x", "empty, '.' or '..' segment"),
    ("s3://bucket/x*", "glob character"),
    ("s3://bucket:9000/x", "port"),
    ("file://otherhost/x", "names host"),
])
@pytest.mark.parametrize("command", ["run", "status"])
def test_unusable_warehouse_urls_exit_2_and_write_nothing(warehouse, problem, command, capsys, tmp_path, monkeypatch):
    from flows.cli import main

    monkeypatch.chdir(tmp_path)
    assert main([command, "--warehouse", warehouse]) == 2
    err = capsys.readouterr().err
    assert problem in err and "secret" not in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [], "no local folder such as ./s3: was written"

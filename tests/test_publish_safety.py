"""Warehouse crash safety and concurrency: SIGKILLed publishes, two runs at once, disk full, idempotence.

The killed publishes run in child processes (`warehouse_batches.CHILD`) over a warehouse holding version N and
publishing version N + 1 of three batches x two tables. Right after each kill, a reader following the manifest
sees every batch at version N or N + 1, the same version for every file of the publish; after
`Warehouse(root).locked()` (which runs recover()) the glob copies `<table>/<batch>.parquet` hold that version too,
nothing is pending, and no file of an uncommitted publish is left.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import warehouse_batches as wb
from tasks.publish import PublishError, Warehouse, WarehouseBusy, fingerprint

TESTS = Path(__file__).parent
KILLS = 25
SEED = 20261128


def fingerprints(version: int) -> dict[tuple[str, str], str]:
    return {(t.name, key): fingerprint(data) for key, batch in wb.batches(version).items()
            for t, data in batch.items()}


def state(root: Path) -> dict[tuple[str, str], str]:
    """Fingerprint of every current batch file the manifest names, each read back completely with its schema."""
    warehouse = Warehouse(root)
    return {(t.name, key): fingerprint(warehouse.read_batch(t, key)) for key in wb.KEYS for t in wb.TABLES}


def copies(root: Path) -> dict[tuple[str, str], str]:
    """Fingerprint of every glob copy `<table>/<batch>.parquet`."""
    return {(t.name, key): fingerprint(pq.read_table(root / t.name / f"{key}.parquet", schema=t.schema))
            for key in wb.KEYS for t in wb.TABLES}


def version_of(root: Path, old: int, new: int) -> int:
    """old or new when every file of the publish holds that version; fails on a mixed or foreign state."""
    current = state(root)
    versions = {v for v in (old, new) if current == fingerprints(v)}
    assert versions, f"files hold neither all version {old} nor all version {new}: {describe(current, old, new)}"
    return versions.pop()


def describe(current: dict, old: int, new: int) -> dict:
    names = {fp: f"v{old}" for fp in fingerprints(old).values()} | {fp: f"v{new}" for fp in fingerprints(new).values()}
    return {f"{t}/{k}": names.get(fp, "other") for (t, k), fp in current.items()}


def pending(root: Path) -> list[Path]:
    return sorted((root / "_pending").glob("*"))


def assert_clean(root: Path) -> None:
    """Nothing pending, no temporary file anywhere, the glob copies equal the manifest's files, every history file
    a readable Parquet of a committed run."""
    assert pending(root) == []
    assert [p for p in root.rglob(".*.tmp")] == []
    for table in wb.TABLES:
        assert sorted(p.name for p in (root / table.name).iterdir()) == [f"{k}.parquet" for k in sorted(wb.KEYS)]
    assert copies(root) == state(root)
    for path in (root / "_history").rglob("*.parquet"):
        pq.read_table(path)


def child(root: Path, version: int, run_id: str, mode: str = "publish", kill_at: int = 0) -> subprocess.Popen:
    env = dict(os.environ, KILL_AT=str(kill_at))
    return subprocess.Popen([sys.executable, "-c", wb.CHILD, str(TESTS), str(root), str(version), run_id, mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen) -> list[str]:
    out, _ = proc.communicate(timeout=30)
    return out.splitlines()


@pytest.fixture
def warehouse_v1(tmp_path) -> Path:
    root = tmp_path / "warehouse"
    with Warehouse(root).locked() as warehouse:
        warehouse.publish("run-v1", wb.batches(1), wb.SNAPSHOT)
    return root


def test_calibration_child_publishes_completely(warehouse_v1):
    lines = finish(child(warehouse_v1, 2, "run-v2"))
    assert lines[0] == "ready" and "done" in lines
    with Warehouse(warehouse_v1).locked():
        assert version_of(warehouse_v1, 1, 2) == 2
    assert_clean(warehouse_v1)


@pytest.mark.timeout(120)
def test_sigkill_at_random_points_never_leaves_a_mixed_batch(warehouse_v1):
    """KILLS kills, each after a seeded random number of the publish's file-system steps (as the child reports
    them) plus a random 0-3 ms, so they spread over staging, commit, renames and cleanup at any machine speed."""
    root, rng, landed = warehouse_v1, random.Random(SEED), Counter()
    steps = len(kill_points(root))
    version = 2
    for kill in range(KILLS):
        new = version + 1
        proc = child(root, new, f"run-{kill:02d}")
        lines = [proc.stdout.readline().strip()]
        assert lines == ["ready"]
        lines += [proc.stdout.readline().strip() for _ in range(rng.randint(0, steps))]
        time.sleep(rng.uniform(0, 0.003))
        proc.send_signal(signal.SIGKILL)
        lines += (proc.stdout.read() or "").splitlines()
        proc.wait(timeout=10)
        where = classify(root, lines, version, new)
        landed[where] += 1
        seen = version_of(root, version, new)  # before any recovery: what a reader of the manifest sees
        with Warehouse(root).locked():
            pass
        after = version_of(root, version, new)
        assert after == seen == (version if where in ("before publish", "mid-publish, written: rolled back")
                                 else new), where
        assert_clean(root)
        if after == version:
            assert not list((root / "_history").rglob(f"*.run-{kill:02d}.parquet")), "uncommitted files removed"
        version = after
    print(f"\n{KILLS} SIGKILLs: {dict(sorted(landed.items()))}")
    assert sum(landed.values()) == KILLS


def classify(root: Path, lines: list[str], old: int, new: int) -> str:
    """Where a kill landed, from the child's output and the state it left (before recovery)."""
    journals = [p for p in pending(root) if p.suffix == ".json"]
    if journals:
        commit = json.loads(journals[0].read_text())["commit"]
        if json.loads((root / "_manifest.json").read_text())["commit"] == commit:
            return "mid-publish, committed: rolled forward"
        return "mid-publish, written: rolled back"
    if "done" in lines or version_of(root, old, new) == new:
        return "after publish"
    return "before publish"


def kill_points(root: Path) -> list[str]:
    """The file-system steps of one publish (version 2 over 1), in order, from an unkilled child."""
    lines = finish(child(root, 2, "run-points"))
    with Warehouse(root).locked():
        assert version_of(root, 1, 2) == 2
    return [line.removeprefix("step ") for line in lines[: lines.index("done")] if line.startswith("step ")]


@pytest.mark.timeout(180)
def test_sigkill_before_every_step_of_a_publish(warehouse_v1):
    """Deterministic complement: a kill just before each os.replace / os.unlink of the publish (fsync and mkdir
    steps fall between those). Before the manifest's rename the old version stays; after it, the new one."""
    root = warehouse_v1
    steps = kill_points(root)
    commit = steps.index("replace _manifest.json") + 1
    points = [i for i, s in enumerate(steps, 1) if s.split()[0] in ("replace", "unlink")]
    # the pending journal, each history file, the manifest, each copy, removing the journal
    assert len(points) == 1 + len(wb.KEYS) * len(wb.TABLES) + 1 + len(wb.KEYS) * len(wb.TABLES) + 1
    version = 2
    for k in points:
        new = version + 1
        proc = child(root, new, f"run-kill-{k:02d}", kill_at=k)
        finish(proc)
        assert proc.returncode == -signal.SIGKILL, (k, steps[k - 1])
        assert version_of(root, version, new) == (new if k > commit else version), (k, steps[k - 1])
        with Warehouse(root).locked():
            pass
        version = version_of(root, version, new)
        assert version == (new if k > commit else new - 1), (k, steps[k - 1])
        assert_clean(root)


def test_second_run_is_refused_while_the_first_holds_the_lock_and_recovers_after_sigkill(tmp_path):
    root = tmp_path / "warehouse"
    holder = child(root, 1, "run-holder", mode="hold")
    try:
        assert holder.stdout.readline().split() == ["locked", str(holder.pid)]
        for timeout in (0, 0.2):
            with pytest.raises(WarehouseBusy, match=rf"warehouse {re.escape(str(root))} is in use by another run "
                                                    rf"\(pid {holder.pid} since .*\); try again when it has finished"):
                with Warehouse(root).locked(timeout=timeout):
                    pytest.fail("a second run entered the locked warehouse")
        assert (root / ".lock.owner").read_text().startswith(f"pid {holder.pid} ")
    finally:
        holder.kill()
        holder.wait(timeout=10)
    with Warehouse(root).locked(timeout=0):
        assert (root / ".lock.owner").read_text().startswith(f"pid {os.getpid()} ")
    assert not (root / ".lock.owner").exists()


# --- failures while publishing ---------------------------------------------------------------------------------

STEPS = ("replace", "mkdir", "fsync")


def disk_full_at(monkeypatch, k: int) -> list[str]:
    """Make the k-th file-system step of the next publish raise ENOSPC; returns the steps seen so far.

    A mkdir of a folder that exists is no step: it fails with EEXIST whatever the free space."""
    seen: list[str] = []
    for name in STEPS:
        real = getattr(os, name)

        def step(*args, _real=real, _name=name, **kwargs):
            if _name == "mkdir" and Path(args[0]).exists():
                return _real(*args, **kwargs)
            seen.append(f"{_name} {Path(str(args[-1] if _name == 'replace' else args[0])).name}")
            if len(seen) == k:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, step)
    return seen


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and not p.name.startswith(".lock")}


def test_disk_full_at_every_step_fails_clearly_and_never_mixes(warehouse_v1, monkeypatch):
    """ENOSPC at each file-system step of a publish (tests run as root, so chmod cannot deny; the failure is
    injected). Before the manifest is committed: PublishError, files byte-identical, nothing pending. After it:
    PublishError saying the next run completes it, and the next run's recover() does."""
    root = warehouse_v1
    with monkeypatch.context() as patch:
        total = disk_full_at(patch, 0)
        Warehouse(root).publish("run-count", wb.batches(2), wb.SNAPSHOT)
    steps = list(total)
    commit = steps.index("replace _manifest.json") + 1
    version = 2
    for k in range(1, len(steps) + 1):
        new = version + 1
        before = snapshot(root)
        with monkeypatch.context() as patch:
            disk_full_at(patch, k)
            with pytest.raises(PublishError) as info:
                Warehouse(root).publish(f"run-full-{k:02d}", wb.batches(new), wb.SNAPSHOT)
        message = str(info.value)
        assert f"publishing to {root} failed" in message and "No space left on device" in message, message
        if k <= commit:
            assert "published data left as it was" in message
            assert snapshot(root) == before, (k, steps[k - 1])
            assert pending(root) == []
        else:
            assert "the next run completes it" in message, message
        with Warehouse(root).locked():
            pass
        version = version_of(root, version, new)
        assert version == (new if k > commit else new - 1), (k, steps[k - 1])
        assert_clean(root)


@pytest.mark.skipif(os.geteuid() == 0, reason="runs as root: chmod does not deny root (see the disk-full test)")
def test_permission_denied_while_staging_fails_clearly(warehouse_v1):
    root = warehouse_v1
    before = snapshot(root)
    (root / "_pending").mkdir(exist_ok=True)
    (root / "_pending").chmod(0o555)
    try:
        with pytest.raises(PublishError, match=rf"publishing to {re.escape(str(root))} failed, published data left "
                                               r"as it was: .*Permission denied"):
            Warehouse(root).publish("run-denied", wb.batches(2), wb.SNAPSHOT)
    finally:
        (root / "_pending").chmod(0o755)
    assert snapshot(root) == before
    assert pending(root) == []


# --- idempotence ------------------------------------------------------------------------------------------------

def inventory(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under root (files and folders) with its inode and, for files, its bytes."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*")) if not p.name.startswith(".lock")}


def history(root: Path) -> set[str]:
    return {str(p.relative_to(root / "_history")) for p in (root / "_history").rglob("*.parquet")}


def test_publishing_the_same_data_twice_writes_nothing(warehouse_v1):
    root, warehouse = warehouse_v1, Warehouse(warehouse_v1)
    before = inventory(root)
    again = warehouse.publish("run-again", wb.batches(1), date(2027, 1, 1))
    assert (again.changed, sorted(again.unchanged)) == ({}, sorted(wb.KEYS))
    later = {k: wb.batch(k, 1, fetched_at=datetime(2027, 1, 1, tzinfo=timezone.utc)) for k in wb.KEYS}
    refetched = warehouse.publish("run-refetched", later, date(2027, 1, 2))
    assert refetched.changed == {}, "fetched_at alone is volatile: not a change"
    assert inventory(root) == before
    assert not list((root / "_history").rglob("snapshot_date=2027-*"))


def test_same_data_from_other_bytes_records_them_in_the_manifest_only(warehouse_v1):
    """Bytes that changed without changing the data (a re-serialised document): no data file is written, the
    manifest names the new sources, so the next run knows the batch is built from them (Run.skip)."""
    root, warehouse = warehouse_v1, Warehouse(warehouse_v1)
    with Warehouse(root).locked() as locked:
        locked.publish("run-a", wb.batches(1), wb.SNAPSHOT, sources={(t.name, k): ["a" * 64] for t in wb.TABLES
                                                                   for k in wb.KEYS})
    before, old_history = inventory(root), history(root)
    sources = {(t.name, k): ["b" * 64, "c" * 64] for t in wb.TABLES for k in wb.KEYS}
    with Warehouse(root).locked() as locked:
        result = locked.publish("run-b", wb.batches(1), wb.SNAPSHOT, sources=sources)
        assert locked.built_from(wb.TREATIES, wb.KEYS[0]) == f"{'b' * 64},{'c' * 64}", "seen by the run itself"
    assert (result.changed, sorted(result.unchanged)) == ({}, sorted(wb.KEYS))
    after = inventory(root)
    assert {k: v for k, v in after.items() if k != "_manifest.json"} == {
        k: v for k, v in before.items() if k != "_manifest.json"}, "no data file or copy rewritten"
    assert history(root) == old_history and pending(root) == []
    assert warehouse.built_from(wb.PARTICIPATION, wb.KEYS[2]) == f"{'b' * 64},{'c' * 64}"
    assert warehouse.built_from(wb.PARTICIPATION, "XCIX-404") is None
    again = inventory(root)
    with Warehouse(root).locked() as locked:
        locked.publish("run-c", wb.batches(1), wb.SNAPSHOT, sources=sources)
    assert inventory(root) == again, "the same sources again: nothing written, not even the manifest"


def test_force_republishes_everything(warehouse_v1):
    root, warehouse = warehouse_v1, Warehouse(warehouse_v1)
    before, old_history = inventory(root), history(root)
    forced = warehouse.publish("run-forced", wb.batches(1), wb.SNAPSHOT, force=True)
    assert forced.changed == {k: [t.name for t in wb.TABLES] for k in wb.KEYS}
    after = inventory(root)
    for table in wb.TABLES:
        for key in wb.KEYS:
            name = f"{table.name}/{key}.parquet"
            assert after[name][0] != before[name][0], f"{name} was not rewritten"
            new, old = pq.read_table(io.BytesIO(after[name][1])), pq.read_table(io.BytesIO(before[name][1]))
            assert new.drop_columns("run_id").equals(old.drop_columns("run_id")), "same data"
            assert set(new["run_id"].to_pylist()) == {"run-forced"} and set(old["run_id"].to_pylist()) == {"run-v1"}
    assert history(root) - old_history == {
        f"{t.name}/snapshot_date={wb.SNAPSHOT}/{k}.run-forced.parquet" for t in wb.TABLES for k in wb.KEYS}
    assert_clean(root)


def test_changing_one_batch_rewrites_only_that_batch(warehouse_v1):
    root, warehouse = warehouse_v1, Warehouse(warehouse_v1)
    changed_key = wb.KEYS[1]
    data = wb.batches(1)
    data[changed_key][wb.PARTICIPATION] = wb.batch(changed_key, 9)[wb.PARTICIPATION]
    before, old_history = inventory(root), history(root)
    result = warehouse.publish("run-one", data, wb.SNAPSHOT)
    assert result.changed == {changed_key: [wb.PARTICIPATION.name]}
    assert sorted(result.unchanged) == sorted(k for k in wb.KEYS if k != changed_key)
    after = inventory(root)
    rewritten = (f"{wb.PARTICIPATION.name}/{changed_key}.parquet", "_manifest.json")
    assert all(after[name] != before[name] for name in rewritten)
    assert {k: v for k, v in after.items() if k not in rewritten and k in before} == {
        k: v for k, v in before.items() if k not in rewritten}
    assert history(root) - old_history == {f"participation/snapshot_date={wb.SNAPSHOT}/{changed_key}.run-one.parquet"}
    assert set(after) - set(before) == {f"_history/{h}" for h in history(root) - old_history}
    assert fingerprint(warehouse.read_batch(wb.PARTICIPATION, changed_key)) == fingerprint(
        wb.batch(changed_key, 9)[wb.PARTICIPATION])


def test_quarantine_keeps_the_batch_and_reason_without_touching_published_data(warehouse_v1):
    root, warehouse = warehouse_v1, Warehouse(warehouse_v1)
    before = inventory(root)
    folder = warehouse.quarantine("run-q", "XCIX-2/bad key", wb.batch("XCIX-2", 5), "failed validation: x",
                                  {"treaties": {"success": False}})
    assert folder == root / "_quarantine" / "run-q" / "XCIX-2_bad_key"
    assert (folder / "reason.txt").read_text() == "failed validation: x\n"
    assert sorted(p.name for p in folder.iterdir()) == ["participation.parquet", "reason.txt", "treaties.parquet",
                                                         "validation.json"]
    assert {k: v for k, v in inventory(root).items() if not k.startswith("_quarantine")} == before
    assert pq.read_table(folder / "treaties.parquet").num_rows == 1


def test_a_warehouse_published_before_the_manifest_is_read_and_updated_in_place(tmp_path):
    """Only `<table>/<batch>.parquet` files (the layout before `_manifest.json`): they are the current data, an
    unchanged rerun writes nothing, and the first change writes the manifest naming the old files and the new."""
    root = tmp_path / "warehouse"
    for key, batch in wb.batches(1).items():
        for table, data in batch.items():
            path = root / table.name / f"{key}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(data.replace_schema_metadata({b"armswatch.fingerprint": fingerprint(data).encode()}), path)
    assert version_of(root, 1, 2) == 1
    before = inventory(root)
    with Warehouse(root).locked() as warehouse:
        assert warehouse.publish("run-same", wb.batches(1), wb.SNAPSHOT).changed == {}
    assert inventory(root) == before
    changed = wb.KEYS[0]
    with Warehouse(root).locked() as warehouse:
        warehouse.publish("run-one", {changed: wb.batch(changed, 2)}, wb.SNAPSHOT)
        assert [str(f.relative_to(root)) for f in warehouse.files(wb.PARTICIPATION)] == [
            f"_history/participation/snapshot_date={wb.SNAPSHOT}/{changed}.run-one.parquet",
            *(f"participation/{k}.parquet" for k in wb.KEYS[1:])]
        assert fingerprint(warehouse.read_batch(wb.PARTICIPATION, changed)) == fingerprint(
            wb.batch(changed, 2)[wb.PARTICIPATION])
    assert copies(root) == state(root)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_the_manifest_and_data_files_are_as_readable_as_the_umask_makes_files(tmp_path, mask):
    """Another user can follow the manifest recipe whenever they can read the data: every file a publish writes
    gets the mode a plain new file gets (0666 less the umask), never 0600."""
    previous = os.umask(mask)
    try:
        root = tmp_path / "warehouse"
        with Warehouse(root).locked() as warehouse:
            warehouse.publish("run-v1", wb.batches(1), wb.SNAPSHOT)
        (tmp_path / "plain").write_bytes(b"")
    finally:
        os.umask(previous)
    expected = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert expected == 0o666 & ~mask
    written = [root / "_manifest.json", *root.glob("*/*.parquet"), *(root / "_history").rglob("*.parquet")]
    assert len(written) == 1 + 2 * 2 * len(wb.KEYS)
    assert {p.relative_to(root).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {
        p.relative_to(root).as_posix(): oct(expected) for p in written}


def seizures(release: date, latest: bool) -> dict:
    from tasks.tables import FIREARMS_SEIZURES

    rows = [{"release_date": release, "iso3": "MEX", "is_subnational": False, "indicator": "Arms seized",
             "year": 2010, "value": 100 + release.year, "is_latest_release": latest}]
    return {FIREARMS_SEIZURES: pa.Table.from_pylist(rows, schema=FIREARMS_SEIZURES.schema)}


def test_older_releases_are_copied_beside_the_table_so_a_glob_reads_the_latest_only(tmp_path):
    """The glob copy of a release that is no longer the latest moves to <table>_releases/, in the commit that marks
    it so; a warehouse whose old release copy is still in <table>/ (published before) gets it moved by the next
    publish of that batch, even with unchanged data."""
    root = tmp_path / "warehouse"
    old, new = date(2022, 6, 17), date(2024, 8, 26)
    with Warehouse(root).locked() as warehouse:
        warehouse.publish("run-1", {"2022-06-17": seizures(old, True)}, wb.SNAPSHOT)
        assert sorted(p.name for p in (root / "firearms_seizures").iterdir()) == ["2022-06-17.parquet"]
        warehouse.publish("run-2", {"2022-06-17": seizures(old, False), "2024-08-26": seizures(new, True)},
                          wb.SNAPSHOT)
    assert sorted(p.name for p in (root / "firearms_seizures").iterdir()) == ["2024-08-26.parquet"]
    assert sorted(p.name for p in (root / "firearms_seizures_releases").iterdir()) == ["2022-06-17.parquet"]
    assert pq.read_table(root / "firearms_seizures").column("release_date").to_pylist() == [new]
    manifest = json.loads((root / "_manifest.json").read_text())["tables"]["firearms_seizures"]
    assert manifest["2022-06-17"]["copy"] == "firearms_seizures_releases/2022-06-17.parquet"

    # a warehouse from before: the old release's copy in firearms_seizures/, no "copy" in its manifest entry
    (root / "firearms_seizures_releases" / "2022-06-17.parquet").rename(root / "firearms_seizures" / "2022-06-17.parquet")
    legacy = json.loads((root / "_manifest.json").read_text())
    del legacy["tables"]["firearms_seizures"]["2022-06-17"]["copy"]
    (root / "_manifest.json").write_text(json.dumps(legacy))
    with Warehouse(root).locked() as warehouse:
        result = warehouse.publish("run-3", {"2022-06-17": seizures(old, False)}, wb.SNAPSHOT)
    assert result.unchanged == ["2022-06-17"], "the data is as published: no new history file"
    assert sorted(p.name for p in (root / "firearms_seizures").iterdir()) == ["2024-08-26.parquet"]
    assert sorted(p.name for p in (root / "firearms_seizures_releases").iterdir()) == ["2022-06-17.parquet"]
    assert not list((root / "_history").rglob("*.run-3.parquet"))


def test_the_readmes_as_published_at_time_t_recipe_tells_two_runs_of_one_day_apart(tmp_path):
    """The README's history query, run as written (its path and time replaced), gives each batch as the runs
    started before T left it, although both runs wrote into the same snapshot_date folder."""
    import duckdb

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    recipe = re.search(r"History: every published.*?```sql\n(.*?)```", readme, re.S).group(1)
    root = tmp_path / "warehouse"
    morning, evening = "20261128T090000Z-aaaaaa", "20261128T170000Z-bbbbbb"
    with Warehouse(root).locked() as warehouse:
        warehouse.publish(morning, wb.batches(1), wb.SNAPSHOT)
        warehouse.publish(evening, wb.batches(2, keys=wb.KEYS[:1]), wb.SNAPSHOT)

    def as_published(before: str) -> dict[str, int]:
        sql = recipe.replace("warehouse/", f"{root}/").replace("'20260115T000000Z'", f"'{before}'")
        relation = duckdb.sql(sql)
        at = relation.columns.index("consent_date")
        rows = relation.fetchall()
        return {key: sorted({r[at] for r in rows if r[0] == key}) for key in wb.KEYS}

    def expected(versions: dict[str, int]) -> dict[str, list]:
        return {key: sorted(r["consent_date"] for r in wb.batch(key, v)[wb.PARTICIPATION].to_pylist())
                for key, v in versions.items()}

    assert as_published("20261128T120000Z") == expected({k: 1 for k in wb.KEYS})
    assert as_published("20261129T000000Z") == expected({"XCIX-1": 2, "XCIX-2": 1, "XCIX-3": 1})
    assert as_published("20261128T000000Z") == {k: [] for k in wb.KEYS}

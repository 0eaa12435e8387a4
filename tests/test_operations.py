"""What operators see: exit codes, Failed flow states, the quiet console, `status`, crashes still reported, no
orphan Prefect server, and unchanged reruns that neither parse nor import Great Expectations.

The subprocess tests run `armswatch` as a new user would: a fresh PREFECT_HOME and no Prefect variables, so the
CLI starts (and stops) its own temporary Prefect server. Every wait is bounded; every process started is stopped.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from conftest import MTDSG, SHARED, make_mirror
from flows.cli import main
from tasks import untc
from tasks.catalog import load as load_catalog
from tasks.publish import Warehouse

PROJECT = Path(__file__).resolve().parents[1]
ARMSWATCH = Path(sys.executable).with_name("armswatch")
DEADLINE = 300
#: Its sitecustomize.py on PYTHONPATH makes a machine without network: no name but loopback's resolves.
OFFLINE = PROJECT / "benchmarks" / "offline"
LYING = (MTDSG / "XVIII-12-c.en.xml").read_bytes().replace(b"<Parties>115</Parties>", b"<Parties>116</Parties>")


def catalog(tmp_path: Path, *ids: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text("".join(f"- {{id: {i}, short_name: {i}}}\n" for i in ids))
    return path


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory) -> dict:
    """The environment of a new user: no Prefect variables, an empty PREFECT_HOME (prepared as `make setup` does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path_factory.mktemp("prefect-home")), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               GX_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    subprocess.run([sys.executable, "-m", "flows.server"], cwd=PROJECT, env=env, check=True, timeout=DEADLINE,
                   capture_output=True)
    return env


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ARMSWATCH), *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=DEADLINE)


def gx_temporary_directory_lines(env: dict) -> int:
    """How many of Great Expectations' temporary-directory lines of a flow run the Prefect database of `env`'s
    PREFECT_HOME holds."""
    with closing(sqlite3.connect(Path(env["PREFECT_HOME"]) / "prefect.db")) as db:
        return db.execute("select count(*) from log where name like 'great_expectations%' and flow_run_id is not "
                          "null and message like 'Created temporary directory%'").fetchone()[0]


def test_first_run_on_a_fresh_machine_is_quiet_and_exits_1_for_a_quarantine(fresh_env, tmp_path):
    wh = tmp_path / "wh"
    logged = gx_temporary_directory_lines(fresh_env)
    result = cli(fresh_env, "run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", str(wh),
                 "--treaties", str(catalog(tmp_path, "XVIII-12", "XXVI-8")))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Task run" not in result.stderr, result.stderr
    assert "Created temporary directory" not in result.stderr
    assert gx_temporary_directory_lines(fresh_env) > logged, "GX's lines stay in Prefect's logs"
    out = result.stdout.splitlines()
    assert out[0].split() == ["flow", "batch", "status", "rows", "detail"]
    rows = {line.split()[1]: line for line in out if line.startswith("treaties ")}
    assert rows["XVIII-12"].split()[2] == "quarantined" and rows["XXVI-8"].split()[2] == "published"
    assert rows["XVIII-12"].index("quarantined") == rows["XXVI-8"].index("published"), "columns align"
    assert "total: 1 published, 0 unchanged, 1 quarantined, 0 failed" in result.stdout
    reasons = out[out.index("treaties / XVIII-12 quarantined: no published data yet"):]
    plain = reasons.index("    participant table missing although the document states parties")
    assert reasons[plain + 3] == ("      expectation treaties.participant_table_found: "
                                  "expect_column_values_to_be_in_set"), "plain words first, GX's name after"
    assert all(len(line) <= 100 for line in out if str(wh) not in line), "fits 100 columns"
    assert out[-3:] == [f"status:  armswatch status --warehouse {wh}",
                        "exit 1:  a batch was quarantined or failed (see above); every other batch was published, and a",
                        "         failing batch keeps its last good data"], "the last lines: outputs, what exit 1 means"
    assert "{'" not in result.stdout, "no Python reprs in the reasons"


def test_verbose_shows_prefects_and_great_expectations_lines(fresh_env, tmp_path):
    result = cli(fresh_env, "run", "--verbose", "--only", "treaties", "--mirror", str(SHARED), "--warehouse",
                 str(tmp_path / "wh"), "--treaties", str(catalog(tmp_path, "XXVI-8")))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Created temporary directory" in result.stderr and "Finished in state Completed" in result.stderr
    assert "total: 1 published" in result.stdout


UNCHANGED_RERUN = """
import json, sys
from tasks import publish, untc, validate
calls, reads, started = [], [], []
real, read, start = untc.parse_document, publish._read_parquet, validate._Worker._start
validate._Worker._start = lambda self: start(self) or started.append(self.process.pid)
untc.parse_document = lambda *a, **k: calls.append(a[1]) or real(*a, **k)
publish._read_parquet = lambda path, table: reads.append(table.name) or read(path, table)
from flows.cli import main
code = main(sys.argv[1:])
gx = {"here": "great_expectations" in sys.modules, "process": bool(started)}
print(json.dumps({"code": code, "parsed": calls, "read": sorted(set(reads)), "gx": gx}))
"""


def test_an_unchanged_rerun_neither_parses_nor_reads_data_nor_starts_great_expectations(fresh_env, tmp_path):
    """Every flow (the default catalog and sources): the second run over the same bytes parses no document, reads
    no published data (only the manifest and file footers), never imports GX, and copies no quarantine again. A
    third run without network exits 3 with one line per unreachable host and leaves the published files alone."""
    wh = tmp_path / "wh"
    args = ["run", "--mirror", str(SHARED), "--warehouse", str(wh)]

    def run() -> dict:
        result = subprocess.run([sys.executable, "-c", UNCHANGED_RERUN, *args], cwd=PROJECT, env=fresh_env,
                                capture_output=True, text=True, timeout=DEADLINE)
        return json.loads(result.stdout.splitlines()[-1])

    first = run()
    assert first["code"] == 1 and "participation" in first["read"]
    assert first["gx"] == {"here": False, "process": True}, "GX is imported in the validation process only"
    assert first["parsed"] == [t.url for t in load_catalog()]
    quarantined = sorted((wh / "_quarantine").glob("*/*"))
    assert "XVIII-12" in [p.name for p in quarantined]
    again = run()
    assert again == {"code": 1, "parsed": [], "read": [], "gx": {"here": False, "process": False}}, \
        "same bytes: nothing parsed, read or validated"
    assert sorted((wh / "_quarantine").glob("*/*")) == quarantined, "no quarantine is copied again"

    # Then without network (every name but loopback unresolvable, at the socket level): exit 3, one line per host,
    # every published file as it was.
    published = {p: p.stat().st_mtime_ns for p in wh.glob("*/*.parquet")}
    result = subprocess.run([str(ARMSWATCH), "run", "--warehouse", str(wh)], cwd=PROJECT, capture_output=True,
                            text=True, timeout=DEADLINE, env={**fresh_env, "PYTHONPATH": str(OFFLINE)})
    assert result.returncode == 3, result.stderr[-3000:]
    said = [line for line in result.stderr.splitlines() if "is unreachable: its name does not resolve" in line]
    assert len(said) == 3 and all(any(h in line for line in said) for h in ("https://treaties.un.org",
                                  "https://unstats.un.org", "https://data.unodc.org")), result.stderr[-3000:]
    assert result.stderr.rstrip().endswith("the published tables are as they were")
    assert {p: p.stat().st_mtime_ns for p in wh.glob("*/*.parquet")} == published
    recorded = tmp_path / "recorded"  # `record` too: exit 3, the same line, no mirror written
    result = subprocess.run([str(ARMSWATCH), "record", str(recorded)], cwd=PROJECT, capture_output=True, text=True,
                            timeout=DEADLINE, env={**fresh_env, "PYTHONPATH": str(OFFLINE)})
    assert result.returncode == 3, result.stderr[-3000:]
    assert result.stderr.rstrip().splitlines()[-1] == (
        "armswatch: no upstream host could be reached (https://data.unodc.org, https://treaties.un.org, "
        f"https://unstats.un.org): nothing was recorded into {recorded}")
    assert not recorded.exists()




def test_usage_and_infrastructure_errors_are_one_line_with_their_own_exit_code(tmp_path, capsys):
    assert main(["run", "--warehouse", "gs://bucket/prefix", "--mirror", str(SHARED)]) == 2  # gcsfs not installed
    assert not Path("gs:").exists()
    assert "unsupported warehouse URL gs://bucket/prefix" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["run", "--warehouse", str(afile), "--mirror", str(SHARED)]) == 3
    assert capsys.readouterr().err.strip() == f"armswatch: warehouse {afile} is a file, not a folder"
    assert main(["run", "--bogus"]) == 2
    capsys.readouterr()
    missing = tmp_path / "missing.yaml"
    for command in (["run", "--warehouse", str(tmp_path / "wh")], ["record", str(tmp_path / "recorded")]):
        assert main([*command, "--treaties", str(missing)]) == 2, "before any flow starts"
        assert capsys.readouterr().err.startswith(f"armswatch: treaty catalog {missing}: ")
    assert not (tmp_path / "recorded").exists() and not (tmp_path / "wh").exists()


def test_an_unreachable_prefect_api_exits_3_in_one_line(fresh_env, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli({**fresh_env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}, "run", "--mirror", str(SHARED),
                 "--warehouse", str(tmp_path / "wh"))
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"armswatch: the Prefect API at http://127.0.0.1:{port}/api is unreachable; start the server or unset "
        f"PREFECT_API_URL to let armswatch start a temporary one"]


@pytest.mark.usefixtures("prefect_harness")
def test_a_warehouse_locked_by_another_run_exits_3(tmp_path, capsys):
    with Warehouse(tmp_path / "wh").locked():
        code = main(["run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", str(tmp_path / "wh"),
                     "--treaties", str(catalog(tmp_path, "XXVI-8"))])
    assert code == 3
    assert "is in use by another run" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            pass
    return found


def _child_running(pid: int, *command: str) -> int | None:
    """The child of `pid` that runs `python <command...>` (once it has become it: fork, then exec)."""
    for child in _children(pid):
        try:
            if (Path("/proc") / str(child) / "cmdline").read_text().split("\0")[1:1 + len(command)] == list(command):
                return child
        except OSError:
            pass
    return None


def _server_of(pid: int) -> int | None:
    """The temporary Prefect server the CLI `pid` started."""
    return _child_running(pid, "-m", "flows.server", "serve")


def _validation_process_of(pid: int) -> int | None:
    """The validation process (tasks/validate.py) the CLI `pid` started."""
    from tasks.validate import SERVE

    return _child_running(pid, "-c", SERVE)


def _wait(condition, what: str):
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_temporary_server_never_outlives_a_killed_cli(fresh_env, tmp_path):
    proc = subprocess.Popen([str(ARMSWATCH), "run", "--mirror", str(SHARED), "--warehouse", str(tmp_path / "wh")],
                            cwd=PROJECT, env=fresh_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _server_of(proc.pid), "the CLI started its server")
        server = _server_of(proc.pid)
        proc.kill()
        proc.wait()
        _wait(lambda: not _alive(server), "the orphaned server stopped")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_temporary_server_migrates_only_a_database_not_at_the_newest_migration(fresh_env, tmp_path):
    """What the server process runs under: Prefect has read its environment by then, so the settings must say it."""
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, get_current_settings, temporary_settings

    from flows.server import database_ready, server_settings

    sqlite3.connect(tmp_path / "old.db").executescript("create table alembic_version (version_num);"
                                                       "insert into alembic_version values ('aaaa');")
    for database, ready in ((Path(fresh_env["PREFECT_HOME"]) / "prefect.db", True),  # migrated as `make setup` does
                            (tmp_path / "new.db", False), (tmp_path / "old.db", False)):
        with temporary_settings(updates={PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{database}"}):
            assert database_ready() is ready, database.name
            with server_settings():
                assert get_current_settings().server.database.migrate_on_start is not ready, database.name


@pytest.fixture(scope="module")
def published(fresh_env, tmp_path_factory) -> Path:
    """A warehouse after one full offline run: the last good tables that a stopped run must leave intact."""
    wh = tmp_path_factory.mktemp("published") / "wh"
    assert cli(fresh_env, "run", "--mirror", str(SHARED), "--warehouse", str(wh)).returncode == 1
    return wh


def _files(folder: Path, pattern: str) -> set[Path]:
    return set(folder.glob(pattern))


def _latest_flow_run_is_auditing(env: dict) -> bool:
    """The run's audit task (validation, then the publish) is running, as the Prefect server recorded it."""
    with closing(sqlite3.connect(f"file:{Path(env['PREFECT_HOME']) / 'prefect.db'}?mode=ro", uri=True)) as db:
        return db.execute("select count(*) from task_run where flow_run_id = (select id from flow_run order by "
                          "created desc limit 1) and name like 'audit and publish%' and state_type = 'RUNNING'"
                          ).fetchone()[0] > 0


def _published_files(wh: Path) -> dict[tuple[str, str], str]:
    """(table, batch) -> the file the manifest names; each one must exist and be readable Parquet."""
    import pyarrow.parquet as pq

    manifest = json.loads((wh / "_manifest.json").read_text())
    files = {(table, batch): entry["file"] for table, batches in manifest["tables"].items()
             for batch, entry in batches.items()}
    for file in files.values():
        assert pq.read_metadata(wh / file).num_rows >= 0
    return files


POINTS = {  # what shows that a `--force` run over a published warehouse is at that point
    "fetch": lambda env, wh, before: _files(wh, "_raw/responses/*/*.json") - before["responses"],
    "validate": lambda env, wh, before: _latest_flow_run_is_auditing(env),
    "publish": lambda env, wh, before: _files(wh, "_history/*/*/*.parquet") - before["history"],
}


@pytest.mark.parametrize("point, signum, again", [("fetch", signal.SIGINT, False),
                                                  ("validate", signal.SIGTERM, False),
                                                  ("publish", signal.SIGINT, False),
                                                  ("publish", signal.SIGINT, True)])
def test_a_signal_to_the_process_group_stops_the_run(fresh_env, published, tmp_path, point, signum, again):
    """Ctrl-C in a terminal, or SIGTERM from systemd or `timeout`, reaches the whole process group: the run stops,
    prints what it published and exits 4, the Prefect server (its own session) still records the end and is
    stopped last. A second Ctrl-C ends the process at once; what was published stays whole either way. How soon it
    stops (issue 20.2: within 15 s) is a figure, printed by benchmarks/stop.py; a run that went on to its end would
    exit 1 here, not 4."""
    wh = tmp_path / "wh"
    shutil.copytree(published, wh)
    good = _published_files(wh)
    before = {"responses": _files(wh, "_raw/responses/*/*.json"), "history": _files(wh, "_history/*/*/*.parquet")}
    proc = subprocess.Popen([str(ARMSWATCH), "run", "--force", "--mirror", str(SHARED), "--warehouse", str(wh)],
                            cwd=PROJECT, env=fresh_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait(lambda: _server_of(proc.pid), "the CLI started its server")
        server = _server_of(proc.pid)
        _wait(lambda: POINTS[point](fresh_env, wh, before) or proc.poll() is not None, f"the run is at {point}")
        assert proc.poll() is None, f"the run ended before {point}"
        validation = _validation_process_of(proc.pid)
        os.killpg(proc.pid, signum)
        if again:
            time.sleep(0.2)
            os.killpg(proc.pid, signum)
        out, err = proc.communicate(timeout=DEADLINE)  # a bound on a hang, not a speed figure
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if point != "fetch":
        assert validation, "the validation process runs once batches are parsed"
    if again:
        assert proc.returncode == -signum, "a second Ctrl-C ends the process at once"
        _wait(lambda: not _alive(server), "the kernel stopped the orphaned server")
        _wait(lambda: not validation or not _alive(validation), "the orphaned validation process ended")
    else:
        assert not validation or not _alive(validation), "the CLI stopped its validation process"
        assert proc.returncode == 4, err[-3000:]
        assert not _alive(server), "the CLI stopped its server before it exited"
        assert out.startswith("flow") and "total: " in out, out + err[-3000:]
        assert f"the run ended early: terminated by {signum.name}" in out, out
        assert "Event(" not in err and "Traceback" not in err, err[-3000:]
        log = json.loads(max((wh / "_runs").glob("*.json")).read_text())  # run ids begin with their start time
        assert signum.name in log["crash"] and not log["ok"], "the run log records the stop"
        assert not (wh / ".lock.owner").exists(), "the lock was released"
    assert _published_files(wh).keys() >= good.keys(), "every batch published before stays published"
    assert cli(fresh_env, "status", "--warehouse", str(wh)).returncode == 1, "status reads it (a quarantine open)"


def test_log_lines_are_printed_above_the_progress_bars_never_into_them():
    """While the bars are shown, Prefect's console handlers print through the bars' console (rich prints a line
    above live bars); their own console comes back after."""
    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.console import _console_handlers, progress
    from tasks.run import STAGES

    installed = PrefectConsoleHandler()  # as Prefect's logging configuration installs it on the root logger
    logging.getLogger().addHandler(installed)
    handlers = _console_handlers()
    own = [h.console for h in handlers]
    assert installed in handlers
    try:
        with progress():
            assert all(h.console is STAGES.display.progress.console for h in handlers)
        assert [h.console for h in handlers] == own
    finally:
        logging.getLogger().removeHandler(installed)


def test_a_stopped_runs_last_steps_are_waited_for_a_few_seconds_only():
    """A stopped run's artifacts and notices get a bounded wait (flows/steps.py finish), so a notification
    destination that never answers cannot hold the stop."""
    from flows.steps import within

    never = threading.Event()
    with pytest.raises(TimeoutError, match="the run was stopped"):
        within(0.1, never.wait)
    assert within(None, str, 7) == within(5, str, 7) == "7"
    with pytest.raises(KeyError):
        within(5, {}.__getitem__, "missing")


def test_a_sigterm_inside_an_import_is_raised_once_the_import_is_done(tmp_path, monkeypatch):
    """Raised inside the import system, the exception could leave an import lock held, and the next import on
    another thread would wait forever: the CLI's handlers (its own, and Prefect's while a flow runs) wait."""
    import builtins

    from prefect.utilities import engine

    from flows import cli
    from tasks.run import outside_imports

    calls = []

    def terminate(signum, frame):
        calls.append(signum)
        raise cli.Terminated("SIGTERM received")

    previous = signal.signal(signal.SIGTERM, outside_imports(terminate))
    read, write = os.pipe()  # the delivery again is recorded here, not by the CLI's SIGNALS other tests run with
    os.set_blocking(write, False)
    wakeup = signal.set_wakeup_fd(write)
    monkeypatch.setattr(builtins, "deliver", raising=False,
                        value=lambda: signal.getsignal(signal.SIGTERM)(signal.SIGTERM, sys._getframe(1)))
    (tmp_path / "importing_when_terminated.py").write_text("deliver()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        __import__("importing_when_terminated")
        monkeypatch.delitem(sys.modules, "importing_when_terminated")
        assert calls == [], "not raised inside the import"
        with pytest.raises(cli.Terminated):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
        assert calls == [signal.SIGTERM], "raised once the import was done"
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.set_wakeup_fd(wakeup)
        os.close(read)
        os.close(write)
    importlib.import_module("flows.steps")  # what every flow loads

    with engine.capture_sigterm():  # what Prefect installs while a flow runs
        assert getattr(signal.getsignal(signal.SIGTERM), "outside_imports", False), "Prefect's handler waits too"


def test_a_sigterm_whose_exception_was_swallowed_is_still_known():
    """Prefect raises TerminationSignal from its SIGTERM handler; raised inside a finalizer it is swallowed. The
    interpreter-level record (tasks/run.py Signals) still tells the flow that the run was terminated."""
    from tasks.run import Signals

    swallowed = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: swallowed.append(signum))
    signals = Signals()
    try:
        assert signals.terminated() is None
        wakeup = signal.set_wakeup_fd(-1)  # the CLI's SIGNALS (earlier tests) records again afterwards
        signals.listen()
        assert signals.terminated() is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert swallowed == [signal.SIGTERM]
        assert signals.terminated() == "terminated by SIGTERM"
        assert signals.terminated() == "terminated by SIGTERM", "once known, it stays known"
    finally:
        if signals._pipe is not None:
            os.close(signal.set_wakeup_fd(wakeup))
            os.close(signals._pipe)
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("prefect_harness")
def test_flow_and_parent_states_are_failed_on_a_quarantine(tmp_path):
    from flows.ratification import ratification
    from flows.refresh import refresh
    from flows.steps import reports_of

    cat = catalog(tmp_path, "XVIII-12-c", "XXVI-8")
    bad = make_mirror(tmp_path, {untc.mtdsg_url("XVIII-12-c"): ("XVIII-12-c.xml", LYING)})
    clean = ratification(warehouse=str(tmp_path / "ok"), mirror=str(SHARED), treaties=str(cat), return_state=True)
    assert clean.is_completed()
    state = ratification(warehouse=str(tmp_path / "wh"), mirror=str(bad), treaties=str(cat), return_state=True)
    assert state.is_failed() and "1 batch(es) quarantined" in state.message
    [report] = reports_of(state)
    assert [(o.key, o.status) for o in report.outcomes] == [("XVIII-12-c", "quarantined"), ("XXVI-8", "published")]

    parent = refresh(warehouse=str(tmp_path / "wh2"), mirror=str(bad), treaties=str(cat), return_state=True)
    assert parent.is_failed()
    reports = reports_of(parent)
    assert [r.flow for r in reports] == ["treaties", "indicators", "panel"]
    assert len({r.run_id for r in reports}) == 1, "one run id for the whole refresh"


@pytest.mark.usefixtures("prefect_harness")
def test_status_text_and_json_on_a_warehouse_with_a_quarantine(tmp_path, capsys, monkeypatch):
    wh = tmp_path / "wh"
    bad = make_mirror(tmp_path, {untc.mtdsg_url("XVIII-12-c"): ("XVIII-12-c.xml", LYING)})
    assert main(["run", "--only", "treaties", "--mirror", str(bad), "--warehouse", str(wh),
                 "--treaties", str(catalog(tmp_path, "XVIII-12-c", "XXVI-8"))]) == 1
    capsys.readouterr()
    assert main(["status", "--warehouse", str(wh)]) == 1
    text = capsys.readouterr().out
    assert "open quarantines: 1" in text and "treaties / XVIII-12-c: quarantined" in text
    assert re.search(r"^participation +XXVI-8 +135 +2018-01-15 +\d{4}-", text, re.M), "the treaty's status date"
    assert main(["status", "--warehouse", str(wh), "--json"]) == 1
    status = json.loads(capsys.readouterr().out)
    participation = {b["batch"]: b for b in status["tables"]["participation"]}
    assert participation["XXVI-8"]["rows"] == 135 and len(participation["XXVI-8"]["source_sha256"]) == 1
    assert len(participation["XXVI-8"]["suites"]) == len(participation["XXVI-8"]["code"]) == 64
    assert participation["XXVI-8"]["as_of"] == "2018-01-15" and participation["XXVI-8"]["published_at"]
    assert [q["batch"] for q in status["open_quarantines"]] == ["XVIII-12-c"]
    assert status["last_runs"][0]["counts"]["quarantined"] == 1 and not status["last_runs"][0]["ok"]
    flow_run = status["last_runs"][0]["flow_run"]
    assert flow_run["state"] == "Failed" and flow_run["flow"] == "armswatch-treaties" and len(flow_run["id"]) == 36
    assert flow_run["url"].endswith(flow_run["id"]) and flow_run["name"] in text
    assert status["treaties_without_data"] == ["XVIII-12-c"] and "treaties with no published data: XVIII-12-c" in text
    assert participation["XXVI-8"]["as_of_meaning"] == "status as at"
    assert all(len(line) <= 100 for line in text.splitlines() if str(wh) not in line), "fits 100 columns"
    sha = participation["XXVI-8"]["source_sha256"][0]
    assert sha not in text and sha[:8] in text, "sha256s shortened"
    assert main(["status", "--warehouse", str(wh), "--wide"]) == 1
    assert sha in capsys.readouterr().out
    assert main(["status", "--warehouse", str(tmp_path / "nothing")]) == 2
    assert main(["status", "--warehouse", str(tmp_path / "catalog.yaml")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    with monkeypatch.context() as readonly:  # a warehouse this user may only read (tests run as root)
        readonly.setattr(os, "access", lambda path, mode, **kw: not mode & os.W_OK)
        assert main(["status", "--warehouse", str(wh), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["open_quarantines"]


def _damage_manifest(change):
    def damage(wh: Path) -> None:
        manifest = json.loads((wh / "_manifest.json").read_text())
        change(manifest["tables"]["participation"], wh)
        (wh / "_manifest.json").write_text(json.dumps(manifest))
    return damage


def _replace_with_fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


DAMAGE = {  # what is damaged -> (how, the file the one line names)
    "a FIFO named in the manifest": (_damage_manifest(lambda batches, wh: _replace_with_fifo(
        wh / batches["XXVI-8"]["file"])), "_history/participation/"),
    "the manifest a FIFO": (lambda wh: _replace_with_fifo(wh / "_manifest.json"), "_manifest.json"),
    "a corrupt manifest": (lambda wh: (wh / "_manifest.json").write_text('{"tables": {"x": '), "_manifest.json"),
    "wrong types in the manifest": (_damage_manifest(lambda batches, wh: batches["XXVI-8"].update(file=7)),
                                    "_manifest.json"),
    "a batch that is a list": (_damage_manifest(lambda batches, wh: batches.update({"XXVI-8": []})),
                               "_manifest.json"),
    "a missing `file`": (_damage_manifest(lambda batches, wh: batches["XXVI-8"].pop("file")), "_manifest.json"),
    "a file outside the warehouse": (_damage_manifest(lambda batches, wh: batches["XXVI-8"].update(
        file="../../../../../../etc/hostname")), "_manifest.json"),
    "a named file that is not Parquet": (_damage_manifest(lambda batches, wh: (wh / batches["XXVI-8"]["file"])
                                                          .write_text("PAR1 no")), "participation"),
    "a corrupt run log": (lambda wh: next((wh / "_runs").glob("*.json")).write_text("{\"run_id\": "), "_runs/"),
    "a run log with wrong types": (lambda wh: next((wh / "_runs").glob("*.json")).write_text('{"run_id": 1}'),
                                   "_runs/"),
    "a run log that is a FIFO": (lambda wh: _replace_with_fifo(wh / "_runs" / "20991231T000000Z-fifo.json"),
                                 "20991231T000000Z-fifo.json"),
    "a corrupt incidents file": (lambda wh: (wh / "_state" / "incidents.json").write_text("[1"), "incidents.json"),
    "incidents of the wrong shape": (lambda wh: (wh / "_state" / "incidents.json").write_text('{"a": {"runs": "x"}}'),
                                     "incidents.json"),
    "an incidents file that is a FIFO": (lambda wh: _replace_with_fifo(wh / "_state" / "incidents.json"),
                                         "incidents.json"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_status_of_a_damaged_warehouse_is_one_line_naming_the_file_and_exit_2(fresh_env, published, tmp_path,
                                                                               damage):
    wh = tmp_path / "wh"
    shutil.copytree(published, wh)
    how, named = DAMAGE[damage]
    how(wh)
    result = subprocess.run([str(ARMSWATCH), "status", "--warehouse", str(wh)], cwd=PROJECT, env=fresh_env,
                            capture_output=True, text=True, timeout=10)  # a FIFO read would block forever
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert len(result.stderr.splitlines()) == 1 and result.stdout == "", result.stderr
    assert result.stderr.startswith(f"armswatch: warehouse {wh} is damaged: ") and named in result.stderr, \
        result.stderr

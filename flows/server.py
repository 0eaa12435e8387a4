"""The Prefect API a CLI run talks to: the configured one (PREFECT_API_URL, checked before the run starts), or a
temporary server the CLI starts as its own child process and stops when it ends.

Prefect's own temporary server waits 20 s by default, which a busy 2-core machine does not meet on a first start
(the server also migrates its database then: `make setup` runs `prefect server database upgrade -y` ahead, see
the Makefile). Here the wait is `ARMSWATCH_SERVER_STARTUP_TIMEOUT` seconds (default 300); the server is launched
first, before this process has even imported Prefect, so its start-up (about 2 s) overlaps the CLI's own; and it
asks the kernel to stop it when the CLI dies (PR_SET_PDEATHSIG), so even a SIGKILLed CLI leaves no orphan server.
It runs in its own session, so a Ctrl-C or a SIGTERM sent to the CLI's process group (a terminal, systemd,
`timeout`) does not reach it: the run it records stops, reports and alerts against a server still up, and the CLI
stops the server last.
The server process is `python -m flows.server serve PORT`: it imports without the cyclic garbage collector
(`loading()`, as the CLI does), skips migrating a database already at the newest migration, then runs Prefect's
server app as Prefect's own temporary server does. Upstream: none. Tables fed: none.
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing, contextmanager
from pathlib import Path

HEALTH_POLL = 0.02  # seconds between asking the starting server whether it answers; each miss is a refused connect
PR_SET_PDEATHSIG = 1


class PrefectUnavailable(RuntimeError):
    """No Prefect API to record the run in (an infrastructure failure: exit code 3)."""


def startup_timeout() -> float:
    from tasks.environment import environment  # pydantic: imported once Prefect is (this module imports neither)

    return environment().server_startup_timeout


def _stop_with(parent: int):
    """preexec_fn: the child gets SIGTERM from the kernel when `parent` dies, even by SIGKILL."""

    def arm() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request was armed
            os._exit(1)

    return arm


def database_ready() -> bool:
    """True when Prefect's SQLite database is at the installed Prefect's newest migration (`make setup` migrates
    it), so the temporary server can skip migrating on start, which costs seconds on a busy machine."""
    import prefect
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    url = url.get_secret_value() if url is not None else ""
    if not url.startswith("sqlite") or ":///" not in url:
        return False
    versions = Path(prefect.__module_path__) / "server" / "database" / "_migrations" / "versions" / "sqlite"
    newest = max(versions.glob("2*.py"), default=None)
    head = re.search(r'^revision = "(\w+)"', newest.read_text(), re.M) if newest else None
    database = Path(url.split(":///", 1)[1])
    if head is None or not database.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            return db.execute("select version_num from alembic_version").fetchall() == [(head.group(1),)]
    except sqlite3.Error:
        return False


def prepare_database() -> None:
    """Migrate Prefect's database unless it is ready (what `make setup` runs: `python -m flows.server`)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        print(f"Prefect API configured ({PREFECT_API_URL.value()}): no local database to prepare")
    elif database_ready():
        print("Prefect database ready")
    else:
        subprocess.run([str(Path(sys.executable).with_name("prefect")), "server", "database", "upgrade", "-y"],
                       check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def loading():
    """Imports without the cyclic garbage collector, their objects then frozen out of later collections. Importing
    Prefect's server (FastAPI, pydantic, SQLAlchemy) creates about 400,000 objects, almost none of them garbage:
    collecting while they were created, then scanning them again in later full collections, took 0.7 s of the
    temporary server's start (2.5 s before) and most of its first requests (benchmarks/pipeline.py)."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


@contextmanager
def server_settings():
    """Prefect's settings for the temporary server: no migration on start when the database is at the newest
    migration. (Prefect reads the environment once, when it is imported: so the settings, not the environment.)"""
    from prefect.settings import PREFECT_API_DATABASE_MIGRATE_ON_START, temporary_settings

    with temporary_settings(updates={PREFECT_API_DATABASE_MIGRATE_ON_START: False} if database_ready() else {}):
        yield


def serve(port: int) -> None:
    """The temporary server (what `python -m flows.server serve PORT` runs): Prefect's API on 127.0.0.1:PORT as
    Prefect's own temporary server runs it (no UI; only the services Prefect runs in one), with `server_settings()`."""
    with loading():
        import uvicorn
        from prefect.server.api.server import create_app
    os.environ.update(PREFECT__SERVER_EPHEMERAL="1", PREFECT__SERVER_FINAL="1")
    with server_settings():
        uvicorn.run(create_app, factory=True, host="127.0.0.1", port=port, log_level="error", lifespan="on")


#: Set while the CLI's temporary server is the Prefect API (read as tasks/environment.py `temporary_server`:
#: flows/steps.py links alerts to lasting servers only).
TEMPORARY_SERVER = "ARMSWATCH_TEMPORARY_SERVER"


class PrefectAPI:
    """`launch()` early, then `with api:` waits until the API answers and points Prefect at it for the body. No
    server is launched when PREFECT_API_URL names one (in the environment, or in the Prefect profile: then the
    server launched before the profile was read is stopped unused)."""

    def __init__(self):
        self.configured: str | None = os.environ.get("PREFECT_API_URL") or None
        self.process: subprocess.Popen | None = None
        self.url = self.configured
        self.settings = None  # Prefect's global settings before the temporary server's URL was set

    def launch(self) -> None:
        """Start the temporary server, unless one runs or PREFECT_API_URL is set; imports nothing of Prefect."""
        if self.configured or self.process is not None:
            return
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/api"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.server", "serve", str(port)], start_new_session=True,
            preexec_fn=_stop_with(os.getpid()) if sys.platform == "linux" else None)

    def __enter__(self) -> str:
        import prefect.context
        from prefect.settings import PREFECT_API_URL

        if PREFECT_API_URL.value():  # configured in the profile rather than the environment
            self.stop()
            self.configured = self.url = PREFECT_API_URL.value()
        self.launch()
        if self.process is None:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:  # with the configured credentials (Prefect Cloud)
                problem = client.api_healthcheck()
            if problem is not None:
                raise PrefectUnavailable(f"the Prefect API at {self.configured} is unreachable; start the server "
                                         f"or unset PREFECT_API_URL to let armswatch start a temporary one")
            return self.url
        import httpx

        deadline = time.monotonic() + startup_timeout()
        with httpx.Client(timeout=5) as http:
            while not self._healthy(http):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    code = self.process.poll()
                    self.stop()
                    raise PrefectUnavailable(
                        "the temporary Prefect server " + (f"exited with code {code}" if code is not None else
                                                           f"did not start within {startup_timeout():.0f} s")
                        + "; run `make setup` (it prepares Prefect's database) or raise "
                          "ARMSWATCH_SERVER_STARTUP_TIMEOUT")
                time.sleep(HEALTH_POLL)
        self.settings = prefect.context.GLOBAL_SETTINGS_CONTEXT
        os.environ["PREFECT_API_URL"] = self.url
        os.environ[TEMPORARY_SERVER] = "1"  # no flow-run links in alerts: this server ends with the CLI
        prefect.context.refresh_global_settings_context()
        return self.url

    def __exit__(self, *exc) -> None:
        if self.process is None:
            return
        import prefect.context

        _drain()
        os.environ.pop("PREFECT_API_URL", None)
        os.environ.pop(TEMPORARY_SERVER, None)
        prefect.context.GLOBAL_SETTINGS_CONTEXT = self.settings  # as before (building them again costs 0.2 s)
        self.stop()

    def _healthy(self, http) -> bool:
        import httpx

        try:
            return http.get(f"{self.url}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:  # uvicorn waits for idle keep-alive connections; SQLite commits are
            # durable and every log and event was drained, so nothing is lost by not waiting for it
            self.process.kill()
            self.process.wait()
        self.process = None


def _drain() -> None:
    """Send the logs and events still queued before the server stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.instance().drain()
    except RuntimeError:  # never started
        pass
    EventsWorker.drain_all()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        prepare_database()

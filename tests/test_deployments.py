"""Deployments end to end against a real Prefect server and process worker on loopback (SQLite).

Starts `prefect server`, creates the process work pool, deploys deployments.yaml, starts a worker, triggers
the treaties deployment on the recorded mirror (clean: Completed, no alert) and on a mirror with a bad document
(quarantined: the flow run ends Failed, exactly one alert naming the failing expectation, received by a real HTTP
webhook on loopback).
Bounded: every wait has a deadline; every process started is stopped at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import MTDSG, SHARED, make_mirror
from tasks import untc
from webhook import Receiver

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEADLINE = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_SERVER_EPHEMERAL_ENABLED": "false"}
    env.pop("PREFECT_PROFILES_PATH", None)
    processes = []

    def start(*args: str, log: str) -> subprocess.Popen:
        out = open(home / log, "wb")
        proc = subprocess.Popen([str(BIN / "prefect"), *args], cwd=PROJECT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(proc)
        return proc

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "prefect"), *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                              timeout=DEADLINE, check=check)

    try:
        start("server", "start", "--host", "127.0.0.1", "--port", str(port), log="server.log")
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        run("work-pool", "create", "armswatch", "--type", "process")
        run("deploy", "--prefect-file", "deployments.yaml", "--all", "--no-prompt")
        start("worker", "start", "--pool", "armswatch", log="worker.log")
        yield env, run, home
    finally:
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_deployments_exist_with_utc_cron_schedules(prefect_server):
    _, run, _ = prefect_server
    for name, cron in (("armswatch-treaties/treaties", "0 5 * * *"), ("armswatch-indicators/indicators", "0 6 * * 1"),
                       ("armswatch-refresh/refresh", "0 7 * * 1")):
        inspected = run("deployment", "inspect", name).stdout
        assert f"'cron': '{cron}'" in inspected and "'timezone': 'UTC'" in inspected
        assert "'work_pool_name': 'armswatch'" in inspected and "'GX_ANALYTICS_ENABLED': 'false'" in inspected


def test_scheduled_deployment_publishes_and_alerts_once_on_a_bad_document(prefect_server, tmp_path):
    env, run, home = prefect_server
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n- {id: XXVI-8, short_name: ATT}\n")
    warehouse = tmp_path / "wh"
    with Receiver() as receiver:
        subprocess.run([sys.executable, "-c", (
            "from prefect.blocks.notifications import CustomWebhookNotificationBlock as B;"
            f"B(name='armswatch', url='{receiver.url}', json_data={{'subject': '{{{{subject}}}}', "
            "'text': '{{body}}'}).save('e2e-alerts', overwrite=True)")], env=env, check=True, timeout=DEADLINE)

        def trigger(mirror: Path) -> subprocess.CompletedProcess:
            return run("deployment", "run", "armswatch-treaties/treaties", "--param", f"mirror={mirror}",
                       "--param", f"warehouse={warehouse}", "--param", f"treaties={catalog}",
                       "--param", "alert_block=custom-webhook/e2e-alerts",
                       "--watch", "--watch-timeout", str(DEADLINE), check=False)

        clean = trigger(SHARED)
        assert clean.returncode == 0 and "Completed" in clean.stdout, clean.stdout[-2000:] + clean.stderr[-2000:]
        assert sorted(p.stem for p in (warehouse / "participation").glob("*.parquet")) == ["XVIII-12-c", "XXVI-8"]
        assert receiver.bodies == [], "a clean run sends no alert"

        url = untc.mtdsg_url("XVIII-12-c")
        lying = (MTDSG / "XVIII-12-c.en.xml").read_bytes().replace(b"<Parties>115</Parties>", b"<Parties>116</Parties>")
        bad = trigger(make_mirror(tmp_path, {url: ("XVIII-12-c.xml", lying)}))
        output = bad.stdout + bad.stderr
        assert bad.returncode == 1 and "Failed" in output, output[-2000:]  # red in Prefect, after publishing
        assert (warehouse / "participation" / "XXVI-8.parquet").exists()
        deadline = time.monotonic() + 30
        while not receiver.bodies and time.monotonic() < deadline:
            time.sleep(0.2)
    assert len(receiver.bodies) == 1, f"exactly one alert per flow run, got {receiver.bodies}"
    alert = receiver.bodies[0]["text"]
    assert "treaties.parsed_parties: expect_column_pair_values_to_be_equal" in alert and "XVIII-12-c" in alert
    assert "evidence (in the warehouse): _quarantine/" in alert and str(tmp_path) not in alert

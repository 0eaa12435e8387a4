"""Deployments end to end against a real Prefect server and process worker on loopback (SQLite).

Starts `prefect server`, creates the process work pool (concurrency limit 1), deploys prefect.yaml with
`prefect deploy --all` (no ARMSWATCH_HOME in the deployer's environment: the worker's names the project), applies
the automations with `armswatch automations apply` to a custom-webhook block whose receiver is a real HTTP server on
loopback, starts a worker, triggers the treaties deployment twice at once on the recorded mirror (both Completed,
one after the other; no alert) and on a mirror with a bad document (quarantined: the flow run ends Failed with its
message and no engine TypeError, exactly one armswatch alert naming the failing expectation, and the automation's
notice of the Failed run).
Bounded: every wait has a deadline; every process started is stopped at teardown.
"""

from __future__ import annotations

import json
import os
import re
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
           "PREFECT_SERVER_EPHEMERAL_ENABLED": "false", "COLUMNS": "10000"}  # Prefect's JSON output unwrapped
    for name in ("PREFECT_PROFILES_PATH", "ARMSWATCH_HOME", "ARMSWATCH_ALERT_URL", "ARMSWATCH_ALERT_BLOCK"):
        env.pop(name, None)
    processes = []

    def start(*args: str, log: str, extra: dict | None = None) -> subprocess.Popen:
        out = open(home / log, "wb")
        proc = subprocess.Popen([str(BIN / "prefect"), *args], cwd=PROJECT, env={**env, **(extra or {})}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(proc)
        return proc

    def run(*args: str, check: bool = True, command: str = "prefect") -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / command), *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                              timeout=DEADLINE, check=check)

    try:
        with Receiver() as receiver:
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
            run("work-pool", "set-concurrency-limit", "armswatch", "1")
            run("deploy", "--all", "--no-prompt")
            subprocess.run([sys.executable, "-c", (
                "from prefect.blocks.notifications import CustomWebhookNotificationBlock as B;"
                f"B(name='armswatch', url='{receiver.url}', json_data={{'subject': '{{{{subject}}}}', "
                "'text': '{{body}}'}).save('e2e-alerts', overwrite=True)")], env=env, check=True, timeout=DEADLINE)
            applied = run("automations", "apply", "--alert-block", "custom-webhook/e2e-alerts", command="armswatch")
            assert "applied 2 automation(s)" in applied.stdout, applied.stdout + applied.stderr
            start("worker", "start", "--pool", "armswatch", log="worker.log", extra={"ARMSWATCH_HOME": str(PROJECT)})
            yield env, run, home, receiver
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


def test_deployments_follow_prefects_conventions_and_the_automations_exist(prefect_server):
    _, run, _, _ = prefect_server
    for name, cron in (("armswatch-treaties/treaties", "0 5 * * *"), ("armswatch-indicators/indicators", "0 6 * * 1"),
                       ("armswatch-refresh/refresh", None)):
        inspected = run("deployment", "inspect", name).stdout
        if cron:
            assert f"'cron': '{cron}'" in inspected and "'timezone': 'UTC'" in inspected
        else:
            assert "'cron'" not in inspected, "refresh runs on demand: nothing fetched twice an hour apart"
        assert "'work_pool_name': 'armswatch'" in inspected and "'GX_ANALYTICS_ENABLED': 'false'" in inspected
        assert "'directory': '{{ $ARMSWATCH_HOME }}'" in inspected and str(PROJECT) not in inspected
        assert "'limit': 1" in inspected and "'collision_strategy': 'ENQUEUE'" in inspected, inspected
        assert "'description': 'Where the tables go:" in inspected, inspected
    for name, posture in (("armswatch flow run failed or crashed", "Reactive"),
                          ("armswatch no run in 26 hours", "Proactive")):
        [automation] = json.loads(run("automation", "inspect", name, "--json").stdout)
        assert automation["trigger"]["posture"] == posture and automation["enabled"]
        assert automation["actions"][0]["block_document_id"], "notifies the alert channel's block"


def flow_run_id(output: str) -> str:
    return re.search(r"UUID: ([0-9a-f-]{36})", output).group(1)


def test_scheduled_deployment_publishes_and_alerts_once_on_a_bad_document(prefect_server, tmp_path):
    env, run, home, receiver = prefect_server
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n- {id: XXVI-8, short_name: ATT}\n")
    warehouse = tmp_path / "wh"
    params = ["--param", f"warehouse={warehouse}", "--param", f"treaties={catalog}",
              "--param", "alert_block=custom-webhook/e2e-alerts"]

    def trigger(mirror: Path, watch: bool = True) -> subprocess.CompletedProcess:
        return run("deployment", "run", "armswatch-treaties/treaties", "--param", f"mirror={mirror}", *params,
                   *(["--watch", "--watch-timeout", str(DEADLINE)] if watch else []), check=False)

    overlapping = trigger(SHARED, watch=False)  # a second run of the deployment at once: it waits its turn
    clean = trigger(SHARED)
    assert clean.returncode == 0 and "Completed" in clean.stdout, clean.stdout[-2000:] + clean.stderr[-2000:]
    first = flow_run_id(overlapping.stdout)
    deadline = time.monotonic() + DEADLINE
    while "Completed" not in (state := run("flow-run", "inspect", first).stdout) and time.monotonic() < deadline:
        time.sleep(1)
    assert "Completed" in state, "the overlapping run neither failed on the lock nor was lost"
    assert sorted(p.stem for p in (warehouse / "participation").glob("*.parquet")) == ["XVIII-12-c", "XXVI-8"]
    assert receiver.bodies == [], "a clean run sends no alert"

    url = untc.mtdsg_url("XVIII-12-c")
    lying = (MTDSG / "XVIII-12-c.en.xml").read_bytes().replace(b"<Parties>115</Parties>", b"<Parties>116</Parties>")
    bad = trigger(make_mirror(tmp_path, {url: ("XVIII-12-c.xml", lying)}))
    output = bad.stdout + bad.stderr
    assert bad.returncode == 1 and "Failed" in output, output[-2000:]  # red in Prefect, after publishing
    failed = flow_run_id(bad.stdout)
    assert "1 batch(es) quarantined, 0 failed" in run("flow-run", "inspect", failed).stdout, "the state's message"
    assert (warehouse / "participation" / "XXVI-8.parquet").exists()
    deadline = time.monotonic() + 60
    while len(receiver.bodies) < 2 and time.monotonic() < deadline:  # the automation fires from the server
        time.sleep(0.5)
    logs = run("flow-run", "logs", failed).stdout
    assert "Traceback" not in logs and "Engine execution exited" not in logs, logs[-3000:]
    ours = [b for b in receiver.bodies if not b["subject"].startswith("armswatch (Prefect)")]
    assert len(ours) == 1, f"exactly one armswatch alert per flow run, got {receiver.bodies}"
    alert = ours[0]["text"]
    assert "treaties.parsed_parties: expect_column_pair_values_to_be_equal" in alert and "XVIII-12-c" in alert
    assert "evidence (in the warehouse): _quarantine/" in alert and str(tmp_path) not in alert
    assert re.search(r"Flow run: http://127\.0\.0\.1:\d+/runs/flow-run/[0-9a-f-]{36}", alert), "a link to the UI"
    automated = [b for b in receiver.bodies if b["subject"].startswith("armswatch (Prefect)")]
    assert [b["subject"].endswith("of armswatch-treaties is Failed") for b in automated] == [True], receiver.bodies

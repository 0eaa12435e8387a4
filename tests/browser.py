"""Headless Chromium for the tests: load a page from file:// with the network off, screenshot it, dump its DOM
and list the requests the page made (from Chromium's net log)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Off: every request goes to a proxy on a closed loopback port; Chromium's own background services are disabled.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--disable-background-networking", "--disable-component-update",
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
]


def chromium() -> str:
    """Debian's chromium; missing fails under CI (.ci/run installs it) and skips elsewhere."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@dataclass
class Load:
    dom: str
    screenshot: Path
    requests: list[str]  # URLs the page asked for over the network


def _run(args: list[str], work: Path, name: str) -> tuple[list[str], str]:
    net_log = work / f"{name}.netlog.json"
    command = [chromium(), *FLAGS, f"--user-data-dir={work / name}", f"--log-net-log={net_log}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return _page_requests(net_log), done.stdout


def _page_requests(net_log: Path) -> list[str]:
    """URLs of requests started on behalf of a file:// page (Chromium's own requests carry another isolation key)."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return sorted({e["params"]["url"] for e in log["events"] if e["type"] == start
                   and "file://" in e["params"].get("network_isolation_key", "")})


def load(url: str, work: Path, width: int = 1280, height: int = 6000) -> Load:
    """Screenshot and DOM of `url` (two Chromium runs, each with its own profile and net log)."""
    work.mkdir(parents=True, exist_ok=True)
    shot = work / "screenshot.png"
    shot_requests, _ = _run([f"--window-size={width},{height}", f"--screenshot={shot}", url], work, "shot")
    dom_requests, dom = _run(["--dump-dom", url], work, "dom")
    return Load(dom, shot, sorted(set(shot_requests) | set(dom_requests)))

"""Shared test fixtures: the recorded upstream data in ../shared/data and one Prefect test harness per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MTDSG = SHARED / "untc" / "mtdsg-2018-01-15"


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def make_mirror(tmp_path: Path, replace: dict[str, tuple[str, bytes]] | None = None, drop=()) -> Path:
    """A mirror of ../shared/data in which some URLs serve other bytes (from a file of the given name, whose
    extension sets the content type) and some URLs are missing."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    entries = [{"url": e["url"], "file": str(SHARED / e["file"])}
               for e in json.loads((SHARED / "manifest.json").read_text()) if e["url"] not in drop]
    for url, (name, body) in (replace or {}).items():
        (mirror / name).write_bytes(body)
        entries = [e for e in entries if e["url"] != url] + [{"url": url, "file": name}]
    (mirror / "manifest.json").write_text(json.dumps(entries))
    return mirror

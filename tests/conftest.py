"""Shared test fixtures: the recorded upstream data in ../shared/data and one Prefect test harness per session."""

from __future__ import annotations

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

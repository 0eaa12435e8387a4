"""Prefect flows for armswatch and the `armswatch` CLI. Analytics of Prefect and GX are off by default."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

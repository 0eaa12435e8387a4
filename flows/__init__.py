"""Prefect flows for armswatch and the `armswatch` CLI. Analytics of Prefect and GX are off by default, and Great
Expectations' log lines go to Prefect's logs of the run (PREFECT_LOGGING_EXTRA_LOGGERS; read when Prefect is
imported, so prefect.yaml sets it too)."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "great_expectations")

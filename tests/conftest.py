"""Shared test fixtures: the recorded upstream data in ../shared/data and one Prefect test harness per session."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MTDSG = SHARED / "untc" / "mtdsg-2018-01-15"
M49_URL = "https://unstats.un.org/unsd/methodology/m49/overview/"
M49_CSV = SHARED / "unsd" / "m49" / "UNSD-Methodology.csv"
REPORT_PAGE = "https://data.unodc.org/datareport/firearm-seizures"


@functools.cache
def recorded_countries():
    """The countries table parsed from the recorded UNSD M49 CSV (M49_CSV), once per session."""
    from tasks import m49

    return m49.countries(M49_CSV.read_bytes(), M49_URL)


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def no_fetch_retry_waits(monkeypatch):
    """Runs fetch with their real retry count and condition in every test; only the waits of tasks.http.SETTINGS
    are zero, so a maintenance page or a 503 costs the tests its retries, not seconds of backoff."""
    from dataclasses import replace

    from tasks import http

    monkeypatch.setattr(http, "SETTINGS", replace(http.SETTINGS, backoff_factor=0, retry_after_max=0))


@pytest.fixture
def aliases_file(tmp_path, monkeypatch) -> Path:
    """A country_aliases.yaml the test writes (not yet there), in place of the project's, with the resolver's
    caches cleared before and after (each CLI process starts with empty caches)."""
    from tasks import countries

    path = tmp_path / "country_aliases.yaml"
    monkeypatch.setattr(countries, "ALIASES_FILE", path)
    countries.declared.cache_clear()
    countries.resolve_name.cache_clear()
    yield path
    countries.declared.cache_clear()
    countries.resolve_name.cache_clear()


def make_mirror(tmp_path: Path, replace: dict[str, tuple[str, bytes]] | None = None, drop=()) -> Path:
    """A verified mirror like ../shared/data in tmp_path/mirror (files hard-linked, or copied, at their relative
    paths, so the manifest keeps them inside the folder) in which some URLs serve other bytes (from a file of the
    given name, whose extension sets the content type; sha256 and bytes recomputed) and some URLs are missing."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    entries = [e for e in json.loads((SHARED / "manifest.json").read_text()) if e["url"] not in drop]
    for url, (name, body) in (replace or {}).items():
        (mirror / name).write_bytes(body)
        entries = [{**e, "file": name, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
                   if e["url"] == url else e for e in entries]
        if url not in {e["url"] for e in entries}:
            entries.append({"url": url, "file": name, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)})
    replaced = {name for name, _ in (replace or {}).values()}
    for entry in entries:
        target = mirror / entry["file"]
        if entry["file"] in replaced or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(SHARED / entry["file"], target)
        except OSError:
            shutil.copyfile(SHARED / entry["file"], target)
    (mirror / "manifest.json").write_text(json.dumps(entries))
    return mirror


def report_page(*months: str) -> bytes:
    """A data report page in the shape UNODC uses: a download link per release (relative or absolute)."""
    links = "".join(f'<li><a href="/sites/dataportal.unodc.org/files/{m}/data_iafq_firearms_trafficking.xlsx">'
                    f"Firearms trafficking data ({m})</a></li>" for m in months)
    return (f"<!DOCTYPE html><html><head><title>Firearms seizures | dataUNODC</title></head><body><main>"
            f"<h1>Firearms seizures</h1><ul>{links}</ul></main></body></html>").encode()

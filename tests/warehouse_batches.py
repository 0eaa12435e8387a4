"""Small treaty batches for the publish tests (a helper module), importable by the tests and their child processes.

`batches(version)` gives, per batch key, a TREATIES and a PARTICIPATION table whose content differs for every
version, so a file's fingerprint tells which version it holds. `CHILD` is the program a killed child runs:
`python -c CHILD <tests dir> <root path or URL> <version> <run_id> [publish|hold]` (env LEASE_SECONDS: the
lease of an object-store lock). With KILL_AT=k in the environment it
SIGKILLs itself just before the k-th file-system step of the publish (os.replace, os.fsync, os.mkdir, os.unlink)
and prints the steps it saw ("step <name> <file>") so a calibration run can name each kill point.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pyarrow as pa

from tasks.tables import PARTICIPATION, TREATIES, Table

KEYS = ("XCIX-1", "XCIX-2", "XCIX-3")
TABLES = (TREATIES, PARTICIPATION)
SNAPSHOT = date(2026, 11, 28)


def batch(key: str, version: int, fetched_at: datetime | None = None) -> dict[Table, pa.Table]:
    fetched_at = fetched_at or datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
    treaty = {
        "mtdsg_no": key, "short_name": f"Test {key}", "title": f"Test treaty {key}, version {version}",
        "chapter": "XCIX", "conclusion_date": date(2001, 5, 31), "stated_signatories": 3,
        "stated_parties": version, "parsed_signatories": 3, "parsed_parties": version,
        "participant_table_found": True, "source_url": f"https://example.test/{key}.xml",
        "raw_sha256": f"{version:064x}", "fetched_at": fetched_at, "as_of": SNAPSHOT,
    }
    participants = [
        {"mtdsg_no": key, "participant": name, "footnotes": [i] if i else [], "iso3": iso3,
         "signature_date": date(2001, 1, 1) + timedelta(days=version + i), "signature_kind": "signature",
         "consent_date": date(2005, 1, 1) + timedelta(days=version * 7 + i), "consent_kind": "ratification",
         "is_party": True, "is_state": True, "participant_kind": "state", "withdrawn": False}
        for i, (name, iso3) in enumerate([("Albania", "ALB"), ("Argentina", "ARG"), ("Denmark", "DNK")])
    ]
    return {
        TREATIES: pa.Table.from_pylist([treaty], schema=TREATIES.schema),
        PARTICIPATION: pa.Table.from_pylist(participants, schema=PARTICIPATION.schema),
    }


def batches(version: int, keys: tuple[str, ...] = KEYS) -> dict[str, dict[Table, pa.Table]]:
    return {key: batch(key, version) for key in keys}


CHILD = r"""
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tasks.publish import Warehouse
import warehouse_batches as wb

import tasks.publish
tasks.publish.LEASE_SECONDS = float(os.environ.get("LEASE_SECONDS", tasks.publish.LEASE_SECONDS))
root, version, run_id, mode = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
kill_at, steps = int(os.environ.get("KILL_AT", "0")), []


def hooked(module, name):
    real = getattr(module, name)

    def step(*args, **kwargs):
        steps.append(f"{name} {Path(str(args[-1] if name == 'replace' else args[0])).name}")
        print("step", steps[-1], flush=True)
        if len(steps) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(module, name, step)


data = wb.batches(version)
with Warehouse(root).locked(timeout=10) as warehouse:
    if mode == "hold":
        print("locked", os.getpid(), flush=True)
        time.sleep(60)
    for name in ("replace", "fsync", "mkdir", "unlink"):
        hooked(os, name)
    print("ready", flush=True)
    warehouse.publish(run_id, data, wb.SNAPSHOT)
    print("done", flush=True)
"""

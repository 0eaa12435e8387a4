"""Time of the analyst outputs a publishing run rebuilds, on a warehouse already published (e.g. after
`ARMSWATCH_MIRROR=../shared/data make run`): armswatch.duckdb (views and comments), csv/ with datapackage.json, and
the `frictionless validate` of that package. Prints figures; asserts nothing; writes only those outputs.

  .venv/bin/python benchmarks/outputs.py [WAREHOUSE]      (default ./warehouse)
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tasks import datapackage, duckdb_views  # noqa: E402
from tasks.panel import PUBLISHED_TABLES  # noqa: E402
from tasks.publish import Warehouse  # noqa: E402


def timed(what: str, step) -> None:
    start = time.perf_counter()
    detail = step()
    print(f"{what:<34} {time.perf_counter() - start:6.2f} s  {detail}")


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "warehouse").resolve()
    warehouse, tables = Warehouse(root), list(PUBLISHED_TABLES)
    print(f"warehouse {root}: {sum(len(warehouse.files(t)) for t in tables)} current files")

    def database() -> str:
        return f"{duckdb_views.build(root, tables).stat().st_size:,} bytes"

    def package() -> str:
        datapackage.build(warehouse, tables, datapackage.origins(), datetime.now(timezone.utc))
        csvs = list((root / datapackage.FOLDER).glob("*.csv"))
        return f"{len(csvs)} CSV files, {sum(p.stat().st_size for p in csvs):,} bytes"

    def validate() -> str:
        command = [str(Path(sys.executable).with_name("frictionless")), "validate", str(root / datapackage.PACKAGE)]
        return "valid" if subprocess.run(command, capture_output=True).returncode == 0 else "INVALID"

    timed("armswatch.duckdb (views, comments)", database)
    timed("csv/ and datapackage.json", package)
    timed("frictionless validate", validate)


if __name__ == "__main__":
    main()

"""warehouse/armswatch.duckdb: a DuckDB database holding no data, only views over the published Parquet files.

One view per published table (`<table>`), plus `<table>_latest` for the tables that hold several releases
(firearms_seizures, indicator_observations). The views read the files the warehouse manifest names as current
when the database is built (`Warehouse.files`: every batch at one version across its tables; they are immutable,
so the views stay readable while later runs publish), by paths RELATIVE to the warehouse, so the folder can be
moved or shared; DuckDB resolves relative paths against the working directory or
`file_search_path`, so open it from the warehouse folder (`cd warehouse && duckdb armswatch.duckdb`), or anywhere
with `SET file_search_path = '<warehouse>'` (what `connect()` does). Only a local warehouse gets the file (DuckDB
cannot write its database to an object store; flows/panel.py skips it there with a logged note). Upstream: none (reads the warehouse).
Tables fed: none; every published table gets a view.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from tasks.publish import Warehouse
from tasks.storage import atomic_write
from tasks.tables import Table

DATABASE = "armswatch.duckdb"

#: Tables holding several releases -> the SQL condition a row of the latest release meets. is_latest_release is
#: the producer's mark; the window is a second guard, so a stale mark never counts a release twice.
LATEST = {
    "firearms_seizures": "is_latest_release QUALIFY release_date = max(release_date) OVER ()",
    "indicator_observations": "is_latest_release QUALIFY release = max(release) OVER (PARTITION BY series)",
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_statements(files: dict[str, list[str]]) -> list[str]:
    """CREATE VIEW statements for the tables of `files` (table -> its current files relative to the warehouse, at
    least one each)."""
    statements = []
    for name, paths in files.items():
        source = f"read_parquet([{', '.join(_quote(p) for p in paths)}], union_by_name = true)"
        statements.append(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM {source}')
        if name in LATEST:
            statements.append(f'CREATE OR REPLACE VIEW "{name}_latest" AS SELECT * FROM "{name}" WHERE {LATEST[name]}')
    return statements


def build(root: Path, tables: list[Table]) -> Path:
    """Write root/armswatch.duckdb with a view per table that has published files; returns its path.

    Built in a temporary file and renamed into place, so a reader never sees a half-built database."""
    root = Path(root).resolve()
    published = Warehouse(root).manifest()["tables"]  # one read; it names each file relative to the warehouse
    files = {t.name: [entries[stem]["file"] for stem in sorted(entries)] for t in tables
             if (entries := published.get(t.name))}
    target = root / DATABASE
    tmp = root / f".{DATABASE}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(tmp)) as con:
            con.execute(f"SET file_search_path = {_quote(str(root))}")
            for statement in view_statements(files):
                con.execute(statement)
        with open(tmp, "rb") as fh:
            atomic_write(target, fh.read())
        target.chmod(0o644)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    return target


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """Open root/armswatch.duckdb read-only from any working directory."""
    root = Path(root).resolve()
    con = duckdb.connect(str(root / DATABASE), read_only=True)
    con.execute(f"SET file_search_path = {_quote(str(root))}")
    return con

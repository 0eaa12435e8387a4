"""warehouse/armswatch.duckdb: a DuckDB database holding no data, only views over the published Parquet files.

One view per published table (`<table>`), plus `<table>_latest` for the tables that hold several releases
(firearms_seizures, indicator_observations). The views read the files the warehouse manifest names as current
when the database is built (`Warehouse.files`: every batch at one version across its tables; they are immutable,
so the views stay readable while later runs publish), by ABSOLUTE paths, each one quoted SQL string (a comma, a
quote or a bracket in the warehouse path is part of the name), so the database opens from any working directory;
a moved warehouse needs the file rebuilt (any run that publishes, or `build`). Views and columns carry the data
dictionary's descriptions (COMMENT ON, from tasks/tables.py). The file is written in DuckDB's storage format
STORAGE_VERSION, which every DuckDB release of the last twelve months reads (tests/test_analyst_outputs.py opens it
with the oldest one). On an object store the file is written into the bucket and its views name the files by URL
(`s3://bucket/prefix/_history/...`): a reader attaches it read-only with httpfs. Upstream: none (reads the
warehouse). Tables fed: none; every published table gets a view.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from upath import UPath

from tasks import storage
from tasks.publish import RUN_ID, Warehouse
from tasks.storage import atomic_write
from tasks.tables import Table, field_doc

DATABASE = "armswatch.duckdb"
#: The storage format written: DuckDB 1.4.0 and later read it (1.4.3, of December 2025, is the oldest release of the
#: last twelve months; 2.0 writes a newer format by default, which 1.4 and 1.5 refuse).
STORAGE_VERSION = "v1.4.0"
OLDEST_READER = "1.4.3"
RUN_ID_DOC = "The armswatch run that published this version of the batch (run ids sort by time)"

#: Tables holding several releases -> the SQL condition a row of the latest release meets. is_latest_release is
#: the producer's mark; the window is a second guard, so a stale mark never counts a release twice.
LATEST = {
    "firearms_seizures": "is_latest_release QUALIFY release_date = max(release_date) OVER ()",
    "indicator_observations": "is_latest_release QUALIFY release = max(release) OVER (PARTITION BY series)",
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_statements(files: dict[str, list[str]]) -> list[str]:
    """CREATE VIEW statements for the tables of `files` (table -> its current files as absolute paths, at least
    one each)."""
    statements = []
    for name, paths in files.items():
        listed = ", ".join(_quote(p) for p in paths)  # the snapshot_date folder is not a column of the table
        source = f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false)"
        statements.append(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM {source}')
        if name in LATEST:
            statements.append(f'CREATE OR REPLACE VIEW "{name}_latest" AS SELECT * FROM "{name}" WHERE {LATEST[name]}')
    return statements


def comment_statements(table: Table, view: str, columns: list[str]) -> list[str]:
    """COMMENT ON the view and each of its `columns` from the table's declared descriptions."""
    docs = {f.name: field_doc(f) for f in table.schema} | {RUN_ID: RUN_ID_DOC}
    doc = table.doc + (" Latest release only." if view != table.name else "")
    return [f'COMMENT ON VIEW "{view}" IS {_quote(doc)}'] + [
        f'COMMENT ON COLUMN "{view}"."{column}" IS {_quote(docs[column])}' for column in columns if docs.get(column)]


def build(root, tables: list[Table]) -> UPath:
    """Write root/armswatch.duckdb with a view per table that has published files; returns its path.

    Built in a temporary local file, then written in one step (renamed into place, or one PUT), so a reader never
    sees a half-built database. On an object store the views name each file by its URL (s3://bucket/...), read
    here through the store's fsspec filesystem; a reader attaches the file with DuckDB's httpfs."""
    warehouse = Warehouse(root)
    root = warehouse.root
    files = {t.name: [str(root / f) for f in paths] for t in tables
             if (paths := [entry["file"] for _, entry in sorted(warehouse.entries(t).items())])}
    target = root / DATABASE
    with tempfile.TemporaryDirectory(prefix="armswatch-duckdb-") as scratch:
        tmp = Path(scratch) / DATABASE
        with duckdb.connect() as con:
            if not storage.is_local(root):
                con.register_filesystem(root.fs)
            con.execute(f"ATTACH {_quote(str(tmp))} AS armswatch (STORAGE_VERSION {_quote(STORAGE_VERSION)})")
            con.execute("USE armswatch")
            for statement in view_statements(files):
                con.execute(statement)
            for table in (t for t in tables if t.name in files):
                for view in [table.name] + ([f"{table.name}_latest"] if table.name in LATEST else []):
                    columns = [c for (c,) in con.execute(f'SELECT column_name FROM (DESCRIBE "{view}")').fetchall()]
                    for statement in comment_statements(table, view, columns):
                        con.execute(statement)
            con.execute("USE memory")
            con.execute("DETACH armswatch")
        atomic_write(target, tmp.read_bytes())
    return target


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """Open root/armswatch.duckdb read-only (from any working directory: its views name absolute paths)."""
    return duckdb.connect(str(Path(root).resolve() / DATABASE), read_only=True)

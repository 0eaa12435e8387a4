"""The data dictionary: every published table's columns, types and meanings, rendered from tasks/tables.py, and
every source's origin (producer, licence, citation) from sources/*.yaml.

`armswatch docs` prints it; warehouse/README.md is this text (a test keeps the two equal). Tables fed: none.
"""

from __future__ import annotations

from tasks import registry
from tasks.panel import PUBLISHED_TABLES
from tasks.tables import field_doc

LAYOUT = """# warehouse/

Published data lives here (git-ignored), or at the URL given as `--warehouse` (`s3://bucket/prefix`: the same
layout). Every table is a set of Parquet files, one per batch, all with the table's full schema. Dates are
`date32`, timestamps UTC.

The simplest way in is `armswatch.duckdb`: a DuckDB database with no data, only one view per
table and the latest-release views `firearms_seizures_latest` and `indicator_observations_latest`, reading the
current files the manifest named when it was built, by absolute paths, so it opens from any folder
(`duckdb warehouse/armswatch.duckdb`; Python: `tasks.duckdb_views.connect('warehouse')`), in DuckDB 1.4.0 or
later (it is written in storage format v1.4.0, which every DuckDB release of the last twelve months reads). Every
view and column carries its description below (`select * from duckdb_columns()`). It is rebuilt after every
run that published something; a moved or copied warehouse gets its own after its next run. On an object store it
is in the bucket, its views naming the files by URL (attach it read-only with httpfs).
`report/index.html` is a self-contained page of charts, `csv/<table>.csv` each table of the latest release as CSV
(UTF-8, ISO 8601 dates, list and struct columns as JSON) and `datapackage.json` a Frictionless Data Package
describing every CSV (types, descriptions, sources, licences; `frictionless validate warehouse/datapackage.json`);
these are built for local warehouses only.

A table can also be read with one glob: `<table>/*.parquet` holds the current rows of the latest release only
(DuckDB `select * from 'warehouse/firearms_seizures/*.parquet'`, `polars.read_parquet(...)`,
`pandas.read_parquet('warehouse/firearms_seizures')`, `pyarrow.dataset.dataset(...)`); the older IAFQ releases
(`is_latest_release` false) are in `firearms_seizures_releases/`. A glob taken while a publish runs may see one
batch's tables at different versions; the manifest never does.

Files are created with the process's umask (as any new file), so the manifest is as readable as the data.

- `_manifest.json`: what is current, replaced in one atomic write as the last step of every publish (on an
  object store only if it is still the version the publishing run read, see the project README): per table,
  each batch's file (always inside `_history/<table>/`), fingerprint, glob copy and what it was built from
  (`tables`; `sources`: the raw sha256s, or a derived batch's input fingerprints, with `suites:` and `code:`
  digests of what validated and parsed it) and the list of current files (`files`, relative to the warehouse). Reading the files it names gives every batch at one version
  across all its tables
  (`tasks.publish.Warehouse(url).read(table)` / `.files(table)`; DuckDB: see the project README).
- `_history/<table>/snapshot_date=YYYY-MM-DD/<batch>.<run>.parquet`: the data files, immutable: every published
  version (hive-partitioned by snapshot date), each with a `run_id` column (the run that published it; run ids
  sort by their start time, `YYYYMMDDTHHMMSSZ-xxxxxx`); the manifest names the current ones. A table as the runs
  started before time T (UTC) left it is, per batch, its version of the greatest `run_id` below T (two runs on
  one day are told apart; `<= '<run id>'` gives it as one run left it):
  `select * from read_parquet('warehouse/_history/participation/*/*.parquet', union_by_name = true)
  where run_id < '20260115T000000Z' qualify run_id = max(run_id) over (partition by mtdsg_no)` (partition by the
  table's batch column below; `countries` and `country_year_panel` are one batch: no partition).
- `<table>/<batch>.parquet`: a copy of each current file of the latest release, for one-glob reads (older
  releases: `<table>_releases/<batch>.parquet`); the manifest entry's `copy` names it. A batch is a treaty (MTDSG
  id), an SDG series, an IAFQ release (release date) or, for `countries` and the panel, the whole table.
- `_pending/`: a publish in progress (the next run rolls it back or forward); `.lock` (local) or `_lock.json`
  (object store): the run holding the warehouse.
- `_quarantine/<run>/<batch>/`: a batch that failed, with `reason.txt`, `validation.json` (the GX results) and
  the staged tables; never read as published data.
- `_raw/`: every response fetched (`objects/` by sha256, `responses/` one JSON record per fetch).
- `_docs/`: Great Expectations Data Docs of the latest validations (static HTML; local warehouses).
- `armswatch.duckdb` (also on an object store), `report/`, `csv/`, `datapackage.json` (local warehouses):
  rebuilt at the end of each run that changed something.

This file is generated by `armswatch docs` from the schemas in tasks/tables.py and tasks/panel.py.
"""


STATES = "UN member and observer states only (195)"
ALL = "every participant, organisations included"
YEAR_END = "31 December; the as-of year is partial (`complete_year` false)"
#: The counts of parties side by side: (column, participants counted, what it counts, as at when).
DEFINITIONS = (
    ("`treaties.stated_parties`, `stated_signatories`", f"{ALL}, as UNTC states them", "consents deposited, "
     "signatures", "`treaties.as_of` (UNTC's status date)"),
    ("`treaties.parsed_parties`", "every participant with a consent date", "consents deposited (withdrawn too)",
     "`treaties.as_of`"),
    ("`participation.is_party`", "one row per participant (`is_state`, `participant_kind`)",
     "a consent deposited, not withdrawn", "`treaties.as_of`"),
    ("`ratification_progress.cumulative_consents`", f"{ALL} (`includes_organisations`)",
     "consents deposited less withdrawals", YEAR_END),
    ("`ratification_progress.cumulative_parties`", ALL, "parties in force (`participation.in_force_date`) less "
     "withdrawals", YEAR_END),
    ("`treaty_status.status` = `party`", STATES, "a consent deposited, not withdrawn", "`treaty_status.as_of`"),
    ("`treaty_status_by_year.consent_deposited`", STATES, "a consent deposited, not withdrawn", YEAR_END),
    ("`treaty_status_by_year.party`", STATES, "party in force", YEAR_END),
    ("`country_year_panel`", STATES, "indicators; treaty status is in `treaty_status_by_year`",
     "the latest SDG and IAFQ releases"),
    ("report: maps, regions, signed not ratified", STATES, "`treaty_status.status`", "`treaty_status.as_of`"),
    ("report: parties per year", STATES, "consents deposited and parties in force", "31 December of complete years"),
)


def definitions() -> str:
    """Which table counts what, in one table."""
    rows = ["## Which table counts what\n",
            "Counts of parties differ by definition: which participants they count (organisations such as the "
            "European Union or states only), consents deposited or parties in force, and as at when. Firearms "
            "Protocol, 2014-2017: `ratification_progress.cumulative_consents` 112, 114, 114, 115 (the European "
            "Union included); `treaty_status_by_year` 111, 113, 113, 114 states with a consent deposited.\n",
            "| column | participants counted | counts | as at |", "| --- | --- | --- | --- |"]
    rows += [f"| {' | '.join(row)} |" for row in DEFINITIONS]
    return "\n".join(rows) + "\n"


def sources() -> str:
    """Each registered source's origin, as the report's "Sources and licences" section gives it."""
    rows = ["## Sources and licences\n", "| source | producer | licence | citation |", "| --- | --- | --- | --- |"]
    for o in registry.origins():
        rows.append(f"| [{o.title}]({o.url_main}) | {o.producer} | [{o.license.name}]({o.license.url}) | "
                    f"{o.citation_full} |")
    return "\n".join(rows) + "\n"


def markdown() -> str:
    sections = [LAYOUT, definitions(), sources()]
    for table in PUBLISHED_TABLES:
        batch = f"one file per `{table.batch_key}`" if table.batch_key else "one file"
        rows = [f"## {table.name}\n\n{table.doc} ({batch})\n", "| column | type | meaning |", "| --- | --- | --- |"]
        for field in table.schema:
            rows.append(f"| `{field.name}` | `{field.type}`{'' if field.nullable else ', not null'} | "
                        f"{field_doc(field)} |")
        sections.append("\n".join(rows) + "\n")
    return "\n".join(sections)

"""CSV for people without Parquet: warehouse/csv/<table>.csv and warehouse/datapackage.json.

Each CSV holds a published table's current rows, of the latest release only (rows with `is_latest_release`
false are left out): UTF-8, a header row, dates and timestamps in ISO 8601 (`2003-04-10`,
`2026-11-28T12:00:00.000000Z`), booleans `true`/`false`, missing values empty, list and struct columns as JSON.
`datapackage.json` is a Frictionless Data Package (https://specs.frictionlessdata.io/data-package/) describing
every CSV as a resource: its schema (each column's type and description, from tasks/tables.py, required when not
nullable), its description, and its sources and licences (the `origin` of each source whose data it holds:
sources/*.yaml, UNTC's in sources/untc.yaml). `frictionless validate warehouse/datapackage.json` checks both.
Built from the files the manifest names, by the run that published (flows/panel.py), local warehouses only.
Upstream: none (reads the warehouse). Tables fed: none (a copy of every published table).
"""

from __future__ import annotations

import json
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from upath import UPath

from tasks import registry
from tasks.panel import INPUTS
from tasks.publish import Warehouse
from tasks.source import Origin
from tasks.storage import atomic_write
from tasks.tables import TREATY_TABLES, Table, field_doc

PACKAGE = "datapackage.json"
FOLDER = "csv"


def origins(folder=None) -> dict[str, list[Origin]]:
    """Table name -> the origins of its data (where it comes from, its licence, how to cite it): UNTC's for the
    treaty tables, each registered source's for its tables, and for an analyst table those of its inputs."""
    treaties, *others = registry.origins(folder)  # in run order: the treaties, then registry.SOURCES
    found = {t.name: [treaties] for t in TREATY_TABLES}
    for source, origin in zip(registry.SOURCES, others, strict=True):
        for table in (*source.tables, *source.derived_tables):  # a derived table may come from several sources
            found.setdefault(table.name, []).append(origin)
    for name, inputs in INPUTS.items():
        found[name] = [o for t in inputs for o in found[t.name]]
    return {name: list({o.title: o for o in every}.values()) for name, every in found.items()}


def field_type(type_: pa.DataType) -> str:
    """The Frictionless field type of an Arrow type."""
    for test, name in ((pa.types.is_boolean, "boolean"), (pa.types.is_integer, "integer"),
                       (pa.types.is_floating, "number"), (pa.types.is_date, "date"),
                       (pa.types.is_timestamp, "datetime"), (pa.types.is_list, "array"),
                       (pa.types.is_large_list, "array"), (pa.types.is_struct, "object"),
                       (pa.types.is_map, "object")):
        if test(type_):
            return name
    return "string"


def latest(data: pa.Table) -> pa.Table:
    """The rows of the latest release (all rows of a table without `is_latest_release`)."""
    if "is_latest_release" not in data.column_names:
        return data
    return data.filter(pc.fill_null(data["is_latest_release"], False))


def plain(value, type_: pa.DataType):
    """A nested Arrow value as JSON data: a map as an object (Arrow gives its entries as pairs), dates as text."""
    if value is None:
        return None
    if pa.types.is_map(type_):
        return {str(k): plain(v, type_.item_type) for k, v in value}
    if pa.types.is_struct(type_):
        return {f.name: plain(value[f.name], f.type) for f in type_}
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return [plain(v, type_.value_type) for v in value]
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def csv_bytes(data: pa.Table) -> bytes:
    """The table as CSV: nested columns as JSON text, timestamps as ISO 8601 in UTC."""
    columns = []
    for field, column in zip(data.schema, data.columns):
        if field_type(field.type) in ("array", "object"):
            column = pa.array([None if v is None else json.dumps(plain(v, field.type), ensure_ascii=False)
                               for v in column.to_pylist()], pa.string())
        elif pa.types.is_timestamp(field.type):
            column = pc.strftime(column, "%Y-%m-%dT%H:%M:%SZ" if field.type.tz else "%Y-%m-%dT%H:%M:%S")
        columns.append(column)
    sink = pa.BufferOutputStream()
    pcsv.write_csv(pa.table(columns, names=data.column_names), sink,
                   pcsv.WriteOptions(quoting_style="needed"))
    return sink.getvalue().to_pybytes()


def _sources(origins: list[Origin]) -> list[dict]:
    return [{"title": o.title, "path": str(o.url_main), "description": o.citation_full} for o in origins]


def _licenses(origins: list[Origin]) -> list[dict]:
    found = {str(o.license.url): o.license.name for o in origins}
    return [{"title": name, "path": url} for url, name in found.items()]


def resource(table: Table, origins: list[Origin]) -> dict:
    """The Frictionless resource describing csv/<table>.csv."""
    fields = []
    for field in table.schema:
        described = {"name": field.name, "type": field_type(field.type), "description": field_doc(field)}
        if not field.nullable:
            described["constraints"] = {"required": True}
        fields.append(described)
    return {"name": table.name, "path": f"{FOLDER}/{table.name}.csv", "format": "csv", "mediatype": "text/csv",
            "encoding": "utf-8", "description": table.doc, "schema": {"fields": fields},
            "sources": _sources(origins), "licenses": _licenses(origins)}


def descriptor(resources: list[tuple[Table, list[Origin]]], created: datetime) -> dict:
    """The data package of `resources` (each table with the origins of its data)."""
    every = list({o.title: o for _, origins in resources for o in origins}.values())
    return {"name": "armswatch", "title": "armswatch: UN instruments against illicit arms and illicit-arms "
                                          "indicators",
            "description": "Treaty status (UNTC), SDG 16.4.2 and 16.1.1, UNODC IAFQ firearms seizures and the "
                           "country x year panel, as published by armswatch (latest release only).",
            "created": created.isoformat(timespec="seconds"), "sources": _sources(every),
            "licenses": _licenses(every), "resources": [resource(t, o) for t, o in resources]}


def build(warehouse: Warehouse, tables: list[Table], origins: dict[str, list[Origin]], created: datetime) -> UPath:
    """Write csv/<table>.csv for every table with published files and datapackage.json describing them (last, so
    it never names a CSV not yet written); `origins` maps a table name to the origins of its data."""
    written = []
    for table in tables:
        if warehouse.files(table):
            atomic_write(warehouse.root / FOLDER / f"{table.name}.csv", csv_bytes(latest(warehouse.read(table))),
                         durable=False)
            written.append((table, origins.get(table.name, [])))
    target = warehouse.root / PACKAGE
    atomic_write(target, json.dumps(descriptor(written, created), indent=1, ensure_ascii=False).encode(),
                 durable=False)
    return target

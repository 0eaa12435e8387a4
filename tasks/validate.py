"""Great Expectations validation of staged batches, with suites from expectations/<table>.json.

Each table's stacked batch (all treaties, or all series, of one run) is validated once in an ephemeral GX
context; failures are then attributed to batches through the table's batch-key column (GX's
unexpected_index_column_names), so one bad treaty fails alone while table-level failures (column drift, row
counts) fail every batch in the table. What the table's pyarrow schema (tasks/tables.py) already says is derived
from it, not repeated in the JSON: the column set and order (drift), not-null for every non-nullable column, and
finite values (no NaN, inf, -inf) in every float column. Tables fed: none; it gates every table.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tasks.tables import Table

SUITES = Path(__file__).resolve().parent.parent / "expectations"
#: How a suites digest starts, among the sha256s a batch is built from.
SUITES_DIGEST = "suites:"
FLOAT_MAX = sys.float_info.max


def _gx():
    """Great Expectations, imported only when something must be validated (it takes seconds to import)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # analytics must be off before the import
    import great_expectations

    return great_expectations


@dataclass
class Failure:
    """One failed expectation, as a person reading an alert needs it."""

    table: str
    expectation: str
    kwargs: dict
    observed: object
    note: str = ""

    def __str__(self) -> str:
        note = f" ({self.note})" if self.note else ""
        column = self.kwargs.get("column") or self.kwargs.get("column_list") or self.kwargs.get("column_A") or ""
        return f"{self.table}: {self.expectation}{f'[{column}]' if column else ''}{note}; observed {self.observed}"


@dataclass
class TableResult:
    table: str
    success: bool
    report: dict
    failures: dict[str, list[Failure]] = field(default_factory=dict)  # batch key -> failures
    table_failures: list[Failure] = field(default_factory=list)  # failures that concern every batch

    def failures_for(self, key: str) -> list[Failure]:
        return self.table_failures + self.failures.get(key, [])


def suite_definition(table: Table) -> dict:
    """The reviewed JSON suite plus the expectations derived from the table's schema."""
    suite = json.loads((SUITES / f"{table.name}.json").read_text())
    present = [(e["type"], e.get("kwargs", {})) for e in suite["expectations"]]
    suite["expectations"] += [e for e in schema_expectations(table) if (e["type"], e["kwargs"]) not in present]
    return suite


def suites_digest(tables) -> str:
    """One digest of what validates these tables (their reviewed suites and the expectations their schemas imply):
    part of what a batch is built from (tasks/run.py), so a batch is validated again after its suite changed."""
    definitions = json.dumps([suite_definition(t) for t in tables], sort_keys=True, default=str)
    return SUITES_DIGEST + hashlib.sha256(definitions.encode()).hexdigest()


def schema_expectations(table: Table) -> list[dict]:
    """Column drift, not-null for non-nullable columns, finite floats: what the pyarrow schema declares."""
    derived = [{
        "type": "expect_table_columns_to_match_ordered_list",
        "kwargs": {"column_list": list(table.schema.names)},
        "meta": {"notes": "column set and order must match the declared schema (drift)"},
    }]
    for f in table.schema:
        if not f.nullable:
            derived.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": f.name},
                            "meta": {"notes": "declared not null in the schema"}})
        if pa.types.is_floating(f.type):
            derived.append({"type": "expect_column_values_to_be_between",
                            "kwargs": {"column": f.name, "min_value": -FLOAT_MAX, "max_value": FLOAT_MAX},
                            "meta": {"notes": "a float column holds finite numbers only (NaN is shown as inf)"}})
    return derived


class Validator:
    """An ephemeral GX context; with `docs`, `build_docs()` writes static Data Docs of its validations there.

    Data Docs are built once, when the run ends, rather than by an UpdateDataDocsAction per checkpoint: that
    action rebuilt the site's index after every validation, about 0.14 s each (benchmarks/pipeline.py)."""

    SITE = "armswatch"

    def __init__(self, docs: Path | None = None):
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("armswatch")
        self.docs = docs
        if docs is not None:
            self.context.add_data_docs_site(site_name=self.SITE, site_config={
                "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            })
        self.checkpoints = {}

    def build_docs(self) -> None:
        """Data Docs of every validation this context ran (nothing without a docs folder)."""
        if self.docs is not None:
            self.context.build_data_docs(site_names=[self.SITE])

    def _checkpoint(self, table: Table):
        if table.name not in self.checkpoints:
            gx = _gx()
            batches = self.source.add_dataframe_asset(table.name).add_batch_definition_whole_dataframe("staged")
            suite = self.context.suites.add(gx.ExpectationSuite(**suite_definition(table)))
            definition = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=table.name, data=batches, suite=suite))
            result_format = {"result_format": "COMPLETE"}
            if table.batch_key:
                result_format["unexpected_index_column_names"] = [table.batch_key]
            self.checkpoints[table.name] = self.context.checkpoints.add(gx.Checkpoint(
                name=table.name, validation_definitions=[definition], result_format=result_format))
        return self.checkpoints[table.name]

    def validate(self, table: Table, data: pa.Table, parameters: dict | None = None) -> TableResult:
        frame = flatten_nested(nan_as_inf(data)).to_pandas()
        run = self._checkpoint(table).run(batch_parameters={"dataframe": frame},
                                          expectation_parameters=parameters or {})
        report = next(iter(run.run_results.values())).to_json_dict()
        outcome = TableResult(table.name, report["success"], report)
        for res in report["results"]:
            if res["success"]:
                continue
            config = res["expectation_config"]
            note = config.get("meta", {}).get("notes", "")
            index = res["result"].get("unexpected_index_list") if table.batch_key else None
            if index and not res["exception_info"].get("raised_exception"):  # row-level: attributable
                for key in sorted({str(row[table.batch_key]) for row in index}):
                    rows = [row for row in index if str(row[table.batch_key]) == key]
                    outcome.failures.setdefault(key, []).append(
                        Failure(table.name, config["type"], config["kwargs"], _sample(rows, table.batch_key), note))
            else:
                outcome.table_failures.append(Failure(table.name, config["type"], config["kwargs"], _observed(res), note))
        return outcome


def nan_as_inf(data: pa.Table) -> pa.Table:
    """NaN values of float columns as inf: pandas cannot tell NaN from null, so the finite check sees them."""
    for i, f in enumerate(data.schema):
        if pa.types.is_floating(f.type):
            column = data.column(i)
            data = data.set_column(i, f, pc.if_else(pc.is_nan(column), pa.scalar(math.inf, f.type), column))
    return data


def flatten_nested(data: pa.Table) -> pa.Table:
    """Map, list and struct columns as canonical JSON text, so that pandas-backed expectations can compare them."""
    for i, f in enumerate(data.schema):
        if pa.types.is_map(f.type) or pa.types.is_list(f.type) or pa.types.is_struct(f.type):
            values = data.column(i).to_pylist()
            text = [None if v is None else json.dumps(sorted(v) if pa.types.is_map(f.type) else v, default=str)
                    for v in values]
            data = data.set_column(i, pa.field(f.name, pa.string()), pa.array(text, pa.string()))
    return data


def _observed(res: dict) -> object:
    result = res["result"]
    if res["exception_info"].get("raised_exception"):
        return f"error: {res['exception_info'].get('exception_message')}"
    if "observed_value" in result:
        return result["observed_value"]
    sample = ", ".join(str(v) for v in result.get("partial_unexpected_list", [])[:3])
    return f"{result.get('unexpected_count')} unexpected, e.g. {sample}"


def _sample(rows: list[dict], batch_key: str) -> str:
    shown = "; ".join(", ".join(f"{k}={v}" for k, v in row.items() if k != batch_key) for row in rows[:3])
    return f"{len(rows)} unexpected row(s), e.g. {shown}"

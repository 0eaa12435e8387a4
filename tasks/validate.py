"""Great Expectations validation of staged batches, with suites from expectations/<table>.json.

Each table's stacked batch (all treaties, or all series, of one run) is validated once in an ephemeral GX
context; failures are then attributed to batches through the table's batch-key column (GX's
unexpected_index_column_names), so one bad treaty fails alone while table-level failures (column drift, row
counts) fail every batch in the table. What the table's pyarrow schema (tasks/tables.py) already says is derived
from it, not repeated in the JSON: the column set and order (drift), not-null for every non-nullable column, and
finite values (no NaN, inf, -inf) in every float column. Tables fed: none; it gates every table.

A run validates in a separate process (`IsolatedValidator`, one per armswatch process, started by `start` when a
run's first batch must be parsed, tasks/run.py Run.skip, so GX imports while it is parsed; ended once the run's
Data Docs are built): Great Expectations and what it imports (scipy, altair, SQLAlchemy; about 150 MB) never enter the
process that fetches and publishes, so neither process outgrows the run's memory budget (benchmarks/pipeline.py),
and a signal stops the run while GX is still being imported.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging.handlers
import math
import multiprocessing.connection
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
import uuid
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


class IsolatedValidator:
    """A `Validator` in the validation process: the same `validate` and `build_docs`, with the tables and results
    sent through a pipe (pyarrow tables and TableResults pickle). Each instance has its own GX context there."""

    def __init__(self, docs: Path | None = None):
        self.key = uuid.uuid4().hex
        self.docs = docs

    def validate(self, table: Table, data: pa.Table, parameters: dict | None = None) -> TableResult:
        return _WORKER.call("validate", self.key, self.docs, table, data, parameters)

    def build_docs(self) -> None:
        """Data Docs of this validator's validations; its GX context is then released, and the process stops when
        it holds no other. Nothing when the process that held them is gone (it is not started again for that)."""
        _WORKER.release(self.key)


class _Worker:
    """The validation process and the pipe to it, started on first use and again after a call failed (a call
    interrupted by a signal leaves its answer unread, so the process is stopped rather than reused)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process = None
        self.conn = None
        self.contexts = 0  # how many validators' GX contexts the process holds, as of its last answer

    def start(self) -> None:
        """Start the process unless it runs; it imports GX at once, while the caller goes on (parsing)."""
        with self.lock:
            self._start()

    def release(self, key: str) -> None:
        """Build the Data Docs of validator `key` and drop its context; stop the process if it was the last, even
        when the Data Docs could not be written (the error is the caller's to report)."""
        with self.lock:
            if not self._running():
                return
            try:
                self._call("docs", key)
            finally:
                if self._running() and not self.contexts:
                    self._stop()

    def call(self, *request):
        with self.lock:
            self._start()
            return self._call(*request)

    def _call(self, *request):
        """Send `request` and return the answer (the lock held)."""
        try:
            self.conn.send(request)
            status, value, records, self.contexts = self.conn.recv()
        except (EOFError, ConnectionError):  # the process ended (killed: out of memory?) before it answered
            code = self.process.wait()
            self._stop()
            raise RuntimeError(f"the validation process ended unexpectedly (exit code {code})") from None
        except BaseException:
            self._stop()
            raise
        for record in records:  # GX's log lines, in this run's log (Prefect's extra loggers) as if logged here
            logging.getLogger(record.name).handle(record)
        if status == "error":  # the exception's type and message, and the validation process's traceback
            error = RuntimeError(value[0])
            error.add_note(value[1])
            raise error
        return value

    def _running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _start(self) -> None:
        if self._running():
            return
        if self.process is not None:  # it ended on its own: its pipe is closed before a new one is made
            self._stop()
        self.conn, child = multiprocessing.connection.Pipe()
        level = logging.getLogger(GX_LOGGER).getEffectiveLevel()
        self.process = subprocess.Popen(  # not multiprocessing's spawn: that would run the caller's __main__ again
            [sys.executable, "-c", SERVE, str(child.fileno()), str(os.getpid()), str(level)],
            pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True)  # a signal to the terminal's process group is the parent's to handle
        child.close()

    def _stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.conn.close()
        self.process = self.conn = None

    def stop(self) -> None:
        """Stop the process, if any (when this process exits)."""
        with self.lock:
            if self.process is not None:
                self._stop()


_WORKER = _Worker()
start = _WORKER.start
atexit.register(_WORKER.stop)
SERVE = "import sys; from tasks.validate import serve; serve(*map(int, sys.argv[1:]))"
GX_LOGGER = "great_expectations"


def serve(fd: int, parent: int, level: int) -> None:
    """The validation process: answers requests on the pipe `fd` until it closes, each answer with GX's log
    records at `level` (the parent's) since the request and how many GX contexts it holds; ends with its parent (its own session: Ctrl-C and a
    SIGTERM to the process group reach the parent only, which stops this process)."""
    conn = multiprocessing.connection.Connection(fd)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    records = queue.SimpleQueue()
    logger = logging.getLogger(GX_LOGGER)
    logger.addHandler(logging.handlers.QueueHandler(records))  # records made picklable (message formatted)
    logger.setLevel(level)
    logger.propagate = False
    _gx()
    validators: dict[str, Validator] = {}
    while True:
        try:
            operation, key, *args = conn.recv()
        except EOFError:
            return
        try:
            if operation == "validate":
                docs, *call = args
                if key not in validators:
                    validators[key] = Validator(docs)
                answer = ("ok", validators[key].validate(*call))
            else:  # "docs"
                if key in validators:
                    validators.pop(key).build_docs()
                answer = ("ok", None)
        except Exception as exc:  # as text: not every exception can be rebuilt from a pickle
            answer = ("error", (f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        logged = []
        while not records.empty():
            logged.append(records.get())
        conn.send((*answer, logged, len(validators)))


def _exit_with(parent: int) -> None:
    """End this process once its parent is gone (killed, or ended by a second Ctrl-C), even mid-validation. Not
    PR_SET_PDEATHSIG (flows/server.py): that fires when the thread that started the process ends."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


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

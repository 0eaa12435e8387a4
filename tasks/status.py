"""`armswatch status`: what the warehouse holds now, read from the warehouse alone (no Prefect, no network).

Per table and batch: rows, the date its data is as of (named by what it means: a treaty's status as at, a
release, a fetch, or the day a derived table was built), when it was published (the armswatch.* Parquet
metadata written by tasks/publish.py, of the files the warehouse manifest names as current), the raw sha256s and
the suites and code digests it was built from (the manifest's `sources`); catalog treaties with no published data;
the open quarantines with their whole reasons (tasks/incidents.py state); the last runs with their outcome and
flow run, from the run log `<warehouse>/_runs/<run_id>.json` that every flow run writes; whether each open
quarantine's alert was delivered (and why not), and "alerts: none configured" when the last run had no channel.
The text fits 100 columns (sha256s and timestamps shortened; `wide` gives them whole, as `--json` does).
A damaged or hostile warehouse is never trusted: every file read must be a regular file inside it (a FIFO or a
device is never opened) of the expected shape, else `WarehouseDamaged` names the file and what is wrong.
Tables read: every table's files (metadata only). Tables fed: none.
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime

from upath import UPath

from tasks import storage
from tasks.alerts import WIDTH
from tasks.incidents import STATE, Incidents
from tasks.panel import PUBLISHED_TABLES
from tasks.publish import (AS_OF_COLUMNS, CODE_DIGEST, MANIFEST, PublishError, Warehouse, entry_sources,
                           footer_metadata, parquet_metadata)
from tasks.run import STATUSES, totals
from tasks.storage import atomic_write
from tasks.tables import TREATIES
from tasks.validate import SUITES_DIGEST

LAST_RUNS = 10
RUN_LOG_LIMIT = 2**20  # bytes of one run log
#: What a batch's as-of date means, by the column it was read from (publish.AS_OF_COLUMNS); a batch with none of
#: them (a derived table) is as of the day it was built.
AS_OF_MEANINGS = dict(zip(AS_OF_COLUMNS, ("status as at", "release", "fetched")))
BUILT = "built"


class WarehouseDamaged(ValueError):
    """A file of the warehouse that is not what armswatch writes there (named, with what is wrong)."""


def log_run(root: UPath, run_id: str, flow_run: dict, reports, now: datetime) -> UPath:
    """Record one flow run's outcome in `_runs/<run_id>.json`; `flow_run`: its Prefect id, name, flow and url."""
    ok = all(r.ok for r in reports)
    entry = {
        "run_id": run_id, "flow_run": {**flow_run, "state": "Completed" if ok else "Failed"},
        "finished_at": now.isoformat(timespec="seconds"), "ok": ok,
        "crash": "; ".join(r.crash for r in reports if r.crash), "counts": totals(reports),
        "alerts": next((r.alerts for r in reports if r.alerts), ""),
        "batches": [{"flow": r.flow, "batch": o.key, "status": o.status} for r in reports for o in r.outcomes],
    }
    path = storage.location(root) / "_runs" / f"{run_id}.json"
    atomic_write(path, json.dumps(entry, indent=1).encode())
    return path


def _require(ok: bool, path: UPath, problem: str) -> None:
    if not ok:
        raise WarehouseDamaged(f"{path}: {problem}")


def _manifest_tables(root: UPath) -> dict[str, dict[str, dict]]:
    """The manifest's tables: every entry names a table file inside the warehouse (checked as the manifest is
    read, publish.table_file) and what it was built from as a string."""
    try:
        tables = Warehouse(root).manifest()["tables"]
    except PublishError as exc:
        raise WarehouseDamaged(str(exc).removesuffix("; nothing was read or changed")) from None
    for name, batches in tables.items():
        for stem, entry in batches.items():
            _require(isinstance(entry.get("sources", ""), str), root / MANIFEST,
                     f"batch {stem!r} of table {name!r}: `sources` is not a string")
    return tables


def _footer(root: UPath, file: str):
    path = root / file
    try:
        storage.regular_size(path)
    except FileNotFoundError:
        raise WarehouseDamaged(f"{path}: named by {MANIFEST} but missing") from None
    except storage.StorageError as exc:
        raise WarehouseDamaged(f"{exc} (named by {MANIFEST})") from None
    if storage.is_local(path):
        _require(path.resolve().is_relative_to(root.resolve()), path, "resolves outside the warehouse")
    footer = parquet_metadata(path)
    _require(footer is not None, path, f"not a Parquet file (named by {MANIFEST})")
    return footer


def _as_of_meaning(tables: dict[str, dict], stem: str) -> str:
    """What the as-of date of batch `stem` means: the first of publish.AS_OF_COLUMNS that a table holding that
    batch has (publish._as_of reads it over all the tables of a batch, e.g. a treaty's status date)."""
    columns = {c for t in PUBLISHED_TABLES if stem in tables.get(t.name, {}) for c in t.schema.names}
    return next((AS_OF_MEANINGS[c] for c in AS_OF_COLUMNS if c in columns), BUILT)


def _incidents(root: UPath) -> list[dict]:
    path = root / STATE
    try:
        found = Incidents(root).open
    except (ValueError, storage.StorageError) as exc:
        raise WarehouseDamaged(f"{path}: unreadable ({exc})") from None
    _require(isinstance(found, dict), path, "not an object of incidents")
    for ident, incident in found.items():
        _require(isinstance(incident, dict) and all(isinstance(incident.get(k), str) for k in
                                                     ("flow", "batch", "status", "first_seen", "reason"))
                 and isinstance(incident.get("runs", 1), int)
                 and isinstance(incident.get("quarantine"), (str, type(None))),
                 path, f"incident {ident!r} is not what armswatch records (flow, batch, status, first_seen, "
                       f"reason, runs, quarantine)")
    return [{**{k: v for k, v in incident.items() if k != "fingerprint"},
             "alert_delivered": bool(incident.get("last_alerted"))} for _, incident in sorted(found.items())]


def _run_log(path: UPath) -> dict:
    try:
        run = json.loads(storage.read_regular(path, RUN_LOG_LIMIT))
    except (ValueError, storage.StorageError) as exc:
        raise WarehouseDamaged(f"{path}: not a run log ({exc})") from None
    counts = run.get("counts") if isinstance(run, dict) else None
    _require(isinstance(run, dict) and isinstance(run.get("run_id"), str) and isinstance(run.get("ok"), bool)
             and isinstance(run.get("crash", ""), str) and isinstance(run.get("finished_at", ""), str)
             and isinstance(counts, dict) and all(isinstance(counts.get(s), int) for s in STATUSES)
             and isinstance(run.get("batches", []), list)
             and all(isinstance(b, dict) for b in run.get("batches", []))
             and isinstance(run.get("flow_run"), (str, dict, type(None))),
             path, "not a run log (run_id, ok, crash, counts, batches, flow_run)")
    if isinstance(run.get("flow_run"), str):  # written before run logs were structured: the name as displayed
        run["flow_run"] = {"name": run["flow_run"]}
    return run


def status(root: UPath) -> dict:
    root = storage.location(root)
    tables = {}
    manifest = _manifest_tables(root)
    for name in sorted(manifest):
        batches = []
        for stem, entry in sorted(manifest[name].items()):
            footer = _footer(root, entry["file"])
            meta = footer_metadata(footer)
            built_from = [s for s in entry_sources(root, entry).split(",") if s]
            digests = {prefix.rstrip(":"): next((s.removeprefix(prefix) for s in built_from if s.startswith(prefix)),
                                                None) for prefix in (SUITES_DIGEST, CODE_DIGEST)}
            batches.append({
                "batch": stem, "rows": footer.num_rows, "as_of": meta.get("armswatch.as_of"),
                "as_of_meaning": _as_of_meaning(manifest, stem), "published_at": meta.get("armswatch.published_at"),
                "source_sha256": [s for s in built_from if not s.startswith((SUITES_DIGEST, CODE_DIGEST))],
                **digests,
            })
        if batches:
            tables[name] = batches
    runs = [_run_log(p) for p in sorted((root / "_runs").glob("*.json"))[-LAST_RUNS:]]
    tried = next(({b["batch"] for b in run.get("batches", []) if b.get("flow") == "treaties"}
                  for run in reversed(runs) if any(b.get("flow") == "treaties" for b in run.get("batches", []))), set())
    return {"warehouse": str(root), "tables": tables,
            "treaties_without_data": sorted(tried - set(manifest.get(TREATIES.name, {}))),
            "open_quarantines": _incidents(root), "alerts": runs[-1].get("alerts", "") if runs else "",
            "last_runs": [{k: v for k, v in run.items() if k != "batches"} for run in reversed(runs)]}


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


def text(report: dict, wide: bool = False) -> str:
    """The report for a person: WIDTH columns (batch names cut, sha256s and timestamps shortened) unless `wide`."""
    out = [f"warehouse {report['warehouse']}", ""]
    groups: dict[str, list[tuple[str, ...]]] = {meaning: [] for meaning in (*AS_OF_MEANINGS.values(), BUILT)}
    for table, batches in report["tables"].items():
        for b in batches:
            shas = b["source_sha256"]
            published = b["published_at"] or ""
            groups[b["as_of_meaning"]].append((
                table, b["batch"], str(b["rows"]), b["as_of"] or "",
                published if wide else published[:16].replace("T", " "),
                ",".join(shas) if wide else (shas[0][:8] + (f" +{len(shas) - 1}" if len(shas) > 1 else "")
                                             if shas else "-")))
    rows = [row for group in groups.values() for row in group]
    header = ("table", "batch", "rows", max(groups, key=len), "published", "built from sha256")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    if not wide:  # the batch column gives way first, then the table's
        for column in (1, 0):
            widths[column] = max(10, min(widths[column], WIDTH - (sum(widths) - widths[column]) - 2 * 5))

    def line(row) -> str:
        cells = [c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in
                 enumerate(zip([c if wide or i == 5 else _cut(c, widths[i]) for i, c in enumerate(row)], widths))]
        return "  ".join(cells).rstrip()

    for meaning, group in groups.items():
        if group:
            head = (*header[:3], meaning, *header[4:])
            out += [line(head), line(tuple("-" * w for w in widths)), *(line(r) for r in group), ""]
    if not rows:
        out += ["(nothing published yet)", ""]
    if report["treaties_without_data"]:
        out += _wrap("treaties with no published data: " + ", ".join(report["treaties_without_data"]), "")
        out.append("")
    out.append(f"open quarantines: {len(report['open_quarantines'])}")
    for q in report["open_quarantines"]:
        out += _wrap(f"{q['flow']} / {q['batch']}: {q['status']} since {q['first_seen']} "
                     f"({q.get('runs', 1)} run(s))", "  ")
        if q.get("quarantine"):
            out += _wrap(f"kept in {q['quarantine']}", "    ")
        out += _wrap(q["reason"], "    ")
        if not q["alert_delivered"]:
            out += _wrap(f"alert not delivered: {q.get('alert_error') or 'not sent yet'}", "    ")
    if report["alerts"] == "none configured":
        out.append("alerts: none configured")
    out += ["", "last runs:"]
    for run in report["last_runs"]:
        c, flow_run = run["counts"], run.get("flow_run") or {}
        out.append(f"  {run['run_id']}  {'ok    ' if run['ok'] else 'FAILED'}  {c['published']} published, "
                   f"{c['unchanged']} unchanged, {c['quarantined']} quarantined, {c['failed']} failed")
        if flow_run.get("name"):
            out += _wrap(f"flow run {flow_run['name']}" + (f" ({flow_run['id']})" if flow_run.get("id") else ""),
                         "      ")
        if run.get("crash"):
            out += _wrap(f"ended early: {run['crash']}", "      ")
    if not report["last_runs"]:
        out.append("  (no runs yet)")
    return "\n".join(out)

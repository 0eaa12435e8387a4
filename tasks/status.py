"""`armswatch status`: what the warehouse holds now, read from the warehouse alone (no Prefect, no network).

Per table and batch: rows, as of, last published (the armswatch.* Parquet metadata written by tasks/publish.py, of
the files the warehouse manifest names as current), the raw sha256s and the suites and code digests it was built
from (the manifest's `sources`); the open quarantines with their reasons (tasks/incidents.py state); the last runs with
their outcome, from the run log `<warehouse>/_runs/<run_id>.json` that every flow run writes; whether each open
quarantine's alert was delivered (and why not), and "alerts: none configured" when the last run had no channel.
Tables read: every table's files (metadata only). Tables fed: none.
"""

from __future__ import annotations

import json
from datetime import datetime

from upath import UPath

from tasks import storage
from tasks.incidents import Incidents
from tasks.publish import CODE_DIGEST, Warehouse, entry_sources, footer_metadata, parquet_metadata
from tasks.run import totals
from tasks.storage import atomic_write
from tasks.validate import SUITES_DIGEST

LAST_RUNS = 10


def log_run(root: UPath, run_id: str, flow_run: str, reports, now: datetime) -> UPath:
    """Record one flow run's outcome in `_runs/<run_id>.json`."""
    entry = {
        "run_id": run_id, "flow_run": flow_run, "finished_at": now.isoformat(timespec="seconds"),
        "ok": all(r.ok for r in reports), "crash": "; ".join(r.crash for r in reports if r.crash),
        "counts": totals(reports), "alerts": next((r.alerts for r in reports if r.alerts), ""),
        "batches": [{"flow": r.flow, "batch": o.key, "status": o.status} for r in reports for o in r.outcomes],
    }
    path = storage.location(root) / "_runs" / f"{run_id}.json"
    atomic_write(path, json.dumps(entry, indent=1).encode())
    return path


def status(root: UPath) -> dict:
    root = storage.location(root)
    warehouse = Warehouse(root)
    tables = {}
    manifest = warehouse.manifest()
    for name in sorted(manifest["tables"]):
        batches = []
        for stem, entry in sorted(manifest["tables"][name].items()):
            footer = parquet_metadata(root / entry["file"])
            meta = footer_metadata(footer)
            built_from = [s for s in entry_sources(root, entry).split(",") if s]
            digests = {prefix.rstrip(":"): next((s.removeprefix(prefix) for s in built_from if s.startswith(prefix)),
                                                None) for prefix in (SUITES_DIGEST, CODE_DIGEST)}
            batches.append({
                "batch": stem, "rows": footer.num_rows if footer else None, "as_of": meta.get("armswatch.as_of"),
                "published_at": meta.get("armswatch.published_at"),
                "source_sha256": [s for s in built_from if not s.startswith((SUITES_DIGEST, CODE_DIGEST))],
                **digests,
            })
        if batches:
            tables[name] = batches
    quarantines = [{**{k: v for k, v in incident.items() if k != "fingerprint"},
                    "alert_delivered": bool(incident.get("last_alerted"))}
                   for _, incident in sorted(Incidents(root).open.items())]
    runs = [json.loads(p.read_text()) for p in sorted((root / "_runs").glob("*.json"))[-LAST_RUNS:]]
    return {"warehouse": str(root), "tables": tables, "open_quarantines": quarantines,
            "alerts": runs[-1].get("alerts", "") if runs else "",
            "last_runs": [{k: v for k, v in run.items() if k != "batches"} for run in reversed(runs)]}


def text(report: dict) -> str:
    out = [f"warehouse {report['warehouse']}", ""]
    rows = [(table, b["batch"], str(b["rows"]), b["as_of"] or "", b["published_at"] or "",
             ",".join(s[:12] for s in b["source_sha256"]) or "-")
            for table, batches in report["tables"].items() for b in batches]
    header = ("table", "batch", "rows", "as of", "last published", "source sha256")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        out.append("  ".join(c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    if not rows:
        out.append("(nothing published yet)")
    out += ["", f"open quarantines: {len(report['open_quarantines'])}"]
    for q in report["open_quarantines"]:
        out.append(f"  {q['flow']} / {q['batch']}: {q['status']} since {q['first_seen']} ({q['runs']} run(s))"
                   + (f", kept in {q['quarantine']}" if q.get("quarantine") else ""))
        out.append(f"      {' '.join(q['reason'].split())[:300]}")
        if not q["alert_delivered"]:
            out.append(f"      alert not delivered: {q.get('alert_error') or 'not sent yet'}")
    if report["alerts"] == "none configured":
        out.append("alerts: none configured")
    out += ["", "last runs:"]
    for run in report["last_runs"]:
        c = run["counts"]
        out.append(f"  {run['run_id']}  {'ok    ' if run['ok'] else 'FAILED'}  {c['published']} published, "
                   f"{c['unchanged']} unchanged, {c['quarantined']} quarantined, {c['failed']} failed"
                   + (f"; ended early: {run['crash']}" if run["crash"] else ""))
    if not report["last_runs"]:
        out.append("  (no runs yet)")
    return "\n".join(out)

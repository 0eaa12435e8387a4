"""warehouse/report/country/<ISO3>.html: a page per UN member or observer state, and country/index.html.

Each page: the state's status for every catalog treaty with its dates (treaty_status), its indicators over time
with their footnotes (country_year_panel: the SDG columns of sources/sdg.yaml and the IAFQ totals), and what the
latest IAFQ and SDG releases revised for it (indicator_revisions). Tables only, no chart, so the 195 pages cost
little at the end of a run. The report's maps and lists link here. Upstream: none (reads the warehouse through
armswatch.duckdb). Tables fed: none.
"""

from __future__ import annotations

import html
from pathlib import Path

import pyarrow as pa

from tasks import report
from tasks.panel import IAFQ_COLUMNS, PANEL, SDG_COLUMNS
from tasks.storage import atomic_write
from tasks.tables import FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS, field_doc

INDICATORS = [*SDG_COLUMNS, *IAFQ_COLUMNS]
#: Decimals of every rate or percentage shown (a float column); counts (integer columns) are shown whole.
RATE_DECIMALS = 2


def decimals(type_: pa.DataType) -> int | None:
    """The decimals report.number shows for a column of `type_`: RATE_DECIMALS for rates and percentages, none for
    counts."""
    return RATE_DECIMALS if pa.types.is_floating(type_) else None


DECIMALS = {c: decimals(PANEL.schema.field(c).type) for c in INDICATORS}


def revised_decimals(dataset: str) -> int | None:
    """The decimals of a revised value of `dataset`, as its table's `value` is typed: the IAFQ file's (dataset
    firearms_seizures) are counts, an SDG series' (dataset: its code) rates or percentages."""
    table = FIREARMS_SEIZURES if dataset == FIREARMS_SEIZURES.name else INDICATOR_OBSERVATIONS
    return decimals(table.schema.field("value").type)


def _date(date, kind) -> str:
    return f"{date} ({kind.replace('_', ' ')})" if date and kind else str(date or "")


def treaties(rows: list[dict]) -> str:
    if not rows:
        return '<p class="note">No catalog treaty\'s status is published.</p>'
    cells = [{"treaty": f"{r['treaty']} ({r['mtdsg_no']})",
              "status": report.STATUS_LABELS.get(r["status"], "unknown: no participant table in UNTC's document"),
              "signature": _date(r["signature_date"], r["signature_kind"]),
              "consent": _date(r["consent_date"], r["consent_kind"]),
              "withdrawal": str(r["withdrawal_date"] or ""), "as_of": str(r["as_of"])} for r in rows]
    return report.table(cells, ["treaty", "status", "signature", "consent", "withdrawal", "as_of"],
                        labels={"consent": "consent to be bound", "as_of": "status as at"})


def indicators(rows: list[dict]) -> str:
    """Every year with a value, one column per indicator the state has a value of (the others are named below as
    not published for it); rates and percentages with RATE_DECIMALS decimals, counts thousands separated
    (report.number); a footnote marker [n] after a value, the texts below."""
    shown = [c for c in INDICATORS if any(r[c] is not None for r in rows)]
    rows = [r for r in rows if any(r[c] is not None for c in shown)]
    if not rows:
        return '<p class="note">No indicator value published for this state.</p>'
    notes: list[str] = []
    cells = []
    for r in rows:
        cell = {"year": str(r["year"])}
        for column in shown:
            text = html.escape(report.number(r[column], DECIMALS[column]))
            for note in r.get(f"{column}_footnotes") or []:
                if note not in notes:
                    notes.append(note)
                text += f" <sup>[{notes.index(note) + 1}]</sup>"
            cell[column] = text
        cells.append(cell)
    docs = {f.name: field_doc(f) for f in PANEL.schema}
    legend = "".join(f"<li><code>{c}</code>: {html.escape(docs[c])}</li>" for c in shown)
    listed = "".join(f"<li>[{i}] {html.escape(n)}</li>" for i, n in enumerate(notes, 1))
    labels = {c: c.replace("_pct", " (%)").replace("_", " ") for c in INDICATORS}
    absent = "; ".join(f"{labels[c]} ({html.escape(docs[c])})" for c in INDICATORS if c not in shown)
    return (report.table(cells, ["year", *shown], labels=labels, raw=tuple(shown))
            + (f"<p>Footnotes:</p><ul>{listed}</ul>" if notes else "") + f'<ul class="note">{legend}</ul>'
            + (f'<p class="note">No value published for this state: {absent}.</p>' if absent else ""))


def revisions(rows: list[dict]) -> str:
    if not rows:
        return '<p class="note">The latest releases revised nothing for this state.</p>'
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        changes = counts.setdefault(f"{r['dataset']} {r['old_release']} → {r['new_release']}", {})
        changes[r["change"]] = changes.get(r["change"], 0) + 1
    summary = "; ".join(f"{k}: " + ", ".join(f"{n:,} {c.replace('_', ' ')}" for c, n in v.items())
                        for k, v in counts.items())
    values = ("old_value", "new_value")
    cells = [{**r, **{v: html.escape(report.number(r[v], revised_decimals(r["dataset"]))) for v in values}}
             for r in rows]
    return (f"<p>{html.escape(summary)}</p><details><summary>{len(rows):,} revised observations</summary>"
            + report.table(cells, ["dataset", "change", "year", "observation", *values],
                           labels={"old_value": "old value", "new_value": "new value"}, raw=values) + "</details>")


def country_page(state: dict, status: list[dict], panel: list[dict], revised: list[dict], as_at: str) -> str:
    name = html.escape(state["name"])
    region = " · ".join(html.escape(p) for p in (state["region"], state["sub_region"],
                                                  state["intermediate_region"]) if p)
    return report.document(f"{state['name']}: armswatch", (
        f'<p class="note"><a href="../index.html">Report</a> · <a href="index.html">All states</a></p>'
        f"<h1>{name} ({state['iso3']})</h1><p class=\"note\">UN {html.escape(state['un_status'])} state · M49 "
        f"{state['m49']:03d} · {region}.</p>{as_at}"
        f'<section id="treaties"><h2>Treaty status</h2>{treaties(status)}</section>'
        f'<section id="indicators"><h2>Indicators over time</h2>{indicators(panel)}</section>'
        f'<section id="revisions"><h2>What the latest releases revised</h2>{revisions(revised)}</section>'))


def index(states: list[dict]) -> str:
    regions: dict[str, list[dict]] = {}
    for s in states:
        regions.setdefault(s["region"] or "No region", []).append(s)
    parts = "".join(f"<h2>{html.escape(region)}</h2><p>" + ", ".join(
        f'<a href="{s["iso3"]}.html">{html.escape(s["name"])}</a>' for s in members) + "</p>"
        for region, members in sorted(regions.items()))
    return report.document("States: armswatch", '<p class="note"><a href="../index.html">Report</a></p>'
                           f"<h1>UN member and observer states ({len(states)})</h1>{parts}")


def pages(con, views: set[str]) -> dict[str, str]:
    """File name (in report/country/) -> HTML, for every UN member and observer state and the index."""
    if "countries" not in views:
        return {}
    states = report.query(con, "SELECT * FROM countries WHERE un_status IS NOT NULL ORDER BY name")
    status = report.grouped(report.query(con, "SELECT * FROM treaty_status ORDER BY mtdsg_no"), "iso3") \
        if "treaty_status" in views else {}
    panel = report.grouped(report.query(con, "SELECT * FROM country_year_panel ORDER BY year"), "iso3") \
        if "country_year_panel" in views else {}
    revised = report.grouped(report.query(con, f"""
        SELECT dataset, old_release, new_release, change, iso3, CAST(year AS VARCHAR) AS year, old_value, new_value,
               observation
        FROM ({report.LATEST_REVISIONS}) WHERE iso3 IS NOT NULL ORDER BY dataset, change, year, observation"""),
        "iso3") if "indicator_revisions" in views else {}
    as_at = report.status_as_at(con, views, [])
    out = {f"{s['iso3']}.html": country_page(s, status.get(s["iso3"], []), panel.get(s["iso3"], []),
                                             revised.get(s["iso3"], []), as_at) for s in states}
    out["index.html"] = index(states)
    return out


def build(root: Path, con) -> Path:
    """Write every state's page and the index into root/report/country/, each atomically (not synced one by one:
    195 fsyncs took seconds, and the pages are rebuilt with the report); returns the folder."""
    folder = Path(root) / "report" / report.COUNTRY_FOLDER
    for name, text in pages(con, report.published_views(con)).items():
        atomic_write(folder / name, text.encode(), durable=False)
        (folder / name).chmod(0o644)
    return folder

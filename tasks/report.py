"""warehouse/report/index.html: one self-contained page of charts and tables for people who do not write SQL.

Charts are Vega-Lite specifications built with altair and rendered to SVG by vl-convert (an embedded Vega engine,
no browser, no network: external data URLs are refused), then inlined, so the page makes no request at all: no
script, no stylesheet, no font, no image is loaded from anywhere. Sections: cumulative parties per year for each
catalog treaty; Firearms Protocol and Arms Trade Treaty status by M49 region; 16.4.2 tracing rates by country and
year; what the latest IAFQ and SDG releases revised; the run's validation results. Upstream: none (reads the
warehouse through warehouse/armswatch.duckdb). Tables fed: none.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

import altair as alt
import duckdb
import vl_convert

from tasks.storage import atomic_write
from tasks.run import Report

FIREARMS_PROTOCOL, ATT = "XVIII-12-c", "XXVI-8"
STATUS_ORDER = ["party", "signatory", "withdrawn", "no_action"]
STATUS_COLORS = ["#1b7837", "#a6dba0", "#c2a5cf", "#d9d9d9"]
SECTIONS = ("parties-per-year", "status-by-region", "tracing-rates", "revisions", "validation")

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0;max-width:100%}td,th{border:1px solid #ccc;
padding:.25em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#f3f3f3}
.note{color:#555;font-size:.9em}
.ok{color:#1b7837}.bad{color:#b2182b;font-weight:bold}svg{max-width:100%;height:auto}
"""


def svg(chart: alt.TopLevelMixin) -> str:
    """A chart as inline SVG, rendered without a browser and without any network access."""
    return vl_convert.vegalite_to_svg(chart.to_dict(), allowed_base_urls=[])


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r[c]))}</td>"
                                    for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _missing(what: str, views: str) -> str:
    return f'<p class="note">No data: {html.escape(what)} ({html.escape(views)} not published yet).</p>'


def parties_per_year(con, views: set[str]) -> str:
    if "treaty_status_by_year" not in views:
        return _missing("treaty status by year", "treaty_status_by_year")
    rows = _rows(con, """
        SELECT coalesce(treaty, mtdsg_no) || ' (' || mtdsg_no || ')' AS treaty, year,
               count(*) FILTER (WHERE party) AS parties
        FROM treaty_status_by_year GROUP BY ALL ORDER BY treaty, year""")
    unknown = [r["mtdsg_no"] for r in _rows(con, "SELECT DISTINCT mtdsg_no FROM treaty_status WHERE status IS NULL")] \
        if "treaty_status" in views else []
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("year:O", title="Year"), y=alt.Y("parties:Q", title="States party at year end"),
        color=alt.Color("treaty:N", title="Treaty", legend=alt.Legend(orient="bottom", columns=2, labelLimit=0)),
    ).properties(width=900, height=320, title="UN member and observer states party to each catalog treaty")
    note = (f'<p class="note">Not shown, no participant table in UNTC\'s document: {html.escape(", ".join(unknown))}.'
            "</p>" if unknown else "")
    return svg(chart) + note


def status_by_region(con, views: set[str]) -> str:
    if "treaty_status" not in views:
        return _missing("treaty status", "treaty_status")
    rows = _rows(con, f"""
        SELECT coalesce(s.treaty, s.mtdsg_no) AS treaty, coalesce(c.region, 'No region') AS region,
               s.status, count(*) AS states, max(s.as_of) AS as_of
        FROM treaty_status s JOIN countries c USING (iso3)
        WHERE s.mtdsg_no IN ('{FIREARMS_PROTOCOL}', '{ATT}') AND s.status IS NOT NULL
        GROUP BY ALL ORDER BY ALL""")
    if not rows:
        return f'<p class="note">No status for {FIREARMS_PROTOCOL} or {ATT} in the catalog\'s published data.</p>'
    as_of = max(r["as_of"] for r in rows)
    for r in rows:
        r["as_of"] = str(r["as_of"])
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        y=alt.Y("region:N", title=None), x=alt.X("states:Q", title="States", stack="zero"),
        color=alt.Color("status:N", scale=alt.Scale(domain=STATUS_ORDER, range=STATUS_COLORS), title="Status",
                        legend=alt.Legend(orient="bottom")),
        order=alt.Order("status_rank:Q"), row=alt.Row("treaty:N", title=None),
    ).transform_calculate(status_rank=f"indexof({STATUS_ORDER}, datum.status)").properties(
        width=800, height=150, title=f"Status by M49 region, UN member and observer states, as of {as_of}")
    return svg(chart)


def tracing_rates(con, views: set[str]) -> str:
    if "country_year_panel" not in views:
        return _missing("tracing rates", "country_year_panel")
    rows = _rows(con, """
        SELECT country, year, arms_traced_pct AS pct,
               CASE WHEN len(arms_traced_pct_footnotes) > 0 THEN '*' ELSE '' END AS note
        FROM country_year_panel WHERE arms_traced_pct IS NOT NULL ORDER BY country, year""")
    if not rows:
        return '<p class="note">No SDG 16.4.2 observation published.</p>'
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("year:O", title="Year"), y=alt.Y("country:N", title=None, sort="ascending",
                                                 axis=alt.Axis(labelLimit=0)))
    heat = base.mark_rect().encode(color=alt.Color("pct:Q", title="% traced", scale=alt.Scale(
        scheme="viridis", domain=[0, 100])))
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("label:N"), color=alt.condition("datum.pct > 60", alt.value("black"), alt.value("white")),
    ).transform_calculate(label="format(datum.pct, '.0f') + datum.note")
    chart = (heat + text).properties(width=600, height=alt.Step(14),
                                     title="SDG 16.4.2: share of seized, found and surrendered arms traced (%)")
    notes = _rows(con, """
        SELECT country, year, arms_traced_pct AS pct, array_to_string(arms_traced_pct_footnotes, '; ') AS footnotes
        FROM country_year_panel WHERE len(arms_traced_pct_footnotes) > 0 ORDER BY country, year""")
    return (svg(chart) + f'<p class="note">{len(rows)} observations of {len({r["country"] for r in rows})} states; '
            f"* the observation has a footnote.</p><details><summary>{len(notes)} footnotes</summary>"
            + _table(notes, ["country", "year", "pct", "footnotes"]) + "</details>")


def _releases(con, views: set[str]) -> list[dict]:
    """The latest release of each dataset: IAFQ release date, SDG release per series."""
    parts = []
    if "firearms_seizures_latest" in views:
        parts.append("SELECT 'firearms_seizures (IAFQ)' AS dataset, CAST(max(release_date) AS VARCHAR) AS release "
                     "FROM firearms_seizures_latest")
    if "indicator_observations_latest" in views:
        parts.append("SELECT DISTINCT series AS dataset, release FROM indicator_observations_latest")
    return _rows(con, " UNION ALL ".join(parts) + " ORDER BY dataset") if parts else []


def revisions(con, views: set[str]) -> str:
    releases = _releases(con, views)
    if "indicator_revisions" not in views:
        return ('<p class="note">No revisions yet: each dataset has a single release published.</p>'
                + _table(releases, ["dataset", "release"]))
    latest = """
        SELECT * FROM indicator_revisions
        QUALIFY new_release = max(new_release) OVER (PARTITION BY dataset)"""
    counts = _rows(con, f"""
        SELECT dataset || ': ' || old_release || ' → ' || new_release AS release, change, count(*) AS observations
        FROM ({latest}) GROUP BY ALL ORDER BY ALL""")
    chart = alt.Chart(alt.Data(values=counts)).mark_bar().encode(
        y=alt.Y("release:N", title=None, axis=alt.Axis(labelLimit=0)), x=alt.X("observations:Q", title="Observations"),
        color=alt.Color("change:N", title="Change", legend=alt.Legend(orient="bottom")),
    ).properties(width=800, height=alt.Step(30), title="What the latest release of each dataset changed")
    biggest = _rows(con, f"""
        SELECT dataset, iso3, year, old_value, new_value, new_value - old_value AS difference,
               coalesce(nullif(concat_ws(' / ', indicator, dimension,
                                         category), ''),
                        CAST(dimensions AS VARCHAR)) AS observation
        FROM ({latest}) WHERE change = 'value_changed'
        ORDER BY abs(new_value - old_value) DESC, dataset, iso3, year LIMIT 10""")
    revised = {r["release"].split(":")[0] for r in counts}
    unrevised = [r for r in releases if r["dataset"].split(" ")[0] not in revised]
    return (svg(chart) + _table(counts, ["release", "change", "observations"])
            + ('<p class="note">Latest releases without a previous one to compare with:</p>'
               + _table(unrevised, ["dataset", "release"]) if unrevised else "")
            + "<p>Largest value revisions:</p>"
            + _table(biggest, ["dataset", "iso3", "year", "observation", "old_value", "new_value", "difference"]))


def validation(reports: list[Report], con, views: set[str], generated_at: datetime) -> str:
    as_of = _rows(con, "SELECT mtdsg_no, as_of FROM treaties ORDER BY mtdsg_no") if "treaties" in views else []
    rows = []
    for report in reports:
        for o in report.outcomes:
            rows.append({"flow": report.flow, "batch": o.key, "status": o.status,
                         "rows": ", ".join(f"{t} {n}" for t, n in o.rows.items() if n),
                         "why": o.reason, "kept in": str(o.quarantine or "")})
    bad = [r for r in rows if r["status"] in ("quarantined", "failed")]
    summary = (f'<p class="{"bad" if bad else "ok"}">{len(rows) - len(bad)} batches passed validation '
               f"(published or unchanged), {len(bad)} quarantined or failed; run "
               f"{html.escape(', '.join(sorted({r.run_id for r in reports})))}, "
               f"{generated_at.isoformat(timespec='seconds')}.</p>")
    dates = ", ".join(f"{r['mtdsg_no']} {r['as_of']}" for r in as_of)
    releases = ", ".join(f"{r['dataset']} {r['release']}" for r in _releases(con, views))
    return (summary + _table(rows, ["flow", "batch", "status", "rows", "why", "kept in"])
            + (f'<p class="note">Treaty status as of: {html.escape(dates)}.</p>' if dates else "")
            + (f'<p class="note">Latest releases: {html.escape(releases)}.</p>' if releases else ""))


def page(con: duckdb.DuckDBPyConnection, reports: list[Report], generated_at: datetime) -> str:
    """The report as one HTML document."""
    views = _views(con)
    parts = {
        "parties-per-year": ("Parties per year", parties_per_year(con, views)),
        "status-by-region": ("Firearms Protocol and Arms Trade Treaty status by region", status_by_region(con, views)),
        "tracing-rates": ("Arms traced (SDG 16.4.2) by country over time", tracing_rates(con, views)),
        "revisions": ("What the latest IAFQ and SDG releases revised", revisions(con, views)),
        "validation": ("Validation results of this run", validation(reports, con, views, generated_at)),
    }
    body = "".join(f'<section id="{key}"><h2>{html.escape(title)}</h2>{content}</section>'
                   for key, (title, content) in parts.items())
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
            f'img-src data:"><title>armswatch report</title><style>{STYLE}</style></head><body>'
            f"<h1>armswatch: UN instruments against illicit arms</h1>"
            f'<p class="note">Generated {generated_at.isoformat(timespec="seconds")} from the warehouse\'s published '
            f"tables (warehouse/armswatch.duckdb). Self-contained: this page loads nothing from anywhere.</p>"
            f"{body}</body></html>")


def build(root: Path, con: duckdb.DuckDBPyConnection, reports: list[Report], generated_at: datetime) -> Path:
    """Write root/report/index.html atomically; returns its path."""
    target = Path(root) / "report" / "index.html"
    atomic_write(target, page(con, reports, generated_at).encode())
    target.chmod(0o644)
    return target

"""warehouse/report/index.html: one self-contained page of maps, charts and tables for people who do not write SQL,
and a page per state (tasks/country_pages.py).

Charts are Vega-Lite specifications built with altair and rendered to SVG by vl-convert (an embedded Vega engine,
no browser, no network: external data URLs are refused), then inlined, with each mark's values as its SVG <title>
(shown on hover), so the page makes no request at all: no script, no stylesheet, no font, no image is loaded from
anywhere (its Content-Security-Policy allows none). World maps join treaty_status to Natural Earth's 1:110m shapes
(tasks/geo/, vendored world-atlas TopoJSON) on the M49 code. At the top: what each source's data is as at, and a
warning when this run did not refresh something. Sections: see SECTIONS. Upstream: none (reads the warehouse
through warehouse/armswatch.duckdb; the sources section from sources/*.yaml). Tables fed: none.
"""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import altair as alt
import duckdb

from tasks import registry, world_map
from tasks.alerts import relative
from tasks.run import Report
from tasks.storage import atomic_write

#: Status values as published (treaty_status.status) and as people read them.
STATUS_LABELS = {"party": "party", "signatory": "signatory", "withdrawn": "withdrawn", "no_action": "no action"}
NOT_A_STATE = "not a UN member or observer state"
#: Okabe & Ito's colour-blind-safe palette (yellow last: faint on white).
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
STATUS_COLORS = {"party": "#0072B2", "signatory": "#E69F00", "withdrawn": "#CC79A7", "no action": "#C8C8C8",
                 NOT_A_STATE: "#F2F2F2"}
SEX_COLORS = {"female": "#D55E00", "male": "#0072B2"}
#: The SDG regional groupings (M49 codes) the homicide chart shows, World first.
SDG_REGIONS = (1, 202, 747, 62, 753, 419, 53, 543, 513)
SECTIONS = ("map", "signed-not-ratified", "parties-per-year", "status-by-region", "seizures", "homicide",
            "tracing-rates", "revisions", "validation", "sources")
#: The state pages (tasks/country_pages.py), relative to the report.
COUNTRY_FOLDER = "country"
COUNTRY_INDEX = f"{COUNTRY_FOLDER}/index.html"
#: What the latest release of each dataset revised (indicator_revisions), and how an observation is named in words.
LATEST_REVISIONS = """
    SELECT *, coalesce(nullif(concat_ws(' / ', indicator, dimension, category, nullif(sex, 'na'), nullif(age, 'na')),
                              ''), CAST(dimensions AS VARCHAR)) AS observation
    FROM indicator_revisions QUALIFY new_release = max(new_release) OVER (PARTITION BY dataset)"""

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0;max-width:100%}td,th{border:1px solid #ccc;
padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}
.note{color:#555;font-size:.9em}.asat{background:#f6f8fa;border:1px solid #d0d7de;padding:.5em 1em}
.warn{background:#fff4e5;border:1px solid #D55E00;padding:.5em 1em}
.ok{color:#009E73}.bad{color:#D55E00;font-weight:bold}svg{max-width:100%;height:auto}
ul.batches{list-style:none;padding-left:0;font-size:.85em}ul.batches li{white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.legend span{margin-right:1.2em;font-size:.85em}.legend i{display:inline-block;width:.9em;height:.9em;
margin-right:.3em;vertical-align:middle;border:1px solid #aaa}details pre{white-space:pre-wrap;font-size:.85em}
"""


#: Renders the Vega-Lite spec on stdin as SVG on stdout, in a child process: vl-convert's embedded JavaScript
#: engine holds about 90 MB once started, which the run's own process then never holds (benchmarks/pipeline.py).
RENDER = ("import json, sys, vl_convert; "
          "sys.stdout.write(vl_convert.vegalite_to_svg(json.load(sys.stdin), allowed_base_urls=[]))")
RENDER_TIMEOUT = 120  # seconds for one chart


def svg(chart: alt.TopLevelMixin) -> str:
    """A chart as inline SVG, rendered without a browser and without any network access (RENDER); every mark
    carries its values (Vega's aria-label) as an SVG <title>, which browsers show on hover."""
    done = subprocess.run([sys.executable, "-c", RENDER], input=json.dumps(chart.to_dict()), capture_output=True,
                          text=True, timeout=RENDER_TIMEOUT)
    if done.returncode:
        raise RuntimeError(f"vl-convert could not render a chart: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    out = done.stdout
    return re.sub(r'<(\w+) aria-label="([^"]*)"([^>]*?)/>', r'<\1 aria-label="\2"\3><title>\2</title></\1>', out)


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def published_views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def number(value, decimals: int | None = None) -> str:
    """A cell as people read it: counts without '.0', thousands separated, fractions as published; with
    `decimals` (a column of rates or percentages), every value with that many decimals, thousands separated."""
    if value is None:
        return ""
    if decimals is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.{decimals}f}"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict], columns: list[str], labels: dict[str, str] | None = None,
          raw: tuple[str, ...] = ()) -> str:
    """An HTML table; numbers right-aligned; the `raw` columns hold numbers with markup (footnote markers) built by
    the caller, already escaped."""
    labels = labels or {}
    head = "".join(f"<th>{html.escape(labels.get(c, c))}</th>" for c in columns)

    def cell(value, column) -> str:
        if column in raw:
            return f'<td class="n">{value or ""}</td>'
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return f'<td class="n">{number(value)}</td>' if numeric else f"<td>{html.escape(number(value))}</td>"
    body = "".join("<tr>" + "".join(cell(r.get(c), c) for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def country_link(iso3: str) -> str:
    return f"{COUNTRY_FOLDER}/{iso3}.html"


def _missing(what: str, views: str) -> str:
    return f'<p class="note">No data: {html.escape(what)} ({html.escape(views)} not published yet).</p>'


def releases(con, views: set[str]) -> list[dict]:
    """The latest release of each dataset: IAFQ release date, SDG release per series."""
    parts = []
    if "firearms_seizures_latest" in views:
        parts.append("SELECT 'firearms_seizures (IAFQ)' AS dataset, CAST(max(release_date) AS VARCHAR) AS release "
                     "FROM firearms_seizures_latest")
    if "indicator_observations_latest" in views:
        parts.append("SELECT DISTINCT series || ' (' || indicator || ')' AS dataset, release "
                     "FROM indicator_observations_latest")
    return query(con, " UNION ALL ".join(parts) + " ORDER BY dataset") if parts else []


def status_as_at(con, views: set[str], reports: list[Report]) -> str:
    """What each source's published data is as at, and what this run did not refresh."""
    items = []
    if "treaties" in views:
        dates = query(con, "SELECT as_of, string_agg(coalesce(short_name, mtdsg_no), ', ' ORDER BY mtdsg_no) AS t "
                           "FROM treaties GROUP BY as_of ORDER BY as_of DESC")
        items.append("UN Treaty Collection (UNTC): treaty status as at " + "; ".join(
            f"<b>{d['as_of']}</b>" + (f" ({html.escape(d['t'])})" if len(dates) > 1 else "") for d in dates))
    latest = releases(con, views)
    iafq = [r["release"] for r in latest if r["dataset"].startswith("firearms_seizures")]
    sdg = [r for r in latest if not r["dataset"].startswith("firearms_seizures")]
    if iafq:
        items.append(f"UNODC IAFQ firearms trafficking data: release of <b>{html.escape(iafq[0])}</b>")
    if sdg:
        items.append("UN SDG Global Database: " + "; ".join(
            f"<b>{html.escape(r['release'] or 'release not stated')}</b> ({html.escape(r['dataset'])})" for r in sdg))
    stale = [f"{o.key} ({o.status})" for r in reports for o in r.outcomes if not o.ok]
    stale += [f"the {r.flow} flow ({r.crash})" for r in reports if r.crash]
    warning = (f'<p class="warn"><b>The newest run ({html.escape(", ".join(sorted({r.run_id for r in reports})))}) '
               f"did not refresh:</b> {html.escape(', '.join(stale))}. What this page shows of them is their last "
               "published data (see the validation section).</p>" if stale else "")
    listed = "".join(f"<li>{item}</li>" for item in items) or "<li>nothing published yet</li>"
    return f'<div class="asat"><b>Status as at</b><ul>{listed}</ul></div>{warning}'


def treaty_status(con) -> list[dict]:
    return query(con, """
        SELECT mtdsg_no, coalesce(treaty, mtdsg_no) AS treaty, iso3, m49, country, status, as_of, signature_date,
               consent_date, consent_kind, withdrawal_date
        FROM treaty_status ORDER BY mtdsg_no, country""")


def grouped(rows: list[dict], *keys: str) -> dict:
    """Rows by the value of `keys` (one key: its value; several: a tuple), in the rows' order."""
    out: dict = {}
    for row in rows:
        out.setdefault(row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys), []).append(row)
    return out


def _since(row: dict) -> str:
    date = {"party": row["consent_date"], "signatory": row["signature_date"],
            "withdrawn": row["withdrawal_date"]}.get(row["status"])
    return str(date) if date else ""


def legend(colors: dict[str, str]) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{html.escape(label)}</span>' for label, c in colors.items()) + "</p>"


def status_map(treaty: str, states: list[dict]) -> str:
    """A world map of one treaty's status per UN member or observer state; each state links to its page."""
    areas = {f"{r['m49']:03d}": world_map.Area(
        STATUS_COLORS[STATUS_LABELS[r["status"]]],
        f"{r['country']}: {STATUS_LABELS[r['status']]}" + (f" since {_since(r)}" if _since(r) else ""),
        country_link(r["iso3"])) for r in states}
    shown = {STATUS_LABELS[r["status"]] for r in states} | {NOT_A_STATE}
    return (world_map.draw(areas, world_map.Area(STATUS_COLORS[NOT_A_STATE], NOT_A_STATE), f"{treaty}: status by state")
            + legend({label: color for label, color in STATUS_COLORS.items() if label in shown}))


def maps(status: list[dict] | None) -> str:
    if status is None:
        return _missing("treaty status", "treaty_status")
    parts, unknown = [], []
    for (mtdsg_no, treaty), states in grouped(status, "mtdsg_no", "treaty").items():
        if any(r["status"] is None for r in states):
            unknown.append(mtdsg_no)
            continue
        counts = ", ".join(f"{sum(r['status'] == s for r in states)} {label}" for s, label in STATUS_LABELS.items())
        parts.append(f"<h3>{html.escape(treaty)} ({mtdsg_no}), as at {states[0]['as_of']}</h3>"
                     f"{status_map(treaty, states)}<p class=\"note\">{len(states)} UN member and observer states: "
                     f"{counts}. Hover a state for its status and since when; click it for its page.</p>")
    note = (f'<p class="note">No map: no participant table in UNTC\'s document of {html.escape(", ".join(unknown))}.'
            "</p>" if unknown else "")
    return ('<p class="note">States only (the European Union and other organisations are not states). Shapes: '
            "Natural Earth 1:110m (world-atlas); states too small for it are on the "
            f'<a href="{COUNTRY_INDEX}">index of state pages</a>.</p>' + "".join(parts) + note)


def signed_not_ratified(status: list[dict] | None) -> str:
    if status is None:
        return _missing("treaty status", "treaty_status")
    parts = []
    for (mtdsg_no, treaty), states in grouped(status, "mtdsg_no", "treaty").items():
        signed = [r for r in states if r["status"] == "signatory"]
        names = ", ".join(f'<a href="{country_link(r["iso3"])}">{html.escape(r["country"])}</a> '
                          f"({r['signature_date']})" for r in signed)
        parts.append(f"<details><summary>{html.escape(treaty)} ({mtdsg_no}): {len(signed)} states signed, "
                     f"not ratified</summary><p>{names or 'none'}</p></details>")
    return ('<p class="note">Signatories without a consent to be bound (ratification, acceptance, approval, '
            "accession), with the date of signature.</p>" + "".join(parts))


def parties_per_year(con, views: set[str]) -> str:
    """Per catalog treaty, UN member and observer states with a consent deposited and parties in force at each
    year end, up to the last complete year (the as-of year is partial: left out and named)."""
    if "treaty_status_by_year" not in views:
        return _missing("treaty status by year", "treaty_status_by_year")
    rows = query(con, """
        SELECT coalesce(treaty, mtdsg_no) || ' (' || mtdsg_no || ')' AS treaty, year, measure, states
        FROM (SELECT treaty, mtdsg_no, year, count(*) FILTER (WHERE consent_deposited) AS "consents deposited",
                     count(*) FILTER (WHERE party) AS "parties (in force)"
              FROM treaty_status_by_year WHERE complete_year GROUP BY ALL)
        UNPIVOT (states FOR measure IN ("consents deposited", "parties (in force)"))
        ORDER BY treaty, year, measure""")
    partial = query(con, "SELECT DISTINCT year FROM treaty_status_by_year WHERE NOT complete_year ORDER BY year")
    unknown = [r["mtdsg_no"] for r in query(con, "SELECT DISTINCT mtdsg_no FROM treaty_status WHERE status IS NULL")] \
        if "treaty_status" in views else []
    notes = [f"{', '.join(str(r['year']) for r in partial)} left out: the status is as at a date within it, not at "
             "its end (see the top of the page)."] if partial else []
    if unknown:
        notes.append(f"Not shown, no participant table in UNTC's document: {', '.join(unknown)}.")
    if not rows:
        return "".join(f'<p class="note">{html.escape(n)}</p>' for n in ["No complete year published.", *notes])
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=alt.OverlayMarkDef(size=10)).encode(
        x=alt.X("year:O", title=None, axis=alt.Axis(labelAngle=-90, values=list(range(1950, 2100, 5)))),
        y=alt.Y("states:Q", title="UN member and observer states"),
        color=alt.Color("measure:N", title=None, scale=alt.Scale(range=OKABE_ITO[1:3]),
                        legend=alt.Legend(orient="top", labelLimit=0)),
        strokeDash=alt.StrokeDash("measure:N", legend=None),
        tooltip=["treaty:N", "year:O", "measure:N", "states:Q"],
    ).properties(width=270, height=160).facet(
        facet=alt.Facet("treaty:N", title=None, header=alt.Header(labelLimit=0)), columns=3,
    ).resolve_scale(x="independent").properties(title="Consents deposited and parties in force at each year end")
    return (svg(chart) + '<p class="note">States only (the European Union and other organisations are not '
            "counted here; ratification_progress counts them as UNTC does). A consent counts from its deposit; a "
            "party from the date the treaty entered into force for it.</p>"
            + "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes))


def _shares(rows: list[dict], total_label: str) -> tuple[list[dict], list[str]]:
    """Rows (area, status, states) as one row per area with each status's count and percentage of the area's
    states, then the total; and the statuses some state has."""
    areas: dict[str, dict] = {}
    for r in rows:
        areas.setdefault(r["area"], {"area": r["area"]})[r["status"]] = r["states"]
    total = {"area": total_label, **{s: sum(a.get(s, 0) for a in areas.values()) for s in STATUS_LABELS}}
    cells = []
    for area in [*areas.values(), total]:
        n = sum(area.get(s, 0) for s in STATUS_LABELS)
        cells.append({"area": area["area"], "states": n,
                      **{s: f"{area.get(s, 0)} ({100 * area.get(s, 0) / n:.0f} %)" for s in STATUS_LABELS}})
    return cells, [s for s in STATUS_LABELS if total[s]]


def status_by_region(con, views: set[str]) -> str:
    """Per catalog treaty, states by status in each M49 region, the Americas split into Latin America and the
    Caribbean and Northern America (M49 sub-regions), with percentages of the region's states; folded below, the
    same by M49 intermediate region (else sub-region: Western Africa, Caribbean, South-eastern Asia, ...)."""
    if "treaty_status" not in views or "countries" not in views:
        return _missing("treaty status", "treaty_status, countries")
    rows = query(con, """
        SELECT coalesce(s.treaty, s.mtdsg_no) || ' (' || s.mtdsg_no || ')' AS treaty, s.status,
               CASE WHEN c.region = 'Americas' THEN c.sub_region ELSE c.region END AS region,
               coalesce(c.intermediate_region, c.sub_region) AS intermediate, count(*) AS states
        FROM treaty_status s JOIN countries c USING (iso3)
        WHERE s.status IS NOT NULL GROUP BY ALL ORDER BY ALL""")
    if not rows:
        return '<p class="note">No treaty status in the catalog\'s published data.</p>'
    out = []
    for treaty, of_treaty in sorted(grouped(rows, "treaty").items()):
        tables = []
        for level, label in (("region", "region"), ("intermediate", "intermediate region or sub-region")):
            counts: dict[tuple, int] = {}  # (region, area, status): states, listed region by region
            for r in of_treaty:
                key = (r["region"], r[level], r["status"])
                counts[key] = counts.get(key, 0) + r["states"]
            cells, present = _shares([{"area": a, "status": s, "states": n}
                                      for (_, a, s), n in sorted(counts.items())], "All UN member and observer states")
            tables.append(table(cells, ["area", "states", *present], labels={"area": label, **STATUS_LABELS}))
        out.append(f"<h3>{html.escape(treaty)}</h3>{tables[0]}<details><summary>By M49 intermediate region"
                   f"</summary>{tables[1]}</details>")
    return ('<p class="note">UN member and observer states; percentages of the region\'s states; a status no state '
            "has is not shown.</p>" + "".join(out))


def seizures(con, views: set[str]) -> str:
    """Arms seized per year, national totals of the latest IAFQ release, for the states that seized the most."""
    if "country_year_panel" not in views:
        return _missing("seizures", "country_year_panel")
    rows = query(con, """
        WITH top AS (SELECT iso3 FROM country_year_panel WHERE arms_seized IS NOT NULL
                     GROUP BY iso3 ORDER BY sum(arms_seized) DESC, iso3 LIMIT 7)
        SELECT country, year, arms_seized FROM country_year_panel JOIN top USING (iso3)
        WHERE arms_seized IS NOT NULL ORDER BY country, year""")
    reporting = query(con, "SELECT year, count(*) AS states FROM country_year_panel WHERE arms_seized IS NOT NULL "
                           "GROUP BY year ORDER BY year")
    if not rows:
        return '<p class="note">No IAFQ national total of arms seized published.</p>'
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("year:O", title="Year"), y=alt.Y("arms_seized:Q", title="Arms seized"),
        color=alt.Color("country:N", title="State", scale=alt.Scale(range=OKABE_ITO),
                        legend=alt.Legend(orient="right", labelLimit=0)),
        tooltip=["country:N", "year:O", alt.Tooltip("arms_seized:Q", format=",")],
    ).properties(width=800, height=320, title="Arms seized per year: the 7 states with the most arms seized")
    counts = ", ".join(f"{r['year']}: {r['states']}" for r in reporting)
    return (svg(chart) + '<p class="note">UNODC IAFQ, latest release, national totals (Arms seized, Total, Total; '
            f"sub-national rows left out). States reporting a total per year: {counts}. Totals across states are "
            "not comparable from year to year: who reports changes.</p>")


def homicide(con, views: set[str]) -> str:
    """SDG 16.1.1 homicide rates by sex, World and the SDG regional groupings."""
    if "indicator_observations_latest" not in views:
        return _missing("homicide rates", "indicator_observations_latest")
    regions = ", ".join(str(m) for m in SDG_REGIONS)
    rows = query(con, f"""
        SELECT geo_name AS area, m49, year, lower(sex) AS sex, value AS rate
        FROM indicator_observations_latest
        WHERE series = 'VC_IHR_PSRC' AND NOT is_country AND m49 IN ({regions}) AND sex IN ('FEMALE', 'MALE')
          AND value IS NOT NULL ORDER BY m49, year""")
    if not rows:
        return '<p class="note">No SDG 16.1.1 homicide rate by sex published for the world or its regions.</p>'
    order = sorted({r["area"] for r in rows}, key=lambda a: SDG_REGIONS.index(next(r["m49"] for r in rows
                                                                                    if r["area"] == a)))
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=alt.OverlayMarkDef(size=10)).encode(
        x=alt.X("year:O", title=None, axis=alt.Axis(labelAngle=-90, values=list(range(1990, 2100, 5)))),
        y=alt.Y("rate:Q", title="Victims per 100,000"),
        color=alt.Color("sex:N", title="Sex", scale=alt.Scale(domain=list(SEX_COLORS), range=list(SEX_COLORS.values())),
                        legend=alt.Legend(orient="top")),
        tooltip=["area:N", "year:O", "sex:N", alt.Tooltip("rate:Q", format=".2f")],
    ).properties(width=260, height=140).facet(
        facet=alt.Facet("area:N", title=None, sort=order), columns=3,
    ).resolve_scale(y="independent").properties(title="Intentional homicide victims per 100,000 population, by sex")
    return svg(chart) + ('<p class="note">SDG 16.1.1 (VC_IHR_PSRC), latest release; female victims per 100,000 '
                         "females, male victims per 100,000 males. Each state's rates are on its page.</p>")


def tracing_rates(con, views: set[str]) -> str:
    if "country_year_panel" not in views:
        return _missing("tracing rates", "country_year_panel")
    rows = query(con, """
        SELECT country, year, arms_traced_pct AS pct, len(arms_traced_pct_footnotes) > 0 AS noted
        FROM country_year_panel WHERE arms_traced_pct IS NOT NULL ORDER BY country, year""")
    if not rows:
        return '<p class="note">No SDG 16.4.2 observation published.</p>'
    for r in rows:  # one decimal, truncated: 99.52 reads 99.5, never 100
        r["label"] = f"{math.floor(r['pct'] * 10) / 10:.1f}" + ("*" if r["noted"] else "")
    years = list(range(min(r["year"] for r in rows), max(r["year"] for r in rows) + 1))  # a gap stays a gap
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("year:O", title="Year", scale=alt.Scale(domain=years), sort=years),
        y=alt.Y("country:N", title=None, sort="ascending", axis=alt.Axis(labelLimit=0)))
    heat = base.mark_rect().encode(
        color=alt.Color("pct:Q", title="% traced", scale=alt.Scale(scheme="viridis", domain=[0, 100])),
        tooltip=["country:N", "year:O", alt.Tooltip("pct:Q", title="% traced")])
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("label:N"), color=alt.condition("datum.pct > 60", alt.value("black"), alt.value("white")))
    chart = (heat + text).properties(width=700, height=alt.Step(14),
                                     title="SDG 16.4.2: share of seized, found and surrendered arms traced (%)")
    notes = query(con, """
        SELECT country, CAST(year AS VARCHAR) AS year, arms_traced_pct AS pct,
               array_to_string(arms_traced_pct_footnotes, '; ') AS footnotes
        FROM country_year_panel WHERE len(arms_traced_pct_footnotes) > 0 ORDER BY country, year""")
    return (svg(chart) + f'<p class="note">{len(rows)} observations of {len({r["country"] for r in rows})} states; '
            f"* the observation has a footnote.</p><details><summary>{len(notes)} footnotes</summary>"
            + table(notes, ["country", "year", "pct", "footnotes"], labels={"pct": "% traced"}) + "</details>")


def revisions(con, views: set[str]) -> str:
    latest_releases = releases(con, views)
    if "indicator_revisions" not in views:
        return ('<p class="note">No revisions yet: each dataset has a single release published.</p>'
                + table(latest_releases, ["dataset", "release"]))
    counts = query(con, f"""
        SELECT dataset || ': ' || old_release || ' → ' || new_release AS release, replace(change, '_', ' ') AS change,
               count(*) AS observations
        FROM ({LATEST_REVISIONS}) GROUP BY ALL ORDER BY ALL""")
    chart = alt.Chart(alt.Data(values=counts)).mark_bar().encode(
        y=alt.Y("release:N", title=None, axis=alt.Axis(labelLimit=0)), x=alt.X("observations:Q", title="Observations"),
        color=alt.Color("change:N", title="Change", scale=alt.Scale(range=OKABE_ITO),
                        legend=alt.Legend(orient="bottom")),
        tooltip=["release:N", "change:N", "observations:Q"],
    ).properties(width=800, height=alt.Step(30), title="What the latest release of each dataset changed")
    countries = "LEFT JOIN countries c USING (iso3)" if "countries" in views else ""
    name = "coalesce(c.name, r.iso3)" if countries else "r.iso3"
    biggest = query(con, f"""
        SELECT r.dataset, {name} AS country, CAST(r.year AS VARCHAR) AS year, r.old_value, r.new_value,
               r.new_value - r.old_value AS difference, r.observation
        FROM ({LATEST_REVISIONS}) r {countries} WHERE r.change = 'value_changed'
        ORDER BY abs(r.new_value - r.old_value) DESC, r.dataset, country, r.year LIMIT 10""")
    revised = {r["release"].split(":")[0] for r in counts}
    unrevised = [r for r in latest_releases if r["dataset"].split(" ")[0] not in revised]
    return (svg(chart) + table(counts, ["release", "change", "observations"])
            + ('<p class="note">Latest releases without a previous one to compare with:</p>'
               + table(unrevised, ["dataset", "release"]) if unrevised else "")
            + "<p>Largest value revisions:</p>"
            + table(biggest, ["dataset", "country", "year", "observation", "old_value", "new_value", "difference"],
                    labels={"old_value": "old value", "new_value": "new value"}))


def validation(reports: list[Report], root: Path, generated_at: datetime) -> str:
    """One line per batch; a failing batch's reason folded under it, its quarantine folder relative to the
    warehouse."""
    outcomes = [(r.flow, o) for r in reports for o in r.outcomes]
    bad = [o for _, o in outcomes if not o.ok]
    summary = (f'<p class="{"bad" if bad else "ok"}">{len(outcomes) - len(bad)} of {len(outcomes)} batches passed '
               f"validation (published or unchanged), {len(bad)} quarantined or failed; run "
               f"{html.escape(', '.join(sorted({r.run_id for r in reports})))}; this page built "
               f"{generated_at.isoformat(timespec='seconds')}.</p>")
    lines = []
    for flow, o in outcomes:
        rows = ", ".join(f"{t} {n:,}" for t, n in o.rows.items() if n)
        line = html.escape(f"{flow} · {o.key} · {o.status}" + (f" · {rows}" if rows else ""))
        if o.ok:
            lines.append(f"<li>{line}</li>")
        else:
            kept = f"kept in {relative(o.quarantine, root)}\n" if o.quarantine else ""
            lines.append(f'<li><details><summary class="bad">{line}</summary><pre>{html.escape(kept + o.reason)}'
                         "</pre></details></li>")
    return summary + f'<ul class="batches">{"".join(lines)}</ul>'


def sources() -> str:
    """Every registered source's origin: producer, title, licence and the citation, as Our World in Data gives
    them ("Sources and processing")."""
    items = []
    for origin in registry.origins():
        licence = f'<a href="{html.escape(str(origin.license.url))}">{html.escape(origin.license.name)}</a>'
        items.append(
            f"<li><b>{html.escape(origin.title)}</b> – {html.escape(origin.producer)}"
            + (f" ({html.escape(origin.attribution_short)})" if origin.attribution_short else "")
            + f"<br>Licence: {licence}<br>Retrieved from: "
            f'<a href="{html.escape(str(origin.url_main))}">{html.escape(str(origin.url_main))}</a>'
            f"<br>Citation: {html.escape(origin.citation_full)}</li>")
    return ("<ul>" + "".join(items) + "</ul><p class=\"note\">Country shapes: Natural Earth 1:110m via world-atlas "
            "2.0.2 (Mike Bostock, ISC licence); Natural Earth is in the public domain.</p>")


def page(con: duckdb.DuckDBPyConnection, reports: list[Report], generated_at: datetime, root: Path) -> str:
    """The report as one HTML document."""
    views = published_views(con)
    status = treaty_status(con) if "treaty_status" in views else None
    parts = {
        "map": ("Who is party: treaty status by state", maps(status)),
        "signed-not-ratified": ("Signed, not ratified", signed_not_ratified(status)),
        "parties-per-year": ("Parties per year", parties_per_year(con, views)),
        "status-by-region": ("Treaty status by region", status_by_region(con, views)),
        "seizures": ("Arms seized over time (UNODC IAFQ)", seizures(con, views)),
        "homicide": ("Homicide rates by sex (SDG 16.1.1)", homicide(con, views)),
        "tracing-rates": ("Arms traced (SDG 16.4.2) by country over time", tracing_rates(con, views)),
        "revisions": ("What the latest IAFQ and SDG releases revised", revisions(con, views)),
        "validation": ("Validation results of this run", validation(reports, root, generated_at)),
        "sources": ("Sources and licences", sources()),
    }
    body = "".join(f'<section id="{key}"><h2>{html.escape(title)}</h2>{content}</section>'
                   for key, (title, content) in parts.items())
    return document("armswatch report", "<h1>armswatch: UN instruments against illicit arms</h1>"
                    + status_as_at(con, views, reports)
                    + f'<p class="note">Pages per state: <a href="{COUNTRY_INDEX}">index</a>. From the warehouse\'s '
                    "published tables (armswatch.duckdb); when this page was built is in the validation section. "
                    "This page loads nothing from anywhere.</p>" + body)


def document(title: str, body: str) -> str:
    """A self-contained HTML page: inline style, no script, nothing loaded (its Content-Security-Policy)."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>")


def build(root: Path, con: duckdb.DuckDBPyConnection, reports: list[Report], generated_at: datetime) -> Path:
    """Write root/report/index.html atomically; returns its path."""
    target = Path(root) / "report" / "index.html"
    atomic_write(target, page(con, reports, generated_at, Path(root)).encode())
    target.chmod(0o644)
    return target

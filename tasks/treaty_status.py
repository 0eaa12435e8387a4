"""Treaty status as the ratification dashboards show it: treaty_status (as of the latest status date) and
treaty_status_by_year (long form), for every UN member and observer state x catalog treaty.

Inputs are tables already parsed from upstream: treaties and participation from the UN Treaty Collection MTDSG
status pages (https://treaties.un.org/doc/Publication/MTDSG/Volume%20II/Chapter%20XVIII/XVIII-12-c.en.xml and
siblings) and countries from the UNSD M49 list (https://unstats.un.org/unsd/methodology/m49/overview/). Feeds
treaty_status and treaty_status_by_year. Pure: tables in, tables out.

A state listed several times for a treaty (an action withdrawn, then a new one) counts by its entries together:
party when any entry not withdrawn has a consent date; withdrawn when its only dated entries were withdrawn or
denounced; signatory when an entry not withdrawn has a signature only; no_action otherwise. States without an entry
are no_action. A treaty whose document has no participant table (UNTOC in the 2018 snapshot) gets null status.
Per year, `party` is a party in force (participation.in_force_date), `consent_deposited` a consent deposited (what
UNTC's Parties count counts); the as-of year is marked incomplete (`complete_year` false).
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from tasks.panel import panel_states
from tasks.tables import TREATY_STATUS, TREATY_STATUS_BY_YEAR


def _entries(participation: pa.Table, mtdsg_no: str) -> dict[str, list[dict]]:
    """A treaty's participation rows by iso3."""
    rows = participation.filter(pc.equal(participation["mtdsg_no"], mtdsg_no)).to_pylist()
    by_state: dict[str, list[dict]] = {}
    for row in rows:
        if row["iso3"] is not None:
            by_state.setdefault(row["iso3"], []).append(row)
    return by_state


def _whole_years(since: date, until: date) -> int:
    return until.year - since.year - ((until.month, until.day) < (since.month, since.day))


def state_status(entries: list[dict], as_of: date) -> dict:
    """status, dates, kinds and years_party of one state for one treaty from its participation entries."""
    active = [e for e in entries if not e["withdrawn"]]
    consented = sorted((e for e in active if e["consent_date"]), key=lambda e: e["consent_date"])
    signed = sorted((e for e in active if e["signature_date"]), key=lambda e: e["signature_date"])
    withdrawn = [e for e in entries if e["withdrawn"]]
    if consented:
        status, entry = "party", consented[0]
    elif signed:
        status, entry = "signatory", signed[0]
    elif withdrawn:
        status, entry = "withdrawn", withdrawn[-1]
    else:
        status, entry = "no_action", {}
    signature = signed[0] if signed else entry
    return {
        "status": status,
        "signature_date": signature.get("signature_date"), "signature_kind": signature.get("signature_kind"),
        "consent_date": entry.get("consent_date"), "consent_kind": entry.get("consent_kind"),
        "withdrawal_date": entry.get("withdrawal_date") if status == "withdrawn" else None,
        "years_party": _whole_years(entry["consent_date"], as_of) if status == "party" else None,
    }


def _held(entries: list[dict], column: str, year: int) -> bool | None:
    """Whether any entry's `column` action held at the end of `year`; None when that hangs on an undated withdrawal."""
    held = False
    for e in entries:
        when = e[column]
        if when is None or when.year > year:
            continue
        if not e["withdrawn"]:
            return True
        if e["withdrawal_date"] is None:
            held = None
        elif e["withdrawal_date"].year > year:
            return True
    return held


def status_tables(treaty: dict, participation: pa.Table, countries: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(treaty_status, treaty_status_by_year) rows of one treaty, from its treaties row (mtdsg_no, short_name,
    as_of, conclusion_date, participant_table_found), the published participation and the countries table."""
    mtdsg_no, as_of = treaty["mtdsg_no"], treaty["as_of"]
    by_state = _entries(participation, mtdsg_no)
    known = bool(treaty["participant_table_found"])
    dated = [e[c] for rows in by_state.values() for e in rows for c in ("signature_date", "consent_date") if e[c]]
    first = treaty["conclusion_date"] or (min(dated) if dated else as_of)
    status_rows, year_rows = [], []
    for state in panel_states(countries):
        entries = by_state.get(state["iso3"], [])
        status = state_status(entries, as_of) if known else {"status": None}
        status_rows.append({"iso3": state["iso3"], "m49": state["m49"], "country": state["name"],
                            "mtdsg_no": mtdsg_no, "treaty": treaty["short_name"], "as_of": as_of, **status})
        if known:
            year_rows += [{"iso3": state["iso3"], "mtdsg_no": mtdsg_no, "treaty": treaty["short_name"], "year": year,
                           "party": _held(entries, "in_force_date", year),
                           "consent_deposited": _held(entries, "consent_date", year),
                           "signatory": _held(entries, "signature_date", year),
                           "complete_year": as_of >= date(year, 12, 31)}
                          for year in range(min(first, as_of).year, as_of.year + 1)]
    return (pa.Table.from_pylist(status_rows, schema=TREATY_STATUS.schema),
            pa.Table.from_pylist(year_rows, schema=TREATY_STATUS_BY_YEAR.schema))

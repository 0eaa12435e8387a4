"""tasks.treaty_status on hand-made participation rows and on the recorded Firearms Protocol document."""

from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conftest import MTDSG, recorded_countries
from tasks import treaty_status, untc
from tasks.tables import PARTICIPATION, TREATIES, TREATY_STATUS, TREATY_STATUS_BY_YEAR

COUNTRIES = recorded_countries()
AS_OF = date(2018, 1, 15)
TREATY = {"mtdsg_no": "T-1", "short_name": "Test Treaty", "as_of": AS_OF, "conclusion_date": date(2001, 5, 31),
          "participant_table_found": True}


ENTRY_INTO_FORCE = date(2003, 9, 29)


def entry(iso3, signature=None, consent=None, withdrawn=False, withdrawal=None, kind="ratification"):
    return {"mtdsg_no": "T-1", "participant": iso3, "iso3": iso3, "is_state": True, "participant_kind": "state",
            "signature_date": signature, "signature_kind": "signature" if signature else None,
            "consent_date": consent, "consent_kind": kind if consent else None,
            "in_force_date": untc.in_force_date(consent, ENTRY_INTO_FORCE, untc.Delay("days", 90)),
            "is_party": consent is not None and not withdrawn, "withdrawn": withdrawn, "withdrawal_date": withdrawal}


PARTICIPANTS = pa.Table.from_pylist([
    entry("MEX", date(2001, 12, 31), date(2003, 4, 10)),
    entry("FRA", date(2002, 2, 9)),
    entry("JAM", None, date(2010, 1, 15), kind="accession"),
    entry("USA", date(2013, 9, 25), None, withdrawn=True, withdrawal=date(2015, 3, 1)),  # signature withdrawn
    entry("VEN", None, date(2005, 1, 1), withdrawn=True),  # denounced, date unknown
    entry("PER", None, date(2004, 1, 1), withdrawn=True, withdrawal=date(2008, 6, 1)),  # denounced, then
    entry("PER", None, date(2012, 7, 1)),                                                 # acceded again
    {**entry(None, date(2002, 1, 1), date(2003, 1, 1)), "participant": "European Union", "is_state": False,
     "participant_kind": "organisation"},
    entry("CAN", None, date(2010, 11, 1)),  # in force 90 days later, in 2011
], schema=PARTICIPATION.schema)


@pytest.fixture(scope="module")
def tables():
    return treaty_status.status_tables(TREATY, PARTICIPANTS, COUNTRIES)


def status_of(table, iso3):
    return table.filter(pc.equal(table["iso3"], iso3)).to_pylist()[0]


def years_of(table, iso3):
    return {r["year"]: (r["party"], r["signatory"]) for r in table.filter(pc.equal(table["iso3"], iso3)).to_pylist()}


def test_one_row_per_un_state(tables):
    status, by_year = tables
    assert status.schema == TREATY_STATUS.schema and by_year.schema == TREATY_STATUS_BY_YEAR.schema
    assert status.num_rows == 195
    assert by_year.num_rows == 195 * (2018 - 2001 + 1)
    assert "ATA" not in status["iso3"].to_pylist() and "EUU" not in status["iso3"].to_pylist()


def test_statuses_as_the_dashboards_show_them(tables):
    status, _ = tables
    mexico = status_of(status, "MEX")
    assert (mexico["status"], mexico["consent_kind"], mexico["years_party"], mexico["country"]) == (
        "party", "ratification", 14, "Mexico")
    assert status_of(status, "FRA")["status"] == "signatory"
    assert status_of(status, "FRA")["years_party"] is None
    assert (status_of(status, "JAM")["status"], status_of(status, "JAM")["years_party"]) == ("party", 8)
    assert (status_of(status, "USA")["status"], status_of(status, "USA")["withdrawal_date"]) == (
        "withdrawn", date(2015, 3, 1))
    assert status_of(status, "VEN")["status"] == "withdrawn"
    assert (status_of(status, "PER")["status"], status_of(status, "PER")["consent_date"]) == (
        "party", date(2012, 7, 1))
    assert status_of(status, "JPN")["status"] == "no_action"
    assert set(status["as_of"].to_pylist()) == {AS_OF}


def test_status_by_year(tables):
    _, by_year = tables
    mexico = years_of(by_year, "MEX")
    assert [mexico[y] for y in (2001, 2002, 2003, 2018)] == [
        (False, True), (False, True), (True, True), (True, True)]
    deposited = {r["year"]: (r["consent_deposited"], r["party"]) for r in by_year.to_pylist() if r["iso3"] == "CAN"}
    assert [deposited[y] for y in (2009, 2010, 2011)] == [(False, False), (True, False), (True, True)]
    assert {r["year"]: r["complete_year"] for r in by_year.to_pylist() if r["iso3"] == "CAN"} == {
        y: y < 2018 for y in range(2001, 2019)}
    usa = years_of(by_year, "USA")
    assert [usa[y] for y in (2012, 2013, 2014, 2015)] == [(False, False), (False, True), (False, True),
                                                          (False, False)]
    peru = years_of(by_year, "PER")
    assert [peru[y][0] for y in (2003, 2004, 2007, 2008, 2011, 2012)] == [False, True, True, False, False, True]
    venezuela = years_of(by_year, "VEN")
    assert (venezuela[2004][0], venezuela[2005][0], venezuela[2018][0]) == (False, None, None)


def test_no_participant_table_means_unknown_status():
    status, by_year = treaty_status.status_tables(dict(TREATY, participant_table_found=False),
                                                  PARTICIPANTS.slice(0, 0), COUNTRIES)
    assert status.num_rows == 195 and status["status"].null_count == 195
    assert by_year.num_rows == 0


def test_recorded_firearms_protocol_matches_untc_counts():
    url = untc.mtdsg_url("XVIII-12-c")
    doc = untc.parse_document((MTDSG / "XVIII-12-c.en.xml").read_bytes(), url, "XVIII-12-c", "Firearms Protocol")
    batch = untc.batch_tables(doc, "0" * 64, datetime(2018, 1, 15, tzinfo=timezone.utc), AS_OF)
    treaty = batch[TREATIES].to_pylist()[0]
    status, by_year = treaty_status.status_tables(treaty, batch[PARTICIPATION], COUNTRIES)
    counts = {s: status["status"].to_pylist().count(s) for s in ("party", "signatory", "no_action")}
    # UNTC states 115 parties, one of them the European Union, which is no state.
    assert counts["party"] == treaty["stated_parties"] - 1
    assert counts["party"] + counts["signatory"] + counts["no_action"] == 195
    assert status_of(status, "MEX")["consent_date"] == date(2003, 4, 10)
    last = by_year.filter(pc.equal(by_year["year"], 2018))
    assert pc.sum(last["party"].cast(pa.int32())).as_py() == counts["party"]


def test_the_suite_holds_parties_in_force_to_their_consents(tables):
    from tasks.validate import Validator

    _, by_year = tables
    params = {"today": "2026-11-29", "current_year": 2026}
    validator = Validator()
    assert not validator.validate(TREATY_STATUS_BY_YEAR, by_year, params).failures
    rows = by_year.to_pylist()
    broken = next(r for r in rows if r["party"])
    broken["consent_deposited"] = False
    result = validator.validate(TREATY_STATUS_BY_YEAR, pa.Table.from_pylist(rows, schema=by_year.schema), params)
    assert any("consent_deposited" in str(f) for f in result.failures["T-1"])

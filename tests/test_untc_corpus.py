"""Every recorded UNTC status document (../shared/data/untc/mtdsg-2018-01-15, chapters I–X, XVIII, XXVI): the id is
accepted, the document parses, parsed counts equal UNTC's stated counts and the treaty passes validation, consent
kinds come from the declared vocabulary, no column header is left unknown, no organisation is counted as an
unresolved state, and no withdrawn action is counted."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa
import pytest

from conftest import MTDSG, SHARED, recorded_countries
from tasks import catalog, tables, treaty_status, untc
from tasks.validate import Validator

ALL = sorted(p.name.removesuffix(".en.xml") for p in MTDSG.glob("*.en.xml"))
AS_OF = date(2018, 1, 15)

#: Documents whose own participant table contradicts the count they state, with the reason. They are quarantined.
CONTRADICTIONS = {
    "V-3": "22 dated signatures in the table, 23 signatories stated",
    "VII-9": "54 participants with a consent date in the table, 53 parties stated",
}


def parse(mtdsg_no: str) -> untc.Document:
    return untc.parse_document((MTDSG / f"{mtdsg_no}.en.xml").read_bytes(), untc.mtdsg_url(mtdsg_no), mtdsg_no, None)


DOCS = {mtdsg_no: parse(mtdsg_no) for mtdsg_no in ALL}


def with_counts(doc: untc.Document) -> bool:
    return doc.treaty["participant_table_found"] and doc.treaty["stated_parties"] is not None


def agrees(doc: untc.Document) -> bool:
    t = doc.treaty
    return t["parsed_parties"] == t["stated_parties"] and t["stated_signatories"] in (None, t["parsed_signatories"])


def test_the_snapshot_holds_196_documents_of_12_chapters():
    assert len(ALL) == 196
    assert all(untc.MTDSG_ID.match(i) for i in ALL)
    assert {i.split("-")[0] for i in ALL} == {
        "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XVIII", "XXVI"}


@pytest.mark.parametrize("mtdsg_no", ALL)
def test_every_document_id_is_accepted_and_parses_into_typed_tables(mtdsg_no, tmp_path):
    (tmp_path / "t.yaml").write_text(f"- {{id: {mtdsg_no}, short_name: x}}\n")
    assert catalog.load(tmp_path / "t.yaml")[0].url == untc.mtdsg_url(mtdsg_no)
    doc = DOCS[mtdsg_no]
    batch = untc.batch_tables(doc, "0" * 64, datetime.now(timezone.utc), AS_OF)
    for table, data in batch.items():
        assert data.schema.equals(table.schema)
    assert all(p["participant"] and "<" not in p["participant"] for p in doc.participation)
    assert all(p["iso3"] for p in doc.participation if p["is_state"]), "every state participant resolves"
    assert all(d["participant"] for d in doc.declarations)


@pytest.mark.parametrize("mtdsg_no", ALL)
def test_kinds_come_from_the_vocabulary_and_no_withdrawn_action_counts(mtdsg_no):
    doc = DOCS[mtdsg_no]
    assert {p["consent_kind"] for p in doc.participation} <= {None, *untc.CONSENT_KINDS}
    assert {p["signature_kind"] for p in doc.participation} <= {None, *untc.SIGNATURE_KINDS}
    assert not any(p["is_party"] for p in doc.participation if p["withdrawn"])
    withdrawn_signatures = sum(e["event"] == "signature" and e["withdrawn"] for e in doc.events)
    signatures = sum(e["event"] == "signature" for e in doc.events)
    assert doc.treaty["parsed_signatories"] == signatures - withdrawn_signatures
    if doc.treaty["participant_table_found"]:
        progress = untc.ratification_progress(mtdsg_no, doc.participation, doc.events, AS_OF)
        undated = sum(p["withdrawn"] and p["consent_date"] is not None and p["withdrawal_date"] is None
                      for p in doc.participation)
        assert not progress or progress[-1]["year"] == AS_OF.year
        assert not progress or progress[-1]["cumulative_consents"] == doc.treaty["parsed_parties"] or undated
        assert all(r["cumulative_parties"] <= r["cumulative_consents"] for r in progress)
        assert [r["complete_year"] for r in progress[-1:]] in ([], [False])


def test_parsed_counts_equal_stated_counts_on_every_document_with_counts():
    counted = [i for i in ALL if with_counts(DOCS[i])]
    disagreeing = {i for i in counted if not agrees(DOCS[i])}
    assert disagreeing == set(CONTRADICTIONS)
    assert len(counted) == 117
    assert (len(counted) - len(disagreeing)) / (len(counted) - len(CONTRADICTIONS)) == 1.0


def test_no_column_header_is_left_unknown_and_no_organisation_is_an_unresolved_state():
    headers = {untc.clean_text(label) for mtdsg_no in ALL
               for group in untc._parse_xml((MTDSG / f"{mtdsg_no}.en.xml").read_bytes(), "u", untc.LIMITS).iterfind(
                   "Treaty/Participants/Table/TGroup")
               for label in untc._entries(group.find("Thead/Row"))[1:]}
    assert len(headers) == 69
    assert all(untc.parse_header(h).role in (untc.SIGNATURE, untc.CONSENT, untc.PROVISIONAL, untc.NOTIFICATION)
               for h in headers)
    rows = [p for doc in DOCS.values() for p in doc.participation]
    organisations = {p["participant"] for p in rows if p["participant_kind"] == "organisation"}
    assert organisations == {"European Union", "World Health Organization"}
    assert {p["participant"] for p in rows if p["participant_kind"] == "territory"} == {
        "British Virgin Islands", "Cayman Islands", "Hong Kong", "Montserrat", "Turks and Caicos Islands"}
    assert not any(p["iso3"] for p in rows if p["participant_kind"] == "organisation")
    assert all(p["iso3"] and p["m49"] for p in rows if p["participant_kind"] != "organisation")


def test_withdrawn_actions_are_marked_with_their_footnote_dates():
    rows = {(i, p["participant"]): p for i, doc in DOCS.items() for p in doc.participation if p["withdrawn"]}
    assert len(rows) == 26
    trinidad = rows[("IV-5", "Trinidad and Tobago")]
    assert (trinidad["consent_date"], trinidad["consent_kind"], trinidad["is_party"]) == (
        date(1980, 11, 14), "accession", False)
    assert trinidad["withdrawal_date"] == date(2000, 6, 27)  # the second denunciation, with effect from
    assert rows[("V-3", "Madagascar")]["withdrawal_date"] == date(1966, 4, 2)  # "took effect on"
    assert rows[("IV-5", "Jamaica")]["withdrawal_date"] == date(1997, 10, 23)  # notified, no effective date
    assert rows[("X-9", "Canada")]["withdrawal_date"] == date(1993, 12, 31)  # from the footnote's table
    assert rows[("VI-1", "Netherlands")]["withdrawal_date"] is None  # the footnote gives no date
    events = [e for e in DOCS["IV-5"].events if e["participant"] == "Trinidad and Tobago"]
    assert [(e["event"], e["event_kind"], e["event_date"], e["withdrawn"]) for e in events] == [
        ("consent", "accession", date(1980, 11, 14), True),
        ("withdrawal", "denunciation", date(2000, 6, 27), False),
    ]


def test_organisations_are_parties_without_codes():
    who = next(p for p in DOCS["IX-3"].participation if p["participant"] == "World Health Organization")
    assert (who["is_state"], who["iso3"], who["m49"], who["is_party"]) == (False, None, None, True)
    eu = next(p for p in DOCS["XVIII-12-c"].participation if p["participant"] == "European Union")
    assert (eu["is_state"], eu["iso3"], eu["consent_kind"]) == (False, None, "approval")


def test_territorial_applications_keep_their_date_and_territories():
    apps = [d for d in DOCS["III-2"].declarations if d["kind"] == "territorial_application"]
    saar = next(d for d in apps if d["territories"] == "Saar")
    assert saar["notification_date"] == date(1957, 10, 10)
    assert saar["participant"] == next(d for d in apps if d["territories"] == "Land Berlin")["participant"]
    assert all(d["notification_date"] and d["territories"] for d in apps)


def test_treaty_status_counts_as_parties_exactly_the_participants_that_are_parties_on_every_document():
    """One rule on every document: a UN state is a party in treaty_status (and has a consent deposited in its as-of
    year of treaty_status_by_year) exactly when a participation row of it is a party, whatever became of its
    signature; it is a party in force that year exactly when the treaty is in force for it."""
    countries = recorded_countries()
    for mtdsg_no, doc in DOCS.items():
        if not doc.treaty["participant_table_found"]:
            continue
        batch = untc.batch_tables(doc, "0" * 64, datetime(2018, 1, 15, tzinfo=timezone.utc), AS_OF)
        status, by_year = treaty_status.status_tables({**batch[tables.TREATIES].to_pylist()[0], "short_name": "x"},
                                                      batch[tables.PARTICIPATION], countries)
        states = set(status["iso3"].to_pylist())
        parties = {p["iso3"] for p in doc.participation if p["is_party"]} & states
        assert {r["iso3"] for r in status.to_pylist() if r["status"] == "party"} == parties, mtdsg_no
        last = [r for r in by_year.to_pylist() if r["year"] == AS_OF.year]
        assert {r["iso3"] for r in last if r["consent_deposited"]} == parties, mtdsg_no
        in_force = {p["iso3"] for p in doc.participation if p["is_party"] and p["in_force_date"]
                    and p["in_force_date"].year <= AS_OF.year} & states
        assert {r["iso3"] for r in last if r["party"]} == in_force, mtdsg_no


def test_every_document_validates_except_header_only_ones_and_the_listed_contradictions():
    """The treaty is published (passes the suites) for every document with counts that agree."""
    validator = Validator()
    batches = {i: untc.batch_tables(doc, "0" * 64, datetime(2018, 1, 15, tzinfo=timezone.utc), AS_OF)
               for i, doc in DOCS.items()}
    failing: dict[str, list[str]] = {}
    for table in tables.TREATY_TABLES:
        result = validator.validate(table, pa.concat_tables([b[table] for b in batches.values()]),
                                    {"today": "2026-11-29", "current_year": 2026})
        assert not result.table_failures
        for key, failures in result.failures.items():
            failing.setdefault(key, []).extend(str(f) for f in failures)
    header_only = {i for i, d in DOCS.items() if not d.treaty["participant_table_found"] and d.treaty["stated_parties"]}
    assert set(failing) == header_only | set(CONTRADICTIONS)
    for mtdsg_no in CONTRADICTIONS:
        assert all("contradicts the document's own count" in f for f in failing[mtdsg_no])


def test_the_suites_use_the_declared_id_pattern_and_vocabularies():
    import json

    from tasks.validate import SUITES

    def kwargs(table: str, column: str, kind: str) -> dict:
        suite = json.loads((SUITES / f"{table}.json").read_text())
        return next(e["kwargs"] for e in suite["expectations"] if e["type"] == kind and e["kwargs"]["column"] == column)

    assert kwargs("treaties", "mtdsg_no", "expect_column_values_to_match_regex")["regex"] == untc.MTDSG_ID.pattern
    in_set = "expect_column_values_to_be_in_set"
    assert kwargs("participation", "consent_kind", in_set)["value_set"] == list(untc.CONSENT_KINDS)
    assert kwargs("participation", "signature_kind", in_set)["value_set"] == list(untc.SIGNATURE_KINDS)


def test_derived_urls_are_the_recorded_ones_for_both_volumes():
    import json

    manifest = json.loads((SHARED / "manifest.json").read_text())
    recorded = {e["url"] for e in manifest if e["source"].startswith("UN Treaty")}
    assert {untc.mtdsg_url(i) for i in ALL} == recorded
    assert sum("/Volume%20I/" in url for url in recorded) == 161

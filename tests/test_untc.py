"""The MTDSG parser on the real January 2018 documents in ../shared/data/untc."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from conftest import MTDSG
from tasks import untc
from tasks.errors import ParseError

FIXTURES = Path(__file__).parent / "fixtures"


def parse(mtdsg_no: str) -> untc.Document:
    body = (MTDSG / f"{mtdsg_no}.en.xml").read_bytes()
    return untc.parse_document(body, untc.mtdsg_url(mtdsg_no), mtdsg_no, None)


def participant(doc: untc.Document, name: str) -> dict:
    return next(p for p in doc.participation if p["participant"] == name)




@pytest.mark.parametrize("mtdsg_no, parties, signatories", [
    ("XVIII-12-a", 173, 117), ("XVIII-12-b", 146, 112), ("XVIII-12-c", 115, 52),
    ("XXVI-2", 125, 50), ("XXVI-8", 94, 130),
])
def test_parsed_counts_equal_untc_stated_counts(mtdsg_no, parties, signatories):
    treaty = parse(mtdsg_no).treaty
    assert (treaty["stated_parties"], treaty["stated_signatories"]) == (parties, signatories)
    assert (treaty["parsed_parties"], treaty["parsed_signatories"]) == (parties, signatories)


def test_denmark_in_the_firearms_protocol_carries_footnote_1():
    doc = parse("XVIII-12-c")
    denmark = participant(doc, "Denmark")
    assert denmark["footnotes"] == [1]
    assert (denmark["iso3"], denmark["m49"], denmark["consent_kind"]) == ("DNK", 208, "approval")
    note = next(n for n in doc.footnotes if n["footnote"] == 1)
    assert "Greenland and the Faroe Islands" in note["text"]


def test_mexico_ratified_the_firearms_protocol_on_10_april_2003():
    mexico = participant(parse("XVIII-12-c"), "Mexico")
    assert (mexico["signature_date"], mexico["consent_date"], mexico["consent_kind"]) == (
        date(2001, 12, 31), date(2003, 4, 10), "ratification")


def test_arms_trade_treaty_provisional_application_dates():
    doc = parse("XXVI-8")
    denmark = participant(doc, "Denmark")
    assert denmark["provisional_application_date"] == date(2014, 4, 2)
    assert denmark["consent_date"] == date(2014, 4, 2) and denmark["consent_kind"] == "approval"
    assert sum(p["provisional_application_date"] is not None for p in doc.participation) == 22
    assert participant(doc, "Belgium")["provisional_application_date"] is None


def test_treaty_header_facts():
    treaty = parse("XVIII-12-c").treaty
    assert treaty["chapter"] == "XVIII"
    assert treaty["conclusion_place"] == "New York" and treaty["conclusion_date"] == date(2001, 5, 31)
    assert treaty["entry_into_force_date"] == date(2005, 7, 3)
    assert treaty["registration_no"] == "39574"
    assert treaty["title"].startswith("Protocol against the Illicit Manufacturing of and Trafficking in Firearms")


def test_untoc_2018_snapshot_is_header_only():
    doc = parse("XVIII-12")
    assert doc.participation == [] and doc.treaty["participant_table_found"] is False
    assert doc.treaty["stated_parties"] == 189


def test_declarations_and_objections_are_kept():
    doc = parse("XVIII-12-c")
    algeria = [d for d in doc.declarations if d["participant"] == "Algeria"]
    assert algeria[0]["kind"] == "reservation_and_declaration"
    assert "article 16, paragraph 2" in algeria[0]["text"]
    assert any(d["kind"] == "objection" and d["participant"] == "Armenia" for d in doc.declarations)
    assert any(d["kind"] == "notification" for d in doc.declarations)


def test_control_bytes_become_the_punctuation_they_lost():
    doc = parse("XVIII-12-a")
    texts = " ".join(d["text"] for d in doc.declarations)
    assert "People\u2019s Republic" in texts


def test_ratification_progress_accumulates_to_the_parsed_counts():
    doc = parse("XVIII-12-c")
    progress = untc.ratification_progress("XVIII-12-c", doc.participation, doc.events, date(2026, 11, 28))
    assert progress[0]["year"] == 2001 and progress[-1]["year"] == 2026
    assert progress[-1]["cumulative_consents"] == 115 and progress[-1]["cumulative_signatories"] == 52
    assert sum(r["new_parties"] for r in progress) == 115
    assert [r["complete_year"] for r in progress][-2:] == [True, False]
    by_year = {r["year"]: r for r in progress}
    # 3 consents in 2002, none in force before the Protocol entered into force on 3 July 2005
    assert [(by_year[y]["cumulative_consents"], by_year[y]["cumulative_parties"]) for y in (2002, 2004)] == [
        (3, 0), (32, 0)]
    assert 40 <= by_year[2005]["cumulative_parties"] < by_year[2005]["cumulative_consents"]
    assert (by_year[2001]["includes_organisations"], by_year[2002]["includes_organisations"]) == (False, True)


def test_the_treaty_enters_into_force_for_a_later_party_after_the_stated_delay():
    """Entry into force 3 July 2005; 'on the thirtieth day after the date of deposit' for each later consent."""
    rows = {p["participant"]: p for p in parse("XVIII-12-c").participation}
    assert rows["Mali"]["consent_date"] == date(2002, 5, 3) and rows["Mali"]["in_force_date"] == date(2005, 7, 3)
    assert rows["Serbia"]["consent_date"] == date(2005, 12, 20)
    assert rows["Serbia"]["in_force_date"] == date(2006, 1, 19)


@pytest.mark.parametrize("case", yaml.safe_load((FIXTURES / "entry_into_force.yaml").read_text()))
def test_entry_into_force_delays_read_from_the_text(case):
    delay = untc.entry_into_force_delay(case["text"])
    assert delay is not None and delay.after(date(2001, 1, 15)) == case["after"]


@pytest.mark.parametrize("text", ["24 December 2014, in accordance with article 22.",
                                  "This Treaty will enter into force 180 days after the deposit by all States listed"])
def test_no_delay_for_a_later_participant_unless_stated(text):
    assert untc.entry_into_force_delay(text) is None


def test_treaty_events_long_form():
    doc = parse("XXVI-8")
    events = doc.events
    mexico = {e["event"]: e["event_date"] for e in events if e["participant"] == "Mexico"}
    assert mexico == {"signature": date(2013, 6, 3), "consent": date(2013, 9, 25),
                      "provisional_application": date(2013, 9, 25)}


@pytest.mark.parametrize("mtdsg_no, url", [
    ("XVIII-12-c", "https://treaties.un.org/doc/Publication/MTDSG/Volume%20II/Chapter%20XVIII/XVIII-12-c.en.xml"),
    ("XXVI-8", "https://treaties.un.org/doc/Publication/MTDSG/Volume%20II/Chapter%20XXVI/XXVI-8.en.xml"),
    ("IV-4", "https://treaties.un.org/doc/Publication/MTDSG/Volume%20I/Chapter%20IV/IV-4.en.xml"),
    ("XI-A-1", "https://treaties.un.org/doc/Publication/MTDSG/Volume%20I/Chapter%20XI/XI-A-1.en.xml"),
    ("XII-1", "https://treaties.un.org/doc/Publication/MTDSG/Volume%20II/Chapter%20XII/XII-1.en.xml"),
])
def test_mtdsg_url_volume_follows_the_chapter(mtdsg_no, url):
    assert untc.mtdsg_url(mtdsg_no) == url


@pytest.mark.parametrize("cell, expected", [
    ("8 Feb 2008 a", (date(2008, 2, 8), "a")),
    ("4 Feb 2015 AA", (date(2015, 2, 4), "AA")),
    ("18 Dec 2006", (date(2006, 12, 18), None)),
    ("", None),
    (None, None),
])
def test_parse_cell(cell, expected):
    assert untc.parse_cell(cell) == (expected and untc.Cell(*expected))


def test_parse_cell_rejects_garbage():
    with pytest.raises(ValueError, match="not 'D Mon YYYY"):
        untc.parse_cell("sometime in 2008")


@pytest.mark.parametrize("header, role, default, suffixes", [
    ("Signature", "signature", "signature", {}),
    ("Definitive signature(s)", "consent", "definitive_signature", {"s": "definitive_signature"}),
    ("Signature, Succession to signature(d)", "signature", "signature", {"d": "succession_to_signature"}),
    ("Approval(AA), Acceptance(A), Accession(a), Succession(d), Ratification", "consent", "ratification",
     {"AA": "approval", "A": "acceptance", "a": "accession", "d": "succession"}),
    ("Provisional application under article 23(n)", "provisional_application", "provisional_application",
     {"n": "provisional_application"}),
    ("Definitive signature(s), Acceptance(A), Succession(d), Accession(a)", "consent", None,
     {"s": "definitive_signature", "A": "acceptance", "d": "succession", "a": "accession"}),
    ("Accession(a), Succession(d), Participation by virtue of accession to the Protocol of 11 April 1980(P)",
     "consent", None, {"a": "accession", "d": "succession", "P": "participation"}),
    ("Ratification, Acceptance(A), Participation under articles 3 (2) and (3)(P)", "consent", "ratification",
     {"A": "acceptance", "P": "participation"}),
    ("Signature by non-regional members under Section 3 (c) (i) of resolution 07-79", "signature", "signature", {}),
    ("Notification under article 25", "notification", "notification", {}),
    ("Notification under article 21 (1) (b)", "notification", "notification", {}),
    ("Formal confirmation(c), Accession(a), Ratification", "consent", "ratification",
     {"c": "formal_confirmation", "a": "accession"}),
    ("Definitive signature of the Protocol, Acceptance of the Protocol, Succession to the Protocol", "consent",
     "unspecified", {}),
    ("Definitive signature of the Protocol, Succession to the Convention and the Protocol, Acceptance of the "
     "Protocol, Acceptance ipso facto by virtue of article 10 (1) of the Convention of 12 September 1923, as "
     "amended(A)", "consent", "unspecified", {"A": "acceptance"}),
    ("Application", "consent", "application", {}),
    ("Participation in the Convention by virtue of ratification, accession or succession to the Protocol of 25 "
     "March 1972 or to the 1961 Convention after the entry into force of the Protocol", "consent", "participation", {}),
    ("Extension", "notification", "extension", {}),
    ("Notification of succession(d)", "consent", "succession", {"d": "succession"}),
])
def test_parse_header(header, role, default, suffixes):
    assert untc.parse_header(header) == untc.Column(role, default, suffixes)


def test_a_suffix_code_is_one_or_two_letters_ending_an_item():
    assert untc.suffix_code("Approval(AA)") == ("Approval", "AA")
    assert untc.suffix_code("Accession (a)") == ("Accession", "a")
    assert untc.suffix_code("article 21 (1) (b)") == ("article 21 (1) (b)", None)
    assert untc.suffix_code("Section 3 (c)") == ("Section 3 (c)", None)
    assert untc.suffix_code("Participation under articles 3 (2) and (3)(P)") == (
        "Participation under articles 3 (2) and (3)", "P")
    assert untc.split_top_level("Ratification, Notification under article 21 (1, 2)(n)") == [
        "Ratification", "Notification under article 21 (1, 2)(n)"]


@pytest.mark.parametrize("body, problem", [
    (b"", "empty document"),
    (b"<html><body>Down for maintenance</body></html>", "not an MTDSG status document"),
    ((MTDSG / "XVIII-12-c.en.xml").read_bytes()[:5000], "malformed or truncated XML"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Document/>', "DTD or entities"),
])
def test_bad_documents_raise_parse_error_naming_the_url(body, problem):
    url = untc.mtdsg_url("XVIII-12-c")
    with pytest.raises(ParseError, match=problem) as info:
        untc.parse_document(body, url, "XVIII-12-c", None)
    assert info.value.url == url and str(info.value).startswith(f"untc: {url}: ")

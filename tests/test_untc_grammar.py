"""The MTDSG grammar on small hand-written documents: withdrawn actions, header items, empty participants,
territorial applications, non-state participants, today's names, the document's own id and the as-of date."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import yaml

from tasks import tables, untc
from tasks.archive import date_of
from tasks.errors import ParseError

URL = untc.mtdsg_url("XXVII-9-b")
FIXTURES = Path(__file__).parent / "fixtures"


def document(headers: list[str], rows: list[list[str]], notes: dict[int, str] | None = None, *,
             chapter: str = "XXVII", number: str = "9", sub: str = "b", sections: str = "",
             status: tuple[int | None, int | None] = (None, None), eif: str = "") -> bytes:
    """A minimal MTDSG status document (markup in names escaped, as UNTC publishes it)."""
    def entries(cells):
        return "".join(f"<Entry>{escape(c)}</Entry>" if c else "<Entry />" for c in cells)

    counts = "".join(f"<{tag}>{n}</{tag}>" for tag, n in zip(("Signatories", "Parties"), status) if n is not None)
    body = "".join(f"<Row>{entries(r)}</Row>" for r in rows)
    endnotes = "".join(f"<Note><index>{i}</index><text>{escape(t)}</text></Note>" for i, t in (notes or {}).items())
    return (
        f'<?xml version="1.0" encoding="iso-8859-1"?><Document><Treaty><Header><Chapter><Header>CHAPTER {chapter}'
        f'</Header></Chapter><ExternalData><Numsect>{number}</Numsect><Subnumsect>{sub}</Subnumsect>'
        f'<Titlesect>Test treaty</Titlesect><Conclusion>Geneva, 1 March 2001</Conclusion>'
        f'<EIF><Labeltext>{escape(eif)}</Labeltext></EIF><Status>{counts}</Status></ExternalData></Header>'
        f'<Participants><Table><TGroup cols="{len(headers) + 1}"><Thead><Row>{entries(["Participant", *headers])}'
        f'</Row></Thead><Tbody><Rows>{body}</Rows></Tbody></TGroup></Table></Participants>{sections}'
        f'<EndNotes>{endnotes}</EndNotes></Treaty></Document>'
    ).encode("latin-1")


def parse(body: bytes, mtdsg_no: str = "XXVII-9-b") -> untc.Document:
    return untc.parse_document(body, URL, mtdsg_no, None)


def row(doc: untc.Document, name: str) -> dict:
    return next(p for p in doc.participation if p["participant"] == name)


@pytest.mark.parametrize("cell, expected", [
    ("[24 Apr 1963 ]", untc.Cell(date(1963, 4, 24), None, True)),
    ("[14 Nov 1980 a]", untc.Cell(date(1980, 11, 14), "a", True)),
    ("[22 Dec 1992] n", untc.Cell(date(1992, 12, 22), "n", True)),
    ("[ 3 Oct 1975 ]", untc.Cell(date(1975, 10, 3), None, True)),
    ("12 Sept. 2001 AA", untc.Cell(date(2001, 9, 12), "AA", False)),
])
def test_withdrawn_cells_keep_date_and_suffix_inside_or_outside_the_brackets(cell, expected):
    assert untc.parse_cell(cell) == expected


@pytest.mark.parametrize("cell", ["[14 Nov 1980 a", "[14 Nov 1980] a b", "14 Nov 1980 abc", "31 Feb 2001",
                                  "[14 Nov 1980]]", "8 Feb 2008 !"])
def test_malformed_cells_are_refused(cell):
    with pytest.raises(ValueError, match="not 'D Mon YYYY|not a"):
        untc.parse_cell(cell)


def test_a_withdrawn_consent_is_kept_marked_and_never_counted():
    body = document(
        ["Signature", "Ratification, Accession(a)"],
        [["Arcadia<superscript>1</superscript>", "[24 Apr 1963 ]", "[24 Nov 1969 ]"],
         ["Borduria<superscript>2</superscript>", "", "[14 Nov 1980 a]"],
         ["Carpania<superscript>3</superscript>", "", "[22 Dec 1992] a"],
         ["Dalmia", "2 Jan 2001", "3 Feb 2002"]],
        {1: "On 7 March 2005, the Secretary-General received from the Government of Arcadia a communication "
            "notifying its withdrawal from the Protocol.",
         2: "On 26 May 1998 the Government of Borduria informed the Secretary-General of its decision to denounce "
            "the Protocol with effect from 26 August 1998. On 27 March 2000 it denounced the Protocol for the second "
            "time with effect from 27 June 2000.",
         3: "The Government of Carpania notified the Secretary-General of its denunciation."},
        status=(1, 1))
    doc = parse(body)
    assert (doc.treaty["parsed_parties"], doc.treaty["parsed_signatories"]) == (1, 1)
    arcadia, borduria, carpania = row(doc, "Arcadia"), row(doc, "Borduria"), row(doc, "Carpania")
    assert (arcadia["withdrawn"], arcadia["is_party"], arcadia["consent_date"]) == (True, False, date(1969, 11, 24))
    assert arcadia["withdrawal_date"] == date(2005, 3, 7)
    assert (borduria["consent_kind"], borduria["withdrawal_date"]) == ("accession", date(2000, 6, 27))
    assert carpania["withdrawn"] and carpania["withdrawal_date"] is None
    kinds = {(e["participant"], e["event"]): (e["event_kind"], e["event_date"], e["withdrawn"]) for e in doc.events}
    assert kinds[("Arcadia", "withdrawal")] == ("withdrawal", date(2005, 3, 7), False)
    assert kinds[("Borduria", "withdrawal")] == ("denunciation", date(2000, 6, 27), False)
    assert kinds[("Arcadia", "signature")] == ("signature", date(1963, 4, 24), True)
    assert ("Carpania", "withdrawal") not in kinds

    progress = {r["year"]: r for r in untc.ratification_progress("XXVII-9-b", doc.participation, doc.events,
                                                                  date(2010, 5, 1))}
    assert max(progress) == 2010
    assert progress[1969]["new_parties"] == 1 and progress[1980]["cumulative_consents"] == 2
    assert progress[2000]["withdrawn_parties"] == 1 and progress[2005]["withdrawn_parties"] == 1
    assert progress[2010]["cumulative_consents"] == doc.treaty["parsed_parties"] == 1


def test_a_party_whose_signature_was_withdrawn_is_a_party_everywhere():
    """Participation, treaty_status and the suites agree: only the consent decides whether a participant is a party;
    the withdrawn signature is marked on its event and not counted."""
    from tasks import treaty_status
    from tasks.validate import Validator
    from test_treaty_status import COUNTRIES

    body = document(["Signature", "Ratification, Accession(a)"],
                    [["Mexico", "[2 Jan 2001 ]", "3 Feb 2002"], ["France", "[4 Mar 2001 ]", ""],
                     ["Jamaica", "5 Apr 2001", "[6 May 2003 a]"]], status=(1, 1),
                    eif="1 January 2002, in accordance with article 9.")
    doc = parse(body)
    mexico, france, jamaica = row(doc, "Mexico"), row(doc, "France"), row(doc, "Jamaica")
    assert (mexico["is_party"], mexico["withdrawn"], mexico["withdrawal_date"]) == (True, False, None)
    assert (france["is_party"], france["withdrawn"]) == (False, True)
    assert (jamaica["is_party"], jamaica["withdrawn"]) == (False, True)
    assert (doc.treaty["parsed_parties"], doc.treaty["parsed_signatories"]) == (1, 1)
    signatures = {e["participant"]: e["withdrawn"] for e in doc.events if e["event"] == "signature"}
    assert signatures == {"Mexico": True, "France": True, "Jamaica": False}
    batch = untc.batch_tables(doc, "0" * 64, datetime(2018, 1, 15, tzinfo=timezone.utc), date(2018, 1, 15))
    validator = Validator()
    for table, data in batch.items():
        result = validator.validate(table, data, {"today": "2026-11-29", "current_year": 2026})
        assert not result.failures and not result.table_failures, table.name
    treaty = {**batch[tables.TREATIES].to_pylist()[0], "short_name": "x"}
    status, by_year = treaty_status.status_tables(treaty, batch[tables.PARTICIPATION], COUNTRIES)
    statuses = {r["iso3"]: r["status"] for r in status.to_pylist() if r["iso3"] in ("MEX", "FRA", "JAM")}
    assert statuses == {"MEX": "party", "FRA": "withdrawn", "JAM": "withdrawn"}
    mexico_2017 = next(r for r in by_year.to_pylist() if (r["iso3"], r["year"]) == ("MEX", 2017))
    assert mexico_2017["party"] is True and mexico_2017["consent_deposited"] is True


def test_header_items_classify_p_as_participation_and_notifications_as_neither():
    body = document(
        ["Accession(a), Succession(d), Participation by virtue of accession to the Protocol of 11 April 1980(P)",
         "Notification under article 21 (1)", "Declaration of provisional application(n)"],
        [["Arcadia", "1 Jan 1990 P", "2 Jan 1991", ""], ["Borduria", "", "2 Jan 1991", ""],
         ["Carpania", "5 May 1995 a", "", ""]],
        status=(None, 2))
    doc = parse(body)
    assert row(doc, "Arcadia")["consent_kind"] == "participation"
    assert row(doc, "Carpania")["consent_kind"] == "accession"
    assert not row(doc, "Borduria")["is_party"] and row(doc, "Borduria")["consent_date"] is None
    assert doc.treaty["parsed_parties"] == 2


def test_a_header_listing_several_kinds_without_codes_gives_unspecified_and_the_header_text():
    header = "Definitive signature of the Protocol, Acceptance of the Protocol, Succession to the Protocol"
    doc = parse(document([header], [["Arcadia", "1 Jan 1950"], ["Borduria", "2 Feb 1951 d"]]))
    arcadia = row(doc, "Arcadia")
    assert (arcadia["consent_kind"], arcadia["consent_header"], arcadia["is_party"]) == ("unspecified", header, True)
    assert row(doc, "Borduria")["consent_kind"] == "succession"  # UNTC's legend for a code the header omits


def test_provisional_columns_are_never_consent_and_definitive_ones_are():
    """A commodity agreement's table: provisional acceptance or application is not consent to be bound, definitive
    acceptance is; slashes are alternatives of one column; a typo in a code's brackets is tolerated. UNTC's
    Parties count is what the definitive column gives."""
    body = document(
        ["Signature", "Provisional acceptance/accession", "Definitive acceptance/accession", "Provisional application(n"],
        [["Arcadia", "1 Jan 1990", "2 Feb 1990", "3 Mar 1991", ""], ["Borduria", "", "4 Apr 1990", "", ""],
         ["Carpania", "", "", "5 May 1992 a", ""], ["Dravia", "6 Jun 1990", "", "", "7 Jul 1990 n"]],
        status=(2, 2))
    doc = parse(body)
    assert doc.treaty["parsed_parties"] == doc.treaty["stated_parties"] == 2
    rows = {p["participant"]: (p["consent_kind"], p["consent_date"], p["provisional_application_date"], p["is_party"])
            for p in doc.participation}
    assert rows == {
        "Arcadia": ("unspecified", date(1991, 3, 3), date(1990, 2, 2), True),
        "Borduria": (None, None, date(1990, 4, 4), False),
        "Carpania": ("accession", date(1992, 5, 5), None, True),
        "Dravia": (None, None, date(1990, 7, 7), False),
    }


@pytest.mark.parametrize("case", yaml.safe_load((FIXTURES / "untc_header_items.yaml").read_text()))
def test_header_items_are_read_by_a_grammar_of_qualifiers_and_heads(case):
    named = tuple(case["named"]) if case["named"] else None
    assert {label: untc.classify(label) for label in case["labels"]} == dict.fromkeys(case["labels"], named)


@pytest.mark.parametrize("header, problem", [
    ("Adherence", "column header 'Adherence': 'Adherence' names no action armswatch knows"),
    ("Ratification, Adherence(x)", "column header 'Ratification, Adherence\\(x\\)': 'Adherence' names no action"),
    ("Signature, Ratification", "names actions of several roles without suffix codes"),
])
def test_a_column_of_unknown_kind_fails_its_treaty_naming_the_header(header, problem):
    with pytest.raises(ParseError, match=problem) as info:
        parse(document(["Signature", header], [["Arcadia", "1 Jan 1990", "2 Feb 1991"]]))
    assert info.value.url == URL


def test_an_uncoded_date_under_coded_actions_of_several_roles_fails():
    with pytest.raises(ParseError, match="'2 Feb 1991' under 'Acceptance\\(A\\), Provisional acceptance\\(n\\)': no "
                                         "suffix code says which"):
        parse(document(["Acceptance(A), Provisional acceptance(n)"], [["Arcadia", "2 Feb 1991"]]))


def test_an_unknown_suffix_is_visible_not_guessed():
    doc = parse(document(["Ratification"], [["Arcadia", "1 Jan 1950 zz"]]))
    assert row(doc, "Arcadia")["consent_kind"] == "unknown_suffix_zz"
    assert "unknown_suffix_zz" not in untc.CONSENT_KINDS


def test_empty_participant_entries_belong_to_the_entry_above():
    sections = (
        "<Declarations><Declaration><Participant>Arcadia</Participant><text>First.</text></Declaration>"
        "<Declaration><Participant /><text>Second.</text></Declaration></Declarations>"
        "<TerritorialApplications><Application><Participant>Borduria</Participant>"
        "<DateNotification>4 Apr 2003</DateNotification><Territories>Isle of A</Territories></Application>"
        "<Application><Participant /><DateNotification>10 Oct 1957</DateNotification>"
        "<Territories>Isle of B</Territories></Application></TerritorialApplications>")
    doc = parse(document(["Ratification"], [["Arcadia", "1 Jan 1950"]], sections=sections))
    assert [(d["participant"], d["kind"], d["seq"], d["text"]) for d in doc.declarations[:2]] == [
        ("Arcadia", "declaration", 1, "First."), ("Arcadia", "declaration", 2, "Second.")]
    apps = [(d["participant"], d["notification_date"], d["territories"]) for d in doc.declarations[2:]]
    assert apps == [("Borduria", date(2003, 4, 4), "Isle of A"), ("Borduria", date(1957, 10, 10), "Isle of B")]


def test_organisations_and_todays_names():
    doc = parse(document(["Signature", "Ratification, Formal confirmation(c)"], [
        ["European Union", "1 Jan 2001", "1 Jan 2003 c"], ["World Health Organization", "", "1 Jan 2004 c"],
        ["Türkiye", "1 Jan 2001", "1 Jan 2005"], ["Netherlands (Kingdom of the)", "", "1 Jan 2006"],
        ["Gambia (The)", "", "1 Jan 2007"], ["Ruritania", "", "1 Jan 2008"]], status=(2, 6)))
    eu, who = row(doc, "European Union"), row(doc, "World Health Organization")
    assert (eu["is_state"], eu["iso3"], eu["m49"], eu["consent_kind"], eu["is_party"]) == (
        False, None, None, "formal_confirmation", True)
    assert (who["is_state"], who["iso3"]) == (False, None)
    assert [row(doc, n)["iso3"] for n in ("Türkiye", "Netherlands (Kingdom of the)", "Gambia (The)")] == [
        "TUR", "NLD", "GMB"]
    assert doc.treaty["parsed_parties"] == 6
    ruritania = row(doc, "Ruritania")
    assert (ruritania["iso3"], ruritania["is_state"]) == (None, True)  # visible: the iso3 expectation fails


def test_organisations_by_rule_territories_and_names_that_read_as_neither():
    """Organisations outside the declared list are recognised by their name's head noun or acronym; a territory
    keeps its own codes; a name that reads as neither (a state's words, or no organisation noun) stays an
    unresolved state, named in the run summary."""
    from flows.ratification import counts
    from tasks.validate import Validator

    organisations = ["Organization of African Unity", "Latin American Integration Association",
                     "Economic Community of the Great Lakes Countries", "Agency for Cultural and Technical Co-operation",
                     "International Institute for the Unification of Private Law", "Preparatory Commission (PCOPA)",
                     "Asian Development Bank"]
    unresolved = ["Union of Soviet Socialist Republics", "Ruritania"]
    doc = parse(document(["Ratification"], [[n, "1 Jan 1990"] for n in [*organisations, "Montserrat", *unresolved]],
                         status=(None, 10)))
    kinds = {p["participant"]: (p["participant_kind"], p["is_state"], p["iso3"]) for p in doc.participation}
    assert {n: kinds[n] for n in organisations} == {n: ("organisation", False, None) for n in organisations}
    assert kinds["Montserrat"] == ("territory", False, "MSR")
    assert [kinds[n] for n in unresolved] == [("state", True, None)] * 2
    assert doc.treaty["parsed_parties"] == 10
    batch = untc.batch_tables(doc, "0" * 64, datetime(2026, 1, 2, tzinfo=timezone.utc), date(2026, 1, 2))
    assert counts(batch).endswith("unresolved participants: Union of Soviet Socialist Republics, Ruritania")
    result = Validator().validate(tables.PARTICIPATION, batch[tables.PARTICIPATION],
                                  {"today": "2026-11-29", "current_year": 2026})
    failing = {str(f).split(";")[0] for f in result.failures.get("XXVII-9-b", [])}
    assert failing and all("expect_column_values_to_not_be_null[iso3]" in f or "[m49]" in f or "regex" in f
                           for f in failing), failing


def test_the_rule_recognises_the_declared_organisations():
    """The declared list in country_aliases.yaml stays for exceptions: the rule alone reads every declared
    organisation but the United Nations (no organisation noun) as one."""
    from tasks import countries

    declared = countries.declared()[1]
    by_rule = {n for n in declared if countries.reads_as_organisation(n)}
    assert declared - by_rule == {"united nations"}


def test_unresolved_participants_are_named_in_the_summary_and_the_alert():
    from flows.ratification import counts
    from tasks.alerts import failure_alert, summary_lines
    from tasks.audit import Outcome
    from tasks.run import Report

    doc = parse(document(["Ratification"], [["Ruritania", "1 Jan 2008"], ["European Union", "1 Jan 2008"]]))
    batch = untc.batch_tables(doc, "0" * 64, datetime(2026, 1, 2, tzinfo=timezone.utc), date(2026, 1, 2))
    detail = counts(batch)
    assert detail.endswith("as of 2026-01-02; unresolved participants: Ruritania")
    report = Report("treaties", "run-1", [Outcome("XXVII-9-b", "quarantined", detail=detail)])
    assert "unresolved participants: Ruritania" in "\n".join(summary_lines([report]))
    assert "unresolved participants: Ruritania" in failure_alert("run-1", [report]).body


@pytest.mark.parametrize("mtdsg_no", ["XXVII-9-b", "XXVII-9b"])
def test_the_document_must_be_the_one_the_catalog_asked_for(mtdsg_no):
    body = document(["Ratification"], [["Arcadia", "1 Jan 1950"]])
    parse(body, mtdsg_no)  # the sub-number is compared without separators
    with pytest.raises(ParseError, match="document states it is XXVII-9-b, not the catalog's XXVII-9-c") as info:
        parse(body, "XXVII-9-c")
    assert info.value.url == URL
    with pytest.raises(ParseError, match="not the catalog's XXVI-9-b"):
        parse(body, "XXVI-9-b")


@pytest.mark.parametrize("chapter", ["XI", "XI A", "XI-A", "Chapter XI"])
def test_a_chapter_part_id_matches_a_document_that_states_or_omits_the_part(chapter):
    body = document(["Ratification"], [["Arcadia", "1 Jan 1950"]], chapter=chapter, number="5", sub="")
    body = body.replace(b"CHAPTER Chapter", b"Chapter")
    assert parse(body, "XI-A-5").treaty["mtdsg_no"] == "XI-A-5"
    with pytest.raises(ParseError, match="not the catalog's XI-A-6"):
        parse(body, "XI-A-6")


@pytest.mark.parametrize("mtdsg_no", ["IV-4", "XVIII-12-c", "III-2-1", "III-2-12a", "XI-A-5", "XXVII-7-d",
                                      "IV-11-a", "X-1-b", "XII-1"])
def test_mtdsg_id_accepts_every_form(mtdsg_no):
    assert untc.MTDSG_ID.match(mtdsg_no)


@pytest.mark.parametrize("mtdsg_no", ["", "IV", "iv-4", "IV-4\n", "IV--4", "IV-4-", "IV-4-c-d-e-f", "A-1",
                                      "IV-4-C", "../IV-4", "IV-4 "])
def test_mtdsg_id_refuses_other_strings(mtdsg_no):
    assert not untc.MTDSG_ID.match(mtdsg_no)


@pytest.mark.parametrize("headers, expected", [
    ({"Date": "Mon, 15 Jan 2018 09:30:00 GMT"}, date(2018, 1, 15)),
    ({"date": "Tue, 03 Nov 2026 23:59:59 GMT"}, date(2026, 11, 3)),
    ({"Date": "not a date"}, date(2026, 11, 29)),
    ({}, date(2026, 11, 29)),
])
def test_status_as_of_is_the_date_header_else_the_fetch_date(headers, expected):
    assert date_of(headers, datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)) == expected


def test_every_treaty_row_carries_as_of_and_progress_runs_to_its_year():
    doc = parse(document(["Ratification"], [["Arcadia", "1 Jan 1950"]]))
    batch = untc.batch_tables(doc, "0" * 64, datetime(2026, 11, 29, tzinfo=timezone.utc), date(2018, 1, 15))
    assert batch[tables.TREATIES].column("as_of").to_pylist() == [date(2018, 1, 15)]
    assert batch[tables.RATIFICATION_PROGRESS].column("year").to_pylist()[-1] == 2018


def test_footnote_marks_in_cells_are_kept_and_several_tables_are_one_participant_list():
    body = document(["Signature", "Ratification"],
                    [["Arcadia", "1 Jan 2001<superscript>4</superscript>", ""], ["Borduria", "", "2 Feb 2002"]],
                    status=(1, 2))
    second = (b'<Table><TGroup cols="2"><Thead><Row><Entry>Participant</Entry><Entry>Acceptance(A)</Entry></Row>'
              b'</Thead><Tbody><Rows><Row><Entry>Arcadia</Entry><Entry>3 Mar 2003 A</Entry></Row></Rows></Tbody>'
              b'</TGroup></Table></Participants>')
    doc = parse(body.replace(b"</Participants>", second, 1))
    arcadia = row(doc, "Arcadia")
    assert arcadia["footnotes"] == [4]
    assert (arcadia["signature_date"], arcadia["consent_kind"], arcadia["is_party"]) == (
        date(2001, 1, 1), "acceptance", True)
    assert [p["participant"] for p in doc.participation] == ["Arcadia", "Borduria"]
    assert (doc.treaty["parsed_parties"], doc.treaty["parsed_signatories"]) == (2, 1)


def test_the_withdrawal_date_ignores_withdrawn_reservations_and_follows_the_effect_sentence():
    body = document(["Ratification"], [["Arcadia<superscript>1</superscript>", "[1 Jan 1990 ]"]], {
        1: "On 1 September 2004, the Government of Arcadia informed the Secretary-General that it had decided to "
           "denounce the Agreement. The action will become effective for Arcadia on 31 July 2007. On 5 May 2010, "
           "the Government of Arcadia notified the Secretary-General of its decision to withdraw the reservation "
           "made upon ratification."})
    assert row(parse(body), "Arcadia")["withdrawal_date"] == date(2007, 7, 31)

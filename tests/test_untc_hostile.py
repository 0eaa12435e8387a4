"""Hostile and oversized UNTC input: linear-time parsing (bounded regular expressions, work proportional to the
input, measured by counting what the patterns are given, never by a clock), caps with a clear ParseError, a
per-document budget, the document's own id, DTDs refused whatever the encoding, and counts the suites bound."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from re import _constants as sre_constants  # the stdlib's own regex parser: the only way to read a pattern's shape
from re import _parser as sre_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MTDSG
from tasks import countries, tables, untc
from tasks.errors import ParseError
from tasks.validate import Validator

FAST = settings(max_examples=100, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOC = (Path(__file__).parent / "fixtures" / "mtdsg-5rows.xml").read_bytes()
URL = "https://example.test/XCIX-7-z.en.xml"
MODULES = (untc, countries)


def parse(body: bytes, limits: untc.Limits = untc.LIMITS) -> untc.Document:
    return untc.parse_document(body, URL, "XCIX-7-z", None, limits)


REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)


def unbounded_repeats(tree) -> list[str]:
    """Repeats without an upper bound anywhere in a parsed pattern (the shape that can backtrack)."""
    found = []
    for op, arg in tree:
        if op in REPEATS:
            low, high, sub = arg
            if high == sre_constants.MAXREPEAT:
                found.append(f"{op} {low}..inf")
            found += unbounded_repeats(sub)
        elif op == sre_constants.SUBPATTERN:
            found += unbounded_repeats(arg[-1])
        elif op == sre_constants.BRANCH:
            for branch in arg[1]:
                found += unbounded_repeats(branch)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            found += unbounded_repeats(arg[1])
    return found


def module_patterns():
    return [(m.__name__, name, value) for m in MODULES for name, value in vars(m).items()
            if isinstance(value, re.Pattern)]


@pytest.mark.parametrize("module, name, pattern", module_patterns(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_pattern_applied_to_upstream_text_has_bounded_repeats_only(module, name, pattern):
    assert not unbounded_repeats(sre_parse.parse(pattern.pattern, pattern.flags)), f"{module}.{name}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_no_pattern_is_compiled_inline(module):
    """Every regular expression is a module-level constant, so the test above sees all of them."""
    source = Path(module.__file__).read_text()
    assert not re.search(r"\bre\.(?:sub|search|match|fullmatch|findall|finditer|split)\(", source)


class Counting:
    """A compiled pattern that adds the length of every string it is given to a shared counter."""

    def __init__(self, pattern: re.Pattern, counter: list[int]):
        self.pattern, self.counter = pattern, counter

    def __getattr__(self, attr):
        method = getattr(self.pattern, attr)
        if not callable(method):
            return method

        def counted(string, *args, **kwargs):
            self.counter[0] += len(string) if isinstance(string, (str, bytes)) else 0
            return method(string, *args, **kwargs)
        return counted


@pytest.fixture
def scanned(monkeypatch) -> list[int]:
    """Characters handed to untc's patterns during the test (each pattern is linear: bounded repeats only)."""
    counter = [0]
    for name, value in vars(untc).items():
        if isinstance(value, re.Pattern):
            monkeypatch.setattr(untc, name, Counting(value, counter))
    return counter


def test_a_date_cell_padded_with_20000_spaces_is_refused_by_the_cap(scanned):
    body = DOC.replace(b"<Entry>8 Feb 2008 a</Entry>", b"<Entry>8 Feb 2008" + b" " * 20_000 + b"!</Entry>", 1)
    assert body != DOC
    with pytest.raises(ParseError, match="participant .Albania.: cell of 20011 characters exceeds the cap of 64"):
        parse(body)
    assert scanned[0] <= 4 * len(body)


def test_a_name_with_an_unclosed_escaped_footnote_marker_and_20000_spaces_is_refused(scanned):
    name = b"Albania&lt;superscript&gt;" + b" " * 20_000
    body = DOC.replace(b"<Entry>Albania</Entry>", b"<Entry>" + name + b"</Entry>", 1)
    assert body != DOC
    with pytest.raises(ParseError, match="participant name of 20020 characters exceeds the cap of 300"):
        parse(body)
    assert scanned[0] <= 4 * len(body)


def test_within_the_caps_an_unclosed_marker_only_loses_the_marker(scanned):
    body = DOC.replace(b"<Entry>Albania</Entry>", b"<Entry>Albania&lt;superscript&gt;" + b" " * 250 + b"</Entry>", 1)
    doc = parse(body)
    assert doc.participation[0]["participant"] == "Albania" and doc.participation[0]["footnotes"] == []
    assert scanned[0] <= 4 * len(body)


def test_an_entry_into_force_text_of_1500_later_participant_clauses_is_read_in_linear_time(scanned):
    clauses = b"For each State ratifying it after that, on the thirtieth day " * 1_500
    body = DOC.replace(b"in accordance with article 18(1).", clauses + b"ninety days after its deposit.", 1)
    assert body != DOC
    doc = parse(body)
    albania = doc.participation[0]
    assert albania["in_force_date"] == max(date(2005, 7, 3), albania["consent_date"] + timedelta(days=90))
    assert scanned[0] <= 8 * len(body)  # each pattern reads the text once (clause by clause it would be 1500 times)


FRAGMENTS = st.sampled_from([" ", "  ", "\t", "0", "12", "2008", "Feb", "[", "]", "(", ")", ",", "a", "AA",
                             "<superscript>", "</superscript>", "<", ">", "<a href='x'", "&lt;", "<i>", "</i>"])


@st.composite
def hostile_text(draw) -> str:
    """Long runs of spaces, digits and markup fragments, as an attacker would pad a cell or a name."""
    pieces = draw(st.lists(st.tuples(FRAGMENTS, st.integers(1, 3000)), min_size=1, max_size=6))
    return "".join(fragment * times for fragment, times in pieces)


@FAST
@given(hostile_text())
def test_cells_names_and_headers_do_work_proportional_to_their_input(text):
    counter = [0]
    originals = {n: v for n, v in vars(untc).items() if isinstance(v, re.Pattern)}
    try:
        for name, value in originals.items():
            setattr(untc, name, Counting(value, counter))
        big = untc.Limits(cell_chars=10**6, name_chars=10**6, header_chars=10**6)
        for parse_one in (lambda t: untc.parse_cell(t, big), lambda t: untc.clean_name(t, big),
                          lambda t: untc.parse_header(t, big), untc.clean_text):
            try:
                parse_one(text)
            except ValueError:
                pass
        assert counter[0] <= 8 * len(text) + 64
        for parse_one in (untc.parse_cell, untc.clean_name, untc.parse_header):
            if len(text) > 2_000:
                with pytest.raises(ValueError, match="exceeds the cap"):
                    parse_one(text)
    finally:
        for name, value in originals.items():
            setattr(untc, name, value)


@FAST
@given(hostile_text())
def test_names_resolve_or_not_without_unbounded_work(text):
    result = countries.resolve_name(text)
    assert result is None or len(text) <= countries.MAX_NAME


@pytest.mark.parametrize("limits, problem", [
    (untc.Limits(document_bytes=1_000), "bytes exceeds the cap of 1000"),
    (untc.Limits(participants=3), "more than 3 rows"),
    (untc.Limits(elements=50), "more than 50 elements"),
    (untc.Limits(text_chars=20), "characters exceeds the cap of 20"),
])
def test_a_document_beyond_its_budget_is_refused(limits, problem):
    parse(DOC)
    with pytest.raises(ParseError, match=problem) as info:
        parse(DOC, limits)
    assert info.value.url == URL


def test_a_declaration_section_beyond_its_budget_is_refused():
    body = (MTDSG / "XVIII-12-c.en.xml").read_bytes()
    limits = replace(untc.LIMITS, entries=10)
    with pytest.raises(ParseError, match="more than 10 declaration entries"):
        untc.parse_document(body, URL, "XVIII-12-c", None, limits)


def test_values_beyond_the_column_types_are_a_parse_error_not_a_crash():
    body = DOC.replace(b"<index>1</index>", b"<index>70000</index>", 1)
    assert body != DOC
    with pytest.raises(ParseError, match="footnote number 70000 is out of range"):
        parse(body)


def test_the_document_served_must_be_the_catalog_treaty():
    """A mirror or server that serves XVIII-12-b for XVIII-12-c is refused, naming both."""
    body = (MTDSG / "XVIII-12-b.en.xml").read_bytes()
    with pytest.raises(ParseError, match="document states it is XVIII-12-b, not the catalog's XVIII-12-c"):
        untc.parse_document(body, untc.mtdsg_url("XVIII-12-c"), "XVIII-12-c", None)


DTD = '<!DOCTYPE d [<!ENTITY x "y">]>'


@pytest.mark.parametrize("body, problem", [
    (f'<?xml version="1.0" encoding="UTF-7"?>{DTD}<Document/>'.encode("utf-7"), "encoding 'utf-7' is not one"),
    ('<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE d+AD4-<Document/>'.encode(), "encoding 'utf-7' is not one"),
    (f'<?xml version="1.0" encoding="utf-16"?>{DTD}<Document/>'.encode("utf-16"), "is not one UNTC uses"),
    (f'<?xml version="1.0" encoding="utf-8"?>{DTD}<Document/>'.encode(), "DTD or entities"),
    (f'<?xml version="1.0" encoding="ISO-8859-1"?>{DTD}<Document/>'.encode("latin-1"), "DTD or entities"),
    ('<?xml version="1.0"?>\n<!doctype d SYSTEM "file:///etc/passwd"><Document/>'.encode(), "DTD or entities"),
    ('<?xml version="1.0" encoding="utf-8"?><Document>\xff</Document>'.encode("latin-1"), "not valid utf-8"),
    (f'<?xml version="1.0" encoding="cp037"?>{DTD}<Document/>'.encode("cp037"), "not valid utf-8"),
])
def test_dtds_and_entities_are_refused_whatever_the_encoding(body, problem):
    with pytest.raises(ParseError, match=problem) as info:
        parse(body)
    assert info.value.url == URL


def test_the_treaty_suites_bound_counts():
    """Counts beyond what the data can be (more parties than there are states and organisations) are quarantined."""
    doc = parse(DOC)
    batch = untc.batch_tables(doc, "0" * 64, datetime(2026, 1, 2, tzinfo=timezone.utc), date(2026, 1, 2))
    treaty = batch[tables.TREATIES].to_pylist()[0]
    treaty.update(stated_parties=5_000, parsed_parties=5_000)
    result = Validator().validate(tables.TREATIES, pa.Table.from_pylist([treaty], schema=tables.TREATIES.schema),
                                  {"today": "2026-01-02", "current_year": 2026})
    failures = [str(f) for f in result.failures_for("XCIX-7-z")]
    assert any("stated_parties" in f and "between 0 and 400" in f for f in failures)
    assert any("parsed_parties" in f and "between 0 and 400" in f for f in failures)

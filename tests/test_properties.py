"""Property tests for the UNTC parser's pure helpers and for parse_document on arbitrary bytes.

Examples are derandomized (the same every run, so no flaky reds) and capped at 200 per property. The regression
tests at the end pin three defects these properties found in tasks/untc.py (fixed in a5ddba5).
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tasks.errors import ParseError
from tasks.untc import Cell, batch_tables, clean_name, parse_cell, parse_document, sanitize

FAST = settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DOC = (Path(__file__).parent / "fixtures" / "mtdsg-5rows.xml").read_bytes()
SUFFIXES = ("a", "A", "AA", "d", "n", "P", "s")
ALLOWED_C0 = {0x09, 0x0A, 0x0D}
ENTITY = re.compile(rb"&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);")


# --- parse_cell ---------------------------------------------------------------------------------------------------

MONTH_NAMES = (*calendar.month_name[1:], *calendar.month_abbr[1:], "Sept", "Mai", "Fevr")
CASES = (str, str.lower, str.upper, str.swapcase)
MONTH_WORDS = sorted({case(name) for name in MONTH_NAMES for case in CASES})


def month_words() -> st.SearchStrategy[str]:
    """Month names and abbreviations (and Sept) in any case, near misses, and random letters."""
    return st.one_of(st.sampled_from(MONTH_WORDS), st.text("abcdefghijklmnopqrstuvwxyzAZ", max_size=10))


@st.composite
def cell_like(draw) -> str:
    """Strings shaped like cells, valid or not: brackets, day, month word, dot, year, suffix, odd spacing."""
    space = st.sampled_from(["", " ", "  ", "\t", "\u00a0"])
    parts = [
        draw(st.sampled_from(["", "["])), draw(space),
        str(draw(st.integers(-3, 45))), draw(space), draw(month_words()), draw(st.sampled_from(["", "."])),
        draw(space), str(draw(st.one_of(st.integers(1000, 9999), st.integers(0, 12000)))),
        draw(st.sampled_from(["", "]"])), draw(space),
        draw(st.one_of(st.sampled_from(("",) + SUFFIXES), st.text("aAdnPsxZ", max_size=3))),
    ]
    return "".join(parts)


@FAST
@given(st.one_of(st.none(), st.text(max_size=40), cell_like()))
def test_parse_cell_raises_only_value_error(text):
    try:
        result = parse_cell(text)
    except ValueError:
        return
    assert result is None or (isinstance(result.when, date) and (result.suffix is None or result.suffix.isalpha()))


@st.composite
def valid_cell(draw) -> tuple[str, date, str | None]:
    when = draw(st.dates(date(1900, 1, 1), date(2100, 12, 31)))
    month = draw(st.sampled_from([calendar.month_abbr[when.month], calendar.month_name[when.month]]
                                 + (["Sept"] if when.month == 9 else [])))
    suffix = draw(st.sampled_from((None,) + SUFFIXES))
    gap = st.sampled_from([" ", "  "])
    core = f"{when.day}{draw(gap)}{month}{draw(st.sampled_from(['', '.']))}{draw(gap)}{when.year}"
    lead = draw(st.sampled_from(["", " "]))
    if draw(st.booleans()):
        core, lead = f"[{lead}{core}]", ""
    text = core if suffix is None else f"{core}{draw(gap)}{suffix}"
    return lead + text + draw(st.sampled_from(["", " "])), when, suffix


@FAST
@given(valid_cell())
def test_parse_cell_round_trips_valid_cells(case):
    text, when, suffix = case
    assert parse_cell(text) == Cell(when, suffix, text.strip().startswith("["))


@pytest.mark.parametrize("word", MONTH_WORDS)
def test_parse_cell_month_word_in_any_case_parses_or_raises_value_error(word):
    """Every month word in every case, exhaustively (random examples rarely hit one exact spelling)."""
    for text in (f"1 {word} 2000", f"[30 {word}. 1999] a"):
        try:
            result = parse_cell(text)
        except ValueError:
            continue
        assert result.when.year in (1999, 2000)


@pytest.mark.parametrize("text", [None, "", "   ", "\t\n"])
def test_parse_cell_empty_is_none(text):
    assert parse_cell(text) is None


# --- clean_name ---------------------------------------------------------------------------------------------------

NAME_TEXT = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=15)


@st.composite
def marked_name(draw) -> tuple[str, str, list[int]]:
    """A name with footnote markers spliced in: (raw, expected clean name, expected footnote numbers)."""
    pieces, raw, notes = draw(st.lists(NAME_TEXT, min_size=1, max_size=4)), [], []
    for i, piece in enumerate(pieces):
        raw.append(piece)
        if i < len(pieces) - 1 or draw(st.booleans()):
            numbers = draw(st.lists(st.integers(0, 9999), min_size=1, max_size=3))
            tag = draw(st.sampled_from(["superscript", "SUPERSCRIPT", "SuperScript"]))
            sep = draw(st.sampled_from([",", ", ", " ", ",\n"]))
            pad = draw(st.sampled_from(["", " "]))
            raw.append(f"<{tag}>{pad}{sep.join(map(str, numbers))}{pad}</{tag}>")
            notes += numbers
    expected = re.sub(r"\s+", " ", "".join(pieces)).strip()
    return "".join(raw), expected, notes


@FAST
@given(marked_name())
def test_clean_name_removes_markers_and_returns_footnotes(case):
    raw, expected, notes = case
    name, footnotes = clean_name(raw)
    assert (name, footnotes) == (expected, notes)
    assert "<" not in name


@FAST
@given(st.text(max_size=60))
def test_clean_name_never_crashes_and_leaves_no_marker(raw):
    name, footnotes = clean_name(raw)
    assert "<superscript>" not in name.lower() and "</superscript>" not in name.lower()
    assert all(isinstance(n, int) for n in footnotes)
    assert name == name.strip()


# --- sanitize -----------------------------------------------------------------------------------------------------

TRICKY_BYTES = st.lists(st.sampled_from([b"&", b"&amp;", b"&#x19;", b"&#25;", b"&lt;", b"&nbsp;", b"\x19", b"\x00",
                                         b"\x1c", b"\x1f", b"\x7f", b"\t", b"\n", b"\r", b"a", b";", b"#", b"x",
                                         b"&#", b"&#x", b"<", b"\xe9"]), max_size=30).map(b"".join)


def bare_ampersands(data: bytes) -> list[int]:
    return [m.start() for m in re.finditer(rb"&", data) if not ENTITY.match(data, m.start())]


@FAST
@given(st.one_of(st.binary(max_size=200), TRICKY_BYTES))
def test_sanitize_leaves_no_c0_byte_and_no_bare_ampersand(body):
    out = sanitize(body)
    assert not [b for b in out if b < 0x20 and b not in ALLOWED_C0]
    assert bare_ampersands(out) == []
    assert sanitize(out) == out


@FAST
@given(st.binary(max_size=200))
def test_sanitize_changes_nothing_in_a_clean_body(body):
    assume(not [b for b in body if b < 0x20 and b not in ALLOWED_C0] and not bare_ampersands(body))
    assert sanitize(body) == body


# --- parse_document -----------------------------------------------------------------------------------------------

def only_parse_errors(body: bytes) -> None:
    """A document either parses into typed tables (no value overflows a column type) or is a ParseError."""
    try:
        doc = parse_document(body, "https://example.test/fuzz.xml", "XCIX-7-z", None)
    except ParseError as exc:
        assert str(exc).startswith("untc: https://example.test/fuzz.xml: ")
        return
    batch_tables(doc, "0" * 64, datetime(2026, 1, 2, tzinfo=timezone.utc), date(2026, 1, 2))


@FAST
@given(st.binary(max_size=3000))
def test_parse_document_on_arbitrary_bytes_raises_only_parse_error(body):
    only_parse_errors(body)


@st.composite
def mutated_document(draw) -> bytes:
    """The 5-row fixture, truncated, with bytes replaced, deleted, duplicated or inserted."""
    body = bytearray(DOC)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(body)))
        op = draw(st.sampled_from(["cut", "replace", "delete", "duplicate", "insert"]))
        if op == "cut":
            del body[i:]
        elif op == "replace" and i < len(body):
            body[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del body[i:i + draw(st.integers(1, 40))]
        elif op == "duplicate":
            body[i:i] = body[i:i + draw(st.integers(1, 200))]
        else:
            body[i:i] = draw(st.sampled_from([b"&", b"<", b"</Row>", b"<Row><Entry>X</Entry></Row>", b"\x00",
                                              b"<Entry>31 Feb 2001</Entry>", b"]]>", b"<!--", b"\xff\xfe",
                                              b"99999", b"[", b"]", b"<Entry>[1 Jan 2001] a</Entry>"]))
    return bytes(body)


@FAST
@given(mutated_document())
def test_parse_document_on_mutated_documents_raises_only_parse_error(body):
    only_parse_errors(body)


# --- regressions: defects these properties found in tasks/untc.py -------------------------------------------------

@pytest.mark.parametrize("word", ["sept", "SEPT", "sEPT", "Sept", "Sept."])
def test_parse_cell_sept_in_any_case(word):
    """Once a RecursionError: parse_date retried with replace('Sept', 'Sep'), which changes no other spelling."""
    assert parse_cell(f"1 {word} 2000 a") == Cell(date(2000, 9, 1), "a")


def test_huge_footnote_marker_does_not_escape_as_value_error():
    """Once a ValueError out of parse_document: int() of a marker over 4300 digits (Python's limit)."""
    huge = b"Albania&lt;superscript&gt;" + b"1" * 5000 + b"&lt;/superscript&gt;"
    only_parse_errors(DOC.replace(b"<Entry>Albania</Entry>", b"<Entry>" + huge + b"</Entry>", 1))


def test_superscript_digit_in_status_count_does_not_escape_as_value_error():
    """Once a ValueError out of parse_document: str.isdigit() accepts '\u00b2' but int() refuses it."""
    only_parse_errors(DOC.replace(b"<Signatories>3</Signatories>", b"<Signatories>\xb2</Signatories>"))

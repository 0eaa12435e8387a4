"""UN Treaty Collection MTDSG status documents → treaty tables. Pure: bytes in, rows out.

Upstream: https://treaties.un.org/doc/Publication/MTDSG/Volume%20{I|II}/Chapter%20{CH}/{ID}.en.xml
(chapters I–XI are published in Volume I, XII and later in Volume II; see `mtdsg_url`).
Tables fed: treaties, participation, treaty_footnotes, declarations, treaty_events, ratification_progress.

The published documents are not always well-formed (see ../shared/data/README.md); `sanitize` repairs the two
known defects before an lxml parser that resolves no entities, loads no DTD and reaches no network:
- stray C0 control bytes: UNTC's export kept only the low byte of General Punctuation characters
  (0x19 for U+2019 ’, 0x1C/0x1D for “ ”, 0x13 for –), so each becomes the character reference &#x20NN;;
- bare `&` (and undeclared named entities) become `&amp;`.
Only the encodings UNTC uses are accepted; the document is decoded with its declared encoding and refused when it
declares a DTD or entities (entity-expansion bombs, XXE), whatever that encoding. The document must be the one
the catalog asked for (its own chapter and number against the catalog id).

Linear time, bounded work: every regular expression here uses bounded repeats only (tests/test_untc_hostile.py
checks the compiled patterns), markup is removed by a scanner, cells are read by a tokenizer, and cells, names,
texts, rows and entries are capped (`Limits`): a document beyond a cap is a ParseError saying which.

Grammar of the participant table (implemented by `parse_header`, `classify` and `parse_cell`):
- a column header is a comma-separated list of items, split on top-level commas only; an item is
  `[qualifier] head [/ [qualifier] head ...] text [suffix code]`: a head is a leading phrase naming an action
  (`CONSENT_KINDS`, `SIGNATURE_KINDS`, provisional application, notification, ...; a word misspelt by a letter or
  two is read as the closest), a qualifier makes a consent head provisional ('Provisional acceptance': provisional
  application, never consent) or leaves it consent ('Definitive acceptance'), slashes separate alternatives of one
  column; the suffix code is a bracketed group of one or two letters (`Accession(a)`, typos in its brackets
  tolerated); bracketed numbers and references such as `(2)`, `(c) (i)` or `article 21 (1) (b)` belong to the
  label. An item that starts in lower case continues the previous one (`..., as amended(A)`). A header with an
  item naming no known action, or whose uncoded items name several roles, fails its treaty naming the header.
- a cell is `D Mon YYYY [suffix]`; in square brackets (`[24 Apr 1963 ]`, `[14 Nov 1980 a]`, `[22 Dec 1992] n`)
  it is an action later withdrawn or denounced, whose footnote says which and usually when.
"""

from __future__ import annotations

import calendar
import difflib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pyarrow as pa
from lxml import etree

from tasks import tables
from tasks.countries import MAX_NAME, STATE, participant, resolve_name
from tasks.errors import ParseError

SOURCE = "untc"
MTDSG_BASE = "https://treaties.un.org/doc/Publication/MTDSG"

#: Every MTDSG id form: IV-4, XVIII-12-c, III-2-1, III-2-12a, XI-A-5 (chapter, optional part, number, sub-numbers).
MTDSG_ID = re.compile(r"^[IVXL]{1,7}(?:-[A-Z])?-[0-9]{1,3}(?:-[0-9]{1,3}[a-z]{0,2}|-[a-z]{1,2}){0,3}\Z")


@dataclass(frozen=True)
class Limits:
    """Caps on one document; beyond any of them the document is refused with a ParseError naming the cap."""

    document_bytes: int = 16 * 1024 * 1024
    elements: int = 250_000
    cell_chars: int = 64
    name_chars: int = MAX_NAME  # the resolver's own cap (tasks/countries.py)
    header_chars: int = 2_000
    text_chars: int = 100_000
    participants: int = 2_000
    entries: int = 20_000  # declarations, objections, notifications (seq is int16)


LIMITS = Limits()
#: Encodings UNTC declares (iso-8859-1 today); a document in any other is refused before parsing.
ENCODINGS = {"iso-8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1", "utf-8": "utf-8",
             "us-ascii": "ascii", "ascii": "ascii", "windows-1252": "cp1252"}

_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50}
_C0 = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BARE_AMP = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});)")
_XML_DECL = re.compile(rb"^<\?xml[^>]{0,200}?encoding[ \t]{0,4}=[ \t]{0,4}[\"']([A-Za-z0-9._-]{1,40})[\"']")
_DTD = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,19})(?:[ \t\r\n][^<>]{0,2000})?/?>")
_NUMBER = re.compile(r"[0-9]{1,4}")
_TEXT_DATE = re.compile(r"\b([0-9]{1,2}) {1,3}([A-Za-z]{3,9})\.?,? {1,3}([0-9]{4})\b")
_LEADING_DATE = re.compile(r"^ {0,3}([0-9]{1,2}) {1,3}([A-Za-z]{3,9})\.? {1,3}([0-9]{4})\b")
_REGISTRATION = re.compile(r"No\. {0,3}([0-9]{1,9})")
_INT = re.compile(r"[0-9]{1,9}")
_DAY, _YEAR, _CODE = re.compile(r"[0-9]{1,2}"), re.compile(r"[0-9]{4}"), re.compile(r"[A-Za-z]{1,2}")
_MONTH_TOKEN = re.compile(r"[A-Za-z]{3,9}\.?")

_MONTHS = {
    name: n for n, names in enumerate((
        ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
        ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"),
        ("nov", "november"), ("dec", "december")), 1) for name in names
}

SIGNATURE, CONSENT, PROVISIONAL, NOTIFICATION, WITHDRAWAL, OTHER = (
    "signature", "consent", "provisional_application", "notification", "withdrawal", "other")
#: Leading phrases of column-header items (longest first), the kind each names and the role of its dates.
_PHRASES = (
    ("succession to signature", "succession_to_signature", SIGNATURE),
    ("definitive signature", "definitive_signature", CONSENT),
    ("confirmation of signature", "confirmation_of_signature", CONSENT),
    ("signature", "signature", SIGNATURE),
    ("ratification", "ratification", CONSENT),
    ("accession", "accession", CONSENT),
    ("acceptance", "acceptance", CONSENT),
    ("approval", "approval", CONSENT),
    ("formal confirmation", "formal_confirmation", CONSENT),
    ("simplified procedure", "simplified_procedure", CONSENT),
    ("succession", "succession", CONSENT),
    ("consent to be bound", "consent_to_be_bound", CONSENT),
    ("participation", "participation", CONSENT),
    ("non-provisional application", "non_provisional_application", NOTIFICATION),
    ("provisional application", "provisional_application", PROVISIONAL),
    ("territorial application", "territorial_application", NOTIFICATION),
    ("application", "application", CONSENT),
    ("notification of succession", "succession", CONSENT),
    ("notification", "notification", NOTIFICATION),
    ("declaration of provisional application", "provisional_application", PROVISIONAL),
    ("declaration", "declaration", NOTIFICATION),
    ("extension", "extension", NOTIFICATION),
    ("reservation", "reservation", NOTIFICATION),
    ("objection", "objection", NOTIFICATION),
    ("communication", "communication", NOTIFICATION),
    ("entry into force", "entry_into_force", NOTIFICATION),
    ("denunciation", "denunciation", WITHDRAWAL),
    ("termination", "termination", WITHDRAWAL),
    ("withdrawal", "withdrawal", WITHDRAWAL),
)
_ROLE = {kind: role for _, kind, role in _PHRASES}
#: Qualifiers of a head phrase: provisional ones make a consent head provisional application (never consent),
#: definitive ones leave it consent of the head's kind (`classify`).
_QUALIFIERS = {"provisional": PROVISIONAL, "interim": PROVISIONAL, "temporary": PROVISIONAL,
               "definitive": CONSENT, "final": CONSENT, "formal": CONSENT}
#: Words a misspelt head is matched against.
_HEAD_WORDS = sorted({phrase.split()[0] for phrase, _, _ in _PHRASES} | set(_QUALIFIERS))
#: The consent kinds a participation row can carry (`unspecified`: the header lists several kinds without codes).
CONSENT_KINDS = tuple(dict.fromkeys([k for _, k, r in _PHRASES if r == CONSENT] + ["unspecified"]))
SIGNATURE_KINDS = tuple(k for _, k, r in _PHRASES if r == SIGNATURE)
#: UNTC's legend for cell suffixes a column header does not spell out (all consent kinds).
_LEGEND = {"a": "accession", "A": "acceptance", "AA": "approval", "c": "formal_confirmation", "d": "succession",
           "p": "simplified_procedure", "P": "participation", "s": "definitive_signature"}
#: A withdrawal sentence naming one of these withdraws a statement, not the participation.
_NOT_PARTICIPATION = ("reservation", "declaration", "objection")

_SECTIONS = {
    "Declarations": "declaration",
    "Objections": "objection",
    "DeclarationsUnderArticle": "declaration_under_article",
    "Notifications": "notification",
    "TerritorialApplications": "territorial_application",
}


def mtdsg_url(mtdsg_no: str) -> str:
    """The status document's URL for an MTDSG id such as XVIII-12-c (chapters I–XI in Volume I, others in II)."""
    chapter = mtdsg_no.split("-", 1)[0]
    volume = "I" if roman_to_int(chapter) <= 11 else "II"
    return f"{MTDSG_BASE}/Volume%20{volume}/Chapter%20{chapter}/{mtdsg_no}.en.xml"


def roman_to_int(numeral: str) -> int:
    values = [_ROMAN[c] for c in numeral.upper()]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def sanitize(body: bytes) -> bytes:
    """Repair UNTC's known defects: C0 bytes to the General Punctuation characters they lost, bare & escaped."""
    body = _C0.sub(lambda m: b"&#x20%02X;" % m.group()[0], body)
    return _BARE_AMP.sub(b"&amp;", body)


def month_number(token: str) -> int:
    """'Feb', 'Sept.', 'February' → 2; ValueError otherwise."""
    month = _MONTHS.get(token.rstrip(".").lower())
    if month is None:
        raise ValueError(f"not a month: {token!r}")
    return month


def parse_date(text: str) -> date:
    """'8 Feb 2008' or '31 May 2001' → date; ValueError otherwise."""
    tokens = text.split()
    if len(tokens) != 3 or not (_DAY.fullmatch(tokens[0]) and _YEAR.fullmatch(tokens[2])):
        raise ValueError(f"not a date: {text!r}")
    return date(int(tokens[2]), month_number(tokens[1]), int(tokens[0]))


@dataclass(frozen=True)
class Cell:
    """A dated participant-table cell: the date, its suffix code and whether the action was later withdrawn."""

    when: date
    suffix: str | None
    withdrawn: bool = False


def parse_cell(text: str | None, limits: Limits = LIMITS) -> Cell | None:
    """'' → None; '8 Feb 2008 a' → Cell(date, 'a'); '[14 Nov 1980 a]' or '[14 Nov 1980] a' → withdrawn Cell.

    Anything else, or a cell longer than the cap, is a ValueError."""
    if text is None:
        return None
    if len(text) > limits.cell_chars:
        raise ValueError(f"cell of {len(text)} characters exceeds the cap of {limits.cell_chars}")
    text = text.strip()
    if not text:
        return None
    withdrawn = text.startswith("[")
    if withdrawn:
        inside, closed, after = text[1:].partition("]")
        if not closed or "[" in inside or "]" in after:
            raise ValueError(f"cell is not 'D Mon YYYY [suffix]' (unbalanced brackets): {text!r}")
        tokens, trailing = inside.split(), after.split()
        if trailing and len(tokens) == 3:
            tokens += trailing
        elif trailing:
            raise ValueError(f"cell is not 'D Mon YYYY [suffix]': {text!r}")
    else:
        tokens = text.split()
    if len(tokens) not in (3, 4) or (len(tokens) == 4 and not _CODE.fullmatch(tokens[3])) \
            or not _MONTH_TOKEN.fullmatch(tokens[1]):
        raise ValueError(f"cell is not 'D Mon YYYY [suffix]': {text!r}")
    try:
        when = parse_date(" ".join(tokens[:3]))
    except ValueError:
        raise ValueError(f"cell is not 'D Mon YYYY [suffix]': {text!r}") from None
    return Cell(when, tokens[3] if len(tokens) == 4 else None, withdrawn)


def strip_markup(raw: str) -> tuple[str, str]:
    """Text without markup, and the text that stood inside <superscript> footnote markers (a linear scan)."""
    text, marks, inside, pos = [], [], False, 0
    for tag in _TAG.finditer(raw):
        (marks if inside else text).append(raw[pos:tag.start()])
        if tag[2].lower() == "superscript":
            inside = not tag[1]
        pos = tag.end()
    (marks if inside else text).append(raw[pos:])
    return "".join(text), " ".join(marks)


def clean_name(raw: str, limits: Limits = LIMITS) -> tuple[str, list[int]]:
    """'Denmark<superscript>1,2</superscript>' → ('Denmark', [1, 2]); other markup removed; ValueError when long."""
    if len(raw) > limits.name_chars:
        raise ValueError(f"participant name of {len(raw)} characters exceeds the cap of {limits.name_chars}")
    name, marks = strip_markup(raw)
    return " ".join(name.split()), [int(n) for n in _NUMBER.findall(marks)]


def clean_text(raw: str | None) -> str:
    """Markup removed, whitespace collapsed."""
    return " ".join(strip_markup(raw or "")[0].split())


@dataclass(frozen=True)
class Item:
    """One item of a column header: its label, what it names and its suffix code."""

    label: str
    kind: str | None  # None: the leading phrase names no known action
    code: str | None
    role: str = OTHER  # the role of what it names (`classify`); OTHER when it names no known action


def split_top_level(label: str) -> list[str]:
    """Split on commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(label):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append(label[start:i])
            start = i + 1
    parts.append(label[start:])
    return [p.strip() for p in parts if p.strip()]


def suffix_code(item: str) -> tuple[str, str | None]:
    """'Accession(a)' → ('Accession', 'a'); 'Notification under article 21 (1) (b)' → (item, None).

    A code is a bracketed group of one or two letters ending the item, attached to its label or separated from
    a word by spaces; after a number or another bracket (an article reference) it belongs to the label. Typos in
    its brackets are tolerated: `( n )`, `(n`, `[n]`, `(n))`, a trailing full stop."""
    text = item.rstrip(" .")
    body = text.rstrip(")]")
    opening = max(body.rfind("("), body.rfind("["))
    code = body[opening + 1:].strip()
    if opening <= 0 or not _CODE.fullmatch(code) or (body == text and ")" in body[opening:]):
        return item, None
    label = body[:opening]
    before = label.rstrip()
    if before != label and (not before or not before[-1].isalpha()):
        return item, None
    return before, code


def classify(label: str) -> tuple[str, str] | None:
    """(kind, role) an item's label names, by a small grammar: `[qualifier] head [/ [qualifier] head ...] text`.

    The head is a leading phrase (`_PHRASES`, a word of it misspelt by a letter or two tolerated: 'Ratifcation').
    A qualifier (`_QUALIFIERS`) before a consent head makes it provisional ('Provisional acceptance': provisional
    application, never consent) or leaves it consent of the head's kind ('Definitive acceptance': acceptance).
    Slashes separate alternatives of one column, the first one's qualifier carried to the others
    ('Provisional acceptance/accession'); alternatives of several kinds of one role give `unspecified`, of several
    roles None. None when the label names no known action."""
    first, *others = label.split("/")
    named = _named(first)
    if named is None:
        return None
    lead = first.lower().split()[:1]
    qualifier = lead[0] if lead and lead[0] in _QUALIFIERS else None
    alternatives = [named]
    for other in others:
        words = other.lower().split()[:1]
        if qualifier and words and words[0] not in _QUALIFIERS:
            other = f"{qualifier} {other}"
        more = _named(other)
        if more is None:
            break  # the rest is text of the label ('resolution A/RES/54/4')
        alternatives.append(more)
    kinds, roles = {k for k, _ in alternatives}, {r for _, r in alternatives}
    if len(roles) > 1:
        return None
    return (kinds.pop() if len(kinds) == 1 else "unspecified"), roles.pop()


def _named(text: str) -> tuple[str, str] | None:
    """(kind, role) of a label's leading phrase, after a qualifier; a misspelt first word read as the closest."""
    low = " ".join(text.lower().split())
    for phrase, kind, role in _PHRASES:
        if low.startswith(phrase) and (len(low) == len(phrase) or not low[len(phrase)].isalpha()):
            return kind, role
    head, _, rest = low.partition(" ")
    if head in _QUALIFIERS:
        named = _named(rest) if rest else None
        if named is None or named[1] not in (CONSENT, PROVISIONAL):
            return None
        return (PROVISIONAL, PROVISIONAL) if _QUALIFIERS[head] == PROVISIONAL else named
    close = difflib.get_close_matches(head, _HEAD_WORDS, n=1, cutoff=0.85) if 5 < len(head) <= 30 else []
    return _named(f"{close[0]} {rest}") if close and close[0] != head else None


@dataclass(frozen=True)
class Column:
    """A participant-table column: its role, the kind of a cell without suffix, and what each suffix means."""

    role: str  # signature | consent | provisional_application | notification | withdrawal | other
    default: str | None
    suffixes: dict[str, str] = field(default_factory=dict)
    label: str = field(default="", compare=False)

    def read(self, suffix: str | None) -> tuple[str, str]:
        """(kind, role) of a cell with this suffix in this column."""
        if suffix is None:
            kind = self.default or "unspecified"
        else:
            kind = self.suffixes.get(suffix) or _LEGEND.get(suffix) or f"unknown_suffix_{suffix}"
        return kind, _ROLE.get(kind, self.role)


def header_items(label: str) -> list[Item]:
    """The items of a header; an item that starts in lower case (`..., as amended(A)`, `Participation ... by
    virtue of ratification, accession or succession ...`) continues the item before it; one that starts in upper
    case and names no known action stays an item of unknown kind (the column is then refused, `parse_header`)."""
    items: list[Item] = []
    for part in split_top_level(label):
        text, code = suffix_code(part)
        named = classify(text)
        if items and not part[0].isupper():
            previous = items.pop()
            joined, code = suffix_code(f"{previous.label}({previous.code}), {part}" if previous.code
                                       else f"{previous.label}, {part}")
            items.append(Item(joined, previous.kind, code, previous.role))
        else:
            items.append(Item(text, named[0], code, named[1]) if named else Item(text, None, code))
    return items


def parse_header(label: str, limits: Limits = LIMITS) -> Column:
    """'Approval(AA), Acceptance(A), Accession(a), Ratification' → consent column, default ratification.

    A header listing several kinds without codes gives the default kind `unspecified` (never a guess). A header
    with an item of unknown kind, or whose items without codes name several roles, is a ValueError naming it:
    its dates would otherwise count as nothing."""
    if len(label) > limits.header_chars:
        raise ValueError(f"column header of {len(label)} characters exceeds the cap of {limits.header_chars}")
    label = clean_text(label)
    items = header_items(label)
    unknown = [item.label for item in items if item.kind is None]
    if unknown or not items:
        raise ValueError(f"column header {label!r}: {unknown[0] if unknown else 'an empty header'!r} names no action "
                         f"armswatch knows (signature, consent, provisional application, notification, withdrawal)")
    suffixes: dict[str, str] = {}
    for item in items:
        if item.code:
            suffixes[item.code] = item.kind if suffixes.get(item.code, item.kind) == item.kind else "unspecified"
    bare = [item for item in items if not item.code] or (items if len({i.kind for i in items}) == 1 else [])
    kinds, roles = {item.kind for item in bare}, {item.role for item in (bare or items)}
    if bare and len(roles) > 1:
        raise ValueError(f"column header {label!r} names actions of several roles without suffix codes "
                         f"({', '.join(sorted(roles))}): its cells cannot be read")
    default = kinds.pop() if len(kinds) == 1 else ("unspecified" if kinds else None)
    return Column(roles.pop() if len(roles) == 1 else OTHER, default, suffixes, label)


@dataclass
class Document:
    """One parsed status document: a row dict list per table (treaties has exactly one row)."""

    treaty: dict
    participation: list[dict]
    footnotes: list[dict]
    declarations: list[dict]
    events: list[dict]  # treaty_events rows


def parse_document(body: bytes, url: str, mtdsg_no: str, short_name: str | None,
                   limits: Limits = LIMITS) -> Document:
    """Parse one MTDSG status document. ParseError names the URL and what was wrong."""
    root = _parse_xml(body, url, limits)
    if root.tag != "Document" or root.find("Treaty/Header/ExternalData") is None:
        raise ParseError(SOURCE, url, f"not an MTDSG status document (root element <{root.tag}>)")
    treaty_el = root.find("Treaty")
    ext = treaty_el.find("Header/ExternalData")
    _check_identity(treaty_el, ext, url, mtdsg_no)
    notes = _notes(treaty_el, url, limits)
    entry_into_force = clean_text(_capped(ext.findtext("EIF/Labeltext"), url, limits))
    in_force = (_leading_date(entry_into_force), entry_into_force_delay(entry_into_force))
    participation, events = _participants(treaty_el, url, mtdsg_no, notes, limits, in_force)
    conclusion = clean_text(ext.findtext("Conclusion"))
    place, _, concluded = conclusion.rpartition(",")
    registration = _REGISTRATION.search(clean_text(ext.findtext("Registration/Labeltext")))
    treaty = {
        "mtdsg_no": mtdsg_no,
        "short_name": short_name,
        "title": clean_text(ext.findtext("Subtitlesect") or ext.findtext("Titlesect")),
        "chapter": _chapter(treaty_el),
        "conclusion_place": place.strip() or None,
        "conclusion_date": _leading_date(concluded),
        "entry_into_force_date": in_force[0],
        "registration_no": registration[1] if registration else None,
        "stated_signatories": _int(ext.findtext("Status/Signatories")),
        "stated_parties": _int(ext.findtext("Status/Parties")),
        "parsed_signatories": sum(e["event"] == "signature" and not e["withdrawn"] for e in events),
        "parsed_parties": sum(p["is_party"] for p in participation),
        "participant_table_found": treaty_el.find("Participants/Table") is not None,
        "source_url": url,
    }
    footnotes = [{"mtdsg_no": mtdsg_no, "footnote": n, "text": note.text} for n, note in notes.items()]
    return Document(treaty, participation, footnotes, _declarations(treaty_el, mtdsg_no, url, limits), events)


def _parse_xml(body: bytes, url: str, limits: Limits):
    if not body.strip():
        raise ParseError(SOURCE, url, "empty document")
    if len(body) > limits.document_bytes:
        raise ParseError(SOURCE, url, f"document of {len(body)} bytes exceeds the cap of {limits.document_bytes}")
    declared = _XML_DECL.match(body)
    encoding = declared[1].decode("ascii").lower() if declared else "utf-8"
    if encoding not in ENCODINGS or body.startswith((b"\xfe\xff", b"\xff\xfe", b"\x00", b"+/v")):
        raise ParseError(SOURCE, url, f"document encoding {encoding!r} is not one UNTC uses; refused")
    try:
        text = body.decode(ENCODINGS[encoding])
    except UnicodeDecodeError as exc:
        raise ParseError(SOURCE, url, f"document is not valid {encoding}: {exc}") from None
    if _DTD.search(text):
        raise ParseError(SOURCE, url, "document declares a DTD or entities; refused (no entity expansion)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(sanitize(body), parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(SOURCE, url, f"malformed or truncated XML after sanitising: {exc}") from None
    elements = sum(1 for _ in zip(root.iter(), range(limits.elements + 1)))
    if elements > limits.elements:
        raise ParseError(SOURCE, url, f"document has more than {limits.elements} elements (the cap)")
    return root


def _check_identity(treaty_el, ext, url: str, mtdsg_no: str) -> None:
    """The document's own chapter and number must be the catalog id's (a mirror or server serving the wrong one)."""
    chapter = _chapter(treaty_el)
    number, sub = clean_text(ext.findtext("Numsect")), clean_text(ext.findtext("Subnumsect"))
    stated = "-".join(p for p in (chapter, number, sub) if p)
    parts = mtdsg_no.split("-")
    has_part = len(parts) > 2 and len(parts[1]) == 1 and parts[1].isupper()
    keys = {_alnum(mtdsg_no), _alnum("-".join(parts[:1] + parts[2:]) if has_part else mtdsg_no)}
    if not chapter or not number or _alnum(stated) not in keys:
        raise ParseError(SOURCE, url, f"document states it is {stated or 'no MTDSG id'}, not the catalog's {mtdsg_no}")


def _chapter(treaty_el) -> str:
    """'CHAPTER XVIII' → 'XVIII' (the word in any case)."""
    words = clean_text(treaty_el.findtext("Header/Chapter/Header")).split()
    return " ".join(words[1:] if words and words[0].lower() == "chapter" else words)


def _alnum(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if _INT.fullmatch(text) else None


def _leading_date(text: str) -> date | None:
    m = _LEADING_DATE.match(" ".join(text.split()))
    if not m:
        return None
    try:
        return date(int(m[3]), month_number(m[2]), int(m[1]))
    except ValueError:
        return None


def _text_dates(text: str) -> list[tuple[int, date]]:
    """Every 'D Month YYYY' date in a text, with its position."""
    found = []
    for m in _TEXT_DATE.finditer(text):
        try:
            found.append((m.start(), date(int(m[3]), month_number(m[2]), int(m[1]))))
        except ValueError:
            continue
    return found


#: Number words of entry-into-force delays, cardinal and ordinal ('ninety (90) days', 'the thirtieth day').
_NUMBER_WORDS = {word: n for n, words in {
    1: ("one", "first"), 2: ("two", "second"), 3: ("three", "third"), 4: ("four", "fourth"), 5: ("five", "fifth"),
    6: ("six", "sixth"), 7: ("seven", "seventh"), 8: ("eight", "eighth"), 9: ("nine", "ninth"), 10: ("ten", "tenth"),
    11: ("eleven", "eleventh"), 12: ("twelve", "twelfth"), 15: ("fifteen", "fifteenth"),
    20: ("twenty", "twentieth"), 30: ("thirty", "thirtieth"), 40: ("forty", "fortieth"), 45: ("forty-five",),
    50: ("fifty", "fiftieth"), 60: ("sixty", "sixtieth"), 90: ("ninety", "ninetieth"),
    120: ("one hundred and twenty", "hundred and twentieth"), 180: ("one hundred and eighty", "hundred and eightieth"),
}.items() for word in words}
#: The sentence of an entry-into-force text that says when the treaty enters into force for a later participant.
_FOR_EACH = re.compile(r"\b(?:for each|for every|for any|when a|in respect of (?:that|each|such|any))\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?: |\"|\Z)")
_NUM = r"\b((?:one )?hundred and [a-z]{3,12}|[a-z]{3,12}(?:-[a-z]{3,8})?|[0-9]{1,3})(?: \([0-9]{1,3}\))?"
#: The delay forms: 'the first day of the month following the expiration of six months|one year after ...',
#: 'the first day of the sixth month following ...', 'on the thirtieth day after|following ...', 'ninety (90) days
#: after ...', 'on the date of such deposit'.
_DELAYS = (
    ("month_end", re.compile(rf"first day of the month following the expiration of {_NUM} (months?|years?)")),
    ("month_start", re.compile(rf"first day of the {_NUM} (month) (?:following|after)")),
    ("days", re.compile(rf"(?:on the )?{_NUM} (days?) (?:after|following|from)")),
    ("same_day", re.compile(r"(on the date of (?:such|its|the) deposit)()")),
)


@dataclass(frozen=True)
class Delay:
    """When a treaty enters into force for a participant consenting after its entry into force, counted from the
    deposit of its instrument (`form` one of the `_DELAYS`; `count` days or months)."""

    form: str
    count: int

    def after(self, deposit: date) -> date:
        if self.form == "days":
            return deposit + timedelta(days=self.count)
        if self.form == "same_day":
            return deposit
        months = deposit.month - 1 + self.count
        year, month = deposit.year + months // 12, months % 12 + 1
        if self.form == "month_start":
            return date(year, month, 1)
        day = min(deposit.day, calendar.monthrange(year, month)[1])
        return date(year, month, day) + timedelta(days=calendar.monthrange(year, month)[1] - day + 1)


def number_word(text: str) -> int | None:
    """'30', 'thirty', 'thirtieth', 'thirteith' (a typo: the closest number word) → 30; None otherwise."""
    text = " ".join(text.lower().split())
    if text.isdigit():
        return int(text)
    close = difflib.get_close_matches(text, _NUMBER_WORDS, n=1, cutoff=0.85)
    return _NUMBER_WORDS[close[0]] if close else None


def entry_into_force_delay(text: str) -> Delay | None:
    """The delay an entry-into-force text states for a participant consenting later ('For each State ratifying
    ... after the deposit of the fortieth instrument ..., this Protocol shall enter into force on the thirtieth day
    after the date of deposit ...' → 30 days); None when the text states none."""
    for sentence in _SENTENCE_END.split(" ".join(text.lower().split())):
        later = _FOR_EACH.search(sentence)
        if later is None:
            continue
        sentence = sentence[later.start():]
        for form, pattern in _DELAYS:
            m = pattern.search(sentence)
            if not m:
                continue
            if form == "same_day":
                return Delay(form, 0)
            count = number_word(m[1])
            if count is not None:
                return Delay(form, count * (12 if m[2].startswith("year") else 1))
    return None


def in_force_date(consent: date | None, entry_into_force: date | None, delay: Delay | None) -> date | None:
    """When the treaty entered into force for a participant that consented on `consent`: not before the treaty's
    own entry into force, and after the stated delay when there is one; None without consent or entry into force."""
    if consent is None or entry_into_force is None:
        return None
    return max(entry_into_force, delay.after(consent) if delay else consent)


@dataclass(frozen=True)
class Note:
    """A footnote: its paragraphs and the rows of a table it may carry (participant, dates, ...)."""

    paragraphs: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @property
    def text(self) -> str:
        return "\n".join([*self.paragraphs, *(" | ".join(row) for row in self.rows)])


def _notes(treaty_el, url: str, limits: Limits) -> dict[int, Note]:
    notes = {}
    for note in treaty_el.iterfind("EndNotes/Note"):
        index = _int(note.findtext("index"))
        if index is None:
            continue
        if index > 9_999:
            raise ParseError(SOURCE, url, f"footnote number {index} is out of range (at most 9999)")
        paragraphs = tuple(t for t in (clean_text(_capped(e.text, url, limits)) for e in note.findall("text")) if t)
        rows = tuple(tuple(clean_text(_capped(c.text, url, limits)) for c in row.findall("col"))
                     for row in note.iterfind("table/row"))
        notes[index] = Note(paragraphs, rows)
    return notes


def _capped(text: str | None, url: str, limits: Limits) -> str:
    if text and len(text) > limits.text_chars:
        raise ParseError(SOURCE, url, f"a text of {len(text)} characters exceeds the cap of {limits.text_chars}")
    return text or ""


def _entries(row) -> list[str | None]:
    return [entry.text for entry in row.findall("Entry")]


def _participants(treaty_el, url: str, mtdsg_no: str, notes: dict[int, Note], limits: Limits,
                  in_force: tuple[date | None, Delay | None]) -> tuple[list[dict], list[dict]]:
    """Rows of every participant table (a participant listed in several tables gathers its actions from all);
    `in_force`: the treaty's entry-into-force date and the delay for later consents."""
    found: dict[str, tuple[list[int], list[Action]]] = {}
    rows_seen = 0
    for group in treaty_el.iterfind("Participants/Table/TGroup"):
        head = group.find("Thead/Row")
        if head is None:
            raise ParseError(SOURCE, url, "participant table has no header row")
        try:
            columns = [parse_header(label or "", limits) for label in _entries(head)[1:]]
        except ValueError as exc:
            raise ParseError(SOURCE, url, str(exc)) from None
        for row in group.iterfind("Tbody/Rows/Row"):
            rows_seen += 1
            if rows_seen > limits.participants:
                raise ParseError(SOURCE, url, f"participant table has more than {limits.participants} rows (the cap)")
            cells = _entries(row)
            if not cells or not (cells[0] or "").strip():
                continue
            try:
                name, marks = clean_name(cells[0], limits)
                actions, cell_marks = _actions(columns, cells[1:], limits)
            except ValueError as exc:
                raise ParseError(SOURCE, url, f"participant {' '.join(cells[0][:80].split())!r}: {exc}") from None
            known_marks, known_actions = found.setdefault(name, ([], []))
            known_marks += [m for m in marks + cell_marks if m not in known_marks]
            known_actions += actions
    rows, events = [], []
    for name, (marks, actions) in found.items():
        country = participant(name)
        record = {"mtdsg_no": mtdsg_no, "participant": name, "footnotes": marks,
                  "iso3": country.iso3 if country else None, "m49": country.m49 if country else None,
                  "is_state": country.is_state if country else True,
                  "participant_kind": country.kind if country else STATE}
        first = {role: _first(actions, role) for role in (SIGNATURE, CONSENT, PROVISIONAL, WITHDRAWAL)}
        record.update(_participation(first))
        record["in_force_date"] = in_force_date(record["consent_date"], *in_force)
        stated = first[WITHDRAWAL]
        withdrawal = ((stated.cell.when, stated.kind) if stated else _withdrawal(name, marks, notes)) \
            if record["withdrawn"] else None
        record["withdrawal_date"] = withdrawal[0] if withdrawal else None
        rows.append(record)
        events += _events(record, first, withdrawal)
    return rows, events


@dataclass(frozen=True)
class Action:
    role: str
    kind: str
    cell: Cell
    header: str


def _actions(columns: list[Column], cells: list[str | None], limits: Limits) -> tuple[list[Action], list[int]]:
    """The dated actions of a row, and the footnote numbers marked in its cells."""
    if len(cells) > len(columns):
        raise ValueError(f"row has {len(cells)} date cells for {len(columns)} columns")
    actions, marks = [], []
    for column, text in zip(columns, cells):
        if text and len(text) > limits.cell_chars:
            raise ValueError(f"cell of {len(text)} characters exceeds the cap of {limits.cell_chars}")
        text, cell_marks = strip_markup(text or "")
        marks += [int(n) for n in _NUMBER.findall(cell_marks)]
        cell = parse_cell(text, limits)
        if cell is not None:
            kind, role = column.read(cell.suffix)
            if role == OTHER:
                raise ValueError(f"cell {text.strip()!r} under {column.label!r}: no suffix code says which of the "
                                 f"header's actions it is")
            actions.append(Action(role, kind, cell, column.label))
    return actions, marks


def _first(actions: list[Action], role: str) -> Action | None:
    """The first action of a role still in force, else the first withdrawn one."""
    of_role = [a for a in actions if a.role == role]
    return next((a for a in of_role if not a.cell.withdrawn), of_role[0] if of_role else None)


def _participation(first: dict[str, Action | None]) -> dict:
    """A participant's row from its first action of each role (`_first`)."""
    signature, consent, provisional = first[SIGNATURE], first[CONSENT], first[PROVISIONAL]
    consent_withdrawn = consent is not None and (consent.cell.withdrawn or first[WITHDRAWAL] is not None)
    return {
        "signature_date": signature.cell.when if signature else None,
        "signature_kind": signature.kind if signature else None,
        "consent_date": consent.cell.when if consent else None,
        "consent_kind": consent.kind if consent else None,
        "provisional_application_date": provisional.cell.when if provisional else None,
        "is_party": consent is not None and not consent_withdrawn,
        # the participation withdrawn: the consent, or the signature of a participant without one (a party whose
        # signature is bracketed is still a party; treaty_events marks that signature withdrawn)
        "withdrawn": consent_withdrawn if consent is not None else bool(signature and signature.cell.withdrawn),
        "consent_header": consent.header if consent else None,
    }


def _withdrawal(name: str, marks: list[int], notes: dict[int, Note]) -> tuple[date | None, str]:
    """(date, 'denunciation' | 'withdrawal') from the participant's footnotes: the latest date the withdrawal or
    denunciation took effect, else the latest date it was notified; None when the footnotes state no date."""
    effective, notified, kind = [], [], "withdrawal"
    me = resolve_name(name)
    for note in (notes[m] for m in marks if m in notes):
        effect_column = next((i for i, c in enumerate(note.rows[0]) if "effect" in c.lower()), None) \
            if note.rows else None
        for row in note.rows[1:]:
            if row and (row[0] == name or (me and me.iso3 and resolve_name(row[0]) == me)):
                dates = [_text_dates(c) for c in row[1:]]
                if effect_column and effect_column - 1 < len(dates) and dates[effect_column - 1]:
                    effective.append(dates[effect_column - 1][0][1])
                elif any(dates):
                    notified.append([d for found in dates for _, d in found][-1])
        for paragraph in note.paragraphs:
            about = False
            for sentence in paragraph.split(". "):
                low = sentence.lower()
                denounced = "denounc" in low or "denunc" in low
                withdrew = "withdr" in low and not any(w in low for w in _NOT_PARTICIPATION)
                about = denounced or withdrew or (about and "effect" in low)
                if not about:
                    continue
                kind = "denunciation" if denounced else kind
                dates = _text_dates(sentence)
                effective += [when for at, when in dates if "effect" in low[max(0, at - 60):at]]
                if dates and (denounced or withdrew):
                    notified.append(dates[0][1])
    return (max(effective) if effective else max(notified) if notified else None), kind


def _events(record: dict, first: dict[str, Action | None], withdrawal: tuple[date | None, str] | None) -> list[dict]:
    """One row per dated signature, consent and provisional application, and the withdrawal where dated."""
    base = {"mtdsg_no": record["mtdsg_no"], "participant": record["participant"], "iso3": record["iso3"]}
    events = []
    for role in (SIGNATURE, CONSENT, PROVISIONAL):
        action = first[role]
        if action is not None:
            withdrawn = action.cell.withdrawn or (role == CONSENT and not record["is_party"])
            events.append({**base, "event": role, "event_kind": action.kind, "event_date": action.cell.when,
                           "withdrawn": withdrawn})
    if withdrawal and withdrawal[0]:
        events.append({**base, "event": "withdrawal", "event_kind": withdrawal[1], "event_date": withdrawal[0],
                       "withdrawn": False})
    return events


def _declarations(treaty_el, mtdsg_no: str, url: str, limits: Limits) -> list[dict]:
    rows, seq = [], {}
    for section, section_kind in _SECTIONS.items():
        name = ""
        for entry in treaty_el.iterfind(f"{section}/*[Participant]"):
            if len(rows) >= limits.entries:
                raise ParseError(SOURCE, url, f"more than {limits.entries} declaration entries (the cap)")
            try:
                name = clean_name(entry.findtext("Participant") or "", limits)[0] or name
            except ValueError as exc:
                raise ParseError(SOURCE, url, f"{section}: {exc}") from None
            if not name:
                raise ParseError(SOURCE, url, f"{section}: an entry has no participant and none above it")
            heading = " ".join(clean_text(t.text) for t in entry.findall("text[@type='title']")) or None
            body = [clean_text(_capped(t.text, url, limits)) for t in entry.findall("text") if t.get("type") != "title"]
            territories = clean_text(_capped(entry.findtext("Territories"), url, limits)) or None
            notified = clean_text(entry.findtext("DateNotification"))
            kind = _declaration_kind(section_kind, heading)
            seq[(kind, name)] = seq.get((kind, name), 0) + 1
            rows.append({
                "mtdsg_no": mtdsg_no, "participant": name, "kind": kind, "seq": seq[(kind, name)],
                "heading": heading, "text": "\n".join(t for t in body if t) or None,
                "notification_date": _leading_date(notified), "territories": territories,
            })
    return rows


def _declaration_kind(section_kind: str, heading: str | None) -> str:
    if section_kind != "declaration" or not heading:
        return section_kind
    low = heading.lower()
    if "reservation" in low:
        return "reservation_and_declaration" if "declaration" in low else "reservation"
    return section_kind


def ratification_progress(mtdsg_no: str, participation: list[dict], events: list[dict], until: date) -> list[dict]:
    """Per year from the first signature or consent to `until` (the as-of date): new, leaving and cumulative
    signatories, consents and parties in force, every participant counted (organisations too, as UNTC counts).

    A withdrawn consent counts as joining in its year and leaving in the year of its dated withdrawal; one whose
    withdrawal date no footnote states is left out (its party years are unknown). Withdrawn signatures are left
    out, as UNTC leaves them out of its signatory count. The as-of year is marked incomplete."""
    organisation = {p["participant"] for p in participation if not p["is_state"]}
    signatures = [(e["event_date"].year, e["participant"]) for e in events
                  if e["event"] == "signature" and not e["withdrawn"]]
    consents = []  # (participant, consent year, in-force year or None, withdrawal year or None)
    for p in participation:
        if p["consent_date"] is None or (p["withdrawn"] and p["withdrawal_date"] is None):
            continue
        consents.append((p["participant"], p["consent_date"].year,
                         p["in_force_date"].year if p["in_force_date"] else None,
                         p["withdrawal_date"].year if p["withdrawn"] else None))
    if not signatures and not consents:
        return []
    rows = []
    for year in range(min([y for y, _ in signatures] + [c[1] for c in consents]), until.year + 1):
        signed = [who for y, who in signatures if y <= year]
        held = [c for c in consents if c[1] <= year and (c[3] is None or c[3] > year)]
        in_force = [c for c in held if c[2] is not None and c[2] <= year]
        rows.append({
            "mtdsg_no": mtdsg_no, "year": year,
            "new_signatories": sum(y == year for y, _ in signatures),
            "new_parties": sum(c[1] == year for c in consents),
            "cumulative_signatories": len(signed), "cumulative_consents": len(held),
            "cumulative_parties": len(in_force),
            "withdrawn_parties": sum(c[3] == year for c in consents),
            "complete_year": until >= date(year, 12, 31),
            "includes_organisations": bool(organisation & ({c[0] for c in held} | set(signed))),
        })
    return rows


def batch_tables(doc: Document, raw_sha256: str, fetched_at: datetime, as_of: date) -> dict[tables.Table, pa.Table]:
    """One treaty's batch, status as of `as_of`: a typed Arrow table per treaty table, cast to the schemas."""
    treaty = dict(doc.treaty, raw_sha256=raw_sha256, fetched_at=fetched_at, as_of=as_of)
    rows = {
        tables.TREATIES.name: [treaty],
        tables.PARTICIPATION.name: doc.participation,
        tables.TREATY_FOOTNOTES.name: doc.footnotes,
        tables.DECLARATIONS.name: doc.declarations,
        tables.TREATY_EVENTS.name: doc.events,
        tables.RATIFICATION_PROGRESS.name: ratification_progress(
            doc.treaty["mtdsg_no"], doc.participation, doc.events, as_of),
    }
    return {t: pa.Table.from_pylist(rows[t.name], schema=t.schema) for t in tables.TREATY_TABLES}

"""UN Treaty Collection MTDSG status documents → treaty tables. Pure: bytes in, rows out.

Upstream: https://treaties.un.org/doc/Publication/MTDSG/Volume%20{I|II}/Chapter%20{CH}/{ID}.en.xml
(chapters I–XI are published in Volume I, XII and later in Volume II; see `mtdsg_url`).
Tables fed: treaties, participation, treaty_footnotes, declarations, treaty_events, ratification_progress.

The published documents are not always well-formed (see ../shared/data/README.md); `sanitize` repairs the two
known defects before an lxml parser that resolves no entities, loads no DTD and reaches no network:
- stray C0 control bytes: UNTC's export kept only the low byte of General Punctuation characters
  (0x19 for U+2019 ’, 0x1C/0x1D for “ ”, 0x13 for –), so each becomes the character reference &#x20NN;;
- bare `&` (and undeclared named entities) become `&amp;`.
A document with a DTD or entity declarations is refused outright (entity-expansion bombs, XXE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import pyarrow as pa
from lxml import etree

from tasks import tables
from tasks.countries import resolve_name
from tasks.errors import ParseError

SOURCE = "untc"
MTDSG_ID = re.compile(r"^[IVXL]+-\d+(?:-[a-z])?$")
MTDSG_BASE = "https://treaties.un.org/doc/Publication/MTDSG"

_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50}
_C0 = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BARE_AMP = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);)")
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_FOOTNOTE_MARK = re.compile(r"<superscript>\s*([^<]*?)\s*</superscript>", re.IGNORECASE)
_CELL = re.compile(
    r"^\[?\s*(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3,9})\.?\s+(?P<year>\d{4})\s*\]?\s*(?P<suffix>[A-Za-z]{1,2})?\s*$"
)
_LEADING_DATE = re.compile(r"^\s*(\d{1,2}\s+[A-Za-z]{3,9}\.?\s+\d{4})")
_HEADER_ITEM = re.compile(r"\s*([^,(]+?)\s*(?:\(\s*([A-Za-z]{1,2})\s*\))?\s*(?:,|$)")

#: Label phrases in column headers, longest first, and the kind each stands for.
_KINDS = (
    ("succession to signature", "succession_to_signature"),
    ("definitive signature", "definitive_signature"),
    ("consent to be bound", "consent_to_be_bound"),
    ("provisional application", "provisional_application"),
    ("ratification", "ratification"),
    ("accession", "accession"),
    ("acceptance", "acceptance"),
    ("approval", "approval"),
    ("succession", "succession"),
    ("participation", "participation"),
    ("signature", "signature"),
)
#: Cell suffixes UNTC uses when a column header does not spell them out.
_SUFFIX_FALLBACK = {
    "a": "accession", "A": "acceptance", "AA": "approval", "d": "succession", "s": "definitive_signature",
    "P": "participation", "n": "provisional_application",
}
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


def parse_date(text: str) -> date:
    """'8 Feb 2008' or '31 May 2001' → date; ValueError otherwise."""
    text = re.sub(r"\s+", " ", re.sub(r"(?<=[A-Za-z])\.", "", text)).strip()
    text = re.sub(r"\bsept\b", "Sep", text, flags=re.IGNORECASE)
    for fmt in ("%d %b %Y", "%d %B %Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"not a date: {text!r}")


def parse_cell(text: str | None) -> tuple[date, str | None] | None:
    """A participant-table cell: '' → None; '8 Feb 2008 a' → (date, 'a'); anything else → ValueError."""
    if text is None or not text.strip():
        return None
    m = _CELL.match(text)
    if m is None:
        raise ValueError(f"cell is not 'D Mon YYYY [suffix]': {text!r}")
    return parse_date(f"{m['day']} {m['month']} {m['year']}"), m["suffix"]


def clean_name(raw: str) -> tuple[str, list[int]]:
    """'Denmark<superscript>1,2</superscript>' → ('Denmark', [1, 2]); other markup removed."""
    notes = [int(n) for mark in _FOOTNOTE_MARK.findall(raw) for n in re.findall(r"[0-9]{1,4}", mark)]
    name = _TAG.sub("", _FOOTNOTE_MARK.sub("", raw))
    return re.sub(r"\s+", " ", name).strip(), notes


def clean_text(raw: str | None) -> str:
    return re.sub(r"[ \t]+", " ", _TAG.sub("", raw or "")).strip()


def kind_of(label: str) -> str:
    low = label.lower()
    for phrase, kind in _KINDS:
        if phrase in low:
            return kind
    return re.sub(r"\W+", "_", low).strip("_")


@dataclass(frozen=True)
class Column:
    """A participant-table column: its role and what each cell suffix means in it."""

    role: str  # signature | consent | provisional_application
    default: str | None
    suffixes: dict[str, str] = field(default_factory=dict)

    def kind(self, suffix: str | None) -> str | None:
        if suffix is None:
            return self.default
        return self.suffixes.get(suffix) or _SUFFIX_FALLBACK.get(suffix) or f"unknown_suffix_{suffix}"


def parse_header(label: str) -> Column:
    """'Approval(AA), Acceptance(A), Accession(a), Ratification' → consent column, default ratification."""
    label = clean_text(label)
    items = [(kind_of(name), code) for name, code in _HEADER_ITEM.findall(label) if name]
    defaults = [kind for kind, code in items if not code]
    default = defaults[0] if defaults else None
    suffixes = {code: kind for kind, code in items if code}
    first = items[0][0] if items else ""
    if first == "provisional_application":
        role = "provisional_application"
    elif first in ("signature", "succession_to_signature") or label.lower().startswith("signature"):
        role = "signature"
    else:
        role = "consent"
    return Column(role, default, suffixes)


@dataclass
class Document:
    """One parsed status document: a row dict list per table (treaties has exactly one row)."""

    treaty: dict
    participation: list[dict]
    footnotes: list[dict]
    declarations: list[dict]


def parse_document(body: bytes, url: str, mtdsg_no: str, short_name: str | None) -> Document:
    """Parse one MTDSG status document. ParseError names the URL and what was wrong."""
    if not body.strip():
        raise ParseError(SOURCE, url, "empty document")
    if _DTD.search(body):
        raise ParseError(SOURCE, url, "document declares a DTD or entities; refused (no entity expansion)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(sanitize(body), parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(SOURCE, url, f"malformed or truncated XML after sanitising: {exc}") from None
    if root.tag != "Document" or root.find("Treaty/Header/ExternalData") is None:
        raise ParseError(SOURCE, url, f"not an MTDSG status document (root element <{root.tag}>)")
    treaty_el = root.find("Treaty")
    ext = treaty_el.find("Header/ExternalData")
    participation = _participants(treaty_el, url, mtdsg_no)
    conclusion = clean_text(ext.findtext("Conclusion"))
    place, _, concluded = conclusion.rpartition(",")
    registration = clean_text(ext.findtext("Registration/Labeltext"))
    treaty = {
        "mtdsg_no": mtdsg_no,
        "short_name": short_name,
        "title": clean_text(ext.findtext("Subtitlesect") or ext.findtext("Titlesect")),
        "chapter": clean_text(treaty_el.findtext("Header/Chapter/Header")).removeprefix("CHAPTER").strip(),
        "conclusion_place": place.strip() or None,
        "conclusion_date": _leading_date(concluded),
        "entry_into_force_date": _leading_date(clean_text(ext.findtext("EIF/Labeltext"))),
        "registration_no": (re.search(r"No\.\s*(\d+)", registration) or [None, None])[1],
        "stated_signatories": _int(ext.findtext("Status/Signatories")),
        "stated_parties": _int(ext.findtext("Status/Parties")),
        "parsed_signatories": sum(p["signature_date"] is not None for p in participation),
        "parsed_parties": sum(p["is_party"] for p in participation),
        "participant_table_found": treaty_el.find("Participants/Table") is not None,
        "source_url": url,
    }
    return Document(treaty, participation, _footnotes(treaty_el, mtdsg_no), _declarations(treaty_el, mtdsg_no))


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _leading_date(text: str) -> date | None:
    m = _LEADING_DATE.match(text)
    if not m:
        return None
    try:
        return parse_date(m.group(1))
    except ValueError:
        return None


def _entries(row) -> list[str | None]:
    return [entry.text for entry in row.findall("Entry")]


def _participants(treaty_el, url: str, mtdsg_no: str) -> list[dict]:
    group = treaty_el.find("Participants/Table/TGroup")
    if group is None:
        return []
    head = group.find("Thead/Row")
    if head is None:
        raise ParseError(SOURCE, url, "participant table has no header row")
    columns = [parse_header(label or "") for label in _entries(head)[1:]]
    rows = []
    for row in group.iterfind("Tbody/Rows/Row"):
        cells = _entries(row)
        if not cells or not (cells[0] or "").strip():
            continue
        name, notes = clean_name(cells[0])
        record = {"mtdsg_no": mtdsg_no, "participant": name, "footnotes": notes}
        record.update(_participation(columns, cells[1:], url, name))
        country = resolve_name(name)
        record["iso3"] = country.iso3 if country else None
        record["m49"] = country.m49 if country else None
        record["is_state"] = country.is_state if country else True
        rows.append(record)
    return rows


def _participation(columns: list[Column], cells: list[str | None], url: str, name: str) -> dict:
    out = {
        "signature_date": None, "signature_kind": None, "consent_date": None, "consent_kind": None,
        "provisional_application_date": None,
    }
    if len(cells) > len(columns):
        raise ParseError(SOURCE, url, f"row {name!r} has {len(cells)} date cells for {len(columns)} columns")
    for column, cell in zip(columns, cells):
        try:
            parsed = parse_cell(cell)
        except ValueError as exc:
            raise ParseError(SOURCE, url, f"participant {name!r}: {exc}") from None
        if parsed is None:
            continue
        when, suffix = parsed
        role = "provisional_application" if column.kind(suffix) == "provisional_application" else column.role
        if role == "provisional_application":
            out["provisional_application_date"] = when
        elif out[f"{role}_date"] is None:
            out[f"{role}_date"], out[f"{role}_kind"] = when, column.kind(suffix)
    out["is_party"] = out["consent_date"] is not None
    out["withdrawn"], out["withdrawal_date"] = False, None
    return out


def _footnotes(treaty_el, mtdsg_no: str) -> list[dict]:
    notes = []
    for note in treaty_el.iterfind("EndNotes/Note"):
        index = _int(note.findtext("index"))
        if index is not None:
            text = "\n".join(clean_text(t.text) for t in note.findall("text") if clean_text(t.text))
            notes.append({"mtdsg_no": mtdsg_no, "footnote": index, "text": text})
    return notes


def _declarations(treaty_el, mtdsg_no: str) -> list[dict]:
    rows, seq = [], {}
    for section, section_kind in _SECTIONS.items():
        for entry in treaty_el.iterfind(f"{section}/*[Participant]"):
            name, _ = clean_name(entry.findtext("Participant") or "")
            heading = " ".join(clean_text(t.text) for t in entry.findall("text[@type='title']")) or None
            body = [clean_text(t.text) for t in entry.findall("text") if t.get("type") != "title"]
            kind = _declaration_kind(section_kind, heading)
            seq[(kind, name)] = seq.get((kind, name), 0) + 1
            rows.append({
                "mtdsg_no": mtdsg_no, "participant": name, "kind": kind, "seq": seq[(kind, name)],
                "heading": heading, "text": "\n".join(t for t in body if t),
            })
    return rows


def _declaration_kind(section_kind: str, heading: str | None) -> str:
    if section_kind != "declaration" or not heading:
        return section_kind
    low = heading.lower()
    if "reservation" in low:
        return "reservation_and_declaration" if "declaration" in low else "reservation"
    return section_kind


def treaty_events(participation: list[dict]) -> list[dict]:
    """Participation in long form: one row per dated signature, consent and provisional application."""
    events = []
    for p in participation:
        for event, kind in (("signature", p["signature_kind"]), ("consent", p["consent_kind"]),
                            ("provisional_application", "provisional_application")):
            when = p[f"{event}_date"]
            if when is not None:
                events.append({
                    "mtdsg_no": p["mtdsg_no"], "participant": p["participant"], "iso3": p["iso3"],
                    "event": event, "event_kind": kind, "event_date": when, "withdrawn": False,
                })
    return events


def ratification_progress(mtdsg_no: str, participation: list[dict], until: date) -> list[dict]:
    """Per year from the first signature or consent to `until`: new and cumulative signatories and parties."""
    sig_years = [p["signature_date"].year for p in participation if p["signature_date"]]
    con_years = [p["consent_date"].year for p in participation if p["consent_date"]]
    if not sig_years and not con_years:
        return []
    rows, cum_sig, cum_con = [], 0, 0
    for year in range(min(sig_years + con_years), until.year + 1):
        new_sig, new_con = sig_years.count(year), con_years.count(year)
        cum_sig, cum_con = cum_sig + new_sig, cum_con + new_con
        rows.append({
            "mtdsg_no": mtdsg_no, "year": year, "new_signatories": new_sig, "new_parties": new_con,
            "cumulative_signatories": cum_sig, "cumulative_parties": cum_con,
        })
    return rows


def batch_tables(doc: Document, raw_sha256: str, fetched_at: datetime, today: date) -> dict[tables.Table, pa.Table]:
    """One treaty's batch: a typed Arrow table per treaty table, cast to the declared schemas."""
    treaty = dict(doc.treaty, raw_sha256=raw_sha256, fetched_at=fetched_at, as_of=fetched_at.date())
    rows = {
        tables.TREATIES.name: [treaty],
        tables.PARTICIPATION.name: doc.participation,
        tables.TREATY_FOOTNOTES.name: doc.footnotes,
        tables.DECLARATIONS.name: doc.declarations,
        tables.TREATY_EVENTS.name: treaty_events(doc.participation),
        tables.RATIFICATION_PROGRESS.name: ratification_progress(doc.treaty["mtdsg_no"], doc.participation, today),
    }
    return {t: pa.Table.from_pylist(rows[t.name], schema=t.schema) for t in tables.TREATY_TABLES}

"""Read an xlsx workbook with bounded memory: its zip directory checked first, then its first sheet streamed.

Used by tasks/unodc.py for the UNODC IAFQ bulk file
(https://data.unodc.org/sites/dataportal.unodc.org/files/<YYYY-MM>/data_iafq_firearms_trafficking.xlsx); feeds
firearms_seizures through it. Pure: bytes in, rows out.

Before any XML is read, the zip directory is checked against `Limits`: the total uncompressed size and each
member's compression ratio (a decompression bomb is a small zip whose sheet expands to gigabytes). The sheet is
then parsed incrementally (lxml iterparse over the decompressing stream, each row freed once read), so memory
holds the shared-strings table and one row, whatever the number of rows. A row's cells are kept sparsely (column
index -> value), so a cell far to the right costs what any cell costs; a cell reference outside Excel's grid
(columns A..XFD, rows 1..1048576) or not of the form `B12` is refused. (A sheet's declared `<dimension>` is not a
bound: the 2024 IAFQ release declares `A1` for thirteen columns.) No DTD, entity or network access.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from tasks.errors import ParseError, excerpt

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_V = f"{NS}v"
#: Excel's grid: columns A..XFD, rows 1..1048576.
MAX_COLUMNS, MAX_ROWS = 16_384, 1_048_576
_DIGITS = "0123456789"
_LETTERS = re.compile(r"[A-Z]{1,3}")

#: One row's cells: column index (0 for A) -> str, float or bool; absent cells are missing.
Cells = dict[int, "str | float | bool"]


@dataclass(frozen=True)
class Limits:
    """Caps checked on the zip directory before reading. A genuine one-million-row IAFQ sheet is about 450 MB of
    XML compressed about 15:1; the recorded releases are 7 MB at about 11:1."""

    max_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_compression_ratio: float = 100.0
    #: The shared-strings table is held in memory whole (the IAFQ one is 18 kB).
    max_shared_strings_bytes: int = 64 * 1024 * 1024


def _open(body: bytes, source: str, url: str, limits: Limits) -> zipfile.ZipFile:
    if not zipfile.is_zipfile(io.BytesIO(body)):
        kind = "an HTML page" if body.lstrip()[:1] == b"<" else "not a zip archive"
        raise ParseError(source, url, f"expected an xlsx workbook, got {kind}: {excerpt(body, 60)}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParseError(source, url, f"not a readable xlsx workbook: {exc}") from None
    total = sum(m.file_size for m in members)
    if total > limits.max_uncompressed_bytes:
        raise ParseError(source, url, f"workbook expands to {total} bytes, over the {limits.max_uncompressed_bytes}"
                                      f"-byte cap (zip of {len(body)} bytes); not read")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024 * 1024 and ratio > limits.max_compression_ratio:
            raise ParseError(source, url, f"workbook member {member.filename} expands {ratio:.0f}:1 "
                                          f"({member.compress_size} -> {member.file_size} bytes), over the "
                                          f"{limits.max_compression_ratio:.0f}:1 cap (decompression bomb?); not read")
    return archive


def _parse(archive: zipfile.ZipFile, name: str, source: str, url: str) -> etree._Element | None:
    try:
        data = archive.read(name)
    except KeyError:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(source, url, f"workbook part {name} is not well-formed XML: {exc}") from None


def _first_sheet(archive: zipfile.ZipFile, source: str, url: str) -> str:
    """The zip member of the workbook's first sheet (xl/workbook.xml, resolved through its relationships)."""
    workbook = _parse(archive, "xl/workbook.xml", source, url)
    rels = _parse(archive, "xl/_rels/workbook.xml.rels", source, url)
    sheet = None if workbook is None else workbook.find(f"{NS}sheets/{NS}sheet")
    if sheet is None or rels is None:
        raise ParseError(source, url, "not a readable xlsx workbook: no xl/workbook.xml sheet list")
    rel_id = sheet.get(f"{_REL_NS}id")
    for rel in rels.iter(f"{_PKG_REL_NS}Relationship"):
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    raise ParseError(source, url, f"not a readable xlsx workbook: sheet relationship {rel_id} not found")


def _text(item: etree._Element) -> str:
    """The text of a shared string or inline string: its <t>, or its rich-text runs joined (phonetics skipped)."""
    plain = item.find(f"{NS}t")
    if plain is not None:
        return plain.text or ""
    return "".join(t.text or "" for t in item.iterfind(f"{NS}r/{NS}t"))


def _shared_strings(archive: zipfile.ZipFile, source: str, url: str, limits: Limits) -> list[str]:
    if "xl/sharedStrings.xml" not in archive.namelist():
        return []
    size = archive.getinfo("xl/sharedStrings.xml").file_size
    if size > limits.max_shared_strings_bytes:
        raise ParseError(source, url, f"workbook shared strings of {size} bytes, over the "
                                      f"{limits.max_shared_strings_bytes}-byte cap; not read")
    strings = []
    with archive.open("xl/sharedStrings.xml") as stream:
        try:
            for _, item in etree.iterparse(stream, tag=f"{NS}si", resolve_entities=False, no_network=True,
                                           load_dtd=False):
                strings.append(_text(item))
                item.clear()
        except etree.XMLSyntaxError as exc:
            raise ParseError(source, url, f"workbook shared strings are not well-formed XML: {exc}") from None
    return strings


def _column(ref: str, source: str, url: str, cache: dict[str, int]) -> int:
    """The column index of a cell reference such as `M12` (0 for A); ParseError for a column outside Excel's grid.
    Only the letters are read (the row is the row element's)."""
    letters = ref.rstrip(_DIGITS)
    if letters not in cache:
        index = 0
        for letter in letters if _LETTERS.fullmatch(letters) else "":
            index = index * 26 + ord(letter) - 64
        if not 0 < index <= MAX_COLUMNS:
            raise ParseError(source, url, f"cell reference {excerpt(ref, 40)} is outside Excel's grid (columns A to "
                                          f"XFD); not read")
        cache[letters] = index - 1  # at most MAX_COLUMNS entries
    return cache[letters]


def _row_number(row: etree._Element, previous: int, source: str, url: str) -> int:
    text = row.get("r")
    if text is None:
        return previous + 1
    if not (text.isascii() and text.isdigit() and len(text) <= 7 and 0 < int(text) <= MAX_ROWS):
        raise ParseError(source, url, f"row number {excerpt(text, 40)} is outside Excel's grid (1 to {MAX_ROWS})")
    return int(text)


def _value(cell: etree._Element, strings: list[str], source: str, url: str):
    kind = cell.get("t")
    if kind == "inlineStr":
        inline = cell.find(f"{NS}is")
        return "" if inline is None else _text(inline)
    raw = None
    for child in cell:  # twice as fast as findtext over millions of cells
        if child.tag == _V:
            raw = child.text
            break
    if raw is None:
        return ""
    if kind == "s":
        try:
            return strings[int(raw)]
        except (ValueError, IndexError):
            raise ParseError(source, url, f"cell {excerpt(cell.get('r'), 40)} points to shared string "
                                          f"{excerpt(raw, 40)}, which does not exist") from None
    if kind == "b":
        return raw == "1"
    if kind in ("str", "e", "d"):
        return raw
    try:
        return float(raw)
    except ValueError:
        raise ParseError(source, url, f"cell {excerpt(cell.get('r'), 40)} holds {excerpt(raw, 40)}, "
                                      "not a number") from None


def rows(body: bytes, source: str, url: str, limits: Limits = Limits()) -> Iterator[tuple[int, Cells]]:
    """(row number, cells) for every row of the first sheet, in order; cells by column index (0 for A), str, float
    or bool, an empty cell "" and a missing one absent. Raises ParseError (naming `source` and `url`) for a workbook
    over `limits`, bytes that are not an xlsx workbook, a cell or row reference outside Excel's grid, or XML that is
    not well-formed."""
    archive = _open(body, source, url, limits)
    strings = _shared_strings(archive, source, url, limits)
    sheet = _first_sheet(archive, source, url)
    columns: dict[str, int] = {}
    try:
        stream = archive.open(sheet)
    except KeyError:
        raise ParseError(source, url, f"not a readable xlsx workbook: sheet {sheet} is missing") from None
    with stream:
        try:
            number = 0
            for _, row in etree.iterparse(stream, tag=f"{NS}row", resolve_entities=False, no_network=True,
                                          load_dtd=False):
                number = _row_number(row, number, source, url)
                cells: Cells = {}
                at = -1
                for cell in row.iterchildren(f"{NS}c"):
                    ref = cell.get("r")
                    at = at + 1 if ref is None else _column(ref, source, url, columns)
                    if at >= MAX_COLUMNS:
                        raise ParseError(source, url, f"row {number} has a cell past column XFD, outside Excel's "
                                                      "grid; not read")
                    cells[at] = _value(cell, strings, source, url)
                row.clear()
                while row.getprevious() is not None:
                    del row.getparent()[0]
                yield number, cells
        except etree.XMLSyntaxError as exc:
            raise ParseError(source, url, f"workbook sheet {sheet} is not well-formed XML: {exc}") from None
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ParseError(source, url, f"workbook sheet {sheet} cannot be decompressed: {exc}") from None

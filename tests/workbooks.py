"""Workbooks generated for tests and benchmarks: small ones cell by cell, a large genuine one and decompression
bombs as streams, in the layout of the UNODC IAFQ bulk file (tasks/unodc.py)."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

from tasks.unodc import EXPECTED_COLUMNS

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>'),
    "_rels/.rels": (f'<Relationships xmlns="{PKG_REL}">'
                    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (f'<workbook {NS} xmlns:r="{REL}"><sheets>'
                        '<sheet name="data_iafq_firearms_trafficking" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        f'<Relationships xmlns="{PKG_REL}">'
        f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{REL}/styles" Target="styles.xml"/></Relationships>'),
    "xl/styles.xml": (f'<styleSheet {NS}><cellXfs count="2"><xf numFmtId="0"/>'
                      '<xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>'),
}


def xlsx(rows: list[list]) -> bytes:
    """A one-sheet workbook: str cells inline, int/float cells numbers, date cells numbers in date format 14."""
    def cell(ref: str, value) -> str:
        if isinstance(value, date):
            return f'<c r="{ref}" s="1"><v>{(value - date(1899, 12, 30)).days}</v></c>'
        if isinstance(value, (int, float)):
            return f'<c r="{ref}"><v>{value}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'

    sheet = "".join(
        f'<row r="{r}">' + "".join(cell(f"{chr(65 + c)}{r}", v) for c, v in enumerate(row)) + "</row>"
        for r, row in enumerate(rows, start=1))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in PARTS.items():
            archive.writestr(name, text)
        archive.writestr("xl/worksheets/sheet1.xml", f"<worksheet {NS}><sheetData>{sheet}</sheetData></worksheet>")
    return out.getvalue()


COUNTRIES = [("MEX", "Mexico", "Americas", "Latin America and the Caribbean"),
             ("GBR", "United Kingdom", "Europe", "Northern Europe"), ("GBR_E_W", "England and Wales", "Europe",
                                                                     "Northern Europe"),
             ("BRA", "Brazil", "Americas", "Latin America and the Caribbean"), ("ALB", "Albania", "Europe",
                                                                                  "Southern Europe")]
INDICATORS = [("Arms seized", "Total", "Total"), ("Arms seized", "by type", "Pistol"),
              ("Arms found", "by type", "Total"), ("Ammunition seized", "Total", "Total")]


def genuine(path: Path, rows: int) -> None:
    """An IAFQ-shaped workbook of `rows` observations, written as a stream; VALUE numbers, text and censored."""
    strings = ["UNODC", "15/11/2025", *EXPECTED_COLUMNS, "na", "Counts", "IAFQ", "<5", "1,234"]
    strings += sorted({s for c in COUNTRIES for s in c} | {s for i in INDICATORS for s in i})
    index = {s: i for i, s in enumerate(strings)}

    def s(ref: str, text: str) -> str:
        return f'<c r="{ref}" t="s"><v>{index[text]}</v></c>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in PARTS.items():
            shared = ('<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                      'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Default Extension="xml"')
            archive.writestr(name, text.replace('<Default Extension="xml"', shared)
                             if name == "[Content_Types].xml" else text)
        archive.writestr("xl/sharedStrings.xml", f'<sst {NS} count="{len(strings)}" uniqueCount="{len(strings)}">'
                         + "".join(f"<si><t>{escape(t)}</t></si>" for t in strings) + "</sst>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f"<worksheet {NS}><sheetData>".encode())
            head = [s("A1", "UNODC"), s("A2", "15/11/2025"),
                    "".join(s(f"{chr(65 + i)}3", c) for i, c in enumerate(EXPECTED_COLUMNS))]
            sheet.write("".join(f'<row r="{n}">{cells}</row>' for n, cells in enumerate(head, 1)).encode())
            batch = []
            for n in range(4, rows + 4):
                iso3, country, region, subregion = COUNTRIES[n % len(COUNTRIES)]
                indicator, dimension, category = INDICATORS[n % len(INDICATORS)]
                value = s(f"L{n}", "<5") if n % 97 == 0 else f'<c r="L{n}"><v>{n % 5000}</v></c>'
                year = (f'<c r="J{n}"><v>{2000 + n % 24}</v></c>' if n % 2  # Year as number or as text
                        else f'<c r="J{n}" t="inlineStr"><is><t>{2000 + n % 24}</t></is></c>')
                batch.append(f'<row r="{n}">{s(f"A{n}", iso3)}{s(f"B{n}", country)}{s(f"C{n}", region)}'
                             f'{s(f"D{n}", subregion)}{s(f"E{n}", indicator)}{s(f"F{n}", dimension)}'
                             f'{s(f"G{n}", category)}{s(f"H{n}", "na")}{s(f"I{n}", "na")}{year}'
                             f'{s(f"K{n}", "Counts")}{value}{s(f"M{n}", "IAFQ")}</row>')
                if len(batch) == 10_000:
                    sheet.write("".join(batch).encode())
                    batch = []
            sheet.write(("".join(batch) + "</sheetData></worksheet>").encode())


def bomb(target: Path | io.BytesIO, sheet_bytes: int) -> None:
    """A workbook whose sheet is `sheet_bytes` of blank padding, written as a stream: it compresses about 1000:1."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f"<worksheet {NS}><sheetData>".encode())
            chunk = b" " * (16 * 1024 * 1024)
            for _ in range(sheet_bytes // len(chunk)):
                sheet.write(chunk)
            sheet.write(b"</sheetData></worksheet>")

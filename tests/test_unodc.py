"""tasks.unodc against the recorded IAFQ releases in ../shared/data/unodc and small workbooks built here."""

import io
import zipfile
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import pyarrow.compute as pc
import pytest

from tasks import unodc
from tasks.errors import ParseError
from tasks.tables import FIREARMS_SEIZURES

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
URL = "https://data.unodc.org/sites/dataportal.unodc.org/files/{}/data_iafq_firearms_trafficking.xlsx"
RELEASES = {"2022-06-17": 11_032, "2024-08-26": 15_468}
MEXICO_2021 = ["MEX", "Mexico", "Americas", "Latin America and the Caribbean", "Arms seized", "Total", "Total", "na",
               "na", "2021", "Counts", 20637.0, "IAFQ"]

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XLSX_PARTS = {
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
    "_rels/.rels": (f'<Relationships xmlns="{_PKG_REL}">'
                    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (f'<workbook {_NS} xmlns:r="{_REL}"><sheets>'
                        '<sheet name="data_iafq_firearms_trafficking" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        f'<Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'),
    "xl/styles.xml": (f'<styleSheet {_NS}><cellXfs count="2"><xf numFmtId="0"/>'
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
        for name, text in _XLSX_PARTS.items():
            archive.writestr(name, text)
        archive.writestr("xl/worksheets/sheet1.xml", f"<worksheet {_NS}><sheetData>{sheet}</sheetData></worksheet>")
    return out.getvalue()


def recorded(release: str) -> bytes:
    return (DATA / "unodc" / "iafq" / f"release-{release}" / "data_iafq_firearms_trafficking.xlsx").read_bytes()


def with_renamed_header(body: bytes, old: str, new: str) -> bytes:
    """The recorded workbook with one shared string (a header cell) renamed, everything else byte-identical."""
    source, out = zipfile.ZipFile(io.BytesIO(body)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/sharedStrings.xml":
                assert data.count(f">{old}</t>".encode()) == 1
                data = data.replace(f">{old}</t>".encode(), f">{new}</t>".encode())
            target.writestr(item, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def tables():
    return {release: unodc.seizures(recorded(release), URL.format(release[:7])) for release in RELEASES}


@pytest.mark.parametrize("release", RELEASES)
def test_recorded_release(tables, release):
    table = tables[release]
    assert table.schema == FIREARMS_SEIZURES.schema
    assert table.num_rows == RELEASES[release]
    assert set(table["release_date"].to_pylist()) == {date.fromisoformat(release)}
    assert unodc.release_date(recorded(release), "u") == date.fromisoformat(release)
    assert table["value"].null_count == 0 and pc.min(table["value"]).as_py() >= 0
    assert table["m49"].null_count == 0
    assert set(table["unit"].to_pylist()) == {"Counts"}


def test_year_is_typed_whether_number_or_text_cell(tables):
    # Year is a number cell in 2022 and a text cell in 2024.
    assert (pc.min(tables["2022-06-17"]["year"]).as_py(), pc.max(tables["2022-06-17"]["year"]).as_py()) == (
        2004, 2021)
    assert (pc.min(tables["2024-08-26"]["year"]).as_py(), pc.max(tables["2024-08-26"]["year"]).as_py()) == (
        2004, 2023)


def test_recorded_row(tables):
    table = tables["2024-08-26"]
    first = table.slice(0, 1).to_pylist()[0]
    assert first == {
        "release_date": date(2024, 8, 26), "iso3": "ALB", "m49": 8, "country": "Albania", "region": "Europe",
        "subregion": "Southern Europe", "indicator": "Ammunition seized", "dimension": "Total", "category": "Total",
        "sex": "na", "age": "na", "year": 2022, "value": 27806, "unit": "Counts", "source": "IAFQ",
        "subnational_code": None, "is_subnational": False, "value_text": None, "value_flag": None,
        "is_latest_release": True,
    }


def test_renamed_column_is_schema_drift():
    broken = with_renamed_header(recorded("2024-08-26"), "VALUE", "Value")
    with pytest.raises(ParseError, match=r"schema drift.*missing columns \['VALUE'\], unexpected columns \['Value'\]"):
        unodc.seizures(broken, URL.format("2024-08"))


def test_added_and_missing_columns_are_named():
    header = [*unodc.EXPECTED_COLUMNS[:-1], "Notes"]
    with pytest.raises(ParseError, match=r"missing columns \['Source'\], unexpected columns \['Notes'\]"):
        unodc.seizures(xlsx([["UNODC"], ["26/08/2024"], header, MEXICO_2021]), "u")
    with pytest.raises(ParseError, match=r"missing columns \[\], unexpected columns \['Notes'\]"):
        unodc.seizures(xlsx([["UNODC"], ["26/08/2024"], [*unodc.EXPECTED_COLUMNS, "Notes"], MEXICO_2021]), "u")


def test_reordered_columns_fail():
    header = list(unodc.EXPECTED_COLUMNS)
    header[0], header[1] = header[1], header[0]
    with pytest.raises(ParseError, match="columns reordered"):
        unodc.seizures(xlsx([["UNODC"], ["26/08/2024"], header, MEXICO_2021]), "u")


def test_html_instead_of_workbook():
    with pytest.raises(ParseError, match="expected an xlsx workbook, got an HTML page") as error:
        unodc.seizures(b"<!DOCTYPE html><html><body>Page not found</body></html>", URL.format("2025-01"))
    assert error.value.url == URL.format("2025-01")


def test_zip_that_is_not_a_workbook():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ParseError, match="not a readable xlsx workbook"):
        unodc.seizures(out.getvalue(), "u")


def test_release_date_as_date_cell():
    body = xlsx([["UNODC"], [date(2024, 8, 26)], list(unodc.EXPECTED_COLUMNS), MEXICO_2021])
    assert unodc.release_date(body, "u") == date(2024, 8, 26)
    assert unodc.seizures(body, "u").to_pylist()[0]["value"] == 20637


def test_bad_layout_cells():
    with pytest.raises(ParseError, match="cell A2 is '2024-08-26', expected the release date as dd/mm/yyyy"):
        unodc.release_date(xlsx([["UNODC"], ["2024-08-26"]]), "u")
    with pytest.raises(ParseError, match="cell A1 is 'Data', expected 'UNODC'"):
        unodc.release_date(xlsx([["Data"], ["26/08/2024"]]), "u")


def test_value_cells():
    rows = [["UNODC"], ["26/08/2024"], list(unodc.EXPECTED_COLUMNS),
            [*MEXICO_2021[:11], "", "IAFQ"], [*MEXICO_2021[:11], "15", "IAFQ"], [], MEXICO_2021]
    assert unodc.seizures(xlsx(rows), "u")["value"].to_pylist() == [None, 15, 20637]
    with pytest.raises(ParseError, match=r"row 4: VALUE 2\.5 is not a whole number"):
        unodc.seizures(xlsx([*rows[:3], [*MEXICO_2021[:11], 2.5, "IAFQ"]]), "u")
    with pytest.raises(ParseError, match="row 4: Year '2021/22' is not a whole number"):
        unodc.seizures(xlsx([*rows[:3], [*MEXICO_2021[:9], "2021/22", *MEXICO_2021[10:]]]), "u")

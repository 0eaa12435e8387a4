"""tasks.unodc against the recorded IAFQ releases in ../shared/data/unodc and small workbooks built here."""

import io
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tasks import unodc
from tasks.errors import ParseError
from tasks.tables import FIREARMS_SEIZURES
from workbooks import NS, bomb, genuine, xlsx

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
URL = "https://data.unodc.org/sites/dataportal.unodc.org/files/{}/data_iafq_firearms_trafficking.xlsx"
RELEASES = {"2022-06-17": 11_032, "2024-08-26": 15_468}
MEXICO_2021 = ["MEX", "Mexico", "Americas", "Latin America and the Caribbean", "Arms seized", "Total", "Total", "na",
               "na", "2021", "Counts", 20637.0, "IAFQ"]

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


HEAD = [["UNODC"], ["26/08/2024"], list(unodc.EXPECTED_COLUMNS)]


def row(iso3="MEX", year="2021", value=20637.0, indicator="Arms seized") -> list:
    return [iso3, "Mexico", "Americas", "Latin America and the Caribbean", indicator, "Total", "Total", "na", "na",
            year, "Counts", value, "IAFQ"]


def test_value_cells():
    rows = [*HEAD, row(value=""), row(value="15"), [], row()]
    assert unodc.seizures(xlsx(rows), "u")["value"].to_pylist() == [None, 15, 20637]
    with pytest.raises(ParseError, match="row 4: Year '2021/22' is not a whole number"):
        unodc.seizures(xlsx([*HEAD, row(year="2021/22")]), "u")


@pytest.mark.parametrize("cell, value, text, flag", [
    ("<5", None, "<5", "censored"),
    ("< 10", None, "< 10", "censored"),
    ("1,234", 1234, "1,234", "formatted"),
    ("12\u00a0345", 12345, "12\u00a0345", "formatted"),
    ("..", None, "..", "text"),
    ("n.a.", None, "n.a.", "text"),
    (2.5, None, "2.5", "not_integer"),
    ("1e19", None, "1e19", "out_of_range"),
    (1e19, None, "1e+19", "out_of_range"),
    (" 42 ", 42, None, None),
    (7.0, 7, None, None),
    ("", None, None, None),
])
def test_value_as_published_now(cell, value, text, flag):
    assert unodc.value_cell(cell) == (value, text, flag)


def test_a_workbook_as_published_now():
    """Year as text and number, censored and formatted values, sub-national pseudo-codes: one release, no error."""
    rows = [*HEAD, row(year=2021, value="<5"), row(year="2022", value="1,234"), row("GBR_E_W", 2021, 5.0),
            row("GBR_NI", "2021", "<3"), row("GBR_S", 2021.0, 7.0), row("IRQ_KRI", "2020", 3.0), row("GBR", 2021, 12.0)]
    table = unodc.seizures(xlsx(rows), URL.format("2025-11"))
    assert table.schema == FIREARMS_SEIZURES.schema
    got = [(r["iso3"], r["subnational_code"], r["is_subnational"], r["m49"], r["year"], r["value"], r["value_text"],
            r["value_flag"]) for r in table.to_pylist()]
    assert got == [
        ("MEX", None, False, 484, 2021, None, "<5", "censored"),
        ("MEX", None, False, 484, 2022, 1234, "1,234", "formatted"),
        ("GBR", "GBR_E_W", True, 826, 2021, 5, None, None),
        ("GBR", "GBR_NI", True, 826, 2021, None, "<3", "censored"),
        ("GBR", "GBR_S", True, 826, 2021, 7, None, None),
        ("IRQ", "IRQ_KRI", True, 368, 2020, 3, None, None),
        ("GBR", None, False, 826, 2021, 12, None, None),
    ]


@pytest.mark.parametrize("cells", [{"indicator": "A" * 5000}, {"value": "<" + " " * 5000 + "5"}])
def test_over_long_cell_is_refused(cells):
    with pytest.raises(ParseError, match=r"row 4: a cell of 50\d\d characters, over the 1000-character cap"):
        unodc.seizures(xlsx([*HEAD, row(**cells)]), "u")


def test_decompression_bomb_is_refused_from_the_zip_directory():
    out = io.BytesIO()
    bomb(out, 64 * 1024 * 1024)
    body = out.getvalue()
    assert len(body) < 200_000
    with pytest.raises(ParseError, match=r"xl/worksheets/sheet1.xml expands \d+:1 .* over the 100:1 cap") as error:
        unodc.seizures(body, URL.format("2025-11"))
    assert error.value.url == URL.format("2025-11")


def test_total_uncompressed_size_is_capped():
    body = xlsx([*HEAD, row()])
    with pytest.raises(ParseError, match=r"workbook expands to \d+ bytes, over the 1000-byte cap"):
        unodc.seizures(body, "u", xlsx_limits(max_uncompressed_bytes=1000))


def test_shared_strings_are_capped():
    body = xlsx([*HEAD, row()])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("xl/sharedStrings.xml", f'<sst {NS}>' + "<si><t>x</t></si>" * 1000 + "</sst>")
    with pytest.raises(ParseError, match=r"shared strings of \d+ bytes, over the 1000-byte cap"):
        unodc.seizures(out.getvalue(), "u", xlsx_limits(max_shared_strings_bytes=1000))


def xlsx_limits(**caps):
    from tasks.xlsx import Limits

    return Limits(**caps)


def test_release_links_on_a_data_report_page():
    page = b"""<!DOCTYPE html><html><body>
      <a href="/sites/dataportal.unodc.org/files/2024-08/data_iafq_firearms_trafficking.xlsx">2024</a>
      <a href="https://data.unodc.org/sites/dataportal.unodc.org/files/2025-11/data_iafq_firearms_trafficking.xlsx">old</a>
      <a href="https://data.unodc.org/sites/dataportal.unodc.org/files/2025-11/data_iafq_firearms_trafficking_0.xlsx">
        Download (xlsx)</a>
      <a href="/sites/dataportal.unodc.org/files/2025-11/data_iafq_homicide.xlsx">other dataset</a>
      <a href="/sites/dataportal.unodc.org/files/2025-11/data_iafq_firearms_trafficking.xlsx.zip">not xlsx</a>
      <a href="/sites/dataportal.unodc.org/files/2024-08/data_iafq_firearms_trafficking.xlsx#x">twice</a>
      <a>no link</a></body></html>"""
    links, refused = unodc.release_links(page, "https://data.unodc.org/datareport/firearm-seizures",
                                         "data_iafq_firearms_trafficking", frozenset({"https://data.unodc.org"}))
    assert refused == []
    assert links == [
        "https://data.unodc.org/sites/dataportal.unodc.org/files/2024-08/data_iafq_firearms_trafficking.xlsx",
        "https://data.unodc.org/sites/dataportal.unodc.org/files/2025-11/data_iafq_firearms_trafficking_0.xlsx",
    ]


def test_the_suite_quarantines_what_a_count_cannot_be():
    from tasks.validate import Validator

    body = xlsx([*HEAD, row(value="1e19"), row("GBR", value=2e9), row("FRA", value="<5"), row("GBR_S", value=3.0)])
    result = Validator().validate(FIREARMS_SEIZURES, unodc.seizures(body, "u"), {"current_year": 2026})
    failed = {(f.expectation, f.kwargs.get("column")): f.observed for f in result.failures_for("2024-08-26")}
    assert set(failed) == {("expect_column_values_to_be_in_set", "value_flag"),
                           ("expect_column_values_to_be_between", "value")}
    assert "out_of_range" in str(failed[("expect_column_values_to_be_in_set", "value_flag")])
    assert "2000000000" in str(failed[("expect_column_values_to_be_between", "value")])


MEASURE = """
import resource, sys
from pathlib import Path
from tasks import unodc
unodc.seizures(Path(sys.argv[2]).read_bytes(), sys.argv[2])  # every lazy import done before measuring
body = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
table = unodc.seizures(body, sys.argv[1])
print(table.num_rows, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_large_genuine_workbook_is_read_in_bounded_memory(tmp_path):
    """100,000 rows (a 44 MiB sheet): the process grows by what one chunk of rows and the result take, well below
    what reading the whole sheet at once took (170 MiB before the first row was even typed)."""
    path, small = tmp_path / "large.xlsx", tmp_path / "small.xlsx"
    genuine(path, 100_000)
    genuine(small, 10)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(small)], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    rows, grown_mib = map(int, out.stdout.split())
    assert rows == 100_000
    assert grown_mib < 100, f"peak RSS grew by {grown_mib} MiB while reading"

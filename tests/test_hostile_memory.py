"""Memory from tiny files (issue 22.4): each hostile input is built here, read in a child process, and the child's
peak RSS must stay within the run's budget (1 GiB; the child runs under an address-space limit, so a regression
ends in MemoryError rather than in the machine's memory). A behaviour bound, not a timing."""

from __future__ import annotations

import re

import pytest

from hostile_inputs import (BUDGET_MIB, bombed_catalog, far_cell_workbook, fetch_and_parse_series, iafq_with_far_cells,
                            peak, sdg_pages, serve, sheet_workbook)

URL = "https://data.unodc.org/sites/dataportal.unodc.org/files/2026-01/data_iafq_firearms_trafficking.xlsx"


def read_workbook(path) -> str:
    return f"""
from pathlib import Path
from tasks import unodc
result = unodc.seizures(Path({str(path)!r}).read_bytes(), {URL!r}).num_rows
"""


def test_a_tiny_workbook_whose_cell_lies_off_the_grid_is_refused_naming_it(tmp_path):
    """A ~1 kB sheet whose only cell is at ZZZZZZ4 once took 5.3 GB: rows were padded up to the column index."""
    path = tmp_path / "far.xlsx"
    path.write_bytes(far_cell_workbook("ZZZZZZ4"))
    outcome, peak_mib = peak(read_workbook(path))
    assert outcome == (f"ParseError: unodc: {URL}: cell reference 'ZZZZZZ4' is outside Excel's grid (columns A to "
                       "XFD); not read"), outcome
    assert peak_mib < BUDGET_MIB


@pytest.mark.parametrize("ref, problem", [
    ("XFE4", "cell reference 'XFE4' is outside Excel's grid (columns A to XFD)"),
    ("A0B4", "cell reference 'A0B4' is outside Excel's grid (columns A to XFD)"),
    ("a4", "cell reference 'a4' is outside Excel's grid (columns A to XFD)"),
    ("A1048577", "row number '1048577' is outside Excel's grid (1 to 1048576)"),
    ("A" + "9" * 5000, "row number '" + "9" * 36 + "... is outside Excel's grid (1 to 1048576)"),
])
def test_references_off_the_grid_are_refused_with_a_bounded_quote(ref, problem):
    from tasks import unodc
    from tasks.errors import ParseError

    with pytest.raises(ParseError) as error:
        unodc.seizures(far_cell_workbook(ref), URL)
    assert str(error.value).startswith(f"unodc: {URL}: {problem}"), str(error.value)
    assert len(str(error.value)) < 300


def test_a_row_of_more_cells_than_the_grid_has_columns_is_refused():
    """Cells without a reference take the next column: past XFD the row is refused, not grown."""
    from tasks import xlsx
    from tasks.errors import ParseError

    body = sheet_workbook('<row r="1">' + "<c><v>1</v></c>" * (xlsx.MAX_COLUMNS + 1) + "</row>")
    with pytest.raises(ParseError, match=f"^unodc: {re.escape(URL)}: row 1 has a cell past column XFD, outside "
                                         "Excel's grid; not read$"):
        list(xlsx.rows(body, "unodc", URL))


def test_cells_far_to_the_right_cost_what_any_cell_costs(tmp_path):
    """Every data row also holds a cell at XFD (inside the grid): read sparsely, the rows are published as usual."""
    path = tmp_path / "far.xlsx"
    path.write_bytes(iafq_with_far_cells(20_000))
    outcome, peak_mib = peak(read_workbook(path))
    assert outcome == "ok: 20000"
    assert peak_mib < BUDGET_MIB / 2, peak_mib


def test_an_alias_bomb_in_a_configuration_file_is_refused_at_its_first_anchor(tmp_path):
    """433 bytes of YAML whose aliases expand to 9**9 strings: refused by the loader, quoted by nothing."""
    path = bombed_catalog(tmp_path / "treaties.yaml")
    outcome, peak_mib = peak(f"from tasks import catalog\nresult = catalog.load({str(path)!r})", timeout=120)
    assert outcome == (f"CatalogError: treaty catalog {path}: not valid YAML: anchor &l0: anchors and aliases are "
                       "not allowed here at line 2, column 16"), outcome
    assert peak_mib < BUDGET_MIB


def test_sdg_pages_each_inside_the_cap_stop_at_the_series_budget(tmp_path):
    """25 pages of 9 MB (each inside the 16 MiB page cap) were all held and parsed at once (eight 60 MB pages took
    5.7 GB): pages are fetched while the series is within its byte budget, parsed one at a time."""
    with serve(sdg_pages("", 25)) as base:
        outcome, peak_mib = peak(fetch_and_parse_series(base, tmp_path / "_raw"))
    page = f"{base}/Series/Data?seriesCode=VC_ARM_SZTRACE&page=1&pageSize=10000"
    assert re.fullmatch(rf"ParseError: sdg: {re.escape(page)}: 2\d pages hold 13\d{{7}} bytes, over the 134217728-byte "
                        r"budget per series \(max_series_bytes\)", outcome), outcome
    assert peak_mib < BUDGET_MIB / 2, peak_mib

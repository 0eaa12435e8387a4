"""Parse the UNODC firearms trafficking (IAFQ) bulk file into firearms_seizures.

Upstream: https://data.unodc.org/sites/dataportal.unodc.org/files/<YYYY-MM>/data_iafq_firearms_trafficking.xlsx,
linked from https://data.unodc.org/datareport/firearm-seizures. One sheet: row 1 "UNODC", row 2 the release date
(dd/mm/yyyy text, or a date cell), row 3 the header EXPECTED_COLUMNS, then one row per observation. Feeds
firearms_seizures (tasks.tables.FIREARMS_SEIZURES), the IAFQ indicator_revisions and the arms_seized, arms_found and
arms_surrendered columns of the country_year_panel. Pure: bytes in, pyarrow tables out.

What the published files hold (releases 2022-06-17 and 2024-08-26): every cell is filled; VALUE is a float cell
with integral counts (Unit of measurement is always "Counts"); Year is a number cell in 2022 and a text cell in
2024; Sex and Age are "na" except for the Individuals... indicators.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

import pyarrow as pa
from python_calamine import CalamineError, CalamineWorkbook

from tasks.countries import by_iso3
from tasks.errors import ParseError
from tasks.tables import FIREARMS_SEIZURES

SOURCE = "unodc"

EXPECTED_COLUMNS = (
    "Iso3_code", "Country", "Region", "Subregion", "Indicator", "Dimension", "Category", "Sex", "Age", "Year",
    "Unit of measurement", "VALUE", "Source",
)

#: Published column -> firearms_seizures column.
COLUMN_NAMES = {
    "Iso3_code": "iso3", "Country": "country", "Region": "region", "Subregion": "subregion",
    "Indicator": "indicator", "Dimension": "dimension", "Category": "category", "Sex": "sex", "Age": "age",
    "Year": "year", "Unit of measurement": "unit", "VALUE": "value", "Source": "source",
}

#: The labels that identify an observation across releases. Country, Region and Subregion only restate iso3
#: (the 2024 release renamed "Netherlands" to "Netherlands (Kingdom of the)") and Source is provenance (2024
#: rewrote "SOF/IAFQ" as "IAFQ/SOF", "PP/IAFQ" as "IAFQ/PP", ...); keying on them would turn 751 unchanged
#: observations into removed + added pairs. Even these labels are not unique: IAFQ publishes two rows under the
#: same labels for "Arms seized / by location / Total" (the dimension covers two breakdowns, place of seizure and
#: tracing status, each with its own Total), "Arms seized / by condition / otherwise illicitly manufactured" and
#: "Individuals arrested/suspected / by type of offences / Illicit trafficking of arms and other types of
#: trafficking" (198 pairs in 2022, 312 in 2024, about half with equal values; 190 and 307 remain even when every
#: column but VALUE is compared). Nothing in a row tells the twins apart, so tasks.revisions ranks them by value
#: (see revisions.rank_duplicates).
OBSERVATION_LABELS = ("iso3", "indicator", "dimension", "category", "sex", "age", "year", "unit")

_HEADER_ROW = 3
_YEAR_RANGE = (1900, 2100)


def _rows(body: bytes, url: str) -> list[list]:
    """The first sheet's cells, row 1 first, with no leading rows or columns skipped."""
    if not zipfile.is_zipfile(io.BytesIO(body)):
        kind = "an HTML page" if body.lstrip()[:1] == b"<" else "not a zip archive"
        raise ParseError(SOURCE, url, f"expected an xlsx workbook, got {kind}: {body[:60]!r}")
    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(body)).get_sheet_by_index(0).to_python(
            skip_empty_area=False)
    except CalamineError as exc:
        raise ParseError(SOURCE, url, f"not a readable xlsx workbook: {exc}") from exc


def _release(rows: list[list], url: str) -> date:
    if not rows or rows[0][0] != "UNODC":
        raise ParseError(SOURCE, url, f"cell A1 is {rows[0][0] if rows else None!r}, expected 'UNODC'")
    cell = rows[1][0] if len(rows) > 1 else None
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    try:
        return datetime.strptime(str(cell).strip(), "%d/%m/%Y").date()
    except ValueError:
        raise ParseError(SOURCE, url, f"cell A2 is {cell!r}, expected the release date as dd/mm/yyyy") from None


def _check_header(rows: list[list], url: str) -> None:
    header = list(rows[_HEADER_ROW - 1]) if len(rows) >= _HEADER_ROW else []
    while header and header[-1] == "":
        header.pop()
    header = [str(cell).strip() for cell in header]
    if tuple(header) == EXPECTED_COLUMNS:
        return
    missing = [c for c in EXPECTED_COLUMNS if c not in header]
    unexpected = [c for c in header if c not in EXPECTED_COLUMNS]
    problem = f"row {_HEADER_ROW} header changed (schema drift): "
    if missing or unexpected:
        problem += f"missing columns {missing}, unexpected columns {unexpected}"
    else:
        problem += f"columns reordered or repeated: {header}"
    raise ParseError(SOURCE, url, problem)


def _text(cell) -> str | None:
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    text = str(cell).strip()
    return text or None


def _integer(cell, what: str, excel_row: int, url: str) -> int | None:
    """A whole number from a number or text cell; None for a blank cell."""
    if cell == "" or cell is None:
        return None
    try:
        number = float(cell)
    except (TypeError, ValueError):
        number = None
    if isinstance(cell, bool) or number is None or not number.is_integer():
        raise ParseError(SOURCE, url, f"row {excel_row}: {what} {cell!r} is not a whole number")
    return int(number)


def _year(cell, excel_row: int, url: str) -> int:
    year = _integer(cell, "Year", excel_row, url)
    if year is None or not _YEAR_RANGE[0] <= year <= _YEAR_RANGE[1]:
        raise ParseError(SOURCE, url, f"row {excel_row}: Year {cell!r} is not a year")
    return year


def release_date(body: bytes, url: str) -> date:
    """The release date printed in row 2 of the IAFQ file."""
    return _release(_rows(body, url), url)


def seizures(body: bytes, url: str) -> pa.Table:
    """The IAFQ file as a firearms_seizures table, one row per published row, in file order.

    Raises ParseError for bytes that are not an xlsx workbook, a changed layout (A1, release date, header) or a
    cell that cannot be typed (a Year or VALUE that is not a whole number).
    """
    rows = _rows(body, url)
    released = _release(rows, url)
    _check_header(rows, url)
    width = len(EXPECTED_COLUMNS)
    data = [
        (excel_row, [*row[:width], *[""] * (width - len(row))])
        for excel_row, row in enumerate(rows[_HEADER_ROW:], start=_HEADER_ROW + 1)
        if any(cell != "" for cell in row)
    ]
    columns = {name: [_text(row[i]) for _, row in data] for i, name in enumerate(COLUMN_NAMES.values())}
    year_at, value_at = EXPECTED_COLUMNS.index("Year"), EXPECTED_COLUMNS.index("VALUE")
    columns["year"] = [_year(row[year_at], excel_row, url) for excel_row, row in data]
    columns["value"] = [_integer(row[value_at], "VALUE", excel_row, url) for excel_row, row in data]
    countries = {iso3: by_iso3(iso3) for iso3 in set(columns["iso3"]) if iso3}
    columns["m49"] = [countries[iso3].m49 if countries.get(iso3) else None for iso3 in columns["iso3"]]
    columns["release_date"] = [released] * len(data)
    columns.update(subnational_code=[None] * len(data), is_subnational=[False] * len(data),
                   value_text=[None] * len(data), value_flag=[None] * len(data), is_latest_release=[True] * len(data))
    return pa.table({field.name: columns[field.name] for field in FIREARMS_SEIZURES.schema},
                    schema=FIREARMS_SEIZURES.schema)

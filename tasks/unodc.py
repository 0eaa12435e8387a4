"""The UNODC firearms trafficking (IAFQ) source: release discovery and the bulk file → firearms_seizures.

Upstream: the data report page https://data.unodc.org/datareport/firearm-seizures links the current release at
https://data.unodc.org/sites/dataportal.unodc.org/files/<YYYY-MM>/data_iafq_firearms_trafficking.xlsx (the
month it was uploaded; a re-upload in the same month gets `_0`, `_1`, ...). Configuration and provenance:
sources/iafq.yaml. Feeds firearms_seizures (tasks.tables.FIREARMS_SEIZURES), the IAFQ indicator_revisions and
the arms_seized, arms_found and arms_surrendered columns of the country_year_panel.

The workbook: one sheet; row 1 "UNODC", row 2 the release date (dd/mm/yyyy text, or a date cell), row 3 the
header EXPECTED_COLUMNS, then one row per observation, read as a stream (tasks/xlsx.py). As published:
- Year is a number cell (2022 release) or a text cell (2024); both become an int16.
- VALUE is a number cell, or text: a plain number ("15") is that number; a censored count ("<5") is a null
  value with value_flag "censored"; a formatted count ("1,234") is the number with value_flag "formatted"; any
  other text ("..", "n.a.") is null with value_flag "text"; a fraction is null with "not_integer"; a number
  beyond int64 is null with "out_of_range" (which the suite quarantines). value_text keeps the original text.
- Iso3_code may be a sub-national pseudo-code (GBR_E_W, GBR_NI, GBR_S, IRQ_KRI): iso3 holds the parent state
  (GBR), subnational_code the code as published, is_subnational true; the panel's country totals leave them out.
Parsing functions are pure (bytes in, pyarrow tables out); `IafqSource` adds discovery and release bookkeeping.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import lxml.html
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, HttpUrl

from tasks import hosts, revisions, xlsx
from tasks.countries import by_iso3
from tasks.errors import ParseError, excerpt
from tasks.source import Batch, Client, Notes, Reader, Source, SourceConfig, Staged
from tasks.tables import FIREARMS_SEIZURES, INDICATOR_REVISIONS

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


_HEADER_ROW = 3
_WIDTH = len(EXPECTED_COLUMNS)
_CHUNK = 50_000  # rows typed at a time, so that memory holds one chunk of Python values
_YEAR_RANGE = (1900, 2100)
_INT64_MAX = 2**63 - 1
#: Longest text cell accepted (the longest published label is under 100 characters).
MAX_CELL_CHARS = 1000
_SUBNATIONAL = re.compile(r"([A-Z]{3})_[A-Z0-9]{1,10}(?:_[A-Z0-9]{1,10}){0,4}")
_PLAIN_NUMBER = re.compile(r"[+-]?\d{1,30}(?:\.\d{1,30})?(?:[eE][+-]?\d{1,4})?")
_CENSORED = re.compile(r"(?:<=?|>=?|≤|≥)\s{0,3}\d{1,30}(?:[.,]\d{1,30})?")
_FORMATTED = re.compile(r"\d{1,3}(?:[,\u00a0\u202f ]\d{3}){1,6}")
_EXCEL_EPOCH = date(1899, 12, 30)


def _release(cells: dict[int, xlsx.Cells], url: str) -> date:
    first = cells.get(1, {}).get(0, "")
    if first != "UNODC":
        raise ParseError(SOURCE, url, f"cell A1 is {excerpt(first or None)}, expected 'UNODC'")
    cell = cells.get(2, {}).get(0, "")
    if isinstance(cell, float) and cell.is_integer() and 0 < cell < 100_000:  # a date cell: an Excel serial day
        return _EXCEL_EPOCH + timedelta(days=int(cell))
    try:
        return datetime.strptime(str(cell).strip(), "%d/%m/%Y").date()
    except ValueError:
        raise ParseError(SOURCE, url, f"cell A2 is {excerpt(cell)}, expected the release date as dd/mm/yyyy") from None


def _check_header(cells: xlsx.Cells, url: str) -> None:
    header = [str(cells.get(at, "")).strip() for at in range(max(cells, default=-1) + 1)]
    while header and header[-1] == "":
        header.pop()
    if tuple(header) == EXPECTED_COLUMNS:
        return
    missing = [c for c in EXPECTED_COLUMNS if c not in header]
    unexpected = [c for c in header if c and c not in EXPECTED_COLUMNS]
    problem = f"row {_HEADER_ROW} header changed (schema drift): "
    if missing or unexpected:
        problem += f"missing columns {missing}, unexpected columns {excerpt(unexpected, 200)}"
    else:
        problem += f"columns reordered or repeated: {excerpt(header, 200)}"
    raise ParseError(SOURCE, url, problem)


def _text(cell, excel_row: int, url: str) -> str | None:
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    text = str(cell).strip()
    if len(text) > MAX_CELL_CHARS:
        raise ParseError(SOURCE, url, f"row {excel_row}: a cell of {len(text)} characters, over the "
                                      f"{MAX_CELL_CHARS}-character cap: {excerpt(text, 40)}")
    return text or None


def _whole(cell, what: str, excel_row: int, url: str) -> int | None:
    """A whole number from a number or plain-number text cell; None for a blank cell."""
    if cell == "" or cell is None:
        return None
    text = str(cell).strip()
    number = float(text) if isinstance(cell, float) or _PLAIN_NUMBER.fullmatch(text) else None
    if isinstance(cell, bool) or number is None or not number.is_integer():
        raise ParseError(SOURCE, url, f"row {excel_row}: {what} {excerpt(cell)} is not a whole number")
    return int(number)


def _year(cell, excel_row: int, url: str) -> int:
    year = _whole(cell, "Year", excel_row, url)
    if year is None or not _YEAR_RANGE[0] <= year <= _YEAR_RANGE[1]:
        raise ParseError(SOURCE, url, f"row {excel_row}: Year {excerpt(cell)} is not a year")
    return year


def value_cell(cell) -> tuple[int | None, str | None, str | None]:
    """(value, value_text, value_flag) of a VALUE cell; see the module docstring for the flags."""
    if cell == "" or cell is None:
        return None, None, None
    if isinstance(cell, bool):
        return None, str(cell), "text"
    text = None if isinstance(cell, float) else cell.strip()
    if text is not None and not _PLAIN_NUMBER.fullmatch(text):
        if _CENSORED.fullmatch(text):
            return None, text, "censored"
        if _FORMATTED.fullmatch(text):
            return int(re.sub(r"\D", "", text)), text, "formatted"
        return None, text, "text"
    number = float(cell if text is None else text)
    original = text if text is not None else repr(cell)
    if not math.isfinite(number) or abs(number) > _INT64_MAX:
        return None, original, "out_of_range"
    if not number.is_integer():
        return None, original, "not_integer"
    return int(number), None, None


def _iso3(cell: str | None) -> tuple[str | None, str | None]:
    """(iso3, subnational_code): a sub-national pseudo-code GBR_E_W keeps its parent GBR as iso3."""
    match = _SUBNATIONAL.fullmatch(cell or "")
    return (match.group(1), cell) if match else (cell, None)


def release_date(body: bytes, url: str, limits: xlsx.Limits = xlsx.Limits()) -> date:
    """The release date printed in row 2 of the IAFQ file."""
    head = {}
    for number, cells in xlsx.rows(body, SOURCE, url, limits):
        if number > 2:
            break
        head[number] = cells
    return _release(head, url)


def _chunk_table(data: list[tuple[int, xlsx.Cells]], released: date, url: str) -> pa.Table:
    names = list(COLUMN_NAMES.values())
    columns = {name: [_text(row.get(i, ""), n, url) for n, row in data] for i, name in enumerate(names)
               if name not in ("year", "value")}
    year_at, value_at = EXPECTED_COLUMNS.index("Year"), EXPECTED_COLUMNS.index("VALUE")
    columns["year"] = [_year(row.get(year_at, ""), n, url) for n, row in data]
    cells = [(n, row.get(value_at, "")) for n, row in data]
    values = [value_cell(_text(cell, n, url) or "" if isinstance(cell, str) else cell) for n, cell in cells]
    for at, name in enumerate(("value", "value_text", "value_flag")):
        columns[name] = [value[at] for value in values]
    codes = [_iso3(code) for code in columns["iso3"]]
    columns["iso3"] = [iso3 for iso3, _ in codes]
    columns["subnational_code"] = [code for _, code in codes]
    columns["is_subnational"] = [code is not None for _, code in codes]
    countries = {iso3: by_iso3(iso3) for iso3 in set(columns["iso3"]) if iso3}
    columns["m49"] = [countries[iso3].m49 if countries.get(iso3) else None for iso3 in columns["iso3"]]
    columns["release_date"] = [released] * len(data)
    columns["is_latest_release"] = [True] * len(data)
    return pa.table({field.name: columns[field.name] for field in FIREARMS_SEIZURES.schema},
                    schema=FIREARMS_SEIZURES.schema)


def _checked_head(head: dict[int, xlsx.Cells], url: str) -> date:
    """The release date of rows 1-2, after checking the header in row 3."""
    released = _release(head, url)
    _check_header(head.get(_HEADER_ROW, {}), url)
    return released


def seizures(body: bytes, url: str, limits: xlsx.Limits = xlsx.Limits()) -> pa.Table:
    """The IAFQ file as a firearms_seizures table, one row per published row, in file order, flagged as the
    latest release (IafqSource.relate corrects the flag against the other releases).

    Raises ParseError for a workbook over `limits`, bytes that are not an xlsx workbook, a changed layout (A1,
    release date, header) or a Year that is not a whole number. Memory: one chunk of rows plus the result.
    """
    head: dict[int, xlsx.Cells] = {}
    chunks, data, released = [], [], None
    for number, cells in xlsx.rows(body, SOURCE, url, limits):
        if number <= _HEADER_ROW:
            head[number] = cells
            continue
        released = released or _checked_head(head, url)
        if any(cell != "" for cell in cells.values()):
            if len(cells) > _WIDTH:  # cells right of the header are not read: a chunk holds 13 cells a row at most
                cells = {at: cells[at] for at in range(_WIDTH) if at in cells}
            data.append((number, cells))
        if len(data) == _CHUNK:
            chunks.append(_chunk_table(data, released, url))
            data = []
    chunks.append(_chunk_table(data, released or _checked_head(head, url), url))
    return pa.concat_tables(chunks)


def release_links(html: bytes, page_url: str, file_name: str,
                  allowed: frozenset[str] | None = None) -> tuple[list[str], list[str]]:
    """IAFQ workbook URLs linked from a data report page: `/files/YYYY-MM/<file_name>.xlsx` or a same-month
    re-upload `<file_name>_0.xlsx`, `_1`, ...; absolute, deduplicated, oldest first (by month, then revision).
    Only the newest upload of each month is kept: a re-upload replaces the file of the same month. Links the
    origins `allowed` do not allow (tasks/hosts.py: credentials, another scheme or host) are not releases: the
    second list says why each distinct one was refused."""
    try:
        document = lxml.html.document_fromstring(html, base_url=page_url)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ParseError(SOURCE, page_url, f"data report page is not readable HTML: {exc}") from None
    newest: dict[str, tuple[int, str]] = {}
    refused: dict[str, str] = {}
    for _, _, link, _ in document.iterlinks():  # a, area, link, iframe, ... wherever the page puts its links
        url = urljoin(page_url, link.strip()).split("#")[0]
        if not (upload := _upload(url, re.escape(file_name))):
            continue
        if why := hosts.refusal(url, allowed):
            refused.setdefault(url, why)
        elif upload[1] >= newest.get(upload[0], (-2, ""))[0]:
            newest[upload[0]] = (upload[1], url)
    return [url for _, (_, url) in sorted(newest.items())], list(refused.values())


def _order(url: str) -> tuple:
    """Sort key of release URLs: oldest upload first (month, then revision), then the URL."""
    return _upload(url) or ("", -1), url


def refusals(refused: list[str], shown: int = 3) -> str:
    """One message for the links of a page that were refused: how many, and the first `shown` reasons."""
    more = f"; and {len(refused) - shown} more" if len(refused) > shown else ""
    return f"{len(refused)} linked release(s) refused, not fetched: {'; '.join(refused[:shown])}{more}"


def _upload(url: str, file_name: str = r"[^/]*?") -> tuple[str, int] | None:
    """(month, revision) of an IAFQ upload `/files/YYYY-MM/<file_name>[_N].xlsx` (a regex; revision -1 without
    `_N`); None for any other URL."""
    match = re.search(rf"/files/(\d{{4}}-\d{{2}})/{file_name}(?:_(\d{{1,3}}))?\.xlsx$", urlsplit(url).path)
    return (match.group(1), -1 if match.group(2) is None else int(match.group(2))) if match else None


class IafqConfig(SourceConfig):
    """sources/iafq.yaml: where releases are found and which are pinned."""

    report_pages: list[HttpUrl] = Field(default_factory=list, description="data report pages linking releases")
    file_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="workbook name without .xlsx")
    releases: list[HttpUrl] = Field(default_factory=list, description="releases pinned or added by hand")
    max_uncompressed_bytes: int = Field(default=xlsx.Limits.max_uncompressed_bytes, gt=0)
    max_compression_ratio: float = Field(default=xlsx.Limits.max_compression_ratio, gt=1)
    max_releases: int = Field(default=20, gt=0, description="newest releases discovered per run, at most")
    max_page_bytes: int = Field(default=8 * 1024 * 1024, gt=0, description="bytes of a report page read, at most")


class IafqSource(Source):
    """One batch per IAFQ release, keyed by the release date printed in the workbook."""

    name = "iafq"
    config_model = IafqConfig
    kind = "xlsx"
    tables = (FIREARMS_SEIZURES,)
    derived_tables = (FIREARMS_SEIZURES, INDICATOR_REVISIONS)

    @property
    def limits(self) -> xlsx.Limits:
        return xlsx.Limits(max_uncompressed_bytes=self.config.max_uncompressed_bytes,
                           max_compression_ratio=self.config.max_compression_ratio)

    def batches(self, client: Client) -> tuple[list[Batch], dict[str, str]]:
        """The configured releases plus the newest `max_releases` linked from the report pages (each page read up
        to `max_page_bytes`), oldest upload first. A page that cannot be read is an error of its own (the other
        releases still run); so are its links that the source's hosts do not allow, named once per page."""
        found, errors = set(), {}
        for page in self.config.report_pages:
            try:
                response = client.get(str(page), "html", max_bytes=self.config.max_page_bytes)
                links, refused = release_links(response.body, response.url, self.config.file_name, self.allowed)
            except (ParseError, *client.errors) as exc:
                errors[f"report page {page}"] = str(exc)
                continue
            found.update(links)
            if refused:
                errors[f"report page {page} links"] = str(ParseError(SOURCE, str(page), refusals(refused)))
        newest = sorted(found, key=_order)[-self.config.max_releases:]
        urls = {str(u) for u in self.config.releases} | set(newest)
        return [Batch(hosts.redact(url), (url,)) for url in sorted(urls, key=_order)], errors  # named without secrets

    def parse(self, batch: Batch, responses) -> tuple[str, dict]:
        (response,) = responses
        table = seizures(response.body, response.url, self.limits)
        released = (table["release_date"][0].as_py() if table.num_rows
                    else release_date(response.body, response.url, self.limits))
        return released.isoformat(), {FIREARMS_SEIZURES: table}

    def relate(self, staged: Staged, reader: Reader) -> tuple[Staged, Notes]:
        """Flag the newest release (staged or published) as the latest; note published releases no longer found."""
        published = set(reader.batches(FIREARMS_SEIZURES))  # keyed by release date, as parse keys them
        latest = max(published | set(staged), default=None)
        relabelled = {key: {FIREARMS_SEIZURES: _flagged(tables[FIREARMS_SEIZURES], key == latest)}
                      for key, tables in staged.items()}
        note = "not among the releases read this run (no longer linked upstream, or failed above); kept as published"
        notes = {key: note for key in sorted(published - set(staged))}
        return relabelled, notes

    def derive(self, reader: Reader, before: Staged, published: set[str]) -> list[tuple[tuple, Staged]]:
        """The latest flag settled on what is now published (an older release is republished with false once a
        newer one is published), then the revisions between every consecutive pair of releases."""
        current = reader.read(FIREARMS_SEIZURES)
        keys = sorted({d.isoformat() for d in current["release_date"].to_pylist()})
        flags = {}
        for key in keys:
            batch = current.filter(pc.equal(current["release_date"], pa.scalar(date.fromisoformat(key))))
            should = key == keys[-1]
            if pc.any(pc.not_equal(batch["is_latest_release"], should)).as_py():
                flags[key] = {FIREARMS_SEIZURES: _flagged(batch, should)}
        groups = [((FIREARMS_SEIZURES,), flags)] if flags else []
        history = revisions.release_pairs_revisions(current)
        if history is not None:
            groups.append(((INDICATOR_REVISIONS,), {FIREARMS_SEIZURES.name: {INDICATOR_REVISIONS: history}}))
        return groups


def _flagged(table: pa.Table, latest: bool) -> pa.Table:
    at = table.schema.get_field_index("is_latest_release")
    return table.set_column(at, table.schema.field(at), pa.array([latest] * table.num_rows, pa.bool_()))

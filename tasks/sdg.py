"""Parse UN SDG Global Database API pages into indicator_observations.

Upstream: https://unstats.un.org/sdgapi/v1/sdg — `GET /Series/Data?seriesCode=…&page=N&pageSize=M` (paged
observations: size, totalElements, totalPages, pageNumber, data[]) and `GET /Indicator/{code}/Series/List`
(series[].release). Configuration and provenance: sources/sdg.yaml (one entry per series). Feeds
indicator_observations (tasks.tables.INDICATOR_OBSERVATIONS), the SDG indicator_revisions and, through them, the
arms_traced_pct and homicide_rate columns of the country_year_panel.

As published now: a Series/List may name a series under several releases: the newest is taken (releases such
as 2026.Q3.G.01 compare field by field, numbers as numbers) and then every data page is pinned to it with
`releaseCode`. With a single release the pages are requested without it (the API serves that release), which
keeps the recorded mirror URLs valid. A page without `totalPages` gets it from `totalElements` and `size`.
Bounds, checked before or while parsing (`Limits`): page bytes, JSON depth, digits of a number, a non-finite
number, and the page count (what totalElements and size imply, and a configured maximum), so a page announcing
3,000 or 10^9 pages fetches nothing more. Parsing functions are pure (bytes in, pyarrow tables out).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, HttpUrl, StrictInt, StrictStr, field_validator

from tasks import revisions
from tasks.catalog import Strict
from tasks.countries import by_m49
from tasks.errors import ParseError, excerpt
from tasks.source import Batch, Client, Reader, Source, SourceConfig, Staged
from tasks.tables import INDICATOR_OBSERVATIONS, INDICATOR_REVISIONS

SOURCE = "sdg"
BASE = "https://unstats.un.org/sdgapi/v1/sdg"

#: Cell texts the API uses for "no value"; they become null.
NO_VALUE = frozenset({"", "nan", "na", "n/a", "null", "none"})

_PAGE_KEYS = ("totalElements", "pageNumber", "data")
_INT16 = (-(2**15), 2**15 - 1)
_CHUNK = 5_000  # observations typed at a time


@dataclass(frozen=True)
class Limits:
    """Bounds on what one API response may be before it is parsed or trusted."""

    max_page_bytes: int = 16 * 1024 * 1024
    max_json_depth: int = 32
    max_number_chars: int = 40
    max_pages: int = 500
    #: All pages of one series together: fetched while within it, parsed only within it.
    max_series_bytes: int = 128 * 1024 * 1024


def series_data_url(base: str, series: str, page: int, page_size: int, release: str | None = None) -> str:
    """URL of one page of a series' observations, pinned to `release` when given."""
    pinned = f"&releaseCode={quote(release, safe='')}" if release else ""
    return f"{base}/Series/Data?seriesCode={series}&page={page}&pageSize={page_size}{pinned}"


def series_list_url(base: str, indicator: str) -> str:
    """URL of the list of series of an indicator, which carries each series' release."""
    return f"{base}/Indicator/{indicator}/Series/List"


def _number(limits: Limits, url: str, kind):
    def parse(text: str):
        if len(text) > limits.max_number_chars:
            raise ParseError(SOURCE, url, f"a JSON number of {len(text)} characters, over the "
                                          f"{limits.max_number_chars}-character cap: {text[:20]}...")
        value = kind(text)
        if kind is float and not math.isfinite(value):
            raise ParseError(SOURCE, url, f"JSON number {text} is out of range")
        return value
    return parse


def _reject_constant(url: str):
    def parse(name: str):
        raise ParseError(SOURCE, url, f"JSON constant {name} is not a number")
    return parse


def _depth(doc) -> int:
    """Nesting depth of a parsed JSON document, without recursion."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _json(body: bytes, url: str, limits: Limits = Limits()):
    if len(body) > limits.max_page_bytes:
        raise ParseError(SOURCE, url, f"response of {len(body)} bytes, over the {limits.max_page_bytes}-byte cap")
    try:
        doc = json.loads(body, parse_int=_number(limits, url, int), parse_float=_number(limits, url, float),
                         parse_constant=_reject_constant(url))
    except RecursionError:
        raise ParseError(SOURCE, url, "JSON nested too deeply to parse") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(SOURCE, url, f"response is not JSON ({exc}); starts with {excerpt(body)}") from exc
    if _depth(doc) > limits.max_json_depth:
        raise ParseError(SOURCE, url, f"JSON nested {_depth(doc)} levels deep, over the {limits.max_json_depth}-level "
                                      "cap")
    return doc


def _count(doc: dict, key: str, url: str) -> int:
    if not isinstance(doc[key], int) or isinstance(doc[key], bool) or doc[key] < 0:
        raise ParseError(SOURCE, url, f"{key} is {excerpt(doc[key])}, expected a non-negative integer")
    return doc[key]


def parse_page(body: bytes, url: str, page_size: int | None = None, limits: Limits = Limits()) -> dict:
    """The paging fields and the observations of one Series/Data page.

    total_pages is what totalElements and the page size (`size`, else the `page_size` requested) imply; a
    `totalPages` that says otherwise, or more pages than limits.max_pages, is a ParseError."""
    doc = _json(body, url, limits)
    if not isinstance(doc, dict):
        raise ParseError(SOURCE, url, f"expected a JSON object, got {type(doc).__name__}")
    missing = [key for key in _PAGE_KEYS if key not in doc]
    if missing:
        raise ParseError(SOURCE, url, f"page lacks {', '.join(missing)}; keys present: {excerpt(sorted(doc), 200)}")
    total_elements, page_number = _count(doc, "totalElements", url), _count(doc, "pageNumber", url)
    if not isinstance(doc["data"], list):
        raise ParseError(SOURCE, url, f"data is {type(doc['data']).__name__}, expected a list")
    size = _count(doc, "size", url) if doc.get("size") is not None else page_size
    if not size:
        raise ParseError(SOURCE, url, "page gives no size (page size) and none was requested")
    implied = -(-total_elements // size)
    stated = _count(doc, "totalPages", url) if doc.get("totalPages") is not None else implied
    if stated != implied:
        raise ParseError(SOURCE, url, f"totalPages is {stated} but totalElements {total_elements} in pages of "
                                      f"{size} make {implied}")
    if implied > limits.max_pages:
        raise ParseError(SOURCE, url, f"{implied} pages ({total_elements} observations in pages of {size}), over "
                                      f"the {limits.max_pages}-page cap")
    return {"total_elements": total_elements, "total_pages": implied, "page_number": page_number,
            "data": doc["data"]}


def release_key(release: str) -> tuple:
    """Order of SDG releases: numbers as numbers, text as text (2026.Q3.G.01 after 2026.Q2.G.02 and 2025.Q4.G.01)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", release))


def releases_for(body: bytes, url: str, series: str, limits: Limits = Limits()) -> list[str]:
    """Every release an Indicator/{code}/Series/List response names for `series`, newest first."""
    doc = _json(body, url, limits)
    indicators = doc if isinstance(doc, list) else [doc]
    found = [
        entry.get("release")
        for indicator in indicators if isinstance(indicator, dict)
        for entry in indicator.get("series") or [] if isinstance(entry, dict) and entry.get("code") == series
    ]
    if not found:
        raise ParseError(SOURCE, url, f"series {series} is not listed")
    bad = [release for release in found if not isinstance(release, str) or not release.strip()]
    if bad:
        raise ParseError(SOURCE, url, f"series {series} has no release ({excerpt(bad[0])})")
    return sorted({release.strip() for release in found}, key=release_key, reverse=True)


def release_for(body: bytes, url: str, series: str, limits: Limits = Limits()) -> str:
    """The newest release (e.g. 2026.Q3.G.01) an Indicator/{code}/Series/List response gives for `series`."""
    return releases_for(body, url, series, limits)[0]


def _m49(code, url: str) -> int:
    try:
        m49 = int(str(code).strip())
    except ValueError:
        raise ParseError(SOURCE, url, f"geoAreaCode {excerpt(code)} is not an integer") from None
    if not 0 < m49 <= _INT16[1]:
        raise ParseError(SOURCE, url, f"geoAreaCode {excerpt(code)} is not an M49 code")
    return m49


def _year(start, url: str) -> int:
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not float(start).is_integer():
        raise ParseError(SOURCE, url, f"timePeriodStart {excerpt(start)} is not a whole year")
    if not _INT16[0] <= start <= _INT16[1]:
        raise ParseError(SOURCE, url, f"timePeriodStart {excerpt(start)} is out of range")
    return int(start)


def _value(value, url: str) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().casefold() in NO_VALUE):
        return None
    if isinstance(value, bool):
        raise ParseError(SOURCE, url, f"value {excerpt(value)} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParseError(SOURCE, url, f"value {excerpt(value)} is not a number") from None
    return None if math.isnan(number) else number  # infinities stay, for the suite to quarantine


def _footnotes(footnotes, url: str) -> list[str]:
    if footnotes is None:
        return []
    if not isinstance(footnotes, list) or not all(isinstance(f, str) for f in footnotes):
        raise ParseError(SOURCE, url, f"footnotes {excerpt(footnotes)} is not a list of strings")
    return [f for f in footnotes if f.strip()]


def _mapping(observation: dict, key: str, url: str) -> dict:
    value = observation.get(key) or {}
    if not isinstance(value, dict):
        raise ParseError(SOURCE, url, f"{key} {excerpt(value)} is not an object")
    return value


def _row(observation, url: str, release: str, fetched_at: datetime) -> dict:
    if not isinstance(observation, dict):
        raise ParseError(SOURCE, url, f"observation {excerpt(observation)} is not an object")
    missing = [k for k in ("series", "geoAreaCode", "timePeriodStart", "value") if k not in observation]
    if missing:
        raise ParseError(SOURCE, url, f"observation lacks {', '.join(missing)}: {excerpt(observation, 200)}")
    if not isinstance(observation["series"], str) or not observation["series"]:
        raise ParseError(SOURCE, url, f"series {excerpt(observation['series'])} is not a series code")
    m49 = _m49(observation["geoAreaCode"], url)
    country = by_m49(m49)
    dimensions = _mapping(observation, "dimensions", url)
    attributes = _mapping(observation, "attributes", url)
    indicators = observation.get("indicator") or []
    return {
        "series": observation["series"],
        "indicator": ", ".join(indicators) if isinstance(indicators, list) else str(indicators),
        "series_description": observation.get("seriesDescription"),
        "release": release,
        "m49": m49,
        "iso3": country.iso3 if country else None,
        "geo_name": observation.get("geoAreaName"),
        "is_country": country is not None,
        "year": _year(observation["timePeriodStart"], url),
        "value": _value(observation["value"], url),
        "units": attributes.get("Units"),
        "nature": attributes.get("Nature"),
        "source": observation.get("source"),
        "reporting_type": dimensions.get("Reporting Type"),
        "sex": dimensions.get("Sex"),
        "dimensions": list(dimensions.items()),
        "footnotes": _footnotes(observation.get("footnotes"), url),
        "fetched_at": fetched_at,
        "is_latest_release": True,
    }


def _page_rows(data: list, url: str, release: str, fetched_at: datetime) -> pa.Table:
    """One page's observations as indicator_observations rows, typed _CHUNK at a time (a Python dict per
    observation costs about 25 times its JSON)."""
    chunks = [pa.Table.from_pylist([_row(o, url, release, fetched_at) for o in data[at:at + _CHUNK]],
                                   schema=INDICATOR_OBSERVATIONS.schema) for at in range(0, len(data), _CHUNK)]
    return pa.concat_tables(chunks) if chunks else INDICATOR_OBSERVATIONS.schema.empty_table()


def within_budget(pages: list[tuple[str, bytes]], limits: Limits) -> None:
    """ParseError when the pages of one series hold more bytes than limits.max_series_bytes."""
    total = sum(len(body) for _, body in pages)
    if total > limits.max_series_bytes:
        raise ParseError(SOURCE, pages[0][0], f"{len(pages)} pages hold {total} bytes, over the "
                                              f"{limits.max_series_bytes}-byte budget per series (max_series_bytes)")


def observations(pages: list[tuple[str, bytes]], release: str, fetched_at: datetime, page_size: int | None = None,
                 limits: Limits = Limits()) -> pa.Table:
    """All pages of one series, as (url, body) pairs in any order, as an indicator_observations table in page order
    (the series holds one release, so every row is flagged as the latest release). Pages are parsed one at a time,
    each released once its rows are typed, and together they must stay within limits.max_series_bytes.

    Raises ParseError when the pages are over the budget, when a page is missing or repeated, when the pages
    disagree on the totals, when the row count differs from totalElements, when the pages mix series, or when a
    cell cannot be typed.
    """
    if not pages:
        raise ValueError("observations() needs at least the first page")
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware")
    within_budget(pages, limits)
    fetched_at = fetched_at.astimezone(timezone.utc)
    first_url, first, numbered = pages[0][0], None, []
    for url, body in pages:
        page = parse_page(body, url, page_size, limits)
        first = first or page
        for key in ("total_elements", "total_pages"):
            if page[key] != first[key]:
                raise ParseError(SOURCE, url, f"{key} is {page[key]} but {first_url} says {first[key]}: "
                                              "the series changed while it was being paged")
        numbered.append((page["page_number"], _page_rows(page["data"], url, release, fetched_at)))
        del page  # the parsed page goes before the next one is parsed
    numbers = sorted(number for number, _ in numbered)
    expected = list(range(1, max(first["total_pages"], 1) + 1))
    if numbers != expected:
        missing = sorted(set(expected) - set(numbers))
        extra = sorted(n for n in set(numbers) if numbers.count(n) > 1 or n not in expected)
        raise ParseError(SOURCE, first_url, f"expected pages 1..{first['total_pages']}, got {excerpt(numbers, 200)}"
                                            f" (missing {excerpt(missing)}, duplicate or unexpected {excerpt(extra)})")
    table = pa.concat_tables([rows for _, rows in sorted(numbered, key=lambda item: item[0])])
    if table.num_rows != first["total_elements"]:
        raise ParseError(SOURCE, first_url, f"totalElements is {first['total_elements']} but the "
                                            f"{len(pages)} pages hold {table.num_rows} observations")
    series = pc.unique(table["series"]).to_pylist()
    if len(series) > 1:
        raise ParseError(SOURCE, first_url, f"pages mix several series: {excerpt(sorted(series))}")
    return table


class PanelColumn(Strict):
    """A country_year_panel column fed by a series: the dimensions an observation must carry, and its meaning."""

    dimensions: dict[StrictStr, StrictStr] = Field(min_length=1)
    doc: StrictStr = Field(min_length=1)


class SeriesEntry(Strict):
    """One SDG series: `code`, the `indicator` whose Series/List carries its release, rows per page, and the
    panel columns it feeds (column name -> PanelColumn)."""

    code: StrictStr = Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")
    indicator: StrictStr = Field(pattern=r"^\d{1,2}\.[a-z0-9]{1,2}\.\d{1,2}$")
    page_size: StrictInt = Field(gt=0, le=10_000)
    panel: dict[Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")], PanelColumn] = Field(
        default_factory=dict)


class SdgConfig(SourceConfig):
    """sources/sdg.yaml: the API base, the series followed, and the bounds on what a response may be."""

    base: HttpUrl = Field(strict=False)
    series: list[SeriesEntry] = Field(min_length=1)
    max_pages: StrictInt = Field(default=Limits.max_pages, gt=0)
    max_page_bytes: StrictInt = Field(default=Limits.max_page_bytes, gt=0)
    max_json_depth: StrictInt = Field(default=Limits.max_json_depth, gt=2)
    max_number_chars: StrictInt = Field(default=Limits.max_number_chars, gt=0)
    max_series_bytes: StrictInt = Field(default=Limits.max_series_bytes, gt=0)

    @field_validator("series")
    @classmethod
    def _unique_codes(cls, series: list[SeriesEntry]) -> list[SeriesEntry]:
        for what, names in (("series", [s.code for s in series]),
                            ("panel columns", [c for s in series for c in s.panel])):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{what} listed twice: {repeated}")
        return series


class SdgSource(Source):
    """One batch per series: its Series/List (for the release), then every data page."""

    name = "sdg"
    config_model = SdgConfig
    kind = "json"
    tables = (INDICATOR_OBSERVATIONS,)
    derived_tables = (INDICATOR_REVISIONS,)

    @property
    def base(self) -> str:
        return str(self.config.base).rstrip("/")

    @property
    def limits(self) -> Limits:
        c = self.config
        return Limits(c.max_page_bytes, c.max_json_depth, c.max_number_chars, c.max_pages, c.max_series_bytes)

    def panel_columns(self) -> dict[str, tuple[str, dict[str, str], str]]:
        """Panel column -> (series, dimensions an observation must carry, meaning), in configuration order."""
        return {column: (s.code, dict(spec.dimensions), spec.doc)
                for s in self.config.series for column, spec in s.panel.items()}

    def _series(self, code: str) -> SeriesEntry:
        return next(s for s in self.config.series if s.code == code)

    def batches(self, client: Client) -> tuple[list[Batch], dict[str, str]]:
        return [Batch(s.code, (series_list_url(self.base, s.indicator),)) for s in self.config.series], {}

    def fetch(self, batch: Batch, client: Client):
        """The Series/List, then page 1 (pinned to the newest release when several are listed), then the other
        pages page 1 implies, concurrently in groups that fit what is left of the series' byte budget even if every
        page were as large as a page may be; past the budget nothing more is fetched (ParseError)."""
        series, limits = self._series(batch.name), self.limits
        (listing,) = client.get_all(list(batch.urls), self.kind)
        listed = releases_for(listing.body, listing.url, series.code, limits)
        pin = listed[0] if len(listed) > 1 else None
        pages = [client.get(series_data_url(self.base, series.code, 1, series.page_size, pin), self.kind)]
        total = parse_page(pages[0].body, pages[0].url, series.page_size, limits)["total_pages"]
        urls = [series_data_url(self.base, series.code, n, series.page_size, pin) for n in range(2, total + 1)]
        while True:
            within_budget([(r.url, r.body) for r in pages], limits)
            if not urls:
                return [listing, *pages]
            room = max(1, (limits.max_series_bytes - sum(len(r.body) for r in pages)) // limits.max_page_bytes)
            pages += client.get_all(urls[:room], self.kind)
            urls = urls[room:]

    def parse(self, batch: Batch, responses) -> tuple[str, dict]:
        series = self._series(batch.name)
        listing, first, *_ = responses
        release = release_for(listing.body, listing.url, series.code, self.limits)
        table = observations([(r.url, r.body) for r in responses[1:]], release, first.fetched_at, series.page_size,
                             self.limits)
        return series.code, {INDICATOR_OBSERVATIONS: table}

    def derive(self, reader: Reader, before: Staged, published: set[str]):
        """Each series published with a new release: its revision history gains the old -> new pair."""
        staged = {}
        for code in sorted(published & set(before)):
            old, new = before[code].get(INDICATOR_OBSERVATIONS), reader.read_batch(INDICATOR_OBSERVATIONS, code)
            if old is not None and new is not None:
                history = revisions.series_revisions(code, old, new, reader.read_batch(INDICATOR_REVISIONS, code))
                if history is not None:
                    staged[code] = {INDICATOR_REVISIONS: history}
        return [((INDICATOR_REVISIONS,), staged)] if staged else []

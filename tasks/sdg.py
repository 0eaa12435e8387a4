"""Parse UN SDG Global Database API pages into indicator_observations.

Upstream: https://unstats.un.org/sdgapi/v1/sdg — `GET /Series/Data?seriesCode=…&page=N&pageSize=M` (paged
observations: size, totalElements, totalPages, pageNumber, data[]) and `GET /Indicator/{code}/Series/List`
(series[].release). Feeds indicator_observations (tasks.tables.INDICATOR_OBSERVATIONS) and, through it, the
arms_traced_pct and homicide_rate columns of the country_year_panel. Pure: bytes in, pyarrow tables out.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pyarrow as pa

from tasks.countries import by_m49
from tasks.errors import ParseError
from tasks.tables import INDICATOR_OBSERVATIONS

SOURCE = "sdg"
BASE = "https://unstats.un.org/sdgapi/v1/sdg"

#: Cell texts the API uses for "no value"; they become null.
NO_VALUE = frozenset({"", "nan", "na", "n/a", "null", "none"})

_PAGE_KEYS = ("totalElements", "totalPages", "pageNumber", "data")
_INT16 = (-(2**15), 2**15 - 1)


def series_data_url(base: str, series: str, page: int, page_size: int) -> str:
    """URL of one page of a series' observations."""
    return f"{base}/Series/Data?seriesCode={series}&page={page}&pageSize={page_size}"


def series_list_url(base: str, indicator: str) -> str:
    """URL of the list of series of an indicator, which carries each series' release."""
    return f"{base}/Indicator/{indicator}/Series/List"


def _json(body: bytes, url: str):
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(SOURCE, url, f"response is not JSON ({exc}); starts with {body[:60]!r}") from exc


def parse_page(body: bytes, url: str) -> dict:
    """The paging fields and the observations of one Series/Data page."""
    doc = _json(body, url)
    if not isinstance(doc, dict):
        raise ParseError(SOURCE, url, f"expected a JSON object, got {type(doc).__name__}")
    missing = [key for key in _PAGE_KEYS if key not in doc]
    if missing:
        raise ParseError(SOURCE, url, f"page lacks {', '.join(missing)}; keys present: {', '.join(sorted(doc))}")
    for key in _PAGE_KEYS[:3]:
        if not isinstance(doc[key], int) or isinstance(doc[key], bool) or doc[key] < 0:
            raise ParseError(SOURCE, url, f"{key} is {doc[key]!r}, expected a non-negative integer")
    if not isinstance(doc["data"], list):
        raise ParseError(SOURCE, url, f"data is {type(doc['data']).__name__}, expected a list")
    return {
        "total_elements": doc["totalElements"],
        "total_pages": doc["totalPages"],
        "page_number": doc["pageNumber"],
        "data": doc["data"],
    }


def release_for(body: bytes, url: str, series: str) -> str:
    """The release (e.g. 2026.Q3.G.01) that an Indicator/{code}/Series/List response gives for `series`."""
    doc = _json(body, url)
    indicators = doc if isinstance(doc, list) else [doc]
    found = [
        entry.get("release")
        for indicator in indicators if isinstance(indicator, dict)
        for entry in indicator.get("series") or [] if isinstance(entry, dict) and entry.get("code") == series
    ]
    if not found:
        raise ParseError(SOURCE, url, f"series {series} is not listed")
    if len(set(found)) > 1:
        raise ParseError(SOURCE, url, f"series {series} is listed with several releases: {sorted(set(found))}")
    if not isinstance(found[0], str) or not found[0].strip():
        raise ParseError(SOURCE, url, f"series {series} has no release ({found[0]!r})")
    return found[0].strip()


def _checked_pages(pages: list[tuple[str, bytes]]) -> list[tuple[str, dict]]:
    """Pages parsed and ordered, after checking they are pages 1..totalPages of one listing, each exactly once."""
    if not pages:
        raise ValueError("observations() needs at least the first page")
    parsed = sorted(((url, parse_page(body, url)) for url, body in pages), key=lambda p: p[1]["page_number"])
    first_url, first = parsed[0]
    for url, page in parsed:
        for key in ("total_elements", "total_pages"):
            if page[key] != first[key]:
                raise ParseError(SOURCE, url, f"{key} is {page[key]} but {first_url} says {first[key]}: "
                                              "the series changed while it was being paged")
    numbers = [page["page_number"] for _, page in parsed]
    expected = list(range(1, max(first["total_pages"], 1) + 1))
    if numbers != expected:
        missing = sorted(set(expected) - set(numbers))
        extra = sorted(n for n in set(numbers) if numbers.count(n) > 1 or n not in expected)
        raise ParseError(SOURCE, first_url, f"expected pages 1..{first['total_pages']}, got {numbers}"
                                            f" (missing {missing}, duplicate or unexpected {extra})")
    rows = sum(len(page["data"]) for _, page in parsed)
    if rows != first["total_elements"]:
        raise ParseError(SOURCE, first_url, f"totalElements is {first['total_elements']} but the "
                                            f"{len(parsed)} pages hold {rows} observations")
    return parsed


def _m49(code, url: str) -> int:
    try:
        m49 = int(str(code).strip())
    except ValueError:
        raise ParseError(SOURCE, url, f"geoAreaCode {code!r} is not an integer") from None
    if not 0 < m49 <= _INT16[1]:
        raise ParseError(SOURCE, url, f"geoAreaCode {code!r} is not an M49 code")
    return m49


def _year(start, url: str) -> int:
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not float(start).is_integer():
        raise ParseError(SOURCE, url, f"timePeriodStart {start!r} is not a whole year")
    if not _INT16[0] <= start <= _INT16[1]:
        raise ParseError(SOURCE, url, f"timePeriodStart {start!r} is out of range")
    return int(start)


def _value(value, url: str) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().casefold() in NO_VALUE):
        return None
    if isinstance(value, bool):
        raise ParseError(SOURCE, url, f"value {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParseError(SOURCE, url, f"value {value!r} is not a number") from None
    return None if math.isnan(number) else number


def _footnotes(footnotes, url: str) -> list[str]:
    if footnotes is None:
        return []
    if not isinstance(footnotes, list) or not all(isinstance(f, str) for f in footnotes):
        raise ParseError(SOURCE, url, f"footnotes {footnotes!r} is not a list of strings")
    return [f for f in footnotes if f.strip()]


def _mapping(observation: dict, key: str, url: str) -> dict:
    value = observation.get(key) or {}
    if not isinstance(value, dict):
        raise ParseError(SOURCE, url, f"{key} {value!r} is not an object")
    return value


def _row(observation, url: str, release: str, fetched_at: datetime) -> dict:
    if not isinstance(observation, dict):
        raise ParseError(SOURCE, url, f"observation {observation!r} is not an object")
    missing = [k for k in ("series", "geoAreaCode", "timePeriodStart", "value") if k not in observation]
    if missing:
        raise ParseError(SOURCE, url, f"observation lacks {', '.join(missing)}: {json.dumps(observation)[:200]}")
    if not isinstance(observation["series"], str) or not observation["series"]:
        raise ParseError(SOURCE, url, f"series {observation['series']!r} is not a series code")
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


def observations(pages: list[tuple[str, bytes]], release: str, fetched_at: datetime) -> pa.Table:
    """All pages of one series, as (url, body) pairs in any order, as an indicator_observations table.

    Raises ParseError when a page is missing or repeated, when the pages disagree on the totals, when the row
    count differs from totalElements, when the pages mix series, or when a cell cannot be typed.
    """
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware")
    fetched_at = fetched_at.astimezone(timezone.utc)
    rows = [
        _row(observation, url, release, fetched_at)
        for url, page in _checked_pages(pages)
        for observation in page["data"]
    ]
    series = sorted({row["series"] for row in rows}, key=str)
    if len(series) > 1:
        raise ParseError(SOURCE, pages[0][0], f"pages mix several series: {series}")
    return pa.Table.from_pylist(rows, schema=INDICATOR_OBSERVATIONS.schema)

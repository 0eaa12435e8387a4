"""UNSD M49 standard country or area codes → the countries table.

Upstream: https://unstats.un.org/unsd/methodology/m49/overview/ (the page's CSV download: `;`-separated, UTF-8
with BOM, codes zero-padded). UN membership is not in the M49 list: it comes from tasks/un_members.yaml (193
Member States, 2 observer States). Feeds countries, and through it the names and regions of treaty_status and
country_year_panel. A registered source (tasks/registry.py, configured by sources/m49.yaml): one batch, one URL,
one table. The parser is pure: bytes in, pyarrow table out.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
from pydantic import Field, HttpUrl

from tasks.catalog import read_yaml
from tasks.errors import ParseError
from tasks.source import Batch, Client, Source, SourceConfig
from tasks.tables import COUNTRIES

SOURCE = "m49"
MEMBERS = Path(__file__).resolve().parent / "un_members.yaml"

#: CSV header -> countries column, for the columns the table takes.
COLUMNS = {
    "Country or Area": "name", "M49 Code": "m49", "ISO-alpha2 Code": "iso2", "ISO-alpha3 Code": "iso3",
    "Region Code": "region_code", "Region Name": "region", "Sub-region Code": "sub_region_code",
    "Sub-region Name": "sub_region", "Intermediate Region Code": "intermediate_region_code",
    "Intermediate Region Name": "intermediate_region", "Least Developed Countries (LDC)": "is_ldc",
    "Land Locked Developing Countries (LLDC)": "is_lldc", "Small Island Developing States (SIDS)": "is_sids",
}
CODES = ("m49", "region_code", "sub_region_code", "intermediate_region_code")
FLAGS = ("is_ldc", "is_lldc", "is_sids")


@lru_cache(maxsize=1)
def un_status() -> dict[str, str]:
    """ISO3 -> member | observer, from tasks/un_members.yaml."""
    declared = read_yaml(MEMBERS, "UN members")
    return {**{iso3: "member" for iso3 in declared["members"]}, **{iso3: "observer" for iso3 in declared["observers"]}}


def _code(text: str, column: str, line: int, url: str) -> int | None:
    if not text:
        if column == "m49":
            raise ParseError(SOURCE, url, f"line {line}: no M49 code")
        return None
    if not text.isdigit() or len(text) > 3:
        raise ParseError(SOURCE, url, f"line {line}: {column} {text!r} is not a 3-digit code")
    return int(text)


def _flag(text: str, column: str, line: int, url: str) -> bool:
    if text.strip().lower() not in ("", "x"):
        raise ParseError(SOURCE, url, f"line {line}: {column} is {text!r}, expected 'x' or empty")
    return text.strip().lower() == "x"


def countries(body: bytes, url: str) -> pa.Table:
    """The M49 CSV as a countries table, one row per country or area, in file order.

    Raises ParseError for bytes that are not UTF-8 text, a header lacking a column, a code that is not 1-3 digits,
    an LDC/LLDC/SIDS cell other than 'x' or empty, a repeated M49 or ISO3 code, or a UN member or observer of
    tasks/un_members.yaml missing from the list.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(SOURCE, url, f"not UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text), delimiter=";")
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ParseError(SOURCE, url, f"header lacks {', '.join(missing)}; got {reader.fieldnames}")
    rows = []
    for line, raw in enumerate(reader, start=2):
        row = {column: (raw[header] or "").strip() for header, column in COLUMNS.items()}
        for column in CODES:
            row[column] = _code(row[column], column, line, url)
        for column in FLAGS:
            row[column] = _flag(row[column], column, line, url)
        for column in ("iso2", "iso3", "region", "sub_region", "intermediate_region"):
            row[column] = row[column] or None
        if not row["name"]:
            raise ParseError(SOURCE, url, f"line {line}: no country or area name")
        row["un_status"] = un_status().get(row["iso3"])
        rows.append(row)
    for column in ("m49", "iso3"):
        values = [r[column] for r in rows if r[column] is not None]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ParseError(SOURCE, url, f"{column} repeated: {repeated}")
    absent = sorted(set(un_status()) - {r["iso3"] for r in rows})
    if absent:
        raise ParseError(SOURCE, url, f"UN members or observers missing from the M49 list: {absent}")
    return pa.Table.from_pylist(rows, schema=COUNTRIES.schema)


class M49Config(SourceConfig):
    """sources/m49.yaml: the URL of the M49 list's CSV download."""

    url: HttpUrl = Field(strict=False)


class M49Source(Source):
    """One batch, `countries`: the whole M49 list."""

    name = SOURCE
    config_model = M49Config
    kind = "csv"
    tables = (COUNTRIES,)

    def batches(self, client: Client) -> tuple[list[Batch], dict[str, str]]:
        return [Batch(COUNTRIES.name, (str(self.config.url),))], {}

    def parse(self, batch: Batch, responses) -> tuple[str, dict]:
        (response,) = responses
        return COUNTRIES.name, {COUNTRIES: countries(response.body, response.url)}

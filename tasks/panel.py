"""Join the illicit-arms indicators into the country_year_panel.

Inputs are tables already parsed from upstream: countries from the UNSD M49 list
(https://unstats.un.org/unsd/methodology/m49/overview/), indicator_observations from the UN SDG API
(https://unstats.un.org/sdgapi/v1/sdg) and firearms_seizures from the UNODC IAFQ file
(https://data.unodc.org/sites/dataportal.unodc.org/files/<YYYY-MM>/data_iafq_firearms_trafficking.xlsx).
Feeds country_year_panel. Pure: tables in, table out.

Rows: the 193 UN Member States and the 2 observer States (countries.un_status) x every year from first_year to
last_year, with the UN name and M49 region. Territories, regional aggregates, the European Union and sub-national
rows have no row. Only rows marked is_latest_release are read, so nothing is counted twice. A value that no input
gives is null, never zero. Treaty status per state and year is the long table treaty_status_by_year (join on
iso3, year), so a new treaty adds rows there, not columns here.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from tasks import registry
from tasks.tables import (ANALYST_TABLES, COUNTRIES, FIREARMS_SEIZURES, INDICATOR_OBSERVATIONS, PARTICIPATION,
                          TREATIES, TREATY_STATUS, TREATY_STATUS_BY_YEAR, TREATY_TABLES, Table)


#: SDG series feeding the panel: column -> (series, dimensions an observation must carry, meaning), from the
#: `panel` entries of sources/sdg.yaml (adding a series to the panel is one entry there), read once so the panel's
#: schema and its rows agree. Each column comes with `<column>_footnotes`, the observation's footnotes (e.g.
#: "2021–2022 average").
SDG_COLUMNS: dict[str, tuple[str, dict[str, str], str]] = registry.load(only="sdg")[0].panel_columns()


#: IAFQ national totals: column -> (Indicator, Dimension, Category), from the latest release, national rows only.
#: Arms seized has a headline Total/Total row. Arms found and Arms surrendered have none, so their total is the
#: "by type" Total, the breakdown most countries report (168 of 169 and 167 of 168 country-years in 2024). There
#: is no fallback to other breakdowns' totals: they disagree with the headline in about a fifth of the cases.
IAFQ_COLUMNS = {
    "arms_seized": ("Arms seized", "Total", "Total"),
    "arms_found": ("Arms found", "by type", "Total"),
    "arms_surrendered": ("Arms surrendered", "by type", "Total"),
}


def _field(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def panel_schema() -> pa.Schema:
    """The panel's columns: identity, then each SDG column with its footnotes, then the IAFQ totals."""
    fields = [
        _field("iso3", pa.string(), "ISO 3166-1 alpha-3", False),
        _field("m49", pa.int16(), "UN M49 code", False),
        _field("country", pa.string(), "UN English name (countries.name)", False),
        _field("region", pa.string(), "M49 region (countries.region)"),
        _field("sub_region", pa.string(), "M49 sub-region (countries.sub_region)"),
        _field("un_status", pa.string(), "member | observer (countries.un_status)", False),
        _field("year", pa.int16(), "Calendar year", False),
    ]
    for column, (_, _, doc) in SDG_COLUMNS.items():
        fields += [_field(column, pa.float64(), f"{doc}; latest release"),
                   _field(f"{column}_footnotes", pa.list_(pa.string()), f"Footnotes of the {column} observation")]
    for column, labels in IAFQ_COLUMNS.items():
        fields.append(_field(column, pa.int64(), f"IAFQ {' / '.join(labels)}, latest release, national rows"))
    return pa.schema(fields)


PANEL = Table("country_year_panel", panel_schema(), None,
              "One row per UN member or observer state x year: the illicit-arms indicators with their footnotes.")
#: Every published table, in the order of the data dictionary and of the DuckDB file's views.
PUBLISHED_TABLES = (*TREATY_TABLES, *registry.tables(), *ANALYST_TABLES, PANEL)
#: The published tables each analyst table is built from (flows/panel.py).
INPUTS = {**dict.fromkeys((TREATY_STATUS.name, TREATY_STATUS_BY_YEAR.name), (TREATIES, PARTICIPATION, COUNTRIES)),
          PANEL.name: (COUNTRIES, INDICATOR_OBSERVATIONS, FIREARMS_SEIZURES)}


def panel_states(countries: pa.Table) -> list[dict]:
    """Rows of `countries` for UN member and observer states, by iso3."""
    states = countries.filter(pc.is_valid(countries["un_status"])).to_pylist()
    return sorted(states, key=lambda c: c["iso3"])


def _unique(pairs, what: str) -> dict[tuple[str, int], object]:
    values: dict[tuple[str, int], object] = {}
    for key, value in pairs:
        if key in values:
            raise ValueError(f"{what}: several values for {key[0]} {key[1]} ({values[key]!r}, {value!r})")
        values[key] = value
    return values


def _latest_countries(observations: pa.Table) -> pa.Table:
    """Observations of the latest release, of countries."""
    return observations.filter(pc.and_(observations["is_latest_release"], observations["is_country"]))


def _latest_national(seizures: pa.Table) -> pa.Table:
    """Seizure rows of the latest release date among the latest releases, national (not sub-national)."""
    rows = seizures.filter(pc.and_(seizures["is_latest_release"], pc.invert(seizures["is_subnational"])))
    return rows.filter(pc.equal(rows["release_date"], pc.max(rows["release_date"]))) if rows.num_rows else rows


def _sdg_values(rows: pa.Table, series: str, dimensions: dict[str, str]) -> dict[tuple[str, int], tuple]:
    """(value, footnotes) of the observations `rows` (`_latest_countries`) of `series` carrying `dimensions`, by
    (iso3, year)."""
    rows = rows.filter(pc.equal(rows["series"], series))
    return _unique(
        (((iso3, year), (value, notes)) for iso3, year, value, notes, dims in zip(
            rows["iso3"].to_pylist(), rows["year"].to_pylist(), rows["value"].to_pylist(),
            rows["footnotes"].to_pylist(), rows["dimensions"].to_pylist())
         if dimensions.items() <= dict(dims or []).items()),
        f"{series} {dimensions}",
    )


def _iafq_values(rows: pa.Table, labels: tuple[str, str, str]) -> dict[tuple[str, int], int]:
    """Values of the seizure `rows` (`_latest_national`) with these (indicator, dimension, category), by (iso3,
    year)."""
    for column, label in zip(("indicator", "dimension", "category"), labels):
        rows = rows.filter(pc.equal(rows[column], label))
    return _unique(
        (((iso3, year), value) for iso3, year, value in zip(
            rows["iso3"].to_pylist(), rows["year"].to_pylist(), rows["value"].to_pylist())),
        f"IAFQ {' / '.join(labels)}",
    )


def build_panel(countries: pa.Table, observations: pa.Table, seizures: pa.Table, *, first_year: int = 2000,
                last_year: int) -> pa.Table:
    """One row per UN member or observer state x year, sorted by iso3 then year; schema PANEL.schema.

    countries is the countries table, observations indicator_observations, seizures firearms_seizures. Raises
    ValueError when countries holds no UN member, or when an indicator has several values for one state and year
    under the rules above.
    """
    if last_year < first_year:
        raise ValueError(f"last_year {last_year} is before first_year {first_year}")
    states = panel_states(countries)
    if not states:
        raise ValueError("the countries table holds no UN member or observer state")
    years = range(first_year, last_year + 1)
    keys = [(s["iso3"], year) for s in states for year in years]
    columns: dict[str, list] = {"iso3": [iso3 for iso3, _ in keys], "year": [year for _, year in keys]}
    for column, source in (("m49", "m49"), ("country", "name"), ("region", "region"),
                           ("sub_region", "sub_region"), ("un_status", "un_status")):
        columns[column] = [s[source] for s in states for _ in years]
    observed, seized = _latest_countries(observations), _latest_national(seizures)
    for column, (series, dimensions, _) in SDG_COLUMNS.items():
        values = _sdg_values(observed, series, dimensions)
        columns[column] = [values.get(key, (None, None))[0] for key in keys]
        columns[f"{column}_footnotes"] = [values.get(key, (None, None))[1] for key in keys]
    for column, labels in IAFQ_COLUMNS.items():
        values = _iafq_values(seized, labels)
        columns[column] = [values.get(key) for key in keys]
    return pa.table([columns[name] for name in PANEL.schema.names], schema=PANEL.schema)


def latest_year(observations: pa.Table, seizures: pa.Table, today: date) -> int:
    """The latest year any indicator has data for (not after today's year); today's year when there is none."""
    years = observations["year"].to_pylist() + seizures["year"].to_pylist()
    return min(max(years), today.year) if years else today.year

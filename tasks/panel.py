"""Join treaty status and illicit-arms indicators into the country_year_panel.

Inputs are tables already parsed from upstream: participation from the UN Treaty Collection MTDSG status pages
(https://treaties.un.org/doc/Publication/MTDSG/Volume%20II/Chapter%20XVIII/XVIII-12-c.en.xml and siblings),
indicator_observations from the UN SDG API (https://unstats.un.org/sdgapi/v1/sdg) and firearms_seizures from the
UNODC IAFQ file (https://data.unodc.org/sites/dataportal.unodc.org/files/<YYYY-MM>/data_iafq_firearms_trafficking.xlsx).
Feeds country_year_panel. Pure: tables in, table out.

Rows: every ISO 3166-1 entry known to pycountry (which holds every state any input resolves to, since
tasks.countries resolves through it) x every year from first_year to last_year. Regional aggregates, the European
Union and areas without an ISO code (Kosovo, parts of the United Kingdom in VC_IHR_PSRC) have no row. A value
that no input gives is null, never zero.
"""

from __future__ import annotations

import re
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pycountry

from tasks import registry
from tasks.countries import by_iso3
from tasks.tables import Table


def sdg_columns() -> dict[str, tuple[str, dict[str, str], str]]:
    """SDG series feeding the panel: column -> (series, dimensions an observation must carry, meaning), from the
    `panel` entries of sources/sdg.yaml (adding a series to the panel is one entry there)."""
    return registry.load(only="sdg")[0].panel_columns()


#: IAFQ national totals: column -> (Indicator, Dimension, Category), from the latest release in the input. Arms
#: seized has a headline Total/Total row. Arms found and Arms surrendered have none, so their total is the
#: "by type" Total, the breakdown most countries report (168 of 169 and 167 of 168 country-years in 2024). There
#: is no fallback to other breakdowns' totals: they disagree with the headline in about a fifth of the cases.
IAFQ_COLUMNS = {
    "arms_seized": ("Arms seized", "Total", "Total"),
    "arms_found": ("Arms found", "by type", "Total"),
    "arms_surrendered": ("Arms surrendered", "by type", "Total"),
}


def treaty_slug(mtdsg_no: str) -> str:
    """Column-name form of an MTDSG reference: XVIII-12-c -> xviii_12_c."""
    return re.sub(r"[^0-9a-z]+", "_", mtdsg_no.casefold()).strip("_")


def _field(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def panel_schema(treaty_ids: list[str]) -> pa.Schema:
    """The panel's columns: identity, three columns per treaty, then the indicators."""
    slugs = [treaty_slug(mtdsg_no) for mtdsg_no in treaty_ids]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"treaty ids {treaty_ids} do not have distinct column slugs {slugs}")
    fields = [
        _field("iso3", pa.string(), "ISO 3166-1 alpha-3", False),
        _field("m49", pa.int16(), "UN M49 code", False),
        _field("country", pa.string(), "ISO 3166-1 short name (pycountry)", False),
        _field("year", pa.int16(), "Calendar year", False),
    ]
    for mtdsg_no in treaty_ids:
        slug = treaty_slug(mtdsg_no)
        fields += [
            _field(f"party__{slug}", pa.bool_(), f"{mtdsg_no}: consent to be bound dated on or before 31 December; "
                                                 "null when the treaty's participant table is not in the input"),
            _field(f"signatory__{slug}", pa.bool_(), f"{mtdsg_no}: signature dated on or before 31 December; "
                                                     "null when the treaty's participant table is not in the input"),
            _field(f"years_party__{slug}", pa.int16(), f"{mtdsg_no}: year minus the year of consent; null if not "
                                                       "a party"),
        ]
    fields += [
        *(_field(column, pa.float64(), doc) for column, (_, _, doc) in sdg_columns().items()),
        _field("arms_seized", pa.int64(), "IAFQ Arms seized, Total/Total, latest release"),
        _field("arms_found", pa.int64(), "IAFQ Arms found, by type/Total, latest release"),
        _field("arms_surrendered", pa.int64(), "IAFQ Arms surrendered, by type/Total, latest release"),
    ]
    return pa.schema(fields)


def _states() -> list[tuple[str, int, str]]:
    """(iso3, m49, name) of every ISO 3166-1 entry, by iso3."""
    return sorted((c.alpha_3, by_iso3(c.alpha_3).m49, c.name) for c in pycountry.countries)


def _first_dates(participation: pa.Table, mtdsg_no: str, column: str) -> dict[str, date]:
    """Earliest `column` date per iso3 for one treaty."""
    rows = participation.filter(pc.equal(participation["mtdsg_no"], mtdsg_no))
    first: dict[str, date] = {}
    for iso3, when in zip(rows["iso3"].to_pylist(), rows[column].to_pylist()):
        if iso3 is not None and when is not None:
            first[iso3] = min(when, first.get(iso3, when))
    return first


def _unique(pairs, what: str) -> dict[tuple[str, int], object]:
    values: dict[tuple[str, int], object] = {}
    for key, value in pairs:
        if key in values:
            raise ValueError(f"{what}: several values for {key[0]} {key[1]} ({values[key]!r}, {value!r})")
        values[key] = value
    return values


def _sdg_values(observations: pa.Table, series: str, dimensions: dict[str, str]) -> dict[tuple[str, int], float]:
    """Values of country observations of `series` carrying `dimensions`, by (iso3, year)."""
    rows = observations.filter(pc.and_(pc.equal(observations["series"], series), observations["is_country"]))
    return _unique(
        (((iso3, year), value) for iso3, year, value, dims in zip(
            rows["iso3"].to_pylist(), rows["year"].to_pylist(), rows["value"].to_pylist(),
            rows["dimensions"].to_pylist()) if dimensions.items() <= dict(dims or []).items()),
        f"{series} {dimensions}",
    )


def _iafq_values(seizures: pa.Table, labels: tuple[str, str, str]) -> dict[tuple[str, int], int]:
    """Values of the latest release's national rows with these (indicator, dimension, category), by (iso3, year);
    sub-national rows (GBR_E_W, ...) stay out of the country totals."""
    if seizures.num_rows == 0:
        return {}
    latest = pc.max(seizures["release_date"])
    rows = seizures.filter(pc.and_(pc.equal(seizures["release_date"], latest), pc.invert(seizures["is_subnational"])))
    for column, label in zip(("indicator", "dimension", "category"), labels):
        rows = rows.filter(pc.equal(rows[column], label))
    return _unique(
        (((iso3, year), value) for iso3, year, value in zip(
            rows["iso3"].to_pylist(), rows["year"].to_pylist(), rows["value"].to_pylist())),
        f"IAFQ {' / '.join(labels)}",
    )


def _treaty_columns(participation: pa.Table, mtdsg_no: str, keys: list[tuple[str, int]]) -> dict[str, list]:
    slug = treaty_slug(mtdsg_no)
    if not pc.any(pc.equal(participation["mtdsg_no"], mtdsg_no)).as_py():
        return {f"{kind}__{slug}": [None] * len(keys) for kind in ("party", "signatory", "years_party")}
    consent = _first_dates(participation, mtdsg_no, "consent_date")
    signature = _first_dates(participation, mtdsg_no, "signature_date")
    party = [iso3 in consent and consent[iso3].year <= year for iso3, year in keys]
    return {
        f"party__{slug}": party,
        f"signatory__{slug}": [iso3 in signature and signature[iso3].year <= year for iso3, year in keys],
        f"years_party__{slug}": [year - consent[iso3].year if is_party else None
                                 for (iso3, year), is_party in zip(keys, party)],
    }


def build_panel(participation: pa.Table, treaty_ids: list[str], observations: pa.Table, seizures: pa.Table, *,
                first_year: int = 2000, last_year: int) -> pa.Table:
    """One row per ISO 3166-1 state x year, sorted by iso3 then year; schema panel_schema(treaty_ids).

    participation needs mtdsg_no, iso3, signature_date and consent_date; a state listed twice for a treaty counts
    from its earliest date. observations is indicator_observations, seizures is firearms_seizures. Raises
    ValueError when an indicator has several values for one state and year under the rules above.
    """
    if last_year < first_year:
        raise ValueError(f"last_year {last_year} is before first_year {first_year}")
    states = _states()
    years = range(first_year, last_year + 1)
    keys = [(iso3, year) for iso3, _, _ in states for year in years]
    columns: dict[str, list] = {
        "iso3": [iso3 for iso3, _ in keys],
        "m49": [m49 for _, m49, _ in states for _ in years],
        "country": [name for _, _, name in states for _ in years],
        "year": [year for _, year in keys],
    }
    for mtdsg_no in treaty_ids:
        columns.update(_treaty_columns(participation, mtdsg_no, keys))
    for column, (series, dimensions, _) in sdg_columns().items():
        values = _sdg_values(observations, series, dimensions)
        columns[column] = [values.get(key) for key in keys]
    for column, labels in IAFQ_COLUMNS.items():
        values = _iafq_values(seizures, labels)
        columns[column] = [values.get(key) for key in keys]
    schema = panel_schema(treaty_ids)
    return pa.table([columns[name] for name in schema.names], schema=schema)


def panel_table(treaty_ids: list[str]) -> Table:
    """The country_year_panel as a published table: its columns follow the treaty catalog; one batch."""
    return Table("country_year_panel", panel_schema(treaty_ids), None,
                 "One row per state x year: treaty status at year end and the illicit-arms indicators.")


def latest_year(observations: pa.Table, seizures: pa.Table, today: date) -> int:
    """The latest year any indicator has data for (not after today's year); today's year when there is none."""
    years = observations["year"].to_pylist() + seizures["year"].to_pylist()
    return min(max(years), today.year) if years else today.year

"""Every published table's schema, declared once.

The writer (tasks/publish.py) casts to these schemas, the validator (tasks/validate.py) derives its column-drift
expectation from them, and the data dictionary (`armswatch docs`, warehouse/README.md) is rendered from the field
descriptions kept in each field's metadata. Tables fed: all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


def _f(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def field_doc(field: pa.Field) -> str:
    """A field's description, as `_f` keeps it in the field's metadata ("" if it has none)."""
    return (field.metadata or {}).get(b"doc", b"").decode()


@dataclass(frozen=True, repr=False)
class Table:
    """A published table: its schema and the column whose value names the batch a row belongs to.

    A table whose batch_key is None is published as one batch (the panel, built from the whole warehouse)."""

    name: str
    schema: pa.Schema
    batch_key: str | None
    doc: str

    def __repr__(self) -> str:
        return f"Table({self.name})"


TREATIES = Table(
    "treaties",
    pa.schema([
        _f("mtdsg_no", pa.string(), "MTDSG reference, e.g. XVIII-12-c", False),
        _f("short_name", pa.string(), "Short name from the catalog (treaties.yaml)"),
        _f("title", pa.string(), "Full title as published by UNTC"),
        _f("chapter", pa.string(), "MTDSG chapter, Roman numeral"),
        _f("conclusion_place", pa.string(), "Place of conclusion"),
        _f("conclusion_date", pa.date32(), "Date of conclusion"),
        _f("entry_into_force_date", pa.date32(), "Date of entry into force; null if not in force"),
        _f("registration_no", pa.string(), "UNTS registration number"),
        _f("stated_signatories", pa.int32(), "Signatories as counted by UNTC in the document header"),
        _f("stated_parties", pa.int32(), "Parties as counted by UNTC in the document header"),
        _f("parsed_signatories", pa.int32(), "Participants with a signature date, as parsed"),
        _f("parsed_parties", pa.int32(), "Participants with a consent date, as parsed"),
        _f("participant_table_found", pa.bool_(), "Whether the document carries a participant table"),
        _f("source_url", pa.string(), "URL the document was fetched from"),
        _f("raw_sha256", pa.string(), "sha256 of the raw response, key into warehouse/_raw"),
        _f("fetched_at", TS, "When the raw response was fetched (UTC)"),
        _f("as_of", pa.date32(), "Date the status is as of: the response's HTTP Date header (the recorded date when "
           "replaying a mirror), else the fetch date", False),
    ]),
    "mtdsg_no",
    "One row per catalog treaty: header facts and UNTC's own status counts.",
)

PARTICIPATION = Table(
    "participation",
    pa.schema([
        _f("mtdsg_no", pa.string(), "MTDSG reference", False),
        _f("participant", pa.string(), "Participant name as published, footnote markup removed", False),
        _f("footnotes", pa.list_(pa.int16()), "Footnote numbers attached to the name (texts in treaty_footnotes)"),
        _f("iso3", pa.string(), "ISO 3166-1 alpha-3; null for participants that are not states"),
        _f("m49", pa.int16(), "UN M49 numeric code; null for participants that are not states"),
        _f("is_state", pa.bool_(), "False for participants that are not states: organisations and territories "
           "(participant_kind)"),
        _f("participant_kind", pa.string(), "state | organisation | territory: organisation when the name is declared "
           "in country_aliases.yaml or, resolving to no state, reads as one (its head noun: Organization, Community, "
           "Union, Agency, Bank, Fund, ...; or an acronym); territory when it resolves to a non-independent area", False),
        _f("signature_date", pa.date32(), "Date of signature (or succession to signature)"),
        _f("signature_kind", pa.string(), "signature | succession_to_signature"),
        _f("consent_date", pa.date32(), "Date of the instrument of consent to be bound (kept when later withdrawn)"),
        _f("consent_kind", pa.string(), "ratification | accession | acceptance | approval | succession | "
           "definitive_signature | formal_confirmation | participation | application | ... (tasks/untc.py "
           "CONSENT_KINDS); unspecified when the column header lists several kinds without codes"),
        _f("provisional_application_date", pa.date32(), "Date of declaration of provisional application"),
        _f("is_party", pa.bool_(), "True when a consent is recorded and was not withdrawn or denounced (UNTC's "
           "Parties count: consents deposited, also before the treaty is in force for the participant)"),
        _f("in_force_date", pa.date32(), "Date the treaty entered into force for the participant: the treaty's "
           "entry_into_force_date, or for a later consent the delay the entry-into-force text states ('on the "
           "thirtieth day after the deposit ...') after consent_date, else consent_date; null without consent or "
           "while the treaty is not in force"),
        _f("withdrawn", pa.bool_(), "The consent (without one: the signature) was later withdrawn or denounced (a "
           "date in square brackets, or a withdrawal column); is_party is then false", False),
        _f("withdrawal_date", pa.date32(), "When the withdrawal or denunciation took effect (else when it was "
           "notified), from the participant's footnote; null when the footnote gives no date"),
        _f("consent_header", pa.string(), "Column header the consent date was read from (what 'unspecified' means)"),
    ]),
    "mtdsg_no",
    "One row per treaty x participant, from the document's participant table.",
)

TREATY_FOOTNOTES = Table(
    "treaty_footnotes",
    pa.schema([
        _f("mtdsg_no", pa.string(), "MTDSG reference", False),
        _f("footnote", pa.int16(), "Footnote number as referenced from participation.footnotes", False),
        _f("text", pa.string(), "Footnote text (EndNotes), paragraphs joined by newlines"),
    ]),
    "mtdsg_no",
    "Footnote texts from the document's EndNotes.",
)

DECLARATIONS = Table(
    "declarations",
    pa.schema([
        _f("mtdsg_no", pa.string(), "MTDSG reference", False),
        _f("participant", pa.string(), "Participant name, footnote markup removed", False),
        _f("kind", pa.string(), "declaration | reservation | reservation_and_declaration | objection | "
           "declaration_under_article | notification | territorial_application", False),
        _f("seq", pa.int16(), "Order of this entry among the participant's entries of this kind", False),
        _f("heading", pa.string(), "Heading as published, e.g. 'Reservation and declaration :'"),
        _f("text", pa.string(), "Text, paragraphs joined by newlines, markup removed"),
        _f("notification_date", pa.date32(), "Date of receipt of the notification (territorial applications)"),
        _f("territories", pa.string(), "Territories a territorial application extends the treaty to"),
    ]),
    "mtdsg_no",
    "Declarations, reservations, objections and notifications, one row per entry.",
)

TREATY_EVENTS = Table(
    "treaty_events",
    pa.schema([
        _f("mtdsg_no", pa.string(), "MTDSG reference", False),
        _f("participant", pa.string(), "Participant name", False),
        _f("iso3", pa.string(), "ISO3; null for participants that are not states"),
        _f("event", pa.string(), "signature | consent | provisional_application | withdrawal", False),
        _f("event_kind", pa.string(), "signature_kind or consent_kind of the event; denunciation or withdrawal"),
        _f("event_date", pa.date32(), "Date of the event", False),
        _f("withdrawn", pa.bool_(), "The action was later withdrawn or denounced (see the withdrawal event)", False),
    ]),
    "mtdsg_no",
    "Participation in long form: one row per dated action.",
)

RATIFICATION_PROGRESS = Table(
    "ratification_progress",
    pa.schema([
        _f("mtdsg_no", pa.string(), "MTDSG reference", False),
        _f("year", pa.int16(), "Calendar year, from the first signature or consent to the as-of year", False),
        _f("new_signatories", pa.int32(), "Signatures dated in the year", False),
        _f("new_parties", pa.int32(), "Consents dated in the year", False),
        _f("cumulative_signatories", pa.int32(), "Signatures dated up to the end of the year", False),
        _f("cumulative_consents", pa.int32(), "Consents deposited up to the end of the year less withdrawals: what "
           "UNTC's Parties count (treaties.stated_parties) counts, also before entry into force", False),
        _f("cumulative_parties", pa.int32(), "Parties in force at the end of the year: consents in force for the "
           "participant (participation.in_force_date) less withdrawals; 0 before the treaty's entry into force", False),
        _f("withdrawn_parties", pa.int32(), "Parties whose withdrawal or denunciation is dated in the year", False),
        _f("complete_year", pa.bool_(), "False for the as-of year (counts at the as-of date, not at year end)", False),
        _f("includes_organisations", pa.bool_(), "Whether the year's counts include participants that are not "
           "states (the European Union, organisations; UNTC counts them); treaty_status_by_year counts states only",
           False),
    ]),
    "mtdsg_no",
    "Per treaty per year: new and cumulative signatories, consents and parties in force, every participant counted "
    "as UNTC counts them.",
)

TREATY_TABLES = (TREATIES, PARTICIPATION, TREATY_FOOTNOTES, DECLARATIONS, TREATY_EVENTS, RATIFICATION_PROGRESS)

INDICATOR_OBSERVATIONS = Table(
    "indicator_observations",
    pa.schema([
        _f("series", pa.string(), "SDG series code, e.g. VC_ARM_SZTRACE", False),
        _f("indicator", pa.string(), "SDG indicator, e.g. 16.4.2"),
        _f("series_description", pa.string(), "Series description as published"),
        _f("release", pa.string(), "SDG database release, e.g. 2026.Q3.G.01"),
        _f("m49", pa.int16(), "UN M49 code of the geographic area", False),
        _f("iso3", pa.string(), "ISO3 for countries; null for regional aggregates"),
        _f("geo_name", pa.string(), "Geographic area name as published"),
        _f("is_country", pa.bool_(), "False for regional and other aggregates (World = 1, Africa = 2, ...)", False),
        _f("year", pa.int16(), "Year (timePeriodStart)", False),
        _f("value", pa.float64(), "Observation value; null when the API gives none"),
        _f("units", pa.string(), "Units attribute, e.g. PERCENT, PER_100000_POP"),
        _f("nature", pa.string(), "Nature attribute (C country data, E estimated, ...)"),
        _f("source", pa.string(), "Source as published"),
        _f("reporting_type", pa.string(), "Reporting Type dimension (G global, N national)"),
        _f("sex", pa.string(), "Sex dimension (FEMALE, MALE, BOTHSEX); null when the series has none"),
        _f("dimensions", pa.map_(pa.string(), pa.string()), "Every dimension of the observation, as published"),
        _f("footnotes", pa.list_(pa.string()), "Footnotes, empty strings dropped"),
        _f("fetched_at", TS, "When the first page of the series was fetched (UTC)"),
        _f("is_latest_release", pa.bool_(), "True for the newest release published of the series (a series file "
           "holds one release, so true in current data; false in superseded history snapshots)", False),
    ]),
    "series",
    "SDG Global Database observations, one row per series x area x year x dimensions.",
)

FIREARMS_SEIZURES = Table(
    "firearms_seizures",
    pa.schema([
        _f("release_date", pa.date32(), "Release date printed in row 2 of the IAFQ file", False),
        _f("iso3", pa.string(), "ISO3 code as published (Iso3_code); the parent state's ISO3 for a sub-national "
           "row"),
        _f("subnational_code", pa.string(), "Sub-national pseudo-code as published (GBR_E_W, GBR_NI, GBR_S, "
           "IRQ_KRI, ...); null for a national row"),
        _f("is_subnational", pa.bool_(), "True when the row is for part of a state (subnational_code); such rows "
           "stay out of country totals", False),
        _f("m49", pa.int16(), "UN M49 code resolved from iso3 (the parent state for a sub-national row)"),
        _f("country", pa.string(), "Country as published"),
        _f("region", pa.string(), "Region as published"),
        _f("subregion", pa.string(), "Subregion as published"),
        _f("indicator", pa.string(), "Indicator, e.g. Arms seized"),
        _f("dimension", pa.string(), "Dimension as published"),
        _f("category", pa.string(), "Category as published"),
        _f("sex", pa.string(), "Sex as published"),
        _f("age", pa.string(), "Age as published"),
        _f("year", pa.int16(), "Year", False),
        _f("value", pa.int64(), "VALUE (counts); null when blank or not a usable count (see value_flag)"),
        _f("value_text", pa.string(), "VALUE as published when it was not a plain number ('<5', '1,234', '..')"),
        _f("value_flag", pa.string(), "null for a plain number; censored ('<5': value null), formatted ('1,234': "
           "value 1234), text (other text: value null), not_integer (a fraction: value null), out_of_range "
           "(beyond int64: quarantined)"),
        _f("unit", pa.string(), "Unit of measurement"),
        _f("source", pa.string(), "Source as published"),
        _f("is_latest_release", pa.bool_(), "True for the rows of the newest published release: filter on it "
           "to read one release (every release stays published)", False),
    ]),
    "release_date",
    "UNODC firearms trafficking (IAFQ) bulk file, one row per published observation.",
)

INDICATOR_REVISIONS = Table(
    "indicator_revisions",
    pa.schema([
        _f("dataset", pa.string(), "firearms_seizures or the SDG series code", False),
        _f("old_release", pa.string(), "Release the observation is compared from", False),
        _f("new_release", pa.string(), "Release the observation is compared to", False),
        _f("change", pa.string(), "added | removed | value_changed", False),
        _f("iso3", pa.string(), "ISO3 of the observation"),
        _f("year", pa.int16(), "Year of the observation"),
        _f("m49", pa.int16(), "SDG key: M49 code of the area (null for IAFQ)"),
        _f("dimensions", pa.map_(pa.string(), pa.string()), "SDG key: the observation's dimensions (null for IAFQ)"),
        _f("subnational_code", pa.string(), "IAFQ key: sub-national code (null for SDG and national rows)"),
        _f("indicator", pa.string(), "IAFQ key: Indicator (null for SDG)"),
        _f("dimension", pa.string(), "IAFQ key: Dimension (null for SDG)"),
        _f("category", pa.string(), "IAFQ key: Category (null for SDG)"),
        _f("sex", pa.string(), "IAFQ key: Sex (null for SDG)"),
        _f("age", pa.string(), "IAFQ key: Age (null for SDG)"),
        _f("unit", pa.string(), "IAFQ key: Unit of measurement (null for SDG)"),
        _f("duplicate_rank", pa.int16(), "IAFQ key: rank by value among rows sharing every other key column "
           "(IAFQ publishes such twins; null for SDG)"),
        _f("old_value", pa.float64(), "Value in old_release; null when added"),
        _f("new_value", pa.float64(), "Value in new_release; null when removed"),
    ]),
    "dataset",
    "What a new release changed: one row per added, removed or revised observation.",
)

COUNTRIES = Table(
    "countries",
    pa.schema([
        _f("m49", pa.int16(), "UN M49 code", False),
        _f("iso3", pa.string(), "ISO 3166-1 alpha-3; null for areas without one (Sark)"),
        _f("iso2", pa.string(), "ISO 3166-1 alpha-2"),
        _f("name", pa.string(), "UN English name (M49 'Country or Area')", False),
        _f("region_code", pa.int16(), "M49 region code, e.g. 2 Africa; null for Antarctica"),
        _f("region", pa.string(), "M49 region name"),
        _f("sub_region_code", pa.int16(), "M49 sub-region code"),
        _f("sub_region", pa.string(), "M49 sub-region name, e.g. Sub-Saharan Africa"),
        _f("intermediate_region_code", pa.int16(), "M49 intermediate region code"),
        _f("intermediate_region", pa.string(), "M49 intermediate region name, e.g. Western Africa"),
        _f("is_ldc", pa.bool_(), "Least Developed Country", False),
        _f("is_lldc", pa.bool_(), "Land Locked Developing Country", False),
        _f("is_sids", pa.bool_(), "Small Island Developing State", False),
        _f("un_status", pa.string(), "member (193 UN Member States) | observer (Holy See, State of Palestine) | "
           "null for territories and other areas (tasks/un_members.yaml)"),
    ]),
    None,
    "The UNSD M49 list of countries and areas with their regions and UN membership; one file.",
)

TREATY_STATUS = Table(
    "treaty_status",
    pa.schema([
        _f("iso3", pa.string(), "ISO3 of the UN member or observer state", False),
        _f("m49", pa.int16(), "UN M49 code", False),
        _f("country", pa.string(), "UN English name (countries.name)", False),
        _f("mtdsg_no", pa.string(), "MTDSG reference of the catalog treaty", False),
        _f("treaty", pa.string(), "Short name from the catalog (treaties.yaml)"),
        _f("as_of", pa.date32(), "Date the status is as of (treaties.as_of)", False),
        _f("status", pa.string(), "party | signatory | withdrawn | no_action; null when UNTC's document has no "
           "participant table (UNTOC in the 2018 snapshot)"),
        _f("signature_date", pa.date32(), "Date of signature"),
        _f("signature_kind", pa.string(), "participation.signature_kind"),
        _f("consent_date", pa.date32(), "Date of consent to be bound (ratification, accession, ...)"),
        _f("consent_kind", pa.string(), "participation.consent_kind"),
        _f("withdrawal_date", pa.date32(), "Date of withdrawal or denunciation when status is withdrawn"),
        _f("years_party", pa.int16(), "Whole years from consent_date to as_of; null unless party"),
    ]),
    "mtdsg_no",
    "One row per UN member or observer state x catalog treaty: the status as UNTC shows it at as_of.",
)

TREATY_STATUS_BY_YEAR = Table(
    "treaty_status_by_year",
    pa.schema([
        _f("iso3", pa.string(), "ISO3 of the UN member or observer state", False),
        _f("mtdsg_no", pa.string(), "MTDSG reference of the catalog treaty", False),
        _f("treaty", pa.string(), "Short name from the catalog (treaties.yaml)"),
        _f("year", pa.int16(), "Calendar year, from the treaty's conclusion to its as_of year", False),
        _f("party", pa.bool_(), "Party in force: the treaty in force for the state (participation.in_force_date) on "
           "or before 31 December and not withdrawn by then; null when a withdrawal's date is unknown"),
        _f("consent_deposited", pa.bool_(), "Consent dated on or before 31 December and not withdrawn by then (what "
           "UNTC's Parties count counts); null when a withdrawal's date is unknown"),
        _f("signatory", pa.bool_(), "Signature dated on or before 31 December and not withdrawn by then; null when "
           "a withdrawal's date is unknown"),
        _f("complete_year", pa.bool_(), "False for the as-of year (status at the as-of date, not at 31 December)",
           False),
    ]),
    "mtdsg_no",
    "Treaty status in long form: one row per state x catalog treaty x year (a new treaty adds rows, not columns).",
)

#: Tables derived from the published treaty tables and countries (the M49 source feeds countries itself).
ANALYST_TABLES = (TREATY_STATUS, TREATY_STATUS_BY_YEAR)

"""tasks.revisions on the recorded IAFQ releases (2022-06-17 -> 2024-08-26) and on small tables."""

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tasks import revisions, sdg, unodc
from tasks.tables import INDICATOR_REVISIONS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def recorded(release: str) -> pa.Table:
    path = DATA / "unodc" / "iafq" / f"release-{release}" / "data_iafq_firearms_trafficking.xlsx"
    return unodc.seizures(path.read_bytes(), str(path))


@pytest.fixture(scope="module")
def old():
    return recorded("2022-06-17")


@pytest.fixture(scope="module")
def new():
    return recorded("2024-08-26")


@pytest.fixture(scope="module")
def iafq(old, new):
    return revisions.seizure_revisions(old, new)


def test_iafq_labels_alone_are_not_unique(old):
    with pytest.raises(ValueError, match="release 2022-06-17: 198 keys .* are not unique"):
        revisions.revisions("firearms_seizures", old, old, list(revisions.SEIZURE_LABELS), "2022-06-17", "x")


def test_iafq_counts(iafq):
    assert iafq.schema == INDICATOR_REVISIONS.schema
    assert Counter(iafq["change"].to_pylist()) == {"added": 4785, "removed": 349, "value_changed": 35}
    assert set(iafq["old_release"].to_pylist()) == {"2022-06-17"}
    assert set(iafq["new_release"].to_pylist()) == {"2024-08-26"}
    changed = iafq.filter(pc.equal(iafq["change"], "value_changed"))
    # The 2022 release held early 2021 figures for two countries; 2024 revised all of them.
    assert set(zip(changed["iso3"].to_pylist(), changed["year"].to_pylist())) == {("GBR", 2021), ("GRC", 2021)}


def test_iafq_revised_example(iafq):
    # United Kingdom, arms found in 2021: 48 in the 2022 release (partial year), 185 in the 2024 release.
    key = {"iso3": "GBR", "subnational_code": None, "indicator": "Arms found", "dimension": "by type",
           "category": "Total", "sex": "na", "age": "na", "year": 2021, "unit": "Counts", "duplicate_rank": 0}
    rows = [r for r in iafq.to_pylist() if all(r[k] == v for k, v in key.items())]
    assert rows == [{
        "dataset": "firearms_seizures", "old_release": "2022-06-17", "new_release": "2024-08-26",
        "change": "value_changed", **key, "m49": None, "dimensions": None, "old_value": 48.0, "new_value": 185.0,
    }]


def test_iafq_relabelled_categories_are_removed_and_added(iafq):
    # 2024 renamed "by other suspected offences" categories, e.g. Drugs -> Drug trafficking.
    keys = {change: Counter(r["category"] for r in iafq.to_pylist() if r["change"] == change)
            for change in ("added", "removed")}
    assert keys["removed"]["Drugs"] == 97 and keys["added"]["Drugs"] == 0
    assert keys["added"]["Drug trafficking"] == 127


def test_iafq_renamed_country_and_source_are_not_revisions(iafq):
    # 2024 renamed Netherlands and rewrote Source labels; neither is part of the key, so neither shows up here.
    assert not {"country", "source"} & set(iafq.column_names)
    assert set(revisions.SEIZURE_KEY) <= set(iafq.column_names)
    assert iafq["indicator"].null_count == 0 and iafq["m49"].null_count == iafq.num_rows


def test_revision_keys_are_typed_columns(iafq):
    schema = iafq.schema
    assert schema.field("year").type == pa.int16() and schema.field("duplicate_rank").type == pa.int16()
    assert pa.types.is_map(schema.field("dimensions").type)
    assert "observation_key" not in schema.names


def test_same_release_has_no_revisions(old):
    assert revisions.seizure_revisions(old, old).num_rows == 0


def test_seizure_revisions_need_one_release_each(old, new):
    with pytest.raises(ValueError, match="old must hold exactly one IAFQ release"):
        revisions.seizure_revisions(pa.concat_tables([old, new]), new)


def test_rank_duplicates_orders_twins_by_value():
    table = pa.table({"iso3": ["ALB", "ALB", "ALB", "AND"], "value": [425, 14, None, 5]})
    ranked = revisions.rank_duplicates(table, ["iso3"])
    assert ranked["duplicate_rank"].to_pylist() == [1, 0, 2, 0]
    assert ranked["duplicate_rank"].type == pa.int16()


def test_nulls_compare_equal():
    old = pa.table({"iso3": ["MEX", "FRA", "DEU"], "year": [2020, 2020, 2020], "value": [None, None, 3.0]})
    new = pa.table({"iso3": ["MEX", "FRA", "DEU"], "year": [2020, 2020, 2020], "value": [None, 4.0, None]})
    out = revisions.revisions("d", old, new, ["iso3", "year"], "a", "b")
    assert [(r["iso3"], r["change"], r["old_value"], r["new_value"]) for r in out.to_pylist()] == [
        ("DEU", "value_changed", 3.0, None), ("FRA", "value_changed", None, 4.0)]


def test_sdg_series_keyed_on_dimensions():
    url = sdg.series_data_url(sdg.BASE, "VC_ARM_SZTRACE", 1, 50)
    pages = [(url.replace("page=1", f"page={p}"),
              (DATA / "sdg" / "VC_ARM_SZTRACE" / f"Series_Data_page{p}.json").read_bytes()) for p in (1, 2, 3)]
    old = sdg.observations(pages, "2026.Q3.G.01", datetime(2026, 10, 10, tzinfo=timezone.utc))
    mexico_2021 = pc.and_(pc.equal(old["m49"], 484), pc.equal(old["year"], 2021))
    values = pc.if_else(mexico_2021, 99.6, old["value"])
    new = old.set_column(old.schema.get_field_index("value"), "value", values).slice(1)
    out = revisions.revisions("VC_ARM_SZTRACE", old, new, ["m49", "year", "dimensions"], "2026.Q3.G.01", "next")
    assert [(r["change"], r["iso3"], r["year"], r["old_value"], r["new_value"]) for r in out.to_pylist()] == [
        ("removed", "ALB", 2024, 0.0, None), ("value_changed", "MEX", 2021, 99.52, 99.6)]
    changed = out.to_pylist()[1]
    assert (changed["m49"], changed["year"], changed["dimensions"], changed["indicator"]) == (
        484, 2021, [("Reporting Type", "G")], None)


def test_key_columns_must_be_revision_columns():
    table = pa.table({"iso3": ["MEX"], "colour": ["red"], "value": [1.0]})
    with pytest.raises(ValueError, match=r"key columns \['colour'\] are not columns of indicator_revisions"):
        revisions.revisions("d", table, table, ["iso3", "colour"], "a", "b")


def traced(release: str, edit=lambda rows: rows) -> pa.Table:
    pages = sorted((DATA / "sdg" / "VC_ARM_SZTRACE").glob("Series_Data_page*.json"))
    table = sdg.observations([(str(p), p.read_bytes()) for p in pages], release, datetime.now(timezone.utc))
    return pa.Table.from_pylist(edit(table.to_pylist()), schema=table.schema)


def test_a_new_sdg_release_accumulates_a_revision_history():
    def revise_mexico(rows):
        for row in rows:
            if row["iso3"] == "MEX" and row["year"] == 2021:
                row["value"] = 98.0
        return [row for row in rows if not (row["iso3"] == "MEX" and row["year"] == 2024)]

    first, second = traced("2026.Q3.G.01"), traced("2027.Q1.G.01", revise_mexico)
    assert revisions.series_revisions("VC_ARM_SZTRACE", first, first, None) is None, "same release: nothing"
    history = revisions.series_revisions("VC_ARM_SZTRACE", first, second, None)
    assert sorted((r["change"], r["iso3"], r["year"], r["old_value"], r["new_value"]) for r in history.to_pylist()) == [
        ("removed", "MEX", 2024, 67.0, None), ("value_changed", "MEX", 2021, 99.52, 98.0)]
    third = traced("2027.Q2.G.01", revise_mexico)
    later = revisions.series_revisions("VC_ARM_SZTRACE", second, third, history)
    assert later.num_rows == history.num_rows, "an unchanged release pair adds no rows but keeps the history"
    assert set(later["new_release"].to_pylist()) == {"2027.Q1.G.01"}

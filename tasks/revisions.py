"""Compare two releases of a dataset observation by observation: indicator_revisions.

Inputs are tables already parsed from upstream — firearms_seizures from the UNODC IAFQ file
(https://data.unodc.org/sites/dataportal.unodc.org/files/<YYYY-MM>/data_iafq_firearms_trafficking.xlsx) and
indicator_observations from the UN SDG API (https://unstats.un.org/sdgapi/v1/sdg). Feeds indicator_revisions
(tasks.tables.INDICATOR_REVISIONS). Pure: tables in, table out.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from tasks.tables import INDICATOR_REVISIONS

DUPLICATE_RANK = "duplicate_rank"

#: The labels that identify an observation across releases. Country, Region and Subregion only restate iso3
#: (the 2024 release renamed "Netherlands" to "Netherlands (Kingdom of the)") and Source is provenance (2024
#: rewrote "SOF/IAFQ" as "IAFQ/SOF", "PP/IAFQ" as "IAFQ/PP", ...); keying on them would turn 751 unchanged
#: observations into removed + added pairs. Sub-national rows carry their own code, so subnational_code is a
#: label. Even these labels are not unique: IAFQ publishes two rows under the same labels for "Arms seized / by
#: location / Total" (the dimension covers two breakdowns, place of seizure and tracing status, each with its own
#: Total), "Arms seized / by condition / otherwise illicitly manufactured" and "Individuals arrested/suspected / by
#: type of offences / Illicit trafficking of arms and other types of trafficking" (198 pairs in 2022, 312 in 2024,
#: about half with equal values). Nothing in a row tells the twins apart, so they are ranked by value (rank_duplicates).
SEIZURE_LABELS = ("iso3", "subnational_code", "indicator", "dimension", "category", "sex", "age", "year", "unit")

#: The IAFQ revision key: the labels plus the rank among rows that share them.
SEIZURE_KEY = [*SEIZURE_LABELS, DUPLICATE_RANK]


def rank_duplicates(table: pa.Table, label_columns: list[str], value_column: str = "value") -> pa.Table:
    """`table` plus an int16 column duplicate_rank: 0, 1, ... among rows sharing `label_columns`, by value.

    Rows with the same labels are ordered by value (nulls last), so the rank depends on the content, not on the
    row order of the file. Twins with equal values are interchangeable, so their order does not matter.
    """
    values = table[value_column].to_pylist()
    order = sorted(range(table.num_rows), key=lambda i: (values[i] is None, values[i] or 0))
    labels = list(zip(*(table[c].to_pylist() for c in label_columns)))
    seen: Counter = Counter()
    ranks = [0] * table.num_rows
    for i in order:
        ranks[i] = seen[labels[i]]
        seen[labels[i]] += 1
    return table.append_column(DUPLICATE_RANK, pa.array(ranks, pa.int16()))


def _key_values(table: pa.Table, column: str) -> list:
    """A key column's values as hashable Python values: a map as its sorted (key, value) pairs."""
    values = table[column].to_pylist()
    if pa.types.is_map(table.schema.field(column).type):
        return [None if v is None else tuple(sorted(v)) for v in values]
    return values


def _keyed(table: pa.Table, key_columns: list[str], value_column: str, release: str) -> dict[tuple, dict]:
    """Rows by their key values; ValueError naming the first repeated keys when the key is not unique."""
    keys = list(zip(*(_key_values(table, c) for c in key_columns)))
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    if repeated:
        raise ValueError(f"release {release}: {len(repeated)} keys over {key_columns} are not unique, "
                         f"e.g. {[dict(zip(key_columns, k)) for k in repeated[:3]]}")
    columns = {c: table[c].to_pylist() if c in table.column_names else [None] * table.num_rows
               for c in ("iso3", "year", value_column)}
    return {
        key: {"iso3": iso3, "year": year, "value": None if value is None else float(value)}
        for key, iso3, year, value in zip(keys, columns["iso3"], columns["year"], columns[value_column])
    }


def _order(item: tuple[str, tuple]) -> tuple:
    change, key = item
    return change, tuple((v is not None, str(v)) for v in key)


def revisions(dataset: str, old: pa.Table, new: pa.Table, key_columns: list[str], old_release: str,
              new_release: str, value_column: str = "value") -> pa.Table:
    """One row per observation added, removed or with a changed value from `old` to `new`.

    Observations are matched on `key_columns`, which must be unique in each table and be columns of
    indicator_revisions, where they are written as typed columns (ValueError otherwise); nulls compare equal to
    nulls. iso3 and year are taken from those columns when the tables have them. Rows are ordered by change,
    then key.
    """
    unknown = [c for c in key_columns if c not in INDICATOR_REVISIONS.schema.names]
    if unknown:
        raise ValueError(f"key columns {unknown} are not columns of {INDICATOR_REVISIONS.name}")
    before = _keyed(old, key_columns, value_column, old_release)
    after = _keyed(new, key_columns, value_column, new_release)
    changes = [("added", key) for key in after.keys() - before.keys()]
    changes += [("removed", key) for key in before.keys() - after.keys()]
    changes += [("value_changed", key) for key in after.keys() & before.keys()
                if before[key]["value"] != after[key]["value"]]
    rows = []
    for change, key in sorted(changes, key=_order):
        old_row, new_row = before.get(key), after.get(key)
        row = new_row or old_row
        rows.append({
            "dataset": dataset, "old_release": old_release, "new_release": new_release, "change": change,
            "iso3": row["iso3"], "year": row["year"], **dict(zip(key_columns, key)),
            "old_value": old_row["value"] if old_row else None,
            "new_value": new_row["value"] if new_row else None,
        })
    return pa.Table.from_pylist(rows, schema=INDICATOR_REVISIONS.schema)


def _only_release(table: pa.Table, what: str) -> str:
    releases = pc.unique(table["release_date"]).to_pylist()
    if len(releases) != 1:
        raise ValueError(f"{what} must hold exactly one IAFQ release, got {releases}")
    return releases[0].isoformat()


def seizure_revisions(old: pa.Table, new: pa.Table) -> pa.Table:
    """revisions() between two firearms_seizures releases, keyed on SEIZURE_KEY, releases named by their dates."""
    return revisions(
        "firearms_seizures",
        rank_duplicates(old, list(SEIZURE_LABELS)),
        rank_duplicates(new, list(SEIZURE_LABELS)),
        SEIZURE_KEY,
        _only_release(old, "old"),
        _only_release(new, "new"),
    )


def accumulate(existing: pa.Table | None, new: pa.Table) -> pa.Table:
    """A dataset's revision history: `existing` rows of other release pairs, then the `new` pair's rows."""
    if existing is None or existing.num_rows == 0:
        return new
    pairs = set(zip(new["old_release"].to_pylist(), new["new_release"].to_pylist()))
    keep = [(o, n) not in pairs for o, n in zip(existing["old_release"].to_pylist(), existing["new_release"].to_pylist())]
    return pa.concat_tables([existing.filter(pa.array(keep, pa.bool_())), new.cast(existing.schema)])


def release_pairs_revisions(seizures: pa.Table) -> pa.Table | None:
    """Revisions between every consecutive pair of IAFQ releases in `seizures`; None with fewer than two."""
    dates = sorted(set(seizures["release_date"].to_pylist()))
    if len(dates) < 2:
        return None
    parts = [seizures.filter(pc.equal(seizures["release_date"], pa.scalar(d, pa.date32()))) for d in dates]
    return pa.concat_tables([seizure_revisions(old, new) for old, new in zip(parts, parts[1:])])


SERIES_KEY = ["m49", "year", "dimensions"]


def series_revisions(series: str, old: pa.Table, new: pa.Table, existing: pa.Table | None) -> pa.Table | None:
    """A series' revision history after `new` replaced `old`; None when both are the same release."""
    old_release, new_release = old["release"][0].as_py(), new["release"][0].as_py()
    if old_release == new_release:
        return None
    return accumulate(existing, revisions(series, old, new, SERIES_KEY, old_release, new_release))

"""Compare two releases of a dataset observation by observation: indicator_revisions.

Inputs are tables already parsed from upstream — firearms_seizures from the UNODC IAFQ file
(https://data.unodc.org/sites/dataportal.unodc.org/files/<YYYY-MM>/data_iafq_firearms_trafficking.xlsx) and
indicator_observations from the UN SDG API (https://unstats.un.org/sdgapi/v1/sdg). Feeds indicator_revisions
(tasks.tables.INDICATOR_REVISIONS). Pure: tables in, table out.
"""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from tasks.tables import INDICATOR_REVISIONS, OBSERVATION_KEY
from tasks.unodc import OBSERVATION_LABELS

DUPLICATE_RANK = "duplicate_rank"

#: The IAFQ revision key: the labels plus the rank among rows that share them (see unodc.OBSERVATION_LABELS).
SEIZURE_KEY = [*OBSERVATION_LABELS, DUPLICATE_RANK]


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
    """A key column's values as JSON-ready Python values: maps as sorted objects, dates as ISO strings."""
    values = table[column].to_pylist()
    if pa.types.is_map(table.schema.field(column).type):
        return [None if v is None else dict(sorted(v)) for v in values]
    return [v.isoformat() if hasattr(v, "isoformat") else v for v in values]


def _keyed(table: pa.Table, key_columns: list[str], value_column: str, release: str) -> dict[str, dict]:
    """Rows by their key as JSON; ValueError naming the first repeated keys when the key is not unique."""
    keys = [
        json.dumps(dict(zip(key_columns, values)), ensure_ascii=False)
        for values in zip(*(_key_values(table, c) for c in key_columns))
    ]
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    if repeated:
        raise ValueError(f"release {release}: {len(repeated)} keys over {key_columns} are not unique, "
                         f"e.g. {repeated[:3]}")
    columns = {c: table[c].to_pylist() if c in table.column_names else [None] * table.num_rows
               for c in ("iso3", "year", value_column)}
    typed = [dict(zip(key_columns, values)) for values in zip(*(table[c].to_pylist() for c in key_columns))]
    return {
        key: {"iso3": iso3, "year": year, "value": None if value is None else float(value), "key": typed_key}
        for key, iso3, year, value, typed_key in zip(keys, columns["iso3"], columns["year"], columns[value_column],
                                                     typed)
    }


def revisions(dataset: str, old: pa.Table, new: pa.Table, key_columns: list[str], old_release: str,
              new_release: str, value_column: str = "value") -> pa.Table:
    """One row per observation added, removed or with a changed value from `old` to `new`.

    Observations are matched on `key_columns`, which must be unique in each table (ValueError otherwise); nulls
    compare equal to nulls. iso3 and year are taken from those columns when the tables have them. Rows are
    ordered by change, then key.
    """
    untyped = [c for c in key_columns if OBSERVATION_KEY.get_field_index(c) < 0]
    if untyped:
        raise ValueError(f"{dataset}: key columns {untyped} have no field in indicator_revisions.observation_key")
    before = _keyed(old, key_columns, value_column, old_release)
    after = _keyed(new, key_columns, value_column, new_release)
    changes = [("added", key) for key in after.keys() - before.keys()]
    changes += [("removed", key) for key in before.keys() - after.keys()]
    changes += [("value_changed", key) for key in after.keys() & before.keys()
                if before[key]["value"] != after[key]["value"]]
    rows = []
    for change, key in sorted(changes):
        old_row, new_row = before.get(key), after.get(key)
        row = new_row or old_row
        rows.append({
            "dataset": dataset, "old_release": old_release, "new_release": new_release, "change": change,
            "iso3": row["iso3"], "year": row["year"], "observation_key": row["key"],
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
        rank_duplicates(old, list(OBSERVATION_LABELS)),
        rank_duplicates(new, list(OBSERVATION_LABELS)),
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

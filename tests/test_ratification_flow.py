"""The treaty flow end to end through the CLI, on the recorded mirror and on broken copies of it."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import MTDSG, SHARED, make_mirror
from flows.cli import main
from tasks import untc

pytestmark = pytest.mark.usefixtures("prefect_harness")
FIREARMS_URL = untc.mtdsg_url("XVIII-12-c")


def published_files(warehouse: Path) -> dict[str, bytes]:
    """Every published and history file with its bytes (raw responses and quarantine excluded)."""
    return {str(p.relative_to(warehouse)): p.read_bytes() for p in sorted(warehouse.rglob("*.parquet"))
            if p.relative_to(warehouse).parts[0] not in ("_quarantine", "_raw")}


def test_recorded_mirror_end_to_end(tmp_path, capsys):
    warehouse = tmp_path / "wh"
    assert main(["run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", str(warehouse)]) == 1
    out = capsys.readouterr().out
    assert "XVIII-12-c" in out and "parties 115/115 stated, signatories 52/52 stated" in out

    published = {p.stem for p in (warehouse / "participation").glob("*.parquet")}
    assert published == {"XVIII-12-a", "XVIII-12-b", "XVIII-12-c", "XXVI-8", "XXVI-2"}
    quarantine = next((warehouse / "_quarantine").glob("*/XVIII-12"))
    reason = (quarantine / "reason.txt").read_text()
    assert "participant table missing although the document states parties" in reason
    assert "stated_parties=189" in reason
    report = json.loads((quarantine / "validation.json").read_text())
    assert report["treaties"]["success"] is False
    assert not (warehouse / "treaties" / "XVIII-12.parquet").exists()

    con = duckdb.connect()
    types = dict(con.sql(f"describe select * from '{warehouse}/participation/*.parquet'").fetchall()[i][:2]
                 for i in range(12))
    assert types["signature_date"] == types["consent_date"] == "DATE"
    mexico = con.sql(f"select consent_date, is_party from '{warehouse}/participation/*.parquet' "
                     "where mtdsg_no = 'XVIII-12-c' and iso3 = 'MEX'").fetchall()
    assert str(mexico[0][0]) == "2003-04-10" and mexico[0][1] is True
    assert pq.read_schema(warehouse / "participation" / "XXVI-8.parquet").field("consent_date").type == pa.date32()

    sha = hashlib.sha256((MTDSG / "XVIII-12-c.en.xml").read_bytes()).hexdigest()
    assert (warehouse / "_raw" / "objects" / sha[:2] / sha).exists()

    before = published_files(warehouse)
    assert main(["run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", str(warehouse)]) == 1
    assert re.search(r"XVIII-12-c +unchanged +source unchanged, not parsed", capsys.readouterr().out)
    assert published_files(warehouse) == before, "a rerun over unchanged sources publishes nothing new"


def test_other_bytes_with_the_same_data_are_parsed_once_then_skipped(tmp_path, capsys):
    """UNTC serves XXVI-8 re-serialised (other bytes, the same status): the run after that parses it once and
    finds most of its tables unchanged; the run after that knows what they are built from and parses nothing."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XXVI-8, short_name: ATT}\n")
    body = (MTDSG / "XXVI-8.en.xml").read_bytes().replace(b"<Document>", b"<Document>\n", 1)
    reserialised = make_mirror(tmp_path, {untc.mtdsg_url("XXVI-8"): ("XXVI-8.xml", body)})
    args = ["run", "--only", "treaties", "--treaties", str(catalog), "--warehouse", str(tmp_path / "wh")]
    assert main([*args, "--mirror", str(SHARED)]) == 0
    assert main([*args, "--mirror", str(reserialised)]) == 0
    assert re.search(r"XXVI-8 +\w+ +\d+ +parties 94/94", capsys.readouterr().out), "parsed again: new bytes"
    assert main([*args, "--mirror", str(reserialised)]) == 0
    assert re.search(r"XXVI-8 +unchanged +source unchanged, not parsed", capsys.readouterr().out)


def test_an_edited_suite_validates_its_batches_again_once(tmp_path, capsys, monkeypatch):
    """Same bytes, but a suite changed: the published treaty and the quarantined one are parsed and validated
    again under it (no --force needed); the run after that skips both again."""
    import shutil

    from tasks import validate

    suites = tmp_path / "expectations"
    shutil.copytree(validate.SUITES, suites)
    monkeypatch.setattr(validate, "SUITES", suites)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12, short_name: UNTOC}\n- {id: XXVI-8, short_name: ATT}\n")
    args = ["run", "--only", "treaties", "--treaties", str(catalog), "--mirror", str(SHARED), "--warehouse",
            str(tmp_path / "wh")]
    assert main(args) == 1
    assert main(args) == 1
    out = capsys.readouterr().out
    assert re.search(r"XXVI-8 +unchanged +source unchanged, not parsed", out)
    assert re.search(r"XVIII-12 +quarantined +\d+ +source unchanged since quarantined, not parsed again", out)
    suite = json.loads((suites / "participation.json").read_text())
    suite["expectations"].append({"type": "expect_column_to_exist", "kwargs": {"column": "participant"}})
    (suites / "participation.json").write_text(json.dumps(suite))
    assert main(args) == 1
    out = capsys.readouterr().out
    assert re.search(r"XXVI-8 +unchanged +\d+ +parties 94/94", out), "validated again, the same data"
    assert re.search(r"XVIII-12 +quarantined +\d+ +parties 0/189", out), "validated again, still failing"
    assert main(args) == 1
    out = capsys.readouterr().out
    assert re.search(r"XXVI-8 +unchanged +source unchanged, not parsed", out)
    assert re.search(r"XVIII-12 +quarantined +\d+ +source unchanged since quarantined, not parsed again", out)


def test_an_alias_an_operator_adds_applies_on_the_next_run_without_force(tmp_path, capsys, aliases_file):
    """UNTC lists a name the resolver does not know: the treaty is quarantined, and skipped while nothing changes.
    The operator adds the alias to country_aliases.yaml: the next run parses it again and publishes it."""
    from tasks import countries

    aliases_file.write_bytes((Path(__file__).resolve().parents[1] / "country_aliases.yaml").read_bytes())
    body = (MTDSG / "XXVI-8.en.xml").read_bytes().replace(b"Mexico", b"Estados Unidos Mexicanos")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XXVI-8, short_name: ATT}\n")
    args = ["run", "--only", "treaties", "--treaties", str(catalog), "--warehouse", str(tmp_path / "wh"),
            "--mirror", str(make_mirror(tmp_path, {untc.mtdsg_url("XXVI-8"): ("XXVI-8.xml", body)}))]
    assert main(args) == 1
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "Estados Unidos Mexicanos" in out
    assert re.search(r"XXVI-8 +quarantined +\d+ +source unchanged since quarantined, not parsed again", out)
    aliases_file.write_text(aliases_file.read_text().replace("aliases:\n",
                                                             "aliases:\n  Estados Unidos Mexicanos: MEX\n"))
    countries.declared.cache_clear()  # each run of the CLI is a new process, with new caches
    countries.resolve_name.cache_clear()
    assert main(args) == 0
    assert re.search(r"XXVI-8 +published +\d+ +parties 94/94", capsys.readouterr().out)
    assert main(args) == 0
    assert re.search(r"XXVI-8 +unchanged +source unchanged, not parsed", capsys.readouterr().out)


GOOD = (MTDSG / "XVIII-12-c.en.xml").read_bytes()


@pytest.mark.parametrize("name, body, problem", [
    ("maintenance.html", b"<!DOCTYPE html><html><body>Scheduled maintenance</body></html>", "got an HTML page"),
    ("truncated.xml", GOOD[: len(GOOD) // 2], "malformed or truncated XML"),
    ("empty.xml", b"", "empty body"),
    ("status.txt", GOOD, "wrong content type text/plain"),
])
def test_a_bad_body_is_archived_and_never_published(tmp_path, capsys, name, body, problem):
    warehouse, catalog = tmp_path / "wh", tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n- {id: XXVI-8, short_name: ATT}\n")
    args = ["run", "--only", "treaties", "--warehouse", str(warehouse), "--treaties", str(catalog)]
    assert main([*args, "--mirror", str(SHARED)]) == 0
    last_good = published_files(warehouse)

    assert main([*args, "--mirror", str(make_mirror(tmp_path, {FIREARMS_URL: (name, body)}))]) == 1
    out = capsys.readouterr().out
    assert f"untc: {FIREARMS_URL}: {problem}" in out
    assert published_files(warehouse) == last_good, "the last good data stays untouched"
    sha = hashlib.sha256(body).hexdigest()
    assert (warehouse / "_raw" / "objects" / sha[:2] / sha).read_bytes() == body, "the raw response is kept"
    reason = next((warehouse / "_quarantine").glob("*/XVIII-12-c/reason.txt")).read_text()
    assert problem in reason


def test_usage_and_configuration_errors_exit_2(tmp_path, capsys):
    assert main(["run", "--only", "nonsense"]) == 2
    bad = tmp_path / "catalog.yaml"
    bad.write_text("- {short_name: no id}\n")
    assert main(["run", "--treaties", str(bad), "--warehouse", str(tmp_path / "wh")]) == 2
    assert "needs an MTDSG id" in capsys.readouterr().err
    assert main(["run", "--only", "treaties", "--mirror", str(tmp_path / "nowhere"),
                 "--warehouse", str(tmp_path / "wh")]) == 2
    assert "unreadable mirror manifest" in capsys.readouterr().err


def test_changing_one_document_changes_only_that_treaty(tmp_path, capsys):
    warehouse, catalog = tmp_path / "wh", tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n- {id: XXVI-8, short_name: ATT}\n")
    args = ["run", "--only", "treaties", "--warehouse", str(warehouse), "--treaties", str(catalog)]
    assert main([*args, "--mirror", str(SHARED)]) == 0
    before = published_files(warehouse)
    # Mexico's ratification moves by one day: a real-world correction of one cell.
    edited = GOOD.replace(b"<Entry>10 Apr 2003</Entry>", b"<Entry>11 Apr 2003</Entry>", 1)
    assert edited != GOOD
    assert main([*args, "--mirror", str(make_mirror(tmp_path, {FIREARMS_URL: ("XVIII-12-c.xml", edited)}))]) == 0
    after = published_files(warehouse)
    changed = {path for path in after if before.get(path) != after[path]}
    current = {p for p in changed if not p.startswith("_history")}
    history = {p for p in changed if p.startswith("_history")}
    assert current == {"participation/XVIII-12-c.parquet", "treaty_events/XVIII-12-c.parquet",
                       "treaties/XVIII-12-c.parquet"}, "only that treaty's tables whose rows changed"
    assert len(history) == 3 and all("/XVIII-12-c." in p for p in history)
    assert all(after[p] == before[p] for p in before if p.startswith("_history")), "history is append-only"
    assert main([*args, "--force", "--mirror", str(SHARED)]) == 0
    assert re.search(r"treaties +XXVI-8 +published", capsys.readouterr().out), "--force parses and republishes"


def test_a_failed_publish_is_reported_per_batch_and_exits_1(tmp_path, capsys, monkeypatch):
    from tasks.publish import PublishError, Warehouse

    def disk_full(self, *args, **kwargs):
        raise PublishError(f"publishing to {self.root} failed, published data left as it was: [Errno 28] disk full")

    monkeypatch.setattr(Warehouse, "publish", disk_full)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XXVI-8, short_name: ATT}\n")
    args = ["run", "--only", "treaties", "--mirror", str(SHARED), "--treaties", str(catalog)]
    assert main([*args, "--warehouse", str(tmp_path / "wh")]) == 1
    out = capsys.readouterr().out
    assert re.search(r"treaties +XXVI-8 +failed", out) and "[Errno 28] disk full" in out
    assert not (tmp_path / "wh" / "participation").exists()


def test_recorded_snapshot_reads_as_status_at_15_january_2018(tmp_path, capsys):
    """Issue 8 item 7: the mirror serves the manifest's as_of as the HTTP Date header, which is the status date."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n")
    warehouse = tmp_path / "wh"
    assert main(["run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", str(warehouse),
                 "--treaties", str(catalog)]) == 0
    assert "as of 2018-01-15" in capsys.readouterr().out
    con = duckdb.connect()
    assert str(con.sql(f"select as_of from '{warehouse}/treaties/*.parquet'").fetchall()[0][0]) == "2018-01-15"
    years = con.sql(f"select max(year) from '{warehouse}/ratification_progress/*.parquet'").fetchall()[0][0]
    assert years == 2018, "ratification_progress runs to the as-of year"

"""Alerts: one per flow run when a batch fails, none when all passed; new parties as an opt-in notice."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from conftest import MTDSG, SHARED, make_mirror
from flows.cli import main
from tasks import alerts, tables, untc
from webhook import Receiver

FIREARMS_URL = untc.mtdsg_url("XVIII-12-c")


def participation(mtdsg_no: str) -> pa.Table:
    doc = untc.parse_document((MTDSG / f"{mtdsg_no}.en.xml").read_bytes(), "u", mtdsg_no, None)
    return pa.Table.from_pylist(doc.participation, schema=tables.PARTICIPATION.schema)


def test_new_parties_are_participants_that_became_party():
    after = participation("XVIII-12-c")
    rows = after.to_pylist()
    for row in rows:
        if row["participant"] == "Mexico":
            row["is_party"], row["consent_date"], row["consent_kind"] = False, None, None
    before = pa.Table.from_pylist(rows, schema=tables.PARTICIPATION.schema)
    new = alerts.new_parties(before, pa.concat_tables([after, participation("XXVI-8")]))
    assert [(p["mtdsg_no"], p["participant"], p["consent_kind"]) for p in new] == [
        ("XVIII-12-c", "Mexico", "ratification")], "a treaty seen for the first time (XXVI-8) announces nothing"
    subject, body = alerts.ratification_notice(new)
    assert "1 new party" in subject and "Mexico became party to XVIII-12-c (ratification, 2003-04-10)" in body
    assert alerts.ratification_notice([]) is None


@pytest.fixture
def webhook_block(prefect_harness):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    with Receiver() as receiver:
        CustomWebhookNotificationBlock(
            name="armswatch", url=receiver.url, json_data={"subject": "{{subject}}", "text": "{{body}}"},
        ).save("armswatch-test-alerts", overwrite=True)
        yield receiver


def test_one_alert_per_failing_run_naming_the_expectation_and_none_when_clean(tmp_path, webhook_block):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n- {id: XXVI-8, short_name: ATT}\n")
    args = ["run", "--only", "treaties", "--warehouse", str(tmp_path / "wh"), "--treaties", str(catalog)]
    env = pytest.MonkeyPatch()
    env.setenv("ARMSWATCH_ALERT_BLOCK", "custom-webhook/armswatch-test-alerts")
    try:
        assert main([*args, "--mirror", str(SHARED)]) == 0
        assert webhook_block.bodies == [], "no alert when everything passed"

        good = (MTDSG / "XVIII-12-c.en.xml").read_bytes()
        lying = good.replace(b"<Parties>115</Parties>", b"<Parties>116</Parties>")
        assert main([*args, "--mirror", str(make_mirror(tmp_path, {FIREARMS_URL: ("XVIII-12-c.xml", lying)}))]) == 1
    finally:
        env.undo()
    assert len(webhook_block.bodies) == 1, "exactly one alert for the flow run"
    alert = webhook_block.bodies[0]
    assert "XVIII-12-c" in alert["subject"] and "armswatch-treaties" in alert["subject"]
    assert "expect_column_pair_values_to_be_equal[parsed_parties]" in alert["text"]
    assert "parsed_parties=115, stated_parties=116" in alert["text"]
    assert "validation report: " in alert["text"] and "validation.json" in alert["text"]
    assert webhook_block.url not in alert["text"], "the webhook URL (a secret) is never in the message"


def test_the_same_failure_alerts_once_then_reminds_then_recovers_once(tmp_path, webhook_block, monkeypatch):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n- {id: XXVI-8, short_name: ATT}\n")
    args = ["run", "--only", "treaties", "--warehouse", str(tmp_path / "wh"), "--treaties", str(catalog)]
    monkeypatch.setenv("ARMSWATCH_ALERT_BLOCK", "custom-webhook/armswatch-test-alerts")
    lying = (MTDSG / "XVIII-12-c.en.xml").read_bytes().replace(b"<Parties>115</Parties>", b"<Parties>116</Parties>")
    bad = str(make_mirror(tmp_path, {FIREARMS_URL: ("XVIII-12-c.xml", lying)}))
    assert main([*args, "--mirror", bad]) == 1
    assert main([*args, "--mirror", bad]) == 1
    assert len(webhook_block.bodies) == 1, "the same batch failing on the same bytes alerts once"
    monkeypatch.setenv("ARMSWATCH_REMIND_DAYS", "0")
    assert main([*args, "--mirror", bad]) == 1
    assert len(webhook_block.bodies) == 2 and "reminder" in webhook_block.bodies[1]["text"]
    assert len(list((tmp_path / "wh" / "_quarantine").glob("*/XVIII-12-c"))) == 1, "quarantined once, not copied"
    monkeypatch.delenv("ARMSWATCH_REMIND_DAYS")
    assert main([*args, "--mirror", str(SHARED)]) == 0
    assert main([*args, "--mirror", str(SHARED)]) == 0
    assert len(webhook_block.bodies) == 3, "one recovered notice, then silence"
    assert "recovered" in webhook_block.bodies[2]["subject"] and "XVIII-12-c" in webhook_block.bodies[2]["text"]


def test_an_upgrade_parses_a_quarantined_batch_again_once_without_alerting_again(tmp_path, webhook_block,
                                                                                  monkeypatch, capsys):
    """New code (tasks.publish.CODE) parses the still-quarantined batch once more; failing for the same
    reasons on the same bytes, it is the same incident: no new alert, its quarantine not copied, skipped after."""
    from tasks import publish

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n")
    lying = (MTDSG / "XVIII-12-c.en.xml").read_bytes().replace(b"<Parties>115</Parties>", b"<Parties>116</Parties>")
    args = ["run", "--only", "treaties", "--warehouse", str(tmp_path / "wh"), "--treaties", str(catalog),
            "--mirror", str(make_mirror(tmp_path, {FIREARMS_URL: ("XVIII-12-c.xml", lying)}))]
    monkeypatch.setenv("ARMSWATCH_ALERT_BLOCK", "custom-webhook/armswatch-test-alerts")
    assert main(args) == 1
    (tmp_path / "upgrade.py").write_text("NEW = True\n")
    monkeypatch.setattr(publish, "CODE", (*publish.CODE, tmp_path / "upgrade.py"))  # a module added by an upgrade
    capsys.readouterr()
    assert main(args) == 1
    out = capsys.readouterr().out
    assert re.search(r"XVIII-12-c +quarantined", out) and "not parsed again" not in out, "parsed again"
    assert main(args) == 1
    assert "source unchanged since quarantined, not parsed again" in capsys.readouterr().out
    assert len(webhook_block.bodies) == 1, "one incident, one alert"
    assert len(list((tmp_path / "wh" / "_quarantine").glob("*/XVIII-12-c"))) == 1


def test_a_crash_still_prints_the_summary_and_alerts_with_exit_4(tmp_path, webhook_block, monkeypatch, capsys):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XXVI-8, short_name: ATT}\n")
    monkeypatch.setenv("ARMSWATCH_ALERT_BLOCK", "custom-webhook/armswatch-test-alerts")

    def broken(before, after):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(alerts, "new_parties", broken)
    code = main(["run", "--only", "treaties", "--warehouse", str(tmp_path / "wh"), "--treaties", str(catalog),
                 "--mirror", str(SHARED)])
    assert code == 4
    out = capsys.readouterr().out
    assert re.search(r"treaties +XXVI-8 +published", out) and "the run ended early: RuntimeError: unexpected" in out
    assert (tmp_path / "wh" / "participation" / "XXVI-8.parquet").exists(), "published before the crash"
    assert len(webhook_block.bodies) == 1 and "ended early" in webhook_block.bodies[0]["text"]


def test_retention_keeps_the_last_n_quarantines_per_batch_and_validation_results_per_table(tmp_path):
    from tasks.incidents import prune

    for run in range(5):
        for batch in ("XVIII-12", "XXVI-8"):
            (tmp_path / "_quarantine" / f"2026010{run}T000000Z-abc" / batch).mkdir(parents=True)
        (tmp_path / "_docs" / "validations" / "treaties" / "__none__" / f"2026010{run}T000000.0Z").mkdir(parents=True)
        (tmp_path / "_runs").mkdir(exist_ok=True)
        (tmp_path / "_runs" / f"2026010{run}.json").write_text("{}")
    prune(tmp_path, keep_last=2)
    assert sorted(p.parent.name for p in (tmp_path / "_quarantine").glob("*/XVIII-12")) == [
        "20260103T000000Z-abc", "20260104T000000Z-abc"]
    assert len(list((tmp_path / "_quarantine").glob("*/XXVI-8"))) == 2
    assert len(list((tmp_path / "_quarantine").iterdir())) == 2, "empty run folders removed"
    assert len(list((tmp_path / "_docs" / "validations" / "treaties" / "__none__").iterdir())) == 2
    assert len(list((tmp_path / "_runs").iterdir())) == 5, "run logs keep their own, longer history"


def test_incidents_alert_once_remind_recover_and_close_when_a_batch_leaves_the_catalog(tmp_path):
    from datetime import datetime, timedelta, timezone

    from tasks.audit import Outcome
    from tasks.incidents import Incidents
    from tasks.run import Report

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def run(day: float, *outcomes: Outcome):
        return Incidents(tmp_path).triage([Report("treaties", "r", list(outcomes))], now + timedelta(days=day),
                                          remind_after=7)

    bad = Outcome("IV-4", "quarantined", {"treaties": 1}, reason="r", fingerprint="f1")
    assert [kind for _, _, kind in run(0, bad).alert] == ["new"]
    assert run(1, bad).alert == [] and run(6.9, bad).alert == []
    assert [kind for _, _, kind in run(7, bad).alert] == ["reminder"]
    changed = Outcome("IV-4", "quarantined", {"treaties": 1}, reason="r2", fingerprint="f2")
    assert [kind for _, _, kind in run(8, changed).alert] == ["new"], "other bytes or failures alert again"
    decision = run(9, Outcome("IV-4", "published"))
    assert decision.recovered == [("treaties", "IV-4")] and run(10, Outcome("IV-4", "published")).recovered == []
    run(11, bad)
    assert Incidents(tmp_path).open
    run(12, Outcome("XXVI-8", "published"))
    assert Incidents(tmp_path).open == {}, "a batch removed from the catalog closes its incident"

"""Alerts: one per flow run when a batch fails, none when all passed; new parties as an opt-in notice."""

from __future__ import annotations

import json
import re
import socket

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
    notice = alerts.ratification_notice(new)
    assert "1 new party" in notice.subject
    assert "Mexico became party to XVIII-12-c (ratification, 2003-04-10)" in notice.body
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
    assert alert["subject"] == "armswatch: treaties XVIII-12-c quarantined"
    assert "treaties.parsed_parties: expect_column_pair_values_to_be_equal" in alert["text"]
    assert "parsed_parties=115, stated_parties=116" in alert["text"] and "\nparsed parties must" in alert["text"].replace("    ", "")
    assert re.search(r"evidence \(in the warehouse\): _quarantine/[^/]+/XVIII-12-c/ \(validation.json", alert["text"])
    assert str(tmp_path) not in alert["text"], "no worker-local absolute path"
    assert "armswatch status" in alert["text"]
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
        incidents = Incidents(tmp_path)
        decision = incidents.triage([Report("treaties", "r", list(outcomes), sources=["untc"])],
                                    now + timedelta(days=day), remind_after=7)
        incidents.settle(decision, now + timedelta(days=day), None)
        return decision

    bad = Outcome("IV-4", "quarantined", {"treaties": 1}, reason="r", fingerprint="f1", source="untc")
    assert [kind for _, _, kind in run(0, bad).alert] == ["new"]
    assert run(1, bad).alert == [] and run(6.9, bad).alert == []
    assert [kind for _, _, kind in run(7, bad).alert] == ["reminder"]
    changed = Outcome("IV-4", "quarantined", {"treaties": 1}, reason="r2", fingerprint="f2", source="untc")
    assert [kind for _, _, kind in run(8, changed).alert] == ["new"], "other bytes or failures alert again"
    decision = run(9, Outcome("IV-4", "published"))
    assert decision.recovered == [("treaties", "IV-4")] and run(10, Outcome("IV-4", "published")).recovered == []
    run(11, bad)
    assert Incidents(tmp_path).open
    run(12, Outcome("XXVI-8", "published"))
    assert Incidents(tmp_path).open == {}, "a batch removed from the catalog closes its incident"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.usefixtures("prefect_harness")
def test_an_alert_url_receiver_down_then_up_gets_exactly_one_post_and_its_secret_never_shows(
        tmp_path, monkeypatch, capsys, caplog):
    """ARMSWATCH_ALERT_URL with the receiver down on the first offline run and up on the second (same data):
    the first is not counted as alerted (logged with its cause, shown by status), the second POSTs once, a third
    sends nothing. The URL's token appears in no output, log, state file or alert."""
    port, token = _free_port(), "s3cr3t-t0ken-4242"
    monkeypatch.setenv("ARMSWATCH_ALERT_URL", f"http://127.0.0.1:{port}/hook/{token}")
    warehouse = tmp_path / "wh"
    args = ["run", "--only", "treaties", "--warehouse", str(warehouse), "--mirror", str(SHARED)]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert re.search(r"^alerts: not delivered \(webhook http://127\.0\.0\.1:\d+/…: ConnectionError.*\); retried by "
                     r"the next run$", out, re.M), out
    assert main(["status", "--warehouse", str(warehouse)]) == 1
    assert "alert not delivered: webhook http://127.0.0.1" in capsys.readouterr().out
    assert main(["status", "--warehouse", str(warehouse), "--json"]) == 1
    status = json.loads(capsys.readouterr().out)
    assert [(q["batch"], q["alert_delivered"]) for q in status["open_quarantines"]] == [("XVIII-12", False)]
    with Receiver(port=port) as receiver:
        assert main(args) == 1
        assert main(args) == 1
    out = capsys.readouterr().out
    assert len(receiver.bodies) == 1, receiver.bodies
    assert receiver.paths == [f"/hook/{token}"]
    alert = receiver.bodies[0]
    assert alert["subject"] == "armswatch: treaties XVIII-12 quarantined"
    assert [(b["batch"], b["status"]) for b in alert["failing_batches"]] == [("XVIII-12", "quarantined")]
    assert alert["failing_batches"][0]["evidence"].startswith("_quarantine/")
    assert "flow_run_url" in alert and "armswatch status" in alert["summary"]
    assert str(tmp_path) not in json.dumps(alert)
    assert main(["status", "--warehouse", str(warehouse), "--json"]) == 1
    status = json.loads(capsys.readouterr().out)
    assert [q["alert_delivered"] for q in status["open_quarantines"]] == [True]
    stored = "".join(p.read_text(errors="replace") for p in warehouse.rglob("*") if p.is_file()
                     and p.suffix in ("", ".json", ".txt", ".md", ".html"))
    assert token not in out + caplog.text + stored


def test_a_typod_block_slug_is_logged_shown_and_retried_until_delivered(tmp_path, webhook_block, monkeypatch,
                                                                         capsys, caplog):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n")
    lying = (MTDSG / "XVIII-12-c.en.xml").read_bytes().replace(b"<Parties>115</Parties>", b"<Parties>116</Parties>")
    warehouse = tmp_path / "wh"
    args = ["run", "--only", "treaties", "--warehouse", str(warehouse), "--treaties", str(catalog),
            "--mirror", str(make_mirror(tmp_path, {FIREARMS_URL: ("XVIII-12-c.xml", lying)}))]
    monkeypatch.setenv("ARMSWATCH_ALERT_BLOCK", "custom-webhook/armswatch-test-alrets")
    assert main(args) == 1
    assert "failure alert not delivered: block custom-webhook/armswatch-test-alrets: ValueError" in caplog.text
    capsys.readouterr()
    assert main(["status", "--warehouse", str(warehouse)]) == 1
    assert "alert not delivered: block custom-webhook/armswatch-test-alrets" in capsys.readouterr().out
    assert main(args) == 1
    assert webhook_block.bodies == []
    monkeypatch.setenv("ARMSWATCH_ALERT_BLOCK", "custom-webhook/armswatch-test-alerts")
    assert main(args) == 1
    assert main(args) == 1
    assert len(webhook_block.bodies) == 1 and "XVIII-12-c" in webhook_block.bodies[0]["subject"]


@pytest.mark.usefixtures("prefect_harness")
def test_no_channel_says_so_once_in_the_summary_and_in_status(tmp_path, monkeypatch, capsys):
    for name in ("ARMSWATCH_ALERT_URL", "ARMSWATCH_ALERT_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XXVI-8, short_name: ATT}\n")
    warehouse = tmp_path / "wh"
    assert main(["run", "--only", "treaties", "--warehouse", str(warehouse), "--treaties", str(catalog),
                 "--mirror", str(SHARED)]) == 0
    assert capsys.readouterr().out.count("alerts: none configured") == 1
    assert main(["status", "--warehouse", str(warehouse)]) == 0
    assert "alerts: none configured" in capsys.readouterr().out


def test_webhook_and_apprise_channels_count_a_send_only_when_confirmed():
    message = alerts.Message("armswatch: treaties XVIII-12 quarantined", "body", [{"batch": "XVIII-12"}])
    with Receiver() as receiver:
        alerts.Channel("webhook", receiver.url).send(message)
        port = receiver.server.server_address[1]
        alerts.Channel("apprise", f"json://127.0.0.1:{port}/hook").send(message)
    assert receiver.bodies[0]["subject"] == message.subject and receiver.bodies[0]["failing_batches"]
    assert receiver.bodies[1]["title"] == message.subject, "Apprise's JSON carries the subject as title"
    with Receiver(status=500) as refusing:
        with pytest.raises(alerts.AlertNotDelivered, match=r"^webhook http://127\.0\.0\.1:\d+/…: the receiver "
                                                            r"answered HTTP 500$"):
            alerts.Channel("webhook", refusing.url + "/t0ps3cret").send(message)
        port = refusing.server.server_address[1]
        with pytest.raises(alerts.AlertNotDelivered, match=r"^apprise json://…: Apprise reported") as refused:
            alerts.Channel("apprise", f"json://user:pa55word@127.0.0.1:{port}/hook").send(message)
    assert "pa55word" not in str(refused.value)


def test_an_alert_stays_short_however_many_batches_fail():
    from tasks.audit import Outcome
    from tasks.run import Report

    outcomes = [Outcome(f"https://example.org/release-{i:04d}-with-a-long-name.xlsx", "failed", reason=f"gone {i}")
                for i in range(3000)]
    message = alerts.failure_alert("run", [Report("indicators", "r", outcomes)])
    assert len(message.subject) <= alerts.MAX_SUBJECT and re.search(r" and \d+ more$", message.subject)
    assert message.body.count("\n- indicators / ") == alerts.MAX_BATCHES and "- and 2990 more batch(es)" in message.body
    assert len(message.body) < 4000 and len(message.batches) == alerts.MAX_BATCHES


def test_incidents_close_only_when_their_source_ran(tmp_path):
    from datetime import datetime, timezone

    from tasks.audit import Outcome
    from tasks.incidents import Incidents
    from tasks.run import Report

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def run(*reports: Report):
        incidents = Incidents(tmp_path)
        incidents.settle(incidents.triage(list(reports), now), now, None)
        return set(Incidents(tmp_path).open)

    run(Report("treaties", "r", [Outcome("XVIII-12", "quarantined", fingerprint="t", source="untc")],
               sources=["untc"]),
        Report("indicators", "r", [Outcome("2024-08-26", "failed", fingerprint="i", source="iafq"),
                                   Outcome("VC_DTH_TOTR", "published", source="sdg")], sources=["iafq", "sdg"]))
    only_sdg = Report("indicators", "r", [Outcome("VC_DTH_TOTR", "published", source="sdg")], sources=["sdg"])
    assert run(only_sdg) == {"treaties/XVIII-12", "indicators/2024-08-26"}, "--only sdg closes nothing else"
    assert run(Report("indicators", "r", [], sources=["iafq"])) == {"treaties/XVIII-12"}


def test_retention_is_bounded_per_source_when_batch_names_change_every_run(tmp_path):
    from tasks.incidents import PER_SOURCE, mark_source, prune

    for run in range(40):
        for link in range(3):  # links rotated on every run: every batch name is new
            folder = tmp_path / "_quarantine" / f"202601{run:02d}T000000Z-abc" / f"release-{run}-{link}"
            folder.mkdir(parents=True)
            mark_source(folder, "iafq")
        (tmp_path / "_quarantine" / f"202601{run:02d}T000000Z-abc" / "XVIII-12").mkdir()
    prune(tmp_path, keep_last=2)
    kept = sorted((tmp_path / "_quarantine").glob("*/release-*"))
    assert len(kept) == 2 * PER_SOURCE and kept[-1].name == "release-39-2"
    assert len(list((tmp_path / "_quarantine").glob("*/XVIII-12"))) == 2


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_refused_by_the_warehouse_lock_alerts(tmp_path, monkeypatch, capsys):
    from tasks.publish import Warehouse

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XXVI-8, short_name: ATT}\n")
    with Receiver() as receiver:
        monkeypatch.setenv("ARMSWATCH_ALERT_URL", receiver.url)
        with Warehouse(tmp_path / "wh").locked():
            code = main(["run", "--only", "treaties", "--mirror", str(SHARED), "--warehouse", str(tmp_path / "wh"),
                         "--treaties", str(catalog)])
    assert code == 3 and "is in use by another run" in capsys.readouterr().err
    assert [b["subject"] for b in receiver.bodies] == [
        "armswatch: armswatch-treaties refused: the warehouse is in use by another run"]
    assert "Nothing was fetched or published" in receiver.bodies[0]["summary"]


def test_the_summary_fits_100_columns_with_one_row_per_batch_and_rows_per_table_where_ambiguous():
    from tasks.alerts import display_key, summary_lines
    from tasks.audit import Outcome, once
    from tasks.run import Report

    page = "report page https://data.unodc.org/datareport/firearm-seizures"
    assert display_key(page) == "report page firearm-seizures"
    detail = "parties 173/173 stated, signatories 117/117 stated, as of 2018-01-15; unresolved participants: Ruritania"
    report = Report("treaties", "run-1", once([  # a batch skipped, then failed, is one outcome
        Outcome("XXVI-8", "unchanged", {"treaties": 1}, detail="source unchanged, not parsed"),
        Outcome("XXVI-8", "failed", {"treaties": 1, "participation": 135}, reason="unexpected KeyError: 'x'"),
        Outcome(page, "failed", reason=f"iafq: {page.split()[-1]}: HTTP 404 Not Found"),
        Outcome("XVIII-12-a", "published", {"treaties": 1, "participation": 175}, detail=detail),
        Outcome("XVIII-12-b", "published", {"treaties": 1, "declarations": 3})]))
    lines = summary_lines([report], published={"XVIII-12-a"})
    text = "\n".join(lines)
    assert all(len(line) <= 100 for line in lines if "https://" not in line), text
    assert [line.split()[1] for line in lines if re.match(r"treaties +[^/ ]", line)] == ["XXVI-8", "report", "XVIII-12-a", "XVIII-12-b"]
    assert "total: 2 published, 0 unchanged, 0 quarantined, 2 failed" in text, "a batch appears once"
    flat = " ".join(text.split())  # the detail wraps between clauses, under itself
    assert "unresolved participants: Ruritania" in text and "rows: treaties 1, declarations 3" in flat
    assert re.search(r"XVIII-12-a +published +175 ", text) and "rows: of participation for a batch" in text
    assert f"    iafq: {page.split()[-1]}: HTTP 404 Not Found" in lines, "an error stays one line, its URL whole"

"""What people hear about a run: the failure alert, the new-ratifications notice, and the run summary.

Pure text builders plus `send`, which hands a message to a Prefect notification block chosen by name
(`<block-type>/<block-name>`, e.g. `custom-webhook/armswatch-alerts`, `slack-webhook/ops`,
`microsoft-teams-webhook/arms`, `apprise-notification-block/email`). Secrets (webhook URLs) stay inside the
block: nothing here logs or writes them. Tables read: participation (for new parties). Tables fed: none.
"""

from __future__ import annotations

import pyarrow as pa

from tasks.run import Report


def failure_alert(flow_run: str, reports: list[Report]) -> tuple[str, str] | None:
    """(subject, body) naming every failing batch, its failing expectations and where its evidence is; None if
    every batch passed."""
    failed = [(r, o) for r in reports for o in r.outcomes if not o.ok]
    if not failed:
        return None
    keys = ", ".join(o.key for _, o in failed)
    subject = f"armswatch: {len(failed)} batch(es) failed in flow run {flow_run}: {keys}"
    lines = [subject, ""]
    for report, outcome in failed:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        lines.append(f"- {report.flow} / {outcome.key}: {outcome.status}{detail}")
        if outcome.failures:
            lines += [f"    failing expectation {f}" for f in outcome.failures]
        else:
            lines.append(f"    error: {outcome.reason}")
        if outcome.quarantine:
            lines.append(f"    quarantined batch: {outcome.quarantine}")
            if outcome.failures:
                lines.append(f"    validation report: {outcome.quarantine / 'validation.json'}")
    return subject, "\n".join(lines)


def new_parties(before: pa.Table, after: pa.Table) -> list[dict]:
    """Participants that became party since `before`, for treaties that `before` already had (a treaty seen for
    the first time announces nothing)."""
    known = set(before["mtdsg_no"].to_pylist())
    was_party = {(r["mtdsg_no"], r["participant"]) for r in before.select(["mtdsg_no", "participant", "is_party"])
                 .to_pylist() if r["is_party"]}
    return [
        {k: r[k] for k in ("mtdsg_no", "participant", "consent_kind", "consent_date")}
        for r in after.select(["mtdsg_no", "participant", "is_party", "consent_kind", "consent_date"]).to_pylist()
        if r["is_party"] and r["mtdsg_no"] in known and (r["mtdsg_no"], r["participant"]) not in was_party
    ]


def ratification_notice(parties: list[dict]) -> tuple[str, str] | None:
    if not parties:
        return None
    subject = f"armswatch: {len(parties)} new part{'y' if len(parties) == 1 else 'ies'} to followed treaties"
    body = "\n".join(f"- {p['participant']} became party to {p['mtdsg_no']} ({p['consent_kind']}, "
                     f"{p['consent_date']})" for p in parties)
    return subject, body


def summary_markdown(flow_run: str, reports: list[Report]) -> str:
    lines = [f"# armswatch run {flow_run}", ""]
    for report in reports:
        lines += [f"## {report.flow} (run {report.run_id})", "", "```", *report.lines()[1:], "```", ""]
    return "\n".join(lines)


def batch_rows(reports: list[Report]) -> list[dict]:
    """One row per batch for the Prefect table artifact."""
    return [{
        "flow": r.flow, "batch": o.key, "status": o.status, "passed": o.ok,
        "rows": sum(o.rows.values()), "failing_expectations": "; ".join(str(f) for f in o.failures) or o.reason,
    } for r in reports for o in r.outcomes]


def send(block: str, message: tuple[str, str]) -> None:
    """Notify through the Prefect notification block saved as `block` (`<type-slug>/<name>`)."""
    from prefect.blocks.core import Block

    subject, body = message
    Block.load(block).notify(body=body, subject=subject)

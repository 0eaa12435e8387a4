"""What people hear about a run: the failure alert, the new-ratifications notice, and the run summary.

Pure text builders plus `send`, which hands a message to a Prefect notification block chosen by name
(`<block-type>/<block-name>`, e.g. `custom-webhook/armswatch-alerts`, `slack-webhook/ops`,
`microsoft-teams-webhook/arms`, `apprise-notification-block/email`). Secrets (webhook URLs) stay inside the
block: nothing here logs or writes them. Tables read: participation (for new parties). Tables fed: none.
"""

from __future__ import annotations

import pyarrow as pa

from tasks.run import Report, totals


def failure_alert(flow_run: str, reports: list[Report], selected: list | None = None) -> tuple[str, str] | None:
    """(subject, body) naming every failing batch, its failing expectations and where its evidence is; None if
    every batch passed. `selected`: only these (outcome, "new" | "reminder") pairs (alert de-duplication)."""
    kinds = None if selected is None else {id(o): kind for o, kind in selected}
    failed = [(r, o) for r in reports for o in r.outcomes if not o.ok and (kinds is None or id(o) in kinds)]
    crashed = [r for r in reports if r.crash]
    if not failed and not crashed:
        return None
    keys = ", ".join(o.key for _, o in failed)
    subject = (f"armswatch: {len(failed)} batch(es) failed in flow run {flow_run}" + (f": {keys}" if keys else "")
               + ("; the run ended early" if crashed else ""))
    lines = [subject, ""]
    for report in crashed:
        lines.append(f"- {report.flow}: the run ended early ({report.crash}); what it published is listed in the "
                     f"run summary")
    for report, outcome in failed:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        again = " (reminder: still failing on the same source bytes)" if kinds and kinds[id(outcome)] == "reminder" else ""
        lines.append(f"- {report.flow} / {outcome.key}: {outcome.status}{detail}{again}")
        if outcome.failures:
            lines += [f"    failing expectation {f}" for f in outcome.failures]
        else:
            lines.append(f"    error: {outcome.reason}")
        if outcome.quarantine:
            lines.append(f"    quarantined batch: {outcome.quarantine}")
            if outcome.failures:
                lines.append(f"    validation report: {outcome.quarantine / 'validation.json'}")
    return subject, "\n".join(lines)


def recovery_notice(flow_run: str, recovered: list[tuple[str, str]]) -> tuple[str, str] | None:
    """One notice naming the batches that pass again after an alert; None if none did."""
    if not recovered:
        return None
    subject = f"armswatch: {len(recovered)} batch(es) recovered in flow run {flow_run}"
    return subject, "\n".join([subject, ""] + [f"- {flow} / {key}: passes again and was published"
                                                for flow, key in recovered])


def describe(failure) -> list[str]:
    """A failed expectation as short readable lines: which expectation, observed vs expected, what it means."""
    column = failure.kwargs.get("column") or failure.kwargs.get("column_A") or ""
    expected = []
    for name, value in failure.kwargs.items():
        if name in ("column", "batch_id", "result_format") or value is None:
            continue
        if name == "row_condition" and isinstance(value, dict):
            where = value.get("column")
            where = where.get("name") if isinstance(where, dict) else where
            expected.append(f"(where {where} {value.get('operator', '')} {value.get('parameter', '')})")
            continue
        expected.append(f"{name} {_plain(value)}")
    lines = [f"{failure.table}{'.' + column if column else ''}: {failure.expectation}",
             f"  observed {_short(failure.observed)}",
             f"  expected {_short('; '.join(expected)) or '(see the validation report)'}"]
    if failure.note:
        lines.append(f"  meaning: {failure.note}")
    return lines


def _plain(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def _short(value, limit: int = 160) -> str:
    text = " ".join(_plain(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def summary_lines(reports: list[Report]) -> list[str]:
    """The run summary: one aligned row per batch, totals, then each quarantine or failure reason."""
    rows = [(r.flow, o.key, o.status, str(sum(o.rows.values())) if o.rows else "",
             o.detail or ", ".join(o.tables_changed)) for r in reports for o in r.outcomes]
    header = ("flow", "batch", "status", "rows", "detail")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def line(row):
        return "  ".join([*(cell.ljust(w) if i != 3 else cell.rjust(w) for i, (cell, w) in
                           enumerate(zip(row, widths))), row[4]]).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths) + ("-" * 6,)), *(line(row) for row in rows)]
    out.append("total: " + ", ".join(f"{n} {s}" for s, n in totals(reports).items()))
    for report in reports:
        if report.crash:
            out.append(f"{report.flow}: the run ended early: {report.crash}")
        for o in report.outcomes:
            if o.ok:
                continue
            out.append(f"{o.key} {o.status}" + (f" (kept in {o.quarantine})" if o.quarantine else "") + ":")
            if o.failures:
                out += [f"    {text}" for f in o.failures for text in describe(f)]
            else:
                out += [f"    {line[:len(line) - len(line.lstrip())]}{_short(line, 400)}" for line in o.reason.splitlines()]
    return out


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
    passed = [f"{r.flow} / {o.key}" for r in reports for o in r.outcomes if o.ok]
    runs = ", ".join(sorted({r.run_id for r in reports}))
    return "\n".join([f"# armswatch run {flow_run}", "", f"armswatch run id: {runs}", "",
                      f"Passed: {', '.join(passed) or 'none'}", "", "```", *summary_lines(reports), "```", ""])


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

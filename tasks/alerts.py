"""What people hear about a run: the failure alert, the recovery and new-ratifications notices, and the run summary.

Pure text builders, plus the alert channel (`channel`, `Channel.send`): a Prefect notification block chosen by
slug (`<block-type>/<block-name>`, e.g. `custom-webhook/armswatch-alerts`, `slack-webhook/ops`), or the URL in
`ARMSWATCH_ALERT_URL`: an http(s) URL gets a JSON POST (subject, summary, failing batches, flow-run link), any other
scheme is an Apprise URL (`mailto://`, `tgram://`, `slack://`, ...). A send counts only when the channel confirmed
it (2xx, Apprise's True, a block's notify without exception); otherwise `AlertNotDelivered` says why. Secrets
(webhook URLs and their tokens) stay out of every log line, artifact, state file and alert text: channels and
errors are named redacted. Tables read: participation (for new parties). Tables fed: none.
"""

from __future__ import annotations

import logging
import re
import textwrap
from contextlib import nullcontext
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pyarrow as pa

from tasks.audit import Outcome
from tasks.environment import environment
from tasks.errors import excerpt
from tasks.publish import file_name
from tasks.run import Report, totals
from tasks.tables import PARTICIPATION, TREATY_STATUS

#: An alert names at most this many batches in detail (the rest as "and N more"), each with at most
#: MAX_REASONS reasons; its subject stays within MAX_SUBJECT characters.
MAX_BATCHES, MAX_REASONS, MAX_SUBJECT = 10, 5, 200
#: Seconds to connect to / wait for a webhook receiver.
WEBHOOK_TIMEOUT = (5, 20)
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


class AlertNotDelivered(Exception):
    """The channel did not confirm the send; the message names the channel (redacted) and the cause."""


@dataclass
class Message:
    subject: str
    body: str
    batches: list[dict] = field(default_factory=list)  # failing batches: flow, batch, status, reasons, evidence
    link: str | None = None  # the flow run in the Prefect UI


def redacted(url: str) -> str:
    """A URL as it may be shown: an http(s) URL by scheme, host and port only; any other (an Apprise URL, whose
    host may itself be a token) by its scheme."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    if parts.scheme in ("http", "https") and parts.hostname:
        return f"{parts.scheme}://{parts.hostname}{port}/…"
    return f"{parts.scheme or 'url'}://…"


def scrub(text: str, secret: str | None = None) -> str:
    """`text` (an error message) with every URL redacted and every piece of `secret` (user, password, host of a
    non-http URL, path segments, query) removed; one line, at most 300 characters."""
    text = URL.sub(lambda m: redacted(m.group()), text)
    if secret:
        parts = urlsplit(secret)
        pieces = {parts.username, parts.password, parts.query, parts.fragment, parts.path, *parts.path.split("/")}
        if parts.scheme not in ("http", "https") or "@" in parts.netloc:
            pieces.add(parts.netloc)
        for piece in sorted((p for p in pieces if p and len(p) >= 4), key=len, reverse=True):
            text = text.replace(piece, "…")
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"


@dataclass(frozen=True)
class Channel:
    """Where alerts go: `kind` block (target: a block slug), webhook (an http(s) URL) or apprise (an Apprise URL)."""

    kind: str
    target: str = field(repr=False)

    @property
    def name(self) -> str:
        """The channel as logs, the summary and `armswatch status` show it: no secret."""
        return f"block {self.target}" if self.kind == "block" else f"{self.kind} {redacted(self.target)}"

    def send(self, message: Message) -> None:
        """Deliver `message`; AlertNotDelivered (with the cause, redacted) unless the channel confirmed it."""
        try:
            if self.kind == "webhook":
                self._post(message)
            elif self.kind == "apprise":
                self._apprise(message)
            else:
                self._block(message)
        except AlertNotDelivered:
            raise
        except Exception as exc:
            detail = scrub(str(exc) or getattr(exc, "log", ""), self.target)
            raise AlertNotDelivered(f"{self.name}: {type(exc).__name__}" + (f": {detail}" if detail else "")) from None

    def _post(self, message: Message) -> None:
        import requests

        payload = {"subject": message.subject, "summary": message.body, "failing_batches": message.batches,
                   "flow_run_url": message.link}
        response = requests.post(self.target, json=payload, timeout=WEBHOOK_TIMEOUT, allow_redirects=False)
        if not 200 <= response.status_code < 300:
            raise AlertNotDelivered(f"{self.name}: the receiver answered HTTP {response.status_code}")

    def _apprise(self, message: Message) -> None:
        import apprise

        quiet = logging.getLogger("apprise")  # its lines name hosts and paths, which may be the secret (tgram://TOKEN)
        was, quiet.disabled = quiet.disabled, True
        try:
            client = apprise.Apprise()
            if not client.add(self.target):
                raise AlertNotDelivered(f"{self.name}: not a URL Apprise can send to")
            if not client.notify(body=message.body, title=message.subject):
                raise AlertNotDelivered(f"{self.name}: Apprise reported the notification as not sent")
        finally:
            quiet.disabled = was

    def _block(self, message: Message) -> None:
        from prefect.blocks.core import Block

        block = Block.load(self.target)
        with block.raise_on_failure() if hasattr(block, "raise_on_failure") else nullcontext():
            block.notify(body=message.body, subject=message.subject)


def channel(alert_block: str | None = None) -> Channel | None:
    """The alert channel: the `alert_block` parameter, else `ARMSWATCH_ALERT_URL` (a webhook or Apprise URL), else
    `ARMSWATCH_ALERT_BLOCK`; None when none is configured."""
    if alert_block:
        return Channel("block", alert_block)
    settings = environment()
    if url := settings.alert_url:
        return Channel("webhook" if urlsplit(url).scheme in ("http", "https") else "apprise", url)
    if block := settings.alert_block:
        return Channel("block", block)
    return None


def relative(path, root) -> str:
    """Where a quarantine folder is, relative to the warehouse (no worker-local absolute path)."""
    text, base = str(path), str(root).rstrip("/")
    return text[len(base) + 1:] if text.startswith(base + "/") else text


def capped(parts: list[str], limit: int = MAX_SUBJECT, separator: str = ", ") -> str:
    """`parts` joined, as many as fit in `limit` characters, the rest as "and N more"."""
    out = ""
    for i, part in enumerate(parts):
        rest = len(parts) - i - 1
        candidate = out + (separator if out else "") + part
        if len(candidate) + (len(f" and {rest} more") if rest else 0) > limit:
            return f"{out} and {len(parts) - i} more" if out else f"{part[:limit - 12]}… and {rest} more"
        out = candidate
    return out


def failure_alert(flow_run: str, reports: list[Report], selected: list | None = None, root=None,
                  link: str | None = None) -> Message | None:
    """The alert naming what failed and where (subject: flow, batch and status, capped), with short reasons, where
    the evidence is (relative to the warehouse `root`), the flow run's `link` when known and `armswatch status`
    as the next step; None if every batch passed. `selected`: only these (outcome, "new" | "reminder") pairs
    (alert de-duplication). At most MAX_BATCHES batches in detail."""
    kinds = None if selected is None else {id(o): kind for o, kind in selected}
    failed = [(r, o) for r in reports for o in r.outcomes if not o.ok and (kinds is None or id(o) in kinds)]
    crashed = [r for r in reports if r.crash]
    if not failed and not crashed:
        return None
    parts = [f"{r.flow} ended early" for r in crashed] + [f"{r.flow} {o.key} {o.status}" for r, o in failed]
    subject = capped(parts, MAX_SUBJECT - len("armswatch: "))
    subject = "armswatch: " + subject
    counts = totals(reports)
    lines = [f"armswatch flow run {flow_run}: {counts['quarantined']} batch(es) quarantined, {counts['failed']} "
             f"failed, {counts['published'] + counts['unchanged']} published or unchanged.", ""]
    if link:
        lines += [f"Flow run: {link}", ""]
    for report in crashed:
        lines.append(f"- {report.flow}: the run ended early ({scrub(report.crash)}); what it published is in the "
                     f"run summary")
    batches = []
    for report, outcome in failed[:MAX_BATCHES]:
        reasons = ([text for f in outcome.failures for text in describe(f)] if outcome.failures
                   else [scrub(line) for line in outcome.reason.splitlines() if line.strip()])
        evidence = relative(outcome.quarantine, root) if outcome.quarantine and root is not None else None
        again = kinds and kinds[id(outcome)] == "reminder"
        batches.append({"flow": report.flow, "batch": outcome.key, "status": outcome.status,
                        "reminder": bool(again), "reasons": reasons, "evidence": evidence})
        detail = f" ({outcome.detail})" if outcome.detail else ""
        lines.append(f"- {report.flow} / {outcome.key}: {outcome.status}{detail}"
                     + (" (reminder: still failing on the same source bytes)" if again else ""))
        shown = reasons[:MAX_REASONS * 4] if outcome.failures else reasons[:MAX_REASONS]
        lines += [f"    {text}" for text in shown]
        if len(shown) < len(reasons):
            lines.append(f"    and {len(reasons) - len(shown)} more line(s) in the evidence")
        if evidence:
            lines.append(f"    evidence (in the warehouse): {evidence}/"
                         + (" (validation.json: the validation report)" if outcome.failures else ""))
    if len(failed) > MAX_BATCHES:
        lines.append(f"- and {len(failed) - MAX_BATCHES} more batch(es)")
    lines += ["", "Next step: `armswatch status` on the warehouse lists every open quarantine and why."]
    return Message(subject, "\n".join(lines), batches, link)


def refused_alert(flow_run: str, flow: str, why: str, link: str | None = None) -> Message:
    """The alert of a run that the warehouse lock refused (another run holds it): nothing ran."""
    lines = [f"armswatch flow run {flow_run} did not run: {scrub(why)}", ""]
    if link:
        lines += [f"Flow run: {link}", ""]
    lines += ["Nothing was fetched or published; the next scheduled run tries again. Runs of one deployment wait for "
              "each other (concurrency limit 1); give the work pool a concurrency limit of 1 to make runs of "
              "different deployments wait too.", "",
              "Next step: `armswatch status` on the warehouse shows the last runs."]
    return Message(f"armswatch: {flow} refused: the warehouse is in use by another run"[:MAX_SUBJECT],
                   "\n".join(lines), [], link)


def recovery_notice(flow_run: str, recovered: list[tuple[str, str]]) -> Message | None:
    """One notice naming the batches that pass again after an alert; None if none did."""
    if not recovered:
        return None
    subject = "armswatch: " + capped([f"{flow} {key} recovered" for flow, key in recovered],
                                     MAX_SUBJECT - len("armswatch: "))
    shown = [f"- {flow} / {key}: passes again and was published" for flow, key in recovered[:MAX_BATCHES]]
    more = [f"- and {len(recovered) - MAX_BATCHES} more"] if len(recovered) > MAX_BATCHES else []
    return Message(subject, "\n".join([f"armswatch flow run {flow_run}:", "", *shown, *more]))


def describe(failure) -> list[str]:
    """A failed expectation as short readable lines: what it means in plain words (the suite's note; else the
    expectation), observed vs expected, then the expectation's name."""
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
    name = f"{failure.table}{'.' + column if column else ''}: {failure.expectation}"
    lines = [failure.note or name,
             f"  observed {excerpt(_plain(failure.observed), VALUE_CHARS, quoted=False)}",
             "  expected " + (excerpt("; ".join(expected), VALUE_CHARS, quoted=False) or "(see the validation report)")]
    if failure.note:
        lines.append(f"  expectation {name}")
    return lines


#: Characters of a failing expectation's observed or expected value in the summary (tasks/errors.py excerpt).
VALUE_CHARS = 160


def _plain(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return ", ".join(_plain(v) for v in value)
    return str(value)


WIDTH = 100  # columns of the run summary on a terminal
BATCH_WIDTH = 28  # columns of a batch key in the summary (display_key)


def display_key(key: str, width: int = BATCH_WIDTH) -> str:
    """A batch key as the summary shows it: a URL in it by its last path segment (the page or file, not the
    address: the reason names it whole), then cut to `width` keeping its end, which tells batches apart."""
    key = re.sub(r"https?://\S+", lambda m: (urlsplit(m.group()).path.rstrip("/").rsplit("/", 1)[-1]
                                             or urlsplit(m.group()).netloc), key)
    return key if len(key) <= width else "…" + key[-(width - 1):]


def _clauses(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` columns, broken only between its clauses (after ', ' or '; '), so no
    clause is split; a clause longer than `width` has a line of its own."""
    lines = [""]
    for clause in re.split(r"(?<=[,;]) ", text):
        if lines[-1] and len(lines[-1]) + 1 + len(clause) > width:
            lines.append(clause)
        else:
            lines[-1] = f"{lines[-1]} {clause}" if lines[-1] else clause
    return lines


#: The table whose rows count for a batch of several tables: a treaty's participants, a treaty's status per state.
MAIN_TABLES = (PARTICIPATION.name, TREATY_STATUS.name)


def _rows_cell(o: Outcome) -> tuple[str, str]:
    """(rows column, rows per table for the detail): one table's rows, or the main table's (MAIN_TABLES) of a
    batch of several; a batch of several tables without one has its rows per table in the detail, since a sum
    over them would count nothing in particular."""
    main = next((t for t in MAIN_TABLES if t in o.rows), None) if len(o.rows) > 1 else next(iter(o.rows), None)
    if main is not None:
        return str(o.rows[main]), ""
    return "", "rows: " + ", ".join(f"{table} {n}" for table, n in o.rows.items()) if o.rows else ""


def summary_lines(reports: list[Report], published: set[str] | None = None) -> list[str]:
    """The run summary, WIDTH columns wide: one aligned row per batch (its key shortened, its detail wrapped under
    itself), totals, then why each batch did not pass, in plain words first (each failing expectation's meaning,
    what was observed and expected, then its name), with whether the batch still has published data (`published`:
    the batch keys the warehouse holds; None when not known)."""
    outcomes = [(r.flow, o) for r in reports for o in r.outcomes]
    rows = []
    for flow, o in outcomes:
        count, per_table = _rows_cell(o)
        detail = "; ".join(d for d in (o.detail or ", ".join(o.tables_changed), per_table) if d)
        rows.append((flow, display_key(o.key), o.status, count, detail))
    header = ("flow", "batch", "status", "rows", "detail")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    room = max(30, WIDTH - sum(widths) - 2 * 4)

    def line(row, detail: str) -> str:
        return "  ".join([*(cell.ljust(w) if i != 3 else cell.rjust(w) for i, (cell, w) in
                           enumerate(zip(row, widths))), detail]).rstrip()

    out = [line(header, header[4]), line(tuple("-" * w for w in widths), "-" * 6)]
    for row in rows:
        first, *more = _clauses(row[4], room)
        out += [line(row[:4], first), *(line(("",) * 4, text) for text in more)]
    out.append("total: " + ", ".join(f"{n} {s}" for s, n in totals(reports).items()))
    if alerts := next((r.alerts for r in reports if r.alerts), ""):
        out.append(f"alerts: {alerts}")
    mains = [t for t in MAIN_TABLES if any(len(o.rows) > 1 and t in o.rows for _, o in outcomes)]
    if mains:
        out.append(f"rows: of {' / '.join(mains)} for a batch of several tables")
    for report in reports:
        if report.crash:
            out.append(f"{report.flow}: the run ended early: {report.crash}")
    for flow, o in outcomes:
        if o.ok:
            continue
        kept = ("" if published is None else ": its last good data stays published" if file_name(o.key) in published
                else ": no published data yet" if o.status == "quarantined" else "")
        out.append(f"{flow} / {display_key(o.key)} {o.status}{kept}")
        if not o.failures:  # an error names its URL: kept on one line, to be read and searched whole
            out += [f"    {text[:len(text) - len(text.lstrip())]}{excerpt(text, 400, quoted=False)}"
                    for text in o.reason.splitlines()]
        for text in (text for f in o.failures for text in describe(f)):
            indent = "    " + text[:len(text) - len(text.lstrip())]
            out += textwrap.wrap(text.strip(), WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                                 break_long_words=False, break_on_hyphens=False)
        if o.quarantine:
            out.append(f"    evidence kept in {o.quarantine}")
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


def ratification_notice(parties: list[dict]) -> Message | None:
    if not parties:
        return None
    subject = f"armswatch: {len(parties)} new part{'y' if len(parties) == 1 else 'ies'} to followed treaties"
    body = "\n".join(f"- {p['participant']} became party to {p['mtdsg_no']} ({p['consent_kind']}, "
                     f"{p['consent_date']})" for p in parties)
    return Message(subject, body)


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

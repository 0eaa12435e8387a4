"""`armswatch automations apply`: Prefect automations from files (automations/*.yaml, in the format of
`prefect automation create --from-file`) on the Prefect server named by PREFECT_API_URL, notifying the alert
channel (tasks/alerts.py `channel`) when an armswatch flow run fails or crashes, and when none ended for 26 hours.

Idempotent: an automation of the same name is replaced. Each `send-notification` action without a block gets the
channel's block: the block of `alert_block` / ARMSWATCH_ALERT_BLOCK, or for an http(s) ARMSWATCH_ALERT_URL a
custom-webhook block saved as ALERT_URL_BLOCK (the URL then stays inside the block, as a secret). Upstream: the
Prefect API. Tables fed: none.
"""

from __future__ import annotations

from pathlib import Path

from tasks.alerts import Channel, channel
from tasks.catalog import read_yaml

FILES = Path(__file__).resolve().parents[1] / "automations"
ALERT_URL_BLOCK = "armswatch-alert-url"


class AutomationsError(Exception):
    """The automations cannot be applied as configured (no channel, an Apprise URL)."""


def block_id(target: Channel):
    """The notification block the automations notify, for the alert channel `target`."""
    from prefect.blocks.core import Block
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    if target.kind == "block":
        return Block.load(target.target)._block_document_id
    if target.kind == "webhook":
        block = CustomWebhookNotificationBlock(name="armswatch", url=target.target,
                                               json_data={"subject": "{{subject}}", "summary": "{{body}}"})
        block.save(ALERT_URL_BLOCK, overwrite=True)
        return block._block_document_id
    raise AutomationsError(f"automations notify through a Prefect block: {target.name} is an Apprise URL; save it "
                           f"as a notification block and give its slug (ARMSWATCH_ALERT_BLOCK)")


def load(folder: Path = FILES) -> list[dict]:
    """Every automation of the folder's *.yaml files, as written (read by the configuration files' one loader,
    tasks/catalog.py `read_yaml`: CatalogError naming the file and where it is wrong)."""
    found = []
    for path in sorted(folder.glob("*.yaml")):
        data = read_yaml(path, "automations file")
        found += data.get("automations", []) if isinstance(data, dict) else data or []
    return found


def apply(alert_block: str | None = None, folder: Path = FILES) -> list[str]:
    """Create (or replace) the automations of `folder`, notifying the alert channel; their names."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    target = channel(alert_block)
    if target is None:
        raise AutomationsError("alerts: none configured: set ARMSWATCH_ALERT_URL or ARMSWATCH_ALERT_BLOCK (or pass "
                               "--alert-block) so the automations have a channel to notify")
    block = block_id(target)
    automations = []
    for data in load(folder):
        for action in data.get("actions", []):
            if action.get("type") == "send-notification":
                action.setdefault("block_document_id", str(block))
        automations.append(AutomationCore.model_validate(data))
    with get_client(sync_client=True) as client:
        for automation in automations:
            for existing in client.read_automations_by_name(automation.name):
                client.delete_automation(existing.id)
            client.create_automation(automation)
    return [a.name for a in automations]

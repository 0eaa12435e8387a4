"""armswatch's environment settings (`ARMSWATCH_*`), declared and validated in one place.

The CLI checks them before any flow starts, and every flow checks them when it opens its run (deployments start the
flows without the CLI), so a bad value is a configuration error (exit code 2) in one line naming the variable, a
bounded excerpt of its value and what it must be, before anything is fetched or published; an `ARMSWATCH_*`
variable that names no setting (a typo) is one too. An empty value means unset. Upstream: none. Tables fed: none.
"""

from __future__ import annotations

import math
import os

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from tasks.catalog import CatalogError
from tasks.errors import excerpt

PREFIX = "ARMSWATCH_"
#: A Prefect block by its slug: `<block type>/<block name>`, e.g. slack-webhook/armswatch-alerts.
BLOCK_SLUG = r"^[a-z0-9][a-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_-]*$"
#: What a value that does not match its pattern should look like.
SHAPES = {"alert_url": "a URL: https://... (a webhook) or an Apprise URL such as mailto://...",
          "alert_block": "a block slug <block type>/<block name>, e.g. slack-webhook/armswatch-alerts",
          "news_block": "a block slug <block type>/<block name>, e.g. slack-webhook/armswatch-news"}
#: Settings whose value is a secret: never quoted.
SECRETS = frozenset({"alert_url"})


class SettingError(CatalogError):
    """An environment setting is malformed or unknown (a configuration error: exit code 2)."""


class Environment(BaseModel):
    """Every ARMSWATCH_* variable (field name = the variable without its prefix, lower case)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mirror: StrictStr | None = Field(default=None, description="recorded mirror folder served instead of live URLs")
    alert_url: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$",
                                        description="alerts by webhook (http/https) or an Apprise URL")
    alert_block: StrictStr | None = Field(default=None, pattern=BLOCK_SLUG, description="alerts by a Prefect block")
    news_block: StrictStr | None = Field(default=None, pattern=BLOCK_SLUG,
                                         description="new-ratifications notice by a Prefect block")
    remind_days: float = Field(default=7.0, ge=0, description="days between reminders of an open incident")
    keep: int = Field(default=10, ge=1, description="quarantine folders kept per batch")
    server_startup_timeout: float = Field(default=300.0, gt=0, description="seconds the temporary server may take")
    temporary_server: StrictStr | None = Field(default=None, description="set by the CLI for its own flows")
    home: StrictStr | None = Field(default=None, description="the project folder deployment runs start in "
                                                             "(prefect.yaml's pull step)")

    @field_validator("remind_days", "server_startup_timeout")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("should be a finite number")
        return value


def _variable(field: str) -> str:
    return PREFIX + field.upper()


def environment(variables: dict[str, str] | None = None) -> Environment:
    """The settings of `variables` (default: this process's environment); SettingError naming each variable that
    is unknown or malformed, and what it should be."""
    variables = os.environ if variables is None else variables
    given = {name[len(PREFIX):].lower(): value for name, value in variables.items()
             if name.startswith(PREFIX) and value != ""}
    try:
        return Environment(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0])
            if error["type"] == "extra_forbidden":
                what = "names no setting (known: " + ", ".join(map(_variable, Environment.model_fields)) + ")"
            else:
                what = f"should be {SHAPES[field]}" if error["type"] == "string_pattern_mismatch" else error["msg"]
            value = "(not shown: a secret)" if field in SECRETS else excerpt(given[field], 40)
            problems.append(f"{_variable(field)}={value}: {what}")
        raise SettingError("environment: " + "; ".join(problems)) from None

"""The treaty catalog (treaties.yaml): which MTDSG documents to follow, under which short names.

Each entry is `{id: XVIII-12-c, short_name: Firearms Protocol, url: <optional>}`; without `url` the UNTC
status XML URL is derived from the id. Tables fed: treaties.short_name, and the treaty columns of the panel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tasks.untc import mtdsg_url

DEFAULT = Path(__file__).resolve().parent.parent / "treaties.yaml"
_ID = re.compile(r"^[IVXL]+-\d+(?:-[a-z])?$")


class CatalogError(ValueError):
    """The catalog file is missing or malformed (a configuration error: exit code 2)."""


@dataclass(frozen=True)
class Treaty:
    id: str
    short_name: str
    url: str


def load(path: Path = DEFAULT) -> list[Treaty]:
    try:
        entries = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"treaty catalog {path}: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"treaty catalog {path}: expected a non-empty list of {{id, short_name, url?}}")
    treaties, seen = [], set()
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not _ID.match(str(entry.get("id", ""))):
            raise CatalogError(f"treaty catalog {path}: entry {n} needs an MTDSG id such as XVIII-12-c: {entry!r}")
        if entry["id"] in seen:
            raise CatalogError(f"treaty catalog {path}: {entry['id']} is listed twice")
        seen.add(entry["id"])
        treaties.append(Treaty(entry["id"], str(entry.get("short_name") or entry["id"]),
                               entry.get("url") or mtdsg_url(entry["id"])))
    return treaties

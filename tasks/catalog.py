"""The catalogs: treaties.yaml (which MTDSG documents to follow) and indicators.yaml (which SDG series and
UNODC IAFQ releases).

A treaty entry is `{id: XVIII-12-c, short_name: Firearms Protocol, url: <optional>}`; without `url` the UNTC
status XML URL is derived from the id. Tables fed: treaties.short_name, the treaty columns of the panel, and
(through the indicator sources) indicator_observations and firearms_seizures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from tasks.untc import MTDSG_ID, mtdsg_url

DEFAULT = Path(__file__).resolve().parent.parent / "treaties.yaml"
DEFAULT_INDICATORS = DEFAULT.with_name("indicators.yaml")


class CatalogError(ValueError):
    """A catalog file is missing or malformed (a configuration error: exit code 2)."""


@dataclass(frozen=True)
class Treaty:
    id: str
    short_name: str
    url: str


def load(path: Path | str | None = None) -> list[Treaty]:
    """The treaty catalog at `path` (default: the project's treaties.yaml)."""
    path = path or DEFAULT
    try:
        entries = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"treaty catalog {path}: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"treaty catalog {path}: expected a non-empty list of {{id, short_name, url?}}")
    treaties, seen = [], set()
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not MTDSG_ID.match(str(entry.get("id", ""))):
            raise CatalogError(f"treaty catalog {path}: entry {n} needs an MTDSG id such as XVIII-12-c: {entry!r}")
        if entry["id"] in seen:
            raise CatalogError(f"treaty catalog {path}: {entry['id']} is listed twice")
        seen.add(entry["id"])
        treaties.append(Treaty(entry["id"], str(entry.get("short_name") or entry["id"]),
                               entry.get("url") or mtdsg_url(entry["id"])))
    return treaties


@dataclass(frozen=True)
class Series:
    code: str
    indicator: str
    page_size: int


@dataclass(frozen=True)
class IndicatorSources:
    sdg_base: str
    series: tuple[Series, ...]
    iafq_releases: tuple[str, ...]


def load_indicators(path: Path | str | None = None) -> IndicatorSources:
    """The indicator sources at `path` (default: the project's indicators.yaml)."""
    path = path or DEFAULT_INDICATORS
    try:
        config = yaml.safe_load(Path(path).read_text())
        series = tuple(Series(str(s["code"]), str(s["indicator"]), int(s["page_size"])) for s in config["sdg"]["series"])
        return IndicatorSources(str(config["sdg"]["base"]).rstrip("/"), series,
                                tuple(str(u) for u in config["iafq"]["releases"]))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"indicator sources {path}: {type(exc).__name__}: {exc}") from None

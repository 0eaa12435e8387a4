"""Configuration files, validated against a schema: treaties.yaml (which MTDSG documents to follow), the
per-source YAML files in sources/ (tasks/source.py, tasks/registry.py) and country_aliases.yaml (tasks/countries.py).

A treaty entry is `{id: XVIII-12-c, short_name: Firearms Protocol, url: <optional>}`; without `url` the UNTC
status XML URL is derived from the id. Every file is checked with pydantic: wrong types, unknown keys (a typo
such as `ulr:`), empty or malformed values are a CatalogError (exit code 2) naming the file, the entry and the
key. Every file is read by one YAML loader (`read_yaml`) that refuses anchors and aliases (a few hundred bytes of
nested aliases expand to gigabytes) and duplicate keys (YAML would keep the last one silently), and whose errors
quote bounded excerpts only. Tables fed: treaties.short_name, the treaty columns of the panel, and (through the
sources) every table.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictStr, TypeAdapter, ValidationError, field_validator

from tasks import countries
from tasks.errors import excerpt
from tasks.untc import MTDSG_ID, mtdsg_url

DEFAULT = Path(__file__).resolve().parent.parent / "treaties.yaml"

Model = TypeVar("Model", bound=BaseModel)


class CatalogError(ValueError):
    """A configuration file is missing or malformed (a configuration error: exit code 2)."""


class Strict(BaseModel):
    """Base of every configuration model: unknown keys are errors, values are not coerced from other types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TreatyEntry(Strict):
    id: StrictStr | None = Field(default=None, validate_default=True, description="MTDSG id, e.g. XVIII-12-c")
    short_name: StrictStr | None = Field(default=None, min_length=1)
    url: HttpUrl | None = Field(default=None, strict=False)

    @field_validator("id")
    @classmethod
    def _mtdsg_id(cls, value: str | None) -> str:
        if value is None or not MTDSG_ID.fullmatch(value):
            raise ValueError(f"needs an MTDSG id such as XVIII-12-c, not {value!r}")
        return value


@dataclass(frozen=True)
class Treaty:
    id: str
    short_name: str
    url: str


class ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader, stricter: an anchor, an alias (hence a merge key `<<: *x`) or a mapping that repeats a
    key is an error at its line and column."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise yaml.composer.ComposerError(None, None, f"{kind}{excerpt(event.anchor, 40)[1:-1]}: anchors and "
                                                          "aliases are not allowed here", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses it below
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {excerpt(key)}",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path | str, what: str):
    """The parsed YAML of a configuration file (ConfigLoader); CatalogError (one line) when it cannot be read or
    parsed, naming the line and column."""
    try:
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=ConfigLoader)  # noqa: S506 (safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CatalogError(f"{what} {path}: not valid YAML: {(exc.problem or exc.context)[:200]}{where}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(f"{what} {path}: {str(exc)[:200]}") from None


def _label(data, loc: tuple) -> str:
    """Where a problem is: `entry 3 (XVIII-12-c)` in a list, `series[2] (VC_IHR_PSRC)` inside a mapping."""
    parts, node = [], data
    for step in loc[:-1]:
        if isinstance(step, int):
            parts.append(f"[{step + 1}]" if parts else f"entry {step + 1}")
            node = node[step] if isinstance(node, list) and step < len(node) else None
            name = (node.get("id") or node.get("code")) if isinstance(node, dict) else None
            if isinstance(name, str):
                parts.append(f" ({name.strip()})")
        else:
            parts.append(f".{step}" if parts else str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts) or "top level"


def _key(loc: tuple) -> str:
    if not loc:
        return "(whole file)"
    return f"entry {loc[-1] + 1}" if isinstance(loc[-1], int) else str(loc[-1])


def validate(schema: type[Model] | TypeAdapter, data, path: Path | str, what: str):
    """`data` checked against a model (or TypeAdapter); CatalogError naming the file, and the entry and key of
    every problem."""
    adapter = schema if isinstance(schema, TypeAdapter) else TypeAdapter(schema)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        problems = [f"{_label(data, tuple(e['loc']))}, key {_key(tuple(e['loc']))}: {e['msg']} "
                    f"(got {excerpt(e['input'])})" for e in exc.errors(include_url=False)]
        raise CatalogError(f"{what} {path}: " + "; ".join(problems)) from None


_TREATIES = TypeAdapter(list[TreatyEntry])


class CountryAliases(Strict):
    aliases: dict[StrictStr, StrictStr] = Field(default={}, description="a name as a source publishes it -> ISO3")
    non_states: list[StrictStr] = Field(default=[], description="participants that are not states")

    @field_validator("aliases")
    @classmethod
    def _iso3(cls, value: dict[str, str]) -> dict[str, str]:
        if bad := [code for code in value.values() if len(code) != 3 or not code.isalpha()]:
            raise ValueError(f"expected ISO 3166-1 alpha-3 codes, got {bad[:3]}")
        return value


def country_aliases(path: Path | str) -> CountryAliases:
    """country_aliases.yaml (tasks/countries.py) checked; CatalogError naming the file and the problem."""
    return validate(CountryAliases, read_yaml(path, "country aliases") or {}, path, "country aliases")


def load(path: Path | str | None = None) -> list[Treaty]:
    """The treaty catalog at `path` (default: the project's treaties.yaml), once the aliases its documents' names
    resolve through are known to be readable (countries.declared)."""
    countries.declared()
    path = path or DEFAULT
    data = read_yaml(path, "treaty catalog")
    if not isinstance(data, list) or not data:
        raise CatalogError(f"treaty catalog {path}: expected a non-empty list of {{id, short_name, url?}}")
    entries, seen = validate(_TREATIES, data, path, "treaty catalog"), set()
    for entry in entries:
        if entry.id in seen:
            raise CatalogError(f"treaty catalog {path}: {entry.id} is listed twice")
        seen.add(entry.id)
    return [Treaty(e.id, e.short_name or e.id, str(e.url) if e.url else mtdsg_url(e.id)) for e in entries]

"""The registry of sources: the one list flows, the CLI (`--only <source>`), the data dictionary and the
deployments iterate. Each source is a module under tasks/ (tasks/source.py: the protocol) configured by
`sources/<name>.yaml`. Adding a source: write its module, its YAML, its expectations/<table>.json suites, and
add its class to SOURCES. Upstream: each source's. Tables fed: each source's `tables` and `derived_tables`.

The treaty source, the UN Treaty Collection (https://treaties.un.org), is registered here too (`TREATY_SOURCE`):
`sources/untc.yaml` gives its origin and hosts, cited with the others (`origins`); its catalog is treaties.yaml
(tasks/catalog.py), its flow flows/ratification.py and its parser tasks/untc.py.
"""

from __future__ import annotations

from pathlib import Path

from tasks import catalog, untc
from tasks.m49 import M49Source
from tasks.sdg import SdgSource
from tasks.source import Origin, Source, SourceConfig
from tasks.tables import Table
from tasks.unodc import IafqSource

FOLDER = Path(__file__).resolve().parent.parent / "sources"

#: Every source, in the order a run processes them.
SOURCES: tuple[type[Source], ...] = (SdgSource, IafqSource, M49Source)
#: The treaty source's name: sources/untc.yaml.
TREATY_SOURCE = untc.SOURCE


def names() -> list[str]:
    return [source.name for source in SOURCES]


def load(folder: Path | str | None = None, only: str | None = None) -> list[Source]:
    """Every registered source (or just `only`) built from `<folder>/<name>.yaml`, validated; CatalogError naming
    the file, the entry and the key of any problem, or an unknown source name."""
    folder = Path(folder or FOLDER)
    if only is not None and only not in names():
        raise catalog.CatalogError(f"unknown source {only!r}; registered sources: {', '.join(names())}")
    if not folder.is_dir():
        raise catalog.CatalogError(f"sources configuration {folder}: not a folder of <source>.yaml files")
    unknown = sorted(p.name for p in folder.glob("*.yaml") if p.stem not in [*names(), TREATY_SOURCE])
    if unknown:
        raise catalog.CatalogError(f"sources configuration {folder}: {', '.join(unknown)} name no registered source "
                                   f"({', '.join(names())})")
    sources = []
    for source in SOURCES:
        if only in (None, source.name):
            path = folder / f"{source.name}.yaml"
            data = catalog.read_yaml(path, f"source {source.name}:")
            sources.append(source(catalog.validate(source.config_model, data, path, f"source {source.name}:")))
    return sources


def tables() -> tuple[Table, ...]:
    """Every table the registered sources feed, each once: the parsed tables, then the derived ones."""
    seen: dict[str, Table] = {}
    for table in [t for s in SOURCES for t in s.tables] + [t for s in SOURCES for t in s.derived_tables]:
        seen.setdefault(table.name, table)
    return tuple(seen.values())


def treaty_source(folder: Path | str | None = None) -> SourceConfig:
    """The treaty source's configuration, `<folder>/untc.yaml` (its origin and hosts; the catalog is treaties.yaml),
    validated; CatalogError naming the file, the entry and the key of any problem."""
    path = Path(folder or FOLDER) / f"{TREATY_SOURCE}.yaml"
    what = f"source {TREATY_SOURCE}:"
    return catalog.validate(SourceConfig, catalog.read_yaml(path, what), path, what)


def origins(folder: Path | str | None = None) -> list[Origin]:
    """Where each registered source's data comes from and how to cite it (its `origin`), in run order: the
    treaties first."""
    return [treaty_source(folder).origin, *(source.origin for source in load(folder))]

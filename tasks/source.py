"""A source as one unit: the protocol every source module implements, and its provenance.

A source (tasks/sdg.py, tasks/unodc.py, ...; registered in tasks/registry.py) is configured by one YAML file
`sources/<name>.yaml`: its `origin` (producer, URLs, licence, citation; like owid/etl's `origin`), the `hosts` it
may fetch from (scheme://host[:port]; nothing else is ever requested for it, tasks/hosts.py) and its own keys,
validated by its `config_model`. A flow drives every source the same way, one batch at a time:

    batches(client)          -> the batches to run (from the configuration, or discovered upstream)
    fetch(batch, client)     -> the batch's raw responses, archived (ask these before parsing: their sha256s
                                say whether anything changed)
    parse(batch, responses)  -> (batch key, {table: pyarrow table}) for the source's `tables`
    relate(staged, reader)   -> the staged batches seen together (e.g. which release is the latest), and notes
    derive(reader, before, published) -> batches derived from what is now published (revisions)

The treaty source fits the same shape (a batch per treaties.yaml entry, one URL each, parsed by tasks/untc.py),
and so does a single-URL source such as the UN M49 list (one batch, one URL, one table).
Upstream: whatever each source names. Tables fed: those each source declares.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import pyarrow as pa
from pydantic import Field, HttpUrl, StrictStr, field_validator

from tasks import hosts
from tasks.archive import Response
from tasks.catalog import Strict
from tasks.errors import ArmswatchError
from tasks.tables import Table

#: Staged batches: batch key -> {table: rows of that batch}.
Staged = dict[str, dict[Table, pa.Table]]
#: Notes on batches that ran nothing this time (e.g. a release no longer linked upstream): key -> note.
Notes = dict[str, str]


class Licence(Strict):
    name: StrictStr = Field(min_length=1)
    url: HttpUrl = Field(strict=False)


class Origin(Strict):
    """Where the data comes from and how to cite it (the fields of owid/etl's `origin`)."""

    producer: StrictStr = Field(min_length=1)
    title: StrictStr = Field(min_length=1)
    description: StrictStr | None = None
    url_main: HttpUrl = Field(strict=False)
    url_download: HttpUrl | None = Field(default=None, strict=False)
    license: Licence
    citation_full: StrictStr = Field(min_length=1)
    attribution_short: StrictStr | None = None


class SourceConfig(Strict):
    """Base of a source's YAML file: its origin, the hosts it may fetch from, and the source's own keys."""

    origin: Origin
    hosts: list[StrictStr] = Field(min_length=1, description="origins it may fetch: https://host[:port], no path")

    @field_validator("hosts")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                found = hosts.origin(item)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an origin: {exc}") from None
            if found != item.lower().rstrip("/"):
                raise ValueError(f"{item!r} is not an origin: write it as {found} (scheme, host, port; no path)")
        return value


@dataclass(frozen=True)
class Batch:
    """One unit of publishing: `name` labels it before parsing (logs, errors); `urls` are what it fetches first."""

    name: str
    urls: tuple[str, ...]


class Reader(Protocol):
    """What sources read of the warehouse (tasks.publish.Warehouse)."""

    def read(self, table: Table) -> pa.Table: ...

    def batches(self, table: Table) -> dict: ...

    def read_batch(self, table: Table, key: str) -> pa.Table | None: ...


@dataclass(frozen=True)
class Client:
    """How a source fetches: one URL, or several concurrently, `(url(s), kind, max_bytes=None)`, only from the
    source's hosts; each response archived before it is returned. Both raise an ArmswatchError (FetchError) when
    the document could not be fetched; `max_bytes` lowers the cap on a body (a page read only for its links)."""

    get: Callable[..., Response]
    get_all: Callable[..., list[Response]]
    errors: tuple[type[Exception], ...] = (ArmswatchError,)


class Source(ABC):
    """A source built from its validated configuration; see the module docstring for the protocol."""

    name: ClassVar[str]
    config_model: ClassVar[type[SourceConfig]]
    kind: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    derived_tables: ClassVar[tuple[Table, ...]] = ()

    def __init__(self, config: SourceConfig):
        self.config = config

    @property
    def origin(self) -> Origin:
        return self.config.origin

    @property
    def allowed(self) -> frozenset[str]:
        """The origins the source may fetch from (discovered links and redirects included): its `hosts`."""
        return hosts.origins(self.config.hosts)

    @abstractmethod
    def batches(self, client: Client) -> tuple[list[Batch], dict[str, str]]:
        """The batches to run, and the errors of discovery steps that failed (label -> error)."""

    def fetch(self, batch: Batch, client: Client) -> list[Response]:
        """The batch's raw responses (by default its URLs, fetched concurrently)."""
        return client.get_all(list(batch.urls), self.kind)

    @abstractmethod
    def parse(self, batch: Batch, responses: list[Response]) -> tuple[str, dict[Table, pa.Table]]:
        """The batch's key and tables; raises ParseError naming the source, the URL and the problem."""

    def relate(self, staged: Staged, reader: Reader) -> tuple[Staged, Notes]:
        return staged, {}

    def derive(self, reader: Reader, before: Staged, published: set[str]) -> list[tuple[tuple[Table, ...], Staged]]:
        """Batches derived from the published data after this run's publish: (tables, staged) groups."""
        return []

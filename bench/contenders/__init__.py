"""Registry of contenders: name -> where the class lives, imported only in its own process.

Nothing is imported here, so the runner can list and spawn a contender whose library is
missing and report it as unavailable.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from bench.contenders.base import AsyncContender, SyncContender

Mode = Literal["sync", "async"]


@dataclass(frozen=True)
class Entry:
    """A registered contender."""

    name: str
    mode: Mode
    module: str
    label: str
    #: The class's name in ``module``.
    cls: str = "Contender"

    def load(self) -> type[SyncContender | AsyncContender]:
        """Import the contender class; raises ImportError when its library is missing."""
        module = importlib.import_module(f"bench.contenders.{self.module}")
        cls: type[SyncContender | AsyncContender] = getattr(module, self.cls)
        return cls


CONTENDERS: tuple[Entry, ...] = (
    Entry("raw", "sync", "raw_sync", "raw driver (sqlite3 / psycopg / PyMySQL)"),
    Entry("sa-core", "sync", "sa_core", "SQLAlchemy Core"),
    Entry("sa-orm", "sync", "sa_orm", "SQLAlchemy ORM Session"),
    Entry("peewee", "sync", "peewee_orm", "Peewee"),
    Entry("activerecord", "sync", "activerecord_sync", "activerecord"),
    Entry("activerecord-metrics", "sync", "activerecord_metered", "activerecord, metrics on"),
    Entry("raw-async", "async", "raw_async", "raw driver (aiosqlite / asyncpg / asyncmy)"),
    Entry("sa-core-async", "async", "sa_core_async", "SQLAlchemy async Core"),
    Entry("sa-orm-async", "async", "sa_orm_async", "SQLAlchemy AsyncSession"),
    Entry("tortoise", "async", "tortoise_orm", "Tortoise ORM"),
    Entry("activerecord-async", "async", "activerecord_async", "activerecord async"),
    Entry(
        "activerecord-async-metrics", "async", "activerecord_metered", "activerecord async, metrics on", "AsyncMetered"
    ),
)
BY_NAME: dict[str, Entry] = {entry.name: entry for entry in CONTENDERS}
#: The contender each mode's ratios are computed against.
BASELINE: dict[Mode, str] = {"sync": "sa-core", "async": "sa-core-async"}

"""activerecord models and connection setup shared by its sync and async contenders.

Importing this module fails with ImportError while the activerecord package is not
installed or importable; the runner then reports both contenders as unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from activerecord import (
    ActiveRecord,
    ConnectionManager,
    DateTimeField,
    FloatField,
    IntegerField,
    PrimaryKeyField,
    StringField,
)
from bench.targets import Target
from bench.workloads import NARROW_TABLE, STREAM_TABLE, TABLE, W8_POOL, Row


class _Columns(ActiveRecord):
    """The columns both benchmark tables share (the runner owns the DDL; create_all is never called).

    DateTimeField is activerecord's only datetime field and it is timezone-aware: naive
    values are refused, so the contenders hand it aware UTC rows (see ``aware_rows``).
    """

    __abstract__ = True
    id: int = PrimaryKeyField()
    name: str = StringField(max_length=100)
    value: int = IntegerField()
    score: float = FloatField()
    created_at: datetime = DateTimeField()


class Item(_Columns):
    """bench_item."""

    __tablename__ = TABLE


class StreamItem(_Columns):
    """bench_stream."""

    __tablename__ = STREAM_TABLE


class Narrow(ActiveRecord):
    """bench_narrow: two short strings (W2n, W2r)."""

    __tablename__ = NARROW_TABLE
    id: int = PrimaryKeyField()
    a: str = StringField(max_length=20)
    b: str = StringField(max_length=20)


def configure(target: Target) -> None:
    """Point the ``default`` connection at the benchmark database (a pool of W8_POOL, as Core's)."""
    config: dict[str, Any] = {
        "driver": target.backend,
        "database": target.database,
        "pool_size": W8_POOL,
        "max_overflow": 0,
    }
    if target.backend != "sqlite":
        config.update(host=target.host, port=target.port, user=target.user)
        if target.password:
            config["password"] = target.password
    ConnectionManager.configure({"default": config})


def aware_rows(rows: Sequence[Row]) -> list[Row]:
    """The same rows with UTC-aware timestamps, as a user of aware fields would hold them."""
    return [row._replace(created_at=row.created_at.replace(tzinfo=UTC)) for row in rows]

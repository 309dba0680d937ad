"""SQLAlchemy declarations of the benchmark tables: a Core Table and an ORM mapped class."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    CursorResult,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.workloads import NARROW_TABLE, STREAM_TABLE, TABLE

core_metadata = MetaData()


def _core_table(name: str) -> Table:
    return Table(
        name,
        core_metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(100), nullable=False),
        Column("value", Integer, nullable=False),
        Column("score", Float, nullable=False),
        Column("created_at", DateTime, nullable=False),
    )


def new_pk(result: CursorResult[Any]) -> int:
    """The primary key of the row a single-row INSERT created."""
    key = result.inserted_primary_key
    if key is None:  # only for statements that are not single-row INSERTs
        raise ValueError("not a single-row INSERT")
    return int(key[0])


item_table = _core_table(TABLE)
stream_table = _core_table(STREAM_TABLE)
narrow_table = Table(
    NARROW_TABLE,
    core_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("a", String(20), nullable=False),
    Column("b", String(20), nullable=False),
)


class Base(DeclarativeBase):
    """Declarative base of the ORM contenders."""


class _Columns:
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[int]
    score: Mapped[float]
    created_at: Mapped[datetime]


class Item(_Columns, Base):
    """bench_item as an ORM entity."""

    __tablename__ = TABLE


class StreamItem(_Columns, Base):
    """bench_stream as an ORM entity (same columns)."""

    __tablename__ = STREAM_TABLE


class Narrow(Base):
    """bench_narrow as an ORM entity."""

    __tablename__ = NARROW_TABLE
    id: Mapped[int] = mapped_column(primary_key=True)
    a: Mapped[str] = mapped_column(String(20))
    b: Mapped[str] = mapped_column(String(20))

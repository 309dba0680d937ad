"""Hand-written SQL shared by the two raw-driver contenders, per placeholder style."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bench.workloads import ALL_COLUMNS, COLUMNS, STREAM_TABLE, TABLE

Style = Literal["qmark", "format", "numeric"]


@dataclass(frozen=True)
class RawSQL:
    """The statements a raw contender sends, already in its driver's placeholder style."""

    insert: str
    insert_returning: str
    select_all: str
    select_by_pk: str
    page: str
    update_value: str
    stream: str


def raw_sql(style: Style) -> RawSQL:
    """Statements for ``?`` (sqlite3), ``%s`` (psycopg, PyMySQL) or ``$n`` (asyncpg)."""

    def p(n: int) -> str:
        return {"qmark": "?", "format": "%s", "numeric": f"${n}"}[style]

    columns = ", ".join(ALL_COLUMNS)
    insert = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({p(1)}, {p(2)}, {p(3)}, {p(4)})"
    return RawSQL(
        insert=insert,
        insert_returning=insert + " RETURNING id",
        select_all=f"SELECT {columns} FROM {TABLE}",
        select_by_pk=f"SELECT {columns} FROM {TABLE} WHERE id = {p(1)}",
        page=f"SELECT {columns} FROM {TABLE} WHERE value < {p(1)} ORDER BY id LIMIT {p(2)} OFFSET {p(3)}",
        update_value=f"UPDATE {TABLE} SET value = {p(1)} WHERE id = {p(2)}",
        stream=f"SELECT {columns} FROM {STREAM_TABLE}",
    )


def register_sqlite_datetime() -> None:
    """Explicit sqlite3 datetime adapter and TIMESTAMP converter.

    The implicit ones are deprecated since Python 3.12, and with the converter timestamps come
    back as datetime (with ``detect_types=PARSE_DECLTYPES``) like in every other contender.
    """
    sqlite3.register_adapter(datetime, lambda value: value.isoformat(" "))
    sqlite3.register_converter("TIMESTAMP", lambda raw: datetime.fromisoformat(raw.decode()))

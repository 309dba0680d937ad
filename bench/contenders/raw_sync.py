"""Raw DB-API drivers with hand-written SQL: the floor every library adds its overhead to."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from bench.contenders.base import OnBatch, SyncContender
from bench.contenders.raw_sql import raw_sql, register_sqlite_datetime
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import Row

register_sqlite_datetime()


class Contender(SyncContender):
    """sqlite3, psycopg 3 or PyMySQL, one connection for the whole process."""

    packages = ("psycopg", "PyMySQL")
    streaming = "sqlite3 cursor.fetchmany; psycopg named (server-side) cursor; PyMySQL SSCursor"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.conn: Any
        if target.backend == "sqlite":
            self.sql = raw_sql("qmark")
            self.conn = sqlite3.connect(target.database, detect_types=sqlite3.PARSE_DECLTYPES)
        elif target.backend == "postgresql":
            import psycopg

            self.sql = raw_sql("format")
            self.conn = psycopg.connect(
                host=target.host,
                port=target.port,
                user=target.user,
                password=target.password or None,
                dbname=target.database,
            )
        else:
            import pymysql

            self.sql = raw_sql("format")
            self.conn = pymysql.connect(
                host=target.host,
                port=target.port,
                user=target.user,
                password=target.password,
                database=target.database,
                charset="utf8mb4",
            )

    def reset(self) -> None:
        cur = self.conn.cursor()
        for statement in reset_statements(self.target.backend):
            cur.execute(statement)
        self.conn.commit()

    def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        cur = self.conn.cursor()
        ids: list[int] = []
        if self.target.backend == "postgresql":
            for row in rows:
                cur.execute(self.sql.insert_returning, row)
                ids.append(cur.fetchone()[0])
        else:
            for row in rows:
                cur.execute(self.sql.insert, row)
                ids.append(cur.lastrowid)
        self.conn.commit()
        return ids

    def bulk_insert(self, rows: Sequence[Row]) -> None:
        self.conn.cursor().executemany(self.sql.insert, rows)
        self.conn.commit()

    def fetch_objects(self) -> int:
        cur = self.conn.cursor()
        cur.execute(self.sql.select_all)
        return len(cur.fetchall())

    def fetch_dicts(self) -> int:
        if self.target.backend == "postgresql":
            from psycopg.rows import dict_row

            cur = self.conn.cursor(row_factory=dict_row)
            cur.execute(self.sql.select_all)
            return len(cur.fetchall())
        if self.target.backend == "mysql":
            from pymysql.cursors import DictCursor

            cur = self.conn.cursor(DictCursor)
            cur.execute(self.sql.select_all)
            return len(cur.fetchall())
        cur = self.conn.execute(self.sql.select_all)
        names = [d[0] for d in cur.description]
        return len([dict(zip(names, row, strict=True)) for row in cur])

    def get_by_pk(self, ids: Sequence[int]) -> int:
        cur = self.conn.cursor()
        found = 0
        for pk in ids:
            cur.execute(self.sql.select_by_pk, (pk,))
            found += cur.fetchone() is not None
        return found

    def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        cur = self.conn.cursor()
        seen = 0
        for offset in offsets:
            cur.execute(self.sql.page, (threshold, page_size, offset))
            seen += len(cur.fetchall())
        return seen

    def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        cur = self.conn.cursor()
        for pk, value in updates:
            cur.execute(self.sql.update_value, (value, pk))
        self.conn.commit()

    def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        if self.target.backend == "postgresql":
            cur = self.conn.cursor(name="bench_stream_cursor")
        elif self.target.backend == "mysql":
            from pymysql.cursors import SSCursor

            cur = self.conn.cursor(SSCursor)
        else:
            cur = self.conn.cursor()
        count = 0
        cur.execute(self.sql.stream)
        while batch := cur.fetchmany(batch_size):
            on_batch(len(batch))
            count += len(batch)
        cur.close()
        self.conn.commit()
        return count

    def close(self) -> None:
        self.conn.close()

"""Raw asyncio drivers with hand-written SQL: aiosqlite, asyncpg, asyncmy."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from bench.contenders.base import AsyncContender, OnBatch
from bench.contenders.raw_sql import raw_sql, register_sqlite_datetime
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import Row

register_sqlite_datetime()


class Contender(AsyncContender):
    """One connection for the whole process; each driver's native API."""

    packages = ("aiosqlite", "asyncpg", "asyncmy")
    streaming = "aiosqlite cursor.fetchmany; asyncpg cursor in a transaction; asyncmy SSCursor"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.backend = target.backend
        self.sql = raw_sql("numeric" if self.backend == "postgresql" else "qmark")
        if self.backend == "mysql":
            self.sql = raw_sql("format")
        self.conn: Any = None

    async def open(self) -> None:
        t = self.target
        if self.backend == "sqlite":
            import aiosqlite

            self.conn = await aiosqlite.connect(t.database, detect_types=sqlite3.PARSE_DECLTYPES)
        elif self.backend == "postgresql":
            import asyncpg

            self.conn = await asyncpg.connect(
                host=t.host,
                port=t.port,
                user=t.user,
                password=t.password or None,
                database=t.database,
            )
        else:
            import asyncmy

            self.conn = await asyncmy.connect(
                host=t.host,
                port=t.port,
                user=t.user,
                password=t.password,
                database=t.database,
                charset="utf8mb4",
            )

    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Statement without a result, for the SQLite and MySQL cursor APIs."""
        if self.backend == "sqlite":
            await self.conn.execute(sql, params)
        else:
            async with self.conn.cursor() as cur:
                await cur.execute(sql, params)

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self.backend == "postgresql":
            return list(await self.conn.fetch(sql, *params))
        if self.backend == "sqlite":
            async with self.conn.execute(sql, params) as cur:
                return list(await cur.fetchall())
        async with self.conn.cursor() as cur:
            await cur.execute(sql, params)
            return list(await cur.fetchall())

    async def reset(self) -> None:
        for statement in reset_statements(self.backend):
            if self.backend == "postgresql":
                await self.conn.execute(statement)
            else:
                await self._execute(statement)
        if self.backend != "postgresql":
            await self.conn.commit()

    async def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        ids: list[int] = []
        if self.backend == "postgresql":
            async with self.conn.transaction():
                for row in rows:
                    ids.append(await self.conn.fetchval(self.sql.insert_returning, *row))
            return ids
        if self.backend == "sqlite":
            for row in rows:
                async with self.conn.execute(self.sql.insert, row) as cur:
                    ids.append(cur.lastrowid)
        else:
            async with self.conn.cursor() as cur:
                for row in rows:
                    await cur.execute(self.sql.insert, row)
                    ids.append(cur.lastrowid)
        await self.conn.commit()
        return ids

    async def bulk_insert(self, rows: Sequence[Row]) -> None:
        if self.backend == "postgresql":
            await self.conn.executemany(self.sql.insert, rows)
            return
        if self.backend == "sqlite":
            await self.conn.executemany(self.sql.insert, rows)
        else:
            async with self.conn.cursor() as cur:
                await cur.executemany(self.sql.insert, rows)
        await self.conn.commit()

    async def fetch_objects(self) -> int:
        return len(await self._fetchall(self.sql.select_all))

    async def fetch_dicts(self) -> int:
        if self.backend == "postgresql":
            return len([dict(r) for r in await self.conn.fetch(self.sql.select_all)])
        if self.backend == "mysql":
            from asyncmy.cursors import DictCursor

            async with self.conn.cursor(DictCursor) as cur:
                await cur.execute(self.sql.select_all)
                return len(await cur.fetchall())
        async with self.conn.execute(self.sql.select_all) as cur:
            names = [d[0] for d in cur.description]
            return len([dict(zip(names, row, strict=True)) for row in await cur.fetchall()])

    async def get_by_pk(self, ids: Sequence[int]) -> int:
        found = 0
        if self.backend == "postgresql":
            for pk in ids:
                found += await self.conn.fetchrow(self.sql.select_by_pk, pk) is not None
        elif self.backend == "sqlite":
            for pk in ids:
                async with self.conn.execute(self.sql.select_by_pk, (pk,)) as cur:
                    found += await cur.fetchone() is not None
        else:
            async with self.conn.cursor() as cur:
                for pk in ids:
                    await cur.execute(self.sql.select_by_pk, (pk,))
                    found += await cur.fetchone() is not None
        return found

    async def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        seen = 0
        for offset in offsets:
            seen += len(await self._fetchall(self.sql.page, (threshold, page_size, offset)))
        return seen

    async def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        if self.backend == "postgresql":
            async with self.conn.transaction():
                for pk, value in updates:
                    await self.conn.execute(self.sql.update_value, value, pk)
            return
        if self.backend == "sqlite":
            for pk, value in updates:
                await self.conn.execute(self.sql.update_value, (value, pk))
        else:
            async with self.conn.cursor() as cur:
                for pk, value in updates:
                    await cur.execute(self.sql.update_value, (value, pk))
        await self.conn.commit()

    async def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        count = 0
        if self.backend == "postgresql":
            async with self.conn.transaction():
                cursor = await self.conn.cursor(self.sql.stream)
                while batch := await cursor.fetch(batch_size):
                    on_batch(len(batch))
                    count += len(batch)
        elif self.backend == "sqlite":
            async with self.conn.execute(self.sql.stream) as cur:
                while batch := await cur.fetchmany(batch_size):
                    on_batch(len(batch))
                    count += len(batch)
        else:
            from asyncmy.cursors import SSCursor

            async with self.conn.cursor(SSCursor) as cur:
                await cur.execute(self.sql.stream)
                while batch := await cur.fetchmany(batch_size):
                    on_batch(len(batch))
                    count += len(batch)
            await self.conn.commit()
        return count

    async def close(self) -> None:
        if self.conn is None:
            return
        if self.backend == "mysql":
            await self.conn.ensure_closed()  # asyncmy's close() is the abrupt, sync one
        else:
            await self.conn.close()

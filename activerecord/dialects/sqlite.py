"""SQLite: the stdlib driver (sync) and aiosqlite (async), with activerecord's own transaction control.

The stdlib driver's own transaction handling breaks SAVEPOINT, so, following SQLAlchemy's
documented recipe, the driver is put in autocommit mode and the dialect emits BEGIN itself:
``BEGIN IMMEDIATE`` for a transaction meant for writing (`base.begin_write`), so that
concurrent read-then-write transactions queue on the busy timeout for the write lock instead of
failing with "database is locked" when they upgrade (Rails' default since 8.0); a plain
(deferred) ``BEGIN`` otherwise, so that reads never take the write lock. These dialects are
registered with SQLAlchemy as ``sqlite+activerecord_pysqlite`` and ``sqlite+activerecord_aiosqlite``
(the latter in `sqlite_async`, which alone imports aiosqlite).

Connections of one process to one file take their turns at the file's `sqlite_gate.Gate` (from
``do_begin`` to ``do_commit``/``do_rollback``), so that they queue in arrival order instead of
sleeping in SQLite's busy handler.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, Float, Integer, Table
from sqlalchemy.dialects import registry
from sqlalchemy.dialects import sqlite as sa_sqlite
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, Dialect, processors
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.types import TypeEngine
from sqlalchemy.util.concurrency import await_

from ..errors import QueryError
from .base import Backend, aware_utc_reader, begins_autocommit, begins_autocommit_write, begins_write
from .faults import Classified, classify_sqlite
from .sqlite_gate import Gate, GateTimeout, gate_for, owner
from .utc import utc_text

#: Seconds a statement waits for another connection's write lock before "database is locked"
#: (the stdlib driver's ``timeout``; Rails' default is 5).
BUSY_TIMEOUT = 10.0

_REGISTERED = {"pysqlite": "activerecord_pysqlite", "aiosqlite": "activerecord_aiosqlite"}
_memory_ids = itertools.count(1)


def _emit(dbapi_connection: Any, statement: str) -> Any:
    """Run ``statement``; its first row's first value, if it returns rows."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
        row = cursor.fetchone() if cursor.description else None
        return None if row is None else row[0]
    finally:
        cursor.close()


def _key(dbapi_connection: Any) -> int:
    """The gate's name for a driver connection, from the pool's proxy or the connection itself."""
    return id(getattr(dbapi_connection, "dbapi_connection", None) or dbapi_connection)


class ActiveRecordSQLite:
    """What activerecord's SQLite dialects add to SQLAlchemy's: foreign keys enforced, BEGIN
    emitted by the dialect, and the file's gate (see the module's docstring)."""

    is_async: bool
    loaded_dbapi: Any
    #: The gate of the file this dialect's engine connects to (None: a private in-memory database),
    #: and how long a turn is waited for: the connection's busy timeout.
    _ar_gate: Gate | None = None
    _ar_busy: float = BUSY_TIMEOUT

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        # The final arguments (the URL's and connect_args) are only known here.
        self._ar_gate = gate_for(cargs[0] if cargs else cparams.get("database"))
        self._ar_busy = float(cparams.get("timeout", 5.0))
        return super().connect(*cargs, **cparams)  # type: ignore[misc]

    def on_connect(self) -> Callable[[DBAPIConnection], None]:
        stock: Callable[[DBAPIConnection], None] | None = super().on_connect()  # type: ignore[misc]

        def connect(dbapi_connection: DBAPIConnection) -> None:
            if stock is not None:
                stock(dbapi_connection)
            dbapi_connection.isolation_level = None
            _emit(dbapi_connection, "PRAGMA foreign_keys=ON")
            if self._ar_gate is not None:
                # The journal mode is the file's: a connection that finds WAL tells the gate.
                self._ar_gate.wal = str(_emit(dbapi_connection, "PRAGMA journal_mode")).lower() == "wal"

        return connect

    def _ar_enter(self, gate: Gate, key: int, write: bool) -> None:
        """Wait for connection ``key``'s turn to read or to write."""
        try:
            if not self.is_async:
                gate.enter(key, threading.get_ident(), write, self._ar_busy)
            elif (turn := gate.aenter(key, owner(), write, self._ar_busy)) is not None:
                await_(turn)  # (a turn given at once makes no trip through the event loop)
        except GateTimeout:
            raise self.loaded_dbapi.OperationalError("database is locked") from None

    def _ar_commit_turn(self, gate: Gate, key: int) -> None:
        """Wait until connection ``key`` may commit its write; on failure its turn is given up."""
        try:
            if not self.is_async:
                gate.commit(key, self._ar_busy)
            elif (turn := gate.acommit(key, self._ar_busy)) is not None:
                await_(turn)
        except GateTimeout:
            gate.leave(key)
            raise self.loaded_dbapi.OperationalError("database is locked") from None
        except BaseException:
            gate.leave(key)
            raise

    def activerecord_autocommits(self, conn: Connection) -> bool:
        """``do_begin`` honours `base.begin_autocommit` (see `base.autocommits`)."""
        return True

    def do_begin(self, dbapi_connection: Any) -> None:
        # The dialect's own hook for starting a transaction: a "begin" engine event would do the
        # same, but once an engine has any connection event SQLAlchemy dispatches its execute
        # events around every statement (measured: ~3 µs per statement).
        gate = self._ar_gate
        key = _key(dbapi_connection)
        if begins_autocommit():
            # The driver is in autocommit already: the statement is its own transaction, and a
            # write statement its own commit.
            if gate is not None:
                writes = begins_autocommit_write()
                self._ar_enter(gate, key, writes)
                if writes:
                    self._ar_commit_turn(gate, key)
            return
        writes = begins_write()
        if gate is not None:
            self._ar_enter(gate, key, writes)
        try:
            _emit(dbapi_connection, "BEGIN IMMEDIATE" if writes else "BEGIN")
        except BaseException:
            if gate is not None:
                gate.leave(key)
            raise

    def do_commit(self, dbapi_connection: Any) -> None:
        # Nothing open (one statement run in autocommit): nothing to send. sqlite3 checks the same,
        # but aiosqlite would make a trip to its thread to find out.
        gate = self._ar_gate
        key = _key(dbapi_connection)
        try:
            if self._in_transaction(dbapi_connection.dbapi_connection):
                if gate is not None:
                    self._ar_commit_turn(gate, key)
                super().do_commit(dbapi_connection)  # type: ignore[misc]
        finally:
            if gate is not None:
                gate.leave(key)

    def do_rollback(self, dbapi_connection: Any) -> None:
        try:
            if self._in_transaction(dbapi_connection.dbapi_connection):
                super().do_rollback(dbapi_connection)  # type: ignore[misc]
        finally:
            if self._ar_gate is not None:
                self._ar_gate.leave(_key(dbapi_connection))

    def do_close(self, dbapi_connection: Any) -> None:
        # A connection closed or invalidated in a transaction (a cancelled task, a lost
        # connection) gives its turn up too. (do_terminate closes through here.)
        if self._ar_gate is not None:
            self._ar_gate.leave(_key(dbapi_connection))
        super().do_close(dbapi_connection)  # type: ignore[misc]

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        # The driver stays in autocommit whatever the level: SQLAlchemy's pysqlite dialect would
        # hand transactions back to sqlite3 for any level but AUTOCOMMIT, and the connection would
        # go back to the pool that way (sqlite3 then sends a BEGIN of its own before each write).
        if level != "AUTOCOMMIT":
            SQLiteDialect.set_isolation_level(self, dbapi_connection, level)  # type: ignore[arg-type]

    def _in_transaction(self, driver_connection: Any) -> bool:
        """Whether the sqlite3 connection under ``driver_connection`` is inside a transaction."""
        return bool(driver_connection.in_transaction)


class PySQLiteDialect(ActiveRecordSQLite, SQLiteDialect_pysqlite):
    """The stdlib ``sqlite3`` dialect with activerecord's transaction control."""

    supports_statement_cache = True


registry.register("sqlite.activerecord_pysqlite", __name__, "PySQLiteDialect")
registry.register("sqlite.activerecord_aiosqlite", "activerecord.dialects.sqlite_async", "AioSQLiteDialect")


def _rowid_key(table: Table, pk: str) -> bool:
    """Whether ``pk`` is SQLite's rowid (an auto-incremented ``INTEGER PRIMARY KEY``)."""
    column = table.c[pk]
    return table.autoincrement_column is column and isinstance(column.type, Integer)


class SQLite(Backend):
    """SQLite files (or a shared in-memory database), through the stdlib driver and aiosqlite."""

    name: ClassVar[str] = "sqlite"
    aliases: ClassVar[tuple[str, ...]] = ("sqlite3",)
    sync_driver: ClassVar[str] = "pysqlite"
    async_driver: ClassVar[str] = "aiosqlite"
    async_drivers: ClassVar[frozenset[str]] = frozenset({"aiosqlite"})
    locks_rows: ClassVar[bool] = False

    def classify_error(self, error: BaseException, is_disconnect: bool) -> Classified:
        return classify_sqlite(error, is_disconnect)

    def check_settings(self, connection: str, raw: Mapping[str, Any]) -> list[str]:
        return []

    def prepare_url(self, connection: str, url: URL) -> tuple[URL, str | None]:
        if url.database not in (None, "", ":memory:"):
            return url, None
        # A private :memory: database per pooled connection would make the sync and async engines
        # see different data; a named shared-cache database is one database for both.
        memory_uri = f"file:activerecord_{connection}_{next(_memory_ids)}?mode=memory&cache=shared"
        return url.set(database=memory_uri).update_query_dict({"uri": "true"}), memory_uri

    def engine_url(self, url: URL, options: Mapping[str, Any]) -> URL:
        registered = _REGISTERED.get(url.get_driver_name())
        return url if registered is None else url.set(drivername=f"sqlite+{registered}")

    def engine_options(self, url: URL, options: Mapping[str, Any]) -> dict[str, Any]:
        connect_args = dict(options.get("connect_args") or {})
        if "timeout" not in connect_args and "timeout" not in url.query:
            connect_args["timeout"] = BUSY_TIMEOUT
        return {**options, "connect_args": connect_args}

    def datetime_bind_processor(
        self, dialect: Dialect, inner: Callable[[Any], Any] | None
    ) -> Callable[[Any], Any] | None:
        if inner is None:
            return super().datetime_bind_processor(dialect, inner)
        dt = datetime

        def process(value: Any) -> Any:
            # The text SQLAlchemy's SQLite DATETIME writes, in UTC, at half the cost of its
            # processor; anything but a datetime goes to that processor.
            return utc_text(value) if value.__class__ is dt else inner(value)

        return process

    def datetime_result_processor(
        self, dialect: Dialect, coltype: Any, inner: Callable[[Any], Any] | None
    ) -> Callable[[Any], datetime | None] | None:
        general = aware_utc_reader(inner)
        if inner is not processors.str_to_datetime:
            return general
        parse = datetime.fromisoformat

        def process_iso(value: Any) -> datetime | None:
            # SQLite's ISO text without an offset, parsed as UTC in one step: the same value as
            # parsing then ``replace(tzinfo=UTC)``, which costs several times the parse.
            if value.__class__ is str:
                try:
                    return parse(value + "+00:00")
                except ValueError:
                    pass  # it carries an offset already (or is no ISO text): the general path
            return general(value)

        return process_iso

    def big_integer_type(self) -> TypeEngine[Any] | None:
        # SQLite's integers are all 64-bit, and only a column declared exactly INTEGER PRIMARY KEY
        # is the rowid (numbered by SQLite): BIGINT would leave a big key unnumbered.
        return Integer()

    def double_type(self) -> TypeEngine[Any] | None:
        return Float()  # SQLite's REAL is a double; it has no FLOAT(53)

    def upsert(self, table: Table, conflict: Sequence[str], update: Sequence[str], pk: str) -> Any:
        stmt = sa_sqlite.insert(table)
        keys = [table.c[c] for c in conflict]
        if not update:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})

    def new_keys(self, conn: Connection, table: Table, pk: str, rows: Sequence[Mapping[str, Any]]) -> list[Any] | None:
        """The rowids SQLite gives ``rows``, in row order, from one multi-row INSERT ... RETURNING.

        SQLAlchemy only sends many rows per statement with their keys in row order where the
        backend guarantees the order of RETURNING; SQLite does not, so it falls back to one
        statement per row. But SQLite numbers new rowids one above the largest in the table, row
        by row in VALUES order, and the write lock taken by the first statement keeps every other
        writer out until commit: the new keys are consecutive and, sorted, in row order. When
        they are not consecutive (only when the table holds the largest possible rowid, where
        SQLite picks them at random), the order is unknown and the insert is refused.
        """
        if pk in rows[0] or not _rowid_key(table, pk):
            return None
        stmt = table.insert().returning(table.c[pk])
        found = list(conn.execute(stmt, rows).scalars())
        if len(found) != len(rows) or any(key is None for key in found):
            raise QueryError(f"insert_many on {table.name}: SQLite did not return a key for every row")
        found.sort()
        if found[-1] - found[0] != len(found) - 1:
            raise QueryError(
                f"insert_many on {table.name}: SQLite assigned non-consecutive rowids, so their row order "
                "is unknown; nothing is committed (insert these rows one by one)"
            )
        return found

    def migration_options(self) -> dict[str, Any]:
        # activerecord's SQLite dialects emit BEGIN themselves, which makes SQLite DDL
        # transactional: a failed upgrade then rolls back whole, as on PostgreSQL.
        return {"transactional_ddl": True}


BACKEND = SQLite()

"""The slow-statement log on every backend, sync and async: statements over the threshold are
logged with their text and timing, faster ones are not; no bound value and no password ever
reaches a log record."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from activerecord import ActiveRecord, ConnectionManager, ops

from .backends import BackendDatabases
from .dual import IO
from .models import Author

SECRET = "bound-secret-93ac"
PASSWORD = "pw-secret-41be"


def _sqlite_sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _register_sleep(dbapi_connection: Any, record: Any) -> None:
    if hasattr(dbapi_connection, "create_function"):  # (SQLite only; the listener is on every engine)
        dbapi_connection.create_function("ar_sleep", 1, _sqlite_sleep)


def sleeping_connection(name: str, backend: str, backend_dbs: BackendDatabases) -> str:
    """Configure connection ``name`` on the default database; return SQL sleeping ``:s`` seconds in
    the database (PostgreSQL's pg_sleep, MariaDB's SLEEP, on SQLite a function of the connection)."""
    ConnectionManager.configure({name: backend_dbs.config("default")})
    if backend == "sqlite":
        # On every engine, also those made later: each event loop gets an async engine of its own.
        if not event.contains(sa.Engine, "connect", _register_sleep):
            event.listen(sa.Engine, "connect", _register_sleep)
        return "SELECT ar_sleep(:s)"
    return "SELECT pg_sleep(:s)" if backend == "postgresql" else "SELECT SLEEP(:s)"


@pytest.fixture
def sleepy(backend: str, backend_dbs: BackendDatabases) -> Iterator[str]:
    yield sleeping_connection("sleepy", backend, backend_dbs)
    ConnectionManager.remove("sleepy")


async def test_statements_over_the_threshold_are_logged(db: IO, sleepy: str, caplog: pytest.LogCaptureFixture) -> None:
    ops.instrument(slow_threshold=0.15)
    try:
        with caplog.at_level(logging.WARNING, logger="activerecord.slow"):
            await db(ActiveRecord).execute_raw("SELECT 1", using="sleepy")
            await db(ActiveRecord).execute_raw(sleepy, {"s": 0.2}, using="sleepy")
    finally:
        ops.uninstrument()
    records = [r for r in caplog.records if r.name == "activerecord.slow"]
    assert len(records) == 1
    (record,) = records
    assert record.statement.startswith("SELECT ")  # type: ignore[attr-defined]
    assert "SELECT 1" not in record.getMessage()
    assert 0.2 <= record.duration < 5  # type: ignore[attr-defined]
    assert "ms on sleepy" in record.getMessage()


async def test_no_bound_value_or_password_reaches_a_log_record(
    db: IO, backend: str, backend_dbs: BackendDatabases, caplog: pytest.LogCaptureFixture
) -> None:
    config = dict(backend_dbs.config("default"))
    if backend == "postgresql":
        config["password"] = PASSWORD  # the test server trusts loopback: any password connects
    ConnectionManager.configure({"secretive": config})
    ops.instrument(slow_threshold=0.0, statement_text=True)
    try:
        with caplog.at_level(logging.DEBUG):
            await db(Author).create(name=SECRET, email=SECRET, using="secretive")
            await db(Author.find().using("secretive").where(name=SECRET)).all()
            with pytest.raises(Exception):  # noqa: B017 (the driver's own IntegrityError class)
                await db(Author).create(name="other", email=SECRET, using="secretive")
    finally:
        ops.uninstrument()
        ConnectionManager.remove("secretive")
    slow = [r for r in caplog.records if r.name == "activerecord.slow"]
    assert len(slow) >= 3  # every statement was over a threshold of 0, the failed one too
    assert any("failed" in r.getMessage() for r in slow)
    # Every record of activerecord's own loggers, and every record at INFO and above from any
    # logger (a driver's own DEBUG logging, such as aiosqlite's, prints what it executes).
    ours = [r for r in caplog.records if r.name.startswith("activerecord") or r.levelno >= logging.INFO]
    assert ours
    for record in ours:
        text = record.getMessage() + repr(record.args) + repr(vars(record))
        assert SECRET not in text
        assert PASSWORD not in text

"""PostgreSQL behind pgbouncer in transaction pooling mode: the ``pgbouncer`` node setting.

pgbouncer gives every transaction whichever server connection is free, so a statement the driver
prepared on the server in one transaction is unknown (or taken under the same name by another
client) in the next. ``"pgbouncer": True`` turns the drivers' server-side prepared statements
off; a configuration that cannot work is refused when it is configured. The core and replica
suites run through a real pgbouncer as well (backend id ``postgresql-pgbouncer``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ConnectionManager
from activerecord.errors import ConfigurationError
from activerecord.migrations._lock import migration_lock
from tests.backends import BackendDatabases
from tests.dual import IO
from tests.models import Author

PG = {"driver": "postgresql", "host": "127.0.0.1", "database": "app"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"driver": "mysql", "host": "127.0.0.1", "database": "app"}, "'pgbouncer' is a PostgreSQL setting"),
        ({"driver": "sqlite", "database": ":memory:"}, "'pgbouncer' is a PostgreSQL setting"),
        ({**PG, "connect_args": {"statement_cache_size": 100}}, "statement_cache_size=100"),
        ({**PG, "connect_args": {"prepare_threshold": 5}}, "prepare_threshold=5"),
        ({**PG, "options": {"prepared_statement_cache_size": "100"}}, "prepared_statement_cache_size='100'"),
    ],
    ids=["mysql", "sqlite", "asyncpg-cache", "psycopg-prepare", "sqlalchemy-cache"],
)
def test_a_configuration_that_cannot_work_through_pgbouncer_is_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ConnectionManager.configure({"bounced": {**settings, "pgbouncer": True}})
    assert not ConnectionManager.is_configured("bounced")


def test_the_setting_is_a_boolean() -> None:
    with pytest.raises(ConfigurationError, match="'pgbouncer' must be true or false"):
        ConnectionManager.configure({"bounced": {**PG, "pgbouncer": "yes"}})
    # Settings that keep prepared statements off, or pgbouncer off, are fine.
    ConnectionManager.configure(
        {
            "bounced": {**PG, "pgbouncer": True, "connect_args": {"statement_cache_size": 0}},
            "direct": {**PG, "pgbouncer": False, "connect_args": {"statement_cache_size": 100}},
            "lite": {"driver": "sqlite", "database": ":memory:", "pgbouncer": False},
        }
    )
    for name in ("bounced", "direct", "lite"):
        ConnectionManager.remove(name)


@pytest.mark.backends("postgresql-pgbouncer")
async def test_repeated_statements_from_many_callers_share_the_server_connections(db: IO) -> None:
    # More callers than the bouncer has server connections (4), each running the same statements
    # more often than psycopg's automatic preparation threshold (5): every transaction may land
    # on another server connection than the one before.
    await db(Author).create(name="ada", age=36)

    async def caller(i: int) -> int:
        found = 0
        for _ in range(8):
            found += await db(Author.find().where(Author.age == 36)).count()
            async with db.transaction(Author):
                await db(Author).create(name=f"c{i}", age=i)
        return found

    if db.is_async:
        results = await asyncio.gather(*(caller(i) for i in range(8)))
    else:
        results = [await caller(i) for i in range(3)]  # one sync caller (its own thread)
    assert results == [8] * len(results)
    assert await db(Author.find()).count() == 1 + 8 * len(results)


@pytest.mark.backends("postgresql-pgbouncer")
@pytest.mark.modes("async")
async def test_without_the_setting_asyncpg_breaks_through_pgbouncer(db: IO, backend_dbs: BackendDatabases) -> None:
    # What the setting prevents: asyncpg's numbered statement names clash on the shared server
    # connections (or its cached statements are gone there).
    naive = {**backend_dbs.config("default"), "pgbouncer": False}
    ConnectionManager.configure({"naive": naive})
    try:

        async def caller() -> None:
            for _ in range(8):
                await Author.find().using("naive").where(Author.age == 1).acount()
                await asyncio.sleep(0)

        # (Every caller runs to its end: none keeps a connection once the test is over.)
        outcomes = await asyncio.gather(*(caller() for _ in range(8)), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert errors and all(isinstance(e, sa.exc.DBAPIError) for e in errors)
        assert any("prepared statement" in str(e) for e in errors)
    finally:
        await ConnectionManager.aremove("naive")


@pytest.mark.backends("postgresql-pgbouncer")
@pytest.mark.modes("sync")
def test_migrations_refuse_to_run_through_pgbouncer(db: IO) -> None:
    # The migration lock is session state, which pgbouncer hands to another client after each
    # transaction: migrations connect to PostgreSQL directly.
    with (
        ConnectionManager.engine("default").connect() as conn,
        pytest.raises(ConfigurationError, match="migrations cannot run through pgbouncer"),
        migration_lock(conn, "alembic_version", 1.0),
    ):
        pass

"""Pool settings per node, checked at configure time; warnings about connections held too long;
pools opened at start-up; connect options per mode; missing drivers named at configure time."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ConnectionManager
from activerecord.errors import ConfigurationError

from .backends import BackendDatabases
from .dual import IO
from .models import Author


@pytest.fixture
def named(db: IO) -> Iterator[list[str]]:
    """Names of connections a test configures; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        if ConnectionManager.is_configured(name):
            ConnectionManager.remove(name)


@pytest.mark.parametrize(
    "setting",
    [
        {"pool_size": "x"},
        {"pool_size": -1},
        {"pool_size": 2.5},
        {"max_overflow": -2},
        {"pool_timeout": -1},
        {"pool_timeout": "30"},
        {"pool_recycle": "x"},
        {"pool_pre_ping": "yes"},
        {"pool_use_lifo": 1},
        {"connect_args": ["timeout", 1]},
        {"checkout_warning": 0},
        {"connect_timeout": "10"},
        {"read_timeout": -1},
        {"statement_timeout": float("inf")},
        {"ssl": "sometimes"},
        {"ssl": {"mode": "require", "password": "x"}},
        {"keepalives": {"idle": 0}},
        {"application_name": 7},
    ],
)
def test_bad_pool_and_connect_settings_fail_at_configure_time(setting: dict[str, Any]) -> None:
    node = {"driver": "postgresql", "host": "db", "database": "app", **setting}
    with pytest.raises(ConfigurationError) as caught:
        ConnectionManager.configure({"bad": node})
    assert next(iter(setting)) in str(caught.value)
    assert not ConnectionManager.is_configured("bad")


def test_server_options_are_refused_on_sqlite() -> None:
    with pytest.raises(ConfigurationError, match="statement_timeout apply to database servers"):
        ConnectionManager.configure({"lite": {"driver": "sqlite", "statement_timeout": 5}})


def test_a_missing_driver_is_named_at_configure_time_with_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "pymysql" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigurationError) as caught:
        ConnectionManager.configure({"nodriver": {"driver": "mysql", "host": "db", "database": "app"}})
    assert "'pymysql' is not installed" in str(caught.value)
    assert "pip install 'activerecord[mysql]'" in str(caught.value)


async def test_pool_settings_apply_per_node(db: IO, backend_dbs: BackendDatabases, named: list[str]) -> None:
    config = backend_dbs.config("default")
    named.append("pooled")
    ConnectionManager.configure(
        {
            "pooled": {
                "write": {**config, "pool_size": 3, "max_overflow": 1, "pool_timeout": 2, "pool_use_lifo": True},
                "read": [{**config, "pool_size": 2, "max_overflow": 0, "pool_recycle": 600}],
            }
        }
    )
    primary = ConnectionManager.engine("pooled").pool
    replica = ConnectionManager.replica_engines("pooled")[0].pool
    assert (primary.size(), primary._max_overflow, primary._timeout, primary._pool.use_lifo) == (3, 1, 2, True)  # type: ignore[attr-defined]
    assert (replica.size(), replica._max_overflow, replica._recycle) == (2, 0, 600)  # type: ignore[attr-defined]
    assert replica._pre_ping  # replicas ping before use unless told otherwise
    # The async pool of the same node has the same settings.
    assert ConnectionManager.async_engine("pooled").sync_engine.pool.size() == 3  # type: ignore[attr-defined]


async def test_a_full_pool_raises_a_retryable_timeout(db: IO, backend_dbs: BackendDatabases, named: list[str]) -> None:
    named.append("tiny")
    ConnectionManager.configure(
        {"tiny": {**backend_dbs.config("default"), "pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2}}
    )
    engine = ConnectionManager.engine("tiny")
    with engine.connect(), pytest.raises(sa.exc.TimeoutError):
        await asyncio.to_thread(engine.connect)


async def test_a_connection_held_too_long_is_reported_with_where_it_was_taken(
    db: IO, backend_dbs: BackendDatabases, named: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    named.append("watched")
    ConnectionManager.configure({"watched": {**backend_dbs.config("default"), "checkout_warning": 0.2}})
    with caplog.at_level(logging.WARNING, logger="activerecord.pool"):
        async with db.transaction(Author, using="watched"):
            await db(Author.find().using("watched")).count()
            await asyncio.sleep(0.3)
        held = [r.getMessage() for r in caplog.records]
        assert len(held) == 1
        assert "checked out for 0." in held[0] and "checkout_warning=0.2s" in held[0]
        # Where: the code that opened the transaction (the async test's own line through the bridge;
        # in sync mode the test's sync caller, on its worker thread).
        opener = "test_a_connection_held_too_long_is_reported_with_where_it_was_taken" if db.is_async else "dual.py"
        assert opener in held[0]
        caplog.clear()
        async with db.transaction(Author, using="watched"):
            await db(Author.find().using("watched")).count()  # quick: nothing to report
        assert caplog.records == []


def test_checkout_warnings_cost_nothing_when_off(tmp_path: Any) -> None:
    ConnectionManager.configure({"unwatched": {"driver": "sqlite", "database": str(tmp_path / "a.db")}})
    try:
        engine = ConnectionManager.engine("unwatched")
        assert not sa.event.contains(engine, "checkout", lambda *a: None)
        assert not engine.pool.dispatch.checkout and not engine.pool.dispatch.checkin
    finally:
        ConnectionManager.remove("unwatched")


async def test_connect_opens_every_nodes_pool(db: IO, backend_dbs: BackendDatabases, named: list[str]) -> None:
    config = backend_dbs.config("default")
    named.append("warm")
    ConnectionManager.configure({"warm": {"write": config, "read": [config, config]}})
    if db.is_async:
        await ConnectionManager.aconnect("warm")
        pools = [n.async_.sync_engine.pool for n in ConnectionManager.cluster("warm").all_engines()]
    else:
        await asyncio.to_thread(ConnectionManager.connect, "warm")
        pools = [n.sync.pool for n in ConnectionManager.cluster("warm").all_engines()]
    assert [pool.checkedin() for pool in pools] == [1, 1, 1]  # type: ignore[attr-defined]


@pytest.mark.backends("postgresql", "mysql")
async def test_connect_raises_when_a_node_is_down(db: IO, backend_dbs: BackendDatabases, named: list[str]) -> None:
    config = backend_dbs.config("default")
    named.append("half_down")
    ConnectionManager.configure({"half_down": {"write": config, "read": [{**config, "port": 1}]}})
    with pytest.raises(sa.exc.OperationalError):
        if db.is_async:
            await ConnectionManager.aconnect("half_down")
        else:
            await asyncio.to_thread(ConnectionManager.connect, "half_down")


@pytest.mark.backends("postgresql")
async def test_connect_args_per_mode_and_the_neutral_application_name(
    db: IO, backend_dbs: BackendDatabases, named: list[str]
) -> None:
    config = backend_dbs.config("default")
    named.extend(["neutral", "per_mode"])
    ConnectionManager.configure(
        {
            "neutral": {**config, "application_name": "orders-service"},
            "per_mode": {
                **config,
                "sync_connect_args": {"application_name": "sync-side"},
                "async_connect_args": {"server_settings": {"application_name": "async-side"}},
            },
        }
    )
    sql = "SELECT current_setting('application_name')"
    for name, expected in (
        ("neutral", ("orders-service", "orders-service")),
        ("per_mode", ("sync-side", "async-side")),
    ):
        with ConnectionManager.engine(name).connect() as conn:
            sync_value = conn.exec_driver_sql(sql).scalar()
        async with ConnectionManager.async_engine(name).connect() as aconn:
            async_value = (await aconn.exec_driver_sql(sql)).scalar()
        assert (sync_value, async_value) == expected


@pytest.mark.backends("postgresql", "mysql")
async def test_statement_timeout_is_set_per_connection(
    db: IO, backend: str, backend_dbs: BackendDatabases, named: list[str]
) -> None:
    named.append("capped")
    ConnectionManager.configure({"capped": {**backend_dbs.config("default"), "statement_timeout": 1.5}})
    sql = {"postgresql": "SELECT current_setting('statement_timeout')", "mysql": "SELECT @@max_statement_time"}[backend]
    expected = {"postgresql": "1500ms", "mysql": 1.5}[backend]
    with ConnectionManager.engine("capped").connect() as conn:
        assert conn.exec_driver_sql(sql).scalar() == expected
    async with ConnectionManager.async_engine("capped").connect() as aconn:
        assert (await aconn.exec_driver_sql(sql)).scalar() == expected


@pytest.mark.backends("postgresql", "mysql")
async def test_required_tls_is_never_silently_plain_text(
    db: IO, backend_dbs: BackendDatabases, named: list[str]
) -> None:
    # The test servers offer no TLS: a node that requires it must not connect in plain text.
    named.extend(["tls", "plain"])
    config = backend_dbs.config("default")
    ConnectionManager.configure({"tls": {**config, "ssl": "require"}, "plain": {**config, "ssl": "disable"}})
    with pytest.raises(sa.exc.OperationalError):
        await asyncio.to_thread(ConnectionManager.connect, "tls")
    with pytest.raises(sa.exc.OperationalError):
        await ConnectionManager.aconnect("tls")
    await asyncio.to_thread(ConnectionManager.connect, "plain")
    await ConnectionManager.aconnect("plain")


def test_ssl_modes_mean_what_they_mean_to_libpq() -> None:
    import ssl

    from activerecord.dialects.options import SSLOptions, ssl_context

    ca = ssl.get_default_verify_paths().cafile
    if ca is None:
        pytest.skip("no CA bundle on this system")
    assert ssl_context(SSLOptions("prefer")) is None  # a context cannot fall back to plain text
    require = ssl_context(SSLOptions("require"))
    assert require is not None and require.verify_mode == ssl.CERT_NONE and not require.check_hostname
    checked = ssl_context(SSLOptions("require", ca=ca))
    assert checked is not None and checked.verify_mode == ssl.CERT_REQUIRED and not checked.check_hostname
    full = ssl_context(SSLOptions("verify-full", ca=ca))
    assert full is not None and full.verify_mode == ssl.CERT_REQUIRED and full.check_hostname


@pytest.mark.modes("sync")  # (the pool events are the same in both modes: checked above in both)
async def test_a_connection_still_out_is_reported_at_the_next_checkout(
    db: IO, backend_dbs: BackendDatabases, named: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    named.append("leaky")
    ConnectionManager.configure({"leaky": {**backend_dbs.config("default"), "checkout_warning": 0.1}})
    engine = ConnectionManager.engine("leaky")
    with caplog.at_level(logging.WARNING, logger="activerecord.pool"):
        leaked = engine.connect()  # never returned in time
        await asyncio.sleep(0.2)
        with engine.connect():
            pass
        assert len(caplog.records) == 1 and "still out" in caplog.records[0].getMessage()
        assert "test_a_connection_still_out_is_reported_at_the_next_checkout" in caplog.records[0].getMessage()
        leaked.close()
        assert len(caplog.records) == 1  # reported once


async def _open_pools(db: IO, name: str) -> list[Any]:
    """Open every node's pool of connection ``name`` in the test's mode; return those pools."""
    if db.is_async:
        await ConnectionManager.aconnect(name)
        return [n.async_.sync_engine.pool for n in ConnectionManager.cluster(name).all_engines()]
    await asyncio.to_thread(ConnectionManager.connect, name)
    return [n.sync.pool for n in ConnectionManager.cluster(name).all_engines()]


def _settings(pool: Any) -> tuple[Any, ...]:
    return (pool.size(), pool._max_overflow, pool._timeout, pool._pool.use_lifo, bool(pool._pre_ping))


async def test_pool_settings_given_once_apply_to_every_node_and_a_node_s_own_win(
    db: IO, backend_dbs: BackendDatabases, named: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = backend_dbs.config("default")
    named.append("shared_pool")
    ConnectionManager.configure(
        {
            "shared_pool": {
                "write": {**config, "pool_size": 4},
                "read": [config, {**config, "max_overflow": 3, "pool_pre_ping": False}],
                "pool_size": 2,
                "max_overflow": 0,
                "pool_timeout": 1.5,
                "pool_use_lifo": True,
                "checkout_warning": 0.1,
            }
        }
    )
    primary, replica, own = await _open_pools(db, "shared_pool")
    assert _settings(primary) == (4, 0, 1.5, True, False)
    assert _settings(replica) == (2, 0, 1.5, True, True)  # replicas still ping unless told otherwise
    assert _settings(own) == (2, 3, 1.5, True, False)
    # checkout_warning given once watches every node's pool.
    with caplog.at_level(logging.WARNING, logger="activerecord.pool"):
        for engines in ConnectionManager.cluster("shared_pool").all_engines():
            if db.is_async:
                async with engines.async_.connect():
                    await asyncio.sleep(0.15)
            else:
                with engines.sync.connect():
                    await asyncio.sleep(0.15)
    assert len([r for r in caplog.records if "checked out for" in r.getMessage()]) == 3


async def test_pool_settings_given_once_for_a_shard_group_apply_to_every_shard(
    db: IO, backend_dbs: BackendDatabases, named: list[str]
) -> None:
    named.append("pooled_shards")
    first, second = backend_dbs.config("default"), backend_dbs.config("other")
    ConnectionManager.configure(
        {
            "pooled_shards": {
                "shards": {
                    "pooled_0": first,
                    # A replicated shard's own connection-level settings come before the group's.
                    "pooled_1": {"write": {**second, "pool_timeout": 3}, "read": [second], "pool_size": 1},
                },
                "pool_size": 3,
                "max_overflow": 2,
                "pool_timeout": 2,
            }
        }
    )
    (shard_0,) = await _open_pools(db, "pooled_0")
    primary_1, replica_1 = await _open_pools(db, "pooled_1")
    assert _settings(shard_0)[:3] == (3, 2, 2)
    assert _settings(primary_1)[:3] == (1, 2, 3)
    assert _settings(replica_1)[:3] == (1, 2, 2)


NODE = {"driver": "postgresql", "host": "db", "database": "app"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"write": NODE, "read": [], "pool_size": -1},
            "connection 'bad' (every node): 'pool_size' must be a whole number >= 0, not -1",
        ),
        (
            {"write": NODE, "read": [{**NODE, "name": "bad_r", "max_overflow": "x"}], "pool_size": 2},
            "connection 'bad' (replica 'bad_r'): 'max_overflow' must be a whole number >= -1, not 'x'",
        ),
        (
            {"write": {**NODE, "pool_timeout": -1}, "read": [NODE], "pool_timeout": 2},
            "connection 'bad' (primary): 'pool_timeout' must be a positive number of seconds, not -1",
        ),
        (
            {"write": NODE, "read": [NODE, {**NODE, "pool_use_lifo": "yes"}]},
            "connection 'bad' (read node 2): 'pool_use_lifo' must be True or False, not 'yes'",
        ),
        (
            {"shards": {"bad_0": NODE}, "checkout_warning": 0},
            "shard group 'bad' (every shard): 'checkout_warning' must be a positive number of seconds, not 0",
        ),
        (
            {"shards": {"bad_0": NODE, "bad_1": {**NODE, "pool_recycle": "x"}}, "pool_size": 1},
            "shard group 'bad', shard 'bad_1': 'pool_recycle' must be a positive number of seconds, not 'x'",
        ),
        (
            {"shards": {"bad_0": {"write": NODE, "pool_pre_ping": 1}}},
            "shard group 'bad', shard 'bad_0' (every node): 'pool_pre_ping' must be True or False, not 1",
        ),
        ({"shards": {"bad_0": NODE}, "routing": "automatic"}, "shard group 'bad': unknown setting(s) routing"),
    ],
)
def test_bad_pool_settings_name_the_connection_and_the_node(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ConnectionManager.configure({"bad": entry})
    assert str(caught.value).startswith(message)
    assert not ConnectionManager.is_configured("bad")


async def test_a_configuration_source_applies_pool_settings_given_once(
    db: IO, backend_dbs: BackendDatabases, named: list[str], tmp_path: Any
) -> None:
    from activerecord.ops import FileSource

    config = backend_dbs.config("default")
    named.append("live_pool")
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"live_pool": {"write": config, "read": [config], "pool_size": 2}}))
    source = FileSource(path, interval=0.05)
    if db.is_async:
        await source.astart()
    else:
        await asyncio.to_thread(source.start)
    try:
        assert [pool.size() for pool in await _open_pools(db, "live_pool")] == [2, 2]
        applied = source.applied
        path.write_text(
            json.dumps({"live_pool": {"write": config, "read": [{**config, "pool_size": 1}], "pool_size": 3}})
        )
        assert await asyncio.to_thread(source.wait_applied, applied + 1)
        assert [pool.size() for pool in await _open_pools(db, "live_pool")] == [3, 1]
        applied = source.applied
        path.write_text(json.dumps({"live_pool": {"write": config, "read": [config], "pool_size": "many"}}))
        assert await asyncio.to_thread(source.wait_applied, applied + 1)
        assert source.last_error is not None and "connection 'live_pool' (every node): 'pool_size'" in source.last_error
        assert [pool.size() for pool in await _open_pools(db, "live_pool")] == [3, 1]  # the last good ones stay
    finally:
        await asyncio.to_thread(source.stop)

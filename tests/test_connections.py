"""Connection configuration: validation, secrets, engines for both modes."""

from __future__ import annotations

import logging
import re

import pytest

from activerecord import ActiveRecord, PrimaryKeyField, StringField
from activerecord.connections.manager import ConnectionRegistry
from activerecord.engine.config import parse_node
from activerecord.errors import ConfigurationError


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"driver": "oracle", "host": "h", "database": "d"}, "unknown driver 'oracle'"),
        ({"host": "h", "database": "d"}, "missing 'driver'"),
        ({"driver": "postgresql", "database": "d"}, "missing host"),
        ({"driver": "mysql", "host": "h"}, "missing database"),
        ({"driver": "sqlite", "databse": "typo.db"}, "unknown setting"),
        ({"url": "postgresql://u@h/d", "host": "other"}, "not both"),
        ({"url": "not a url"}, "not a database URL"),
        ({"driver": "sqlite", "weight": 0}, "weight must be positive"),
        ("sqlite:///x.db", "must be a mapping"),
    ],
)
def test_bad_settings_say_what_is_wrong(settings: object, message: str) -> None:
    registry = ConnectionRegistry()
    with pytest.raises(ConfigurationError, match=message):
        registry.configure({"svc": settings})  # type: ignore[dict-item]
    assert registry.names() == []


def test_a_bad_entry_leaves_every_connection_as_it_was() -> None:
    registry = ConnectionRegistry()
    registry.configure({"a": {"driver": "sqlite"}})
    engine = registry.engine("a")
    with pytest.raises(ConfigurationError):
        registry.configure({"a": {"driver": "sqlite", "database": "other.db"}, "b": {"driver": "nope"}})
    assert registry.engine("a") is engine and registry.names() == ["a"]


def test_unknown_connection_name() -> None:
    registry = ConnectionRegistry()
    registry.configure({"users": {"driver": "sqlite"}})
    with pytest.raises(ConfigurationError, match=re.escape("no connection named 'orders' (configured: users)")):
        registry.engine("orders")


def test_seed_style_settings_build_urls_for_both_drivers() -> None:
    node = parse_node(
        "default",
        {
            "driver": "postgresql",
            "host": "user-service-db",
            "database": "user_service",
            "user": "app_user",
            "password": "secure_password",
            "pool_size": 5,
        },
    )
    assert node.sync_url.drivername == "postgresql+psycopg"
    assert node.async_url.drivername == "postgresql+asyncpg"
    assert node.sync_url.port == 5432 and node.sync_url.password == "secure_password"
    assert node.engine_options == {"pool_size": 5}
    mysql = parse_node("m", {"driver": "mariadb", "host": "h", "database": "d"})
    assert (mysql.sync_url.drivername, mysql.async_url.drivername) == ("mysql+pymysql", "mysql+asyncmy")
    assert mysql.sync_url.query["charset"] == "utf8mb4"
    from_url = parse_node("u", {"url": "postgresql+asyncpg://u:p@h:6000/d"})
    assert from_url.async_url.drivername == "postgresql+asyncpg"
    assert from_url.sync_url.drivername == "postgresql+psycopg" and from_url.sync_url.port == 6000


def test_passwords_never_show(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-pa55"
    registry = ConnectionRegistry()
    registry.configure(
        {
            "db": {
                "driver": "postgresql",
                "host": "127.0.0.1",
                "port": 1,
                "database": "d",
                "user": "u",
                "password": secret,
            }
        }
    )
    assert secret not in repr(registry)
    assert secret not in repr(registry.node("db")) and secret not in repr(registry.node("db").node)
    assert secret not in repr(registry.engine("db")) and secret not in repr(registry.async_engine("db"))
    with pytest.raises(ConfigurationError) as info:
        registry.configure({"db": {"url": f"postgresql://u:{secret}@h/d", "host": "x"}})
    assert secret not in str(info.value)
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as failure, registry.engine("db").connect():
        pass
    assert secret not in str(failure.value)
    assert secret not in caplog.text
    registry.clear()


async def test_in_memory_sqlite_is_one_database_for_both_modes() -> None:
    registry = ConnectionRegistry()
    registry.configure({"mem": {"driver": "sqlite"}})
    with registry.engine("mem").begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    async with registry.async_engine("mem").connect() as aconn:
        result = await aconn.exec_driver_sql("SELECT x FROM t")
        assert result.scalar() == 1
    await registry.aclear()


async def test_engines_are_lazy_and_disposable() -> None:
    registry = ConnectionRegistry()
    registry.configure({"f": {"driver": "sqlite", "database": ":memory:"}})
    node = registry.node("f")
    assert node._sync is None and not node.async_engines()
    engine = registry.engine("f")
    assert registry.engine("f") is engine
    registry.dispose()
    assert registry.engine("f") is not engine  # a fresh pool after dispose
    await registry.adispose()
    registry.remove("f")
    with pytest.raises(ConfigurationError):
        registry.engine("f")


def test_reconfiguring_with_the_same_settings_keeps_the_engines() -> None:
    registry = ConnectionRegistry()
    settings = {"driver": "sqlite", "database": "same.db"}
    registry.configure({"a": settings})
    engine = registry.engine("a")
    registry.configure({"a": dict(settings)})
    assert registry.engine("a") is engine
    registry.configure({"a": {"driver": "sqlite", "database": "other.db"}})
    assert registry.engine("a") is not engine
    registry.clear()


def test_unconfigured_connection_error_names_the_fix() -> None:
    class Lonely(ActiveRecord):
        __connection__ = "never_configured"
        id: int = PrimaryKeyField()
        name: str = StringField()

    with pytest.raises(ConfigurationError, match=re.escape("ConnectionManager.configure()")):
        Lonely.find().all()

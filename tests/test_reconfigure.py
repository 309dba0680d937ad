"""Live reconfiguration: configure() again while serving, as service discovery does."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from activerecord import ConnectionManager, metadata_for
from activerecord.engine.engines import in_use, is_disposed
from activerecord.errors import ConfigurationError

from .backends import BackendDatabases
from .dual import IO, off_loop
from .models import Order


class Databases:
    """Connection "orders" (the fixture's database) and a second database it can move to."""

    def __init__(self, backend_dbs: BackendDatabases) -> None:
        self.old = backend_dbs.config("orders")
        self.new = backend_dbs.config("orders_moved")
        ConnectionManager.configure({"_moved_setup": self.new})
        with ConnectionManager.engine("_moved_setup").begin() as conn:
            metadata_for("orders").create_all(conn)
            for table in reversed(metadata_for("orders").sorted_tables):
                conn.execute(table.delete())
        ConnectionManager.remove("_moved_setup")

    def user_ids_in(self, cfg: dict[str, Any]) -> list[int]:
        ConnectionManager.configure({"_peek": cfg})
        try:
            return sorted(o.user_id for o in off_loop(Order.find().using("_peek").all))
        finally:
            ConnectionManager.remove("_peek")


@pytest.fixture
async def dbs(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[Databases]:
    databases = Databases(backend_dbs)
    yield databases
    # Back to the fixture's database, so that its cleanup empties the right tables.
    ConnectionManager.configure({"orders": databases.old})
    await ConnectionManager.asweep()


async def test_a_changed_connection_swaps_while_open_transactions_finish_on_the_old_one(db: IO, dbs: Databases) -> None:
    await db(Order).create(user_id=1)  # the old engine is in use before the change
    old = ConnectionManager.node("orders")
    async with db.transaction(Order):
        await db(Order).create(user_id=2)
        ConnectionManager.configure({"orders": dbs.new})
        assert ConnectionManager.node("orders") is not old
        assert in_use(old) == 1 and not is_disposed(old)  # the transaction still holds it
        await db(Order).create(user_id=3)  # still inside: the transaction's connection
        assert await db(Order.find()).count() == 3
    # New work uses the new database; the old pool goes once its last connection came back.
    assert await db(Order.find()).count() == 0
    await db(Order).create(user_id=4)
    assert dbs.user_ids_in(dbs.old) == [1, 2, 3]
    assert dbs.user_ids_in(dbs.new) == [4]
    if db.is_async:
        assert is_disposed(old)
    else:
        assert old._sync is None  # the sync pool is closed; an async pool closes on asweep()
        await ConnectionManager.asweep()
        assert is_disposed(old)
    assert ConnectionManager.retired_count() == 0


async def test_an_unchanged_configuration_keeps_its_engines(db: IO, dbs: Databases) -> None:
    engine = ConnectionManager.engine("orders")
    ConnectionManager.configure({"orders": dict(dbs.old)})
    assert ConnectionManager.engine("orders") is engine
    # Adding replicas keeps the primary's pool.
    ConnectionManager.configure({"orders": {"write": dict(dbs.old), "read": [dbs.new]}})
    assert ConnectionManager.engine("orders") is engine
    assert ConnectionManager.retired_count() == 0


async def test_a_bad_entry_changes_nothing(db: IO, dbs: Databases) -> None:
    engine = ConnectionManager.engine("orders")
    with pytest.raises(ConfigurationError):
        ConnectionManager.configure({"orders": dbs.new, "users": {"driver": "nosuchdb"}})
    assert ConnectionManager.engine("orders") is engine


async def test_remove(db: IO, dbs: Databases) -> None:
    await db(Order).create(user_id=1)
    await db(ConnectionManager).remove("orders")
    assert "orders" not in ConnectionManager.names()
    with pytest.raises(ConfigurationError, match="no connection named 'orders'"):
        await db(Order.find()).all()
    with pytest.raises(ConfigurationError):
        ConnectionManager.remove("orders")
    ConnectionManager.configure({"orders": dbs.old})
    assert await db(Order.find()).count() == 1


# -- the seed's DatabaseConfigService, fed by an in-process registry ------------------------------


class FakeRegistry:
    """Stands in for Consul/etcd: service name -> service description, changeable at runtime."""

    def __init__(self, services: dict[str, Any]) -> None:
        self.services = services

    async def get(self) -> dict[str, Any]:
        await asyncio.sleep(0)
        return copy.deepcopy(self.services)


class DatabaseConfigService:
    """The seed's configuration service, with the registry call filled in."""

    def __init__(self, service_registry: FakeRegistry) -> None:
        self.service_registry = service_registry

    async def configure_database_connections(self) -> None:
        registry_data = await self.fetch_service_registry()
        for service_name, service_config in registry_data.items():
            if "database" in service_config:
                ConnectionManager.configure({service_name: service_config["database"]})

    async def fetch_service_registry(self) -> dict[str, Any]:
        return await self.service_registry.get()


async def test_seed_config_service_reconfigures_under_traffic(db: IO, dbs: Databases) -> None:
    registry = FakeRegistry({"orders": {"database": dbs.old}, "web": {"port": 8080}})
    service = DatabaseConfigService(registry)
    await service.configure_database_connections()
    errors: list[BaseException] = []
    done = threading.Event()
    written = [0]

    def traffic_sync() -> None:
        try:
            while not done.is_set():
                Order.create(user_id=100)
                Order.find().where(user_id=100).count()
                written[0] += 1
        except BaseException as exc:
            errors.append(exc)

    async def traffic_async() -> None:
        try:
            while not done.is_set():
                await Order.acreate(user_id=100)
                await Order.find().where(user_id=100).acount()
                written[0] += 1
        except BaseException as exc:
            errors.append(exc)

    if db.is_async:
        runner: Any = asyncio.ensure_future(traffic_async())
    else:
        runner = threading.Thread(target=traffic_sync)
        runner.start()
    for step in range(6):
        await asyncio.sleep(0.05)
        target = dbs.new if step % 2 == 0 else dbs.old
        registry.services["orders"] = {"database": {"write": target, "read": [target], "routing": "automatic"}}
        await service.configure_database_connections()
    await asyncio.sleep(0.05)
    done.set()
    if db.is_async:
        await runner
    else:
        runner.join(10)
    assert errors == []
    assert written[0] > 0
    total = len(dbs.user_ids_in(dbs.old)) + len(dbs.user_ids_in(dbs.new))
    assert total == written[0]
    assert ConnectionManager.cluster("orders").options.routing == "automatic"
    await ConnectionManager.asweep()
    assert ConnectionManager.retired_count() == 0


def test_shard_groups_can_change_their_shards() -> None:
    sqlite = {"driver": "sqlite"}
    ConnectionManager.configure({"regroup": {"shards": {"rg_0": sqlite, "rg_1": sqlite}}})
    try:
        kept = ConnectionManager.engine("rg_0")
        dropped = ConnectionManager.engine("rg_1")
        ConnectionManager.configure(
            {"regroup": {"shards": {"rg_0": {"driver": "sqlite", "database": ":memory:"}, "rg_2": sqlite}}}
        )
        assert ConnectionManager.shards("regroup") == ["rg_0", "rg_2"]
        assert not ConnectionManager.is_configured("rg_1")
        assert ConnectionManager.engine("rg_0") is kept  # the same in-memory database, kept
        assert ConnectionManager.engine("rg_2") not in (kept, dropped)  # its own in-memory database
        assert [name for name, _ in ConnectionManager.primaries("regroup")] == ["rg_0", "rg_2"]
    finally:
        ConnectionManager.remove("regroup")
    assert not ConnectionManager.is_configured("rg_0")


def test_repeating_an_in_memory_configuration_keeps_the_database() -> None:
    ConnectionManager.configure({"mem_again": {"driver": "sqlite"}})
    try:
        engine = ConnectionManager.engine("mem_again")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        ConnectionManager.configure({"mem_again": {"driver": "sqlite"}})
        assert ConnectionManager.engine("mem_again") is engine
        with ConnectionManager.engine("mem_again").connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    finally:
        ConnectionManager.remove("mem_again")


def test_an_engine_opened_on_a_replaced_node_is_disposed_too(tmp_path: Path) -> None:
    ConnectionManager.configure({"straggler": {"driver": "sqlite", "database": str(tmp_path / "a.db")}})
    try:
        old = ConnectionManager.node("straggler")  # looked up just before the swap...
        ConnectionManager.configure({"straggler": {"driver": "sqlite", "database": str(tmp_path / "b.db")}})
        assert old not in ConnectionManager._retired  # never opened: nothing to wait for
        with old.sync.connect() as conn:  # ...and used just after it
            conn.exec_driver_sql("SELECT 1")
        assert old in ConnectionManager._retired
        with ConnectionManager.engine("straggler").connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        ConnectionManager._sweep()
        assert is_disposed(old)
        assert old not in ConnectionManager._retired
    finally:
        ConnectionManager.remove("straggler")

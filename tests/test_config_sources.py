"""Connection settings from a registry (a real etcd) or a file, applied live, sync and async.

The etcd scenarios run against the Patroni cluster's members as primary and replicas (password
authentication, so that a rotated password is a real one): a replica added under read load starts
serving reads, a removed one stops, a rotated password swaps the engines while a transaction on
the old ones finishes, and an invalid document is refused while the last good settings stay.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager, Field, PrimaryKeyField, StringField
from activerecord.errors import ConfigurationError
from activerecord.ops import EtcdSource, FileSource

from .harness.patroni import LOOPBACK, PASSWORD, Member, PatroniCluster

PREFIX = "/services/registry_orders/connections/"


class Note(ActiveRecord):
    __tablename__ = "registry_notes"
    __connection__ = "registry_orders"
    id: Field[int] = PrimaryKeyField()
    text: Field[str] = StringField(max_length=40)


async def _start(source: Any, mode: str) -> None:
    if mode == "async":
        await source.astart()
    else:
        await asyncio.to_thread(source.start)


def _served_by(member: Member) -> tuple[sa.Engine, list[str]]:
    engine = next(e for e in ConnectionManager.replica_engines("registry_orders") if e.url.port == member.pg_port)
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    return engine, seen


@pytest.fixture
def registry(patroni: PatroniCluster, backend: str) -> Iterator[PatroniCluster]:
    patroni.ensure_running()
    patroni.wait_healthy()
    for key in ("registry_orders", "broken"):
        patroni.etcd.delete(PREFIX + key)
    yield patroni
    for name in ("registry_orders",):
        if ConnectionManager.is_configured(name):
            ConnectionManager.remove(name)


def _doc(patroni: PatroniCluster, replicas: list[Member], user: str = "postgres", password: str = PASSWORD) -> str:
    primary = patroni.primary()
    node = {**patroni.node_config(primary), "user": user, "password": password}
    return json.dumps(
        {"write": node, "read": [{**patroni.node_config(m), "user": user, "password": password} for m in replicas]}
    )


@pytest.mark.backends("postgresql")
async def test_etcd_adds_and_removes_replicas_under_read_load(registry: PatroniCluster, mode: str) -> None:
    primary = registry.primary()
    first, second = [m for m in registry.members if m is not primary]
    registry.etcd.put(PREFIX + "registry_orders", _doc(registry, [first]))
    source = EtcdSource(registry.etcd.endpoint, prefix=PREFIX)
    await _start(source, mode)
    try:
        await asyncio.to_thread(Note.create_all)
        await asyncio.to_thread(registry.wait_replayed)  # the replicas have the table before reads go there
        errors: list[BaseException] = []
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                try:
                    Note.find().using_read_replica().count()
                except BaseException as exc:
                    errors.append(exc)
                time.sleep(0.005)

        readers = [threading.Thread(target=read, daemon=True) for _ in range(3)]
        for reader in readers:
            reader.start()
        applied = source.applied
        put_at = time.monotonic()
        registry.etcd.put(PREFIX + "registry_orders", _doc(registry, [first, second]))
        assert await asyncio.to_thread(source.wait_applied, applied + 1)
        print(f"\netcd reconfiguration ({mode}): applied {time.monotonic() - put_at:.3f} s after the put")
        _, on_second = _served_by(second)
        await asyncio.sleep(1.0)
        assert on_second, "the added replica serves reads"

        applied = source.applied
        registry.etcd.put(PREFIX + "registry_orders", _doc(registry, [second]))
        assert await asyncio.to_thread(source.wait_applied, applied + 1)
        assert [e.url.port for e in ConnectionManager.replica_engines("registry_orders")] == [second.pg_port]
        stop.set()
        for reader in readers:
            reader.join(5)
        assert errors == []  # no read failed while replicas came and went
    finally:
        await asyncio.to_thread(source.stop)


@pytest.mark.backends("postgresql")
async def test_etcd_password_rotation_keeps_inflight_transactions(registry: PatroniCluster, mode: str) -> None:
    primary = registry.primary()
    registry.run_sql("DROP ROLE IF EXISTS app_rotating")
    registry.run_sql("CREATE ROLE app_rotating LOGIN PASSWORD 'first-secret' SUPERUSER")
    registry.etcd.put(PREFIX + "registry_orders", _doc(registry, [], user="app_rotating", password="first-secret"))
    source = EtcdSource(registry.etcd.endpoint, prefix=PREFIX)
    await _start(source, mode)
    try:
        await asyncio.to_thread(Note.create_all)
        began, release, outcome = threading.Event(), threading.Event(), []

        def long_transaction() -> None:
            with Note.transaction():
                Note.create(text="in flight")
                began.set()
                release.wait(20)
            outcome.append("committed")

        worker = threading.Thread(target=long_transaction)
        worker.start()
        assert await asyncio.to_thread(began.wait, 10)
        registry.run_sql("ALTER ROLE app_rotating PASSWORD 'second-secret'")
        applied = source.applied
        registry.etcd.put(PREFIX + "registry_orders", _doc(registry, [], user="app_rotating", password="second-secret"))
        assert await asyncio.to_thread(source.wait_applied, applied + 1)
        if mode == "async":
            await Note.acreate(text="after rotation")
        else:
            await asyncio.to_thread(Note.create, text="after rotation")
        release.set()
        await asyncio.to_thread(worker.join, 20)
        assert outcome == ["committed"]
        assert sorted(await Note.find().apluck(Note.text)) == ["after rotation", "in flight"]
        assert "second-secret" not in repr(ConnectionManager) and "first-secret" not in repr(ConnectionManager)
        with pytest.raises(psycopg.OperationalError):  # the old password is really gone
            psycopg.connect(
                host=LOOPBACK, port=primary.pg_port, user="app_rotating", password="first-secret", dbname="postgres"
            ).close()
    finally:
        await asyncio.to_thread(source.stop)
        await Note.find().adelete_all()


@pytest.mark.backends("postgresql")
async def test_etcd_invalid_document_is_refused_and_the_last_good_stays(
    registry: PatroniCluster, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry.etcd.put(PREFIX + "registry_orders", _doc(registry, []))
    source = EtcdSource(registry.etcd.endpoint, prefix=PREFIX)
    await _start(source, mode)
    try:
        await asyncio.to_thread(Note.create_all)
        for bad in ("{not json", json.dumps({"write": {"driver": "postgresql", "hots": "x"}})):
            applied = source.applied
            registry.etcd.put(PREFIX + "registry_orders", bad)
            assert await asyncio.to_thread(source.wait_applied, applied + 1)
            assert source.last_error is not None and source.last_error.startswith("registry_orders:")
            assert await Note.find().acount() >= 0  # still configured, still working
        assert "refused" in caplog.text and PASSWORD not in caplog.text
    finally:
        await asyncio.to_thread(source.stop)


async def test_an_invalid_document_at_start_raises(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"registry_orders": {"driver": "sqlite", "databse": "x"}}))
    with pytest.raises(ConfigurationError):
        await _start(FileSource(path), mode)
    assert not ConnectionManager.is_configured("registry_orders")


async def test_a_file_source_follows_its_file(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "connections.json"
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    path.write_text(json.dumps({"registry_orders": {"driver": "sqlite", "database": str(first)}}))
    source = FileSource(path, interval=0.05)
    await _start(source, mode)
    try:
        await asyncio.to_thread(Note.create_all)
        await Note.acreate(text="first")
        applied = source.applied
        path.write_text(json.dumps({"registry_orders": {"driver": "sqlite", "database": str(second)}}))
        assert await asyncio.to_thread(source.wait_applied, applied + 1)
        await asyncio.to_thread(Note.create_all)
        assert await Note.find().acount() == 0  # a new database behind the same name
        applied = source.applied
        path.write_text("{ broken")
        assert await asyncio.to_thread(source.wait_applied, applied + 1)
        assert source.last_error is not None
        await Note.acreate(text="second")  # the last good settings stay in force
        assert await Note.find().acount() == 1
        applied = source.applied
        path.write_text("{}")
        assert await asyncio.to_thread(source.wait_applied, applied + 1)
        assert not ConnectionManager.is_configured("registry_orders")
    finally:
        await asyncio.to_thread(source.stop)
        if ConnectionManager.is_configured("registry_orders"):
            await ConnectionManager.aremove("registry_orders")


class DatabaseConfigService:
    """The guide's sample, its registry read through `EtcdSource`."""

    def __init__(self, service_registry_url: str) -> None:
        self.service_registry_url = service_registry_url

    async def configure_database_connections(self) -> None:
        registry_data = await self.fetch_service_registry()
        for service_name, service_config in registry_data.items():
            if "database" in service_config:
                ConnectionManager.configure({service_name: service_config["database"]})

    async def fetch_service_registry(self) -> dict[str, Any]:
        return await EtcdSource(self.service_registry_url, prefix="/services/").aread()


@pytest.mark.backends("postgresql")
async def test_the_guides_database_config_service(registry: PatroniCluster) -> None:
    primary = registry.primary()
    registry.etcd.put(
        "/services/registry_orders", json.dumps({"database": registry.node_config(primary), "owner": "team"})
    )
    registry.etcd.put("/services/gateway", json.dumps({"owner": "edge"}))  # no database: left alone
    try:
        await DatabaseConfigService(registry.etcd.endpoint).configure_database_connections()
        assert ConnectionManager.is_configured("registry_orders") and not ConnectionManager.is_configured("gateway")
        await asyncio.to_thread(Note.create_all)
        assert await Note.find().acount() >= 0
    finally:
        for key in ("/services/registry_orders", "/services/gateway"):
            registry.etcd.delete(key)

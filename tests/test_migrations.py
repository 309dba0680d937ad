"""Per-service migrations on SQLite, PostgreSQL and MariaDB, through the Python API (sync and async).

Each test declares its models on a connection of its own, with a migrations folder and a fresh
database of its own, so tests never see each other's tables or revisions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import (
    ActiveRecord,
    BigIntegerField,
    BooleanField,
    ConfigurationError,
    ConnectionManager,
    DateField,
    DateTimeField,
    DecimalField,
    FloatField,
    IntegerField,
    JSONField,
    PrimaryKeyField,
    StringField,
    TextField,
    TimestampField,
    UUIDField,
    migrations,
)
from activerecord.errors import MigrationError, MigrationLockError, SchemaDriftError
from activerecord.migrations import _lock, _runner
from activerecord.model import registry as _registry

from .backends import BackendDatabases
from .dual import IO, off_loop

SERVERS = pytest.mark.backends("postgresql", "mysql")


@dataclass
class Service:
    """One service under test: a connection name, its migrations folder and its database settings."""

    name: str
    directory: Path
    config: dict[str, Any]

    @property
    def engine(self) -> sa.Engine:
        return ConnectionManager.engine(self.name)

    def tables(self) -> set[str]:
        return set(sa.inspect(self.engine).get_table_names())

    def columns(self, table: str) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in sa.inspect(self.engine).get_columns(table)}

    def versions(self, table: str | None = None) -> list[str]:
        table = table or migrations.default_version_table(self.name)
        if table not in self.tables():
            return []
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {table}"))]


def forget_models(name: str) -> None:
    """Drop the models of connection ``name`` from the registry, so the test can declare new versions."""
    _registry._metadata.pop(name, None)
    _registry._models.pop(name, None)


def new_service(backend_dbs: BackendDatabases, tmp_path: Path, database: str | None = None) -> Service:
    name = f"svc_{uuid.uuid4().hex[:8]}"
    config = backend_dbs.config(database or name)
    ConnectionManager.configure({name: config})
    return Service(name, tmp_path / "migrations" / name, config)


@pytest.fixture
def io(mode: str) -> IO:
    return IO(mode)


@pytest.fixture
def made(backend_dbs: BackendDatabases, tmp_path: Path) -> Iterator[list[Service]]:
    """Services made by a test; their connections and models are forgotten afterwards."""
    services: list[Service] = []
    yield services
    for service in services:
        forget_models(service.name)
        if ConnectionManager.is_configured(service.name):
            ConnectionManager.remove(service.name)


@pytest.fixture
def service(backend_dbs: BackendDatabases, tmp_path: Path, made: list[Service]) -> Service:
    svc = new_service(backend_dbs, tmp_path)
    made.append(svc)
    migrations.init(svc.name, svc.directory)
    return svc


# --- the models, version 1 and version 2 -----------------------------------------------------------


def declare_v1(service_name: str) -> None:
    forget_models(service_name)

    class Vendor(ActiveRecord):
        __tablename__ = "vendors"
        __connection__ = service_name
        id: int = PrimaryKeyField()
        code: str = StringField(max_length=20, unique=True)

    class Product(ActiveRecord):
        __tablename__ = "products"
        __connection__ = service_name
        __indexes__ = [("name", "price")]
        __unique_together__ = [("sku", "vendor")]

        id: int = PrimaryKeyField()
        name: str = StringField(max_length=50, index=True)
        sku: str = StringField(max_length=20)
        vendor: str = StringField(max_length=20)
        price: decimal.Decimal = DecimalField(precision=10, scale=2)
        stock: int = IntegerField(default=0)
        big: int | None = BigIntegerField(nullable=True)
        body: str | None = TextField(nullable=True)
        flag: bool = BooleanField(default=False)
        ratio: float | None = FloatField(nullable=True)
        day: dt.date | None = DateField(nullable=True)
        moment: dt.datetime | None = DateTimeField(nullable=True)
        doc: Any = JSONField(nullable=True)
        token: uuid.UUID | None = UUIDField(nullable=True)
        status: str = StringField(max_length=10, server_default="new")
        created_at: dt.datetime = TimestampField(auto_now_add=True)


def declare_v2(service_name: str) -> None:
    """Version 1 with every kind of change the core's field options can make."""
    forget_models(service_name)

    class Vendor(ActiveRecord):
        __tablename__ = "vendors"
        __connection__ = service_name
        id: int = PrimaryKeyField()
        code: str = StringField(max_length=20)  # unique dropped

    class Product(ActiveRecord):
        __tablename__ = "products"
        __connection__ = service_name
        __indexes__ = [("name", "stock")]  # composite index replaced
        # __unique_together__ dropped

        id: int = PrimaryKeyField()
        name: str = StringField(max_length=80)  # longer; index dropped
        sku: str | None = StringField(max_length=20, nullable=True)  # now nullable
        vendor: str = StringField(max_length=20)
        price: decimal.Decimal = DecimalField(precision=12, scale=2)  # wider
        stock: int = IntegerField(default=0, index=True)  # indexed
        big: int | None = BigIntegerField(nullable=True)
        body: str | None = TextField(nullable=True)
        flag: bool = BooleanField(default=False)
        # ratio removed
        day: dt.date | None = DateField(nullable=True)
        moment: dt.datetime | None = DateTimeField(nullable=True)
        doc: Any = JSONField(nullable=True)
        token: uuid.UUID | None = UUIDField(nullable=True)
        status: str = StringField(max_length=10, server_default="draft")  # new server default
        created_at: dt.datetime = TimestampField(auto_now_add=True)
        color: str | None = StringField(max_length=10, nullable=True)  # added
        meta: Any = JSONField(nullable=True)  # added JSON
        vendor_id: int | None = IntegerField(nullable=True)  # added, with a foreign key

    Product.__table__.append_constraint(sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"]))


def diff_kinds(diffs: list[Any]) -> set[tuple[str, str]]:
    """Alembic's diffs as (operation, object name) pairs."""
    kinds: set[tuple[str, str]] = set()
    for diff in diffs:
        for item in diff if isinstance(diff, list) else [diff]:
            op = item[0]
            if op in ("add_column", "remove_column"):
                kinds.add((op, f"{item[2]}.{item[3].name}"))
            elif op.startswith("modify_"):
                kinds.add((op, f"{item[2]}.{item[3]}"))
            elif op in ("add_table", "remove_table"):
                kinds.add((op, item[1].name))
            else:
                kinds.add((op, str(item[1].name)))
    return kinds


# --- upgrade, downgrade and autogenerate ---------------------------------------------------------


async def test_upgrade_check_and_downgrade_after_a_model_change(service: Service, io: IO) -> None:
    svc = service
    declare_v1(svc.name)
    first = off_loop(migrations.revision, svc.name, "create products", autogenerate=True, directory=svc.directory)
    assert "op.create_table('products'" in first.read_text()

    results = await io(migrations).upgrade(svc.name, directory=svc.directory)
    [status] = results
    assert (status.label, status.status, status.before) == (svc.name, "upgraded", ())
    assert status.after == (first.name.split("_", 1)[0],)
    assert {"products", "vendors"} <= svc.tables()
    await io(migrations).check(svc.name, directory=svc.directory)

    declare_v2(svc.name)
    with pytest.raises(SchemaDriftError) as drift:
        await io(migrations).check(svc.name, directory=svc.directory)
    assert ("add_column", "products.color") in diff_kinds(drift.value.diffs)

    second = off_loop(migrations.revision, svc.name, "v2", autogenerate=True, directory=svc.directory)
    [status] = await io(migrations).upgrade(svc.name, directory=svc.directory)
    assert status.status == "upgraded" and status.after == (second.name.split("_", 1)[0],)
    await io(migrations).check(svc.name, directory=svc.directory)
    columns = svc.columns("products")
    assert {"color", "meta", "vendor_id"} <= set(columns) and "ratio" not in columns
    assert columns["sku"]["nullable"] is True

    # Rows written under the new schema, through the models, survive the round trip below.
    product = _registry.models_for(svc.name)[-1]
    await io(product).create(
        name="kept", sku="s1", vendor="v", price=decimal.Decimal("12.50"), status="s", meta={"a": 1}
    )

    [status] = await io(migrations).downgrade(svc.name, "-1", directory=svc.directory)
    assert status.status == "downgraded" and status.after == (first.name.split("_", 1)[0],)
    columns = svc.columns("products")
    assert "ratio" in columns and "color" not in columns
    with svc.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name, price FROM products")).one() == ("kept", decimal.Decimal("12.50"))

    [status] = await io(migrations).downgrade(svc.name, "base", directory=svc.directory)
    assert status.after == ()
    assert svc.tables() == {migrations.default_version_table(svc.name)}
    assert svc.versions() == []
    [status] = await io(migrations).current(svc.name, directory=svc.directory)
    assert (status.status, status.after) == ("current", ())


def test_autogenerate_sees_every_field_option(service: Service) -> None:
    svc = service
    declare_v1(svc.name)
    off_loop(migrations.revision, svc.name, "v1", autogenerate=True, directory=svc.directory)
    migrations.upgrade(svc.name, directory=svc.directory)
    migrations.check(svc.name, directory=svc.directory)  # JSON, UUID, timestamps: no false differences

    declare_v2(svc.name)
    with pytest.raises(SchemaDriftError) as drift:
        migrations.check(svc.name, directory=svc.directory)
    kinds = diff_kinds(drift.value.diffs)
    expected = {
        ("add_column", "products.color"),
        ("add_column", "products.meta"),
        ("add_column", "products.vendor_id"),
        ("remove_column", "products.ratio"),
        ("modify_type", "products.name"),
        ("modify_type", "products.price"),
        ("modify_nullable", "products.sku"),
        ("modify_default", "products.status"),
        ("add_index", "ix_products_stock"),
        ("add_index", "ix_products_name_stock"),
        ("remove_index", "ix_products_name"),
        ("remove_index", "ix_products_name_price"),
        ("add_fk", "fk_products_vendor_id_vendors"),
    }
    assert expected <= kinds, expected - kinds
    removed_uniques = {name for op, name in kinds if op in ("remove_constraint", "remove_index")}
    assert {"uq_products_sku_vendor", "uq_vendors_code"} <= removed_uniques


def test_renames_are_never_guessed(service: Service) -> None:
    svc = service
    forget_models(svc.name)

    class Thing(ActiveRecord):
        __tablename__ = "things"
        __connection__ = svc.name
        id: int = PrimaryKeyField()
        title: str = StringField(max_length=40)

    off_loop(migrations.revision, svc.name, "things", autogenerate=True, directory=svc.directory)
    migrations.upgrade(svc.name, directory=svc.directory)
    forget_models(svc.name)

    class Thing2(ActiveRecord):
        __tablename__ = "things"
        __connection__ = svc.name
        id: int = PrimaryKeyField()
        name: str = StringField(max_length=40)

    script = off_loop(migrations.revision, svc.name, "rename", autogenerate=True, directory=svc.directory).read_text()
    assert "add_column(sa.Column('name'" in script
    assert "drop_column('title')" in script
    assert "new_column_name" not in script


async def test_async_start_up_upgrade_on_a_fresh_database(service: Service) -> None:
    """What a service's async start-up code does: ``await aupgrade()``, then ``await acurrent()``."""
    declare_v1(service.name)
    script = off_loop(migrations.revision, service.name, "v1", autogenerate=True, directory=service.directory)
    [status] = await migrations.aupgrade(service.name, directory=service.directory)
    assert status.status == "upgraded"
    [again] = await migrations.aupgrade(service.name, directory=service.directory)
    assert again.status == "unchanged" and again.after == (script.name.split("_", 1)[0],)
    [now] = await migrations.acurrent(service.name, directory=service.directory)
    assert now.after == again.after
    await migrations.acheck(service.name, directory=service.directory)


# --- several services on one database ------------------------------------------------------------


async def test_two_services_share_one_database(
    backend_dbs: BackendDatabases, tmp_path: Path, made: list[Service], io: IO
) -> None:
    shared = f"shared_{uuid.uuid4().hex[:6]}"
    a = new_service(backend_dbs, tmp_path, database=shared)
    b = new_service(backend_dbs, tmp_path, database=shared)
    made.extend([a, b])
    for svc, table in ((a, "alpha"), (b, "beta")):
        forget_models(svc.name)
        type(
            f"M_{table}",
            (ActiveRecord,),
            {
                "__tablename__": table,
                "__connection__": svc.name,
                "__annotations__": {"id": int, "label": str},
                "id": PrimaryKeyField(),
                "label": StringField(max_length=10),
            },
        )
        migrations.init(svc.name, svc.directory)
        off_loop(migrations.revision, svc.name, f"create {table}", autogenerate=True, directory=svc.directory)
        await io(migrations).upgrade(svc.name, directory=svc.directory)

    version_a, version_b = migrations.default_version_table(a.name), migrations.default_version_table(b.name)
    assert {"alpha", "beta", version_a, version_b} <= a.tables()
    assert a.versions() and b.versions() and a.versions() != b.versions()
    # Each service sees only its own tables: the other's are neither drift nor dropped.
    await io(migrations).check(a.name, directory=a.directory)
    await io(migrations).check(b.name, directory=b.directory)
    empty = off_loop(migrations.revision, a.name, "nothing", autogenerate=True, directory=a.directory).read_text()
    assert "drop_table" not in empty and "beta" not in empty
    empty_path = next(p for p in (a.directory / "versions").glob("*_nothing.py"))
    empty_path.unlink()

    await io(migrations).downgrade(a.name, "base", directory=a.directory)
    tables = b.tables()
    assert "alpha" not in tables and "beta" in tables
    assert b.versions() and a.versions() == []


# --- shards: one run over several databases --------------------------------------------------------


def _shard_script(directory: Path) -> str:
    """A hand-written first migration creating table ``items``."""
    (directory / "versions" / "0001_items.py").write_text(
        '"""items"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        "revision = '0001'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        "    op.create_table('items', sa.Column('id', sa.Integer(), primary_key=True))\n\n\n"
        "def downgrade() -> None:\n"
        "    op.drop_table('items')\n"
    )
    return "0001"


async def test_shards_are_upgraded_one_by_one_with_a_status_each(
    backend_dbs: BackendDatabases, tmp_path: Path, made: list[Service], io: IO
) -> None:
    svc = new_service(backend_dbs, tmp_path)
    shards = [new_service(backend_dbs, tmp_path) for _ in range(3)]
    made.extend([svc, *shards])
    migrations.init(svc.name, svc.directory)
    rev = _shard_script(svc.directory)

    def targets(chosen: list[Service]) -> list[tuple[str, Any]]:
        return [
            (f"shard-{i}", ConnectionManager.async_engine(s.name) if io.is_async else s.engine)
            for i, s in enumerate(chosen)
        ]

    results = await io(migrations).upgrade(svc.name, directory=svc.directory, targets=targets(shards[:2]))
    assert [(r.label, r.status, r.after) for r in results] == [
        ("shard-0", "upgraded", (rev,)),
        ("shard-1", "upgraded", (rev,)),
    ]
    assert all("items" in s.tables() for s in shards[:2])
    results = await io(migrations).current(svc.name, directory=svc.directory, targets=targets(shards[:2]))
    assert [r.after for r in results] == [(rev,), (rev,)]

    # shard-2 already has a table in the way: it fails, the shards before it keep their upgrade
    # and the run stops there, every status reported.
    with shards[2].engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY)"))
    blocked = [shards[0], shards[2], shards[1]]
    await io(migrations).downgrade(svc.name, "base", directory=svc.directory, targets=targets(shards[:2]))
    with pytest.raises(MigrationError) as failed:
        await io(migrations).upgrade(svc.name, directory=svc.directory, targets=targets(blocked))
    statuses = [(r.label, r.status) for r in failed.value.results]  # type: ignore[attr-defined]
    assert statuses == [("shard-0", "upgraded"), ("shard-1", "failed"), ("shard-2", "skipped")]
    assert "shard-1" in str(failed.value)
    assert shards[0].versions(migrations.default_version_table(svc.name)) == [rev]
    assert shards[1].versions(migrations.default_version_table(svc.name)) == []
    assert shards[2].versions(migrations.default_version_table(svc.name)) == []


def test_the_connection_decides_its_targets(
    backend_dbs: BackendDatabases, tmp_path: Path, made: list[Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``upgrade(name)`` runs on every node ``_migration_targets`` names: where shard groups plug in."""
    svc = new_service(backend_dbs, tmp_path)
    shards = [new_service(backend_dbs, tmp_path) for _ in range(2)]
    made.extend([svc, *shards])
    migrations.init(svc.name, svc.directory)
    rev = _shard_script(svc.directory)
    assert _runner._migration_targets(svc.name) == [(svc.name, ConnectionManager.node(svc.name))]

    nodes = [(f"{svc.name}/shard-{i}", ConnectionManager.node(s.name)) for i, s in enumerate(shards)]
    monkeypatch.setattr(_runner, "_migration_targets", lambda name: nodes)
    results = migrations.upgrade(svc.name, directory=svc.directory)
    assert [(r.label, r.after) for r in results] == [(f"{svc.name}/shard-{i}", (rev,)) for i in range(2)]
    assert "items" not in svc.tables()


# --- the migration lock ----------------------------------------------------------------------------


def _slow_script(directory: Path, seconds: float) -> str:
    (directory / "versions" / "0001_slow.py").write_text(
        '"""slow"""\n'
        "import time\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n"
        "revision = '0001'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        "    op.create_table('slow', sa.Column('id', sa.Integer(), primary_key=True))\n"
        f"    time.sleep({seconds})\n\n\n"
        "def downgrade() -> None:\n"
        "    op.drop_table('slow')\n"
    )
    return "0001"


def _hold_lock(svc: Service, seconds: float, held: threading.Event) -> threading.Thread:
    """Hold ``svc``'s migration lock from another session for ``seconds``, as a concurrent deploy would."""
    engine = sa.create_engine(svc.engine.url)

    def hold() -> None:
        with engine.connect() as conn, _lock.migration_lock(conn, migrations.default_version_table(svc.name), 5):
            held.set()
            time.sleep(seconds)
        engine.dispose()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    return thread


@SERVERS
async def test_upgrade_waits_for_the_migration_lock(service: Service, io: IO) -> None:
    rev = _slow_script(service.directory, 0)
    messages: list[str] = []
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    thread = _hold_lock(service, 1.5, threading.Event())
    try:
        [status] = await io(migrations).upgrade(service.name, directory=service.directory, on_wait=messages.append)
    finally:
        thread.join()
        ticker.cancel()
    assert status.status == "upgraded" and status.after == (rev,)
    assert status.lock_wait >= 1.0
    assert messages and "waiting for the migration lock" in messages[0]
    if io.is_async:
        # The wait happens in the server, awaited: the event loop kept serving other tasks.
        assert ticks >= 10


@SERVERS
async def test_a_lock_timeout_changes_nothing(service: Service, io: IO) -> None:
    _slow_script(service.directory, 0)
    thread = _hold_lock(service, 3, threading.Event())
    try:
        with pytest.raises(MigrationLockError, match="was not free within 1s") as failed:
            await io(migrations).upgrade(service.name, directory=service.directory, lock_timeout=1)
    finally:
        thread.join()
    assert [r.status for r in failed.value.results] == ["failed"]  # type: ignore[attr-defined]
    assert "slow" not in service.tables()
    assert service.versions() == []


def test_lock_names_fit_mysql() -> None:
    assert len(_lock.lock_name("d" * 80, "alembic_version_" + "x" * 80)) <= 64
    assert _lock.lock_name("a", "t") != _lock.lock_name("b", "t")


# --- clear errors that leave the schema as it was -------------------------------------------------


def test_unknown_connection(tmp_path: Path) -> None:
    migrations.init("nowhere", tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match="no connection named 'nowhere'"):
        migrations.upgrade("nowhere", directory=tmp_path / "nowhere")


def test_missing_environment(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=r"no migration environment in .*db init --connection x"):
        migrations.upgrade("x", directory=tmp_path / "absent")
    with pytest.raises(MigrationError, match="no migration environment"):
        migrations.history("x", directory=tmp_path / "absent")


def test_env_py_needs_the_activerecord_commands(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    folder = migrations.init("plain", tmp_path / "plain")
    config = Config()
    config.set_main_option("script_location", str(folder))
    with pytest.raises(MigrationError, match="not by the plain `alembic` command"):
        command.upgrade(config, "head")


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    migrations.init("x", tmp_path / "m")
    assert (tmp_path / "m" / "env.py").read_text().count("\n") < 12
    with pytest.raises(MigrationError, match="already holds a migration environment"):
        migrations.init("x", tmp_path / "m")


def test_wrong_environment_for_the_connection(
    service: Service, backend_dbs: BackendDatabases, made: list[Service]
) -> None:
    other = new_service(backend_dbs, service.directory.parent)
    made.append(other)
    _shard_script(service.directory)
    with pytest.raises(MigrationError, match=f"holds the migrations of connection '{service.name}'"):
        migrations.upgrade(other.name, directory=service.directory)
    assert other.tables() == set()


async def test_a_bad_revision_changes_nothing(service: Service, io: IO) -> None:
    rev = _shard_script(service.directory)
    with pytest.raises(MigrationError, match="unknown revision 'deadbeef'"):
        await io(migrations).upgrade(service.name, "deadbeef", directory=service.directory)
    assert service.tables() == set()  # not even the version table
    await io(migrations).upgrade(service.name, directory=service.directory)
    with pytest.raises(MigrationError, match="unknown revision 'nope'"):
        await io(migrations).downgrade(service.name, "nope", directory=service.directory)
    assert service.versions() == [rev] and "items" in service.tables()


@pytest.mark.backends("sqlite", "postgresql")
async def test_a_failing_migration_rolls_back_whole(service: Service, io: IO) -> None:
    """SQLite and PostgreSQL have transactional DDL: a script failing halfway leaves nothing behind."""
    first = _shard_script(service.directory)
    (service.directory / "versions" / "0002_broken.py").write_text(
        '"""broken"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        "revision = '0002'\ndown_revision = '0001'\nbranch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        "    op.create_table('half', sa.Column('id', sa.Integer(), primary_key=True))\n"
        "    op.execute('SELECT * FROM no_such_table')\n\n\n"
        "def downgrade() -> None:\n"
        "    op.drop_table('half')\n"
    )
    with pytest.raises(MigrationError, match=f"upgrade failed on {service.name}") as failed:
        await io(migrations).upgrade(service.name, directory=service.directory)
    assert [r.status for r in failed.value.results] == ["failed"]  # type: ignore[attr-defined]
    assert {"items", "half"}.isdisjoint(service.tables())
    assert service.versions() == []
    # The good part can still be applied alone.
    await io(migrations).upgrade(service.name, first, directory=service.directory)
    assert service.versions() == [first]


def test_check_needs_models_and_an_up_to_date_database(service: Service) -> None:
    forget_models(service.name)
    with pytest.raises(MigrationError, match="no models are declared on connection"):
        migrations.check(service.name, directory=service.directory)
    declare_v1(service.name)
    off_loop(migrations.revision, service.name, "v1", autogenerate=True, directory=service.directory)
    with pytest.raises(MigrationError, match="not at the head revision"):
        migrations.check(service.name, directory=service.directory)
    migrations.check(service.name, directory=service.directory, scratch=True)
    assert "products" not in service.tables() and service.versions() == []


def test_history_lists_newest_first(service: Service) -> None:
    _shard_script(service.directory)
    declare_v1(service.name)
    migrations.upgrade(service.name, directory=service.directory)
    second = off_loop(migrations.revision, service.name, "products", autogenerate=True, directory=service.directory)
    history = migrations.history(service.name, directory=service.directory)
    assert [(h.message, h.is_head) for h in history] == [("products", True), ("items", False)]
    assert history[0].parents == ("0001",) and history[0].path == str(second)

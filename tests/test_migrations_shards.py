"""Migrations of shard groups and replicated connections, on SQLite, PostgreSQL and MariaDB (sync and
async): every shard's primary is migrated in shard order with a status each; replicas never are."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import (
    ActiveRecord,
    ConfigurationError,
    ConnectionManager,
    IntegerField,
    PrimaryKeyField,
    StringField,
    migrations,
)
from activerecord.engine.config import parse_node
from activerecord.engine.engines import NodeEngines
from activerecord.errors import MigrationError, SchemaDriftError
from activerecord.migrations import _runner

from .backends import BackendDatabases
from .dual import IO, off_loop
from .harness.pg_cluster import PgCluster
from .test_cli import cli, fails, ok, url_for
from .test_cli import tables as cli_tables
from .test_migrations import forget_models


@dataclass
class Group:
    """A connection name standing for several databases, its migrations folder and those databases."""

    name: str
    directory: Path
    databases: dict[str, dict[str, Any]]  # every database involved, by label (shards, replicas)

    def tables(self, label: str) -> set[str]:
        """The tables of one database, looked at directly, never through the connection's routing."""
        node = NodeEngines(parse_node(label, self.databases[label]))
        try:
            return set(sa.inspect(node.sync).get_table_names())
        finally:
            node.dispose()

    def versions(self, label: str) -> list[str]:
        table = migrations.default_version_table(self.name)
        if table not in self.tables(label):
            return []
        node = NodeEngines(parse_node(label, self.databases[label]))
        try:
            with node.sync.connect() as conn:
                return [r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {table}"))]
        finally:
            node.dispose()


@pytest.fixture
def io(mode: str) -> IO:
    return IO(mode)


@pytest.fixture
def made() -> Iterator[list[str]]:
    """Connection names a test configured; their connections and models are forgotten afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        forget_models(name)
        if ConnectionManager.is_configured(name):
            ConnectionManager.remove(name)


def shard_group(backend_dbs: BackendDatabases, tmp_path: Path, made: list[str], count: int = 3) -> Group:
    name = f"grp_{uuid.uuid4().hex[:8]}"
    shards = {f"{name}_s{i}": backend_dbs.config(f"{name}_s{i}") for i in range(count)}
    ConnectionManager.configure({name: {"shards": shards}})
    made.append(name)
    return Group(name, tmp_path / "migrations" / name, dict(shards))


def declare(name: str, *, with_email: bool = False) -> type[ActiveRecord]:
    """The group's models; ``with_email`` adds a column (a model change without a migration)."""
    forget_models(name)

    class Account(ActiveRecord):
        __tablename__ = "accounts"
        __connection__ = name
        __shard_key__ = "id"
        id: int = PrimaryKeyField(big=True, autoincrement=False)
        handle: str = StringField(max_length=40)
        visits: int = IntegerField(default=0)

    if with_email:
        Account.__table__.append_column(sa.Column("email", sa.String(80), nullable=True))
    return Account


def async_or_sync(io: IO, group: Group, labels: list[str]) -> list[tuple[str, Any]]:
    return [
        (label, ConnectionManager.async_engine(label) if io.is_async else ConnectionManager.engine(label))
        for label in labels
    ]


async def test_a_shard_group_migrates_every_shard_primary_in_order(
    backend_dbs: BackendDatabases, tmp_path: Path, made: list[str], io: IO
) -> None:
    group = shard_group(backend_dbs, tmp_path, made)
    shards = ConnectionManager.shards(group.name)
    account = declare(group.name)
    migrations.init(group.name, group.directory)
    assert [label for label, _ in _runner._migration_targets(group.name)] == shards
    assert [node for _, node in _runner._migration_targets(group.name)] == [ConnectionManager.node(s) for s in shards]

    # Autogenerate compares with the first shard; the script then applies to every shard.
    script = off_loop(migrations.revision, group.name, "accounts", autogenerate=True, directory=group.directory)
    rev = script.name.split("_", 1)[0]

    before = await io(migrations).current(group.name, directory=group.directory)
    assert [(r.label, r.status, r.after) for r in before] == [(s, "current", ()) for s in shards]

    results = await io(migrations).upgrade(group.name, directory=group.directory)
    assert [(r.label, r.status, r.before, r.after) for r in results] == [(s, "upgraded", (), (rev,)) for s in shards]
    for shard in shards:
        assert "accounts" in group.tables(shard)
        assert group.versions(shard) == [rev]

    after = await io(migrations).current(group.name, directory=group.directory)
    assert [(r.label, r.after) for r in after] == [(s, (rev,)) for s in shards]
    checked = await io(migrations).check(group.name, directory=group.directory)
    assert [(r.label, r.status) for r in checked] == [(s, "current") for s in shards]

    again = await io(migrations).upgrade(group.name, directory=group.directory)
    assert [r.status for r in again] == ["unchanged"] * len(shards)

    # The model works on the migrated shards.
    await io(account).insert_many([{"id": n, "handle": f"h{n}"} for n in range(6)])  # 0 stays 0
    assert await io(account.find().on_all_shards()).count() == 6
    assert [await io(account.find().using(s)).count() for s in shards] == [2, 2, 2]
    assert (await io(account.find_by_id(0)).one()).handle == "h0"


async def test_check_names_the_shard_that_is_behind_or_drifted(
    backend_dbs: BackendDatabases, tmp_path: Path, made: list[str], io: IO
) -> None:
    group = shard_group(backend_dbs, tmp_path, made)
    shards = ConnectionManager.shards(group.name)
    declare(group.name)
    migrations.init(group.name, group.directory)
    off_loop(migrations.revision, group.name, "accounts", autogenerate=True, directory=group.directory)
    await io(migrations).upgrade(group.name, directory=group.directory)

    # One shard rolled back by hand: check stops there and says which.
    await io(migrations).downgrade(
        group.name, "base", directory=group.directory, targets=async_or_sync(io, group, shards[1:2])
    )
    with pytest.raises(MigrationError, match=f"check failed on {shards[1]}: .*not at the head") as behind:
        await io(migrations).check(group.name, directory=group.directory)
    statuses = [(r.label, r.status) for r in behind.value.results]  # type: ignore[attr-defined]
    assert statuses == [(shards[0], "current"), (shards[1], "failed"), (shards[2], "skipped")]
    results = await io(migrations).upgrade(group.name, directory=group.directory)
    assert [r.status for r in results] == ["unchanged", "upgraded", "unchanged"]

    # A model change without a migration: the first shard already shows it.
    declare(group.name, with_email=True)
    with pytest.raises(SchemaDriftError, match=f"^{shards[0]}: the models and the migrations differ") as drift:
        await io(migrations).check(group.name, directory=group.directory)
    assert any("email" in repr(d) for d in drift.value.diffs)


async def test_a_failing_shard_stops_the_run_with_a_status_per_shard(
    backend_dbs: BackendDatabases, tmp_path: Path, made: list[str], io: IO
) -> None:
    group = shard_group(backend_dbs, tmp_path, made)
    shards = ConnectionManager.shards(group.name)
    declare(group.name)
    migrations.init(group.name, group.directory)
    script = off_loop(migrations.revision, group.name, "accounts", autogenerate=True, directory=group.directory)
    rev = script.name.split("_", 1)[0]
    with ConnectionManager.engine(shards[1]).begin() as conn:
        conn.execute(sa.text("CREATE TABLE accounts (id INTEGER PRIMARY KEY)"))  # in the way

    with pytest.raises(MigrationError, match=f"upgrade failed on {shards[1]}") as failed:
        await io(migrations).upgrade(group.name, directory=group.directory)
    statuses = [(r.label, r.status) for r in failed.value.results]  # type: ignore[attr-defined]
    assert statuses == [(shards[0], "upgraded"), (shards[1], "failed"), (shards[2], "skipped")]
    assert group.versions(shards[0]) == [rev]
    assert group.versions(shards[1]) == [] and group.versions(shards[2]) == []

    with ConnectionManager.engine(shards[1]).begin() as conn:
        conn.execute(sa.text("DROP TABLE accounts"))
    results = await io(migrations).upgrade(group.name, directory=group.directory)
    assert [r.status for r in results] == ["unchanged", "upgraded", "upgraded"]


async def test_a_replicated_connection_migrates_its_primary_only(
    backend_dbs: BackendDatabases, tmp_path: Path, made: list[str], io: IO
) -> None:
    name = f"rep_{uuid.uuid4().hex[:8]}"
    primary, replica, spare = (backend_dbs.config(f"{name}_{role}") for role in ("primary", "replica", "spare"))
    ConnectionManager.configure(
        {name: {"write": primary, "read": [{**replica, "name": f"{name}_named"}, spare], "routing": "automatic"}}
    )
    made.append(name)
    group = Group(name, tmp_path / "migrations" / name, {"primary": primary, "replica": replica, "spare": spare})
    declare(name)
    migrations.init(name, group.directory)
    assert [label for label, _ in _runner._migration_targets(name)] == [name]
    script = off_loop(migrations.revision, name, "accounts", autogenerate=True, directory=group.directory)
    rev = script.name.split("_", 1)[0]

    results = await io(migrations).upgrade(name, directory=group.directory)
    assert [(r.label, r.status, r.after) for r in results] == [(name, "upgraded", (rev,))]
    checked = await io(migrations).check(name, directory=group.directory)
    assert [(r.label, r.status) for r in checked] == [(name, "current")]
    current = await io(migrations).current(name, directory=group.directory)
    assert [(r.label, r.after) for r in current] == [(name, (rev,))]
    assert "accounts" in group.tables("primary")
    assert group.tables("replica") == set() and group.tables("spare") == set()  # untouched

    # A named replica is not a migration target: refused before anything connects.
    with pytest.raises(ConfigurationError, match="read replica"):
        await io(migrations).upgrade(f"{name}_named", directory=group.directory)
    assert group.tables("replica") == set()


@pytest.mark.backends("postgresql")
async def test_streaming_replicas_follow_their_migrated_primary(
    backend: str, tmp_path: Path, made: list[str], io: IO, pg_cluster: PgCluster
) -> None:
    name = f"stream_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_database(name)
    ConnectionManager.configure(
        {name: {"write": pg_cluster.primary.config(name), "read": [r.config(name) for r in pg_cluster.replicas]}}
    )
    made.append(name)
    directory = tmp_path / "migrations" / name
    declare(name)
    migrations.init(name, directory)
    off_loop(migrations.revision, name, "accounts", autogenerate=True, directory=directory)

    # A hot standby refuses DDL: had the run touched one, it would have failed.
    results = await io(migrations).upgrade(name, directory=directory)
    assert [(r.label, r.status) for r in results] == [(name, "upgraded")]
    pg_cluster.wait_for_replay()
    for replica in pg_cluster.replicas:
        engine = sa.create_engine(replica.url(name))
        try:
            assert "accounts" in sa.inspect(engine).get_table_names()
        finally:
            engine.dispose()


def test_the_command_line_migrates_a_shard_group(backend_dbs: BackendDatabases, tmp_path: Path) -> None:
    project = tmp_path / "accounts"
    project.mkdir()
    name = f"acc_{uuid.uuid4().hex[:6]}"
    urls = {f"{name}_s{i}": url_for(backend_dbs.config(f"{name}_s{i}")) for i in range(2)}
    shards = {shard: {"url": url} for shard, url in urls.items()}
    (project / "acc_setup.py").write_text(
        "from activerecord import ConnectionManager\n\n"
        f"def configure():\n    ConnectionManager.configure({{{name!r}: {{'shards': {shards!r}}}}})\n"
    )
    (project / "acc_models.py").write_text(
        "from activerecord import ActiveRecord, PrimaryKeyField, StringField\n\n\n"
        "class Account(ActiveRecord):\n"
        "    __tablename__ = 'accounts'\n"
        f"    __connection__ = {name!r}\n"
        "    __shard_key__ = 'id'\n"
        "    id: int = PrimaryKeyField(big=True, autoincrement=False)\n"
        "    handle: str = StringField(max_length=40)\n"
    )
    flags = ["-c", name, "--config", "acc_setup:configure", "--models", "acc_models"]
    ok(cli("db", "init", *flags, cwd=project))
    ok(cli("db", "revision", *flags, "-m", "create accounts", "--autogenerate", cwd=project))
    out = ok(cli("db", "upgrade", *flags, cwd=project)).splitlines()
    assert [line.split(": ")[0] for line in out] == list(urls)
    assert all(": upgraded base -> " in line for line in out)
    ok(cli("db", "check", *flags, cwd=project))
    current = ok(cli("db", "current", *flags, cwd=project)).splitlines()
    assert [line.split(": ")[1].split(" at ")[0] for line in current] == ["current", "current"]
    for url in urls.values():
        assert "accounts" in cli_tables(url)

    refused = fails(cli("db", "upgrade", *flags, cwd=project, env={"ACTIVERECORD_URL": next(iter(urls.values()))}))
    assert "is a shard group" in refused and "Traceback" not in refused

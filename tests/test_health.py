"""``ConnectionManager.health()`` / ``ahealth()`` and ``activerecord health`` on real databases:
every node probed, the up/degraded/down rules, the time bound with a blackholed host."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from activerecord import ConnectionManager, HealthReport, HealthStatus, NodeHealth
from activerecord.cli import main
from activerecord.errors import ConfigurationError
from activerecord.ops.health import PROBES_PER_NODE

from .backends import BackendDatabases
from .dual import IO
from .harness.pg_cluster import PgCluster
from .harness.proxy import Proxy

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "hunter2-not-shown"


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_node(backend_dbs: BackendDatabases, tmp_path: Path) -> dict[str, Any]:
    """Settings of a node of ``backend_dbs``'s backend that cannot be reached."""
    if backend_dbs.backend == "sqlite":
        return {"driver": "sqlite", "database": str(tmp_path / "no-such-folder" / "x.db")}
    return {**backend_dbs.config("default"), "port": closed_port(), "password": PASSWORD}


def by_name(report: HealthReport) -> dict[str, NodeHealth]:
    return {node.name: node for node in report.nodes}


@pytest.fixture
def extra_connections() -> Iterator[list[str]]:
    """Names of connections a test configures; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        if name in ConnectionManager.names():
            ConnectionManager.remove(name)


async def test_every_connection_is_probed(db: IO, backend: str) -> None:
    report = await db(ConnectionManager).health()
    assert report.status is HealthStatus.UP and report.ready and report.status.exit_code == 0
    nodes = by_name(report)
    assert {"default", "users", "orders"} <= set(nodes)
    for name in ("default", "users", "orders"):
        node = nodes[name]
        assert (node.connection, node.role, node.status, node.error) == (name, "primary", "up", None)
        assert node.latency is not None and 0 < node.latency < report.duration + 0.001
        assert node.lag is None  # a primary lags behind nothing
        # The pool the probe used is reported: the async one for ahealth(), the sync one for health().
        pool = {p.mode: p for p in node.pools}[db.mode]
        assert pool.size >= 1 and pool.checked_out >= 0 and pool.overflow >= 0
        if backend == "postgresql":
            assert isinstance(node.position, int) and node.position > 0  # the primary's WAL position
        else:
            assert node.position is None
    assert json.loads(report.to_json())["nodes"][0]["status"] == "up"
    assert "up" in report.to_text().splitlines()[0]


async def test_a_down_replica_degrades_a_down_primary_is_down(
    db: IO, backend_dbs: BackendDatabases, tmp_path: Path, extra_connections: list[str]
) -> None:
    dead = dead_node(backend_dbs, tmp_path)
    extra_connections += ["h_replicated", "h_primary_down", "h_shards"]
    ConnectionManager.configure(
        {
            "h_replicated": {
                "write": backend_dbs.config("users"),
                "read": [backend_dbs.config("orders"), {**dead, "name": "h_dead_replica"}],
            },
            "h_primary_down": {"write": dead, "read": [backend_dbs.config("orders")]},
            "h_shards": {"shards": {"h_shard_0": backend_dbs.config("default"), "h_shard_1": dead}},
        }
    )
    replicated = await db(ConnectionManager).health("h_replicated")
    assert (replicated.status, replicated.ready, replicated.status.exit_code) == ("degraded", True, 1)
    nodes = by_name(replicated)
    assert [(n.name, n.role, n.status) for n in replicated.nodes] == [
        ("h_replicated", "primary", "up"),
        ("h_replicated/replica-1", "replica", "up"),
        ("h_dead_replica", "replica", "down"),
    ]
    assert nodes["h_dead_replica"].error and nodes["h_dead_replica"].latency is None

    # A named replica asked about alone: nothing answered, so it is down.
    alone = await db(ConnectionManager).health("h_dead_replica")
    assert [n.name for n in alone.nodes] == ["h_dead_replica"] and alone.status == "down"

    primary_down = await db(ConnectionManager).health("h_primary_down")
    assert (primary_down.status, primary_down.ready, primary_down.status.exit_code) == ("down", False, 2)
    assert [n.status for n in primary_down.nodes] == ["down", "up"]

    # One shard's primary down takes the group down; the healthy shard alone is up.
    shards = await db(ConnectionManager).health("h_shards")
    assert shards.status == "down"
    assert {(n.group, n.connection, n.status) for n in shards.nodes} == {
        ("h_shards", "h_shard_0", "up"),
        ("h_shards", "h_shard_1", "down"),
    }
    assert (await db(ConnectionManager).health("h_shard_0")).status == "up"
    everything = await db(ConnectionManager).health()
    assert everything.status == "down" and len(everything.nodes) == 3 + 3 + 2 + 2

    # The password is in no report, error text or address.
    for report in (replicated, primary_down, shards, everything):
        assert PASSWORD not in report.to_json() and PASSWORD not in report.to_text()


async def test_bad_arguments_raise_before_any_probe(db: IO) -> None:
    with pytest.raises(ConfigurationError, match="no connection named 'nowhere'"):
        await db(ConnectionManager).health("nowhere")
    for timeout in (0, -1, "2", True):
        with pytest.raises(ConfigurationError, match="timeout"):
            await db(ConnectionManager).health(timeout=timeout)


@pytest.mark.backends("postgresql", "mysql")
async def test_a_blackholed_host_is_down_within_the_bound(
    db: IO, backend: str, backend_dbs: BackendDatabases, extra_connections: list[str]
) -> None:
    config = backend_dbs.config("default")
    extra_connections.append("h_proxied")
    with Proxy(int(config["port"])) as proxy:
        ConnectionManager.configure(
            {"h_proxied": {**config, "port": proxy.port}, "h_healthy": backend_dbs.config("users")}
        )
        extra_connections.append("h_healthy")
        assert (await db(ConnectionManager).health("h_proxied")).status == "up"
        proxy.blackhole()  # the pooled connection stalls; new connections get no answer
        for _ in range(2):  # repeated calls (a probe every few seconds) keep to the bound too
            started = time.monotonic()
            report = await db(ConnectionManager).health(timeout=0.5)
            elapsed = time.monotonic() - started
            assert elapsed < 0.5 + 0.3, elapsed
            nodes = by_name(report)
            assert nodes["h_proxied"].status == "down" and "timed out" in str(nodes["h_proxied"].error)
            assert nodes["h_healthy"].status == "up"  # probed at the same time, not held up
            assert report.status == "down"
        proxy.passthrough()  # the host answers again (the stalled connections stay stalled)
        assert (await db(ConnectionManager).health("h_proxied", timeout=5)).status == "up"

        # A host that never answers holds a bounded number of threads, however often it is probed.
        proxy.blackhole()
        threads = threading.active_count()
        for _ in range(2 * PROBES_PER_NODE):
            assert (await db(ConnectionManager).health("h_proxied", timeout=0.2)).status == "down"
        assert threading.active_count() - threads <= PROBES_PER_NODE


@pytest.mark.backends("postgresql")
async def test_replica_lag_and_replay_position(db: IO, pg_cluster: PgCluster, extra_connections: list[str]) -> None:
    pg_cluster.create_database(database := f"ar_health_lag_{uuid.uuid4().hex[:6]}")
    first, second = pg_cluster.replicas
    extra_connections.append("h_lagging")
    ConnectionManager.configure(
        {
            "h_lagging": {
                "write": pg_cluster.primary.config(database),
                "read": [first.config(database), second.config(database)],
                "max_lag": 0.2,
            }
        }
    )
    report = await db(ConnectionManager).health("h_lagging")
    assert report.status == "up"
    primary, *replicas = report.nodes
    for replica in replicas:
        assert replica.lag is not None and replica.lag <= 0.2
        assert isinstance(replica.position, int) and replica.position <= (primary.position or 0)
    pg_cluster.pause_replay(second)
    try:
        engine = sa.create_engine(pg_cluster.primary.url(database))
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id int)"))
        engine.dispose()
        time.sleep(0.5)
        report = await db(ConnectionManager).health("h_lagging")
        nodes = report.nodes
        assert [n.status for n in nodes] == ["up", "up", "degraded"]
        assert nodes[2].lag is not None and nodes[2].lag > 0.2
        assert report.status == "degraded" and report.ready
    finally:
        pg_cluster.resume_replay(second)


# -- the command line ---------------------------------------------------------------------------


def write_project(tmp_path: Path, connections: dict[str, Any]) -> Path:
    """A project whose config module configures ``connections``; returns its pyproject.toml."""
    module = f"healthsvc_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(f"CONNECTIONS = {connections!r}\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[tool.activerecord]\nconfig = "{module}:CONNECTIONS"\n')
    return pyproject


@pytest.fixture
def cli_connections() -> Iterator[None]:
    """The command runs in this process: forget what it configured."""
    before = set(ConnectionManager.names())
    yield
    for name in set(ConnectionManager.names()) - before:
        ConnectionManager.remove(name)


@pytest.mark.backends("sqlite", "postgresql")
@pytest.mark.usefixtures("cli_connections")
def test_cli_exit_codes(backend_dbs: BackendDatabases, tmp_path: Path) -> None:
    dead = dead_node(backend_dbs, tmp_path)
    pyproject = write_project(
        tmp_path,
        {
            "cli_up": backend_dbs.config("users"),
            "cli_degraded": {"write": backend_dbs.config("users"), "read": [dead]},
            "cli_down": {"write": dead, "read": [backend_dbs.config("orders")]},
        },
    )
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["health", "--pyproject", str(pyproject), *args])
        return result.exit_code, result.output

    code, out = run("--connection", "cli_up", "--json")
    assert code == 0 and json.loads(out)["status"] == "up"
    code, out = run("-c", "cli_degraded", "--json")
    assert code == 1 and [n["status"] for n in json.loads(out)["nodes"]] == ["up", "down"]
    code, out = run("-c", "cli_down")
    assert code == 2 and out.startswith("down (")
    code, out = run("--timeout", "1")  # every connection
    assert code == 2 and {"cli_up", "cli_degraded", "cli_down"} <= {line.split()[2] for line in out.splitlines()[1:]}
    assert PASSWORD not in out
    code, out = run("-c", "nowhere")
    assert code == 2 and "no settings for connection 'nowhere'" in out


def test_cli_as_an_exec_probe(tmp_path: Path) -> None:
    """The exit code a Kubernetes exec probe sees, from a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACTIVERECORD_URL": f"sqlite:///{tmp_path / 'app.db'}"}

    def probe(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "activerecord", "health", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    ok = probe("--json")
    assert ok.returncode == 0, ok.stderr
    assert [n["name"] for n in json.loads(ok.stdout)["nodes"]] == ["default"]
    env["ACTIVERECORD_URL"] = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed_port()}/x"
    down = probe()
    assert down.returncode == 2 and "down" in down.stdout and PASSWORD not in down.stdout + down.stderr


def test_the_demo_prints_its_health_report(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "activerecord", "demo"]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("health report"))
    assert lines[start].endswith(")") and ": up (" in lines[start]
    assert [line.split()[:3] for line in lines[start + 1 : start + 3]] == [
        ["up", "primary", "users"],
        ["up", "primary", "orders"],
    ]


async def test_an_exhausted_pool_is_not_ready_and_says_so(
    db: IO, backend_dbs: BackendDatabases, extra_connections: list[str]
) -> None:
    extra_connections.append("h_small_pool")
    ConnectionManager.configure(
        {"h_small_pool": {**backend_dbs.config("users"), "pool_size": 1, "max_overflow": 0, "pool_timeout": 30}}
    )
    node = ConnectionManager.node("h_small_pool")
    if db.is_async:
        async with node.async_.connect():  # the service holds the only connection
            report = await ConnectionManager.ahealth("h_small_pool", timeout=0.3)
    else:
        with node.sync.connect():
            report = ConnectionManager.health("h_small_pool", timeout=0.3)
    (probed,) = report.nodes
    assert report.status == "down" and probed.status == "down"
    assert (
        probed.error
        == f"timed out: no answer within 0.3 s (the {db.mode} pool had 1 connections checked out, none idle)"
    )
    assert {p.mode: (p.size, p.checked_out, p.idle) for p in probed.pools}[db.mode] == (1, 1, 0)
    # Given back, the pool serves the probe again.
    assert (await db(ConnectionManager).health("h_small_pool", timeout=5)).status == "up"


@pytest.mark.backends("postgresql", "mysql")
def test_a_process_exits_at_once_after_probing_a_silent_host(backend_dbs: BackendDatabases) -> None:
    """An exec probe (or any script) is not held at exit by a probe still waiting on a blackholed host."""
    script = f"""
import time
from activerecord import ConnectionManager
from tests.harness.proxy import Proxy
proxy = Proxy({int(backend_dbs.config("default")["port"])}).__enter__()
proxy.blackhole()
ConnectionManager.configure({{"silent": {{**{backend_dbs.config("default")!r}, "port": proxy.port}}}})
print(ConnectionManager.health(timeout=0.3).status, flush=True)
"""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "down"
    assert time.monotonic() - started < 8  # the interpreter's start-up and imports, not the stuck probe

"""Throwaway PostgreSQL 15 primary + hot-standby clusters for tests.

Runs the installed server binaries on free loopback ports, wires the standbys to the primary
with streaming replication, and removes every process and file again on close.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, LiteralString, Self

import psycopg
from psycopg import sql

__all__ = [
    "DEFAULT_BINDIR",
    "PgCluster",
    "PgClusterError",
    "PgNode",
    "postgres_available",
]

DEFAULT_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
LOOPBACK = "127.0.0.1"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root, so under root every server tool runs as this account.
OS_USER = "postgres"

_REQUIRED_BINARIES = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
# pg_ctl's own wait limit; generous because a loaded CI runner can be slow to checkpoint.
_PG_CTL_TIMEOUT_S = 30
_LOG_TAIL_CHARS = 2000

ShutdownMode = Literal["smart", "fast", "immediate"]


class PgClusterError(RuntimeError):
    """A server could not be created, started or stopped, or a standby did not catch up."""


def postgres_available(bindir: Path = DEFAULT_BINDIR) -> bool:
    """Tell whether :class:`PgCluster` can run here.

    The server binaries must exist in ``bindir`` and, when we are root, so must the
    ``postgres`` account that will own and run the servers.
    """
    if not all((bindir / name).is_file() for name in _REQUIRED_BINARIES):
        return False
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return False
    return True


def _run(args: Sequence[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a server tool, as the ``postgres`` account when we are root."""
    # Tools and libpq honour PG* variables (PGHOST, PGSSLMODE, PGOPTIONS...) that a developer's
    # shell or a CI service container may set; the throwaway servers must not inherit them.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    uid = gid = None
    extra_groups: list[int] | None = None
    if os.geteuid() == 0:
        account = pwd.getpwnam(OS_USER)
        uid, gid, extra_groups = account.pw_uid, account.pw_gid, []
        # root's HOME is unreadable for postgres; libpq would stumble over ~/.pgpass there.
        env["HOME"] = str(cwd)
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        user=uid,
        group=gid,
        extra_groups=extra_groups,
        # pg_ctl start leaves the server running; it must not hold on to our stdin.
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def _check(result: subprocess.CompletedProcess[str], log_path: Path | None = None) -> None:
    """Raise :class:`PgClusterError` with the tool's output (and the server log) if it failed."""
    if result.returncode == 0:
        return
    command = " ".join(result.args)
    message = f"{command} exited with {result.returncode}\n{result.stdout}{result.stderr}"
    if log_path is not None and log_path.exists():
        log_tail = log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
        message += f"\n--- {log_path} (tail) ---\n{log_tail}"
    raise PgClusterError(message)


def _free_port(taken: set[int]) -> int:
    """Ask the kernel for an unused loopback port that this cluster does not use yet."""
    # The port is released before postgres binds it, so another process could grab it in
    # between; on a test machine that window is small enough to accept.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port


def _connect(node: PgNode, database: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
    """Open an autocommit superuser connection for the harness's own housekeeping."""
    # sslmode=disable: the servers have no SSL, and a PGSSLMODE=require in the environment of
    # the test process must not break the harness.
    return psycopg.connect(
        host=node.host,
        port=node.port,
        user=SUPERUSER,
        dbname=database,
        sslmode="disable",
        connect_timeout=5,
        autocommit=True,
    )


def _scalar(conn: psycopg.Connection[tuple[Any, ...]], query: LiteralString, params: tuple[Any, ...] = ()) -> object:
    """Return the first column of the first row of ``query``."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise PgClusterError(f"{query!r} returned no row")
    return row[0]


class PgNode:
    """One server of a :class:`PgCluster`: the primary or a hot standby."""

    host: str = LOOPBACK

    def __init__(self, name: str, datadir: Path, port: int, bindir: Path) -> None:
        self.name = name
        self.datadir = datadir
        self.port = port
        self.log_path = datadir.with_suffix(".log")
        self._pg_ctl = bindir / "pg_ctl"

    def __repr__(self) -> str:
        return f"PgNode({self.name!r}, port={self.port}, datadir={str(self.datadir)!r})"

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """Return this server's SQLAlchemy URL.

        For example ``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``.
        """
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def config(self, database: str) -> dict[str, str | int]:
        """Return connection settings shaped like one ``ConnectionManager.configure`` entry."""
        return {
            "driver": "postgresql",
            "host": self.host,
            "port": self.port,
            "database": database,
            "user": SUPERUSER,
        }

    def is_running(self) -> bool:
        """Tell whether the server process is up (it may still refuse queries while starting)."""
        if not self.datadir.exists():  # never created, or removed by PgCluster.close()
            return False
        result = _run([self._pg_ctl, "status", f"--pgdata={self.datadir}"], cwd=self.datadir.parent)
        return result.returncode == 0

    def start(self) -> None:
        """Start the server and wait until it accepts connections; a no-op if it runs already."""
        if self.is_running():
            return
        result = _run(
            [
                self._pg_ctl,
                "start",
                "--wait",
                f"--timeout={_PG_CTL_TIMEOUT_S}",
                f"--pgdata={self.datadir}",
                f"--log={self.log_path}",
            ],
            cwd=self.datadir.parent,
        )
        _check(result, self.log_path)

    def stop(self, mode: ShutdownMode = "fast") -> None:
        """Stop the server and wait until it is gone; a no-op if it is not running."""
        if not self.is_running():
            return
        result = _run(
            [
                self._pg_ctl,
                "stop",
                "--wait",
                f"--timeout={_PG_CTL_TIMEOUT_S}",
                f"--mode={mode}",
                f"--pgdata={self.datadir}",
            ],
            cwd=self.datadir.parent,
        )
        _check(result, self.log_path)


def _teardown(nodes: list[PgNode], root: Path) -> None:
    """Stop every node and delete the cluster's directory, even if a node resists."""
    try:
        # Standbys first, so none of them keeps retrying against a primary that is gone.
        for node in reversed(nodes):
            try:
                node.stop("fast")
            except PgClusterError:
                node.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


class PgCluster:
    """A primary and ``replicas`` streaming hot standbys, started on construction.

    Use it as a context manager (or call :meth:`close`) so the servers and their temporary
    directory go away; if neither happens, they are removed when the interpreter exits.
    """

    def __init__(self, replicas: int = 1, bindir: Path = DEFAULT_BINDIR) -> None:
        if replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {replicas}")
        if not postgres_available(bindir):
            raise PgClusterError(f"PostgreSQL binaries not usable from {bindir}")
        self._bindir = bindir
        self._root = Path(tempfile.mkdtemp(prefix="pgcluster-"))
        self._nodes: list[PgNode] = []
        # A backstop for callers that forget close(): no server may outlive the test process.
        self._finalizer = weakref.finalize(self, _teardown, self._nodes, self._root)
        try:
            if os.geteuid() == 0:
                # The postgres account creates the data directories, logs and sockets in here.
                account = pwd.getpwnam(OS_USER)
                os.chown(self._root, account.pw_uid, account.pw_gid)
            self._primary = self._init_primary()
            self._replicas = [self._clone_replica(f"replica{number}") for number in range(1, replicas + 1)]
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def primary(self) -> PgNode:
        """The read-write server."""
        return self._primary

    @property
    def replicas(self) -> list[PgNode]:
        """The hot standbys, in creation order (``replica1``, ``replica2``, ...)."""
        return list(self._replicas)

    def close(self) -> None:
        """Stop every server (fast shutdown) and delete the temporary directory; idempotent."""
        self._finalizer()

    def create_database(self, name: str) -> None:
        """Create a database on the primary and wait until the unpaused replicas have it too."""
        with _connect(self._primary) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.wait_for_replay()

    def wait_for_replay(self, timeout: float = 10.0) -> None:
        """Wait until every running replica has replayed all WAL the primary has written so far.

        Replicas whose replay is paused are skipped: they cannot catch up until resumed.
        """
        with _connect(self._primary) as conn:
            target = _scalar(conn, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        for replica in self._replicas:
            if not replica.is_running():
                continue
            with _connect(replica) as conn:
                if _scalar(conn, "SELECT pg_get_wal_replay_pause_state()") != "not paused":
                    continue
                while not _scalar(conn, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)):
                    if time.monotonic() > deadline:
                        raise PgClusterError(f"{replica.name} did not replay up to {target} within {timeout}s")
                    time.sleep(0.01)

    def pause_replay(self, replica: PgNode, timeout: float = 10.0) -> None:
        """Stop applying WAL on ``replica``; it lags behind the primary until resumed."""
        self._check_replica(replica)
        with _connect(replica) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            # Replay only stops at the startup process's next safe point; report the pause once
            # it is real, so callers can rely on the replica's state not moving any more.
            deadline = time.monotonic() + timeout
            while _scalar(conn, "SELECT pg_get_wal_replay_pause_state()") != "paused":
                if time.monotonic() > deadline:
                    raise PgClusterError(f"{replica.name} did not pause replay within {timeout}s")
                time.sleep(0.01)

    def resume_replay(self, replica: PgNode) -> None:
        """Let ``replica`` apply WAL again after :meth:`pause_replay`."""
        self._check_replica(replica)
        with _connect(replica) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def stop_replica(self, replica: PgNode) -> None:
        """Shut ``replica`` down; its replication slot keeps the WAL it will need on restart."""
        self._check_replica(replica)
        replica.stop()

    def start_replica(self, replica: PgNode) -> None:
        """Start ``replica`` again; it resumes streaming where it stopped."""
        self._check_replica(replica)
        replica.start()

    def _check_replica(self, replica: PgNode) -> None:
        if not any(replica is own for own in self._replicas):
            raise ValueError(f"{replica!r} is not a replica of this cluster")

    def _new_node(self, name: str) -> PgNode:
        port = _free_port({node.port for node in self._nodes})
        node = PgNode(name, self._root / name, port, self._bindir)
        # Registered before anything runs, so a failure half-way is still cleaned up.
        self._nodes.append(node)
        return node

    def _init_primary(self) -> PgNode:
        node = self._new_node("primary")
        _check(
            _run(
                [
                    self._bindir / "initdb",
                    f"--pgdata={node.datadir}",
                    f"--username={SUPERUSER}",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    # The cluster is thrown away, so durability is pointless and fsync is slow.
                    "--no-sync",
                ],
                cwd=self._root,
            )
        )
        # initdb's default also trusts ::1; the harness promises IPv4 loopback only.
        (node.datadir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all all {LOOPBACK}/32 trust\n"
            "local replication all trust\n"
            f"host replication all {LOOPBACK}/32 trust\n"
        )
        with (node.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# pg_cluster test harness\n"
                f"listen_addresses = '{LOOPBACK}'\n"
                f"port = {node.port}\n"
                # A private socket directory keeps clear of the system server's lock files.
                f"unix_socket_directories = '{self._root}'\n"
                "wal_level = replica\n"
                "max_wal_senders = 10\n"
                "max_replication_slots = 10\n"
                "hot_standby = on\n"
                "shared_buffers = 16MB\n"
                "fsync = off\n"
            )
        node.start()
        return node

    def _clone_replica(self, name: str) -> PgNode:
        node = self._new_node(name)
        _check(
            _run(
                [
                    self._bindir / "pg_basebackup",
                    f"--host={LOOPBACK}",
                    f"--port={self._primary.port}",
                    f"--username={SUPERUSER}",
                    f"--pgdata={node.datadir}",
                    # Writes standby.signal and primary_conninfo, making the copy a standby.
                    "--write-recovery-conf",
                    # A physical slot makes the primary keep WAL for a stopped replica instead
                    # of leaving it stranded when it comes back.
                    "--create-slot",
                    f"--slot={name}",
                    "--wal-method=stream",
                    "--checkpoint=fast",
                    "--no-sync",
                ],
                cwd=self._root,
            )
        )
        # The copied postgresql.conf carries the primary's port; a later line wins.
        with (node.datadir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {node.port}\n")
        node.start()
        return node

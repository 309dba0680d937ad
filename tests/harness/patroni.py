"""Throwaway high-availability stacks for tests: a single-node etcd, and a three-member Patroni
cluster of PostgreSQL 15 on top of it.

Everything runs from Debian's packages (etcd-server, etcd-client, patroni) on free loopback ports,
PostgreSQL and Patroni as the ``postgres`` account, in a temporary directory removed on close.
The timings (leader TTL 6 s, loop 1 s) make a crash failover take about 6 s instead of 30.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .pg_cluster import DEFAULT_BINDIR, OS_USER

LOOPBACK = "127.0.0.1"
PASSWORD = "pgpass"  # the superuser's password inside the throwaway cluster
SCOPE = "testcluster"


class HarnessError(RuntimeError):
    """A server of the stack did not start, stop or reach the expected state in time."""


class Harness:
    """``with Server(...) as server:`` starts it, and stops it and removes its files on the way
    out (also when starting failed half-way)."""

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def available() -> str | None:
    """None when etcd and Patroni can run here, else why not."""
    for binary in ("etcd", "etcdctl", "patroni", "patronictl"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (Debian packages etcd-server, etcd-client, patroni)"
    if not (DEFAULT_BINDIR / "postgres").is_file():
        return f"no PostgreSQL server in {DEFAULT_BINDIR}"
    return None


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Any, timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except Exception:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise HarnessError(f"{what}: not reached within {timeout} s")
        time.sleep(interval)


def _spawn(args: list[str], log: Path, *, as_postgres: bool, home: Path) -> subprocess.Popen[bytes]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    kwargs: dict[str, Any] = {}
    if as_postgres and os.geteuid() == 0:
        account = pwd.getpwnam(OS_USER)
        kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            **kwargs,
        )


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Etcd:
    """A single-node etcd on loopback; ``endpoint`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.client_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        peer = f"http://{LOOPBACK}:{self.peer_port}"
        args = [
            "etcd", "--name", "n1", "--data-dir", str(self.root / "etcd"),
            "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"n1={peer}", "--initial-cluster-state", "new",
        ]  # fmt: skip
        self.proc = _spawn(args, self.root / "etcd.log", as_postgres=False, home=self.root)
        _wait("etcd healthy", lambda: self.ctl("endpoint", "health").returncode == 0, 20)

    def ctl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``etcdctl`` against this etcd."""
        return subprocess.run(
            ["etcdctl", f"--endpoints={self.endpoint}", *args],
            env={**os.environ, "ETCDCTL_API": "3"},
            capture_output=True,
            text=True,
            input=input,
            timeout=20,
        )

    def put(self, key: str, value: str) -> None:
        """Set ``key``; the value is passed on stdin so that any text goes through unchanged."""
        result = self.ctl("put", key, input=value)
        if result.returncode != 0:
            raise HarnessError(f"etcdctl put {key}: {result.stderr}")

    def delete(self, key: str) -> None:
        self.ctl("del", key)

    def stop(self) -> None:
        _stop(self.proc)


class Member:
    """One Patroni member: its PostgreSQL port, REST port and process."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.pg_port = free_port()
        self.rest_port = free_port()
        self.config = root / f"{name}.yml"
        self.datadir = root / "pg" / name
        self.log = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Member({self.name}, pg={self.pg_port})"

    def rest(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET ``path`` on the member's REST API: (status, JSON body)."""
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.rest_port}{path}", timeout=2) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def is_primary(self) -> bool:
        try:
            return self.rest("/primary")[0] == 200
        except OSError:
            return False

    def is_streaming_replica(self) -> bool:
        try:
            status, body = self.rest("/replica")
        except OSError:
            return False
        return status == 200 and body.get("replication_state", "streaming") == "streaming"

    def is_sync_standby(self) -> bool:
        """The standby a commit waits for (the one a switchover or failover may promote)."""
        try:
            return self.rest("/synchronous")[0] == 200
        except OSError:
            return False

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None


class PatroniCluster(Harness):
    """``with PatroniCluster() as cluster:`` three members n1..n3 over one etcd, n1 the first leader."""

    def __init__(self, members: int = 3, ttl: int = 6, loop_wait: int = 1, retry_timeout: int = 2) -> None:
        reason = available()
        if reason is not None:
            raise HarnessError(reason)
        self.root = Path(tempfile.mkdtemp(prefix="ar-patroni-"))
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            account = pwd.getpwnam(OS_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self.etcd = Etcd(self.root)
        self.members = [Member(f"n{i + 1}", self.root) for i in range(members)]
        self._dcs = {"ttl": ttl, "loop_wait": loop_wait, "retry_timeout": retry_timeout}

    # Life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """etcd, then n1 (bootstraps), then the others, until all replicas stream."""
        self.etcd.start()
        (self.root / "pg").mkdir()
        self._chown(self.root / "pg")
        for member in self.members:
            self._write_config(member)
        first, *rest = self.members
        self.start_member(first)
        _wait("first leader accepts writes", first.is_primary, 60)
        for member in rest:
            self.start_member(member)
        self.wait_healthy()

    def close(self) -> None:
        """Stop every process and remove every file."""
        for member in self.members:
            _stop(member.proc, 20)
            pid = member.postmaster_pid()
            if pid is not None:
                _kill(pid, signal.SIGKILL)
        self.etcd.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def ensure_running(self) -> None:
        """Start every member whose Patroni is not running (after a crash a test did not undo)."""
        for member in self.members:
            if member.proc is None or member.proc.poll() is not None:
                self.start_member(member)

    def start_member(self, member: Member) -> None:
        member.proc = _spawn(["patroni", str(member.config)], member.log, as_postgres=True, home=self.root / "pg")

    def wait_healthy(self, timeout: float = 90) -> Member:
        """Until one member is the primary, every other streams from it and one of them is the
        synchronous standby; the primary."""

        def healthy() -> Member | None:
            primaries = [m for m in self.members if m.is_primary()]
            if len(primaries) != 1:
                return None
            others = [m for m in self.members if m is not primaries[0]]
            if not all(m.is_streaming_replica() for m in others):
                return None
            # In synchronous mode only the synchronous standby may take over: until the leader
            # has named one, a crash of the leader would leave the cluster without a primary.
            return primaries[0] if any(m.is_sync_standby() for m in others) else None

        found: Member = _wait("cluster healthy", healthy, timeout, 0.25)
        return found

    # Faults and changes ------------------------------------------------------------------------

    def sync_standby(self, timeout: float = 30) -> Member:
        """The synchronous standby now (waiting for one to be chosen)."""
        found: Member = _wait(
            "a synchronous standby", lambda: next((m for m in self.members if m.is_sync_standby()), None), timeout
        )
        return found

    def primary(self, timeout: float = 30) -> Member:
        """The member that is primary now (waiting for one, as after a failover)."""
        found: Member = _wait(
            "a primary", lambda: next((m for m in self.members if m.is_primary()), None), timeout, 0.1
        )
        return found

    def switchover(self, candidate: Member) -> None:
        """A planned switchover to ``candidate`` (returns once patronictl has done it)."""
        leader = self.primary()
        result = subprocess.run(
            ["patronictl", "-c", str(leader.config), "switchover", "--leader", leader.name,
             "--candidate", candidate.name, "--force", SCOPE],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise HarnessError(f"switchover failed: {result.stdout}{result.stderr}")
        _wait(f"{candidate.name} primary", candidate.is_primary, 30)

    def crash(self, member: Member) -> None:
        """kill -9 the member's Patroni and its postmaster together (a lost host)."""
        pid = member.postmaster_pid()
        if member.proc is not None:
            _kill(member.proc.pid, signal.SIGKILL)
            member.proc.wait(5)
        if pid is not None:
            _kill(pid, signal.SIGKILL)

    # Connection settings -----------------------------------------------------------------------

    def node_config(self, member: Member, database: str = "postgres") -> dict[str, Any]:
        """activerecord settings for one member."""
        return {
            "driver": "postgresql",
            "host": LOOPBACK,
            "port": member.pg_port,
            "user": "postgres",
            "password": PASSWORD,
            "database": database,
        }

    def wait_replayed(self, timeout: float = 20.0) -> None:
        """Until every running standby has replayed everything the primary has written so far."""
        import psycopg

        def lsn(member: Member, query: str) -> int:
            with psycopg.connect(
                host=LOOPBACK, port=member.pg_port, user="postgres", password=PASSWORD, dbname="postgres"
            ) as conn:
                row = conn.execute(query.encode()).fetchone()
                return int(row[0]) if row and row[0] is not None else -1

        primary = self.primary()
        target = lsn(primary, "SELECT pg_current_wal_lsn() - '0/0'")
        for member in self.members:
            if member is not primary and member.proc is not None and member.proc.poll() is None:
                _wait(
                    f"{member.name} replayed",
                    lambda m=member: lsn(m, "SELECT pg_last_wal_replay_lsn() - '0/0'") >= target,
                    timeout,
                )

    def run_sql(self, sql: str, database: str = "postgres") -> None:
        """Run ``sql`` on the current primary (autocommit)."""
        import psycopg

        member = self.primary()
        with psycopg.connect(
            host=LOOPBACK, port=member.pg_port, user="postgres", password=PASSWORD, dbname=database, autocommit=True
        ) as conn:
            conn.execute(sql.encode())

    # Internals ---------------------------------------------------------------------------------

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam(OS_USER)
            os.chown(path, account.pw_uid, account.pw_gid)

    def _write_config(self, member: Member) -> None:
        pg_dir = self.root / "pg"
        config = {
            "scope": SCOPE,
            "namespace": "/service/",
            "name": member.name,
            "restapi": {
                "listen": f"{LOOPBACK}:{member.rest_port}",
                "connect_address": f"{LOOPBACK}:{member.rest_port}",
            },
            "etcd3": {"hosts": f"{LOOPBACK}:{self.etcd.client_port}"},
            "bootstrap": {
                "dcs": {
                    **self._dcs,
                    # A commit waits for one standby, which Patroni promotes on a failover: an
                    # acknowledged write survives the loss of the primary (asynchronous
                    # replication would lose the writes the standbys had not received yet).
                    "synchronous_mode": True,
                    "maximum_lag_on_failover": 1048576,
                    "postgresql": {"use_pg_rewind": True, "use_slots": True},
                },
                "initdb": [{"encoding": "UTF8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"{LOOPBACK}:{member.pg_port}",
                "connect_address": f"{LOOPBACK}:{member.pg_port}",
                "data_dir": str(member.datadir),
                "bin_dir": str(DEFAULT_BINDIR),
                # Here, not under bootstrap: Patroni then writes the whole file, and initdb's
                # default "trust" lines do not come first.
                "pg_hba": [
                    "local all all trust",
                    f"host replication replicator {LOOPBACK}/32 scram-sha-256",
                    f"host all all {LOOPBACK}/32 scram-sha-256",
                ],
                "pgpass": str(pg_dir / f"{member.name}.pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": PASSWORD},
                    "replication": {"username": "replicator", "password": "reppass"},
                    "rewind": {"username": "rewinder", "password": "rewpass"},
                },
                "parameters": {
                    "unix_socket_directories": str(pg_dir),
                    "shared_buffers": "32MB",
                    "max_connections": 50,
                    "wal_keep_size": "64MB",
                },
            },
        }
        # JSON is YAML: no YAML writer needed.
        member.config.write_text(json.dumps(config, indent=2))
        self._chown(member.config)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

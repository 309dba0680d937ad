"""A throwaway pgbouncer in transaction pooling mode in front of a PostgreSQL server, on loopback.

Debian's pgbouncer (1.18) has no protocol-level prepared statement support, so clients must not
use named server-side prepared statements through it: that is what the tests drill.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .patroni import Harness, HarnessError, free_port
from .pg_cluster import OS_USER

BINARY = "/usr/sbin/pgbouncer"


def available() -> str | None:
    """None when pgbouncer can run here, else why not."""
    return None if Path(BINARY).is_file() else "pgbouncer is not installed (Debian package pgbouncer)"


class PgBouncer(Harness):
    """``with PgBouncer(5432) as bouncer:`` listens on ``bouncer.port``, pooling per transaction."""

    def __init__(
        self, server_port: int, server_host: str = "127.0.0.1", pool_size: int = 2, login_retry: float = 15.0
    ) -> None:
        reason = available()
        if reason is not None:
            raise HarnessError(reason)
        self.server = (server_host, server_port)
        self.port = free_port()
        self.pool_size = pool_size
        # Seconds pgbouncer refuses a database at once after its server refused a login (15 by default).
        self.login_retry = login_retry
        self.root = Path(tempfile.mkdtemp(prefix="ar-pgbouncer-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        host, port = self.server
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.root}/userlist.txt\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            f"server_login_retry = {self.login_retry:g}\n"
            "max_client_conn = 500\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.root}/pgbouncer.log\n"
        )
        if os.geteuid() == 0:
            account = pwd.getpwnam(OS_USER)
            for path in (self.root, self.root / "userlist.txt", self.root / "pgbouncer.ini"):
                os.chown(path, account.pw_uid, account.pw_gid)
            os.chmod(self.root / "userlist.txt", 0o600)
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        else:
            kwargs = {}
        self.proc = subprocess.Popen(
            [BINARY, str(self.root / "pgbouncer.ini")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"HOME": str(self.root), "PATH": "/usr/bin:/bin"},
            start_new_session=True,
            **kwargs,  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    log = (self.root / "pgbouncer.log").read_text() if (self.root / "pgbouncer.log").exists() else ""
                    raise HarnessError(f"pgbouncer did not start: {log[-2000:]}") from None
                time.sleep(0.05)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

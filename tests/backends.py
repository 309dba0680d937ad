"""Test databases on each backend: created per test session under unique names, dropped after.

Unique names let several runs share one server. Under ``CI=true`` a server that cannot be
reached fails the run; elsewhere its tests are skipped.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from .harness.patroni import HarnessError
from .harness.pgbouncer import PgBouncer

ALL_BACKENDS = ("sqlite", "postgresql", "mysql")
#: The test PostgreSQL reached through a pgbouncer in transaction pooling mode started by the
#: harness (``--backends ...,postgresql-pgbouncer``). Without ``--backends`` naming it, the modules
#: of `PGBOUNCER_SUITE` run through it too whenever PostgreSQL is selected (``AR_TEST_PGBOUNCER=0``
#: turns that off).
PGBOUNCER = "postgresql-pgbouncer"
KNOWN_BACKENDS = (*ALL_BACKENDS, PGBOUNCER)
PGBOUNCER_SUITE = frozenset(
    {"test_persistence", "test_queries", "test_transactions", "test_replicas", "test_pgbouncer", "test_cancel"}
)


def server_of(backend: str) -> str:
    """The database server behind a backend id: ``postgresql-pgbouncer`` is ``postgresql``."""
    return backend.split("-", 1)[0]


SERVER_URLS = {
    "postgresql": os.environ.get("AR_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("AR_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
}


class BackendDatabases:
    """Hands out databases on one backend by logical name; cleans them all up at the end."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.server = server_of(backend)
        self.tag = uuid.uuid4().hex[:8]
        self.created: dict[str, dict[str, Any]] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="ar-test-") if backend == "sqlite" else None
        self._admin: sa.Engine | None = None
        self._bouncer: PgBouncer | None = None
        self.error: str | None = None
        if backend != "sqlite":
            try:
                self._admin = sa.create_engine(SERVER_URLS[self.server], isolation_level="AUTOCOMMIT")
                with self._admin.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            except Exception as exc:  # any failure means the server is unusable
                self.error = f"{backend} server unreachable: {type(exc).__name__}: {exc}"
                self._admin = None
        if backend == PGBOUNCER and self._admin is not None:
            # Databases are made and dropped on the server directly; the tests' connections go
            # through the bouncer.
            try:
                # A database made after a failed login (a replica coming back) is served within a second.
                self._bouncer = PgBouncer(
                    self._admin.url.port or 5432, self._admin.url.host or "127.0.0.1", pool_size=4, login_retry=0.5
                )
                self._bouncer.start()
            except HarnessError as exc:
                self.error = f"pgbouncer: {exc}"

    def require(self) -> None:
        """Skip (or, under CI=true, fail) when this backend's server is unreachable."""
        if self.error is not None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(self.error)
            pytest.skip(self.error)

    def config(self, name: str) -> dict[str, Any]:
        """Connection settings for the database standing for ``name`` (created on first use)."""
        self.require()
        if name in self.created:
            return self.created[name]
        dbname = f"ar_{self.tag}_{name}".lower()
        if self.backend == "sqlite":
            assert self._tmp is not None
            cfg: dict[str, Any] = {"driver": "sqlite", "database": os.path.join(self._tmp.name, f"{name}.db")}
        else:
            assert self._admin is not None
            url = self._admin.url
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {dbname}")
            cfg = {
                "driver": self.server,
                "host": url.host,
                "port": url.port,
                "user": url.username,
                "database": dbname,
            }
            if url.password:
                cfg["password"] = url.password
            if self._bouncer is not None:
                cfg.update(host="127.0.0.1", port=self._bouncer.port, pgbouncer=True)
        self.created[name] = cfg
        return cfg

    def close(self) -> None:
        """Drop every database this run created."""
        if self._bouncer is not None:
            self._bouncer.close()
        if self._admin is not None:
            with self._admin.connect() as conn:
                for cfg in self.created.values():
                    if self.server == "postgresql":
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {cfg['database']} WITH (FORCE)")
                    else:
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {cfg['database']}")
            self._admin.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()

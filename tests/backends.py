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

ALL_BACKENDS = ("sqlite", "postgresql", "mysql")

SERVER_URLS = {
    "postgresql": os.environ.get("AR_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("AR_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
}


class BackendDatabases:
    """Hands out databases on one backend by logical name; cleans them all up at the end."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.tag = uuid.uuid4().hex[:8]
        self.created: dict[str, dict[str, Any]] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="ar-test-") if backend == "sqlite" else None
        self._admin: sa.Engine | None = None
        self.error: str | None = None
        if backend != "sqlite":
            try:
                self._admin = sa.create_engine(SERVER_URLS[backend], isolation_level="AUTOCOMMIT")
                with self._admin.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            except Exception as exc:  # any failure means the server is unusable
                self.error = f"{backend} server unreachable: {type(exc).__name__}: {exc}"
                self._admin = None

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
                "driver": self.backend,
                "host": url.host,
                "port": url.port,
                "user": url.username,
                "database": dbname,
            }
            if url.password:
                cfg["password"] = url.password
        self.created[name] = cfg
        return cfg

    def close(self) -> None:
        """Drop every database this run created."""
        if self._admin is not None:
            with self._admin.connect() as conn:
                for cfg in self.created.values():
                    if self.backend == "postgresql":
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {cfg['database']} WITH (FORCE)")
                    else:
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {cfg['database']}")
            self._admin.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()

"""Where each backend lives and how every library spells the connection to it.

Server locations come from ``BENCH_POSTGRESQL_URL`` / ``BENCH_MYSQL_URL`` so CI or a
developer can point the suite elsewhere; the defaults are the loopback servers of the dev box.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    # Imported lazily below: the raw-driver contenders must not pay for (or be measured
    # with) SQLAlchemy loaded in their process.
    from sqlalchemy import URL

BackendName = Literal["sqlite", "postgresql", "mysql"]
BACKENDS: tuple[BackendName, ...] = ("sqlite", "postgresql", "mysql")

_DEFAULT_URLS: dict[str, str] = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/bench_ar",
    "mysql": "mysql://root@127.0.0.1:3306/bench_ar",
}

# The MySQL/MariaDB drivers picked on measured speed (see mysql-driver-choice.md).
MYSQL_SYNC_DRIVER = "pymysql"
MYSQL_ASYNC_DRIVER = "asyncmy"


@dataclass(frozen=True)
class Target:
    """One backend instance: a SQLite file, or a server with credentials."""

    backend: BackendName
    database: str
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = ""

    @classmethod
    def for_backend(cls, backend: BackendName, sqlite_path: str = "") -> Target:
        """Build the target from the environment (servers) or the given file (SQLite)."""
        if backend == "sqlite":
            return cls(backend="sqlite", database=sqlite_path)
        raw = os.environ.get(f"BENCH_{backend.upper()}_URL", _DEFAULT_URLS[backend])
        parts = urlsplit(raw)
        return cls(
            backend=backend,
            database=parts.path.lstrip("/"),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (5432 if backend == "postgresql" else 3306),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )

    def to_json(self) -> dict[str, Any]:
        """Plain dict, for handing the target to a contender subprocess."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Target:
        """Inverse of :meth:`to_json`."""
        return cls(**data)

    def sqlalchemy_url(self, *, asynchronous: bool) -> URL:
        """SQLAlchemy URL with the driver this suite uses for the backend and mode."""
        from sqlalchemy import URL

        if self.backend == "sqlite":
            driver = "sqlite+aiosqlite" if asynchronous else "sqlite+pysqlite"
            return URL.create(driver, database=self.database)
        if self.backend == "postgresql":
            driver = "postgresql+asyncpg" if asynchronous else "postgresql+psycopg"
        else:
            driver = "mysql+" + (MYSQL_ASYNC_DRIVER if asynchronous else MYSQL_SYNC_DRIVER)
        query = {"charset": "utf8mb4"} if self.backend == "mysql" else {}
        return URL.create(
            driver,
            username=self.user or None,
            password=self.password or None,
            host=self.host,
            port=self.port,
            database=self.database,
            query=query,
        )

"""Connection configuration: the seed's dictionaries turned into validated URLs and engine options.

Pure: nothing here opens a connection. Passwords live only inside `sqlalchemy.URL`, whose string
form masks them, and every repr here goes through that masking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..dialects import BACKENDS, Backend, backend_for
from ..errors import ConfigurationError

_URL_KEYS = {"driver", "host", "port", "database", "user", "username", "password", "options", "url"}
# Passed to create_engine / create_async_engine unchanged.
_ENGINE_KEYS = {
    "pool_size",
    "max_overflow",
    "pool_timeout",
    "pool_recycle",
    "pool_pre_ping",
    "pool_use_lifo",
    "echo",
    "echo_pool",
    "connect_args",
    "isolation_level",
}
#: The node is reached through pgbouncer in transaction pooling mode: the backend turns the
#: drivers' server-side prepared statements off (`Backend.behind_pgbouncer`).
PGBOUNCER = "pgbouncer"
NODE_KEYS = frozenset(_URL_KEYS | _ENGINE_KEYS | {"weight", PGBOUNCER})


@dataclass(frozen=True)
class NodeConfig:
    """One database server (or SQLite file) reachable in both modes.

    ``sync_url`` and ``async_url`` name the same database through the sync and async driver.
    """

    backend: str
    sync_url: URL
    async_url: URL
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    # For an in-memory SQLite database shared by the sync and the async engine: the URI that a
    # keeper connection holds open so that the database outlives its pooled connections.
    memory_uri: str | None = None

    def __repr__(self) -> str:
        return f"NodeConfig({self.safe_url!r})"

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, for logs and error messages."""
        if self.memory_uri is not None:
            return "sqlite:///:memory:"
        return self.sync_url.render_as_string(hide_password=True)


def _backend_of(connection: str, driver: str) -> str:
    try:
        return backend_for(driver.split("+", 1)[0]).name
    except LookupError:
        raise ConfigurationError(
            f"connection {connection!r}: unknown driver {driver!r}; expected one of {', '.join(sorted(BACKENDS))}"
        ) from None


def _with_driver(url: URL, backend: str, driver: str) -> URL:
    return url.set(drivername=backend if driver == "pysqlite" else f"{backend}+{driver}")


def engine_args(node: NodeConfig, url: URL) -> tuple[URL, dict[str, Any]]:
    """The URL and keyword arguments to create an engine for ``url`` (``node.sync_url`` or
    ``node.async_url``) with. Where activerecord registered a dialect of its own for the driver
    (SQLite's transaction control, MySQL's UTC converters), the URL names it as its driver."""
    backend = backend_for(node.backend)
    engine_url = backend.engine_url(url, node.engine_options)
    return engine_url, backend.engine_options(engine_url, node.engine_options)


def _port(connection: str, port: Any) -> int | None:
    if port is None:
        return None
    text = str(port) if isinstance(port, int | str) and not isinstance(port, bool) else ""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigurationError(f"connection {connection!r}: port must be a number from 1 to 65535, not {port!r}")
    return int(text)


def _hosts(connection: str, host: Any, port: Any) -> list[tuple[Any, int | None]]:
    """``host`` (a name, or a list of names for a primary that can move) with their ports.

    ``port`` is one port for every host or a list as long as ``host``.
    """
    if not isinstance(host, list | tuple):
        return [(host, _port(connection, port))]
    if not host or not all(isinstance(h, str) and h for h in host):
        raise ConfigurationError(f"connection {connection!r}: 'host' must be a name or a non-empty list of names")
    ports = list(port) if isinstance(port, list | tuple) else [port] * len(host)
    if len(ports) != len(host):
        raise ConfigurationError(f"connection {connection!r}: give one port, or one port per host")
    return [(h, _port(connection, p)) for h, p in zip(host, ports, strict=True)]


def parse_node(name: str, raw: Mapping[str, Any]) -> NodeConfig:
    """Validate one node's settings and build its URLs.

    >>> parse_node("default", {"driver": "sqlite", "database": "app.db"}).sync_url.database
    'app.db'
    """
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"connection {name!r}: settings must be a mapping, not {type(raw).__name__}")
    unknown = set(raw) - NODE_KEYS
    if unknown:
        raise ConfigurationError(
            f"connection {name!r}: unknown setting(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(NODE_KEYS))}"
        )
    engine_options = {k: raw[k] for k in _ENGINE_KEYS if k in raw}
    weight = float(raw.get("weight", 1.0))
    if weight <= 0:
        raise ConfigurationError(f"connection {name!r}: weight must be positive")

    if "url" in raw:
        clash = (_URL_KEYS - {"url", "options"}) & set(raw)
        if clash:
            raise ConfigurationError(f"connection {name!r}: give either 'url' or {', '.join(sorted(clash))}, not both")
        try:
            url = make_url(str(raw["url"]))
        except ArgumentError:
            # The message of ArgumentError quotes the URL, password and all: do not chain its text.
            raise ConfigurationError(f"connection {name!r}: 'url' is not a database URL") from None
        backend = _backend_of(name, url.drivername)
        if raw.get("options"):
            url = url.update_query_dict(dict(raw["options"]))
    else:
        if "driver" not in raw:
            raise ConfigurationError(f"connection {name!r}: missing 'driver' (or 'url')")
        backend = _backend_of(name, str(raw["driver"]))
        database = raw.get("database")
        missing = backend_for(backend).check_settings(name, raw)
        if missing:
            raise ConfigurationError(f"connection {name!r}: missing {', '.join(missing)}")
        hosts = _hosts(name, raw.get("host"), raw.get("port", backend_for(backend).default_port))
        url = URL.create(
            backend,
            username=raw.get("user", raw.get("username")),
            password=raw.get("password"),
            host=hosts[0][0] if len(hosts) == 1 else None,
            port=hosts[0][1] if len(hosts) == 1 else None,
            database=str(database) if database is not None else None,
            query=dict(raw.get("options") or {}),
        )
        if len(hosts) > 1:
            url = backend_for(backend).several_hosts(name, url, hosts)

    settings = backend_for(backend)
    url, memory_uri = settings.prepare_url(name, url)
    engine_options = _pgbouncer(name, raw, settings, url, engine_options)
    sync_driver, async_driver = settings.sync_driver, settings.async_driver
    given = url.drivername.split("+", 1)
    if len(given) == 2:
        # A driver named in the URL replaces ours for the mode it serves.
        if given[1] in settings.async_drivers:
            async_driver = given[1]
        else:
            sync_driver = given[1]
    return NodeConfig(
        backend=backend,
        sync_url=_with_driver(url, backend, sync_driver),
        async_url=_with_driver(url, backend, async_driver),
        engine_options=engine_options,
        weight=weight,
        memory_uri=memory_uri,
    )


def _pgbouncer(
    name: str, raw: Mapping[str, Any], backend: Backend, url: URL, options: dict[str, Any]
) -> dict[str, Any]:
    """``options`` with the ``pgbouncer`` setting checked and kept for `Backend.engine_options`."""
    behind = raw.get(PGBOUNCER, False)
    if not isinstance(behind, bool):
        raise ConfigurationError(f"connection {name!r}: {PGBOUNCER!r} must be true or false, not {behind!r}")
    if not behind:
        return options
    backend.behind_pgbouncer(name, url, options)
    return {**options, PGBOUNCER: True}

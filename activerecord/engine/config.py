"""Connection configuration: the seed's dictionaries turned into validated URLs and engine options.

Pure: nothing here opens a connection. Passwords live only inside `sqlalchemy.URL`, whose string
form masks them, and every repr here goes through that masking.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..dialects import BACKENDS, Backend, backend_for
from ..dialects.options import SSL_MODES, ConnectOptions, Keepalives, SSLOptions
from ..errors import ConfigurationError

_URL_KEYS = {"driver", "host", "port", "database", "user", "username", "password", "options", "url"}
# Passed to create_engine / create_async_engine (after the checks in `_engine_options`).
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
    "sync_connect_args",
    "async_connect_args",
    "isolation_level",
}
# Driver-neutral connect options, translated per driver by the backend (`ConnectOptions`).
_CONNECT_KEYS = {"connect_timeout", "read_timeout", "statement_timeout", "application_name", "ssl", "keepalives"}
#: The node is reached through pgbouncer in transaction pooling mode: the backend turns the
#: drivers' server-side prepared statements off (`Backend.behind_pgbouncer`).
PGBOUNCER = "pgbouncer"
#: Pool settings: on a node, or once on a connection or shard group for every node of it.
POOL_KEYS = frozenset(
    {"pool_size", "max_overflow", "pool_timeout", "pool_recycle", "pool_pre_ping", "pool_use_lifo", "checkout_warning"}
)
NODE_KEYS = frozenset(_URL_KEYS | _ENGINE_KEYS | _CONNECT_KEYS | {"weight", "checkout_warning", PGBOUNCER})
# The connect arguments given for one mode only: the rest of `_ENGINE_KEYS` serves both.
_MODE_ARGS = ("sync_connect_args", "async_connect_args")


@dataclass(frozen=True)
class NodeConfig:
    """One database server (or SQLite file) reachable in both modes.

    ``sync_url`` and ``async_url`` name the same database through the sync and async driver.
    """

    backend: str
    sync_url: URL
    async_url: URL
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    connect_options: ConnectOptions = field(default_factory=ConnectOptions)
    #: Seconds after which a checked-out connection is reported (None: never; see `engine.checkout`).
    checkout_warning: float | None = None
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


def _backend_of(where: str, driver: str) -> str:
    try:
        return backend_for(driver.split("+", 1)[0]).name
    except LookupError:
        raise ConfigurationError(
            f"{where}: unknown driver {driver!r}; expected one of {', '.join(sorted(BACKENDS))}"
        ) from None


def _with_driver(url: URL, backend: str, driver: str) -> URL:
    return url.set(drivername=backend if driver == "pysqlite" else f"{backend}+{driver}")


def engine_args(node: NodeConfig, url: URL) -> tuple[URL, dict[str, Any]]:
    """The URL and keyword arguments to create an engine for ``url`` (``node.sync_url`` or
    ``node.async_url``) with. Where activerecord registered a dialect of its own for the driver
    (SQLite's transaction control, MySQL's UTC converters), the URL names it as its driver.

    The connect arguments are, each over the one before: the driver-neutral options as the
    driver takes them, ``connect_args``, and ``sync_connect_args`` or ``async_connect_args``.
    """
    backend = backend_for(node.backend)
    mode_args = "async_connect_args" if url == node.async_url else "sync_connect_args"
    options = {k: v for k, v in node.engine_options.items() if k not in _MODE_ARGS}
    given = {**(options.get("connect_args") or {}), **(node.engine_options.get(mode_args) or {})}
    engine_url = backend.engine_url(url, {**options, "connect_args": given})
    connect_args = {**backend.connect_args(engine_url, node.connect_options), **given}
    if connect_args:
        options["connect_args"] = connect_args
    return engine_url, backend.engine_options(engine_url, options)


def _seconds(where: str, key: str, value: Any, *, allow_none: bool = True, allow_zero: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (number > 0 or (allow_zero and number == 0)) or math.isinf(number):
        raise ConfigurationError(f"{where}: {key!r} must be a positive number of seconds, not {value!r}")
    return float(number)


def _integer(where: str, key: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigurationError(f"{where}: {key!r} must be a whole number >= {least}, not {value!r}")
    return value


def _flag(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where}: {key!r} must be True or False, not {value!r}")
    return value


def _mapping(where: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: {key!r} must be a mapping, not {type(value).__name__}")
    return dict(value)


def _engine_options(where: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The engine settings of ``raw``, checked: a pool option of the wrong type fails here, at
    configure time, not when the first connection is made."""
    options = {k: raw[k] for k in _ENGINE_KEYS if k in raw}
    checks: dict[str, Callable[[Any], Any]] = {
        "pool_size": lambda v: _integer(where, "pool_size", v, 0),
        "max_overflow": lambda v: _integer(where, "max_overflow", v, -1),
        "pool_timeout": lambda v: _seconds(where, "pool_timeout", v, allow_none=False, allow_zero=True),
        "pool_pre_ping": lambda v: _flag(where, "pool_pre_ping", v),
        "pool_use_lifo": lambda v: _flag(where, "pool_use_lifo", v),
    }
    for key, check in checks.items():
        if key in options:
            options[key] = check(options[key])
    if "pool_recycle" in options and options["pool_recycle"] != -1:
        options["pool_recycle"] = _seconds(where, "pool_recycle", options["pool_recycle"], allow_none=False)
    for key in ("connect_args", *_MODE_ARGS):
        if key in options:
            options[key] = _mapping(where, key, options[key])
    return options


def _ssl(where: str, value: Any) -> SSLOptions | None:
    if value is None:
        return None
    settings = {"mode": value} if isinstance(value, str) else _mapping(where, "ssl", value)
    unknown = set(settings) - {"mode", "ca", "cert", "key"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown 'ssl' setting(s) {', '.join(sorted(unknown))}")
    mode = settings.get("mode", "verify-full" if settings.get("ca") else "require")
    if mode not in SSL_MODES:
        raise ConfigurationError(f"{where}: 'ssl' mode must be one of {', '.join(SSL_MODES)}")
    files = {k: settings.get(k) for k in ("ca", "cert", "key")}
    if any(v is not None and not isinstance(v, str) for v in files.values()):
        raise ConfigurationError(f"{where}: 'ssl' ca, cert and key are file paths")
    return SSLOptions(mode, **files)


def _keepalives(where: str, value: Any) -> Keepalives | None:
    if value is None or value is False:
        return None
    if value is True:
        return Keepalives()
    settings = _mapping(where, "keepalives", value)
    unknown = set(settings) - {"idle", "interval", "count"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown 'keepalives' setting(s) {', '.join(sorted(unknown))}")
    return Keepalives(**{k: _integer(where, f"keepalives.{k}", v, 1) for k, v in settings.items()})


def _connect_options(where: str, raw: Mapping[str, Any], has_server: bool) -> ConnectOptions:
    given = {k: raw[k] for k in _CONNECT_KEYS if k in raw}
    if given and not has_server:
        raise ConfigurationError(
            f"{where}: {', '.join(sorted(given))} apply to database servers, not to SQLite "
            "(whose busy timeout is connect_args={'timeout': seconds})"
        )
    defaults = ConnectOptions()
    name = raw.get("application_name")
    if name is not None and not isinstance(name, str):
        raise ConfigurationError(f"{where}: 'application_name' must be a string")
    statement_timeout = _seconds(where, "statement_timeout", raw.get("statement_timeout"))
    if "read_timeout" in raw:
        read_timeout = _seconds(where, "read_timeout", raw["read_timeout"])
    else:
        read_timeout = defaults.read_timeout
        if read_timeout is not None and statement_timeout is not None and statement_timeout >= read_timeout:
            # The server's own error must come first: it names the statement and keeps the connection.
            read_timeout = statement_timeout + 5
    return ConnectOptions(
        connect_timeout=_seconds(where, "connect_timeout", raw.get("connect_timeout", defaults.connect_timeout)),
        read_timeout=read_timeout,
        statement_timeout=statement_timeout,
        application_name=name,
        ssl=_ssl(where, raw.get("ssl")),
        keepalives=_keepalives(where, raw.get("keepalives", True)) if has_server else None,
    )


def _check_drivers(where: str, backend: str, drivers: tuple[str, ...]) -> None:
    """Fail at configure time, naming the extra to install, when a driver is missing."""
    settings = backend_for(backend)
    for driver in drivers:
        module = settings.driver_modules.get(driver)
        if module is not None and importlib.util.find_spec(module.split(".")[0]) is None:
            ours = driver in (settings.sync_driver, settings.async_driver) and settings.extra is not None
            # The extra installs the backend's default drivers; another driver is the user's own choice.
            install = f"pip install 'activerecord[{settings.extra}]'" if ours else f"install the package of {module!r}"
            raise ConfigurationError(f"{where}: the {backend} driver {driver!r} is not installed ({install})")


def _port(where: str, port: Any) -> int | None:
    if port is None:
        return None
    text = str(port) if isinstance(port, int | str) and not isinstance(port, bool) else ""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigurationError(f"{where}: port must be a number from 1 to 65535, not {port!r}")
    return int(text)


def _hosts(where: str, host: Any, port: Any) -> list[tuple[Any, int | None]]:
    """``host`` (a name, or a list of names for a primary that can move) with their ports.

    ``port`` is one port for every host or a list as long as ``host``.
    """
    if not isinstance(host, list | tuple):
        return [(host, _port(where, port))]
    if not host or not all(isinstance(h, str) and h for h in host):
        raise ConfigurationError(f"{where}: 'host' must be a name or a non-empty list of names")
    ports = list(port) if isinstance(port, list | tuple) else [port] * len(host)
    if len(ports) != len(host):
        raise ConfigurationError(f"{where}: give one port, or one port per host")
    return [(h, _port(where, p)) for h, p in zip(host, ports, strict=True)]


def check_pool_settings(where: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The `POOL_KEYS` of ``raw``, checked as on a node; a bad one raises `ConfigurationError`
    starting with ``where`` (say, ``"connection 'orders' (every node)"``)."""
    given = {k: raw[k] for k in POOL_KEYS if k in raw}
    _engine_options(where, given)
    _seconds(where, "checkout_warning", given.get("checkout_warning"))
    return given


def parse_node(
    name: str, raw: Mapping[str, Any], *, where: str | None = None, shared: Mapping[str, Any] | None = None
) -> NodeConfig:
    """Validate one node's settings and build its URLs.

    ``where`` names the node in error messages (default ``connection '<name>'``); ``shared`` holds
    the pool settings given once for every node of its connection, which the node's own override.

    >>> parse_node("default", {"driver": "sqlite", "database": "app.db"}).sync_url.database
    'app.db'
    """
    where = where or f"connection {name!r}"
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}: settings must be a mapping, not {type(raw).__name__}")
    unknown = set(raw) - NODE_KEYS
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(NODE_KEYS))}"
        )
    if shared:
        raw = {**shared, **raw}
    engine_options = _engine_options(where, raw)
    checkout_warning = _seconds(where, "checkout_warning", raw.get("checkout_warning"))
    weight = float(raw.get("weight", 1.0))
    if weight <= 0:
        raise ConfigurationError(f"{where}: weight must be positive")

    if "url" in raw:
        clash = (_URL_KEYS - {"url", "options"}) & set(raw)
        if clash:
            raise ConfigurationError(f"{where}: give either 'url' or {', '.join(sorted(clash))}, not both")
        try:
            url = make_url(str(raw["url"]))
        except ArgumentError:
            # The message of ArgumentError quotes the URL, password and all: do not chain its text.
            raise ConfigurationError(f"{where}: 'url' is not a database URL") from None
        backend = _backend_of(where, url.drivername)
        if raw.get("options"):
            url = url.update_query_dict(dict(raw["options"]))
    else:
        if "driver" not in raw:
            raise ConfigurationError(f"{where}: missing 'driver' (or 'url')")
        backend = _backend_of(where, str(raw["driver"]))
        database = raw.get("database")
        missing = backend_for(backend).check_settings(name, raw)
        if missing:
            raise ConfigurationError(f"{where}: missing {', '.join(missing)}")
        hosts = _hosts(where, raw.get("host"), raw.get("port", backend_for(backend).default_port))
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
    _check_drivers(where, backend, (sync_driver, async_driver))
    return NodeConfig(
        backend=backend,
        sync_url=_with_driver(url, backend, sync_driver),
        async_url=_with_driver(url, backend, async_driver),
        engine_options=engine_options,
        connect_options=_connect_options(where, raw, settings.default_port is not None),
        checkout_warning=checkout_warning,
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

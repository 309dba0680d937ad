"""The Backend protocol: everything the rest of the package may ask about the database it talks to.

One module per backend (`sqlite`, `postgresql`, `mysql`) implements it; `backend_for` finds the
one for a backend name or a SQLAlchemy dialect. The defaults here are the behaviour of a backend
that needs nothing special, so a backend only overrides what it does differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import Connection, Table
from sqlalchemy.engine import URL, Dialect, RootTransaction
from sqlalchemy.types import TypeEngine

from ..errors import ConfigurationError, Retry
from .faults import Classified
from .options import ConnectOptions

#: A bind or result processor: one value in, one value out.
Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class ReplicaStatus:
    """What a replica says about itself: seconds of lag, replayed write position, and whether it
    is a standby at all."""

    lag: float
    position: int | None
    standby: bool


class Backend(Protocol):
    """What differs between backends, in one place. Subclass it for a new backend and register
    the instance in `activerecord.dialects`."""

    #: The backend's name in activerecord's configuration: ``"sqlite"``, ``"postgresql"``, ...
    name: ClassVar[str]
    #: Other names of the backend: driver spellings in a configuration and SQLAlchemy dialect names.
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The DBAPI drivers serving the sync and the async mode by default.
    sync_driver: ClassVar[str]
    async_driver: ClassVar[str]
    #: Drivers a URL may name that serve the async mode (any other named driver serves sync).
    async_drivers: ClassVar[frozenset[str]] = frozenset()
    #: The server's port when none is given; None for a backend without a server.
    default_port: ClassVar[int | None] = None
    #: The database keeps the zone of a timestamp (aware values pass through untouched).
    keeps_time_zone: ClassVar[bool] = False
    #: NULL sorts after every value in ascending order (as on PostgreSQL), not before.
    nulls_sort_large: ClassVar[bool] = False
    #: The most rows one executemany may send, or None for no limit.
    rows_per_statement: ClassVar[int | None] = None
    #: Writes have a position (such as a WAL LSN) that a replica's replay can be compared with.
    has_write_positions: ClassVar[bool] = False
    #: SELECT ... FOR UPDATE locks rows (SQLite has no row locks: one writer holds the file).
    locks_rows: ClassVar[bool] = True
    #: The module each driver imports, checked at configure time (a driver not listed is not checked).
    driver_modules: ClassVar[Mapping[str, str]] = {}
    #: The package extra that installs this backend's drivers: ``pip install 'activerecord[EXTRA]'``.
    extra: ClassVar[str | None] = None

    def skips_locked_rows(self, dialect: Dialect) -> bool:
        """``FOR UPDATE SKIP LOCKED`` works on the server behind ``dialect``."""
        return False

    def classify_error(self, error: BaseException, is_disconnect: bool) -> Classified:
        """The SQLAlchemy class a driver error should surface as (None: the driver's own mapping
        stands) and whether running the transaction again may succeed (see `dialects.faults`)."""
        return Classified(None, Retry.RETRYABLE if is_disconnect else Retry.PERMANENT, is_disconnect)

    # -- configuration and engines ------------------------------------------------------------

    def check_settings(self, connection: str, raw: Mapping[str, Any]) -> list[str]:
        """The settings missing from a connection's configuration (``host``, ``database``, ...)."""
        return [k for k in ("host", "database") if not raw.get(k)]

    def several_hosts(self, connection: str, url: URL, hosts: Sequence[tuple[str, int | None]]) -> URL:
        """``url`` naming several hosts, the driver to connect to the first one that fits (a
        primary after a failover); `ConfigurationError` where the backend's drivers cannot."""
        raise ConfigurationError(f"connection {connection!r}: several hosts are supported on PostgreSQL only")

    def prepare_url(self, connection: str, url: URL) -> tuple[URL, str | None]:
        """``url`` with this backend's defaults added, and the URI of an in-memory database that
        must be kept open while the node is in use (None: there is none)."""
        return url, None

    def engine_url(self, url: URL, options: Mapping[str, Any]) -> URL:
        """The URL an engine is created from: where activerecord registered a dialect of its own
        for the driver, the URL names it (see `register_dialects`)."""
        return url

    def connect_args(self, url: URL, options: ConnectOptions) -> dict[str, Any]:
        """The driver-neutral ``options`` as the connect arguments of ``url``'s driver (the
        engine's URL: it names activerecord's own dialect where there is one). Connect
        arguments the configuration gives (``connect_args``, ``sync_connect_args``, ...) are
        laid over these."""
        return {}

    def engine_options(self, url: URL, options: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``create_engine`` for ``url`` given the configured ones."""
        return dict(options)

    def behind_pgbouncer(self, connection: str, url: URL, options: Mapping[str, Any]) -> None:
        """Check a node configured with ``pgbouncer: true`` (reached through pgbouncer in transaction
        pooling mode): `ConfigurationError` where it cannot work, as on any backend but PostgreSQL.
        `engine_options` then sees the setting as ``options["pgbouncer"]``."""
        raise ConfigurationError(
            f"connection {connection!r}: 'pgbouncer' is a PostgreSQL setting, "
            f"and this connection is {self.name}: remove it"
        )

    # -- cancellation ------------------------------------------------------------------------

    def kill_statement(self, driver_connection: Any) -> str | None:
        """SQL that, run on a side connection to the same server, ends the session of
        ``driver_connection`` (the driver's own connection object) with the statement it runs and
        its open transaction, for a task cancelled while it waits on that statement; None where
        it cannot be done or is not needed (there is no server)."""
        return None

    def session_ended(self, error: BaseException) -> bool:
        """True when `kill_statement`'s SQL failed with ``error`` because the session had ended
        before it arrived (the kill's work was done already)."""
        return False

    # -- column types ------------------------------------------------------------------------

    def datetime_type(self) -> TypeEngine[Any] | None:
        """The column type of a timezone-aware datetime, or None for ``DateTime(timezone=True)``."""
        return None

    def json_type(self) -> TypeEngine[Any] | None:
        """The column type of a JSON field, or None for SQLAlchemy's ``JSON``."""
        return None

    def big_integer_type(self) -> TypeEngine[Any] | None:
        """The column type of a 64-bit integer field, or None for SQLAlchemy's ``BigInteger``."""
        return None

    def double_type(self) -> TypeEngine[Any] | None:
        """The column type of a double-precision float field, or None for ``Float(precision=53)``."""
        return None

    def datetime_bind_processor(
        self, dialect: Dialect, inner: Callable[[Any], Any] | None
    ) -> Callable[[Any], Any] | None:
        """What writes an aware datetime: converted to naive UTC, then ``inner`` (the column
        type's own processing)."""
        return naive_utc_writer(inner)

    def datetime_result_processor(
        self, dialect: Dialect, coltype: Any, inner: Callable[[Any], Any] | None
    ) -> Callable[[Any], datetime | None] | None:
        """What reads a datetime: ``inner`` (the column type's own processing), then the value
        made aware in UTC."""
        return aware_utc_reader(inner)

    # -- writes ------------------------------------------------------------------------------

    def upsert(self, table: Table, conflict: Sequence[str], update: Sequence[str], pk: str) -> Any:
        """The INSERT that updates ``update`` (or does nothing) on a ``conflict`` key clash."""
        raise NotImplementedError(f"upsert is not implemented for {self.name}")

    def new_keys(self, conn: Connection, table: Table, pk: str, rows: Sequence[Mapping[str, Any]]) -> list[Any] | None:
        """Insert ``rows`` and return their new keys in row order, where this backend has a way
        SQLAlchemy's own ``RETURNING`` has not; None: nothing was done, use the general path."""
        return None

    # -- migrations --------------------------------------------------------------------------

    def acquire_migration_lock(self, conn: Connection, name: str, timeout: float, waiting: Callable[[], None]) -> bool:
        """Take the session-level lock ``name`` on ``conn``, calling ``waiting`` once before a
        wait; False when this backend needs no such lock. Raises `MigrationLockError` after
        ``timeout`` seconds."""
        return False

    def release_migration_lock(self, conn: Connection, name: str) -> None:
        """Release what `acquire_migration_lock` took."""
        return None

    def migration_options(self) -> dict[str, Any]:
        """Extra options of Alembic's ``context.configure`` on this backend."""
        return {}

    # -- notifications -----------------------------------------------------------------------

    #: Committed writes can wake waiting readers (PostgreSQL's LISTEN/NOTIFY); elsewhere they poll.
    has_notifications: ClassVar[bool] = False

    def notify(self, conn: Connection, channel: str) -> None:
        """Wake the listeners of ``channel`` when the transaction on ``conn`` commits (nothing
        where the backend has no notifications)."""
        return None

    def listen(self, conn: Connection, channel: str) -> bool:
        """Make ``conn`` (in autocommit, kept for this purpose) receive the notifications of
        ``channel``; False where the backend has none, and the reader polls."""
        return False

    def wait_for_notification(self, conn: Connection, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a notification on a ``conn`` that `listen` set up;
        whether one came (False at once where the backend has none)."""
        return False

    # -- replication -------------------------------------------------------------------------

    def write_position(self, conn: Connection) -> int | None:
        """The primary's current write position, or None where there is none."""
        return None

    def replica_status(self, conn: Connection) -> ReplicaStatus | None:
        """Lag and replay position of the node behind ``conn``, or None where unknown."""
        return None


def naive_utc_writer(inner: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """A bind processor: an aware datetime as naive UTC, then through ``inner``."""
    utc = UTC
    combine = datetime.combine

    def process(value: Any) -> Any:
        if value is not None and value.tzinfo is not None:
            # An aware value in UTC only drops its zone; any other is converted first.
            if value.tzinfo is not utc:
                value = value.astimezone(utc)
            value = combine(value.date(), value.time())  # (see `utc.naive_to_utc`)
        return value if inner is None else inner(value)

    return process


def aware_utc_reader(inner: Callable[[Any], Any] | None) -> Callable[[Any], datetime | None]:
    """A result processor: ``inner``'s value (or ISO text) as an aware datetime, naive ones taken
    as UTC. One function per value: this runs for every datetime of every row read."""
    utc = UTC
    parse = datetime.fromisoformat
    combine = datetime.combine

    if inner is None:

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                value = parse(value)
            if value.tzinfo is not None:
                return value  # type: ignore[no-any-return]
            return combine(value.date(), value.time(), utc)  # (see `utc.naive_to_utc`)

        return process

    def process_inner(value: Any) -> datetime | None:
        if value is None:
            return None
        value = inner(value)
        if isinstance(value, str):
            value = parse(value)
        if value.tzinfo is not None:
            return value  # type: ignore[no-any-return]
        return combine(value.date(), value.time(), utc)

    return process_inner


# Set while a transaction meant for writing begins: backends that can take their write lock at
# BEGIN (SQLite's BEGIN IMMEDIATE) do, so that a read-then-write transaction queues for the lock
# instead of failing when it upgrades. Only around the BEGIN itself: statements inside, and other
# connections opened meanwhile, are not affected.
_writing: ContextVar[bool] = ContextVar("activerecord_begin_write", default=False)


def begins_write() -> bool:
    """Whether the transaction beginning now is meant for writing (see `begin_write`)."""
    return _writing.get()


def begin_write(conn: Connection) -> RootTransaction:
    """``conn.begin()`` for a transaction that will write."""
    token = _writing.set(True)
    try:
        return conn.begin()
    finally:
        _writing.reset(token)


# Set while `begin_autocommit` begins: the dialect's ``do_begin`` then puts the driver connection
# in autocommit instead of opening a transaction, and its ``do_commit`` / ``do_rollback`` put it
# back. Like `_writing`, only around the BEGIN itself.
_autocommit: ContextVar[str] = ContextVar("activerecord_begin_autocommit", default="")

#: The method by which a SQLAlchemy dialect of activerecord's own says whether its ``do_begin``
#: honours `begin_autocommit` on a connection: ``dialect.activerecord_autocommits(conn) -> bool``.
AUTOCOMMITS = "activerecord_autocommits"


def begins_autocommit() -> bool:
    """Whether the "transaction" beginning now is one statement run in autocommit (see `begin_autocommit`)."""
    return bool(_autocommit.get())


def begins_autocommit_write() -> bool:
    """Whether the statement `begin_autocommit` is beginning now is a write (``write=True``)."""
    return _autocommit.get() == "write"


def autocommits(conn: Connection) -> bool:
    """Whether `begin_autocommit` on ``conn`` runs its statement in autocommit (activerecord's
    dialects); where it does not, the caller needs a transaction of its own."""
    check = getattr(conn.dialect, AUTOCOMMITS, None)
    return check is not None and bool(check(conn))


def begin_autocommit(conn: Connection, write: bool = False) -> RootTransaction:
    """``conn.begin()`` for one statement that commits by itself: the driver connection is put
    in autocommit (no BEGIN is sent, and the COMMIT or ROLLBACK that ends the returned transaction
    sends nothing), and put back in its usual mode when the transaction ends. Only on a connection
    for which `autocommits` is true. ``write``: the statement writes (SQLite's gate orders it
    with the other writers)."""
    token = _autocommit.set("write" if write else "read")
    try:
        return conn.begin()
    finally:
        _autocommit.reset(token)

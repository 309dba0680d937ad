"""Routing state: which role (primary or replica) and which write permission apply right now.

The state lives in context variables, so a scope opened in one thread or asyncio task never
leaks into another. The scopes do no I/O, so one object serves both ``with`` and ``async with``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import Select, TextClause

from ..errors import ConfigurationError, ReadOnlyError

READING = "reading"
WRITING = "writing"
ROLES = (READING, WRITING)


class Target(str):
    """A connection name carrying the routing hint of one query (``using_read_replica()`` and so on).

    It *is* the name (a `str`), so everything that looks connections up by name keeps working.
    """

    role: str | None

    def __new__(cls, name: str, role: str | None = None) -> Target:
        obj = super().__new__(cls, name)
        obj.role = role
        return obj


@dataclass(frozen=True)
class _Scope:
    name: str | None  # None: every connection
    role: str | None
    prevent_writes: bool


_scopes: ContextVar[tuple[_Scope, ...]] = ContextVar("activerecord_routing_scopes", default=())


class RoutingScope:
    """A block in which reads (and writes) of some connections are routed a given way.

    Made by `ConnectionManager.connected_to` and `ConnectionManager.prevent_writes`; use it with
    ``with`` or ``async with``. Scopes nest; the innermost one that names a connection wins.
    """

    def __init__(self, name: str | None, role: str | None, prevent_writes: bool) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigurationError(f"a connection name must be a non-empty string, not {name!r}")
        if role is not None and role not in ROLES:
            raise ConfigurationError(f"role must be {READING!r} or {WRITING!r}, not {role!r}")
        self._scope = _Scope(name, role, prevent_writes)
        self._tokens: list[Token[tuple[_Scope, ...]]] = []

    def __enter__(self) -> RoutingScope:
        self._tokens.append(_scopes.set((*_scopes.get(), self._scope)))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _scopes.reset(self._tokens.pop())

    async def __aenter__(self) -> RoutingScope:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def scoped_role(name: str) -> str | None:
    """The role the innermost ``connected_to`` scope gives connection ``name``, if any."""
    for scope in reversed(_scopes.get()):
        if scope.role is not None and (scope.name is None or scope.name == name):
            return scope.role
    return None


def writes_prevented(name: str) -> bool:
    """Whether a ``prevent_writes`` scope (or a reading role) covers connection ``name``."""
    return any(s.prevent_writes and (s.name is None or s.name == name) for s in _scopes.get())


def hint_of(name: str) -> str | None:
    """The role a query asked for through its `Target`, if any."""
    return name.role if isinstance(name, Target) else None


# A statement that only reads: what execute_raw may run under prevent_writes. WITH is left out
# because on PostgreSQL a WITH may hold an INSERT/UPDATE/DELETE.
_READ_SQL = re.compile(r"^\s*(select|show|explain|values|pragma|describe|desc)\b", re.IGNORECASE)


def _reads_only(args: Iterable[Any]) -> bool:
    """Whether an operation flagged as a write is in fact plain read SQL (``execute_raw("SELECT 1")``)."""
    for arg in args:
        if isinstance(arg, str):
            return bool(_READ_SQL.match(arg))
        if isinstance(arg, TextClause):
            return bool(_READ_SQL.match(arg.text))
        if isinstance(arg, Select):
            return arg._for_update_arg is None
    return False


def locks_rows(args: Iterable[Any]) -> bool:
    """Whether the operation's statement is a ``SELECT ... FOR UPDATE``/``FOR SHARE``."""
    return any(isinstance(arg, Select) and arg._for_update_arg is not None for arg in args)


def check_write(name: str, args: Iterable[Any], read_only_node: bool = False) -> bool:
    """Raise `ReadOnlyError` when a write on ``name`` is not allowed here.

    Returns whether the operation really writes (False for read SQL sent through ``execute_raw``).
    """
    if _reads_only(args):
        return False
    if read_only_node:
        raise ReadOnlyError(f"connection {name!r} is a read replica: writes go to its primary")
    if hint_of(name) == READING:
        raise ReadOnlyError(f"a write on connection {name!r} through using_read_replica(): replicas take no writes")
    if not _scopes.get():
        return True  # no routing scope open: the common case, decided without scanning
    if scoped_role(name) == READING:
        raise ReadOnlyError(f"a write on connection {name!r} inside connected_to(role='reading')")
    if writes_prevented(name):
        raise ReadOnlyError(f"a write on connection {name!r} inside prevent_writes()")
    return True


def wants_replica(name: str, automatic: bool, args: Iterable[Any]) -> bool:
    """Whether a read on ``name`` (outside a transaction) should go to a replica.

    The query's own hint wins over a scope, a scope over the connection's routing mode; a
    locking read (``FOR UPDATE``) always goes to the primary.
    """
    if locks_rows(args):
        return False
    role = hint_of(name) or scoped_role(name)
    if role is not None:
        return role == READING
    return automatic

"""Read-your-own-writes: where this context last wrote, per connection, and tokens that carry it.

After a write on a replicated connection the context remembers the primary's position: on
PostgreSQL the WAL position (LSN) right after the commit, elsewhere the wall-clock time. A read
may use a replica only once that replica has replayed the position (or, without positions,
once ``replica_delay`` seconds have passed). A token exports the positions as text, so a
service can hand its caller's writes on to the services it calls.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import Connection

from ..dialects import backend_for
from ..engine.operations import one_statement
from ..errors import ConfigurationError


@dataclass(frozen=True)
class Position:
    """A write on one connection: the primary's LSN after it (PostgreSQL) and when it happened."""

    lsn: int | None
    at: float

    def merge(self, other: Position) -> Position:
        """The later of two positions."""
        lsns = [p for p in (self.lsn, other.lsn) if p is not None]
        return Position(max(lsns) if lsns else None, max(self.at, other.at))


_positions: ContextVar[Mapping[str, Position]] = ContextVar(
    "activerecord_write_positions", default=MappingProxyType({})
)


def parse_lsn(value: str) -> int:
    """``'0/3000148'`` -> an int that orders like the LSN."""
    high, _, low = value.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(value: int) -> str:
    """The inverse of `parse_lsn`."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@one_statement
def primary_lsn(conn: Connection) -> int | None:
    """The primary's current write position (PostgreSQL's WAL LSN), or None where its backend has none."""
    return backend_for(conn.dialect).write_position(conn)


def record(name: str, lsn: int | None) -> None:
    """Remember that this context wrote on ``name`` just now."""
    name = str(name)  # a routing Target is a str subclass; keys stay plain names
    new = Position(lsn, time.time())
    current = _positions.get()
    old = current.get(name)
    _positions.set({**current, name: new if old is None else old.merge(new)})


def pending(name: str) -> Position | None:
    """This context's last write on ``name``, if any."""
    return _positions.get().get(name)


def forget(name: str | None = None) -> None:
    """Drop the remembered positions (of ``name``, or all)."""
    if name is None:
        _positions.set({})
    else:
        _positions.set({k: v for k, v in _positions.get().items() if k != name})


def export_token() -> str:
    """The positions of this context as an opaque, URL-safe token ('' when nothing was written)."""
    current = _positions.get()
    if not current:
        return ""
    body = {
        name: {"lsn": None if p.lsn is None else format_lsn(p.lsn), "at": round(p.at, 6)} for name, p in current.items()
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def import_token(token: str) -> None:
    """Merge the positions of a token made by `export_token` (in this or another service)."""
    if not token:
        return
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        incoming = {
            str(name): Position(None if v["lsn"] is None else parse_lsn(str(v["lsn"])), float(v["at"]))
            for name, v in body.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ConfigurationError("not a write-position token made by export_write_position()") from exc
    current = dict(_positions.get())
    for name, position in incoming.items():
        old = current.get(name)
        current[name] = position if old is None else old.merge(position)
    _positions.set(current)

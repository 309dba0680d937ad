"""The event store's and the saga orchestrator's tables, declared as models on the caller's connection.

As with the outbox (`_tables`), each model is declared once per (connection, table) and lives in
that connection's metadata, so Alembic's autogenerate writes its migration like any model's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table

from ..model.base import ActiveRecord, ModelMeta
from ..model.fields import (
    BigIntegerField,
    DateTimeField,
    IntegerField,
    JSONField,
    PrimaryKeyField,
    StringField,
    TextField,
    TimestampField,
)
from ._tables import _camel

#: The row of the streams table that holds the store's last global position (no stream id may start with ``$``).
ALL = "$all"

_models: dict[tuple[str, str], type[ActiveRecord]] = {}
_lock = threading.Lock()


def _declare(connection: str, table: str, fields: Callable[[], dict[str, Any]]) -> type[ActiveRecord]:
    with _lock:
        found = _models.get((connection, table))
        if found is None:
            namespace = {"__module__": __name__, "__tablename__": table, "__connection__": connection, **fields()}
            found = cast(type[ActiveRecord], ModelMeta(_camel(table), (ActiveRecord,), namespace))
            _models[connection, table] = found
        return found


def _events() -> dict[str, Any]:
    return {
        # The unique key is what makes two appends of the same version impossible.
        "__unique_together__": [("stream_id", "version")],
        # Assigned by the store from the position counter, never by the database (see event_store).
        "position": PrimaryKeyField(big=True, autoincrement=False),
        "event_id": StringField(max_length=36, unique=True),
        "stream_id": StringField(max_length=255),
        "version": BigIntegerField(),
        "type": StringField(max_length=255),
        "schema_version": IntegerField(default=1),
        "data": JSONField(nullable=True),
        "meta": JSONField(default=dict),
        "recorded_at": DateTimeField(),
    }


def _streams() -> dict[str, Any]:
    return {
        "stream_id": StringField(max_length=255, primary_key=True),
        "version": BigIntegerField(default=0),
    }


def _snapshots() -> dict[str, Any]:
    return {
        "stream_id": StringField(max_length=255, primary_key=True),
        "version": BigIntegerField(),
        "state": JSONField(nullable=True),
        "taken_at": DateTimeField(),
    }


def _checkpoints() -> dict[str, Any]:
    return {
        "name": StringField(max_length=100, primary_key=True),
        "position": BigIntegerField(default=0),
        "updated_at": DateTimeField(nullable=True),
    }


def _sagas() -> dict[str, Any]:
    return {
        # Recovery looks for unfinished sagas whose lease ran out.
        "__indexes__": [("state", "leased_until")],
        "id": StringField(max_length=64, primary_key=True),
        "name": StringField(max_length=100),
        "state": StringField(max_length=16),
        "step": IntegerField(default=0),
        "data": JSONField(default=dict),
        "error": TextField(nullable=True),
        "attempts": IntegerField(default=0),
        "lease_owner": StringField(max_length=64, nullable=True),
        "leased_until": DateTimeField(nullable=True),
        "created_at": TimestampField(auto_now_add=True),
        "updated_at": DateTimeField(),
    }


@dataclass(frozen=True)
class StoreModels:
    """The four tables of one event store."""

    events: type[ActiveRecord]
    streams: type[ActiveRecord]
    snapshots: type[ActiveRecord]
    checkpoints: type[ActiveRecord]

    @property
    def all(self) -> tuple[type[ActiveRecord], ...]:
        return (self.events, self.streams, self.snapshots, self.checkpoints)

    @property
    def tables(self) -> tuple[Table, Table, Table, Table]:
        return (self.events.__table__, self.streams.__table__, self.snapshots.__table__, self.checkpoints.__table__)


def store_models(connection: str, prefix: str) -> StoreModels:
    """The tables ``{prefix}events``, ``{prefix}streams``, ``{prefix}snapshots`` and
    ``{prefix}checkpoints`` on ``connection`` (declared on first use)."""
    return StoreModels(
        events=_declare(connection, f"{prefix}events", _events),
        streams=_declare(connection, f"{prefix}streams", _streams),
        snapshots=_declare(connection, f"{prefix}snapshots", _snapshots),
        checkpoints=_declare(connection, f"{prefix}checkpoints", _checkpoints),
    )


def saga_model(connection: str, table: str) -> type[ActiveRecord]:
    """The saga table ``table`` on ``connection`` (declared on first use)."""
    return _declare(connection, table, _sagas)

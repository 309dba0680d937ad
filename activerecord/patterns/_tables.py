"""The outbox's and the inbox's tables, declared as activerecord models on the caller's connection.

Each is declared once per (connection, table name) and lives in that connection's metadata
(`activerecord.metadata_for`), so Alembic's autogenerate writes its migration like any model's.
"""

from __future__ import annotations

import threading
from typing import cast

from ..model.base import ActiveRecord, ModelMeta
from ..model.fields import (
    DateTimeField,
    IntegerField,
    JSONField,
    PrimaryKeyField,
    StringField,
    TextField,
    TimestampField,
)

PENDING = "pending"
SENT = "sent"
DEAD = "dead"

_models: dict[tuple[str, str, str], type[ActiveRecord]] = {}
_lock = threading.Lock()


def _camel(table: str) -> str:
    return "".join(part.capitalize() for part in table.split("_")) or "Table"


def outbox_model(connection: str, table: str) -> type[ActiveRecord]:
    """The model of outbox table ``table`` on ``connection`` (declared on first use)."""
    with _lock:
        found = _models.get(("outbox", connection, table))
        if found is None:
            namespace = {
                "__module__": __name__,
                "__tablename__": table,
                "__connection__": connection,
                # The relay's lease query and stats read pending rows in id order.
                "__indexes__": [("status", "id"), ("key", "status")],
                "id": PrimaryKeyField(big=True),
                "message_id": StringField(max_length=36, unique=True),
                "topic": StringField(max_length=255),
                "key": StringField(max_length=255, nullable=True),
                "payload": JSONField(nullable=True),
                "headers": JSONField(default=dict),
                "status": StringField(max_length=16, default=PENDING),
                "attempts": IntegerField(default=0),
                "available_at": DateTimeField(),
                "lease_owner": StringField(max_length=64, nullable=True),
                "leased_until": DateTimeField(nullable=True),
                "last_error": TextField(nullable=True),
                "created_at": TimestampField(auto_now_add=True),
                "sent_at": DateTimeField(nullable=True),
            }
            found = cast(type[ActiveRecord], ModelMeta(_camel(table), (ActiveRecord,), namespace))
            _models["outbox", connection, table] = found
        return found


def inbox_model(connection: str, table: str) -> type[ActiveRecord]:
    """The model of inbox table ``table`` on ``connection`` (declared on first use)."""
    with _lock:
        found = _models.get(("inbox", connection, table))
        if found is None:
            namespace = {
                "__module__": __name__,
                "__tablename__": table,
                "__connection__": connection,
                # One row per (consumer, message): the unique constraint is what makes a second
                # delivery of the same message a no-op.
                "__unique_together__": [("consumer", "message_id")],
                "id": PrimaryKeyField(big=True),
                "consumer": StringField(max_length=100),
                "message_id": StringField(max_length=255),
                "topic": StringField(max_length=255, nullable=True),
                "processed_at": TimestampField(auto_now_add=True),
            }
            found = cast(type[ActiveRecord], ModelMeta(_camel(table), (ActiveRecord,), namespace))
            _models["inbox", connection, table] = found
        return found

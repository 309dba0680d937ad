"""activerecord: a sync-and-async ActiveRecord ORM for Python services, on SQLAlchemy Core.

>>> from activerecord import ActiveRecord, ConnectionManager, PrimaryKeyField, StringField
>>> ConnectionManager.configure({"default": {"driver": "sqlite"}})
>>> class User(ActiveRecord):
...     id: int = PrimaryKeyField()
...     name: str = StringField(max_length=100)
"""

from . import errors
from .connections.manager import ConnectionManager, ConnectionRegistry
from .connections.transaction import Transaction
from .engine.greenlets import allow_sync_in_event_loop
from .engine.operations import RawResult
from .errors import (
    ActiveRecordError,
    ConfigurationError,
    MigrationError,
    MigrationLockError,
    MultipleRecordsFound,
    QueryError,
    ReadOnlyError,
    RecordNotFound,
    RelationNotLoaded,
    SchemaDriftError,
    ShardQueryError,
    ShardWriteError,
    StaleObjectError,
    SyncInAsyncError,
    TransactionError,
    ValidationError,
)
from .model.base import ActiveRecord
from .model.fields import (
    BigIntegerField,
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    Field,
    FloatField,
    IntegerField,
    JSONField,
    PrimaryKeyField,
    StringField,
    TextField,
    TimestampField,
    UUIDField,
)
from .model.fields_extra import ForeignKeyField, SoftDeleteField, VersionField
from .model.hooks import HOOKS
from .model.ids import IdGenerator, generate_id, id_timestamp
from .model.registry import metadata_for, models_for
from .model.relations import BelongsTo, Collection, HasMany, HasOne, belongs_to, has_many, has_one
from .model.validators import validates
from .multidb.routing import RoutingScope
from .multidb.shards import ModuloShards, ShardDirectory, ShardResolver
from .query.all_shards import AllShardsQuery
from .query.pagination import Page
from .query.query import Query

__version__ = "0.1.0"

__all__ = [
    "HOOKS",
    "ActiveRecord",
    "ActiveRecordError",
    "AllShardsQuery",
    "BelongsTo",
    "BigIntegerField",
    "BooleanField",
    "Collection",
    "ConfigurationError",
    "ConnectionManager",
    "ConnectionRegistry",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "Field",
    "FloatField",
    "ForeignKeyField",
    "HasMany",
    "HasOne",
    "IdGenerator",
    "IntegerField",
    "JSONField",
    "MigrationError",
    "MigrationLockError",
    "ModuloShards",
    "MultipleRecordsFound",
    "Page",
    "PrimaryKeyField",
    "Query",
    "QueryError",
    "RawResult",
    "ReadOnlyError",
    "RecordNotFound",
    "RelationNotLoaded",
    "RoutingScope",
    "SchemaDriftError",
    "ShardDirectory",
    "ShardQueryError",
    "ShardResolver",
    "ShardWriteError",
    "SoftDeleteField",
    "StaleObjectError",
    "StringField",
    "SyncInAsyncError",
    "TextField",
    "TimestampField",
    "Transaction",
    "TransactionError",
    "UUIDField",
    "ValidationError",
    "VersionField",
    "allow_sync_in_event_loop",
    "belongs_to",
    "errors",
    "generate_id",
    "has_many",
    "has_one",
    "id_timestamp",
    "metadata_for",
    "models_for",
    "validates",
]

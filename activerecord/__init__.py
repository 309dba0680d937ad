"""activerecord: a sync-and-async ActiveRecord ORM for Python services, on SQLAlchemy Core.

>>> from activerecord import ActiveRecord, ConnectionManager, PrimaryKeyField, StringField
>>> ConnectionManager.configure({"default": {"driver": "sqlite"}})
>>> class User(ActiveRecord):
...     id: int = PrimaryKeyField()
...     name: str = StringField(max_length=100)
"""

from . import errors
from ._fields import (
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
from ._fields_extra import ForeignKeyField, SoftDeleteField, VersionField
from ._hooks import HOOKS
from ._ids import IdGenerator, generate_id, id_timestamp
from ._manager import ConnectionManager, ConnectionRegistry
from ._model import ActiveRecord
from ._operations import RawResult
from ._pagination import Page
from ._query import Query
from ._registry import metadata_for, models_for
from ._relations import BelongsTo, Collection, HasMany, HasOne, belongs_to, has_many, has_one
from ._routing import RoutingScope
from ._shard_query import AllShardsQuery
from ._shards import ModuloShards, ShardDirectory, ShardResolver
from ._transaction import Transaction
from ._validators import validates
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
    TransactionError,
    ValidationError,
)

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
    "TextField",
    "TimestampField",
    "Transaction",
    "TransactionError",
    "UUIDField",
    "ValidationError",
    "VersionField",
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

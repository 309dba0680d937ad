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
from ._ids import IdGenerator, generate_id, id_timestamp
from ._manager import ConnectionManager, ConnectionRegistry
from ._model import ActiveRecord
from ._operations import RawResult
from ._query import Query
from ._registry import metadata_for, models_for
from ._routing import RoutingScope
from ._shard_query import AllShardsQuery
from ._shards import ModuloShards, ShardDirectory, ShardResolver
from ._transaction import Transaction
from .errors import (
    ActiveRecordError,
    ConfigurationError,
    MigrationError,
    MigrationLockError,
    MultipleRecordsFound,
    QueryError,
    ReadOnlyError,
    RecordNotFound,
    SchemaDriftError,
    ShardQueryError,
    TransactionError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "ActiveRecord",
    "ActiveRecordError",
    "AllShardsQuery",
    "BigIntegerField",
    "BooleanField",
    "ConfigurationError",
    "ConnectionManager",
    "ConnectionRegistry",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "Field",
    "FloatField",
    "IdGenerator",
    "IntegerField",
    "JSONField",
    "MigrationError",
    "MigrationLockError",
    "ModuloShards",
    "MultipleRecordsFound",
    "PrimaryKeyField",
    "Query",
    "QueryError",
    "RawResult",
    "ReadOnlyError",
    "RecordNotFound",
    "RoutingScope",
    "SchemaDriftError",
    "ShardDirectory",
    "ShardQueryError",
    "ShardResolver",
    "StringField",
    "TextField",
    "TimestampField",
    "Transaction",
    "TransactionError",
    "UUIDField",
    "ValidationError",
    "errors",
    "generate_id",
    "id_timestamp",
    "metadata_for",
    "models_for",
]

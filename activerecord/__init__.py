"""activerecord: a sync-and-async ActiveRecord ORM for Python services, on SQLAlchemy Core.

>>> from activerecord import ActiveRecord, ConnectionManager, Field, PrimaryKeyField, StringField
>>> ConnectionManager.configure({"default": {"driver": "sqlite"}})
>>> class User(ActiveRecord):
...     id: Field[int] = PrimaryKeyField()
...     name: Field[str] = StringField(max_length=100)
"""

from . import errors
from .connections.manager import ConnectionManager
from .connections.retry import RetryAttempt, RetryPolicy
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
from .model.ids import IdGenerator, configure_ids, generate_id, id_timestamp
from .model.registry import metadata_for, models_for
from .model.relations import BelongsTo, Collection, HasMany, HasOne, belongs_to, has_many, has_one
from .model.validators import validates
from .multidb.routing import RoutingScope
from .multidb.shards import ModuloShards, ShardDirectory, ShardResolver
from .ops.endpoints import LivenessASGI, LivenessWSGI, ReadinessASGI, ReadinessWSGI
from .ops.health import HealthReport, HealthStatus, NodeHealth, PoolUsage
from .query.all_shards import AllShardsQuery
from .query.pagination import NumberedPage, Page
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
    "DateField",
    "DateTimeField",
    "DecimalField",
    "Field",
    "FloatField",
    "ForeignKeyField",
    "HasMany",
    "HasOne",
    "HealthReport",
    "HealthStatus",
    "IdGenerator",
    "IntegerField",
    "JSONField",
    "LivenessASGI",
    "LivenessWSGI",
    "MigrationError",
    "MigrationLockError",
    "ModuloShards",
    "MultipleRecordsFound",
    "NodeHealth",
    "NumberedPage",
    "Page",
    "PoolUsage",
    "PrimaryKeyField",
    "Query",
    "QueryError",
    "RawResult",
    "ReadOnlyError",
    "ReadinessASGI",
    "ReadinessWSGI",
    "RecordNotFound",
    "RelationNotLoaded",
    "RetryAttempt",
    "RetryPolicy",
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
    "configure_ids",
    "errors",
    "generate_id",
    "has_many",
    "has_one",
    "id_timestamp",
    "metadata_for",
    "models_for",
    "validates",
]

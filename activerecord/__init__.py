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
from ._manager import ConnectionManager, ConnectionRegistry
from ._model import ActiveRecord
from ._operations import RawResult
from ._query import Query
from ._registry import metadata_for, models_for
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
    TransactionError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "ActiveRecord",
    "ActiveRecordError",
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
    "IntegerField",
    "JSONField",
    "MigrationError",
    "MigrationLockError",
    "MultipleRecordsFound",
    "PrimaryKeyField",
    "Query",
    "QueryError",
    "RawResult",
    "ReadOnlyError",
    "RecordNotFound",
    "SchemaDriftError",
    "StringField",
    "TextField",
    "TimestampField",
    "Transaction",
    "TransactionError",
    "UUIDField",
    "ValidationError",
    "errors",
    "metadata_for",
    "models_for",
]

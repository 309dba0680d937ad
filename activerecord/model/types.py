"""Column types that need the same Python value on every backend.

SQLite and MySQL/MariaDB have no time zone in their DATETIME: aware values are stored as UTC
and come back aware (UTC), as PostgreSQL's ``timestamptz`` returns them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..dialects import BACKENDS, Backend, backend_for
from ..dialects.utc import naive_to_utc


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime: PostgreSQL ``timestamptz``; UTC in a plain DATETIME elsewhere."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(backend_for(dialect).datetime_type() or DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or backend_for(dialect).keeps_time_zone:
            return value
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            value = datetime.combine(value.date(), value.time())
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # `process_bind_param` and the backend type's processing in one function (written
        # values pass through here once per row): TypeDecorator would nest two calls.
        return backend_for(dialect).datetime_bind_processor(dialect, self.impl_instance.bind_processor(dialect))

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], datetime | None] | None:
        # One function per value instead of TypeDecorator's two nested calls: this runs for
        # every datetime of every row read. It keeps the backend type's own processing and does
        # exactly what `process_result_value` does.
        inner = self.impl_instance.result_processor(dialect, coltype)
        return backend_for(dialect).datetime_result_processor(dialect, coltype, inner)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite through some paths (raw text) returns ISO strings.
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = naive_to_utc(value)
        return value  # type: ignore[no-any-return]


def json_type() -> TypeEngine[Any]:
    """JSON everywhere, or the backend's own JSON type where it has a better one (PostgreSQL's
    JSONB, which indexes and compares)."""
    return _with_variants(JSON(none_as_null=True), lambda backend: backend.json_type())


def big_integer_type() -> TypeEngine[Any]:
    """BIGINT, or the backend's own 64-bit integer where BIGINT does not serve (SQLite's INTEGER)."""
    return _with_variants(BigInteger(), lambda backend: backend.big_integer_type())


def double_type() -> TypeEngine[Any]:
    """A double-precision float, in each backend's own spelling."""
    return _with_variants(Float(precision=53), lambda backend: backend.double_type())


def _with_variants(base: TypeEngine[Any], variant_of: Callable[[Backend], TypeEngine[Any] | None]) -> TypeEngine[Any]:
    result = base
    for backend in BACKENDS.values():
        variant = variant_of(backend)
        if variant is not None:
            result = result.with_variant(variant, backend.name)
    return result

"""Column types that need the same Python value on every backend.

SQLite and MySQL/MariaDB have no time zone in their DATETIME: aware values are stored as UTC
and come back aware (UTC), as PostgreSQL's ``timestamptz`` returns them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect, processors
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..dialects import mysql as _mysql
from ..dialects.utc import naive_to_utc, utc_text

#: PostgreSQL's type OID of ``timestamptz``: what psycopg and asyncpg report as a result column's type.
_TIMESTAMPTZ_OID = 1184


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime: PostgreSQL ``timestamptz``; UTC in a plain DATETIME elsewhere."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            # Microsecond precision, which MySQL's DATETIME drops by default.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or dialect.name == "postgresql":
            return value
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            value = datetime.combine(value.date(), value.time())
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # `process_bind_param` and the backend type's processing in one function (written
        # values pass through here once per row): TypeDecorator would nest two calls.
        inner = self.impl_instance.bind_processor(dialect)
        if dialect.name == "postgresql":
            return inner  # timestamptz takes aware values as they are
        if inner is None and getattr(dialect, _mysql.WRITES_UTC, False):
            return None  # the driver writes aware values as UTC text (see `_mysql`)
        utc = UTC
        combine = datetime.combine
        if dialect.name == "sqlite" and inner is not None:
            dt = datetime

            def process_sqlite(value: Any) -> Any:
                # The text SQLAlchemy's SQLite DATETIME writes, in UTC, at half the cost of its
                # processor; anything but a datetime goes to that processor.
                return utc_text(value) if value.__class__ is dt else inner(value)

            return process_sqlite

        def process(value: Any) -> Any:
            if value is not None and value.tzinfo is not None:
                # An aware value in UTC only drops its zone; any other is converted first.
                if value.tzinfo is not utc:
                    value = value.astimezone(utc)
                value = combine(value.date(), value.time())  # (see `naive_to_utc`)
            return value if inner is None else inner(value)

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], datetime | None] | None:
        # One function per value instead of TypeDecorator's two nested calls: this runs for
        # every datetime of every row read. It keeps the backend type's own processing
        # (``inner``) and does exactly what `process_result_value` does.
        inner = self.impl_instance.result_processor(dialect, coltype)
        if dialect.name == "postgresql" and coltype == _TIMESTAMPTZ_OID and inner is None:
            return None  # the driver returns timestamptz values aware: nothing to do per value
        if coltype == _mysql.DATETIME and inner is None and getattr(dialect, _mysql.READS_UTC, False):
            return None  # the driver decodes DATETIME to aware UTC values (see `_mysql`)
        utc = UTC
        parse = datetime.fromisoformat
        combine = datetime.combine

        if inner is None:

            def process(value: Any) -> datetime | None:
                if value is None:
                    return None
                if isinstance(value, str):
                    value = parse(value)
                if value.tzinfo is not None:
                    return value  # type: ignore[no-any-return]
                return combine(value.date(), value.time(), utc)  # (see `naive_to_utc`)

        else:

            def process(value: Any) -> datetime | None:
                if value is None:
                    return None
                value = inner(value)
                if isinstance(value, str):
                    value = parse(value)
                if value.tzinfo is not None:
                    return value  # type: ignore[no-any-return]
                return combine(value.date(), value.time(), utc)

        if inner is not processors.str_to_datetime:
            return process
        general = process

        def process_iso(value: Any) -> datetime | None:
            # SQLite's ISO text without an offset, parsed as UTC in one step: the same value as
            # parsing then ``replace(tzinfo=UTC)``, which costs several times the parse.
            if value.__class__ is str:
                try:
                    return parse(value + "+00:00")
                except ValueError:
                    pass  # it carries an offset already (or is no ISO text): the general path
            return general(value)

        return process_iso

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite through some paths (raw text) returns ISO strings.
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = naive_to_utc(value)
        return value  # type: ignore[no-any-return]


def json_type() -> TypeEngine[Any]:
    """JSON everywhere; JSONB on PostgreSQL, which indexes and compares."""
    return JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

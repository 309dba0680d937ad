"""MySQL/MariaDB driver settings: DATETIME values go to and come from the driver in UTC.

activerecord stores every datetime in a ``DATETIME`` column as UTC (see `_types.UTCDateTime`).
The drivers' own converters work with naive values, so every value had to be made naive before
a write and aware after a read, one Python call each; and PyMySQL's converters are themselves
Python: a regular expression to read a DATETIME (about 2 µs) and a ``str.format`` to write one
(about 1.5 µs). The converters here go in the driver's ``conv`` mapping (as Django's MySQL
backend does for mysqlclient): a DATETIME is read with its UTC offset in one C call, and an
aware datetime is written as its UTC text by one ``%`` format. The engine's dialect is marked
(`READS_UTC`, `WRITES_UTC`) so that `UTCDateTime` then adds no processing of its own; and it
reads FLOAT and DOUBLE columns as the drivers decode them (`_DriverFloat`). Bulk writes go out
1,000 rows at a time (`ROWS_PER_STATEMENT`), with or without these converters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import sqltypes

from .utc import naive_to_utc, utc_text

#: MySQL's type code of a DATETIME column in a result, as the drivers report it.
DATETIME = 12
#: MySQL's type codes of FLOAT and DOUBLE result columns.
_FLOAT_TYPES = frozenset((4, 5))

#: Set on the dialect of an engine whose connections read DATETIME as aware UTC values.
READS_UTC = "_ar_reads_utc_datetimes"
#: Set on the dialect of an engine whose connections write aware datetimes as UTC text.
WRITES_UTC = "_ar_writes_utc_datetimes"
#: Set on a dialect whose executemany goes out in pages: the most rows sent in one call.
ROWS_PER_STATEMENT = "_ar_rows_per_statement"

_parse = datetime.fromisoformat


def _decoder(fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def utc_datetime(text: Any) -> Any:
        if text.__class__ is not str:
            text = text.decode("ascii")
        try:
            return _parse(text + "+00:00")
        except ValueError:
            # What Python's parser refuses (zero dates such as '0000-00-00 00:00:00') gets
            # the driver's own treatment: such values come back as text, as they always did.
            value = fallback(text)
            return naive_to_utc(value) if isinstance(value, datetime) else value

    return utc_datetime


def _encode_datetime(value: datetime, mapping: Any = None) -> str:
    # The literal PyMySQL's own encoder writes, but in UTC for an aware value (PyMySQL would
    # write its wall-clock time and drop the zone).
    return "'" + utc_text(value) + "'"


def _conversions(driver: str) -> dict[Any, Any] | None:
    if driver not in ("pymysql", "asyncmy"):  # (asyncmy is a compiled port of PyMySQL's API)
        return None
    converters = importlib.import_module(f"{driver}.converters")
    conv: dict[Any, Any] = dict(converters.conversions)
    conv[DATETIME] = _decoder(converters.convert_datetime)
    conv[datetime] = _encode_datetime
    return conv


class _DriverFloat(mysql.FLOAT):
    """SQLAlchemy's MySQL float, minus the per-value ``float()`` where the driver made floats.

    SQLAlchemy converts every value of a float-typed result column with ``float()``, because
    on MySQL such a column may hold DECIMAL values (an expression labelled a float). PyMySQL's
    and asyncmy's own converters already return ``float`` for FLOAT and DOUBLE columns: for
    those the conversion is skipped; any other column (a DECIMAL) is converted as before.
    """

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if coltype in _FLOAT_TYPES:
            return None
        return super().result_processor(dialect, coltype)  # type: ignore[no-untyped-call,no-any-return]


def _page_inserts(dialect: Dialect) -> None:
    # The drivers' executemany packs rows into INSERT statements of up to 1 MB. Measured on
    # MariaDB 10.11: after one 650 KB INSERT (10,000 rows), reading 10,000 rows on that same
    # connection took 0.80-0.84 µs a row, against 0.46-0.55 after the same rows sent 1,000 at
    # a time, which inserted no slower. 1,000 is SQLAlchemy's own page size for multi-row
    # INSERT ... RETURNING.
    setattr(dialect, ROWS_PER_STATEMENT, 1000)


def _set_up(dialect: Dialect) -> None:
    _page_inserts(dialect)
    for mark in (READS_UTC, WRITES_UTC):
        setattr(dialect, mark, True)
    # On this engine's dialect only (an instance attribute over the class's mapping).
    dialect.colspecs = {**dialect.colspecs, sqltypes.Float: _DriverFloat}


def engine_options(options: Mapping[str, Any], driver: str) -> tuple[dict[str, Any], Callable[[Dialect], None]]:
    """``options`` with the converters of this module added to the driver's ``connect_args``,
    and the set-up for the engine's dialect: executemany sent in pages of `ROWS_PER_STATEMENT`
    rows, and, with the converters (PyMySQL, asyncmy, and no ``conv`` of the caller's own), the
    `READS_UTC` and `WRITES_UTC` marks and floats read as the driver made them."""
    connect_args = dict(options.get("connect_args") or {})
    conv = None if "conv" in connect_args else _conversions(driver)
    if conv is None:
        return dict(options), _page_inserts
    connect_args["conv"] = conv
    return {**options, "connect_args": connect_args}, _set_up

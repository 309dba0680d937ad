"""MySQL/MariaDB driver settings: DATETIME read straight into aware UTC datetimes.

activerecord stores every datetime in a ``DATETIME`` column as UTC (see `_types.UTCDateTime`).
The drivers' own decoders return naive values, which then had to be made aware one by one in
Python, and PyMySQL's decoder is itself a regular expression in Python (about 2 µs per value).
Given this decoder instead (the driver's ``conv``, as Django does for mysqlclient), a DATETIME
is parsed with its UTC offset in one C call and needs no further processing; the engine's
dialect is marked so that `UTCDateTime` installs no result processor for such columns.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

#: MySQL's type code of a DATETIME column in a result, as the drivers report it.
DATETIME = 12

#: The attribute set on an engine's dialect whose connections decode DATETIME with `utc_datetime`.
MARK = "_ar_utc_datetimes"

_parse = datetime.fromisoformat


def _decoder(fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    combine = datetime.combine

    def utc_datetime(text: Any) -> Any:
        if text.__class__ is not str:
            text = text.decode("ascii")
        try:
            return _parse(text + "+00:00")
        except ValueError:
            # What Python's parser refuses (zero dates such as '0000-00-00 00:00:00') gets
            # the driver's own treatment: such values come back as text, as they always did.
            value = fallback(text)
            return combine(value.date(), value.time(), UTC) if isinstance(value, datetime) else value

    return utc_datetime


def _conversions(driver: str) -> dict[Any, Any] | None:
    if driver not in ("pymysql", "asyncmy"):  # (asyncmy is a compiled port of PyMySQL's API)
        return None
    converters = importlib.import_module(f"{driver}.converters")
    conv: dict[Any, Any] = dict(converters.conversions)
    conv[DATETIME] = _decoder(converters.convert_datetime)
    return conv


def engine_options(options: Mapping[str, Any], driver: str) -> tuple[dict[str, Any], bool]:
    """``options`` with the DATETIME decoder added to the driver's ``connect_args``, and whether
    it was (not for other drivers, nor when the caller passes a ``conv`` of their own)."""
    connect_args = dict(options.get("connect_args") or {})
    conv = None if "conv" in connect_args else _conversions(driver)
    if conv is None:
        return dict(options), False
    connect_args["conv"] = conv
    return {**options, "connect_args": connect_args}, True

"""Events as the event store takes and returns them, and the registry that upcasts old payloads.

An event type's payload may change shape over time. The registry knows each type's current
schema version and one upcaster per older version (version n's payload in, version n+1's out):
the store writes new events at the current version and reads old ones through the chain, so
the code that consumes events only ever sees the current shape. Stored rows are never rewritten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError

Upcaster = Callable[[Any], Any]


@dataclass(frozen=True)
class NewEvent:
    """An event to append: its ``type``, a JSON-serializable ``data`` payload, optional string
    ``metadata`` (correlation ids and the like) and, optionally, its own ``id`` (a UUID string;
    one is generated when None)."""

    type: str
    data: Any = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: its global ``position`` (commit order over the whole store), its
    ``version`` within ``stream_id`` (1, 2, ... without gaps), and its payload upcast to the
    current ``schema_version`` of its type."""

    position: int
    stream_id: str
    version: int
    type: str
    data: Any
    metadata: dict[str, str]
    id: str
    recorded_at: dt.datetime
    schema_version: int


@dataclass(frozen=True)
class Snapshot:
    """The state of a stream as of ``version``, saved so that loading it replays only the events after."""

    stream_id: str
    version: int
    state: Any
    taken_at: dt.datetime


class EventRegistry:
    """Event types, their current schema versions and the upcasters from older ones.

    >>> registry = EventRegistry()
    >>> registry.register("OrderPlaced", version=2)
    >>> @registry.upcaster("OrderPlaced", from_version=1)
    ... def add_currency(data):
    ...     return {**data, "currency": "EUR"}
    >>> registry.upcast("OrderPlaced", 1, {"total": 5})
    ({'total': 5, 'currency': 'EUR'}, 2)

    A type that was never registered is at version 1 and read as stored.
    """

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def __repr__(self) -> str:
        return f"EventRegistry({self._versions!r})"

    def register(self, type: str, *, version: int = 1) -> None:
        """Declare ``type`` at schema ``version`` (new events are written at it)."""
        if not isinstance(type, str) or not type or len(type) > 255:
            raise ConfigurationError(f"event type {type!r}: a non-empty string of at most 255 characters")
        if not isinstance(version, int) or version < 1:
            raise ConfigurationError(f"event type {type!r}: version must be an int of at least 1")
        self._versions[type] = version

    def upcaster(self, type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """A decorator: the function turns a ``from_version`` payload of ``type`` into a
        ``from_version + 1`` one."""
        if from_version < 1:
            raise ConfigurationError("from_version must be at least 1")

        def register(function: Upcaster) -> Upcaster:
            self._upcasters[type, from_version] = function
            return function

        return register

    def version(self, type: str) -> int:
        """The current schema version of ``type`` (1 if it was never registered)."""
        return self._versions.get(type, 1)

    def upcast(self, type: str, version: int, data: Any) -> tuple[Any, int]:
        """``data`` stored at ``version``, upcast to the current version; with that version."""
        current = self.version(type)
        while version < current:
            function = self._upcasters.get((type, version))
            if function is None:
                raise ConfigurationError(f"event type {type!r}: no upcaster from version {version} to {version + 1}")
            data = function(data)
            version += 1
        return data, version

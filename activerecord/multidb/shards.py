"""Shard resolvers: which shard of a group holds a key.

A model on a shard group names one as ``__shard_resolver__``: `ModuloShards` (the default), a
`ShardDirectory`, or any callable ``key -> shard name`` (wrapped by `as_resolver`). Which model
and which query go where is decided above this layer, in `activerecord.query.targets`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..errors import QueryError


@runtime_checkable
class ShardResolver(Protocol):
    """Anything with ``resolve(key, shards) -> shard name``."""

    def resolve(self, key: Any, shards: Sequence[str]) -> str:
        """The shard (one of ``shards``, in configured order) that holds ``key``."""
        ...


class ModuloShards:
    """``shards[key % len(shards)]``: integers directly, other keys through CRC-32 of their text.

    With shards configured as ``user_shard_0`` .. ``user_shard_3`` this is the classic
    ``user_shard_{user_id % 4}``.
    """

    def __repr__(self) -> str:
        return "ModuloShards()"

    def resolve(self, key: Any, shards: Sequence[str]) -> str:
        """The shard for ``key``."""
        if isinstance(key, bool):
            raise QueryError("a shard key cannot be a bool")
        number = key if isinstance(key, int) else zlib.crc32(str(key).encode())
        return shards[number % len(shards)]


class ShardDirectory:
    """Shards looked up in a directory: a mapping ``key -> shard`` or a callable doing the lookup.

    >>> ShardDirectory({"acme": "tenant_shard_1", "globex": "tenant_shard_0"})
    """

    def __init__(self, lookup: Mapping[Any, str] | Callable[[Any], str]) -> None:
        self._lookup = lookup

    def __repr__(self) -> str:
        return f"ShardDirectory({self._lookup!r})"

    def resolve(self, key: Any, shards: Sequence[str]) -> str:
        """The shard the directory names for ``key``."""
        try:
            if isinstance(self._lookup, Mapping):
                return self._lookup[key]
            return self._lookup(key)
        except KeyError:
            raise QueryError(f"the shard directory has no entry for key {key!r}") from None


class _CallableResolver:
    def __init__(self, fn: Callable[[Any], str]) -> None:
        self._fn = fn

    def resolve(self, key: Any, shards: Sequence[str]) -> str:
        return self._fn(key)


def as_resolver(found: ShardResolver | Callable[[Any], str]) -> ShardResolver:
    """``found`` as a resolver: a resolver as it is, a plain callable wrapped."""
    if isinstance(found, ShardResolver):
        return found
    return _CallableResolver(found)

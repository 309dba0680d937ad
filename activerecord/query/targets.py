"""Which shard a record or a query belongs to: the model's shard key and resolver.

A model on a shard group declares ``__shard_key__`` (a field name) and optionally
``__shard_resolver__`` (see `activerecord.multidb.shards`). A query routes itself when its
conditions pin the key with ``==``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from ..connections.manager import ConnectionManager
from ..errors import ConfigurationError, QueryError
from ..multidb.routing import Target
from ..multidb.shards import ModuloShards, ShardResolver, as_resolver

_MODULO = ModuloShards()


def shard_key(model: Any) -> str:
    """The shard key field of ``model``; `ConfigurationError` when it declares none."""
    key = getattr(model, "__shard_key__", None)
    if key is None:
        raise ConfigurationError(
            f"{model.__name__} lives on shard group {model.__connection__!r} but declares no __shard_key__"
        )
    if key not in model.__table__.c:
        raise ConfigurationError(f"{model.__name__}.__shard_key__ names no field: {key!r}")
    return str(key)


def resolver(model: Any) -> ShardResolver:
    """The resolver of ``model``: its ``__shard_resolver__`` or `ModuloShards`."""
    found = getattr(model, "__shard_resolver__", None)
    if found is None:
        return _MODULO
    if isinstance(found, ShardResolver) or callable(found):
        return as_resolver(found)
    raise ConfigurationError(f"{model.__name__}.__shard_resolver__ must be a resolver or a callable")


def shard_for(model: Any, group: str, key: Any) -> str:
    """The shard of ``group`` holding the ``model`` record whose shard key is ``key``."""
    if key is None:
        raise QueryError(
            f"{model.__name__} is sharded by {shard_key(model)!r}: set it before saving "
            "(generate_id() makes one), or pass using="
        )
    shards = ConnectionManager.shards(group)
    shard = resolver(model).resolve(key, shards)
    if shard not in shards:
        raise QueryError(f"the resolver of {model.__name__} chose {shard!r}, not a shard of {group!r}")
    return shard


def _pinned_key(table: Any, key: str, where: Iterable[Any]) -> tuple[bool, Any]:
    column = table.c[key]
    for condition in where:
        if isinstance(condition, BinaryExpression) and condition.operator is operators.eq:
            left, right = condition.left, condition.right
            if isinstance(right, Column) and right is column:
                left, right = right, left
            if left is column and isinstance(right, BindParameter):
                return True, right.effective_value
    return False, None


def query_target(model: Any, using: str | None, role: str | None, where: Sequence[Any]) -> str:
    """The connection a query runs on, carrying its routing hint.

    A query on a shard group must pin the model's shard key (``where(id=5)``,
    ``find_by_id(5)``) or name a shard with ``using()``; `QueryError` otherwise.
    """
    name = using or model.__connection__
    if ConnectionManager.is_shard_group(name):
        key = shard_key(model)
        found, value = _pinned_key(model.__table__, key, where)
        if not found:
            raise QueryError(
                f"{model.__name__} is sharded by {key!r}: pin it with where({key}=...), pick a shard "
                "with using(), or query every shard with on_all_shards()"
            )
        name = shard_for(model, name, value)
    return Target(name, role) if role is not None else name


def record_connection(record: Any) -> str:
    """The connection a record is written to: its model's, or for a sharded model its key's shard."""
    model = type(record)
    name: str = model.__connection__
    if ConnectionManager.is_shard_group(name):
        return shard_for(model, name, getattr(record, shard_key(model)))
    return name

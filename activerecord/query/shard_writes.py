"""Writes that span the shards of a group: bulk inserts split by shard key, schema made on each shard.

A bulk insert on a sharded model is planned first (every row's shard found, every problem
reported before any SQL), then run as one executemany per shard, each in its own transaction:
shards are separate databases, so there is no transaction spanning them. A failure on one shard
leaves the others' rows committed; `ShardWriteError` says which. The shards are written
concurrently: sync on the thread pool of `fanout`, async gathered; only that executor exists twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table

from ..connections import execute as _execute
from ..connections.manager import ConnectionManager
from ..engine import operations as _operations
from ..errors import QueryError, ShardWriteError, ValidationError
from . import fanout as _fanout
from . import targets as _targets


@dataclass
class ShardBatch:
    """The rows one shard receives: their positions in the caller's input and their values."""

    shard: str
    positions: list[int] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)


def group_of(model: Any, using: str | None) -> str | None:
    """The shard group a bulk insert of ``model`` spans, or None when it goes to one connection.

    ``using`` naming a group means that group; naming anything else (a shard, another
    connection) means that connection, but a shard of the model's own group is still checked
    by `plan` so no row lands on a shard its key does not resolve to.
    """
    own: str = model.__connection__
    if using is not None:
        if ConnectionManager.is_shard_group(using):
            return using
        if ConnectionManager.is_shard_group(own) and using in ConnectionManager.shards(own):
            return own
        return None
    return own if ConnectionManager.is_shard_group(own) else None


def split(model: Any, using: str | None, values: Sequence[dict[str, Any]]) -> list[ShardBatch] | None:
    """The shard batches of a bulk insert of ``model`` (`plan`), or None when it goes to one connection."""
    group = group_of(model, using)
    if group is None:
        return None
    return plan(model, group, values, None if using in (None, group) else using)


def plan(model: Any, group: str, values: Sequence[dict[str, Any]], pinned: str | None) -> list[ShardBatch]:
    """Split validated rows by shard, in the group's shard order; no SQL runs.

    A row without its shard key (or with a key the resolver cannot place) is a
    `ValidationError` naming the row; with ``pinned`` (``using=`` a shard), a row whose key
    resolves elsewhere is a `QueryError` naming the row and both shards.
    """
    key = _targets.shard_key(model)
    errors: dict[str, list[str]] = {}
    misplaced: list[str] = []
    batches: dict[str, ShardBatch] = {s: ShardBatch(s) for s in ConnectionManager.shards(group)}
    for i, row in enumerate(values):
        value = row.get(key)
        if value is None:
            errors[f"rows[{i}].{key}"] = [f"the shard key is missing: {model.__name__} is sharded by {key!r}"]
            continue
        try:
            shard = _targets.shard_for(model, group, value)
        except QueryError as exc:
            errors[f"rows[{i}].{key}"] = [str(exc)]
            continue
        if pinned is not None and shard != pinned:
            misplaced.append(f"rows[{i}] ({key}={value!r}) belongs on {shard}")
            continue
        batch = batches[shard]
        batch.positions.append(i)
        batch.values.append(row)
    if errors:
        raise ValidationError(model.__name__, errors)
    if misplaced:
        raise QueryError(
            f"insert_many(using={pinned!r}): every row must resolve to that shard, but " + "; ".join(misplaced)
        )
    return [b for b in batches.values() if b.values]


Done = Callable[[list[int], list[Any] | None], None]


def insert(table: Table, pk: str | None, batches: list[ShardBatch], done: Done) -> None:
    """One executemany per shard, the shards concurrently, each committed by itself; every shard is tried.

    ``done(positions, pks)`` is told about each shard that committed, so its records are marked
    saved even when another shard fails.
    """
    by_shard = {b.shard: b for b in batches}

    def write(shard: str) -> list[Any] | None:
        return _execute.run(shard, True, _operations.insert_many, table, by_shard[shard].values, pk)

    _report(batches, _fanout.each(list(by_shard), write), done)


async def ainsert(table: Table, pk: str | None, batches: list[ShardBatch], done: Done) -> None:
    """`insert` with the shards written concurrently (the plan and the report are shared)."""
    outcomes = await asyncio.gather(
        *(_execute.arun(b.shard, True, _operations.insert_many, table, b.values, pk) for b in batches),
        return_exceptions=True,
    )
    _report(batches, outcomes, done)


def _report(batches: list[ShardBatch], outcomes: Sequence[Any], done: Done) -> None:
    """Mark each committed shard's records saved; raise `ShardWriteError` naming the failed ones."""
    errors: dict[str, BaseException] = {}
    committed: list[str] = []
    for batch, outcome in zip(batches, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not a shard's failure
            errors[batch.shard] = outcome
            continue
        done(batch.positions, outcome)
        committed.append(batch.shard)
    if not errors:
        return
    saved = sorted(p for b in batches if b.shard in committed for p in b.positions)
    raise ShardWriteError(errors, committed, saved) from next(iter(errors.values()))


def on_each_shard(group: str, op: Callable[[Connection, list[Table]], None], tables: list[Table]) -> None:
    """Run the DDL ``op`` on every shard's primary, the shards concurrently.

    Every shard is tried; the first failure in shard order is raised once all have finished.
    """
    shards = [shard for shard, _node in ConnectionManager.primary_nodes(group)]
    _raise_first(_fanout.each(shards, lambda shard: _execute.run(shard, True, op, tables)))


def _raise_first(outcomes: Sequence[Any]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome  # cancellation and the like first: they are not a shard's failure
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome

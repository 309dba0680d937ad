"""Eager loading and relation joins: the relation trees of ``includes()``, ``joins()``,
``load()`` and ``preload()``, run as IN-batched queries written once as sync code on a
`Connection`.

It works on relations through the small `EagerRelation` protocol (the relation classes of the
model layer implement it), so the query layer never imports the models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, FromClause, Row, Select

from ..errors import QueryError

# Keys per IN list: far below every backend's bound-parameter limit (SQLite 32766, PostgreSQL
# 65535), so a preload is one query per relation for up to this many parents.
IN_BATCH = 10_000

Tree = Mapping[str, "Tree"]
"""Relation names to load, each with the names to load on its targets: ``{"items": {"product": {}}}``."""


class EagerRelation(Protocol):
    """What eager loading needs of a relation between two models."""

    @property
    def name(self) -> str:
        """The relation's attribute name on its owner model."""

    @property
    def to_many(self) -> bool:
        """Whether it reaches any number of target records (else at most one)."""

    @property
    def target(self) -> Any:
        """The target model class (known once the relation is resolved)."""

    def ensure(self) -> EagerRelation:
        """The relation, resolved; `ConfigurationError` when its target cannot be found."""

    def join_steps(
        self, source: FromClause, target: FromClause | None = None
    ) -> list[tuple[FromClause, ColumnElement[bool]]]:
        """The (table, ON clause) pairs that join ``source`` (the owner's table) to ``target``."""

    def load_into(self, conn: Connection, records: list[Any]) -> list[Any]:
        """Load the relation for ``records`` (IN-batched, see `in_batches`); the targets loaded."""

    def attach(self, record: Any, value: Any) -> None:
        """Store ``value`` as the loaded relation of ``record``."""


def in_batches(conn: Connection, stmt: Select[Any], column: Any, keys: Sequence[Any]) -> Iterator[Row[Any]]:
    """The rows of ``stmt`` whose ``column`` is one of ``keys``: one query per `IN_BATCH` keys."""
    for start in range(0, len(keys), IN_BATCH):
        yield from conn.execute(stmt.where(column.in_(keys[start : start + IN_BATCH])))


def live(model: Any, table: FromClause | None = None) -> tuple[ColumnElement[bool], ...]:
    """The default-scope conditions of ``model`` (soft-deleted rows hidden), on ``table``."""
    soft = model._ar_soft
    if soft is None:
        return ()
    source = model.__table__ if table is None else table
    return (source.c[soft].is_(None),)


def relation(model: Any, name: str) -> EagerRelation:
    """The relation ``name`` of ``model``, resolved; `QueryError` naming the known ones if none."""
    rel: EagerRelation | None = model._ar_relations.get(name)
    if rel is None:
        known = ", ".join(model._ar_relations) or "none"
        raise QueryError(f"{model.__name__} has no relation {name!r} (relations: {known})")
    return rel.ensure()


def relation_chain(model: Any, path: str) -> list[EagerRelation]:
    """The relations along ``path`` (``"items.product"``), checked."""
    chain = []
    current = model
    for part in path.split("."):
        rel = relation(current, part)
        chain.append(rel)
        current = rel.target
    return chain


def parse_paths(model: Any, paths: Sequence[str]) -> dict[str, Any]:
    """``("items", "items.product")`` as a tree, every name checked against the relations."""
    tree: dict[str, Any] = {}
    for path in paths:
        if not isinstance(path, str) or not path:
            raise QueryError(f"includes() takes relation names such as 'items' or 'items.product', not {path!r}")
        node = tree
        for rel in relation_chain(model, path):
            node = node.setdefault(rel.name, {})
    return tree


def merge(into: dict[str, Any], tree: Tree) -> dict[str, Any]:
    """``into`` with the paths of ``tree`` added."""
    for name, sub in tree.items():
        into[name] = merge(dict(into.get(name, {})), sub)
    return into


def preload(conn: Connection, records: list[Any], tree: Tree) -> None:
    """Load the relations in ``tree`` for ``records``: one query per relation, however many records."""
    if not records:
        return
    model = type(records[0])
    for name, sub in tree.items():
        loaded = relation(model, name).load_into(conn, records)
        if sub and loaded:
            preload(conn, loaded, sub)


def _records_of(result: Any) -> list[Any]:
    if isinstance(result, list):
        return result
    return [] if result is None else [result]


def with_preload(op: Callable[..., Any], tree: Tree) -> Callable[..., Any]:
    """``op`` (a fetch of `engine.operations`) followed by the preloads, on the same connection."""

    def run(conn: Connection, *args: Any) -> Any:
        result = op(conn, *args)
        preload(conn, _records_of(result), tree)
        return result

    return run


def join_loader(
    model: Any, base: Callable[[Any], Any], relations: Sequence[EagerRelation], using: str | None
) -> Callable[[Any], Any]:
    """A row loader for a select that carries, after the model's columns, those of to-one targets."""
    width = len(model._ar_names)
    spans = []
    start = width
    for rel in relations:
        target = rel.target
        end = start + len(target._ar_names)
        spans.append((rel, start, end, start + target._ar_names.index(target._ar_pk), target._ar_loader(using)))
        start = end

    def load(row: Any) -> Any:
        obj = base(row[:width])
        for rel, s, e, pk_at, target_load in spans:
            rel.attach(obj, None if row[pk_at] is None else target_load(row[s:e]))
        return obj

    return load


def join_from(model: Any, source: FromClause, paths: Sequence[tuple[str, bool]]) -> FromClause:
    """``source`` joined along each relation path (``(path, outer)``) to the real target tables."""
    joined = source
    seen: set[str] = set()
    for path, outer in paths:
        current = model.__table__
        for rel in relation_chain(model, path):
            for table, on in rel.join_steps(current):
                key = getattr(table, "name", "")
                if key not in seen:
                    joined = joined.join(table, on, isouter=outer)
                    seen.add(key)
                current = table
            current = rel.target.__table__
    return joined


def include_joins(model: Any, source: FromClause, relations: Sequence[EagerRelation]) -> tuple[FromClause, list[Any]]:
    """LEFT OUTER JOINs to aliased to-one targets for ``includes(..., strategy="join")``."""
    joined = source
    columns: list[Any] = []
    for rel in relations:
        alias = rel.target.__table__.alias(f"_ar_{rel.name}")
        for table, on in rel.join_steps(model.__table__, alias):
            joined = joined.outerjoin(table, on.__and__(*live(rel.target, alias)) if rel.target._ar_soft else on)
        columns.extend(alias.c)
    return joined, columns


__all__ = [
    "IN_BATCH",
    "EagerRelation",
    "Tree",
    "in_batches",
    "include_joins",
    "join_from",
    "join_loader",
    "live",
    "merge",
    "parse_paths",
    "preload",
    "relation",
    "relation_chain",
    "with_preload",
]

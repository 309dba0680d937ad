"""What a model class may opt into (relations, hooks, validators, lock version, soft delete),
found once when the class is declared, and the record methods that go with them.

Each feature sets class attributes that the hot paths test with one lookup; a model that uses
none of them keeps the defaults below and runs the plain code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

from sqlalchemy import bindparam

from ..connections import execute as _execute
from ..engine.greenlets import run_in_greenlet
from ..errors import ConfigurationError, QueryError, UnknownFieldError
from ..query import eager as _eager
from ..query import upsert as _upsert
from ..query.base import Extras
from . import bulk as _bulk
from . import hooks as _hooks
from . import relations as _relations
from . import validators as _validators
from .fields import Field
from .fields_extra import _SoftDeleteField, _VersionField
from .state import RecordState


def precheck(cls: Any, fields: Mapping[str, Field[Any]]) -> None:
    """Refuse, before the table is built, relations and foreign keys that cross connections."""
    conn = cls.__connection__
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if isinstance(value, _relations.Relation):
                for role, ref in (("target", value._target_ref), ("join model", value._through_ref)):
                    if ref is not None and not isinstance(ref, str) and ref.__connection__ != conn:
                        raise _relations.crossing(cls, name, role, ref)
    _relations.check_foreign_keys(cls.__name__, conn, fields)


def _one(cls: Any, kind: type[Field[Any]], label: str) -> str | None:
    names = [n for n, f in cls.__fields__.items() if isinstance(f, kind)]
    if len(names) > 1:
        raise ConfigurationError(
            f"{cls.__name__} declares {len(names)} {label} fields ({', '.join(names)}); one at most"
        )
    return names[0] if names else None


def setup(cls: Any) -> None:
    """Find the features ``cls`` uses and set the flags the model's hot paths test."""
    cls._ar_relations = _relations.install(cls)
    _relations.model_declared(cls)
    cls._ar_hooks, cls._ar_async_hooks = _hooks.hooks_of(cls)
    cls._ar_checks = _validators.collect(cls)
    cls._ar_version = version = _one(cls, _VersionField, "VersionField")
    cls._ar_soft = soft = _one(cls, _SoftDeleteField, "SoftDeleteField")
    cls._ar_lifecycle = bool(cls._ar_hooks or version or soft)
    cls._ar_default_ext = Extras(scope="live") if soft else None
    if version is not None:
        table = cls.__table__
        cls._ar_update_versioned = table.update().where(
            table.c[cls._ar_pk] == bindparam("_ar_pk"), table.c[version] == bindparam("_ar_version")
        )


def assign_relations(record: Any, values: dict[str, Any]) -> None:
    """Constructor keywords naming ``belongs_to`` relations: ``Order(customer=ada)``."""
    relations = type(record)._ar_relations
    unknown = [k for k in values if not isinstance(relations.get(k), _relations.BelongsTo)]
    if unknown:
        raise UnknownFieldError(type(record).__name__, {k: ["unknown field"] for k in unknown})
    for name, value in values.items():
        setattr(record, name, value)


class Features(RecordState):
    """Record and model methods of the optional features, inherited by `ActiveRecord`."""

    __slots__ = ()

    # The defaults for a model that uses no optional feature (see `setup`).
    _ar_relations: ClassVar[dict[str, _relations.Relation[Any]]] = {}
    _ar_hooks: ClassVar[frozenset[str]] = frozenset()
    _ar_async_hooks: ClassVar[frozenset[str]] = frozenset()
    _ar_checks: ClassVar[tuple[tuple[tuple[str, ...], str], ...]] = ()
    _ar_version: ClassVar[str | None] = None
    _ar_soft: ClassVar[str | None] = None
    _ar_lifecycle: ClassVar[bool] = False
    _ar_default_ext: ClassVar[Extras | None] = None
    _ar_update_versioned: ClassVar[Any]

    # -- relations ----------------------------------------------------------------------------

    def load(self, *paths: str) -> Self:
        """Load relations of this record now (one query per relation): ``order.load("items")``."""
        tree = _eager.parse_paths(type(self), paths)
        _execute.run(self._ar_connection(None), False, _eager.preload, [self], tree)
        return self

    async def aload(self, *paths: str) -> Self:
        """`load` (async): the way to read a relation that was not included in the query.

        >>> order = await Order.find_by_id(1).aone()
        >>> await order.aload("items", "items.product")
        """
        tree = _eager.parse_paths(type(self), paths)
        await _execute.arun(self._ar_connection(None), False, _eager.preload, [self], tree)
        return self

    @classmethod
    def preload(cls, records: Sequence[Self], *paths: str, using: str | None = None) -> None:
        """Load relations for records fetched elsewhere: one query per relation for all of them.

        They are read on ``using``, or on the connection the first record came from.
        """
        tree = _eager.parse_paths(cls, paths)
        if records:
            name = using or records[0]._ar_connection(None)
            _execute.run(name, False, _eager.preload, list(records), tree)

    @classmethod
    async def apreload(cls, records: Sequence[Self], *paths: str, using: str | None = None) -> None:
        """`preload` (async)."""
        tree = _eager.parse_paths(cls, paths)
        if records:
            name = using or records[0]._ar_connection(None)
            await _execute.arun(name, False, _eager.preload, list(records), tree)

    # -- soft delete --------------------------------------------------------------------------

    def _ar_soft_field(self) -> str:
        soft = type(self)._ar_soft
        if soft is None:
            raise QueryError(f"{type(self).__name__} has no SoftDeleteField")
        return soft

    @property
    def is_deleted(self) -> bool:
        """True once a soft-delete model's record was soft-deleted (False for other models)."""
        soft = type(self)._ar_soft
        return soft is not None and self.__dict__[soft] is not None

    def restore(self, *, using: str | None = None) -> Self:
        """Bring a soft-deleted record back (clears its deletion time and saves)."""
        self.__dict__[self._ar_soft_field()] = None
        return self.save(using=using)  # type: ignore[attr-defined,no-any-return]

    async def arestore(self, *, using: str | None = None) -> Self:
        """`restore` (async)."""
        self.__dict__[self._ar_soft_field()] = None
        return await self.asave(using=using)  # type: ignore[attr-defined,no-any-return]

    def hard_delete(self, *, using: str | None = None) -> bool:
        """Delete a soft-delete model's row for good (hooks run as for ``delete``)."""
        self._ar_soft_field()
        return _hooks.delete(self, using, hard=True)

    async def ahard_delete(self, *, using: str | None = None) -> bool:
        """`hard_delete` (async): the same code, through the greenlet bridge."""
        return await run_in_greenlet(self.hard_delete, using=using)

    # -- upsert -------------------------------------------------------------------------------

    @classmethod
    def _ar_upsert_args(
        cls, rows: Iterable[Any], conflict: Sequence[str], update: Sequence[str] | None
    ) -> tuple[list[dict[str, Any]], list[str], list[str]]:
        model: Any = cls
        if isinstance(conflict, str) or not conflict:
            raise QueryError("upsert() needs conflict=[field names] of a unique key or the primary key")
        unknown = [c for c in [*conflict, *(update or ())] if c not in model.__fields__]
        if unknown:
            raise UnknownFieldError(model.__name__, {c: ["unknown field"] for c in unknown})
        values = _bulk.insert_values(model, rows)
        if not values:
            return [], list(conflict), []
        given = list(values[0])
        if update is None:
            keep = {model._ar_pk, *conflict, *(n for n in model._ar_auto_add if n not in model._ar_auto_now)}
            update = [n for n in given if n not in keep]
        return values, list(conflict), list(update)

    @classmethod
    def upsert(
        cls,
        rows: Iterable[Mapping[str, Any] | Self],
        *,
        conflict: Sequence[str],
        update: Sequence[str] | None = None,
        using: str | None = None,
    ) -> None:
        """Insert ``rows``; where one collides on the ``conflict`` key, update its ``update`` fields.

        ``update`` defaults to every given field except the key, the primary key and
        ``auto_now_add`` timestamps; ``update=[]`` leaves existing rows as they are. Rows are
        validated first (nothing is written if any is invalid); hooks do not run.

        >>> Stock.upsert([{"sku": "a-1", "qty": 5}], conflict=["sku"], update=["qty"])
        """
        values, keys, changes = cls._ar_upsert_args(rows, conflict, update)
        if values:
            model: Any = cls
            _execute.run(
                using or model.__connection__,
                True,
                _upsert.upsert,
                model.__table__,
                values,
                keys,
                changes,
                model._ar_pk,
            )

    @classmethod
    async def aupsert(
        cls,
        rows: Iterable[Mapping[str, Any] | Self],
        *,
        conflict: Sequence[str],
        update: Sequence[str] | None = None,
        using: str | None = None,
    ) -> None:
        """`upsert` (async): the same code, through the greenlet bridge."""
        await run_in_greenlet(cls.upsert, rows, conflict=conflict, update=update, using=using)


__all__ = ["Features"]

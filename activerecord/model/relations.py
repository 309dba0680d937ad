"""Relations between models: ``belongs_to``, ``has_many``, ``has_one`` and many-to-many through a
join model. Each loads itself for many records at once (`Relation.load_into`); the eager loading
built on that is in `activerecord.query.eager`.

A relation is a descriptor on the model class. Loaded values live in the record's
``_ar_loaded`` slot (see `RecordState`) under the relation's name. Sync code running outside an
event loop may load a relation lazily on first access; anywhere an event loop runs, an unloaded
relation raises `RelationNotLoaded`, because a blocking load there would be hidden I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from sqlalchemy import ColumnElement, Connection, FromClause, Select, select

from ..connections import execute as _execute
from ..connections import transaction as _transaction
from ..errors import ConfigurationError, MissingPrimaryKeyError, QueryError, RelationNotLoaded
from ..query.eager import in_batches, live
from . import registry as _registry
from .fields_extra import _ForeignKeyField

if TYPE_CHECKING:
    from ..query.eager import EagerRelation
    from ..query.query import Query

T = TypeVar("T")


def crossing(owner: Any, name: str, role: str, ref: Any) -> ConfigurationError:
    """The error for relation ``owner.name`` whose ``role`` model ``ref`` is on another connection."""
    return ConfigurationError(
        f"{owner.__name__}.{name}: {role} {ref.__name__} lives on connection {ref.__connection__!r}, "
        f"{owner.__name__} on {owner.__connection__!r}; relations never cross connections: keep the id and "
        f"query {ref.__name__} on its own connection"
    )


class Relation(Generic[T]):
    """What every relation knows: its owner and target models, and the keys that connect them."""

    kind: ClassVar[str] = ""
    to_many: ClassVar[bool] = False

    def __init__(
        self,
        target: type[T] | str,
        *,
        foreign_key: str | None = None,
        through: Any = None,
        target_key: str | None = None,
    ) -> None:
        if not isinstance(target, str) and not isinstance(target, type):
            raise ConfigurationError(f"a relation targets a model class or its name, not {target!r}")
        self._target_ref: Any = target
        self._fk_option = foreign_key
        self._through_ref = through
        self._target_key_option = target_key
        self.name = ""
        self.owner: Any = None
        self.target: Any = None
        self.through: Any = None
        self.foreign_key = ""
        self.target_key = ""
        self.resolved = False

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        owner = getattr(self.owner, "__name__", "?")
        target = self._target_ref if isinstance(self._target_ref, str) else self._target_ref.__name__
        return f"<{self.kind} {owner}.{self.name} -> {target}>"

    def bind(self, owner: type[Any]) -> Relation[T]:
        """A copy of this relation for the concrete model ``owner``."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.owner = owner
        new.resolved = False
        return new

    # -- resolution -------------------------------------------------------------------------

    def _model(self, ref: Any, role: str) -> Any:
        owner = self.owner
        conn = owner.__connection__
        if isinstance(ref, str):
            # Only this connection's models: several services may each declare a "User".
            found = [m for m in _registry.models_for(conn) if m.__name__ == ref]
            if not found:
                return None
            ref = found[-1]
        if "__table__" not in ref.__dict__:
            raise ConfigurationError(f"{owner.__name__}.{self.name}: {ref.__name__} is abstract and has no table")
        if ref.__connection__ != conn:
            raise crossing(owner, self.name, role, ref)
        return ref

    def resolve(self) -> bool:
        """Find the target (and join) model and the keys; False while a named model is undeclared."""
        target = self._model(self._target_ref, "target")
        if target is None:
            return False
        through = None
        if self._through_ref is not None:
            through = self._model(self._through_ref, "join model")
            if through is None:
                return False
        self.target = target
        self.through = through
        self._resolve_keys()
        self._check_shards()
        self.resolved = True
        return True

    def _check_shards(self) -> None:
        # Sharded models (``__shard_key__``) may relate only along their shard keys, so that
        # related rows always live on the same shard as the record that reaches them.
        owner, target = self.owner, self.target
        owner_key = getattr(owner, "__shard_key__", None)
        target_key = getattr(target, "__shard_key__", None)
        if owner_key is None and target_key is None:
            return
        where = f"{owner.__name__}.{self.name}"
        if self.through is not None:
            raise ConfigurationError(f"{where}: many-to-many relations between sharded models cross shards")
        if self.kind == "belongs_to":
            aligned = owner_key == self.foreign_key and target_key == target._ar_pk
        else:
            aligned = target_key == self.foreign_key and owner_key == owner._ar_pk
        if not aligned:
            raise ConfigurationError(
                f"{where}: related rows of sharded models must share the shard key (here {owner.__name__} is "
                f"sharded by {owner_key!r}, {target.__name__} by {target_key!r}); this relation would cross shards"
            )

    def _key(self, model: Any, option: str | None, default: str, refers_to: Any, what: str) -> str:
        fields = model.__fields__
        if option is not None:
            if option not in fields:
                raise ConfigurationError(f"{self.owner.__name__}.{self.name}: {model.__name__} has no field {option!r}")
            return option
        if default in fields:
            return default
        candidates = [
            name
            for name, f in fields.items()
            if isinstance(f, _ForeignKeyField) and f.target_table() == refers_to.__tablename__
        ]
        if len(candidates) == 1:
            return str(candidates[0])
        raise ConfigurationError(
            f"{self.owner.__name__}.{self.name}: cannot tell which field of {model.__name__} holds {what}; "
            f"add {default!r} or pass foreign_key="
        )

    def _resolve_keys(self) -> None:
        raise NotImplementedError

    def ensure(self) -> Relation[T]:
        """This relation, resolved; `ConfigurationError` when its target is not on its connection."""
        if self.resolved or self.resolve():
            return self
        for role, ref in (("target", self._target_ref), ("join model", self._through_ref)):
            if isinstance(ref, str) and not any(
                m.__name__ == ref for m in _registry.models_for(self.owner.__connection__)
            ):
                for other in _registry.connection_names():
                    elsewhere = [m for m in _registry.models_for(other) if m.__name__ == ref]
                    if elsewhere:
                        raise crossing(self.owner, self.name, role, elsewhere[-1])
        raise ConfigurationError(
            f"{self.owner.__name__}.{self.name}: no model named {self._target_ref!r} "
            f"(or join model {self._through_ref!r}) is declared on connection {self.owner.__connection__!r}"
        )

    # -- SQL --------------------------------------------------------------------------------

    def join_steps(
        self, source: FromClause, target: FromClause | None = None
    ) -> list[tuple[FromClause, ColumnElement[bool]]]:
        """The (table, ON clause) pairs that join ``source`` (the owner's table) to the target."""
        raise NotImplementedError

    def related_filter(self, owner: Any) -> ColumnElement[bool]:
        """The condition selecting the records related to one ``owner`` record."""
        raise NotImplementedError

    # -- loading ----------------------------------------------------------------------------

    def load_into(self, conn: Connection, records: list[Any]) -> list[Any]:
        """Load this relation for ``records`` in one query (per `IN_BATCH` keys); the loaded targets."""
        raise NotImplementedError

    def attach(self, record: Any, value: Any) -> None:
        """Store ``value`` as the loaded relation of ``record``."""
        loaded = record._ar_loaded
        if loaded is None:
            record._ar_loaded = {self.name: value}
        else:
            loaded[self.name] = value

    def _loader(self, records: list[Any]) -> Callable[[Any], Any]:
        return self.target._ar_loader(records[0]._ar_using)  # type: ignore[no-any-return]

    def _nothing_to_load(self, owner: Any) -> bool:
        # A record with no key has no related rows: answer without I/O, in either mode.
        if self.kind == "belongs_to":
            return owner.__dict__[self.foreign_key] is None
        return owner._ar_saved is None or owner.pk is None

    def _unloaded(self, owner: Any) -> Any:
        """Sync code outside an event loop loads now; anywhere else this is an error naming the fix."""
        self.ensure()
        if self._nothing_to_load(owner):
            self.load_into(_NO_IO, [owner])  # type: ignore[arg-type]
        else:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                model = type(owner).__name__
                raise RelationNotLoaded(
                    f"{model}.{self.name} was not loaded, and async code never loads lazily: use "
                    f"{model}.find().includes({self.name!r}) or `await record.aload({self.name!r})`"
                )
            _execute.run(owner._ar_connection(None), False, self.load_into, [owner])
        loaded = owner._ar_loaded
        assert loaded is not None  # load_into attached the value
        return loaded[self.name]


class _NoConnection:
    """Stands in for a connection where no query may run (records without keys)."""

    def execute(self, *args: Any) -> Any:
        raise AssertionError("no query is needed for records without keys")


_NO_IO = _NoConnection()

# What `dict.get` answers for a relation that was never loaded (None is a loaded value).
_UNSET: Any = object()


class _ToOne(Relation[T]):
    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _ToOne[T]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> T | None: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        loaded = obj._ar_loaded
        if loaded is not None:
            value = loaded.get(self.name, _UNSET)
            if value is not _UNSET and (self.kind != "belongs_to" or self._fresh(obj.__dict__, value)):
                return value
        return self._unloaded(obj)

    def _fresh(self, d: dict[str, Any], value: Any) -> bool:
        # A changed foreign key makes the cached parent stale.
        key = d[self.foreign_key]
        return value.pk == key if value is not None else key is None


class BelongsTo(_ToOne[T]):
    """The owner holds the key: ``order.customer`` reads the row that ``order.customer_id`` names."""

    kind = "belongs_to"

    def __set__(self, obj: object, value: T | None) -> None:
        self.ensure()
        d = obj.__dict__
        if value is None:
            d[self.foreign_key] = None
        else:
            if not isinstance(value, self.target):
                raise QueryError(
                    f"{type(obj).__name__}.{self.name} takes a {self.target.__name__}, not {type(value).__name__}"
                )
            pk = value.pk
            if pk is None:
                raise MissingPrimaryKeyError(
                    f"save the {self.target.__name__} before assigning it to {type(obj).__name__}.{self.name}"
                )
            d[self.foreign_key] = pk
        self.attach(obj, value)

    def _resolve_keys(self) -> None:
        self.foreign_key = self._key(
            self.owner, self._fk_option, f"{self.name}_id", self.target, f"the key of {self.target.__name__}"
        )

    def join_steps(
        self, source: FromClause, target: FromClause | None = None
    ) -> list[tuple[FromClause, ColumnElement[bool]]]:
        t = self.target.__table__ if target is None else target
        return [(t, t.c[self.target._ar_pk] == source.c[self.foreign_key])]

    def related_filter(self, owner: Any) -> ColumnElement[bool]:
        return self.target.__table__.c[self.target._ar_pk] == owner.__dict__[self.foreign_key]  # type: ignore[no-any-return]

    def load_into(self, conn: Connection, records: list[Any]) -> list[Any]:
        fk = self.foreign_key
        keys = list({r.__dict__[fk] for r in records} - {None})
        found: dict[Any, Any] = {}
        if keys:
            table = self.target.__table__
            base = select(table).where(*live(self.target))
            load = self._loader(records)
            for row in in_batches(conn, base, table.c[self.target._ar_pk], keys):
                obj = load(row)
                found[obj.pk] = obj
        for r in records:
            self.attach(r, found.get(r.__dict__[fk]))
        return list(found.values())


class _HasBase(Relation[T]):
    def _resolve_keys(self) -> None:
        owner = self.owner
        default = f"{_registry.snake_case(owner.__name__)}_id"
        if self.through is None:
            self.foreign_key = self._key(self.target, self._fk_option, default, owner, f"the key of {owner.__name__}")
            return
        self.foreign_key = self._key(self.through, self._fk_option, default, owner, f"the key of {owner.__name__}")
        self.target_key = self._key(
            self.through,
            self._target_key_option,
            f"{_registry.snake_case(self.target.__name__)}_id",
            self.target,
            f"the key of {self.target.__name__}",
        )

    def join_steps(
        self, source: FromClause, target: FromClause | None = None
    ) -> list[tuple[FromClause, ColumnElement[bool]]]:
        t = self.target.__table__ if target is None else target
        owner_pk = source.c[self.owner._ar_pk]
        if self.through is None:
            return [(t, t.c[self.foreign_key] == owner_pk)]
        j = self.through.__table__
        return [
            (j, j.c[self.foreign_key] == owner_pk),
            (t, t.c[self.target._ar_pk] == j.c[self.target_key]),
        ]

    def related_filter(self, owner: Any) -> ColumnElement[bool]:
        table = self.target.__table__
        if self.through is None:
            return table.c[self.foreign_key] == owner.pk  # type: ignore[no-any-return]
        j = self.through.__table__
        keys = select(j.c[self.target_key]).where(j.c[self.foreign_key] == owner.pk)
        return table.c[self.target._ar_pk].in_(keys)  # type: ignore[no-any-return]

    def _fetch_groups(self, conn: Connection, records: list[Any]) -> tuple[dict[Any, list[Any]], list[Any]]:
        keys = list({r.pk for r in records} - {None})
        groups: dict[Any, list[Any]] = {}
        loaded: dict[Any, Any] = {}
        if not keys:
            return groups, []
        table = self.target.__table__
        target_pk = table.c[self.target._ar_pk]
        load = self._loader(records)
        stmt: Select[Any]
        if self.through is None:
            key_col = table.c[self.foreign_key]
            stmt = select(table).where(*live(self.target)).order_by(target_pk)
            for row in in_batches(conn, stmt, key_col, keys):
                obj = load(row)
                loaded[obj.pk] = obj
                groups.setdefault(obj.__dict__[self.foreign_key], []).append(obj)
            return groups, list(loaded.values())
        j = self.through.__table__
        key_col = j.c[self.foreign_key]
        stmt = (
            select(table, key_col.label("_ar_owner_key"))
            .join(j, j.c[self.target_key] == target_pk)
            .where(*live(self.target))
            .order_by(key_col, target_pk)
        )
        width = len(self.target._ar_names)
        pk_at = self.target._ar_names.index(self.target._ar_pk)
        for row in in_batches(conn, stmt, key_col, keys):
            pk = row[pk_at]
            obj = loaded.get(pk)
            if obj is None:
                obj = loaded[pk] = load(row[:width])
            groups.setdefault(row[width], []).append(obj)
        return groups, list(loaded.values())


class HasMany(_HasBase[T]):
    """The target rows hold the owner's key: ``order.items`` is a `Collection` of them.

    With ``through=JoinModel`` it is many-to-many: the join model holds both keys.
    """

    kind = "has_many"
    to_many = True

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> HasMany[T]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> Collection[T]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        loaded = obj._ar_loaded
        if loaded is not None:
            stored: Collection[T] | None = loaded.get(self.name)
            if stored is not None:
                return stored
        collection: Collection[T] = Collection(self.ensure(), obj, None)
        self.attach(obj, collection)
        return collection

    def load_into(self, conn: Connection, records: list[Any]) -> list[Any]:
        groups, loaded = self._fetch_groups(conn, records)
        for r in records:
            self.attach(r, Collection(self, r, groups.get(r.pk, [])))
        return loaded


class HasOne(_ToOne[T], _HasBase[T]):
    """Like `HasMany` with at most one target row: ``user.profile`` is that record or None."""

    kind = "has_one"

    def load_into(self, conn: Connection, records: list[Any]) -> list[Any]:
        groups, loaded = self._fetch_groups(conn, records)
        for r in records:
            found = groups.get(r.pk)
            self.attach(r, found[0] if found else None)
        return loaded


class Collection(Generic[T]):
    """The records of a to-many relation of one owner, and the ways to add to it.

    Reading it (iterating, ``len``, indexing) needs it loaded: through ``includes()`` or
    ``aload()``, or lazily in sync code. ``find()``, ``create()``/``acreate()`` and
    ``add()``/``aadd()`` work whether or not it is loaded.
    """

    __slots__ = ("_owner", "_records", "_relation")

    def __init__(self, relation: Relation[T], owner: Any, records: list[T] | None) -> None:
        self._relation = relation
        self._owner = owner
        self._records = records

    @property
    def loaded(self) -> bool:
        """Whether the records are in memory."""
        return self._records is not None

    @property
    def records(self) -> list[T]:
        """The related records as a list (loads them lazily in sync code, see the class doc)."""
        records = self._records
        if records is None:
            loaded: Collection[T] = self._relation._unloaded(self._owner)
            records = self._records = loaded._records
            assert records is not None
        return records

    def __iter__(self) -> Iterator[T]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> T:
        return self.records[index]

    def __bool__(self) -> bool:
        return bool(self.records)

    def __contains__(self, item: object) -> bool:
        return item in self.records

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Collection):
            return self.records == other.records
        if isinstance(other, list):
            return self.records == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        rel = self._relation
        state = repr(self._records) if self._records is not None else "not loaded"
        return f"<{type(self._owner).__name__}.{rel.name}: {state}>"

    def _owner_pk(self) -> Any:
        owner = self._owner
        if owner._ar_saved is None or owner.pk is None:
            raise MissingPrimaryKeyError(
                f"save the {type(owner).__name__} before using {type(owner).__name__}.{self._relation.name}"
            )
        return owner.pk

    def find(self) -> Query[T]:
        """A query for the related records (pure: run it with any terminal, sync or async)."""
        rel = self._relation
        self._owner_pk()
        query: Query[T] = rel.target.find().where(rel.related_filter(self._owner))
        using = self._using()
        return query.using(using) if using is not None else query

    def build(self, **values: Any) -> T:
        """A new, unsaved related record with the key set (for a direct `has_many`)."""
        rel = self._relation
        if rel.through is not None:
            raise QueryError(
                f"{type(self._owner).__name__}.{rel.name} goes through {rel.through.__name__}: use create() or add()"
            )
        if rel.foreign_key in values:
            raise QueryError(f"{rel.foreign_key} is set by {type(self._owner).__name__}.{rel.name}")
        record: T = rel.target(**{rel.foreign_key: self._owner_pk()}, **values)
        return record

    def _joined(self, record: Any) -> Any:
        rel = self._relation
        assert rel.through is not None
        if record.pk is None:
            raise MissingPrimaryKeyError(f"save the {rel.target.__name__} before adding it")
        return rel.through(**{rel.foreign_key: self._owner_pk(), rel.target_key: record.pk})

    def _appended(self, record: T) -> T:
        if self._records is not None and record not in self._records:
            self._records.append(record)
        return record

    def _using(self) -> str | None:
        return self._owner._ar_using  # type: ignore[no-any-return]

    def create(self, **values: Any) -> T:
        """Create a related record (and, through a join model, its join row, in one transaction)."""
        rel = self._relation
        using = self._using()
        if rel.through is None:
            return self._appended(self.build(**values).save(using=using))  # type: ignore[attr-defined]
        self._owner_pk()
        with _transaction.transaction(self._owner._ar_connection(None)):
            record = rel.target(**values).save(using=using)
            self._joined(record).save(using=using)
        return self._appended(record)

    async def acreate(self, **values: Any) -> T:
        """`create` (async)."""
        rel = self._relation
        using = self._using()
        if rel.through is None:
            return self._appended(await self.build(**values).asave(using=using))  # type: ignore[attr-defined]
        self._owner_pk()
        async with _transaction.atransaction(self._owner._ar_connection(None)):
            record = await rel.target(**values).asave(using=using)
            await self._joined(record).asave(using=using)
        return self._appended(record)

    def add(self, record: T) -> T:
        """Relate a saved ``record``: set its key and save it, or (many-to-many) insert the join row."""
        rel = self._relation
        if rel.through is None:
            record.__dict__[rel.foreign_key] = self._owner_pk()
            return self._appended(record.save(using=self._using()))  # type: ignore[attr-defined]
        self._joined(record).save(using=self._using())
        return self._appended(record)

    async def aadd(self, record: T) -> T:
        """`add` (async)."""
        rel = self._relation
        if rel.through is None:
            record.__dict__[rel.foreign_key] = self._owner_pk()
            return self._appended(await record.asave(using=self._using()))  # type: ignore[attr-defined]
        await self._joined(record).asave(using=self._using())
        return self._appended(record)


@overload
def belongs_to(target: type[T], *, foreign_key: str | None = None) -> BelongsTo[T]: ...
@overload
def belongs_to(target: str, *, foreign_key: str | None = None) -> BelongsTo[Any]: ...
def belongs_to(target: Any, *, foreign_key: str | None = None) -> BelongsTo[Any]:
    """The owner holds the key of a ``target`` record (default key field: ``<relation name>_id``).

    >>> class Order(ActiveRecord):
    ...     customer_id: Field[int] = ForeignKeyField(Customer)
    ...     customer = belongs_to(Customer)
    """
    return BelongsTo(target, foreign_key=foreign_key)


@overload
def has_many(
    target: type[T], *, foreign_key: str | None = None, through: Any = None, target_key: str | None = None
) -> HasMany[T]: ...
@overload
def has_many(
    target: str, *, foreign_key: str | None = None, through: Any = None, target_key: str | None = None
) -> HasMany[Any]: ...
def has_many(
    target: Any, *, foreign_key: str | None = None, through: Any = None, target_key: str | None = None
) -> HasMany[Any]:
    """``target`` rows hold this record's key (default: ``<owner name in snake_case>_id``).

    ``through=JoinModel`` makes it many-to-many: the join model holds this record's key
    (``foreign_key``) and the target's (``target_key``, default ``<target name>_id``).

    >>> class Order(ActiveRecord):
    ...     items = has_many("OrderItem")
    """
    return HasMany(target, foreign_key=foreign_key, through=through, target_key=target_key)


@overload
def has_one(target: type[T], *, foreign_key: str | None = None) -> HasOne[T]: ...
@overload
def has_one(target: str, *, foreign_key: str | None = None) -> HasOne[Any]: ...
def has_one(target: Any, *, foreign_key: str | None = None) -> HasOne[Any]:
    """At most one ``target`` row holds this record's key: ``user.profile``."""
    return HasOne(target, foreign_key=foreign_key)


if TYPE_CHECKING:

    def _is_eager(rel: Relation[Any]) -> EagerRelation:
        return rel  # mypy checks here that relations give eager loading what it needs


# -- declaration --------------------------------------------------------------------------------

_pending: list[Relation[Any]] = []


def install(cls: Any) -> dict[str, Relation[Any]]:
    """Bind the relations declared on (or inherited by) model ``cls``; resolve what can be."""
    found: dict[str, Relation[Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Relation):
                found[name] = value
    relations: dict[str, Relation[Any]] = {}
    for name, rel in found.items():
        if name in cls.__fields__:
            raise ConfigurationError(f"{cls.__name__}: {name!r} is both a field and a relation")
        bound = rel.bind(cls)
        bound.name = name
        setattr(cls, name, bound)
        relations[name] = bound
        if not bound.resolve():
            _pending.append(bound)
    return relations


def model_declared(cls: Any) -> None:
    """Resolve pending relations that were waiting for ``cls`` (declared after them)."""
    for rel in list(_pending):
        refs = (rel._target_ref, rel._through_ref)
        if cls.__name__ in refs and cls.__connection__ == rel.owner.__connection__ and rel.resolve():
            _pending.remove(rel)


def check_foreign_keys(model: str, connection: str, fields: Mapping[str, Any]) -> None:
    """A `ForeignKeyField` to a model class on another connection is refused."""
    for name, field in fields.items():
        target = field.target if isinstance(field, _ForeignKeyField) else None
        if target is not None and not isinstance(target, str) and target.__connection__ != connection:
            raise ConfigurationError(
                f"{model}.{name} references {target.__name__} on connection "
                f"{target.__connection__!r}; foreign keys never cross connections"
            )


__all__ = ["BelongsTo", "Collection", "HasMany", "HasOne", "Relation", "belongs_to", "has_many", "has_one"]

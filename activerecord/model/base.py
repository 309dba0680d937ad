"""The `ActiveRecord` base class: a model class is a Core `Table` plus behaviour.

Declaring a subclass builds its table (in the `MetaData` of its ``__connection__``) and puts
each column on the class, so ``User.name`` is a Core column expression while ``user.name`` is
the value. Instances keep a snapshot of what was last read or written; ``save`` writes only the
fields that differ from it, so a concurrent change to another column survives.
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

from sqlalchemy import Connection, Index, Row, Table, UniqueConstraint, bindparam, select
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.ddl import sort_tables

from ..connections import execute as _execute
from ..connections import retry as _retry
from ..connections.manager import ConnectionManager
from ..connections.retry import AsyncTransactionBlock, RetryPolicy, TransactionBlock
from ..dialects.utc import utcnow
from ..engine import operations as _operations
from ..engine.greenlets import run_in_greenlet
from ..errors import (
    ConfigurationError,
    MissingPrimaryKeyError,
    QueryError,
    RecordNotFound,
    UnknownFieldError,
    ValidationError,
)
from ..query import shard_writes as _shard_write
from ..query.query import Query
from . import bulk as _bulk
from . import features as _features
from . import hooks as _hooks
from . import protection as _protection
from . import registry as _registry
from . import serialize as _serialize
from . import validators as _validators
from .fields import (
    MISSING,
    FastCheck,
    Field,
    PrimaryKeyField,
    _DateTimeField,
    _DecimalField,
    _IntegerField,
    _JSONField,
    compile_all_valid,
    fast_check,
    field_errors,
)

Self = TypeVar("Self", bound="ActiveRecord")
R = TypeVar("R")

_SENSITIVE = re.compile(r"password|passwd|secret|token|api_key", re.IGNORECASE)


def _json_snapshot(value: Any) -> str:
    # In-place changes to a JSON document do not rebind the attribute, so compare serialized forms.
    return json.dumps(value, sort_keys=True, default=str)


@dataclass_transform(kw_only_default=True)
class ModelMeta(type):
    """Builds the table of each model class from its declared fields."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> ModelMeta:
        own_fields = {k: v for k, v in namespace.items() if isinstance(v, Field)}
        # Field names are kept out of the class namespace (`__getattr__` below answers them):
        # a class attribute of the same name keeps CPython from specializing the loads and
        # stores of the instance attribute, which then cost two to three times as much.
        namespace = {k: v for k, v in namespace.items() if k not in own_fields}
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        if not any(isinstance(base, ModelMeta) for base in bases):
            return cls  # ActiveRecord itself

        fields: dict[str, Field[Any]] = {}
        for base in reversed(cls.__mro__[1:]):
            for fname, field in getattr(base, "_ar_declared", {}).items():
                fields[fname] = field
        fields.update(own_fields)
        cls._ar_declared = fields  # type: ignore[attr-defined]
        if namespace.get("__abstract__", False):
            return cls
        _features.precheck(cls, fields)
        _build_table(cls, name, namespace, fields)  # type: ignore[arg-type]
        _features.setup(cls)
        return cls

    if not TYPE_CHECKING:
        # Hidden from type checkers, which know each field's column type from its `Field`
        # annotation, and so report a misspelt ``User.nmae`` instead of taking it as Any.

        def __getattr__(cls, name: str) -> Any:
            """``Model.field``: the field's table column (of an abstract model: the declared field).

            >>> User.find().where(User.age >= 18)
            """
            # Reached only when normal lookup fails. Only the class's own __dict__ is read here, so
            # nothing recurses while the class is still being built.
            own = cls.__dict__
            table = own.get("__table__")
            if table is not None:
                if name in own["__fields__"]:
                    return table.c[name]
            elif name in own.get("_ar_declared", ()):
                return own["_ar_declared"][name]
            raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")


def _build_table(
    cls: type[ActiveRecord], name: str, namespace: dict[str, Any], declared: dict[str, Field[Any]]
) -> None:
    reserved = {k for k in dir(ActiveRecord) if not k.startswith("__")}
    clash = sorted(set(declared) & reserved)
    if clash:
        raise ConfigurationError(f"{name}: field name(s) {', '.join(clash)} would hide ActiveRecord methods")
    fields = {fname: field.copy() for fname, field in declared.items()}
    for fname, field in fields.items():
        field.name = fname
    pks = [f for f in fields.values() if f.primary_key]
    if not pks:
        pk = PrimaryKeyField()
        pk.name = "id"
        fields = {"id": pk, **fields}
        pks = [pk]
    if len(pks) > 1:
        raise ConfigurationError(f"{name}: composite primary keys are not supported; declare one primary key")

    tablename = namespace.get("__tablename__") or _registry.snake_case(name)
    connection = cls.__connection__
    metadata = _registry.metadata_for(connection)
    if tablename in metadata.tables:
        raise ConfigurationError(
            f"{name}: table {tablename!r} is already declared on connection {connection!r}; "
            "set __tablename__ or __connection__"
        )
    extras: list[Any] = []
    for names in getattr(cls, "__indexes__", ()):
        _check_names(name, fields, names)
        extras.append(Index(f"ix_{tablename}_{'_'.join(names)}", *names))
    for names in getattr(cls, "__unique_together__", ()):
        _check_names(name, fields, names)
        extras.append(UniqueConstraint(*names, name=f"uq_{tablename}_{'_'.join(names)}"))
    table = Table(tablename, metadata, *(f.column() for f in fields.values()), *extras)

    cls.__table__ = table
    cls.__tablename__ = tablename
    cls.__fields__ = fields
    cls._ar_names = tuple(fields)
    cls._ar_fast_checks = tuple(fast_check(n, f) for n, f in fields.items())
    cls._ar_all_valid = staticmethod(compile_all_valid(cls._ar_fast_checks, name))
    cls._ar_blank = dict.fromkeys(fields)
    # The field values of an instance dict as a tuple, in one C call (snapshots, inserts).
    names = tuple(fields)
    # (itemgetter is no descriptor; the one-field case is a function, so a staticmethod.)
    cls._ar_get = itemgetter(*names) if len(names) > 1 else staticmethod(lambda d: (d[names[0]],))
    cls._ar_defaulted = tuple(
        (n, f) for n, f in fields.items() if f.default is not MISSING or type(f).initial is not Field.initial
    )
    cls._ar_pk = pks[0].name
    cls._ar_server_defaults = tuple(n for n, f in fields.items() if f.server_default is not None)
    cls._ar_json = tuple(i for i, f in enumerate(fields.values()) if isinstance(f, _JSONField))
    cls._ar_auto_add = tuple(
        n for n, f in fields.items() if isinstance(f, _DateTimeField) and (f.auto_now_add or f.auto_now)
    )
    cls._ar_auto_now = tuple(n for n, f in fields.items() if isinstance(f, _DateTimeField) and f.auto_now)
    cls._ar_decimals = tuple((n, f) for n, f in fields.items() if isinstance(f, _DecimalField))
    cls._ar_rounded = tuple((n, f) for n, f in cls._ar_decimals if f.rounding is not None)
    cls._ar_protected, cls._ar_protected_saved = _protection.protected_fields(cls, fields, cls._ar_pk)
    cls._ar_pk_bounds = pks[0].bounds if type(pks[0]) is _IntegerField else None
    pk_col = table.c[cls._ar_pk]
    cls._ar_by_pk = select(table).where(pk_col == bindparam("_ar_pk"))
    cls._ar_update_pk = table.update().where(pk_col == bindparam("_ar_pk"))
    cls._ar_delete_pk = table.delete().where(pk_col == bindparam("_ar_pk"))
    _registry.register(connection, cls)


def _check_names(model: str, fields: Mapping[str, Field[Any]], names: Sequence[str]) -> None:
    if isinstance(names, str) or not names:
        raise ConfigurationError(f"{model}: composite indexes and constraints are tuples of field names")
    unknown = [n for n in names if n not in fields]
    if unknown:
        raise ConfigurationError(f"{model}: unknown field(s) {', '.join(unknown)} in an index or constraint")


class ActiveRecord(_features.Features, _serialize.Serializable, metaclass=ModelMeta):
    """Base class of models. A subclass declares fields; its table is built from them.

    >>> class User(ActiveRecord):
    ...     __tablename__ = "users"
    ...     id: Field[int] = PrimaryKeyField()
    ...     name: Field[str] = StringField(max_length=100)
    >>> user = User.create(name="ada")
    >>> await User.find().where(User.name == "ada").aone()
    """

    __abstract__: ClassVar[bool] = True
    __connection__: ClassVar[str] = "default"
    __tablename__: ClassVar[str]
    __table__: ClassVar[Table]
    __fields__: ClassVar[dict[str, Field[Any]]]
    __indexes__: ClassVar[Sequence[Sequence[str]]] = ()
    __unique_together__: ClassVar[Sequence[Sequence[str]]] = ()

    if TYPE_CHECKING:
        # The ``id`` primary key `_build_table` adds to a model that declares no primary key,
        # made visible to type checkers (a model declaring its own ``id`` replaces it).
        id: Field[int] = PrimaryKeyField()

    _ar_declared: ClassVar[dict[str, Field[Any]]] = {}
    _ar_names: ClassVar[tuple[str, ...]]
    _ar_fast_checks: ClassVar[tuple[FastCheck, ...]]
    _ar_all_valid: ClassVar[Callable[[Mapping[str, Any]], bool]]
    _ar_blank: ClassVar[dict[str, None]]
    _ar_get: ClassVar[Any]  # dict -> tuple of the field values (see `_build_table`)
    _ar_defaulted: ClassVar[tuple[tuple[str, Field[Any]], ...]]
    _ar_pk: ClassVar[str]
    _ar_json: ClassVar[tuple[int, ...]]
    _ar_server_defaults: ClassVar[tuple[str, ...]]
    _ar_auto_add: ClassVar[tuple[str, ...]]
    _ar_auto_now: ClassVar[tuple[str, ...]]
    _ar_decimals: ClassVar[tuple[tuple[str, _DecimalField], ...]]
    _ar_rounded: ClassVar[tuple[tuple[str, _DecimalField], ...]]  # those with a rounding mode
    _ar_protected: ClassVar[frozenset[str]]  # refused keywords of a new record (see `protection`)
    _ar_protected_saved: ClassVar[frozenset[str]]  # and of a saved one
    _ar_pk_bounds: ClassVar[tuple[int, int] | None]  # the range of an integer key (find_by_id)
    _ar_by_pk: ClassVar[Any]
    _ar_update_pk: ClassVar[Any]
    _ar_delete_pk: ClassVar[Any]

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        if "__table__" not in cls.__dict__:
            raise ConfigurationError(f"{cls.__name__} is abstract and has no table")
        fields = cls.__fields__
        d = self.__dict__
        d.update(cls._ar_blank)  # every field, in declaration order, None until set below
        unknown: list[str] = []
        if not cls._ar_protected.isdisjoint(values):
            _protection.check(cls, values, cls._ar_protected)
        if values.keys() <= fields.keys():
            d.update(values)
        else:
            unknown = [k for k in values if k not in fields]
            if not cls._ar_relations:
                raise UnknownFieldError(cls.__name__, {k: ["unknown field"] for k in unknown})
            d.update({k: v for k, v in values.items() if k in fields})
        for name, field in cls._ar_defaulted:
            if name not in values:
                d[name] = field.initial()
        self._ar_saved = None
        self._ar_using = None
        self._ar_loaded = None
        if unknown:
            _features.assign_relations(self, {k: values[k] for k in unknown})

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def _ar_load(cls: type[Self], row: Sequence[Any]) -> Self:
        """A record from a row of the model's columns (in declaration order)."""
        fast = cls.__dict__.get("_ar_fast_load")
        if fast is None:
            fast = _compile_loader(cls)
        return fast(row)  # type: ignore[no-any-return]

    @classmethod
    def _ar_load_general(cls: type[Self], row: Sequence[Any]) -> Self:
        obj = cls.__new__(cls)
        d = obj.__dict__
        d.update(zip(cls._ar_names, row, strict=False))
        if cls._ar_json:
            saved = list(row)
            for i in cls._ar_json:
                saved[i] = _json_snapshot(saved[i])
            obj._ar_saved = tuple(saved)
        else:
            obj._ar_saved = tuple(row)
        obj._ar_using = None
        obj._ar_loaded = None
        return obj

    @classmethod
    def _ar_loader(cls: type[Self], using: str | None) -> Any:
        fast = cls.__dict__.get("_ar_fast_load")
        if fast is None:
            fast = _compile_loader(cls)
        if using is None:
            return fast

        def load(row: Sequence[Any]) -> Self:
            obj: Self = fast(row)
            obj._ar_using = using
            return obj

        return load

    def _ar_snapshot(self) -> None:
        d = self.__dict__
        if not self._ar_json:
            self._ar_saved = self._ar_get(d)
            return
        values = list(self._ar_get(d))
        for i in self._ar_json:
            values[i] = _json_snapshot(values[i])
        self._ar_saved = tuple(values)

    # -- state --------------------------------------------------------------------------------

    @property
    def is_persisted(self) -> bool:
        """True once the record has been saved or loaded (and not deleted)."""
        return self._ar_saved is not None

    @property
    def pk(self) -> Any:
        """The primary key value (None before the first save of an auto-increment key)."""
        return self.__dict__[self._ar_pk]

    def changed_fields(self) -> dict[str, Any]:
        """The fields whose values differ from what was last read or written, with the new values."""
        d = self.__dict__
        saved = self._ar_saved
        if saved is None:
            return {n: d[n] for n in self._ar_names}
        json_positions = self._ar_json
        changed = {}
        for i, name in enumerate(self._ar_names):
            value = d[name]
            old = saved[i]
            if i in json_positions:
                if _json_snapshot(value) != old:
                    changed[name] = value
            elif value is not old:
                try:
                    if value != old:
                        changed[name] = value
                except decimal.InvalidOperation:
                    changed[name] = value  # a signaling NaN compares to nothing (validation refuses it)
        return changed

    # -- validation ---------------------------------------------------------------------------

    def validation_errors(self) -> dict[str, list[str]]:
        """Every problem with the current values, by field name (empty when valid)."""
        d = self.__dict__
        errors = {} if type(self)._ar_all_valid(d) else field_errors(self._ar_fast_checks, d)
        if self._ar_checks:
            _validators.run(self, errors)
        return errors

    def validate(self) -> None:
        """Raise `ValidationError` naming every bad field; called by ``save`` before any SQL."""
        errors = self.validation_errors()
        if errors:
            raise ValidationError(type(self).__name__, errors)

    @classmethod
    def _ar_where_kwargs(cls, kwargs: Mapping[str, Any]) -> list[ColumnElement[bool]]:
        table = cls.__table__
        conditions = []
        for name, value in kwargs.items():
            if name not in cls.__fields__:
                raise QueryError(f"{cls.__name__} has no field {name!r}")
            column = table.c[name]
            conditions.append(column.is_(None) if value is None else column == cls._ar_query_value(name, value))
        return conditions

    @classmethod
    def _ar_query_value(cls, name: str, value: Any) -> Any:
        """``value`` checked (and coerced) by field ``name``'s type for a comparison; `QueryError` if it cannot be."""
        try:
            return cls.__fields__[name].query_value(value)
        except ValueError as exc:
            raise QueryError(f"{cls.__name__}.{name}: {exc} ({type(value).__name__} {value!r:.60})") from None

    @classmethod
    def _ar_update_values(cls, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        unknown = [k for k in kwargs if k not in cls.__fields__]
        if unknown:
            raise UnknownFieldError(cls.__name__, {k: ["unknown field"] for k in unknown})
        errors = {}
        for name, value in kwargs.items():
            problems = cls.__fields__[name].check(value)
            if problems:
                errors[name] = problems
        if errors:
            raise ValidationError(cls.__name__, errors)
        return dict(kwargs)

    # -- writing ------------------------------------------------------------------------------

    def _ar_insert_values(self) -> dict[str, Any]:
        d = self.__dict__
        if self._ar_auto_add:
            now = utcnow()
            for name in self._ar_auto_add:
                if d[name] is None or name in self._ar_auto_now:
                    d[name] = now
        self.validate()
        if self._ar_decimals:
            self._ar_quantize(d)
        values = dict(zip(self._ar_names, self._ar_get(d), strict=True))
        if values[self._ar_pk] is None:
            del values[self._ar_pk]
        for name in self._ar_server_defaults:
            if values.get(name, 0) is None:
                del values[name]  # left to the column's server default
        return values

    def _ar_update_changes(self) -> dict[str, Any]:
        changes = self.changed_fields()
        if not changes:
            return changes
        if self._ar_auto_now:
            now = utcnow()
            for name in self._ar_auto_now:
                self.__dict__[name] = changes[name] = now
        self.validate()
        if self._ar_decimals:
            self._ar_quantize(changes)
            self.__dict__.update((n, changes[n]) for n, _ in self._ar_decimals if n in changes)
        if self._ar_pk in changes:
            raise QueryError(f"{type(self).__name__}: the primary key of a saved record cannot change")
        return changes

    def _ar_quantize(self, values: dict[str, Any]) -> None:
        """Decimal values of ``values`` with their column's places, as reading them back gives (validated)."""
        for name, field in self._ar_decimals:
            value = values.get(name)
            if value is not None:
                values[name] = field.quantize(value)

    @_operations.one_statement  # one INSERT or one UPDATE
    def _ar_save_op(self, conn: Connection, pending: dict[str, Any]) -> None:
        if self._ar_saved is None:
            pk, filled = _operations.insert_one(conn, self.__table__, pending, self._ar_server_defaults)
            if pk is not None:
                self.__dict__[self._ar_pk] = pk
            self.__dict__.update(filled)
        else:
            params = dict(pending)
            params["_ar_pk"] = self.pk
            if _operations.execute_rowcount(conn, self._ar_update_pk, params) == 0:
                raise RecordNotFound(f"{type(self).__name__} {self.pk!r} no longer exists")

    def _ar_prepare_save(self) -> dict[str, Any] | None:
        """The values to write, validated; None when a saved record has no changes."""
        if self._ar_saved is None:
            return self._ar_insert_values()
        return self._ar_update_changes() or None

    def _ar_saved_to(self, using: str | None) -> None:
        self._ar_snapshot()
        if using is not None:
            self._ar_using = using

    def save(self: Self, *, using: str | None = None) -> Self:
        """Insert the record, or update the fields that changed; returns the record.

        Validation runs first: a `ValidationError` leaves the database untouched.
        """
        if self._ar_lifecycle:
            return _hooks.save(self, using)
        pending = self._ar_prepare_save()
        if pending is not None:
            _execute.run(self._ar_connection(using), True, self._ar_save_op, pending)
            self._ar_saved_to(using)
        return self

    async def asave(self: Self, *, using: str | None = None) -> Self:
        """`save` (async): the same code, through the greenlet bridge; async hooks are awaited."""
        return await run_in_greenlet(self.save, using=using)

    def _ar_assign(self, values: Mapping[str, Any]) -> None:
        cls = type(self)
        unknown = [k for k in values if k not in self.__fields__]
        if unknown:
            raise UnknownFieldError(cls.__name__, {k: ["unknown field"] for k in unknown})
        if self._ar_saved is None:
            if not cls._ar_protected.isdisjoint(values):
                _protection.check(cls, values, cls._ar_protected)
        elif not cls._ar_protected_saved.isdisjoint(values):
            _protection.check(cls, values, cls._ar_protected_saved, self.pk)
        self.__dict__.update(values)

    def update(self: Self, **values: Any) -> Self:
        """Set fields and save the changes; unknown and protected names raise before anything is set."""
        self._ar_assign(values)
        return self.save()

    async def aupdate(self: Self, **values: Any) -> Self:
        """`update` (async)."""
        self._ar_assign(values)
        return await self.asave()

    def _ar_require_pk(self) -> Any:
        if self._ar_saved is None or self.pk is None:
            raise MissingPrimaryKeyError(f"{type(self).__name__} has not been saved")
        return self.pk

    def delete(self, *, using: str | None = None) -> bool:
        """Delete the record's row; True when a row was deleted (False if it was already gone).

        A model with a `SoftDeleteField` marks the row deleted instead (see ``hard_delete``).
        """
        if self._ar_lifecycle:
            return _hooks.delete(self, using)
        pk = self._ar_require_pk()
        count = _execute.run(
            self._ar_connection(using), True, _operations.execute_rowcount, self._ar_delete_pk, {"_ar_pk": pk}
        )
        self._ar_saved = None
        return count > 0

    async def adelete(self, *, using: str | None = None) -> bool:
        """`delete` (async): the same code, through the greenlet bridge."""
        return await run_in_greenlet(self.delete, using=using)

    def _ar_apply_row(self, row: Row[Any] | None) -> None:
        if row is None:
            raise RecordNotFound(f"{type(self).__name__} {self.pk!r} no longer exists")
        self.__dict__.update(zip(self._ar_names, row, strict=True))
        self._ar_snapshot()
        # Loaded relations may be as stale as the fields were: load them again on demand.
        self._ar_loaded = None

    def reload(self: Self, *, using: str | None = None) -> Self:
        """Read the record's row again, dropping unsaved changes."""
        pk = self._ar_require_pk()
        row = _execute.run(self._ar_connection(using), False, _operations.fetch_row, self._ar_by_pk, {"_ar_pk": pk})
        self._ar_apply_row(row)
        return self

    async def areload(self: Self, *, using: str | None = None) -> Self:
        """`reload` (async)."""
        pk = self._ar_require_pk()
        row = await _execute.arun(
            self._ar_connection(using), False, _operations.fetch_row, self._ar_by_pk, {"_ar_pk": pk}
        )
        self._ar_apply_row(row)
        return self

    def __repr__(self) -> str:
        d = self.__dict__
        parts = ", ".join(
            f"{n}='***'" if _SENSITIVE.search(n) and d.get(n) is not None else f"{n}={d.get(n)!r}"
            for n in self._ar_names
        )
        return f"{type(self).__name__}({parts})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        pk = self.pk
        return self is other or (pk is not None and pk == other.pk)

    def __hash__(self) -> int:
        pk = self.pk
        return hash((type(self), pk)) if pk is not None else id(self)

    # -- class-level API ----------------------------------------------------------------------

    @classmethod
    @contextmanager
    def unprotected(cls) -> Iterator[None]:
        """Let keywords set this model's protected fields inside the block (imports, fixtures, tests).

        Protected are the auto-increment primary key, the lock version, automatic timestamps,
        the soft-delete mark and fields declared ``protected=True``. Called on `ActiveRecord`
        it opens every model. A saved record's primary key stays refused by ``update()``.

        >>> with User.unprotected():
        ...     User.create(id=7, name="ada", created_at=imported_at)
        """
        with _protection.unprotected(cls):
            yield

    @classmethod
    def find(cls: type[Self]) -> Query[Self]:
        """A query over every record of this model."""
        return Query(cls)

    @classmethod
    def find_by_id(cls: type[Self], pk: Any) -> Query[Self]:
        """A query for the record whose primary key is ``pk``: ``User.find_by_id(7).one()``."""
        if pk is None:
            raise QueryError(f"{cls.__name__}.find_by_id() needs a primary key, not None")
        bounds = cls._ar_pk_bounds
        if bounds is None or pk.__class__ is not int or not bounds[0] <= pk <= bounds[1]:
            pk = cls._ar_query_value(cls._ar_pk, pk)  # (an int in range is the common case, passed as is)
        return Query._by_pk(cls, pk)

    @classmethod
    def create(cls: type[Self], *, using: str | None = None, **values: Any) -> Self:
        """Build a record from ``values``, save it and return it."""
        return cls(**values).save(using=using)

    @classmethod
    async def acreate(cls: type[Self], *, using: str | None = None, **values: Any) -> Self:
        """`create` (async)."""
        return await cls(**values).asave(using=using)

    @classmethod
    def _ar_bulk(cls: type[Self], rows: Iterable[Mapping[str, Any] | Self]) -> tuple[list[Self], list[dict[str, Any]]]:
        records: list[Self] = []
        errors: dict[str, list[str]] = {}
        values: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            try:
                record = row if isinstance(row, cls) else cls(**row)  # type: ignore[arg-type]
                if record._ar_saved is not None:
                    raise ValidationError(cls.__name__, {"record": ["already saved"]})
                values.append(record._ar_insert_values())
            except ValidationError as exc:
                for field, msgs in exc.errors.items():
                    errors[f"rows[{i}].{field}"] = msgs
                continue
            records.append(record)
        if errors:
            raise ValidationError(cls.__name__, errors)
        keyed = [v for v in values if cls._ar_pk in v]
        if keyed and len(keyed) != len(values):
            raise ValidationError(cls.__name__, {cls._ar_pk: ["give it for every row or for none"]})
        return records, values

    @classmethod
    def _ar_bulk_done(cls: type[Self], records: list[Self], pks: list[Any] | None) -> list[Self]:
        if pks is not None:
            for record, pk in zip(records, pks, strict=True):
                record.__dict__[cls._ar_pk] = pk
        for record in records:
            record._ar_snapshot()
        return records

    @classmethod
    def insert_many(
        cls: type[Self], rows: Iterable[Mapping[str, Any] | Self], *, using: str | None = None
    ) -> list[Self]:
        """Validate every row, then insert them all in one executemany.

        Returns the records; their primary keys are filled in where the backend returns them
        (PostgreSQL, SQLite, MariaDB). On a sharded model the rows are split by their shard key
        and written with one executemany per shard, each shard in its own transaction (see
        `ShardWriteError`); ``using=`` a shard requires every row to resolve to it.
        """
        records, values = _bulk.new_records(cls, rows, using)
        if not values:
            return []
        batches = _shard_write.split(cls, using, values)
        if batches is not None:
            assert records is not None  # (sharded models get their records first)
            _shard_write.insert(cls.__table__, cls._ar_pk, batches, _bulk_marker(cls, records))
            return records
        pks = _execute.run(
            using or cls.__connection__, True, _operations.insert_many, cls.__table__, values, cls._ar_pk
        )
        return _bulk.saved(cls, records, values, pks)

    @classmethod
    async def ainsert_many(
        cls: type[Self], rows: Iterable[Mapping[str, Any] | Self], *, using: str | None = None
    ) -> list[Self]:
        """`insert_many` (async; on a sharded model the shards are written concurrently)."""
        records, values = _bulk.new_records(cls, rows, using)
        if not values:
            return []
        batches = _shard_write.split(cls, using, values)
        if batches is not None:
            assert records is not None  # (sharded models get their records first)
            await _shard_write.ainsert(cls.__table__, cls._ar_pk, batches, _bulk_marker(cls, records))
            return records
        pks = await _execute.arun(
            using or cls.__connection__, True, _operations.insert_many, cls.__table__, values, cls._ar_pk
        )
        return _bulk.saved(cls, records, values, pks)

    @classmethod
    def bulk_insert(cls, rows: Iterable[Mapping[str, Any]], *, using: str | None = None) -> int:
        """Validate every row, then insert them all; the number of rows inserted.

        The fast way to load data: each row gets the checks, defaults and timestamps `save`
        would give it, and nothing is written if any row is invalid, but no records are built
        and no primary keys come back (no RETURNING). Use `insert_many` for the records.
        Sharded models are split by shard key as in `insert_many`.

        >>> Item.bulk_insert([{"name": "a", "qty": 1}, {"name": "b", "qty": 2}])
        2
        """
        values = _bulk.insert_values(cls, rows)
        if values:
            batches = _shard_write.split(cls, using, values)
            if batches is not None:
                _shard_write.insert(cls.__table__, None, batches, _ignore_keys)
            else:
                _execute.run(using or cls.__connection__, True, _operations.insert_many, cls.__table__, values, None)
        return len(values)

    @classmethod
    async def abulk_insert(cls, rows: Iterable[Mapping[str, Any]], *, using: str | None = None) -> int:
        """`bulk_insert` (async; on a sharded model the shards are written concurrently)."""
        values = _bulk.insert_values(cls, rows)
        if values:
            batches = _shard_write.split(cls, using, values)
            if batches is not None:
                await _shard_write.ainsert(cls.__table__, None, batches, _ignore_keys)
            else:
                await _execute.arun(
                    using or cls.__connection__, True, _operations.insert_many, cls.__table__, values, None
                )
        return len(values)

    @classmethod
    def execute_raw(
        cls,
        sql: str,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        using: str | None = None,
    ) -> _operations.RawResult:
        """Run SQL text with bound parameters (``:name`` placeholders) and return a `RawResult`.

        >>> ActiveRecord.execute_raw("SELECT 1").scalar()
        1
        """
        return _execute.run(using or cls.__connection__, True, _operations.execute_raw, sql, _check_params(params))

    @classmethod
    async def aexecute_raw(
        cls,
        sql: str,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        using: str | None = None,
    ) -> _operations.RawResult:
        """`execute_raw` (async)."""
        return await _execute.arun(
            using or cls.__connection__, True, _operations.execute_raw, sql, _check_params(params)
        )

    @classmethod
    def transaction(
        cls, using: str | None = None, *, isolation_level: str | None = None, retry: int | RetryPolicy | None = None
    ) -> TransactionBlock:
        """A transaction on ``using`` (default: this model's connection); nesting makes a savepoint.

        As a ``with`` block, or as a decorator that runs the function in a transaction; with
        ``retry=`` (attempts, or a `RetryPolicy`) the decorated function runs again on a retryable
        error (see `activerecord.errors.retry_class`):

        >>> with User.transaction():
        ...     User.create(name="a")
        >>> @User.transaction(retry=5)
        ... def rename(user_id: int, name: str) -> None: ...
        """
        return TransactionBlock(using or cls.__connection__, isolation_level, retry)

    @classmethod
    def atransaction(
        cls, using: str | None = None, *, isolation_level: str | None = None, retry: int | RetryPolicy | None = None
    ) -> AsyncTransactionBlock:
        """`transaction` for ``async with``, or as a decorator of coroutine functions."""
        return AsyncTransactionBlock(using or cls.__connection__, isolation_level, retry)

    @classmethod
    def run_in_transaction(
        cls,
        body: Callable[[], R],
        *,
        retry: int | RetryPolicy = 5,
        using: str | None = None,
        isolation_level: str | None = None,
    ) -> R:
        """``body()`` in a transaction, the whole of it run again on a retryable error; its result.

        >>> User.run_in_transaction(lambda: User.create(name="a"), retry=3)
        """
        name = using or cls.__connection__
        return _retry.run(RetryPolicy.of(retry), name, isolation_level, body)

    @classmethod
    async def arun_in_transaction(
        cls,
        body: Callable[[], Awaitable[R]],
        *,
        retry: int | RetryPolicy = 5,
        using: str | None = None,
        isolation_level: str | None = None,
    ) -> R:
        """`run_in_transaction` for a coroutine function: ``await body()`` in the transaction."""
        name = using or cls.__connection__
        return await _retry.arun(RetryPolicy.of(retry), name, isolation_level, body)

    @classmethod
    def _ar_tables(cls, models: Iterable[type[ActiveRecord]] | None, name: str) -> list[Table]:
        if models is not None:
            tables = [m.__table__ for m in models]
        elif "__table__" in cls.__dict__:
            tables = [cls.__table__]
        else:
            tables = list(_registry.metadata_for(name).tables.values())
        return sort_tables(tables)

    @classmethod
    def create_all(cls, using: str | None = None, *, models: Iterable[type[ActiveRecord]] | None = None) -> None:
        """Create the missing tables of the models on connection ``using`` (tests, demos; production uses migrations).

        Called on a model class it creates that model's table; ``models=`` picks the models.
        On a shard group the tables are created on every shard's primary (never a replica), one
        shard after the other; a failure stops there, and running it again finishes the rest.
        """
        cls._ar_tables_ddl(using, models, _create_tables)

    @classmethod
    async def acreate_all(cls, using: str | None = None, *, models: Iterable[type[ActiveRecord]] | None = None) -> None:
        """`create_all` (async): the same code, through the greenlet bridge (a shard group's shards
        one after the other)."""
        await run_in_greenlet(cls.create_all, using, models=models)

    @classmethod
    def drop_all(cls, using: str | None = None, *, models: Iterable[type[ActiveRecord]] | None = None) -> None:
        """Drop the tables that `create_all` would create (on every shard's primary for a shard group)."""
        cls._ar_tables_ddl(using, models, _drop_tables)

    @classmethod
    async def adrop_all(cls, using: str | None = None, *, models: Iterable[type[ActiveRecord]] | None = None) -> None:
        """`drop_all` (async): the same code, through the greenlet bridge."""
        await run_in_greenlet(cls.drop_all, using, models=models)

    @classmethod
    def _ar_tables_ddl(
        cls,
        using: str | None,
        models: Iterable[type[ActiveRecord]] | None,
        ddl: Callable[[Connection, list[Table]], None],
    ) -> None:
        name = using or cls.__connection__
        tables = cls._ar_tables(models, name)
        if ConnectionManager.is_shard_group(name):
            _shard_write.on_each_shard(name, ddl, tables)
        else:
            _execute.run(name, True, ddl, tables)


def _ignore_keys(positions: list[int], pks: list[Any] | None) -> None:
    """`bulk_insert` builds no records, so a committed shard has nothing to mark."""


def _bulk_marker(model: type[Self], records: list[Self]) -> _shard_write.Done:
    """Marks the records of one committed shard saved, with the keys the backend returned."""

    def done(positions: list[int], pks: list[Any] | None) -> None:
        model._ar_bulk_done([records[i] for i in positions], pks)

    return done


def _compile_loader(cls: type[ActiveRecord]) -> Any:
    """Build (once per model class) the function that turns a row into a record.

    Loading runs once per row read, so it is generated for the model's columns: one tuple
    unpacking into the instance dict instead of a loop over the names. The row itself (an
    immutable, indexable row: the driver's, a tuple or a Core `Row`) is the snapshot dirty
    tracking compares to: no copy, and one object fewer per record for the garbage collector
    to track. The bookkeeping goes to the record's own slots (see `RecordState`). Rows of
    another width (and models with JSON fields, whose snapshot is serialized) take
    ``_ar_load_general``.
    """
    general = cls._ar_load_general
    if cls._ar_json:
        cls._ar_fast_load = general  # type: ignore[attr-defined]
        return general
    names = cls._ar_names
    # Attribute stores, not stores into ``obj.__dict__``: CPython keeps the values of a fresh
    # instance inline and builds its dict only when something asks for ``__dict__``, one
    # allocation (and one object for the garbage collector to track) fewer per record.
    targets = ", ".join(f"obj.{name}" for name in names)
    source = (
        "def load(row):\n"
        f"    if len(row) != {len(names)}:\n"
        "        return general(row)\n"
        "    obj = new(cls)\n"
        f"    {targets}, = row\n"
        "    obj._ar_saved = row\n"
        "    obj._ar_using = None\n"
        "    obj._ar_loaded = None\n"
        "    return obj\n"
    )
    scope: dict[str, Any] = {"general": general, "new": object.__new__, "cls": cls}
    exec(compile(source, f"<activerecord loader of {cls.__name__}>", "exec"), scope)
    load = scope["load"]
    cls._ar_fast_load = load  # type: ignore[attr-defined]
    return load


def _create_tables(conn: Connection, tables: list[Table]) -> None:
    for table in tables:
        table.create(conn, checkfirst=True)


def _drop_tables(conn: Connection, tables: list[Table]) -> None:
    for table in reversed(tables):
        table.drop(conn, checkfirst=True)


def _check_params(params: Any) -> Any:
    if params is None or isinstance(params, Mapping):
        return params
    if (
        isinstance(params, Sequence)
        and not isinstance(params, (str, bytes))
        and all(isinstance(p, Mapping) for p in params)
    ):
        return list(params)
    raise QueryError("execute_raw() takes its parameters as a mapping (or a list of mappings) of bound values")


__all__ = ["ActiveRecord", "ModelMeta"]

"""Field declarations: what a model attribute is, as a column and as a validated Python value.

A field is declared as ``name: Field[str] = StringField(max_length=100)``. To a type checker
`Field` is a descriptor: ``User.name`` is a ``Column[str]`` (so ``User.name == "a"`` is a
``ColumnElement[bool]``), ``user.name`` is a ``str``, and the model's constructor takes a ``str``
for ``name``. At run time it is no descriptor at all: the model class keeps its fields out of its
namespace (see `ModelMeta`), so reading and writing ``user.name`` stays a plain, specialized
instance attribute access. The field functions return ``Field[T]`` for the type their values
have, ``Field[T | None]`` with ``nullable=True``, so a declaration that disagrees with its field is
a type error.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
)
from sqlalchemy.types import TypeEngine

from ..query.values import FIELD_INFO
from .types import UTCDateTime, big_integer_type, double_type, json_type


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


Validator = Callable[[Any], "str | None"]

T = TypeVar("T")


class Field(Generic[T]):
    """One declared field, whose values are of type ``T``. Holds the options; builds the column and checks values.

    ``protected=True`` keeps a field from keyword assignment (the constructor, ``create``,
    ``update``) outside `ActiveRecord.unprotected`.

    >>> class User(ActiveRecord):
    ...     name: Field[str] = StringField(max_length=100)
    ...     nickname: Field[str | None] = StringField(nullable=True)
    ...     is_admin: Field[bool] = BooleanField(default=False, protected=True)
    """

    python_types: tuple[type, ...] = (object,)
    type_label = "value"

    def __init__(
        self,
        sa_type: TypeEngine[Any],
        *,
        primary_key: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
        unique: bool = False,
        index: bool = False,
        choices: Iterable[Any] | None = None,
        max_length: int | None = None,
        server_default: Any = None,
        comment: str | None = None,
        autoincrement: bool = False,
        validators: Sequence[Validator] = (),
        protected: bool = False,
    ) -> None:
        if primary_key and nullable:
            raise ValueError("a primary key cannot be nullable")
        self.sa_type = sa_type
        self.primary_key = primary_key
        self.nullable = nullable
        self.default = default
        self.unique = unique
        self.index = index
        self.choices: tuple[Any, ...] | None = tuple(choices) if choices is not None else None
        self.max_length = max_length
        self.server_default = server_default
        self.comment = comment
        self.autoincrement = autoincrement
        self.validators = tuple(validators)
        # Not assignable through create()/update()/the constructor (see `ActiveRecord.unprotected`).
        self.protected = protected
        self.name = ""  # set when the model class is built

    if TYPE_CHECKING:
        # For type checkers only: defined at run time, these would make a field a descriptor,
        # and the model class does not keep its fields (see `ModelMeta`). On the class the
        # field reads as its column (`ModelMeta.__getattr__`), on a record as its value.

        @overload
        def __get__(self, instance: None, owner: type[Any]) -> Column[T]: ...
        @overload
        def __get__(self, instance: object, owner: type[Any]) -> T: ...
        def __get__(self, instance: object | None, owner: type[Any]) -> Column[T] | T: ...
        def __set__(self, instance: object, value: T) -> None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def copy(self) -> Field[T]:
        """A fresh copy, for a subclass that inherits the field into a table of its own."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def column(self) -> Column[Any]:
        """The Core column for this field (a new one per table)."""
        return Column(
            self.name,
            self.sa_type,
            primary_key=self.primary_key,
            nullable=self.nullable,
            unique=self.unique or None,
            index=self.index or None,
            server_default=self.server_default,
            comment=self.comment,
            # Query checks find the field of a column they compare (see `query.values`).
            info={FIELD_INFO: self},
            # A primary key declared autoincrement=False is the caller's (a shard key, a generated
            # id): MySQL/MariaDB would otherwise make an integer key AUTO_INCREMENT and renumber 0.
            autoincrement=True if self.autoincrement else (False if self.primary_key else "auto"),
        )

    def initial(self) -> Any:
        """The value a new instance starts with when none is given."""
        default = self.default
        if default is MISSING:
            return None
        return default() if callable(default) else default

    @property
    def generated(self) -> bool:
        """True when the database (not the caller) supplies a missing value on insert."""
        return self.autoincrement or self.server_default is not None

    def check(self, value: Any) -> list[str]:
        """Messages for everything wrong with ``value`` (an empty list when it is fine)."""
        if value is None:
            if self.nullable or self.generated:
                return []
            return ["may not be null"]
        problems: list[str] = []
        if not self.accepts(value):
            problems.append(f"expected {self.type_label}, got {type(value).__name__}")
            return problems
        problem = self.value_problem(value)
        if problem is not None:
            problems.append(problem)
            return problems
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            problems.append(f"longer than {self.max_length} characters")
        if self.choices is not None and value not in self.choices:
            problems.append(f"{value!r} is not one of {list(self.choices)!r}")
        for validator in self.validators:
            message = validator(value)
            if message:
                problems.append(message)
        return problems

    def plain_types(self) -> frozenset[type]:
        """Exact types whose values `check` passes without looking further (empty: always check).

        Validation runs for every field of every row written; a value of one of these types
        skips the call to `check` (only the length limit is still tested by the caller).
        """
        cls = type(self)
        if cls.check is not Field.check or cls.accepts is not Field.accepts:
            return frozenset()
        if self.choices is not None or self.validators:
            return frozenset()
        if self.max_length is not None and set(self.python_types) != {str}:
            return frozenset()  # the caller's length test is for strings only
        return frozenset(self.python_types)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has an acceptable Python type."""
        return isinstance(value, self.python_types) and not (isinstance(value, bool) and bool not in self.python_types)

    def value_problem(self, value: Any) -> str | None:
        """What is wrong with a value of an accepted type that its column cannot hold (None: nothing).

        `guard` is the same test as Python source, for the generated validation code.
        """
        return None

    def guard(self) -> str | None:
        """`value_problem` as an expression of ``v`` true when there is no problem (None: no test)."""
        return None

    def query_value(self, value: Any) -> Any:
        """``value`` (not None) as a comparison value for this field's column, coerced where that is
        lossless; `ValueError` with a message when it cannot be compared to this column.

        Queries check their values with it before any SQL: a backend that casts implicitly
        (MariaDB compares a string column to 0 as a number) never sees a value of another type.
        """
        if not self.accepts(value):
            raise ValueError(f"expected {self.type_label}, got {type(value).__name__}")
        problem = self.value_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def to_json(self, value: Any) -> Any:
        """``value`` as a JSON-ready object (for `to_dict`)."""
        return value


_INT_TEXT = re.compile(r"[+-]?[0-9]{1,20}")


class _IntegerField(Field[int]):
    python_types = (int,)
    type_label = "int"

    def __init__(self, sa_type: TypeEngine[Any], **kw: Any) -> None:
        super().__init__(sa_type, **kw)
        bits = 16 if isinstance(sa_type, SmallInteger) else 64 if isinstance(sa_type, BigInteger) else 32
        #: The smallest and largest value the column holds.
        self.bounds = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)

    def value_problem(self, value: Any) -> str | None:
        low, high = self.bounds
        return None if low <= value <= high else f"out of range ({low} to {high})"

    def guard(self) -> str | None:
        low, high = self.bounds
        return f"{low:d} <= v <= {high:d}"

    def query_value(self, value: Any) -> Any:
        # Digits in a string (a URL parameter) are the number they spell; nothing else is.
        if isinstance(value, str) and _INT_TEXT.fullmatch(value):
            value = int(value)
        return super().query_value(value)


class _FloatField(Field[float]):
    python_types = (float, int)
    type_label = "float"

    def value_problem(self, value: Any) -> str | None:
        return None if _FLOAT_MIN < value < _FLOAT_MAX else "must be a finite number"

    def guard(self) -> str | None:
        return f"{_FLOAT_MIN!r} < v < {_FLOAT_MAX!r}"  # false for NaN, the infinities and huge ints


# The float range (exclusive of infinity), compared exactly to ints.
_FLOAT_MIN = -1.7976931348623157e308
_FLOAT_MAX = 1.7976931348623157e308


_ROUNDINGS = frozenset(
    {
        decimal.ROUND_UP,
        decimal.ROUND_DOWN,
        decimal.ROUND_CEILING,
        decimal.ROUND_FLOOR,
        decimal.ROUND_HALF_UP,
        decimal.ROUND_HALF_DOWN,
        decimal.ROUND_HALF_EVEN,
        decimal.ROUND_05UP,
    }
)


class _DecimalField(Field[decimal.Decimal]):
    python_types = (decimal.Decimal, int, float)
    type_label = "Decimal"

    def __init__(self, sa_type: Numeric[Any], *, rounding: str | None = None, **kw: Any) -> None:
        super().__init__(sa_type, **kw)
        self.precision: int = sa_type.precision or 18
        self.scale: int = sa_type.scale or 0
        self.rounding = rounding
        if rounding is not None and rounding not in _ROUNDINGS:
            raise ValueError(f"rounding must be a decimal rounding mode (decimal.ROUND_HALF_EVEN...), not {rounding!r}")
        self.quantum = decimal.Decimal(1).scaleb(-self.scale)
        # Room for every digit of the column (the default context has 28).
        self.context = decimal.Context(prec=self.precision + 2, rounding=rounding or decimal.ROUND_HALF_EVEN)

    def as_decimal(self, value: Any) -> decimal.Decimal:
        """``value`` as a `Decimal` (a float by its shortest repr: 0.1 is 0.1)."""
        if isinstance(value, decimal.Decimal):
            return value
        return decimal.Decimal(repr(value) if isinstance(value, float) else value)

    def value_problem(self, value: Any) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        number = self.as_decimal(value)
        if not number.is_finite():
            return "must be a finite number"
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        if exponent < -self.scale and self.rounding is None:
            return f"has more than {self.scale} decimal places"
        whole = self.precision - self.scale
        too_big = f"has more than {whole} digits before the decimal point"
        if number.adjusted() >= whole:
            return too_big
        if self.rounding is not None and self.quantize(number).adjusted() >= whole:
            return too_big  # 99.995 rounds up to 100.00
        return None

    def plain_types(self) -> frozenset[type]:
        # A Decimal is measured by `guard` inline; ints, floats and rounding take `check`.
        if self.rounding is not None or self.choices is not None or self.validators:
            return frozenset()
        return frozenset({decimal.Decimal})

    def guard(self) -> str | None:
        # `value_problem` for a plain Decimal, inline: finite, within the digits before the point,
        # no more places than the scale (is_finite first: NaN refuses ordering).
        limit = 10 ** (self.precision - self.scale)
        return f"v.is_finite() and -{limit:d} < v < {limit:d} and v.as_tuple().exponent >= {-self.scale:d}"

    def quantize(self, value: Any) -> decimal.Decimal:
        """``value`` with exactly ``scale`` places (rounded with ``rounding`` when it has more):
        what reading it back from the column gives."""
        return self.as_decimal(value).quantize(self.quantum, context=self.context)

    def query_value(self, value: Any) -> Any:
        if not self.accepts(value):
            raise ValueError(f"expected {self.type_label}, got {type(value).__name__}")
        # A comparison value may have more places than the column (price > 0.005).
        if not self.as_decimal(value).is_finite():
            raise ValueError("must be a finite number")
        return value

    def to_json(self, value: Any) -> Any:
        if value is None:
            return None
        if self.value_problem(value) is None:
            value = self.quantize(value)  # as the column will hold it, before and after a save
        return str(value)


class _StringField(Field[str]):
    python_types = (str,)
    type_label = "str"

    def value_problem(self, value: Any) -> str | None:
        return "may not contain NUL characters" if "\x00" in value else None

    def guard(self) -> str | None:
        return "'\\x00' not in v"


class _BooleanField(Field[bool]):
    python_types = (bool,)
    type_label = "bool"


class _DateField(Field[dt.date]):
    python_types = (dt.date,)
    type_label = "date"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)

    def to_json(self, value: Any) -> Any:
        return None if value is None else value.isoformat()


class _DateTimeField(Field[dt.datetime]):
    python_types = (dt.datetime,)
    type_label = "timezone-aware datetime"

    def __init__(
        self, sa_type: TypeEngine[Any], *, auto_now_add: bool = False, auto_now: bool = False, **kw: Any
    ) -> None:
        super().__init__(sa_type, **kw)
        self.auto_now_add = auto_now_add
        self.auto_now = auto_now

    @property
    def generated(self) -> bool:
        return super().generated or self.auto_now_add or self.auto_now

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dt.datetime) and value.tzinfo is not None

    def query_value(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            raise ValueError("expected a timezone-aware datetime, got a naive one")
        return super().query_value(value)

    def plain_types(self) -> frozenset[type]:
        # `accepts` is a type test plus an aware zone; `field_errors` tests the zone itself.
        cls = type(self)
        if cls.check is not Field.check or cls.accepts is not _DateTimeField.accepts:
            return frozenset()
        if self.choices is not None or self.validators:
            return frozenset()
        return frozenset({dt.datetime})

    def to_json(self, value: Any) -> Any:
        return None if value is None else value.isoformat()


class _JSONField(Field[Any]):
    python_types = (dict, list, str, int, float, bool)
    type_label = "JSON value"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.python_types)

    def query_value(self, value: Any) -> Any:
        problem = _json_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


def _json_problem(value: Any) -> str | None:
    """What keeps ``value`` from being a JSON document every backend compares (None: nothing)."""
    if isinstance(value, str):
        return "may not contain NUL characters" if "\x00" in value else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if -(2**63) <= value < 2**63 else "integer out of the 64-bit range"
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number"
    if isinstance(value, list):
        return next((p for p in map(_json_problem, value) if p is not None), None)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = "keys must be strings" if not isinstance(key, str) else _json_problem(key) or _json_problem(item)
            if problem is not None:
                return problem
        return None
    return f"expected a JSON value, got {type(value).__name__}"


class _UUIDField(Field[uuid.UUID]):
    python_types = (uuid.UUID,)
    type_label = "UUID"

    def query_value(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a UUID") from None
        return super().query_value(value)

    def to_json(self, value: Any) -> Any:
        return None if value is None else str(value)


def PrimaryKeyField(*, big: bool = False, **options: Any) -> Field[int]:  # noqa: N802
    """An auto-incrementing integer primary key (``big=True`` for BIGINT).

    A model that declares no primary key gets this one as ``id``. The database numbers it, so
    keywords do not set it (see `ActiveRecord.unprotected`); ``autoincrement=False`` makes it a
    key the caller gives on a new record (ids from `generate_id`).

    >>> class User(ActiveRecord):
    ...     id: Field[int] = PrimaryKeyField()
    """
    sa_type: TypeEngine[Any] = big_integer_type() if big else Integer()
    options.setdefault("autoincrement", True)
    return _IntegerField(sa_type, primary_key=True, **options)


# Each field function has two signatures for type checkers: ``nullable=True`` (or a bool only
# known at run time) makes it a ``Field[T | None]``, so ``user.nickname`` may be None and
# ``nickname: Field[str] = StringField(nullable=True)`` is reported.


@overload
def IntegerField(*, nullable: Literal[False] = False, **options: Any) -> Field[int]: ...
@overload
def IntegerField(*, nullable: bool, **options: Any) -> Field[int | None]: ...
def IntegerField(*, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """A 32-bit integer. Options: nullable, default, unique, index, choices, primary_key, validators, protected."""
    return _IntegerField(Integer(), nullable=nullable, **options)


@overload
def BigIntegerField(*, nullable: Literal[False] = False, **options: Any) -> Field[int]: ...
@overload
def BigIntegerField(*, nullable: bool, **options: Any) -> Field[int | None]: ...
def BigIntegerField(*, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """A 64-bit integer (ids from `generate_id`, counters)."""
    return _IntegerField(big_integer_type(), nullable=nullable, **options)


@overload
def FloatField(*, nullable: Literal[False] = False, **options: Any) -> Field[float]: ...
@overload
def FloatField(*, nullable: bool, **options: Any) -> Field[float | None]: ...
def FloatField(*, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """A double-precision float."""
    return _FloatField(double_type(), nullable=nullable, **options)


@overload
def DecimalField(
    precision: int = 18, scale: int = 2, *, nullable: Literal[False] = False, **options: Any
) -> Field[decimal.Decimal]: ...
@overload
def DecimalField(
    precision: int = 18, scale: int = 2, *, nullable: bool, **options: Any
) -> Field[decimal.Decimal | None]: ...
def DecimalField(precision: int = 18, scale: int = 2, *, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """An exact decimal with ``precision`` digits, ``scale`` of them after the point.

    NaN, the infinities, more than ``precision - scale`` digits before the point and more than
    ``scale`` places are refused; ``rounding=decimal.ROUND_HALF_EVEN`` (or another rounding mode)
    rounds extra places instead. Saved values are quantized to ``scale`` places, as read back.
    """
    return _DecimalField(Numeric(precision, scale, asdecimal=True), nullable=nullable, **options)


@overload
def StringField(max_length: int = 255, *, nullable: Literal[False] = False, **options: Any) -> Field[str]: ...
@overload
def StringField(max_length: int = 255, *, nullable: bool, **options: Any) -> Field[str | None]: ...
def StringField(max_length: int = 255, *, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """A VARCHAR of at most ``max_length`` characters (checked before saving)."""
    return _StringField(String(max_length), max_length=max_length, nullable=nullable, **options)


@overload
def TextField(*, nullable: Literal[False] = False, **options: Any) -> Field[str]: ...
@overload
def TextField(*, nullable: bool, **options: Any) -> Field[str | None]: ...
def TextField(*, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """Text of any length."""
    return _StringField(Text(), nullable=nullable, **options)


@overload
def BooleanField(*, nullable: Literal[False] = False, **options: Any) -> Field[bool]: ...
@overload
def BooleanField(*, nullable: bool, **options: Any) -> Field[bool | None]: ...
def BooleanField(*, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """True or False."""
    return _BooleanField(Boolean(), nullable=nullable, **options)


@overload
def DateField(*, nullable: Literal[False] = False, **options: Any) -> Field[dt.date]: ...
@overload
def DateField(*, nullable: bool, **options: Any) -> Field[dt.date | None]: ...
def DateField(*, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """A calendar date (`datetime.date`)."""
    return _DateField(Date(), nullable=nullable, **options)


@overload
def DateTimeField(*, nullable: Literal[False] = False, **options: Any) -> Field[dt.datetime]: ...
@overload
def DateTimeField(*, nullable: bool, **options: Any) -> Field[dt.datetime | None]: ...
def DateTimeField(*, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """A timezone-aware datetime; naive values are refused. Read back aware on every backend."""
    return _DateTimeField(UTCDateTime(), nullable=nullable, **options)


@overload
def TimestampField(
    *, auto_now_add: bool = False, auto_now: bool = False, nullable: Literal[False] = False, **options: Any
) -> Field[dt.datetime]: ...
@overload
def TimestampField(
    *, auto_now_add: bool = False, auto_now: bool = False, nullable: bool, **options: Any
) -> Field[dt.datetime | None]: ...
def TimestampField(  # noqa: N802
    *, auto_now_add: bool = False, auto_now: bool = False, nullable: bool = False, **options: Any
) -> Field[Any]:
    """A timezone-aware datetime set by the model: on insert (``auto_now_add``) or on every save (``auto_now``).

    >>> created_at: Field[datetime] = TimestampField(auto_now_add=True)
    """
    return _DateTimeField(UTCDateTime(), auto_now_add=auto_now_add, auto_now=auto_now, nullable=nullable, **options)


def JSONField(**options: Any) -> Field[Any]:  # noqa: N802
    """A JSON document (JSONB on PostgreSQL). In-place changes to it are detected on save.

    Its values are any JSON value, so the annotation says which: ``tags: Field[list[str]] = JSONField()``.
    """
    return _JSONField(json_type(), **options)


@overload
def UUIDField(*, nullable: Literal[False] = False, **options: Any) -> Field[uuid.UUID]: ...
@overload
def UUIDField(*, nullable: bool, **options: Any) -> Field[uuid.UUID | None]: ...
def UUIDField(*, nullable: bool = False, **options: Any) -> Field[Any]:  # noqa: N802
    """A UUID (native on PostgreSQL, CHAR(32) elsewhere). ``default=uuid.uuid4`` for generated keys."""
    return _UUIDField(Uuid(), nullable=nullable, **options)


FastCheck = tuple[str, frozenset[type], int | None, bool, bool, Field[Any], str | None]
"""One field's checks, precomputed per model by `fast_check`."""


def fast_check(name: str, field: Field[Any]) -> FastCheck:
    """``field``'s checks as `field_errors` runs them: its name, `Field.plain_types`, its length
    limit, whether a plain value must carry a time zone, whether None passes, the field, and
    its `Field.guard` (a value test the generated code inlines; `field_errors` calls `check`)."""
    aware = isinstance(field, _DateTimeField)
    return (name, field.plain_types(), field.max_length, aware, field.check(None) == [], field, field.guard())


def field_errors(checks: Sequence[FastCheck], values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every problem of ``values`` (one value per field) with its field's checks, by field name.

    This runs for every field of every row written, so the common case (a value of a plain
    type within its length limit) is decided without calling `Field.check`.
    """
    errors: dict[str, list[str]] = {}
    for name, plain, max_length, aware, none_ok, field, guard in checks:
        value: Any = values[name]
        if value is None:
            if none_ok:
                continue
        elif (
            guard is None
            and value.__class__ in plain
            # (mypy narrows ``value`` to object through the ``in``; it is a str when measured.)
            and (max_length is None or len(value) <= max_length)  # type: ignore[arg-type]
            and (not aware or value.tzinfo is not None)  # type: ignore[attr-defined]
        ):
            continue  # what `check` would accept, without the call
        problems = field.check(value)
        if problems:
            errors[name] = problems
    return errors


def check_terms(checks: Sequence[FastCheck], scope: dict[str, Any]) -> list[str]:
    """Python expressions, one per field, each true when `field_errors` would pass the value of
    that field in the dict ``d`` by its shortcuts alone; the objects they name go into ``scope``.
    Used by generated validation code (`compile_all_valid`, `_bulk`), joined with ``and``: one
    expression per row, with no statement or flag per field."""
    terms = []
    for k, (name, plain, max_length, aware, none_ok, field, test) in enumerate(checks):
        # The value is bound to ``v`` by its first use; a None is fine only where the field takes
        # it (elsewhere it fails the type test, or `check`, which reports it).
        value = "v" if none_ok else f"(v := d[{name!r}])"
        if not plain:
            scope[f"f{k}"] = field
            fine = f"not f{k}.check({value})"
        else:
            if len(plain) == 1:
                scope[f"t{k}"] = next(iter(plain))
                parts = [f"{value}.__class__ is t{k}"]
            else:
                scope[f"p{k}"] = plain
                parts = [f"{value}.__class__ in p{k}"]
            if max_length is not None:
                parts.append(f"len(v) <= {max_length:d}")
            if aware:
                parts.append("v.tzinfo is not None")
            if test is not None:
                parts.append(f"({test})")
            fine = " and ".join(parts)
        terms.append(f"((v := d[{name!r}]) is None or {fine})" if none_ok else f"({fine})")
    return terms


def compile_all_valid(checks: Sequence[FastCheck], label: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate, generated for one model's fields: True when `field_errors` would find nothing
    in the values by its shortcuts alone (a plain type, within the length limit, aware).

    Validation runs for every row written; the generated code tests each field inline, with no
    loop over the checks. False only means "ask `field_errors`", which decides (a subclass of
    ``str`` or a value for a field with choices is valid, but not plainly so).
    """
    scope: dict[str, Any] = {}
    lines = ["def all_valid(d):", f"    return {' and '.join(check_terms(checks, scope)) or 'True'}"]
    exec(compile("\n".join(lines) + "\n", f"<activerecord checks of {label}>", "exec"), scope)
    all_valid: Callable[[Mapping[str, Any]], bool] = scope["all_valid"]
    return all_valid

"""Fields with a role beyond storing a value: foreign keys, lock versions, soft-delete marks.

The model layer recognises them by class when a model is declared (see `_features`), so a model
that declares none of them pays nothing for them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, overload

from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.types import TypeEngine

from ..errors import ConfigurationError
from .fields import Field, _DateTimeField, _IntegerField
from .types import UTCDateTime, big_integer_type

ON_DELETE_RULES = ("CASCADE", "SET NULL", "RESTRICT", "NO ACTION", "SET DEFAULT")


class _ForeignKeyField(_IntegerField):
    """An integer column with a FOREIGN KEY constraint to another model's primary key."""

    def __init__(
        self, sa_type: TypeEngine[Any], *, target: Any, on_delete: str | None, on_update: str | None, **kw: Any
    ) -> None:
        super().__init__(sa_type, **kw)
        self.target = target
        self.on_delete = on_delete
        self.on_update = on_update

    def target_spec(self) -> Any:
        """What `sqlalchemy.ForeignKey` is given: the target's key column, or ``"table.column"``."""
        target = self.target
        if isinstance(target, str):
            return target if "." in target else f"{target}.id"
        return target.__table__.c[target._ar_pk]

    def target_table(self) -> str:
        """The name of the referenced table."""
        target = self.target
        if isinstance(target, str):
            return target.split(".", 1)[0]
        return str(target.__tablename__)

    def column(self) -> Column[Any]:
        column = super().column()
        column.append_foreign_key(ForeignKey(self.target_spec(), ondelete=self.on_delete, onupdate=self.on_update))
        return column


def _rule(kind: str, rule: str | None) -> str | None:
    if rule is None:
        return None
    normal = " ".join(rule.upper().split())
    if normal not in ON_DELETE_RULES:
        raise ConfigurationError(f"{kind} must be one of {', '.join(ON_DELETE_RULES)}, not {rule!r}")
    return normal


@overload
def ForeignKeyField(
    target: Any,
    *,
    on_delete: str | None = None,
    on_update: str | None = None,
    big: bool = False,
    nullable: Literal[False] = False,
    **options: Any,
) -> Field[int]: ...
@overload
def ForeignKeyField(
    target: Any,
    *,
    on_delete: str | None = None,
    on_update: str | None = None,
    big: bool = False,
    nullable: bool,
    **options: Any,
) -> Field[int | None]: ...
def ForeignKeyField(  # noqa: N802
    target: Any,
    *,
    on_delete: str | None = None,
    on_update: str | None = None,
    big: bool = False,
    nullable: bool = False,
    **options: Any,
) -> Field[Any]:
    """An integer referencing another model's primary key, with a FOREIGN KEY constraint.

    ``target`` is the model class, or its table name (``"users"`` or ``"users.id"``) when the
    model is declared later. ``on_delete`` / ``on_update``: ``"CASCADE"``, ``"SET NULL"``,
    ``"RESTRICT"``, ``"NO ACTION"`` or ``"SET DEFAULT"``.

    >>> class Order(ActiveRecord):
    ...     customer_id: Field[int] = ForeignKeyField(Customer, on_delete="CASCADE")
    """
    if not isinstance(target, str) and not hasattr(target, "__table__"):
        raise ConfigurationError(f"ForeignKeyField() takes a model class or a table name, not {target!r}")
    sa_type: TypeEngine[Any]
    if isinstance(target, str):
        sa_type = big_integer_type() if big else Integer()
    else:
        sa_type = target.__table__.c[target._ar_pk].type
    on_delete = _rule("on_delete", on_delete)
    if on_delete == "SET NULL" and not nullable:
        raise ConfigurationError('on_delete="SET NULL" needs nullable=True')
    return _ForeignKeyField(
        sa_type,
        target=target,
        on_delete=on_delete,
        on_update=_rule("on_update", on_update),
        nullable=nullable,
        **options,
    )


class _VersionField(_IntegerField):
    """The optimistic-locking counter: 1 on insert, one more on every update."""


def VersionField(**options: Any) -> Field[int]:  # noqa: N802
    """Optimistic locking: an integer the model bumps on each update and checks in its WHERE.

    An update or delete of a record whose row changed since it was read raises
    `StaleObjectError` and writes nothing.

    >>> class Account(ActiveRecord):
    ...     version: Field[int] = VersionField()
    """
    options.setdefault("default", 1)
    return _VersionField(Integer(), **options)


class _SoftDeleteField(_DateTimeField):
    """When the record was soft-deleted; NULL while it is live."""


def SoftDeleteField(**options: Any) -> Field[dt.datetime | None]:  # noqa: N802
    """Opt a model into soft delete: ``delete()`` sets this timestamp instead of removing the row.

    Queries hide soft-deleted rows unless asked (``with_deleted()``, ``only_deleted()``);
    ``restore()`` brings a record back, ``hard_delete()`` removes its row.

    >>> class Note(ActiveRecord):
    ...     deleted_at: Field[datetime | None] = SoftDeleteField()
    """
    options["nullable"] = True
    options.setdefault("index", True)
    field: Field[Any] = _SoftDeleteField(UTCDateTime(), **options)
    return field


__all__ = ["ON_DELETE_RULES", "ForeignKeyField", "SoftDeleteField", "VersionField"]

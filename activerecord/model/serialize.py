"""Records as JSON-ready data: `to_dict` (fields, loaded relations, ids as strings) and the hooks
through which JSON encoders, pydantic and FastAPI see a record's fields and nothing else.

pydantic is optional: the schema code (`schema`) is imported on first use only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self
from weakref import WeakKeyDictionary

from ..errors import ConfigurationError, QueryError, UnknownFieldError
from ..query import eager as _eager
from .fields import _IntegerField
from .fields_extra import _ForeignKeyField

if TYPE_CHECKING:
    from pydantic import BaseModel, GetCoreSchemaHandler
    from pydantic_core import CoreSchema

SchemaKind = Literal["output", "input", "update"]

_ID_FIELDS: WeakKeyDictionary[type, frozenset[str]] = WeakKeyDictionary()


def id_fields(model: Any) -> frozenset[str]:
    """The fields of ``model`` that ``ids_as_strings`` renders as strings.

    ``__ids_as_strings__`` names them when it is a list; otherwise they are the integer primary
    key and the foreign keys.
    """
    found = _ID_FIELDS.get(model)
    if found is not None:
        return found
    setting = model.__ids_as_strings__
    fields = model.__fields__
    if isinstance(setting, bool):
        found = frozenset(
            n
            for n, f in fields.items()
            if isinstance(f, _IntegerField) and (f.primary_key or isinstance(f, _ForeignKeyField))
        )
    else:
        if isinstance(setting, str):
            raise ConfigurationError(f"{model.__name__}.__ids_as_strings__ is True, False or a list of field names")
        found = frozenset(setting)
        wrong = sorted(n for n in found if not isinstance(fields.get(n), _IntegerField))
        if wrong:
            raise ConfigurationError(
                f"{model.__name__}.__ids_as_strings__ names {', '.join(wrong)}, which are no integer fields"
            )
    _ID_FIELDS[model] = found
    return found


def strings_for(model: Any, ids_as_strings: bool | None) -> frozenset[str]:
    """The fields rendered as strings: ``ids_as_strings`` None means the model's own setting."""
    on = bool(model.__ids_as_strings__) if ids_as_strings is None else ids_as_strings
    return id_fields(model) if on else _NONE


_NONE: frozenset[str] = frozenset()


def _as_dict(record: Any, names: Iterable[str], tree: _eager.Tree, ids_as_strings: bool | None) -> dict[str, Any]:
    model = type(record)
    d = record.__dict__
    fields = model.__fields__
    strings = strings_for(model, ids_as_strings)
    if strings:
        out = {n: str(d[n]) if n in strings and d[n] is not None else fields[n].to_json(d[n]) for n in names}
    else:
        out = {n: fields[n].to_json(d[n]) for n in names}
    for name, sub in tree.items():
        # Attribute access: sync code outside an event loop loads the relation now, as reading
        # it would; anywhere else an unloaded relation raises RelationNotLoaded.
        value = getattr(record, name)
        if model._ar_relations[name].to_many:
            out[name] = [_as_dict(r, r._ar_names, sub, ids_as_strings) for r in value]
        else:
            out[name] = None if value is None else _as_dict(value, value._ar_names, sub, ids_as_strings)
    return out


def _schema_module() -> Any:
    try:
        from . import schema
    except ModuleNotFoundError as exc:
        if exc.name not in ("pydantic", "pydantic_core"):
            raise
        raise ConfigurationError("pydantic schemas need pydantic: pip install 'activerecord[pydantic]'") from exc
    return schema


class Serializable:
    """Record and model methods for JSON and pydantic, inherited by `ActiveRecord`."""

    __slots__ = ()

    __ids_as_strings__: ClassVar[bool | Sequence[str]] = False
    """Render id fields as strings in `to_dict` and the pydantic output schema by default.

    True: the integer primary key and the foreign keys; a list: exactly the integer fields it
    names (ids from other services kept in plain `BigIntegerField` columns, say).
    """

    def to_dict(
        self,
        *,
        only: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        include: Iterable[str] = (),
        ids_as_strings: bool | None = None,
    ) -> dict[str, Any]:
        """The field values as JSON-ready data (datetimes and dates ISO 8601, Decimal and UUID as str).

        ``only`` / ``exclude`` pick fields. ``include`` adds relations, nested as dicts (a list of
        them for a to-many relation, None for a missing parent): ``include=["items",
        "items.product"]``. In async code they must have been loaded (``includes()`` or
        ``aload()``), or `RelationNotLoaded` is raised; sync code loads them as reading them would.
        ``ids_as_strings`` renders id fields (see ``__ids_as_strings__``) as strings, for
        JavaScript clients, whose numbers lose digits past 2**53; None follows the model.

        >>> order.to_dict(include=["items"], ids_as_strings=True)
        {'id': '184467440737095516', 'customer_id': '7', 'items': [{'id': '9', ...}]}
        """
        model: Any = type(self)
        if isinstance(include, str) or isinstance(only, str) or isinstance(exclude, str):
            raise QueryError("to_dict() takes only=, exclude= and include= as lists of names")
        names: Iterable[str] = model._ar_names
        if only is not None or exclude:
            names = list(only) if only is not None else list(names)
            unknown = [n for n in names if n not in model.__fields__]
            if unknown:
                raise UnknownFieldError(model.__name__, {k: ["unknown field"] for k in unknown})
            skip = set(exclude)
            names = [n for n in names if n not in skip]
        tree = _eager.parse_paths(model, list(include)) if include else {}
        return _as_dict(self, names, tree, ids_as_strings)

    @classmethod
    def _ar_string_fields(cls, ids_as_strings: bool | None) -> frozenset[str]:
        return strings_for(cls, ids_as_strings)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """``(field, JSON-ready value)`` pairs, so ``dict(record) == record.to_dict()``.

        This is what JSON encoders that fall back on ``dict(obj)`` (FastAPI's
        ``jsonable_encoder``) see: the fields, never the record's internal state.
        """
        return iter(self.to_dict().items())

    @classmethod
    def pydantic_model(
        cls,
        kind: SchemaKind = "output",
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        ids_as_strings: bool | None = None,
        name: str | None = None,
    ) -> type[BaseModel]:
        """A pydantic model generated from this model's fields (needs ``activerecord[pydantic]``).

        ``kind``: ``"output"`` (every field, as a response carries it; validates records and
        their loaded relations ``include``), ``"input"`` (for creating: keys, automatic
        timestamps and fields with defaults may be left out), ``"update"`` (for partial
        updates: every field optional, keys and automatic timestamps left out). Built once
        per set of arguments. See docs/fastapi.md.

        >>> UserOut = User.pydantic_model()
        >>> UserIn = User.pydantic_model("input", exclude=["id"])
        """
        model: type[BaseModel] = _schema_module().schema_for(
            cls, kind, include=include, exclude=exclude, ids_as_strings=ids_as_strings, name=name
        )
        return model

    @classmethod
    def from_pydantic(cls, data: BaseModel | Mapping[str, Any], **values: Any) -> Self:
        """A new, unsaved record from validated input (a pydantic model or a mapping), checked.

        Only the fields the client gave are set (pydantic's ``exclude_unset``), so the model's
        defaults fill the rest; a null for a field that has a default or is set automatically
        leaves it to that default. ``values`` set fields the input does not carry (a key from
        the URL path, the caller's id). Raises `ValidationError` naming every bad field.

        >>> transfer = Transfer.from_pydantic(body, account_id=account.id)
        """
        record: Self = _schema_module().record_from(cls, data, values)
        return record

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Lets a model class be a pydantic type: FastAPI's ``response_model=User``, ``-> list[User]``
        and ``body: Annotated[User, Body()]``.

        A record validates as itself; other input is validated by the ``"input"`` schema into a
        new, unsaved record. A record serializes as the ``"output"`` schema: its fields only.
        """
        schema: CoreSchema = _schema_module().record_core_schema(cls, handler)
        return schema


__all__ = ["Serializable", "id_fields", "strings_for"]

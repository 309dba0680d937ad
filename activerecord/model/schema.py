"""pydantic models generated from a model's fields, and the core schema that makes a model class
a pydantic type (FastAPI response models and request bodies). Imported on first use only: it
needs pydantic (``activerecord[pydantic]``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal
from weakref import WeakKeyDictionary

import pydantic
from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, PlainSerializer, WithJsonSchema
from pydantic_core import CoreSchema, PydanticCustomError, core_schema
from sqlalchemy import Numeric

from ..errors import ConfigurationError, UnknownFieldError, ValidationError
from ..query import eager as _eager
from .fields import (
    MISSING,
    Field,
    _BooleanField,
    _DateField,
    _DateTimeField,
    _DecimalField,
    _FloatField,
    _IntegerField,
    _JSONField,
    _StringField,
    _UUIDField,
)
from .fields_extra import _SoftDeleteField, _VersionField

KINDS = ("output", "input", "update")

_CACHE: WeakKeyDictionary[type, dict[tuple[Any, ...], type[BaseModel]]] = WeakKeyDictionary()

# ISO 8601 with "+00:00", as `to_dict` writes it (pydantic's own JSON writes "Z"): a record reads
# the same through every path (to_dict, jsonable_encoder, a response model).
_ISO_DATETIME = (
    PlainSerializer(dt.datetime.isoformat, return_type=str, when_used="json-unless-none"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
)
# An id as a string in JSON (digits past 2**53 survive JavaScript); input takes the string or a number.
_ID_AS_STRING = (
    PlainSerializer(str, return_type=str, when_used="json-unless-none"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+$"}),
)


def _base_type(field: Field[Any]) -> Any:
    """The Python type pydantic validates a field's value as (before nullability)."""
    if isinstance(field, _BooleanField):
        return bool
    if isinstance(field, _IntegerField):
        return int
    if isinstance(field, _FloatField):
        return float
    if isinstance(field, _DecimalField):
        sa_type = field.sa_type
        if isinstance(sa_type, Numeric) and sa_type.precision is not None:
            return Annotated[
                decimal.Decimal, pydantic.Field(max_digits=sa_type.precision, decimal_places=sa_type.scale)
            ]
        return decimal.Decimal
    if isinstance(field, _StringField):
        if field.max_length is not None:
            return Annotated[str, pydantic.StringConstraints(max_length=field.max_length)]
        return str
    if isinstance(field, _DateTimeField):
        return pydantic.AwareDatetime
    if isinstance(field, _DateField):
        return dt.date
    if isinstance(field, _UUIDField):
        return uuid.UUID
    if isinstance(field, _JSONField):
        return pydantic.JsonValue
    return Any


def _checker(field: Field[Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        problems = field.check(value)
        if problems:
            raise PydanticCustomError("field_invalid", "{message}", {"message": "; ".join(problems)})
        return value

    return check


def _field_type(field: Field[Any], kind: str, as_string: bool) -> Any:
    base = _base_type(field)
    extras: list[Any] = []
    if field.choices is not None and all(isinstance(c, (str, int, bool)) for c in field.choices):
        base = Literal[field.choices]
    if kind != "output" and field.validators:
        extras.append(pydantic.AfterValidator(_checker(field)))
    if as_string:
        extras.extend(_ID_AS_STRING)
    elif isinstance(field, _DateTimeField):
        extras.extend(_ISO_DATETIME)
    if extras:
        base = Annotated[(base, *extras)]
    return base


def _automatic(field: Field[Any]) -> bool:
    """Whether the model (or the database) fills the field in when a new record leaves it out."""
    return field.primary_key or field.generated or field.default is not MISSING


class RecordOutput(BaseModel):
    """Base of the generated output models: reads a record's fields and its included relations."""

    model_config = ConfigDict(from_attributes=True)

    ar_relations: ClassVar[tuple[tuple[str, bool], ...]] = ()
    """The included relations, as (name, to-many) pairs."""

    @pydantic.model_validator(mode="before")
    @classmethod
    def _read_record(cls, value: Any) -> Any:
        # A record's relations are read here, not by pydantic's attribute access, so an
        # unloaded one raises RelationNotLoaded as itself (pydantic would report a missing
        # attribute, or an invalid list for an unloaded collection).
        if not isinstance(getattr(type(value), "_ar_names", None), tuple):
            return value
        d = value.__dict__
        data = {n: d[n] for n in value._ar_names}
        for name, to_many in cls.ar_relations:
            related = getattr(value, name)
            data[name] = list(related) if to_many else related
        return data


def _read_only(field: Field[Any]) -> bool:
    """Keys, automatic timestamps, lock versions and soft-delete marks: the model keeps them."""
    if field.primary_key or isinstance(field, (_VersionField, _SoftDeleteField)):
        return True
    return isinstance(field, _DateTimeField) and (field.auto_now_add or field.auto_now)


def _definition(field: Field[Any], kind: str, as_string: bool) -> tuple[Any, Any]:
    """The (annotation, FieldInfo) of one field in a generated model."""
    annotation = _field_type(field, kind, as_string)
    info: dict[str, Any] = {}
    if field.comment:
        info["description"] = field.comment
    if kind == "output":
        return (annotation | None if field.nullable else annotation), pydantic.Field(**info)
    if kind == "update":
        return annotation | None if field.nullable else annotation, pydantic.Field(None, **info)
    default = field.default
    if default is not MISSING and not callable(default):
        return (annotation | None if field.nullable else annotation), pydantic.Field(default, **info)
    if field.nullable or _automatic(field):
        # Optional: left out (or null), the model's default or the database fills it in.
        return annotation | None, pydantic.Field(None, **info)
    return annotation, pydantic.Field(**info)


def _default_name(model: Any, kind: str, include: Sequence[str], ids_as_strings: bool | None) -> str:
    name: str = model.__name__
    if include:
        parts = ["".join(p.title() for p in path.replace(".", "_").split("_")) for path in include]
        name += "With" + "And".join(parts)
    if ids_as_strings is not None and ids_as_strings != bool(model.__ids_as_strings__):
        name += "StringIds" if ids_as_strings else "NumberIds"
    return name + {"output": "", "input": "Input", "update": "Update"}[kind]


def schema_for(
    model: Any,
    kind: str = "output",
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    ids_as_strings: bool | None = None,
    name: str | None = None,
) -> type[BaseModel]:
    """The pydantic model of ``model``'s fields for ``kind`` (see `ActiveRecord.pydantic_model`)."""
    if "__table__" not in model.__dict__:
        raise ConfigurationError(f"{model.__name__} is abstract and has no fields to describe")
    if kind not in KINDS:
        raise ConfigurationError(f"pydantic_model() kind is one of {', '.join(KINDS)}, not {kind!r}")
    if isinstance(include, str) or isinstance(exclude, str):
        raise ConfigurationError("pydantic_model() takes include= and exclude= as lists of names")
    if include and kind != "output":
        raise ConfigurationError("pydantic_model() includes relations in the output schema only")
    key = (kind, tuple(include), tuple(exclude), ids_as_strings, name)
    cache = _CACHE.setdefault(model, {})
    found = cache.get(key)
    if found is not None:
        return found
    unknown = [n for n in exclude if n not in model.__fields__]
    if unknown:
        raise UnknownFieldError(model.__name__, {n: ["unknown field"] for n in unknown})
    tree = _eager.parse_paths(model, list(include))
    name = name or _default_name(model, kind, include, ids_as_strings)
    built = _build(model, kind, tree, set(exclude), ids_as_strings, name)
    cache[key] = built
    return built


def _paths(tree: _eager.Tree) -> list[str]:
    """``tree`` (from `parse_paths`) back as dotted paths."""
    paths = []
    for name, sub in tree.items():
        paths.append(name)
        paths.extend(f"{name}.{path}" for path in _paths(sub))
    return paths


def _build(
    model: Any, kind: str, tree: _eager.Tree, exclude: set[str], ids_as_strings: bool | None, name: str
) -> type[BaseModel]:
    strings = model._ar_string_fields(ids_as_strings)
    definitions: dict[str, Any] = {}
    for fname, field in model.__fields__.items():
        if fname in exclude or (kind == "update" and _read_only(field)):
            continue
        definitions[fname] = _definition(field, kind, fname in strings)
    for rname, sub in tree.items():
        relation = model._ar_relations[rname]
        target: Any = schema_for(relation.ensure().target, "output", include=_paths(sub), ids_as_strings=ids_as_strings)
        definitions[rname] = (list[target] if relation.to_many else target | None, pydantic.Field())
    doc = f"{model.__name__} ({kind}), generated from its fields."
    if kind != "output":
        built: type[BaseModel] = pydantic.create_model(
            name, __config__=ConfigDict(extra="forbid"), __doc__=doc, __module__=model.__module__, **definitions
        )
        return built
    # Output models read records: ``UserOut.model_validate(user)``.
    output: type[RecordOutput] = pydantic.create_model(
        name, __base__=RecordOutput, __doc__=doc, __module__=model.__module__, **definitions
    )
    output.ar_relations = tuple((n, model._ar_relations[n].to_many) for n in tree)
    return output


def record_from(model: Any, data: BaseModel | Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Any:
    """A new, unsaved, validated record from a pydantic model instance or a mapping, plus ``extra``."""
    if isinstance(data, BaseModel):
        values = data.model_dump(exclude_unset=True)
    elif isinstance(data, Mapping):
        values = dict(data)
    else:
        raise ConfigurationError(
            f"{model.__name__}.from_pydantic() takes a pydantic model or a mapping, not {type(data).__name__}"
        )
    fields = model.__fields__
    for fname in [n for n, v in values.items() if v is None]:
        field = fields.get(fname)
        if field is not None and not field.nullable and _automatic(field):
            del values[fname]  # null for "fill it in": the default, the key or the timestamp
    if extra:
        values.update(extra)
    record = model(**values)
    record.validate()
    return record


def record_core_schema(model: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    """The core schema of a model class as a pydantic type (`ActiveRecord.__get_pydantic_core_schema__`)."""
    if "__table__" not in model.__dict__:
        raise ConfigurationError(f"{model.__name__} is abstract: only concrete models are pydantic types")
    output = schema_for(model, "output")
    names = tuple(output.model_fields)

    def build(value: BaseModel) -> Any:
        try:
            return record_from(model, value)
        except ValidationError as exc:
            raise PydanticCustomError(
                "record_invalid", "{message}", {"message": str(exc), "errors": exc.errors}
            ) from None

    def validate(value: Any, inner: core_schema.ValidatorFunctionWrapHandler) -> Any:
        return value if isinstance(value, model) else inner(value)

    def dump(record: Any) -> BaseModel:
        d = record.__dict__
        return output.model_construct(**{n: d[n] for n in names})

    input_schema = handler.generate_schema(schema_for(model, "input"))
    from_input = core_schema.no_info_after_validator_function(build, input_schema)
    return core_schema.no_info_wrap_validator_function(
        validate,
        from_input,
        serialization=core_schema.plain_serializer_function_ser_schema(
            dump, return_schema=handler.generate_schema(output)
        ),
    )


__all__ = ["KINDS", "RecordOutput", "record_core_schema", "record_from", "schema_for"]

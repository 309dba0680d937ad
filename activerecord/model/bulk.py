"""The insert values of many rows, checked as `save` checks one record, without building records.

`bulk_insert` and `upsert` hand their rows to one executemany and return no records, so a
record per row (its constructor, its snapshot) would be work for nothing. The values get
exactly the treatment a record gets on insert: defaults, ``auto_now``/``auto_now_add``
timestamps, every field check, the primary-key and server-default rules. A model with
validators written as methods, or rows that are records or name relations, take the record
path (`ActiveRecord._ar_bulk`), since those need a record to run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..dialects.utc import utcnow
from ..engine.operations import SameKeys
from ..errors import ValidationError
from ..query import shard_writes as _shard_write
from .fields import check_terms, field_errors


def insert_values(model: Any, rows: Iterable[Any]) -> list[dict[str, Any]]:
    """The validated insert values of ``rows``, in order; `ValidationError` names every problem.

    Nothing is written here: the caller runs SQL only when every row passed. When every row has
    the same columns, the list is a `SameKeys` (the executemany needs no grouping by columns).
    """
    rows = list(rows)
    values = _built_values(model, rows)
    return _record_values(model, rows) if values is None else values


def new_records(model: Any, rows: Iterable[Any], using: str | None) -> tuple[list[Any] | None, list[dict[str, Any]]]:
    """The records of `insert_many` (None: made from the values once inserted, by `saved`) and
    their validated insert values.

    Rows that are plain dicts of a model without method validators, JSON fields, protected keys
    among them or shards are checked by the generated bulk path, and their records made after
    the insert in one step each, as loaded records are; the others get a record each first,
    which checks itself as `save` does.
    """
    rows = list(rows)
    protected = model._ar_protected
    if not (
        model._ar_json
        or (protected and any(row.__class__ is dict and not protected.isdisjoint(row) for row in rows))
        or _shard_write.group_of(model, using) is not None
    ):
        values = _built_values(model, rows)
        if values is not None:
            return None, values
    records, values = model._ar_bulk(rows)
    return records, values


def saved(model: Any, records: list[Any] | None, values: list[dict[str, Any]], keys: list[Any] | None) -> list[Any]:
    """The records of an `insert_many` once it committed, with the keys the backend returned."""
    if records is not None:
        done: list[Any] = model._ar_bulk_done(records, keys)
        return done
    if keys is None:
        keys = [d.get(model._ar_pk) for d in values]
    make = model.__dict__.get("_ar_bulk_records") or _compile_records(model)
    made: list[Any] = make(values, keys)
    return made


def _built_values(model: Any, rows: list[Any]) -> list[dict[str, Any]] | None:
    """The values of the generated bulk path, or None when the rows need a record each."""
    if model._ar_checks:
        return None
    build = model.__dict__.get("_ar_bulk_build") or _compile_builder(model)
    now = utcnow() if model._ar_auto_add else None  # one instant for the whole batch
    errors: dict[str, list[str]] = {}
    out: list[dict[str, Any]] | None = build(rows, now, errors)
    if out is None:
        return None
    if errors:
        raise ValidationError(model.__name__, errors)
    for name, field in model._ar_rounded:
        # Rounded here as a record rounds them, not by the backend's own rule (half up).
        for d in out:
            if d[name] is not None:
                d[name] = field.quantize(d[name])
    pk = model._ar_pk
    if out.__class__ is not SameKeys:
        keyed = sum(pk in d for d in out)
        if keyed and keyed != len(out):
            raise ValidationError(model.__name__, {pk: ["give it for every row or for none"]})
    return out


def _compile_records(model: Any) -> Any:
    """Generate (once per model) ``make(values, keys)``: the saved records of inserted values.

    What `_ar_bulk_done` makes of a record per row, made as the loader makes a loaded record:
    the values in declaration order (the key from the backend, the columns left to the server
    None) are the snapshot, unpacked into the record by attribute stores.
    """
    names = model._ar_names
    pk = model._ar_pk
    leavable = {pk, *model._ar_server_defaults}
    items = ", ".join("key" if n == pk else f"d.get({n!r})" if n in leavable else f"d[{n!r}]" for n in names)
    targets = ", ".join(f"obj.{name}" for name in names)
    source = (
        "def make(values, keys):\n"
        "    out = []\n"
        "    append = out.append\n"
        "    for d, key in zip(values, keys, strict=True):\n"
        "        obj = new(cls)\n"
        f"        row = ({items},)\n"
        f"        {targets}, = row\n"
        "        obj._ar_saved = row\n"
        "        obj._ar_using = None\n"
        "        obj._ar_loaded = None\n"
        "        append(obj)\n"
        "    return out\n"
    )
    scope: dict[str, Any] = {"new": object.__new__, "cls": model}
    exec(compile(source, f"<activerecord inserted records of {model.__name__}>", "exec"), scope)
    make = scope["make"]
    model._ar_bulk_records = make
    return make


def _compile_builder(model: Any) -> Any:
    """Generate (once per model) ``build(rows, now, errors)``: the values of each row as a
    record would insert them, in a list; the messages of rows that fail go to ``errors``.
    It returns None at the first row that is no mapping or has a key that is no field (a
    record, or a relation's name: the record path's business).

    It is the same work a record does on insert, unrolled for the model's fields: every field
    (missing ones None), defaults for the fields not given, ``auto_now`` / ``auto_now_add``
    stamps, the checks decided inline where `field_errors` would decide them by its shortcuts
    (anything else is handed to it), and the primary key and server-default columns left to the
    database when None. One loop in one generated function, where a generated call per row and a
    test of its keys took a fifth of the time (0.08 of 0.41 µs a row).

    A row that does not name the columns left to the database (the common case: no primary key
    given) takes a shorter path, with those columns never in its dict: no test and no deletion
    for them, and every such row has the same keys (`SameKeys`).
    """
    defaulted = {name for name, _ in model._ar_defaulted} | set(model._ar_auto_add)
    takes_none = {check[0] for check in model._ar_fast_checks if check[4]}
    # The columns a row may leave out for the database to fill: those a None is valid for.
    leavable = [
        name for name in (model._ar_pk, *model._ar_server_defaults) if name not in defaulted and name in takes_none
    ]
    lean = {name: None for name in model._ar_blank if name not in leavable}
    scope: dict[str, Any] = {
        "blank": model._ar_blank,
        "lean": lean,
        "field_errors": field_errors,
        "checks": model._ar_fast_checks,
        "Mapping": Mapping,
        "SameKeys": SameKeys,
    }
    fill = []
    for k, (name, field) in enumerate(model._ar_defaulted):
        scope[f"initial{k}"] = field.initial
        fill.append(f"if {name!r} not in row: d[{name!r}] = initial{k}()")
    for name in model._ar_auto_add:
        always = name in model._ar_auto_now
        fill.append(f"d[{name!r}] = now" if always else f"if d[{name!r}] is None: d[{name!r}] = now")
    # A value the inline checks cannot pass plainly goes to `field_errors` for the row, which
    # decides (a str subclass, say, is valid): the row is kept unless it found a problem.
    every = " and ".join(check_terms(model._ar_fast_checks, scope)) or "True"
    short = " and ".join(check_terms([c for c in model._ar_fast_checks if c[0] in lean], scope)) or "True"
    general = [
        "d = {**blank, **row}",
        f"if len(d) != {len(model._ar_blank)}: return None",  # a key that is no field
        *fill,
        f"if not ({every}) and failed(i, d, errors): continue",
        *(f"if d[{name!r}] is None: del d[{name!r}]" for name in (model._ar_pk, *model._ar_server_defaults)),
        "same = False",
    ]
    copied = [
        "if row.__class__ is not dict and not isinstance(row, Mapping): return None",
        "d = {**lean, **row}",
        f"if len(d) == {len(lean)}:",
        *(f"    {line}" for line in fill),
        f"    if not ({short}) and failed(i, d, errors): continue",
        "else:",
        *(f"    {line}" for line in general),
    ]
    if not fill and not model._ar_rounded:
        # A dict of exactly these columns needs nothing filled in or changed: it is sent as it
        # is, read only from here on (no copy: validation of a row of two strings 0.22 -> 0.14 µs).
        exact = " and ".join([f"len(row) == {len(lean)}", *(f"{name!r} in row" for name in lean)])
        copied = [
            f"if row.__class__ is dict and {exact}:",
            "    d = row",
            f"    if not ({short}) and failed(i, d, errors): continue",
            "else:",
            *(f"    {line}" for line in copied),
        ]
    source = [
        "def build(rows, now, errors):",
        "    out = SameKeys()",
        "    append = out.append",
        "    same = True",
        "    for i, row in enumerate(rows):",
        *(f"        {line}" for line in copied),
        "        append(d)",
        "    return out if same else list(out)",
        "",
        "def failed(i, d, errors):",
        "    problems = field_errors(checks, {**blank, **d})",
        "    for name, messages in problems.items():",
        "        errors[f'rows[{i}].{name}'] = messages",
        "    return bool(problems)",
    ]
    exec(compile("\n".join(source) + "\n", f"<activerecord bulk values of {model.__name__}>", "exec"), scope)
    build = scope["build"]
    model._ar_bulk_build = build
    return build


def _record_values(model: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """The insert values by way of a record per row: for method validators, which need a
    record; for rows that are records; for unknown keys, which may name relations."""
    values: list[dict[str, Any]] = model._ar_bulk(rows)[1]
    return values

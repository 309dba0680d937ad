"""What a service's ``env.py`` calls: `run_env` configures Alembic the same way for every service.

The command that runs ``env.py`` (`activerecord.migrations.upgrade` and friends) puts a `RunState`
in the Alembic config's ``attributes``: the open connection, the service's models and whether to
take the migration lock. ``run_env`` reads it, so ``env.py`` itself stays two lines long.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Connection, Float, MetaData

from ..dialects import BACKENDS, backend_for
from ..errors import MigrationError
from ..model.types import UTCDateTime
from ._lock import migration_lock

STATE_KEY = "activerecord"


def default_version_table(connection: str) -> str:
    """The version table of connection ``connection``: one per service, so services sharing a database never collide."""
    return "alembic_version_" + re.sub(r"\W", "_", connection.lower())


@dataclass
class RunState:
    """One migration run on one database, filled in by `run_env`."""

    connection: str
    metadata: MetaData
    directory: str
    lock: bool = False
    lock_timeout: float = 600.0
    on_wait: Callable[[str], None] | None = None
    conn: Connection | None = None
    version_table: str = ""
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    lock_wait: float = 0.0
    ran: bool = field(default=False)


def _include_name(metadata: MetaData) -> Callable[[str | None, str, Any], bool]:
    def include(name: str | None, type_: str, parent_names: Any) -> bool:
        # A service sees only its own tables: another service's tables and version table in a
        # shared database are neither reported as removed nor dropped.
        if type_ == "table":
            return name in metadata.tables
        return True

    return include


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations are written in plain SQLAlchemy types, so they never import activerecord's
    # private modules and keep working whatever becomes of them.
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)" + "".join(
            _render_variant(variant, backend.name, *backend.aliases, context=autogen_context)
            for backend in BACKENDS.values()
            if (variant := backend.datetime_type()) is not None
        )
    if isinstance(obj, JSON) and not type(obj).__module__.startswith("sqlalchemy.dialects."):
        # Alembic's own rendering of a dialect's JSON variant names ``Text`` without importing it.
        null = f"none_as_null={obj.none_as_null!r}"
        variants = getattr(obj, "_variant_mapping", {})
        return f"sa.JSON({null})" + "".join(
            _render_variant(variant, name, context=autogen_context, arguments=null)
            for name, variant in variants.items()
        )
    return False


def _render_variant(variant: Any, *names: str, context: Any, arguments: str | None = None) -> str:
    """``.with_variant(<dialect module>.<TYPE>(...), 'name', ...)``, importing the dialect module."""
    module = type(variant).__module__.split(".")[2]  # sqlalchemy.dialects.<module>...
    context.imports.add(f"from sqlalchemy.dialects import {module}")
    rendered = f"{type(variant).__name__}({arguments})" if arguments is not None else repr(variant)
    return f".with_variant({module}.{rendered}, {', '.join(repr(n) for n in names)})"


def _compare_type(
    context: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    # MySQL/MariaDB reflect FloatField's FLOAT(53) as DOUBLE, which is what it created: the same.
    if (
        isinstance(metadata_type, Float)
        and isinstance(inspected_type, Float)
        and type(inspected_type).__name__ in ("DOUBLE", "DOUBLE_PRECISION")
        and (metadata_type.precision or 53) > 24
    ):
        return False
    return None  # Alembic's own comparison


def configure_options(metadata: MetaData, version_table: str) -> dict[str, Any]:
    """The options every service's environment passes to ``context.configure``.

    Batch mode lets the same script alter tables on SQLite (which rebuilds them) and on servers
    (which alter in place); types and server defaults are compared so ``db check`` sees them.
    """
    return {
        "target_metadata": metadata,
        "version_table": version_table,
        "render_as_batch": True,
        "compare_type": _compare_type,
        "compare_server_default": True,
        "include_name": _include_name(metadata),
        "render_item": _render_item,
    }


def _backend_options(conn: Connection) -> dict[str, Any]:
    return backend_for(conn.dialect).migration_options()


def run_env(connection: str, *, version_table: str | None = None, **options: Any) -> None:
    """Run the current Alembic command for the service on connection ``connection``.

    Called from a service's ``env.py``; ``options`` go to ``context.configure`` unchanged (for the
    rare service that needs e.g. ``include_schemas``).
    """
    from alembic import context

    state = context.config.attributes.get(STATE_KEY)
    if not isinstance(state, RunState) or state.conn is None:
        raise MigrationError(
            "this env.py is run by `activerecord db ...` or activerecord.migrations, not by the plain `alembic` command"
        )
    if state.connection != connection:
        raise MigrationError(
            f"{state.directory} holds the migrations of connection {connection!r}, not {state.connection!r}"
        )
    if context.is_offline_mode():
        raise MigrationError("offline (--sql) migrations are not supported")
    conn = state.conn
    state.version_table = version_table or default_version_table(connection)
    lock: AbstractContextManager[float] = (
        migration_lock(conn, state.version_table, state.lock_timeout, state.on_wait) if state.lock else nullcontext(0.0)
    )
    with lock as waited:
        state.lock_wait = waited
        context.configure(
            connection=conn,
            **{**configure_options(state.metadata, state.version_table), **_backend_options(conn), **options},
        )
        migration_context = context.get_context()
        state.before = tuple(migration_context.get_current_heads())
        # Reading the version table began a transaction; end it so Alembic begins its own.
        conn.commit()
        with context.begin_transaction():
            context.run_migrations()
        if conn.in_transaction():
            conn.commit()
        state.after = tuple(migration_context.get_current_heads())
        conn.commit()
        state.ran = True

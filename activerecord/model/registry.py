"""Which models live on which named connection, and the `MetaData` that holds their tables.

Each connection has its own `MetaData`, so a service's migrations and ``create_all`` see only
its own tables.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import MetaData

# Every constraint and index gets a predictable name, so a migration can drop or alter it on
# every backend (Alembic cannot drop an unnamed constraint) and autogenerate compares like with like.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_metadata: dict[str, MetaData] = {}
_models: dict[str, list[type[Any]]] = {}


def metadata_for(name: str) -> MetaData:
    """The `MetaData` holding the tables of the models declared on connection ``name``."""
    metadata = _metadata.get(name)
    if metadata is None:
        metadata = _metadata[name] = MetaData(naming_convention=NAMING_CONVENTION)
    return metadata


def models_for(name: str) -> list[type[Any]]:
    """The model classes declared on connection ``name``, in declaration order."""
    return list(_models.get(name, ()))


def connection_names() -> list[str]:
    """Every connection name some model is declared on."""
    return list(_models)


def snake_case(name: str) -> str:
    """A class name in snake case, as default table and key names use it: ``OrderItem`` -> ``order_item``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def register(name: str, model: type[Any]) -> None:
    """Record ``model`` as living on connection ``name``."""
    _models.setdefault(name, []).append(model)

"""Which models live on which named connection, and the `MetaData` that holds their tables.

Each connection has its own `MetaData`, so a service's migrations and ``create_all`` see only
its own tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData

_metadata: dict[str, MetaData] = {}
_models: dict[str, list[type[Any]]] = {}


def metadata_for(name: str) -> MetaData:
    """The `MetaData` holding the tables of the models declared on connection ``name``."""
    metadata = _metadata.get(name)
    if metadata is None:
        metadata = _metadata[name] = MetaData()
    return metadata


def models_for(name: str) -> list[type[Any]]:
    """The model classes declared on connection ``name``, in declaration order."""
    return list(_models.get(name, ()))


def connection_names() -> list[str]:
    """Every connection name some model is declared on."""
    return list(_models)


def register(name: str, model: type[Any]) -> None:
    """Record ``model`` as living on connection ``name``."""
    _models.setdefault(name, []).append(model)

"""Per-service schema migrations with Alembic: the commands behind `activerecord db`, callable from Python.

Each named connection is one service with its own migrations folder (``migrations/<connection>``)
and its own version table (``alembic_version_<connection>``)::

    from activerecord import migrations

    migrations.upgrade("users")                   # every target database, under the migration lock
    await migrations.aupgrade("users")            # the same from async start-up code
    migrations.check("users")                     # SchemaDriftError when models and migrations differ
"""

from ._env import configure_options, default_version_table, run_env
from ._runner import (
    DEFAULT_DIRECTORY,
    DEFAULT_LOCK_TIMEOUT,
    NodeStatus,
    RevisionInfo,
    acheck,
    acurrent,
    adowngrade,
    aupgrade,
    check,
    current,
    directory_for,
    downgrade,
    history,
    init,
    revision,
    upgrade,
)

__all__ = [
    "DEFAULT_DIRECTORY",
    "DEFAULT_LOCK_TIMEOUT",
    "NodeStatus",
    "RevisionInfo",
    "acheck",
    "acurrent",
    "adowngrade",
    "aupgrade",
    "check",
    "configure_options",
    "current",
    "default_version_table",
    "directory_for",
    "downgrade",
    "history",
    "init",
    "revision",
    "run_env",
    "upgrade",
]

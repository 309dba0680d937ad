"""The files `activerecord db init` writes: a two-line ``env.py`` and Alembic's revision template."""

from __future__ import annotations

ENV_PY = '''"""Alembic environment of the service on connection {connection!r}.

Run it with `activerecord db ... --connection {connection}` or `activerecord.migrations.upgrade({connection!r})`.
"""

from activerecord.migrations import run_env

run_env({connection!r}, version_table={version_table!r})
'''

SCRIPT_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''

README = """Schema migrations of the service on connection {connection!r}, managed with `activerecord db`.

    activerecord db revision --connection {connection} -m "add a column" --autogenerate
    activerecord db upgrade --connection {connection}
    activerecord db check --connection {connection}
"""

"""Alembic environment of the service on connection 'users'.

Run it with `activerecord db ... --connection users` or `activerecord.migrations.upgrade('users')`.
"""

from activerecord.migrations import run_env

run_env('users', version_table='alembic_version_users')

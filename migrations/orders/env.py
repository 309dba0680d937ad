"""Alembic environment of the service on connection 'orders'.

Run it with `activerecord db ... --connection orders` or `activerecord.migrations.upgrade('orders')`.
"""

from activerecord.migrations import run_env

run_env('orders', version_table='alembic_version_orders')

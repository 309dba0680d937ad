"""activerecord, sync API, written against the public contract only.

``BENCH_AR_METRICS=1`` runs it with metrics on (``activerecord.ops.instrument()``, what a service
exporting to Prometheus runs); ``BENCH_AR_METRICS=otel`` also publishes them through an
OpenTelemetry SDK ``MeterProvider``. The ``activerecord-metrics`` contender runs it with metrics on
whatever the environment says, so that one run interleaves the rounds with metrics off and on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from activerecord import ActiveRecord, ConnectionManager
from bench.contenders.ar_models import Item, Narrow, StreamItem, aware_rows, configure
from bench.contenders.base import OnBatch, SyncContender
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import NarrowRow, Row


def instrument_from_env(mode: str | None = None) -> None:
    """Turn metrics on when ``mode`` (by default ``BENCH_AR_METRICS``) asks for them."""
    mode = os.environ.get("BENCH_AR_METRICS", "") if mode is None else mode
    if not mode or mode == "0":
        return
    from activerecord import ops

    meter_provider = None
    if mode == "otel":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    ops.instrument(meter_provider=meter_provider)


class Contender(SyncContender):
    """Model-level calls, in the connection scope the Core baseline uses.

    Where Core holds one connection for a whole workload (``with engine.connect()``), this
    contender holds one too, through the public API: ``with Item.transaction():``. Outside a
    transaction each call would check a pooled connection out and back in (and, on psycopg and
    PyMySQL, pay a BEGIN/ROLLBACK round trip), which is not what the baseline measures.
    """

    packages = ("activerecord", "SQLAlchemy", "psycopg", "PyMySQL")
    streaming = "Model.find().batches(batch)"
    #: Metrics mode as ``BENCH_AR_METRICS`` takes it; None: that variable decides.
    metrics: str | None = None

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        configure(target)
        instrument_from_env(self.metrics)

    def prepare_rows(self, rows: Sequence[Row]) -> Sequence[Row]:
        return aware_rows(rows)

    def reset(self) -> None:
        with ActiveRecord.transaction():
            for statement in reset_statements(self.target.backend):
                ActiveRecord.execute_raw(statement)

    def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        with Item.transaction():
            return [Item.create(**row._asdict()).id for row in rows]

    def bulk_insert(self, rows: Sequence[Row]) -> None:
        Item.bulk_insert([row._asdict() for row in rows])

    def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        Narrow.bulk_insert([row._asdict() for row in rows])

    def insert_many_returning(self, rows: Sequence[NarrowRow]) -> list[int]:
        return [record.id for record in Narrow.insert_many([row._asdict() for row in rows])]

    # W8: each operation by itself, outside any transaction, as a request handler does.

    def mixed_get(self, pk: int) -> bool:
        return Item.find_by_id(pk).one_or_none() is not None

    def mixed_update(self, pk: int, value: int) -> None:
        Item.find_by_id(pk).update_all(value=value)

    def mixed_insert(self, row: Row) -> int:
        return (Item.create(**row._asdict())).id

    def release(self) -> None:
        ConnectionManager.dispose()

    def fetch_objects(self) -> int:
        return len(Item.find().all())

    def fetch_dicts(self) -> int:
        # values(): typed column values as dicts, what dict(row._mapping) gives Core (to_dict()
        # would also turn datetimes into ISO strings: more work than the other contenders do).
        return len(Item.find().values())

    def get_by_pk(self, ids: Sequence[int]) -> int:
        with Item.transaction():
            return sum(Item.find_by_id(pk).one_or_none() is not None for pk in ids)

    def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        with Item.transaction():
            return sum(
                len(Item.find().where(Item.value < threshold).order_by(Item.id).limit(page_size).offset(offset).all())
                for offset in offsets
            )

    def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        with ActiveRecord.transaction():
            for pk, value in updates:
                Item.find_by_id(pk).update_all(value=value)

    def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        count = 0
        for batch in StreamItem.find().batches(batch_size):
            on_batch(len(batch))
            count += len(batch)
        return count

    def close(self) -> None:
        ConnectionManager.dispose()

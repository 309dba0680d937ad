"""Primary failover under Patroni: a planned switchover and a crash of the primary under a steady
write load, in both modes, on a real three-member cluster (tests/harness/patroni.py).

The writers use what a service would: a connection whose write node names every member (the
driver keeps the one that takes writes) and `run_in_transaction` with a retry policy. A commit
whose outcome is unknown is settled by looking the row up. Afterwards the table must hold exactly
the acknowledged writes: nothing lost, nothing written twice.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager, Field, IntegerField, PrimaryKeyField, RetryPolicy, StringField
from activerecord.errors import CommitOutcomeUnknown

from .harness.patroni import PatroniCluster

pytestmark = pytest.mark.backends("postgresql")


class Acked(ActiveRecord):
    __tablename__ = "acked_writes"
    __connection__ = "ha"
    id: Field[int] = PrimaryKeyField()
    key: Field[str] = StringField(max_length=40, unique=True)
    worker: Field[int] = IntegerField()


POLICY = RetryPolicy(attempts=200, initial_delay=0.05, max_delay=0.5, deadline=60)


@pytest.fixture
def ha(patroni: PatroniCluster, backend: str) -> Iterator[PatroniCluster]:
    """Connection ``ha``: writes to whichever member is primary, reads from every member."""
    patroni.ensure_running()
    patroni.wait_healthy()
    nodes = [patroni.node_config(m) for m in patroni.members]
    write = {**nodes[0], "host": [n["host"] for n in nodes], "port": [n["port"] for n in nodes]}
    ConnectionManager.configure({"ha": {"write": {**write, "pool_pre_ping": True}, "read": nodes}})
    Acked.create_all()
    Acked.find().delete_all()
    yield patroni
    ConnectionManager.remove("ha")


@dataclass
class Load:
    """Writers inserting unique keys until stopped; what each acknowledged, and when."""

    acked: set[str] = field(default_factory=set)
    times: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, key: str) -> None:
        with self.lock:
            self.acked.add(key)
            self.times.append(time.monotonic())

    def outage(self) -> float:
        """The longest gap between two acknowledged writes, in seconds."""
        times = sorted(self.times)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _write(load: Load, worker: int) -> None:
    for i in range(100_000):
        if load.stop.is_set():
            return
        key = f"{worker}-{i}"
        try:
            Acked.run_in_transaction(lambda key=key: Acked.create(key=key, worker=worker), retry=POLICY)
        except CommitOutcomeUnknown:
            # Settle it: the row is there (committed) or it is not (write it again).
            if not Acked.run_in_transaction(lambda key=key: Acked.find().where(key=key).exists(), retry=POLICY):
                Acked.run_in_transaction(lambda key=key: Acked.create(key=key, worker=worker), retry=POLICY)
        except BaseException as exc:
            load.errors.append(exc)
            return
        load.ack(key)


async def _awrite(load: Load, worker: int) -> None:
    for i in range(100_000):
        if load.stop.is_set():
            return
        key = f"{worker}-{i}"

        async def create(key: str = key) -> Any:
            return await Acked.acreate(key=key, worker=worker)

        async def exists(key: str = key) -> bool:
            return await Acked.find().where(key=key).aexists()

        try:
            await Acked.arun_in_transaction(create, retry=POLICY)
        except CommitOutcomeUnknown:
            if not await Acked.arun_in_transaction(exists, retry=POLICY):
                await Acked.arun_in_transaction(create, retry=POLICY)
        except BaseException as exc:
            load.errors.append(exc)
            return
        load.ack(key)


async def _under_load(mode: str, disturb: Any, writers: int = 3, settle: float = 2.0) -> Load:
    """Run ``writers`` writers, call ``disturb()`` (in a thread) once they are writing, keep writing
    ``settle`` seconds after it returns, then stop them."""
    load = Load()
    if mode == "async":
        tasks = [asyncio.create_task(_awrite(load, w)) for w in range(writers)]
    else:
        tasks = [asyncio.create_task(asyncio.to_thread(_write, load, w)) for w in range(writers)]
    while len(load.acked) < 20 and not load.errors:
        await asyncio.sleep(0.05)
    await asyncio.to_thread(disturb)
    acked_after = len(load.acked)
    deadline = time.monotonic() + 60
    while len(load.acked) < acked_after + 20 and not load.errors and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(settle)
    load.stop.set()
    await asyncio.gather(*tasks)
    return load


def _stored() -> list[str]:
    return Acked.run_in_transaction(lambda: Acked.find().pluck(Acked.key), retry=POLICY)


async def test_switchover_under_load_loses_and_duplicates_nothing(ha: PatroniCluster, mode: str) -> None:
    candidate = ha.sync_standby()  # in synchronous mode only it may take over
    load = await _under_load(mode, lambda: ha.switchover(candidate))
    assert load.errors == []
    stored = await asyncio.to_thread(_stored)
    assert sorted(stored) == sorted(load.acked)  # exactly the acknowledged writes, once each
    print(f"\nswitchover ({mode}): {len(load.acked)} writes, longest write outage {load.outage():.2f} s")
    assert ha.primary() is candidate


async def test_primary_crash_under_load_loses_nothing_and_reads_go_on(ha: PatroniCluster, mode: str) -> None:
    old = ha.primary()
    reads: list[float] = []
    read_errors: list[BaseException] = []
    stop_reading = threading.Event()

    def read() -> None:
        while not stop_reading.is_set():
            try:
                Acked.find().using_read_replica().count()
                reads.append(time.monotonic())
            except BaseException as exc:
                read_errors.append(exc)
            time.sleep(0.02)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    crashed_at: list[float] = []

    def crash() -> None:
        crashed_at.append(time.monotonic())
        ha.crash(old)

    load = await _under_load(mode, crash)
    stop_reading.set()
    reader.join(10)
    assert load.errors == []
    stored = await asyncio.to_thread(_stored)
    assert sorted(set(load.acked) - set(stored)) == []  # nothing acknowledged was lost
    assert sorted(stored) == sorted(load.acked)  # and nothing is there twice or unacknowledged
    new = ha.primary()
    assert new is not old
    outage = load.outage()
    during = [t for t in reads if crashed_at[0] < t < crashed_at[0] + outage]
    print(f"\nprimary crash ({mode}): {len(load.acked)} writes, outage {outage:.2f} s, {len(during)} reads meanwhile")
    assert during, "reads on the replicas must go on while there is no primary"
    assert read_errors == []

    # The old primary comes back as a replica and serves reads again.
    ha.start_member(old)
    ha.wait_healthy()
    engine = next(e for e in ConnectionManager.replica_engines("ha") if e.url.port == old.pg_port)
    served: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        served.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        deadline = time.monotonic() + 30
        while not served and time.monotonic() < deadline:
            await asyncio.to_thread(lambda: Acked.find().using_read_replica().count())
            await asyncio.sleep(0.05)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert served, "the old primary, back as a replica, must serve reads again"

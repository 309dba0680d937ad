"""A relay killed (SIGKILL) after the broker acked but before it marked the rows: nothing is lost.

The relay runs in a subprocess with the real Redis Streams publisher, wrapped so that after the
broker acknowledged the second message it signals the test and hangs; the test kills it there.
A relay started afterwards publishes the leased messages again, in key order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from activerecord.patterns import Outbox, Relay
from activerecord.patterns.brokers.redis import RedisStreamPublisher

from .backends import BackendDatabases
from .dual import IO

REDIS_URL = os.environ.get("AR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LEASE = 1.0
OUTBOX = Outbox("default", table="test_outbox")

SCRIPT = """
import asyncio, json, os, sys
from pathlib import Path
from activerecord import ConnectionManager
from activerecord.patterns import Outbox, Relay
from activerecord.patterns.brokers.redis import RedisStreamPublisher

ConnectionManager.configure({"default": json.loads(os.environ["OUTBOX_DB"])})
marker = Path(os.environ["OUTBOX_MARKER"])


class AckThenHang(RedisStreamPublisher):
    published = 0

    async def apublish(self, message):
        await super().apublish(message)
        self.published += 1
        if self.published == 2:
            marker.write_text(message.id)
            await asyncio.sleep(3600)


relay = Relay(AckThenHang(os.environ["OUTBOX_REDIS"]), outbox=Outbox("default", table="test_outbox"),
              lease=float(os.environ["OUTBOX_LEASE"]), publish_timeout=3600)
relay.run_once()
sys.exit("the relay was not killed")
"""


@pytest.fixture
def stream() -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(REDIS_URL)
    name = f"outbox-kill-{uuid.uuid4().hex[:8]}"
    yield client, name
    client.delete(name)
    client.close()


def _ids(client: redis.Redis, name: str) -> list[str]:
    return [fields[b"id"].decode() for _, fields in client.xrange(name)]


async def test_killed_relay_publishes_again_in_key_order(
    db: IO, backend_dbs: BackendDatabases, stream: tuple[redis.Redis, str], tmp_path: Path
) -> None:
    client, name = stream
    async with db.transaction():
        sent = [await db(OUTBOX).publish(name, {"n": n}, key="order-1") for n in range(3)]
    expected = [m.id for m in sent]
    marker = tmp_path / "acked"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "OUTBOX_DB": json.dumps(backend_dbs.config("default")),
        "OUTBOX_MARKER": str(marker),
        "OUTBOX_REDIS": REDIS_URL,
        "OUTBOX_LEASE": str(LEASE),
    }
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env)
    try:
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert proc.poll() is None, "the relay exited before publishing"
            assert time.monotonic() < deadline, "the relay never published"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert _ids(client, name) == expected[:2]  # acked by the broker, never marked sent
    assert (await db(OUTBOX).stats()).pending == 3

    relay = Relay(RedisStreamPublisher(REDIS_URL), outbox=OUTBOX, lease=LEASE)
    try:
        assert await db(relay).run_once() == 0  # the dead relay's lease still holds
        time.sleep(LEASE)
        assert await db(relay).run_once() == 3
    finally:
        await db(relay).close()
    # Published again, not lost: at least once, and the second delivery in key order.
    assert _ids(client, name) == expected[:2] + expected
    assert (await db(OUTBOX).stats()).sent == 3

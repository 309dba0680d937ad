"""``activerecord outbox relay``: the command line relays a service's outbox to a real broker."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import redis
import sqlalchemy as sa

from activerecord.patterns import Outbox

from .patterns.brokers import REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
OUTBOX = Outbox("cli_outbox")


def _run(tmp_path: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACTIVERECORD_URL_CLI_OUTBOX": url}
    return subprocess.run(
        [sys.executable, "-m", "activerecord", "outbox", "relay", "--connection", "cli_outbox", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_relay_command_publishes_the_pending_messages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    engine = sa.create_engine(url)
    topic = f"outbox-cli-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        OUTBOX.table.create(conn)
        conn.execute(
            OUTBOX.table.insert(),
            [
                {
                    "message_id": f"m-{n}",
                    "topic": topic,
                    "payload": {"n": n},
                    "headers": {},
                    "status": "pending",
                    "attempts": 0,
                    "available_at": now,
                    "created_at": now,
                }
                for n in range(3)
            ],
        )
    client = redis.Redis.from_url(REDIS_URL)
    try:
        done = _run(tmp_path, "--broker", REDIS_URL, "--once", url=url)
        assert done.returncode == 0, done.stderr
        assert "cli_outbox: published 3 message(s)" in done.stdout
        # Messages without a key have no order among them (they may be published concurrently).
        assert sorted(fields[b"id"] for _, fields in client.xrange(topic)) == [b"m-0", b"m-1", b"m-2"]
    finally:
        client.delete(topic)
        client.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(OUTBOX.table.c.status)).scalars().all() == ["sent"] * 3
    engine.dispose()


def test_relay_command_refuses_an_unknown_broker_without_showing_the_password(tmp_path: Path) -> None:
    done = _run(tmp_path, "--broker", "kafka://app:s3cret@host", "--once", url=f"sqlite:///{tmp_path / 'x.db'}")
    assert done.returncode != 0
    assert "unknown broker URL scheme 'kafka'" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout

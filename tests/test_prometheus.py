"""The Prometheus exporter, scraped by a real Prometheus server: exact statement counts, histogram
bucket placement of statements made to take a known time, errors by class and pool gauges, read
back through Prometheus's HTTP API, on every backend, sync and async."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from activerecord import ActiveRecord, ConnectionManager, ops
from activerecord.ops import prometheus as ar_prometheus

from .backends import BackendDatabases
from .dual import IO
from .harness.patroni import free_port
from .harness.prometheus import Prometheus, available
from .test_metrics_slow_log import sleeping_connection

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))

SLEEP = 0.2  # lands in the (0.1, 0.5] bucket


@pytest.fixture(scope="module")
def prom() -> Iterator[Prometheus]:
    port = free_port()
    server, thread = ar_prometheus.start_http_server(port)
    try:
        with Prometheus(port) as prometheus:
            yield prometheus
    finally:
        server.shutdown()
        thread.join(5)


def _value(result: list[dict[str, Any]]) -> float:
    return float(result[0]["value"][1])


def _equals(expected: float) -> Any:
    return lambda result: _value(result) == expected


async def test_prometheus_scrapes_exact_counts_and_buckets(
    db: IO, mode: str, backend: str, backend_dbs: BackendDatabases, prom: Prometheus
) -> None:
    name = f"scraped_{mode}"
    sleep_sql = sleeping_connection(name, backend, backend_dbs)
    await db(ActiveRecord).execute_raw("SELECT 1", using=name)  # connect before counting starts
    fast = 3 if mode == "sync" else 4  # differs per mode: a sample of the other test never matches
    slow = 2
    ops.instrument()
    try:
        for _ in range(fast):
            await db(ActiveRecord).execute_raw("SELECT 1", using=name)
        for _ in range(slow):
            await db(ActiveRecord).execute_raw(sleep_sql, {"s": SLEEP}, using=name)
        with pytest.raises(Exception):  # noqa: B017 (the driver's own error class)
            await db(ActiveRecord).execute_raw("SELECT * FROM no_such_table", using=name)

        selector = f'activerecord_connection="{name}",db_operation_name="SELECT"'
        count = f"sum(db_client_operation_duration_seconds_count{{{selector}}})"
        # The failed SELECT is timed too.
        assert _value(prom.query(count, until=_equals(fast + slow + 1))) == fast + slow + 1

        def bucket(le: str) -> float:
            query = f'sum(db_client_operation_duration_seconds_bucket{{{selector},le="{le}"}})'
            return _value(prom.query(query, until=_equals(fast + slow + 1) if le == "+Inf" else None))

        assert bucket("+Inf") == fast + slow + 1
        assert bucket("0.1") == fast + 1  # the fast ones and the failure
        assert bucket("0.5") == fast + slow + 1  # the sleeps: over 0.1 s, under 0.5 s
        total = _value(prom.query(f"sum(db_client_operation_duration_seconds_sum{{{selector}}})"))
        assert slow * SLEEP <= total < slow * SLEEP + 1

        errors = prom.query(f'activerecord_db_errors_total{{activerecord_connection="{name}"}}', until=_equals(1))
        assert errors[0]["metric"]["activerecord_retry_class"] == "permanent"
        assert errors[0]["metric"]["error_type"]

        idle = f'sum(db_client_connection_count{{activerecord_connection="{name}",state="idle"}})'
        assert _value(prom.query(idle)) >= 1
    finally:
        ops.uninstrument()
        ConnectionManager.remove(name)


async def test_the_asgi_app_answers_with_the_metrics(db: IO) -> None:
    app = ar_prometheus.asgi_app()
    # Connected before counting: a new connection's own first statements (the dialect's
    # set-up queries) are not this test's one statement.
    await db(ActiveRecord).execute_raw("SELECT 1")
    ops.instrument()
    try:
        await db(ActiveRecord).execute_raw("SELECT 1")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            response = await client.get("/")
    finally:
        ops.uninstrument()
    assert response.status_code == 200
    name = "db_client_operation_duration_seconds_count"
    lines = [line for line in response.text.splitlines() if line.startswith(name)]
    assert any('activerecord_connection="default"' in line and line.endswith(" 1.0") for line in lines)

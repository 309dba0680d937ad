"""The seed document's samples, as the demo writes them, on every backend."""

from __future__ import annotations

import decimal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from activerecord import ActiveRecord, ConnectionManager, RecordNotFound
from activerecord.demo.app import (
    HealthCheckService,
    InventoryService,
    OrderSaga,
    PaymentService,
    UserOrderCompositionService,
)
from activerecord.demo.models import bus, deliver_events, outbox, publish_event

from .dual import IO
from .models import EventStore, Order, OrderItem, User

pytestmark = pytest.mark.modes("async")  # the seed's samples are async code


async def test_database_per_service_and_composition(db: IO) -> None:
    ada = await User.acreate(name="Ada", email="ada@example.com")
    other = await User.acreate(name="Bob", email="bob@example.com")
    await Order.acreate(user_id=ada.id, total=decimal.Decimal("12.50"))
    await Order.acreate(user_id=ada.id, status="completed")
    await Order.acreate(user_id=other.id)
    # Each service's tables exist only in its own database.
    assert (await ActiveRecord.aexecute_raw("SELECT COUNT(*) FROM orders", using="orders")).scalar() == 3
    with pytest.raises(Exception):  # noqa: B017 - the driver's "no such table" differs per backend
        await ActiveRecord.aexecute_raw("SELECT 1 FROM orders", using="users")

    result = await UserOrderCompositionService().get_user_with_orders(ada.id)
    assert result["user"] == {"id": ada.id, "name": "Ada", "email": "ada@example.com"}
    assert [(o["status"], o["total"]) for o in result["orders"]] == [("pending", "12.50"), ("completed", "0.00")]
    with pytest.raises(RecordNotFound):
        await UserOrderCompositionService().get_user_with_orders(10_000)


async def test_event_store_appends_and_reads_in_order(db: IO) -> None:
    received: list[dict[str, object]] = []

    async def subscriber(message: dict[str, object]) -> None:
        received.append(message)

    bus.subscribe("*", subscriber)
    try:
        for i in range(5):
            await EventStore.append_event("order-1", f"Step{i}", {"n": i, "nested": {"ok": True}})
        await EventStore.append_event("order-2", "Other", {})
    finally:
        bus.unsubscribe("*", subscriber)
    events = await EventStore.get_events_for_aggregate("order-1")
    assert [e.event_type for e in events] == [f"Step{i}" for i in range(5)]
    assert events[3].event_data == {"n": 3, "nested": {"ok": True}}
    assert all(e.created_at.tzinfo is not None for e in events)
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)
    # Each event was published after it was stored, with its stored id.
    assert [m["event_type"] for m in received] == [*(f"Step{i}" for i in range(5)), "Other"]
    assert received[0]["id"] == events[0].id and received[0]["event_data"] == {"n": 0, "nested": {"ok": True}}


async def test_an_event_and_its_message_commit_together_and_are_delivered_after_a_crash(db: IO) -> None:
    received: list[dict[str, object]] = []

    async def subscriber(message: dict[str, object]) -> None:
        received.append(message)

    bus.subscribe("*", subscriber)
    try:
        # A transaction that fails after the append leaves neither the event nor its message.
        with pytest.raises(RuntimeError):
            async with EventStore.atransaction():
                await EventStore.append_event("order-5", "OrderCreated", {})
                raise RuntimeError("fails after the append")
        assert await EventStore.find().acount() == 0 and await outbox.model.find().acount() == 0
        # The process "dies" after the commit, before delivering: the message waits in the outbox.
        async with EventStore.atransaction():
            event = await EventStore(aggregate_id="order-5", event_type="OrderCreated", event_data={}).asave()
            await publish_event(event)
        assert received == [] and (await outbox.astats()).pending == 1
        assert await deliver_events() == 1  # the next relay run delivers it
        assert [m["id"] for m in received] == [event.id]
        assert (await outbox.astats()).pending == 0
    finally:
        bus.unsubscribe("*", subscriber)


async def test_health_check(db: IO) -> None:
    assert await HealthCheckService.check_database_health("users") == {"status": "healthy", "database": "connected"}
    ConnectionManager.configure({"broken": {"driver": "postgresql", "host": "127.0.0.1", "port": 1, "database": "x"}})
    try:
        health = await HealthCheckService.check_database_health("broken")
        assert health["status"] == "unhealthy" and health["database"]
    finally:
        await ConnectionManager.aremove("broken")


async def test_order_saga_completes_and_compensates(db: IO) -> None:
    user = await User.acreate(name="Ada", email="ada@example.com")
    inventory = InventoryService({1: 10, 2: 5})
    saga = OrderSaga(
        inventory, PaymentService(decimal.Decimal("100")), {1: decimal.Decimal("9.50"), 2: decimal.Decimal("40")}
    )

    ok = await saga.create_order(user.id, [1, 2], [2, 1])
    assert ok["success"] is True
    order = await Order.find_by_id(ok["order_id"]).aone()
    assert order.status == "completed" and order.total == decimal.Decimal("59.00")
    assert await OrderItem.find().where(order_id=order.id).acount() == 2

    refused = await saga.create_order(user.id, [2], [3])  # 120 > payment limit
    assert refused == {"success": False, "error": "payment failed", "order_id": refused["order_id"]}
    assert (await Order.find_by_id(refused["order_id"]).aone()).status == "failed"
    assert inventory.stock == {1: 8, 2: 4}  # the failed order's reservation was released

    assert (await saga.create_order(user.id, [2], [9]))["error"] == "insufficient stock"
    kinds = [e.event_type for e in await EventStore.get_events_for_aggregate(f"order-{refused['order_id']}")]
    assert kinds == ["OrderCreated", "OrderFailed"]


async def test_saga_compensates_on_unexpected_errors(db: IO) -> None:
    inventory = InventoryService({1: 1})
    saga = OrderSaga(inventory, PaymentService(decimal.Decimal("100")), {1: decimal.Decimal("1")})
    result = await saga.create_order(None, [1], [1])  # type: ignore[arg-type]  # invalid user id
    assert result["success"] is False and "user_id" in result["error"]
    assert inventory.stock == {1: 1}
    assert await Order.find().acount() == 0


def test_demo_command_runs_end_to_end(tmp_path: Path) -> None:
    # The README's demo command, in a fresh interpreter and an empty folder.
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-m", "activerecord", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.rstrip().endswith("demo finished")
    assert "'success': True" in text and "payment failed" in text and "insufficient stock" in text
    assert "events of order-1: OrderCreated -> OrderCompleted" in text
    assert text.count("'status': 'healthy'") == 2
    assert "on_all_shards().count() = 6" in text  # the multi-database part ran too
    # Its last lines: the metrics recorded while it ran, after the health report.
    summary = text[text.index("metrics (activerecord.ops.instrument()):") :].splitlines()
    assert text.index("health report") < text.index("metrics (activerecord.ops.instrument()):")
    assert summary[1].startswith("statements: ") and "(p50 <= " in summary[1] and ", p99 <= " in summary[1]
    per_connection = {line.split(":")[0].strip(): line for line in summary if line.startswith("  ")}
    assert {"users", "orders", "multidb_users"} <= set(per_connection)
    assert "INSERT" in per_connection["orders"] and "UPDATE" in per_connection["orders"]
    assert any(line.startswith("errors: ") for line in summary)
    assert any(line.startswith("rows affected or counted: ") for line in summary)
    assert any(line.startswith("pools: ") and " checkouts (wait p99 <= " in line for line in summary)
    assert any(line.startswith("replicas: skipped ") and "read_your_writes" in line for line in summary)

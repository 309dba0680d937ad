"""``activerecord demo``: two services with their own databases, on embedded SQLite.

A user service and an order service each own a database; a composition layer reads both; the
order service records events in its event store; a saga spans the order, inventory and payment
steps with compensation; a health check probes each database. Then a service with a read replica
and a sharded user service (`_demo_multidb`); at the end, the health report of the services'
databases and a summary of the metrics recorded while the demo ran (`activerecord.ops.instrument`).
The service classes here are the seed document's samples, written with the async twins.
"""

from __future__ import annotations

import asyncio
import decimal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import ActiveRecord, ConnectionManager
from ..ops import instrument, uninstrument
from ..ops.summary import summary
from ..patterns import Saga, SagaOrchestrator, Step, StepContext, StepFailed
from .models import SAGA_TABLE, EventStore, Order, OrderItem, User, bus, deliver_events
from .multidb import run_multidb_demo

Out = Callable[[str], None]


class UserServiceConnection:
    """Where the user service's data lives (a named connection)."""

    @staticmethod
    def get() -> str:
        return "users"


class OrderServiceConnection:
    """Where the order service's data lives (a named connection)."""

    @staticmethod
    def get() -> str:
        return "orders"


class UserOrderCompositionService:
    """API composition: one answer built from two services' databases."""

    async def get_user_with_orders(self, user_id: int) -> dict[str, Any]:
        user_db = UserServiceConnection.get()
        user = await User.find_by_id(user_id).using(user_db).aone()
        order_db = OrderServiceConnection.get()
        orders = await Order.find().where(Order.user_id == user_id).using(order_db).aall()
        return {"user": user.to_dict(), "orders": [order.to_dict() for order in orders]}


class HealthCheckService:
    """Database health for a readiness probe."""

    @classmethod
    async def check_database_health(cls, using: str = "default") -> dict[str, str]:
        try:
            await ActiveRecord.aexecute_raw("SELECT 1", using=using)
            return {"status": "healthy", "database": "connected"}
        except Exception as exc:  # a probe reports every failure instead of raising
            return {"status": "unhealthy", "database": str(exc)}


class InventoryService:
    """A stand-in for the inventory service the saga calls (in-process for the demo).

    Calls carry the saga step's idempotency key: a reservation made again under the same key
    (a step retried after a crash) reserves nothing more.
    """

    def __init__(self, stock: dict[int, int]) -> None:
        self.stock = dict(stock)
        self.reservations: dict[str, list[tuple[int, int]]] = {}

    async def reserve_products(
        self, saga_id: str, product_ids: Sequence[int], quantities: Sequence[int]
    ) -> dict[str, Any]:
        if saga_id in self.reservations:
            return {"success": True}
        wanted = list(zip(product_ids, quantities, strict=True))
        if any(self.stock.get(p, 0) < q for p, q in wanted):
            return {"success": False}
        for p, q in wanted:
            self.stock[p] -= q
        self.reservations[saga_id] = wanted
        return {"success": True}

    async def release_products(self, saga_id: str, product_ids: Sequence[int], quantities: Sequence[int]) -> None:
        for p, q in self.reservations.pop(saga_id, []):
            self.stock[p] += q


class PaymentService:
    """A stand-in for the payment service: refuses amounts over a limit; one charge per key."""

    def __init__(self, limit: decimal.Decimal) -> None:
        self.limit = limit
        self.charges: dict[str, decimal.Decimal] = {}

    async def process_payment(self, saga_id: str, user_id: int, amount: decimal.Decimal) -> dict[str, Any]:
        if amount > self.limit:
            return {"success": False}
        self.charges.setdefault(saga_id, amount)
        return {"success": True}

    async def refund_payment(self, saga_id: str) -> None:
        self.charges.pop(saga_id, None)


class OrderSaga:
    """The seed's order saga on `activerecord.patterns.Saga`: reserve stock, create the order,
    take payment, complete; a failing step compensates the completed ones in reverse order.

    The saga's progress is stored in the order service's database (table ``sagas``), each step
    with the step's own writes, so `recover` finishes (compensates) a saga whose process died.
    """

    def __init__(
        self, inventory: InventoryService, payment: PaymentService, prices: dict[int, decimal.Decimal]
    ) -> None:
        self.inventory_service = inventory
        self.payment_service = payment
        self.prices = prices
        self.saga = Saga(
            "create_order",
            [
                Step("reserve_stock", self._reserve, self._release),
                Step("create_order", self._create_order, self._fail_order),
                Step("take_payment", self._take_payment, self._refund, timeout=10),
                Step("complete_order", self._complete_order),
            ],
            recovery="compensate",
        )
        self.orchestrator = SagaOrchestrator(OrderServiceConnection.get(), sagas=[self.saga], table=SAGA_TABLE.name)

    def calculate_total(self, product_ids: Sequence[int], quantities: Sequence[int]) -> decimal.Decimal:
        return sum((self.prices[p] * q for p, q in zip(product_ids, quantities, strict=True)), decimal.Decimal(0))

    async def _reserve(self, ctx: StepContext) -> None:
        data = ctx.data
        result = await self.inventory_service.reserve_products(ctx.saga_id, data["product_ids"], data["quantities"])
        if not result["success"]:
            raise StepFailed("insufficient stock")

    async def _release(self, ctx: StepContext) -> None:
        data = ctx.data
        await self.inventory_service.release_products(ctx.saga_id, data["product_ids"], data["quantities"])

    async def _create_order(self, ctx: StepContext) -> dict[str, Any]:
        # Runs in the step's transaction: the order, its items, its event and the saga's progress
        # commit together.
        data = ctx.data
        total = self.calculate_total(data["product_ids"], data["quantities"])
        order = await Order(user_id=data["user_id"], status="pending", total=total).asave()
        for product_id, quantity in zip(data["product_ids"], data["quantities"], strict=True):
            await OrderItem(order_id=order.id, product_id=product_id, quantity=quantity).asave()
        await EventStore.append_event(f"order-{order.id}", "OrderCreated", {"total": str(total)})
        return {"order_id": order.id, "total": str(total)}

    async def _fail_order(self, ctx: StepContext) -> None:
        order = await Order.find_by_id(ctx.data["order_id"]).aone()
        await order.aupdate(status="failed")
        await EventStore.append_event(f"order-{order.id}", "OrderFailed", {"reason": "payment"})

    async def _take_payment(self, ctx: StepContext) -> None:
        data = ctx.data
        amount = decimal.Decimal(data["total"])
        result = await self.payment_service.process_payment(ctx.idempotency_key, data["user_id"], amount)
        if not result["success"]:
            raise StepFailed("payment failed")

    async def _refund(self, ctx: StepContext) -> None:
        await self.payment_service.refund_payment(f"{ctx.saga_id}:{ctx.step}")

    async def _complete_order(self, ctx: StepContext) -> None:
        order = await Order.find_by_id(ctx.data["order_id"]).aone()
        await order.aupdate(status="completed")
        await EventStore.append_event(f"order-{order.id}", "OrderCompleted", {})

    async def create_order(self, user_id: int, product_ids: Sequence[int], quantities: Sequence[int]) -> dict[str, Any]:
        """Run the saga; the seed's answer: success and the order id, or the error."""
        data = {"user_id": user_id, "product_ids": list(product_ids), "quantities": list(quantities)}
        result = await self.orchestrator.astart(self.saga, data)
        if result.succeeded:
            return {"success": True, "order_id": result.data["order_id"]}
        answer: dict[str, Any] = {"success": False, "error": result.error}
        if "order_id" in result.data:
            answer["order_id"] = result.data["order_id"]
        return answer

    async def recover(self) -> int:
        """Finish the sagas of a process that died mid-saga; how many."""
        return len(await self.orchestrator.arecover())


def configure_services(workdir: Path) -> None:
    """Each service gets its own SQLite database file."""
    ConnectionManager.configure(
        {
            "users": {"driver": "sqlite", "database": str(workdir / "users.db")},
            "orders": {"driver": "sqlite", "database": str(workdir / "orders.db")},
        }
    )


async def run_services_demo(workdir: Path, out: Out) -> None:
    """The user and order services, composition, events, a saga and health checks."""
    configure_services(workdir)
    for service in ("users", "orders"):
        await ActiveRecord.acreate_all(using=service)
    out(f"Two services, two databases: {workdir / 'users.db'} and {workdir / 'orders.db'}")

    async def notify(message: dict[str, Any]) -> None:
        out(f"  notification service received {message['event_type']} for {message['aggregate_id']}")

    bus.subscribe("OrderCompleted", notify)

    ada = await User.acreate(name="Ada Lovelace", email="ada@example.com")
    # The sync API, on the same model, from a worker thread: sync I/O never runs on the loop.
    await asyncio.to_thread(User.create, name="Alan Turing", email="alan@example.com")
    out(f"user service: {await User.find().acount()} users; Ada has id {ada.id}")

    saga = OrderSaga(
        InventoryService({1: 10, 2: 5}),
        PaymentService(limit=decimal.Decimal("100")),
        prices={1: decimal.Decimal("9.50"), 2: decimal.Decimal("40.00")},
    )
    # At start-up: finish what a crashed run left (sagas mid-way, event messages not delivered).
    out(f"recovery: {await saga.recover()} unfinished sagas, {await deliver_events()} undelivered events")
    for products, quantities in (([1, 2], [2, 1]), ([2], [3]), ([2], [9])):
        result = await saga.create_order(ada.id, products, quantities)
        out(f"saga create_order({products}, {quantities}) -> {result}")
    out(f"inventory after the sagas (compensated where payment failed): {saga.inventory_service.stock}")

    composed = await UserOrderCompositionService().get_user_with_orders(ada.id)
    out(
        f"composition: {composed['user']['name']} with orders "
        + ", ".join(f"#{o['id']} {o['status']} {o['total']}" for o in composed["orders"])
    )

    first_order = composed["orders"][0]["id"]
    events = await EventStore.get_events_for_aggregate(f"order-{first_order}")
    out(f"events of order-{first_order}: " + " -> ".join(e.event_type for e in events))

    for service in ("users", "orders"):
        out(f"health {service}: {await HealthCheckService.check_database_health(service)}")
    # The async pools belong to this event loop: close them here; the services stay configured.
    await ConnectionManager.adispose()


def main(argv: Sequence[str] | None = None, out: Out = print) -> int:
    """Run the demo in a temporary folder (or ``argv[0]`` when given) and print what happens."""
    args = list(argv or [])
    with tempfile.TemporaryDirectory(prefix="activerecord-demo-") as tmp:
        workdir = Path(args[0]) if args else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        out("activerecord demo: microservices on embedded SQLite (no server needed)")
        metrics = instrument()  # every statement and checkout from here on is measured
        try:
            asyncio.run(run_services_demo(workdir, out))
            out("")
            run_multidb_demo(workdir / "multidb", out)
            out("")
            out("health report (ConnectionManager.health()): " + ConnectionManager.health().to_text())
            out("")
            out("metrics (activerecord.ops.instrument()):\n" + summary(metrics))
        finally:
            uninstrument()
            ConnectionManager.clear()
    out("demo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

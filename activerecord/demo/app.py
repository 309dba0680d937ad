"""``activerecord demo``: two services with their own databases, on embedded SQLite.

A user service and an order service each own a database; a composition layer reads both; the
order service records events in its event store; a saga spans the order, inventory and payment
steps with compensation; a health check probes each database. Then a service with a read replica
and a sharded user service (`_demo_multidb`); at the end, the health report of the services'
databases. The service classes here are the seed document's samples, written with the async twins.
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
from .models import EventStore, Order, OrderItem, User, bus
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
    """A stand-in for the inventory service the saga calls (in-process for the demo)."""

    def __init__(self, stock: dict[int, int]) -> None:
        self.stock = dict(stock)
        self.reservations: dict[str, list[tuple[int, int]]] = {}

    async def reserve_products(
        self, saga_id: str, product_ids: Sequence[int], quantities: Sequence[int]
    ) -> dict[str, Any]:
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
    """A stand-in for the payment service: refuses amounts over a limit."""

    def __init__(self, limit: decimal.Decimal) -> None:
        self.limit = limit

    async def process_payment(self, saga_id: str, user_id: int, amount: decimal.Decimal) -> dict[str, Any]:
        return {"success": amount <= self.limit}


class OrderSaga:
    """The seed's order saga: reserve stock, create the order, take payment; compensate on failure."""

    def __init__(
        self, inventory: InventoryService, payment: PaymentService, prices: dict[int, decimal.Decimal]
    ) -> None:
        self.inventory_service = inventory
        self.payment_service = payment
        self.prices = prices
        self._ids = 0

    def generate_unique_id(self) -> str:
        self._ids += 1
        return f"saga-{self._ids}"

    def calculate_total(self, product_ids: Sequence[int], quantities: Sequence[int]) -> decimal.Decimal:
        return sum((self.prices[p] * q for p, q in zip(product_ids, quantities, strict=True)), decimal.Decimal(0))

    async def rollback_saga(self, saga_id: str, product_ids: Sequence[int], quantities: Sequence[int]) -> None:
        await self.inventory_service.release_products(saga_id, product_ids, quantities)

    async def create_order(self, user_id: int, product_ids: Sequence[int], quantities: Sequence[int]) -> dict[str, Any]:
        saga_id = self.generate_unique_id()
        try:
            inventory_result = await self.inventory_service.reserve_products(saga_id, product_ids, quantities)
            if not inventory_result["success"]:
                return {"success": False, "error": "insufficient stock"}

            total = self.calculate_total(product_ids, quantities)
            order = await Order(user_id=user_id, status="pending", total=total).asave()
            for product_id, quantity in zip(product_ids, quantities, strict=True):
                await OrderItem(order_id=order.id, product_id=product_id, quantity=quantity).asave()
            await EventStore.append_event(f"order-{order.id}", "OrderCreated", {"total": str(total)})

            payment_result = await self.payment_service.process_payment(saga_id, user_id, total)
            if not payment_result["success"]:
                await self.inventory_service.release_products(saga_id, product_ids, quantities)
                await order.aupdate(status="failed")
                await EventStore.append_event(f"order-{order.id}", "OrderFailed", {"reason": "payment"})
                return {"success": False, "error": "payment failed", "order_id": order.id}

            await order.aupdate(status="completed")
            await EventStore.append_event(f"order-{order.id}", "OrderCompleted", {})
            return {"success": True, "order_id": order.id}
        except Exception as exc:
            await self.rollback_saga(saga_id, product_ids, quantities)
            return {"success": False, "error": str(exc)}


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
        asyncio.run(run_services_demo(workdir, out))
        out("")
        run_multidb_demo(workdir / "multidb", out)
        out("")
        out("health report (ConnectionManager.health()): " + ConnectionManager.health().to_text())
        ConnectionManager.clear()
    out("demo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

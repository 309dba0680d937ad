"""A saga whose steps write to the database in their own transaction, for the saga tests.

Run as a script it starts one saga and hangs inside one step, so that a test can SIGKILL it there.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Literal

from activerecord import ActiveRecord, ConnectionManager, StringField
from activerecord.patterns import Saga, SagaOrchestrator, Step, StepContext

STEPS = ("reserve", "charge", "ship")
TABLE = "test_sagas"


class SagaEffect(ActiveRecord):
    """What a step did: one row per idempotency key, so a step that acted twice would fail."""

    __tablename__ = "test_saga_effects"

    key: str = StringField(max_length=200, unique=True)
    saga_id: str = StringField(max_length=64)
    step: str = StringField(max_length=50)
    kind: str = StringField(max_length=10)


class Plan:
    """What the steps do besides recording their effect: fail, hang (after writing, before commit), sleep."""

    def __init__(
        self,
        *,
        fail_at: str | None = None,
        hang_at: str | None = None,
        marker: Path | None = None,
        sleep: dict[str, float] | None = None,
        failing_compensations: int = 0,
    ) -> None:
        self.fail_at = fail_at
        self.hang_at = hang_at
        self.marker = marker
        self.sleep = sleep or {}
        self.failing_compensations = failing_compensations
        self.calls: list[tuple[str, str]] = []

    def _before(self, ctx: StepContext) -> None:
        kind = "undo" if ctx.compensating else "do"
        self.calls.append((kind, ctx.step))
        if ctx.compensating and self.failing_compensations > 0:
            self.failing_compensations -= 1
            raise RuntimeError(f"compensation of {ctx.step} fails")

    def _row(self, ctx: StepContext) -> dict[str, Any]:
        kind = "undo" if ctx.compensating else "do"
        return {"key": ctx.idempotency_key, "saga_id": ctx.saga_id, "step": ctx.step, "kind": kind}

    def _after(self, ctx: StepContext) -> dict[str, Any]:
        if not ctx.compensating and ctx.step == self.fail_at:
            raise RuntimeError(f"{ctx.step} fails")
        if ctx.step == self.hang_at and self.marker is not None:
            self.marker.write_text(ctx.saga_id)
            time.sleep(3600)
        return {} if ctx.compensating else {ctx.step: True}

    def sync_step(self, ctx: StepContext) -> dict[str, Any]:
        self._before(ctx)
        SagaEffect.create(**self._row(ctx))
        if ctx.step in self.sleep:
            time.sleep(self.sleep[ctx.step])
        return self._after(ctx)

    async def async_step(self, ctx: StepContext) -> dict[str, Any]:
        self._before(ctx)
        await SagaEffect.acreate(**self._row(ctx))
        if ctx.step in self.sleep:
            await asyncio.sleep(self.sleep[ctx.step])
        return self._after(ctx)


def build(
    plan: Plan, *, is_async: bool, recovery: Literal["compensate", "forward"] = "compensate", **step: Any
) -> Saga:
    """The three-step saga ``order-{recovery}`` with ``plan``'s behaviour."""
    action = plan.async_step if is_async else plan.sync_step
    return Saga(f"order-{recovery}", [Step(name, action, action, **step) for name in STEPS], recovery=recovery)


def main() -> None:
    ConnectionManager.configure({"default": json.loads(os.environ["SAGA_DB"])})
    plan = Plan(hang_at=os.environ["SAGA_HANG_AT"], marker=Path(os.environ["SAGA_MARKER"]))
    is_async = os.environ["SAGA_MODE"] == "async"
    saga = build(plan, is_async=is_async, recovery=os.environ["SAGA_RECOVERY"])  # type: ignore[arg-type]
    orchestrator = SagaOrchestrator("default", sagas=[saga], table=TABLE, lease=float(os.environ["SAGA_LEASE"]))
    if is_async:
        asyncio.run(orchestrator.astart(saga.name, {"order": 1}))
    else:
        orchestrator.start(saga.name, {"order": 1})
    sys.exit("the saga process was not killed")


if __name__ == "__main__":
    main()

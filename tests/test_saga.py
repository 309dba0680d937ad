"""Sagas on every backend, sync and async: compensation in reverse order, timeouts, retries,
failing compensations, recovery of a saga whose process died (SIGKILL) at each step."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from activerecord.errors import ConfigurationError, TransactionError, ValidationError
from activerecord.patterns import Saga, SagaOrchestrator, Step
from activerecord.patterns.saga import COMPENSATED, COMPENSATING, COMPLETED, FAILED

from .backends import BackendDatabases
from .dual import IO
from .patterns.saga_steps import STEPS, TABLE, Plan, SagaEffect, build

LEASE = 1.0
# Declared at import, so that the test databases get the table.
SAGA_TABLE = SagaOrchestrator("default", table=TABLE).table


def _orchestrator(*sagas: Saga, **options: Any) -> SagaOrchestrator:
    return SagaOrchestrator("default", sagas=sagas, table=TABLE, lease=LEASE, **options)


async def _effects(db: IO, saga_id: str) -> list[tuple[str, str]]:
    rows = await db(SagaEffect.find().where(SagaEffect.saga_id == saga_id).order_by("id")).all()
    return [(r.kind, r.step) for r in rows]


async def test_a_saga_runs_every_step_and_persists_its_data(db: IO) -> None:
    plan = Plan()
    orchestrator = _orchestrator(build(plan, is_async=db.is_async))
    result = await db(orchestrator).start("order-compensate", {"order": 7}, saga_id="saga-ok")
    assert (result.state, result.step, result.succeeded) == (COMPLETED, 3, True)
    assert result.data == {"order": 7, "reserve": True, "charge": True, "ship": True}
    assert await _effects(db, "saga-ok") == [("do", s) for s in STEPS]
    stored = await db(orchestrator).get("saga-ok")
    assert stored is not None and (stored.state, stored.step, stored.data) == (COMPLETED, 3, result.data)
    row = await db(orchestrator.model.find_by_id("saga-ok")).one()
    assert row.created_at <= row.updated_at


@pytest.mark.parametrize("failing", range(len(STEPS)))
async def test_a_failing_step_compensates_the_completed_steps_in_reverse_order(db: IO, failing: int) -> None:
    plan = Plan(fail_at=STEPS[failing])
    orchestrator = _orchestrator(build(plan, is_async=db.is_async))
    result = await db(orchestrator).start("order-compensate", saga_id=f"fail-{failing}")
    assert (result.state, result.step, result.succeeded) == (COMPENSATED, 0, False)
    assert result.error == f"RuntimeError: {STEPS[failing]} fails"
    done = [("do", s) for s in STEPS[:failing]]
    undone = [("undo", s) for s in reversed(STEPS[:failing])]
    # The failed step's own writes were rolled back with its transaction; it is not compensated.
    assert await _effects(db, f"fail-{failing}") == done + undone
    assert plan.calls == [*done, ("do", STEPS[failing]), *undone]


async def test_a_step_that_outlives_its_timeout_fails_the_saga(db: IO) -> None:
    plan = Plan(sleep={"charge": 0.3})
    orchestrator = _orchestrator(build(plan, is_async=db.is_async, timeout=0.1))
    result = await db(orchestrator).start("order-compensate", saga_id="slow")
    assert result.state == COMPENSATED
    assert result.error is not None and result.error.startswith("StepTimeout")
    assert await _effects(db, "slow") == [("do", "reserve"), ("undo", "reserve")]


async def test_a_coroutine_step_is_cancelled_at_its_timeout_and_fails_a_sync_run(db: IO) -> None:
    seen: list[str] = []

    async def hangs(ctx: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    saga = Saga("hangs", [Step("call", hangs, timeout=0.1)])
    result = await db(_orchestrator(saga)).start("hangs", saga_id="hangs-1")
    if not db.is_async:  # the coroutine is closed unstarted, and the step fails
        assert (result.state, seen) == (COMPENSATED, [])
        assert result.error is not None and result.error.startswith("ConfigurationError: step 'call' is async")
        return
    assert (result.state, seen) == (COMPENSATED, ["cancelled"])
    assert result.error == "StepTimeout: step 'call' took longer than 0.1s"
    # The run's connection and the bridge are usable afterwards.
    assert (await db(_orchestrator(saga)).get("hangs-1")) == result


async def test_a_plain_function_step_is_judged_when_it_returns_in_both_modes(db: IO) -> None:
    def slow(ctx: Any) -> None:
        time.sleep(0.2)

    saga = Saga("slow-plain", [Step("call", slow, timeout=0.05)])
    result = await db(_orchestrator(saga)).start("slow-plain", saga_id="slow-plain-1")
    assert result.state == COMPENSATED
    assert result.error == "StepTimeout: step 'call' took longer than 0.05s"


async def test_a_step_is_retried_before_the_saga_compensates(db: IO) -> None:
    attempts: list[str] = []

    def flaky(ctx: Any) -> None:
        attempts.append(ctx.idempotency_key)
        if len(attempts) < 3:
            raise RuntimeError("try again")

    async def aflaky(ctx: Any) -> None:
        flaky(ctx)

    saga = Saga("flaky", [Step("call", aflaky if db.is_async else flaky, retries=2)])
    result = await db(_orchestrator(saga)).start("flaky", saga_id="flaky-1")
    assert result.state == COMPLETED
    assert attempts == ["flaky-1:call"] * 3  # the same idempotency key each time


async def test_a_failing_compensation_is_retried_by_recovery_then_given_up(db: IO) -> None:
    plan = Plan(fail_at="ship", failing_compensations=1)
    orchestrator = _orchestrator(build(plan, is_async=db.is_async), retry_after=0.0, max_attempts=2)
    result = await db(orchestrator).start("order-compensate", saga_id="stuck")
    assert (result.state, result.step) == (COMPENSATING, 2)
    assert result.error == "RuntimeError: compensation of charge fails"
    recovered = await db(orchestrator).recover()
    assert [(r.id, r.state) for r in recovered] == [("stuck", COMPENSATED)]
    assert await _effects(db, "stuck") == [("do", "reserve"), ("do", "charge"), ("undo", "charge"), ("undo", "reserve")]

    hopeless = Plan(fail_at="charge", failing_compensations=10)
    orchestrator = _orchestrator(build(hopeless, is_async=db.is_async), retry_after=0.0, max_attempts=2)
    assert (await db(orchestrator).start("order-compensate", saga_id="hopeless")).state == COMPENSATING
    assert [r.state for r in await db(orchestrator).recover()] == [FAILED]
    assert await db(orchestrator).recover() == []


async def test_bad_definitions_and_input_are_refused(db: IO) -> None:
    with pytest.raises(ConfigurationError):
        Saga("empty", [])
    with pytest.raises(ConfigurationError):
        Saga("twice", [Step("a", print), Step("a", print)])
    orchestrator = _orchestrator(build(Plan(), is_async=db.is_async))
    with pytest.raises(ConfigurationError):
        await db(orchestrator).start("unknown")
    with pytest.raises(ValidationError):
        await db(orchestrator).start("order-compensate", {"when": object()})
    with pytest.raises(TransactionError):  # each step must commit on its own
        async with db.transaction():
            await db(orchestrator).start("order-compensate")
    assert await db(orchestrator.model.find()).count() == 0


SCRIPT_MODULE = "tests.patterns.saga_steps"


def _kill_at_step(backend_dbs: BackendDatabases, tmp_path: Path, mode: str, recovery: str, step: str) -> str:
    """Run the saga in a subprocess, SIGKILL it while ``step`` is running; the saga's id."""
    marker = tmp_path / "running"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "SAGA_DB": json.dumps(backend_dbs.config("default")),
        "SAGA_MARKER": str(marker),
        "SAGA_HANG_AT": step,
        "SAGA_MODE": mode,
        "SAGA_RECOVERY": recovery,
        "SAGA_LEASE": str(LEASE),
    }
    proc = subprocess.Popen([sys.executable, "-m", SCRIPT_MODULE], env=env)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text():
            assert proc.poll() is None, "the saga process exited before reaching the step"
            assert time.monotonic() < deadline, "the saga process never reached the step"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    return marker.read_text()


@pytest.mark.parametrize("recovery", ["forward", "compensate"])
@pytest.mark.parametrize("killed_at", range(len(STEPS)))
async def test_a_saga_killed_at_each_step_is_finished_by_recovery_exactly_once(
    db: IO, backend_dbs: BackendDatabases, tmp_path: Path, recovery: str, killed_at: int
) -> None:
    saga_id = _kill_at_step(backend_dbs, tmp_path, db.mode, recovery, STEPS[killed_at])
    plan = Plan()
    orchestrator = _orchestrator(build(plan, is_async=db.is_async, recovery=recovery))  # type: ignore[arg-type]
    # The killed step's transaction died with the process: only the steps before it are recorded.
    assert await _effects(db, saga_id) == [("do", s) for s in STEPS[:killed_at]]
    stored = await db(orchestrator).get(saga_id)
    assert stored is not None and (stored.state, stored.step) == ("running", killed_at)
    assert await db(orchestrator).recover() == []  # the dead process's lease still holds
    await asyncio.sleep(LEASE + 0.1)
    recovered = await db(orchestrator).recover()
    assert [r.id for r in recovered] == [saga_id]
    effects = await _effects(db, saga_id)
    before = [("do", s) for s in STEPS[:killed_at]]
    if recovery == "forward":
        assert recovered[0].state == COMPLETED
        assert effects == [("do", s) for s in STEPS]
    else:
        assert recovered[0].state == COMPENSATED
        assert effects == before + [("undo", s) for s in reversed(STEPS[:killed_at])]
    assert len(set(effects)) == len(effects)  # no step acted twice
    assert await db(orchestrator).recover() == []

"""The deadline table behind async read timeouts, pool waits and SQLite's turn waits.

A bounded wait that overruns raises its caller's error in time and leaves the task as it was (not
cancelled, nothing marked for its next wait); bounds of different lengths share one loop; the
task's own cancellation stays a cancellation; every event loop has its own table. The timeouts
on real servers are in test_timeouts.py; these run on plain futures, as the pool's wait does.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from activerecord.dialects.deadlines import bounded


class Overrun(Exception):
    pass


async def _never() -> None:
    await asyncio.get_running_loop().create_future()


async def _overruns_within(seconds: float, bound: float) -> float:
    started = time.monotonic()
    with pytest.raises(Overrun):
        await bounded(_never(), seconds, Overrun)
    elapsed = time.monotonic() - started
    assert elapsed < bound, f"took {elapsed:.2f}s"
    return elapsed


async def test_an_overrun_raises_the_callers_error_and_leaves_the_task_usable() -> None:
    assert await _overruns_within(0.05, 1.0) >= 0.05
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    assert await bounded(asyncio.sleep(0, "next"), 1.0, Overrun) == "next"
    await asyncio.sleep(0.01)  # (nothing cancels the task later)


async def test_a_short_bound_is_not_held_up_by_a_longer_one_waiting_first() -> None:
    patient = asyncio.ensure_future(bounded(asyncio.sleep(0.5, "done"), 60.0, Overrun))
    await asyncio.sleep(0.05)
    await _overruns_within(0.1, 0.4)
    assert await patient == "done"


async def test_a_wait_inside_another_of_the_same_task_keeps_the_outer_deadline() -> None:
    # A bounded saga step that runs a bounded statement: the statement's longer bound, begun and
    # ended inside, must not replace or remove the step's.
    async def step() -> None:
        await bounded(asyncio.sleep(0), 60.0, Overrun)  # a statement that ends
        await bounded(_never(), 60.0, Overrun)  # one that waits

    class StepTimeout(Exception):
        pass

    started = time.monotonic()
    with pytest.raises(StepTimeout):
        await bounded(step(), 0.1, StepTimeout)
    assert time.monotonic() - started < 1.0
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_the_tasks_own_cancellation_stays_a_cancellation() -> None:
    waiting = asyncio.ensure_future(bounded(_never(), 0.2, Overrun))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


@pytest.mark.parametrize("ending", ["returns", "raises its own error"])
async def test_work_that_answers_the_cancellation_its_own_way_leaves_no_mark_behind(ending: str) -> None:
    # A driver may swallow the cancellation, or turn it into an error of its own.
    async def driver() -> str:
        try:
            await _never()
        except asyncio.CancelledError:
            if ending == "returns":
                return "finished anyway"
            raise ConnectionError("connection closed while cancelled") from None
        return "unreachable"

    if ending == "returns":
        assert await bounded(driver(), 0.05, Overrun) == "finished anyway"
    else:
        with pytest.raises(ConnectionError):
            await bounded(driver(), 0.05, Overrun)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    # A later cancellation of this task's own is not taken for an overrun.
    asyncio.get_running_loop().call_later(0.05, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await bounded(_never(), 5.0, Overrun)
    assert task.uncancel() == 0


def test_every_event_loop_keeps_its_own_deadlines() -> None:
    # One loop after another, then two at once on two threads.
    for _ in range(2):
        asyncio.run(_overruns_within(0.05, 1.0))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_overruns_within(0.1, 1.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors

"""Async pools belong to their event loop: scripts and CLIs that call `asyncio.run()` more than
once, and threads that each run a loop, work on every backend without a connection crossing
loops and without errors or warnings when a loop ends.

The loops run in worker threads: the test itself runs inside the suite's loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from activerecord import ConnectionManager

from .dual import IO
from .models import Author

pytestmark = pytest.mark.modes("async")


async def _work(tag: str) -> tuple[int, int]:
    """Real queries and a transaction on this loop; the id of the engine that served them."""
    async with Author.atransaction():
        await Author.acreate(name=tag, email=f"{tag}@example.com")
        await Author.acreate(name=tag, email=f"{tag}.2@example.com")
    count = await Author.find().where(name=tag).acount()
    return count, id(ConnectionManager.async_engine("default"))


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], None]]:
    """Records warnings and log records at WARNING and above; the returned check fails on any."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING):

            def check() -> None:
                gc.collect()  # finalizers of dropped connections run now, inside the capture
                assert [str(w.message) for w in caught] == []
                assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

            yield check


def _in_thread(target: Callable[[], Any]) -> Any:
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(target())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    if errors:
        raise errors[0]
    return result[0]


async def test_asyncio_run_again_and_again(db: IO, quiet: Callable[[], None]) -> None:
    node = ConnectionManager.node("default")
    before = len(node.async_engines())

    def script() -> list[tuple[int, int]]:
        return [asyncio.run(_work(f"run{i}")) for i in range(4)]

    outcomes = _in_thread(script)
    assert [count for count, _ in outcomes] == [2, 2, 2, 2]
    # Each loop's pool was closed with its loop: nothing of theirs is left open.
    assert len(node.async_engines()) == before
    # And the suite's own loop still has its working pool.
    assert await Author.find().acount() == 8
    quiet()


async def test_two_loops_in_two_threads_at_once(db: IO, quiet: Callable[[], None]) -> None:
    node = ConnectionManager.node("default")
    before = len(node.async_engines())
    both_running = threading.Barrier(2, timeout=30)

    async def loop_body(thread: int) -> list[tuple[int, int]]:
        done = [await _work(f"t{thread}a")]
        both_running.wait()  # (a blocking wait is fine: each loop is alone on its thread)
        done.append(await _work(f"t{thread}b"))
        return done

    results: list[list[tuple[int, int]]] = [[], []]

    def runner(thread: int) -> None:
        results[thread] = asyncio.run(loop_body(thread))

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [[count for count, _ in r] for r in results] == [[2, 2], [2, 2]]
    engines = [{engine for _, engine in r} for r in results]
    # One engine per loop, used for all of that loop's work, and no engine shared by the two.
    assert all(len(e) == 1 for e in engines) and not engines[0] & engines[1]
    assert len(node.async_engines()) == before
    assert await Author.find().acount() == 8
    quiet()


async def test_an_engine_for_the_running_loop_is_not_handed_to_another(db: IO) -> None:
    here = ConnectionManager.async_engine("default")
    assert ConnectionManager.async_engine("default") is here

    async def elsewhere() -> Any:
        return ConnectionManager.async_engine("default")

    there = _in_thread(lambda: asyncio.run(elsewhere()))
    assert there is not here
    assert ConnectionManager.async_engine("default") is here


async def test_a_loop_closed_without_asyncio_run_is_dropped_at_the_next_loop(
    db: IO, caplog: pytest.LogCaptureFixture
) -> None:
    node = ConnectionManager.node("default")
    before = len(node.async_engines())

    def script() -> tuple[int, int]:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(_work("manual"))
        loop.close()  # its tasks were never cancelled: the pool could not be closed on it
        return asyncio.run(_work("after"))

    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        # The dropped connections' sockets are closed by the garbage collector (documented).
        warnings.simplefilter("ignore", ResourceWarning)
        count, _ = _in_thread(script)
        gc.collect()
    assert count == 2
    assert len(node.async_engines()) == before
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

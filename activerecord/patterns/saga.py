"""Sagas: ordered steps, each an action with its compensation, with their progress persisted per step.

A saga's row (``activerecord_sagas``: id, name, state, step, data, timestamps, lease) is written
before the first step and updated in the same transaction as each step: the step's action runs
inside that transaction on the orchestrator's connection, so its writes to that database and the
record that the step is done commit together or not at all. A process that dies mid-saga leaves
the row ``running`` (or ``compensating``) with a lease that runs out; `SagaOrchestrator.recover`
then claims it and continues forward or compensates backward, as the saga declares.

What a step does outside that database (a call to another service) is not rolled back with it:
a step that was running when the process died runs again on recovery (forward), or is never
compensated (backward; only completed steps are). Each step gets ``ctx.idempotency_key`` (saga
id + step name) to pass to such services, so that the second call does not act twice.

States: ``running`` -> ``completed``; or, when a step fails (raises, or outlives its ``timeout``),
``compensating`` -> ``compensated``, the completed steps compensated in reverse order. A
compensation that fails is retried by later `recover` runs; after ``max_attempts`` the saga is
``failed`` and needs a person.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Row, Table, insert, select, update

from ..connections import execute as _execute
from ..connections import transaction as _transaction
from ..dialects.utc import utcnow
from ..engine.greenlets import bridged, run_in_greenlet, wait
from ..errors import ActiveRecordError, ConfigurationError, TransactionError, ValidationError
from ..model.base import ActiveRecord
from ._store_tables import saga_model

DEFAULT_TABLE = "activerecord_sagas"

RUNNING = "running"
COMPENSATING = "compensating"
COMPLETED = "completed"
COMPENSATED = "compensated"
FAILED = "failed"

Action = Callable[["StepContext"], Any]


class StepFailed(ActiveRecordError):
    """Raised by a step's action to fail it on purpose (stock refused, payment declined): the
    saga compensates and its ``error`` is the message alone."""


class StepTimeout(ActiveRecordError):
    """A saga step ran longer than its ``timeout``."""


class LeaseLost(ActiveRecordError):
    """This process no longer owns the saga (its lease ran out and a recovery run took it over)."""


@dataclass
class StepContext:
    """What a step's action (or compensation) is called with.

    ``data`` is the saga's data; changes to it, and a mapping the action returns, are saved with
    the step. ``idempotency_key`` is the same each time this step of this saga runs (and differs
    between the action and the compensation): hand it to other services so a retried call does
    not act twice.
    """

    saga_id: str
    saga: str
    step: str
    idempotency_key: str
    data: dict[str, Any]
    compensating: bool = False


@dataclass(frozen=True)
class Step:
    """One step: ``action`` and its ``compensation`` (None: nothing to undo); ``timeout`` in
    seconds (coroutine actions are cancelled then; plain functions are judged when they return);
    ``retries`` more attempts of a failing action before the saga compensates."""

    name: str
    action: Action
    compensation: Action | None = None
    timeout: float | None = None
    retries: int = 0


@dataclass(frozen=True)
class Saga:
    """A saga ``name``: ``steps`` in order; ``recovery`` says what a recovery run does with a saga
    whose process died while it ran forward: ``"compensate"`` (undo the completed steps) or
    ``"forward"`` (run the remaining steps)."""

    name: str
    steps: Sequence[Step]
    recovery: Literal["compensate", "forward"] = "compensate"

    def __post_init__(self) -> None:
        names = [step.name for step in self.steps]
        if not self.name or len(self.name) > 100:
            raise ConfigurationError(f"saga {self.name!r}: a name of 1 to 100 characters")
        if not names or len(set(names)) != len(names) or not all(names):
            raise ConfigurationError(f"saga {self.name!r}: at least one step, with distinct non-empty names")
        if self.recovery not in ("compensate", "forward"):
            raise ConfigurationError(f"saga {self.name!r}: recovery is 'compensate' or 'forward'")


@dataclass(frozen=True)
class SagaResult:
    """Where a saga stands: its ``state``, the number of completed (not compensated) steps
    ``step``, its ``data`` and the ``error`` that made it compensate, if any."""

    id: str
    name: str
    state: str
    step: int
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """Whether every step completed."""
        return self.state == COMPLETED

    @property
    def finished(self) -> bool:
        """Whether nothing is left to do (completed, compensated, or failed for good)."""
        return self.state in (COMPLETED, COMPENSATED, FAILED)


# -- statements ------------------------------------------------------------------------------


def _insert(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    conn.execute(insert(table).values(**row))


def _hold(conn: Connection, table: Table, saga_id: str, owner: str, state: str, step: int, until: dt.datetime) -> bool:
    """Lock the saga's row for this step's transaction and renew the lease, if it is still ours
    and where we left it."""
    stmt = (
        update(table)
        .where(table.c.id == saga_id, table.c.lease_owner == owner, table.c.state == state, table.c.step == step)
        .values(leased_until=until)
    )
    return bool(conn.execute(stmt).rowcount == 1)


def _set(conn: Connection, table: Table, saga_id: str, owner: str, values: dict[str, Any]) -> bool:
    stmt = (
        update(table).where(table.c.id == saga_id, table.c.lease_owner == owner).values(updated_at=utcnow(), **values)
    )
    return bool(conn.execute(stmt).rowcount == 1)


def _stalled(conn: Connection, table: Table, name: str, now: dt.datetime, limit: int) -> list[str]:
    stmt = (
        select(table.c.id)
        .where(table.c.name == name, table.c.state.in_((RUNNING, COMPENSATING)), table.c.leased_until < now)
        .order_by(table.c.created_at)
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def _claim(
    conn: Connection, table: Table, saga_id: str, owner: str, now: dt.datetime, until: dt.datetime
) -> Row[Any] | None:
    stmt = (
        update(table)
        .where(table.c.id == saga_id, table.c.state.in_((RUNNING, COMPENSATING)), table.c.leased_until < now)
        .values(lease_owner=owner, leased_until=until)
    )
    if conn.execute(stmt).rowcount != 1:
        return None
    return conn.execute(select(table).where(table.c.id == saga_id)).one()


def _load(conn: Connection, table: Table, saga_id: str) -> Row[Any] | None:
    return conn.execute(select(table).where(table.c.id == saga_id)).first()


# -- one run of a saga -----------------------------------------------------------------------


@dataclass
class _Run:
    """One process's hold on one saga: where it stands, as persisted."""

    saga: Saga
    id: str
    owner: str
    state: str
    step: int
    data: dict[str, Any]
    attempts: int = 0
    error: str | None = None

    def context(self, index: int, compensating: bool) -> StepContext:
        step = self.saga.steps[index]
        key = f"{self.id}:{step.name}" + (":compensate" if compensating else "")
        return StepContext(self.id, self.saga.name, step.name, key, json.loads(json.dumps(self.data)), compensating)

    def result(self) -> SagaResult:
        return SagaResult(self.id, self.saga.name, self.state, self.step, self.data, self.error)


def _merge(ctx: StepContext, returned: Any) -> dict[str, Any]:
    if isinstance(returned, Mapping):
        ctx.data.update(returned)
    try:
        json.dumps(ctx.data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError("saga data", {"data": [f"not JSON-serializable: {exc}"]}) from None
    return ctx.data


def _describe(exc: BaseException) -> str:
    return (str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}")[:2000]


class SagaOrchestrator:
    """Runs and recovers the ``sagas`` on connection ``connection``, their rows in ``table``.

    ``lease`` seconds must cover one step (plus its ``timeout``): a process whose lease ran out
    loses the saga to a recovery run. ``max_attempts`` bounds the recovery runs of a saga whose
    compensation keeps failing. Every method has an async twin (``astart``, ``arecover``, ...);
    async runs await coroutine-function actions, sync runs need plain functions.
    """

    def __init__(
        self,
        connection: str = "default",
        *,
        sagas: Sequence[Saga] = (),
        table: str = DEFAULT_TABLE,
        lease: float = 60.0,
        max_attempts: int = 5,
        retry_after: float = 5.0,
    ) -> None:
        if lease <= 0 or max_attempts < 1 or retry_after < 0:
            raise ConfigurationError("SagaOrchestrator: lease above 0, max_attempts at least 1, retry_after >= 0")
        self.connection = connection
        self.model: type[ActiveRecord] = saga_model(connection, table)
        self.lease = lease
        self.max_attempts = max_attempts
        self.retry_after = retry_after
        self.sagas: dict[str, Saga] = {}
        for saga in sagas:
            self.register(saga)

    def __repr__(self) -> str:
        return f"SagaOrchestrator(connection={self.connection!r}, sagas={sorted(self.sagas)!r})"

    @property
    def table(self) -> Table:
        """The saga table's `sqlalchemy.Table`."""
        return self.model.__table__

    def register(self, saga: Saga) -> Saga:
        """Make ``saga`` known (for `start` by name and for `recover`); return it."""
        if not isinstance(saga, Saga):
            raise ConfigurationError(f"{saga!r} is not a Saga")
        self.sagas[saga.name] = saga
        return saga

    # -- shared pieces ---------------------------------------------------------------------

    def _until(self, seconds: float | None = None) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=self.lease + (seconds or 0.0))

    def _new(
        self, saga: Saga | str, data: Mapping[str, Any] | None, saga_id: str | None
    ) -> tuple[_Run, dict[str, Any]]:
        if _transaction.current(self.connection) is not None:
            # Inside a transaction every step would be a savepoint, and nothing (not even the
            # saga's row) would be kept if the process died before the outer commit.
            raise TransactionError(f"start a saga outside any transaction on connection {self.connection!r}")
        found = self.sagas.get(saga) if isinstance(saga, str) else self.register(saga)
        if found is None:
            raise ConfigurationError(f"no saga named {saga!r} is registered")
        checked = dict(data or {})
        try:
            json.dumps(checked, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError("saga data", {"data": [f"not JSON-serializable: {exc}"]}) from None
        if saga_id is not None and (not isinstance(saga_id, str) or not saga_id or len(saga_id) > 64):
            raise ValidationError("saga", {"saga_id": ["a non-empty string of at most 64 characters"]})
        run = _Run(found, saga_id or uuid.uuid4().hex, uuid.uuid4().hex, RUNNING, 0, checked)
        now = utcnow()
        row = {
            "id": run.id,
            "name": found.name,
            "state": RUNNING,
            "step": 0,
            "data": checked,
            "attempts": 0,
            "lease_owner": run.owner,
            "leased_until": self._until(),
            "created_at": now,
            "updated_at": now,
        }
        return run, row

    def _resumed(self, row: Row[Any], owner: str) -> _Run:
        saga = self.sagas[row.name]
        run = _Run(saga, row.id, owner, row.state, row.step, dict(row.data or {}), row.attempts, row.error)
        if run.state == RUNNING and saga.recovery == "compensate":
            run.state = COMPENSATING
            run.error = run.error or "the process running the saga stopped; compensating on recovery"
        return run

    def _after_failure(self, run: _Run, exc: BaseException) -> dict[str, Any]:
        """The row's values once a compensation failed: retried later, or failed for good."""
        run.attempts += 1
        run.error = _describe(exc)
        if run.attempts >= self.max_attempts:
            run.state = FAILED
        until = utcnow() + dt.timedelta(seconds=self.retry_after)
        return {"state": run.state, "attempts": run.attempts, "error": run.error, "leased_until": until}

    @staticmethod
    def _call(action: Action, ctx: StepContext, timeout: float | None) -> Any:
        """Call a step's action. In an async run (inside the greenlet bridge) a coroutine action is
        awaited on the caller's event loop and cancelled at ``timeout``; a plain function, which
        cannot be interrupted, is judged when it returns, as in a sync run."""
        started = time.monotonic()
        returned = action(ctx)
        if inspect.isawaitable(returned):
            if not bridged():
                close = getattr(returned, "close", None)
                if close is not None:
                    close()
                raise ConfigurationError(f"step {ctx.step!r} is async: run the saga with astart()/arecover()")
            try:
                return wait(returned, timeout)
            except TimeoutError:
                raise StepTimeout(f"step {ctx.step!r} took longer than {timeout:g}s") from None
        if timeout is not None and time.monotonic() - started > timeout:
            raise StepTimeout(f"step {ctx.step!r} took longer than {timeout:g}s")
        return returned

    # -- the orchestration, once: async callers run it through the greenlet bridge ---------

    def _step(self, run: _Run, index: int, compensating: bool) -> None:
        """Run one action (or compensation) and record it, in one transaction."""
        step = run.saga.steps[index]
        action = step.compensation if compensating else step.action
        ctx = run.context(index, compensating)
        name, table = self.connection, self.table
        with _transaction.transaction(name):
            if not _execute.run(
                name, True, _hold, table, run.id, run.owner, run.state, run.step, self._until(step.timeout)
            ):
                raise LeaseLost(f"saga {run.id}: taken over by another process")
            data = _merge(ctx, self._call(action, ctx, step.timeout)) if action is not None else run.data
            after = index if compensating else index + 1
            done = (COMPENSATED if after == 0 else run.state) if compensating else run.state
            if not compensating and after == len(run.saga.steps):
                done = COMPLETED
            _execute.run(name, True, _set, table, run.id, run.owner, {"step": after, "data": data, "state": done})
        run.step, run.data, run.state = after, data, done

    def _forward(self, run: _Run) -> None:
        while run.state == RUNNING:
            step = run.saga.steps[run.step]
            for attempt in range(step.retries + 1):
                try:
                    self._step(run, run.step, False)
                    break
                except LeaseLost:
                    raise
                except Exception as exc:
                    if attempt == step.retries:
                        run.state, run.error = COMPENSATING, _describe(exc)
                        values = {"state": COMPENSATING, "error": run.error}
                        _execute.run(self.connection, True, _set, self.table, run.id, run.owner, values)

    def _backward(self, run: _Run) -> None:
        if run.state == COMPENSATING and run.step == 0:
            _execute.run(self.connection, True, _set, self.table, run.id, run.owner, {"state": COMPENSATED})
            run.state = COMPENSATED
        while run.state == COMPENSATING:
            try:
                self._step(run, run.step - 1, True)
            except LeaseLost:
                raise
            except Exception as exc:
                values = self._after_failure(run, exc)
                _execute.run(self.connection, True, _set, self.table, run.id, run.owner, values)
                return

    def _drive(self, run: _Run) -> SagaResult:
        self._forward(run)
        self._backward(run)
        return run.result()

    def start(
        self, saga: Saga | str, data: Mapping[str, Any] | None = None, *, saga_id: str | None = None
    ) -> SagaResult:
        """Persist a new run of ``saga`` with ``data``, then run its steps; return where it ended.

        A step failing makes the saga compensate (the result is ``compensated``, with the error);
        a compensation failing leaves it ``compensating`` for `recover` to retry. Raises
        `LeaseLost` if a recovery run took the saga over (this process was too slow), and
        `TransactionError` inside a transaction on the orchestrator's connection (each step
        must commit on its own)."""
        run, row = self._new(saga, data, saga_id)
        _execute.run(self.connection, True, _insert, self.table, row)
        return self._drive(run)

    def recover(self, *, limit: int = 100) -> list[SagaResult]:
        """Finish the sagas whose process stopped (their lease ran out): each forward or backward
        as its saga declares. Run it at start-up and periodically; several processes may run it
        at once (each saga is claimed by one)."""
        results = []
        for name in self.sagas:
            for saga_id in _execute.run(self.connection, True, _stalled, self.table, name, utcnow(), limit):
                owner = uuid.uuid4().hex
                row = _execute.run(self.connection, True, _claim, self.table, saga_id, owner, utcnow(), self._until())
                if row is None:
                    continue  # another process claimed it first
                run = self._resumed(row, owner)
                if run.state != row.state:
                    _execute.run(
                        self.connection, True, _set, self.table, run.id, owner, {"state": run.state, "error": run.error}
                    )
                results.append(self._drive(run))
        return results

    def get(self, saga_id: str) -> SagaResult | None:
        """The saga ``saga_id`` as persisted, or None."""
        return self._loaded(_execute.run(self.connection, False, _load, self.table, saga_id))

    async def astart(
        self, saga: Saga | str, data: Mapping[str, Any] | None = None, *, saga_id: str | None = None
    ) -> SagaResult:
        """`start` (async): the same orchestration, run through the greenlet bridge."""
        return await run_in_greenlet(self.start, saga, data, saga_id=saga_id)

    async def arecover(self, *, limit: int = 100) -> list[SagaResult]:
        """`recover` (async)."""
        return await run_in_greenlet(self.recover, limit=limit)

    async def aget(self, saga_id: str) -> SagaResult | None:
        """`get` (async)."""
        return await run_in_greenlet(self.get, saga_id)

    @staticmethod
    def _loaded(row: Row[Any] | None) -> SagaResult | None:
        if row is None:
            return None
        return SagaResult(row.id, row.name, row.state, row.step, dict(row.data or {}), row.error)

    # -- schema ----------------------------------------------------------------------------

    def create_table(self) -> None:
        """Create the saga table if it is missing (production schemas use migrations)."""
        self.model.create_all()

    async def acreate_table(self) -> None:
        """`create_table` (async)."""
        await self.model.acreate_all()

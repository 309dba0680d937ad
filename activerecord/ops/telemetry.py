"""Opt-in instrumentation of every engine: statement and pool metrics, spans, the slow-statement log.

Nothing is registered until `instrument()`: with it off, no listener runs and statements cost
what they cost without this module. Once on, each engine (those that exist and those created
later) gets SQLAlchemy's public ``do_execute`` / ``do_executemany`` / ``do_execute_no_params``
dialect events (one listener that times the driver call it makes), a ``handle_error`` listener
for errors by class, and a timer around its pool's checkout; replica choice is heard through
`activerecord.multidb.replicas.observer`.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from time import perf_counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.pool import Pool

from ..connections.manager import ConnectionManager
from ..engine import engines as _engines
from ..errors import retry_class
from ..multidb import replicas as _replicas
from . import metrics as _m

if TYPE_CHECKING:
    # OpenTelemetry is the ``otel`` extra: imported only when a provider is passed in.
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import TracerProvider

    from .tracing import Tracing

#: Statements over the slow threshold are logged here (text and timing, never bound values).
slow_log = logging.getLogger("activerecord.slow")

_SCOPE = "activerecord"
# Per engine, the statements whose labels are cached; beyond it labels are worked out per call.
_MAX_STATEMENTS = 2000
_OPERATION = re.compile(r"^\s*(?:/\*.*?\*/\s*)?(\w+)", re.DOTALL)
_QUOTES = re.compile(r"[`\"\[\]]")
_TARGET = re.compile(
    r"\b(?:FROM|INTO|UPDATE|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?)\s+"
    r"((?:[`\"\[]?[\w$]+[`\"\]]?\.)?[`\"\[]?[\w$]+[`\"\]]?)",
    re.I,
)


class _Routing:
    """Replica choice of the current read, for its first statement's span."""

    __slots__ = ("choice", "node", "reason")

    def __init__(self, node: _engines.NodeEngines, choice: str, reason: str) -> None:
        self.node = node
        self.choice = choice
        self.reason = reason


_FOLD_AT = _m.FOLD_AT

_routing: ContextVar[_Routing | None] = ContextVar("activerecord_replica_routing", default=None)
_skipped: ContextVar[list[str] | None] = ContextVar("activerecord_replica_skipped", default=None)


def summarize(statement: str) -> tuple[str, str]:
    """``(operation, summary)`` of a statement: ``("SELECT", "SELECT items")``."""
    found = _OPERATION.match(statement)
    operation = found.group(1).upper() if found else "UNKNOWN"
    target = _TARGET.search(statement)
    if target is None:
        return operation, operation
    return operation, f"{operation} {_QUOTES.sub('', target.group(1))}"


class _Statement:
    """What one statement text on one engine records into, worked out once."""

    __slots__ = ("attributes", "duration", "name", "otel", "pending", "pending_rows", "returns_rows")

    def __init__(self, state: _EngineState, statement: str) -> None:
        operation, summary = summarize(statement)
        labels = (*state.labels, ("db.operation.name", operation), ("db.query.summary", summary))
        self.name = summary
        # A SELECT's row count is rows returned; a DML statement's is rows affected (metrics only).
        self.returns_rows = operation == "SELECT"
        self.attributes = dict(labels)
        # The duration series carries the rows counter of the same labels (`metrics.Histogram.rows`).
        self.duration = state.owner.metrics.histogram(_m.DURATION, labels)
        self.pending = self.duration.pending
        self.pending_rows = self.duration.pending_rows
        self.otel = state.owner.otel_duration


class _EngineState:
    """One instrumented engine: its labels and cached statements."""

    def __init__(self, owner: _Instrumentation, node: _engines.NodeEngines, engine: Engine) -> None:
        self.owner = owner
        self.node = node
        # Weak: instrumentation must not keep a disposed engine (a replaced node's) alive.
        self.engine = weakref.ref(engine)
        self.url = engine.url
        self._labels: _m.Labels | None = None
        self._attributes: dict[str, str] | None = None
        self.replica: _replicas.Replica | None = None
        self.statements: dict[str, _Statement] = {}
        self.pending = 0
        self._lock = threading.Lock()
        self.wait: _m.Histogram | None = None
        self.listeners: list[tuple[str, Callable[..., Any]]] = []

    @property
    def attributes(self) -> dict[str, str]:
        """`labels` as OpenTelemetry attributes (made once)."""
        if self._attributes is None:
            self._attributes = dict(self.labels)
        return self._attributes

    @property
    def labels(self) -> _m.Labels:
        """Connection, role, node, shard, system, namespace and server (worked out on first use)."""
        if self._labels is None:
            self._labels = self._resolve()
        return self._labels

    def _resolve(self) -> _m.Labels:
        connection, shard, role = "", "", "primary"
        for name, shard_name, cluster in _clusters():
            if cluster.primary is self.node:
                connection, shard = name, shard_name
                break
            replica = next((r for r in cluster.replicas if r.engines is self.node), None)
            if replica is not None:
                connection, shard, role, self.replica = name, shard_name, "replica", replica
                break
        url = self.url
        labels: list[tuple[str, str]] = [
            ("db.system.name", self.node.node.backend),
            ("db.namespace", url.database or ""),
            ("activerecord.connection", connection),
            ("activerecord.role", role),
            ("activerecord.node", self.replica.label if self.replica is not None else self.node.node.safe_url),
        ]
        if shard:
            labels.append(("activerecord.shard", shard))
        if url.host:
            labels.append(("server.address", url.host))
            labels.append(("server.port", str(url.port or "")))
        return tuple(labels)

    def statement(self, text: str) -> _Statement:
        """The cached record target of ``text``."""
        found = self.statements.get(text)
        if found is None:
            found = _Statement(self, text)
            if len(self.statements) < _MAX_STATEMENTS:
                self.statements[text] = found
        return found


def _clusters() -> Iterator[tuple[str, str, _replicas.Cluster]]:
    for name in ConnectionManager.names():
        if ConnectionManager.is_shard_group(name):
            for shard in ConnectionManager.shards(name):
                yield name, shard, ConnectionManager.cluster(shard)
        else:
            yield name, "", ConnectionManager.cluster(name)


class _Instrumentation:
    """The installed listeners and where they record."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        slow_threshold: float | None,
        statement_text: bool,
    ) -> None:
        self.metrics = _m.Metrics()
        self.slow = float("inf") if slow_threshold is None else slow_threshold
        self.tracing: Tracing | None = None
        if tracer_provider is not None:
            from .tracing import Tracing

            self.tracing = Tracing(tracer_provider.get_tracer(_SCOPE), statement_text)
        self.states: weakref.WeakKeyDictionary[Engine, _EngineState] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.otel_duration: Any = None
        self.otel_wait: Any = None
        self.metrics.gauge_source(self._pool_gauges)
        self.metrics.gauge_source(self._lag_gauges)
        if meter_provider is not None:
            self._bridge(meter_provider.get_meter(_SCOPE))

    # -- engines ------------------------------------------------------------------------------

    def attach(self, node: _engines.NodeEngines, engine: Engine) -> None:
        """Instrument ``engine`` (once)."""
        with self._lock:
            if engine in self.states:
                return
            state = self.states[engine] = _EngineState(self, node, engine)
        for name, fn in self._listeners(state, engine):
            event.listen(engine, name, fn)
        _wrap_pool(state, engine.pool)
        if self.tracing is not None:
            # Labels are worked out at the first transaction, not here: a new engine is announced
            # while its node's lock is held, and they are looked up in the connection registry.
            self.tracing.install(engine, lambda: dict(state.labels))

    def detach(self) -> None:
        """Remove every listener and pool timer installed by `attach`."""
        for engine, state in list(self.states.items()):
            for name, fn in state.listeners:
                if event.contains(engine, name, fn):
                    event.remove(engine, name, fn)
            _unwrap_pool(engine.pool)
            if self.tracing is not None:
                self.tracing.uninstall(engine)
        self.states.clear()

    def _listeners(self, state: _EngineState, engine: Engine) -> list[tuple[str, Callable[..., Any]]]:
        dialect = engine.dialect
        fast = self.tracing is None and self.otel_duration is None

        def handle_error(context: ExceptionContext) -> None:
            # chained_exception is set only when an earlier listener (faults.install) replaced the error.
            error = (
                getattr(context, "chained_exception", None)
                or context.sqlalchemy_exception
                or context.original_exception
            )
            labels = (
                *state.labels,
                ("error.type", type(error).__qualname__),
                ("activerecord.retry_class", retry_class(error).value),
            )
            self.metrics.add(self.metrics.counter(_m.ERRORS, labels))

        def connect(dbapi_connection: Any, record: Any) -> None:
            # dispose() replaces the pool: time the new one's checkouts from its first connection
            # on. A pool event, not the engine's engine_disposed: any engine-level listener turns
            # on SQLAlchemy's per-statement event path for every statement of the engine.
            current = state.engine()
            if current is not None:
                _wrap_pool(state, current.pool)

        def timer(run: Callable[..., Any]) -> Callable[..., bool]:
            return self._timer(state, run) if fast else self._full_timer(state, run)

        def run_no_params(cursor: Any, statement: str, parameters: Any, context: Any) -> None:
            dialect.do_execute_no_params(cursor, statement, context)

        # do_execute_no_params(cursor, statement, context) is rare: it goes through the timer
        # with the arguments of the other two, at the cost of one more call.
        timed_no_params = timer(run_no_params)

        def no_params(cursor: Any, statement: str, context: Any) -> bool:
            return timed_no_params(cursor, statement, None, context)

        state.listeners = [
            ("do_execute", timer(dialect.do_execute)),
            ("do_executemany", timer(dialect.do_executemany)),
            ("do_execute_no_params", no_params),
            ("handle_error", handle_error),
            ("connect", connect),
        ]
        return state.listeners

    def _timer(self, state: _EngineState, run: Callable[..., Any]) -> Callable[..., bool]:
        """The listener that makes the driver call ``run`` and records it: the metrics-only path,
        kept to one Python call, two clock reads and two list appends per statement (the histogram
        sorts its observations into buckets in batches, `metrics.Histogram.fold`)."""
        cache = state.statements
        slow = self.slow

        def failed(stmt: _Statement, statement: str, elapsed: float, exc: BaseException) -> None:
            stmt.duration.observe(elapsed)
            if elapsed >= slow:
                _log_slow(stmt, statement, elapsed, exc)

        def timed(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
            stmt = cache.get(statement) or state.statement(statement)
            start = perf_counter()
            try:
                run(cursor, statement, parameters, context)
            except BaseException as exc:
                failed(stmt, statement, perf_counter() - start, exc)
                raise
            elapsed = perf_counter() - start
            pending = stmt.pending
            pending.append(elapsed)
            stmt.pending_rows.append(cursor.rowcount)
            if len(pending) >= _FOLD_AT:
                stmt.duration.fold()
            if elapsed >= slow:
                _log_slow(stmt, statement, elapsed)
            return True

        return timed

    def _full_timer(self, state: _EngineState, run: Callable[..., Any]) -> Callable[..., bool]:
        """The listener for when spans or OpenTelemetry histograms are on too."""
        tracing = self.tracing
        slow = self.slow

        def timed(cursor: Any, statement: str, *rest: Any) -> bool:
            stmt = state.statement(statement)
            span = None
            if tracing is not None:
                conn = rest[-1].root_connection  # the execution context is the last argument
                span = tracing.start_statement(stmt.name, stmt.attributes, statement, conn, _routing_attributes(state))
            start = perf_counter()
            try:
                run(cursor, statement, *rest)
            except BaseException as exc:
                elapsed = perf_counter() - start
                stmt.duration.observe(elapsed)
                if stmt.otel is not None:
                    stmt.otel.record(elapsed, {**stmt.attributes, "error.type": type(exc).__qualname__})
                if span is not None:
                    tracing.end_statement(span, exc, -1)  # type: ignore[union-attr]
                if elapsed >= slow:
                    _log_slow(stmt, statement, elapsed, exc)
                raise
            elapsed = perf_counter() - start
            rows = cursor.rowcount
            stmt.duration.observe(elapsed, rows)
            if stmt.otel is not None:
                stmt.otel.record(elapsed, stmt.attributes)
            if span is not None:
                tracing.end_statement(span, None, rows if stmt.returns_rows else -1)  # type: ignore[union-attr]
            if elapsed >= slow:
                _log_slow(stmt, statement, elapsed)
            return True

        return timed

    # -- gauges -------------------------------------------------------------------------------

    def _pool_gauges(self) -> Iterator[tuple[_m.Spec, _m.Labels, float]]:
        for state in list(self.states.values()):
            engine = state.engine()
            if engine is None:
                continue
            pool: Any = engine.pool
            labels = state.labels
            if hasattr(pool, "checkedout"):
                yield _m.CONNECTIONS, (*labels, ("state", "used")), float(pool.checkedout())
            if hasattr(pool, "checkedin"):
                yield _m.CONNECTIONS, (*labels, ("state", "idle")), float(pool.checkedin())
            if hasattr(pool, "overflow"):
                yield _m.OVERFLOW, labels, float(max(pool.overflow(), 0))
            yield _m.PENDING, labels, float(state.pending)

    def _lag_gauges(self) -> Iterator[tuple[_m.Spec, _m.Labels, float]]:
        seen: set[int] = set()
        for state in list(self.states.values()):
            labels = state.labels
            replica = state.replica
            # Once per replica, not once per engine (sync and async) of it.
            if replica is not None and replica.lag is not None and id(replica) not in seen:
                seen.add(id(replica))
                yield _m.LAG, labels, float(replica.lag)

    # -- replicas -----------------------------------------------------------------------------

    def watch(self, cluster: _replicas.Cluster, order: list[_replicas.Replica]) -> Iterable[_replicas.Replica]:
        """Hand out ``order``; a read that exhausts it falls back to the primary: count that."""
        skipped: list[str] = []
        _skipped.set(skipped)
        yield from order
        reason = next(
            (r for r in ("read_your_writes", "lag", "unreachable") if r in skipped),
            "none_available",
        )
        labels = (*self._node_labels(cluster.primary), ("reason", reason))
        self.metrics.add(self.metrics.counter(_m.FALLBACKS, labels))
        if self.tracing is not None:
            _routing.set(_Routing(cluster.primary, "fallback", reason))

    def skipped(self, replica: _replicas.Replica, reason: str) -> None:
        """Count a replica passed over (and remember why, for the read's fallback reason)."""
        labels = (*self._node_labels(replica.engines), ("reason", reason))
        self.metrics.add(self.metrics.counter(_m.SKIPS, labels))
        reasons = _skipped.get()
        if reasons is not None:
            reasons.append(reason)

    def chosen(self, replica: _replicas.Replica, reason: str) -> None:
        """Tell the read's first statement span which replica serves it, and why."""
        if self.tracing is not None:
            _routing.set(_Routing(replica.engines, "replica", reason))

    def _node_labels(self, node: _engines.NodeEngines) -> _m.Labels:
        for state in list(self.states.values()):
            if state.node is node:
                return state.labels
        # No engine of this node has been created yet: label it from its configuration.
        return (("db.system.name", node.node.backend), ("activerecord.node", node.node.safe_url))

    # -- OpenTelemetry metrics ----------------------------------------------------------------

    def _bridge(self, meter: Meter) -> None:
        """Publish the metrics through ``meter``: counters and gauges are read at collection;
        histograms are OpenTelemetry's own, recorded per statement and per checkout."""
        self.otel_duration = meter.create_histogram(
            _m.DURATION.name,
            unit=_m.DURATION.unit,
            description=_m.DURATION.description,
            explicit_bucket_boundaries_advisory=list(_m.DURATION_BUCKETS),
        )
        self.otel_wait = meter.create_histogram(
            _m.WAIT.name,
            unit=_m.WAIT.unit,
            description=_m.WAIT.description,
            explicit_bucket_boundaries_advisory=list(_m.WAIT_BUCKETS),
        )
        for spec in _m.SPECS:
            if spec.kind == "counter":
                meter.create_observable_counter(
                    spec.name, callbacks=[self._observe(spec)], unit=spec.unit, description=spec.description
                )
            elif spec.kind == "gauge":
                meter.create_observable_gauge(
                    spec.name, callbacks=[self._observe(spec)], unit=spec.unit, description=spec.description
                )

    def _observe(self, spec: _m.Spec) -> Callable[[CallbackOptions], Iterable[Observation]]:
        from opentelemetry.metrics import Observation

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            for family in self.metrics.collect():
                if family.name == spec.name:
                    return [Observation(float(v), dict(k)) for k, v in family.series.items() if isinstance(v, float)]
            return []

        return callback


def _log_slow(stmt: _Statement, statement: str, elapsed: float, error: BaseException | None = None) -> None:
    """Log a statement over the threshold: its text (placeholders only) and timing. Of a failed one,
    the error's class only: a driver's message may quote the values."""
    attributes = stmt.attributes
    outcome = "" if error is None else f" (failed: {type(error).__qualname__})"
    slow_log.warning(
        "slow statement%s: %.1f ms on %s (%s): %s",
        outcome,
        elapsed * 1000,
        attributes["activerecord.connection"],
        attributes["activerecord.node"],
        statement,
        extra={"duration": elapsed, "statement": statement, "db_query_summary": stmt.name},
    )


def _routing_attributes(state: _EngineState) -> dict[str, str] | None:
    note = _routing.get()
    if note is None or note.node is not state.node:
        return None
    _routing.set(None)
    return {"activerecord.replica.choice": note.choice, "activerecord.replica.reason": note.reason}


def _wrap_pool(state: _EngineState, pool: Pool) -> None:
    """Time checkouts of ``pool`` and count the callers waiting in it.

    SQLAlchemy has no event before a checkout starts to wait, so the pool's public ``connect``
    is wrapped on this one pool instance (`_unwrap_pool` restores it).
    """
    if "connect" in vars(pool):
        return
    original = pool.connect
    metrics = state.owner.metrics
    otel = state.owner.otel_wait

    def connect() -> Any:
        wait = state.wait
        if wait is None:
            wait = state.wait = metrics.histogram(_m.WAIT, state.labels)
        with state._lock:
            state.pending += 1
        start = perf_counter()
        try:
            return original()
        finally:
            elapsed = perf_counter() - start
            with state._lock:
                state.pending -= 1
            wait.observe(elapsed)
            if otel is not None:
                otel.record(elapsed, state.attributes)

    pool.connect = connect  # type: ignore[method-assign]


def _unwrap_pool(pool: Pool) -> None:
    vars(pool).pop("connect", None)


_current: _Instrumentation | None = None
_install_lock = threading.Lock()


def instrument(
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    *,
    slow_threshold: float | None = None,
    statement_text: bool = False,
) -> _m.Metrics:
    """Turn instrumentation on for every engine, existing and future; return the metrics.

    ``tracer_provider``: make spans (statements and write transactions) with it. ``meter_provider``:
    publish the metrics through it too (they are always kept in process for `metrics()` and the
    Prometheus exporter). ``slow_threshold``: log statements that take at least this many seconds
    to ``activerecord.slow``. ``statement_text``: put the statement (placeholders, never values)
    on spans as ``db.query.text``. Calling it again replaces the previous instrumentation.
    """
    global _current
    with _install_lock:
        _uninstall()
        inst = _Instrumentation(tracer_provider, meter_provider, slow_threshold, statement_text)
        _current = inst
        _engines.on_engine_created(inst.attach)
        for node, engine in _engines.existing_engines():
            inst.attach(node, engine)
        _replicas.observer = inst
    return inst.metrics


def uninstrument() -> None:
    """Remove every listener `instrument` installed; statements cost what they did before."""
    with _install_lock:
        _uninstall()


def _uninstall() -> None:
    global _current
    inst = _current
    if inst is None:
        return
    _current = None
    _replicas.observer = None
    _engines.remove_engine_created(inst.attach)
    inst.detach()


def current_metrics() -> _m.Metrics | None:
    """The metrics being recorded, or None when instrumentation is off."""
    return None if _current is None else _current.metrics

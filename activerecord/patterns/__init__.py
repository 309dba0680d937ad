"""Patterns on top of the models: the transactional outbox and its relay, the inbox, the event
store and its subscriptions, sagas.

>>> from activerecord.patterns import Outbox, Relay, MemoryPublisher
>>> outbox = Outbox("default")
>>> with outbox.model.transaction():
...     message = outbox.publish("orders.created", {"id": 1}, key="order-1")
>>> Relay(MemoryPublisher(), outbox=outbox).run_once()
1

Broker publishers and consumers live in `activerecord.patterns.brokers` (extras ``rabbitmq``,
``nats``, ``redis``).
"""

from .event_store import NO_STREAM, AppendResult, EventStore
from .events import EventRegistry, NewEvent, RecordedEvent, Snapshot
from .inbox import Inbox
from .messages import KEY_HEADER, AsyncPublisher, MemoryPublisher, Message, Publisher, PublishError
from .outbox import Outbox, OutboxCounts, apublish, publish
from .relay import Relay, RelayStats
from .saga import LeaseLost, Saga, SagaOrchestrator, SagaResult, Step, StepContext, StepFailed, StepTimeout
from .subscription import Subscription

__all__ = [
    "KEY_HEADER",
    "NO_STREAM",
    "AppendResult",
    "AsyncPublisher",
    "EventRegistry",
    "EventStore",
    "Inbox",
    "LeaseLost",
    "MemoryPublisher",
    "Message",
    "NewEvent",
    "Outbox",
    "OutboxCounts",
    "PublishError",
    "Publisher",
    "RecordedEvent",
    "Relay",
    "RelayStats",
    "Saga",
    "SagaOrchestrator",
    "SagaResult",
    "Snapshot",
    "Step",
    "StepContext",
    "StepFailed",
    "StepTimeout",
    "Subscription",
    "apublish",
    "publish",
]

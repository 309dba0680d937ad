"""Messaging patterns on top of the models: the transactional outbox and its relay, the inbox.

>>> from activerecord.patterns import Outbox, Relay, MemoryPublisher
>>> outbox = Outbox("default")
>>> with outbox.model.transaction():
...     message = outbox.publish("orders.created", {"id": 1}, key="order-1")
>>> Relay(MemoryPublisher(), outbox=outbox).run_once()
1

Broker publishers and consumers live in `activerecord.patterns.brokers` (extras ``rabbitmq``,
``nats``, ``redis``).
"""

from .inbox import Inbox
from .messages import KEY_HEADER, AsyncPublisher, MemoryPublisher, Message, Publisher, PublishError
from .outbox import Outbox, OutboxCounts, apublish, publish
from .relay import Relay, RelayStats

__all__ = [
    "KEY_HEADER",
    "AsyncPublisher",
    "Inbox",
    "MemoryPublisher",
    "Message",
    "Outbox",
    "OutboxCounts",
    "PublishError",
    "Publisher",
    "Relay",
    "RelayStats",
    "apublish",
    "publish",
]

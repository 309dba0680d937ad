"""Publishers and consumers for real brokers, one module each (install the extra it names):

- `activerecord.patterns.brokers.rabbitmq` (``activerecord[rabbitmq]``, aio-pika): publisher confirms;
- `activerecord.patterns.brokers.nats` (``activerecord[nats]``, nats-py): JetStream, ``Nats-Msg-Id`` dedupe;
- `activerecord.patterns.brokers.redis` (``activerecord[redis]``, redis-py): Redis Streams.

`publisher_for_url` picks one by the URL's scheme (the command line's ``--broker``).
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from ...errors import ConfigurationError
from ..messages import AsyncPublisher

_SCHEMES = {
    "amqp": ("rabbitmq", "RabbitMQPublisher", "rabbitmq"),
    "amqps": ("rabbitmq", "RabbitMQPublisher", "rabbitmq"),
    "nats": ("nats", "NatsPublisher", "nats"),
    "tls": ("nats", "NatsPublisher", "nats"),
    "redis": ("redis", "RedisStreamPublisher", "redis"),
    "rediss": ("redis", "RedisStreamPublisher", "redis"),
}


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for repr and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def publisher_for_url(url: str, **options: Any) -> AsyncPublisher:
    """The publisher for broker ``url``: ``amqp://`` RabbitMQ, ``nats://`` NATS JetStream,
    ``redis://`` Redis Streams; ``options`` go to its constructor."""
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"unknown broker URL scheme {scheme!r} in {safe_url(url)}; use one of {', '.join(sorted(_SCHEMES))}"
        )
    module_name, class_name, extra = _SCHEMES[scheme]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ImportError as exc:
        raise ConfigurationError(f"the {scheme}:// publisher needs `pip install activerecord[{extra}]`: {exc}") from exc
    publisher: AsyncPublisher = getattr(module, class_name)(url, **options)
    return publisher

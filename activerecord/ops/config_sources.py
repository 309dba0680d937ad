"""Connection settings kept outside the process (an etcd prefix, a JSON or TOML file) and applied
live through `ConnectionManager.configure`.

Each connection is one document of the shape ``configure()`` takes. A source applies every
document at start, then watches for changes: a changed document reconfigures its connection (a
new replica starts serving reads, a removed one stops, a new host or password swaps the engines
while transactions already running finish on the old ones), a deleted one removes it. A document
that does not parse or validate is refused with a logged error and the last good settings stay in
force. Passwords in the documents never reach a log line.

>>> source = EtcdSource("http://127.0.0.1:2379", prefix="/services/orders/connections/")
>>> source.start()          # applies what is there now, then follows changes on a thread
>>> source.stop()
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import threading
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..connections.manager import ConnectionManager, ConnectionRegistry
from ..errors import ConfigurationError

log = logging.getLogger("activerecord.config")

Documents = dict[str, Any]


class ConfigSource(abc.ABC):
    """A place connection settings come from; subclasses say how to read and how to watch it.

    ``applied`` counts the changes applied so far and ``last_error`` holds the latest refusal, for
    health reports and tests.
    """

    def __init__(self, manager: ConnectionRegistry = ConnectionManager) -> None:
        self.manager = manager
        self.applied = 0
        self.last_error: str | None = None
        self._ours: dict[str, str] = {}  # connection name -> the JSON text of the document in force
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()

    # What a source is ---------------------------------------------------------------------------

    @abc.abstractmethod
    def read(self) -> Documents:
        """Every document there is now: ``{connection name: settings}`` (a bad one as ``ValueError``)."""

    @abc.abstractmethod
    def _follow(self, stop: threading.Event) -> Iterator[Documents]:
        """Yield the documents that changed (``None`` for a deleted one) until ``stop`` is set."""

    # Running it ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Apply every document now (a bad one raises `ConfigurationError`), then follow changes
        on a daemon thread."""
        documents = self.read()
        bad = {name: doc for name, doc in documents.items() if isinstance(doc, ValueError)}
        if bad:
            raise ConfigurationError("; ".join(f"{name}: {doc}" for name, doc in bad.items()))
        self._apply(documents, strict=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"activerecord-{type(self).__name__}", daemon=True)
        self._thread.start()

    async def astart(self) -> None:
        """`start` without blocking the event loop."""
        await asyncio.to_thread(self.start)

    def stop(self) -> None:
        """Stop following changes; the settings in force stay."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    async def astop(self) -> None:
        """`stop` without blocking the event loop."""
        await asyncio.to_thread(self.stop)

    async def aread(self) -> Documents:
        """`read` without blocking the event loop."""
        return await asyncio.to_thread(self.read)

    def wait_applied(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``applied`` reaches ``count`` (True) or ``timeout`` passes (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.applied >= count, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for changes in self._follow(self._stop):
                    self._apply(changes, strict=False)
            except Exception as exc:  # the source went away: keep the settings, try again
                log.warning(
                    "%s: following changes failed (%s: %s); retrying", type(self).__name__, type(exc).__name__, exc
                )
                self._stop.wait(1.0)

    def _apply(self, documents: Mapping[str, Any], *, strict: bool) -> None:
        for name, doc in documents.items():
            try:
                self._apply_one(name, doc)
            except ConfigurationError as exc:
                if strict:
                    raise
                self._refused(name, str(exc))

    def _apply_one(self, name: str, doc: Any) -> None:
        if isinstance(doc, ValueError):
            raise ConfigurationError(f"not a valid document: {doc}")
        if doc is None:
            if self._ours.pop(name, None) is not None and self.manager.is_configured(name):
                self.manager.remove(name)
                log.info("connection %r removed", name)
                self._count()
            return
        if not isinstance(doc, Mapping):
            raise ConfigurationError("a connection's document must be a JSON object")
        text = json.dumps(doc, sort_keys=True, default=str)
        if self._ours.get(name) == text:
            return
        self.manager.configure({name: doc})  # validates everything before changing anything
        self._ours[name] = text
        log.info("connection %r configured", name)
        self._count()

    def _refused(self, name: str, reason: str) -> None:
        self.last_error = f"{name}: {reason}"
        log.error("connection %r: settings refused, the last good ones stay in force: %s", name, reason)
        self._count()

    def _count(self) -> None:
        with self._changed:
            self.applied += 1
            self._changed.notify_all()


class EtcdSource(ConfigSource):
    """Documents under an etcd prefix: key ``PREFIX + name``, value the JSON settings.

    Talks to etcd's v3 HTTP gateway (``pip install activerecord[etcd]``).
    """

    def __init__(
        self,
        endpoint: str,
        prefix: str = "/activerecord/connections/",
        *,
        manager: ConnectionRegistry = ConnectionManager,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(manager)
        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        if not parts.hostname:
            raise ConfigurationError(f"not an etcd endpoint: {endpoint!r}")
        try:
            import etcd3gw
        except ImportError:
            raise ConfigurationError("EtcdSource needs etcd3gw: pip install 'activerecord[etcd]'") from None
        self.prefix = prefix
        self._client = etcd3gw.client(
            host=parts.hostname, port=parts.port or 2379, protocol=parts.scheme or "http", timeout=timeout
        )

    def __repr__(self) -> str:
        return f"EtcdSource({self._client.host}:{self._client.port}, prefix={self.prefix!r})"

    def _name(self, key: bytes) -> str:
        return key.decode()[len(self.prefix) :]

    def read(self) -> Documents:
        return {self._name(meta["key"]): _parse(value) for value, meta in self._client.get_prefix(self.prefix)}

    def _follow(self, stop: threading.Event) -> Iterator[Documents]:
        # Changes between read() and the watch's start would be missed: read again once watching.
        events, cancel = self._client.watch_prefix(self.prefix)
        stopper = threading.Thread(target=lambda: (stop.wait(), cancel()), daemon=True)
        stopper.start()
        yield self.read()
        for event in events:
            kv = event["kv"]
            yield {self._name(kv["key"]): None if event.get("type") == "DELETE" else _parse(kv.get("value", b""))}
        if not stop.is_set():
            raise ConnectionError("the etcd watch ended")


class FileSource(ConfigSource):
    """Documents in a JSON or TOML file (``{name: settings}``), checked for changes every
    ``interval`` seconds; a name gone from the file removes its connection."""

    def __init__(
        self, path: str | Path, *, interval: float = 1.0, manager: ConnectionRegistry = ConnectionManager
    ) -> None:
        super().__init__(manager)
        self.path = Path(path)
        self.interval = interval
        self._seen: tuple[float, int] | None = None
        self._known: set[str] = set()

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r})"

    def read(self) -> Documents:
        stat = self.path.stat()
        raw = self.path.read_bytes()
        self._seen = (stat.st_mtime, stat.st_size)
        try:
            loaded = tomllib.loads(raw.decode()) if self.path.suffix == ".toml" else json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            # The whole file is unreadable: every name keeps its last good settings.
            raise ConfigurationError(f"{self.path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"{self.path}: the file must hold an object of connection names")
        documents: Documents = dict(loaded)
        for gone in self._known - set(documents):
            documents[gone] = None
        self._known = set(loaded)
        return documents

    def _follow(self, stop: threading.Event) -> Iterator[Documents]:
        while not stop.wait(self.interval):
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                continue  # being replaced; the last good settings stay
            if (stat.st_mtime, stat.st_size) == self._seen:
                continue
            try:
                yield self.read()
            except ConfigurationError as exc:
                self._refused(str(self.path), str(exc))


def _parse(value: bytes | str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        return ValueError(f"not JSON: {exc}")


__all__ = ["ConfigSource", "Documents", "EtcdSource", "FileSource"]

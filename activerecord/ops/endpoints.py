"""Readiness and liveness endpoints for an orchestrator's probes, as an ASGI and a WSGI app.

Readiness answers 200 while the health report is not ``down`` (replicas may be) and 503 when it
is, with the report as JSON; liveness answers 200 without touching a database (the process is
alive and serving). Each app answers whatever path it is mounted at: in FastAPI or Starlette
``app.add_route("/ready", ReadinessASGI())``, in Flask through werkzeug's ``DispatcherMiddleware``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from .health import HealthReport, acheck, check

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StartResponse = Callable[..., Any]

_REASONS = {200: "200 OK", 405: "405 Method Not Allowed", 503: "503 Service Unavailable"}
_ALIVE = json.dumps({"status": "alive"}).encode()
_NOT_ALLOWED = json.dumps({"error": "only GET and HEAD are answered"}).encode()


def _readiness(report: HealthReport) -> tuple[int, bytes]:
    return (200 if report.ready else 503), report.to_json().encode()


def _headers(body: bytes) -> list[tuple[str, str]]:
    # no-store: a cached "ready" must never answer for a database that has gone down since.
    return [("content-type", "application/json"), ("content-length", str(len(body))), ("cache-control", "no-store")]


class _ASGIEndpoint:
    """An ASGI app answering GET and HEAD with one JSON document; lifespan events are accepted."""

    async def _answer(self) -> tuple[int, bytes]:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served on its own, outside a framework
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] in ("GET", "HEAD"):
            status, body = await self._answer()
        else:
            status, body = 405, _NOT_ALLOWED
        headers = [(k.encode(), v.encode()) for k, v in _headers(body)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


class ReadinessASGI(_ASGIEndpoint):
    """ASGI readiness probe: 200 unless ``ConnectionManager.ahealth(connection)`` is down, then
    503; the report as JSON either way."""

    def __init__(self, connection: str | None = None, *, timeout: float | None = None) -> None:
        self.connection = connection
        self.timeout = timeout

    async def _answer(self) -> tuple[int, bytes]:
        return _readiness(await acheck(self.connection, timeout=self.timeout))


class LivenessASGI(_ASGIEndpoint):
    """ASGI liveness probe: always 200 ``{"status": "alive"}``; no database is asked (a database
    outage must not get the process restarted)."""

    async def _answer(self) -> tuple[int, bytes]:
        return 200, _ALIVE


class _WSGIEndpoint:
    """A WSGI app answering GET and HEAD with one JSON document."""

    def _answer(self) -> tuple[int, bytes]:
        raise NotImplementedError

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        status, body = self._answer() if method in ("GET", "HEAD") else (405, _NOT_ALLOWED)
        start_response(_REASONS[status], _headers(body))
        return [b"" if method == "HEAD" else body]


class ReadinessWSGI(_WSGIEndpoint):
    """WSGI readiness probe: 200 unless ``ConnectionManager.health(connection)`` is down, then
    503; the report as JSON either way."""

    def __init__(self, connection: str | None = None, *, timeout: float | None = None) -> None:
        self.connection = connection
        self.timeout = timeout

    def _answer(self) -> tuple[int, bytes]:
        return _readiness(check(self.connection, timeout=self.timeout))


class LivenessWSGI(_WSGIEndpoint):
    """WSGI liveness probe: always 200 ``{"status": "alive"}``; no database is asked."""

    def _answer(self) -> tuple[int, bytes]:
        return 200, _ALIVE

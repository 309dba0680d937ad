"""The readiness and liveness endpoints over real HTTP: the ASGI apps in FastAPI under uvicorn, the
WSGI apps in Flask under a WSGI server, in front of a PostgreSQL primary with two streaming
standbys: a stopped replica leaves the service ready (degraded), a refused primary does not."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from activerecord import ConnectionManager, LivenessASGI, LivenessWSGI, ReadinessASGI, ReadinessWSGI

from .harness.pg_cluster import PgCluster
from .harness.proxy import Proxy

NAME = "h_http_orders"


def fastapi_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # The async pools belong to the server's event loop: close them on it.
        for engines in ConnectionManager.cluster(NAME).all_engines():
            await engines.adispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"service": "orders"}

    app.add_route("/health/ready", ReadinessASGI(NAME, timeout=3))
    app.add_route("/health/live", LivenessASGI())
    return app


def flask_app() -> Any:
    app = Flask("orders")

    @app.get("/")
    def index() -> dict[str, str]:
        return {"service": "orders"}

    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/health/ready": ReadinessWSGI(NAME, timeout=3), "/health/live": LivenessWSGI()}
    )
    return app


@contextmanager
def serve_asgi() -> Iterator[str]:
    config = uvicorn.Config(fastapi_app(), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_wsgi() -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, flask_app(), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


SERVERS = {"asgi": serve_asgi, "wsgi": serve_wsgi}


@pytest.fixture(scope="module")
def database(pg_cluster: PgCluster) -> str:
    name = f"ar_health_http_{uuid.uuid4().hex[:6]}"
    pg_cluster.create_database(name)
    return name


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_readiness_and_liveness_over_http(kind: str, pg_cluster: PgCluster, database: str) -> None:
    stopped = pg_cluster.replicas[0]
    with Proxy(pg_cluster.primary.port) as proxy:
        ConnectionManager.configure(
            {
                NAME: {
                    "write": {**pg_cluster.primary.config(database), "port": proxy.port},
                    "read": [replica.config(database) for replica in pg_cluster.replicas],
                }
            }
        )
        try:
            with SERVERS[kind]() as base, httpx.Client(base_url=base, timeout=10) as http:
                assert http.get("/").json() == {"service": "orders"}  # the application beside the probes
                live = http.get("/health/live")
                assert (live.status_code, live.json()) == (200, {"status": "alive"})
                ready = http.get("/health/ready")
                assert ready.status_code == 200 and ready.headers["content-type"] == "application/json"
                body = ready.json()
                assert body["status"] == "up"
                assert [(n["name"], n["role"], n["status"]) for n in body["nodes"]] == [
                    (NAME, "primary", "up"),
                    (f"{NAME}/replica-1", "replica", "up"),
                    (f"{NAME}/replica-2", "replica", "up"),
                ]
                assert all(isinstance(n["position"], int) for n in body["nodes"])
                assert all(isinstance(n["lag"], float) for n in body["nodes"][1:])
                assert http.head("/health/ready").status_code == 200
                assert http.post("/health/ready").status_code == 405

                pg_cluster.stop_replica(stopped)
                try:
                    ready = http.get("/health/ready")
                    assert ready.status_code == 200  # degraded is still ready: reads fall back to the primary
                    body = ready.json()
                    assert body["status"] == "degraded"
                    assert [n["status"] for n in body["nodes"]] == ["up", "down", "up"]
                    assert body["nodes"][1]["error"]

                    proxy.refuse()
                    ready = http.get("/health/ready")
                    assert ready.status_code == 503
                    body = ready.json()
                    assert body["status"] == "down" and body["nodes"][0]["status"] == "down"
                    assert http.get("/health/live").status_code == 200  # no database asked: not restarted
                finally:
                    pg_cluster.start_replica(stopped)
                proxy.passthrough()
                assert http.get("/health/ready").json()["status"] == "up"
        finally:
            ConnectionManager.remove(NAME)

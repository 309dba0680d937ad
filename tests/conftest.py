"""Fixtures shared by the whole suite.

Every test that takes ``db`` runs once per backend (SQLite, PostgreSQL, MariaDB) and once per
mode (sync, async); ``db`` is the `IO` that calls the right form of each method.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import sqlalchemy as sa

from activerecord import ConnectionManager, metadata_for

from .backends import (
    ALL_BACKENDS,
    KNOWN_BACKENDS,
    PGBOUNCER,
    PGBOUNCER_SUITE,
    BackendDatabases,
    server_of,
)
from .dual import IO

pytest_plugins = ["tests.harness.fixtures"]

# The connection names the test models live on; each gets its own database per backend.
CONNECTIONS = ("default", "users", "orders")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=os.environ.get("AR_TEST_BACKENDS", ",".join(ALL_BACKENDS)),
        help=(
            "comma-separated backends to run against (sqlite,postgresql,mysql; postgresql-pgbouncer: "
            "PostgreSQL through pgbouncer in transaction mode, for every PostgreSQL test)"
        ),
    )


THROUGH_PGBOUNCER = pytest.mark.through_pgbouncer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "through_pgbouncer: PostgreSQL reached through pgbouncer (set by --backends)")


def selected_backends(config: pytest.Config) -> list[str]:
    names = [b.strip() for b in str(config.getoption("--backends")).split(",") if b.strip()]
    unknown = set(names) - set(KNOWN_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"unknown backend(s): {', '.join(sorted(unknown))}")
    return names


def _through_pgbouncer_by_default(metafunc: pytest.Metafunc, backends: list[str]) -> bool:
    """The modules of `PGBOUNCER_SUITE` also run through pgbouncer wherever PostgreSQL runs."""
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    return (
        module in PGBOUNCER_SUITE
        and "postgresql" in backends
        and PGBOUNCER not in backends
        and os.environ.get("AR_TEST_PGBOUNCER", "1") != "0"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = selected_backends(metafunc.config)
        if _through_pgbouncer_by_default(metafunc, backends):
            backends = [*backends, PGBOUNCER]
        marker = metafunc.definition.get_closest_marker("backends")
        if marker is not None:
            # A test for "postgresql" runs through pgbouncer too (when that is selected)...
            backends = [b for b in backends if b in marker.args or server_of(b) in marker.args]
        if metafunc.definition.get_closest_marker("direct") is not None:
            # ...unless it needs the server itself on the other end of its connections.
            backends = [b for b in backends if b != PGBOUNCER]
        # Through pgbouncer the test sees backend "postgresql" (the server it talks to), so test
        # bodies comparing backend names hold unchanged; the mark tells `backend_dbs`.
        values = [pytest.param(server_of(b), id=b, marks=THROUGH_PGBOUNCER) if b == PGBOUNCER else b for b in backends]
        metafunc.parametrize("backend", values, scope="session")
    if "mode" in metafunc.fixturenames:
        modes = ["sync", "async"]
        marker = metafunc.definition.get_closest_marker("modes")
        if marker is not None:
            modes = [m for m in modes if m in marker.args]
        metafunc.parametrize("mode", modes)


@pytest.fixture(scope="session")
def databases() -> Iterator[dict[str, BackendDatabases]]:
    made: dict[str, BackendDatabases] = {}
    yield made
    ConnectionManager.clear()
    for dbs in made.values():
        dbs.close()


@pytest.fixture(scope="session")
def _configured() -> dict[str, object]:
    return {"backend": None, "tables": set()}


@pytest.fixture
def backend_dbs(
    backend: str, databases: dict[str, BackendDatabases], request: pytest.FixtureRequest
) -> BackendDatabases:
    key = PGBOUNCER if request.node.get_closest_marker(THROUGH_PGBOUNCER.name) else backend
    if key not in databases:
        databases[key] = BackendDatabases(key)
    dbs = databases[key]
    dbs.require()
    return dbs


def _tables(name: str) -> list[sa.Table]:
    return list(metadata_for(name).sorted_tables)


@pytest.fixture
async def db(
    backend: str, mode: str, backend_dbs: BackendDatabases, _configured: dict[str, object]
) -> AsyncIterator[IO]:
    """Connections ``default``, ``users`` and ``orders`` on ``backend``, with empty tables."""
    backend = backend_dbs.backend  # (the id: PostgreSQL through pgbouncer has databases of its own)
    if _configured["backend"] != backend:
        await ConnectionManager.aclear()
        _configured["backend"] = backend
    ConnectionManager.configure({name: backend_dbs.config(name) for name in CONNECTIONS})
    created: set[tuple[str, str, str]] = _configured["tables"]  # type: ignore[assignment]
    for name in CONNECTIONS:
        missing = [t for t in _tables(name) if (backend, name, t.name) not in created]
        if missing:
            with ConnectionManager.engine(name).begin() as conn:
                metadata_for(name).create_all(conn, tables=missing)
            created.update((backend, name, t.name) for t in missing)
    io = IO(mode)
    try:
        yield io
    finally:
        io.close()
    for name in CONNECTIONS:
        tables = [t for t in _tables(name) if (backend, name, t.name) in created]
        with ConnectionManager.engine(name).begin() as conn:
            for table in reversed(tables):
                conn.execute(table.delete())


@pytest.fixture(scope="session")
def mypy_check(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[str, int]]:
    """Run ``mypy --strict`` on a source text; one incremental cache for the whole session, so
    SQLAlchemy and activerecord are analysed once, not once per check."""
    from mypy import api

    workdir = tmp_path_factory.mktemp("mypy")
    counter = iter(range(1_000_000))

    def check(source: str) -> tuple[str, int]:
        path = workdir / f"sample_{next(counter)}.py"
        path.write_text(textwrap.dedent(source))
        stdout, stderr, status = api.run(["--strict", "--cache-dir", str(workdir / ".cache"), str(path)])
        return stdout + stderr, status

    return check

"""The dialect seam: one Backend per backend, found by `backend_for`, and the guarded fast paths.

Only ``activerecord.dialects`` knows which database it talks to; the fast paths that lean on
SQLAlchemy's and aiosqlite's internals check those internals first and fall back to the public
path, with a warning, when they are not as expected.
"""

from __future__ import annotations

import ast
import pathlib
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.dialects import mysql as sa_mysql
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.dialects import sqlite as sa_sqlite

import activerecord
from activerecord import dialects
from activerecord.dialects import BACKENDS, backend_for
from activerecord.dialects.base import Backend
from activerecord.engine import operations
from activerecord.engine.config import engine_args, parse_node
from activerecord.engine.engines import NodeEngines

from .dual import IO
from .models import Everything

PACKAGE = pathlib.Path(activerecord.__file__).parent
NAMES = {name for backend in BACKENDS.values() for name in (backend.name, *backend.aliases)}


def test_backend_for_finds_each_backend_by_name_alias_or_dialect() -> None:
    assert backend_for("sqlite").name == "sqlite"
    assert backend_for("mariadb") is backend_for("mysql") is backend_for(sa_mysql.dialect())
    assert backend_for("postgres") is backend_for(sa_postgresql.dialect())  # type: ignore[no-untyped-call]
    assert backend_for(sa_sqlite.dialect()) is BACKENDS["sqlite"]
    with pytest.raises(LookupError, match="no backend 'oracle'"):
        backend_for("oracle")


def _backend_branches(path: pathlib.Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        for operand in [node.left, *node.comparators]:
            values = operand.elts if isinstance(operand, ast.Tuple | ast.Set | ast.List) else [operand]
            if any(isinstance(v, ast.Constant) and v.value in NAMES for v in values):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_no_module_outside_dialects_branches_on_a_backend_name() -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if "dialects" not in p.parts and "demo" not in p.parts]
    assert [branch for path in modules for branch in _backend_branches(path)] == []


def test_a_new_backend_is_one_class_registered_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fourth(Backend):
        name = "fourthdb"
        sync_driver = "fourth"
        async_driver = "afourth"
        async_drivers = frozenset({"afourth"})
        default_port = 7777

        def upsert(self, table: Any, conflict: Any, update: Any, pk: str) -> Any:
            return table.insert()

    monkeypatch.setattr(dialects, "_BY_NAME", dict(dialects._BY_NAME))
    monkeypatch.setitem(BACKENDS, Fourth.name, BACKENDS["sqlite"])  # (so that the test's end removes it)
    dialects.register(Fourth())
    node = parse_node("x", {"driver": "fourthdb", "host": "db", "database": "app"})
    assert (node.backend, node.sync_url.drivername, node.async_url.drivername) == (
        "fourthdb",
        "fourthdb+fourth",
        "fourthdb+afourth",
    )
    assert node.sync_url.port == 7777


def test_engines_use_activerecords_registered_dialects_where_it_has_them() -> None:
    sqlite = parse_node("s", {"driver": "sqlite", "database": "app.db"})
    assert engine_args(sqlite, sqlite.sync_url)[0].drivername == "sqlite+activerecord_pysqlite"
    assert engine_args(sqlite, sqlite.async_url)[0].drivername == "sqlite+activerecord_aiosqlite"
    # The node's own URLs, which users see, name the drivers as they are.
    assert (sqlite.sync_url.drivername, sqlite.async_url.drivername) == ("sqlite", "sqlite+aiosqlite")
    mysql = parse_node("m", {"url": "mysql://u@h/d"})
    assert engine_args(mysql, mysql.sync_url)[0].drivername == "mysql+activerecord_pymysql"
    assert engine_args(mysql, mysql.async_url)[0].drivername == "mysql+activerecord_asyncmy"
    # A caller's own converters replace activerecord's, and with them its dialect.
    own = parse_node("m", {"url": "mysql://u@h/d", "connect_args": {"conv": {}}})
    assert engine_args(own, own.sync_url)[0].drivername == "mysql+pymysql"
    pg = parse_node("p", {"url": "postgresql://u@h/d"})
    assert engine_args(pg, pg.sync_url)[0].drivername == "postgresql+activerecord_psycopg"
    assert engine_args(pg, pg.async_url)[0].drivername == "postgresql+activerecord_asyncpg"


def test_sqlite_waits_on_a_busy_timeout_unless_given_its_own() -> None:
    node = parse_node("s", {"driver": "sqlite", "database": "app.db"})
    assert engine_args(node, node.sync_url)[1]["connect_args"]["timeout"] > 0
    given = parse_node("s", {"driver": "sqlite", "database": "app.db", "connect_args": {"timeout": 0.5}})
    assert engine_args(given, given.sync_url)[1]["connect_args"] == {"timeout": 0.5}


def test_the_fast_paths_pass_their_self_checks_on_the_pinned_versions() -> None:
    from activerecord.dialects import sqlite_async

    assert sqlite_async._problem() is None
    assert operations._fast_rows_problem() is None


@pytest.fixture
def failing_row_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A SQLAlchemy whose result internals changed cannot be installed here: the check is made to fail.
    monkeypatch.setattr(operations, "_fast_rows_problem", lambda: "forced to fail")
    operations.fast_rows_usable.cache_clear()
    yield
    operations.fast_rows_usable.cache_clear()


@pytest.mark.usefixtures("failing_row_check")
async def test_rows_are_read_through_result_all_when_the_internals_check_fails(db: IO) -> None:
    with pytest.warns(RuntimeWarning, match="Result.all"):
        assert operations.fast_rows_usable() is False
    await db(Everything).create(small=3, label="x")
    rows = await db(Everything.find().order_by(Everything.id)).all()
    assert [(r.small, r.label) for r in rows] == [(3, "x")]
    assert await db(Everything.find()).pluck(Everything.small) == [3]


@pytest.fixture
def failing_cursor_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from activerecord.dialects import sqlite_async

    # An aiosqlite or SQLAlchemy whose internals changed cannot be installed here: the check is made to fail.
    monkeypatch.setattr(sqlite_async, "_problem", lambda: "forced to fail")
    sqlite_async.fast_cursor_usable.cache_clear()
    yield
    sqlite_async.fast_cursor_usable.cache_clear()


@pytest.mark.usefixtures("failing_cursor_check")
async def test_async_sqlite_uses_the_stock_adapter_when_the_cursor_check_fails(tmp_path: pathlib.Path) -> None:
    from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_cursor

    engines = NodeEngines(parse_node("s", {"driver": "sqlite", "database": str(tmp_path / "app.db")}))
    with pytest.warns(RuntimeWarning, match="stock aiosqlite adapter"):
        engine = engines.async_
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.dbapi_connection._cursor_cls is AsyncAdapt_aiosqlite_cursor  # type: ignore[union-attr]
            assert (await conn.exec_driver_sql("SELECT 41 + 1")).scalar() == 42
    finally:
        await engines.adispose()


async def test_async_sqlite_uses_the_fast_cursor_when_its_check_passes(tmp_path: pathlib.Path) -> None:
    from activerecord.dialects import sqlite_async

    engines = NodeEngines(parse_node("s", {"driver": "sqlite", "database": str(tmp_path / "app.db")}))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            async with engines.async_.connect() as conn:
                raw = await conn.get_raw_connection()
                assert raw.dbapi_connection._cursor_cls is sqlite_async._Cursor  # type: ignore[union-attr]
    finally:
        await engines.adispose()

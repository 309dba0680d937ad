"""The ``activerecord`` command line, run as a real process (``python -m activerecord``).

Includes the check that keeps the demo's top-level ``migrations/`` in step with its models.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord.engine.config import parse_node
from activerecord.errors import ConfigurationError
from activerecord.migrations import _settings

from .backends import BackendDatabases

ROOT = Path(__file__).resolve().parents[1]
SERVERS = pytest.mark.backends("postgresql", "mysql")


def url_for(config: dict[str, Any]) -> str:
    """The URL of a test database's settings, password included (it goes to a child's environment)."""
    if config["driver"] == "sqlite":
        return f"sqlite:///{config['database']}"
    return sa.URL.create(
        config["driver"],
        username=config.get("user"),
        password=config.get("password"),
        host=config["host"],
        port=config["port"],
        database=config["database"],
    ).render_as_string(hide_password=False)


def cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "activerecord", *args],
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVERECORD_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def fails(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def engine_for(url: str) -> sa.Engine:
    """An engine on ``url`` with activerecord's driver for its backend."""
    return sa.create_engine(parse_node("test", {"url": url}).sync_url)


def tables(url: str) -> set[str]:
    engine = engine_for(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- the demo's migrations never drift from its models --------------------------------------------


@pytest.mark.parametrize("service", ["users", "orders"])
def test_demo_migrations_match_the_models(backend_dbs: BackendDatabases, service: str) -> None:
    url = url_for(backend_dbs.config(f"demo_{service}_{uuid.uuid4().hex[:6]}"))
    env = {"ACTIVERECORD_URL": url}
    out = ok(cli("db", "upgrade", "--connection", service, env=env))
    assert out.startswith(f"{service}: upgraded base -> ")
    assert ok(cli("db", "check", "-c", service, env=env)) == f"{service}: the models and the migrations match\n"
    assert f"alembic_version_{service}" in tables(url)
    if backend_dbs.backend == "sqlite":
        ok(cli("db", "check", "-c", service, "--scratch"))


# --- a whole workflow in a project of its own -----------------------------------------------------

MODELS_V1 = """
from activerecord import ActiveRecord, PrimaryKeyField, StringField

class Item(ActiveRecord):
    __tablename__ = "items"
    __connection__ = "shop"
    id: int = PrimaryKeyField()
    title: str = StringField(max_length=50, unique=True)
"""

MODELS_V2 = (
    MODELS_V1
    + """    notes: str | None = StringField(max_length=200, nullable=True, index=True)
"""
)


def make_project(tmp_path: Path, url: str) -> Path:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "shop"

            [tool.activerecord]
            connection = "shop"
            config = "shop_config:CONNECTIONS"
            models = ["shop_models"]
            """
        )
    )
    (project / "shop_config.py").write_text(f"CONNECTIONS = {{'shop': {{'url': {url!r}}}}}\n")
    (project / "shop_models.py").write_text(MODELS_V1)
    return project


def test_a_service_workflow(backend_dbs: BackendDatabases, tmp_path: Path) -> None:
    url = url_for(backend_dbs.config(f"shop_{uuid.uuid4().hex[:6]}"))
    project = make_project(tmp_path, url)

    ok(cli("db", "init", cwd=project))
    env_py = (project / "migrations" / "shop" / "env.py").read_text()
    assert "run_env('shop', version_table='alembic_version_shop')" in env_py and env_py.count("\n") < 12

    ok(cli("db", "revision", "-m", "create items", "--autogenerate", cwd=project))
    first = ok(cli("db", "upgrade", cwd=project))
    assert first.startswith("shop: upgraded base -> ")
    rev1 = first.split("-> ")[1].strip()
    assert ok(cli("db", "current", cwd=project)) == f"shop: current at {rev1}\n"
    assert ok(cli("db", "upgrade", cwd=project)) == f"shop: unchanged at {rev1}\n"
    ok(cli("db", "check", cwd=project))

    (project / "shop_models.py").write_text(MODELS_V2)
    drift = cli("db", "check", cwd=project)
    assert drift.returncode == 1
    assert "add_column" in drift.stderr and "notes" in drift.stderr and "add_index" in drift.stderr

    ok(cli("db", "revision", "-m", "add notes", "--autogenerate", cwd=project))
    second = ok(cli("db", "upgrade", cwd=project))
    rev2 = second.split("-> ")[1].strip()
    ok(cli("db", "check", cwd=project))
    history = ok(cli("db", "history", cwd=project)).splitlines()
    assert history == [f"{rev1} -> {rev2} (head), add notes", f"<base> -> {rev1}, create items"]

    assert ok(cli("db", "downgrade", "-1", cwd=project)) == f"shop: downgraded {rev2} -> {rev1}\n"
    ok(cli("db", "downgrade", "base", cwd=project))
    assert tables(url) == {"alembic_version_shop"}


def test_flags_override_pyproject(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    project = make_project(tmp_path, "sqlite:///unused.db")
    ok(cli("db", "init", "-c", "shop", "-d", "elsewhere", cwd=project))
    assert (project / "elsewhere" / "env.py").is_file()
    # ACTIVERECORD_URL_SHOP beats the config module's settings.
    out = ok(cli("db", "upgrade", "-d", "elsewhere", cwd=project, env={"ACTIVERECORD_URL_SHOP": url}))
    assert out == "shop: unchanged at base\n"
    assert tables(url) == {"alembic_version_shop"}


def test_flags_alone_without_pyproject(tmp_path: Path) -> None:
    """No [tool.activerecord] at all: --config MODULE:FUNCTION and --models name everything."""
    project = tmp_path / "bare"
    project.mkdir()
    url = f"sqlite:///{tmp_path / 'bare.db'}"
    (project / "shop_setup.py").write_text(
        "from activerecord import ConnectionManager\n\n"
        f"def configure():\n    ConnectionManager.configure({{'shop': {{'url': {url!r}}}}})\n"
    )
    (project / "shop_models.py").write_text(MODELS_V1)
    flags = ["-c", "shop", "--config", "shop_setup:configure", "--models", "shop_models"]
    ok(cli("db", "init", *flags, cwd=project))
    ok(cli("db", "revision", *flags, "-m", "create", "--autogenerate", cwd=project))
    assert ok(cli("db", "upgrade", *flags, cwd=project)).startswith("shop: upgraded base -> ")
    ok(cli("db", "check", *flags, cwd=project))
    assert "items" in tables(url)
    # Without the models module, check has nothing to compare and says so.
    out = fails(cli("db", "check", "-c", "shop", "--config", "shop_setup:configure", cwd=project))
    assert "no models are declared on connection 'shop'" in out


# --- clear errors ------------------------------------------------------------------------------


def test_errors_are_clear_and_change_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    project = make_project(tmp_path, url)

    out = fails(cli("db", "upgrade", cwd=project))
    assert "no migration environment in" in out and "activerecord db init --connection shop" in out

    ok(cli("db", "init", cwd=project))
    out = fails(cli("db", "upgrade", "-c", "ghost", "-d", "migrations/shop", cwd=project))
    assert "no settings for connection 'ghost'" in out and "Traceback" not in out

    ok(cli("db", "revision", "-m", "create items", "--autogenerate", cwd=project))
    before = tables(url)
    out = fails(cli("db", "upgrade", "cafebabe", cwd=project))
    assert "unknown revision 'cafebabe'" in out and "Traceback" not in out
    assert tables(url) == before

    out = fails(cli("db", "upgrade", cwd=project, env={"ACTIVERECORD_URL": "nonsense"}))
    assert "'url' is not a database URL" in out

    (project / "pyproject.toml").write_text("[tool.activerecord]\nconfig = 'missing_module'\n")
    out = fails(cli("db", "upgrade", "-c", "shop", cwd=project))
    assert "cannot import the config module 'missing_module'" in out

    (project / "pyproject.toml").write_text("[tool.activerecord]\nmigration = 'typo'\n")
    out = fails(cli("db", "current", cwd=project))
    assert "unknown key(s) migration in [tool.activerecord]" in out


def test_passwords_stay_out_of_the_output(tmp_path: Path) -> None:
    project = make_project(tmp_path, "postgresql://bob:s3cret@127.0.0.1:1/nowhere")
    ok(cli("db", "init", cwd=project))
    (project / "migrations" / "shop" / "versions" / "0001_x.py").write_text(
        "revision = '0001'\ndown_revision = None\n\ndef upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    out = fails(cli("db", "upgrade", "--lock-timeout", "1", cwd=project))
    assert "s3cret" not in out and "upgrade failed on shop" in out


def test_help_and_demo_entry() -> None:
    out = ok(cli("--help"))
    assert "db" in out and "demo" in out
    out = ok(cli("db", "--help"))
    for command in ("init", "revision", "upgrade", "downgrade", "current", "history", "check"):
        assert command in out
    assert "--connection" in ok(cli("db", "check", "--help"))
    assert ok(cli("demo", "--help")).startswith("Usage:")


# --- settings resolution (in process) ---------------------------------------------------------------


def test_settings_precedence(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(
            """
            [tool.activerecord]
            models = ["common.models"]
            migrations = "db/{connection}"

            [tool.activerecord.connections.orders]
            models = ["orders.models"]
            migrations = "services/orders/migrations"
            """
        )
    )
    users = _settings.resolve(connection="users", config=None, models=(), directory=None, pyproject=pyproject)
    assert users.models == ("common.models",) and users.directory == tmp_path / "db" / "users"
    orders = _settings.resolve(connection="orders", config=None, models=(), directory=None, pyproject=pyproject)
    assert orders.models == ("orders.models",) and orders.directory == tmp_path / "services/orders/migrations"
    flagged = _settings.resolve(
        connection="orders", config="cfg", models=("x",), directory="m", pyproject=pyproject, cwd=tmp_path / "sub"
    )
    assert (flagged.models, flagged.config, flagged.directory) == (("x",), "cfg", tmp_path / "sub" / "m")
    assert _settings.find_pyproject(tmp_path / "a" / "b") is None or _settings.find_pyproject(tmp_path) == pyproject

    env = {"ACTIVERECORD_URL": "sqlite:///a.db", "ACTIVERECORD_URL_ORDER_DB": "sqlite:///b.db"}
    assert _settings.env_url("order-db", env) == "sqlite:///b.db"
    assert _settings.env_url("users", env) == "sqlite:///a.db"
    assert _settings.env_url("users", {}) is None

    pyproject.write_text("[tool.activerecord.connections.x]\nmodel = 'y'\n")
    with pytest.raises(ConfigurationError, match=r"connections\.x\] takes only"):
        _settings.resolve(connection="x", config=None, models=(), directory=None, pyproject=pyproject)


# --- two deploys at once -------------------------------------------------------------------------

SLOW = '''"""slow"""
import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("deployed", sa.Column("id", sa.Integer(), primary_key=True))
    time.sleep(3)


def downgrade() -> None:
    op.drop_table("deployed")
'''


@SERVERS
def test_two_concurrent_deploys_one_waits(backend_dbs: BackendDatabases, tmp_path: Path) -> None:
    url = url_for(backend_dbs.config(f"deploy_{uuid.uuid4().hex[:6]}"))
    project = make_project(tmp_path, url)
    ok(cli("db", "init", cwd=project))
    (project / "migrations" / "shop" / "versions" / "0001_slow.py").write_text(SLOW)

    args = [sys.executable, "-m", "activerecord", "db", "upgrade"]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            args, cwd=project, env=child_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    elapsed = time.monotonic() - started
    assert [p.returncode for p in procs] == [0, 0], outputs

    waited, upgraded = sorted(out for out, _ in outputs)
    assert upgraded == "shop: upgraded base -> 0001\n"
    # The other deploy waited for the lock, then found nothing left to do.
    assert waited.startswith("shop: unchanged at 0001 (waited ")
    waiter_err = next(err for out, err in outputs if out.startswith("shop: unchanged"))
    assert "waiting for the migration lock" in waiter_err
    assert elapsed >= 3

    engine = engine_for(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version_shop")).scalars().all() == ["0001"]
    engine.dispose()

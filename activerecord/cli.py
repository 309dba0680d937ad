"""The ``activerecord`` command line: ``activerecord db ...`` migrates a service's schema;
``activerecord outbox relay`` moves a service's outbox to a broker; ``activerecord health`` probes
its databases; ``activerecord demo``.

Every ``db`` command takes ``--connection`` (the service) and finds models and connection settings
through `activerecord.migrations._settings` (flags, then ``[tool.activerecord]`` in pyproject.toml,
then ``ACTIVERECORD_URL``).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from . import migrations
from .connections.manager import ConnectionManager
from .errors import ActiveRecordError, ConfigurationError, MigrationError, SchemaDriftError
from .migrations import _settings
from .ops.health import HealthStatus
from .patterns import Outbox, Relay
from .patterns.brokers import publisher_for_url, safe_url

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    """The options every ``db`` command shares, turned into one `ProjectSettings` argument."""

    @click.option("--connection", "-c", default=None, help="Connection (service) to migrate [default: 'default'].")
    @click.option("--models", multiple=True, metavar="MODULE", help="Module declaring the models (repeatable).")
    @click.option("--config", default=None, metavar="MODULE[:ATTR]", help="Module configuring ConnectionManager.")
    @click.option("--directory", "-d", default=None, help="Migrations folder [default: migrations/<connection>].")
    @click.option(
        "--pyproject",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="pyproject.toml to read [tool.activerecord] from [default: the nearest one].",
    )
    @functools.wraps(func)
    def wrapper(
        connection: str | None,
        models: tuple[str, ...],
        config: str | None,
        directory: str | None,
        pyproject: Path | None,
        **kwargs: Any,
    ) -> Any:
        try:
            project = pyproject if pyproject is not None else _settings.find_pyproject(Path.cwd())
            settings = _settings.resolve(
                connection=connection, config=config, models=models, directory=directory, pyproject=project
            )
            return func(settings, **kwargs)
        except SchemaDriftError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        except MigrationError as exc:
            for result in exc.results:
                click.echo(str(result), err=True)
            raise click.ClickException(str(exc)) from None
        except ActiveRecordError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _print(results: list[migrations.NodeStatus]) -> None:
    for result in results:
        click.echo(str(result))


def _on_wait(label: str) -> Callable[[str], None]:
    return lambda message: click.echo(f"{label}: {message}", err=True)


@click.group()
@click.option("--verbose", "-v", is_flag=True, help="Show Alembic's log (each migration as it runs).")
@click.version_option(package_name="activerecord")
def main(verbose: bool) -> None:
    """activerecord: a sync-and-async ActiveRecord ORM for Python services."""
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)


@main.group()
def db() -> None:
    """Per-service schema migrations (Alembic)."""


@db.command()
@click.option("--version-table", default=None, help="Version table [default: alembic_version_<connection>].")
@_common
def init(settings: _settings.ProjectSettings, version_table: str | None) -> None:
    """Create the migration environment of a service."""
    path = migrations.init(settings.connection, settings.directory, version_table=version_table)
    click.echo(f"created the migration environment of {settings.connection!r} in {path}")


@db.command()
@click.option("--message", "-m", required=True, help="What the migration does.")
@click.option("--autogenerate", is_flag=True, help="Write the difference between the models and the database.")
@click.option("--rev-id", default=None, help="Revision id to use instead of a generated one.")
@_common
def revision(settings: _settings.ProjectSettings, message: str, autogenerate: bool, rev_id: str | None) -> None:
    """Write a new migration script."""
    _settings.load(settings, need_connection=autogenerate)
    path = migrations.revision(
        settings.connection, message, autogenerate=autogenerate, directory=settings.directory, rev_id=rev_id
    )
    click.echo(f"wrote {path}")


@db.command()
@click.argument("revision", default="head")
@click.option("--lock-timeout", default=migrations.DEFAULT_LOCK_TIMEOUT, show_default=True, help="Seconds to wait.")
@_common
def upgrade(settings: _settings.ProjectSettings, revision: str, lock_timeout: float) -> None:
    """Upgrade every database of the service to REVISION (default: head)."""
    _settings.load(settings)
    _print(
        migrations.upgrade(
            settings.connection,
            revision,
            directory=settings.directory,
            lock_timeout=lock_timeout,
            on_wait=_on_wait(settings.connection),
        )
    )


# "-1" (one step down) is a revision, not an unknown option.
@db.command(context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@click.option("--lock-timeout", default=migrations.DEFAULT_LOCK_TIMEOUT, show_default=True, help="Seconds to wait.")
@_common
def downgrade(settings: _settings.ProjectSettings, revision: str, lock_timeout: float) -> None:
    """Downgrade every database of the service to REVISION ('base' for none, '-1' for one step)."""
    _settings.load(settings)
    _print(
        migrations.downgrade(
            settings.connection,
            revision,
            directory=settings.directory,
            lock_timeout=lock_timeout,
            on_wait=_on_wait(settings.connection),
        )
    )


@db.command()
@_common
def current(settings: _settings.ProjectSettings) -> None:
    """Show the revision each database of the service is at."""
    _settings.load(settings)
    _print(migrations.current(settings.connection, directory=settings.directory))


@db.command()
@_common
def history(settings: _settings.ProjectSettings) -> None:
    """List the service's migrations, newest first."""
    for info in migrations.history(settings.connection, directory=settings.directory):
        parents = ",".join(info.parents) or "<base>"
        head = " (head)" if info.is_head else ""
        click.echo(f"{parents} -> {info.revision}{head}, {info.message}")


@db.command()
@click.option("--scratch", is_flag=True, help="Apply the migrations to a throwaway SQLite database and compare there.")
@_common
def check(settings: _settings.ProjectSettings, scratch: bool) -> None:
    """Exit non-zero when the models and the migrations differ."""
    _settings.load(settings, need_connection=not scratch)
    migrations.check(settings.connection, directory=settings.directory, scratch=scratch)
    click.echo(f"{settings.connection}: the models and the migrations match")


@main.group()
def outbox() -> None:
    """The transactional outbox (docs/patterns.md)."""


async def _relay(relay: Relay, once: bool) -> int:
    async with relay:
        if once:
            return await relay.arun_once()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await relay.arun_forever(stop)
        return (await relay.astats()).published


@outbox.command()
@click.option(
    "--connection", "-c", default=None, help="Connection (service) whose outbox to relay [default: 'default']."
)
@click.option("--config", default=None, metavar="MODULE[:ATTR]", help="Module configuring ConnectionManager.")
@click.option(
    "--pyproject",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="pyproject.toml to read [tool.activerecord] from [default: the nearest one].",
)
@click.option(
    "--broker",
    required=True,
    envvar="ACTIVERECORD_BROKER_URL",
    help="amqp://, nats:// or redis:// URL [env: ACTIVERECORD_BROKER_URL].",
)
@click.option("--table", default="activerecord_outbox", show_default=True, help="Outbox table.")
@click.option("--batch-size", default=100, show_default=True, help="Messages leased per round.")
@click.option(
    "--lease", default=30.0, show_default=True, help="Seconds a round may take before others retake its rows."
)
@click.option("--max-attempts", default=10, show_default=True, help="Failed tries before a message is dead-lettered.")
@click.option("--poll-interval", default=0.5, show_default=True, help="Seconds between rounds when idle.")
@click.option("--once", is_flag=True, help="Relay one batch and exit.")
def relay(
    connection: str | None,
    config: str | None,
    pyproject: Path | None,
    broker: str,
    table: str,
    batch_size: int,
    lease: float,
    max_attempts: int,
    poll_interval: float,
    once: bool,
) -> None:
    """Publish the committed messages of a service's outbox to BROKER until interrupted (at-least-once)."""
    try:
        project = pyproject if pyproject is not None else _settings.find_pyproject(Path.cwd())
        settings = _settings.resolve(connection=connection, config=config, models=(), directory=None, pyproject=project)
        _settings.load(settings)
        relay = Relay(
            publisher_for_url(broker),
            outbox=Outbox(settings.connection, table=table),
            batch_size=batch_size,
            lease=lease,
            max_attempts=max_attempts,
            poll_interval=poll_interval,
        )
        click.echo(f"{settings.connection}: relaying {table} to {safe_url(broker)}", err=True)
        published = asyncio.run(_relay(relay, once))
    except ActiveRecordError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{settings.connection}: published {published} message(s)")


@main.command()
@click.option("--connection", "-c", default=None, help="Connection, shard group, shard or replica [default: all].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--timeout", type=float, default=None, help="Seconds each probe may take [default: 2].")
@click.option("--config", default=None, metavar="MODULE[:ATTR]", help="Module configuring ConnectionManager.")
@click.option(
    "--pyproject",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="pyproject.toml to read [tool.activerecord] from [default: the nearest one].",
)
def health(
    connection: str | None, as_json: bool, timeout: float | None, config: str | None, pyproject: Path | None
) -> None:
    """Probe the service's databases; exit 0 when up, 1 when degraded, 2 when down (or unusable settings)."""
    try:
        project = pyproject if pyproject is not None else _settings.find_pyproject(Path.cwd())
        settings = _settings.resolve(connection=connection, config=config, models=(), directory=None, pyproject=project)
        _settings.load(settings, need_connection=connection is not None)
        if not ConnectionManager.names():
            # Nothing to probe is a broken deployment, not a healthy one.
            raise ConfigurationError(
                "no connections configured: name a module that configures them (--config or `config` "
                "in [tool.activerecord]) or set ACTIVERECORD_URL"
            )
        report = ConnectionManager.health(connection, timeout=timeout)
    except ActiveRecordError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(HealthStatus.DOWN.exit_code)
    click.echo(report.to_json() if as_json else report.to_text())
    sys.exit(report.status.exit_code)


@main.command()
def demo() -> None:
    """Run the microservices demo."""
    # Imported only when asked for: the demo pulls in every service's models.
    importlib.import_module("activerecord.demo.app").main()

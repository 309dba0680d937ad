"""Developer tasks: ``nox`` runs the tests (on the newest allowed SQLAlchemy, and on SQLite on the
lowest), lint, typecheck and docs (the README test command, as CI does); ``nox -s bench`` runs the
benchmarks on purpose."""

import nox

nox.options.sessions = ["tests", "tests_sqlalchemy_lowest", "lint", "typecheck", "docs"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: sync and async, on SQLite, PostgreSQL and MariaDB."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


# The lowest SQLAlchemy that pyproject.toml allows. The fast paths lean on its internals behind
# self-checks; running the suite on both ends of the range shows those checks hold on each.
SQLALCHEMY_LOWEST = "2.1.0"


@nox.session
def tests_sqlalchemy_lowest(session: nox.Session) -> None:
    """The whole suite on the lowest allowed SQLAlchemy, on SQLite only: the internals the fast
    paths use are backend-independent, and one backend keeps CI time sane."""
    session.install("-e", ".[test]", f"sqlalchemy[asyncio]=={SQLALCHEMY_LOWEST}")
    session.run("python", "-c", "import sqlalchemy; print('SQLAlchemy', sqlalchemy.__version__)")
    session.run("pytest", "--backends", "sqlite", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format checks over the package, the tests and the benchmarks; the layers
    contract (import-linter, configured in pyproject.toml)."""
    session.install("ruff>=0.5", "import-linter>=2.1")
    session.run("ruff", "check", "activerecord", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "activerecord", "tests", "bench", "noxfile.py")
    session.install("-e", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install(
        "-e", ".[all,pydantic,etcd,rabbitmq,nats,redis,otel,prometheus]", "mypy>=1.10", "types-greenlet>=3.0"
    )
    session.run("mypy", "--strict", "activerecord")


@nox.session
def docs(session: nox.Session) -> None:
    """A strict docs build, with the API reference generated from the docstrings."""
    # ruff formats the signatures in the API reference.
    session.install("mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "ruff>=0.5")
    session.run("mkdocs", "build", "--strict", "--site-dir", "build/site")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against raw drivers, SQLAlchemy Core/ORM, Peewee and Tortoise.

    ``nox -s bench`` runs the full suite on SQLite, PostgreSQL and MariaDB and writes
    docs/benchmarks.md, docs/benchmarks.png and docs/benchmarks.json; ``nox -s bench -- --quick``
    is the smoke run (sizes / 20, one repeat). Every ``python -m bench`` option passes through,
    e.g. ``nox -s bench -- --backend sqlite --contender activerecord,peewee --repeats 5``.
    The servers are the ones the tests use (BENCH_POSTGRESQL_URL / BENCH_MYSQL_URL override).
    """
    session.install(
        "-e",
        ".[all]",
        "peewee>=4.5",
        "tortoise-orm>=1.1",
        "matplotlib>=3.8",
    )
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def bench_patterns(session: nox.Session) -> None:
    """Throughput of the messaging patterns on PostgreSQL: event-store appends per second and
    outbox messages relayed per second to RabbitMQ, NATS JetStream and Redis Streams, sync and
    async. Writes docs/benchmarks-patterns.json and the "Patterns throughput" section of
    docs/benchmarks.md; ``nox -s bench_patterns -- --quick`` is the smoke run (about 20 s). Kept
    out of ``nox -s bench``: that suite's quick run alone takes most of a minute and needs no brokers.
    """
    session.install("-e", ".[all,rabbitmq,nats,redis]")
    session.run("python", "-m", "bench.patterns", *session.posargs)

"""Developer tasks: ``nox -s tests`` (the README test command), lint, typecheck, docs, bench."""

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: sync and async, on SQLite, PostgreSQL and MariaDB."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package and the tests."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "activerecord", "tests", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[all]", "mypy>=1.10")
    session.run("mypy", "--strict", "activerecord")


@nox.session
def docs(session: nox.Session) -> None:
    """A strict docs build."""
    session.install("mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict", "--site-dir", "build/site")

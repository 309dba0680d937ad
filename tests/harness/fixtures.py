"""pytest fixtures that provide a real PostgreSQL 15 primary with streaming hot standbys.

Register with ``pytest_plugins = ["tests.harness.fixtures"]`` in the top-level conftest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .patroni import HarnessError, PatroniCluster
from .patroni import available as patroni_available
from .pg_cluster import DEFAULT_BINDIR, PgCluster, postgres_available


@pytest.fixture(scope="session")
def pg_bindir() -> Path:
    """Return the directory of usable PostgreSQL binaries.

    Skips the requesting test when there are none, or fails it under ``CI=true``.
    """
    if not postgres_available(DEFAULT_BINDIR):
        reason = f"PostgreSQL binaries not usable from {DEFAULT_BINDIR} (set PG_BINDIR to override)"
        # CI is where replication must be exercised: a missing server there is a broken
        # runner, and a silent skip would hide it.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return DEFAULT_BINDIR


@pytest.fixture(scope="session")
def pg_cluster(pg_bindir: Path) -> Iterator[PgCluster]:
    """Yield a started ``PgCluster(replicas=2)`` shared by the whole session.

    Tests that pause, stop or otherwise disturb a replica must restore it before they end.
    """
    with PgCluster(replicas=2, bindir=pg_bindir) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def patroni() -> Iterator[PatroniCluster]:
    """A three-member Patroni cluster over a single-node etcd, shared by the session.

    Tests may switch over, crash and restart members; each must leave all three running (the
    ``ha`` fixtures wait for a healthy cluster first).
    """
    reason = patroni_available()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        with PatroniCluster() as cluster:
            yield cluster
    except HarnessError as exc:
        pytest.fail(f"the Patroni cluster did not come up: {exc}")

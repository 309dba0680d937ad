"""A COMMIT whose reply never came: reported as `CommitOutcomeUnknown`, never as a plain failure.

When the link dies after COMMIT was sent, the server may have committed or not; the client cannot
tell. Any other error from a commit (a deferred constraint, a serialization failure found at
commit) is the server's own answer: the transaction was rolled back, and the error stands.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from ..errors import CommitOutcomeUnknown


@contextmanager
def commit_outcome() -> Iterator[None]:
    """Wrap the COMMIT of a transaction: a connection lost during it raises `CommitOutcomeUnknown`."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise CommitOutcomeUnknown(
                "the connection was lost after COMMIT was sent: the transaction may or may not have committed"
            ) from exc
        raise
